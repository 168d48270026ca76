//! Operator claims: the root of trust, its signing keys, service URLs and system account.

use serde::{Deserialize, Serialize};

use super::{Claims, OperatorClaims, ser};
use crate::jwt::ClaimBody;
use crate::keys::{AccountPublicKey, KeyKind, OperatorPublicKey};
use crate::validation::{IssueKind, ValidationIssue};

/// The `nats` body of an operator JWT.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Operator signing keys allowed to sign accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<OperatorPublicKey>,
    /// Account server / push URL.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub account_server_url: Option<String>,
    /// `nats://` or `tls://` URLs of the operator's servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_service_urls: Vec<String>,
    /// The system account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_account: Option<AccountPublicKey>,
    /// Minimum server version, `major.minor.update`.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub assert_server_version: Option<String>,
    /// The identity key may sign only the operator JWT itself.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub strict_signing_key_usage: bool,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl OperatorClaims {
    /// New self-signed operator claims (`sub` = `iss` = `subject`).
    pub fn new(subject: &OperatorPublicKey, name: &str) -> Self {
        let mut c = Claims::with_body(subject.as_str(), name, Operator::default());
        c.iss = subject.to_string();
        c
    }

    /// Go `DidSign`: whether `issuer` may sign a claim whose subject is `subject`.
    pub fn did_sign(&self, issuer: &str, subject: &str) -> bool {
        if self.nats.signing_keys.iter().any(|k| k.as_str() == issuer) {
            return true;
        }
        issuer == self.sub && (!self.nats.strict_signing_key_usage || subject == self.sub)
    }
}

fn check_service_url(u: &str) -> Result<(), String> {
    let p = url::Url::parse(u).map_err(|e| e.to_string())?;
    let scheme = p.scheme().to_ascii_lowercase();
    if scheme != "nats" && scheme != "tls" {
        return Err(format!("scheme {scheme:?} is not nats or tls"));
    }
    if !p.username().is_empty() || p.password().is_some() {
        return Err("user info is not allowed".into());
    }
    if !p.path().is_empty() {
        return Err("paths are not supported".into());
    }
    if p.host_str().is_none_or(str::is_empty) {
        return Err("a host is required".into());
    }
    Ok(())
}

fn valid_version(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u64>().is_ok()
        })
}

impl ClaimBody for Operator {
    const TYPE: Option<&'static str> = Some("operator");

    fn allowed_issuers() -> &'static [KeyKind] {
        &[KeyKind::Operator]
    }

    fn subject_kind() -> Option<KeyKind> {
        Some(KeyKind::Operator)
    }

    fn validate_body(claims: &Claims<Self>, issues: &mut Vec<ValidationIssue>) {
        let o = &claims.nats;
        if let Some(u) = o.account_server_url.as_ref().filter(|u| !u.is_empty())
            && let Err(e) = url::Url::parse(u)
        {
            issues.push(ValidationIssue::error(IssueKind::InvalidUrl {
                field: "account_server_url",
                value: u.clone(),
                reason: e.to_string(),
            }));
        }
        for u in &o.operator_service_urls {
            if let Err(reason) = check_service_url(u) {
                issues.push(ValidationIssue::error(IssueKind::InvalidUrl {
                    field: "operator_service_urls",
                    value: u.clone(),
                    reason,
                }));
            }
        }
        if let Some(v) = o.assert_server_version.as_ref().filter(|v| !v.is_empty())
            && !valid_version(v)
        {
            issues.push(ValidationIssue::error(IssueKind::InvalidServerVersion {
                value: v.clone(),
            }));
        }
    }
}
