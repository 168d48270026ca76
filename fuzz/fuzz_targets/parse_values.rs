//! Fuzzes the parsers of values people type on the command line and in spec files:
//! sizes (`parse_size`), durations (`parse_duration_ns`), expiries (`parse_expiry`, nsc's
//! forms and dates), source networks (`parse_cidr`), connection types and tags.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_core::parse::{
    check_limit, format_unix, parse_cidr, parse_connection_type, parse_duration_ns, parse_expiry,
    parse_size, parse_tag,
};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = parse_size(text) {
        assert!(n >= -1, "size {n} from {text:?}");
        let _ = check_limit(n);
    }
    if let Ok(ns) = parse_duration_ns(text) {
        assert!(ns >= 0, "duration {ns} from {text:?}");
    }
    if let Ok(Some(at)) = parse_expiry(text, NOW) {
        let _ = format_unix(at);
    }
    if let Ok(cidr) = parse_cidr(text) {
        assert_eq!(
            parse_cidr(&cidr).as_ref(),
            Ok(&cidr),
            "canonical CIDR is stable"
        );
    }
    let _ = parse_connection_type(text);
    let _ = parse_tag(text);
});
