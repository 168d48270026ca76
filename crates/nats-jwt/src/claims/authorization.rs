//! Auth callout claims: the authorization request a nats-server (≥ 2.10) signs and
//! sends on `$SYS.REQ.USER.AUTH`, the authorization response a callout service signs
//! back, and an account's `authorization` block that turns the callout on.
//!
//! Field names and omission rules follow Go `nats-io/jwt` v2 (`authorization_claims.go`,
//! `ExternalAuthorization` in `account_claims.go`); every field a server may leave out
//! decodes as empty.

use serde::{Deserialize, Serialize};

use super::{Claims, ser};
use crate::jwt::ClaimBody;
use crate::keys::{AccountPublicKey, KeyKind, PublicKey};
use crate::validation::{IssueKind, ValidationIssue};
use crate::xkey::is_curve_public_key;

/// The audience of every authorization request.
pub const AUTH_REQUEST_AUDIENCE: &str = "nats-authorization-request";
/// The subject the server sends authorization requests on.
pub const AUTH_CALLOUT_SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// The header carrying the server's public curve key when the request is sealed.
pub const AUTH_REQUEST_XKEY_HEADER: &str = "Nats-Server-Xkey";
/// `"*"` in `allowed_accounts`: any account.
pub const ANY_ACCOUNT: &str = "*";

/// An account's external authorization (auth callout) settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalAuthorization {
    /// Users of this account that bypass the callout (the callout service's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_users: Vec<String>,
    /// Accounts the callout may place users in (account keys, or `"*"` alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_accounts: Vec<String>,
    /// Public curve key requests are sealed to, when set.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub xkey: Option<String>,
}

impl ExternalAuthorization {
    /// Whether the callout is on (it is once there is an auth user).
    pub fn is_enabled(&self) -> bool {
        !self.auth_users.is_empty()
    }

    /// Whether nothing is set (the block is then left out of the account JWT).
    pub fn is_empty(&self) -> bool {
        self.auth_users.is_empty()
            && self.allowed_accounts.is_empty()
            && self.xkey.as_deref().is_none_or(str::is_empty)
    }

    /// Appends every problem (Go `ExternalAuthorization.Validate`).
    pub fn validate(&self, issues: &mut Vec<ValidationIssue>) {
        if !self.allowed_accounts.is_empty() && self.auth_users.is_empty() {
            issues.push(ValidationIssue::error(
                IssueKind::CalloutAccountsWithoutUsers,
            ));
        }
        for u in &self.auth_users {
            if !is_kind(u, KeyKind::User) {
                issues.push(invalid_key("authorization.auth_users", u, "user"));
            }
        }
        for a in &self.allowed_accounts {
            if a == ANY_ACCOUNT {
                if self.allowed_accounts.len() > 1 {
                    issues.push(ValidationIssue::error(IssueKind::CalloutAnyAccountNotAlone));
                }
            } else if !is_kind(a, KeyKind::Account) {
                issues.push(invalid_key("authorization.allowed_accounts", a, "account"));
            }
        }
        if let Some(x) = self.xkey.as_deref().filter(|x| !x.is_empty())
            && !is_curve_public_key(x)
        {
            issues.push(invalid_key("authorization.xkey", x, "curve"));
        }
    }
}

fn is_kind(key: &str, kind: KeyKind) -> bool {
    PublicKey::new(key).is_ok_and(|k| k.kind() == kind)
}

fn invalid_key(field: &'static str, value: &str, expected: &'static str) -> ValidationIssue {
    ValidationIssue::error(IssueKind::InvalidKeyField {
        field,
        value: value.to_string(),
        expected,
    })
}

/// The server that asks (`server_id`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerId {
    /// Server name.
    #[serde(default)]
    pub name: String,
    /// Host it listens on.
    #[serde(default)]
    pub host: String,
    /// Server id (its public `N…` key): the audience of the response.
    #[serde(default)]
    pub id: String,
    /// Server version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Server tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The server's public curve key, when the request is sealed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub xkey: String,
}

/// The client that is connecting (`client_info`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInformation {
    /// Client address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Connection id.
    #[serde(default, skip_serializing_if = "ser::is_zero_u64")]
    pub id: u64,
    /// The user the client authenticated as so far (the sentinel, in operator mode).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Client name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Name tag.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_tag: String,
    /// Connection kind (`Client`, `Leafnode`…).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Client type (`nats`, `mqtt`, `websocket`…).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub client_type: String,
    /// MQTT client id.
    #[serde(default, rename = "mqtt_id", skip_serializing_if = "String::is_empty")]
    pub mqtt: String,
    /// The nonce the client signed, when it signed one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
}

