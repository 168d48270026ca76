//! The `oidc` authenticator: an OIDC ID token, presented as the NATS `auth_token`,
//! verified against the JWKS the operator gave (no discovery, no network at connect
//! time). Only RS256, ES256 and EdDSA signatures count; the issuer, the audience, the
//! expiry and the not-before time are checked at the callout's clock; one claim of the
//! token names the user.

use std::sync::Once;

use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use nats_jwt::AuthorizationRequest;
use serde_json::Value;

use super::{Authenticated, OidcAuth, Outcome};
use crate::OpsError;

/// The claim naming the user when none is given.
pub const DEFAULT_USER_CLAIM: &str = "sub";

/// The signature algorithms a token may use. HMAC ones are never accepted: the JWKS is
/// public, so a token "signed" with a public key as HMAC secret must not verify.
const ALLOWED: &str = "RS256, ES256 or EdDSA";

/// RSA keys shorter than this (bits) are not used: they can be factored.
const MIN_RSA_BITS: usize = 2048;

impl OidcAuth {
    /// An OIDC authenticator from the text of a JWKS (`{"keys": [...]}`, or one bare JWK),
    /// checked as [`super::check`] does; `user_claim` defaults to `sub`.
    pub fn from_jwks_text(
        name: &str,
        jwks_text: &str,
        issuer: &str,
        audience: &str,
        user_claim: Option<&str>,
    ) -> Result<OidcAuth, OpsError> {
        let mut jwks: Value = serde_json::from_str(jwks_text)
            .map_err(|e| OpsError::invalid(format!("the JWKS is not JSON: {e}")))?;
        // One key on its own (what some providers show for a single signing key).
        if jwks.get("kty").is_some() && jwks.get("keys").is_none() {
            jwks = serde_json::json!({ "keys": [jwks] });
        }
        let auth = OidcAuth {
            name: name.to_string(),
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            user_claim: user_claim
                .filter(|c| !c.is_empty())
                .unwrap_or(DEFAULT_USER_CLAIM)
                .to_string(),
            jwks,
        };
        check(&auth)?;
        Ok(auth)
    }
}

/// jsonwebtoken panics on first use when no crypto provider is installed; another part
/// of the process (the rooms gateway) may have installed the same one already.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

/// The keys of `jwks` a token can be verified with, each with the one algorithm it is
/// used for. Keys of other kinds (encryption keys, HMAC secrets, P-384…) are skipped, as
/// a provider's JWKS often holds some.
fn usable_keys(jwks: &Value) -> Vec<(Jwk, Algorithm)> {
    let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter_map(|jwk| key_algorithm(&jwk).map(|alg| (jwk, alg)))
        .collect()
}

/// The algorithm `jwk` verifies, when it is one Warden accepts and the key is sound.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let n = BASE64URL_NOPAD.decode(p.n.as_bytes()).ok()?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            (bits >= MIN_RSA_BITS).then_some(Algorithm::RS256)?
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    // A key that names its algorithm is used for that one only.
    let declared_ok = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => alg == Algorithm::EdDSA,
        Some(_) => false,
    };
    (declared_ok && DecodingKey::from_jwk(jwk).is_ok()).then_some(alg)
}

/// Checks an OIDC authenticator before it is stored.
pub(super) fn check(a: &OidcAuth) -> Result<(), OpsError> {
    if a.issuer.trim().is_empty() {
        return Err(OpsError::invalid("the OIDC issuer is empty"));
    }
    if a.audience.trim().is_empty() {
        return Err(OpsError::invalid("the OIDC audience is empty"));
    }
    if a.user_claim.trim().is_empty() {
        return Err(OpsError::invalid("the OIDC user claim is empty"));
    }
    let Some(keys) = a.jwks.get("keys").and_then(Value::as_array) else {
        return Err(OpsError::invalid(
            "the JWKS has no `keys` array (expected {\"keys\": [...]})",
        ));
    };
    for (i, k) in keys.iter().enumerate() {
        if k.get("d").is_some() {
            // A private key would be stored in the clear and shown back.
            return Err(OpsError::invalid(format!(
                "JWKS key {i} is a private key: give the public keys only"
            )));
        }
    }
    if usable_keys(&a.jwks).is_empty() {
        return Err(OpsError::invalid(format!(
            "the JWKS holds no key usable with {ALLOWED} (RSA of at least {MIN_RSA_BITS} bits, EC P-256 or Ed25519)"
        )));
    }
    Ok(())
}

