//! Reading the ledger: its events in order (for `warden audit list`, the console's ledger
//! page and its live event stream), its length, and the verification of its hash chain
//! (`warden audit verify`). Reads need the `read` scope.

use warden_store::{LedgerEvent, LedgerReport};

use crate::{Result, Scope, Warden};

impl Warden {
    /// The ledger's position: how many events it holds (it has no gaps, so this is also
    /// the sequence number of the newest one).
    pub async fn ledger_position(&self) -> Result<i64> {
        self.need(Scope::Read, "reading the ledger")?;
        Ok(self.store.counts().await?.ledger_events)
    }

    /// At most `limit` events after sequence number `after`, oldest first.
    pub async fn ledger_events(&self, after: i64, limit: i64) -> Result<Vec<LedgerEvent>> {
        self.need(Scope::Read, "reading the ledger")?;
        Ok(self.store.ledger(after.max(0), limit.max(1)).await?)
    }

    /// The newest `count` events, newest first.
    pub async fn ledger_newest(&self, count: i64) -> Result<Vec<LedgerEvent>> {
        let end = self.ledger_position().await?;
        let mut events = self.ledger_events((end - count).max(0), count).await?;
        events.reverse();
        Ok(events)
    }

    /// Checks the ledger's hash chain from the first event; the report names the first
    /// break, if any.
    pub async fn verify_ledger(&self) -> Result<LedgerReport> {
        self.need(Scope::Read, "verifying the ledger")?;
        Ok(self.store.verify_ledger().await?)
    }
}
