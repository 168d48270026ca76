//! Account limits (Go `OperatorLimits`): NATS, account and JetStream limits, flattened on the wire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ser;
use crate::validation::{IssueKind, ValidationIssue};

/// Per-connection NATS limits. `Default` is unlimited (-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatsLimits {
    /// Max subscriptions (-1 unlimited, 0 = zero).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub subs: i64,
    /// Max data (-1 unlimited; not enforced by 2.9.10).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub data: i64,
    /// Max payload (-1 unlimited, 0 = zero).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub payload: i64,
}

impl Default for NatsLimits {
    fn default() -> Self {
        NatsLimits {
            subs: -1,
            data: -1,
            payload: -1,
        }
    }
}

/// Account-wide limits. `Default` is unlimited (-1, wildcards allowed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    /// Max imports (-1 unlimited).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub imports: i64,
    /// Max exports (-1 unlimited).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub exports: i64,
    /// Whether exports may use wildcards.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub wildcards: bool,
    /// Refuse bearer-token users.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub disallow_bearer: bool,
    /// Max client connections (-1 unlimited, 0 = zero).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub conn: i64,
    /// Max leafnode connections (-1 unlimited, 0 = zero).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub leaf: i64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            imports: -1,
            exports: -1,
            wildcards: true,
            disallow_bearer: false,
            conn: -1,
            leaf: -1,
        }
    }
}

/// JetStream limits. `Default` is [`JetStreamLimits::disabled`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JetStreamLimits {
    /// Memory storage bytes (-1 unlimited, 0 disables memory storage).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub mem_storage: i64,
    /// Disk storage bytes (-1 unlimited, 0 disables file storage).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub disk_storage: i64,
    /// Max streams (-1 or 0 unlimited).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub streams: i64,
    /// Max consumers (-1 or 0 unlimited).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub consumer: i64,
    /// Max ack pending (-1 or 0 unlimited).
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub max_ack_pending: i64,
    /// Max bytes of one memory stream.
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub mem_max_stream_bytes: i64,
    /// Max bytes of one file stream.
    #[serde(default, skip_serializing_if = "ser::is_zero")]
    pub disk_max_stream_bytes: i64,
    /// Streams must declare max_bytes.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub max_bytes_required: bool,
}

impl JetStreamLimits {
    /// All zero: JetStream disabled.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Everything -1: unlimited JetStream.
    pub fn unlimited() -> Self {
        JetStreamLimits {
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

    /// Whether JetStream is enabled by these limits (memory or disk storage non-zero).
    pub fn is_enabled(&self) -> bool {
        self.mem_storage != 0 || self.disk_storage != 0
    }

    /// Whether every field is zero/false.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// All limits of an account. `Default` is what `NewAccountClaims` writes: unlimited NATS and
/// account limits, JetStream disabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorLimits {
    /// `subs`, `data`, `payload`.
    #[serde(flatten)]
    pub nats: NatsLimits,
    /// `imports`, `exports`, `wildcards`, `disallow_bearer`, `conn`, `leaf`.
    #[serde(flatten)]
    pub account: AccountLimits,
    /// Flat (tier `""`) JetStream limits.
    #[serde(flatten)]
    pub jetstream: JetStreamLimits,
    /// Per-tier JetStream limits, keyed `R1`, `R3`, ... (exclusive with the flat ones).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiered_limits: BTreeMap<String, JetStreamLimits>,
}

impl OperatorLimits {
    /// The all-zero value that an absent `limits` object decodes to (zero connections!).
    pub fn zero() -> Self {
        OperatorLimits {
            nats: NatsLimits {
                subs: 0,
                data: 0,
                payload: 0,
            },
            account: AccountLimits {
                imports: 0,
                exports: 0,
                wildcards: false,
                disallow_bearer: false,
                conn: 0,
                leaf: 0,
            },
            jetstream: JetStreamLimits::default(),
            tiered_limits: BTreeMap::new(),
        }
    }

    /// Whether JetStream is enabled (flat or in any tier).
    pub fn jetstream_enabled(&self) -> bool {
        self.jetstream.is_enabled() || self.tiered_limits.values().any(JetStreamLimits::is_enabled)
    }

    /// Whether every limit is unlimited (-1 / wildcards allowed) and nothing else is set.
    pub fn is_unlimited(&self) -> bool {
        self.nats == NatsLimits::default()
            && self.account.imports == -1
            && self.account.exports == -1
            && self.account.wildcards
            && self.account.conn == -1
            && self.account.leaf == -1
            && !self.account.disallow_bearer
    }

    pub(crate) fn validate(&self, issues: &mut Vec<ValidationIssue>) {
        if !self.tiered_limits.is_empty() && !self.jetstream.is_zero() {
            issues.push(ValidationIssue::error(IssueKind::TieredAndFlatJetStream));
        }
        if self.tiered_limits.keys().any(|k| k.trim().is_empty()) {
            issues.push(ValidationIssue::error(IssueKind::BlankTier));
        }
    }
}
