//! Fuzzes the rooms gateway's websocket frame reader: `protocol::parse_client` on the text
//! a client sends; a refusal is a reply frame, which must encode to JSON with a `type`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_chat::protocol::parse_client;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(reply) = parse_client(text) {
        let json = reply.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).expect("replies are JSON");
        assert!(v.get("type").is_some_and(|t| t.is_string()), "{json}");
    }
});
