//! Tenants (table `tenants`): slug, the key of its account, state (`active` or
//! `suspended`), limits (JSON) and the time of each change. The account and its users are
//! ordinary rows of `accounts` and `users`.
//!
//! Reads are on [`crate::Store`] and [`crate::Tx`]; writes on [`crate::Tx`], so a tenant,
//! its account, the platform account, the ledger event and outbox rows commit together.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::column;
use crate::{Store, StoreError, Tx, bulk};

/// One tenant as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRow {
    /// Slug (validated by the caller), unique.
    pub slug: String,
    /// Public key of its account, unique.
    pub account_key: String,
    /// `active` or `suspended`.
    pub state: String,
    /// Limits, a JSON object as text.
    pub limits: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Last suspension (kept after a resume).
    pub suspended_at: Option<i64>,
}

const COLUMNS: &str = "slug, account_key, state, limits, created_at, updated_at, suspended_at";

impl TenantRow {
    fn from_row(row: &AnyRow) -> Result<TenantRow, StoreError> {
        Ok(TenantRow {
            slug: column(row, "slug")?,
            account_key: column(row, "account_key")?,
            state: column(row, "state")?,
            limits: column(row, "limits")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
            suspended_at: column(row, "suspended_at")?,
        })
    }
}

async fn by(
    conn: &mut AnyConnection,
    column_name: &'static str,
    value: &str,
) -> Result<Option<TenantRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE {column_name} = $1"
    )))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading a tenant"))?
    .as_ref()
    .map(TenantRow::from_row)
    .transpose()
}

async fn list(conn: &mut AnyConnection, state: Option<&str>) -> Result<Vec<TenantRow>, StoreError> {
    let rows = match state {
        Some(s) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM tenants WHERE state = $1 ORDER BY slug"
            )))
            .bind(s)
            .fetch_all(&mut *conn)
            .await
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM tenants ORDER BY slug"
            )))
            .fetch_all(&mut *conn)
            .await
        }
    }
    .map_err(StoreError::query("listing tenants"))?;
    rows.iter().map(TenantRow::from_row).collect()
}

async fn insert(conn: &mut AnyConnection, row: &TenantRow) -> Result<(), StoreError> {
    let what = || format!("tenant {}", row.slug);
    if by(conn, "slug", &row.slug).await?.is_some()
        || by(conn, "account_key", &row.account_key).await?.is_some()
    {
        return Err(StoreError::Conflict { what: what() });
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO tenants ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(&row.slug)
    .bind(&row.account_key)
    .bind(&row.state)
    .bind(&row.limits)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.suspended_at)
    .execute(&mut *conn)
    .await
    .map_err(|source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Query {
            context: "inserting a tenant",
            source,
        },
    })?;
    Ok(())
}

impl bulk::UniqueRows for TenantRow {
    const TABLE: &'static str = "tenants";
    const COLUMNS: &'static str = COLUMNS;
    const COLUMN_COUNT: usize = 7;
    const CONTEXT: &'static str = "inserting tenants";

    fn unique(&self) -> Vec<(&'static str, &str)> {
        vec![("slug", &self.slug), ("account_key", &self.account_key)]
    }

    fn named(&self) -> String {
        format!("tenant {}", self.slug)
    }

    fn bind<'q>(&'q self, query: bulk::AnyQuery<'q>) -> bulk::AnyQuery<'q> {
        query
            .bind(&self.slug)
            .bind(&self.account_key)
            .bind(&self.state)
            .bind(&self.limits)
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.suspended_at)
    }
}

async fn update(conn: &mut AnyConnection, row: &TenantRow) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE tenants SET state = $1, limits = $2, updated_at = $3, suspended_at = $4 \
         WHERE slug = $5",
    )
    .bind(&row.state)
    .bind(&row.limits)
    .bind(row.updated_at)
    .bind(row.suspended_at)
    .bind(&row.slug)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("updating a tenant"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: format!("tenant {}", row.slug),
        });
    }
    Ok(())
}

async fn delete(conn: &mut AnyConnection, slug: &str) -> Result<(), StoreError> {
    let done = sqlx::query("DELETE FROM tenants WHERE slug = $1")
        .bind(slug)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("deleting a tenant"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: format!("tenant {slug}"),
        });
    }
    Ok(())
}

impl Store {
    /// The tenant with this slug.
    pub async fn tenant(&self, slug: &str) -> Result<Option<TenantRow>, StoreError> {
        by(&mut *self.pooled().await?, "slug", slug).await
    }

    /// The tenant whose account has this public key.
    pub async fn tenant_by_account(&self, key: &str) -> Result<Option<TenantRow>, StoreError> {
        by(&mut *self.pooled().await?, "account_key", key).await
    }

    /// Every tenant (or those in `state`), ordered by slug.
    pub async fn tenants(&self, state: Option<&str>) -> Result<Vec<TenantRow>, StoreError> {
        list(&mut *self.pooled().await?, state).await
    }
}

