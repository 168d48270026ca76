//! Tenants: one NATS account per tenant, one shared platform account, and
//! subject prefixing done by the server, not by the collectors. Pure: slug validation,
//! per-tenant limits, the subject catalogue and the compiler of the tenant account, the
//! platform account and their users.
//!
//! How prefixing works (jwt 2.3.0 / nats-server 2.9.10 semantics): every catalogue
//! subject, `publish` (`events.>`, `snmp.traps`, …) and `requests` (`cmd.>`) alike, is ONE
//! public **service export** of the platform account with a wildcard first token
//! (`*.events.>`), and each tenant account imports only its own slice (`acme.events.>`)
//! under the local subject `events.>`. So a collector publishing `events.syslog` in tenant
//! `acme` is seen by the platform as `acme.events.syslog` (a plain publish is delivered like
//! any message; one with a reply, a request or a JetStream publish, gets its answer back
//! through the import). The tenant cannot choose its prefix: it is fixed by its own
//! import, in a JWT only Warden signs.
//!
//! The platform account therefore does not depend on the tenant list
//! ([`TenantSettings::platform_spec`] takes no tenants): adding or deleting a tenant signs
//! only that tenant's account, and the platform JWT keeps a constant size. (Until
//! 2026-11 the platform held one stream import per tenant and publish subject, ~966 bytes
//! per tenant, which passed nats-server's 1 MiB `max_payload` at about 1,050 tenants.)
//!
//! Tenant users may publish only catalogue subjects and subscribe only to `_INBOX.>`; the
//! platform user subscribes to `*.<subject>` for the whole catalogue. Exports are public
//! (no activation token): an account can only import them if its JWT says so, and every
//! account JWT here is signed by Warden.

use nats_jwt::{
    AccountPublicKey, Export, ExportType, Import, ResponsePermission, Subject, SubjectError,
};
use serde::{Deserialize, Serialize};

use crate::device::replicated_jetstream;
use crate::names::{AccountName, NameError, UserName};
use crate::spec::{
    AccountLimitsSpec, AccountSpec, JetStreamLimitsSpec, JsTier, MAX_JS_REPLICAS, UserSpec,
};

/// Longest tenant slug, in bytes.
pub const MAX_SLUG_LEN: usize = 32;

/// Slugs refused whatever the catalogue: names of Warden's and NATS's own namespaces, and
/// words that read as "everyone". Catalogue first tokens (`events`, `snmp`, …) are refused
/// too, by [`TenantSettings::parse_slug`], so `<slug>.events.>` never looks un-prefixed.
pub const RESERVED_SLUGS: &[&str] = &[
    "platform",
    "sys",
    "system",
    "warden",
    "all",
    "any",
    "admin",
    "root",
    "operator",
    "global",
    "default",
    "public",
    "nats",
    "jetstream",
    "js",
    "inbox",
    "kv",
    "obj",
    "leaf",
    "tenant",
    "tenants",
    // `GET /v1/tenants/lint` and `POST /v1/tenants/bulk` are routes of their own.
    "lint",
    "bulk",
];

