//! ADD_KEY end to end, against real nats-server processes (2.9.10 and 2.15.x): a
//! directory user with grants registers their own NATS user key (generated here; the
//! seed never reaches Warden). `warden creds` then refuses, `warden jwt` plus the
//! user's seed connect and publish on the task's subject. A proposal removing a grant
//! re-issues the JWT for the *same* key: the key is revoked at T and the new JWT has
//! iat = T + 1, so the server refuses the old JWT and accepts the new one with the
//! reduced permissions. Bad keys and seeds are usage errors, someone else's key is
//! refused, removing the key goes back to a Warden-generated key; ledger and audit.

mod common;

use common::{Home, connect, refused_eventually};
use nats_jwt::{KeyKind, KeyPair, Seed, User};
use serde_json::Value;
use warden_testkit::{NatsServerBinary, ServerLine};

/// The creds the user makes from Warden's JWT and the seed only they hold.
fn own_creds(jwt: &str, seed: &Seed) -> String {
    nats_jwt::format_user_creds(jwt.trim(), seed).expect("creds")
}

fn iat(jwt: &str) -> i64 {
    nats_jwt::decode::<User>(jwt.trim()).expect("user JWT").iat
}

fn keys(home: &Home) -> Vec<Value> {
    home.json(&["dir", "user", "key", "list", "ulrich"])
        .as_array()
        .expect("key list")
        .clone()
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    eprintln!("running against nats-server {v}");
    let home = Home::new();
    home.ok(&["init", "--name", "KEYOP"]);
    home.ok(&["account", "add", "APP"]);
    home.json(&["dir", "user", "add", "admin", "--name", "Ada Admin"]);
    for id in ["ulrich", "mallory"] {
        home.json(&["dir", "user", "add", id, "--name", id, "--as", "admin"]);
    }
    for (task, subject) in [("orders", "orders.>"), ("status", "status.>")] {
        home.json(&[
            "task",
            "create",
            task,
            "--account",
            "APP",
            "--allow-pub",
            subject,
            "--allow-sub",
            subject,
            "--owner",
            "admin",
            "--as",
            "admin",
        ]);
    }
    for (role, task) in [("sales", "orders"), ("readers", "status")] {
        home.json(&["role", "create", role, "--owner", "admin", "--as", "admin"]);
        let p = home.json(&[
            "propose",
            "role-task",
            "add",
            "--role",
            role,
            "--task",
            task,
            "--as",
            "admin",
        ]);
        home.json(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
        let p = home.json(&[
            "propose",
            "role-member",
            "add",
            "--role",
            role,
            "--user",
            "ulrich",
            "--as",
            "ulrich",
        ]);
        home.json(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    }
    let generated = home.ok(&["creds", "APP", "ulrich"]);
    let generated_key = home.json(&["user", "show", "ulrich", "-a", "APP"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();

    // The user's own key: generated here, only the public key goes to Warden.
    let kp = KeyPair::generate(KeyKind::User);
    let seed = kp.seed();
    let pk = kp.public_key().to_string();

    // Bad keys: usage errors (exit 2), nothing changed; a seed is never echoed.
    let ledger_before = home.ledger().len();
    let out = home.run(&[
        "dir",
        "user",
        "key",
        "add",
        "ulrich",
        seed.expose(),
        "--as",
        "ulrich",
    ]);
    assert_eq!(out.status.code(), Some(2), "[{v}] a seed as key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("seed"), "[{v}] {stderr}");
    assert!(
        !stderr.contains(seed.expose()) && !stdout.contains(seed.expose()),
        "[{v}] the seed was echoed"
    );
    let account_key = KeyPair::generate(KeyKind::Account).public_key().to_string();
    let e = home.fails(
        2,
        &[
            "dir",
            "user",
            "key",
            "add",
            "ulrich",
            &account_key,
            "--as",
            "ulrich",
        ],
    );
    assert!(e.contains("not a user public key"), "[{v}] {e}");
    let operator_key = KeyPair::generate(KeyKind::Operator)
        .public_key()
        .to_string();
    home.fails(
        2,
        &[
            "dir",
            "user",
            "key",
            "add",
            "ulrich",
            &operator_key,
            "--as",
            "ulrich",
        ],
    );
    home.fails(
        2,
        &[
            "dir",
            "user",
            "key",
            "add",
            "ulrich",
            "not-a-key",
            "--as",
            "ulrich",
        ],
    );
    // One character changed: the checksum no longer matches.
    let mut broken = pk.clone().into_bytes();
    broken[10] = if broken[10] == b'A' { b'B' } else { b'A' };
    let broken = String::from_utf8(broken).unwrap();
    home.fails(
        2,
        &[
            "dir", "user", "key", "add", "ulrich", &broken, "--as", "ulrich",
        ],
    );
    // Someone else's key: refused (exit 1).
    let e = home.fails(
        1,
        &[
            "dir", "user", "key", "add", "ulrich", &pk, "--as", "mallory",
        ],
    );
    assert!(
        e.contains("refused") && e.contains("mallory may not"),
        "[{v}] {e}"
    );
    assert!(keys(&home).is_empty());
    assert_eq!(
        home.ledger().len(),
        ledger_before,
        "[{v}] refused input wrote to the ledger"
    );
    assert_eq!(home.ok(&["creds", "APP", "ulrich"]), generated);

    // ulrich registers the key: the NATS user is re-issued for it, the generated key revoked.
    let added = home.json(&["dir", "user", "key", "add", "ulrich", &pk, "--as", "ulrich"]);
    assert_eq!(added["reissued"][0]["account"], "APP", "{added}");
    assert_eq!(added["reissued"][0]["public_key"], pk.as_str(), "{added}");
    assert_eq!(
        added["reissued"][0]["revoked"],
        generated_key.as_str(),
        "{added}"
    );
    assert_eq!(keys(&home)[0]["public_key"], pk.as_str());
    home.fails(
        1,
        &["dir", "user", "key", "add", "ulrich", &pk, "--as", "ulrich"],
    ); // twice
    let e = home.fails(1, &["creds", "APP", "ulrich"]);
    assert!(
        e.contains("holds the seed") && e.contains("warden jwt"),
        "[{v}] {e}"
    );
    let jwt_view = home.json(&["jwt", "APP", "ulrich"]);
    assert_eq!(jwt_view["public_key"], pk.as_str());
    assert_eq!(jwt_view["seed_held_by_warden"], false);
    let jwt_granted = home.ok(&["jwt", "APP", "ulrich"]);
    assert_eq!(jwt_granted.trim(), jwt_view["jwt"].as_str().unwrap());
    let creds_granted = own_creds(&jwt_granted, &seed);

    let server = home.start_nats(&bin, "keys");
    let url = server.url();
    home.push(&url);
    let e = refused_eventually(&url, &generated, &format!("[{v}] the generated key")).await;
    assert!(e.to_lowercase().contains("authorization"), "[{v}] {e}");
    let mut own = connect(&url, &creds_granted)
        .await
        .unwrap_or_else(|e| panic!("[{v}] own key refused: {e}"));
    own.publish_delivered("orders.new", &format!("[{v}] own key, granted"))
        .await;
    drop(own);

    // A grant taken away: re-issued for the same key, the old JWT must stop working.
    let p = home.json(&[
        "propose",
        "role-member",
        "remove",
        "--role",
        "sales",
        "--user",
        "ulrich",
        "--as",
        "admin",
    ]);
    let c = home.json(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    assert_eq!(c["reissued"][0]["public_key"], pk.as_str(), "{c}");
    assert_eq!(c["reissued"][0]["revoked"], pk.as_str(), "{c}");
    let jwt_reduced = home.ok(&["jwt", "APP", "ulrich"]);
    assert_ne!(jwt_reduced, jwt_granted);
    let acc = home.json(&["account", "show", "APP"]);
    let revoked_at = acc["spec"]["revocations"][&pk]
        .as_i64()
        .expect("own key revoked");
    assert!(
        revoked_at >= iat(&jwt_granted),
        "[{v}] the old JWT is not covered"
    );
    assert_eq!(iat(&jwt_reduced), revoked_at + 1, "[{v}] new iat");
    let creds_reduced = own_creds(&jwt_reduced, &seed);
    home.push(&url);
    let e = refused_eventually(&url, &creds_granted, &format!("[{v}] the old JWT")).await;
    assert!(e.to_lowercase().contains("authorization"), "[{v}] {e}");
    // The new JWT (iat one second after the revocation, possibly in the future) works.
    let mut reduced = connect(&url, &creds_reduced)
        .await
        .unwrap_or_else(|e| panic!("[{v}] the re-issued JWT refused: {e}"));
    reduced
        .publish_refused("orders.new", &format!("[{v}] grant removed"))
        .await;
    reduced
        .publish_delivered("status.ok", &format!("[{v}] grant kept"))
        .await;
    drop(reduced);

    // Someone else may not remove it; ulrich may: back to a Warden-generated key.
    home.fails(
        1,
        &[
            "dir", "user", "key", "remove", "ulrich", &pk, "--as", "mallory",
        ],
    );
    home.fails(
        2,
        &[
            "dir",
            "user",
            "key",
            "remove",
            "ulrich",
            seed.expose(),
            "--as",
            "ulrich",
        ],
    );
    let removed = home.json(&[
        "dir", "user", "key", "remove", "ulrich", &pk, "--as", "ulrich",
    ]);
    assert_eq!(removed["reissued"][0]["revoked"], pk.as_str(), "{removed}");
    assert_ne!(
        removed["reissued"][0]["public_key"],
        pk.as_str(),
        "{removed}"
    );
    assert!(keys(&home).is_empty());
    let back = home.ok(&["creds", "APP", "ulrich"]);
    assert_eq!(
        home.json(&["jwt", "APP", "ulrich"])["seed_held_by_warden"],
        true
    );
    home.push(&url);
    let e = refused_eventually(&url, &creds_reduced, &format!("[{v}] the removed key")).await;
    assert!(e.to_lowercase().contains("authorization"), "[{v}] {e}");
    let mut back = connect(&url, &back)
        .await
        .unwrap_or_else(|e| panic!("[{v}] generated key refused: {e}"));
    back.publish_delivered("status.ok", &format!("[{v}] generated key again"))
        .await;

    // Ledger: the key events with their documented action names, by the acting user; intact.
    let events = home.ledger();
    let key_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"].as_str().unwrap_or("").starts_with("dir.key."))
        .collect();
    assert_eq!(key_events.len(), 2, "{key_events:?}");
    assert_eq!(key_events[0]["action"], "dir.key.add");
    assert_eq!(key_events[1]["action"], "dir.key.remove");
    for e in &key_events {
        assert_eq!(e["summary"]["message"], "ADD_KEY", "{e}");
        assert_eq!(e["actor"], "dir:ulrich", "{e}");
        assert_eq!(e["summary"]["public_key"], pk.as_str(), "{e}");
    }
    let verify = home.ok(&["audit", "verify"]);
    assert!(verify.contains("ledger intact"), "{verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_key_nats_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_key_nats_2_15() {
    scenario(ServerLine::V2_15).await;
}
