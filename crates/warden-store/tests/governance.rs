//! The governance tables, each test run on SQLite and on PostgreSQL: directory users and
//! managers, roles and tasks, the relationship adjacency list (one lookup per fact,
//! expired rows invisible and then removed), proposals (numbering, closing once,
//! filters), the tasks a user holds, and applying a directory sync plan (idempotent,
//! one source never touching another's records) with the snapshot a sync diffs against.

use nats_jwt::Subject;
use warden_core::directory::{NextRole, NextUser, SyncPlan};
use warden_core::governance::{
    Address, Change, ObjectType, ProposalKind, ProposalStatus, Relationship, TaskGrants,
};
use warden_store::governance::{DirTaskRow, NewProposal, ProposalFilter, WARDEN_SOURCE};
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

on_both_backends!(
    users_roles_tasks_and_relationships,
    expired_relationships_are_invisible_then_removed,
    proposals_number_close_once_and_filter,
    sync_plan_is_idempotent_and_keeps_sources_apart,
);

fn user(id: &str, manager: Option<&str>) -> NextUser {
    NextUser {
        id: id.into(),
        name: Some(format!("User {id}")),
        manager: manager.map(str::to_string),
        ..Default::default()
    }
}

fn s(x: &str) -> Subject {
    Subject::new(x).unwrap()
}

fn task(name: &str, account: &str, allow_pub: &str) -> DirTaskRow {
    DirTaskRow {
        name: name.into(),
        account: account.into(),
        grants: TaskGrants {
            allow_pub: vec![s(allow_pub)],
            ..Default::default()
        },
        description: None,
        source: WARDEN_SOURCE.into(),
        created_at: 0,
        updated_at: 0,
    }
}

