//! Permission and user-limit types shared by users, scoped signing keys and accounts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ser;
use crate::subject::Subject;
use crate::validation::{IssueKind, ValidationIssue};

/// Allow and deny lists for one direction (publish or subscribe).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// Subjects allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Subject>,
    /// Subjects denied (take precedence over allow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<Subject>,
}

impl Permission {
    /// True when both lists are empty.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// Permission to publish to reply subjects: `{"max":..,"ttl":..}` (ttl in nanoseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsePermission {
    /// Maximum number of responses (0 = server default 1).
    #[serde(default)]
    pub max: i64,
    /// How long the permission lasts, nanoseconds (0 = server default 2 minutes).
    #[serde(default, rename = "ttl")]
    pub ttl_ns: i64,
}

/// Publish, subscribe and response permissions. `pub` and `sub` are always written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Publish permissions.
    #[serde(default, rename = "pub")]
    pub publish: Permission,
    /// Subscribe permissions (entries may use the queue form).
    #[serde(default, rename = "sub")]
    pub subscribe: Permission,
    /// Response permissions.
    #[serde(default, rename = "resp", skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponsePermission>,
}

impl Permissions {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.response.is_none()
    }

    pub(crate) fn validate(&self, issues: &mut Vec<ValidationIssue>) {
        for s in self.publish.allow.iter().chain(&self.publish.deny) {
            if s.queue().is_some() {
                issues.push(ValidationIssue::error(
                    IssueKind::QueueInPublishPermission {
                        subject: s.to_string(),
                    },
                ));
            }
        }
    }
}

/// A daily time window `"HH:MM:SS"` to `"HH:MM:SS"` (start after end wraps past midnight).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    /// Start time of day.
    #[serde(default)]
    pub start: String,
    /// End time of day.
    #[serde(default)]
    pub end: String,
}

fn valid_clock(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 3 {
        return false;
    }
    let limits = [23u32, 59, 59];
    parts.iter().zip(limits).all(|(p, max)| {
        p.len() == 2
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| v <= max)
    })
}

impl TimeRange {
    /// Whether both ends are valid `HH:MM:SS` times.
    pub fn is_valid(&self) -> bool {
        valid_clock(&self.start) && valid_clock(&self.end)
    }
}

/// The kinds of client connection a user may be limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectionType {
    /// `STANDARD`: plain NATS client.
    Standard,
    /// `WEBSOCKET`.
    Websocket,
    /// `LEAFNODE`.
    Leafnode,
    /// `LEAFNODE_WS`.
    LeafnodeWs,
    /// `MQTT`.
    Mqtt,
    /// `MQTT_WS`.
    MqttWs,
}

impl ConnectionType {
    /// The wire name, e.g. `LEAFNODE_WS`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::Standard => "STANDARD",
            ConnectionType::Websocket => "WEBSOCKET",
            ConnectionType::Leafnode => "LEAFNODE",
            ConnectionType::LeafnodeWs => "LEAFNODE_WS",
            ConnectionType::Mqtt => "MQTT",
            ConnectionType::MqttWs => "MQTT_WS",
        }
    }
}

/// Error for an unknown connection type name.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
#[error(
    "unknown connection type {0:?} (expected STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS)"
)]
pub struct UnknownConnectionType(pub String);

impl FromStr for ConnectionType {
    type Err = UnknownConnectionType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "STANDARD" => ConnectionType::Standard,
            "WEBSOCKET" => ConnectionType::Websocket,
            "LEAFNODE" => ConnectionType::Leafnode,
            "LEAFNODE_WS" => ConnectionType::LeafnodeWs,
            "MQTT" => ConnectionType::Mqtt,
            "MQTT_WS" => ConnectionType::MqttWs,
            _ => return Err(UnknownConnectionType(s.to_string())),
        })
    }
}

