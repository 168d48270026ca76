//! End-to-end proof of Warden's NATS request/reply service against real
//! nats-server processes (2.9.10 and 2.15.x): the service runs as its own
//! limited user (`BACKEND`/`warden` from the built-in migrations), `backend` calls
//! it, replies and `Nats-Service-Error(-Code)` headers come back, `$SRV`
//! discovery works, and the server itself refuses what the permissions forbid.

mod common;

use std::time::Duration;

use common::{Client, Home, connect};
use futures::StreamExt;
use serde_json::{Value, json};
use warden::nats_api;

use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// A reply: the JSON body, or the service error (code, message) from the headers.
#[derive(Debug)]
enum Reply {
    Ok(Value),
    Err(u16, String),
}

impl Reply {
    fn ok(self, what: &str) -> Value {
        match self {
            Reply::Ok(v) => v,
            Reply::Err(code, msg) => panic!("{what}: expected success, got {code} {msg}"),
        }
    }

    fn err(self, what: &str) -> (u16, String) {
        match self {
            Reply::Err(code, msg) => (code, msg),
            Reply::Ok(v) => panic!("{what}: expected an error, got {v}"),
        }
    }
}

async fn request(client: &async_nats::Client, subject: &str, body: impl Into<Vec<u8>>) -> Reply {
    let msg = tokio::time::timeout(
        WAIT,
        client.request(subject.to_string(), body.into().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no reply to {subject} in time"))
    .unwrap_or_else(|e| panic!("request to {subject} failed: {e}"));
    let header = |name: &str| {
        msg.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    if let Some(code) = header(async_nats::service::NATS_SERVICE_ERROR_CODE) {
        let message = header(async_nats::service::NATS_SERVICE_ERROR).unwrap_or_default();
        assert!(msg.payload.is_empty(), "error replies have no body");
        return Reply::Err(code.parse().expect("numeric error code"), message);
    }
    Reply::Ok(serde_json::from_slice(&msg.payload).unwrap_or_else(|e| {
        panic!(
            "reply to {subject} is not JSON ({e}): {}",
            String::from_utf8_lossy(&msg.payload)
        )
    }))
}

async fn call(client: &async_nats::Client, op: &str, body: Value) -> Reply {
    request(client, &format!("WARDEN.{op}"), body.to_string()).await
}

/// Waits until the service answers (its subscriptions reached the server).
async fn wait_ready(client: &async_nats::Client, v: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match client.request("WARDEN.status", "".into()).await {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("[{v}] service not ready yet: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("[{v}] the service never answered: {e}"),
        }
    }
}

/// Expects the server to report a permissions violation naming `subject`.
async fn expect_violation(c: &mut Client, kind: &str, subject: &str, v: &str) {
    let err = c
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("[{v}] {kind} on {subject} was not refused"));
    let e = err.to_lowercase();
    assert!(
        e.contains("permissions violation") && e.contains(kind) && err.contains(subject),
        "[{v}] unexpected server error: {err}"
    );
}

fn user_names(users: &[warden_ops::UserView]) -> Vec<String> {
    users.iter().map(|u| u.name.clone()).collect()
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    eprintln!("running against nats-server {v} ({})", bin.path.display());

    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    // APP exists before the config is rendered, so its users can connect.
    home.ok(&["account", "add", "APP"]);
    // alice: a BACKEND user who may not publish on WARDEN.>.
    home.ok(&[
        "user",
        "add",
        "alice",
        "-a",
        "BACKEND",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "_INBOX.>",
    ]);
    let w = home.warden().await;
    assert_eq!(w.settings().service_prefix, "WARDEN");
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    assert_eq!(server.version(), v);

    // The service connects as BACKEND/warden; every server error it gets is kept.
    let warden_creds = w.creds("BACKEND", "warden").await.expect("warden creds");
    let mut svc_conn = connect(&url, &warden_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] service user refused: {e}"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let (client, w) = (svc_conn.client.clone(), w.clone());
        let prefix = w.settings().service_prefix.clone();
        async move {
            let shutdown = async move {
                let _ = stop_rx.await;
            };
            nats_api::run(
                client,
                w,
                &prefix,
                &nats_api::default_service_scopes(),
                shutdown,
            )
            .await
        }
    });

    let backend_creds = w.creds("BACKEND", "backend").await.expect("backend creds");
    let backend = connect(&url, &backend_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] backend refused: {e}"));
    let b = &backend.client;
    wait_ready(b, &v).await;

    // status and operator.get
    let status = call(b, "status", json!({})).await.ok("status");
    assert_eq!(status["operator"]["name"], "ACME", "[{v}] {status}");
    assert_eq!(status["settings"]["service_prefix"], "WARDEN");
    let empty = request(b, "WARDEN.status", "")
        .await
        .ok("status, empty body");
    assert_eq!(empty["operator"]["name"], "ACME");
    let op = call(b, "operator.get", json!({})).await.ok("operator.get");
    assert_eq!(op["name"], "ACME");
    assert!(op["public_key"].as_str().unwrap_or("").starts_with('O'));

    // Accounts: create (with a spec), get, list, edit.
    let shop = call(
        b,
        "account.create",
        json!({"name": "SHOP", "spec": {"description": "the shop"}}),
    )
    .await
    .ok("account.create");
    assert_eq!(shop["name"], "SHOP", "[{v}] {shop}");
    assert!(shop["public_key"].as_str().unwrap_or("").starts_with('A'));
    assert_eq!(w.account("SHOP").await.expect("SHOP stored").name, "SHOP");
    let got = call(b, "account.get", json!({"name": "SHOP"}))
        .await
        .ok("account.get");
    assert_eq!(got["public_key"], shop["public_key"]);
    let list = call(b, "account.list", json!({})).await.ok("account.list");
    let names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    for n in ["APP", "BACKEND", "SHOP", "SYS"] {
        assert!(names.contains(&n), "[{v}] {n} missing from {names:?}");
    }
    let edited = call(
        b,
        "account.edit",
        json!({"name": "SHOP", "limits": {"conns": 10}}),
    )
    .await
    .ok("account.edit");
    assert_eq!(edited["spec"]["limits"]["conn"], 10, "[{v}] {edited}");
    let (code, msg) = call(b, "account.edit", json!({"name": "SHOP", "limits": {}}))
        .await
        .err("empty account.edit");
    assert_eq!(code, 400, "[{v}] {msg}");

    // A user in a brand-new account is created (it cannot connect until the
    // account reaches the server: no live push in this build).
    let clerk = call(
        b,
        "user.create",
        json!({"account": "SHOP", "name": "clerk"}),
    )
    .await
    .ok("user.create in SHOP");
    assert_eq!(clerk["account"], "SHOP");
    assert!(
        clerk["creds"]
            .as_str()
            .unwrap_or("")
            .contains("USER NKEY SEED")
    );

    // A user in APP (known to the server) is created and its creds connect, with
    // the permissions asked for enforced.
    let dave = call(
        b,
        "user.create",
        json!({"account": "APP", "name": "dave", "spec": {"permissions": {
            "pub": {"allow": ["orders.>"]},
            "sub": {"allow": ["orders.>", "_INBOX.>"]}
        }}}),
    )
    .await
    .ok("user.create in APP");
    assert_eq!(dave["name"], "dave", "[{v}] {dave}");
    assert!(dave["public_key"].as_str().unwrap_or("").starts_with('U'));
    assert!(dave["jwt"].as_str().unwrap_or("").starts_with("eyJ"));
    let dave_creds = dave["creds"].as_str().expect("creds in the reply");
    assert!(dave_creds.contains(dave["jwt"].as_str().expect("jwt")));
    let mut dave_conn = connect(&url, dave_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] creds from the service refused: {e}"));
    let mut orders = dave_conn
        .client
        .subscribe("orders.new")
        .await
        .expect("subscribe");
    dave_conn.client.flush().await.expect("flush");
    dave_conn
        .client
        .publish("orders.new", "first".into())
        .await
        .expect("publish");
    let m = tokio::time::timeout(WAIT, orders.next())
        .await
        .unwrap_or_else(|_| panic!("[{v}] dave's message not delivered"))
        .expect("subscription open");
    assert_eq!(&m.payload[..], b"first");
    dave_conn
        .client
        .publish("billing.x", "no".into())
        .await
        .expect("publish");
    dave_conn.client.flush().await.expect("flush");
    expect_violation(&mut dave_conn, "publish", "billing.x", &v).await;
    let users = w.list_users("APP").await.expect("list APP");
    assert_eq!(user_names(&users), ["dave"], "[{v}]");

    // get, list, creds, edit (a partial edit), revoke, delete.
    let got = call(b, "user.get", json!({"account": "APP", "name": "dave"}))
        .await
        .ok("user.get");
    assert_eq!(got["public_key"], dave["public_key"]);
    assert!(
        got.get("creds").is_none(),
        "[{v}] user.get must not carry creds"
    );
    let listed = call(b, "user.list", json!({"account": "APP"}))
        .await
        .ok("user.list");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "[{v}] {listed}");
    let creds = call(b, "user.creds", json!({"account": "APP", "name": "dave"}))
        .await
        .ok("user.creds");
    assert_eq!(creds["creds"].as_str(), Some(dave_creds), "[{v}] {creds}");
    let edited = call(
        b,
        "user.edit",
        json!({"account": "APP", "name": "dave", "edit": {"permissions": {"allow_pub": ["invoices.>"]}}}),
    )
    .await
    .ok("user.edit");
    assert_eq!(
        edited["spec"]["permissions"]["pub"]["allow"],
        json!(["orders.>", "invoices.>"]),
        "[{v}] {edited}"
    );
    let (code, msg) = call(
        b,
        "user.edit",
        json!({"account": "APP", "name": "dave", "edit": {}}),
    )
    .await
    .err("empty user.edit");
    assert_eq!(code, 400, "[{v}] {msg}");
    call(b, "user.create", json!({"account": "APP", "name": "erin"}))
        .await
        .ok("user.create erin");
    let revoked = call(b, "user.revoke", json!({"account": "APP", "name": "erin"}))
        .await
        .ok("user.revoke");
    assert!(revoked["revoked_at"].is_i64(), "[{v}] {revoked}");
    let (code, msg) = call(b, "user.revoke", json!({"account": "APP", "name": "erin"}))
        .await
        .err("second revoke");
    assert_eq!(code, 409, "[{v}] {msg}");
    call(b, "user.delete", json!({"account": "APP", "name": "erin"}))
        .await
        .ok("user.delete");
    let users = w.list_users("APP").await.expect("list APP");
    assert_eq!(user_names(&users), ["dave"], "[{v}] erin deleted");

    // Bad input: 400, nothing created; unknown: 404; duplicate: 409.
    let (code, msg) = call(
        b,
        "user.create",
        json!({"account": "APP", "name": "Bad Name!"}),
    )
    .await
    .err("bad user name");
    assert_eq!(code, 400, "[{v}] {msg}");
    assert!(
        msg.contains("Bad Name!"),
        "[{v}] message names the name: {msg}"
    );
    let (code, msg) = request(b, "WARDEN.user.create", "{\"account\": \"APP\", \"name\":")
        .await
        .err("malformed JSON");
    assert_eq!(code, 400, "[{v}] {msg}");
    assert!(msg.contains("malformed JSON"), "[{v}] {msg}");
    let (code, msg) = call(b, "user.create", json!({"account": "APP"}))
        .await
        .err("missing name");
    assert_eq!(code, 400, "[{v}] {msg}");
    assert!(msg.contains("name"), "[{v}] {msg}");
    let (code, msg) = call(
        b,
        "user.create",
        json!({"account": "APP", "name": "frank", "bogus": 1}),
    )
    .await
    .err("unknown field");
    assert_eq!(code, 400, "[{v}] {msg}");
    assert!(msg.contains("bogus"), "[{v}] {msg}");
    let (code, msg) = call(
        b,
        "user.create",
        json!({"account": "APP", "name": "frank", "spec": {"permissions": {"pub": {"allow": ["a b"]}}}}),
    )
    .await
    .err("bad subject");
    assert_eq!(code, 400, "[{v}] {msg}");
    let (code, msg) = call(b, "account.create", json!({"name": "bad account"}))
        .await
        .err("bad account name");
    assert_eq!(code, 400, "[{v}] {msg}");
    let users = w.list_users("APP").await.expect("list APP");
    assert_eq!(
        user_names(&users),
        ["dave"],
        "[{v}] nothing created by bad input"
    );
    assert!(w.account("BAD_ACCOUNT").await.is_err());
    let (code, msg) = call(b, "user.create", json!({"account": "NOPE", "name": "zed"}))
        .await
        .err("unknown account");
    assert_eq!(code, 404, "[{v}] {msg}");
    assert!(msg.contains("NOPE"), "[{v}] {msg}");
    let (code, msg) = call(b, "user.get", json!({"account": "APP", "name": "nobody"}))
        .await
        .err("unknown user");
    assert_eq!(code, 404, "[{v}] {msg}");
    let (code, msg) = call(b, "account.get", json!({"name": "NOPE"}))
        .await
        .err("unknown account get");
    assert_eq!(code, 404, "[{v}] {msg}");
    let (code, msg) = call(b, "user.create", json!({"account": "APP", "name": "dave"}))
        .await
        .err("duplicate user");
    assert_eq!(code, 409, "[{v}] {msg}");
    let (code, msg) = call(b, "account.create", json!({"name": "SHOP"}))
        .await
        .err("duplicate account");
    assert_eq!(code, 409, "[{v}] {msg}");
    let (code, msg) = call(b, "account.delete", json!({"name": "SYS"}))
        .await
        .err("delete SYS");
    assert_eq!(code, 400, "[{v}] {msg}");

    // account.delete of SHOP (and its user).
    let deleted = call(b, "account.delete", json!({"name": "SHOP"}))
        .await
        .ok("account.delete");
    assert_eq!(deleted["users"], 1, "[{v}] {deleted}");
    assert!(w.account("SHOP").await.is_err(), "[{v}] SHOP still stored");

    // Discovery ($SRV) through the service user's permissions; backend itself may
    // only publish on WARDEN.>, so ask as BACKEND/superuser.
    let su = connect(&url, &w.creds("BACKEND", "superuser").await.expect("su"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] superuser refused: {e}"));
    let ping = request(&su.client, "$SRV.PING", "").await.ok("$SRV.PING");
    assert_eq!(ping["name"], "warden", "[{v}] {ping}");
    assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
    let id = ping["id"].as_str().expect("service id").to_string();
    let info = request(&su.client, "$SRV.INFO.warden", "")
        .await
        .ok("$SRV.INFO.warden");
    assert_eq!(info["id"], id.as_str());
    let subjects: Vec<&str> = info["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert_eq!(subjects.len(), nats_api::Op::ALL.len(), "[{v}] {info}");
    for op in nats_api::Op::ALL {
        let s = nats_api::subject("WARDEN", op);
        assert!(
            subjects.contains(&s.as_str()),
            "[{v}] {s} not in {subjects:?}"
        );
    }
    let stats = request(&su.client, &format!("$SRV.STATS.warden.{id}"), "")
        .await
        .ok("$SRV.STATS");
    let created = stats["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["subject"] == "WARDEN.user.create")
        .expect("user.create stats")
        .clone();
    assert!(
        created["num_requests"].as_u64() >= Some(8),
        "[{v}] {created}"
    );
    assert!(created["num_errors"].as_u64() >= Some(6), "[{v}] {created}");

    // Outside permissions: alice (BACKEND, no pub on WARDEN.>) is refused by the
    // server; the request never reaches the service.
    let status_before = stats_requests(&su.client, &id, "WARDEN.status").await;
    let mut alice = connect(&url, &w.creds("BACKEND", "alice").await.expect("alice"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] alice refused: {e}"));
    let refused = tokio::time::timeout(
        Duration::from_secs(3),
        alice.client.request("WARDEN.status", "".into()),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(_))),
        "[{v}] alice got a reply: {refused:?}"
    );
    expect_violation(&mut alice, "publish", "WARDEN.status", &v).await;
    assert_eq!(
        stats_requests(&su.client, &id, "WARDEN.status").await,
        status_before,
        "[{v}] the service saw alice's request"
    );

    // The service user itself may not publish or subscribe outside its grant
    // (a second connection, so the running service is left alone).
    let mut rogue = connect(&url, &warden_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] warden refused: {e}"));
    for subject in ["BACKEND.secret", "WARDEN.status"] {
        rogue
            .client
            .publish(subject, "x".into())
            .await
            .expect("publish");
        rogue.client.flush().await.expect("flush");
        expect_violation(&mut rogue, "publish", subject, &v).await;
    }
    let _sub = rogue.client.subscribe("_INBOX.>").await.expect("subscribe");
    rogue.client.flush().await.expect("flush");
    expect_violation(&mut rogue, "subscription", "_INBOX.>", &v).await;

    // The service's own connection never hit a permission wall: subscriptions,
    // replies (also with error headers) and discovery all fit its grant.
    assert!(
        svc_conn.errors.try_recv().is_err(),
        "[{v}] the service user's permissions are not enough"
    );

    // Shutdown: run returns Ok and the endpoints are gone.
    stop_tx.send(()).expect("service still running");
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap_or_else(|_| panic!("[{v}] service did not stop"))
        .expect("service task")
        .unwrap_or_else(|e| panic!("[{v}] service failed: {e}"));
    // The server may still route a request or two to the service's connection
    // until it has processed the UNSUBs (async-nats's flush does not wait for the
    // server); none may be answered, and "no responders" must follow.
    let mut gone = false;
    for _ in 0..10 {
        let r = b
            .send_request(
                "WARDEN.status",
                async_nats::Request::new().timeout(Some(Duration::from_secs(1))),
            )
            .await;
        match r {
            Ok(m) => panic!("[{v}] service answered after shutdown: {m:?}"),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                gone = true;
                break;
            }
            Err(e) => eprintln!("[{v}] after shutdown: {e}"),
        }
    }
    assert!(
        gone,
        "[{v}] WARDEN.status still has a subscriber after shutdown"
    );
    assert!(svc_conn.errors.try_recv().is_err(), "[{v}]");
}