/// What the client sent in CONNECT (`connect_opts`): its credentials.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectOptions {
    /// The user JWT it presented (the sentinel's, in operator mode).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwt: String,
    /// Its public nkey.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nkey: String,
    /// Its signature of the nonce.
    #[serde(default, rename = "sig", skip_serializing_if = "String::is_empty")]
    pub signed_nonce: String,
    /// A token (an OIDC ID token, for Warden's `oidc` authenticators).
    #[serde(
        default,
        rename = "auth_token",
        skip_serializing_if = "String::is_empty"
    )]
    pub token: String,
    /// User name.
    #[serde(default, rename = "user", skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// Password.
    #[serde(default, rename = "pass", skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// Client name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Client library language.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lang: String,
    /// Client library version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Protocol version (always written).
    #[serde(default)]
    pub protocol: i64,
}

// Passwords and tokens must never reach a log through `{:?}`.
impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<hidden>" };
        f.debug_struct("ConnectOptions")
            .field("jwt", &hidden(&self.jwt))
            .field("nkey", &self.nkey)
            .field("sig", &hidden(&self.signed_nonce))
            .field("auth_token", &hidden(&self.token))
            .field("user", &self.username)
            .field("pass", &hidden(&self.password))
            .field("name", &self.name)
            .field("lang", &self.lang)
            .field("version", &self.version)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// The client's TLS state (`client_tls`): PEM certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    /// TLS version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Cipher suite.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cipher: String,
    /// Peer certificates the server did not verify (PEM), leaf first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<String>,
    /// Chains the server verified (PEM), each leaf first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_chains: Vec<Vec<String>>,
    /// SNI server name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_name: String,
}

/// The `nats` body of an authorization request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The server asking.
    #[serde(default)]
    pub server_id: ServerId,
    /// The fresh user key the issued user JWT must be for.
    #[serde(default)]
    pub user_nkey: String,
    /// The client.
    #[serde(default)]
    pub client_info: ClientInformation,
    /// What the client sent in CONNECT.
    #[serde(default)]
    pub connect_opts: ConnectOptions,
    /// TLS state, when the client connected with TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<ClientTls>,
    /// A nonce of the request (newer servers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_nonce: String,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl ClaimBody for AuthorizationRequest {
    const TYPE: Option<&'static str> = Some("authorization_request");

    fn allowed_issuers() -> &'static [KeyKind] {
        &[KeyKind::Server]
    }

    fn name_expected() -> bool {
        false
    }

    fn validate_body(claims: &Claims<Self>, issues: &mut Vec<ValidationIssue>) {
        let r = &claims.nats;
        if r.user_nkey.is_empty() || !is_kind(&r.user_nkey, KeyKind::User) {
            issues.push(invalid_key("user_nkey", &r.user_nkey, "user"));
        }
        let aud = claims.aud.as_deref().unwrap_or("");
        if aud != AUTH_REQUEST_AUDIENCE {
            issues.push(ValidationIssue::error(IssueKind::WrongAudience {
                expected: AUTH_REQUEST_AUDIENCE,
                found: aud.to_string(),
            }));
        }
        if !claims.iss.is_empty() && !is_kind(&claims.iss, KeyKind::Server) {
            issues.push(invalid_key("iss", &claims.iss, "server"));
        }
        if !r.server_id.xkey.is_empty() && !is_curve_public_key(&r.server_id.xkey) {
            issues.push(invalid_key("server_id.xkey", &r.server_id.xkey, "curve"));
        }
    }
}

/// The `nats` body of an authorization response: a user JWT or an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationResponse {
    /// The user JWT issued to the request's `user_nkey`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwt: String,
    /// Why the client is refused (the server logs it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The callout account, when the response is signed by one of its signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_account: Option<AccountPublicKey>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl ClaimBody for AuthorizationResponse {
    const TYPE: Option<&'static str> = Some("authorization_response");

    fn allowed_issuers() -> &'static [KeyKind] {
        &[KeyKind::Account]
    }

    fn subject_kind() -> Option<KeyKind> {
        Some(KeyKind::User)
    }

    fn name_expected() -> bool {
        false
    }

    fn validate_body(claims: &Claims<Self>, issues: &mut Vec<ValidationIssue>) {
        let aud = claims.aud.as_deref().unwrap_or("");
        if !is_kind(aud, KeyKind::Server) {
            issues.push(invalid_key("aud", aud, "server"));
        }
        match (claims.nats.jwt.is_empty(), claims.nats.error.is_empty()) {
            (true, true) => issues.push(ValidationIssue::error(IssueKind::AuthResponseEmpty)),
            (false, false) => {
                issues.push(ValidationIssue::error(IssueKind::AuthResponseJwtAndError))
            }
            _ => {}
        }
    }
}

