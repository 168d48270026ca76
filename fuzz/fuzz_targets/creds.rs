//! Fuzzes the creds file reader (what `warden import nsc`, the CLI and clients read):
//! `parse_creds`, then the seed it found through `KeyPair::from_seed` and the JWT through
//! the verifying decode. A creds file Warden formats must parse back to the same parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_jwt::{KeyPair, decode_any, format_decorated_jwt, format_user_creds, parse_creds};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(creds) = parse_creds(text) else {
        return;
    };
    let _ = decode_any(&creds.jwt);
    let _ = format_decorated_jwt(&creds.jwt);
    if let Some(seed) = &creds.seed {
        let _ = KeyPair::from_seed(seed.expose());
        if let Ok(formatted) = format_user_creds(&creds.jwt, seed) {
            let back = parse_creds(&formatted).expect("Warden's own creds text parses");
            assert_eq!(back.jwt, creds.jwt.trim());
            assert_eq!(back.seed.as_ref().map(|s| s.expose()), Some(seed.expose()));
        }
    }
});
