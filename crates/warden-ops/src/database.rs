//! The database a [`Warden`] runs on, as its surfaces and benchmarks see it: whether it
//! holds an organisation yet, which backend it is, and closing it. Opening it stays
//! with the caller (which file, which URL, which master key is composition, not policy).

use warden_store::Backend;

use crate::{Result, Warden};

impl Warden {
    /// Whether the database holds an operator (`warden init` has run).
    pub async fn is_initialised(&self) -> Result<bool> {
        Ok(self.store.operator().await?.is_some())
    }

    /// The database backend's name: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Closes every connection of the database (waiting for them to be returned); later
    /// operations fail.
    pub async fn close(&self) {
        self.store.close().await;
    }
}
