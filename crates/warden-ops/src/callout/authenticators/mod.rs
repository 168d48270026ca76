//! How the auth callout checks what a connecting client presents: each authenticator
//! (`ldap`, `oidc`, `mtls`) looks at the authorization request and either passes (the
//! credentials are not of its kind), accepts them as a login that maps to a directory
//! user, or refuses them with a reason. The responder tries them in their stored order.

mod ldap;
mod mtls;
mod oidc;

use nats_jwt::AuthorizationRequest;
use serde::{Deserialize, Serialize};

use crate::OpsError;

pub use ldap::DEFAULT_USER_FILTER;
pub use oidc::DEFAULT_USER_CLAIM;

/// One configured authenticator, as stored (secrets are stored apart, sealed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuthenticatorSpec {
    /// User name and password checked by a bind against an LDAP directory.
    Ldap(LdapAuth),
    /// An OIDC ID token (`auth_token`) verified against a JWKS.
    Oidc(OidcAuth),
    /// The client certificate of a TLS connection, checked against a CA.
    Mtls(MtlsAuth),
}

impl AuthenticatorSpec {
    /// The authenticator's name (unique among the configured ones).
    pub fn name(&self) -> &str {
        match self {
            AuthenticatorSpec::Ldap(a) => &a.name,
            AuthenticatorSpec::Oidc(a) => &a.name,
            AuthenticatorSpec::Mtls(a) => &a.name,
        }
    }

    /// `ldap`, `oidc` or `mtls`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthenticatorSpec::Ldap(_) => "ldap",
            AuthenticatorSpec::Oidc(_) => "oidc",
            AuthenticatorSpec::Mtls(_) => "mtls",
        }
    }
}

/// An LDAP authenticator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdapAuth {
    /// Name.
    pub name: String,
    /// `ldap://` or `ldaps://` URL of the directory.
    pub url: String,
    /// Base DN searched for the user's entry.
    pub base: String,
    /// DN to bind as for the search (`None`: anonymous search). Its password is stored
    /// sealed, apart from this record.
    pub bind_dn: Option<String>,
    /// Search filter; `{user}` is replaced by the escaped login (default `(uid={user})`).
    pub user_filter: String,
    /// PEM of a CA to trust for `ldaps://` (`None`: the system roots).
    pub ca_pem: Option<String>,
}

/// An OIDC authenticator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OidcAuth {
    /// Name.
    pub name: String,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (one of the token's audiences).
    pub audience: String,
    /// The claim naming the user (default `sub`).
    pub user_claim: String,
    /// The JWKS the tokens are verified against (RS256, ES256, EdDSA keys), as given.
    pub jwks: serde_json::Value,
}

/// Which part of a client certificate names the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MtlsMap {
    /// The subject's common name.
    Subject,
    /// The first email or DNS subject alternative name.
    San,
}

/// An mTLS authenticator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MtlsAuth {
    /// Name.
    pub name: String,
    /// PEM of the CA (one or more certificates) client certificates must chain to.
    pub ca_pem: String,
    /// What names the user.
    pub map: MtlsMap,
}

/// A client the authenticator accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The authenticator that accepted it.
    pub authenticator: String,
    /// What maps to a directory user (matched against its id, user id, user principal
    /// name and email).
    pub login: String,
    /// When the credential stops being valid (an ID token's `exp`), unix seconds.
    pub expires_at: Option<i64>,
}

/// What one authenticator made of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request carries no credential of this authenticator's kind.
    NotApplicable,
    /// Accepted.
    Accepted(Authenticated),
    /// Refused; the reason never holds a password or token.
    Refused(String),
}

/// Checks `request` with `spec` at `now` (unix seconds). `secret` is the authenticator's
/// sealed secret, unsealed (the LDAP bind password), when it has one.
pub async fn authenticate(
    spec: &AuthenticatorSpec,
    secret: Option<&str>,
    request: &AuthorizationRequest,
    now: i64,
) -> Outcome {
    match spec {
        AuthenticatorSpec::Ldap(a) => ldap::authenticate(a, secret, request).await,
        AuthenticatorSpec::Oidc(a) => oidc::authenticate(a, request, now),
        AuthenticatorSpec::Mtls(a) => mtls::authenticate(a, request, now),
    }
}

/// Checks a new authenticator before it is stored (the JWKS parses and holds usable
/// keys, the CA is PEM certificates, the URL is LDAP…): [`OpsError::Invalid`] naming
/// what is wrong.
pub fn check(spec: &AuthenticatorSpec) -> Result<(), OpsError> {
    if spec.name().trim().is_empty() {
        return Err(OpsError::invalid("an authenticator needs a name"));
    }
    match spec {
        AuthenticatorSpec::Ldap(a) => ldap::check(a),
        AuthenticatorSpec::Oidc(a) => oidc::check(a),
        AuthenticatorSpec::Mtls(a) => mtls::check(a),
    }
}
