//! Rows and queries of the organisation model (tables `org_spec`, `org_units`,
//! `org_people`, migration 0004): the spec last applied, and the bindings of unit ids to
//! account keys and of person ids to user keys. The accounts and users themselves live in
//! their own tables; the caller (the `warden` crate) writes both in one [`Tx`].

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use std::collections::HashSet;

use crate::bulk::values_clause;
use crate::ledger::canonical_json;
use crate::rows::{UserRow, column};
use crate::{Store, StoreError, Tx};

/// The spec last applied (one row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrgSpecRow {
    /// Organisation name.
    pub name: String,
    /// The spec (JSON, owned by warden-core).
    pub spec: serde_json::Value,
    /// When it was applied, unix seconds.
    pub applied_at: i64,
}

/// A unit bound to the account it became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgUnitRow {
    /// Unit id of the spec.
    pub unit_id: String,
    /// Account public key.
    pub account_key: String,
    /// Last change, unix seconds.
    pub updated_at: i64,
}

/// Status of a person's user.
pub const PERSON_ACTIVE: &str = "active";
/// Status of a person whose user has been revoked.
pub const PERSON_REVOKED: &str = "revoked";

/// A person bound to the user it became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgPersonRow {
    /// Person id of the spec.
    pub person_id: String,
    /// User public key.
    pub user_key: String,
    /// [`PERSON_ACTIVE`] or [`PERSON_REVOKED`].
    pub status: String,
    /// Last change, unix seconds.
    pub updated_at: i64,
}

impl OrgSpecRow {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let text: String = column(row, "spec")?;
        Ok(OrgSpecRow {
            name: column(row, "name")?,
            spec: serde_json::from_str(&text)?,
            applied_at: column(row, "applied_at")?,
        })
    }
}