/// A tenant slug or setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// Bad characters or length.
    #[error(
        "invalid tenant slug {0:?}: use 1 to {MAX_SLUG_LEN} lowercase letters, digits and dashes, starting with a letter and not ending with a dash"
    )]
    BadSlug(String),
    /// A reserved word.
    #[error("tenant slug {0:?} is reserved")]
    ReservedSlug(String),
    /// A limit out of range.
    #[error("invalid tenant limit {field}: {reason}")]
    BadLimit {
        /// Which limit.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A bad setting (catalogue subject, account or user name).
    #[error("invalid tenant setting {field}: {reason}")]
    BadSetting {
        /// Which setting.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A name built from the settings is not a valid NATS name.
    #[error(transparent)]
    Name(#[from] NameError),
}

/// A validated tenant slug: `[a-z][a-z0-9-]*`, no trailing dash, no `--`, at most
/// [`MAX_SLUG_LEN`] bytes, not in [`RESERVED_SLUGS`]. Being a single subject token it can
/// prefix subjects as is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// Validates `raw` (surrounding whitespace is trimmed) against the fixed rules only;
    /// prefer [`TenantSettings::parse_slug`], which also refuses catalogue tokens.
    pub fn parse(raw: &str) -> Result<TenantSlug, TenantError> {
        let s = raw.trim();
        let shape = !s.is_empty()
            && s.len() <= MAX_SLUG_LEN
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.ends_with('-')
            && !s.contains("--");
        if !shape {
            return Err(TenantError::BadSlug(raw.to_string()));
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(TenantError::ReservedSlug(s.to_string()));
        }
        Ok(TenantSlug(s.to_string()))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        TenantSlug::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;
const GIB: i64 = 1024 * MIB;

/// A tenant's limits. Every field is bounded by default (a tenant is never unlimited by
/// accident); `-1` can still be set explicitly where NATS accepts it. Note: nats-server
/// 2.9.10 does not enforce `data`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantLimits {
    /// Client connections (`conn`).
    pub conns: i64,
    /// Subscriptions (`subs`).
    pub subscriptions: i64,
    /// Max message payload in bytes (`payload`).
    pub payload: i64,
    /// Data in bytes (`data`).
    pub data: i64,
    /// Leaf node connections (`leaf`).
    pub leaf_conns: i64,
    /// Imports (`imports`); must cover the whole catalogue (one service import each).
    pub imports: i64,
    /// Exports (`exports`); a tenant account exports nothing itself.
    pub exports: i64,
    /// JetStream memory storage in bytes.
    pub js_mem: i64,
    /// JetStream disk storage in bytes.
    pub js_disk: i64,
    /// JetStream streams.
    pub js_streams: i64,
    /// JetStream consumers.
    pub js_consumers: i64,
    /// Replicas of the tenant's JetStream streams (1 to 5; default 1): above 1 the
    /// JetStream limits above are the account's tier `R<n>` instead of flat limits, so
    /// its streams must have that many replicas (a JetStream cluster of at least as
    /// many servers).
    pub js_replicas: u8,
}

impl Default for TenantLimits {
    fn default() -> Self {
        TenantLimits {
            conns: 100,
            subscriptions: 1000,
            payload: MIB,
            data: GIB,
            leaf_conns: 10,
            imports: 16,
            exports: 16,
            js_mem: 64 * MIB,
            js_disk: GIB,
            js_streams: 10,
            js_consumers: 100,
            js_replicas: 1,
        }
    }
}

/// Changes to a tenant's limits; `None` keeps a value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantLimitsEdit {
    /// Client connections.
    pub conns: Option<i64>,
    /// Subscriptions.
    pub subscriptions: Option<i64>,
    /// Max payload.
    pub payload: Option<i64>,
    /// Data.
    pub data: Option<i64>,
    /// Leaf node connections.
    pub leaf_conns: Option<i64>,
    /// Imports.
    pub imports: Option<i64>,
    /// Exports.
    pub exports: Option<i64>,
    /// JetStream memory.
    pub js_mem: Option<i64>,
    /// JetStream disk.
    pub js_disk: Option<i64>,
    /// JetStream streams.
    pub js_streams: Option<i64>,
    /// JetStream consumers.
    pub js_consumers: Option<i64>,
    /// Replicas of the tenant's JetStream streams (1 to 5).
    pub js_replicas: Option<u8>,
}

impl TenantLimitsEdit {
    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == TenantLimitsEdit::default()
    }
}

impl TenantLimits {
    /// `self` with `edit` applied (not yet checked).
    pub fn apply(&self, edit: &TenantLimitsEdit) -> TenantLimits {
        let pick = |new: Option<i64>, old: i64| new.unwrap_or(old);
        TenantLimits {
            conns: pick(edit.conns, self.conns),
            subscriptions: pick(edit.subscriptions, self.subscriptions),
            payload: pick(edit.payload, self.payload),
            data: pick(edit.data, self.data),
            leaf_conns: pick(edit.leaf_conns, self.leaf_conns),
            imports: pick(edit.imports, self.imports),
            exports: pick(edit.exports, self.exports),
            js_mem: pick(edit.js_mem, self.js_mem),
            js_disk: pick(edit.js_disk, self.js_disk),
            js_streams: pick(edit.js_streams, self.js_streams),
            js_consumers: pick(edit.js_consumers, self.js_consumers),
            js_replicas: edit.js_replicas.unwrap_or(self.js_replicas),
        }
    }

