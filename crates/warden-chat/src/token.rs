//! HS256 tokens from the upstream user service: the signature (any of the configured
//! secrets, so a rotation can keep the old and the new one active), `exp`, `aud` and `iss`
//! are checked on every path, and the claims the rooms need are read from them:
//! `userUUID`, `entityUUID` and `levelOnEntity` (a number, or a string of digits as the
//! tokens of nano-messaging carry it).

use std::sync::Once;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize};

use crate::permissions::Caller;

/// A token that was refused, with the reason (never the token or a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or not HS256.
    #[error("token is not an HS256 JWT: {0}")]
    Malformed(String),
    /// No configured secret verifies the signature.
    #[error("token signature does not verify with any configured secret")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    /// `aud` is missing or not one of the accepted audiences.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// `iss` is missing or not one of the accepted issuers.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// A claim is missing or has the wrong type.
    #[error("token claim {0}")]
    BadClaim(String),
}

/// A validator configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chat token configuration: {0}")]
pub struct ConfigError(pub String);

/// The claims of a chat token, as the upstream service signs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatClaims {
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// The user.
    #[serde(rename = "userUUID")]
    pub user_uuid: String,
    /// The user's entity (organisation).
    #[serde(rename = "entityUUID")]
    pub entity_uuid: String,
    /// The user's level in the entity.
    #[serde(rename = "levelOnEntity", deserialize_with = "level")]
    pub level_on_entity: i64,
}

/// `levelOnEntity` as a number or as a string of digits (nano-messaging clients send `"100"`).
fn level<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Level {
        Number(i64),
        Text(String),
    }
    match Level::deserialize(d)? {
        Level::Number(n) => Ok(n),
        Level::Text(s) => s.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!("levelOnEntity {s:?} is not an integer"))
        }),
    }
}

/// A token that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidToken {
    /// Who it speaks for.
    pub caller: Caller,
    /// Its expiry, unix seconds: open sockets are closed to it then.
    pub exp: i64,
}

/// Checks tokens against the configured secrets, audiences and issuers.
#[derive(Clone)]
pub struct TokenValidator {
    keys: Vec<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator")
            .field("secrets", &self.keys.len())
            .field("audiences", &self.validation.aud)
            .field("issuers", &self.validation.iss)
            .finish()
    }
}

/// Installs jsonwebtoken's RustCrypto provider once per process (jsonwebtoken panics on the
/// first use when no provider, or more than one, is installed).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed it already: that is fine.
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

