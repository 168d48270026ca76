//! The governance tables, each test run on SQLite and on PostgreSQL: directory users and
//! managers, roles and tasks, the relationship adjacency list (one lookup per fact,
//! expired rows invisible and then removed), proposals (numbering, closing once,
//! filters), the tasks a user holds, and applying a directory sync plan (idempotent,
//! one source never touching another's records) with the snapshot a sync diffs against.
//! What applying a plan in bulk could break is pinned too: users created earlier in the
//! same plan as managers and members, batches longer than one statement, re-applying
//! writing nothing, renamed users and roles.

use nats_jwt::Subject;
use warden_core::directory::{DirectorySnapshot, NextRole, NextUser, SyncPlan, SyncReport};
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
    sync_plan_resolves_users_created_earlier_in_the_plan,
    sync_plan_applied_again_writes_nothing,
    sync_plan_larger_than_a_statement_round_trips,
    sync_plan_renames_users_and_keeps_renamed_roles,
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

/// A direct connection to the store's database, bypassing the store (to age rows).
async fn raw(store: &Store) -> sqlx::AnyConnection {
    use sqlx::Connection;
    warden_testkit::install_sqlx_drivers();
    sqlx::AnyConnection::connect(store.url_redacted())
        .await
        .unwrap()
}

/// The single number `sql` selects (as `n`).
async fn count(store: &Store, sql: &str) -> i64 {
    use sqlx::Row;
    let mut conn = raw(store).await;
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    row.try_get::<i64, _>("n").unwrap()
}

