//! What Warden stores about an account or a user (the *spec*), and the edits the CLI
//! and the API apply to it.
//!
//! A spec is the source of truth; its JWT is derived from it by [`crate::compile`].
//! Specs reuse the NATS claim types of `nats-jwt`, so every setting NATS knows about
//! can be expressed, and serialise with their wire names.

use std::collections::BTreeMap;

use nats_jwt::{
    AccountLimits, ConnectionType, Export, Import, JetStreamLimits, NatsLimits, OperatorLimits,
    Permission, Permissions, ResponsePermission, SigningKey, Subject, TimeRange,
    UserPermissionLimits, WeightedMapping,
};
use serde::{Deserialize, Serialize};

use crate::parse::{ParseError, canonical_cidrs, parse_tag};

/// An account's limits, every field explicit. Unlike the wire format (where an
/// omitted number means zero), a field missing from a spec file means nsc's
/// default: unlimited (`-1`) for NATS and account limits, disabled (`0`) for
/// JetStream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimitsSpec {
    /// Client connections (`conn`).
    pub conn: i64,
    /// Leaf node connections (`leaf`).
    pub leaf: i64,
    /// Subscriptions per connection (`subs`).
    pub subs: i64,
    /// Max payload (`payload`).
    pub payload: i64,
    /// Data (`data`).
    pub data: i64,
    /// Imports (`imports`).
    pub imports: i64,
    /// Exports (`exports`).
    pub exports: i64,
    /// Wildcard exports allowed (`wildcards`).
    pub wildcards: bool,
    /// Bearer-token users refused (`disallow_bearer`).
    pub disallow_bearer: bool,
    /// JetStream limits (flat: one set for every stream replication).
    pub jetstream: JetStreamLimitsSpec,
    /// JetStream limits per replication tier (`R1`, `R3`, …): the account's tiered
    /// limits (`tiered_limits`). nats-server refuses flat and tiered limits together.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub jetstream_tiers: BTreeMap<String, JetStreamLimitsSpec>,
}

impl Default for AccountLimitsSpec {
    fn default() -> Self {
        AccountLimitsSpec {
            conn: -1,
            leaf: -1,
            subs: -1,
            payload: -1,
            data: -1,
            imports: -1,
            exports: -1,
            wildcards: true,
            disallow_bearer: false,
            jetstream: JetStreamLimitsSpec::default(),
            jetstream_tiers: BTreeMap::new(),
        }
    }
}

/// JetStream limits of an account; all zero (the default) disables JetStream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamLimitsSpec {
    /// Memory storage in bytes (`mem_storage`).
    pub mem_storage: i64,
    /// Disk storage in bytes (`disk_storage`).
    pub disk_storage: i64,
    /// Streams (`streams`).
    pub streams: i64,
    /// Consumers (`consumer`).
    pub consumer: i64,
    /// Max ack pending (`max_ack_pending`).
    pub max_ack_pending: i64,
    /// Max bytes of one memory stream (`mem_max_stream_bytes`).
    pub mem_max_stream_bytes: i64,
    /// Max bytes of one disk stream (`disk_max_stream_bytes`).
    pub disk_max_stream_bytes: i64,
    /// Streams must declare max bytes (`max_bytes_required`).
    pub max_bytes_required: bool,
}

impl JetStreamLimitsSpec {
    /// Everything unlimited.
    pub fn unlimited() -> Self {
        JetStreamLimitsSpec {
            mem_storage: -1,
            disk_storage: -1,
            streams: -1,
            consumer: -1,
            max_ack_pending: -1,
            mem_max_stream_bytes: -1,
            disk_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }

    /// Whether JetStream is enabled for the account (flat limits only; see
    /// [`AccountLimitsSpec::jetstream_enabled`] for tiers too).
    pub fn enabled(&self) -> bool {
        self.mem_storage != 0 || self.disk_storage != 0
    }

    /// The wire form.
    pub fn to_claims(&self) -> JetStreamLimits {
        JetStreamLimits {
            mem_storage: self.mem_storage,
            disk_storage: self.disk_storage,
            streams: self.streams,
            consumer: self.consumer,
            max_ack_pending: self.max_ack_pending,
            mem_max_stream_bytes: self.mem_max_stream_bytes,
            disk_max_stream_bytes: self.disk_max_stream_bytes,
            max_bytes_required: self.max_bytes_required,
        }
    }
}

impl AccountLimitsSpec {
    /// Whether JetStream is enabled, by the flat limits or by any tier.
    pub fn jetstream_enabled(&self) -> bool {
        self.jetstream.enabled() || self.jetstream_tiers.values().any(|t| t.enabled())
    }

