//! `MasterKey::from_env_or_file` and `WARDEN_MASTER_KEY`.
//!
//! The environment is process-global, so this binary holds exactly one test, which alone
//! changes it.

use data_encoding::HEXLOWER;
use warden_store::MasterKey;
use warden_store::seal::MASTER_KEY_ENV;

fn same(a: &MasterKey, b: &MasterKey) -> bool {
    let sealed = a.seal("probe", b"x").unwrap();
    b.unseal("probe", &sealed).is_ok()
}

fn set(value: Option<&str>) {
    // SAFETY: this test binary runs a single test on a single thread of its own; nothing else
    // reads or writes the environment concurrently.
    unsafe {
        match value {
            Some(v) => std::env::set_var(MASTER_KEY_ENV, v),
            None => std::env::remove_var(MASTER_KEY_ENV),
        }
    }
}

#[test]
fn environment_takes_precedence_over_the_key_file() {
    let dir = tempfile::tempdir().unwrap();

    set(None);
    let err = MasterKey::from_env_or_file(dir.path(), false).unwrap_err();
    assert!(err.to_string().contains("warden init"), "{err}");
    let from_file = MasterKey::from_env_or_file(dir.path(), true).unwrap();
    assert!(dir.path().join("master.key").exists());
    assert!(same(
        &from_file,
        &MasterKey::from_env_or_file(dir.path(), false).unwrap()
    ));

    let bytes = [9u8; 32];
    set(Some(&HEXLOWER.encode(&bytes)));
    let from_env = MasterKey::from_env_or_file(dir.path(), false).unwrap();
    assert!(same(&from_env, &MasterKey::from_bytes(bytes)));
    assert!(!same(&from_env, &from_file));

    set(Some("too-short-secret"));
    let err = MasterKey::from_env_or_file(dir.path(), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains(MASTER_KEY_ENV), "{err}");
    assert!(!err.contains("too-short-secret"), "{err}");

    set(None);
}
