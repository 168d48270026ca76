//! The rooms tables of the chat gateway, each test run on SQLite and on PostgreSQL: ids,
//! rules and the exact cap under concurrent writers, invitations, and the message cursor.

use std::collections::BTreeSet;

use warden_store::rooms::{MessageQuery, NewRoom, PutRule, RoomRuleRow};
use warden_store::{KeptConnection, MasterKey, Store, StoreError};

fn test_key() -> MasterKey {
    MasterKey::from_bytes([9; 32])
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
                    super::$name(store.clone()).await;
                    store.close().await;
                    drop(db);
                }
            )*
        }
    };
}

on_both_backends!(
    rooms_get_fresh_ids_and_delete_with_their_rows,
    rules_add_replace_delete_and_invitations,
    rule_cap_is_exact_under_concurrent_writers,
    message_cursor_newest_first_resume_and_time_range,
    concurrent_messages_get_distinct_consecutive_ids,
    a_kept_connection_commits_rolls_back_and_reconnects,
);

fn new_room(name: &str, cap: i64) -> NewRoom {
    NewRoom {
        name: name.into(),
        kind: "group".into(),
        owner_user: "u-owner".into(),
        owner_entity: "e-owner".into(),
        level_admin: 500,
        rule_cap: cap,
    }
}

async fn create(store: &Store, name: &str, cap: i64) -> i64 {
    let mut tx = store.begin().await.unwrap();
    let room = tx.insert_room(&new_room(name, cap)).await.unwrap();
    tx.commit().await.unwrap();
    room.id
}

fn rule(room_id: i64, who: &str, perms: &str) -> RoomRuleRow {
    RoomRuleRow {
        room_id,
        entity_uuid: who.into(),
        permissions: perms.into(),
        level: 0,
        updated_at: 1,
    }
}

async fn put(store: &Store, r: &RoomRuleRow) -> PutRule {
    let mut tx = store.begin().await.unwrap();
    let out = tx.put_room_rule(r).await.unwrap();
    tx.commit().await.unwrap();
    out
}

async fn rooms_get_fresh_ids_and_delete_with_their_rows(store: Store) {
    let a = create(&store, "a", 10).await;
    let b = create(&store, "b", 10).await;
    assert_eq!(b, a + 1);
    let room = store.room(b).await.unwrap().unwrap();
    assert_eq!(room.name, "b");
    assert_eq!(room.rule_cap, 10);
    assert_eq!(room.last_message_id, 0);

    put(&store, &rule(b, "u-1", "rw")).await;
    let mut tx = store.begin().await.unwrap();
    tx.invite_to_room(b, "u-1").await.unwrap();
    tx.append_room_message(b, "u-1", "e-1", "hello", 1_000)
        .await
        .unwrap();
    tx.delete_room(b).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.room(b).await.unwrap().is_none());
    assert!(store.room_rules(b).await.unwrap().is_empty());
    assert!(
        store
            .room_invitations("u-1", "pending")
            .await
            .unwrap()
            .is_empty()
    );

    // Ids are never reused, even the newest one's after its deletion.
    let c = create(&store, "c", 10).await;
    assert_eq!(c, b + 1);

    let mut tx = store.begin().await.unwrap();
    let err = tx.delete_room(b).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    drop(tx);

    // A dropped transaction leaves nothing behind.
    let mut tx = store.begin().await.unwrap();
    let ghost = tx.insert_room(&new_room("ghost", 10)).await.unwrap();
    drop(tx);
    assert!(store.room(ghost.id).await.unwrap().is_none());
}

