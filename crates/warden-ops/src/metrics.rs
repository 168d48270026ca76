//! What the `/metrics` pages read from the store, kept cheap enough for every scrape:
//! the outbox backlog and the age of its oldest pending row, the ledger's length
//! ([`Warden::store_gauges`], one counting query and one single-row read), and the
//! directory syncs recorded in the ledger ([`DirSyncRuns`], reading only the events
//! appended since the previous scrape). Reads need the `read` scope.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::{Result, Scope, Warden, now};

/// Counts one observation of `elapsed` in a cumulative histogram: every bucket whose upper
/// bound (seconds, in `bounds`) it does not exceed, its sum (microseconds) and its count.
pub(crate) fn observe_histogram(
    bounds: &[f64],
    buckets: &[AtomicU64],
    sum_micros: &AtomicU64,
    count: &AtomicU64,
    elapsed: std::time::Duration,
) {
    let secs = elapsed.as_secs_f64();
    for (bound, bucket) in bounds.iter().zip(buckets) {
        if secs <= *bound {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }
    sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    count.fetch_add(1, Ordering::Relaxed);
}

/// The store's numbers a scrape reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreGauges {
    /// Outbox rows not yet delivered to NATS.
    pub outbox_pending: i64,
    /// Seconds since the oldest undelivered row was written (0 when none is pending).
    pub outbox_oldest_age_secs: i64,
    /// Ledger events (the ledger has no gaps: also the newest event's sequence number).
    pub ledger_events: i64,
}

impl Warden {
    /// The outbox backlog, the age of its oldest pending row and the ledger's length.
    pub async fn store_gauges(&self) -> Result<StoreGauges> {
        self.need(Scope::Read, "reading the metrics")?;
        let counts = self.store.counts().await?;
        // Rows are delivered in id order and ids follow creation: the first pending row,
        // due or not, is the oldest.
        let oldest = if counts.outbox_pending > 0 {
            self.store
                .pending_outbox(i64::MAX, 1)
                .await?
                .into_iter()
                .next()
        } else {
            None
        };
        Ok(StoreGauges {
            outbox_pending: counts.outbox_pending,
            outbox_oldest_age_secs: oldest.map_or(0, |r| (now() - r.created_at).max(0)),
            ledger_events: counts.ledger_events,
        })
    }
}

/// Ledger events read per call of [`DirSyncRuns::catch_up`] at most, so one scrape after
/// a burst of changes stays short (the rest is read by the next ones).
const CATCH_UP_LIMIT: i64 = 5_000;
const PAGE: i64 = 500;

/// Directory syncs applied (ledger action `dir.sync`, written by `warden dir sync` in
/// whichever process ran it) since this counter started, by whether they changed
/// anything. A sync that failed wrote nothing, so it is not counted here: its command
/// exits non-zero for its scheduler to see.
#[derive(Debug, Default)]
pub struct DirSyncRuns {
    /// The last ledger event read; `None` until the first catch-up, which starts at the
    /// ledger's end (a counter counts from its process's start).
    cursor: Mutex<Option<i64>>,
    changed: AtomicU64,
    unchanged: AtomicU64,
}

/// Directory sync runs counted by [`DirSyncRuns`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirSyncCounts {
    /// Syncs that created, updated or deleted users or roles.
    pub changed: u64,
    /// Syncs that found the directory as Warden holds it.
    pub unchanged: u64,
}

impl DirSyncRuns {
    /// Reads the ledger events appended since the last call (at most a few thousand) and
    /// counts the directory syncs among them; the counts so far.
    pub async fn catch_up(&self, w: &Warden) -> Result<DirSyncCounts> {
        let mut cursor = self.cursor.lock().await;
        let mut at = match *cursor {
            Some(at) => at,
            None => {
                let end = w.ledger_position().await?;
                *cursor = Some(end);
                end
            }
        };
        let mut read = 0;
        while read < CATCH_UP_LIMIT {
            let events = w.ledger_events(at, PAGE).await?;
            let Some(last) = events.last() else { break };
            at = last.seq;
            read += events.len() as i64;
            for e in events.iter().filter(|e| e.action == "dir.sync") {
                let changed = [
                    "users_created",
                    "users_updated",
                    "users_deleted",
                    "roles_created",
                    "roles_updated",
                    "roles_deleted",
                ]
                .iter()
                .any(|k| e.summary[*k].as_u64().unwrap_or(0) > 0);
                if changed {
                    &self.changed
                } else {
                    &self.unchanged
                }
                .fetch_add(1, Ordering::Relaxed);
            }
            if (events.len() as i64) < PAGE {
                break;
            }
        }
        *cursor = Some(at);
        Ok(self.counts())
    }

    /// The counts so far, without reading the ledger.
    pub fn counts(&self) -> DirSyncCounts {
        DirSyncCounts {
            changed: self.changed.load(Ordering::Relaxed),
            unchanged: self.unchanged.load(Ordering::Relaxed),
        }
    }
}
