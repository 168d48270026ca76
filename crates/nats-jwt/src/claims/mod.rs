//! Claim structures: the standard JWT fields ([`Claims`]) and the typed `nats` bodies.
//!
//! Field names, order and omission rules mirror Go `nats-io/jwt` v2.3.0 so that encoded
//! payloads match what nsc writes. One file per claim type, as in the Go library.

mod account;
mod activation;
mod authorization;
mod exports;
mod generic;
mod imports;
mod limits;
mod operator;
mod signing_keys;
mod types;
mod user;

pub use account::Account;
pub use activation::Activation;
pub use authorization::{
    ANY_ACCOUNT, AUTH_CALLOUT_SUBJECT, AUTH_REQUEST_AUDIENCE, AUTH_REQUEST_XKEY_HEADER,
    AuthorizationRequest, AuthorizationRequestClaims, AuthorizationResponse,
    AuthorizationResponseClaims, ClientInformation, ClientTls, ConnectOptions,
    ExternalAuthorization, ServerId,
};
pub use exports::{Export, ExportType, ResponseType, ServiceLatency};
pub use generic::Generic;
pub use imports::Import;
pub use limits::{AccountLimits, JetStreamLimits, NatsLimits, OperatorLimits};
pub use operator::Operator;
pub use signing_keys::{SigningKey, UserScope};
pub use types::{
    ConnectionType, Permission, Permissions, ResponsePermission, TimeRange, UserPermissionLimits,
    WeightedMapping,
};
pub use user::User;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::jwt::ClaimBody;

/// The standard claim fields (Go `ClaimsData`) plus the type-specific `nats` body.
///
/// JSON order is `aud, exp, jti, iat, iss, name, nbf, sub, nats`; empty values are omitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(serialize = "T: ClaimBody", deserialize = "T: DeserializeOwned"))]
pub struct Claims<T> {
    /// Audience (unused by the server for accounts and users).
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub aud: Option<String>,
    /// Expiry, unix seconds. `None` (or 0) = never.
    #[serde(default, skip_serializing_if = "ser::opt_i64_zero")]
    pub exp: Option<i64>,
    /// Token id, recomputed by the encoder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// Issued at, unix seconds, set by the encoder.
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub iat: i64,
    /// Issuer public key, set by the encoder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    /// Human readable name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Not before, unix seconds. `None` (or 0) = immediately.
    #[serde(default, skip_serializing_if = "ser::opt_i64_zero")]
    pub nbf: Option<i64>,
    /// Subject public key (or free text for generic claims).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
    /// The type-specific body; `type` and `version` are added on the wire.
    #[serde(serialize_with = "crate::jwt::serialize_nats")]
    pub nats: T,
}

/// Operator JWT claims.
pub type OperatorClaims = Claims<Operator>;
/// Account JWT claims.
pub type AccountClaims = Claims<Account>;
/// User JWT claims.
pub type UserClaims = Claims<User>;
/// Activation JWT claims (grants an importer access to a private export).
pub type ActivationClaims = Claims<Activation>;
/// Claims of any other type (for example a resolver delete request).
pub type GenericClaims = Claims<Generic>;

impl<T> Claims<T> {
    pub(crate) fn with_body(sub: &str, name: &str, nats: T) -> Self {
        Claims {
            aud: None,
            exp: None,
            jti: String::new(),
            iat: 0,
            iss: String::new(),
            name: name.to_string(),
            nbf: None,
            sub: sub.to_string(),
            nats,
        }
    }
}

/// Serde predicates and helpers shared by the claim files.
pub(crate) mod ser {
    pub fn is_zero(v: &i64) -> bool {
        *v == 0
    }
    pub fn is_zero_u64(v: &u64) -> bool {
        *v == 0
    }
    pub fn is_false(v: &bool) -> bool {
        !*v
    }
    pub fn opt_i64_zero(v: &Option<i64>) -> bool {
        matches!(v, None | Some(0))
    }
    pub fn opt_str_empty(v: &Option<String>) -> bool {
        v.as_deref().is_none_or(str::is_empty)
    }
}
