/*!
Warden's operations: every change to and every read of an organisation, decided once
for every surface (CLI, HTTP API, console, NATS service, rooms gateway).

Each operation runs on a [`Warden`] bound to an [`Actor`]: it validates its input
through `warden-core`, decides whether the actor may do it, and then writes state,
ledger event and outbox row in one `warden-store` transaction. Surfaces parse their
input into the validated types used here, call one operation and render its result
or its [`OpsError`], whose [`ErrorKind`] each surface maps in one place.
*/
#![deny(missing_docs)]

mod warden;

pub mod actor;

pub mod callout;
pub mod database;
pub mod deploy;
pub mod device;
pub mod dir_keys;
pub mod dirsync;
pub mod doctor;
pub mod drift;
pub mod exports;
pub mod governance;
pub mod keys;
pub mod leaf;
pub mod ledger;
pub mod mappings;
pub mod metrics;
pub mod nsc;
pub mod observe;
pub mod onboarding;
pub mod operator_keys;
pub mod org;
pub mod overview;
pub mod page;
pub mod presence;
pub mod progress;
pub mod relay;
pub mod rooms;
pub mod secret_file;
pub mod sign_in;
pub mod signing_keys;
pub mod streams;
pub mod tenant;
pub mod tenant_lint;
pub mod tokens;

pub use actor::{Actor, ActorKind, Scope};
pub use warden::*;
