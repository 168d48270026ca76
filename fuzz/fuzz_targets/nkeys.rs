//! Fuzzes the nkey text readers: public keys (`PublicKey::new`, as in JWT `iss`/`sub` and
//! nsc directory names) and seeds (`Seed::parse`, `KeyPair::from_seed`, as in nsc keystore
//! `.nk` files, which the nsc store reader reads from disk and hands to these).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_jwt::{KeyPair, PublicKey, Seed};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pk) = PublicKey::new(text) {
        let again = PublicKey::new(pk.as_str()).expect("a public key reads back");
        assert_eq!(again.kind(), pk.kind());
    }
    if let Ok(seed) = Seed::parse(text) {
        let _ = seed.kind();
    }
    if let Ok(kp) = KeyPair::from_seed(text.trim()) {
        let pk = kp.public_key();
        assert_eq!(pk.kind(), kp.kind());
        let sig = kp.sign(data);
        nats_jwt::verify_signature(&pk, data, &sig).expect("own signature verifies");
    }
});