impl OrgUnitRow {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(OrgUnitRow {
            unit_id: column(row, "unit_id")?,
            account_key: column(row, "account_key")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

impl OrgPersonRow {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(OrgPersonRow {
            person_id: column(row, "person_id")?,
            user_key: column(row, "user_key")?,
            status: column(row, "status")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

async fn spec(conn: &mut AnyConnection) -> Result<Option<OrgSpecRow>, StoreError> {
    sqlx::query("SELECT name, spec, applied_at FROM org_spec WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("reading the organisation spec"))?
        .as_ref()
        .map(OrgSpecRow::from_row)
        .transpose()
}

async fn units(conn: &mut AnyConnection) -> Result<Vec<OrgUnitRow>, StoreError> {
    sqlx::query("SELECT unit_id, account_key, updated_at FROM org_units ORDER BY unit_id")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("listing organisation units"))?
        .iter()
        .map(OrgUnitRow::from_row)
        .collect()
}

async fn people(conn: &mut AnyConnection) -> Result<Vec<OrgPersonRow>, StoreError> {
    sqlx::query("SELECT person_id, user_key, status, updated_at FROM org_people ORDER BY person_id")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("listing organisation people"))?
        .iter()
        .map(OrgPersonRow::from_row)
        .collect()
}

/// The most values one statement of a batch binds here. SQLite looks each `$N` up in
/// the statement's list of names while parsing it, so a statement's parse time grows
/// with the square of its values: 32,764 values took 5 s for 8,191 rows, 1,000 take a
/// few milliseconds for 250.
pub const STATEMENT_PARAMS: usize = 1_000;

impl Store {
    /// The organisation spec last applied, if any.
    pub async fn org_spec(&self) -> Result<Option<OrgSpecRow>, StoreError> {
        spec(&mut *self.pooled().await?).await
    }

    /// Every unit binding, ordered by unit id.
    pub async fn org_units(&self) -> Result<Vec<OrgUnitRow>, StoreError> {
        units(&mut *self.pooled().await?).await
    }

    /// Every person binding, ordered by person id.
    pub async fn org_people(&self) -> Result<Vec<OrgPersonRow>, StoreError> {
        people(&mut *self.pooled().await?).await
    }
}

impl Tx<'_> {
    /// The organisation spec last applied, if any.
    pub async fn org_spec(&mut self) -> Result<Option<OrgSpecRow>, StoreError> {
        spec(self.conn()).await
    }

    /// Records `row` as the spec applied (replacing the previous one).
    pub async fn set_org_spec(&mut self, row: &OrgSpecRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO org_spec (id, name, spec, applied_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, spec = excluded.spec, \
             applied_at = excluded.applied_at",
        )
        .bind(&row.name)
        .bind(canonical_json(&row.spec))
        .bind(row.applied_at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("writing the organisation spec"))?;
        Ok(())
    }

    /// Every unit binding, ordered by unit id.
    pub async fn org_units(&mut self) -> Result<Vec<OrgUnitRow>, StoreError> {
        units(self.conn()).await
    }

    /// Binds a unit to an account (insert or replace). [`StoreError::Conflict`] if the
    /// account is bound to another unit.
    pub async fn put_org_unit(&mut self, row: &OrgUnitRow) -> Result<(), StoreError> {
        let other = sqlx::query("SELECT unit_id FROM org_units WHERE account_key = $1")
            .bind(&row.account_key)
            .fetch_optional(self.conn())
            .await
            .map_err(StoreError::query("looking up a unit binding"))?;
        if let Some(other) = other {
            let unit: String = column(&other, "unit_id")?;
            if unit != row.unit_id {
                return Err(StoreError::Conflict {
                    what: format!("account {} (bound to unit {unit})", row.account_key),
                });
            }
        }
        sqlx::query(
            "INSERT INTO org_units (unit_id, account_key, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (unit_id) DO UPDATE SET account_key = excluded.account_key, \
             updated_at = excluded.updated_at",
        )
        .bind(&row.unit_id)
        .bind(&row.account_key)
        .bind(row.updated_at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("binding a unit"))?;
        Ok(())
    }

    /// Removes a unit binding. [`StoreError::NotFound`] if absent.
    pub async fn delete_org_unit(&mut self, unit_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM org_units WHERE unit_id = $1")
            .bind(unit_id)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("unbinding a unit"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("organisation unit {unit_id}"),
            });
        }
        Ok(())
    }

    /// Every person binding, ordered by person id.
    pub async fn org_people(&mut self) -> Result<Vec<OrgPersonRow>, StoreError> {
        people(self.conn()).await
    }

    /// Binds a person to a user (insert or replace).
    pub async fn put_org_person(&mut self, row: &OrgPersonRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO org_people (person_id, user_key, status, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (person_id) DO UPDATE SET \
             user_key = excluded.user_key, status = excluded.status, \
             updated_at = excluded.updated_at",
        )
        .bind(&row.person_id)
        .bind(&row.user_key)
        .bind(&row.status)
        .bind(row.updated_at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("binding a person"))?;
        Ok(())
    }

    /// Binds many persons to their users (insert or replace each), in multi-row
    /// statements: what [`Tx::put_org_person`] does once per row, for a whole batch of
    /// users an organisation apply creates. [`StoreError::Conflict`] naming the first
    /// person id the batch repeats (one statement may not update a row twice); nothing is
    /// written then.
    pub async fn put_org_people(&mut self, rows: &[OrgPersonRow]) -> Result<(), StoreError> {
        let mut seen = HashSet::with_capacity(rows.len());
        if let Some(dup) = rows.iter().find(|r| !seen.insert(r.person_id.as_str())) {
            return Err(StoreError::Conflict {
                what: format!("organisation person {} (twice in one batch)", dup.person_id),
            });
        }
        const COLUMNS: usize = 4;
        for chunk in rows.chunks(STATEMENT_PARAMS / COLUMNS) {
            let sql = format!(
                "INSERT INTO org_people (person_id, user_key, status, updated_at) VALUES {} \
                 ON CONFLICT (person_id) DO UPDATE SET user_key = excluded.user_key, \
                 status = excluded.status, updated_at = excluded.updated_at",
                values_clause(chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(&row.person_id)
                    .bind(&row.user_key)
                    .bind(&row.status)
                    .bind(row.updated_at);
            }
            query
                .execute(self.conn())
                .await
                .map_err(StoreError::query("binding persons"))?;
        }
        Ok(())
    }

    /// The users an organisation apply creates in `account`, with their sealed seeds:
    /// what [`Tx::put_seed`] and [`Tx::insert_user`] do once per user, checked first for
    /// the whole batch (the account exists, no key or name is taken or repeated: the
    /// same [`StoreError::NotFound`] / [`StoreError::Conflict`], naming the first such
    /// user, and nothing written), then written in statements of at most
    /// [`STATEMENT_PARAMS`] values. Every row of `users` must be in `account`; `seeds`
    /// are `(public key, seed)` of those users.
    pub async fn insert_org_users(
        &mut self,
        account: &str,
        users: &[UserRow],
        seeds: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if users.is_empty() && seeds.is_empty() {
            return Ok(());
        }
        if let Some(other) = users.iter().find(|u| u.account != account) {
            return Err(StoreError::Conflict {
                what: format!(
                    "user {} of another account in a batch of {account}",
                    other.name
                ),
            });
        }
        let conn = self.conn();
        if sqlx::query("SELECT public_key FROM accounts WHERE public_key = $1")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::query("looking up an account"))?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: format!("account {account}"),
            });
        }
        // The bulk writes check names, keys and seeds before writing; a failure leaves the
        // transaction to be rolled back by the caller, so the batch is all or nothing.
        self.insert_users(users).await?;
        let seeds: Vec<crate::NewSeed<'_>> = seeds
            .iter()
            .map(|(public_key, seed)| crate::NewSeed {
                public_key,
                kind: "user",
                seed,
            })
            .collect();
        self.put_seeds(&seeds).await
    }

    /// Removes a person binding. [`StoreError::NotFound`] if absent.
    pub async fn delete_org_person(&mut self, person_id: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM org_people WHERE person_id = $1")
            .bind(person_id)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("unbinding a person"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("organisation person {person_id}"),
            });
        }
        Ok(())
    }
}
