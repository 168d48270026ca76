//! Many rows in one go, inside a caller's [`Tx`]: accounts, users, sealed seeds and outbox
//! messages written with multi-row `INSERT … VALUES (…), (…)` statements, so provisioning a
//! fleet (devices, an org, tenants, a directory sync) costs a few statements per thousand
//! rows instead of several round trips per row.
//!
//! Each call checks first what the single-row writes of [`Tx`] check (the parent exists, no
//! name or public key is taken, in the database or twice in the batch) and fails with the
//! same [`StoreError::Conflict`] / [`StoreError::NotFound`], naming the first offending row,
//! before it writes anything; the transaction stays usable then. Statements are chunked so
//! no statement binds more than [`MAX_BIND_PARAMS`] values (SQLite's limit, the smaller of
//! the two backends') nor inserts more than [`MAX_ROWS_PER_STATEMENT`] rows.

use std::collections::{BTreeSet, HashSet};

use sqlx::AnyConnection;

use crate::ledger::canonical_json;
use crate::org::STATEMENT_PARAMS;
use crate::rows::{AccountRow, UserRow, account_columns, column, user_columns};
use crate::store::now;
use crate::{Backend, StoreError, Tx};

/// The most values one statement binds: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32766 since
/// 3.32); PostgreSQL allows 65535, so the smaller one serves both.
pub const MAX_BIND_PARAMS: usize = 32_766;

/// The most rows one statement inserts, whatever the bind limit allows: a statement
/// stays well under a second on a busy machine (sqlx logs a slower one at WARN with its
/// whole text, tens of kilobytes of placeholders), and the per-statement cost is
/// already negligible at this size.
pub const MAX_ROWS_PER_STATEMENT: usize = 500;

/// How many rows of `columns` values one statement takes: as many as fit under
/// [`MAX_BIND_PARAMS`], at most [`MAX_ROWS_PER_STATEMENT`].
pub(crate) const fn rows_per_statement(columns: usize) -> usize {
    let fit = MAX_BIND_PARAMS / columns;
    if fit < MAX_ROWS_PER_STATEMENT {
        fit
    } else {
        MAX_ROWS_PER_STATEMENT
    }
}

/// A seed to seal and store with [`Tx::put_seeds`]. Borrowed, so the caller keeps the one
/// (zeroizing) copy of the secret.
#[derive(Clone, Copy)]
pub struct NewSeed<'a> {
    /// The public key the seed belongs to (also the seal's associated data).
    pub public_key: &'a str,
    /// `account`, `user`, `signing`, ….
    pub kind: &'a str,
    /// The seed itself.
    pub seed: &'a str,
}

impl std::fmt::Debug for NewSeed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSeed")
            .field("public_key", &self.public_key)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// `($1, $2, …), ($k+1, …)…` for `rows` rows of `columns` placeholders. Correct on both
/// backends, but on SQLite prefer [`values_for`]: SQLite looks a `$N` parameter's name
/// up in a list (when parsing, and sqlx again when binding), so a statement with n
/// named parameters costs O(n²), seconds at thousands of rows.
pub(crate) fn values_clause(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 6);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        }
        out.push(')');
    }
    out
}

/// [`values_clause`] in the backend's cheapest form: anonymous `?` on SQLite (bound in
/// order, no name to look up), `$N` on PostgreSQL.
pub(crate) fn values_for(backend: Backend, rows: usize, columns: usize) -> String {
    match backend {
        Backend::Postgres => values_clause(rows, columns),
        Backend::Sqlite => {
            let row = format!("({})", vec!["?"; columns].join(", "));
            vec![row; rows].join(", ")
        }
    }
}

/// `count` placeholders numbered from `first`, for an `IN (…)` list: `?` on SQLite (see
/// [`values_for`]), `$first, $first+1, …` on PostgreSQL.
pub(crate) fn placeholders_for(backend: Backend, first: usize, count: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(first, count),
        Backend::Sqlite => vec!["?"; count].join(", "),
    }
}

