//! The ledger: an append-only, hash-chained record of every mutation.
//!
//! Event `seq` (1, 2, 3, … without gaps) carries `prev_hash`, the hash of event `seq - 1`
//! (64 zeros for the first), and `hash`, the hex SHA-256 of an unambiguous encoding of all
//! its fields (see [`event_hash`]). Editing a row breaks its hash; inserting or removing one
//! breaks the chain or the numbering. [`crate::Store::verify_ledger`] names the first break.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::rows::column;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation tag that starts every hashed encoding.
const HASH_DOMAIN: &[u8] = b"warden-ledger-v1";

/// An event to append; the store assigns `seq`, `at`, `prev_hash` and `hash`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Who did it (`cli:alice`, `http:token-name`, `system`, …).
    pub actor: String,
    /// What was done (`account.create`, `user.revoke`, …).
    pub action: String,
    /// Kind of the object acted on (`operator`, `account`, `user`, …).
    pub object_kind: String,
    /// Key of the object (normally its public key).
    pub object_key: String,
    /// Details (JSON). Never put secrets here.
    pub summary: serde_json::Value,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerEvent {
    /// Position in the ledger, from 1, without gaps.
    pub seq: i64,
    /// When it was appended, unix seconds.
    pub at: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// Kind of the object acted on.
    pub object_kind: String,
    /// Key of the object.
    pub object_key: String,
    /// Details.
    pub summary: serde_json::Value,
    /// Hash of the previous event ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hash of this event.
    pub hash: String,
}

/// The outcome of [`crate::Store::verify_ledger`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerReport {
    /// Events checked (all of them when the chain is intact, up to the break otherwise).
    pub events: i64,
    /// The first problem found, if any.
    pub first_break: Option<LedgerBreak>,
}

impl LedgerReport {
    /// True when no break was found.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Where and how the chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerBreak {
    /// The sequence number at fault (for a gap: the first missing one).
    pub seq: i64,
    /// What is wrong, for a person.
    pub problem: String,
}

/// A ledger row with its summary as the exact stored text (what the hash covers).
pub(crate) struct RawEvent {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) object_kind: String,
    pub(crate) object_key: String,
    pub(crate) summary: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

impl RawEvent {
    pub(crate) fn from_row(row: &AnyRow) -> Result<RawEvent, StoreError> {
        Ok(RawEvent {
            seq: column(row, "seq")?,
            at: column(row, "at")?,
            actor: column(row, "actor")?,
            action: column(row, "action")?,
            object_kind: column(row, "object_kind")?,
            object_key: column(row, "object_key")?,
            summary: column(row, "summary")?,
            prev_hash: column(row, "prev_hash")?,
            hash: column(row, "hash")?,
        })
    }

    pub(crate) fn into_event(self) -> Result<LedgerEvent, StoreError> {
        Ok(LedgerEvent {
            summary: serde_json::from_str(&self.summary)?,
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            object_kind: self.object_kind,
            object_key: self.object_key,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }

    fn computed_hash(&self) -> String {
        event_hash(
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.object_kind,
            &self.object_key,
            &self.summary,
            &self.prev_hash,
        )
    }
}

/// The hash of an event: hex SHA-256 over `warden-ledger-v1`, then each field as an 8-byte
/// big-endian length followed by its bytes (integers as 8-byte big-endian two's complement),
/// in the order seq, at, actor, action, object_kind, object_key, summary (canonical JSON text,
/// see [`canonical_json`]), prev_hash. Length prefixes make the encoding unambiguous.
#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    object_kind: &str,
    object_key: &str,
    summary_json: &str,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(&seq.to_be_bytes());
    field(&at.to_be_bytes());
    field(actor.as_bytes());
    field(action.as_bytes());
    field(object_kind.as_bytes());
    field(object_key.as_bytes());
    field(summary_json.as_bytes());
    field(prev_hash.as_bytes());
    data_encoding::HEXLOWER.encode(&h.finalize())
}

/// Canonical JSON text: no insignificant whitespace, object keys sorted (by their UTF-8
/// bytes) at every level, whatever `serde_json` features are enabled elsewhere.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Appends `event` in the transaction on `conn`; the caller holds the write lock.
pub(crate) async fn append(
    conn: &mut AnyConnection,
    event: &NewEvent,
    at: i64,
) -> Result<i64, StoreError> {
    let last = sqlx::query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query("reading the last ledger event"))?;
    let (seq, prev_hash) = match last {
        Some(row) => {
            let seq: i64 = column(&row, "seq")?;
            let hash: String = column(&row, "hash")?;
            (seq + 1, hash)
        }
        None => (1, GENESIS_HASH.to_owned()),
    };
    let summary = canonical_json(&event.summary);
    let hash = event_hash(
        seq,
        at,
        &event.actor,
        &event.action,
        &event.object_kind,
        &event.object_key,
        &summary,
        &prev_hash,
    );
    sqlx::query(
        "INSERT INTO ledger (seq, at, actor, action, object_kind, object_key, summary, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(seq)
    .bind(at)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.object_kind)
    .bind(&event.object_key)
    .bind(&summary)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::query("appending a ledger event"))?;
    Ok(seq)
}

