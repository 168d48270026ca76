//! Account claims: imports, exports, limits, signing keys, revocations, default permissions
//! and subject mappings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::authorization::ExternalAuthorization;
use super::exports::{Export, validate_exports};
use super::imports::{Import, validate_imports};
use super::limits::OperatorLimits;
use super::signing_keys::SigningKey;
use super::types::{Permissions, WeightedMapping};
use super::{AccountClaims, Claims, UserClaims, ser};
use crate::jwt::ClaimBody;
use crate::keys::{AccountPublicKey, KeyKind, UserPublicKey};
use crate::subject::Subject;
use crate::validation::{IssueKind, ValidationIssue};

/// Longest `description` / `info_url` accepted (Go `Info` limit).
pub const MAX_INFO_LEN: usize = 8 * 1024;

/// The `nats` body of an account JWT.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Imports (sorted by subject when encoding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<Import>,
    /// Exports (sorted by subject when encoding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<Export>,
    /// Limits; always written. Absent on the wire means all zero.
    #[serde(default = "OperatorLimits::zero")]
    pub limits: OperatorLimits,
    /// Signing keys, plain or scoped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKey>,
    /// Revoked users: user key (or `"*"`) → unix seconds; users with `iat <=` that are revoked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, i64>,
    /// Permissions for users whose JWT sets none; always written.
    #[serde(default)]
    pub default_permissions: Permissions,
    /// Subject mappings: source → weighted destinations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mappings: BTreeMap<Subject, Vec<WeightedMapping>>,
    /// Description.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub description: Option<String>,
    /// Info URL.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub info_url: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Auth callout settings (nats-server ≥ 2.10); left out when empty, so accounts
    /// without it encode as before.
    #[serde(default, skip_serializing_if = "ExternalAuthorization::is_empty")]
    pub authorization: ExternalAuthorization,
}

impl Account {
    /// Revokes `user` (a user key, or `"*"` for all users) for JWTs issued at or before `at`.
    /// An existing later revocation is kept.
    pub fn revoke(&mut self, user: &str, at: i64) {
        let entry = self.revocations.entry(user.to_string()).or_insert(at);
        if *entry < at {
            *entry = at;
        }
    }

    /// Whether a user JWT for `user` issued at `iat` is revoked (`revocation >= iat`).
    pub fn is_revoked(&self, user: &UserPublicKey, iat: i64) -> bool {
        [user.as_str(), "*"]
            .iter()
            .any(|k| self.revocations.get(*k).is_some_and(|&t| t >= iat))
    }

    /// Whether `key` is one of this account's signing keys.
    pub fn signing_key(&self, key: &str) -> Option<&SigningKey> {
        self.signing_keys.iter().find(|k| k.key().as_str() == key)
    }
}

impl AccountClaims {
    /// New account claims with nsc/Go defaults: unlimited NATS and account limits,
    /// wildcards allowed, JetStream disabled.
    pub fn new(subject: &AccountPublicKey, name: &str) -> Self {
        Claims::with_body(subject.as_str(), name, Account::default())
    }

    /// Checks that `user` may be used with this account: issued by the account key or one of
    /// its signing keys, and empty when issued by a scoped signing key.
    pub fn check_user(&self, user: &UserClaims) -> Vec<ValidationIssue> {
        let mut issues = Vec::new();
        if user.iss == self.sub {
            return issues;
        }
        match self.nats.signing_key(&user.iss) {
            None => issues.push(ValidationIssue::error(IssueKind::UnknownIssuer {
                issuer: user.iss.clone(),
            })),
            Some(SigningKey::Scoped(_)) if !user.nats.limits.is_empty() => {
                issues.push(ValidationIssue::error(IssueKind::ScopedUserHasPermissions));
            }
            Some(_) => {}
        }
        if user.nats.issuer_account.as_ref().map(|a| a.as_str()) != Some(self.sub.as_str()) {
            issues.push(ValidationIssue::error(IssueKind::IssuerAccountMismatch {
                expected: self.sub.clone(),
            }));
        }
        issues
    }
}

/// Checks `description` / `info_url` (Go `Info`).
pub(crate) fn validate_info(
    description: &Option<String>,
    info_url: &Option<String>,
    issues: &mut Vec<ValidationIssue>,
) {
    if description.as_ref().is_some_and(|d| d.len() > MAX_INFO_LEN) {
        issues.push(ValidationIssue::error(IssueKind::InfoTooLong {
            field: "description",
        }));
    }
    if let Some(u) = info_url.as_ref().filter(|u| !u.is_empty()) {
        if u.len() > MAX_INFO_LEN {
            issues.push(ValidationIssue::error(IssueKind::InfoTooLong {
                field: "info_url",
            }));
        }
        let ok = url::Url::parse(u).is_ok_and(|p| p.host_str().is_some_and(|h| !h.is_empty()));
        if !ok {
            issues.push(ValidationIssue::error(IssueKind::InvalidUrl {
                field: "info_url",
                value: u.clone(),
                reason: "must be a URL with a scheme and a host".into(),
            }));
        }
    }
}