/// `$first, $first+1, …` (`count` placeholders), for an `IN (…)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which of `values` appear in `table.col`, optionally restricted by `scope_col = scope`;
/// one query per chunk.
pub(crate) async fn existing(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &'static str,
    col: &'static str,
    scope: Option<(&'static str, &str)>,
    values: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::new();
    let fixed = usize::from(scope.is_some());
    for chunk in values.chunks(MAX_BIND_PARAMS - fixed) {
        let sql = match scope {
            Some((scope_col, _)) => format!(
                "SELECT {col} AS v FROM {table} WHERE {scope_col} = {} AND {col} IN ({})",
                placeholders_for(backend, 1, 1),
                placeholders_for(backend, 2, chunk.len())
            ),
            None => format!(
                "SELECT {col} AS v FROM {table} WHERE {col} IN ({})",
                placeholders_for(backend, 1, chunk.len())
            ),
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some((_, value)) = scope {
            query = query.bind(value);
        }
        for v in chunk {
            query = query.bind(*v);
        }
        for row in query
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::query("looking up existing rows"))?
        {
            found.insert(column::<String>(&row, "v")?);
        }
    }
    Ok(found)
}

/// The first value of `values` that is in `taken` or repeats an earlier one.
pub(crate) fn first_clash<'v>(values: &[&'v str], taken: &HashSet<String>) -> Option<&'v str> {
    let mut seen = HashSet::with_capacity(values.len());
    values
        .iter()
        .find(|v| taken.contains(**v) || !seen.insert(**v))
        .copied()
}

/// A query being built for [`insert_unique`], with its bound values so far.
pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// A table whose rows [`insert_unique`] writes: the row type says its table, its
/// columns, which of them must be unique, and how it binds its values.
pub(crate) trait UniqueRows: Sized {
    /// The table.
    const TABLE: &'static str;
    /// Its columns, comma-separated, in the order [`UniqueRows::bind`] binds them.
    const COLUMNS: &'static str;
    /// How many columns.
    const COLUMN_COUNT: usize;
    /// What the statement is doing, for the error (`"inserting devices"`).
    const CONTEXT: &'static str;
    /// The unique columns and each row's value of them.
    fn unique(&self) -> Vec<(&'static str, &str)>;
    /// The row as a conflict names it (`device d-1`).
    fn named(&self) -> String;
    /// Binds the row's values, in [`UniqueRows::COLUMNS`] order.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Inserts `rows` in multi-row statements, after checking that no value of a unique
/// column is taken in the table or repeated in the batch: [`StoreError::Conflict`]
/// naming the first such row, with nothing written.
pub(crate) async fn insert_unique<R: UniqueRows>(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[R],
) -> Result<(), StoreError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let columns: Vec<&'static str> = first.unique().iter().map(|(c, _)| *c).collect();
    let mut taken = Vec::with_capacity(columns.len());
    for (i, col) in columns.iter().enumerate() {
        let values: Vec<&str> = rows.iter().map(|r| r.unique()[i].1).collect();
        taken.push(existing(conn, backend, R::TABLE, col, None, &values).await?);
    }
    let mut seen: Vec<HashSet<&str>> = vec![HashSet::with_capacity(rows.len()); columns.len()];
    let clash = rows.iter().find(|r| {
        r.unique()
            .iter()
            .enumerate()
            .any(|(i, (_, v))| taken[i].contains(*v) || !seen[i].insert(*v))
    });
    if let Some(row) = clash {
        return Err(StoreError::Conflict { what: row.named() });
    }
    for chunk in rows.chunks(rows_per_statement(R::COLUMN_COUNT)) {
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            R::TABLE,
            R::COLUMNS,
            values_for(backend, chunk.len(), R::COLUMN_COUNT)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = row.bind(query);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(|source| match &source {
                sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                    what: format!("a row of the batch ({})", R::TABLE),
                },
                _ => StoreError::Query {
                    context: R::CONTEXT,
                    source,
                },
            })?;
    }
    Ok(())
}

