//! Device fleets: one hub account and one account per device (by default `EMDEVS`
//! and `EMDEV-<id>`). Pure: fleet settings, device id validation, and the compiler of
//! the hub's exports, each device's imports with the activation claims that grant
//! them, and the users on both sides.
//!
//! The hub exports ONE wildcard subject per kind, each private (`token_req`):
//! - stream `EMDEV.*.>` (messages to devices),
//! - service `EMDEVS.*.>` (requests from devices),
//! - service `$JS.API.>` and `$JS.ACK.>` (JetStream of the devices' streams).
//!
//! A device account imports only its own slice (`EMDEV.<id>.>`, …), each import
//! carrying an activation issued by the hub for that device account and narrowed to
//! that slice. So the hub JWT does not grow with the fleet; revoking a device adds
//! one revocation entry per export (its account key) to the hub, nothing else.
//! JetStream is imported under a local prefix (`EMDEVJS.API.…`), never `$JS.>`.
//!
//! A device must not be able to exhaust the hub, so both sides of its JetStream are
//! bounded by nats-server itself, never by the device's good will:
//! - each device stream is created (by Warden, never by the device: no device import
//!   reaches `STREAM.CREATE` / `STREAM.UPDATE`) with `max_consumers`, `max_bytes` and
//!   `max_msgs` ([`FleetSettings::stream_limits`]; defaults
//!   [`DEFAULT_DEVICE_MAX_CONSUMERS`] = 4, [`DEFAULT_DEVICE_MAX_BYTES`] = 1M,
//!   [`DEFAULT_DEVICE_MAX_MSGS`] = 10,000; the oldest messages are discarded);
//! - the hub account JWT carries bounded JetStream limits
//!   ([`FleetSettings::hub_jetstream_limits`]; defaults: `mem_storage` 256M,
//!   `disk_storage` 20G, `streams` 20,000, `consumer` 4, `max_ack_pending` 1,000).
//!   nats-server applies `consumer` to each stream of the account (the lower of it and
//!   the stream's own `max_consumers` wins, so lowering it bounds streams that exist
//!   already) and `max_ack_pending` to each consumer, and
//!   counts every stream's `max_bytes` against `disk_storage` when it is created, so a
//!   fleet holds at most [`FleetSettings::capacity`] devices.
//!
//! On a JetStream cluster device streams may be replicated
//! ([`FleetSettings::stream_replicas`], 1 to 5, default 1): each is created with that
//! `num_replicas`, and the hub's JetStream limits move from flat limits to the tier
//! `R<n>` ([`FleetSettings::set_hub_jetstream`]). A replicated stream's `max_bytes` is
//! reserved once per replica ([`FleetSettings::reserved_per_stream`]).
//!
//! Zero or unlimited (`-1`) values are refused: the point is a bound.

use std::collections::BTreeMap;

use nats_jwt::{
    AccountPublicKey, ActivationClaims, Export, ExportType, Import, ResponsePermission,
    ResponseType, Subject,
};
use serde::{Deserialize, Serialize};

use crate::names::{AccountName, NameError, UserName};
use crate::spec::{
    AccountLimitsSpec, AccountSpec, JetStreamLimitsSpec, JsTier, MAX_JS_REPLICAS, UserSpec,
};

/// Longest device id, in bytes (the account name `EMDEV-<id>` stays within 64).
pub const MAX_DEVICE_ID_LEN: usize = 40;

/// Default per-stream consumer limit of a device stream (`max_consumers`).
pub const DEFAULT_DEVICE_MAX_CONSUMERS: i64 = 4;
/// Default size limit of a device stream (`max_bytes`): 1 MiB.
pub const DEFAULT_DEVICE_MAX_BYTES: i64 = 1 << 20;
/// Default message limit of a device stream (`max_msgs`).
pub const DEFAULT_DEVICE_MAX_MSGS: i64 = 10_000;
/// Default memory storage of the hub account (`mem_storage`): 256 MiB.
pub const DEFAULT_HUB_MEM_STORAGE: i64 = 256 << 20;
/// Default disk storage of the hub account (`disk_storage`): 20 GiB.
pub const DEFAULT_HUB_DISK_STORAGE: i64 = 20 << 30;
/// Default stream count of the hub account (`streams`).
pub const DEFAULT_HUB_MAX_STREAMS: i64 = 20_000;
/// Default consumers per stream of the hub account (`consumer`).
pub const DEFAULT_HUB_MAX_CONSUMERS: i64 = 4;
/// Default unacknowledged messages per consumer of the hub account (`max_ack_pending`).
pub const DEFAULT_HUB_MAX_ACK_PENDING: i64 = 1_000;

