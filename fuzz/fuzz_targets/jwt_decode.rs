//! Fuzzes the verifying JWT decode as it meets tokens from outside (nsc stores, resolver
//! pushes, `warden import`): raw text through `decode_any` and the typed `decode` of
//! operator, account, user and activation claims, then `validate()` on whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_jwt::{Account, Activation, Operator, User, decode, decode_any};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(any) = decode_any(token) {
        let _ = any.validate(NOW);
        let _ = any.to_json();
    }
    if let Ok(c) = decode::<Operator>(token) {
        let _ = c.validate(NOW);
    }
    if let Ok(c) = decode::<Account>(token) {
        let _ = c.validate(NOW);
    }
    if let Ok(c) = decode::<User>(token) {
        let _ = c.validate(NOW);
    }
    if let Ok(c) = decode::<Activation>(token) {
        let _ = c.validate(NOW);
    }
});