    /// The wire form.
    pub fn to_claims(&self) -> OperatorLimits {
        OperatorLimits {
            nats: NatsLimits {
                subs: self.subs,
                data: self.data,
                payload: self.payload,
            },
            account: AccountLimits {
                imports: self.imports,
                exports: self.exports,
                wildcards: self.wildcards,
                disallow_bearer: self.disallow_bearer,
                conn: self.conn,
                leaf: self.leaf,
            },
            jetstream: self.jetstream.to_claims(),
            tiered_limits: self
                .jetstream_tiers
                .iter()
                .map(|(tier, l)| (tier.clone(), l.to_claims()))
                .collect(),
        }
    }
}

/// Everything Warden decides about an account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSpec {
    /// Connection, data, import/export and JetStream limits.
    #[serde(default)]
    pub limits: AccountLimitsSpec,
    /// Exports offered to other accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<Export>,
    /// Imports from other accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<Import>,
    /// Permissions for users whose JWT carries none.
    #[serde(default)]
    pub default_permissions: Permissions,
    /// Revoked user keys (or `*`) → revoked-at (unix seconds).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, i64>,
    /// Account signing keys (plain or scoped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKey>,
    /// Subject mappings: a subject published in the account → weighted destinations
    /// (`mappings`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mappings: BTreeMap<Subject, Vec<WeightedMapping>>,
    /// Free text shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A URL with more about the account (`info_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info_url: Option<String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Expiry of the account JWT (unix seconds), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Auth callout settings of the account (`warden callout setup`): its auth users,
    /// the accounts it may place users in, and the curve key requests are sealed to.
    #[serde(
        default,
        skip_serializing_if = "nats_jwt::ExternalAuthorization::is_empty"
    )]
    pub authorization: nats_jwt::ExternalAuthorization,
}

impl AccountSpec {
    /// nsc's defaults with JetStream enabled and unlimited (the server still needs
    /// a `jetstream {}` block).
    pub fn with_unlimited_jetstream() -> Self {
        let mut spec = AccountSpec::default();
        spec.limits.jetstream = JetStreamLimitsSpec::unlimited();
        spec
    }
}

/// Everything Warden decides about a user. Numbers missing from a spec file mean
/// unlimited (`-1`), as nsc defaults them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserSpec {
    /// Publish, subscribe and response permissions.
    pub permissions: Permissions,
    /// Max subscriptions (`subs`).
    pub subs: i64,
    /// Max data (`data`).
    pub data: i64,
    /// Max payload (`payload`).
    pub payload: i64,
    /// Allowed source networks (canonical CIDRs); empty = anywhere.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub src: Vec<String>,
    /// Times of day the user may connect; empty = any time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    /// Time zone of `times` (IANA name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times_location: Option<String>,
    /// Bearer token: no nonce signature needed.
    pub bearer_token: bool,
    /// Allowed connection types; empty = all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<ConnectionType>,
    /// Expiry of the user JWT (unix seconds), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Default for UserSpec {
    /// nsc's defaults: no permission restrictions, unlimited subs/data/payload.
    fn default() -> Self {
        UserSpec {
            permissions: Permissions::default(),
            subs: -1,
            data: -1,
            payload: -1,
            src: Vec::new(),
            times: Vec::new(),
            times_location: None,
            bearer_token: false,
            allowed_connection_types: Vec::new(),
            expires_at: None,
            tags: Vec::new(),
        }
    }
}

impl UserSpec {
    /// The wire form of the permissions and limits.
    pub fn to_claims(&self) -> UserPermissionLimits {
        UserPermissionLimits {
            permissions: self.permissions.clone(),
            src: self.src.clone(),
            times: self.times.clone(),
            times_location: self.times_location.clone(),
            subs: self.subs,
            data: self.data,
            payload: self.payload,
            bearer_token: self.bearer_token,
            allowed_connection_types: self.allowed_connection_types.clone(),
        }
    }
}

