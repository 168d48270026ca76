//! Identity governance end to end, against real nats-server processes (2.9.10 and
//! 2.15.x): directory users, a role and a task; a proposal to add a user to the role;
//! an unauthorised confirm refused (nothing changes); the owner's confirm re-issues the
//! user's NATS user so the server now lets them publish on the task's subject (it did
//! not before, and the previous creds are revoked); the membership expires under
//! `warden serve` and the server refuses again; rejection, batch approval, `explain`,
//! the ledger and `audit verify`.

mod common;

use std::time::{Duration, Instant};

use common::{Home, Serve, connect, refused_eventually};
use futures::StreamExt;
use serde_json::Value;
use warden_ops::now;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);
/// How long the membership granted in the scenario lasts: long enough for the steps
/// between the confirmation and the check that the grant works, on a loaded machine.
const GRANT_SECS: i64 = 25;

fn count(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    eprintln!("running against nats-server {v}");
    let home = Home::new();
    home.ok(&["init", "--name", "GOVOP"]);
    home.ok(&["account", "add", "APP"]);

    // Directory users: the first one becomes a system administrator.
    let admin = home.json(&["dir", "user", "add", "admin", "--name", "Ada Admin"]);
    assert_eq!(admin["sysadmin"], true, "{admin}");
    assert_eq!(admin["id"], "admin");
    for (id, name, manager) in [
        ("olivia", "Olivia Owner", None),
        ("ulrich", "Ulrich User", Some("olivia")),
        ("mallory", "Mallory", None),
    ] {
        let mut args = vec!["dir", "user", "add", id, "--name", name, "--as", "admin"];
        if let Some(m) = manager {
            args.extend(["--manager", m]);
        }
        let u = home.json(&args);
        assert_eq!(u["sysadmin"], false, "{u}");
    }
    // Bad input: usage errors, nothing added.
    home.fails(2, &["dir", "user", "add", "Bad Name", "--name", "x"]);
    let e = home.fails(
        1,
        &[
            "dir", "user", "add", "eve", "--name", "Eve", "--as", "mallory",
        ],
    );
    assert!(e.contains("system administrator"), "{e}");
    assert_eq!(
        home.json(&["dir", "user", "list"])
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Tasks: one the user already holds (so they have creds before), one they will get.
    home.json(&[
        "task",
        "create",
        "status-read",
        "--account",
        "APP",
        "--allow-sub",
        "status.>",
        "--owner",
        "admin",
        "--as",
        "admin",
    ]);
    let t = home.json(&[
        "task",
        "create",
        "orders",
        "--account",
        "APP",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "orders.>",
        "--deny-pub",
        "orders.secret",
        "--owner",
        "admin",
        "--as",
        "admin",
    ]);
    assert_eq!(t["id"], "orders");
    home.fails(
        2,
        &[
            "task",
            "create",
            "bad",
            "--account",
            "APP",
            "--allow-pub",
            "a..b",
            "--owner",
            "admin",
        ],
    );
    let e = home.fails(
        1,
        &[
            "task",
            "create",
            "t2",
            "--account",
            "APP",
            "--allow-pub",
            "x",
            "--owner",
            "admin",
            "--as",
            "olivia",
        ],
    );
    assert!(e.contains("system administrator"), "{e}");

    home.json(&[
        "role", "create", "readers", "--owner", "olivia", "--as", "olivia",
    ]);
    home.json(&[
        "role", "create", "sales", "--owner", "olivia", "--as", "olivia",
    ]);
    // Tasks into roles: approved by the task's owner (admin), not the role's owner.
    let mut ids = Vec::new();
    for (role, task) in [("readers", "status-read"), ("sales", "orders")] {
        let p = home.json(&[
            "propose",
            "role-task",
            "add",
            "--role",
            role,
            "--task",
            task,
            "--as",
            "olivia",
        ]);
        assert_eq!(p["message"], "PROPOSE_ADD_ROLE_TASK", "{p}");
        assert_eq!(p["approvers"], serde_json::json!(["admin"]), "{p}");
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    let e = home.fails(1, &["confirm", &ids[0], "--as", "olivia"]);
    assert!(
        e.contains("may not") && e.contains("owner of the task"),
        "{e}"
    );
    // Batch approval: each id its own transaction, a result per id; one bad id fails
    // the command (exit 1) but not the others.
    let out = home.run(&[
        "--json", "confirm", &ids[0], &ids[1], "p999", "--as", "admin",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let results: Value = serde_json::from_slice(&out.stdout).expect("batch JSON");
    assert_eq!(results[0]["ok"], true, "{results}");
    assert_eq!(results[1]["ok"], true, "{results}");
    assert_eq!(results[2]["ok"], false, "{results}");
    assert!(
        results[2]["error"].as_str().unwrap().contains("not found"),
        "{results}"
    );

    // Ulrich joins `readers` (self-proposed, approved by its owner): his first NATS user.
    let p = home.json(&[
        "propose",
        "role-member",
        "add",
        "--role",
        "readers",
        "--user",
        "ulrich",
        "--as",
        "ulrich",
    ]);
    let c = home.json(&["confirm", p["id"].as_str().unwrap(), "--as", "olivia"]);
    assert_eq!(c["status"], "confirmed", "{c}");
    assert_eq!(c["reissued"][0]["account"], "APP", "{c}");
    assert!(c["reissued"][0]["revoked"].is_null(), "{c}");
    let creds_before = home.ok(&["creds", "APP", "ulrich"]);

    let server = home.start_nats(&bin, "gov");
    let url = server.url();
    home.push(&url);

    let mut before = connect(&url, &creds_before)
        .await
        .unwrap_or_else(|e| panic!("[{v}] ulrich refused: {e}"));
    before
        .publish_refused("orders.new", &format!("[{v}] before the grant"))
        .await;

    // The proposal that matters: ulrich into sales, for GRANT_SECS.
    let expires = format!("@{}", now() + GRANT_SECS);
    let p = home.json(&[
        "propose",
        "role-member",
        "add",
        "--role",
        "sales",
        "--user",
        "ulrich",
        "--expires",
        &expires,
        "--reason",
        "quarter end",
        "--as",
        "ulrich",
    ]);
    let pid = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["message"], "PROPOSE_ADD_ROLE_MEMBER");
    assert_eq!(p["status"], "open");
    assert_eq!(p["approvers"], serde_json::json!(["olivia"]));
    let to_approve = home.json(&["proposals", "list", "--to-approve", "--as", "olivia"]);
    assert!(
        to_approve
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == pid.as_str()),
        "{to_approve}"
    );
    let none = home.json(&["proposals", "list", "--to-approve", "--as", "mallory"]);
    assert_eq!(none, serde_json::json!([]));
    let mine = home.json(&["proposals", "list", "--mine", "--as", "ulrich"]);
    assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
    home.fails(2, &["confirm", &pid]); // no --as

    // Unauthorised confirm: refused, exit 1, nothing changes.
    let ledger_before = home.ledger().len();
    let e = home.fails(1, &["confirm", &pid, "--as", "mallory"]);
    assert!(
        e.contains("refused") && e.contains("mallory may not"),
        "{e}"
    );
    let e = home.fails(1, &["confirm", &pid, "--as", "ulrich"]);
    assert!(e.contains("may not"), "{e}");
    assert_eq!(
        home.ledger().len(),
        ledger_before,
        "a refused confirm wrote to the ledger"
    );
    assert_eq!(home.json(&["proposals", "show", &pid])["status"], "open");
    assert_eq!(home.ok(&["creds", "APP", "ulrich"]), creds_before);

    // The owner confirms: ulrich's NATS user is re-issued, the old key revoked.
    let old_key = home.json(&["user", "show", "ulrich", "-a", "APP"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let c = home.json(&[
        "confirm",
        &pid,
        "--justification",
        "approved",
        "--as",
        "olivia",
    ]);
    assert_eq!(c["status"], "confirmed", "{c}");
    assert_eq!(c["closer"], "olivia");
    assert_eq!(c["message"], "CONFIRM_ADD_ROLE_MEMBER");
    let revoked = c["reissued"][0]["revoked"]
        .as_str()
        .expect("previous key revoked")
        .to_string();
    assert_eq!(revoked, old_key);
    let acc = home.json(&["account", "show", "APP"]);
    assert!(acc["spec"]["revocations"][&old_key].is_i64(), "{acc}");
    let creds_granted = home.ok(&["creds", "APP", "ulrich"]);
    assert_ne!(creds_granted, creds_before);
    home.fails(1, &["confirm", &pid, "--as", "olivia"]); // already closed
    home.push(&url);

    let e = refused_eventually(&url, &creds_before, &format!("[{v}] revoked creds")).await;
    assert!(e.to_lowercase().contains("authorization"), "[{v}] {e}");
    let mut granted = connect(&url, &creds_granted)
        .await
        .unwrap_or_else(|e| panic!("[{v}] new creds refused: {e}"));
    granted
        .publish_delivered("orders.new", &format!("[{v}] granted"))
        .await;
    granted
        .publish_refused("orders.secret", &format!("[{v}] denied by the task"))
        .await;

    let ex = home.json(&[
        "user",
        "explain",
        "ulrich",
        "orders.new",
        "--account",
        "APP",
    ]);
    assert_eq!(ex[0]["direction"], "publish");
    assert_eq!(ex[0]["allowed"], true, "{ex}");
    assert_eq!(ex[0]["allowed_by"][0]["role"], "sales");
    assert_eq!(ex[0]["allowed_by"][0]["task"], "orders");
    let ex = home.json(&["user", "explain", "ulrich", "orders.secret"]);
    assert_eq!(ex[0]["allowed"], false, "{ex}");
    assert_eq!(ex[0]["denied_by"][0]["task"], "orders");

    // Rejection: recorded with its reason.
    let p = home.json(&[
        "propose",
        "role-member",
        "add",
        "--role",
        "sales",
        "--user",
        "mallory",
        "--as",
        "mallory",
    ]);
    let r = home.json(&[
        "reject",
        p["id"].as_str().unwrap(),
        "--reason",
        "not in sales",
        "--as",
        "olivia",
    ]);
    assert_eq!(r["status"], "rejected");
    assert_eq!(r["message"], "REJECT_ADD_ROLE_MEMBER");
    assert_eq!(r["justification"], "not in sales");

    // The membership expires: `serve` removes it and re-issues ulrich, the relay pushes.
    let _serve = Serve::start_with(&home, &url, &["--dir-expire-every", "1s"]);

    // Open proposals reach approvers on the change stream (serve relays the ledger).
    let backend = connect(&url, &home.ok(&["creds", "BACKEND", "backend"]))
        .await
        .expect("backend connects");
    let mut stream = backend
        .client
        .subscribe("WARDEN.events.proposal.>")
        .await
        .expect("subscribe");
    backend.client.flush().await.expect("flush");
    let m = home.json(&[
        "propose",
        "manager",
        "--user",
        "ulrich",
        "--manager",
        "admin",
        "--as",
        "ulrich",
    ]);
    assert_eq!(m["message"], "PROPOSE_UPDATE_USER_MANAGER");
    let mid = m["id"].as_str().unwrap().to_string();
    let stream_deadline = Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout(
            stream_deadline.saturating_duration_since(Instant::now()),
            stream.next(),
        )
        .await
        .unwrap_or_else(|_| panic!("[{v}] proposal.open not on the change stream"))
        .expect("subscription open");
        let event: Value = serde_json::from_slice(&msg.payload).expect("event JSON");
        if event["object_key"] == mid.as_str() {
            assert_eq!(msg.subject.as_str(), "WARDEN.events.proposal.open");
            assert_eq!(event["summary"]["approvers"], serde_json::json!(["admin"]));
            break;
        }
    }
    // The proposed manager approves a manager change; olivia (the current one) may not.
    home.fails(1, &["confirm", &mid, "--as", "olivia"]);
    home.json(&["confirm", &mid, "--as", "admin"]);
    let u = home.json(&["dir", "user", "show", "ulrich"]);
    assert_eq!(u["user"]["manager"], "admin", "{u}");
    let deadline =
        Instant::now() + Duration::from_secs(GRANT_SECS as u64) + Duration::from_secs(30);
    let creds_expired = loop {
        let now_creds = home.ok(&["creds", "APP", "ulrich"]);
        if now_creds != creds_granted {
            break now_creds;
        }
        assert!(
            Instant::now() < deadline,
            "[{v}] the membership never expired"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let e = refused_eventually(
        &url,
        &creds_granted,
        &format!("[{v}] creds of the expired grant"),
    )
    .await;
    assert!(e.to_lowercase().contains("authorization"), "[{v}] {e}");
    let mut expired = connect(&url, &creds_expired)
        .await
        .unwrap_or_else(|e| panic!("[{v}] post-expiry creds refused: {e}"));
    expired
        .publish_refused("orders.new", &format!("[{v}] after expiry"))
        .await;
    let ex = home.json(&[
        "user",
        "explain",
        "ulrich",
        "orders.new",
        "--account",
        "APP",
    ]);
    assert_eq!(ex[0]["allowed"], false, "{ex}");
    let u = home.json(&["dir", "user", "show", "ulrich"]);
    let rels = u["relationships"].as_array().unwrap();
    assert!(
        rels.iter().all(|r| r["address"]["object_id"] != "sales"),
        "{u}"
    );
    assert!(
        rels.iter().any(|r| r["address"]["object_id"] == "readers"),
        "{u}"
    );

    // Every step is in the ledger, and the chain verifies.
    let events = home.ledger();
    assert_eq!(count(&events, "dir.user.create"), 4);
    assert_eq!(count(&events, "dir.task.create"), 2);
    assert_eq!(count(&events, "dir.role.create"), 2);
    assert_eq!(count(&events, "proposal.open"), 6);
    assert_eq!(count(&events, "proposal.confirm"), 5);
    assert_eq!(count(&events, "proposal.reject"), 1);
    // ulrich: joined readers, joined sales, sales expired; olivia, owner of both roles
    // (owner implies member): each role gaining its task.
    assert_eq!(count(&events, "dir.user.reissue"), 5);
    let reissued: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "dir.user.reissue")
        .map(|e| e["object_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        reissued,
        vec!["olivia", "olivia", "ulrich", "ulrich", "ulrich"]
    );
    assert_eq!(count(&events, "dir.expire"), 1);
    let open = events
        .iter()
        .find(|e| e["action"] == "proposal.open" && e["object_key"] == pid.as_str())
        .expect("the proposal's open event");
    assert_eq!(open["actor"], "dir:ulrich");
    assert_eq!(open["summary"]["approvers"], serde_json::json!(["olivia"]));
    let verify = home.ok(&["audit", "verify"]);
    assert!(verify.contains("ledger intact"), "{verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_nats_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_nats_2_15() {
    scenario(ServerLine::V2_15).await;
}

/// `warden token create --dir-user ID`: a token bound to a directory user (read, write and
/// creds — for registering that user's own key only — shown in `token list`); `--scope` with it is a usage error, an unknown user a failure,
/// and neither creates a token.
#[test]
fn tokens_bound_to_directory_users_from_the_cli() {
    let home = Home::new();
    home.ok(&["init", "--name", "GOVOP"]);
    home.json(&["dir", "user", "add", "admin", "--name", "Ada"]);
    home.json(&[
        "dir", "user", "add", "olivia", "--name", "Olivia", "--as", "admin",
    ]);
    let listed = |home: &Home| home.json(&["token", "list"]).as_array().unwrap().len();

    home.fails(
        2,
        &[
            "token",
            "create",
            "--name",
            "o",
            "--dir-user",
            "olivia",
            "--scope",
            "admin",
        ],
    );
    let e = home.fails(
        1,
        &["token", "create", "--name", "o", "--dir-user", "nobody"],
    );
    assert!(e.contains("directory user \"nobody\" not found"), "{e}");
    assert_eq!(listed(&home), 0);

    let t = home.json(&["token", "create", "--name", "o", "--dir-user", "olivia"]);
    assert!(t["token"].as_str().unwrap().starts_with("wdn_"), "{t}");
    assert_eq!(t["info"]["dir_user"], "olivia", "{t}");
    assert_eq!(
        t["info"]["scopes"],
        serde_json::json!(["read", "write", "creds"]),
        "{t}"
    );
    let list = home.json(&["token", "list"]);
    assert_eq!(list[0]["dir_user"], "olivia", "{list}");
    let table = home.ok(&["token", "list"]);
    assert!(
        table.contains("acts as") && table.contains("olivia"),
        "{table}"
    );
    let created = home
        .ledger()
        .into_iter()
        .find(|e| e["action"] == "token.create")
        .expect("token.create in the ledger");
    assert_eq!(created["summary"]["dir_user"], "olivia", "{created}");
}