/// Names, subjects and JetStream bounds of a fleet; default names follow the
/// nats-manager conventions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FleetSettings {
    /// The hub account (`EMDEVS`), JetStream enabled.
    pub hub_account: String,
    /// Prefix of device account names (`EMDEV-` → `EMDEV-<id>`).
    pub device_account_prefix: String,
    /// The user of each device account (`emdev`).
    pub device_user: String,
    /// The hub user of backends (`backend`): publishes to devices, serves their requests.
    pub backend_user: String,
    /// The hub user Warden creates device streams with (`superuser`).
    pub admin_user: String,
    /// First token of subjects to devices (`EMDEV` → `EMDEV.<id>.>`).
    pub to_device: String,
    /// First token of requests from devices (`EMDEVS` → `EMDEVS.<id>.>`).
    pub from_device: String,
    /// The device-side JetStream API prefix (`EMDEVJS.API`), for `jetstream::with_prefix`.
    pub js_api_prefix: String,
    /// Prefix of device stream names in the hub (`EMDEV_` → `EMDEV_<id>`).
    pub stream_prefix: String,
    /// Consumers one device stream may have (its `max_consumers`).
    pub device_max_consumers: i64,
    /// Bytes one device stream keeps (its `max_bytes`; the oldest are discarded).
    pub device_max_bytes: i64,
    /// Messages one device stream keeps (its `max_msgs`; the oldest are discarded).
    pub device_max_msgs: i64,
    /// The hub account's JetStream memory storage, bytes (`mem_storage`; 0: none).
    pub hub_mem_storage: i64,
    /// The hub account's JetStream disk storage, bytes (`disk_storage`).
    pub hub_disk_storage: i64,
    /// Streams in the hub account (`streams`): the device streams and any other.
    pub hub_max_streams: i64,
    /// Consumers per stream in the hub account (`consumer`).
    pub hub_max_consumers: i64,
    /// Unacknowledged messages per consumer in the hub account (`max_ack_pending`).
    pub hub_max_ack_pending: i64,
    /// Replicas of every device stream (`num_replicas`, 1 to 5; default 1). Above 1 the
    /// hub's JetStream limits are the tier `R<n>` instead of flat limits.
    pub stream_replicas: u8,
}

/// The bounds of one device stream, as its stream config carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamLimits {
    /// `max_consumers`.
    pub max_consumers: i64,
    /// `max_bytes`.
    pub max_bytes: i64,
    /// `max_msgs`.
    pub max_msgs: i64,
    /// `num_replicas`.
    pub replicas: u8,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            hub_account: "EMDEVS".into(),
            device_account_prefix: "EMDEV-".into(),
            device_user: "emdev".into(),
            backend_user: "backend".into(),
            admin_user: "superuser".into(),
            to_device: "EMDEV".into(),
            from_device: "EMDEVS".into(),
            js_api_prefix: "EMDEVJS.API".into(),
            stream_prefix: "EMDEV_".into(),
            device_max_consumers: DEFAULT_DEVICE_MAX_CONSUMERS,
            device_max_bytes: DEFAULT_DEVICE_MAX_BYTES,
            device_max_msgs: DEFAULT_DEVICE_MAX_MSGS,
            hub_mem_storage: DEFAULT_HUB_MEM_STORAGE,
            hub_disk_storage: DEFAULT_HUB_DISK_STORAGE,
            hub_max_streams: DEFAULT_HUB_MAX_STREAMS,
            hub_max_consumers: DEFAULT_HUB_MAX_CONSUMERS,
            hub_max_ack_pending: DEFAULT_HUB_MAX_ACK_PENDING,
            stream_replicas: 1,
        }
    }
}

/// A fleet setting or device id that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A bad device id.
    #[error(
        "invalid device id {0:?}: use 1 to {MAX_DEVICE_ID_LEN} lowercase letters, digits and dashes, starting and ending with a letter or digit"
    )]
    BadId(String),
    /// A bad fleet setting.
    #[error("invalid fleet setting {field}: {reason}")]
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

/// A validated device id: lowercase letters, digits and dashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// Validates `raw` (surrounding whitespace is trimmed).
    pub fn parse(raw: &str) -> Result<DeviceId, DeviceError> {
        let s = raw.trim();
        let ok = !s.is_empty()
            && s.len() <= MAX_DEVICE_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(DeviceId(s.to_string()))
        } else {
            Err(DeviceError::BadId(raw.to_string()))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DeviceId::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn subject(s: String) -> Result<Subject, DeviceError> {
    Subject::new(&s).map_err(|e| DeviceError::BadSetting {
        field: "subject",
        reason: format!("{s:?}: {e}"),
    })
}

fn token(field: &'static str, value: &str) -> Result<(), DeviceError> {
    let bad = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '*' | '>'))
        || value.starts_with('.')
        || value.ends_with('.')
        || value.contains("..");
    if bad {
        return Err(DeviceError::BadSetting {
            field,
            reason: format!("{value:?} is not a literal subject prefix"),
        });
    }
    Ok(())
}

