//! The outbox: what NATS must learn of, written in the same transaction as the change, and
//! drained by a relay that retries until delivery succeeds.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::rows::column;

/// One message for NATS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// Position in the outbox, from 1; delivery is in id order.
    pub id: i64,
    /// When it was enqueued, unix seconds.
    pub created_at: i64,
    /// What kind of message (e.g. `resolver.update`); the relay decides how to send it.
    pub topic: String,
    /// The message (e.g. an account JWT).
    pub payload: String,
    /// Failed delivery attempts so far.
    pub attempts: i64,
    /// Not to be tried before this time, unix seconds.
    pub next_attempt_at: i64,
    /// When it was delivered; `None` while pending.
    pub delivered_at: Option<i64>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
}

impl OutboxRow {
    fn from_row(row: &AnyRow) -> Result<OutboxRow, StoreError> {
        Ok(OutboxRow {
            id: column(row, "id")?,
            created_at: column(row, "created_at")?,
            topic: column(row, "topic")?,
            payload: column(row, "payload")?,
            attempts: column(row, "attempts")?,
            next_attempt_at: column(row, "next_attempt_at")?,
            delivered_at: column(row, "delivered_at")?,
            last_error: column(row, "last_error")?,
        })
    }
}

/// Enqueues a message due now; the caller holds the write lock.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    topic: &str,
    payload: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last_id FROM outbox")
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::query("reading the last outbox id"))?;
    let id = column::<i64>(&row, "last_id")? + 1;
    sqlx::query(
        "INSERT INTO outbox (id, created_at, topic, payload, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(id)
    .bind(now)
    .bind(topic)
    .bind(payload)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("enqueueing an outbox message"))?;
    Ok(id)
}

/// The due undelivered rows after an id, in id order: the relay's read. It walks the
/// `outbox_undelivered` index from that id, so it never sorts what is pending (a test in
/// `store.rs` reads SQLite's plan).
pub(crate) const PENDING: &str = "SELECT id, created_at, topic, payload, attempts, \
     next_attempt_at, delivered_at, last_error FROM outbox WHERE delivered_at IS NULL \
     AND next_attempt_at <= $1 AND id > $2 ORDER BY id LIMIT $3";

/// Undelivered messages due at `now`, in id order.
pub(crate) async fn pending(
    conn: &mut AnyConnection,
    now: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<OutboxRow>, StoreError> {
    sqlx::query(PENDING)
        .bind(now)
        .bind(after)
        .bind(limit.max(0))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("reading pending outbox messages"))?
        .iter()
        .map(OutboxRow::from_row)
        .collect()
}

/// One outbox row by id.
pub(crate) async fn get(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<OutboxRow>, StoreError> {
    sqlx::query(
        "SELECT id, created_at, topic, payload, attempts, next_attempt_at, delivered_at, \
         last_error FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading an outbox message"))?
    .as_ref()
    .map(OutboxRow::from_row)
    .transpose()
}

/// Marks a message delivered.
pub(crate) async fn mark_delivered(
    conn: &mut AnyConnection,
    id: i64,
    at: i64,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE outbox SET delivered_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::query("marking an outbox message delivered"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: format!("outbox message {id}"),
        });
    }
    Ok(())
}

/// Records a failed attempt and when to try again.
pub(crate) async fn mark_failed(
    conn: &mut AnyConnection,
    id: i64,
    error: &str,
    next_attempt_at: i64,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 \
         WHERE id = $3",
    )
    .bind(error)
    .bind(next_attempt_at)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("marking an outbox message failed"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound {
            what: format!("outbox message {id}"),
        });
    }
    Ok(())
}
