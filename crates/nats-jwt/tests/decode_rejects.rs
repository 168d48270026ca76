//! Tampered, mis-issued, v1 and padded tokens are refused with typed errors.

use nats_jwt::*;

const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;

fn user_token() -> (KeyPair, String) {
    let acc = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&user.user_public_key().unwrap(), "u");
    let t = c.encode_at(&acc, 1700000000).unwrap();
    (acc, t)
}

fn sign_raw(kp: &KeyPair, header: &str, payload: &str) -> String {
    let mut t = format!(
        "{}.{}",
        B64.encode(header.as_bytes()),
        B64.encode(payload.as_bytes())
    );
    let sig = kp.sign(t.as_bytes());
    t.push('.');
    t.push_str(&B64.encode(&sig));
    t
}

#[test]
fn flipped_payload_byte_is_bad_signature() {
    let (_, t) = user_token();
    let parts: Vec<&str> = t.split('.').collect();
    let mut payload = B64.decode(parts[1].as_bytes()).unwrap();
    let pos = payload.windows(4).position(|w| w == b"\"u\",").unwrap() + 1;
    payload[pos] = b'v';
    let forged = format!("{}.{}.{}", parts[0], B64.encode(&payload), parts[2]);
    assert!(matches!(
        decode::<User>(&forged),
        Err(JwtError::BadSignature)
    ));
}

#[test]
fn flipped_signature_is_bad_signature() {
    let (_, t) = user_token();
    let parts: Vec<&str> = t.split('.').collect();
    let mut sig = B64.decode(parts[2].as_bytes()).unwrap();
    sig[10] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], B64.encode(&sig));
    assert!(matches!(
        decode::<User>(&forged),
        Err(JwtError::BadSignature)
    ));
    assert!(matches!(decode_any(&forged), Err(JwtError::BadSignature)));
    // The unverified decode leaves the signature to whoever verifies it later, and only that.
    let claims = decode_unverified::<User>(&forged).expect("everything but the signature holds");
    assert_eq!(claims.name, "u");
}

