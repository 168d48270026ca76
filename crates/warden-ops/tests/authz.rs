//! The operations decide who may do what, whatever surface calls them: an operation
//! called directly with a read-only token's [`Actor`] is refused (`forbidden`, nothing
//! written), a bearer user's JWT is withheld from it, and creds issued by a change are
//! handed only to an actor holding `creds`. On SQLite and on PostgreSQL.

use warden_core::UserSpec;
use warden_core::spec::UserEdit;
use warden_ops::tokens::TokenInfo;
use warden_ops::{Actor, ErrorKind, InitOptions, OpsError, Scope, Warden};
use warden_store::{MasterKey, Store};

fn token(scopes: &[Scope], dir_user: Option<&str>) -> TokenInfo {
    TokenInfo {
        id: "tok_test".into(),
        name: "test".into(),
        scopes: scopes.to_vec(),
        created_at: 0,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        dir_user: dir_user.map(str::to_string),
    }
}

fn forbidden<T: std::fmt::Debug>(r: Result<T, OpsError>, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::Refused, "forbidden"),
        "{what}: {e}"
    );
}

async fn flow(url: &str) {
    let store = Store::open(url, MasterKey::from_bytes([5; 32]))
        .await
        .expect("store");
    let mut op = Warden::open(store.clone(), Actor::operator("test"))
        .await
        .expect("open");
    op.init(InitOptions::named("ACME")).await.expect("init");
    op.add_account("APP", Default::default())
        .await
        .expect("APP");
    let bearer = UserSpec {
        bearer_token: true,
        ..Default::default()
    };
    op.add_user("APP", "bob", bearer).await.expect("bob");
    op.add_user("APP", "alice", UserSpec::default())
        .await
        .expect("alice");
    let (_, creds) = op.add_device("d1", Default::default()).await.expect("d1");
    assert!(creds.is_some(), "the operator gets the creds it issued");

    let read = op.with_actor(Actor::token(&token(&[Scope::Read], None)));
    let write = op.with_actor(Actor::token(&token(&[Scope::Write], None)));
    let before = store.counts().await.expect("counts").ledger_events;

    // Reads work; whatever lets its holder connect is refused.
    assert!(!read.list_accounts().await.expect("list").is_empty());
    forbidden(read.creds("APP", "alice").await, "user creds");
    forbidden(read.device_creds("d1").await, "device creds");
    forbidden(read.system_user_creds().await, "system user creds");
    forbidden(
        read.add_account("SHOP", Default::default()).await,
        "add account",
    );
    forbidden(
        read.add_device("d2", Default::default()).await,
        "add device",
    );
    forbidden(read.rotate_device("d1").await, "rotate device");
    forbidden(
        read.add_tenant("acme", &Default::default()).await,
        "add tenant",
    );
    let export = read.export_snapshot().await.err().expect("export refused");
    assert!(export.to_string().starts_with("forbidden:"), "{export}");
    forbidden(
        read.dir_key_add(None, "nobody", "UABC").await,
        "register a key",
    );
    // A write-only actor may change but not read, nor see creds.
    forbidden(write.list_accounts().await, "write-only read");
    forbidden(write.creds("APP", "alice").await, "write-only creds");
    assert_eq!(
        store.counts().await.expect("counts").ledger_events,
        before,
        "a refusal wrote to the ledger"
    );

    // A bearer user's JWT: withheld without creds, shown with; others always shown.
    let bob = read.user("APP", "bob").await.expect("bob");
    assert!(bob.jwt.is_none() && bob.jwt_withheld, "{bob:?}");
    let alice = read.user("APP", "alice").await.expect("alice");
    assert!(alice.jwt.is_some() && !alice.jwt_withheld);
    let listed = read.list_users("APP").await.expect("users");
    let bob_listed = listed.iter().find(|u| u.name == "bob").expect("bob listed");
    assert!(bob_listed.jwt.is_none() && bob_listed.jwt_withheld);
    assert!(
        read.user_jwt("APP", "bob")
            .await
            .expect("jwt")
            .jwt
            .is_none()
    );
    let shown = op.user("APP", "bob").await.expect("bob");
    assert!(shown.jwt.is_some() && !shown.jwt_withheld);

    // A write-only actor's change happens; the creds it issues stay with Warden.
    let (dev, creds) = write
        .add_device("d2", Default::default())
        .await
        .expect("d2");
    assert_eq!(dev.id, "d2");
    assert!(creds.is_none(), "creds handed to a write-only actor");
    let (_, creds) = write.rotate_device("d2").await.expect("rotate");
    assert!(creds.is_none());
    let before = store.counts().await.expect("counts").ledger_events;
    forbidden(
        write.add_device_with_creds("d3", Default::default()).await,
        "add with creds",
    );
    assert_eq!(store.counts().await.expect("counts").ledger_events, before);
    assert!(
        op.device("d3").await.is_err(),
        "refused add wrote the device"
    );
    let edit = UserEdit {
        bearer: Some(true),
        ..Default::default()
    };
    let flipped = write.edit_user("APP", "alice", &edit).await.expect("edit");
    assert!(flipped.jwt.is_none() && flipped.jwt_withheld, "{flipped:?}");

    // A token bound to a directory user: governance only.
    let bound = op.with_actor(Actor::token(&token(
        &[Scope::Read, Scope::Write, Scope::Creds],
        Some("mallory"),
    )));
    forbidden(
        bound.list_accounts().await,
        "bound token outside governance",
    );
    forbidden(bound.creds("APP", "alice").await, "bound token creds");
    assert!(bound.roles().await.expect("roles").is_empty());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_actor_is_refused_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    flow(&format!("sqlite://{}", dir.path().join("w.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_actor_is_refused_on_postgres() {
    let db = warden_testkit::PgDatabase::create().await;
    flow(db.url()).await;
}
