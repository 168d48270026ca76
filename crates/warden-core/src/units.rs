//! How Warden writes quantities for people, the same on every surface (the CLI's human
//! output, the console): byte sizes in binary units as nats-server counts them
//! (1 KiB = 1024 bytes), NATS limits where `-1` means unlimited, counts with thousands
//! separators and nouns in the singular for one.

/// A byte size: `unlimited` for a negative size (NATS's `-1`), else the largest binary
/// unit, whole when it divides exactly (`1 GiB`), with one decimal otherwise (`1.5 KiB`).
pub fn size(n: i64) -> String {
    match u64::try_from(n) {
        Ok(n) => bytes(n),
        Err(_) => "unlimited".into(),
    }
}

/// A byte count (never unlimited): `512 B`, `1 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A NATS count limit: `unlimited` for a negative one, else the number.
pub fn limit(n: i64) -> String {
    if n < 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

/// A JetStream count limit (streams, consumers, ack pending): nats-server enforces only a
/// positive one, so 0 and -1 both read `unlimited`.
pub fn js_limit(n: i64) -> String {
    if n > 0 {
        n.to_string()
    } else {
        "unlimited".to_string()
    }
}

/// A JetStream storage limit: `unlimited` for -1, `none` for 0 (no streams of that
/// storage), else a size.
pub fn js_storage(n: i64) -> String {
    match n {
        0 => "none".to_string(),
        n => size(n),
    }
}

/// A count with thousands separators: `2,000`.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, in the singular for one: `1 tenant`, `2,000 tenants`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jetstream_limits_read_as_nats_server_enforces_them() {
        assert_eq!(js_limit(0), "unlimited");
        assert_eq!(js_limit(-1), "unlimited");
        assert_eq!(js_limit(10), "10");
        assert_eq!(js_storage(0), "none");
        assert_eq!(js_storage(-1), "unlimited");
        assert_eq!(js_storage(1 << 30), "1 GiB");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(-1), "unlimited");
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(10 << 20), "10 MiB");
        assert_eq!(bytes(5 << 50), "5 PiB");
    }

    #[test]
    fn counts_and_plurals() {
        assert_eq!(limit(-1), "unlimited");
        assert_eq!(limit(7), "7");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(2000), "2,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "tenant", "tenants"), "1 tenant");
        assert_eq!(plural(0, "tenant", "tenants"), "0 tenants");
        assert_eq!(
            plural(2000, "device account", "device accounts"),
            "2,000 device accounts"
        );
    }
}
