//! Account signing keys and roles against real nats-server processes (2.9.10 and
//! 2.15.x): a role's template gives its users exactly what it says (functions and tags
//! expanded by the server, `user explain` agreeing), templates inside a token, a
//! missing tag, signing key rotation and removal, user key rotation, and bad input
//! refused with nothing changed.

mod common;

use std::time::Duration;

use common::{Client, Home, connect, refused_eventually};
use futures::StreamExt;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// Subscribes to `subject` and requires the server's permissions violation for it.
async fn subscribe_refused(c: &mut Client, subject: &str, what: &str) {
    let _sub = c
        .client
        .subscribe(subject.to_string())
        .await
        .expect("subscribe call");
    c.client.flush().await.expect("flush");
    let e = c
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("{what}: subscription to {subject} was not refused"));
    let l = e.to_lowercase();
    assert!(
        l.contains("permissions violation") && l.contains("subscription") && e.contains(subject),
        "{what}: {e}"
    );
}

/// Requests `subject` on `c` and answers it on the same connection (so the server has
/// the subscription before the request: one connection's commands keep their order),
/// replying through the response permission.
async fn request_answered(c: &Client, subject: &str, what: &str) {
    let mut sub = c.client.subscribe(subject.to_string()).await.unwrap();
    let r = c.client.clone();
    let task = tokio::spawn(async move {
        if let Some(m) = sub.next().await
            && let Some(reply) = m.reply
        {
            r.publish(reply, "pong".into()).await.unwrap();
            r.flush().await.unwrap();
        }
    });
    let answer = tokio::time::timeout(WAIT, c.client.request(subject.to_string(), "ping".into()))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in time"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(&answer.payload[..], b"pong", "{what}");
    task.await.unwrap();
}

fn creds(home: &Home, account: &str, user: &str) -> String {
    home.ok(&["creds", account, user])
}

fn explain(home: &Home, user: &str, dir: &str, subject: &str, version: &str) -> bool {
    let v = home.json(&[
        "user",
        "explain",
        user,
        "-a",
        "APP",
        dir,
        subject,
        "--server-version",
        version,
    ]);
    v["allowed"].as_bool().expect("allowed")
}

/// Everything a refused command must leave as it was.
fn snapshot(home: &Home) -> (String, String, String, serde_json::Value) {
    let status = home.json(&["status"]);
    (
        home.ok(&["--json", "account", "show", "APP"]),
        home.ok(&["--json", "user", "list", "-a", "APP"]),
        home.ok(&["--json", "account", "signing-key", "list", "APP"]),
        serde_json::json!([status["ledger_events"], status["outbox_pending"]]),
    )
}

