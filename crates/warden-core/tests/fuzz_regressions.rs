//! Inputs that made warden-core's parsers panic or misread under fuzzing (fuzz/, run by
//! scripts/fuzz), kept here so `cargo test` holds the fixes.

use warden_core::parse::parse_expiry;

const NOW: i64 = 1_800_000_000;

/// A time of day with a negative field: `i64::MIN` hours overflowed the sum of seconds
/// (a panic with overflow checks, a wrapped expiry without); small negatives were
/// subtracted from midnight instead of being refused.
#[test]
fn expiry_with_negative_time_fields_is_refused() {
    for bad in [
        "2020-01-01T-9223372036854775808:00:00Z",
        "2020-01-01T00:-9223372036854775808:00Z",
        "2020-01-01T00:00:-9223372036854775808Z",
        "2020-01-01T-1:00:00Z",
        "2020-01-01T00:-5:00Z",
        "2020-01-01T00:00:-1Z",
    ] {
        assert!(parse_expiry(bad, NOW).is_err(), "{bad}");
    }
    assert_eq!(
        parse_expiry("2020-01-01T23:59:60Z", NOW),
        Ok(Some(1_577_923_200))
    );
}