impl fmt::Display for ConnectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ConnectionType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConnectionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Permissions and limits of a user (also the template of a scoped signing key).
///
/// `Default` is the *empty* value required for users signed by a scoped key;
/// [`UserPermissionLimits::unlimited`] is what a new user gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPermissionLimits {
    /// `pub`, `sub`, `resp`.
    #[serde(flatten)]
    pub permissions: Permissions,
    /// Allowed source CIDRs (empty = any).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_src"
    )]
    pub src: Vec<String>,
    /// Allowed daily time windows (empty = any time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    /// IANA time zone for `times`.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub times_location: Option<String>,
    /// Max subscriptions (-1 unlimited, 0 = zero).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub subs: i64,
    /// Max data (-1 unlimited).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub data: i64,
    /// Max payload (-1 unlimited, 0 = zero).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub payload: i64,
    /// Skip the nonce signature check at connect.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub bearer_token: bool,
    /// Allowed connection types (empty = all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<ConnectionType>,
}

impl UserPermissionLimits {
    /// No permissions and unlimited (-1) subs, data and payload: what `NewUserClaims` writes.
    pub fn unlimited() -> Self {
        UserPermissionLimits {
            subs: -1,
            data: -1,
            payload: -1,
            ..Default::default()
        }
    }

    /// True when equal to the empty value (required for scoped users).
    pub fn is_empty(&self) -> bool {
        *self == UserPermissionLimits::default()
    }

    pub(crate) fn validate(&self, issues: &mut Vec<ValidationIssue>) {
        self.permissions.validate(issues);
        for cidr in &self.src {
            if !valid_cidr(cidr) {
                issues.push(ValidationIssue::error(IssueKind::InvalidCidr {
                    value: cidr.clone(),
                }));
            }
        }
        for t in &self.times {
            if !t.is_valid() {
                issues.push(ValidationIssue::error(IssueKind::InvalidTimeRange {
                    start: t.start.clone(),
                    end: t.end.clone(),
                }));
            }
        }
    }
}

/// Whether `s` is `ip/prefix` with a prefix length that fits the address family.
pub(crate) fn valid_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.trim().split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().is_ok_and(|b| b <= max)
}

/// `src` may be an array or (older writers) one comma-separated string.
fn de_src<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Src {
        List(Vec<String>),
        Joined(String),
    }
    Ok(match Option::<Src>::deserialize(d)? {
        None => Vec::new(),
        Some(Src::List(v)) => v,
        Some(Src::Joined(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// One destination of a subject mapping. `weight` is 1..=100 (absent means 100).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedMapping {
    /// Destination subject.
    pub subject: Subject,
    /// Percentage of messages sent here.
    #[serde(default, skip_serializing_if = "weight_absent")]
    pub weight: Option<u8>,
    /// Only apply in this cluster.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub cluster: Option<String>,
}

fn weight_absent(w: &Option<u8>) -> bool {
    matches!(w, None | Some(0))
}

impl WeightedMapping {
    /// The effective weight (absent = 100).
    pub fn effective_weight(&self) -> u32 {
        match self.weight {
            None | Some(0) => 100,
            Some(w) => u32::from(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        for ok in ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "0.0.0.0/0"] {
            assert!(valid_cidr(ok), "{ok}");
        }
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "::1/129",
            "x/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
        ] {
            assert!(!valid_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn connection_types_case_insensitive() {
        assert_eq!("leafnode_ws".parse(), Ok(ConnectionType::LeafnodeWs));
        assert!("IN_PROCESS".parse::<ConnectionType>().is_err());
        let json =
            serde_json::to_string(&vec![ConnectionType::Mqtt, ConnectionType::Standard]).unwrap();
        assert_eq!(json, r#"["MQTT","STANDARD"]"#);
    }

    #[test]
    fn src_accepts_joined_string() {
        let v: UserPermissionLimits =
            serde_json::from_str(r#"{"src":"10.0.0.0/8, 127.0.0.1/32"}"#).unwrap();
        assert_eq!(v.src, vec!["10.0.0.0/8", "127.0.0.1/32"]);
    }

    #[test]
    fn time_ranges() {
        let ok = TimeRange {
            start: "00:00:00".into(),
            end: "23:59:59".into(),
        };
        assert!(ok.is_valid());
        let bad = TimeRange {
            start: "24:00:00".into(),
            end: "".into(),
        };
        assert!(!bad.is_valid());
    }
}
