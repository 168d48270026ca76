//! The clap value parsers of the command line. Each reads a flag into the same
//! validated type the HTTP API, the NATS service and the console read it into,
//! through the one parser in `warden_core::parse`, so a bad or blank value is
//! refused by clap (exit code 2, the flag named) before anything is opened.

use nats_jwt::{ConnectionType, Subject};
use warden_core::parse;

/// A NATS subject (`subject queue` for a queue group); blank refused.
pub(crate) fn subject(s: &str) -> Result<Subject, String> {
    parse::parse_subject(s).map_err(|e| e.to_string())
}

/// A connection type (`STANDARD`, `WEBSOCKET`, ...); blank refused.
pub(crate) fn conn_type(s: &str) -> Result<ConnectionType, String> {
    parse::parse_connection_type(s).map_err(|e| e.to_string())
}

/// A source network as its canonical CIDR (`10.0.0.1` → `10.0.0.1/32`); blank refused.
pub(crate) fn cidr(s: &str) -> Result<String, String> {
    parse::parse_cidr(s).map_err(|e| e.to_string())
}

/// A tag, lower-cased; blank refused.
pub(crate) fn tag(s: &str) -> Result<String, String> {
    parse::parse_tag(s).map_err(|e| e.to_string())
}

/// A size or count (`1K`, `5MB`, `-1` for unlimited).
pub(crate) fn size(s: &str) -> Result<i64, String> {
    parse::parse_size(s).map_err(|e| e.to_string())
}

/// A duration in nanoseconds (`500ms`, `2m`).
/// A size where the operation judges the number: any whole number passes as it is (so
/// `-2` gets the same refusal from the operation as over HTTP), else a size with a unit.
pub(crate) fn size_judged_later(s: &str) -> Result<i64, String> {
    s.trim().parse::<i64>().or_else(|_| size(s))
}

pub(crate) fn duration_ns(s: &str) -> Result<i64, String> {
    parse::parse_duration_ns(s).map_err(|e| e.to_string())
}

/// A duration (`30s`); negative ones count as zero.
pub(crate) fn duration(s: &str) -> Result<std::time::Duration, String> {
    duration_ns(s).map(|ns| std::time::Duration::from_nanos(ns.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_are_refused() {
        for blank in ["", " ", "\t"] {
            assert!(subject(blank).is_err(), "{blank:?}");
            assert!(conn_type(blank).is_err(), "{blank:?}");
            assert!(cidr(blank).is_err(), "{blank:?}");
            assert!(tag(blank).is_err(), "{blank:?}");
        }
        assert_eq!(cidr(" 10.0.0.1 ").as_deref(), Ok("10.0.0.1/32"));
        assert_eq!(conn_type("mqtt"), Ok(ConnectionType::Mqtt));
    }
}