async fn rules_add_replace_delete_and_invitations(store: Store) {
    let id = create(&store, "r", 10).await;
    assert_eq!(put(&store, &rule(id, "u-1", "r")).await, PutRule::Added);
    assert_eq!(put(&store, &rule(id, "e-1", "rw")).await, PutRule::Added);
    assert_eq!(
        put(&store, &rule(id, "u-1", "rwa")).await,
        PutRule::Replaced
    );
    let rules = store.room_rules(id).await.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        rules
            .iter()
            .find(|r| r.entity_uuid == "u-1")
            .unwrap()
            .permissions,
        "rwa"
    );

    let mut tx = store.begin().await.unwrap();
    tx.invite_to_room(id, "u-1").await.unwrap();
    tx.invite_to_room(id, "u-1").await.unwrap(); // idempotent
    tx.commit().await.unwrap();
    let pending = store.room_invitations("u-1", "pending").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].room_id, id);

    let mut tx = store.begin().await.unwrap();
    tx.answer_room_invitation(id, "u-1", "accepted")
        .await
        .unwrap();
    let missing = tx.answer_room_invitation(id, "u-nobody", "accepted").await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    tx.commit().await.unwrap();
    assert!(
        store
            .room_invitations("u-1", "pending")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .room_invitations("u-1", "accepted")
            .await
            .unwrap()
            .len(),
        1
    );

    // The listing finds rooms by owner, owner entity and rule.
    let other = create(&store, "other", 10).await;
    let by_rule: Vec<i64> = store
        .rooms_touching("u-1", "e-none", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_rule, vec![id]);
    let by_entity: Vec<i64> = store
        .rooms_touching("u-x", "e-owner", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_entity, vec![id, other]);
    let paged = store
        .rooms_touching("u-x", "e-owner", id, 100)
        .await
        .unwrap();
    assert_eq!(paged.len(), 1, "after the cursor");

    let mut tx = store.begin().await.unwrap();
    tx.delete_room_rule(id, "u-1").await.unwrap();
    let again = tx.delete_room_rule(id, "u-1").await;
    assert!(matches!(again, Err(StoreError::NotFound { .. })));
    tx.commit().await.unwrap();
    assert_eq!(store.room_rules(id).await.unwrap().len(), 1);
    assert!(
        store
            .room_invitations("u-1", "accepted")
            .await
            .unwrap()
            .is_empty(),
        "the rule's invitation goes with it"
    );
}

async fn rule_cap_is_exact_under_concurrent_writers(store: Store) {
    let id = create(&store, "capped", 10).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            put(&store, &rule(id, &format!("u-{i}"), "r")).await
        }));
    }
    let mut added = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            PutRule::Added => added += 1,
            PutRule::CapReached { cap } => {
                assert_eq!(cap, 10);
                refused += 1;
            }
            PutRule::Replaced => panic!("nothing to replace"),
        }
    }
    assert_eq!((added, refused), (10, 10));
    let rules = store.room_rules(id).await.unwrap();
    assert_eq!(rules.len(), 10, "exactly the cap");
    // A full room still lets its rules be replaced.
    let present = rules[0].entity_uuid.clone();
    assert_eq!(
        put(&store, &rule(id, &present, "rw")).await,
        PutRule::Replaced
    );
    // A cap set per room.
    let one = create(&store, "one", 1).await;
    assert_eq!(put(&store, &rule(one, "u-a", "r")).await, PutRule::Added);
    assert_eq!(
        put(&store, &rule(one, "u-b", "r")).await,
        PutRule::CapReached { cap: 1 }
    );
}

