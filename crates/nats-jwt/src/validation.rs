//! Validation results: every problem found in a claim, each marked blocking or warning, with
//! expiry/not-before problems marked as time checks (Go `ValidationResults`).

use std::fmt;

/// What is wrong. `Display` gives the message shown to people.
#[derive(thiserror::Error, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueKind {
    /// `exp` is in the past.
    #[error("claim is expired (exp {exp})")]
    Expired {
        /// The expiry, unix seconds.
        exp: i64,
    },
    /// `nbf` is in the future.
    #[error("claim is not yet valid (nbf {nbf})")]
    NotYetValid {
        /// The not-before time, unix seconds.
        nbf: i64,
    },
    /// `sub` is empty.
    #[error("claim has no subject")]
    MissingSubject,
    /// `name` is empty (nsc cannot store such a JWT).
    #[error("claim has no name")]
    MissingName,
    /// `sub` is not a public key of the kind this claim type needs.
    #[error("subject {subject:?} is not a valid {expected} public key")]
    InvalidSubjectKey {
        /// The subject.
        subject: String,
        /// The required kind.
        expected: crate::keys::KeyKind,
    },
    /// More imports than the account limit allows.
    #[error("the account contains {count} imports, more than the {max} allowed by the operator")]
    TooManyImports {
        /// Number of imports.
        count: usize,
        /// Limit.
        max: i64,
    },
    /// More exports than the account limit allows.
    #[error("the account contains {count} exports, more than the {max} allowed by the operator")]
    TooManyExports {
        /// Number of exports.
        count: usize,
        /// Limit.
        max: i64,
    },
    /// A wildcard export while `wildcards` is false.
    #[error("export {subject:?} uses wildcards, which the account limits do not allow")]
    WildcardExportNotAllowed {
        /// Export subject.
        subject: String,
    },
    /// Two exports of the same type overlap.
    #[error("exports {first:?} and {second:?} overlap")]
    OverlappingExports {
        /// One subject.
        first: String,
        /// The other.
        second: String,
    },
    /// Both tiered and flat JetStream limits are set.
    #[error("cannot set both tiered and non-tiered JetStream limits")]
    TieredAndFlatJetStream,
    /// A tier name is blank.
    #[error("JetStream tier name cannot be empty")]
    BlankTier,
    /// A stream export has a response type.
    #[error("stream export {subject:?} has a response type (services only)")]
    ResponseTypeOnStream {
        /// Export subject.
        subject: String,
    },
    /// A stream export has a response threshold.
    #[error("stream export {subject:?} has a response threshold (services only)")]
    ResponseThresholdOnStream {
        /// Export subject.
        subject: String,
    },
    /// A negative response threshold.
    #[error("export {subject:?} has a negative response threshold")]
    NegativeResponseThreshold {
        /// Export subject.
        subject: String,
    },
    /// Latency tracking on a stream export.
    #[error("stream export {subject:?} has latency tracking (services only)")]
    LatencyOnStream {
        /// Export subject.
        subject: String,
    },
    /// Sampling outside 1..=100.
    #[error("export {subject:?} has latency sampling {sampling}, expected 1..100 or headers")]
    InvalidLatencySampling {
        /// Export subject.
        subject: String,
        /// Sampling value.
        sampling: u8,
    },
    /// Latency results subject has wildcards.
    #[error("export {subject:?} publishes latency results to wildcard subject {results:?}")]
    LatencyResultsWildcard {
        /// Export subject.
        subject: String,
        /// Results subject.
        results: String,
    },
    /// `account_token_position` does not point at a `*` token.
    #[error("export {subject:?}: account token position {position} is not a `*` token")]
    InvalidAccountTokenPosition {
        /// Export subject.
        subject: String,
        /// Position (1-based).
        position: u32,
    },
    /// `account_token_position` on an export whose subject has no wildcard.
    #[error("export {subject:?}: account token position needs a wildcard subject")]
    AccountTokenPositionWithoutWildcard {
        /// Export subject.
        subject: String,
    },
    /// `allow_trace` on a stream export (services only).
    #[error("stream export {subject:?} sets allow_trace (service exports only)")]
    AllowTraceOnStreamExport {
        /// Export subject.
        subject: String,
    },
    /// `share` on a stream import (services only).
    #[error("stream import {subject:?} sets share (service imports only)")]
    ShareOnStreamImport {
        /// Import subject.
        subject: String,
    },
    /// `allow_trace` on a service import (streams only).
    #[error("service import {subject:?} sets allow_trace (stream imports only)")]
    AllowTraceOnServiceImport {
        /// Import subject.
        subject: String,
    },
    /// An export or activation subject carries a queue group.
    #[error("subject {subject:?} may not carry a queue group here")]
    QueueInExport {
        /// Subject.
        subject: String,
    },
    /// A `src` entry is not a CIDR.
    #[error("{value:?} is not a valid CIDR")]
    InvalidCidr {
        /// The entry.
        value: String,
    },
    /// A time range is not `HH:MM:SS`–`HH:MM:SS`.
    #[error("invalid time range {start:?}-{end:?} (expected HH:MM:SS)")]
    InvalidTimeRange {
        /// Start.
        start: String,
        /// End.
        end: String,
    },
    /// A publish permission uses the queue form.
    #[error("publish permission {subject:?} may not contain a queue group")]
    QueueInPublishPermission {
        /// Subject.
        subject: String,
    },
    /// A user signed by a scoped key carries permissions or limits.
    #[error("a user signed by a scoped signing key must not set permissions or limits")]
    ScopedUserHasPermissions,
    /// A user's issuer is neither the account nor one of its signing keys.
    #[error("issuer {issuer} is neither the account nor one of its signing keys")]
    UnknownIssuer {
        /// The issuer.
        issuer: String,
    },
    /// `issuer_account` missing or wrong for a user signed by a signing key.
    #[error("issuer_account must be {expected} when signed by an account signing key")]
    IssuerAccountMismatch {
        /// The account key expected.
        expected: String,
    },
    /// A URL field does not parse or breaks its rules.
    #[error("{field} {value:?} is invalid: {reason}")]
    InvalidUrl {
        /// Field name.
        field: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// `assert_server_version` is not `major.minor.update`.
    #[error("assert_server_version {value:?} is not major.minor.update")]
    InvalidServerVersion {
        /// The value.
        value: String,
    },
    /// An import's activation token does not decode as an activation.
    #[error("import {subject:?} has an invalid activation token: {reason}")]
    InvalidImportToken {
        /// Import subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// An import's activation token does not fit the import.
    #[error("import {subject:?}: activation token mismatch: {reason}")]
    ImportTokenMismatch {
        /// Import subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The deprecated `to` field is used.
    #[error("import {subject:?} uses the deprecated field `to` (use local_subject)")]
    DeprecatedImportTo {
        /// Import subject.
        subject: String,
    },
    /// Both `to` and `local_subject` are set.
    #[error("import {subject:?} sets both `to` and local_subject")]
    ImportToAndLocalSubject {
        /// Import subject.
        subject: String,
    },
    /// `local_subject` breaks the reference rules.
    #[error("import {subject:?}: local_subject {local_subject:?} is invalid: {reason}")]
    InvalidLocalSubject {
        /// Import subject.
        subject: String,
        /// Local subject.
        local_subject: String,
        /// Why.
        reason: String,
    },
    /// Two service imports overlap in the importer's namespace.
    #[error("service imports {first:?} and {second:?} overlap")]
    OverlappingServiceImports {
        /// One local subject.
        first: String,
        /// The other.
        second: String,
    },
    /// Mapping weights add up to more than 100 (among the destinations without a cluster,
    /// or among those of one cluster).
    #[error(
        "mapping of {from:?} has weights adding up to {total}{}, more than 100",
        cluster.as_ref().map(|c| format!(" in cluster {c:?}")).unwrap_or_default()
    )]
    MappingWeightsTooHigh {
        /// Source subject of the mapping.
        from: String,
        /// Sum of weights.
        total: u32,
        /// The cluster whose destinations add up too high; `None` for those without one.
        cluster: Option<String>,
    },
    /// One destination subject listed twice for a source (nats-server then drops the
    /// whole mapping).
    #[error("mapping of {from:?} lists destination {destination:?} more than once")]
    MappingDuplicateDestination {
        /// Source subject of the mapping.
        from: String,
        /// Destination.
        destination: String,
    },
    /// A mapping destination has wildcards.
    #[error("mapping of {from:?} has wildcard destination {destination:?}")]
    MappingDestinationWildcard {
        /// Source subject of the mapping.
        from: String,
        /// Destination.
        destination: String,
    },
    /// `description` or `info_url` over 8 KiB.
    #[error("{field} is longer than 8 KiB")]
    InfoTooLong {
        /// Field name.
        field: &'static str,
    },
    /// A revocation key is neither a user key nor `"*"`.
    #[error("revocation entry {key:?} is neither a user public key nor \"*\"")]
    InvalidRevocationKey {
        /// The key.
        key: String,
    },
    /// A self-signed account carries limits (the operator does not vouch for them).
    #[error("self-signed account JWT carries limits; they are not vouched for by an operator")]
    SelfSignedWithLimits,
    /// A field that must hold a public key of one kind holds something else.
    #[error("{field} {value:?} is not a valid {expected} public key")]
    InvalidKeyField {
        /// Where the key is (`authorization.auth_users`, `user_nkey`, `aud`…).
        field: &'static str,
        /// What was found.
        value: String,
        /// The kind wanted (`user`, `account`, `server`, `curve`).
        expected: &'static str,
    },
    /// An external authorization lists allowed accounts but no auth users.
    #[error("external authorization cannot have allowed accounts without auth users")]
    CalloutAccountsWithoutUsers,
    /// `"*"` among other allowed accounts.
    #[error("external authorization allowed_accounts can be a list of accounts or \"*\" alone")]
    CalloutAnyAccountNotAlone,
    /// An authorization response with both a user JWT and an error.
    #[error("authorization response sets both a user JWT and an error")]
    AuthResponseJwtAndError,
    /// An authorization response with neither a user JWT nor an error.
    #[error("authorization response needs a user JWT or an error")]
    AuthResponseEmpty,
    /// An authorization request's audience is not `nats-authorization-request`.
    #[error("authorization request audience is {found:?}, not {expected:?}")]
    WrongAudience {
        /// The audience wanted.
        expected: &'static str,
        /// The audience found.
        found: String,
    },
}