/// Changes to an account's limits; `None` leaves a value as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimitsEdit {
    /// Client connections (`conn`).
    pub conns: Option<i64>,
    /// Subscriptions per connection (`subs`).
    pub subscriptions: Option<i64>,
    /// Max message payload (`payload`).
    pub payload: Option<i64>,
    /// Data (`data`).
    pub data: Option<i64>,
    /// Leaf node connections (`leaf`).
    pub leaf_conns: Option<i64>,
    /// Imports (`imports`).
    pub imports: Option<i64>,
    /// Exports (`exports`).
    pub exports: Option<i64>,
    /// Whether wildcard exports are allowed (`wildcards`).
    pub wildcard_exports: Option<bool>,
    /// Whether bearer-token users are refused (`disallow_bearer`).
    pub disallow_bearer: Option<bool>,
    /// JetStream memory storage in bytes (`mem_storage`).
    pub js_mem_storage: Option<i64>,
    /// JetStream disk storage in bytes (`disk_storage`).
    pub js_disk_storage: Option<i64>,
    /// JetStream streams (`streams`).
    pub js_streams: Option<i64>,
    /// JetStream consumers (`consumer`).
    pub js_consumer: Option<i64>,
    /// JetStream max ack pending (`max_ack_pending`).
    pub js_max_ack_pending: Option<i64>,
}

impl AccountLimitsEdit {
    /// Applies the changes.
    pub fn apply(&self, limits: &mut AccountLimitsSpec) {
        set(&mut limits.conn, self.conns);
        set(&mut limits.subs, self.subscriptions);
        set(&mut limits.payload, self.payload);
        set(&mut limits.data, self.data);
        set(&mut limits.leaf, self.leaf_conns);
        set(&mut limits.imports, self.imports);
        set(&mut limits.exports, self.exports);
        set(&mut limits.wildcards, self.wildcard_exports);
        set(&mut limits.disallow_bearer, self.disallow_bearer);
        let js = &mut limits.jetstream;
        set(&mut js.mem_storage, self.js_mem_storage);
        set(&mut js.disk_storage, self.js_disk_storage);
        set(&mut js.streams, self.js_streams);
        set(&mut js.consumer, self.js_consumer);
        set(&mut js.max_ack_pending, self.js_max_ack_pending);
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self == &AccountLimitsEdit::default()
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// The most replicas a JetStream stream may have (nats-server refuses more), so the
/// highest tier an account can usefully limit.
pub const MAX_JS_REPLICAS: u8 = 5;

/// A JetStream limits tier: nats-server looks up a stream's limits under `R<replicas>`
/// (`R1` for a stream of one replica, `R3` for three), so those are the only names a
/// tier can usefully have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JsTier(u8);

/// Why a tier name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid JetStream tier {0:?}: use R1 to R5 (or 1 to 5), the stream replica count the limits apply to"
)]
pub struct JsTierError(pub String);

impl JsTier {
    /// The tier for streams of `replicas` replicas (1..=5).
    pub fn new(replicas: u8) -> Result<Self, JsTierError> {
        if (1..=MAX_JS_REPLICAS).contains(&replicas) {
            Ok(JsTier(replicas))
        } else {
            Err(JsTierError(replicas.to_string()))
        }
    }

    /// The replica count.
    pub fn replicas(self) -> u8 {
        self.0
    }

    /// The name nats-server uses (`R3`).
    pub fn name(self) -> String {
        format!("R{}", self.0)
    }
}

impl std::str::FromStr for JsTier {
    type Err = JsTierError;
    /// `R3`, `r3` or `3` (nsc's `--js-tier 3`).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let digits = s
            .strip_prefix('R')
            .or_else(|| s.strip_prefix('r'))
            .unwrap_or(s);
        let err = || JsTierError(input.to_string());
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        digits
            .parse::<u8>()
            .ok()
            .and_then(|n| JsTier::new(n).ok())
            .ok_or_else(err)
    }
}

impl std::fmt::Display for JsTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "R{}", self.0)
    }
}

impl TryFrom<String> for JsTier {
    type Error = JsTierError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<JsTier> for String {
    fn from(t: JsTier) -> String {
        t.name()
    }
}

/// Changes to an account beyond its plain limits: JetStream tiers, default
/// permissions, tags, info URL and description. `None`/empty leaves a value as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountEdit {
    /// Limit changes. Its JetStream fields (and the three below) apply to the flat
    /// limits, or to [`AccountEdit::js_tier`] when one is named.
    pub limits: AccountLimitsEdit,
    /// `--js-max-mem-stream`: max bytes of one memory stream.
    pub js_mem_max_stream_bytes: Option<i64>,
    /// `--js-max-disk-stream`: max bytes of one file stream.
    pub js_disk_max_stream_bytes: Option<i64>,
    /// `--js-max-bytes-required`: streams must declare max bytes.
    pub js_max_bytes_required: Option<bool>,
    /// `--js-tier`: the JetStream limit changes apply to this tier (created when absent,
    /// counts unlimited and storage disabled until given).
    pub js_tier: Option<JsTier>,
    /// `--rm-js-tier`: tiers removed (before the changes above).
    pub remove_js_tiers: Vec<JsTier>,
    /// `--js-disable`: every JetStream limit, flat and tiered, cleared first (the way
    /// from flat to tiered limits or back).
    pub js_disable: bool,
    /// `--default-allow-pub` and friends: the account's default permissions, for users
    /// whose JWT carries no permissions at all.
    pub default_permissions: PermissionsEdit,
    /// `--tag` (added, lower-cased).
    pub add_tags: Vec<String>,
    /// `--rm-tag` (removed before the additions).
    pub remove_tags: Vec<String>,
    /// `--info-url`; an empty string clears it.
    pub info_url: Option<String>,
    /// `--description`; an empty string clears it.
    pub description: Option<String>,
}

