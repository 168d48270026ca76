//! Fuzzes directory sync's LDIF reading (Active Directory exports and change records given
//! to `warden dirsync`): `ldif::parse`, the full-export mapping `from_ldif`, the delta
//! `ldif_delta` applied to a snapshot made from a real AD export, and the plan. Every
//! entry read (but one starting with a keyword-named attribute) must write back (`ldif::line`) to LDIF that reads to the same entry.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_core::dirsync::ldif::{self, LdifRecord};
use warden_core::dirsync::{Mapped, Mapping, Provider, from_ldif, ldif_delta, plan_mapped};

const AD_EXPORT: &str =
    include_str!("../../crates/warden-core/tests/fixtures/dirsync/ad_export.ldif");

fn mapping() -> &'static Mapping {
    static M: OnceLock<Mapping> = OnceLock::new();
    M.get_or_init(|| Mapping::default_for(Provider::Ad))
}

/// What Warden holds after syncing the fixture export: the base the deltas apply to.
fn base() -> &'static Mapped {
    static B: OnceLock<Mapped> = OnceLock::new();
    B.get_or_init(|| from_ldif("ldif:corp", mapping(), AD_EXPORT).expect("the fixture maps"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(records) = ldif::parse(text) {
        for r in &records {
            let LdifRecord::Entry {
                dn,
                attrs,
                add: false,
            } = r
            else {
                continue;
            };
            // A first attribute named like a keyword (`changetype;x:` is read as an
            // attribute) would be read back as that keyword: LDIF cannot write such an
            // entry, and Warden never writes entries, only the modify records it composes.
            if attrs.first().is_some_and(|(a, _)| {
                a.eq_ignore_ascii_case("changetype") || a.eq_ignore_ascii_case("control")
            }) {
                continue;
            }
            let mut out = ldif::line("dn", dn.as_bytes());
            for (attr, value) in attrs {
                out.push_str(&ldif::line(attr, value));
            }
            let back = ldif::parse(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"));
            assert_eq!(back, vec![r.clone()], "written as {out:?}");
        }
    }
    if let Ok(mapped) = from_ldif("ldif:corp", mapping(), text) {
        let _ = plan_mapped(&base().snapshot, &mapped);
    }
    if let Ok(mapped) = ldif_delta(&base().snapshot, mapping(), text) {
        let _ = plan_mapped(&base().snapshot, &mapped);
    }
});
