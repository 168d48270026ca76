//! Sharing between accounts against real nats-server processes (2.9.10 and 2.15.x): a
//! private service export answered across accounts through the activation Warden embeds,
//! a public stream export delivered under a local subject, the flow cut off by revoking
//! the activation and by removing the export (the importer re-signed and pushed), an
//! activation for an account Warden does not manage, and bad input that changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Home, answered, connect};
use futures::StreamExt;
use nats_jwt::{KeyKind, KeyPair};
use serde_json::Value;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// Requests on `subject` until they stop being answered (an import withdrawn or an
/// activation revoked applies on the server's schedule after a push), within a bound.
async fn unanswered_eventually(client: &async_nats::Client, subject: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = client
            .send_request(
                subject.to_string(),
                async_nats::Request::new()
                    .payload("ping".into())
                    .timeout(Some(Duration::from_millis(500))),
            )
            .await;
        if r.is_err() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The exporter publishes `published` until the importer's subscription gets
/// `expected`, within a bound.
async fn delivered(
    exporter: &Client,
    sub: &mut async_nats::Subscriber,
    published: &str,
    expected: &str,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        exporter
            .client
            .publish(published.to_string(), "tick".into())
            .await
            .unwrap();
        exporter.client.flush().await.unwrap();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            if m.subject.as_str() == expected {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing on {expected} in time (published {published})"
        );
    }
}

/// The exporter publishes `published` until a whole second passes with nothing reaching
/// the importer's subscription (the server stopped the flow), within a bound.
async fn stopped(exporter: &Client, sub: &mut async_nats::Subscriber, published: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        exporter
            .client
            .publish(published.to_string(), "tick".into())
            .await
            .unwrap();
        exporter.client.flush().await.unwrap();
        let mut got = false;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
            got = true;
        }
        if !got {
            return;
        }
        assert!(Instant::now() < deadline, "{published}: still delivered");
    }
}

/// Every account as `account show --json` prints it (the state bad input must not change).
fn accounts(home: &Home, names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| home.json(&["account", "show", n]))
        .collect()
}

