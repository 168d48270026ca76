//! `warden export` and `warden import nsc`: the nsc store and keystore layout, both
//! ways, and `warden bench export`.
//!
//! - [`export`]: the store written out as an nsc data store + keystore, or as flat
//!   creds, with a deterministic `manifest.json`.
//! - [`import`]: an existing nsc operator adopted into an empty Warden store.
//! - [`confined`]: how the import reads the store it is given: never outside it, no
//!   links followed, each file bounded.
//!
//! The layout facts (file names, contents, modes) are nsc 2.7's; see `docs/nsc.md`.

pub mod confined;
pub mod export;
pub mod import;

pub use export::{ExportFormat, ExportReport, Manifest};
pub use import::{ImportReport, NotCarried};

use crate::OpsError;

/// What can go wrong in an export or an import: an operation error like any other (a
/// directory that is not what it must be is `Invalid`, a file that cannot be read or
/// written is `Io`).
pub type NscError = OpsError;

/// Result of an export or import.
pub type Result<T, E = NscError> = std::result::Result<T, E>;
