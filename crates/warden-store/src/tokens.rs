//! API tokens (table `api_tokens`): the bearer tokens of Warden's HTTP API, stored by the
//! SHA-256 of their secret only.
//!
//! The store keeps rows as given: it never sees a token's secret, and the caller (the
//! `warden` crate) generates ids, hashes and scopes. Reads are on [`crate::Store`], writes
//! on [`crate::Tx`] (so creating or revoking a token and its ledger event commit together),
//! except [`crate::Store::touch_api_token`], a best-effort "last used" stamp.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::rows::column;

/// One API token as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRow {
    /// Public identifier (shown in lists, used to revoke).
    pub id: String,
    /// Name given by whoever created it.
    pub name: String,
    /// SHA-256 of the token's secret, lowercase hex; unique.
    pub hash: String,
    /// Scopes, a comma list (interpreted by the caller).
    pub scopes: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Expiry, unix seconds; `None`: never expires.
    pub expires_at: Option<i64>,
    /// When it was revoked, unix seconds; `None` while it is not.
    pub revoked_at: Option<i64>,
    /// When it last authenticated a request (approximately), unix seconds.
    pub last_used_at: Option<i64>,
    /// The directory user the token acts as, if it is bound to one.
    pub dir_user: Option<String>,
}

impl std::fmt::Debug for ApiTokenRow {
    /// Everything but the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTokenRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("last_used_at", &self.last_used_at)
            .field("dir_user", &self.dir_user)
            .finish_non_exhaustive()
    }
}

impl ApiTokenRow {
    fn from_row(row: &AnyRow) -> Result<ApiTokenRow, StoreError> {
        Ok(ApiTokenRow {
            id: column(row, "id")?,
            name: column(row, "name")?,
            hash: column(row, "hash")?,
            scopes: column(row, "scopes")?,
            created_at: column(row, "created_at")?,
            expires_at: column(row, "expires_at")?,
            revoked_at: column(row, "revoked_at")?,
            last_used_at: column(row, "last_used_at")?,
            dir_user: column(row, "dir_user")?,
        })
    }
}

const COLUMNS: &str =
    "id, name, hash, scopes, created_at, expires_at, revoked_at, last_used_at, dir_user";

/// Inserts a token. [`StoreError::Conflict`] if its id or hash is taken.
pub(crate) async fn insert(conn: &mut AnyConnection, row: &ApiTokenRow) -> Result<(), StoreError> {
    let taken = sqlx::query("SELECT id FROM api_tokens WHERE id = $1 OR hash = $2")
        .bind(&row.id)
        .bind(&row.hash)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("looking up an API token"))?;
    let what = || format!("API token {}", row.id);
    if taken.is_some() {
        return Err(StoreError::Conflict { what: what() });
    }
    sqlx::query(
        "INSERT INTO api_tokens (id, name, hash, scopes, created_at, expires_at, revoked_at, \
         last_used_at, dir_user) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.hash)
    .bind(&row.scopes)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.revoked_at)
    .bind(row.last_used_at)
    .bind(&row.dir_user)
    .execute(&mut *conn)
    .await
    .map_err(|source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Query {
            context: "inserting an API token",
            source,
        },
    })?;
    Ok(())
}

/// The token with this id.
pub(crate) async fn by_id(
    conn: &mut AnyConnection,
    id: &str,
) -> Result<Option<ApiTokenRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading an API token"))?
    .as_ref()
    .map(ApiTokenRow::from_row)
    .transpose()
}

/// The token whose secret hashes to `hash`.
pub(crate) async fn by_hash(
    conn: &mut AnyConnection,
    hash: &str,
) -> Result<Option<ApiTokenRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE hash = $1"
    )))
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("looking up an API token"))?
    .as_ref()
    .map(ApiTokenRow::from_row)
    .transpose()
}

/// Every token, oldest first (revoked and expired ones included).
pub(crate) async fn list(conn: &mut AnyConnection) -> Result<Vec<ApiTokenRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::query("listing API tokens"))?
    .iter()
    .map(ApiTokenRow::from_row)
    .collect()
}

/// Marks a token revoked at `at`. [`StoreError::NotFound`] if absent, [`StoreError::Conflict`]
/// if already revoked.
pub(crate) async fn revoke(conn: &mut AnyConnection, id: &str, at: i64) -> Result<(), StoreError> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::query("revoking an API token"))?;
    if done.rows_affected() == 0 {
        return Err(match by_id(conn, id).await? {
            Some(_) => StoreError::Conflict {
                what: format!("revocation of API token {id}"),
            },
            None => StoreError::NotFound {
                what: format!("API token {id}"),
            },
        });
    }
    Ok(())
}