async fn users_roles_tasks_and_relationships(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user(&user("boss", None), WARDEN_SOURCE)
        .await
        .unwrap();
    tx.insert_dir_user(&user("alice", Some("boss")), WARDEN_SOURCE)
        .await
        .unwrap();
    let dup = tx
        .insert_dir_user(&user("alice", None), WARDEN_SOURCE)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_role(
        &NextRole {
            name: "ops".into(),
            ..Default::default()
        },
        WARDEN_SOURCE,
    )
    .await
    .unwrap();
    let dup = tx
        .insert_dir_role(
            &NextRole {
                name: "ops".into(),
                ..Default::default()
            },
            WARDEN_SOURCE,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    tx.insert_dir_task(&task("pub-orders", "APP", "orders.>"))
        .await
        .unwrap();
    tx.insert_dir_task(&task("pub-billing", "BILL", "billing.>"))
        .await
        .unwrap();
    let dup = tx.insert_dir_task(&task("pub-orders", "APP", "x")).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let member = Address::role_user("ops", Relationship::Member, "alice");
    tx.put_relationship(&member, WARDEN_SOURCE, None)
        .await
        .unwrap();
    tx.put_relationship(
        &Address::role_user("ops", Relationship::Owner, "boss"),
        WARDEN_SOURCE,
        None,
    )
    .await
    .unwrap();
    tx.put_relationship(
        &Address::role_task("ops", "pub-orders"),
        WARDEN_SOURCE,
        None,
    )
    .await
    .unwrap();
    tx.put_relationship(
        &Address::role_task("ops", "pub-billing"),
        WARDEN_SOURCE,
        None,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // One lookup per fact.
    assert!(store.relationship(&member).await.unwrap().is_some());
    assert!(
        store
            .relationship(&Address::role_user("ops", Relationship::Member, "boss"))
            .await
            .unwrap()
            .is_none()
    );
    let alice = store.dir_user("alice").await.unwrap().unwrap();
    assert_eq!(alice.user.manager.as_deref(), Some("boss"));
    assert_eq!(alice.source, WARDEN_SOURCE);
    let role = store.dir_role("ops").await.unwrap().unwrap();
    assert_eq!(role.role.members, vec!["alice"]);
    assert_eq!(role.role.owners, vec!["boss"]);
    assert_eq!(role.tasks, vec!["pub-billing", "pub-orders"]);
    assert_eq!(
        store
            .related(
                ObjectType::Role,
                "ops",
                ObjectType::User,
                &[Relationship::Owner, Relationship::Member]
            )
            .await
            .unwrap(),
        vec!["alice", "boss"]
    );
    // Owner implies member: both hold the role's tasks.
    for who in ["alice", "boss"] {
        let held = store.held_tasks(who).await.unwrap();
        let names: Vec<_> = held
            .iter()
            .map(|h| (h.task.as_str(), h.account.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![("pub-billing", "BILL"), ("pub-orders", "APP")],
            "{who}"
        );
        assert!(held.iter().all(|h| h.role == "ops"));
    }
    assert!(store.held_tasks("nobody").await.unwrap().is_empty());

    // Deleting a user takes their relationships with them.
    let mut tx = store.begin().await.unwrap();
    tx.delete_dir_user("alice").await.unwrap();
    assert!(matches!(
        tx.delete_dir_user("alice").await,
        Err(StoreError::NotFound { .. })
    ));
    tx.commit().await.unwrap();
    assert!(store.relationship(&member).await.unwrap().is_none());
    assert!(
        store
            .relationships_of_user("alice")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.dir_users().await.unwrap().len(), 1);
}

async fn expired_relationships_are_invisible_then_removed(store: Store) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user(&user("u", None), WARDEN_SOURCE)
        .await
        .unwrap();
    tx.insert_dir_role(
        &NextRole {
            name: "r".into(),
            ..Default::default()
        },
        WARDEN_SOURCE,
    )
    .await
    .unwrap();
    tx.insert_dir_task(&task("t", "APP", "a.>")).await.unwrap();
    tx.put_relationship(&Address::role_task("r", "t"), WARDEN_SOURCE, None)
        .await
        .unwrap();
    let past = Address::role_user("r", Relationship::Member, "u");
    tx.put_relationship(&past, WARDEN_SOURCE, Some(now - 5))
        .await
        .unwrap();
    let future = Address::role_user("r", Relationship::Owner, "u");
    tx.put_relationship(&future, WARDEN_SOURCE, Some(now + 3600))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert!(
        store.relationship(&past).await.unwrap().is_none(),
        "expired: invisible"
    );
    let live = store.relationship(&future).await.unwrap().unwrap();
    assert_eq!(live.expires_at, Some(now + 3600));
    // Only the owner relationship (alive) grants the task now.
    assert_eq!(store.held_tasks("u").await.unwrap().len(), 1);

    let mut tx = store.begin().await.unwrap();
    let p = tx
        .insert_proposal(&NewProposal {
            kind: ProposalKind::RoleMember,
            change: Change::Add,
            address: past.clone(),
            initiator: "u".into(),
            reason: None,
            grant_expires_at: None,
            expires_at: Some(now - 1),
        })
        .await
        .unwrap();
    let gone = tx.expire_governance(now).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(gone.relationships, vec![past.clone()]);
    assert_eq!(gone.proposals, vec![p.id.clone()]);
    assert_eq!(
        store.proposal(&p.id).await.unwrap().unwrap().status,
        ProposalStatus::Expired
    );
    // A second tick finds nothing.
    let mut tx = store.begin().await.unwrap();
    let again = tx.expire_governance(now).await.unwrap();
    tx.commit().await.unwrap();
    assert!(again.relationships.is_empty() && again.proposals.is_empty());
}

async fn proposals_number_close_once_and_filter(store: Store) {
    let mut ids = Vec::new();
    for (i, who) in ["a", "b", "a"].iter().enumerate() {
        let mut tx = store.begin().await.unwrap();
        let p = tx
            .insert_proposal(&NewProposal {
                kind: ProposalKind::RoleMember,
                change: Change::Add,
                address: Address::role_user("r", Relationship::Member, &format!("u{i}")),
                initiator: who.to_string(),
                reason: Some("because".into()),
                grant_expires_at: Some(123),
                expires_at: None,
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids.push(p.id);
    }
    assert_eq!(ids, vec!["p1", "p2", "p3"]);
    let p = store.proposal("p2").await.unwrap().unwrap();
    assert_eq!(p.status, ProposalStatus::Open);
    assert_eq!(p.initiator, "b");
    assert_eq!(p.grant_expires_at, Some(123));
    assert_eq!(p.reason.as_deref(), Some("because"));

    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.open_proposals_on(
            &Address::role_user("r", Relationship::Member, "u1"),
            Change::Add
        )
        .await
        .unwrap(),
        vec!["p2"]
    );
    let closed = tx
        .close_proposal("p2", ProposalStatus::Confirmed, "owner", Some("ok"))
        .await
        .unwrap();
    assert_eq!(closed.status, ProposalStatus::Confirmed);
    assert_eq!(closed.closer.as_deref(), Some("owner"));
    assert!(closed.closed_at.is_some());
    let twice = tx
        .close_proposal("p2", ProposalStatus::Rejected, "x", None)
        .await;
    assert!(
        matches!(twice, Err(StoreError::Conflict { .. })),
        "{twice:?}"
    );
    let missing = tx
        .close_proposal("p9", ProposalStatus::Rejected, "x", None)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    tx.commit().await.unwrap();

    let open = store
        .proposals(&ProposalFilter {
            status: Some(ProposalStatus::Open),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        open.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        vec!["p1", "p3"]
    );
    let by_a = store
        .proposals(&ProposalFilter {
            initiator: Some("a".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_a.len(), 2);
    assert_eq!(
        store
            .proposals(&ProposalFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn sync_plan_is_idempotent_and_keeps_sources_apart(store: Store) {
    // A Warden-made user and role the sync must not touch.
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user(&user("local", None), WARDEN_SOURCE)
        .await
        .unwrap();
    tx.insert_dir_role(
        &NextRole {
            name: "local-role".into(),
            ..Default::default()
        },
        WARDEN_SOURCE,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let role = |name: &str, members: &[&str], owners: &[&str]| NextRole {
        name: name.into(),
        role_id: Some(format!("guid-{name}")),
        members: members.iter().map(|m| m.to_string()).collect(),
        owners: owners.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    let plan = SyncPlan {
        source: "ldap:corp".into(),
        // The manager comes after the user in the plan.
        create_users: vec![
            user("ann", Some("bob")),
            user("bob", None),
            user("local", None),
        ],
        create_roles: vec![
            role("eng", &["ann", "bob", "ghost"], &["bob"]),
            role("local-role", &["ann"], &[]),
        ],
        ..Default::default()
    };
    let mut tx = store.begin().await.unwrap();
    let (report, affected) = tx.apply_sync_plan(&plan).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(report.users_created, 2, "{report:?}");
    assert_eq!(report.roles_created, 1, "{report:?}");
    let reasons: Vec<String> = report
        .skipped
        .iter()
        .map(|s| format!("{} {} {}", s.kind, s.key, s.reason))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("user local exists from source warden")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("role local-role exists from source warden")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("ghost is not a directory user")),
        "{reasons:?}"
    );
    assert!(affected.is_empty(), "new roles hold no tasks");
    assert_eq!(
        store
            .dir_user("ann")
            .await
            .unwrap()
            .unwrap()
            .user
            .manager
            .as_deref(),
        Some("bob")
    );
    assert_eq!(
        store.dir_user("local").await.unwrap().unwrap().source,
        WARDEN_SOURCE
    );

    let snap = store.directory_snapshot("ldap:corp").await.unwrap();
    assert_eq!(
        snap.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        vec!["ann", "bob"]
    );
    assert_eq!(snap.users[0].manager.as_deref(), Some("bob"));
    assert_eq!(snap.roles.len(), 1);
    assert_eq!(snap.roles[0].members, vec!["ann", "bob"]);
    assert_eq!(snap.roles[0].owners, vec!["bob"]);
    assert_eq!(snap.roles[0].role_id.as_deref(), Some("guid-eng"));

    // A membership added in Warden (not by the sync) is not part of the source's snapshot
    // and survives the source's updates; a task on the role makes its holders affected.
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user(&user("carol", None), WARDEN_SOURCE)
        .await
        .unwrap();
    tx.put_relationship(
        &Address::role_user("eng", Relationship::Member, "carol"),
        WARDEN_SOURCE,
        None,
    )
    .await
    .unwrap();
    tx.insert_dir_task(&task("t", "APP", "x.>")).await.unwrap();
    tx.put_relationship(&Address::role_task("eng", "t"), WARDEN_SOURCE, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.directory_snapshot("ldap:corp").await.unwrap(), snap);

    // The same plan again changes nothing.
    let mut tx = store.begin().await.unwrap();
    let (again, affected) = tx.apply_sync_plan(&plan).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (
            again.users_created,
            again.users_updated,
            again.roles_created,
            again.roles_updated
        ),
        (0, 0, 0, 0),
        "{again:?}"
    );
    assert!(affected.is_empty());

    // An update drops bob from eng (he is affected: eng holds a task); a delete removes ann.
    let update = SyncPlan {
        source: "ldap:corp".into(),
        update_roles: vec![role("eng", &["ann"], &[])],
        delete_users: vec!["ann".into(), "local".into()],
        ..Default::default()
    };
    let mut tx = store.begin().await.unwrap();
    let (r, affected) = tx.apply_sync_plan(&update).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((r.roles_updated, r.users_deleted), (1, 1), "{r:?}");
    assert!(affected.contains("bob"), "{affected:?}");
    assert!(
        r.skipped
            .iter()
            .any(|s| s.key == "local" && s.reason.contains("belongs to source warden")),
        "{r:?}"
    );
    assert!(store.dir_user("ann").await.unwrap().is_none());
    assert!(store.dir_user("local").await.unwrap().is_some());
    let eng = store.dir_role("eng").await.unwrap().unwrap();
    assert_eq!(
        eng.role.members,
        vec!["carol"],
        "ann deleted, bob dropped, carol kept"
    );
    assert!(eng.role.owners.is_empty());

    let del = SyncPlan {
        source: "ldap:corp".into(),
        delete_roles: vec!["eng".into(), "local-role".into()],
        ..Default::default()
    };
    let mut tx = store.begin().await.unwrap();
    let (r, affected) = tx.apply_sync_plan(&del).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(r.roles_deleted, 1);
    assert!(affected.contains("carol"), "{affected:?}");
    assert!(store.dir_role("eng").await.unwrap().is_none());
    assert!(store.dir_role("local-role").await.unwrap().is_some());
    assert!(store.held_tasks("carol").await.unwrap().is_empty());
}
