//! Parsers for the values people type on the command line, in forms or in spec
//! files: sizes (`1M`, `512KiB`, `-1`), durations (`500ms`, `2m`), expiries in
//! nsc's notation (`0`, `2M`, `1y`, `2027-01-31`), source networks (CIDRs),
//! subjects, connection types and tags.
//!
//! Every surface (command line, HTTP API, NATS service, console) reads these
//! values through the functions here, so the same text gets the same answer
//! everywhere. A blank value is refused, never dropped: dropping a blank
//! `--allow-pub ' '` would leave an empty allow list, which NATS reads as
//! "everything allowed".
//!
//! Each returns a clear error naming the input; none reads the clock (the caller
//! passes `now`).

use std::net::IpAddr;

use ipnet::IpNet;
use nats_jwt::{ConnectionType, Subject};

/// Why a typed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a size.
    #[error(
        "invalid size {0:?}: use a number with an optional unit (K, M, G, T, or KiB, MiB...), or -1 for unlimited"
    )]
    Size(String),
    /// Not a duration.
    #[error("invalid duration {0:?}: use a number with a unit (ms, s, m, h, d), e.g. 500ms or 2m")]
    Duration(String),
    /// Not an expiry.
    #[error(
        "invalid expiry {0:?}: use 0 (never), a relative time (30m, 12h, 7d, 2w, 6M, 1y) or a date (2027-01-31 or 2027-01-31T12:00:00Z)"
    )]
    Expiry(String),
    /// Not a CIDR or IP address.
    #[error(
        "invalid source network {0:?}: use a CIDR such as 10.0.0.0/8 or an address such as 192.0.2.7"
    )]
    Cidr(String),
    /// A count below -1.
    #[error("invalid limit {0}: use a non-negative number, or -1 for unlimited")]
    Limit(i64),
    /// An empty or whitespace-only value where one is required.
    #[error("empty {0}: give a value (an empty list entry is not \"nothing\", it is a mistake)")]
    Blank(&'static str),
    /// Not a NATS subject.
    #[error("invalid subject {0:?}: {1}")]
    Subject(String, String),
    /// Not a connection type.
    #[error(
        "unknown connection type {0:?}: use STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS"
    )]
    ConnectionType(String),
}

/// What a blank value was meant to be, for [`ParseError::Blank`].
pub const SUBJECT: &str = "subject";
/// See [`SUBJECT`].
pub const SOURCE_NETWORK: &str = "source network";
/// See [`SUBJECT`].
pub const CONNECTION_TYPE: &str = "connection type";
/// See [`SUBJECT`].
pub const TAG: &str = "tag";

/// Trims `input`; refuses it when nothing is left.
fn non_blank<'a>(input: &'a str, what: &'static str) -> Result<&'a str, ParseError> {
    let s = input.trim();
    if s.is_empty() {
        Err(ParseError::Blank(what))
    } else {
        Ok(s)
    }
}

/// Parses a subject (surrounding whitespace ignored; `subject queue` names a queue
/// group). A blank subject is refused.
pub fn parse_subject(input: &str) -> Result<Subject, ParseError> {
    let s = non_blank(input, SUBJECT)?;
    Subject::new(s).map_err(|e| ParseError::Subject(s.to_string(), e.to_string()))
}

/// Parses a connection type (`STANDARD`, `websocket`, ...). A blank one is refused.
pub fn parse_connection_type(input: &str) -> Result<ConnectionType, ParseError> {
    let s = non_blank(input, CONNECTION_TYPE)?;
    s.parse()
        .map_err(|_| ParseError::ConnectionType(s.to_string()))
}

/// Parses a tag: trimmed and lower-cased, as tags are stored. A blank tag is refused.
pub fn parse_tag(input: &str) -> Result<String, ParseError> {
    non_blank(input, TAG).map(str::to_ascii_lowercase)
}

