//! The policy compiler: where every operator, account and user JWT's claims are
//! born. Each function is a pure mapping from a stored spec to claims; signing
//! happens at the edge, with the key the store unseals.

use nats_jwt::{
    AccountClaims, AccountPublicKey, Export, ExportType, OperatorClaims, OperatorPublicKey,
    ResponseType, Subject, UserClaims, UserPublicKey, ValidationIssue,
};
use serde::{Deserialize, Serialize};

use crate::names::{AccountName, OperatorName, UserName};
use crate::spec::{AccountSpec, UserSpec};

/// What Warden decides about its operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorSpec {
    /// Operator signing keys (the first one issues accounts).
    pub signing_keys: Vec<OperatorPublicKey>,
    /// The system account.
    pub system_account: AccountPublicKey,
    /// `operator_service_urls`, e.g. `nats://localhost:4222` (nsc's default).
    #[serde(default)]
    pub service_urls: Vec<String>,
    /// `account_server_url` (nsc pushes there when it starts with `nats://`).
    #[serde(default)]
    pub account_server_url: Option<String>,
}

/// Claims of the operator JWT (self-signed by the operator identity key).
pub fn compile_operator(
    key: &OperatorPublicKey,
    name: &OperatorName,
    spec: &OperatorSpec,
) -> OperatorClaims {
    let mut claims = OperatorClaims::new(key, name.as_str());
    claims.nats.signing_keys = spec.signing_keys.clone();
    claims.nats.system_account = Some(spec.system_account.clone());
    claims.nats.operator_service_urls = spec.service_urls.clone();
    claims.nats.account_server_url = spec.account_server_url.clone();
    claims
}

/// Claims of an account JWT.
pub fn compile_account(
    key: &AccountPublicKey,
    name: &AccountName,
    spec: &AccountSpec,
) -> AccountClaims {
    let mut claims = AccountClaims::new(key, name.as_str());
    let body = &mut claims.nats;
    body.limits = spec.limits.to_claims();
    body.exports = spec.exports.clone();
    body.imports = spec.imports.clone();
    body.default_permissions = spec.default_permissions.clone();
    body.revocations = spec.revocations.clone();
    body.signing_keys = spec.signing_keys.clone();
    body.mappings = spec.mappings.clone();
    body.description = spec.description.clone();
    body.info_url = spec.info_url.clone();
    body.tags = spec.tags.clone();
    body.authorization = spec.authorization.clone();
    claims.exp = spec.expires_at;
    claims
}

/// Claims of a user JWT. `issuer_account` is set only when a signing key (not the
/// account identity) will sign it.
pub fn compile_user(
    key: &UserPublicKey,
    name: &UserName,
    spec: &UserSpec,
    issuer_account: Option<&AccountPublicKey>,
) -> UserClaims {
    let mut claims = UserClaims::new(key, name.as_str());
    claims.nats.limits = spec.to_claims();
    claims.nats.issuer_account = issuer_account.cloned();
    claims.nats.tags = spec.tags.clone();
    claims.exp = spec.expires_at;
    claims
}

/// The system account as nsc creates it: unlimited, with the two monitoring
/// exports other accounts may import for their own account (`account_token_position`).
pub fn system_account_spec() -> AccountSpec {
    let exports = vec![
        Export {
            name: Some("account-monitoring-services".into()),
            subject: subject("$SYS.REQ.ACCOUNT.*.*"),
            export_type: ExportType::Service,
            token_req: false,
            revocations: Default::default(),
            response_type: Some(ResponseType::Stream),
            response_threshold_ns: None,
            service_latency: None,
            account_token_position: Some(4),
            advertise: false,
            allow_trace: false,
            description: Some(
                "Request account specific monitoring services for: SUBSZ, CONNZ, LEAFZ, JSZ and INFO"
                    .into(),
            ),
            info_url: None,
        },
        Export {
            name: Some("account-monitoring-streams".into()),
            subject: subject("$SYS.ACCOUNT.*.>"),
            export_type: ExportType::Stream,
            token_req: false,
            revocations: Default::default(),
            response_type: None,
            response_threshold_ns: None,
            service_latency: None,
            account_token_position: Some(3),
            advertise: false,
            allow_trace: false,
            description: Some(
                "Account specific monitoring stream".into(),
            ),
            info_url: None,
        },
    ];
    AccountSpec {
        exports,
        ..AccountSpec::default()
    }
}

fn subject(s: &'static str) -> Subject {
    // Literal subjects written in this file; a typo here is a programming error
    // caught by the tests below.
    Subject::new(s).expect("built-in subject is valid")
}

/// A spec that would compile into claims NATS refuses.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.issues))]
pub struct PolicyError {
    /// Every blocking problem found.
    pub issues: Vec<ValidationIssue>,
}

fn render(issues: &[ValidationIssue]) -> String {
    let list: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    format!("the resulting JWT would be refused: {}", list.join("; "))
}

/// Keeps only what makes claims unusable: blocking issues that are not about time
/// (an expiry in the future is fine; one in the past is reported by the caller).
pub fn refuse_blocking(issues: Vec<ValidationIssue>) -> Result<Vec<ValidationIssue>, PolicyError> {
    let (blocking, rest): (Vec<_>, Vec<_>) = issues
        .into_iter()
        .partition(|i| i.blocking && !i.time_check);
    if blocking.is_empty() {
        Ok(rest)
    } else {
        Err(PolicyError { issues: blocking })
    }
}

