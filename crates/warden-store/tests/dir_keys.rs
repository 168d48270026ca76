//! The directory user keys table (ADD_KEY), on SQLite and on PostgreSQL: register, list
//! newest first, one owner per key, remove, and keys gone with their directory user.

use nats_jwt::{KeyKind, KeyPair};
use warden_core::directory::NextUser;
use warden_store::dir_keys::DirUserKeyRow;
use warden_store::governance::WARDEN_SOURCE;
use warden_store::{MasterKey, Store, StoreError};

fn test_key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                    let store = warden_store::Store::open(&url, super::test_key()).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = warden_testkit::PgDatabase::create().await;
                    let store = warden_store::Store::open(db.url(), super::test_key()).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                    drop(db);
                }
            )*
        }
    };
}

on_both_backends!(keys_register_list_conflict_remove);

fn user(id: &str) -> NextUser {
    NextUser {
        id: id.into(),
        ..Default::default()
    }
}

fn key(user: &str, at: i64) -> DirUserKeyRow {
    DirUserKeyRow {
        public_key: KeyPair::generate(KeyKind::User).public_key().to_string(),
        user_id: user.into(),
        created_at: at,
    }
}

async fn keys_register_list_conflict_remove(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user(&user("ulrich"), WARDEN_SOURCE)
        .await
        .unwrap();
    tx.insert_dir_user(&user("mallory"), WARDEN_SOURCE)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let first = key("ulrich", 100);
    let second = key("ulrich", 200);
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user_key(&first).await.unwrap();
    tx.insert_dir_user_key(&second).await.unwrap();
    // The same key for someone else: a conflict, and the transaction stays usable
    // (checked before the INSERT, which would abort it on PostgreSQL).
    let taken = DirUserKeyRow {
        user_id: "mallory".into(),
        ..first.clone()
    };
    assert!(matches!(
        tx.insert_dir_user_key(&taken).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        tx.dir_user_key_owner(&first.public_key)
            .await
            .unwrap()
            .as_deref(),
        Some("ulrich")
    );
    tx.commit().await.unwrap();

    // Newest first.
    assert_eq!(
        store.dir_user_keys("ulrich").await.unwrap(),
        vec![second.clone(), first.clone()]
    );
    assert!(store.dir_user_keys("mallory").await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    // Mallory cannot remove ulrich's key: not hers.
    assert!(matches!(
        tx.delete_dir_user_key("mallory", &first.public_key).await,
        Err(StoreError::NotFound { .. })
    ));
    tx.delete_dir_user_key("ulrich", &second.public_key)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.dir_user_keys("ulrich").await.unwrap(),
        vec![first.clone()]
    );

    // A rolled-back registration leaves nothing behind.
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user_key(&key("mallory", 300)).await.unwrap();
    drop(tx);
    assert!(store.dir_user_keys("mallory").await.unwrap().is_empty());

    // Deleting the directory user deletes their keys.
    let mut tx = store.begin().await.unwrap();
    tx.delete_dir_user("ulrich").await.unwrap();
    assert_eq!(
        tx.dir_user_key_owner(&first.public_key).await.unwrap(),
        None
    );
    tx.commit().await.unwrap();
    assert!(store.dir_user_keys("ulrich").await.unwrap().is_empty());
}
