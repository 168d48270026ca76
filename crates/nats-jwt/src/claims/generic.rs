//! Generic claims: any `nats` body that is not one of the four known types (e.g. a resolver
//! delete request `{"accounts":[…]}`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Claims, GenericClaims};
use crate::jwt::ClaimBody;
use crate::keys::KeyKind;

/// The whole `nats` object as a JSON map (`version` is managed by the encoder).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generic {
    /// Every field of `nats` except `version`.
    pub body: serde_json::Map<String, serde_json::Value>,
}

impl Serialize for Generic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.body.iter().filter(|(k, _)| k.as_str() != "version") {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Generic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut body = serde_json::Map::deserialize(d)?;
        body.remove("version");
        Ok(Generic { body })
    }
}

impl GenericClaims {
    /// New generic claims with the given subject and an empty body.
    pub fn new(subject: &str) -> Self {
        Claims::with_body(subject, "", Generic::default())
    }
}

impl ClaimBody for Generic {
    const TYPE: Option<&'static str> = None;

    fn allowed_issuers() -> &'static [KeyKind] {
        &[
            KeyKind::Operator,
            KeyKind::Account,
            KeyKind::User,
            KeyKind::Server,
            KeyKind::Cluster,
        ]
    }

    fn name_expected() -> bool {
        false
    }
}