async fn stats_requests(client: &async_nats::Client, id: &str, subject: &str) -> u64 {
    let stats = request(client, &format!("$SRV.STATS.warden.{id}"), "")
        .await
        .ok("$SRV.STATS");
    stats["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["subject"] == subject)
        .and_then(|e| e["num_requests"].as_u64())
        .expect("endpoint stats")
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_service_against_nats_server_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_service_against_nats_server_2_15() {
    scenario(ServerLine::V2_15).await;
}

/// Until the server has wired a new device account's imports, a message may be
/// lost: the device publishes on its request subject every 200 ms until the hub's
/// backend receives one (bounded).
async fn device_reaches_backend(device: &Client, backend: &Client, id: &str, v: &str) {
    let subject = format!("EMDEVS.{id}.x");
    let mut inbox = backend.client.subscribe("EMDEVS.>").await.expect("sub");
    backend.client.flush().await.expect("flush");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        device
            .client
            .publish(subject.clone(), "hi".into())
            .await
            .expect("publish");
        device.client.flush().await.expect("flush");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), inbox.next()).await {
            assert_eq!(m.subject.as_str(), subject, "[{v}]");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "[{v}] nothing from device {id} reached the backend"
        );
    }
}

/// Device operations through the service: creds handed out by `device.create`
/// connect once the relay pushed, a revoked device is refused by the server, and
/// bad input, unknown devices and conflicts get 400, 404 and 409.
async fn device_scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    // JetStream on: the relay creates each device's stream in the hub.
    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    let push = || {
        let report = home.json(&["push", "--nats", &url]);
        assert_eq!(report["failed"], 0, "[{v}] {report}");
    };

    let w = home.warden().await;
    let svc = connect(&url, &w.creds("BACKEND", "warden").await.expect("creds"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] service user refused: {e}"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let (client, w) = (svc.client.clone(), w.clone());
        async move {
            nats_api::run(
                client,
                w,
                "WARDEN",
                &nats_api::default_service_scopes(),
                async move {
                    let _ = stop_rx.await;
                },
            )
            .await
        }
    });
    let caller = connect(&url, &w.creds("BACKEND", "backend").await.expect("creds"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] backend refused: {e}"));
    let b = &caller.client;
    wait_ready(b, &v).await;

    // create: view + creds; the creds connect once the relay pushed the account.
    let a = call(
        b,
        "device.create",
        json!({"id": "a", "meta": {"site": "lab"}}),
    )
    .await
    .ok("device.create");
    assert_eq!(a["device"]["id"], "a", "[{v}] {a}");
    assert_eq!(a["device"]["state"], "provisioned");
    assert_eq!(a["device"]["meta"]["site"], "lab");
    let a_creds = a["creds"].as_str().expect("creds").to_string();
    assert!(a_creds.contains("USER NKEY SEED"), "[{v}]");
    call(b, "device.create", json!({"id": "b"}))
        .await
        .ok("device.create b");
    push();
    let hub_backend = connect(&url, &w.creds("EMDEVS", "backend").await.expect("creds"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] hub backend refused: {e}"));
    let mut dev_a = connect(&url, &a_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] device a refused: {e}"));
    device_reaches_backend(&dev_a, &hub_backend, "a", &v).await;
    assert!(
        dev_a.errors.try_recv().is_err(),
        "[{v}] device a hit a wall"
    );

    // get, list (with a state), creds.
    let got = call(b, "device.get", json!({"id": "a"}))
        .await
        .ok("device.get");
    assert_eq!(got["user_key"], a["device"]["user_key"], "[{v}] {got}");
    assert!(
        got.get("creds").is_none(),
        "[{v}] device.get carries no creds"
    );
    let listed = call(b, "device.list", json!({"state": "provisioned"}))
        .await
        .ok("device.list");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, ["a", "b"], "[{v}] {listed}");
    let creds = call(b, "device.creds", json!({"id": "a"}))
        .await
        .ok("device.creds");
    assert_eq!(creds["creds"].as_str(), Some(a_creds.as_str()), "[{v}]");

    // Bad input changes nothing; unknown is 404.
    for (body, what) in [
        (json!({"id": "Bad Id!"}), "bad id"),
        (json!({"id": "c", "bogus": 1}), "unknown field"),
        (json!({}), "missing id"),
    ] {
        let (code, msg) = call(b, "device.create", body).await.err(what);
        assert_eq!(code, 400, "[{v}] {what}: {msg}");
    }
    let (code, msg) = call(b, "device.list", json!({"state": "gone"}))
        .await
        .err("bad state");
    assert_eq!(code, 400, "[{v}] {msg}");
    assert_eq!(w.list_devices(None).await.expect("list").len(), 2, "[{v}]");
    for op in [
        "device.get",
        "device.revoke",
        "device.rotate",
        "device.creds",
    ] {
        let (code, msg) = call(b, op, json!({"id": "nope"})).await.err(op);
        assert_eq!(code, 404, "[{v}] {op}: {msg}");
    }

    // revoke: state revoked, the server closes and then refuses device a.
    let revoked = call(b, "device.revoke", json!({"id": "a"}))
        .await
        .ok("device.revoke");
    assert_eq!(revoked["state"], "revoked", "[{v}] {revoked}");
    let (code, msg) = call(b, "device.revoke", json!({"id": "a"}))
        .await
        .err("second revoke");
    assert_eq!(code, 409, "[{v}] {msg}");
    let (code, msg) = call(b, "device.rotate", json!({"id": "a"}))
        .await
        .err("rotate a revoked device");
    assert_eq!(code, 409, "[{v}] {msg}");
    push();
    let closed = dev_a.next_error(WAIT).await.expect("device a is told");
    assert!(
        closed.contains("Revoked") || closed.contains("Expired"),
        "[{v}] {closed}"
    );
    assert!(
        connect(&url, &a_creds).await.is_err(),
        "[{v}] revoked device reconnected"
    );

    // restore, then rotate: the old creds are refused, the new ones work.
    let restored = call(b, "device.restore", json!({"id": "a"}))
        .await
        .ok("device.restore");
    assert_eq!(restored["state"], "provisioned", "[{v}] {restored}");
    let (code, msg) = call(b, "device.restore", json!({"id": "a"}))
        .await
        .err("restore twice");
    assert_eq!(code, 409, "[{v}] {msg}");
    let rotated = call(b, "device.rotate", json!({"id": "a"}))
        .await
        .ok("device.rotate");
    assert_ne!(rotated["device"]["user_key"], a["device"]["user_key"]);
    let new_creds = rotated["creds"].as_str().expect("new creds");
    push();
    assert!(
        connect(&url, &a_creds).await.is_err(),
        "[{v}] old creds still work"
    );
    let dev_a2 = connect(&url, new_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] rotated creds refused: {e}"));
    device_reaches_backend(&dev_a2, &hub_backend, "a", &v).await;

    stop_tx.send(()).expect("service still running");
    tokio::time::timeout(WAIT, running)
        .await
        .unwrap_or_else(|_| panic!("[{v}] service did not stop"))
        .expect("service task")
        .unwrap_or_else(|e| panic!("[{v}] service failed: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn device_operations_against_nats_server_2_9() {
    device_scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn device_operations_against_nats_server_2_15() {
    device_scenario(ServerLine::V2_15).await;
}
