//! `warden export` and `warden import nsc`: the nsc store and keystore layout, both
//! ways, and `warden bench export`.
//!
//! - [`export`]: the store written out as an nsc data store + keystore, or as flat
//!   creds, with a deterministic `manifest.json`.
//! - [`import`]: an existing nsc operator adopted into an empty Warden store.
//!
//! The layout facts (file names, contents, modes) are nsc 2.7's; see `docs/nsc.md`.

pub mod export;
pub mod import;

use std::path::{Path, PathBuf};

pub use export::{ExportFormat, ExportReport, Manifest};
pub use import::{ImportReport, NotCarried};

use crate::OpsError;

/// What can go wrong in an export or an import.
#[derive(Debug, thiserror::Error)]
pub enum NscError {
    /// Bad input: a directory that is not what it must be (exit code 2).
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The operation failed in the operations layer or the store.
    #[error(transparent)]
    Ops(#[from] OpsError),
}

impl NscError {
    /// Whether this is the caller's mistake (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            NscError::Invalid(_) => true,
            NscError::Ops(e) => e.is_usage(),
            NscError::Io { .. } => false,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> NscError {
        NscError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<warden_store::StoreError> for NscError {
    fn from(e: warden_store::StoreError) -> Self {
        NscError::Ops(OpsError::from(e))
    }
}

/// Result of an export or import.
pub type Result<T, E = NscError> = std::result::Result<T, E>;