impl TokenValidator {
    /// A validator accepting tokens signed with any of `secrets` whose `aud` is one of
    /// `audiences` and `iss` one of `issuers`, with `leeway_secs` of clock skew on `exp`.
    pub fn new(
        secrets: &[Vec<u8>],
        audiences: &[String],
        issuers: &[String],
        leeway_secs: u64,
    ) -> Result<TokenValidator, ConfigError> {
        install_crypto_provider();
        if secrets.is_empty() {
            return Err(ConfigError("no HS256 secret configured".into()));
        }
        if let Some(short) = secrets.iter().find(|s| s.len() < 16) {
            return Err(ConfigError(format!(
                "an HS256 secret of {} bytes is too short (at least 16)",
                short.len()
            )));
        }
        if audiences.iter().all(|a| a.trim().is_empty()) {
            return Err(ConfigError("no accepted audience configured".into()));
        }
        if issuers.iter().all(|i| i.trim().is_empty()) {
            return Err(ConfigError("no accepted issuer configured".into()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(audiences);
        validation.set_issuer(issuers);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        validation.validate_exp = true;
        // A token that says it is not valid yet is refused too (same leeway as `exp`).
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        Ok(TokenValidator {
            keys: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s))
                .collect(),
            validation,
        })
    }

    /// Validates `token`; the secrets are tried in order, so a token signed with a retired
    /// secret still passes while that secret is configured.
    pub fn validate(&self, token: &str) -> Result<ValidToken, TokenError> {
        let mut last = TokenError::BadSignature;
        for key in &self.keys {
            match jsonwebtoken::decode::<ChatClaims>(token.trim(), key, &self.validation) {
                Ok(data) => {
                    let c = data.claims;
                    if c.user_uuid.trim().is_empty() {
                        return Err(TokenError::BadClaim("userUUID is empty".into()));
                    }
                    if c.entity_uuid.trim().is_empty() {
                        return Err(TokenError::BadClaim("entityUUID is empty".into()));
                    }
                    return Ok(ValidToken {
                        caller: Caller {
                            user_uuid: c.user_uuid,
                            entity_uuid: c.entity_uuid,
                            level_on_entity: c.level_on_entity,
                        },
                        exp: c.exp,
                    });
                }
                Err(e) => {
                    last = classify(e.kind());
                    if last != TokenError::BadSignature {
                        // The signature verified (or the token is unreadable): another
                        // secret cannot change the verdict.
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

fn classify(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) => match c.as_str() {
            "aud" => TokenError::WrongAudience,
            "iss" => TokenError::WrongIssuer,
            other => TokenError::BadClaim(format!("{other} is missing")),
        },
        ErrorKind::InvalidAlgorithm => TokenError::Malformed("algorithm is not HS256".into()),
        ErrorKind::Json(e) => TokenError::BadClaim(e.to_string()),
        other => TokenError::Malformed(format!("{other:?}")),
    }
}

/// Signs `claims` with `secret` (HS256): what the upstream service does; used by tests,
/// benchmarks and `warden chat token` for development.
pub fn sign(claims: &ChatClaims, secret: &[u8]) -> Result<String, TokenError> {
    install_crypto_provider();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| TokenError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-current";
    const OLD: &[u8] = b"0123456789abcdef-retired";

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn claims() -> ChatClaims {
        ChatClaims {
            aud: "chat.example".into(),
            iss: "api.example".into(),
            exp: now() + 600,
            user_uuid: "u-1".into(),
            entity_uuid: "e-1".into(),
            level_on_entity: 100,
        }
    }

    fn validator(secrets: &[&[u8]]) -> TokenValidator {
        TokenValidator::new(
            &secrets.iter().map(|s| s.to_vec()).collect::<Vec<_>>(),
            &["chat.example".into(), "chat2.example".into()],
            &["api.example".into()],
            0,
        )
        .unwrap()
    }

    #[test]
    fn a_good_token_gives_its_caller() {
        let t = sign(&claims(), SECRET).unwrap();
        let v = validator(&[SECRET]).validate(&t).unwrap();
        assert_eq!(v.caller.user_uuid, "u-1");
        assert_eq!(v.caller.entity_uuid, "e-1");
        assert_eq!(v.caller.level_on_entity, 100);
        let mut second_audience = claims();
        second_audience.aud = "chat2.example".into();
        let t = sign(&second_audience, SECRET).unwrap();
        assert!(validator(&[SECRET]).validate(&t).is_ok());
    }

    #[test]
    fn level_as_a_string_like_the_poc() {
        let body = serde_json::json!({
            "aud": "chat.example", "iss": "api.example", "exp": now() + 60,
            "sub": "ignored", "userUUID": "u-9", "entityUUID": "e-9", "levelOnEntity": "100"
        });
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let v = validator(&[SECRET]).validate(&t).unwrap();
        assert_eq!(v.caller.level_on_entity, 100);
    }

    #[test]
    fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
        let body = |nbf: i64| {
            let c = claims();
            serde_json::json!({
                "aud": c.aud, "iss": c.iss, "exp": now() + 600, "nbf": nbf,
                "userUUID": c.user_uuid, "entityUUID": c.entity_uuid, "levelOnEntity": 100,
            })
        };
        let signed = |nbf: i64| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &body(nbf),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        let strict = validator(&[SECRET]);
        assert_eq!(
            strict.validate(&signed(now() + 300)),
            Err(TokenError::NotYetValid)
        );
        assert!(strict.validate(&signed(now() - 5)).is_ok());
        // Within the configured leeway a slightly early `nbf` passes.
        let lenient = TokenValidator::new(
            &[SECRET.to_vec()],
            &["chat.example".to_string()],
            &["api.example".to_string()],
            60,
        )
        .unwrap();
        assert!(lenient.validate(&signed(now() + 30)).is_ok());
        assert_eq!(
            lenient.validate(&signed(now() + 300)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn expired_wrong_audience_wrong_issuer() {
        let mut c = claims();
        c.exp = now() - 5;
        let t = sign(&c, SECRET).unwrap();
        assert_eq!(validator(&[SECRET]).validate(&t), Err(TokenError::Expired));

        let mut c = claims();
        c.aud = "elsewhere".into();
        let t = sign(&c, SECRET).unwrap();
        assert_eq!(
            validator(&[SECRET]).validate(&t),
            Err(TokenError::WrongAudience)
        );

        let mut c = claims();
        c.iss = "mallory".into();
        let t = sign(&c, SECRET).unwrap();
        assert_eq!(
            validator(&[SECRET]).validate(&t),
            Err(TokenError::WrongIssuer)
        );
    }

    #[test]
    fn missing_claims_are_refused() {
        for drop in [
            "exp",
            "aud",
            "iss",
            "userUUID",
            "entityUUID",
            "levelOnEntity",
        ] {
            let mut body = serde_json::to_value(claims()).unwrap();
            body.as_object_mut().unwrap().remove(drop);
            let t = jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &body,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap();
            assert!(validator(&[SECRET]).validate(&t).is_err(), "without {drop}");
        }
    }

    #[test]
    fn wrong_secret_and_rotation() {
        let t_old = sign(&claims(), OLD).unwrap();
        assert_eq!(
            validator(&[SECRET]).validate(&t_old),
            Err(TokenError::BadSignature),
            "a secret no longer configured"
        );
        // During a rotation both are configured: tokens of either pass.
        let both = validator(&[SECRET, OLD]);
        assert!(both.validate(&t_old).is_ok());
        assert!(both.validate(&sign(&claims(), SECRET).unwrap()).is_ok());
        // An expired token signed with the second secret reports the expiry, not the
        // first secret's mismatch.
        let mut c = claims();
        c.exp = now() - 5;
        assert_eq!(
            both.validate(&sign(&c, OLD).unwrap()),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn not_hs256_or_not_a_jwt() {
        assert!(matches!(
            validator(&[SECRET]).validate("not.a.jwt"),
            Err(TokenError::Malformed(_) | TokenError::BadClaim(_))
        ));
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &claims(),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(
            validator(&[SECRET]).validate(&t).is_err(),
            "HS384 is refused"
        );
    }

    #[test]
    fn configuration_is_checked() {
        let aud = vec!["a".to_string()];
        let iss = vec!["i".to_string()];
        assert!(TokenValidator::new(&[], &aud, &iss, 0).is_err());
        assert!(TokenValidator::new(&[b"short".to_vec()], &aud, &iss, 0).is_err());
        assert!(TokenValidator::new(&[SECRET.to_vec()], &[], &iss, 0).is_err());
        assert!(TokenValidator::new(&[SECRET.to_vec()], &aud, &[], 0).is_err());
        let debug = format!("{:?}", validator(&[SECRET]));
        assert!(
            !debug.contains("0123456789abcdef"),
            "no secret in Debug: {debug}"
        );
    }
}
