//! Many tenants in one go (`warden tenant add --from FILE`, `Warden::add_tenants_bulk`):
//! every entry is checked before anything is written, a re-run adds only what is missing,
//! per-line limits sit over the flags', the ledger gets one batch event, and the new
//! accounts reach a real nats-server (2.9.10 and 2.15.x) where a tenant's user connects
//! and its traffic arrives at the platform under the tenant's prefix. The operation itself
//! runs on SQLite and PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::{Home, connect};
use futures::StreamExt;
use serde_json::{Value, json};
use warden_core::tenant::TenantLimitsEdit;
use warden_ops::Actor;
use warden_ops::tenant::NewTenant;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// What a refused file must leave: no tenant and no ledger event more than before.
fn unchanged(home: &Home, tenants: &Value, events: usize) {
    assert_eq!(&home.json(&["tenant", "list"]), tenants);
    assert_eq!(home.ledger().len(), events);
}

async fn cli_and_server(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "BULKOP"]);
    let file = |name: &str, text: &str| {
        let path = home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };

    // Refused files: a usage error naming the problem, nothing written.
    let events = home.ledger().len();
    let none = json!([]);
    for (text, says) in [
        ("slug,conns\na,1\nAcme,2\n", "tenant 2 (\"Acme\")"),
        ("slug\na\nb\na\n", "tenant 3 (a) is listed twice"),
        ("slug,colour\na,red\n", "unknown column `colour`"),
        ("slug,payload\na,lots\n", "line 2: payload \"lots\""),
        ("id\na\n", "no `slug` column"),
        ("slug,conns\na,-5\n", "invalid tenant limit conns"),
        ("[\"a\", 7]", "not a JSON array"),
    ] {
        let path = file("bad.csv", text);
        let e = home.fails(2, &["tenant", "add", "--from", &path]);
        assert!(e.contains(says), "{text:?}: {e}");
        unchanged(&home, &none, events);
    }
    let missing = home.path().join("missing.csv");
    let e = home.fails(2, &["tenant", "add", "--from", missing.to_str().unwrap()]);
    assert!(e.contains("no such file"), "{e}");
    let e = home.fails(2, &["tenant", "add", "x", "--from", "f.csv"]);
    assert!(e.contains("cannot be used with"), "{e}");
    unchanged(&home, &none, events);

    // A CSV: per-line limits over the flags', the flags over the defaults.
    let csv = file(
        "tenants.csv",
        "slug,conns,js-disk-storage\na,3,1M\nb,,\nc,5,\n",
    );
    let report = home.json(&["tenant", "add", "--from", &csv, "--conns", "7"]);
    assert_eq!(report, json!({"added": ["a", "b", "c"], "skipped": []}));
    let limits = |slug: &str| home.json(&["tenant", "show", slug])["limits"].clone();
    assert_eq!(limits("a")["conns"], 3);
    assert_eq!(limits("a")["js_disk"], 1 << 20);
    assert_eq!(limits("b")["conns"], 7);
    assert_eq!(limits("c")["conns"], 5);
    let batch: Vec<Value> = home
        .ledger()
        .into_iter()
        .filter(|e| e["action"] == "tenant.add_batch")
        .collect();
    assert_eq!(batch.len(), 1, "{batch:?}");
    let after = home.ledger().len();
    let listed = home.json(&["tenant", "list"]);

    // The same file again: everything skipped, nothing written.
    let again = home.json(&["tenant", "add", "--from", &csv]);
    assert_eq!(again, json!({"added": [], "skipped": ["a", "b", "c"]}));
    unchanged(&home, &listed, after);

    // A JSON file with one new tenant among known ones adds just that one.
    let list = file(
        "more.json",
        r#"["b", {"slug": "d", "limits": {"conns": 2}}, "e"]"#,
    );
    let report = home.json(&["tenant", "add", "--from", &list, "--conns", "9"]);
    assert_eq!(report, json!({"added": ["d", "e"], "skipped": ["b"]}));
    assert_eq!(limits("d")["conns"], 2);
    assert_eq!(limits("e")["conns"], 9);
    let human = home.ok(&["tenant", "add", "--from", &list]);
    assert!(
        human.contains("0 tenants added, 3 already present (skipped)"),
        "{human}"
    );

    // On the server: c's collector connects and its traffic reaches the platform as `c.…`.
    let creds = home.path().join("c.creds");
    home.ok(&[
        "tenant",
        "user",
        "add",
        "c",
        "coll",
        "-o",
        creds.to_str().unwrap(),
    ]);
    let c_creds = home.creds_file("c.creds");
    let platform_creds = home.warden().await.platform_creds().await.unwrap();
    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let platform = connect(&url, &platform_creds).await.unwrap();
    let mut events = platform
        .client
        .subscribe("*.events.>".to_string())
        .await
        .unwrap();
    platform.client.flush().await.unwrap();
    let collector = connect(&url, &c_creds).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        collector
            .client
            .publish("events.syslog".to_string(), "probe".into())
            .await
            .unwrap();
        collector.client.flush().await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            Ok(Some(m)) => {
                assert_eq!(m.subject.as_str(), "c.events.syslog");
                break;
            }
            _ => assert!(Instant::now() < deadline, "nothing from c in time"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_add_from_a_file_2_9() {
    cli_and_server(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_add_from_a_file_2_15() {
    cli_and_server(ServerLine::V2_15).await;
}

fn tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.into(),
        limits: TenantLimitsEdit::default(),
    }
}

/// The operation on a store at `url`: order kept past one prepare chunk, all or nothing,
/// idempotent, `write` needed.
async fn bulk_operation(url: &str) {
    let (store, w) = common::initialised_warden(url, 9, "ACME").await;
    let counts = || async { store.counts().await.unwrap() };

    // Order: the report lists the slugs in the order given (not sorted), across chunks.
    let slugs: Vec<String> = (0..600).rev().map(|i| format!("t{i:04}")).collect();
    let many: Vec<NewTenant> = slugs.iter().map(|s| tenant(s)).collect();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let report = w
        .add_tenants_bulk(&many, |n| {
            seen.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await
        .unwrap();
    assert_eq!(report.added, slugs);
    assert_eq!(seen.into_inner(), 600);
    let tenants = w.list_tenants().await.unwrap();
    assert_eq!(tenants.len(), 600);
    // Each new account is queued for the push, and verifies against the operator.
    let t = w.tenant("t0042").await.unwrap();
    let acc = w.account(&t.account).await.unwrap();
    assert_eq!(acc.public_key, t.account_key);
    let before = counts().await;

    // One bad entry among new ones: refused, nothing written.
    let mut bad = vec![tenant("fresh"), tenant("t0001"), tenant("Nope")];
    let e = w.add_tenants_bulk(&bad, |_| {}).await.unwrap_err();
    assert_eq!(e.kind(), warden_ops::ErrorKind::Invalid, "{e}");
    bad.pop();
    bad.push(tenant("fresh"));
    let e = w.add_tenants_bulk(&bad, |_| {}).await.unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    assert_eq!(counts().await, before);
    assert!(w.tenant("fresh").await.is_err());

    // Again, with one new: only that one is added.
    let mut again = many.clone();
    again.push(tenant("fresh"));
    let report = w.add_tenants_bulk(&again, |_| {}).await.unwrap();
    assert_eq!(report.added, ["fresh"]);
    assert_eq!(report.skipped.len(), 600);
    let before = counts().await;
    let report = w.add_tenants_bulk(&again, |_| {}).await.unwrap();
    assert!(report.added.is_empty());
    assert_eq!(counts().await, before);

    // A reader may not.
    let reader = w.with_actor(Actor::console("r", "reader", &[warden_ops::Scope::Read]));
    let e = reader
        .add_tenants_bulk(&[tenant("other")], |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.kind(), warden_ops::ErrorKind::Refused, "{e}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    bulk_operation(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operation_on_postgres() {
    let db = warden_testkit::PgDatabase::create().await;
    bulk_operation(db.url()).await;
}