/// Sets `last_used_at` to `at` unless it is already at or after `not_before` (so a busy token
/// costs one write per interval, not one per request). Returns whether a row changed.
pub(crate) async fn touch(
    conn: &mut AnyConnection,
    id: &str,
    at: i64,
    not_before: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE api_tokens SET last_used_at = $1 \
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(at)
    .bind(id)
    .bind(not_before)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("recording the use of an API token"))?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    //! Token rows on SQLite and on PostgreSQL (never skipped: `PgDatabase` panics if
    //! PostgreSQL is unreachable).

    use super::ApiTokenRow;
    use crate::{MasterKey, NewEvent, Store, StoreError};

    fn row(id: &str, hash: &str) -> ApiTokenRow {
        ApiTokenRow {
            id: id.into(),
            name: format!("name of {id}"),
            hash: hash.into(),
            scopes: "read,write".into(),
            created_at: 1_700_000_000,
            expires_at: Some(1_800_000_000),
            revoked_at: None,
            last_used_at: None,
            // One of the two bound to a directory user, so both forms round-trip.
            dir_user: (id == "tok_b").then(|| "alice".to_string()),
        }
    }

    async fn behaviour(store: Store) {
        // Insert two, in one transaction with a ledger event.
        let mut tx = store.begin().await.unwrap();
        tx.insert_api_token(&row("tok_a", "aa")).await.unwrap();
        tx.insert_api_token(&row("tok_b", "bb")).await.unwrap();
        tx.append_event(&NewEvent {
            actor: "test".into(),
            action: "token.create".into(),
            object_kind: "api_token".into(),
            object_key: "tok_a".into(),
            summary: serde_json::json!({"name": "a"}),
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();

        assert_eq!(
            store.api_token_by_hash("aa").await.unwrap(),
            Some(row("tok_a", "aa"))
        );
        assert_eq!(store.api_token_by_hash("zz").await.unwrap(), None);
        assert_eq!(
            store.api_token("tok_b").await.unwrap(),
            Some(row("tok_b", "bb"))
        );
        let ids: Vec<String> = store
            .api_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["tok_a", "tok_b"]);

        // Duplicates (id or hash) conflict and write nothing.
        let mut tx = store.begin().await.unwrap();
        let dup = tx.insert_api_token(&row("tok_a", "cc")).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        let dup = tx.insert_api_token(&row("tok_c", "bb")).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        tx.rollback().await.unwrap();
        assert_eq!(store.api_tokens().await.unwrap().len(), 2);

        // A dropped transaction leaves nothing.
        {
            let mut tx = store.begin().await.unwrap();
            tx.insert_api_token(&row("tok_d", "dd")).await.unwrap();
        }
        assert_eq!(store.api_token("tok_d").await.unwrap(), None);

        // Touch: once per interval.
        assert!(store.touch_api_token("tok_a", 100, 40).await.unwrap());
        assert!(!store.touch_api_token("tok_a", 120, 60).await.unwrap());
        assert!(store.touch_api_token("tok_a", 200, 140).await.unwrap());
        let a = store.api_token("tok_a").await.unwrap().unwrap();
        assert_eq!(a.last_used_at, Some(200));
        assert!(!store.touch_api_token("tok_x", 300, 0).await.unwrap());

        // Revoke: once; unknown ids are NotFound.
        let mut tx = store.begin().await.unwrap();
        tx.revoke_api_token("tok_b", 500).await.unwrap();
        assert_eq!(
            tx.api_token("tok_b").await.unwrap().unwrap().revoked_at,
            Some(500)
        );
        let again = tx.revoke_api_token("tok_b", 600).await;
        assert!(
            matches!(again, Err(StoreError::Conflict { .. })),
            "{again:?}"
        );
        let missing = tx.revoke_api_token("tok_x", 600).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        tx.commit().await.unwrap();
        assert_eq!(
            store.api_token("tok_b").await.unwrap().unwrap().revoked_at,
            Some(500)
        );
        assert!(store.verify_ledger().await.unwrap().is_intact());

        // The Debug form never shows the hash.
        let shown = format!("{:?}", row("tok_e", "secret-hash-value"));
        assert!(!shown.contains("secret-hash-value"), "{shown}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_tokens_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_tokens_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        let store = Store::open(db.url(), MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
        drop(db);
    }
}