/// An account edit that would leave limits nats-server refuses, or names a missing tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountEditError {
    /// Tier limits asked for while flat JetStream limits are set.
    #[error(
        "the account has flat JetStream limits; nats-server refuses flat and tiered limits together: \
         add --js-disable to clear the flat limits in the same edit"
    )]
    TierOverFlat,
    /// Flat limits asked for while tiers are set.
    #[error(
        "the account has tiered JetStream limits ({0}); nats-server refuses flat and tiered limits \
         together: name the tier with --js-tier, or add --js-disable to clear the tiers first"
    )]
    FlatOverTiers(String),
    /// `--rm-js-tier` of a tier the account does not have.
    #[error("the account has no JetStream tier {0}")]
    NoSuchTier(JsTier),
}

impl AccountEdit {
    /// Whether the edit touches any JetStream limit (flat or tiered).
    fn js_fields_given(&self) -> bool {
        let l = &self.limits;
        l.js_mem_storage.is_some()
            || l.js_disk_storage.is_some()
            || l.js_streams.is_some()
            || l.js_consumer.is_some()
            || l.js_max_ack_pending.is_some()
            || self.js_mem_max_stream_bytes.is_some()
            || self.js_disk_max_stream_bytes.is_some()
            || self.js_max_bytes_required.is_some()
    }

    /// Applies the edit, or changes nothing and says why it cannot.
    pub fn apply(&self, spec: &mut AccountSpec) -> Result<(), AccountEditError> {
        let mut next = spec.clone();
        let limits = &mut next.limits;
        if self.js_disable {
            limits.jetstream = JetStreamLimitsSpec::default();
            limits.jetstream_tiers.clear();
        }
        for t in &self.remove_js_tiers {
            if limits.jetstream_tiers.remove(&t.name()).is_none() {
                return Err(AccountEditError::NoSuchTier(*t));
            }
        }
        // The plain limits; the JetStream ones go where the edit points them below.
        let plain = AccountLimitsEdit {
            js_mem_storage: None,
            js_disk_storage: None,
            js_streams: None,
            js_consumer: None,
            js_max_ack_pending: None,
            ..self.limits.clone()
        };
        plain.apply(limits);
        if self.js_tier.is_some() || self.js_fields_given() {
            let target = match self.js_tier {
                Some(tier) => {
                    if !limits.jetstream.to_claims().is_zero() {
                        return Err(AccountEditError::TierOverFlat);
                    }
                    limits
                        .jetstream_tiers
                        .entry(tier.name())
                        .or_insert_with(JetStreamLimitsSpec::new_tier)
                }
                None => {
                    if !limits.jetstream_tiers.is_empty() {
                        let names: Vec<&str> =
                            limits.jetstream_tiers.keys().map(String::as_str).collect();
                        return Err(AccountEditError::FlatOverTiers(names.join(", ")));
                    }
                    &mut limits.jetstream
                }
            };
            let l = &self.limits;
            set(&mut target.mem_storage, l.js_mem_storage);
            set(&mut target.disk_storage, l.js_disk_storage);
            set(&mut target.streams, l.js_streams);
            set(&mut target.consumer, l.js_consumer);
            set(&mut target.max_ack_pending, l.js_max_ack_pending);
            set(
                &mut target.mem_max_stream_bytes,
                self.js_mem_max_stream_bytes,
            );
            set(
                &mut target.disk_max_stream_bytes,
                self.js_disk_max_stream_bytes,
            );
            set(&mut target.max_bytes_required, self.js_max_bytes_required);
        }
        self.default_permissions
            .apply(&mut next.default_permissions);
        edit_tags(&mut next.tags, &self.remove_tags, &self.add_tags);
        if let Some(u) = &self.info_url {
            next.info_url = Some(u.trim().to_string()).filter(|u| !u.is_empty());
        }
        if let Some(d) = &self.description {
            next.description = Some(d.clone()).filter(|d| !d.is_empty());
        }
        *spec = next;
        Ok(())
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self == &AccountEdit::default()
    }