    fn fields(&self) -> [(&'static str, i64); 11] {
        [
            ("conns", self.conns),
            ("subscriptions", self.subscriptions),
            ("payload", self.payload),
            ("data", self.data),
            ("leaf_conns", self.leaf_conns),
            ("imports", self.imports),
            ("exports", self.exports),
            ("js_mem", self.js_mem),
            ("js_disk", self.js_disk),
            ("js_streams", self.js_streams),
            ("js_consumers", self.js_consumers),
        ]
    }

    /// Every value is `-1` (unlimited) or ≥ 0; imports cover the catalogue.
    pub fn check(&self, catalogue: &SubjectCatalogue) -> Result<(), TenantError> {
        for (field, v) in self.fields() {
            if v < -1 {
                return Err(TenantError::BadLimit {
                    field,
                    reason: format!("{v} (use -1 for unlimited or a value ≥ 0)"),
                });
            }
        }
        let need = |field, have: i64, n: usize| {
            if have != -1 && have < n as i64 {
                Err(TenantError::BadLimit {
                    field,
                    reason: format!("{have} is below the {n} the subject catalogue needs"),
                })
            } else {
                Ok(())
            }
        };
        need("imports", self.imports, catalogue.len())?;
        if JsTier::new(self.js_replicas).is_err() {
            return Err(TenantError::BadLimit {
                field: "js_replicas",
                reason: format!(
                    "{} (use 1 to {MAX_JS_REPLICAS}: the replicas of the tenant's streams)",
                    self.js_replicas
                ),
            });
        }
        Ok(())
    }

    /// Names of the limits left unlimited (`-1`), for `tenant lint`.
    pub fn unlimited(&self) -> Vec<&'static str> {
        self.fields()
            .into_iter()
            .filter(|(_, v)| *v == -1)
            .map(|(f, _)| f)
            .collect()
    }

    /// The account limits. JetStream streams must declare their size
    /// (`max_bytes_required`), so a tenant cannot create an unbounded stream. With
    /// `js_replicas` above 1 the JetStream limits are the tier `R<n>` alone (see
    /// [`crate::device::replicated_jetstream`]).
    pub fn to_account_limits(&self) -> AccountLimitsSpec {
        let js_on = self.js_mem != 0 || self.js_disk != 0;
        let mut limits = AccountLimitsSpec {
            conn: self.conns,
            leaf: self.leaf_conns,
            subs: self.subscriptions,
            payload: self.payload,
            data: self.data,
            imports: self.imports,
            exports: self.exports,
            wildcards: true,
            disallow_bearer: true,
            jetstream_tiers: Default::default(),
            jetstream: if js_on {
                JetStreamLimitsSpec {
                    mem_storage: self.js_mem,
                    disk_storage: self.js_disk,
                    streams: self.js_streams,
                    consumer: self.js_consumers,
                    max_ack_pending: -1,
                    mem_max_stream_bytes: -1,
                    disk_max_stream_bytes: -1,
                    max_bytes_required: true,
                }
            } else {
                JetStreamLimitsSpec::default()
            },
        };
        let (flat, tiers) = replicated_jetstream(limits.jetstream.clone(), self.js_replicas);
        limits.jetstream = flat;
        limits.jetstream_tiers = tiers;
        limits
    }
}

/// What tenants may send to the platform, in tenant-local form (no prefix). Both lists
/// are wired alike (a service import per subject in each tenant account); they differ in
/// what the platform user may do: it receives `publish` subjects, and answers `requests`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubjectCatalogue {
    /// Subjects tenant collectors publish; the platform receives each as
    /// `<slug>.<subject>` (the tenant's service import of its slice of the platform's
    /// `*.<subject>` export).
    pub publish: Vec<String>,
    /// Request subjects served by the platform; a tenant's request on `<subject>` reaches
    /// the platform as `<slug>.<subject>` and gets its reply back.
    pub requests: Vec<String>,
}

impl Default for SubjectCatalogue {
    /// The usual collectors: syslog and events, SNMP traps, OpenTelemetry, NetFlow; and
    /// one request namespace (`cmd.>`).
    fn default() -> Self {
        SubjectCatalogue {
            publish: vec![
                "events.>".into(),
                "snmp.traps".into(),
                "otel.>".into(),
                "netflow.>".into(),
            ],
            requests: vec!["cmd.>".into()],
        }
    }
}