async fn message_cursor_newest_first_resume_and_time_range(store: Store) {
    let id = create(&store, "chat", 10).await;
    let other = create(&store, "elsewhere", 10).await;
    for i in 1..=30 {
        let mut tx = store.begin().await.unwrap();
        let m = tx
            .append_room_message(id, "u-1", "e-1", &format!("m{i}"), 1_000 * i)
            .await
            .unwrap();
        assert_eq!(m.id, i);
        tx.append_room_message(other, "u-2", "e-2", "noise", 1_000 * i)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let q = |before, after, since_ms, until_ms, limit, newest_first| MessageQuery {
        before,
        after,
        since_ms,
        until_ms,
        limit,
        newest_first,
    };
    let ids = |rows: Vec<warden_store::MessageRow>| rows.iter().map(|m| m.id).collect::<Vec<_>>();

    let page1 = store
        .room_messages(id, &q(None, None, None, None, 10, true))
        .await
        .unwrap();
    assert_eq!(ids(page1.clone()), (21..=30).rev().collect::<Vec<_>>());
    assert_eq!(page1[0].body, "m30");
    let page2 = store
        .room_messages(id, &q(Some(21), None, None, None, 10, true))
        .await
        .unwrap();
    assert_eq!(ids(page2), (11..=20).rev().collect::<Vec<_>>());
    let resume = store
        .room_messages(id, &q(None, Some(25), None, None, 100, false))
        .await
        .unwrap();
    assert_eq!(ids(resume), vec![26, 27, 28, 29, 30]);
    let range = store
        .room_messages(id, &q(None, None, Some(5_000), Some(8_000), 100, true))
        .await
        .unwrap();
    assert_eq!(ids(range), vec![7, 6, 5]);
    assert_eq!(store.room(id).await.unwrap().unwrap().last_message_id, 30);

    let mut tx = store.begin().await.unwrap();
    let gone = tx.append_room_message(9_999, "u", "e", "x", 1).await;
    assert!(matches!(gone, Err(StoreError::NotFound { .. })));
}

async fn concurrent_messages_get_distinct_consecutive_ids(store: Store) {
    let id = create(&store, "busy", 10).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            let m = tx
                .append_room_message(id, "u", "e", &format!("{i}"), i)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            m.id
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        assert!(seen.insert(t.await.unwrap()), "ids are distinct");
    }
    assert_eq!(seen, (1..=40).collect::<BTreeSet<i64>>());
}

/// A writer's own connection: what it commits is seen by the pool's connections, a
/// transaction dropped on it leaves nothing (the next one starts on a new connection, so
/// the dropped one's locks do not hold others up), other writers interleave with it, and
/// after `discard` it connects anew.
async fn a_kept_connection_commits_rolls_back_and_reconnects(store: Store) {
    let id = create(&store, "kept", 10).await;
    let mut kept = KeptConnection::new();
    // One message in a transaction on the kept connection (`None`: a pooled one), ended
    // as `end` says; its id.
    async fn append(
        store: &Store,
        kept: Option<&mut KeptConnection>,
        room: i64,
        body: &str,
        end: &str,
    ) -> i64 {
        let mut tx = match kept {
            Some(k) => store.begin_on(k).await.unwrap(),
            None => store.begin().await.unwrap(),
        };
        let m = tx
            .append_room_message(room, "u", "e", body, 1)
            .await
            .unwrap();
        match end {
            "commit" => tx.commit().await.unwrap(),
            "rollback" => tx.rollback().await.unwrap(),
            _ => drop(tx),
        }
        m.id
    }
    assert_eq!(
        append(&store, Some(&mut kept), id, "one", "commit").await,
        1
    );
    assert_eq!(store.room(id).await.unwrap().unwrap().last_message_id, 1);

    // Dropped uncommitted: nothing of it stays.
    append(&store, Some(&mut kept), id, "dropped", "drop").await;
    let second = append(&store, Some(&mut kept), id, "two", "commit").await;
    assert_eq!(second, 2, "the dropped message took no id");

    // A pooled writer between two of the kept connection's transactions, and one rolled
    // back explicitly.
    append(&store, None, id, "pooled", "commit").await;
    append(&store, Some(&mut kept), id, "rolled back", "rollback").await;
    let third = append(&store, Some(&mut kept), id, "three", "commit").await;
    assert_eq!(
        third, 4,
        "the kept connection sees the pooled writer's message"
    );

    kept.discard();
    assert!(format!("{kept:?}").contains("connected: false"));
    assert_eq!(
        append(&store, Some(&mut kept), id, "four", "commit").await,
        5
    );
    assert!(format!("{kept:?}").contains("connected: true"));
    let bodies: Vec<String> = store
        .room_messages(
            id,
            &MessageQuery {
                before: None,
                after: None,
                since_ms: None,
                until_ms: None,
                limit: 10,
                newest_first: false,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["one", "two", "pooled", "three", "four"]);
}
