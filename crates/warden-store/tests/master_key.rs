//! The master key: parsing `WARDEN_MASTER_KEY` values, and the key file.

use std::os::unix::fs::PermissionsExt;

use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
use warden_store::{MasterKey, StoreError};

const BYTES: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 0xff,
];

/// Two keys are the same if one opens what the other sealed.
fn same(a: &MasterKey, b: &MasterKey) -> bool {
    let sealed = a.seal("probe", b"x").unwrap();
    b.unseal("probe", &sealed).is_ok()
}

#[test]
fn parses_hex_and_base64_of_32_bytes() {
    let expected = MasterKey::from_bytes(BYTES);
    let forms = [
        HEXLOWER.encode(&BYTES),
        HEXUPPER.encode(&BYTES),
        format!("  {}\n", HEXLOWER.encode(&BYTES)),
        BASE64.encode(&BYTES),
        BASE64URL_NOPAD.encode(&BYTES),
        BASE64.encode(&BYTES).trim_end_matches('=').to_owned(),
    ];
    for form in forms {
        let key = MasterKey::parse(&form).unwrap_or_else(|e| panic!("{form:?}: {e}"));
        assert!(same(&key, &expected), "{form:?}");
    }
    assert!(!same(&MasterKey::from_bytes([0; 32]), &expected));
}

#[test]
fn rejects_anything_else_without_echoing_it() {
    let hex = HEXLOWER.encode(&BYTES);
    let bad = [
        String::new(),
        hex[..62].to_owned(),                    // 31 bytes of hex
        format!("{hex}00"),                      // 33 bytes of hex
        format!("{}zz", &hex[..62]),             // not hex, not base64
        BASE64.encode(&BYTES[..31]),             // base64 of 31 bytes
        BASE64.encode(&[BYTES, BYTES].concat()), // base64 of 64 bytes
        "correct horse battery staple".to_owned(),
    ];
    for value in bad {
        let err = MasterKey::parse(&value).expect_err(&value);
        assert!(err.contains("64 hex") && err.contains("base64"), "{err}");
        if value.len() > 4 {
            assert!(!err.contains(&value), "error repeats the value: {err}");
        }
    }
}

#[test]
fn debug_is_redacted() {
    let key = MasterKey::from_bytes([0xab; 32]);
    assert_eq!(format!("{key:?}"), "MasterKey(***)");
}

#[test]
fn key_file_is_created_private_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let path = data_dir.join("master.key");

    let created = MasterKey::from_file(&path, true).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65, "64 hex characters and a newline");
    assert!(text.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o077,
        0,
        "data directory created private"
    );

    // Read back (with and without `create`): the same key, the file unchanged.
    for create in [false, true] {
        let again = MasterKey::from_file(&path, create).unwrap();
        assert!(same(&created, &again));
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn missing_key_file_without_create_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let err = MasterKey::from_file(&path, false).unwrap_err();
    assert!(matches!(err, StoreError::MasterKey(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("warden init"), "{text}");
    assert!(text.contains("WARDEN_MASTER_KEY"), "{text}");
    assert!(!path.exists());
}

#[test]
fn malformed_key_file_is_an_error_that_does_not_echo_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    std::fs::write(&path, "not-a-key-but-a-secret-anyway\n").unwrap();
    let err = MasterKey::from_file(&path, true).unwrap_err().to_string();
    assert!(err.contains("master.key"), "{err}");
    assert!(!err.contains("secret-anyway"), "{err}");
    // `create` never overwrites an existing file.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "not-a-key-but-a-secret-anyway\n"
    );
}