async fn templates(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "SKOP"]);
    home.ok(&["account", "add", "APP"]);
    let added = home.json(&[
        "account",
        "signing-key",
        "add",
        "APP",
        "--role",
        "dev",
        "--allow-pub",
        "u.{{name()}}.>,d.{{tag(dept)}},acc.{{account-name()}},k.{{subject()}}",
        "--allow-sub",
        "u.{{name()}}.>,d.{{tag(dept)}},acc.{{account-name()}},_INBOX.>",
        "--deny-pub",
        "u.{{name()}}.secret",
        "--allow-pub-response",
    ]);
    assert_eq!(added["signing_key"]["role"], "dev", "{added}");
    assert_eq!(added["signing_key"]["kind"], "user_scope");
    let alice = home.json(&[
        "user",
        "add",
        "alice",
        "-a",
        "APP",
        "--role",
        "dev",
        "--tag",
        "dept:eng,dept:ops",
    ]);
    assert_eq!(alice["role"], "dev");
    let alice_key = alice["user"]["public_key"].as_str().unwrap().to_string();
    // A role's user carries no permissions of its own.
    assert!(
        alice["user"]["spec"]["permissions"]["pub"]
            .get("allow")
            .is_none(),
        "{alice}"
    );
    // Without the tag the template names, that subject is not granted (a warning says so).
    let dave = home.run(&["user", "add", "dave", "-a", "APP", "--role", "dev"]);
    assert!(dave.status.success());
    let warn = String::from_utf8_lossy(&dave.stderr);
    assert!(
        warn.contains("d.{{tag(dept)}}") && warn.contains("dept"),
        "{warn}"
    );
    // A deny subject whose tag is missing: the server refuses the connect.
    home.ok(&[
        "account",
        "signing-key",
        "add",
        "APP",
        "--role",
        "strict",
        "--deny-pub",
        "s.{{tag(dept)}}",
    ]);
    home.ok(&["user", "add", "erin", "-a", "APP", "--role", "strict"]);
    home.ok(&[
        "user", "add", "fay", "-a", "APP", "--role", "strict", "--tag", "dept:eng",
    ]);
    // Templates inside a token.
    let tok = home.run(&[
        "account",
        "signing-key",
        "add",
        "APP",
        "--role",
        "tok",
        "--allow-pub",
        "x.{{name()}}z,y.b{{tag(dept)}}",
    ]);
    assert!(tok.status.success());
    assert!(
        String::from_utf8_lossy(&tok.stderr).contains("inside a token"),
        "{tok:?}"
    );
    home.ok(&[
        "user", "add", "carol", "-a", "APP", "--role", "tok", "--tag", "dept:eng",
    ]);

    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let v = bin.version.as_str();

    let mut a = connect(&url, &creds(&home, "APP", "alice"))
        .await
        .expect("alice connects");
    // Request/reply within the template (_INBOX.> to subscribe, replies through the
    // response permission).
    request_answered(&a, "u.alice.svc", "alice to alice").await;
    for s in ["u.alice.x", "d.eng", "d.ops", "acc.APP"] {
        a.publish_delivered(s, "alice").await;
        assert!(explain(&home, "alice", "--pub", s, v), "explain pub {s}");
        assert!(explain(&home, "alice", "--sub", s, v), "explain sub {s}");
    }
    // {{subject()}} is the user's public key; the template grants no subscription to it.
    let k = format!("k.{alice_key}");
    assert!(explain(&home, "alice", "--pub", &k, v));
    assert!(!explain(&home, "alice", "--sub", &k, v));
    subscribe_refused(&mut a, &k, "alice sub k.<key>").await;
    for s in ["u.bob.x", "d.sales", "acc.OTHER", "other", "u.alice.secret"] {
        a.publish_refused(s, "alice").await;
        assert!(!explain(&home, "alice", "--pub", s, v), "explain pub {s}");
    }
    subscribe_refused(&mut a, "u.bob.x", "alice sub").await;
    assert!(!explain(&home, "alice", "--sub", "u.bob.x", v));
    // dave lacks the dept tag: d.{{tag(dept)}} is dropped, the rest stays.
    let mut d = connect(&url, &creds(&home, "APP", "dave"))
        .await
        .expect("dave connects");
    d.publish_delivered("u.dave.x", "dave").await;
    d.publish_refused("d.eng", "dave").await;
    assert!(!explain(&home, "dave", "--pub", "d.eng", v));
    assert!(explain(&home, "dave", "--pub", "u.dave.x", v));

    // erin lacks the tag a deny subject names: refused at connect; fay has it.
    let e = connect(&url, &creds(&home, "APP", "erin")).await;
    assert!(e.is_err(), "erin connected");
    let show = home.json(&["user", "show", "erin", "-a", "APP", "--server-version", v]);
    assert!(
        show["effective"]["connect_refused"]
            .as_str()
            .is_some_and(|w| w.contains("dept")),
        "{show}"
    );
    let mut f = connect(&url, &creds(&home, "APP", "fay"))
        .await
        .expect("fay connects");
    f.publish_refused("s.eng", "fay").await;
    f.publish_delivered("s.ops", "fay").await;

    // Inside a token: expanded by 2.15, literal on 2.9.
    let mut c = connect(&url, &creds(&home, "APP", "carol"))
        .await
        .expect("carol connects");
    match line {
        ServerLine::V2_15 => {
            c.publish_delivered("x.carolz", "carol").await;
            c.publish_delivered("y.beng", "carol").await;
            c.publish_refused("x.{{name()}}z", "carol").await;
        }
        ServerLine::V2_9 => {
            c.publish_refused("x.carolz", "carol").await;
            c.publish_refused("y.beng", "carol").await;
            c.publish_delivered("x.{{name()}}z", "carol").await;
            c.publish_delivered("y.b{{tag(dept)}}", "carol").await;
        }
    }
    for (s, on_2_15) in [
        ("x.carolz", true),
        ("y.beng", true),
        ("x.{{name()}}z", false),
    ] {
        let want = if line == ServerLine::V2_15 {
            on_2_15
        } else {
            !on_2_15
        };
        assert_eq!(
            explain(&home, "carol", "--pub", s, v),
            want,
            "explain {s} on {v}"
        );
    }

    // `user show` gives the template evaluated for the user.
    let show = home.json(&["user", "show", "alice", "-a", "APP", "--server-version", v]);
    let allow: Vec<&str> = show["effective"]["limits"]["pub"]["allow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(allow.contains(&"d.eng") && allow.contains(&"d.ops") && allow.contains(&"u.alice.>"));
    assert_eq!(show["effective"]["role"], "dev");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_templates_2_9() {
    templates(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_templates_2_15() {
    templates(ServerLine::V2_15).await;
}

async fn rotation(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "SKOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&[
        "account",
        "signing-key",
        "add",
        "APP",
        "--role",
        "dev",
        "--allow-pubsub",
        "u.{{name()}}.>",
    ]);
    let plain = home.json(&["account", "signing-key", "add", "APP"]);
    assert_eq!(plain["signing_key"]["kind"], "plain");
    home.ok(&["user", "add", "alice", "-a", "APP", "--role", "dev"]);
    home.ok(&["user", "add", "bob", "-a", "APP", "--allow-pubsub", "b.>"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.push(&url);

    let alice_old = creds(&home, "APP", "alice");
    let bob_old = creds(&home, "APP", "bob");
    connect(&url, &alice_old).await.expect("alice connects");
    connect(&url, &bob_old).await.expect("bob connects");

    // A key that signed live users cannot just go: the refusal names them, nothing changes.
    let before = snapshot(&home);
    let err = home.fails(1, &["account", "signing-key", "rm", "APP", "--role", "dev"]);
    assert!(
        err.contains("1 live user") && err.contains("alice") && err.contains("rotate"),
        "{err}"
    );
    assert_eq!(snapshot(&home), before);

    // Rotating the role's key re-issues alice (same nkey) and drops the old key.
    let old_key = home.json(&["account", "signing-key", "list", "APP"])[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let alice_pk = home.json(&["user", "show", "alice", "-a", "APP"])["public_key"].clone();
    let r = home.json(&["account", "signing-key", "rotate", "APP", "--role", "dev"]);
    assert_eq!(r["old_key"], old_key.as_str());
    assert_eq!(r["reissued"], serde_json::json!(["alice"]));
    assert_eq!(r["signing_key"]["role"], "dev");
    assert_ne!(r["signing_key"]["key"], old_key.as_str());
    assert_eq!(
        home.json(&["user", "show", "alice", "-a", "APP"])["public_key"],
        alice_pk
    );
    home.push(&url);
    let e = refused_eventually(&url, &alice_old, "alice's JWT signed by the old key").await;
    eprintln!("old-key creds refused: {e}");
    let mut a = connect(&url, &creds(&home, "APP", "alice"))
        .await
        .expect("re-issued alice");
    a.publish_delivered("u.alice.x", "alice after rotation")
        .await;
    a.publish_refused("u.bob.x", "alice after rotation").await;
    connect(&url, &bob_old)
        .await
        .expect("bob (identity key) untouched");

    // The plain key (no users) is removed by its key.
    let plain_key = plain["signing_key"]["key"].as_str().unwrap();
    home.ok(&["account", "signing-key", "rm", "APP", plain_key]);
    assert_eq!(
        home.json(&["account", "signing-key", "list", "APP"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // User rotation: a new nkey, the old one revoked; old creds refused once pushed.
    let out = home.path().join("alice2.creds");
    let rot = home.json(&[
        "user",
        "rotate",
        "alice",
        "-a",
        "APP",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ne!(rot["public_key"], alice_pk, "{rot}");
    assert_eq!(rot["old_key"], alice_pk);
    let alice_new = home.creds_file("alice2.creds");
    let alice_mid = creds(&home, "APP", "alice");
    assert_eq!(alice_mid, alice_new);
    let bob_rot = home.path().join("bob2.creds");
    home.ok(&[
        "user",
        "rotate",
        "bob",
        "-a",
        "APP",
        "-o",
        bob_rot.to_str().unwrap(),
    ]);
    let bob_new = home.creds_file("bob2.creds");
    home.push(&url);
    refused_eventually(&url, &bob_old, "bob's old creds").await;
    let mut b = connect(&url, &bob_new).await.expect("bob's new creds");
    b.publish_delivered("b.x", "bob after rotation").await;
    b.publish_refused("u.bob.x", "bob after rotation").await;
    let mut a = connect(&url, &alice_new).await.expect("alice's new creds");
    a.publish_delivered("u.alice.y", "alice after user rotation")
        .await;

    // Once its users are gone, the role's key can be removed.
    home.ok(&["user", "delete", "alice", "-a", "APP"]);
    home.ok(&["account", "signing-key", "rm", "APP", "--role", "dev"]);
    assert!(
        home.json(&["account", "signing-key", "list", "APP"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_2_9() {
    rotation(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_2_15() {
    rotation(ServerLine::V2_15).await;
}

#[test]
fn bad_input_changes_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "SKOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&[
        "account",
        "signing-key",
        "add",
        "APP",
        "--role",
        "dev",
        "--allow-pub",
        "a.>",
    ]);
    home.ok(&["user", "add", "alice", "-a", "APP", "--role", "dev"]);
    let before = snapshot(&home);
    let cases: &[(i32, &[&str], &str)] = &[
        (
            1,
            &["account", "signing-key", "add", "APP", "--role", "dev"],
            "already has role",
        ),
        (
            2,
            &["account", "signing-key", "add", "APP", "--role", " "],
            "blank",
        ),
        (
            2,
            &["account", "signing-key", "add", "APP", "--allow-pub", "a.b"],
            "--role",
        ),
        (
            2,
            &[
                "account",
                "signing-key",
                "add",
                "APP",
                "--role",
                "x",
                "--allow-pub",
                "",
            ],
            "empty subject",
        ),
        (
            2,
            &[
                "account",
                "signing-key",
                "add",
                "APP",
                "--role",
                "x",
                "--allow-pub",
                "a.{{nope()}}",
            ],
            "unknown template function",
        ),
        (
            2,
            &[
                "account",
                "signing-key",
                "add",
                "APP",
                "--role",
                "x",
                "--allow-pub",
                "a.{{tag()}}",
            ],
            "tag key",
        ),
        (
            1,
            &["user", "add", "bob", "-a", "APP", "--role", "nope"],
            "role \"nope\"",
        ),
        (
            2,
            &[
                "user",
                "add",
                "bob",
                "-a",
                "APP",
                "--role",
                "dev",
                "--allow-pub",
                "x",
            ],
            "--allow-pub",
        ),
        (
            2,
            &[
                "user", "add", "bob", "-a", "APP", "--role", "dev", "--subs", "3",
            ],
            "--subs",
        ),
        (
            2,
            &["user", "edit", "alice", "-a", "APP", "--allow-pub", "x"],
            "role",
        ),
        (
            1,
            &["account", "signing-key", "rotate", "APP", "AAAANOTAKEY"],
            "not found",
        ),
        (
            1,
            &["account", "signing-key", "rm", "APP", "--role", "nope"],
            "not found",
        ),
        (2, &["account", "signing-key", "rm", "APP"], "--role"),
        (
            1,
            &["account", "signing-key", "rm", "APP", "--role", "dev"],
            "rotate",
        ),
        (1, &["account", "signing-key", "list", "NOPE"], "not found"),
        (
            2,
            &["user", "explain", "alice", "--pub", "a.b"],
            "-a ACCOUNT",
        ),
        (
            2,
            &[
                "user",
                "explain",
                "alice",
                "-a",
                "APP",
                "--pub",
                "a.b",
                "--server-version",
                "x",
            ],
            "version",
        ),
        (1, &["user", "rotate", "nobody", "-a", "APP"], "not found"),
    ];
    for (code, args, want) in cases {
        let err = home.fails(*code, args);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(snapshot(&home), before, "{args:?} changed something");
    }
}