/// One problem found by `validate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationIssue {
    /// What is wrong.
    pub kind: IssueKind,
    /// Whether the server would refuse the JWT because of it.
    pub blocking: bool,
    /// Whether it is an expiry / not-before check (depends on `now`).
    pub time_check: bool,
}

impl ValidationIssue {
    /// A blocking issue.
    pub fn error(kind: IssueKind) -> Self {
        ValidationIssue {
            kind,
            blocking: true,
            time_check: false,
        }
    }

    /// A non-blocking warning.
    pub fn warning(kind: IssueKind) -> Self {
        ValidationIssue {
            kind,
            blocking: false,
            time_check: false,
        }
    }

    /// A time check: not blocking by itself (as in Go), see [`is_blocking_with_time`].
    pub fn time(kind: IssueKind) -> Self {
        ValidationIssue {
            kind,
            blocking: false,
            time_check: true,
        }
    }
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match (self.blocking, self.time_check) {
            (_, true) => "time",
            (true, _) => "error",
            (false, _) => "warning",
        };
        write!(f, "{tag}: {}", self.kind)
    }
}

/// Whether any issue is blocking (time checks excluded, as for a server push).
pub fn is_blocking(issues: &[ValidationIssue]) -> bool {
    issues.iter().any(|i| i.blocking)
}

/// Whether any issue is blocking, counting time checks as blocking (as at connect/use time
/// and in `nsc validate`).
pub fn is_blocking_with_time(issues: &[ValidationIssue]) -> bool {
    issues.iter().any(|i| i.blocking || i.time_check)
}