impl FleetSettings {
    /// Checks every name and subject prefix; the first problem is returned.
    pub fn check(&self) -> Result<(), DeviceError> {
        AccountName::parse_any_case(&self.hub_account)?;
        AccountName::parse_any_case(&format!("{}x", self.device_account_prefix))?;
        UserName::parse_any_case(&self.device_user)?;
        UserName::parse_any_case(&self.backend_user)?;
        UserName::parse_any_case(&self.admin_user)?;
        if self.backend_user == self.admin_user {
            return Err(DeviceError::BadSetting {
                field: "admin_user",
                reason: "must differ from backend_user".into(),
            });
        }
        token("to_device", &self.to_device)?;
        token("from_device", &self.from_device)?;
        token("js_api_prefix", &self.js_api_prefix)?;
        if self.to_device == self.from_device {
            return Err(DeviceError::BadSetting {
                field: "from_device",
                reason: "must differ from to_device".into(),
            });
        }
        if self.js_api_prefix.starts_with('$') {
            return Err(DeviceError::BadSetting {
                field: "js_api_prefix",
                reason: "must not be a $-subject (it would clash with the account's own JetStream)"
                    .into(),
            });
        }
        token("stream_prefix", &self.stream_prefix)?;
        if self.stream_prefix.contains('.') {
            return Err(DeviceError::BadSetting {
                field: "stream_prefix",
                reason: "stream names cannot contain '.'".into(),
            });
        }
        self.check_limits()
    }

