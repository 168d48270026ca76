/*!
Warden's persistence: the one source of truth for keys, the operator, accounts, users, JWT
migrations, the ledger and the outbox, on SQLite (the default, one file) or PostgreSQL (by URL),
through one set of migrations.

Every write is one [`Tx`]: state, a hash-chained ledger event and, where NATS must learn of it,
an outbox row, committed together. Private seeds are sealed at rest with the [`MasterKey`]
(XChaCha20-Poly1305) and never appear in `Debug`, `Display` or errors.

```no_run
# async fn demo() -> Result<(), warden_store::StoreError> {
use std::path::Path;
use warden_store::{MasterKey, NewEvent, Store};

let dir = Path::new("/var/lib/warden");
let key = MasterKey::from_env_or_file(dir, true)?;
let store = Store::open("sqlite:///var/lib/warden/warden.db", key).await?;

let mut tx = store.begin().await?;
tx.put_seed("UAB…", "user", "SUA…").await?;
tx.append_event(&NewEvent {
    actor: "cli".into(),
    action: "user.create".into(),
    object_kind: "user".into(),
    object_key: "UAB…".into(),
    summary: serde_json::json!({ "name": "alice" }),
})
.await?;
tx.enqueue("resolver.update", "eyJ…").await?;
tx.commit().await?;

assert!(store.verify_ledger().await?.is_intact());
# Ok(())
# }
```

See [`Store`] for reads and opening, [`Tx`] for writes, [`seal`] for the envelope and
[`ledger`] for the hash chain.

This crate stores public keys, JWTs and specs as given; callers validate them.
*/
#![deny(missing_docs)]

pub mod bulk;
pub mod console_queries;
pub mod devices;
pub mod dir_keys;
mod error;
pub mod governance;
pub mod ledger;
pub mod onboarding;
pub mod org;
pub mod outbox;
mod queries;
pub mod relay;
pub mod rooms;
pub mod rows;
mod schema;
pub mod seal;
mod store;
pub mod tenants;
pub mod tokens;

pub use bulk::NewSeed;
pub use devices::DeviceRow;
pub use error::StoreError;
pub use ledger::{LedgerBreak, LedgerEvent, LedgerReport, NewEvent};
pub use onboarding::{PackageRow, TenantCaRow};
pub use outbox::OutboxRow;
pub use relay::RelayLock;
pub use rooms::{MessageRow, RoomRow, RoomRuleRow};
pub use rows::{AccountRow, Counts, MigrationRecord, OperatorRow, UserRow};
pub use seal::{MasterKey, SealError};
pub use store::{Backend, KeptConnection, Store, Tx, redact_url};
pub use tenants::TenantRow;
pub use tokens::ApiTokenRow;
pub use zeroize::Zeroizing;
