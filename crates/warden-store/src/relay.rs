//! What the outbox relay needs from the store: leadership (only one relay at a time
//! per database) and recording many deliveries in one transaction.

use sqlx::{Any, AnyConnection, Connection, pool::PoolConnection};

use crate::StoreError;
use crate::store::{Backend, Store};

/// Keys or ids bound in one `IN (…)` list: well under SQLite's and PostgreSQL's bind limits.
pub const KEYS_PER_QUERY: usize = 500;

/// Advisory-lock key of the relay (PostgreSQL); an arbitrary constant ("WRDN").
const RELAY_LOCK_KEY: i64 = 0x5752_444E;

/// Held by the one relay that may deliver the outbox. On PostgreSQL it is a
/// session advisory lock on a connection of its own: if the process dies, the
/// connection closes and another relay can take over. On SQLite (one machine, one
/// file) it is always granted.
#[derive(Debug)]
pub struct RelayLock {
    conn: Option<AnyConnection>,
}

impl RelayLock {
    /// Gives the lock up.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(RELAY_LOCK_KEY)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
        }
    }

    /// Whether the lock is still held (its connection answers).
    pub async fn is_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => conn.ping().await.is_ok(),
        }
    }
}

impl Store {
    /// Tries to become the relay; `None` when another process holds the lock.
    pub async fn try_relay_lock(&self) -> Result<Option<RelayLock>, StoreError> {
        if self.backend() == Backend::Sqlite {
            return Ok(Some(RelayLock { conn: None }));
        }
        let pooled: PoolConnection<Any> = self.pooled().await?;
        let mut conn = pooled.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(StoreError::query("taking the relay lock"))?;
        if got {
            Ok(Some(RelayLock { conn: Some(conn) }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Marks outbox messages delivered at `at`, each with the reply NATS gave, in
    /// one transaction.
    pub async fn mark_delivered_many(
        &self,
        delivered: &[(i64, String)],
        at: i64,
    ) -> Result<(), StoreError> {
        if delivered.is_empty() {
            return Ok(());
        }
        let mut conn = self.pooled().await?;
        let mut tx = conn
            .begin()
            .await
            .map_err(StoreError::query("starting a transaction"))?;
        // Rows with the same reply (most of a batch: "200 … (server)", "published") in one
        // statement each, a chunk of ids at a time, instead of one statement per row.
        let mut by_reply: std::collections::BTreeMap<&str, Vec<i64>> =
            std::collections::BTreeMap::new();
        for (id, reply) in delivered {
            by_reply.entry(reply.as_str()).or_default().push(*id);
        }
        let backend = self.backend();
        let (at_mark, reply_mark) = match backend {
            Backend::Sqlite => ("?", "?"),
            Backend::Postgres => ("$1", "$2"),
        };
        for (reply, ids) in by_reply {
            for chunk in ids.chunks(KEYS_PER_QUERY) {
                let sql = format!(
                    "UPDATE outbox SET delivered_at = {at_mark}, reply = {reply_mark} WHERE id IN ({})",
                    crate::bulk::placeholders_for(backend, 3, chunk.len())
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(at).bind(reply);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("marking outbox messages delivered"))?;
            }
        }
        tx.commit()
            .await
            .map_err(StoreError::query("committing delivered outbox messages"))
    }

    /// The current JWTs of the accounts with these public keys, as `(key, jwt)` in no
    /// particular order; keys of accounts that no longer exist are left out. Read in chunks
    /// of [`KEYS_PER_QUERY`], so a batch of thousands is a handful of queries instead of one
    /// query per account.
    pub async fn account_jwts_by_key(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        if keys.is_empty() {
            return Ok(out);
        }
        let mut conn = self.pooled().await?;
        let backend = self.backend();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let sql = format!(
                "SELECT public_key, jwt FROM accounts WHERE public_key IN ({})",
                crate::bulk::placeholders_for(backend, 1, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for key in chunk {
                q = q.bind(key.as_str());
            }
            out.extend(
                q.fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::query("reading account JWTs"))?,
            );
        }
        Ok(out)
    }

    /// The reply recorded for a delivered outbox message.
    pub async fn outbox_reply(&self, id: i64) -> Result<Option<String>, StoreError> {
        let mut conn = self.pooled().await?;
        let reply: Option<Option<String>> =
            sqlx::query_scalar("SELECT reply FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::query("reading an outbox reply"))?;
        Ok(reply.flatten())
    }
}
