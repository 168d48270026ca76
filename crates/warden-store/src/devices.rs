//! Devices of a fleet (table `devices`): id, the keys of its account and current user,
//! lifecycle state, metadata and the time of each transition. The account and user
//! themselves are ordinary rows of `accounts` and `users`.
//!
//! Reads are on [`crate::Store`] and [`crate::Tx`]; writes on [`crate::Tx`], so a device,
//! its account, user, ledger event and outbox rows commit together. The one write outside
//! a caller's transaction is [`crate::Store::mark_device_active`], an observation.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::rows::column;
use crate::{Store, StoreError, Tx, bulk};

/// One device as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Device id (validated by the caller), unique.
    pub id: String,
    /// Public key of its account, unique.
    pub account_key: String,
    /// Public key of its current user.
    pub user_key: String,
    /// `provisioned`, `active` or `revoked`.
    pub state: String,
    /// Metadata, a JSON object as text.
    pub meta: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// First connection observed.
    pub activated_at: Option<i64>,
    /// Last user key rotation.
    pub rotated_at: Option<i64>,
    /// Last revocation.
    pub revoked_at: Option<i64>,
    /// Last restore.
    pub restored_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
}

const COLUMNS: &str = "id, account_key, user_key, state, meta, created_at, activated_at, \
                       rotated_at, revoked_at, restored_at, updated_at";

impl DeviceRow {
    fn from_row(row: &AnyRow) -> Result<DeviceRow, StoreError> {
        Ok(DeviceRow {
            id: column(row, "id")?,
            account_key: column(row, "account_key")?,
            user_key: column(row, "user_key")?,
            state: column(row, "state")?,
            meta: column(row, "meta")?,
            created_at: column(row, "created_at")?,
            activated_at: column(row, "activated_at")?,
            rotated_at: column(row, "rotated_at")?,
            revoked_at: column(row, "revoked_at")?,
            restored_at: column(row, "restored_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

async fn by(
    conn: &mut AnyConnection,
    column_name: &'static str,
    value: &str,
) -> Result<Option<DeviceRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM devices WHERE {column_name} = $1"
    )))
    .bind(value)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading a device"))?
    .as_ref()
    .map(DeviceRow::from_row)
    .transpose()
}

async fn list(conn: &mut AnyConnection, state: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
    let rows = match state {
        Some(s) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM devices WHERE state = $1 ORDER BY id"
            )))
            .bind(s)
            .fetch_all(&mut *conn)
            .await
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM devices ORDER BY id"
            )))
            .fetch_all(&mut *conn)
            .await
        }
    }
    .map_err(StoreError::query("listing devices"))?;
    rows.iter().map(DeviceRow::from_row).collect()
}

async fn insert(conn: &mut AnyConnection, row: &DeviceRow) -> Result<(), StoreError> {
    let what = || format!("device {}", row.id);
    if by(conn, "id", &row.id).await?.is_some()
        || by(conn, "account_key", &row.account_key).await?.is_some()
    {
        return Err(StoreError::Conflict { what: what() });
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO devices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )))
    .bind(&row.id)
    .bind(&row.account_key)
    .bind(&row.user_key)
    .bind(&row.state)
    .bind(&row.meta)
    .bind(row.created_at)
    .bind(row.activated_at)
    .bind(row.rotated_at)
    .bind(row.revoked_at)
    .bind(row.restored_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(|source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict { what: what() }
        }
        _ => StoreError::Query {
            context: "inserting a device",
            source,
        },
    })?;
    Ok(())
}

impl bulk::UniqueRows for DeviceRow {
    const TABLE: &'static str = "devices";
    const COLUMNS: &'static str = COLUMNS;
    const COLUMN_COUNT: usize = 11;
    const CONTEXT: &'static str = "inserting devices";

    fn unique(&self) -> Vec<(&'static str, &str)> {
        vec![("id", &self.id), ("account_key", &self.account_key)]
    }

    fn named(&self) -> String {
        format!("device {}", self.id)
    }