impl Tx<'_> {
    /// The tenant with this slug.
    pub async fn tenant(&mut self, slug: &str) -> Result<Option<TenantRow>, StoreError> {
        by(self.conn(), "slug", slug).await
    }

    /// Every tenant (or those in `state`), ordered by slug: the platform account is
    /// compiled from this list inside the transaction that changes it.
    pub async fn tenants(&mut self, state: Option<&str>) -> Result<Vec<TenantRow>, StoreError> {
        list(self.conn(), state).await
    }

    /// Inserts a tenant. [`StoreError::Conflict`] if its slug or account is taken.
    pub async fn insert_tenant(&mut self, row: &TenantRow) -> Result<(), StoreError> {
        insert(self.conn(), row).await
    }

    /// Inserts many tenants in multi-row statements. [`StoreError::Conflict`] naming the
    /// first tenant whose slug or account is taken or repeated, with nothing written.
    pub async fn insert_tenants(&mut self, rows: &[TenantRow]) -> Result<(), StoreError> {
        let backend = self.store.backend();
        bulk::insert_unique(self.conn(), backend, rows).await
    }

    /// Replaces a tenant's state, limits and times. [`StoreError::NotFound`] if absent.
    pub async fn update_tenant(&mut self, row: &TenantRow) -> Result<(), StoreError> {
        update(self.conn(), row).await
    }

    /// Deletes a tenant row (its account is the caller's business).
    /// [`StoreError::NotFound`] if absent.
    pub async fn delete_tenant(&mut self, slug: &str) -> Result<(), StoreError> {
        delete(self.conn(), slug).await
    }
}

#[cfg(test)]
mod tests {
    //! Tenant rows on SQLite and on PostgreSQL (never skipped).

    use super::TenantRow;
    use crate::{MasterKey, Store, StoreError};

    fn row(slug: &str) -> TenantRow {
        TenantRow {
            slug: slug.into(),
            account_key: format!("A{slug}"),
            state: "active".into(),
            limits: r#"{"conns":100}"#.into(),
            created_at: 100,
            updated_at: 100,
            suspended_at: None,
        }
    }

    async fn behaviour(store: Store) {
        let mut tx = store.begin().await.unwrap();
        tx.insert_tenant(&row("b")).await.unwrap();
        tx.insert_tenant(&row("a")).await.unwrap();
        let dup = tx.insert_tenant(&row("a")).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        let mut other = row("c");
        other.account_key = "Ab".into();
        let dup = tx.insert_tenant(&other).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        assert_eq!(tx.tenants(None).await.unwrap(), [row("a"), row("b")]);
        tx.commit().await.unwrap();

        assert_eq!(store.tenant("a").await.unwrap(), Some(row("a")));
        assert_eq!(store.tenant_by_account("Ab").await.unwrap(), Some(row("b")));
        assert_eq!(store.tenant("zz").await.unwrap(), None);

        // Suspend b: rolled back, then committed.
        let mut suspended = row("b");
        suspended.state = "suspended".into();
        suspended.limits = r#"{"conns":5}"#.into();
        suspended.suspended_at = Some(400);
        suspended.updated_at = 400;
        {
            let mut tx = store.begin().await.unwrap();
            tx.update_tenant(&suspended).await.unwrap();
        }
        assert_eq!(store.tenant("b").await.unwrap(), Some(row("b")));
        let mut tx = store.begin().await.unwrap();
        tx.update_tenant(&suspended).await.unwrap();
        let missing = tx.update_tenant(&row("zz")).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        tx.commit().await.unwrap();
        assert_eq!(store.tenant("b").await.unwrap(), Some(suspended.clone()));
        assert_eq!(store.tenants(Some("suspended")).await.unwrap(), [suspended]);
        assert_eq!(store.tenants(Some("active")).await.unwrap(), [row("a")]);

        // Many at once, past one statement's rows; a taken or repeated slug or account
        // refuses the whole batch, naming the tenant.
        let many: Vec<TenantRow> = (0..1_200).map(|i| row(&format!("m{i:05}"))).collect();
        let mut tx = store.begin().await.unwrap();
        let err = tx
            .insert_tenants(&[row("m-new"), row("a")])
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "tenant a already exists");
        let mut clash = row("m-other");
        clash.account_key = "Am-new".into();
        let err = tx.insert_tenants(&[row("m-new"), clash]).await.unwrap_err();
        assert_eq!(err.to_string(), "tenant m-other already exists");
        tx.insert_tenants(&many).await.unwrap();
        tx.insert_tenants(&[]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.tenant("m01199").await.unwrap(), Some(row("m01199")));
        assert_eq!(store.tenants(None).await.unwrap().len(), 1_202);
        let mut tx = store.begin().await.unwrap();
        sqlx::query("DELETE FROM tenants WHERE slug LIKE 'm%'")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();

        // Delete.
        let mut tx = store.begin().await.unwrap();
        tx.delete_tenant("a").await.unwrap();
        let missing = tx.delete_tenant("a").await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        tx.commit().await.unwrap();
        assert_eq!(store.tenant("a").await.unwrap(), None);
        assert_eq!(store.tenants(None).await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenants_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenants_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        let store = Store::open(db.url(), MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
        drop(db);
    }
}
