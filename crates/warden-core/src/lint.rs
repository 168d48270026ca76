//! `warden tenant lint`: the checks of a multi-tenant layout, as pure functions over what
//! the caller read (tenant limits, the subjects of shared accounts, declared or reported
//! JetStream streams). Every check returns findings; none stops at the first problem.
//!
//! What is risky, and why:
//! - a tenant with an unlimited (`-1`) limit can starve every other tenant on the server;
//! - a tenant-first subject (`acme.…`) in a shared account's exports, imports or user
//!   permissions lets that account read or forge one tenant's traffic outside the
//!   platform's prefixed imports, which are the only place a prefix is trustworthy;
//! - a stream with no `max_bytes`, `max_age` or `max_msgs` grows until the account's
//!   JetStream (unlimited for the platform) or the disk is full;
//! - a stream in the platform account that carries catalogue subjects without the tenant
//!   wildcard (`events.>`, `>`, `old.events.>`) sees either nothing of the tenants (their
//!   traffic arrives as `<slug>.events.…`) or everything of one unknown prefix;
//! - a stream in a shared account on one tenant's `<slug>.…` subjects keeps that tenant's
//!   data where the other users of the account can read it.

use serde::Serialize;

use crate::streams::{StreamConfig, subjects_overlap};
use crate::tenant::{TenantLimits, TenantSettings};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Works, but risky or wasteful: review it.
    Warning,
    /// Breaks tenant isolation or lets data be read outside its tenant.
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What a finding is about (its stable, machine-readable code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A tenant limit is `-1`.
    Unlimited,
    /// A shared account's export, import or user permission names `<slug>.…`.
    TenantSubjectInSharedAccount,
    /// A stream without `max_bytes`, `max_age` and `max_msgs`.
    UnboundedStream,
    /// A platform stream carries catalogue subjects without the tenant wildcard.
    PlatformStreamNotTenantWildcard,
    /// A stream in a shared account captures one tenant's `<slug>.…` subjects.
    TenantStreamInSharedAccount,
}