fn validate_mappings(
    mappings: &BTreeMap<Subject, Vec<WeightedMapping>>,
    issues: &mut Vec<ValidationIssue>,
) {
    for (source, dests) in mappings {
        // nats-server adds weights up per cluster: destinations without a cluster
        // share one budget of 100, each named cluster has its own.
        let mut totals: BTreeMap<Option<&str>, u32> = BTreeMap::new();
        for d in dests {
            let cluster = d.cluster.as_deref().filter(|c| !c.is_empty());
            *totals.entry(cluster).or_default() += d.effective_weight();
        }
        for (cluster, total) in totals {
            if total > 100 {
                issues.push(ValidationIssue::error(IssueKind::MappingWeightsTooHigh {
                    from: source.to_string(),
                    total,
                    cluster: cluster.map(str::to_string),
                }));
            }
        }
        for (i, d) in dests.iter().enumerate() {
            if d.subject.has_wildcards() {
                issues.push(ValidationIssue::error(
                    IssueKind::MappingDestinationWildcard {
                        from: source.to_string(),
                        destination: d.subject.to_string(),
                    },
                ));
            }
            // The server keys destinations by subject alone, whatever their cluster.
            if dests[..i].iter().any(|e| e.subject == d.subject) {
                issues.push(ValidationIssue::error(
                    IssueKind::MappingDuplicateDestination {
                        from: source.to_string(),
                        destination: d.subject.to_string(),
                    },
                ));
            }
        }
    }
}

impl ClaimBody for Account {
    const TYPE: Option<&'static str> = Some("account");

    fn allowed_issuers() -> &'static [KeyKind] {
        &[KeyKind::Operator, KeyKind::Account]
    }

    fn subject_kind() -> Option<KeyKind> {
        Some(KeyKind::Account)
    }

    fn prepare(&mut self) {
        self.imports
            .sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
        self.exports
            .sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
    }

    fn validate_body(claims: &Claims<Self>, issues: &mut Vec<ValidationIssue>) {
        let a = &claims.nats;
        validate_imports(&a.imports, &claims.sub, &a.limits, issues);
        validate_exports(&a.exports, &a.limits, issues);
        a.limits.validate(issues);
        a.default_permissions.validate(issues);
        validate_mappings(&a.mappings, issues);
        validate_info(&a.description, &a.info_url, issues);
        a.authorization.validate(issues);
        for sk in &a.signing_keys {
            if let SigningKey::Scoped(scope) = sk {
                scope.template.validate(issues);
            }
        }
        for key in a.revocations.keys() {
            if key != "*" && UserPublicKey::new(key).is_err() {
                issues.push(ValidationIssue::warning(IssueKind::InvalidRevocationKey {
                    key: key.clone(),
                }));
            }
        }
        if !claims.iss.is_empty() && claims.iss == claims.sub && !a.limits.is_unlimited() {
            issues.push(ValidationIssue::warning(IssueKind::SelfSignedWithLimits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(s: &str, weight: Option<u8>, cluster: Option<&str>) -> WeightedMapping {
        WeightedMapping {
            subject: Subject::new(s).unwrap(),
            weight,
            cluster: cluster.map(str::to_string),
        }
    }

    fn issues(dests: Vec<WeightedMapping>) -> Vec<IssueKind> {
        let mut m = BTreeMap::new();
        m.insert(Subject::new("a").unwrap(), dests);
        let mut out = Vec::new();
        validate_mappings(&m, &mut out);
        out.into_iter().map(|i| i.kind).collect()
    }

    #[test]
    fn mapping_weights_add_up_per_cluster() {
        // Absent weight = 100, alone it is fine.
        assert!(issues(vec![dest("b", None, None)]).is_empty());
        assert!(issues(vec![dest("b", Some(50), None), dest("c", Some(50), None)]).is_empty());
        // Under 100 is fine (the server keeps the rest on the source subject).
        assert!(issues(vec![dest("b", Some(30), None)]).is_empty());
        // A cluster's destinations have their own budget.
        assert!(
            issues(vec![
                dest("b", None, None),
                dest("c", Some(100), Some("east")),
            ])
            .is_empty()
        );
        let over = issues(vec![dest("b", Some(60), None), dest("c", None, None)]);
        assert!(matches!(
            over.as_slice(),
            [IssueKind::MappingWeightsTooHigh {
                total: 160,
                cluster: None,
                ..
            }]
        ));
        let over = issues(vec![
            dest("b", Some(60), Some("east")),
            dest("c", Some(41), Some("east")),
            dest("d", Some(100), Some("west")),
        ]);
        assert!(matches!(
            over.as_slice(),
            [IssueKind::MappingWeightsTooHigh { total: 101, cluster: Some(c), .. }] if c == "east"
        ));
        // u8 weights cannot wrap the sum.
        let over = issues(vec![dest("b", Some(200), None), dest("c", Some(156), None)]);
        assert!(matches!(
            over.as_slice(),
            [IssueKind::MappingWeightsTooHigh { total: 356, .. }]
        ));
    }

    #[test]
    fn mapping_destination_listed_twice_is_refused() {
        let dup = issues(vec![
            dest("b", Some(50), None),
            dest("b", Some(50), Some("east")),
        ]);
        assert!(matches!(
            dup.as_slice(),
            [IssueKind::MappingDuplicateDestination { destination, .. }] if destination == "b"
        ));
    }
}
