//! Fuzzes the rooms gateway's HS256 token check (`token::TokenValidator::validate`), as a
//! raw token and, so that the claim checks behind the signature are reached, as a JWT
//! signed with a configured secret: the input is the payload JSON, or the header JSON, a
//! NUL byte and the payload JSON.
#![no_main]

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use warden_chat::token::TokenValidator;

const SECRETS: [&[u8]; 2] = [b"0123456789abcdef-current", b"0123456789abcdef-retired"];
const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;
const B64: data_encoding::Encoding = data_encoding::BASE64URL_NOPAD;

fn validator() -> &'static TokenValidator {
    static V: OnceLock<TokenValidator> = OnceLock::new();
    V.get_or_init(|| {
        TokenValidator::new(
            &SECRETS.map(<[u8]>::to_vec),
            &["chat.example".to_string()],
            &["api.example".to_string()],
            30,
        )
        .expect("the fuzzing configuration is valid")
    })
}

/// `header.payload.signature`, HMAC-SHA256 with `secret`, as the upstream service signs.
fn hs256(header: &[u8], payload: &[u8], secret: &[u8]) -> String {
    let mut token = B64.encode(header);
    token.push('.');
    token.push_str(&B64.encode(payload));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(token.as_bytes());
    token.push('.');
    token.push_str(&B64.encode(&mac.finalize().into_bytes()));
    token
}

fuzz_target!(|data: &[u8]| {
    let v = validator();
    if let Ok(raw) = std::str::from_utf8(data) {
        let _ = v.validate(raw);
    }
    let (header, payload) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (HEADER, data),
    };
    // The retired secret too: a rotation keeps it working.
    let secret = SECRETS[usize::from(payload.len() % 2 == 1)];
    if let Ok(ok) = v.validate(&hs256(header, payload, secret)) {
        assert!(!ok.caller.user_uuid.trim().is_empty());
        assert!(!ok.caller.entity_uuid.trim().is_empty());
    }
});