/// What `decode_unverified` still refuses: everything `decode` does but the signature.
#[test]
fn unverified_decode_checks_the_rest() {
    let (_, t) = user_token();
    assert!(matches!(
        decode_unverified::<Account>(&t),
        Err(JwtError::WrongType { .. })
    ));
    assert!(matches!(
        decode_unverified::<User>("a.b"),
        Err(JwtError::Malformed(_))
    ));
    let op = KeyPair::generate(KeyKind::Operator);
    let user = KeyPair::generate(KeyKind::User);
    let payload = format!(
        r#"{{"sub":"{}","iss":"{}","nats":{{"type":"user","version":2}}}}"#,
        user.public_key(),
        op.public_key()
    );
    let mis_issued = sign_raw(&op, r#"{"typ":"JWT","alg":"ed25519-nkey"}"#, &payload);
    assert!(matches!(
        decode_unverified::<User>(&mis_issued),
        Err(JwtError::WrongIssuerKind { .. })
    ));
}

#[test]
fn user_signed_by_operator_is_refused() {
    let op = KeyPair::generate(KeyKind::Operator);
    let user = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&user.user_public_key().unwrap(), "u");
    assert!(matches!(
        c.encode(&op),
        Err(JwtError::WrongIssuerKind {
            found: KeyKind::Operator,
            ..
        })
    ));
    // Forge it by hand: decode must refuse too.
    c.iss = op.public_key().into_string();
    let payload = serde_json::to_string(&c).unwrap();
    let t = sign_raw(&op, r#"{"typ":"JWT","alg":"ed25519-nkey"}"#, &payload);
    assert!(matches!(
        decode::<User>(&t),
        Err(JwtError::WrongIssuerKind {
            found: KeyKind::Operator,
            ..
        })
    ));
}

#[test]
fn account_signed_by_user_is_refused() {
    let user = KeyPair::generate(KeyKind::User);
    let acc = KeyPair::generate(KeyKind::Account);
    let mut c = AccountClaims::new(&acc.account_public_key().unwrap(), "A");
    assert!(matches!(
        c.encode(&user),
        Err(JwtError::WrongIssuerKind { .. })
    ));
    c.iss = user.public_key().into_string();
    let t = sign_raw(
        &user,
        r#"{"typ":"JWT","alg":"ed25519-nkey"}"#,
        &serde_json::to_string(&c).unwrap(),
    );
    assert!(matches!(
        decode::<Account>(&t),
        Err(JwtError::WrongIssuerKind { .. })
    ));
    assert!(matches!(
        decode_any(&t),
        Err(JwtError::WrongIssuerKind { .. })
    ));
}

#[test]
fn v1_tokens_are_refused() {
    let acc = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User);
    let v1 = format!(
        r#"{{"jti":"X","iat":1,"iss":"{}","sub":"{}","type":"user","nats":{{"pub":{{}},"sub":{{}}}}}}"#,
        acc.public_key(),
        user.public_key()
    );
    let t = sign_raw(&acc, r#"{"typ":"jwt","alg":"ed25519"}"#, &v1);
    let err = decode::<User>(&t).unwrap_err();
    assert!(
        matches!(err, JwtError::UnsupportedVersion { version: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("v1"));
    // Missing nats.version reads as 0: also v1.
    let v0 = format!(
        r#"{{"iat":1,"iss":"{}","sub":"{}","nats":{{"type":"user"}}}}"#,
        acc.public_key(),
        user.public_key()
    );
    let t = sign_raw(&acc, r#"{"typ":"JWT","alg":"ed25519-nkey"}"#, &v0);
    assert!(matches!(
        decode::<User>(&t),
        Err(JwtError::UnsupportedVersion { version: 0, .. })
    ));
    let v3 = v0.replace(r#""type":"user""#, r#""type":"user","version":3"#);
    let t = sign_raw(&acc, r#"{"typ":"JWT","alg":"ed25519-nkey"}"#, &v3);
    let err = decode::<User>(&t).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn legacy_alg_and_lowercase_typ_are_accepted() {
    let acc = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User);
    let mut c = UserClaims::new(&user.user_public_key().unwrap(), "u");
    c.iss = acc.public_key().into_string();
    let payload = serde_json::to_string(&c).unwrap();
    let t = sign_raw(&acc, r#"{"typ":"jwt","alg":"ED25519"}"#, &payload);
    assert_eq!(decode::<User>(&t).unwrap(), c);
    let bad = sign_raw(&acc, r#"{"typ":"JWT","alg":"HS256"}"#, &payload);
    assert!(matches!(decode::<User>(&bad), Err(JwtError::BadHeader(_))));
    let bad = sign_raw(&acc, r#"{"typ":"JWS","alg":"ed25519-nkey"}"#, &payload);
    assert!(matches!(decode::<User>(&bad), Err(JwtError::BadHeader(_))));
}

#[test]
fn padded_base64_is_refused() {
    let (_, t) = user_token();
    let parts: Vec<&str> = t.split('.').collect();
    // The signature is 64 bytes → 86 chars; padding would add "==".
    let padded = format!("{}.{}.{}==", parts[0], parts[1], parts[2]);
    assert!(matches!(
        decode::<User>(&padded),
        Err(JwtError::Malformed(_))
    ));
    let padded_payload = format!("{}.{}=.{}", parts[0], parts[1], parts[2]);
    assert!(matches!(
        decode::<User>(&padded_payload),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn wrong_type_and_malformed() {
    let (_, t) = user_token();
    assert!(matches!(
        decode::<Account>(&t),
        Err(JwtError::WrongType {
            expected: "account",
            ..
        })
    ));
    assert!(matches!(decode::<User>("a.b"), Err(JwtError::Malformed(_))));
    assert!(matches!(
        decode::<User>("a.b.c.d"),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(decode::<User>(""), Err(JwtError::Malformed(_))));
    // Generic accepts any type.
    assert!(decode::<Generic>(&t).is_ok());
}
