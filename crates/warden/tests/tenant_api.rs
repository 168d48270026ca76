//! Tenants over the HTTP API and the NATS service of a running `warden serve`, against
//! real nats-server processes (2.9.10 and 2.15.x): creds handed out by the API connect once
//! the relay has pushed, and what the tenant publishes reaches the platform prefixed; scopes
//! are enforced; suspend, resume and delete act on the server; bad input changes nothing.
//! Also `warden tenant lint` of declared and running streams.

mod common;

use std::time::{Duration, Instant};

use common::http::Reply;
use common::{Client, Home, Serve, connect};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(20);

/// The API; every reply of the tenant routes is JSON.
struct Api(common::http::Http);

impl Api {
    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let r = self.0.send(method, path, token, body).await;
        assert!(
            serde_json::from_str::<Value>(&r.text).is_ok(),
            "{path}: body is not JSON: {:?}",
            r.text
        );
        r
    }
    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.send(Method::POST, path, token, body).await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    /// Waits (bounded) until serve's relay has delivered every outbox row.
    async fn delivered(&self, token: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = self.get("/v1/status", token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            if r.body["outbox_pending"] == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "outbox not delivered: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn expect(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert!(!r.message().is_empty(), "{}", r.body);
}

/// The tenant publishes `local` every 200 ms until the platform's subscription gets
/// `<prefix><local>` (an account is wired on the server's schedule after a push), within a
/// bound; every message the platform gets carries the tenant's prefix.
async fn arrives(tenant: &Client, sub: &mut async_nats::Subscriber, prefix: &str, local: &str) {
    let expected = format!("{prefix}{local}");
    let deadline = Instant::now() + WAIT;
    loop {
        tenant
            .client
            .publish(local.to_string(), "probe".into())
            .await
            .unwrap();
        tenant.client.flush().await.unwrap();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert!(m.subject.as_str().starts_with(prefix), "{}", m.subject);
            if m.subject.as_str() == expected {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing on {expected} in time");
    }
}

/// Connects until refused (a pushed change takes effect on the server's schedule).
async fn refused_eventually(url: &str, creds: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect(url, creds).await {
            Err(_) => return,
            Ok(c) => {
                drop(c);
                assert!(Instant::now() < deadline, "{what}: still admitted");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Connects until admitted.
async fn admitted_eventually(url: &str, creds: &str, what: &str) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect(url, creds).await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what}: refused: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Waits until an open connection has been closed by the server.
async fn closed_eventually(c: &Client, what: &str) {
    let deadline = Instant::now() + WAIT;
    while c.client.connection_state() == async_nats::connection::State::Connected {
        assert!(Instant::now() < deadline, "{what}: still connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A service reply: the JSON body, or the error (code, message) from its headers.
async fn call(client: &async_nats::Client, op: &str, body: Value) -> Result<Value, (u16, String)> {
    common::service_call(client, op, &body, WAIT).await
}

/// Waits until serve's NATS service answers.
async fn service_ready(client: &async_nats::Client) {
    let deadline = Instant::now() + WAIT;
    loop {
        match client.request("WARDEN.status", "".into()).await {
            Ok(_) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "the service never answered: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn token(home: &Home, name: &str, scopes: &str) -> String {
    home.json(&["token", "create", "--name", name, "--scope", scopes])["token"]
        .as_str()
        .expect("token secret")
        .to_string()
}

fn slugs(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_string())
        .collect()
}

/// The CLI's message for the same bad input (`error: <message>` on stderr, exit 2).
fn cli_message(home: &Home, args: &[&str]) -> String {
    home.fails(2, args).trim().to_string()
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    eprintln!("running against nats-server {v}");
    let home = Home::new();
    home.ok(&["init", "--name", "TENANTAPIOP"]);
    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    let read = token(&home, "reader", "read");
    let write = token(&home, "writer", "write");
    let ops = token(&home, "ops", "read,write,creds");
    let serve = Serve::start(&home, &url);
    let api = Api(common::http::Http::new(&serve.base));

    // Bad slugs and limits: 400 with the CLI's message; nothing created.
    for bad in ["Acme", "platform", "events", "lint", "bulk", "a.b"] {
        let r = api
            .post("/v1/tenants", &ops, Some(json!({"slug": bad})))
            .await;
        expect(&r, StatusCode::BAD_REQUEST, "invalid");
        let cli = cli_message(&home, &["tenant", "add", bad]);
        assert_eq!(cli, format!("error: {}", r.message()), "[{v}] {bad}");
    }
    let r = api
        .post(
            "/v1/tenants",
            &ops,
            Some(json!({"slug": "x", "limits": {"conns": -5}})),
        )
        .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid");
    assert!(
        r.message().contains("invalid tenant limit conns"),
        "{}",
        r.body
    );
    let cli = cli_message(&home, &["tenant", "add", "x", "--conns", "-5"]);
    assert_eq!(cli, format!("error: {}", r.message()), "[{v}]");
    let r = api
        .post("/v1/tenants", &ops, Some(json!({"slug": "x", "bogus": 1})))
        .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid_json");
    // A read-only token cannot create.
    let r = api
        .post("/v1/tenants", &read, Some(json!({"slug": "a"})))
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = api.get("/v1/tenants", &read).await;
    assert_eq!(r.body, json!([]), "[{v}] bad input created something");

    // Create; a duplicate is 409.
    let small = json!({"js_disk": 1_000_000, "js_mem": 1_000_000});
    let r = api
        .post(
            "/v1/tenants",
            &write,
            Some(json!({"slug": "a", "limits": small})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "[{v}] {}", r.body);
    assert_eq!(r.body["account"], "TENANT-a");
    assert_eq!(r.body["state"], "active");
    assert_eq!(r.body["limits"]["js_disk"], 1_000_000);
    assert_eq!(r.body["limits"]["conns"], 100, "defaults for the rest");
    let r = api
        .post("/v1/tenants", &write, Some(json!({"slug": "a"})))
        .await;
    expect(&r, StatusCode::CONFLICT, "conflict");
    // Recorded in the ledger under the token.
    let ledger = api.get("/v1/ledger?limit=1000", &read).await.body;
    let add = ledger
        .as_array()
        .expect("ledger")
        .iter()
        .find(|e| e["action"] == "tenant.add")
        .unwrap_or_else(|| panic!("no tenant.add in {ledger}"));
    assert_eq!(add["object_key"], "a");
    assert!(
        add["actor"].as_str().unwrap().starts_with("http:writer:"),
        "{add}"
    );

    // Users: creds only with the creds scope; read-only gets 403 for both.
    let r = api
        .post("/v1/tenants/a/users", &read, Some(json!({"name": "coll"})))
        .await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = api
        .post("/v1/tenants/a/users", &write, Some(json!({"name": "w1"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "[{v}] {}", r.body);
    assert!(r.body.get("creds").is_none(), "[{v}] write alone got creds");
    let r = api
        .post("/v1/tenants/a/users", &ops, Some(json!({"name": "coll"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "[{v}] {}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["user"], "coll");
    let a_creds = r.body["creds"].as_str().expect("creds").to_string();
    let users = r.body["tenant"]["users"].as_array().unwrap().clone();
    assert!(
        users.contains(&json!("coll")) && users.contains(&json!("w1")),
        "{users:?}"
    );
    let r = api
        .post("/v1/tenants/nope/users", &ops, Some(json!({"name": "x"})))
        .await;
    expect(&r, StatusCode::NOT_FOUND, "not_found");
    expect(
        &api.get("/v1/tenants/a/users/coll/creds", &read).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = api.get("/v1/tenants/a/users/coll/creds", &ops).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.body["creds"].as_str(), Some(a_creds.as_str()));
    expect(
        &api.get("/v1/tenants/a/users/nobody/creds", &ops).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // The creds work once serve's relay has pushed; A's events reach the platform as a.….
    api.delivered(&read).await;
    let platform = connect(&url, &home.ok(&["creds", "PLATFORM", "platform"]))
        .await
        .unwrap_or_else(|e| panic!("[{v}] platform refused: {e}"));
    let mut events = platform.client.subscribe("*.events.>").await.unwrap();
    platform.client.flush().await.unwrap();
    let a1 = connect(&url, &a_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] creds from the API refused: {e}"));
    arrives(&a1, &mut events, "a.", "events.syslog").await;

    // Reads.
    let r = api.get("/v1/tenants/a", &read).await;
    assert_eq!(r.body["prefix"], "a.", "{}", r.body);
    expect(
        &api.get("/v1/tenants/nope", &read).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    expect(
        &api.get("/v1/tenants/Bad", &read).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );

    // Edit: bad and empty edits refused, read-only refused; a good one applied.
    let r = api
        .patch("/v1/tenants/a", &write, json!({"limits": {"payload": -2}}))
        .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid");
    let cli = cli_message(&home, &["tenant", "edit", "a", "--payload", "-2"]);
    assert_eq!(cli, format!("error: {}", r.message()), "[{v}]");
    expect(
        &api.patch("/v1/tenants/a", &write, json!({"limits": {}}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
    expect(
        &api.patch("/v1/tenants/a", &read, json!({"limits": {"conns": 5}}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = api
        .patch(
            "/v1/tenants/a",
            &write,
            json!({"limits": {"subscriptions": -1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["limits"]["subscriptions"], -1);

    // Lint: the unlimited subscriptions are reported.
    let r = api.get("/v1/tenants/lint", &read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body,
        json!([{"severity": "warning", "code": "unlimited", "object": "a",
                "message": "tenant a has no limit on subscriptions"}])
    );
    api.patch(
        "/v1/tenants/a",
        &write,
        json!({"limits": {"subscriptions": 1000}}),
    )
    .await;
    assert_eq!(api.get("/v1/tenants/lint", &read).await.body, json!([]));

    // Suspend over HTTP: the open connection is closed, new ones refused.
    expect(
        &api.post("/v1/tenants/a/suspend", &read, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = api.post("/v1/tenants/a/suspend", &write, None).await;
    assert_eq!(r.body["state"], "suspended", "{}", r.body);
    expect(
        &api.post("/v1/tenants/a/suspend", &write, None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    api.delivered(&read).await;
    closed_eventually(&a1, "suspended tenant's connection").await;
    refused_eventually(&url, &a_creds, "suspended tenant").await;

    // Resume: admitted again, traffic arrives prefixed.
    let r = api.post("/v1/tenants/a/resume", &write, None).await;
    assert_eq!(r.body["state"], "active", "{}", r.body);
    expect(
        &api.post("/v1/tenants/a/resume", &write, None).await,
        StatusCode::CONFLICT,
        "conflict",
    );
    api.delivered(&read).await;
    let a2 = admitted_eventually(&url, &a_creds, "resumed tenant").await;
    arrives(&a2, &mut events, "a.", "events.back").await;

    // Delete: 404 afterwards, its creds refused.
    expect(
        &api.send(Method::DELETE, "/v1/tenants/a", &read, None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = api
        .send(Method::DELETE, "/v1/tenants/a", &write, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    expect(
        &api.get("/v1/tenants/a", &read).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    expect(
        &api.send(Method::DELETE, "/v1/tenants/a", &write, None)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(api.get("/v1/tenants", &read).await.body, json!([]));
    api.delivered(&read).await;
    drop(a2);
    refused_eventually(&url, &a_creds, "deleted tenant").await;

    // The same main path over the NATS service.
    let backend = connect(&url, &home.ok(&["creds", "BACKEND", "backend"]))
        .await
        .unwrap_or_else(|e| panic!("[{v}] backend refused: {e}"));
    let b = &backend.client;
    service_ready(b).await;
    let (code, msg) = call(b, "tenant.create", json!({"slug": "Bad"}))
        .await
        .expect_err("bad slug");
    assert_eq!(code, 400, "[{v}] {msg}");
    assert_eq!(
        cli_message(&home, &["tenant", "add", "Bad"]),
        format!("error: {msg}")
    );
    let (code, _) = call(b, "tenant.create", json!({"slug": "b", "bogus": 1}))
        .await
        .expect_err("unknown field");
    assert_eq!(code, 400);
    assert_eq!(
        call(b, "tenant.list", json!({})).await.expect("list"),
        json!([])
    );
    let t = call(
        b,
        "tenant.create",
        json!({"slug": "b", "limits": {"js_disk": 1_000_000, "js_mem": 1_000_000}}),
    )
    .await
    .expect("tenant.create");
    assert_eq!(t["account"], "TENANT-b", "[{v}] {t}");
    let (code, _) = call(b, "tenant.create", json!({"slug": "b"}))
        .await
        .expect_err("duplicate");
    assert_eq!(code, 409);
    let added = call(b, "tenant.user.add", json!({"slug": "b", "name": "coll"}))
        .await
        .expect("tenant.user.add");
    let b_creds = added["creds"].as_str().expect("creds").to_string();
    assert_eq!(added["tenant"]["users"], json!(["coll"]));
    let again = call(b, "tenant.creds", json!({"slug": "b", "name": "coll"}))
        .await
        .expect("tenant.creds");
    assert_eq!(again["creds"].as_str(), Some(b_creds.as_str()));
    assert_eq!(
        slugs(&call(b, "tenant.list", json!({})).await.expect("list")),
        ["b"]
    );
    api.delivered(&read).await;
    let b1 = admitted_eventually(&url, &b_creds, "tenant b").await;
    // The platform subscription was opened before tenant b existed: b's traffic reaches it
    // with no change of the platform account (its JWT does not depend on the tenant list).
    arrives(&b1, &mut events, "b.", "events.syslog").await;
    let e = call(
        b,
        "tenant.edit",
        json!({"slug": "b", "limits": {"conns": 10}}),
    )
    .await
    .expect("tenant.edit");
    assert_eq!(e["limits"]["conns"], 10);
    let (code, _) = call(
        b,
        "tenant.edit",
        json!({"slug": "b", "limits": {"conns": -3}}),
    )
    .await
    .expect_err("bad limit");
    assert_eq!(code, 400);
    assert_eq!(
        call(b, "tenant.lint", json!({})).await.expect("lint"),
        json!([])
    );

    // Lint of streams: declared in a spec, then applied and read back from the server.
    lint_running_streams(&home, &url, &v).await;

    let s = call(b, "tenant.suspend", json!({"slug": "b"}))
        .await
        .expect("tenant.suspend");
    assert_eq!(s["state"], "suspended");
    let (code, _) = call(b, "tenant.suspend", json!({"slug": "b"}))
        .await
        .expect_err("suspended twice");
    assert_eq!(code, 409);
    api.delivered(&read).await;
    closed_eventually(&b1, "suspended tenant b").await;
    refused_eventually(&url, &b_creds, "suspended tenant b").await;
    let r = call(b, "tenant.resume", json!({"slug": "b"}))
        .await
        .expect("tenant.resume");
    assert_eq!(r["state"], "active");
    api.delivered(&read).await;
    let b2 = admitted_eventually(&url, &b_creds, "resumed tenant b").await;
    arrives(&b2, &mut events, "b.", "events.back").await;
    call(b, "tenant.delete", json!({"slug": "b"}))
        .await
        .expect("tenant.delete");
    for op in ["tenant.get", "tenant.delete", "tenant.suspend"] {
        let (code, msg) = call(b, op, json!({"slug": "b"})).await.expect_err(op);
        assert_eq!(code, 404, "[{v}] {op}: {msg}");
    }

    // Many at once (`tenant add --from`): the CLI's refusal for a bad entry, nothing
    // added; `write` needed; existing slugs skipped; the new accounts reach the server.
    let before = slugs(&api.get("/v1/tenants", &read).await.body);
    let bad = json!({"tenants": [{"slug": "bulk-1"}, {"slug": "Bad"}]});
    let r = api.post("/v1/tenants/bulk", &ops, Some(bad)).await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid");
    let list = home.path().join("bulk.csv");
    std::fs::write(&list, "slug\nbulk-1\nBad\n").unwrap();
    let cli = cli_message(&home, &["tenant", "add", "--from", list.to_str().unwrap()]);
    assert_eq!(cli, format!("error: {}", r.message()), "[{v}]");
    let r = api
        .post(
            "/v1/tenants/bulk",
            &ops,
            Some(json!({"tenants": [], "x": 1})),
        )
        .await;
    expect(&r, StatusCode::BAD_REQUEST, "invalid_json");
    let one = json!({"tenants": [{"slug": "bulk-1", "limits": small}]});
    let r = api.post("/v1/tenants/bulk", &read, Some(one.clone())).await;
    expect(&r, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(slugs(&api.get("/v1/tenants", &read).await.body), before);
    let r = api.post("/v1/tenants/bulk", &write, Some(one)).await;
    assert_eq!(r.status, StatusCode::OK, "[{v}] {}", r.body);
    assert_eq!(r.body, json!({"added": ["bulk-1"], "skipped": []}));
    let many = json!({"tenants": [
        {"slug": "bulk-1", "limits": small},
        {"slug": "bulk-2", "limits": small}
    ]});
    let r = api.post("/v1/tenants/bulk", &write, Some(many)).await;
    assert_eq!(r.status, StatusCode::OK, "[{v}] {}", r.body);
    assert_eq!(r.body, json!({"added": ["bulk-2"], "skipped": ["bulk-1"]}));
    let shown = api.get("/v1/tenants/bulk-2", &read).await.body;
    assert_eq!(shown["limits"]["js_disk"], 1_000_000, "{shown}");
    api.delivered(&read).await;
    drop(serve);
}

/// `tenant lint --streams` and `--nats`: an unbounded stream and a tenant-specific stream
/// in the platform account are found; the bounded tenant-wildcard stream is not.
async fn lint_running_streams(home: &Home, url: &str, v: &str) {
    let spec = home.path().join("streams.yaml");
    std::fs::write(
        &spec,
        "streams:\n  - name: EVENTS\n    account: PLATFORM\n    subjects: [\"*.events.>\"]\n    no_ack: true\n    max_age: 1d\n  - name: B_TRAPS\n    account: PLATFORM\n    subjects: [\"b.snmp.traps\"]\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let expected = |origin: &str| {
        vec![
            (
                "warning".to_string(),
                "unbounded-stream".to_string(),
                "PLATFORM/B_TRAPS".to_string(),
                origin.to_string(),
            ),
            (
                "warning".into(),
                "tenant-stream-in-shared-account".into(),
                "PLATFORM/B_TRAPS".into(),
                origin.to_string(),
            ),
        ]
    };
    let seen = |findings: &Value| -> Vec<(String, String, String, String)> {
        findings
            .as_array()
            .expect("array")
            .iter()
            .map(|f| {
                let m = f["message"].as_str().unwrap();
                let origin = m.rsplit('(').next().unwrap().trim_end_matches(')');
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["code"].as_str().unwrap().to_string(),
                    f["object"].as_str().unwrap().to_string(),
                    origin.to_string(),
                )
            })
            .collect()
    };
    let declared = home.json(&["tenant", "lint", "--streams", spec]);
    assert_eq!(seen(&declared), expected("spec"), "[{v}] {declared}");
    // Nothing on the server yet.
    assert_eq!(
        home.json(&["tenant", "lint", "--nats", url]),
        json!([]),
        "[{v}]"
    );
    home.json(&["streams", "apply", spec, "--nats", url]);
    let running = home.json(&["tenant", "lint", "--nats", url]);
    assert_eq!(seen(&running), expected("server"), "[{v}] {running}");
    let e = home.fails(1, &["tenant", "lint", "--nats", url, "--strict"]);
    assert!(e.contains("2 findings (--strict)"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_through_api_and_service_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_through_api_and_service_2_15() {
    scenario(ServerLine::V2_15).await;
}

/// `tenant lint --streams FILE` without a server: findings with severity and code,
/// `--json`, exit 0 unless `--strict`; a bad spec is a usage error.
#[test]
fn lint_of_declared_streams() {
    let home = Home::new();
    home.ok(&["init", "--name", "LINTOP"]);
    home.json(&["tenant", "add", "acme"]);
    home.ok(&["account", "add", "SHARED"]);
    let clean = home.path().join("clean.yaml");
    std::fs::write(
        &clean,
        "streams:\n  - {name: EVENTS, account: PLATFORM, subjects: [\"*.events.>\"], no_ack: true, max_bytes: 1G}\n  - {name: OWN, account: TENANT-acme, subjects: [\"events.>\"], max_msgs: 1000}\n",
    )
    .unwrap();
    let out = home.ok(&["tenant", "lint", "--streams", clean.to_str().unwrap()]);
    assert_eq!(out.trim(), "no findings");
    home.ok(&[
        "tenant",
        "lint",
        "--streams",
        clean.to_str().unwrap(),
        "--strict",
    ]);

    // The platform streams of the example set-up are clean.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/streams.yaml");
    assert_eq!(
        home.json(&["tenant", "lint", "--streams", example]),
        json!([])
    );

    let risky = home.path().join("risky.json");
    std::fs::write(
        &risky,
        json!({"streams": [
            {"name": "ALL_EVENTS", "account": "PLATFORM", "subjects": ["events.>"], "max_age": "7d"},
            {"name": "ACME", "account": "PLATFORM", "subjects": ["acme.events.>"]},
            {"name": "COPY", "account": "SHARED", "subjects": ["acme.snmp.traps"], "max_bytes": 1000}
        ]})
        .to_string(),
    )
    .unwrap();
    let risky = risky.to_str().unwrap();
    let findings = home.json(&["tenant", "lint", "--streams", risky]);
    let got: Vec<(&str, &str, &str)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap(),
                f["code"].as_str().unwrap(),
                f["object"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "warning",
                "platform-stream-not-tenant-wildcard",
                "PLATFORM/ALL_EVENTS"
            ),
            ("warning", "unbounded-stream", "PLATFORM/ACME"),
            (
                "warning",
                "tenant-stream-in-shared-account",
                "PLATFORM/ACME"
            ),
            ("error", "tenant-stream-in-shared-account", "SHARED/COPY"),
        ],
        "{findings}"
    );
    // Text: one line per finding, severity and code first; exit 0.
    let text = home.ok(&["tenant", "lint", "--streams", risky]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[3].starts_with("error tenant-stream-in-shared-account: stream COPY of shared account SHARED captures tenant acme's subject acme.snmp.traps"),
        "{text}"
    );
    let e = home.fails(1, &["tenant", "lint", "--streams", risky, "--strict"]);
    assert!(e.contains("4 findings (--strict)"), "{e}");

    // Bad input: usage errors, nothing read.
    let invalid = home.path().join("invalid.yaml");
    std::fs::write(
        &invalid,
        "streams:\n  - {name: \"bad name\", account: PLATFORM, subjects: [\">\"]}\n",
    )
    .unwrap();
    let e = home.fails(
        2,
        &["tenant", "lint", "--streams", invalid.to_str().unwrap()],
    );
    assert!(e.contains("streams[0].name"), "{e}");
    home.fails(2, &["tenant", "lint", "--streams", "/nonexistent.yaml"]);
}

/// The OpenAPI document lists every tenant route with the scope the router enforces.
#[test]
fn openapi_lists_the_tenant_routes_with_their_scopes() {
    let doc = warden::http::openapi::document();
    for (method, path, scope) in [
        ("get", "/v1/tenants", "read"),
        ("post", "/v1/tenants", "write"),
        ("post", "/v1/tenants/bulk", "write"),
        ("get", "/v1/tenants/lint", "read"),
        ("get", "/v1/tenants/{slug}", "read"),
        ("patch", "/v1/tenants/{slug}", "write"),
        ("delete", "/v1/tenants/{slug}", "write"),
        ("post", "/v1/tenants/{slug}/suspend", "write"),
        ("post", "/v1/tenants/{slug}/resume", "write"),
        ("post", "/v1/tenants/{slug}/users", "write"),
        ("get", "/v1/tenants/{slug}/users/{user}/creds", "creds"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["x-warden-scope"], scope, "{method} {path}: {op}");
    }
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
    assert_eq!(
        doc["paths"]["/v1/tenants/{slug}"]["get"]["parameters"][0]["description"],
        "Tenant slug."
    );
}
