//! Whether a `warden serve` runs on this database now, and which NATS servers it was
//! given. Each `serve` notes itself every [`PRESENCE_EVERY`]; the command line reads the
//! note to tell the operator what happens next (a revocation reaches the servers by
//! itself while a `serve` relays) and to find the servers when `--nats` is not given
//! (`warden sync` talks to the servers `serve` was started with, not a guessed default).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{Result, Scope, Warden, now};

/// The setting holding the last note.
const META_PRESENCE: &str = "serve.presence";

/// How often a running `serve` notes itself.
pub const PRESENCE_EVERY: Duration = Duration::from_secs(5);

/// A note older than this means no `serve` runs (three missed notes).
pub const PRESENCE_STALE_SECS: i64 = 15;

/// The last note of a `warden serve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServePresence {
    /// The NATS servers it was given (comma-separated, as `--nats` takes them).
    pub nats: String,
    /// When it noted itself, unix seconds.
    pub at: i64,
    /// Its host name and process id, to tell several apart.
    pub host: String,
    /// Its process id.
    pub pid: u32,
}

impl ServePresence {
    /// Whether that `serve` is (very likely) still running at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        now - self.at <= PRESENCE_STALE_SECS
    }
}

impl Warden {
    /// Notes that a `serve` runs here, talking to `nats`.
    pub async fn note_serve(&self, nats: &str) -> Result<()> {
        self.need(Scope::Write, "noting a running serve")?;
        let note = ServePresence {
            nats: nats.to_string(),
            at: now(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
            pid: std::process::id(),
        };
        // A JSON value's text cannot fail to encode.
        let text = serde_json::json!(note).to_string();
        let mut tx = self.store().begin().await?;
        tx.set_meta(META_PRESENCE, &text).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The last note of a `serve`, live or not; `None` when no `serve` ever ran here.
    pub async fn serve_presence(&self) -> Result<Option<ServePresence>> {
        self.need(Scope::Read, "reading whether serve runs")?;
        let Some(text) = self.store().meta(META_PRESENCE).await? else {
            return Ok(None);
        };
        // A note this version cannot read is as good as none: it only informs.
        Ok(serde_json::from_str(&text).ok())
    }

    /// Whether a `serve` runs now (its note is fresh).
    pub async fn serve_is_running(&self) -> Result<bool> {
        Ok(self
            .serve_presence()
            .await?
            .is_some_and(|p| p.is_live(now())))
    }
}

/// Notes `serve` every [`PRESENCE_EVERY`] until `stop` is set. A note that cannot be
/// written (the database away for a moment) is logged and tried again next time: the
/// note only informs.
pub async fn run_presence(warden: Warden, nats: String, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PRESENCE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = warden.note_serve(&nats).await {
                    tracing::debug!("cannot note that serve runs: {e}");
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}