const SELECT_AFTER: &str = "SELECT seq, at, actor, action, object_kind, object_key, summary, \
     prev_hash, hash FROM ledger WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Events with `seq > after_seq`, in order, at most `limit`.
pub(crate) async fn read(
    conn: &mut AnyConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<RawEvent>, StoreError> {
    sqlx::query(SELECT_AFTER)
        .bind(after_seq)
        .bind(limit.max(0))
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::query("reading the ledger"))?
        .iter()
        .map(RawEvent::from_row)
        .collect()
}

/// Walks the chain in pages and reports the first break.
pub(crate) async fn verify(conn: &mut AnyConnection) -> Result<LedgerReport, StoreError> {
    const PAGE: i64 = 1000;
    let mut walker = Walker::default();
    // From the very bottom, so rows with a seq below 1 are seen too.
    let mut after = i64::MIN;
    loop {
        let rows = read(conn, after, PAGE).await?;
        for row in &rows {
            if let Some(problem) = walker.check(row) {
                return Ok(walker.report(Some(problem)));
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => after = last.seq,
            _ => break,
        }
    }
    Ok(walker.report(None))
}

/// The state of a walk along the chain.
struct Walker {
    expected_seq: i64,
    expected_prev: String,
    checked: i64,
}

impl Default for Walker {
    fn default() -> Walker {
        Walker {
            expected_seq: 1,
            expected_prev: GENESIS_HASH.to_owned(),
            checked: 0,
        }
    }
}

impl Walker {
    /// Checks the next row in seq order; `Some` names the first problem.
    fn check(&mut self, row: &RawEvent) -> Option<LedgerBreak> {
        let expected = self.expected_seq;
        if row.seq > expected {
            let problem = if row.seq == expected + 1 {
                format!(
                    "event {expected} is missing (removed): the next event is {}",
                    row.seq
                )
            } else {
                format!(
                    "events {expected} to {} are missing (removed): the next event is {}",
                    row.seq - 1,
                    row.seq
                )
            };
            return Some(LedgerBreak {
                seq: expected,
                problem,
            });
        }
        if row.seq < expected {
            return Some(LedgerBreak {
                seq: row.seq,
                problem: format!(
                    "event {} is out of sequence (inserted): expected event {expected}",
                    row.seq
                ),
            });
        }
        if row.computed_hash() != row.hash {
            return Some(LedgerBreak {
                seq: row.seq,
                problem: format!(
                    "event {} was altered: its content does not match its hash",
                    row.seq
                ),
            });
        }
        if row.prev_hash != self.expected_prev {
            let problem = if row.seq == 1 {
                "event 1 does not start the chain (an event was inserted or removed before it)"
                    .to_owned()
            } else {
                format!(
                    "event {} does not follow event {}: its prev_hash is not that event's hash \
                     (an event was inserted, removed or replaced)",
                    row.seq,
                    row.seq - 1
                )
            };
            return Some(LedgerBreak {
                seq: row.seq,
                problem,
            });
        }
        self.expected_seq += 1;
        self.expected_prev = row.hash.clone();
        self.checked += 1;
        None
    }

    fn report(&self, first_break: Option<LedgerBreak>) -> LedgerReport {
        LedgerReport {
            events: self.checked,
            first_break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x\"y"], "c": 1.5}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":1.5,"z":[true,null,"x\"y"]},"b":1}"#
        );
    }

    #[test]
    fn hash_is_unambiguous() {
        let a = event_hash(1, 2, "ab", "c", "k", "o", "{}", GENESIS_HASH);
        let b = event_hash(1, 2, "a", "bc", "k", "o", "{}", GENESIS_HASH);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(a, event_hash(1, 2, "ab", "c", "k", "o", "{}", GENESIS_HASH));
    }
}