impl SubjectCatalogue {
    /// Every subject, publish then requests.
    pub fn subjects(&self) -> impl Iterator<Item = &String> {
        self.publish.iter().chain(&self.requests)
    }

    /// How many subjects (each is one import of every tenant account).
    pub fn len(&self) -> usize {
        self.publish.len() + self.requests.len()
    }

    /// Whether the catalogue has no subject at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tenant settings: names, the catalogue and the default limits of new tenants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// The platform account (`PLATFORM`).
    pub platform_account: String,
    /// The platform's service user (`platform`).
    pub platform_user: String,
    /// Prefix of tenant account names (`TENANT-` → `TENANT-acme`).
    pub account_prefix: String,
    /// The subject catalogue.
    pub catalogue: SubjectCatalogue,
    /// Limits of a tenant added without explicit ones.
    pub default_limits: TenantLimits,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            platform_account: "PLATFORM".into(),
            platform_user: "platform".into(),
            account_prefix: "TENANT-".into(),
            catalogue: SubjectCatalogue::default(),
            default_limits: TenantLimits::default(),
        }
    }
}

fn subject(field: &'static str, s: &str) -> Result<Subject, TenantError> {
    Subject::new(s).map_err(|e: SubjectError| TenantError::BadSetting {
        field,
        reason: format!("{s:?}: {e}"),
    })
}

/// The first token of a catalogue subject, checked to be a literal.
fn catalogue_entry(field: &'static str, s: &str) -> Result<String, TenantError> {
    let subj = subject(field, s)?;
    let first = s.split('.').next().unwrap_or_default();
    let bad = |reason: &str| TenantError::BadSetting {
        field,
        reason: format!("{s:?}: {reason}"),
    };
    if subj.queue().is_some() || s.contains(' ') {
        return Err(bad("a plain subject is needed"));
    }
    if first == "*" || first == ">" {
        return Err(bad("the first token must be a literal"));
    }
    if first.starts_with('$') || first.starts_with('_') {
        return Err(bad("system and inbox subjects cannot be in the catalogue"));
    }
    Ok(first.to_string())
}