/// Inserts `rows` into `table` as they are, in multi-row statements of at most
/// [`STATEMENT_PARAMS`] values, `bind` binding one row's values in `columns` order. For
/// batches whose caller has already ruled out every conflict from what it read up front
/// (a failed INSERT would abort a PostgreSQL transaction); a uniqueness violation anyway
/// (a concurrent writer) is a [`StoreError::Conflict`].
pub(crate) async fn insert_rows<'r, T>(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &'static str,
    columns: &[&'static str],
    context: &'static str,
    rows: &'r [T],
    bind: fn(AnyQuery<'r>, &'r T) -> AnyQuery<'r>,
) -> Result<(), StoreError> {
    let per = (STATEMENT_PARAMS / columns.len()).max(1);
    for chunk in rows.chunks(per) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            values_for(backend, chunk.len(), columns.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            query = bind(query, row);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(|source| match &source {
                sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                    what: format!("a row of the batch ({table})"),
                },
                _ => StoreError::Query { context, source },
            })?;
    }
    Ok(())
}

/// Maps a failed insert: a uniqueness violation (a concurrent writer got there between the
/// checks and the write) is a [`StoreError::Conflict`].
fn insert_error(
    context: &'static str,
    what: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            what: what.to_owned(),
        },
        _ => StoreError::Query { context, source },
    }
}