/// Authorization request claims (signed by a server).
pub type AuthorizationRequestClaims = Claims<AuthorizationRequest>;
/// Authorization response claims (signed by the callout account).
pub type AuthorizationResponseClaims = Claims<AuthorizationResponse>;

impl AuthorizationResponseClaims {
    /// A response to `user_nkey` for the server `server_id`, carrying `jwt` (a user JWT)
    /// or, when `jwt` is `None`, `error`.
    pub fn new(user_nkey: &str, server_id: &str, outcome: Result<String, String>) -> Self {
        let mut c = Claims::with_body(user_nkey, "", AuthorizationResponse::default());
        c.aud = Some(server_id.to_string());
        match outcome {
            Ok(jwt) => c.nats.jwt = jwt,
            Err(error) => c.nats.error = error,
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyPair, decode};

    fn request(server: &KeyPair, user: &str) -> AuthorizationRequestClaims {
        let mut c = Claims::with_body("AAAA", "", AuthorizationRequest::default());
        c.aud = Some(AUTH_REQUEST_AUDIENCE.into());
        c.nats.user_nkey = user.into();
        c.nats.server_id.id = server.public_key().to_string();
        c.nats.connect_opts.password = "s3cret".into();
        c.nats.connect_opts.token = "tok".into();
        c
    }

    #[test]
    fn request_round_trips_and_validates() {
        let server = KeyPair::generate(KeyKind::Server);
        let user = KeyPair::generate(KeyKind::User);
        let mut c = request(&server, user.public_key().as_str());
        c.exp = Some(2_000_000_000);
        let token = c.encode_at(&server, 1_700_000_000).unwrap();
        let back = decode::<AuthorizationRequest>(&token).unwrap();
        assert_eq!(back, c);
        assert!(back.validate(1_700_000_001).is_empty());
        // Written as the server writes it: the type, protocol always present.
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["nats"]["type"], "authorization_request");
        assert_eq!(json["nats"]["connect_opts"]["protocol"], 0);
        assert!(json["nats"].get("client_tls").is_none());
        // Never a password or a token in a debug print.
        let dbg = format!("{:?}", back.nats.connect_opts);
        assert!(!dbg.contains("s3cret") && !dbg.contains("tok\""), "{dbg}");
    }

    #[test]
    fn request_lists_every_problem() {
        let server = KeyPair::generate(KeyKind::Server);
        let mut c = request(&server, "not-a-key");
        c.aud = Some("someone-else".into());
        c.nats.server_id.xkey = "XBAD".into();
        c.exp = Some(10);
        c.iss = KeyPair::generate(KeyKind::Account).public_key().to_string();
        let kinds: Vec<IssueKind> = c.validate(20).into_iter().map(|i| i.kind).collect();
        assert!(kinds.contains(&IssueKind::Expired { exp: 10 }));
        assert!(kinds.iter().any(|k| matches!(
            k,
            IssueKind::InvalidKeyField {
                field: "user_nkey",
                ..
            }
        )));
        assert!(
            kinds
                .iter()
                .any(|k| matches!(k, IssueKind::WrongAudience { .. }))
        );
        assert!(
            kinds
                .iter()
                .any(|k| matches!(k, IssueKind::InvalidKeyField { field: "iss", .. }))
        );
        assert!(kinds.iter().any(|k| matches!(
            k,
            IssueKind::InvalidKeyField {
                field: "server_id.xkey",
                ..
            }
        )));
    }

    #[test]
    fn request_signed_by_a_non_server_key_is_refused() {
        let acct = KeyPair::generate(KeyKind::Account);
        let user = KeyPair::generate(KeyKind::User);
        let mut c = request(&acct, user.public_key().as_str());
        assert!(c.encode(&acct).is_err());
    }