    /// Checks the text-typed fields and puts them in their stored form (tags
    /// lower-cased; a blank tag refused).
    pub fn normalize(&mut self) -> Result<(), ParseError> {
        canonical_tags(&mut self.add_tags)?;
        canonical_tags(&mut self.remove_tags)
    }
}

impl JetStreamLimitsSpec {
    /// A new tier's starting point: counts unlimited, storage disabled until given
    /// (storage is what turns JetStream on, so it is never implied).
    pub fn new_tier() -> Self {
        JetStreamLimitsSpec {
            mem_storage: 0,
            disk_storage: 0,
            ..JetStreamLimitsSpec::unlimited()
        }
    }
}

impl AccountSpec {
    /// Canonical tags (trimmed, lower-cased), blanks refused.
    pub fn normalize(&mut self) -> Result<(), ParseError> {
        canonical_tags(&mut self.tags)?;
        let mut seen = Vec::with_capacity(self.tags.len());
        self.tags.retain(|t| {
            let new = !seen.contains(t);
            if new {
                seen.push(t.clone());
            }
            new
        });
        Ok(())
    }
}

/// Removes then adds tags (trimmed, lower-cased, no duplicates): a tag removed and
/// added in one edit stays.
fn edit_tags(tags: &mut Vec<String>, remove: &[String], add: &[String]) {
    let removed: Vec<String> = remove
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    tags.retain(|t| !removed.contains(t));
    for t in add {
        let t = t.trim().to_ascii_lowercase();
        if !t.is_empty() && !tags.contains(&t) {
            tags.push(t);
        }
    }
}

/// Changes to publish/subscribe permissions, named as nsc names its flags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PermissionsEdit {
    /// `--allow-pub`.
    pub allow_pub: Vec<Subject>,
    /// `--allow-sub`.
    pub allow_sub: Vec<Subject>,
    /// `--deny-pub`.
    pub deny_pub: Vec<Subject>,
    /// `--deny-sub`.
    pub deny_sub: Vec<Subject>,
    /// `--rm`: removed from every allow and deny list.
    pub remove: Vec<Subject>,
    /// `--allow-pub-response[=N]`: Some(max messages).
    pub allow_pub_response: Option<i64>,
    /// `--response-ttl` in nanoseconds.
    pub response_ttl_ns: Option<i64>,
    /// `--rm-response-perms`.
    pub remove_response: bool,
}

impl PermissionsEdit {
    /// Applies the changes: additions are de-duplicated and kept in the order given.
    pub fn apply(&self, perms: &mut Permissions) {
        for s in &self.remove {
            for list in [
                &mut perms.publish.allow,
                &mut perms.publish.deny,
                &mut perms.subscribe.allow,
                &mut perms.subscribe.deny,
            ] {
                list.retain(|x| x != s);
            }
        }
        add_all(&mut perms.publish, &self.allow_pub, &self.deny_pub);
        add_all(&mut perms.subscribe, &self.allow_sub, &self.deny_sub);
        if self.remove_response {
            perms.response = None;
        }
        if self.allow_pub_response.is_some() || self.response_ttl_ns.is_some() {
            let resp = perms
                .response
                .get_or_insert(ResponsePermission { max: 1, ttl_ns: 0 });
            set(&mut resp.max, self.allow_pub_response);
            set(&mut resp.ttl_ns, self.response_ttl_ns);
        }
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self == &PermissionsEdit::default()
    }
}

fn add_all(p: &mut Permission, allow: &[Subject], deny: &[Subject]) {
    for s in allow {
        if !p.allow.contains(s) {
            p.allow.push(s.clone());
        }
    }
    for s in deny {
        if !p.deny.contains(s) {
            p.deny.push(s.clone());
        }
    }
}

/// Changes to a user; `None` leaves a value as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserEdit {
    /// Permission changes.
    pub permissions: PermissionsEdit,
    /// `--bearer`.
    pub bearer: Option<bool>,
    /// `--conn-type` (added).
    pub add_conn_types: Vec<ConnectionType>,
    /// `--rm-conn-type`.
    pub remove_conn_types: Vec<ConnectionType>,
    /// `--source-network` (added; canonical CIDRs).
    pub add_source_networks: Vec<String>,
    /// `--rm-source-network`.
    pub remove_source_networks: Vec<String>,
    /// `--expiry`: Some(None) clears the expiry.
    pub expiry: Option<Option<i64>>,
    /// `--subs`.
    pub subs: Option<i64>,
    /// `--data`.
    pub data: Option<i64>,
    /// `--payload`.
    pub payload: Option<i64>,
    /// `--tag` (added).
    pub add_tags: Vec<String>,
    /// `--rm-tag` (removed, before the additions; matched case-insensitively as tags are
    /// stored lower-cased).
    pub remove_tags: Vec<String>,
}

