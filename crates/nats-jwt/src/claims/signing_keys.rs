//! Account signing keys: plain keys (a string) or user scopes (an object with a template).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::UserPermissionLimits;
use crate::keys::AccountPublicKey;

/// A signing key of an account. On the wire: a plain `"A…"` string, or
/// `{"kind":"user_scope","key":"A…","role":"…","template":{…}}`.
// The shape is part of the public contract; scopes are few, so boxing is not worth it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// An unscoped signing key: users it signs carry their own permissions.
    Plain(AccountPublicKey),
    /// A scoped key: users it signs must be empty; the server applies the template.
    Scoped(UserScope),
}

impl SigningKey {
    /// The signing key's public key.
    pub fn key(&self) -> &AccountPublicKey {
        match self {
            SigningKey::Plain(k) => k,
            SigningKey::Scoped(s) => &s.key,
        }
    }
}

/// A user scope: the role name and the permission template the server applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserScope {
    /// The signing key.
    pub key: AccountPublicKey,
    /// Role name.
    pub role: String,
    /// Template applied to every user signed by `key`.
    pub template: UserPermissionLimits,
}

#[derive(Serialize)]
struct ScopeOut<'a> {
    kind: &'static str,
    key: &'a AccountPublicKey,
    role: &'a str,
    template: &'a UserPermissionLimits,
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SigningKey::Plain(k) => k.serialize(s),
            SigningKey::Scoped(scope) => ScopeOut {
                kind: "user_scope",
                key: &scope.key,
                role: &scope.role,
                template: &scope.template,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => AccountPublicKey::new(&s)
                .map(SigningKey::Plain)
                .map_err(D::Error::custom),
            serde_json::Value::Object(mut m) => {
                match m.get("kind").and_then(|k| k.as_str()) {
                    Some("user_scope") => {}
                    other => {
                        return Err(D::Error::custom(format!(
                            "unknown signing key scope kind {other:?} (expected \"user_scope\")"
                        )));
                    }
                }
                let key: AccountPublicKey =
                    serde_json::from_value(m.remove("key").unwrap_or_default())
                        .map_err(D::Error::custom)?;
                let role = match m.remove("role") {
                    Some(serde_json::Value::String(r)) => r,
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(_) => return Err(D::Error::custom("scope role must be a string")),
                };
                // Like Go, missing subs/data/payload in a template mean unlimited (-1).
                let mut template = match m.remove("template") {
                    Some(serde_json::Value::Object(t)) => t,
                    None | Some(serde_json::Value::Null) => serde_json::Map::new(),
                    Some(_) => return Err(D::Error::custom("scope template must be an object")),
                };
                for f in ["subs", "data", "payload"] {
                    template.entry(f).or_insert(serde_json::Value::from(-1));
                }
                let template: UserPermissionLimits =
                    serde_json::from_value(serde_json::Value::Object(template))
                        .map_err(D::Error::custom)?;
                Ok(SigningKey::Scoped(UserScope {
                    key,
                    role,
                    template,
                }))
            }
            _ => Err(D::Error::custom(
                "a signing key must be a string or a user_scope object",
            )),
        }
    }
}