/// Canonicalises a list of source networks in place (`10.0.0.1` → `10.0.0.1/32`),
/// refusing the first blank or invalid entry.
pub fn canonical_cidrs(list: &mut [String]) -> Result<(), ParseError> {
    for c in list.iter_mut() {
        *c = parse_cidr(c)?;
    }
    Ok(())
}

/// Parses a byte size or count. `-1` (and `unlimited`) mean unlimited. Units are
/// binary (K = 1024), as in nats-server configuration; `KiB`-style suffixes and a
/// trailing `B` are accepted too.
pub fn parse_size(input: &str) -> Result<i64, ParseError> {
    let s = input.trim();
    let err = || ParseError::Size(input.to_string());
    if s == "-1" || s.eq_ignore_ascii_case("unlimited") {
        return Ok(-1);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: i64 = digits.parse().map_err(|_| err())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.trim_end_matches('B').trim_end_matches('I');
    let mult: i64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// Checks a count limit: `-1` (unlimited) or non-negative.
pub fn check_limit(n: i64) -> Result<i64, ParseError> {
    if n < -1 {
        Err(ParseError::Limit(n))
    } else {
        Ok(n)
    }
}

/// Parses a duration into nanoseconds (`500ms`, `30s`, `2m`, `1h`, `1d`; a bare
/// number is seconds).
pub fn parse_duration_ns(input: &str) -> Result<i64, ParseError> {
    let s = input.trim();
    let err = || ParseError::Duration(input.to_string());
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: i64 = digits.parse().map_err(|_| err())?;
    let mult: i64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        _ => return Err(err()),
    };
    n.checked_mul(mult).ok_or_else(err)
}

/// Parses an expiry as nsc does: `0` = never (None); `#m`, `#h`, `#d`, `#w`,
/// `#M` (30-day months), `#y` (365-day years) relative to `now`; or an absolute
/// date `yyyy-mm-dd` (midnight UTC) or `yyyy-mm-ddTHH:MM:SSZ`; or `@<unix seconds>`.
pub fn parse_expiry(input: &str, now: i64) -> Result<Option<i64>, ParseError> {
    let s = input.trim();
    let err = || ParseError::Expiry(input.to_string());
    if s == "0" || s.is_empty() {
        return Ok(None);
    }
    if let Some(unix) = s.strip_prefix('@') {
        return unix.parse::<i64>().map(Some).map_err(|_| err());
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return parse_date(s).map(Some).ok_or_else(err);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().map_err(|_| err())?;
    let secs: i64 = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(err()),
    };
    n.checked_mul(secs)
        .and_then(|d| now.checked_add(d))
        .map(Some)
        .ok_or_else(err)
}

/// `yyyy-mm-dd` or `yyyy-mm-ddTHH:MM:SSZ` → unix seconds (UTC).
fn parse_date(s: &str) -> Option<i64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut it = date.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let mut it = t.split(':');
        let h: i64 = it.next()?.parse().ok()?;
        let mi: i64 = it.next()?.parse().ok()?;
        let se: i64 = it.next()?.parse().ok()?;
        // Signs parse as numbers too: a negative field is refused, not subtracted (and a
        // huge negative one would overflow the sum).
        if it.next().is_some()
            || !(0..=23).contains(&h)
            || !(0..=59).contains(&mi)
            || !(0..=60).contains(&se)
        {
            return None;
        }
        secs += h * 3600 + mi * 60 + se;
    }
    Some(secs)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats unix seconds as `yyyy-mm-ddTHH:MM:SSZ` (for human output).