/// Checks the request's `auth_token` with `a` at `now`.
pub(super) fn authenticate(a: &OidcAuth, request: &AuthorizationRequest, now: i64) -> Outcome {
    let token = request.connect_opts.token.trim();
    let parts: Vec<&str> = token.split('.').collect();
    // Not a JWS compact token: a credential for someone else. (An unsigned `alg: none`
    // token still has three segments, the last empty, and is refused below.)
    if parts.len() != 3 || parts[0].is_empty() || parts[1].is_empty() {
        return Outcome::NotApplicable;
    }
    match verify(a, [parts[0], parts[1], parts[2]], now) {
        Ok((login, exp)) => Outcome::Accepted(Authenticated {
            authenticator: a.name.clone(),
            login,
            expires_at: Some(exp),
        }),
        Err(reason) => Outcome::Refused(reason),
    }
}

/// A JSON object from one base64url segment of the token.
fn segment(text: &str, what: &str) -> Result<serde_json::Map<String, Value>, String> {
    let bytes = BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| format!("token {what} is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("token {what} is not a JSON object")),
    }
}

/// A value the client chose, made safe to put in a reason the server logs.
fn shown(v: &str) -> String {
    let s: String = v.chars().filter(|c| !c.is_control()).take(64).collect();
    format!("`{s}`")
}

/// A unix time as RFC 3339 (the number itself when out of range).
fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// A NumericDate claim (seconds, possibly fractional).
fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64))
}

