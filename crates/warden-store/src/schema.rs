//! The schema: one `migrations/` directory, embedded at build time and applied by
//! [`crate::Store::open`] on SQLite and PostgreSQL alike.

use sqlx::migrate::Migrator;

/// The embedded migrations of `crates/warden-store/migrations`.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
