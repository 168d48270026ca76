//! Inputs that made warden-core's parsers panic or misread under fuzzing (fuzz/, run by
//! scripts/fuzz), kept here so `cargo test` holds the fixes.

use warden_core::dirsync::ldif::{self, LdifRecord};
use warden_core::dirsync::{Mapping, Provider, from_ldif, ldif_delta};
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

/// The input on which the `ldif` target's write-back check failed: `changetype;: modrdn`
/// (an option on the keyword) is read as a content attribute named `changetype`, which
/// LDIF cannot write back as the same entry. Reading it must still neither panic nor
/// turn the record into a change record; the maps built from it must not panic either.
#[test]
fn ldif_with_an_option_on_changetype_reads_as_content() {
    let text = "version: 0\n\ndn: CN=Jane Doe,OU=Staff,DC=corp,DC=example\nchangetype: modify\n\
        replace: title\ntitle: Staff Engineer\n-\ndelete: telephoneNumber\n\
        telephoneNumber: +49 30 1234\n-\n\ndn: CN=Eve External,OU=Staffew Hire\n\
        sAMAccountName: nhire\nobjectGUID: 77777777-0000-4000-8000-0sAMAccountName: 00000000&01\n\
        manager: CN=Jane ~Doe,OU=Staff,DC=corp,DC=example\n\n\
        dn: CN=Bob Smith,OU=Staff,DC=corp,DC=example\nchangetype;: modrdn\n\
        newrdn: CN=Robert Smith\u{1}\0\0\0\0\0\0\0ldrdn: 0\n";
    let records = ldif::parse(text).expect("parses");
    let bob = records.last().expect("three records");
    assert!(
        matches!(bob, LdifRecord::Entry { attrs, add: false, .. } if attrs[0].0 == "changetype"),
        "{bob:?}"
    );
    let mapping = Mapping::default_for(Provider::Ad);
    let _ = from_ldif("ldif:corp", &mapping, text);
    let _ = ldif_delta(&Default::default(), &mapping, text);
}