async fn sharing(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "SHAREOP"]);
    home.ok(&["account", "add", "SVC"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "responder", "-a", "SVC"]);
    home.ok(&["user", "add", "client", "-a", "APP"]);
    let svc_key = home.json(&["account", "show", "SVC"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let app_key = home.json(&["account", "show", "APP"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();

    // A private service export; the import gets the activation embedded.
    let c = home.json(&[
        "account",
        "export",
        "add",
        "SVC",
        "--subject",
        "svc.time",
        "--service",
        "--private",
        "--name",
        "time",
        "--response-type",
        "singleton",
        "--response-threshold",
        "2s",
    ]);
    assert_eq!(c["export"]["token_req"], true, "{c}");
    assert_eq!(c["export"]["type"], "service", "{c}");
    let imp = home.json(&[
        "account",
        "import",
        "add",
        "APP",
        "--from",
        "SVC",
        "--subject",
        "svc.time",
        "--local-subject",
        "app.time",
        "--service",
    ]);
    let token = imp["import"]["token"]
        .as_str()
        .expect("activation embedded");
    let act = home.json(&["describe", token]);
    assert_eq!(act["kind"], "activation", "{act}");
    assert_eq!(act["subject"], app_key.as_str(), "{act}");
    assert_eq!(act["issuer"], svc_key.as_str(), "{act}");
    assert_eq!(act["issues"], serde_json::json!([]), "{act}");
    let app_jwt = home.json(&["account", "show", "APP"])["jwt"]
        .as_str()
        .unwrap()
        .to_string();
    let described = home.json(&["describe", &app_jwt]);
    assert_eq!(described["issues"], serde_json::json!([]), "{described}");
    let list = home.json(&["account", "export", "list", "SVC"]);
    assert_eq!(list[0]["importers"][0]["account"], "APP", "{list}");
    assert_eq!(list[0]["importers"][0]["activation"], true, "{list}");

    // A public stream export, imported under a local subject.
    home.json(&["account", "export", "add", "SVC", "--subject", "events.*"]);
    home.json(&[
        "account",
        "import",
        "add",
        "APP",
        "--from",
        "SVC",
        "--subject",
        "events.*",
        "--local-subject",
        "svc.events.$1",
    ]);
    let imports = home.json(&["account", "import", "list", "APP"]);
    assert_eq!(imports.as_array().map(Vec::len), Some(2), "{imports}");
    assert_eq!(imports[1]["import"]["type"], "stream", "{imports}");
    assert!(imports[1]["import"]["token"].is_null(), "{imports}");

    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let responder = connect(&url, &home.ok(&["creds", "SVC", "responder"]))
        .await
        .expect("responder connects");
    let mut requests = responder.client.subscribe("svc.time").await.unwrap();
    let rc = responder.client.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply {
                let _ = rc.publish(reply, "noon".into()).await;
            }
        }
    });
    responder.client.flush().await.unwrap();
    let client = connect(&url, &home.ok(&["creds", "APP", "client"]))
        .await
        .expect("client connects");

    // The request crosses into SVC through the activation and is answered.
    let m = answered(&client.client, "app.time", WAIT).await;
    assert_eq!(&m.payload[..], b"noon");

    // The stream reaches APP under its local subject.
    let mut events = client.client.subscribe("svc.events.*").await.unwrap();
    client.client.flush().await.unwrap();
    delivered(&responder, &mut events, "events.login", "svc.events.login").await;

    // Made private, the stream export's importer gets its activation and keeps flowing.
    let c = home.json(&[
        "account",
        "export",
        "edit",
        "SVC",
        "--subject",
        "events.*",
        "--private",
    ]);
    assert_eq!(c["activations_issued"], serde_json::json!(["APP"]), "{c}");
    assert_eq!(c["importers_resigned"], serde_json::json!(["APP"]), "{c}");
    let imports = home.json(&["account", "import", "list", "APP"]);
    assert!(imports[1]["import"]["token"].is_string(), "{imports}");
    home.push(&url);
    // nats-server (2.9.10, 2.15.1) re-creates a stream import whose claim changed without
    // re-attaching the importer's existing subscriptions to it: a client subscribes again.
    let mut events = client.client.subscribe("svc.events.*").await.unwrap();
    client.client.flush().await.unwrap();
    delivered(
        &responder,
        &mut events,
        "events.logout",
        "svc.events.logout",
    )
    .await;

    // Revoking APP's activation of the service cuts it off once pushed.
    let r = home.json(&[
        "account",
        "export",
        "revoke-activation",
        "SVC",
        "--subject",
        "svc.time",
        "--target",
        "APP",
    ]);
    assert_eq!(r["target"], app_key.as_str(), "{r}");
    let list = home.json(&["account", "export", "list", "SVC"]);
    assert!(
        list[0]["export"]["revocations"][app_key.as_str()].is_i64(),
        "{list}"
    );
    home.push(&url);
    unanswered_eventually(&client.client, "app.time", "revoked activation").await;

    // Removing the stream export re-signs APP (import gone) and the server stops the flow.
    let before = home.json(&["account", "show", "APP"]);
    let c = home.json(&["account", "export", "rm", "SVC", "--subject", "events.*"]);
    assert_eq!(c["importers_resigned"], serde_json::json!(["APP"]), "{c}");
    assert_eq!(
        c["imports_removed"],
        serde_json::json!(["APP: events.*"]),
        "{c}"
    );
    let after = home.json(&["account", "show", "APP"]);
    assert_ne!(before["jwt"], after["jwt"]);
    assert_eq!(
        after["spec"]["imports"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
    let status = home.json(&["status"]);
    assert!(status["outbox_pending"].as_i64().unwrap() >= 2, "{status}");
    home.push(&url);
    stopped(&responder, &mut events, "events.login").await;

    // An activation for an account Warden does not manage: written 0600, decoded.
    let outside = KeyPair::generate(KeyKind::Account)
        .account_public_key()
        .unwrap()
        .to_string();
    let file = home.path().join("outside.jwt");
    home.ok(&[
        "activation",
        "create",
        "SVC",
        "--subject",
        "svc.time",
        "--target",
        &outside,
        "--expiry",
        "30d",
        "-o",
        file.to_str().unwrap(),
    ]);
    home.creds_file("outside.jwt");
    let d = home.json(&["describe", file.to_str().unwrap()]);
    assert_eq!(d["kind"], "activation", "{d}");
    assert_eq!(d["subject"], outside.as_str(), "{d}");
    assert_eq!(d["issuer"], svc_key.as_str(), "{d}");
    assert_eq!(d["claims"]["nats"]["subject"], "svc.time", "{d}");
    assert_eq!(d["claims"]["nats"]["kind"], "service", "{d}");
    assert!(d["claims"]["exp"].as_i64().unwrap() > 0, "{d}");
    assert_eq!(d["issues"], serde_json::json!([]), "{d}");
    // A user key is no target, nor is an unknown account; an unexported subject is none.
    let user_key = KeyPair::generate(KeyKind::User).public_key().to_string();
    let e = home.fails(
        2,
        &[
            "activation",
            "create",
            "SVC",
            "--subject",
            "svc.time",
            "--target",
            &user_key,
        ],
    );
    assert!(e.contains("not an account public key"), "{e}");
    home.fails(
        1,
        &[
            "activation",
            "create",
            "SVC",
            "--subject",
            "svc.time",
            "--target",
            "NOPE",
        ],
    );
    let e = home.fails(
        1,
        &[
            "activation",
            "create",
            "SVC",
            "--subject",
            "svc.date",
            "--target",
            &outside,
        ],
    );
    assert!(e.contains("svc.date"), "{e}");

    // Bad input: clear errors, nothing changed.
    let state = accounts(&home, &["SVC", "APP"]);
    let cases: &[(i32, &[&str], &str)] = &[
        (
            2,
            &["account", "export", "add", "SVC", "--subject", ""],
            "subject",
        ),
        (
            2,
            &["account", "export", "add", "SVC", "--subject", " "],
            "subject",
        ),
        (
            1,
            &["account", "export", "add", "NOPE", "--subject", "x.y"],
            "NOPE",
        ),
        (
            1,
            &[
                "account",
                "export",
                "add",
                "SVC",
                "--subject",
                "svc.time",
                "--service",
            ],
            "already exports",
        ),
        (
            1,
            &[
                "account",
                "export",
                "add",
                "SVC",
                "--subject",
                "svc.>",
                "--service",
            ],
            "overlaps",
        ),
        (
            2,
            &[
                "account",
                "export",
                "add",
                "SVC",
                "--subject",
                "s.x",
                "--response-type",
                "stream",
            ],
            "response type",
        ),
        (
            2,
            &[
                "account",
                "export",
                "add",
                "SVC",
                "--subject",
                "s.x",
                "--account-token-position",
                "1",
            ],
            "wildcard",
        ),
        (
            2,
            &[
                "account",
                "import",
                "add",
                "APP",
                "--from",
                "SVC",
                "--subject",
                "missing.x",
            ],
            "no export covering",
        ),
        (
            1,
            &[
                "account",
                "import",
                "add",
                "APP",
                "--from",
                "NOPE",
                "--subject",
                "svc.time",
            ],
            "NOPE",
        ),
        (
            2,
            &[
                "account",
                "import",
                "add",
                "APP",
                "--from",
                "SVC",
                "--subject",
                "svc.time",
                "--stream",
            ],
            "as a service, not a stream",
        ),
        (
            2,
            &[
                "account",
                "import",
                "add",
                "APP",
                "--from",
                "APP",
                "--subject",
                "svc.time",
            ],
            "itself",
        ),
        (
            1,
            &[
                "account",
                "import",
                "rm",
                "APP",
                "--subject",
                "nothing.here",
            ],
            "nothing.here",
        ),
        (
            1,
            &[
                "account",
                "export",
                "rm",
                "SVC",
                "--subject",
                "nothing.here",
            ],
            "nothing.here",
        ),
        (
            2,
            &["account", "export", "edit", "SVC", "--subject", "svc.time"],
            "nothing to change",
        ),
    ];
    for (code, args, needle) in cases {
        let e = home.fails(*code, args);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    assert_eq!(accounts(&home, &["SVC", "APP"]), state);

    // Limits: no wildcard exports, at most one export.
    home.ok(&[
        "account",
        "add",
        "LIM",
        "--exports",
        "1",
        "--wildcard-exports",
        "false",
    ]);
    let lim = accounts(&home, &["LIM"]);
    let e = home.fails(2, &["account", "export", "add", "LIM", "--subject", "a.*"]);
    assert!(e.contains("wildcard"), "{e}");
    assert_eq!(accounts(&home, &["LIM"]), lim);
    home.json(&["account", "export", "add", "LIM", "--subject", "a.b"]);
    let lim = accounts(&home, &["LIM"]);
    let e = home.fails(2, &["account", "export", "add", "LIM", "--subject", "c.d"]);
    assert!(e.contains("at most 1 exports"), "{e}");
    assert_eq!(accounts(&home, &["LIM"]), lim);
    // A service import of LIM's stream export is refused, naming the export's type.
    let state = accounts(&home, &["LIM", "APP"]);
    let e = home.fails(
        2,
        &[
            "account",
            "import",
            "add",
            "APP",
            "--from",
            "LIM",
            "--subject",
            "a.b",
            "--service",
        ],
    );
    assert!(e.contains("as a stream, not a service"), "{e}");
    assert_eq!(accounts(&home, &["LIM", "APP"]), state);

    // Removing the import of the service: APP re-signed, the list shrinks.
    home.json(&["account", "import", "rm", "APP", "--subject", "app.time"]);
    let imports = home.json(&["account", "import", "list", "APP"]);
    assert_eq!(imports, serde_json::json!([]));
    home.push(&url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_2_9() {
    sharing(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_2_15() {
    sharing(ServerLine::V2_15).await;
}
