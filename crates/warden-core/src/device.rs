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

use std::collections::BTreeMap;

use nats_jwt::{
    AccountPublicKey, ActivationClaims, Export, ExportType, Import, ResponsePermission,
    ResponseType, Subject,
};
use serde::{Deserialize, Serialize};

use crate::names::{AccountName, NameError, UserName};
use crate::spec::{AccountSpec, UserSpec};

/// Longest device id, in bytes (the account name `EMDEV-<id>` stays within 64).
pub const MAX_DEVICE_ID_LEN: usize = 40;

/// Names and subjects of a fleet; defaults follow the nats-manager conventions.
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
        Ok(())
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

    /// The hub's spec: JetStream enabled, the four private wildcard exports.
    pub fn hub_spec(&self) -> Result<AccountSpec, DeviceError> {
        let mut spec = AccountSpec::with_unlimited_jetstream();
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
    fn meta_pairs_parse() {
        assert_eq!(
            parse_meta_pair("site = x=y").unwrap(),
            ("site".to_string(), " x=y".to_string())
        );
        assert!(parse_meta_pair("=v").is_err());
        assert!(parse_meta_pair("novalue").is_err());
    }
}