impl Tx<'_> {
    /// Inserts `rows` (accounts), in multi-row statements. Checks first, writing nothing on
    /// failure: every operator exists ([`StoreError::NotFound`]), no public key or (operator,
    /// name) is taken or repeated ([`StoreError::Conflict`] naming the first such account).
    pub async fn insert_accounts(&mut self, rows: &[AccountRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let backend = self.store.inner.backend;
        let conn = self.conn();
        let operators: BTreeSet<&str> = rows.iter().map(|r| r.operator.as_str()).collect();
        let operator_list: Vec<&str> = operators.iter().copied().collect();
        let known = existing(
            conn,
            backend,
            "operators",
            "public_key",
            None,
            &operator_list,
        )
        .await?;
        if let Some(missing) = operator_list.iter().find(|o| !known.contains(**o)) {
            return Err(StoreError::NotFound {
                what: format!("operator {missing}"),
            });
        }
        let keys: Vec<&str> = rows.iter().map(|r| r.public_key.as_str()).collect();
        let taken = existing(conn, backend, "accounts", "public_key", None, &keys).await?;
        if let Some(key) = first_clash(&keys, &taken) {
            return Err(StoreError::Conflict {
                what: format!("account {key}"),
            });
        }
        for operator in &operators {
            let names: Vec<&str> = rows
                .iter()
                .filter(|r| r.operator == *operator)
                .map(|r| r.name.as_str())
                .collect();
            let taken = existing(
                conn,
                backend,
                "accounts",
                "name",
                Some(("operator", operator)),
                &names,
            )
            .await?;
            if let Some(name) = first_clash(&names, &taken) {
                return Err(StoreError::Conflict {
                    what: format!("account \"{name}\" of operator {operator}"),
                });
            }
        }
        const COLUMNS: usize = 7;
        for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
            let sql = format!(
                concat!("INSERT INTO accounts (", account_columns!(), ") VALUES {}"),
                values_for(backend, chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(&row.public_key)
                    .bind(&row.operator)
                    .bind(&row.name)
                    .bind(canonical_json(&row.spec))
                    .bind(&row.jwt)
                    .bind(row.created_at)
                    .bind(row.updated_at);
            }
            query.execute(&mut *conn).await.map_err(insert_error(
                "inserting accounts",
                "an account of the batch",
            ))?;
        }
        Ok(())
    }

    /// Inserts `rows` (users), in multi-row statements. Checks first, writing nothing on
    /// failure: every account exists (it may have been inserted earlier in this
    /// transaction; [`StoreError::NotFound`]), no public key or (account, name) is taken or
    /// repeated ([`StoreError::Conflict`] naming the first such user).
    pub async fn insert_users(&mut self, rows: &[UserRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let backend = self.store.inner.backend;
        let conn = self.conn();
        let accounts: BTreeSet<&str> = rows.iter().map(|r| r.account.as_str()).collect();
        let account_list: Vec<&str> = accounts.iter().copied().collect();
        let known = existing(conn, backend, "accounts", "public_key", None, &account_list).await?;
        if let Some(missing) = account_list.iter().find(|a| !known.contains(**a)) {
            return Err(StoreError::NotFound {
                what: format!("account {missing}"),
            });
        }
        let keys: Vec<&str> = rows.iter().map(|r| r.public_key.as_str()).collect();
        let taken = existing(conn, backend, "users", "public_key", None, &keys).await?;
        if let Some(key) = first_clash(&keys, &taken) {
            return Err(StoreError::Conflict {
                what: format!("user {key}"),
            });
        }
        // Names are unique per account. A batch usually spreads over many accounts with a
        // user or two each (devices), so check (account, name) pairs across the batch: one
        // query per chunk of accounts rather than one per account.
        let mut pairs = HashSet::with_capacity(rows.len());
        for row in rows {
            if !pairs.insert((row.account.as_str(), row.name.as_str())) {
                return Err(StoreError::Conflict {
                    what: format!("user \"{}\" of account {}", row.name, row.account),
                });
            }
        }
        for chunk in account_list.chunks(MAX_BIND_PARAMS) {
            let sql = format!(
                "SELECT account, name FROM users WHERE account IN ({})",
                placeholders_for(backend, 1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in chunk {
                query = query.bind(*a);
            }
            for row in query
                .fetch_all(&mut *conn)
                .await
                .map_err(StoreError::query("looking up existing users"))?
            {
                let account: String = column(&row, "account")?;
                let name: String = column(&row, "name")?;
                if pairs.contains(&(account.as_str(), name.as_str())) {
                    return Err(StoreError::Conflict {
                        what: format!("user \"{name}\" of account {account}"),
                    });
                }
            }
        }
        const COLUMNS: usize = 9;
        for chunk in rows.chunks(rows_per_statement(COLUMNS)) {
            let sql = format!(
                concat!("INSERT INTO users (", user_columns!(), ") VALUES {}"),
                values_for(backend, chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                query = query
                    .bind(&row.public_key)
                    .bind(&row.account)
                    .bind(&row.name)
                    .bind(canonical_json(&row.spec))
                    .bind(&row.jwt)
                    .bind(row.signing_key.as_deref())
                    .bind(row.revoked_at)
                    .bind(row.created_at)
                    .bind(row.updated_at);
            }
            query
                .execute(&mut *conn)
                .await
                .map_err(insert_error("inserting users", "a user of the batch"))?;
        }
        Ok(())
    }

    /// Seals each seed under the master key (bound to its public key, as [`Tx::put_seed`]
    /// does) and stores them in multi-row statements. [`StoreError::Conflict`] naming the
    /// first public key that already has a seed or repeats in the batch; nothing is
    /// written then.
    pub async fn put_seeds(&mut self, seeds: &[NewSeed<'_>]) -> Result<(), StoreError> {
        if seeds.is_empty() {
            return Ok(());
        }
        let backend = self.store.inner.backend;
        let keys: Vec<&str> = seeds.iter().map(|s| s.public_key).collect();
        let taken = existing(self.conn(), backend, "nkeys", "public_key", None, &keys).await?;
        if let Some(key) = first_clash(&keys, &taken) {
            return Err(StoreError::Conflict {
                what: format!("seed for {key}"),
            });
        }
        let master = &self.store.inner.key;
        let sealed = seeds
            .iter()
            .map(|s| master.seal(s.public_key, s.seed.as_bytes()))
            .collect::<Result<Vec<String>, _>>()?;
        let at = now();
        const COLUMNS: usize = 4;
        let per = rows_per_statement(COLUMNS);
        for (chunk, sealed) in seeds.chunks(per).zip(sealed.chunks(per)) {
            let sql = format!(
                "INSERT INTO nkeys (public_key, kind, sealed_seed, created_at) VALUES {}",
                values_for(backend, chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (seed, sealed) in chunk.iter().zip(sealed) {
                query = query
                    .bind(seed.public_key)
                    .bind(seed.kind)
                    .bind(sealed.as_str())
                    .bind(at);
            }
            query
                .execute(self.conn())
                .await
                .map_err(insert_error("storing sealed seeds", "a seed of the batch"))?;
        }
        Ok(())
    }

    /// Enqueues `messages` (topic, payload) for NATS, due now, in order; returns their ids
    /// (consecutive, in the order given).
    pub async fn enqueue_many<T, P>(&mut self, messages: &[(T, P)]) -> Result<Vec<i64>, StoreError>
    where
        T: AsRef<str>,
        P: AsRef<str>,
    {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        self.lock_sequences().await?;
        let backend = self.store.inner.backend;
        let conn = self.conn();
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last_id FROM outbox")
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::query("reading the last outbox id"))?;
        let first = column::<i64>(&row, "last_id")? + 1;
        let at = now();
        const COLUMNS: usize = 5;
        let mut id = first;
        for chunk in messages.chunks(rows_per_statement(COLUMNS)) {
            let sql = format!(
                "INSERT INTO outbox (id, created_at, topic, payload, next_attempt_at) VALUES {}",
                values_for(backend, chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (topic, payload) in chunk {
                query = query
                    .bind(id)
                    .bind(at)
                    .bind(topic.as_ref())
                    .bind(payload.as_ref())
                    .bind(at);
                id += 1;
            }
            query
                .execute(&mut *conn)
                .await
                .map_err(StoreError::query("enqueueing outbox messages"))?;
        }
        Ok((first..id).collect())
    }
}

#[cfg(test)]
mod tests {
    //! Bulk writes on SQLite and PostgreSQL (never skipped), across the chunk boundary.

    use super::*;
    use crate::{MasterKey, OperatorRow, Store};

    #[test]
    fn values_and_chunks() {
        assert_eq!(values_clause(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(values_for(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(values_for(Backend::Postgres, 1, 2), "($1, $2)");
        assert_eq!(placeholders_for(Backend::Sqlite, 2, 3), "?, ?, ?");
        assert_eq!(rows_per_statement(9), MAX_ROWS_PER_STATEMENT);
        assert_eq!(rows_per_statement(100), 327);
        assert!(rows_per_statement(7) * 7 <= MAX_BIND_PARAMS);
    }

    fn account(i: usize) -> AccountRow {
        AccountRow {
            public_key: format!("A{i:06}"),
            operator: "OP".into(),
            name: format!("acc-{i}"),
            spec: serde_json::json!({ "n": i }),
            jwt: format!("jwt-a-{i}"),
            created_at: 10,
            updated_at: 11,
        }
    }

    fn user(i: usize) -> UserRow {
        UserRow {
            public_key: format!("U{i:06}"),
            account: format!("A{:06}", i % 7),
            name: format!("user-{i}"),
            spec: serde_json::json!({ "u": i }),
            jwt: format!("jwt-u-{i}"),
            signing_key: i.is_multiple_of(2).then(|| "ASK".to_owned()),
            revoked_at: None,
            created_at: 12,
            updated_at: 13,
        }
    }

    async fn behaviour(store: Store) {
        let mut tx = store.begin().await.unwrap();
        tx.insert_operator(&OperatorRow {
            public_key: "OP".into(),
            name: "op".into(),
            signing_key: "OSK".into(),
            system_account: "ASYS".into(),
            jwt: "jwt-o".into(),
            created_at: 1,
            updated_at: 1,
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();

        // More rows than one statement holds, for each table.
        let accounts: Vec<AccountRow> = (0..5_000).map(account).collect();
        let users: Vec<UserRow> = (0..4_000).map(user).collect();
        let seeds: Vec<(String, String)> = (0..8_200)
            .map(|i| (format!("K{i:06}"), format!("SEED-{i}")))
            .collect();
        let messages: Vec<(&str, String)> = (0..6_600)
            .map(|i| ("resolver.update", format!("p{i}")))
            .collect();

        let mut tx = store.begin().await.unwrap();
        tx.enqueue("first", "x").await.unwrap();
        tx.insert_accounts(&accounts).await.unwrap();
        tx.insert_users(&users).await.unwrap();
        let new: Vec<NewSeed<'_>> = seeds
            .iter()
            .map(|(k, s)| NewSeed {
                public_key: k,
                kind: "user",
                seed: s,
            })
            .collect();
        tx.put_seeds(&new).await.unwrap();
        let ids = tx.enqueue_many(&messages).await.unwrap();
        assert_eq!(ids, (2..2 + 6_600).collect::<Vec<i64>>());

        // Conflicts: named, nothing written, the transaction still usable.
        let mut again = vec![account(5_000), account(17)];
        again[1].public_key = "A999999".into();
        let err = tx.insert_accounts(&again).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "account \"acc-17\" of operator OP already exists"
        );
        let err = tx
            .insert_accounts(&[account(5_001), account(5_001)])
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "account A005001 already exists");
        let mut orphan = account(5_002);
        orphan.operator = "ONOPE".into();
        let err = tx.insert_accounts(&[orphan]).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        let mut dup = user(4_000);
        dup.name = "user-7".into();
        dup.account = user(7).account;
        let err = tx.insert_users(&[user(4_001), dup]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "user \"user-7\" of account A000000 already exists"
        );
        let mut orphan = user(4_002);
        orphan.account = "ANOPE".into();
        let err = tx.insert_users(&[orphan]).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
        let err = tx
            .put_seeds(&[NewSeed {
                public_key: "K008199",
                kind: "user",
                seed: "S",
            }])
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "seed for K008199 already exists");
        tx.commit().await.unwrap();

        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.accounts, counts.users, counts.nkeys),
            (5_000, 4_000, 8_200)
        );
        assert_eq!(counts.outbox_pending, 6_601);
        assert_eq!(
            store.account("A004999").await.unwrap(),
            Some(account(4_999))
        );
        assert_eq!(store.user("U003999").await.unwrap(), Some(user(3_999)));
        assert_eq!(store.user("U000000").await.unwrap(), Some(user(0)));
        assert_eq!(store.seed("K008199").await.unwrap().as_str(), "SEED-8199");
        assert_eq!(store.seed("K000000").await.unwrap().as_str(), "SEED-0");
        let last = store.outbox_message(6_601).await.unwrap().unwrap();
        assert_eq!(
            (last.topic.as_str(), last.payload.as_str()),
            ("resolver.update", "p6599")
        );
        // Single-row writes continue the numbering.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.enqueue("after", "y").await.unwrap(), 6_602);
        tx.commit().await.unwrap();

        // Empty batches are no-ops.
        let mut tx = store.begin().await.unwrap();
        tx.insert_accounts(&[]).await.unwrap();
        tx.insert_users(&[]).await.unwrap();
        tx.put_seeds(&[]).await.unwrap();
        assert!(tx.enqueue_many::<&str, &str>(&[]).await.unwrap().is_empty());
        tx.commit().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        let store = Store::open(db.url(), MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
        drop(db);
    }
}