/// nats-server's default `max_payload`: the largest message a client may publish, so the
/// largest account JWT a resolver push (`$SYS.REQ.CLAIMS.UPDATE`, the raw JWT as the
/// whole payload, no headers) can carry. nats-server 2.15's JWT decoder also refuses any
/// token over this size outright, even in `resolver_preload`: the server then refuses to
/// start with the whole configuration.
pub const NATS_DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// Room kept below [`NATS_DEFAULT_MAX_PAYLOAD`] for what may travel with an account JWT
/// in the same message: NATS headers count against `max_payload` together with the
/// payload (a tool or a hop that adds a tracing or request-info header to a push spends
/// the same budget), and full resolvers exchange JWTs as `<56-character key>|<jwt>`
/// lines. 4 KiB (nats-server's default `max_control_line`) covers those many times over
/// while costing 0.4% of the budget.
pub const ACCOUNT_JWT_PUSH_MARGIN: usize = 4096;

/// The default bound on an account JWT's size, in bytes: nats-server's default
/// `max_payload` less [`ACCOUNT_JWT_PUSH_MARGIN`] (1,044,480).
pub const DEFAULT_MAX_ACCOUNT_JWT: usize = NATS_DEFAULT_MAX_PAYLOAD - ACCOUNT_JWT_PUSH_MARGIN;

/// An account JWT larger than the bound: the resolver push would be refused
/// ("Payload size limit exceeded") and nats-server 2.15 refuses to start with it preloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "account {account}: its JWT is {size} bytes, over the bound of {bound} bytes on an account JWT \
     (what nats-server accepts in one resolver push, with room for the envelope); \
     fewer or shorter exports, imports, revocations or descriptions make it smaller"
)]
pub struct AccountJwtTooLarge {
    /// The account's name.
    pub account: String,
    /// The JWT's size in bytes.
    pub size: usize,
    /// The bound in force.
    pub bound: usize,
}

/// Refuses an account JWT longer than `bound` bytes (a JWT exactly `bound` long passes).
pub fn check_account_jwt_size(
    account: &str,
    jwt: &str,
    bound: usize,
) -> Result<(), AccountJwtTooLarge> {
    let size = jwt.len();
    if size > bound {
        Err(AccountJwtTooLarge {
            account: account.to_string(),
            size,
            bound,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_jwt::{KeyKind, KeyPair};

    fn account_key() -> (KeyPair, AccountPublicKey) {
        let kp = KeyPair::generate(KeyKind::Account);
        let pk = kp.account_public_key().unwrap();
        (kp, pk)
    }

    #[test]
    fn account_jwt_size_bound_is_inclusive_and_named() {
        assert_eq!(DEFAULT_MAX_ACCOUNT_JWT, 1_044_480);
        assert!(check_account_jwt_size("APP", &"x".repeat(10), 10).is_ok());
        let e = check_account_jwt_size("APP", &"x".repeat(11), 10).unwrap_err();
        assert_eq!((e.size, e.bound), (11, 10));
        let text = e.to_string();
        assert!(
            text.contains("account APP") && text.contains("11 bytes") && text.contains("10 bytes"),
            "{text}"
        );
    }

    #[test]
    fn system_account_matches_nsc_and_validates() {
        let (_, pk) = account_key();
        let name = AccountName::parse_any_case("SYS").unwrap();
        let claims = compile_account(&pk, &name, &system_account_spec());
        assert_eq!(claims.nats.exports.len(), 2);
        assert!(refuse_blocking(claims.validate(0)).is_ok());
    }

    #[test]
    fn account_spec_limits_reach_the_claims() {
        let (_, pk) = account_key();
        let mut spec = AccountSpec::default();
        spec.limits.conn = 3;
        spec.expires_at = Some(100);
        let claims = compile_account(&pk, &AccountName::parse_any_case("A").unwrap(), &spec);
        assert_eq!(claims.nats.limits.account.conn, 3);
        assert_eq!(claims.exp, Some(100));
        assert_eq!(claims.sub, pk.as_str());
    }

    #[test]
    fn wildcard_export_without_permission_is_refused() {
        let (_, pk) = account_key();
        let mut spec = system_account_spec();
        spec.limits.wildcards = false;
        spec.limits.exports = 10;
        let claims = compile_account(&pk, &AccountName::parse_any_case("SYS").unwrap(), &spec);
        let err = refuse_blocking(claims.validate(0)).unwrap_err();
        assert!(!err.issues.is_empty());
    }

    #[test]
    fn user_claims_carry_issuer_account_only_when_given() {
        let kp = KeyPair::generate(KeyKind::User);
        let pk = kp.user_public_key().unwrap();
        let (_, acc) = account_key();
        let name = UserName::parse_any_case("u").unwrap();
        let plain = compile_user(&pk, &name, &UserSpec::default(), None);
        assert!(plain.nats.issuer_account.is_none());
        assert_eq!(plain.nats.limits.subs, -1);
        let signed = compile_user(&pk, &name, &UserSpec::default(), Some(&acc));
        assert_eq!(signed.nats.issuer_account.as_ref(), Some(&acc));
    }
}