impl UserEdit {
    /// Applies the changes.
    pub fn apply(&self, spec: &mut UserSpec) {
        let l = spec;
        self.permissions.apply(&mut l.permissions);
        set(&mut l.bearer_token, self.bearer);
        l.allowed_connection_types
            .retain(|c| !self.remove_conn_types.contains(c));
        for c in &self.add_conn_types {
            if !l.allowed_connection_types.contains(c) {
                l.allowed_connection_types.push(*c);
            }
        }
        l.src.retain(|c| !self.remove_source_networks.contains(c));
        for c in &self.add_source_networks {
            if !l.src.contains(c) {
                l.src.push(c.clone());
            }
        }
        set(&mut l.subs, self.subs);
        set(&mut l.data, self.data);
        set(&mut l.payload, self.payload);
        set(&mut l.expires_at, self.expiry);
        edit_tags(&mut l.tags, &self.remove_tags, &self.add_tags);
    }

    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self == &UserEdit::default()
    }

    /// Checks the text-typed fields and puts them in their stored form: source
    /// networks become canonical CIDRs, tags lower-cased. A blank or invalid entry
    /// is refused (subjects and connection types are checked by their types).
    pub fn normalize(&mut self) -> Result<(), ParseError> {
        canonical_cidrs(&mut self.add_source_networks)?;
        canonical_cidrs(&mut self.remove_source_networks)?;
        canonical_tags(&mut self.add_tags)?;
        canonical_tags(&mut self.remove_tags)
    }
}

impl UserSpec {
    /// As [`UserEdit::normalize`]: canonical source networks and tags, blanks refused.
    pub fn normalize(&mut self) -> Result<(), ParseError> {
        canonical_cidrs(&mut self.src)?;
        canonical_tags(&mut self.tags)
    }
}