pub fn format_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses a source network: a CIDR, or a bare address (taken as /32 or /128).
/// Returns the canonical CIDR text the server expects.
/// A blank one is refused.
pub fn parse_cidr(input: &str) -> Result<String, ParseError> {
    let s = non_blank(input, SOURCE_NETWORK)?;
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.to_string());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(IpNet::from(ip).to_string());
    }
    Err(ParseError::Cidr(input.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("-1"), Ok(-1));
        assert_eq!(parse_size("unlimited"), Ok(-1));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1K"), Ok(1024));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        for bad in ["", "M", "-2", "1X", "1.5M", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("9999999999T").is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(check_limit(-1), Ok(-1));
        assert_eq!(check_limit(0), Ok(0));
        assert_eq!(check_limit(-2), Err(ParseError::Limit(-2)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("2m"), Ok(120_000_000_000));
        assert_eq!(parse_duration_ns("3"), Ok(3_000_000_000));
        assert!(parse_duration_ns("soon").is_err());
        assert!(parse_duration_ns("1y").is_err());
    }

    #[test]
    fn expiries() {
        let now = 1_800_000_000;
        assert_eq!(parse_expiry("0", now), Ok(None));
        assert_eq!(parse_expiry("1h", now), Ok(Some(now + 3600)));
        assert_eq!(parse_expiry("2w", now), Ok(Some(now + 14 * 86_400)));
        assert_eq!(parse_expiry("1M", now), Ok(Some(now + 30 * 86_400)));
        assert_eq!(parse_expiry("2027-01-31", now), Ok(Some(1_801_353_600)));
        assert_eq!(
            parse_expiry("2027-01-31T01:02:03Z", now),
            Ok(Some(1_801_353_600 + 3723))
        );
        assert_eq!(parse_expiry("@42", now), Ok(Some(42)));
        for bad in [
            "2027-02-30",
            "2027-13-01",
            "tomorrow",
            "5x",
            "2027-01-31T25:00:00Z",
        ] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_round_trips_dates() {
        for secs in [0, 951_782_400, 1_801_353_603, 4_102_444_800] {
            let text = format_unix(secs);
            assert_eq!(parse_expiry(&text, 0), Ok(Some(secs)), "{text}");
        }
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.0.0.0/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(parse_cidr("192.0.2.7"), Ok("192.0.2.7/32".into()));
        assert_eq!(parse_cidr("::1"), Ok("::1/128".into()));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("example.com").is_err());
        let mut list = vec!["10.0.0.1".to_string(), " ::1 ".to_string()];
        assert_eq!(canonical_cidrs(&mut list), Ok(()));
        assert_eq!(list, ["10.0.0.1/32", "::1/128"]);
    }

    #[test]
    fn blanks_are_refused_not_dropped() {
        for blank in ["", " ", "\t", " \n "] {
            assert_eq!(
                parse_subject(blank),
                Err(ParseError::Blank(SUBJECT)),
                "{blank:?}"
            );
            assert_eq!(parse_cidr(blank), Err(ParseError::Blank(SOURCE_NETWORK)));
            assert_eq!(
                parse_connection_type(blank),
                Err(ParseError::Blank(CONNECTION_TYPE))
            );
            assert_eq!(parse_tag(blank), Err(ParseError::Blank(TAG)));
            let mut list = vec!["10.0.0.0/8".to_string(), blank.to_string()];
            assert_eq!(
                canonical_cidrs(&mut list),
                Err(ParseError::Blank(SOURCE_NETWORK))
            );
        }
        assert!(
            ParseError::Blank(SUBJECT)
                .to_string()
                .starts_with("empty subject")
        );
    }

    #[test]
    fn subjects_connection_types_and_tags() {
        assert_eq!(
            parse_subject(" a.> ").map(|s| s.to_string()),
            Ok("a.>".into())
        );
        assert!(matches!(
            parse_subject("a..b"),
            Err(ParseError::Subject(..))
        ));
        assert_eq!(
            parse_connection_type(" websocket"),
            Ok(ConnectionType::Websocket)
        );
        assert_eq!(
            parse_connection_type("TCP"),
            Err(ParseError::ConnectionType("TCP".into()))
        );
        assert_eq!(parse_tag(" Edge "), Ok("edge".into()));
    }
}