    fn bind<'q>(&'q self, query: bulk::AnyQuery<'q>) -> bulk::AnyQuery<'q> {
        query
            .bind(&self.id)
            .bind(&self.account_key)
            .bind(&self.user_key)
            .bind(&self.state)
            .bind(&self.meta)
            .bind(self.created_at)
            .bind(self.activated_at)
            .bind(self.rotated_at)
            .bind(self.revoked_at)
            .bind(self.restored_at)
            .bind(self.updated_at)
    }
}

async fn update(conn: &mut AnyConnection, row: &DeviceRow) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE devices SET user_key = $1, state = $2, meta = $3, activated_at = $4, \
         rotated_at = $5, revoked_at = $6, restored_at = $7, updated_at = $8 WHERE id = $9",
    )
    .bind(&row.user_key)
    .bind(&row.state)
    .bind(&row.meta)
    .bind(row.activated_at)
    .bind(row.rotated_at)
    .bind(row.revoked_at)
    .bind(row.restored_at)
    .bind(row.updated_at)
    .bind(&row.id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("updating a device"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: format!("device {}", row.id),
        });
    }
    Ok(())
}

async fn ids(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    sqlx::query("SELECT id FROM devices ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("listing device ids"))?
        .iter()
        .map(|r| column(r, "id"))
        .collect()
}

impl Store {
    /// The device with this id.
    pub async fn device(&self, id: &str) -> Result<Option<DeviceRow>, StoreError> {
        by(&mut *self.pooled().await?, "id", id).await
    }

    /// The device whose account has this public key.
    pub async fn device_by_account(&self, key: &str) -> Result<Option<DeviceRow>, StoreError> {
        by(&mut *self.pooled().await?, "account_key", key).await
    }

    /// Every device (or those in `state`), ordered by id.
    pub async fn devices(&self, state: Option<&str>) -> Result<Vec<DeviceRow>, StoreError> {
        list(&mut *self.pooled().await?, state).await
    }

    /// Account keys of revoked devices (they must not be pushed or preloaded).
    pub async fn revoked_device_accounts(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT account_key FROM devices WHERE state = 'revoked'")
            .fetch_all(&mut *self.pooled().await?)
            .await
            .map_err(StoreError::query("listing revoked devices"))?
            .iter()
            .map(|r| column(r, "account_key"))
            .collect()
    }

    /// Records the first connection of a provisioned device: state `active` at `at`.
    /// Returns the device id when a row changed (never for revoked or active ones).
    pub async fn mark_device_active(
        &self,
        account_key: &str,
        at: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.pooled().await?;
        let done = sqlx::query(
            "UPDATE devices SET state = 'active', activated_at = $1, updated_at = $1 \
             WHERE account_key = $2 AND state = 'provisioned'",
        )
        .bind(at)
        .bind(account_key)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("marking a device active"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(by(&mut conn, "account_key", account_key)
            .await?
            .map(|d| d.id))
    }
}

impl Tx<'_> {
    /// The device with this id.
    pub async fn device(&mut self, id: &str) -> Result<Option<DeviceRow>, StoreError> {
        by(self.conn(), "id", id).await
    }

    /// Every device id, ordered.
    pub async fn device_ids(&mut self) -> Result<Vec<String>, StoreError> {
        ids(self.conn()).await
    }

    /// Inserts a device. [`StoreError::Conflict`] if its id or account is taken.
    pub async fn insert_device(&mut self, row: &DeviceRow) -> Result<(), StoreError> {
        insert(self.conn(), row).await
    }

    /// Inserts many devices (multi-row statements). [`StoreError::Conflict`] naming the
    /// first device whose id or account is taken or repeats in `rows`; nothing is
    /// written then.
    pub async fn insert_devices(&mut self, rows: &[DeviceRow]) -> Result<(), StoreError> {
        let backend = self.store.backend();
        bulk::insert_unique(self.conn(), backend, rows).await
    }

    /// Replaces a device's mutable fields. [`StoreError::NotFound`] if absent.
    pub async fn update_device(&mut self, row: &DeviceRow) -> Result<(), StoreError> {
        update(self.conn(), row).await
    }
}

#[cfg(test)]
mod tests {
    //! Device rows on SQLite and on PostgreSQL (never skipped).

    use super::DeviceRow;
    use crate::{MasterKey, Store, StoreError};

    fn row(id: &str) -> DeviceRow {
        DeviceRow {
            id: id.into(),
            account_key: format!("A{id}"),
            user_key: format!("U{id}"),
            state: "provisioned".into(),
            meta: r#"{"site":"x"}"#.into(),
            created_at: 100,
            activated_at: None,
            rotated_at: None,
            revoked_at: None,
            restored_at: None,
            updated_at: 100,
        }
    }

    async fn behaviour(store: Store) {
        let mut tx = store.begin().await.unwrap();
        tx.insert_device(&row("b")).await.unwrap();
        tx.insert_device(&row("a")).await.unwrap();
        let dup = tx.insert_device(&row("a")).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        let mut other = row("c");
        other.account_key = "Ab".into();
        let dup = tx.insert_device(&other).await;
        assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
        assert_eq!(tx.device_ids().await.unwrap(), ["a", "b"]);
        tx.commit().await.unwrap();

        // Many at once, past one statement's rows (bulk::MAX_ROWS_PER_STATEMENT);
        // a taken or repeated id or account refuses the batch, naming the device.
        let many: Vec<DeviceRow> = (0..6_000).map(|i| row(&format!("m{i:05}"))).collect();
        let mut tx = store.begin().await.unwrap();
        let err = tx
            .insert_devices(&[row("m-new"), row("a")])
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "device a already exists");
        let mut clash = row("m-other");
        clash.account_key = "Am-new".into();
        let err = tx.insert_devices(&[row("m-new"), clash]).await.unwrap_err();
        assert_eq!(err.to_string(), "device m-other already exists");
        tx.insert_devices(&many).await.unwrap();
        tx.insert_devices(&[]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.device("m05999").await.unwrap(), Some(row("m05999")));
        assert_eq!(store.device("m00000").await.unwrap(), Some(row("m00000")));
        assert_eq!(store.devices(None).await.unwrap().len(), 6_002);
        let mut tx = store.begin().await.unwrap();
        sqlx::query("DELETE FROM devices WHERE id LIKE 'm%'")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();

        assert_eq!(store.device("a").await.unwrap(), Some(row("a")));
        assert_eq!(store.device_by_account("Ab").await.unwrap(), Some(row("b")));
        assert_eq!(store.device("zz").await.unwrap(), None);

        // Observation: once, only from provisioned.
        assert_eq!(
            store
                .mark_device_active("Aa", 200)
                .await
                .unwrap()
                .as_deref(),
            Some("a")
        );
        assert_eq!(store.mark_device_active("Aa", 300).await.unwrap(), None);
        assert_eq!(store.mark_device_active("Azz", 300).await.unwrap(), None);
        let a = store.device("a").await.unwrap().unwrap();
        assert_eq!((a.state.as_str(), a.activated_at), ("active", Some(200)));

        // Update, rolled back and committed.
        let mut revoked = row("b");
        revoked.state = "revoked".into();
        revoked.revoked_at = Some(400);
        revoked.updated_at = 400;
        {
            let mut tx = store.begin().await.unwrap();
            tx.update_device(&revoked).await.unwrap();
        }
        assert_eq!(store.device("b").await.unwrap(), Some(row("b")));
        let mut tx = store.begin().await.unwrap();
        tx.update_device(&revoked).await.unwrap();
        let missing = tx.update_device(&row("zz")).await;
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
        tx.commit().await.unwrap();
        assert_eq!(store.mark_device_active("Ab", 500).await.unwrap(), None);
        assert_eq!(store.revoked_device_accounts().await.unwrap(), ["Ab"]);
        let ids: Vec<String> = store
            .devices(Some("active"))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(store.devices(None).await.unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn devices_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("warden.db").display());
        let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn devices_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        let store = Store::open(db.url(), MasterKey::from_bytes([7; 32]))
            .await
            .unwrap();
        behaviour(store.clone()).await;
        store.close().await;
        drop(db);
    }
}