fn canonical_tags(list: &mut [String]) -> Result<(), ParseError> {
    for t in list.iter_mut() {
        *t = parse_tag(t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subj(s: &str) -> Subject {
        Subject::new(s).unwrap()
    }

    #[test]
    fn default_account_is_unlimited_without_jetstream() {
        let spec = AccountSpec::default();
        let wire = spec.limits.to_claims();
        assert_eq!(wire.account.conn, -1);
        assert_eq!(wire.nats.subs, -1);
        assert_eq!(wire.nats.payload, -1);
        assert!(wire.account.wildcards);
        assert_eq!(wire.jetstream.mem_storage, 0);
        assert!(!spec.limits.jetstream.enabled());
        let js = AccountSpec::with_unlimited_jetstream();
        assert_eq!(js.limits.jetstream.disk_storage, -1);
    }

    #[test]
    fn missing_numbers_in_spec_files_mean_unlimited_but_stored_zeros_stay_zero() {
        let user: UserSpec =
            serde_json::from_str(r#"{"permissions":{"pub":{"allow":["a"]},"sub":{}}}"#).unwrap();
        assert_eq!((user.subs, user.data, user.payload), (-1, -1, -1));
        let acc: AccountSpec = serde_json::from_str(r#"{"limits":{"conn":0}}"#).unwrap();
        assert_eq!(acc.limits.conn, 0);
        assert_eq!(acc.limits.leaf, -1);
        let mut zero = AccountSpec::default();
        zero.limits.conn = 0;
        let back: AccountSpec =
            serde_json::from_value(serde_json::to_value(&zero).unwrap()).unwrap();
        assert_eq!(back.limits.conn, 0);
    }

    #[test]
    fn specs_round_trip_through_json() {
        let mut spec = AccountSpec::default();
        spec.revocations.insert("*".into(), 5);
        let json = serde_json::to_value(&spec).unwrap();
        let back: AccountSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        let user = UserSpec::default();
        let back: UserSpec = serde_json::from_value(serde_json::to_value(&user).unwrap()).unwrap();
        assert_eq!(back, user);
    }

    #[test]
    fn limits_edit_sets_only_given_values() {
        let mut spec = AccountSpec::default();
        AccountLimitsEdit {
            conns: Some(5),
            js_disk_storage: Some(1 << 20),
            ..Default::default()
        }
        .apply(&mut spec.limits);
        assert_eq!(spec.limits.conn, 5);
        assert_eq!(spec.limits.jetstream.disk_storage, 1 << 20);
        assert_eq!(spec.limits.subs, -1);
    }

    #[test]
    fn tag_edits_remove_then_add_lower_cased() {
        let mut spec = UserSpec {
            tags: vec!["edge".into(), "billing".into()],
            ..UserSpec::default()
        };
        UserEdit {
            remove_tags: vec![" EDGE ".into(), "absent".into()],
            add_tags: vec!["EU".into(), "billing".into()],
            ..Default::default()
        }
        .apply(&mut spec);
        assert_eq!(spec.tags, ["billing", "eu"]);
        // A tag removed and added in one edit stays.
        UserEdit {
            remove_tags: vec!["eu".into()],
            add_tags: vec!["eu".into()],
            ..Default::default()
        }
        .apply(&mut spec);
        assert_eq!(spec.tags, ["billing", "eu"]);
    }

    #[test]
    fn permission_edits_add_dedupe_and_remove() {
        let mut spec = UserSpec::default();
        let edit = UserEdit {
            permissions: PermissionsEdit {
                allow_pub: vec![subj("a.>"), subj("a.>"), subj("b")],
                deny_sub: vec![subj("secret.>")],
                allow_pub_response: Some(3),
                ..Default::default()
            },
            add_source_networks: vec!["10.0.0.0/8".into()],
            add_conn_types: vec![ConnectionType::Standard],
            expiry: Some(Some(99)),
            ..Default::default()
        };
        edit.apply(&mut spec);
        let p = &spec.permissions;
        assert_eq!(p.publish.allow, vec![subj("a.>"), subj("b")]);
        assert_eq!(p.subscribe.deny, vec![subj("secret.>")]);
        assert_eq!(p.response.as_ref().map(|r| r.max), Some(3));
        assert_eq!(spec.expires_at, Some(99));
        UserEdit {
            permissions: PermissionsEdit {
                remove: vec![subj("a.>")],
                remove_response: true,
                ..Default::default()
            },
            remove_source_networks: vec!["10.0.0.0/8".into()],
            expiry: Some(None),
            ..Default::default()
        }
        .apply(&mut spec);
        let p = &spec.permissions;
        assert_eq!(p.publish.allow, vec![subj("b")]);
        assert!(p.response.is_none());
        assert!(spec.src.is_empty());
        assert_eq!(spec.expires_at, None);
    }

    #[test]
    fn normalize_canonicalises_and_refuses_blanks() {
        let mut edit = UserEdit {
            add_source_networks: vec!["10.0.0.1".into()],
            remove_source_networks: vec![" 10.1.0.0/16 ".into()],
            add_tags: vec![" Edge".into()],
            ..Default::default()
        };
        assert_eq!(edit.normalize(), Ok(()));
        assert_eq!(edit.add_source_networks, ["10.0.0.1/32"]);
        assert_eq!(edit.remove_source_networks, ["10.1.0.0/16"]);
        assert_eq!(edit.add_tags, ["edge"]);
        for blank in ["", "  "] {
            let mut edit = UserEdit {
                add_source_networks: vec![blank.into()],
                ..Default::default()
            };
            assert!(matches!(edit.normalize(), Err(ParseError::Blank(_))));
            let mut spec = UserSpec {
                src: vec!["10.0.0.0/8".into(), blank.into()],
                ..Default::default()
            };
            assert!(matches!(spec.normalize(), Err(ParseError::Blank(_))));
            let mut spec = UserSpec {
                tags: vec![blank.into()],
                ..Default::default()
            };
            assert!(matches!(spec.normalize(), Err(ParseError::Blank(_))));
        }
    }

    #[test]
    fn js_tiers_parse_as_nats_server_names_them() {
        for (input, name) in [("R1", "R1"), ("r3", "R3"), ("5", "R5"), (" R2 ", "R2")] {
            assert_eq!(input.parse::<JsTier>().unwrap().name(), name);
        }
        for bad in ["", "R", "R0", "0", "R6", "R-1", "R1a", "x3", "R 3", "RR3"] {
            assert!(bad.parse::<JsTier>().is_err(), "{bad:?}");
        }
        let t: JsTier = serde_json::from_str("\"R3\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"R3\"");
        assert!(serde_json::from_str::<JsTier>("\"R9\"").is_err());
    }

    fn tier(s: &str) -> JsTier {
        s.parse().unwrap()
    }

    #[test]
    fn account_edit_puts_jetstream_limits_in_the_named_tier() {
        let mut spec = AccountSpec::default();
        let edit = AccountEdit {
            limits: AccountLimitsEdit {
                conns: Some(7),
                js_disk_storage: Some(1 << 20),
                js_streams: Some(2),
                ..Default::default()
            },
            js_tier: Some(tier("R1")),
            ..Default::default()
        };
        edit.apply(&mut spec).unwrap();
        assert_eq!(spec.limits.conn, 7);
        assert!(spec.limits.jetstream.to_claims().is_zero());
        let r1 = &spec.limits.jetstream_tiers["R1"];
        assert_eq!(
            (r1.disk_storage, r1.mem_storage, r1.streams),
            (1 << 20, 0, 2)
        );
        assert_eq!(r1.consumer, -1);
        assert!(spec.limits.jetstream_enabled());
        // Flat limits now refused, nothing changed.
        let before = spec.clone();
        let flat = AccountEdit {
            limits: AccountLimitsEdit {
                js_mem_storage: Some(1),
                conns: Some(1),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(matches!(
            flat.apply(&mut spec),
            Err(AccountEditError::FlatOverTiers(t)) if t == "R1"
        ));
        assert_eq!(spec, before);
        // Non-JetStream limits alone are fine.
        AccountEdit {
            limits: AccountLimitsEdit {
                conns: Some(1),
                ..Default::default()
            },
            ..Default::default()
        }
        .apply(&mut spec)
        .unwrap();
        assert_eq!(spec.limits.conn, 1);
        // Removing a missing tier is refused; removing R1 works.
        let rm = |t: &str| AccountEdit {
            remove_js_tiers: vec![tier(t)],
            ..Default::default()
        };
        assert_eq!(
            rm("R3").apply(&mut spec),
            Err(AccountEditError::NoSuchTier(tier("R3")))
        );
        rm("R1").apply(&mut spec).unwrap();
        assert!(spec.limits.jetstream_tiers.is_empty());
    }

    #[test]
    fn tier_over_flat_limits_needs_js_disable() {
        let mut spec = AccountSpec::with_unlimited_jetstream();
        let mut edit = AccountEdit {
            limits: AccountLimitsEdit {
                js_disk_storage: Some(1024),
                ..Default::default()
            },
            js_tier: Some(tier("R3")),
            ..Default::default()
        };
        let before = spec.clone();
        assert_eq!(edit.apply(&mut spec), Err(AccountEditError::TierOverFlat));
        assert_eq!(spec, before);
        edit.js_disable = true;
        edit.apply(&mut spec).unwrap();
        assert!(spec.limits.jetstream.to_claims().is_zero());
        assert_eq!(spec.limits.jetstream_tiers["R3"].disk_storage, 1024);
        assert!(spec.limits.to_claims().tiered_limits.contains_key("R3"));
    }

    #[test]
    fn account_edit_sets_defaults_tags_and_info() {
        let mut spec = AccountSpec::default();
        let mut edit = AccountEdit {
            default_permissions: PermissionsEdit {
                allow_pub: vec![subj("ok.>")],
                deny_sub: vec![subj("secret")],
                allow_pub_response: Some(1),
                ..Default::default()
            },
            add_tags: vec![" Team:Blue ".into(), "team:blue".into()],
            info_url: Some("https://example.com/acct".into()),
            description: Some("d".into()),
            ..Default::default()
        };
        edit.normalize().unwrap();
        edit.apply(&mut spec).unwrap();
        assert_eq!(spec.default_permissions.publish.allow, vec![subj("ok.>")]);
        assert_eq!(
            spec.default_permissions.subscribe.deny,
            vec![subj("secret")]
        );
        assert_eq!(spec.tags, ["team:blue"]);
        assert_eq!(spec.info_url.as_deref(), Some("https://example.com/acct"));
        AccountEdit {
            remove_tags: vec!["TEAM:BLUE".into()],
            info_url: Some(String::new()),
            default_permissions: PermissionsEdit {
                remove: vec![subj("ok.>")],
                ..Default::default()
            },
            ..Default::default()
        }
        .apply(&mut spec)
        .unwrap();
        assert!(spec.tags.is_empty());
        assert_eq!(spec.info_url, None);
        assert!(spec.default_permissions.publish.allow.is_empty());
        let mut blank = AccountEdit {
            add_tags: vec![" ".into()],
            ..Default::default()
        };
        assert!(matches!(blank.normalize(), Err(ParseError::Blank(_))));
    }
}