    /// Checks the JetStream bounds: each one set (unlimited or zero refused, but for
    /// `hub_mem_storage`, where 0 means no memory streams) and consistent with the
    /// hub's, which nats-server would otherwise refuse device streams against.
    pub fn check_limits(&self) -> Result<(), DeviceError> {
        let bounded = |field: &'static str, v: i64, min: i64| {
            if v < min {
                Err(DeviceError::BadSetting {
                    field,
                    reason: format!(
                        "{v} is not a bound: use a number of at least {min} (devices must not be able to exhaust the hub)"
                    ),
                })
            } else {
                Ok(())
            }
        };
        bounded("device_max_consumers", self.device_max_consumers, 1)?;
        bounded("device_max_bytes", self.device_max_bytes, 1)?;
        bounded("device_max_msgs", self.device_max_msgs, 1)?;
        bounded("hub_mem_storage", self.hub_mem_storage, 0)?;
        bounded("hub_disk_storage", self.hub_disk_storage, 1)?;
        bounded("hub_max_streams", self.hub_max_streams, 1)?;
        bounded("hub_max_consumers", self.hub_max_consumers, 1)?;
        bounded("hub_max_ack_pending", self.hub_max_ack_pending, 1)?;
        if JsTier::new(self.stream_replicas).is_err() {
            return Err(DeviceError::BadSetting {
                field: "stream_replicas",
                reason: format!(
                    "{} is not a replica count: use 1 to {MAX_JS_REPLICAS} (nats-server's range; 3 on a JetStream cluster of at least 3 servers)",
                    self.stream_replicas
                ),
            });
        }
        // nats-server's stream config carries max_consumers as a 32-bit number.
        if self.device_max_consumers > i64::from(i32::MAX) {
            return Err(DeviceError::BadSetting {
                field: "device_max_consumers",
                reason: format!("{} is above {}", self.device_max_consumers, i32::MAX),
            });
        }
        // Each stream's max_bytes is reserved against the account's disk storage, once
        // per replica (see `reserved_per_stream`).
        if self.reserved_per_stream() > self.hub_disk_storage {
            return Err(DeviceError::BadSetting {
                field: "device_max_bytes",
                reason: format!(
                    "{} bytes per device stream × {} replicas is above the hub's disk storage of {} bytes (hub_disk_storage)",
                    self.device_max_bytes, self.stream_replicas, self.hub_disk_storage
                ),
            });
        }
        Ok(())
    }

    /// Whether `other` names the same fleet: every name and subject equal (the
    /// JetStream bounds may differ).
    pub fn same_names(&self, other: &FleetSettings) -> bool {
        let names = |s: &FleetSettings| {
            [
                s.hub_account.clone(),
                s.device_account_prefix.clone(),
                s.device_user.clone(),
                s.backend_user.clone(),
                s.admin_user.clone(),
                s.to_device.clone(),
                s.from_device.clone(),
                s.js_api_prefix.clone(),
                s.stream_prefix.clone(),
            ]
        };
        names(self) == names(other)
    }

    /// The bounds every device stream is created with. `max_consumers` is the lower of
    /// the device's and the hub's: nats-server refuses a stream whose `max_consumers`
    /// is above its account's `consumer`.
    pub fn stream_limits(&self) -> StreamLimits {
        StreamLimits {
            max_consumers: self.device_max_consumers.min(self.hub_max_consumers),
            max_bytes: self.device_max_bytes,
            max_msgs: self.device_max_msgs,
            replicas: self.stream_replicas,
        }
    }

    /// The values of the hub account's JetStream limits, flat or tiered as
    /// [`Self::set_hub_jetstream`] places them. The per-stream byte caps stay unlimited:
    /// `disk_storage` bounds the total, and backends' own streams in the hub may be
    /// larger than a device's.
    pub fn hub_jetstream_limits(&self) -> JetStreamLimitsSpec {
        JetStreamLimitsSpec {
            mem_storage: self.hub_mem_storage,
            disk_storage: self.hub_disk_storage,
            streams: self.hub_max_streams,
            consumer: self.hub_max_consumers,
            max_ack_pending: self.hub_max_ack_pending,
            mem_max_stream_bytes: -1,
            disk_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }

    /// Puts [`Self::hub_jetstream_limits`] into the hub's account limits: flat for R1
    /// device streams, else under the tier `R<stream_replicas>` alone (nats-server
    /// refuses flat and tiered limits together). With only that tier the hub takes no
    /// stream of another replica count: nats-server refuses one with "no JetStream
    /// default or applicable tiered limit present", so backends' own streams in the hub
    /// must have the devices' replicas too.
    pub fn set_hub_jetstream(&self, limits: &mut AccountLimitsSpec) {
        let (flat, tiers) = replicated_jetstream(self.hub_jetstream_limits(), self.stream_replicas);
        limits.jetstream = flat;
        limits.jetstream_tiers = tiers;
    }

    /// Bytes of the hub's `disk_storage` one device stream takes when it is created:
    /// its `max_bytes` once per replica. nats-server counts an R3 stream's `max_bytes`
    /// three times against flat limits (2.9.10 and 2.15), and against an `R3` tier 2.9.10
    /// does too, while 2.15 counts it once there; Warden plans for the stricter count, so
    /// a fleet fits whichever server runs it.
    pub fn reserved_per_stream(&self) -> i64 {
        self.device_max_bytes
            .max(1)
            .saturating_mul(i64::from(self.stream_replicas.max(1)))
    }

    /// How many devices the hub holds: one stream each, each reserving
    /// [`Self::reserved_per_stream`] of `disk_storage` (streams of the hub's own are not
    /// counted).
    pub fn capacity(&self) -> i64 {
        let by_disk = self.hub_disk_storage / self.reserved_per_stream();
        self.hub_max_streams.min(by_disk)
    }

    /// The hub account's name.
    pub fn hub_name(&self) -> Result<AccountName, DeviceError> {
        Ok(AccountName::parse_any_case(&self.hub_account)?)
    }

    /// The account name of a device (`EMDEV-<id>`).
    pub fn account_name(&self, id: &DeviceId) -> Result<AccountName, DeviceError> {
        Ok(AccountName::parse_any_case(&format!(
            "{}{}",
            self.device_account_prefix, id
        ))?)
    }

    /// The device id of a device account name, if it is one.
    pub fn id_of_account(&self, account: &str) -> Option<DeviceId> {
        account
            .strip_prefix(&self.device_account_prefix)
            .and_then(|id| DeviceId::parse(id).ok())
    }

    /// The hub stream holding messages to a device (`EMDEV_<id>`).
    pub fn stream_name(&self, id: &DeviceId) -> String {
        format!("{}{}", self.stream_prefix, id)
    }

    /// Messages to a device: `EMDEV.<id>.>`.
    pub fn to_device_subject(&self, id: &DeviceId) -> String {
        format!("{}.{}.>", self.to_device, id)
    }

    /// Requests from a device: `EMDEVS.<id>.>`.
    pub fn from_device_subject(&self, id: &DeviceId) -> String {
        format!("{}.{}.>", self.from_device, id)
    }

    /// The hub's spec: JetStream enabled within [`Self::hub_jetstream_limits`], the
    /// four private wildcard exports.
    pub fn hub_spec(&self) -> Result<AccountSpec, DeviceError> {
        let mut spec = AccountSpec::default();
        self.set_hub_jetstream(&mut spec.limits);
        spec.description = Some("device fleet hub (Warden)".into());
        let private = |name: &str, s: String, kind: ExportType| -> Result<Export, DeviceError> {
            let mut e = Export::new(subject(s)?, kind);
            e.name = Some(name.to_string());
            e.token_req = true;
            Ok(e)
        };
        let mut js = private(
            "device-jetstream-api",
            "$JS.API.>".into(),
            ExportType::Service,
        )?;
        // A pull request (CONSUMER.MSG.NEXT) is answered by many messages.
        js.response_type = Some(ResponseType::Stream);
        spec.exports = vec![
            private(
                "device-inbound",
                format!("{}.*.>", self.to_device),
                ExportType::Stream,
            )?,
            private(
                "device-requests",
                format!("{}.*.>", self.from_device),
                ExportType::Service,
            )?,
            js,
            private(
                "device-jetstream-ack",
                "$JS.ACK.>".into(),
                ExportType::Service,
            )?,
        ];
        Ok(spec)
    }

    /// The hub's backend user: publishes to any device, receives (and answers)
    /// device requests, nothing else.
    pub fn backend_user_spec(&self) -> Result<UserSpec, DeviceError> {
        let mut u = UserSpec::default();
        u.permissions.publish.allow = vec![subject(format!("{}.>", self.to_device))?];
        u.permissions.subscribe.allow = vec![subject(format!("{}.>", self.from_device))?];
        u.permissions.response = Some(ResponsePermission { max: 1, ttl_ns: 0 });
        Ok(u)
    }

    /// The hub user that administers JetStream (creates device streams).
    pub fn admin_user_spec(&self) -> Result<UserSpec, DeviceError> {
        let mut u = UserSpec::default();
        u.permissions.publish.allow = vec![subject("$JS.API.>".into())?];
        u.permissions.subscribe.allow = vec![subject("_INBOX.>".into())?];
        Ok(u)
    }

    /// The device user: its own subjects, its own JetStream slice, its inbox.
    pub fn device_user_spec(&self, id: &DeviceId) -> Result<UserSpec, DeviceError> {
        let stream = self.stream_name(id);
        let mut u = UserSpec::default();
        u.permissions.publish.allow = vec![
            subject(self.from_device_subject(id))?,
            subject(format!("{}.>", self.js_api_prefix))?,
            subject(format!("$JS.ACK.{stream}.>"))?,
        ];
        u.permissions.subscribe.allow = vec![
            subject(self.to_device_subject(id))?,
            subject("_INBOX.>".into())?,
        ];
        Ok(u)
    }

    /// The imports of a device account, each with the activation claims (not yet
    /// signed) that grant it; the caller signs them with the hub key and puts the
    /// token into the import.
    pub fn device_imports(
        &self,
        id: &DeviceId,
        device: &AccountPublicKey,
        hub: &AccountPublicKey,
    ) -> Result<Vec<(Import, ActivationClaims)>, DeviceError> {
        let stream = self.stream_name(id);
        let js = &self.js_api_prefix;
        // (name, exported subject, local subject, kind)
        let plan: Vec<(&str, String, Option<String>, ExportType)> = vec![
            (
                "inbound",
                self.to_device_subject(id),
                None,
                ExportType::Stream,
            ),
            (
                "requests",
                self.from_device_subject(id),
                None,
                ExportType::Service,
            ),
            (
                "js-stream-info",
                format!("$JS.API.STREAM.INFO.{stream}"),
                Some(format!("{js}.STREAM.INFO.{stream}")),
                ExportType::Service,
            ),
            (
                "js-consumer",
                format!("$JS.API.CONSUMER.*.{stream}"),
                Some(format!("{js}.CONSUMER.$1.{stream}")),
                ExportType::Service,
            ),
            (
                "js-consumer-named",
                format!("$JS.API.CONSUMER.*.{stream}.>"),
                Some(format!("{js}.CONSUMER.$1.{stream}.>")),
                ExportType::Service,
            ),
            (
                "js-durable-create",
                format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*"),
                Some(format!("{js}.CONSUMER.DURABLE.CREATE.{stream}.*")),
                ExportType::Service,
            ),
            (
                "js-next",
                format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.*"),
                Some(format!("{js}.CONSUMER.MSG.NEXT.{stream}.*")),
                ExportType::Service,
            ),
            (
                "js-ack",
                format!("$JS.ACK.{stream}.>"),
                None,
                ExportType::Service,
            ),
        ];
        plan.into_iter()
            .map(|(name, s, local, kind)| {
                let s = subject(s)?;
                let mut import = Import::new(s.clone(), hub.clone(), kind);
                import.name = Some(name.to_string());
                import.local_subject = local.map(subject).transpose()?;
                let activation = ActivationClaims::new(device, s, kind);
                Ok((import, activation))
            })
            .collect()
    }

    /// A device account's spec around its (signed) imports: no JetStream of its own.
    pub fn device_account_spec(&self, id: &DeviceId, imports: Vec<Import>) -> AccountSpec {
        AccountSpec {
            imports,
            description: Some(format!("device {id} (Warden fleet)")),
            ..AccountSpec::default()
        }
    }
}