    #[test]
    fn request_from_a_server_decodes_with_absent_fields() {
        // The shape nats-server 2.15 writes, fields it leaves out included.
        let server = KeyPair::generate(KeyKind::Server);
        let user = KeyPair::generate(KeyKind::User);
        let payload = serde_json::json!({
            "aud": AUTH_REQUEST_AUDIENCE, "exp": 4_000_000_000i64, "iat": 1, "iss": server.public_key().as_str(),
            "jti": "J", "sub": "ACALLOUT",
            "nats": {"server_id": {"name": "n", "host": "0.0.0.0", "id": server.public_key().as_str(), "version": "2.15.1"},
                      "user_nkey": user.public_key().as_str(),
                      "client_info": {"host": "127.0.0.1", "id": 5, "user": "UABC", "kind": "Client", "type": "nats"},
                      "connect_opts": {"jwt": "eyJ", "user": "ada", "pass": "pw", "lang": "rust", "protocol": 1},
                      "client_tls": {"version": "1.3", "verified_chains": [["-----BEGIN CERTIFICATE-----\n"]]},
                      "type": "authorization_request", "version": 2}
        });
        let b64 = data_encoding::BASE64URL_NOPAD;
        let mut token = b64.encode(crate::jwt::HEADER_JSON.as_bytes());
        token.push('.');
        token.push_str(&b64.encode(payload.to_string().as_bytes()));
        let sig = server.sign(token.as_bytes());
        token.push('.');
        token.push_str(&b64.encode(&sig));
        let c = decode::<AuthorizationRequest>(&token).unwrap();
        assert_eq!(c.nats.connect_opts.username, "ada");
        assert_eq!(c.nats.client_info.client_type, "nats");
        assert_eq!(c.nats.client_tls.unwrap().verified_chains.len(), 1);
    }

    #[test]
    fn response_needs_exactly_one_of_jwt_and_error() {
        let acct = KeyPair::generate(KeyKind::Account);
        let user = KeyPair::generate(KeyKind::User);
        let server = KeyPair::generate(KeyKind::Server);
        let mut ok = AuthorizationResponseClaims::new(
            user.public_key().as_str(),
            server.public_key().as_str(),
            Ok("eyJ.a.b".into()),
        );
        let token = ok.encode(&acct).unwrap();
        let back = decode::<AuthorizationResponse>(&token).unwrap();
        assert!(back.validate(0).is_empty());
        assert_eq!(back.nats.jwt, "eyJ.a.b");

        let mut both = back.clone();
        both.nats.error = "no".into();
        let mut neither = back.clone();
        neither.nats.jwt.clear();
        neither.aud = Some("nobody".into());
        let k = |c: &AuthorizationResponseClaims| -> Vec<IssueKind> {
            c.validate(0).into_iter().map(|i| i.kind).collect()
        };
        assert_eq!(k(&both), vec![IssueKind::AuthResponseJwtAndError]);
        let n = k(&neither);
        assert!(n.contains(&IssueKind::AuthResponseEmpty));
        assert!(
            n.iter()
                .any(|i| matches!(i, IssueKind::InvalidKeyField { field: "aud", .. }))
        );
        // A user key cannot sign a response.
        assert!(ok.encode(&user).is_err());
    }

    #[test]
    fn external_authorization_lists_every_problem() {
        let user = KeyPair::generate(KeyKind::User).public_key().to_string();
        let acct = KeyPair::generate(KeyKind::Account).public_key().to_string();
        let ok = ExternalAuthorization {
            auth_users: vec![user.clone()],
            allowed_accounts: vec![acct.clone()],
            xkey: Some(crate::CurveKeyPair::generate().public_key()),
        };
        let mut issues = Vec::new();
        ok.validate(&mut issues);
        assert!(issues.is_empty(), "{issues:?}");

        let bad = ExternalAuthorization {
            auth_users: vec![acct.clone()],
            allowed_accounts: vec![ANY_ACCOUNT.into(), user.clone()],
            xkey: Some(user.clone()),
        };
        let mut issues = Vec::new();
        bad.validate(&mut issues);
        let kinds: Vec<IssueKind> = issues.into_iter().map(|i| i.kind).collect();
        assert!(kinds.contains(&IssueKind::CalloutAnyAccountNotAlone));
        assert!(kinds.iter().any(|k| matches!(
            k,
            IssueKind::InvalidKeyField {
                field: "authorization.auth_users",
                ..
            }
        )));
        assert!(kinds.iter().any(|k| matches!(
            k,
            IssueKind::InvalidKeyField {
                field: "authorization.allowed_accounts",
                ..
            }
        )));
        assert!(kinds.iter().any(|k| matches!(
            k,
            IssueKind::InvalidKeyField {
                field: "authorization.xkey",
                ..
            }
        )));

        let orphan = ExternalAuthorization {
            allowed_accounts: vec![acct],
            ..Default::default()
        };
        let mut issues = Vec::new();
        orphan.validate(&mut issues);
        assert_eq!(issues[0].kind, IssueKind::CalloutAccountsWithoutUsers);
    }
}