async fn exec(store: &Store, sql: &str) {
    let mut conn = raw(store).await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn apply(store: &Store, plan: &SyncPlan) -> (SyncReport, std::collections::BTreeSet<String>) {
    let mut tx = store.begin().await.unwrap();
    let out = tx.apply_sync_plan(plan).await.unwrap();
    tx.commit().await.unwrap();
    out
}

fn skips(report: &SyncReport) -> Vec<(String, String, String)> {
    report
        .skipped
        .iter()
        .map(|s| (s.kind.clone(), s.key.clone(), s.reason.clone()))
        .collect()
}

fn triple(kind: &str, key: &str, reason: &str) -> (String, String, String) {
    (kind.into(), key.into(), reason.into())
}

fn sync_role(name: &str, members: &[&str], owners: &[&str]) -> NextRole {
    NextRole {
        name: name.into(),
        role_id: Some(format!("guid-{name}")),
        members: members.iter().map(|m| m.to_string()).collect(),
        owners: owners.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    }
}

/// A plan whose managers and role members are users created by the plan itself, some
/// after the user that names them, some missing, next to another source's records.
fn plan_within_itself() -> SyncPlan {
    SyncPlan {
        source: "ldap:corp".into(),
        create_users: vec![
            user("ann", Some("zed")),
            user("bob", Some("ghost")),
            user("theirs", None),
            user("zed", None),
        ],
        create_roles: vec![
            sync_role("team", &["zed", "ann", "nobody"], &["zed"]),
            sync_role("their-role", &["ann"], &[]),
        ],
        ..Default::default()
    }
}

async fn seed_other_source(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    tx.insert_dir_user(&user("theirs", None), "ldap:other")
        .await
        .unwrap();
    tx.insert_dir_role(&sync_role("their-role", &[], &[]), "ldap:other")
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn sync_plan_resolves_users_created_earlier_in_the_plan(store: Store) {
    seed_other_source(&store).await;
    let theirs = store.dir_user("theirs").await.unwrap().unwrap();
    let (report, affected) = apply(&store, &plan_within_itself()).await;
    assert_eq!(
        (
            report.users_created,
            report.users_updated,
            report.roles_created,
            report.roles_updated,
            report.unchanged
        ),
        (3, 0, 1, 0, 0),
        "{report:?}"
    );
    // In the order the row-by-row apply found them: users, managers, roles.
    assert_eq!(
        skips(&report),
        vec![
            triple("user", "theirs", "exists from source ldap:other"),
            triple("user", "bob", "manager ghost is not a directory user"),
            triple("role", "team", "member nobody is not a directory user"),
            triple("role", "their-role", "exists from source ldap:other"),
        ]
    );
    assert!(affected.is_empty(), "{affected:?}");

    // A manager later in the plan is set; a missing one is not.
    let ann = store.dir_user("ann").await.unwrap().unwrap();
    assert_eq!(ann.user.manager.as_deref(), Some("zed"));
    assert_eq!(ann.source, "ldap:corp");
    assert_eq!(
        store.dir_user("bob").await.unwrap().unwrap().user.manager,
        None
    );
    let manager = store
        .relationship(&Address::manager("ann", "zed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (manager.source.as_str(), manager.expires_at),
        ("ldap:corp", None)
    );
    // Members created in the same plan, as relationships of the plan's source.
    let team = store.dir_role("team").await.unwrap().unwrap();
    assert_eq!(team.role.members, vec!["ann", "zed"]);
    assert_eq!(team.role.owners, vec!["zed"]);
    assert_eq!(team.role.role_id.as_deref(), Some("guid-team"));
    let owner = store
        .relationship(&Address::role_user("team", Relationship::Owner, "zed"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.source, "ldap:corp");
    // The other source's records are as they were.
    assert_eq!(store.dir_user("theirs").await.unwrap().unwrap(), theirs);
    let their_role = store.dir_role("their-role").await.unwrap().unwrap();
    assert_eq!(their_role.source, "ldap:other");
    assert!(their_role.role.members.is_empty());
    assert_eq!(
        store
            .directory_snapshot("ldap:corp")
            .await
            .unwrap()
            .users
            .iter()
            .map(|u| u.id.as_str())
            .collect::<Vec<_>>(),
        vec!["ann", "bob", "zed"]
    );
}

async fn sync_plan_applied_again_writes_nothing(store: Store) {
    seed_other_source(&store).await;
    let plan = plan_within_itself();
    let (first, _) = apply(&store, &plan).await;
    let snapshot = store.directory_snapshot("ldap:corp").await.unwrap();
    // Age every row: a row the second apply deleted and inserted again, or updated,
    // would come back with the current time.
    for sql in [
        "UPDATE dir_users SET created_at = 7, updated_at = 7",
        "UPDATE dir_roles SET created_at = 7, updated_at = 7",
        "UPDATE dir_relationships SET created_at = 7",
    ] {
        exec(&store, sql).await;
    }
    let rows = count(&store, "SELECT COUNT(*) AS n FROM dir_relationships").await;
    assert_eq!(rows, 4, "ann's manager, team's two members and owner");

    let (again, affected) = apply(&store, &plan).await;
    assert_eq!(
        (
            again.users_created,
            again.users_updated,
            again.roles_created,
            again.roles_updated,
            again.unchanged
        ),
        (0, 1, 0, 0, 3),
        "{again:?}"
    );
    // bob's manager is not a directory user: bob counts as updated each time (his
    // manager differs from the plan's), though nothing is written for him.
    assert_eq!(skips(&again), skips(&first), "the same records left alone");
    assert!(affected.is_empty());
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM dir_relationships").await,
        rows
    );
    for (table, column) in [
        ("dir_users", "created_at"),
        ("dir_users", "updated_at"),
        ("dir_roles", "created_at"),
        ("dir_roles", "updated_at"),
        ("dir_relationships", "created_at"),
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} <> 7");
        assert_eq!(count(&store, &sql).await, 0, "{table}.{column} rewritten");
    }
    assert_eq!(
        store.directory_snapshot("ldap:corp").await.unwrap(),
        snapshot
    );
}

fn uid(i: usize) -> String {
    format!("u{i:05}")
}

/// What Warden's snapshot of `plan`'s source must be once the plan is applied to an
/// empty directory (every manager and member a user of the plan).
fn expected_snapshot(plan: &SyncPlan) -> DirectorySnapshot {
    let mut users = plan.create_users.clone();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let mut roles = plan.create_roles.clone();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    for r in &mut roles {
        r.members.sort();
        r.owners.sort();
    }
    DirectorySnapshot {
        source: plan.source.clone(),
        users,
        roles,
    }
}

async fn sync_plan_larger_than_a_statement_round_trips(store: Store) {
    // 1,200 users, each managed by the next one (later in the plan), the last by the
    // first; a role of 1,100 members; 40 small roles. Every table takes several
    // statements (at most 1,000 values each).
    const USERS: usize = 1_200;
    let mut plan = SyncPlan {
        source: "ldap:big".into(),
        create_users: (0..USERS)
            .map(|i| NextUser {
                id: uid(i),
                user_id: Some(format!("guid-{i}")),
                email: Some(format!("{i}@example.org")),
                manager: Some(uid((i + 1) % USERS)),
                ..Default::default()
            })
            .collect(),
        create_roles: vec![NextRole {
            name: "everyone".into(),
            members: (0..1_100).map(uid).collect(),
            owners: vec![uid(0), uid(1)],
            ..Default::default()
        }],
        ..Default::default()
    };
    plan.create_roles.extend((0..40).map(|r| NextRole {
        name: format!("small-{r:02}"),
        members: (0..5).map(|j| uid(r * 30 + j)).collect(),
        ..Default::default()
    }));
    let (report, _) = apply(&store, &plan).await;
    assert_eq!(
        (
            report.users_created,
            report.roles_created,
            report.skipped.len()
        ),
        (USERS, 41, 0),
        "{report:?}"
    );
    let snapshot = store.directory_snapshot("ldap:big").await.unwrap();
    assert_eq!(snapshot, expected_snapshot(&plan));
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM dir_relationships").await,
        (USERS + 1_100 + 2 + 40 * 5) as i64
    );

    // The same plan again: everything unchanged.
    let (again, _) = apply(&store, &plan).await;
    assert_eq!(
        (
            again.users_created,
            again.users_updated,
            again.roles_updated
        ),
        (0, 0, 0)
    );
    assert_eq!(again.unchanged, USERS + 41);

    // Then half the big role leaves, every other user gets a new manager: more
    // relationships deleted than one statement deletes.
    let mut update = SyncPlan {
        source: "ldap:big".into(),
        ..Default::default()
    };
    for (i, u) in plan.create_users.iter_mut().enumerate() {
        if i % 2 == 0 {
            u.manager = Some(uid((i + 2) % USERS));
            update.update_users.push(u.clone());
        }
    }
    plan.create_roles[0]
        .members
        .retain(|m| m.as_str() >= uid(550).as_str());
    update.update_roles.push(plan.create_roles[0].clone());
    let (r, _) = apply(&store, &update).await;
    assert_eq!(
        (r.users_updated, r.roles_updated, r.unchanged),
        (USERS / 2, 1, 0),
        "{r:?}"
    );
    assert_eq!(
        store.directory_snapshot("ldap:big").await.unwrap(),
        expected_snapshot(&plan)
    );
}

async fn sync_plan_renames_users_and_keeps_renamed_roles(store: Store) {
    let ann = |id: &str| NextUser {
        id: id.into(),
        user_id: Some("guid-ann".into()),
        name: Some("Ann".into()),
        ..Default::default()
    };
    let bob = |manager: &str| NextUser {
        id: "bob".into(),
        user_id: Some("guid-bob".into()),
        manager: Some(manager.into()),
        ..Default::default()
    };
    let first = SyncPlan {
        source: "ldap:corp".into(),
        create_users: vec![ann("ann_old"), bob("ann_old")],
        create_roles: vec![
            sync_role("eng", &["ann_old", "bob"], &["ann_old"]),
            sync_role("ops", &["bob"], &[]),
        ],
        ..Default::default()
    };
    apply(&store, &first).await;
    let mut tx = store.begin().await.unwrap();
    tx.add_dir_nats_user("ann_old", "AAPP").await.unwrap();
    tx.commit().await.unwrap();

    // Upstream renamed ann (same object id, new Warden id) and the ops group.
    let mut ops = sync_role("operations", &["bob", "ann"], &[]);
    ops.role_id = Some("guid-ops".into());
    let second = SyncPlan {
        source: "ldap:corp".into(),
        update_users: vec![bob("ann"), ann("ann")],
        update_roles: vec![sync_role("eng", &["ann", "bob"], &["ann"]), ops],
        ..Default::default()
    };
    let (report, affected) = apply(&store, &second).await;
    assert_eq!(
        (
            report.users_created,
            report.users_updated,
            report.roles_updated
        ),
        (0, 2, 1),
        "{report:?}"
    );
    assert_eq!(
        skips(&report),
        vec![triple(
            "role",
            "operations",
            "renamed upstream from ops (same object id); Warden keeps the role under its old name, with its tasks"
        )]
    );
    // The old user had NATS users: the caller re-issues (revokes) them.
    assert_eq!(affected.into_iter().collect::<Vec<_>>(), vec!["ann_old"]);
    assert!(store.dir_user("ann_old").await.unwrap().is_none());
    assert!(
        store
            .relationships_of_user("ann_old")
            .await
            .unwrap()
            .is_empty()
    );
    let new = store.dir_user("ann").await.unwrap().unwrap();
    assert_eq!(
        (new.source.as_str(), new.user.user_id.as_deref()),
        ("ldap:corp", Some("guid-ann"))
    );
    assert_eq!(
        store
            .dir_user("bob")
            .await
            .unwrap()
            .unwrap()
            .user
            .manager
            .as_deref(),
        Some("ann")
    );
    let eng = store.dir_role("eng").await.unwrap().unwrap();
    assert_eq!(
        (eng.role.members, eng.role.owners),
        (
            vec!["ann".to_string(), "bob".to_string()],
            vec!["ann".to_string()]
        )
    );
    assert!(store.dir_role("operations").await.unwrap().is_none());
    assert_eq!(
        store.dir_role("ops").await.unwrap().unwrap().role.members,
        vec!["bob"]
    );
}