/// Verifies the token; the login and the expiry, or why it is refused.
fn verify(a: &OidcAuth, parts: [&str; 3], now: i64) -> Result<(String, i64), String> {
    install_crypto_provider();
    let header = segment(parts[0], "header")?;
    let alg_text = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = match alg_text {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            return Err(format!(
                "token algorithm {} is not allowed (only {ALLOWED})",
                shown(other)
            ));
        }
    };
    if header.contains_key("crit") {
        return Err(
            "token header has critical extensions (`crit`), which are not supported".into(),
        );
    }
    let keys = usable_keys(&a.jwks);
    let candidates: Vec<&Jwk> = match header.get("kid") {
        Some(kid) => {
            let kid = kid.as_str().ok_or("token key id (`kid`) is not a string")?;
            let named: Vec<&(Jwk, Algorithm)> = keys
                .iter()
                .filter(|(k, _)| k.common.key_id.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return Err(format!("token key {} is not in the JWKS", shown(kid)));
            }
            let matching: Vec<&Jwk> = named
                .into_iter()
                .filter(|(_, k_alg)| *k_alg == alg)
                .map(|(k, _)| k)
                .collect();
            if matching.is_empty() {
                return Err(format!(
                    "token algorithm {alg_text} does not match JWKS key {}",
                    shown(kid)
                ));
            }
            matching
        }
        None => {
            let matching: Vec<&Jwk> = keys
                .iter()
                .filter(|(_, k_alg)| *k_alg == alg)
                .map(|(k, _)| k)
                .collect();
            if matching.is_empty() {
                return Err(format!("the JWKS has no {alg_text} key"));
            }
            matching
        }
    };
    let message = format!("{}.{}", parts[0], parts[1]);
    let verified = candidates.iter().any(|jwk| {
        DecodingKey::from_jwk(jwk).is_ok_and(|key| {
            jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &key, alg).unwrap_or(false)
        })
    });
    if !verified {
        return Err("token signature does not verify with the JWKS".into());
    }

    let claims = segment(parts[1], "claims")?;
    if claims.get("iss").and_then(Value::as_str) != Some(a.issuer.as_str()) {
        return Err(format!("token issuer is not {}", a.issuer));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => *s == a.audience,
        Some(Value::Array(list)) => list.iter().any(|v| v.as_str() == Some(&a.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("token audience is not {}", a.audience));
    }
    let exp = match claims.get("exp") {
        None => return Err("token has no expiry (`exp`)".into()),
        Some(v) => numeric_date(v).ok_or("token expiry (`exp`) is not a number")?,
    };
    if now >= exp {
        return Err(format!("token expired at {}", rfc3339(exp)));
    }
    if let Some(v) = claims.get("nbf") {
        let nbf = numeric_date(v).ok_or("token `nbf` is not a number")?;
        if now < nbf {
            return Err(format!("token not valid before {}", rfc3339(nbf)));
        }
    }
    let login = match claims.get(&a.user_claim) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(format!("token has no claim `{}`", a.user_claim));
        }
        Some(_) => return Err(format!("token claim `{}` is not a string", a.user_claim)),
    };
    // An address the provider says it did not verify names nobody in particular.
    if a.user_claim == "email" && claims.get("email_verified") == Some(&Value::Bool(false)) {
        return Err("token email is not verified (`email_verified` is false)".into());
    }
    Ok((login, exp))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use nats_jwt::AuthorizationRequest;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_750_000_000;
    const ISS: &str = "https://id.example.com";
    const AUD: &str = "nats";

    fn b64(b: &[u8]) -> String {
        BASE64URL_NOPAD.encode(b)
    }

    /// A signing key with its public JWK.
    struct TestKey {
        alg: Algorithm,
        encoding: EncodingKey,
        jwk: Value,
    }

    fn rsa_key(kid: &str) -> TestKey {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
        let der = key.to_pkcs1_der().expect("PKCS#1");
        TestKey {
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())}),
        }
    }

    fn ec_key(kid: &str) -> TestKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256");
        let point = kp.public_key_raw(); // 0x04 || x || y
        assert_eq!(point.len(), 65);
        TestKey {
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(&kp.serialize_der()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
                        "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        }
    }

    fn ed_key(kid: &str) -> TestKey {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519");
        TestKey {
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(&kp.serialize_der()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
                        "x": b64(kp.public_key_raw())}),
        }
    }

    fn auth(keys: &[&TestKey]) -> OidcAuth {
        let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
        OidcAuth::from_jwks_text("corp-sso", &jwks.to_string(), ISS, AUD, Some("email"))
            .expect("valid authenticator")
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": [AUD, "other"], "sub": "00u1", "email": "ada@example.com",
               "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 300})
    }

    fn sign(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
        install_crypto_provider();
        let mut h = Header::new(key.alg);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, claims, &key.encoding).expect("sign")
    }

    fn request(token: &str) -> AuthorizationRequest {
        let mut r = AuthorizationRequest::default();
        r.connect_opts.token = token.to_string();
        r
    }

    fn run(a: &OidcAuth, token: &str) -> Outcome {
        authenticate(a, &request(token), NOW)
    }

    fn refused(o: Outcome) -> String {
        match o {
            Outcome::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn each_algorithm_signs_a_token_that_is_accepted() {
        let (r, e, d) = (rsa_key("r1"), ec_key("e1"), ed_key("d1"));
        let a = auth(&[&r, &e, &d]);
        for (key, kid) in [(&r, "r1"), (&e, "e1"), (&d, "d1")] {
            for kid in [Some(kid), None] {
                let token = sign(key, kid, &claims());
                assert_eq!(
                    run(&a, &token),
                    Outcome::Accepted(Authenticated {
                        authenticator: "corp-sso".into(),
                        login: "ada@example.com".into(),
                        expires_at: Some(NOW + 300),
                    }),
                    "{:?} kid {kid:?}",
                    key.alg
                );
            }
        }
        // A single audience string is fine too; the default claim is `sub`.
        let jwks = json!({"keys": [e.jwk.clone()]}).to_string();
        let by_sub = OidcAuth::from_jwks_text("s", &jwks, ISS, AUD, None).unwrap();
        assert_eq!(by_sub.user_claim, "sub");
        let mut c = claims();
        c["aud"] = json!(AUD);
        match run(&by_sub, &sign(&e, Some("e1"), &c)) {
            Outcome::Accepted(x) => assert_eq!(x.login, "00u1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failed_checks_are_refused_with_the_check_named() {
        let e = ec_key("e1");
        let a = auth(&[&e]);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            refused(run(&a, &sign(&e, Some("e1"), &c)))
        };
        assert_eq!(
            with(&|c| c["aud"] = json!("billing")),
            "token audience is not nats"
        );
        assert_eq!(
            with(&|c| c["aud"] = json!(["a", "b"])),
            "token audience is not nats"
        );
        assert_eq!(
            with(&|c| c["iss"] = json!("https://evil.example")),
            "token issuer is not https://id.example.com"
        );
        assert_eq!(
            with(&|c| c["exp"] = json!(NOW)),
            format!("token expired at {}", rfc3339(NOW))
        );
        assert!(with(&|c| c["exp"] = json!(NOW - 1)).starts_with("token expired at 2025-"));
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "token has no expiry (`exp`)"
        );
        assert_eq!(
            with(&|c| c["nbf"] = json!(NOW + 60)),
            format!("token not valid before {}", rfc3339(NOW + 60))
        );
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove("email");
            }),
            "token has no claim `email`"
        );
        assert_eq!(
            with(&|c| c["email_verified"] = json!(false)),
            "token email is not verified (`email_verified` is false)"
        );
        // The time is the caller's, not the wall clock: the same token is fine earlier.
        let token = sign(&e, Some("e1"), &claims());
        assert!(matches!(
            authenticate(&a, &request(&token), NOW + 299),
            Outcome::Accepted(_)
        ));
        assert!(matches!(
            authenticate(&a, &request(&token), NOW + 300),
            Outcome::Refused(_)
        ));
        assert!(matches!(
            authenticate(&a, &request(&token), NOW - 11),
            Outcome::Refused(_)
        ));
    }

    #[test]
    fn tokens_from_other_keys_or_forged_algorithms_are_refused() {
        let (r, e) = (rsa_key("r1"), ec_key("e1"));
        let a = auth(&[&r, &e]);
        let stranger = ec_key("e1");
        // Same kid, other key; no kid, other key; a kid the JWKS does not have.
        let bad_sig = "token signature does not verify with the JWKS";
        assert_eq!(
            refused(run(&a, &sign(&stranger, Some("e1"), &claims()))),
            bad_sig
        );
        assert_eq!(refused(run(&a, &sign(&stranger, None, &claims()))), bad_sig);
        assert_eq!(
            refused(run(&a, &sign(&stranger, Some("e9"), &claims()))),
            "token key `e9` is not in the JWKS"
        );
        // An algorithm that does not match the named key.
        assert_eq!(
            refused(run(&a, &sign(&e, Some("r1"), &claims()))),
            "token algorithm ES256 does not match JWKS key `r1`"
        );
        // No EdDSA key at all.
        assert_eq!(
            refused(run(&a, &sign(&ed_key("d"), None, &claims()))),
            "the JWKS has no EdDSA key"
        );

        let payload = b64(claims().to_string().as_bytes());
        // alg none: unsigned.
        let none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(
            refused(run(&a, &none)),
            "token algorithm `none` is not allowed (only RS256, ES256 or EdDSA)"
        );
        // HS256 "signed" with the RSA public key (its JWK's `n`, and the JWK text) as the secret.
        for secret in [r.jwk["n"].as_str().unwrap().to_string(), r.jwk.to_string()] {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("r1".into());
            let forged =
                jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(secret.as_bytes()))
                    .unwrap();
            assert!(
                refused(run(&a, &forged)).starts_with("token algorithm `HS256` is not allowed"),
            );
        }
        // A valid signature with the header's alg swapped is not valid any more.
        let good = sign(&r, Some("r1"), &claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let swapped = b64(br#"{"alg":"ES256","kid":"e1"}"#);
        parts[0] = &swapped;
        assert_eq!(refused(run(&a, &parts.join("."))), bad_sig);
        // Critical extensions are not understood.
        let crit = format!("{}.{payload}.x", b64(br#"{"alg":"ES256","crit":["exp"]}"#));
        assert!(refused(run(&a, &crit)).contains("critical"));
    }

    #[test]
    fn requests_without_a_jwt_are_not_for_oidc() {
        let a = auth(&[&ec_key("e1")]);
        assert_eq!(run(&a, ""), Outcome::NotApplicable);
        assert_eq!(run(&a, "s3cret-token"), Outcome::NotApplicable);
        assert_eq!(run(&a, "a.b"), Outcome::NotApplicable);
        assert_eq!(run(&a, "a.b.c.d"), Outcome::NotApplicable);
        // Three segments but garbage: refused, and the reason does not echo the token.
        let r = refused(run(&a, "not-base64!.x.y"));
        assert_eq!(r, "token header is not base64url");
    }

    #[test]
    fn check_refuses_unusable_settings() {
        let e = ec_key("e1");
        let jwks = json!({"keys": [e.jwk.clone()]}).to_string();
        let err = |r: Result<OidcAuth, OpsError>| match r {
            Err(OpsError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert!(err(OidcAuth::from_jwks_text("o", &jwks, "", AUD, None)).contains("issuer"));
        assert!(err(OidcAuth::from_jwks_text("o", &jwks, ISS, " ", None)).contains("audience"));
        assert!(err(OidcAuth::from_jwks_text("o", "{", ISS, AUD, None)).contains("not JSON"));
        assert!(err(OidcAuth::from_jwks_text("o", "[]", ISS, AUD, None)).contains("`keys`"));
        let hmac = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]});
        assert!(
            err(OidcAuth::from_jwks_text(
                "o",
                &hmac.to_string(),
                ISS,
                AUD,
                None
            ))
            .contains("no key usable")
        );
        let small_rsa = json!({"keys": [{"kty": "RSA", "n": b64(&[0xc5; 128]), "e": "AQAB"}]});
        assert!(
            err(OidcAuth::from_jwks_text(
                "o",
                &small_rsa.to_string(),
                ISS,
                AUD,
                None
            ))
            .contains("no key usable")
        );
        let mut private = e.jwk.clone();
        private["d"] = json!("AAAA");
        let private = json!({"keys": [private]}).to_string();
        assert!(err(OidcAuth::from_jwks_text("o", &private, ISS, AUD, None)).contains("private"));
        // A key declared for another algorithm is not usable; a bare JWK is taken as a set.
        let mut p384 = e.jwk.clone();
        p384["alg"] = json!("ES384");
        assert!(
            err(OidcAuth::from_jwks_text(
                "o",
                &p384.to_string(),
                ISS,
                AUD,
                None
            ))
            .contains("no key usable")
        );
        let bare = OidcAuth::from_jwks_text("o", &e.jwk.to_string(), ISS, AUD, None).unwrap();
        assert_eq!(bare.jwks["keys"][0], e.jwk);
        // Unusable keys beside a usable one are fine (a provider's JWKS often has some).
        let mixed = json!({"keys": [{"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"},
                                    {"kty": "weird"}, e.jwk.clone()]});
        assert!(OidcAuth::from_jwks_text("o", &mixed.to_string(), ISS, AUD, None).is_ok());
    }
}
