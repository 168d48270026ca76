//! Fuzzes the streams spec reader (`warden streams check|apply FILE`, `warden tenant lint`):
//! `warden_ops::streams::parse_spec` as YAML, as JSON and by content, then
//! `streams::validate` and the plan of each declared stream, absent and unchanged (a stream
//! that already has the declared configuration needs no change).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use warden_core::streams::{by_account, plan, validate};
use warden_ops::streams::parse_spec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for file in ["streams.yaml", "streams.json", "streams"] {
        let Ok(spec) = parse_spec(Path::new(file), text) else {
            continue;
        };
        let Ok(decls) = validate(&spec) else {
            continue;
        };
        for d in &decls {
            let _ = plan(d, None);
            let same = plan(d, Some(&d.config));
            assert!(
                same.changes.is_empty(),
                "{} against itself: {:?}",
                d.name,
                same.changes
            );
        }
        let _ = by_account(&decls);
    }
});
