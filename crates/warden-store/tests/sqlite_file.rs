//! SQLite specifics: the database file is private, created on demand, and holds no seed in
//! plain text.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sqlx::Connection as _;
use warden_store::{Backend, MasterKey, Store, StoreError};

/// A realistic user seed: "SU" + 56 base32 characters.
const SEED: &str = "SUAGQF7U7NTYLXDXRRHDSXCPMHGZDDMEM3KWVR3WTJAZB7QBNJKK3EFDTE";

fn key() -> MasterKey {
    MasterKey::from_bytes([3; 32])
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The bytes of the database file and of its WAL, if any.
fn database_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let wal = db.with_file_name("warden.db-wal");
    if wal.exists() {
        bytes.extend(std::fs::read(wal).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn database_file_contains_no_plaintext_seed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let url = format!("sqlite://{}", db.display());
    let store = Store::open(&url, key()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.put_seed("UAPUBLICKEY", "user", SEED).await.unwrap();
    tx.commit().await.unwrap();

    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let sealed: String = sqlx::query_scalar("SELECT sealed_seed FROM nkeys")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(sealed.starts_with("v1:"));

    // While open (the row may still be in the WAL) ...
    let bytes = database_bytes(&db);
    assert!(
        !contains(&bytes, SEED),
        "seed in plain text in the database files"
    );
    assert!(
        contains(&bytes, &sealed),
        "envelope not found in the database files"
    );

    // ... and once closed and checkpointed.
    store.close().await;
    let bytes = database_bytes(&db);
    assert!(
        !contains(&bytes, SEED),
        "seed in plain text in the database file"
    );
    assert!(
        contains(&bytes, &sealed),
        "envelope not found in the database file"
    );
    assert!(
        !contains(&bytes, &SEED[2..30]),
        "part of the seed in plain text"
    );
}

#[tokio::test]
async fn database_file_is_created_private_and_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let store = Store::open(&format!("sqlite://{}", db.display()), key())
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(db.exists());
    assert_eq!(mode(&db), 0o600);
    let wal = db.with_file_name("warden.db-wal");
    assert!(wal.exists(), "WAL mode is on");
    assert_eq!(mode(&wal) & 0o077, 0, "WAL file is private");
    store.close().await;

    // An existing file readable by others is tightened.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&format!("sqlite://{}", db.display()), key())
        .await
        .unwrap();
    assert_eq!(mode(&db), 0o600);
    store.close().await;
}

/// What is committed reaches the database file itself soon after, while the store stays
/// open: the store's own task checkpoints the write-ahead log (commits do not; SQLite's
/// automatic checkpoint would have waited for 1,000 pages of log, inside a commit).
#[tokio::test]
async fn the_write_ahead_log_is_checkpointed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let store = Store::open(&format!("sqlite://{}", db.display()), key())
        .await
        .unwrap();
    // 64 KiB: 16 pages of log, far below the automatic checkpoint's threshold.
    let marker = "checkpointed-".repeat(5_000);
    let mut tx = store.begin().await.unwrap();
    tx.set_meta("checkpoint-test", &marker).await.unwrap();
    tx.commit().await.unwrap();
    let in_main_file = || contains(&std::fs::read(&db).unwrap(), &marker[..1_000]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !in_main_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "the committed row did not reach the database file within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Still readable, and the log is reused from its start by the next commit.
    let mut tx = store.begin().await.unwrap();
    tx.set_meta("checkpoint-test-2", "x").await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn missing_directory_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/no/such/dir/warden.db", dir.path().display());
    let err = Store::open(&url, key()).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[tokio::test]
async fn in_memory_database_works() {
    let store = Store::open("sqlite::memory:", key()).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.put_seed("UMEM", "user", SEED).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.seed("UMEM").await.unwrap().as_str(), SEED);
    assert_eq!(store.counts().await.unwrap().nkeys, 1);
}

#[tokio::test]
async fn concurrent_first_opens_agree_on_the_seal_check() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let (a, b) = tokio::join!(Store::open(&url, key()), Store::open(&url, key()));
    a.unwrap().close().await;
    b.unwrap().close().await;
    let err = Store::open(&url, MasterKey::from_bytes([4; 32]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey), "{err}");
}

#[tokio::test]
async fn percent_encoded_paths_name_the_same_file_as_sqlx() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("my data")).unwrap();
    let url = format!("sqlite://{}/my%20data/warden.db", dir.path().display());
    let store = Store::open(&url, key()).await.unwrap();
    store.close().await;
    let db = dir.path().join("my data/warden.db");
    assert_eq!(mode(&db), 0o600);
    assert!(!dir.path().join("my%20data").exists());
    Store::open(&url, key()).await.unwrap().close().await;
}
