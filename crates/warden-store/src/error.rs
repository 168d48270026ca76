//! The one error type of the crate, with the context a reader needs.

use crate::seal::SealError;

/// Everything that can go wrong in the store.
///
/// Messages are written for the person running Warden. None of them ever contains a seed, a
/// master key or any other plaintext secret, and database URLs appear only redacted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open database {url}: {}", one_line(source))]
    Connect {
        /// The database URL, password replaced by `***` (see [`crate::redact_url`]).
        url: String,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("cannot migrate the database schema: {}", one_line(.0))]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row the operation needs does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `account "hub" of operator OABC…`.
        what: String,
    },
    /// The write would duplicate something that must be unique.
    #[error("{what} already exists")]
    Conflict {
        /// What already exists, e.g. `account "hub" of operator OABC…`.
        what: String,
    },
    /// The master key cannot open the database's seal check: it is not the key this database
    /// was created with.
    #[error(
        "the master key does not match this database: use the key it was created with \
         (WARDEN_MASTER_KEY or <data dir>/master.key)"
    )]
    WrongMasterKey,
    /// The master key could not be read, parsed or created.
    #[error("master key: {0}")]
    MasterKey(String),
    /// A sealed value could not be sealed or opened.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A database statement failed.
    #[error("database error while {context}: {}", one_line(source))]
    Query {
        /// What the store was doing, e.g. `inserting account`.
        context: &'static str,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// A stored JSON value (spec, ledger summary) could not be encoded or decoded.
    #[error("invalid JSON in the database: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// `map_err` helper: a [`StoreError::Query`] with `context`.
    pub(crate) fn query(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { context, source }
    }
}

/// Collapses whitespace runs (newlines included) so an error is always one line.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
