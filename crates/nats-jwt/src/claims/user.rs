//! User claims: permissions and connection limits of one client identity.

use serde::{Deserialize, Serialize};

use super::types::UserPermissionLimits;
use super::{Claims, UserClaims};
use crate::jwt::ClaimBody;
use crate::keys::{AccountPublicKey, KeyKind, UserPublicKey};
use crate::validation::ValidationIssue;

/// The `nats` body of a user JWT. Permissions and limits are flattened on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Permissions and limits (`pub`, `sub`, `resp`, `src`, ... `allowed_connection_types`).
    #[serde(flatten)]
    pub limits: UserPermissionLimits,
    /// The account, when the JWT is signed by one of its signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_account: Option<AccountPublicKey>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl UserClaims {
    /// New user claims as `NewUserClaims` makes them: no permissions, subs/data/payload -1.
    pub fn new(subject: &UserPublicKey, name: &str) -> Self {
        Claims::with_body(
            subject.as_str(),
            name,
            User {
                limits: UserPermissionLimits::unlimited(),
                ..Default::default()
            },
        )
    }

    /// New user claims for a scoped signing key: completely empty permissions and limits.
    pub fn new_scoped(subject: &UserPublicKey, name: &str, account: &AccountPublicKey) -> Self {
        Claims::with_body(
            subject.as_str(),
            name,
            User {
                limits: UserPermissionLimits::default(),
                issuer_account: Some(account.clone()),
                tags: Vec::new(),
            },
        )
    }
}

impl ClaimBody for User {
    const TYPE: Option<&'static str> = Some("user");

    fn allowed_issuers() -> &'static [KeyKind] {
        &[KeyKind::Account]
    }

    fn subject_kind() -> Option<KeyKind> {
        Some(KeyKind::User)
    }

    fn validate_body(claims: &Claims<Self>, issues: &mut Vec<ValidationIssue>) {
        claims.nats.limits.validate(issues);
    }
}