impl TenantSettings {
    /// Checks names, the catalogue and the default limits.
    pub fn check(&self) -> Result<(), TenantError> {
        AccountName::parse_any_case(&self.platform_account)?;
        AccountName::parse_any_case(&format!("{}x", self.account_prefix))?;
        UserName::parse_any_case(&self.platform_user)?;
        if self.catalogue.publish.is_empty() {
            return Err(TenantError::BadSetting {
                field: "catalogue.publish",
                reason: "at least one subject is needed".into(),
            });
        }
        for s in &self.catalogue.publish {
            catalogue_entry("catalogue.publish", s)?;
        }
        for s in &self.catalogue.requests {
            catalogue_entry("catalogue.requests", s)?;
        }
        // Each subject is one service import of every tenant: two that overlap would
        // route one message twice (or make the server refuse the account).
        let all: Vec<&String> = self.catalogue.subjects().collect();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                if subject("catalogue", a)?.overlaps(&subject("catalogue", b)?) {
                    return Err(TenantError::BadSetting {
                        field: "catalogue",
                        reason: format!("{a:?} and {b:?} overlap; each subject must be distinct"),
                    });
                }
            }
        }
        self.default_limits.check(&self.catalogue)
    }

    /// First tokens of the catalogue (`events`, `snmp`, …): refused as slugs.
    pub fn catalogue_tokens(&self) -> Vec<String> {
        self.catalogue
            .publish
            .iter()
            .chain(&self.catalogue.requests)
            .filter_map(|s| s.split('.').next())
            .map(str::to_string)
            .collect()
    }

    /// A slug: [`TenantSlug::parse`] plus the catalogue's first tokens refused.
    pub fn parse_slug(&self, raw: &str) -> Result<TenantSlug, TenantError> {
        let slug = TenantSlug::parse(raw)?;
        if self.catalogue_tokens().iter().any(|t| t == slug.as_str()) {
            return Err(TenantError::ReservedSlug(slug.0));
        }
        Ok(slug)
    }

    /// The platform account's name.
    pub fn platform_name(&self) -> Result<AccountName, TenantError> {
        Ok(AccountName::parse_any_case(&self.platform_account)?)
    }

    /// The account name of a tenant (`TENANT-<slug>`).
    pub fn account_name(&self, slug: &TenantSlug) -> Result<AccountName, TenantError> {
        Ok(AccountName::parse_any_case(&format!(
            "{}{}",
            self.account_prefix, slug
        ))?)
    }

    /// The slug of a tenant account name, if it is one.
    pub fn slug_of_account(&self, account: &str) -> Option<TenantSlug> {
        account
            .strip_prefix(&self.account_prefix)
            .and_then(|s| TenantSlug::parse(s).ok())
    }

    /// A tenant-local subject as the platform sees it: `<slug>.<subject>`.
    pub fn prefixed(slug: &TenantSlug, subject: &str) -> String {
        format!("{slug}.{subject}")
    }

    /// The tenant account: its limits, and per catalogue subject one service import of
    /// its own slice of the platform's export (`<slug>.<subject>` as `<subject>`). It
    /// exports nothing.
    pub fn tenant_spec(
        &self,
        slug: &TenantSlug,
        limits: &TenantLimits,
        platform: &AccountPublicKey,
    ) -> Result<AccountSpec, TenantError> {
        limits.check(&self.catalogue)?;
        let mut spec = AccountSpec {
            limits: limits.to_account_limits(),
            description: Some(format!("tenant {slug} (Warden)")),
            tags: vec![format!("tenant:{slug}")],
            ..AccountSpec::default()
        };
        for s in self.catalogue.subjects() {
            let mut i = Import::new(
                subject("catalogue", &Self::prefixed(slug, s))?,
                platform.clone(),
                ExportType::Service,
            );
            i.name = Some(format!("platform-{s}"));
            i.local_subject = Some(subject("catalogue", s)?);
            spec.imports.push(i);
        }
        Ok(spec)
    }

    /// The platform account: JetStream enabled, unlimited, and one public service export
    /// per catalogue subject, wildcarded on the slug (`*.events.>`). It names no tenant:
    /// tenants come and go without re-signing it.
    pub fn platform_spec(&self) -> Result<AccountSpec, TenantError> {
        let mut spec = AccountSpec::with_unlimited_jetstream();
        spec.description = Some("tenant platform (Warden)".into());
        for (kind, list) in [
            ("publish", &self.catalogue.publish),
            ("requests", &self.catalogue.requests),
        ] {
            for s in list {
                let mut e = Export::new(
                    subject("catalogue", &format!("*.{s}"))?,
                    ExportType::Service,
                );
                e.name = Some(format!("tenant-{kind}-{s}"));
                spec.exports.push(e);
            }
        }
        Ok(spec)
    }

    /// The platform user: receives every tenant's catalogue traffic (`*.<subject>`),
    /// serves requests (one reply each), uses JetStream and its inbox.
    pub fn platform_user_spec(&self) -> Result<UserSpec, TenantError> {
        let mut u = UserSpec::default();
        u.permissions.publish.allow = vec![
            subject("platform", "$JS.API.>")?,
            subject("platform", "$JS.ACK.>")?,
            subject("platform", "_INBOX.>")?,
        ];
        let mut sub = Vec::new();
        for s in self
            .catalogue
            .publish
            .iter()
            .chain(&self.catalogue.requests)
        {
            sub.push(subject("catalogue", &format!("*.{s}"))?);
        }
        sub.push(subject("platform", "_INBOX.>")?);
        u.permissions.subscribe.allow = sub;
        u.permissions.response = Some(ResponsePermission { max: 1, ttl_ns: 0 });
        Ok(u)
    }

    /// A tenant user (a collector): publishes only catalogue subjects (tenant-local, no
    /// prefix), subscribes only to its inbox (replies to its requests).
    pub fn tenant_user_spec(&self) -> Result<UserSpec, TenantError> {
        let mut u = UserSpec::default();
        for s in self
            .catalogue
            .publish
            .iter()
            .chain(&self.catalogue.requests)
        {
            u.permissions.publish.allow.push(subject("catalogue", s)?);
        }
        u.permissions.subscribe.allow = vec![subject("tenant user", "_INBOX.>")?];
        u.bearer_token = false;
        Ok(u)
    }

    /// A suspended tenant's account: no connections or leaf nodes, and every user issued
    /// up to `now` revoked (`*`), which also cuts existing connections.
    pub fn suspended(spec: &AccountSpec, now: i64) -> AccountSpec {
        let mut s = spec.clone();
        s.limits.conn = 0;
        s.limits.leaf = 0;
        s.revocations.insert("*".into(), now);
        s
    }

    /// The inverse of [`Self::suspended`]: limits from `limits`, the `*` revocation gone.
    pub fn resumed(spec: &AccountSpec, limits: &TenantLimits) -> AccountSpec {
        let mut s = spec.clone();
        s.limits = limits.to_account_limits();
        s.revocations.remove("*");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_jwt::{KeyKind, KeyPair};

    fn key() -> AccountPublicKey {
        KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .unwrap()
    }

    fn slug(s: &str) -> TenantSlug {
        TenantSlug::parse(s).unwrap()
    }

    #[test]
    fn slugs() {
        for ok in [
            "a",
            "acme",
            "acme-corp",
            "a1",
            "x-2-y",
            &"a".repeat(MAX_SLUG_LEN),
        ] {
            assert_eq!(TenantSlug::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(TenantSlug::parse("  acme ").unwrap().as_str(), "acme");
        for bad in [
            "",
            "Acme",
            "1acme",
            "-a",
            "a-",
            "a--b",
            "a.b",
            "a*",
            ">",
            "$sys",
            "_inbox",
            "a_b",
            "a b",
            &"a".repeat(MAX_SLUG_LEN + 1),
        ] {
            assert!(
                matches!(TenantSlug::parse(bad), Err(TenantError::BadSlug(_))),
                "{bad:?}"
            );
        }
        for r in RESERVED_SLUGS {
            assert!(
                matches!(TenantSlug::parse(r), Err(TenantError::ReservedSlug(_))),
                "{r}"
            );
        }
        let settings = TenantSettings::default();
        for t in ["events", "snmp", "otel", "netflow", "cmd"] {
            assert!(TenantSlug::parse(t).is_ok());
            assert!(
                matches!(settings.parse_slug(t), Err(TenantError::ReservedSlug(_))),
                "{t}"
            );
        }
        assert!(serde_json::from_str::<TenantSlug>("\"Bad\"").is_err());
        assert_eq!(
            serde_json::from_str::<TenantSlug>("\"good\"").unwrap(),
            slug("good")
        );
    }

    #[test]
    fn limits_default_bounded_and_checked() {
        let settings = TenantSettings::default();
        settings.check().unwrap();
        let l = TenantLimits::default();
        assert!(l.unlimited().is_empty(), "{:?}", l.unlimited());
        let a = l.to_account_limits();
        assert_eq!((a.conn, a.payload, a.leaf), (100, MIB, 10));
        assert!(a.jetstream.enabled() && a.jetstream.max_bytes_required);

        let edited = l.apply(&TenantLimitsEdit {
            conns: Some(2),
            payload: Some(-1),
            ..Default::default()
        });
        assert_eq!(
            (edited.conns, edited.payload, edited.subscriptions),
            (2, -1, 1000)
        );
        assert_eq!(edited.unlimited(), ["payload"]);

        let bad = l.apply(&TenantLimitsEdit {
            data: Some(-2),
            ..Default::default()
        });
        assert!(matches!(
            bad.check(&settings.catalogue),
            Err(TenantError::BadLimit { field: "data", .. })
        ));
        // One import per catalogue subject (5 by default); exports are not needed.
        let few = l.apply(&TenantLimitsEdit {
            imports: Some(4),
            exports: Some(0),
            ..Default::default()
        });
        assert!(matches!(
            few.check(&settings.catalogue),
            Err(TenantError::BadLimit {
                field: "imports",
                ..
            })
        ));
        let enough = l.apply(&TenantLimitsEdit {
            imports: Some(5),
            exports: Some(0),
            ..Default::default()
        });
        enough.check(&settings.catalogue).unwrap();
        let no_js = TenantLimits {
            js_mem: 0,
            js_disk: 0,
            ..l
        };
        assert!(!no_js.to_account_limits().jetstream.enabled());
    }

    #[test]
    fn replicated_tenant_jetstream_is_the_r_n_tier() {
        let settings = TenantSettings::default();
        let l = TenantLimits::default();
        assert_eq!(l.js_replicas, 1);
        let flat = l.to_account_limits();
        assert!(flat.jetstream.enabled() && flat.jetstream_tiers.is_empty());
        let r3 = l.apply(&TenantLimitsEdit {
            js_replicas: Some(3),
            ..Default::default()
        });
        r3.check(&settings.catalogue).unwrap();
        let a = r3.to_account_limits();
        assert!(!a.jetstream.enabled());
        let tier = &a.jetstream_tiers["R3"];
        assert_eq!(a.jetstream_tiers.len(), 1);
        assert_eq!(
            (tier.disk_storage, tier.streams),
            (r3.js_disk, r3.js_streams)
        );
        assert!(tier.max_bytes_required);
        // Suspending keeps the tier; resuming rebuilds it from the limits.
        let spec = AccountSpec {
            limits: a.clone(),
            ..AccountSpec::default()
        };
        let resumed = TenantSettings::resumed(&TenantSettings::suspended(&spec, 1), &r3);
        assert_eq!(resumed.limits, a);
        // Without JetStream there is no tier either.
        let off = TenantLimits {
            js_mem: 0,
            js_disk: 0,
            ..r3.clone()
        };
        assert!(!off.to_account_limits().jetstream_enabled());
        for bad in [0u8, 6] {
            let b = l.apply(&TenantLimitsEdit {
                js_replicas: Some(bad),
                ..Default::default()
            });
            assert!(matches!(
                b.check(&settings.catalogue),
                Err(TenantError::BadLimit {
                    field: "js_replicas",
                    ..
                })
            ));
        }
        // Stored limits of a tenant made before replicas existed read as R1.
        let old: TenantLimits = serde_json::from_str(r#"{"conns": 5}"#).unwrap();
        assert_eq!((old.conns, old.js_replicas), (5, 1));
    }

    #[test]
    fn settings_refuse_bad_catalogues() {
        for (publish, requests) in [
            (vec![], vec![]),
            (vec!["*.x"], vec![]),
            (vec![">"], vec![]),
            (vec!["$SYS.>"], vec![]),
            (vec!["_INBOX.>"], vec![]),
            (vec!["a..b"], vec![]),
            (vec!["events.>"], vec!["*.cmd"]),
            // Overlapping subjects: one message would take two imports.
            (vec!["events.>", "events.syslog"], vec![]),
            (vec!["events.*"], vec!["events.x"]),
            (vec!["logs.>", "logs.>"], vec![]),
        ] {
            let s = TenantSettings {
                catalogue: SubjectCatalogue {
                    publish: publish.iter().map(|s| s.to_string()).collect(),
                    requests: requests.iter().map(|s| s.to_string()).collect(),
                },
                ..TenantSettings::default()
            };
            assert!(s.check().is_err(), "{publish:?} {requests:?}");
        }
        let s = TenantSettings {
            platform_account: "bad name".into(),
            ..TenantSettings::default()
        };
        assert!(s.check().is_err());
    }

    #[test]
    fn tenant_account_imports_its_slice_of_every_catalogue_subject() {
        let settings = TenantSettings::default();
        let platform = key();
        let spec = settings
            .tenant_spec(&slug("acme"), &TenantLimits::default(), &platform)
            .unwrap();
        assert!(spec.exports.is_empty());
        let imports: Vec<(&str, &str, ExportType)> = spec
            .imports
            .iter()
            .map(|i| {
                assert_eq!(i.account, platform);
                (
                    i.subject.as_str(),
                    i.local_subject.as_ref().map(|s| s.as_str()).unwrap_or(""),
                    i.import_type,
                )
            })
            .collect();
        assert_eq!(
            imports,
            [
                ("acme.events.>", "events.>", ExportType::Service),
                ("acme.snmp.traps", "snmp.traps", ExportType::Service),
                ("acme.otel.>", "otel.>", ExportType::Service),
                ("acme.netflow.>", "netflow.>", ExportType::Service),
                ("acme.cmd.>", "cmd.>", ExportType::Service),
            ]
        );
        assert_eq!(spec.limits.conn, 100);
        assert!(spec.limits.disallow_bearer);
        let name = settings.account_name(&slug("acme")).unwrap();
        let claims = crate::compile_account(&key(), &name, &spec);
        let issues = claims.validate(0);
        assert!(!nats_jwt::is_blocking(&issues), "{issues:?}");
        let bad = TenantLimits {
            imports: 4,
            ..TenantLimits::default()
        };
        assert!(
            settings
                .tenant_spec(&slug("acme"), &bad, &platform)
                .is_err()
        );
    }

    #[test]
    fn platform_account_is_independent_of_tenants() {
        let settings = TenantSettings::default();
        let spec = settings.platform_spec().unwrap();
        assert!(spec.limits.jetstream.enabled());
        assert_eq!(spec.limits.conn, -1);
        assert!(spec.imports.is_empty());
        let exports: Vec<(&str, ExportType, bool)> = spec
            .exports
            .iter()
            .map(|e| (e.subject.as_str(), e.export_type, e.token_req))
            .collect();
        assert_eq!(
            exports,
            [
                ("*.events.>", ExportType::Service, false),
                ("*.snmp.traps", ExportType::Service, false),
                ("*.otel.>", ExportType::Service, false),
                ("*.netflow.>", ExportType::Service, false),
                ("*.cmd.>", ExportType::Service, false),
            ]
        );
        // Every tenant's import is a subset of one platform export.
        for t in ["a", "b", "acme-corp"] {
            let tenant = settings
                .tenant_spec(&slug(t), &TenantLimits::default(), &key())
                .unwrap();
            for i in &tenant.imports {
                assert!(
                    spec.exports
                        .iter()
                        .any(|e| i.subject.is_subset_of(&e.subject)),
                    "{}",
                    i.subject
                );
            }
        }
        let name = settings.platform_name().unwrap();
        let issues = crate::compile_account(&key(), &name, &spec).validate(0);
        assert!(!nats_jwt::is_blocking(&issues), "{issues:?}");
        // The same JWT content whatever the tenants: the catalogue alone decides it.
        assert_eq!(settings.platform_spec().unwrap(), spec);
        let more = TenantSettings {
            catalogue: SubjectCatalogue {
                publish: vec!["events.>".into(), "logs.>".into()],
                requests: vec![],
            },
            ..TenantSettings::default()
        };
        more.check().unwrap();
        let exports: Vec<String> = more
            .platform_spec()
            .unwrap()
            .exports
            .iter()
            .map(|e| e.subject.to_string())
            .collect();
        assert_eq!(exports, ["*.events.>", "*.logs.>"]);
    }

    #[test]
    fn users() {
        let settings = TenantSettings::default();
        let p = settings.platform_user_spec().unwrap();
        let sub: Vec<&str> = p
            .permissions
            .subscribe
            .allow
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            sub,
            [
                "*.events.>",
                "*.snmp.traps",
                "*.otel.>",
                "*.netflow.>",
                "*.cmd.>",
                "_INBOX.>"
            ]
        );
        assert!(p.permissions.response.is_some());
        let t = settings.tenant_user_spec().unwrap();
        let publish: Vec<&str> = t
            .permissions
            .publish
            .allow
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            publish,
            ["events.>", "snmp.traps", "otel.>", "netflow.>", "cmd.>"]
        );
        let sub: Vec<&str> = t
            .permissions
            .subscribe
            .allow
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(sub, ["_INBOX.>"]);
        // A tenant can never publish into another tenant's prefix.
        assert!(
            !t.permissions
                .publish
                .allow
                .iter()
                .any(|s| s.matches("b.events.x"))
        );
    }

    #[test]
    fn suspend_and_resume() {
        let settings = TenantSettings::default();
        let limits = TenantLimits::default();
        let spec = settings
            .tenant_spec(&slug("acme"), &limits, &key())
            .unwrap();
        let s = TenantSettings::suspended(&spec, 1000);
        assert_eq!((s.limits.conn, s.limits.leaf), (0, 0));
        assert_eq!(s.revocations.get("*"), Some(&1000));
        let r = TenantSettings::resumed(&s, &limits);
        assert_eq!(r, spec);
    }

    #[test]
    fn names() {
        let settings = TenantSettings::default();
        let name = settings.account_name(&slug("acme-corp")).unwrap();
        assert_eq!(name.as_str(), "TENANT-acme-corp");
        assert_eq!(
            settings.slug_of_account("TENANT-acme-corp"),
            Some(slug("acme-corp"))
        );
        assert_eq!(settings.slug_of_account("PLATFORM"), None);
        assert_eq!(settings.platform_name().unwrap().as_str(), "PLATFORM");
    }
}