/// JetStream limits for streams of `replicas` replicas: flat when 1, else the same values
/// under the tier `R<replicas>` alone, as nats-server looks a stream's limits up: the flat
/// limits when the account has them (for every replica count), else the tier named after
/// the stream's replicas (and a stream of a replica count without a tier is refused).
/// A replica count outside 1..=5 (refused by the settings' checks) is treated as 1.
pub fn replicated_jetstream(
    limits: JetStreamLimitsSpec,
    replicas: u8,
) -> (JetStreamLimitsSpec, BTreeMap<String, JetStreamLimitsSpec>) {
    match JsTier::new(replicas) {
        Ok(tier) if replicas > 1 && limits.enabled() => (
            JetStreamLimitsSpec::default(),
            BTreeMap::from([(tier.name(), limits)]),
        ),
        _ => (limits, BTreeMap::new()),
    }
}

/// Revokes every activation the hub issued to `device` (at `at`, unix seconds): one
/// entry per private export.
pub fn revoke_activations(hub: &mut AccountSpec, device: &AccountPublicKey, at: i64) {
    for e in hub.exports.iter_mut().filter(|e| e.token_req) {
        let entry = e.revocations.entry(device.to_string()).or_insert(at);
        *entry = (*entry).max(at);
    }
}

/// Lifts the revocation of `device`'s activations.
pub fn restore_activations(hub: &mut AccountSpec, device: &AccountPublicKey) {
    for e in hub.exports.iter_mut() {
        e.revocations.remove(device.as_str());
    }
}

