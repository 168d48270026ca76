//! The rows the store keeps, as plain data. Public keys, JWTs and specs are stored as given:
//! callers validate them before they get here.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::StoreError;

/// The operator (a store holds one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRow {
    /// Operator identity public key (`O…`).
    pub public_key: String,
    /// Operator name, unique.
    pub name: String,
    /// Public key of the operator signing key that issues account JWTs.
    pub signing_key: String,
    /// Public key of the system account.
    pub system_account: String,
    /// The operator JWT.
    pub jwt: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last update, unix seconds.
    pub updated_at: i64,
}

/// An account of the operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountRow {
    /// Account identity public key (`A…`).
    pub public_key: String,
    /// Public key of the operator it belongs to.
    pub operator: String,
    /// Account name, unique per operator.
    pub name: String,
    /// The account spec the JWT was compiled from (JSON, owned by warden-core).
    pub spec: serde_json::Value,
    /// The account JWT.
    pub jwt: String,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last update, unix seconds.
    pub updated_at: i64,
}

/// A user of an account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    /// User public key (`U…`).
    pub public_key: String,
    /// Public key of the account it belongs to.
    pub account: String,
    /// User name, unique per account.
    pub name: String,
    /// The user spec the JWT was compiled from (JSON, owned by warden-core).
    pub spec: serde_json::Value,
    /// The user JWT.
    pub jwt: String,
    /// Public key of the account signing key that issued the JWT; `None` when the account
    /// identity key did.
    pub signing_key: Option<String>,
    /// When the user was revoked, unix seconds; `None` while it is not.
    pub revoked_at: Option<i64>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last update, unix seconds.
    pub updated_at: i64,
}

/// A JWT migration (idempotent bootstrap step) that has been applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// Stable identifier of the migration.
    pub id: String,
    /// What it does.
    pub description: String,
    /// When it was applied, unix seconds.
    pub applied_at: i64,
}

/// Row counts, for `warden status` and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Operators (0 before `warden init`, then 1).
    pub operators: i64,
    /// Accounts.
    pub accounts: i64,
    /// Users (revoked ones included).
    pub users: i64,
    /// Sealed seeds.
    pub nkeys: i64,
    /// Ledger events.
    pub ledger_events: i64,
    /// Outbox rows not yet delivered.
    pub outbox_pending: i64,
}

/// Column lists as literals, for `concat!` into `&'static str` statements.
macro_rules! operator_columns {
    () => {
        "public_key, name, signing_key, system_account, jwt, created_at, updated_at"
    };
}
macro_rules! account_columns {
    () => {
        "public_key, operator, name, spec, jwt, created_at, updated_at"
    };
}
macro_rules! user_columns {
    () => {
        "public_key, account, name, spec, jwt, signing_key, revoked_at, created_at, updated_at"
    };
}
pub(crate) use {account_columns, operator_columns, user_columns};

/// Decodes `column` of `row`.
pub(crate) fn column<'r, T>(row: &'r AnyRow, name: &'static str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(StoreError::query("decoding a row"))
}

fn get_json(row: &AnyRow, name: &'static str) -> Result<serde_json::Value, StoreError> {
    let text: String = column(row, name)?;
    Ok(serde_json::from_str(&text)?)
}

impl OperatorRow {
    pub(crate) fn from_row(row: &AnyRow) -> Result<OperatorRow, StoreError> {
        Ok(OperatorRow {
            public_key: column(row, "public_key")?,
            name: column(row, "name")?,
            signing_key: column(row, "signing_key")?,
            system_account: column(row, "system_account")?,
            jwt: column(row, "jwt")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

impl AccountRow {
    pub(crate) fn from_row(row: &AnyRow) -> Result<AccountRow, StoreError> {
        Ok(AccountRow {
            public_key: column(row, "public_key")?,
            operator: column(row, "operator")?,
            name: column(row, "name")?,
            spec: get_json(row, "spec")?,
            jwt: column(row, "jwt")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

impl UserRow {
    pub(crate) fn from_row(row: &AnyRow) -> Result<UserRow, StoreError> {
        Ok(UserRow {
            public_key: column(row, "public_key")?,
            account: column(row, "account")?,
            name: column(row, "name")?,
            spec: get_json(row, "spec")?,
            jwt: column(row, "jwt")?,
            signing_key: column(row, "signing_key")?,
            revoked_at: column(row, "revoked_at")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

impl MigrationRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<MigrationRecord, StoreError> {
        Ok(MigrationRecord {
            id: column(row, "id")?,
            description: column(row, "description")?,
            applied_at: column(row, "applied_at")?,
        })
    }
}
