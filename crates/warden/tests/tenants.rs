//! Tenants against real nats-server processes (2.9.10 and 2.15.x): a tenant's collector
//! publishes tenant-local subjects and the platform receives them prefixed with the slug;
//! tenants are isolated; limits are enforced by the server and edited live; suspension
//! cuts a tenant off; bad slugs change nothing.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Home, connect};
use futures::StreamExt;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// The tenant publishes `local` every 200 ms until the platform's subscription gets
/// `expected` (an import is wired on the server's schedule after a push), within a bound.
async fn arrives(tenant: &Client, sub: &mut async_nats::Subscriber, local: &str, expected: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        tenant
            .client
            .publish(local.to_string(), "probe".into())
            .await
            .unwrap();
        tenant.client.flush().await.unwrap();
        // Earlier probes may still be in flight: skip them, but every one is prefixed.
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert!(m.subject.as_str().starts_with("a."), "{}", m.subject);
            if m.subject.as_str() == expected {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing on {expected} in time");
    }
}

async fn permission_error(c: &mut Client, what: &str) -> String {
    let e = c
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("no server error for {what}"));
    assert!(
        e.to_lowercase().contains("permissions violation"),
        "{what}: {e}"
    );
    e
}

/// Connects until refused (a pushed limit takes effect on the server's schedule).
async fn refused_eventually(url: &str, creds: &str, what: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect(url, creds).await {
            Err(e) => return e,
            Ok(c) => {
                drop(c);
                assert!(Instant::now() < deadline, "{what}: still admitted");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn tenants(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "TENANTOP"]);

    // Bad slugs: usage errors, nothing created.
    for bad in ["Acme", "platform", "events", "a.b", "$sys", "-a", ""] {
        home.fails(2, &["tenant", "add", bad]);
    }
    assert_eq!(home.json(&["tenant", "list"]), serde_json::json!([]));
    let e = home.fails(2, &["tenant", "add", "x", "--conns", "-5"]);
    assert!(e.contains("invalid tenant limit conns"), "{e}");
    assert_eq!(home.json(&["tenant", "list"]), serde_json::json!([]));

    let a = home.json(&[
        "tenant",
        "add",
        "a",
        "--conns",
        "3",
        "--payload",
        "1024",
        "--js-disk",
        "1000000",
    ]);
    assert_eq!(a["account"], "TENANT-a");
    assert_eq!(a["platform_account"], "PLATFORM");
    assert_eq!(a["limits"]["conns"], 3);
    home.json(&["tenant", "add", "b", "--js-disk", "1000000"]);
    home.fails(1, &["tenant", "add", "a"]);
    for t in ["a", "b"] {
        let path = home.path().join(format!("{t}.creds"));
        home.ok(&[
            "tenant",
            "user",
            "add",
            t,
            "coll",
            "-o",
            path.to_str().unwrap(),
        ]);
    }
    let shown = home.json(&["tenant", "show", "a"]);
    assert_eq!(shown["users"], serde_json::json!(["coll"]));
    let a_creds = home.creds_file("a.creds");
    let b_creds = home.creds_file("b.creds");
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

    // A's collector publishes tenant-local; the platform sees it under `a.`.
    let mut a1 = connect(&url, &a_creds).await.unwrap();
    arrives(&a1, &mut events, "events.syslog", "a.events.syslog").await;

    // B cannot listen to everything (its users subscribe only to their inbox) ...
    let mut b1 = connect(&url, &b_creds).await.unwrap();
    let mut b_all = b1.client.subscribe(">".to_string()).await.unwrap();
    b1.client.flush().await.unwrap();
    permission_error(&mut b1, "B subscribing to >").await;
    a1.client
        .publish("events.syslog".to_string(), "secret".into())
        .await
        .unwrap();
    a1.client.flush().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), b_all.next())
            .await
            .ok()
            .flatten()
            .is_none(),
        "B received A's traffic"
    );

    // ... and A cannot publish into B's prefix: refused by A's permissions.
    a1.client
        .publish("b.events.x".to_string(), "forged".into())
        .await
        .unwrap();
    a1.client.flush().await.unwrap();
    permission_error(&mut a1, "A publishing b.events.x").await;
    // The platform still only ever sees A under `a.`.
    arrives(&a1, &mut events, "events.after", "a.events.after").await;

    // Requests: A's `cmd.ping` reaches the platform service as `a.cmd.ping`, and the
    // reply comes back through the import.
    let mut service = platform
        .client
        .subscribe("*.cmd.>".to_string())
        .await
        .unwrap();
    platform.client.flush().await.unwrap();
    let responder = platform.client.clone();
    // Answers every request it gets, and reports the subjects they arrived on.
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let served = tokio::spawn(async move {
        while let Some(m) = service.next().await {
            let reply = m.reply.clone().expect("a reply subject");
            let _ = seen_tx.send(m.subject.to_string());
            responder
                .publish(reply, format!("pong from {}", m.subject).into())
                .await
                .unwrap();
            responder.flush().await.unwrap();
        }
    });
    // The import is wired on the server's schedule after the push and the first
    // connections: a request that finds no responder, or that is lost in that window
    // (seen under load on both server versions), is retried, within a bound.
    let answer = common::answered(&a1.client, "cmd.ping", WAIT).await;
    served.abort();
    let subjects: Vec<String> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        !subjects.is_empty() && subjects.iter().all(|s| s == "a.cmd.ping"),
        "the platform saw {subjects:?}"
    );
    assert_eq!(&answer.payload[..], b"pong from a.cmd.ping");

    // Payload over the tenant's limit: the server refuses it.
    let mut a2 = connect(&url, &a_creds).await.unwrap();
    a2.client
        .publish("events.big".to_string(), vec![b'x'; 2048].into())
        .await
        .unwrap();
    let _ = a2.client.flush().await;
    let e = a2.next_error(WAIT).await.expect("payload error");
    assert!(e.to_lowercase().contains("payload"), "{e}");
    drop(a2);

    // Connections: edit live to 1 (a1 is connected) → a new one is refused.
    let edited = home.json(&["tenant", "edit", "a", "--conns", "1"]);
    assert_eq!(edited["limits"]["conns"], 1);
    home.push(&url);
    let e = refused_eventually(&url, &a_creds, "second connection over --conns 1").await;
    eprintln!("over the connection limit: {e}");
    // B is unaffected.
    drop(connect(&url, &b_creds).await.expect("B still connects"));

    // Suspend cuts A off: its connection is closed, new ones refused.
    let s = home.json(&["tenant", "suspend", "a"]);
    assert_eq!(s["state"], "suspended");
    home.fails(1, &["tenant", "suspend", "a"]);
    home.push(&url);
    let deadline = Instant::now() + WAIT;
    while a1.client.connection_state() == async_nats::connection::State::Connected {
        assert!(
            Instant::now() < deadline,
            "suspended tenant still connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refused_eventually(&url, &a_creds, "suspended tenant").await;

    // Edited while suspended: stored, still no connections.
    let e = home.json(&["tenant", "edit", "a", "--conns", "3"]);
    assert_eq!(
        (e["state"].as_str(), e["limits"]["conns"].as_i64()),
        (Some("suspended"), Some(3))
    );
    // Resume: A's collector gets in again and its traffic arrives prefixed.
    let r = home.json(&["tenant", "resume", "a"]);
    assert_eq!(r["state"], "active");
    assert_eq!(r["limits"]["conns"], 3);
    home.push(&url);
    let deadline = Instant::now() + WAIT;
    let a3 = loop {
        match connect(&url, &a_creds).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "resumed tenant refused: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    arrives(&a3, &mut events, "events.back", "a.events.back").await;

    // Lint: clean; then a shared account with a tenant-first subject and an unlimited
    // tenant are reported.
    assert_eq!(home.json(&["tenant", "lint"]), serde_json::json!([]));
    home.json(&["tenant", "edit", "b", "--conns", "-1"]);
    home.ok(&["account", "add", "SHARED"]);
    home.ok(&[
        "user",
        "add",
        "snoop",
        "-a",
        "SHARED",
        "--allow-sub",
        "a.events.>",
    ]);
    let findings = home.json(&["tenant", "lint"]);
    let codes: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["unlimited", "tenant-subject-in-shared-account"],
        "{findings}"
    );

    // Creds written 0600.
    let path = home.path().join("again.creds");
    home.ok(&["tenant", "creds", "a", "coll", "-o", path.to_str().unwrap()]);
    assert_eq!(home.creds_file("again.creds"), a_creds);

    // Delete B: gone from the list.
    home.json(&["tenant", "delete", "b"]);
    let list = home.json(&["tenant", "list"]);
    assert_eq!(list.as_array().map(|l| l.len()), Some(1), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_2_9() {
    tenants(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_2_15() {
    tenants(ServerLine::V2_15).await;
}