/// Lifecycle of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Its account exists; it has not connected yet.
    Provisioned,
    /// Its first connection was observed.
    Active,
    /// Cut off: account deleted from the resolver, activations revoked.
    Revoked,
}

impl DeviceState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Provisioned => "provisioned",
            DeviceState::Active => "active",
            DeviceState::Revoked => "revoked",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<DeviceState> {
        match s {
            "provisioned" => Some(DeviceState::Provisioned),
            "active" => Some(DeviceState::Active),
            "revoked" => Some(DeviceState::Revoked),
            _ => None,
        }
    }
}

/// Metadata of a device: free key/value pairs.
pub type DeviceMeta = BTreeMap<String, serde_json::Value>;

/// Parses `k=v` (from `--meta`); keys are non-empty and trimmed.
pub fn parse_meta_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{compile_account, refuse_blocking};
    use nats_jwt::{KeyKind, KeyPair};

    fn key() -> (KeyPair, AccountPublicKey) {
        let kp = KeyPair::generate(KeyKind::Account);
        let pk = kp.account_public_key().unwrap();
        (kp, pk)
    }

    #[test]
    fn device_ids_are_checked() {
        for ok in ["a", "dev-1", "0abc", "x-y-z9"] {
            assert_eq!(DeviceId::parse(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(MAX_DEVICE_ID_LEN + 1);
        for bad in [
            "",
            "A",
            "-a",
            "a-",
            "a.b",
            "a b",
            "a*",
            "a>",
            "ä",
            long.as_str(),
        ] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn default_settings_check_and_name_things_as_the_seed() {
        let s = FleetSettings::default();
        s.check().unwrap();
        let id = DeviceId::parse("a1").unwrap();
        assert_eq!(s.account_name(&id).unwrap().as_str(), "EMDEV-a1");
        assert_eq!(s.id_of_account("EMDEV-a1"), Some(id.clone()));
        assert_eq!(s.id_of_account("BACKEND"), None);
        assert_eq!(s.stream_name(&id), "EMDEV_a1");
        assert_eq!(s.to_device_subject(&id), "EMDEV.a1.>");
        let bad = FleetSettings {
            js_api_prefix: "$JS.API".into(),
            ..FleetSettings::default()
        };
        assert!(bad.check().is_err());
        let bad = FleetSettings {
            to_device: "EMDEV.*".into(),
            ..FleetSettings::default()
        };
        assert!(bad.check().is_err());
    }

    #[test]
    fn hub_and_device_accounts_validate_and_activations_cover_imports() {
        let s = FleetSettings::default();
        let (hub_kp, hub) = key();
        let (_, dev) = key();
        let id = DeviceId::parse("dev-7").unwrap();
        let hub_claims = compile_account(&hub, &s.hub_name().unwrap(), &s.hub_spec().unwrap());
        assert!(refuse_blocking(hub_claims.validate(0)).is_ok());
        let mut imports = Vec::new();
        for (mut import, mut act) in s.device_imports(&id, &dev, &hub).unwrap() {
            assert!(import.subject.is_subset_of(&act.nats.subject));
            assert!(
                hub_claims
                    .nats
                    .exports
                    .iter()
                    .any(|e| e.export_type == import.import_type
                        && import.subject.is_subset_of(&e.subject)),
                "{} not covered by an export",
                import.subject
            );
            import.token = Some(act.encode(&hub_kp).unwrap());
            imports.push(import);
        }
        let spec = s.device_account_spec(&id, imports);
        let claims = compile_account(&dev, &s.account_name(&id).unwrap(), &spec);
        let issues = claims.validate(0);
        assert!(refuse_blocking(issues).is_ok());
        assert!(!spec.limits.jetstream.enabled());
    }

    #[test]
    fn revocation_adds_one_entry_per_private_export_and_restore_lifts_it() {
        let s = FleetSettings::default();
        let (_, dev) = key();
        let mut hub = s.hub_spec().unwrap();
        revoke_activations(&mut hub, &dev, 100);
        assert!(
            hub.exports
                .iter()
                .all(|e| e.revocations.get(dev.as_str()) == Some(&100))
        );
        revoke_activations(&mut hub, &dev, 50);
        assert!(
            hub.exports
                .iter()
                .all(|e| e.revocations.get(dev.as_str()) == Some(&100))
        );
        restore_activations(&mut hub, &dev);
        assert!(hub.exports.iter().all(|e| e.revocations.is_empty()));
    }

    #[test]
    fn hub_jwt_size_with_100_revoked_devices() {
        let s = FleetSettings::default();
        let (hub_kp, hub) = key();
        let base = compile_account(&hub, &s.hub_name().unwrap(), &s.hub_spec().unwrap())
            .encode(&hub_kp)
            .unwrap()
            .len();
        let mut spec = s.hub_spec().unwrap();
        for _ in 0..100 {
            revoke_activations(&mut spec, &key().1, 1_800_000_000);
        }
        let revoked = compile_account(&hub, &s.hub_name().unwrap(), &spec)
            .encode(&hub_kp)
            .unwrap()
            .len();
        eprintln!("hub JWT: {base} bytes; with 100 revoked devices: {revoked} bytes");
        // Independent of fleet size; ~4 entries of ~70 bytes per revoked device.
        assert!(base < 2_000, "{base}");
        assert!(revoked - base < 100 * 4 * 100, "{revoked}");
    }

    #[test]
    fn jetstream_bounds_default_check_and_reach_the_hub_jwt() {
        let s = FleetSettings::default();
        assert_eq!(
            s.stream_limits(),
            StreamLimits {
                max_consumers: 4,
                max_bytes: 1 << 20,
                max_msgs: 10_000,
                replicas: 1,
            }
        );
        assert_eq!(s.capacity(), 20_000);
        let (hub_kp, hub) = key();
        let mut claims = compile_account(&hub, &s.hub_name().unwrap(), &s.hub_spec().unwrap());
        assert!(refuse_blocking(claims.validate(0)).is_ok());
        let js = &claims.nats.limits.jetstream;
        assert_eq!(js.mem_storage, 256 << 20);
        assert_eq!(js.disk_storage, 20 << 30);
        assert_eq!(js.streams, 20_000);
        assert_eq!(js.consumer, 4);
        assert_eq!(js.max_ack_pending, 1_000);
        // Survives the wire: the encoded JWT carries them.
        let jwt = claims.encode(&hub_kp).unwrap();
        let back: nats_jwt::AccountClaims = nats_jwt::decode(&jwt).unwrap();
        assert_eq!(back.nats.limits.jetstream.consumer, 4);

        // Stored settings of a fleet made before the bounds existed read as defaults.
        let old: FleetSettings = serde_json::from_str(r#"{"hub_account": "OLD"}"#).unwrap();
        assert_eq!(old.hub_jetstream_limits(), s.hub_jetstream_limits());
        assert_eq!(old.hub_account, "OLD");

        for (bad, field) in [
            (
                FleetSettings {
                    device_max_consumers: -1,
                    ..s.clone()
                },
                "device_max_consumers",
            ),
            (
                FleetSettings {
                    device_max_bytes: 0,
                    ..s.clone()
                },
                "device_max_bytes",
            ),
            (
                FleetSettings {
                    hub_disk_storage: -1,
                    ..s.clone()
                },
                "hub_disk_storage",
            ),
            (
                FleetSettings {
                    device_max_bytes: 2 << 30,
                    hub_disk_storage: 1 << 30,
                    ..s.clone()
                },
                "device_max_bytes",
            ),
        ] {
            match bad.check() {
                Err(DeviceError::BadSetting { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let fewer = FleetSettings {
            hub_max_consumers: 2,
            ..s.clone()
        };
        fewer.check().unwrap();
        assert_eq!(fewer.stream_limits().max_consumers, 2);
        let small = FleetSettings {
            hub_mem_storage: 0,
            hub_disk_storage: 10 << 20,
            device_max_bytes: 4 << 20,
            ..s.clone()
        };
        small.check().unwrap();
        assert_eq!(small.capacity(), 2);
        assert!(small.same_names(&s));
        assert!(
            !FleetSettings {
                hub_account: "X".into(),
                ..s.clone()
            }
            .same_names(&s)
        );
    }

    #[test]
    fn replicated_streams_use_the_tier_and_reserve_per_replica() {
        let s = FleetSettings::default();
        assert_eq!(s.stream_limits().replicas, 1);
        let mut flat = s.hub_spec().unwrap();
        assert!(flat.limits.jetstream.enabled());
        assert!(flat.limits.jetstream_tiers.is_empty());

        let r3 = FleetSettings {
            stream_replicas: 3,
            ..s.clone()
        };
        r3.check().unwrap();
        assert_eq!(r3.stream_limits().replicas, 3);
        assert_eq!(r3.reserved_per_stream(), 3 << 20);
        // 20 GiB / (1 MiB × 3), below hub_max_streams.
        assert_eq!(r3.capacity(), (20 << 30) / (3 << 20));
        let spec = r3.hub_spec().unwrap();
        assert!(!spec.limits.jetstream.enabled());
        assert_eq!(
            spec.limits.jetstream_tiers.keys().collect::<Vec<_>>(),
            ["R3"]
        );
        assert_eq!(spec.limits.jetstream_tiers["R3"], r3.hub_jetstream_limits());
        assert!(spec.limits.jetstream_enabled());
        // The JWT carries the tier, and nothing flat.
        let (hub_kp, hub) = key();
        let mut claims = compile_account(&hub, &r3.hub_name().unwrap(), &spec);
        assert!(refuse_blocking(claims.validate(0)).is_ok());
        let back: nats_jwt::AccountClaims =
            nats_jwt::decode(&claims.encode(&hub_kp).unwrap()).unwrap();
        assert_eq!(back.nats.limits.tiered_limits["R3"].disk_storage, 20 << 30);
        assert_eq!(back.nats.limits.jetstream.disk_storage, 0);
        // Back to R1: flat again.
        r3.set_hub_jetstream(&mut flat.limits);
        s.set_hub_jetstream(&mut flat.limits);
        assert!(flat.limits.jetstream_tiers.is_empty() && flat.limits.jetstream.enabled());

        for bad in [0u8, 6, 255] {
            match (FleetSettings {
                stream_replicas: bad,
                ..s.clone()
            })
            .check()
            {
                Err(DeviceError::BadSetting { field, .. }) => assert_eq!(field, "stream_replicas"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Three replicas of a 4M stream do not fit 10M.
        let small = FleetSettings {
            stream_replicas: 3,
            device_max_bytes: 4 << 20,
            hub_disk_storage: 10 << 20,
            ..s.clone()
        };
        assert!(matches!(
            small.check(),
            Err(DeviceError::BadSetting {
                field: "device_max_bytes",
                ..
            })
        ));
        // Stored settings of a fleet made before replicas existed read as R1.
        let old: FleetSettings = serde_json::from_str(r#"{"hub_account": "OLD"}"#).unwrap();
        assert_eq!(old.stream_replicas, 1);
    }

    #[test]
    fn meta_pairs_parse() {
        assert_eq!(
            parse_meta_pair("site = x=y").unwrap(),
            ("site".to_string(), " x=y".to_string())
        );
        assert!(parse_meta_pair("=v").is_err());
        assert!(parse_meta_pair("novalue").is_err());
    }
}