impl Code {
    /// The code as written in findings (`unbounded-stream`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unlimited => "unlimited",
            Code::TenantSubjectInSharedAccount => "tenant-subject-in-shared-account",
            Code::UnboundedStream => "unbounded-stream",
            Code::PlatformStreamNotTenantWildcard => "platform-stream-not-tenant-wildcard",
            Code::TenantStreamInSharedAccount => "tenant-stream-in-shared-account",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of `tenant lint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    pub code: Code,
    /// The tenant slug, account name or `ACCOUNT/STREAM` concerned.
    pub object: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)
    }
}

/// A tenant whose limits include `-1` (unlimited).
pub fn tenant_limits(slug: &str, limits: &TenantLimits) -> Option<Finding> {
    let unlimited = limits.unlimited();
    (!unlimited.is_empty()).then(|| Finding {
        severity: Severity::Warning,
        code: Code::Unlimited,
        object: slug.to_string(),
        message: format!("tenant {slug} has no limit on {}", unlimited.join(", ")),
    })
}

/// The tenant whose slug is the first token of `subject`, if any.
fn tenant_first<'a>(subject: &str, slugs: &'a [String]) -> Option<&'a str> {
    let first = subject.split('.').next().unwrap_or_default();
    slugs.iter().map(String::as_str).find(|s| *s == first)
}

/// A shared account (neither a tenant's own account nor the platform's generated
/// imports) naming a tenant-first subject: `what` says where (`export`, `user x`).
pub fn shared_subject(
    account: &str,
    what: &str,
    subject: &str,
    slugs: &[String],
) -> Option<Finding> {
    tenant_first(subject, slugs).map(|_| Finding {
        severity: Severity::Error,
        code: Code::TenantSubjectInSharedAccount,
        object: account.to_string(),
        message: format!(
            "{what} of shared account {account} uses tenant subject {subject}: tenant traffic must reach it only through the platform's prefixed imports"
        ),
    })
}

/// Whether a stream keeps growing: no limit on bytes, age or count.
pub fn is_unbounded(c: &StreamConfig) -> bool {
    c.max_bytes <= 0 && c.max_age_ns <= 0 && c.max_msgs <= 0
}

/// Whether a platform stream subject can match tenant catalogue traffic, as it arrives in
/// the platform (`<slug>.<subject>`) or un-prefixed (`<subject>`).
fn carries_catalogue(subject: &str, settings: &TenantSettings) -> Option<String> {
    settings
        .catalogue
        .publish
        .iter()
        .chain(&settings.catalogue.requests)
        .find(|c| subjects_overlap(subject, &format!("*.{c}")) || subjects_overlap(subject, c))
        .cloned()
}

/// The checks of one stream (declared in a spec or reported by the server).
///
/// `slugs` are the tenants that exist; `tenant_accounts` their account names (a stream in a
/// tenant's own account holds only that tenant's traffic, so only its size is checked).
/// `origin` says where the stream was read (`spec` or `server`) and ends the message.
pub fn stream(
    account: &str,
    name: &str,
    config: &StreamConfig,
    settings: &TenantSettings,
    slugs: &[String],
    tenant_accounts: &[String],
    origin: &str,
) -> Vec<Finding> {
    let object = format!("{account}/{name}");
    let mut out = Vec::new();
    if is_unbounded(config) {
        out.push(Finding {
            severity: Severity::Warning,
            code: Code::UnboundedStream,
            object: object.clone(),
            message: format!(
                "stream {name} of {account} has no max_bytes, max_age or max_msgs: it grows until JetStream or the disk is full ({origin})"
            ),
        });
    }
    if tenant_accounts.iter().any(|a| a == account) {
        return out;
    }
    let platform = account == settings.platform_account;
    for s in &config.subjects {
        if let Some(slug) = tenant_first(s, slugs) {
            let (severity, why) = if platform {
                (
                    Severity::Warning,
                    "one stream per tenant in the platform account: prefer one stream on the tenant wildcard (*.…), unless acknowledgements are needed (see docs/streams.md)",
                )
            } else {
                (
                    Severity::Error,
                    "the account's other users can read that tenant's data; tenant traffic belongs in the platform account or the tenant's own",
                )
            };
            out.push(Finding {
                severity,
                code: Code::TenantStreamInSharedAccount,
                object: object.clone(),
                message: format!(
                    "stream {name} of shared account {account} captures tenant {slug}'s subject {s}: {why} ({origin})"
                ),
            });
        } else if platform
            && !s.starts_with("*.")
            && let Some(c) = carries_catalogue(s, settings)
        {
            out.push(Finding {
                severity: Severity::Warning,
                code: Code::PlatformStreamNotTenantWildcard,
                object: object.clone(),
                message: format!(
                    "stream {name} of {account} captures catalogue subject {c} as {s}, not on the tenant wildcard (*.{c}): tenant traffic arrives in {account} as <slug>.{c} ({origin})"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::{Discard, Retention, Storage};

    fn cfg(subjects: &[&str], max_bytes: i64, max_age_ns: i64, max_msgs: i64) -> StreamConfig {
        StreamConfig {
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            retention: Retention::Limits,
            storage: Storage::File,
            max_age_ns,
            max_bytes,
            max_msgs,
            max_msg_size: -1,
            replicas: 1,
            discard: Discard::Old,
            duplicate_window_ns: None,
            description: None,
            no_ack: true,
        }
    }

    fn codes(f: &[Finding]) -> Vec<(Severity, Code)> {
        f.iter().map(|f| (f.severity, f.code)).collect()
    }

    fn lint(account: &str, c: &StreamConfig) -> Vec<Finding> {
        let slugs = vec!["acme".to_string(), "beta".to_string()];
        let tenant_accounts = vec!["TENANT-acme".to_string(), "TENANT-beta".to_string()];
        stream(
            account,
            "S",
            c,
            &TenantSettings::default(),
            &slugs,
            &tenant_accounts,
            "spec",
        )
    }

    #[test]
    fn bounded_tenant_wildcard_streams_in_the_platform_are_clean() {
        for subjects in [
            &["*.events.>"][..],
            &["*.snmp.traps", "*.netflow.>"],
            &["*.cmd.>"],
            // Not catalogue traffic at all.
            &["platform.audit.>"],
            // Any tenant, any subject: a tenant wildcard too.
            &["*.*.>"],
        ] {
            let c = cfg(subjects, 1 << 30, 0, -1);
            assert_eq!(lint("PLATFORM", &c), vec![], "{subjects:?}");
        }
    }

    #[test]
    fn any_one_limit_bounds_a_stream() {
        assert!(is_unbounded(&cfg(&["x"], -1, 0, -1)));
        assert!(!is_unbounded(&cfg(&["x"], 10, 0, -1)));
        assert!(!is_unbounded(&cfg(&["x"], -1, 1_000_000_000, -1)));
        assert!(!is_unbounded(&cfg(&["x"], -1, 0, 5)));
        let f = lint("PLATFORM", &cfg(&["*.events.>"], -1, 0, -1));
        assert_eq!(codes(&f), [(Severity::Warning, Code::UnboundedStream)]);
        assert_eq!(f[0].object, "PLATFORM/S");
        assert!(f[0].message.ends_with("(spec)"), "{}", f[0].message);
        // Also in a tenant's own account, where nothing else is checked.
        let f = lint(
            "TENANT-acme",
            &cfg(&["acme.events.>", "events.>"], -1, 0, -1),
        );
        assert_eq!(codes(&f), [(Severity::Warning, Code::UnboundedStream)]);
    }

    #[test]
    fn platform_streams_off_the_tenant_wildcard_are_flagged() {
        for s in [
            "events.>",
            ">",
            "old.events.>",
            "x.snmp.traps",
            "events.syslog",
        ] {
            let f = lint("PLATFORM", &cfg(&[s], 1, 0, -1));
            assert_eq!(
                codes(&f),
                [(Severity::Warning, Code::PlatformStreamNotTenantWildcard)],
                "{s}"
            );
            assert!(f[0].message.contains(s), "{}", f[0].message);
        }
        // Elsewhere un-prefixed catalogue subjects are that account's own business.
        assert_eq!(lint("SHARED", &cfg(&["events.>"], 1, 0, -1)), vec![]);
    }

    #[test]
    fn one_tenants_stream_in_a_shared_account_is_flagged() {
        let f = lint("PLATFORM", &cfg(&["acme.events.>"], 1, 0, -1));
        assert_eq!(
            codes(&f),
            [(Severity::Warning, Code::TenantStreamInSharedAccount)]
        );
        assert!(f[0].message.contains("tenant acme"), "{}", f[0].message);
        let f = lint("SHARED", &cfg(&["beta.snmp.traps"], -1, 0, -1));
        assert_eq!(
            codes(&f),
            [
                (Severity::Warning, Code::UnboundedStream),
                (Severity::Error, Code::TenantStreamInSharedAccount)
            ]
        );
        // A slug that is only a prefix of the first token is not that tenant.
        assert_eq!(lint("SHARED", &cfg(&["acmex.events.>"], 1, 0, -1)), vec![]);
    }

    #[test]
    fn tenant_subjects_and_limits() {
        let slugs = vec!["acme".to_string()];
        let f = shared_subject("SHARED", "user snoop", "acme.events.>", &slugs).unwrap();
        assert_eq!(
            (f.severity, f.code, f.object.as_str()),
            (
                Severity::Error,
                Code::TenantSubjectInSharedAccount,
                "SHARED"
            )
        );
        assert!(shared_subject("SHARED", "export", "*.events.>", &slugs).is_none());
        assert!(shared_subject("SHARED", "export", "events.acme", &slugs).is_none());
        assert!(tenant_limits("acme", &TenantLimits::default()).is_none());
        let open = TenantLimits {
            conns: -1,
            js_disk: -1,
            ..TenantLimits::default()
        };
        let f = tenant_limits("acme", &open).unwrap();
        assert_eq!((f.severity, f.code), (Severity::Warning, Code::Unlimited));
        assert!(f.message.contains("conns, js_disk"), "{}", f.message);
        assert_eq!(
            serde_json::to_value(&f).unwrap()["code"],
            serde_json::json!("unlimited")
        );
        assert_eq!(
            f.to_string(),
            "warning unlimited: tenant acme has no limit on conns, js_disk"
        );
    }
}
