//! Directory users' own NATS keys (ADD_KEY): which user public keys a
//! directory user registered. The store keeps only public keys; the seeds stay with the
//! user. Validating a key is the caller's job (nats-jwt), before anything is written.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::rows::column;
use crate::{Store, StoreError, Tx};

/// One registered key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirUserKeyRow {
    /// The NATS user public key (`U…`).
    pub public_key: String,
    /// The directory user who holds its seed.
    pub user_id: String,
    /// When it was registered (unix seconds).
    pub created_at: i64,
}

async fn keys_of(c: &mut AnyConnection, user: &str) -> Result<Vec<DirUserKeyRow>, StoreError> {
    // Newest first: the newest key is the one the user's NATS users are issued for.
    sqlx::query(
        "SELECT public_key, user_id, created_at FROM dir_user_keys WHERE user_id = $1 \
         ORDER BY created_at DESC, public_key DESC",
    )
    .bind(user)
    .fetch_all(&mut *c)
    .await
    .map_err(StoreError::query("reading a directory user's keys"))?
    .iter()
    .map(|r| {
        Ok(DirUserKeyRow {
            public_key: column(r, "public_key")?,
            user_id: column(r, "user_id")?,
            created_at: column(r, "created_at")?,
        })
    })
    .collect()
}

impl Store {
    /// The keys `user` registered, newest first.
    pub async fn dir_user_keys(&self, user: &str) -> Result<Vec<DirUserKeyRow>, StoreError> {
        keys_of(&mut *self.pooled().await?, user).await
    }
}

impl Tx<'_> {
    /// The keys `user` registered, newest first.
    pub async fn dir_user_keys(&mut self, user: &str) -> Result<Vec<DirUserKeyRow>, StoreError> {
        keys_of(self.conn(), user).await
    }

    /// Registers `key` for `user`. A key registered already (by anyone) is a conflict.
    pub async fn insert_dir_user_key(&mut self, key: &DirUserKeyRow) -> Result<(), StoreError> {
        // Checked first: a failed INSERT would abort the whole transaction on PostgreSQL.
        if self.dir_user_key_owner(&key.public_key).await?.is_some() {
            return Err(StoreError::Conflict {
                what: format!("key {}", key.public_key),
            });
        }
        sqlx::query(
            "INSERT INTO dir_user_keys (public_key, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&key.public_key)
        .bind(&key.user_id)
        .bind(key.created_at)
        .execute(self.conn())
        .await
        .map_err(|e| {
            if matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation()) {
                StoreError::Conflict {
                    what: format!("key {}", key.public_key),
                }
            } else {
                StoreError::query("registering a directory user's key")(e)
            }
        })?;
        Ok(())
    }

    /// The directory user who registered `key`, if anyone.
    pub async fn dir_user_key_owner(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        sqlx::query("SELECT user_id FROM dir_user_keys WHERE public_key = $1")
            .bind(key)
            .fetch_optional(self.conn())
            .await
            .map_err(StoreError::query("reading a key's owner"))?
            .map(|r| column(&r, "user_id"))
            .transpose()
    }

    /// Removes `user`'s registration of `key`; `NotFound` when they have not registered it.
    pub async fn delete_dir_user_key(&mut self, user: &str, key: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM dir_user_keys WHERE user_id = $1 AND public_key = $2")
            .bind(user)
            .bind(key)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("removing a directory user's key"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("key {key} of directory user {user}"),
            });
        }
        Ok(())
    }

    /// Removes every key of `user` (the directory user is being deleted).
    pub async fn delete_dir_user_keys(&mut self, user: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dir_user_keys WHERE user_id = $1")
            .bind(user)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("removing a directory user's keys"))?;
        Ok(())
    }
}
