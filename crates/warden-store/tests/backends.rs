//! Behaviour of the store, each test written once and run on SQLite and on PostgreSQL.

use serde_json::json;
use sqlx::Connection as _;
use warden_store::{
    AccountRow, MasterKey, NewEvent, OperatorRow, Store, StoreError, UserRow,
    ledger::{GENESIS_HASH, canonical_json, event_hash},
};

// ---------------------------------------------------------------------------------------------
// Harness: every test below is an `async fn(Store)`; `on_both_backends!` runs it on a fresh
// SQLite file and on a fresh PostgreSQL database (never skipped: PgDatabase panics if
// PostgreSQL is unreachable).
// ---------------------------------------------------------------------------------------------

fn test_key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                    let store = warden_store::Store::open(&url, super::test_key()).await.unwrap();
                    assert_eq!(store.backend(), warden_store::Backend::Sqlite);
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = warden_testkit::PgDatabase::create().await;
                    let store = warden_store::Store::open(db.url(), super::test_key()).await.unwrap();
                    assert_eq!(store.backend(), warden_store::Backend::Postgres);
                    super::$name(store.clone()).await;
                    store.close().await;
                    drop(db);
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_are_idempotent_and_data_survives_reopen,
    seeds_round_trip_sealed,
    wrong_master_key_is_refused,
    tampered_or_moved_seed_does_not_open,
    one_operator_per_store,
    duplicate_account_name_conflicts_and_writes_nothing,
    dropped_transaction_leaves_nothing,
    accounts_and_users_crud,
    delete_account_removes_its_users,
    jwt_migrations_are_recorded_once,
    settings_are_upserted_and_the_seal_check_is_protected,
    ledger_chains_and_verifies,
    ledger_detects_edited_rows,
    ledger_detects_removed_rows,
    ledger_detects_inserted_rows,
    outbox_enqueue_pending_and_marks,
    relay_reads_and_marks_in_batches,
    concurrent_writers_keep_the_chain,
);

/// A direct connection to the store's database, bypassing the store (to tamper with rows).
async fn raw(store: &Store) -> sqlx::AnyConnection {
    warden_testkit::install_sqlx_drivers();
    sqlx::AnyConnection::connect(store.url_redacted())
        .await
        .unwrap()
}

async fn exec(store: &Store, sql: &str) -> u64 {
    let mut conn = raw(store).await;
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    done.rows_affected()
}

fn operator() -> OperatorRow {
    OperatorRow {
        public_key: "OOPERATOR1".into(),
        name: "acme".into(),
        signing_key: "OSIGNING1".into(),
        system_account: "ASYS1".into(),
        jwt: "eyJ.operator.jwt".into(),
        created_at: 100,
        updated_at: 100,
    }
}

fn account(public_key: &str, name: &str) -> AccountRow {
    AccountRow {
        public_key: public_key.into(),
        operator: "OOPERATOR1".into(),
        name: name.into(),
        spec: json!({ "limits": { "conn": -1 }, "exports": [] }),
        jwt: format!("eyJ.account.{name}"),
        created_at: 200,
        updated_at: 200,
    }
}

fn user(public_key: &str, account: &str, name: &str) -> UserRow {
    UserRow {
        public_key: public_key.into(),
        account: account.into(),
        name: name.into(),
        spec: json!({ "pub": { "allow": ["a.>"] } }),
        jwt: format!("eyJ.user.{name}"),
        signing_key: None,
        revoked_at: None,
        created_at: 300,
        updated_at: 300,
    }
}

fn event(action: &str, key: &str, n: i64) -> NewEvent {
    NewEvent {
        actor: "test".into(),
        action: action.into(),
        object_kind: "account".into(),
        object_key: key.into(),
        summary: json!({ "n": n, "nested": { "b": 2, "a": 1 } }),
    }
}

/// A realistic user seed: "SU" + 56 base32 characters.
const USER_SEED: &str = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";

