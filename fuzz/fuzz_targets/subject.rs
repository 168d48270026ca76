//! Fuzzes the validated `Subject` (permissions, exports, imports, stream subjects typed by
//! people and read from JWTs): `Subject::new` and `parse_subject`, and the relations the
//! compiler and linter lean on. The input is up to three subjects, one per line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nats_jwt::Subject;
use warden_core::parse::parse_subject;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut subjects = Vec::new();
    for line in text.split('\n').take(3) {
        let _ = parse_subject(line);
        if let Ok(s) = Subject::new(line) {
            assert_eq!(Subject::new(s.as_str()).as_ref(), Ok(&s), "reads back");
            let json = serde_json::to_string(&s).expect("serializes");
            let back: Subject = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, s);
            assert!(s.is_subset_of(&s), "{s} is a subset of itself");
            assert!(s.overlaps(&s), "{s} overlaps itself");
            if s.queue().is_none() {
                assert!(s.matches(s.as_str()), "{s} matches itself");
            }
            let _ = s.has_wildcards();
            subjects.push(s);
        }
    }
    for a in &subjects {
        for b in &subjects {
            let sub = a.is_subset_of(b);
            assert_eq!(
                a.overlaps(b),
                b.overlaps(a),
                "overlap of {a} and {b} is symmetric"
            );
            if sub {
                assert!(a.overlaps(b), "{a} within {b} yet no overlap");
            }
            for c in &subjects {
                if sub && b.is_subset_of(c) {
                    assert!(a.is_subset_of(c), "{a} ⊆ {b} ⊆ {c} but not {a} ⊆ {c}");
                }
            }
            let _ = a.matches(b.as_str());
        }
    }
});