async fn with_operator(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_operator(&operator()).await.unwrap();
    tx.commit().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn migrations_are_idempotent_and_data_survives_reopen(store: Store) {
    with_operator(&store).await;
    for _ in 0..2 {
        let again = Store::open(store.url_redacted(), test_key()).await.unwrap();
        assert_eq!(again.operator().await.unwrap(), Some(operator()));
        assert_eq!(again.counts().await.unwrap().operators, 1);
        again.close().await;
    }
}

async fn seeds_round_trip_sealed(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.put_seed("UUSER1", "user", USER_SEED).await.unwrap();
    assert_eq!(tx.seed("UUSER1").await.unwrap().as_str(), USER_SEED);
    assert!(tx.has_seed("UUSER1").await.unwrap());
    tx.commit().await.unwrap();

    assert_eq!(store.seed("UUSER1").await.unwrap().as_str(), USER_SEED);
    assert_eq!(store.counts().await.unwrap().nkeys, 1);

    // Stored as a v1 envelope, never as the seed.
    let mut conn = raw(&store).await;
    let sealed: String = sqlx::query_scalar("SELECT sealed_seed FROM nkeys WHERE public_key = $1")
        .bind("UUSER1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(sealed.starts_with("v1:"), "{sealed}");
    assert!(!sealed.contains(USER_SEED));

    let mut tx = store.begin().await.unwrap();
    let err = tx.put_seed("UUSER1", "user", USER_SEED).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(!err.to_string().contains(USER_SEED));
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    tx.delete_seed("UUSER1").await.unwrap();
    let err = tx.delete_seed("UUSER1").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    tx.commit().await.unwrap();
    let err = store.seed("UUSER1").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(!store.has_seed("UUSER1").await.unwrap());
}

async fn wrong_master_key_is_refused(store: Store) {
    let err = Store::open(store.url_redacted(), MasterKey::from_bytes([8; 32]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongMasterKey), "{err}");
    // The right key still works.
    Store::open(store.url_redacted(), test_key())
        .await
        .unwrap()
        .close()
        .await;
}

async fn tampered_or_moved_seed_does_not_open(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.put_seed("UUSER1", "user", USER_SEED).await.unwrap();
    tx.put_seed("UUSER2", "user", "SUOTHER").await.unwrap();
    tx.commit().await.unwrap();

    // Flip one character of the ciphertext.
    let mut conn = raw(&store).await;
    let sealed: String = sqlx::query_scalar("SELECT sealed_seed FROM nkeys WHERE public_key = $1")
        .bind("UUSER1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut chars: Vec<char> = sealed.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    sqlx::query("UPDATE nkeys SET sealed_seed = $1 WHERE public_key = $2")
        .bind(&tampered)
        .bind("UUSER1")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store.seed("UUSER1").await.unwrap_err();
    assert!(matches!(err, StoreError::Seal(_)), "{err}");
    assert!(err.to_string().contains("UUSER1"), "{err}");
    assert!(!err.to_string().contains(USER_SEED));

    // A valid envelope moved to another row does not open either (the AAD is the public key).
    sqlx::query("UPDATE nkeys SET sealed_seed = $1 WHERE public_key = $2")
        .bind(&sealed)
        .bind("UUSER2")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let err = store.seed("UUSER2").await.unwrap_err();
    assert!(matches!(err, StoreError::Seal(_)), "{err}");
}

async fn one_operator_per_store(store: Store) {
    assert_eq!(store.operator().await.unwrap(), None);
    with_operator(&store).await;
    let mut tx = store.begin().await.unwrap();
    let mut second = operator();
    second.public_key = "OOPERATOR2".into();
    second.name = "other".into();
    let err = tx.insert_operator(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = tx.update_operator(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    let mut updated = operator();
    updated.jwt = "eyJ.operator.v2".into();
    updated.updated_at = 150;
    tx.update_operator(&updated).await.unwrap();
    assert_eq!(tx.operator().await.unwrap(), Some(updated.clone()));
    tx.commit().await.unwrap();
    assert_eq!(store.operator().await.unwrap(), Some(updated));
}

async fn duplicate_account_name_conflicts_and_writes_nothing(store: Store) {
    with_operator(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_account(&account("AHUB1", "hub")).await.unwrap();
    tx.commit().await.unwrap();
    let before = store.counts().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.put_seed("AHUB2", "account", "SAHUB2SEED").await.unwrap();
    tx.append_event(&event("account.create", "AHUB2", 1))
        .await
        .unwrap();
    let err = tx
        .insert_account(&account("AHUB2", "hub"))
        .await
        .unwrap_err();
    match &err {
        StoreError::Conflict { what } => assert!(what.contains("\"hub\""), "{what}"),
        other => panic!("expected Conflict, got {other}"),
    }
    drop(tx); // the caller gives up: nothing of the transaction remains
    assert_eq!(store.counts().await.unwrap(), before);
    assert_eq!(store.account("AHUB2").await.unwrap(), None);

    // Same public key under another name, and an unknown operator.
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .insert_account(&account("AHUB1", "hub2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let mut orphan = account("AORPHAN", "orphan");
    orphan.operator = "ONOBODY".into();
    let err = tx.insert_account(&orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    drop(tx);
    assert_eq!(store.counts().await.unwrap(), before);
}

async fn dropped_transaction_leaves_nothing(store: Store) {
    {
        let mut tx = store.begin().await.unwrap();
        tx.insert_operator(&operator()).await.unwrap();
        tx.insert_account(&account("AHUB1", "hub")).await.unwrap();
        tx.insert_user(&user("UUSER1", "AHUB1", "alice"))
            .await
            .unwrap();
        tx.put_seed("UUSER1", "user", USER_SEED).await.unwrap();
        tx.record_migration("m1", "first").await.unwrap();
        tx.append_event(&event("x", "y", 1)).await.unwrap();
        tx.enqueue("resolver.update", "jwt").await.unwrap();
        // Visible inside the transaction...
        assert_eq!(tx.users("AHUB1").await.unwrap().len(), 1);
    }
    // ...and gone once it is dropped.
    assert_eq!(store.counts().await.unwrap(), Default::default());
    assert!(store.migrations_applied().await.unwrap().is_empty());

    let mut tx = store.begin().await.unwrap();
    tx.insert_operator(&operator()).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.operator().await.unwrap(), None);
}

async fn accounts_and_users_crud(store: Store) {
    with_operator(&store).await;
    let mut tx = store.begin().await.unwrap();
    for (key, name) in [("AZED", "zed"), ("AHUB", "hub"), ("AMID", "mid")] {
        tx.insert_account(&account(key, name)).await.unwrap();
    }
    for (key, name) in [("UBOB", "bob"), ("UALICE", "alice")] {
        tx.insert_user(&user(key, "AHUB", name)).await.unwrap();
    }
    // The same user name in another account is fine.
    tx.insert_user(&user("UALICE2", "AMID", "alice"))
        .await
        .unwrap();
    let err = tx
        .insert_user(&user("UALICE3", "AHUB", "alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = tx
        .insert_user(&user("UNOACC", "ANOBODY", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    tx.commit().await.unwrap();

    let names: Vec<_> = store
        .accounts("OOPERATOR1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["hub", "mid", "zed"]);
    let names: Vec<_> = store
        .users("AHUB")
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(
        store.account_by_name("OOPERATOR1", "hub").await.unwrap(),
        Some(account("AHUB", "hub"))
    );
    assert_eq!(
        store.user_by_name("AHUB", "alice").await.unwrap(),
        Some(user("UALICE", "AHUB", "alice"))
    );
    assert_eq!(store.user_by_name("AMID", "bob").await.unwrap(), None);

    // Updates.
    let mut tx = store.begin().await.unwrap();
    let mut hub = account("AHUB", "hub");
    hub.spec = json!({ "limits": { "conn": 10 } });
    hub.jwt = "eyJ.account.hub.v2".into();
    hub.updated_at = 250;
    tx.update_account(&hub).await.unwrap();
    let mut renamed = account("AZED", "mid");
    let err = tx.update_account(&renamed).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    renamed.public_key = "ANOBODY".into();
    let err = tx.update_account(&renamed).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");

    let mut alice = user("UALICE", "AHUB", "alice");
    alice.revoked_at = Some(400);
    alice.signing_key = Some("ASIGNER".into());
    alice.updated_at = 400;
    tx.update_user(&alice).await.unwrap();
    let err = tx
        .update_user(&user("UNOBODY", "AHUB", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    // Uncommitted changes are visible to the transaction, not outside it.
    assert_eq!(tx.account("AHUB").await.unwrap(), Some(hub.clone()));
    assert_eq!(
        store.account("AHUB").await.unwrap(),
        Some(account("AHUB", "hub"))
    );
    tx.commit().await.unwrap();
    assert_eq!(store.account("AHUB").await.unwrap(), Some(hub));
    assert_eq!(store.user("UALICE").await.unwrap(), Some(alice));

    let mut tx = store.begin().await.unwrap();
    tx.delete_user("UBOB").await.unwrap();
    let err = tx.delete_user("UBOB").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    tx.commit().await.unwrap();
    assert_eq!(store.users("AHUB").await.unwrap().len(), 1);
}

async fn delete_account_removes_its_users(store: Store) {
    with_operator(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_account(&account("ADEV1", "device-1"))
        .await
        .unwrap();
    tx.insert_account(&account("ADEV2", "device-2"))
        .await
        .unwrap();
    tx.insert_user(&user("UA", "ADEV1", "a")).await.unwrap();
    tx.insert_user(&user("UB", "ADEV1", "b")).await.unwrap();
    tx.insert_user(&user("UC", "ADEV2", "c")).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.delete_account("ADEV1").await.unwrap();
    let err = tx.delete_account("ADEV1").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    tx.commit().await.unwrap();

    assert_eq!(store.account("ADEV1").await.unwrap(), None);
    assert!(store.users("ADEV1").await.unwrap().is_empty());
    assert_eq!(store.users("ADEV2").await.unwrap().len(), 1);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.accounts, counts.users), (1, 1));
}

async fn jwt_migrations_are_recorded_once(store: Store) {
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.migration_applied("0001-hub").await.unwrap());
    tx.record_migration("0001-hub", "create the hub account")
        .await
        .unwrap();
    assert!(tx.migration_applied("0001-hub").await.unwrap());
    let err = tx.record_migration("0001-hub", "again").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    tx.record_migration("0002-svc", "service user")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ids: Vec<_> = store
        .migrations_applied()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.id, m.description))
        .collect();
    assert_eq!(
        ids,
        [
            ("0001-hub".to_owned(), "create the hub account".to_owned()),
            ("0002-svc".to_owned(), "service user".to_owned())
        ]
    );
}

async fn settings_are_upserted_and_the_seal_check_is_protected(store: Store) {
    assert_eq!(store.meta("naming").await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    tx.set_meta("naming", r#"{"style":"kebab"}"#).await.unwrap();
    tx.set_meta("service_prefix", "warden").await.unwrap();
    tx.set_meta("service_prefix", "svc").await.unwrap();
    assert_eq!(
        tx.meta("service_prefix").await.unwrap().as_deref(),
        Some("svc")
    );
    let err = tx.set_meta("seal_check", "x").await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    tx.commit().await.unwrap();
    assert_eq!(
        store.meta("service_prefix").await.unwrap().as_deref(),
        Some("svc")
    );
    assert_eq!(
        store.meta("naming").await.unwrap().as_deref(),
        Some(r#"{"style":"kebab"}"#)
    );
    // The store still opens with its key.
    Store::open(store.url_redacted(), test_key())
        .await
        .unwrap()
        .close()
        .await;
}

/// Appends `n` events, one transaction each; returns them as stored.
async fn append_events(store: &Store, n: i64) -> Vec<warden_store::LedgerEvent> {
    for i in 1..=n {
        let mut tx = store.begin().await.unwrap();
        let seq = tx
            .append_event(&event("account.update", &format!("A{i}"), i))
            .await
            .unwrap();
        assert_eq!(seq, i);
        tx.commit().await.unwrap();
    }
    store.ledger(0, 1000).await.unwrap()
}

async fn ledger_chains_and_verifies(store: Store) {
    let report = store.verify_ledger().await.unwrap();
    assert_eq!((report.events, report.first_break), (0, None));

    let events = append_events(&store, 5).await;
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].prev_hash, GENESIS_HASH);
    for pair in events.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
    assert_eq!(
        events[2].summary,
        json!({ "n": 3, "nested": { "a": 1, "b": 2 } })
    );
    assert_eq!(events[2].object_key, "A3");
    let report = store.verify_ledger().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 5);

    // Paging.
    let page: Vec<_> = store
        .ledger(2, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, [3, 4]);
    assert_eq!(store.counts().await.unwrap().ledger_events, 5);
}

async fn ledger_detects_edited_rows(store: Store) {
    let events = append_events(&store, 5).await;

    exec(
        &store,
        r#"UPDATE ledger SET summary = '{"n":999}' WHERE seq = 3"#,
    )
    .await;
    let report = store.verify_ledger().await.unwrap();
    let brk = report.first_break.expect("edited summary detected");
    assert_eq!(brk.seq, 3, "{}", brk.problem);
    assert!(brk.problem.contains('3'), "{}", brk.problem);
    assert_eq!(report.events, 2);

    // Restore, then edit the actor of another row.
    let original = canonical_json(&events[2].summary);
    let mut conn = raw(&store).await;
    sqlx::query("UPDATE ledger SET summary = $1 WHERE seq = 3")
        .bind(&original)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(store.verify_ledger().await.unwrap().is_intact());

    exec(&store, "UPDATE ledger SET actor = 'mallory' WHERE seq = 2").await;
    let brk = store.verify_ledger().await.unwrap().first_break.unwrap();
    assert_eq!(brk.seq, 2, "{}", brk.problem);
    exec(&store, "UPDATE ledger SET actor = 'test' WHERE seq = 2").await;
    assert!(store.verify_ledger().await.unwrap().is_intact());

    // Editing the last row is caught too (no successor to notice).
    exec(&store, "UPDATE ledger SET at = at + 1 WHERE seq = 5").await;
    assert_eq!(
        store
            .verify_ledger()
            .await
            .unwrap()
            .first_break
            .unwrap()
            .seq,
        5
    );
}

async fn ledger_detects_removed_rows(store: Store) {
    append_events(&store, 5).await;
    assert_eq!(exec(&store, "DELETE FROM ledger WHERE seq = 3").await, 1);
    let report = store.verify_ledger().await.unwrap();
    let brk = report.first_break.expect("removal detected");
    assert_eq!(brk.seq, 3, "{}", brk.problem);
    assert!(brk.problem.contains("missing"), "{}", brk.problem);
    assert_eq!(report.events, 2);

    // Removing the first row.
    exec(&store, "DELETE FROM ledger WHERE seq = 1").await;
    assert_eq!(
        store
            .verify_ledger()
            .await
            .unwrap()
            .first_break
            .unwrap()
            .seq,
        1
    );
}

async fn ledger_detects_inserted_rows(store: Store) {
    let events = append_events(&store, 4).await;

    // A forged event that hashes correctly but does not chain: caught by prev_hash.
    let forged_prev = GENESIS_HASH.to_owned();
    let summary = r#"{"forged":true}"#;
    let hash = event_hash(5, 1, "mallory", "x", "account", "AX", summary, &forged_prev);
    insert_ledger_row(&store, 5, "mallory", summary, &forged_prev, &hash).await;
    let brk = store.verify_ledger().await.unwrap().first_break.unwrap();
    assert_eq!(brk.seq, 5, "{}", brk.problem);
    exec(&store, "DELETE FROM ledger WHERE seq = 5").await;
    assert!(store.verify_ledger().await.unwrap().is_intact());

    // A row slipped in below the chain.
    insert_ledger_row(&store, 0, "mallory", "{}", GENESIS_HASH, "00").await;
    let brk = store.verify_ledger().await.unwrap().first_break.unwrap();
    assert_eq!(brk.seq, 0, "{}", brk.problem);
    exec(&store, "DELETE FROM ledger WHERE seq = 0").await;

    // Row 3 replaced by a forgery chained to row 2 and hashing correctly: row 4 notices.
    exec(&store, "DELETE FROM ledger WHERE seq = 3").await;
    let prev = &events[1].hash;
    let hash = event_hash(3, 1, "mallory", "x", "account", "AX", summary, prev);
    insert_ledger_row(&store, 3, "mallory", summary, prev, &hash).await;
    let brk = store.verify_ledger().await.unwrap().first_break.unwrap();
    assert_eq!(brk.seq, 4, "{}", brk.problem);
}

async fn insert_ledger_row(
    store: &Store,
    seq: i64,
    actor: &str,
    summary: &str,
    prev_hash: &str,
    hash: &str,
) {
    let mut conn = raw(store).await;
    sqlx::query(
        "INSERT INTO ledger (seq, at, actor, action, object_kind, object_key, summary, \
         prev_hash, hash) VALUES ($1, 1, $2, 'x', 'account', 'AX', $3, $4, $5)",
    )
    .bind(seq)
    .bind(actor)
    .bind(summary)
    .bind(prev_hash)
    .bind(hash)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

async fn outbox_enqueue_pending_and_marks(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let ids = [
        tx.enqueue("resolver.update", "jwt-1").await.unwrap(),
        tx.enqueue("resolver.update", "jwt-2").await.unwrap(),
        tx.enqueue("resolver.delete", "AKEY").await.unwrap(),
    ];
    assert_eq!(ids, [1, 2, 3]);
    assert!(store.pending_outbox(i64::MAX, 10).await.unwrap().is_empty());
    tx.commit().await.unwrap();

    let now = a_second_from_now();
    let pending = store.pending_outbox(now, 10).await.unwrap();
    let got: Vec<_> = pending.iter().map(|r| (r.id, r.payload.as_str())).collect();
    assert_eq!(got, [(1, "jwt-1"), (2, "jwt-2"), (3, "AKEY")]);
    assert!(
        pending
            .iter()
            .all(|r| r.attempts == 0 && r.delivered_at.is_none())
    );
    assert_eq!(store.pending_outbox(now, 2).await.unwrap().len(), 2);
    assert_eq!(store.counts().await.unwrap().outbox_pending, 3);
    // From an id on: the next batch while the one before it is in flight.
    let after: Vec<i64> = store
        .pending_outbox_after(now, 1, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(after, [2, 3]);
    assert!(
        store
            .pending_outbox_after(now, 3, 10)
            .await
            .unwrap()
            .is_empty()
    );

    store.mark_delivered(1, now).await.unwrap();
    store
        .mark_failed(2, "nats: no responders", now + 60)
        .await
        .unwrap();
    let ids: Vec<_> = store
        .pending_outbox(now, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [3]);
    let later = store.pending_outbox(now + 60, 10).await.unwrap();
    assert_eq!(later.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(later[0].attempts, 1);
    assert_eq!(later[0].last_error.as_deref(), Some("nats: no responders"));
    store.mark_failed(2, "again", now + 120).await.unwrap();
    let row = store.outbox_message(2).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.next_attempt_at), (2, now + 120));
    assert_eq!(
        store.outbox_message(1).await.unwrap().unwrap().delivered_at,
        Some(now)
    );

    let err = store.mark_delivered(99, now).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = store.mark_failed(99, "x", now).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(store.counts().await.unwrap().outbox_pending, 2);

    // Ids continue after the highest one.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.enqueue("t", "p").await.unwrap(), 4);
    tx.commit().await.unwrap();
}

/// What the relay reads and writes per batch, across more than one `IN (…)` chunk: every
/// existing account's current JWT once (missing keys left out), and each delivered row
/// marked with its own reply, nothing else touched.
async fn relay_reads_and_marks_in_batches(store: Store) {
    with_operator(&store).await;
    let n = warden_store::relay::KEYS_PER_QUERY * 2 + 7;
    let mut tx = store.begin().await.unwrap();
    let mut keys = Vec::new();
    for i in 0..n {
        let key = format!("ABATCH{i:06}");
        let mut row = account(&key, &format!("BATCH{i}"));
        row.jwt = format!("jwt-of-{i}");
        tx.insert_account(&row).await.unwrap();
        keys.push(key);
        tx.enqueue("resolver.update", &format!("row-{i}"))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    // Every third key asked for does not exist; one key is asked twice.
    let mut asked: Vec<String> = keys.clone();
    asked.extend((0..n / 3).map(|i| format!("AMISSING{i:06}")));
    asked.push(keys[0].clone());
    let mut got = store.account_jwts_by_key(&asked).await.unwrap();
    got.sort();
    got.dedup();
    let mut want: Vec<(String, String)> = (0..n)
        .map(|i| (keys[i].clone(), format!("jwt-of-{i}")))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(store.account_jwts_by_key(&[]).await.unwrap().is_empty());

    // Two replies shared by many rows, one row with a reply of its own, and the last row
    // left pending.
    let now = a_second_from_now();
    let pending = store.pending_outbox(now, n as i64).await.unwrap();
    assert_eq!(pending.len(), n);
    let delivered: Vec<(i64, String)> = pending[..n - 1]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let reply = match i {
                5 => "409 of its own".to_string(),
                i if i % 2 == 0 => "200 updated (n1)".to_string(),
                _ => "published".to_string(),
            };
            (r.id, reply)
        })
        .collect();
    store.mark_delivered_many(&delivered, now).await.unwrap();
    for (id, reply) in &delivered {
        let row = store.outbox_message(*id).await.unwrap().unwrap();
        assert_eq!(row.delivered_at, Some(now), "row {id}");
        assert_eq!(
            store.outbox_reply(*id).await.unwrap().as_deref(),
            Some(reply.as_str())
        );
    }
    let left = store.pending_outbox(now, n as i64).await.unwrap();
    assert_eq!(
        left.iter().map(|r| r.id).collect::<Vec<_>>(),
        [pending[n - 1].id]
    );
    store.mark_delivered_many(&[], now).await.unwrap();
}

fn a_second_from_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 1
}

async fn concurrent_writers_keep_the_chain(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            tx.put_seed(&format!("UCONC{i}"), "user", "SUSEED")
                .await
                .unwrap();
            tx.append_event(&event("user.create", &format!("UCONC{i}"), i))
                .await
                .unwrap();
            tx.enqueue("resolver.update", &format!("jwt-{i}"))
                .await
                .unwrap();
            tokio::task::yield_now().await;
            tx.append_event(&event("user.update", &format!("UCONC{i}"), i))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = store.verify_ledger().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 16);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.nkeys, counts.outbox_pending), (8, 8));
}
