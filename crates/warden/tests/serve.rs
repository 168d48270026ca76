//! `warden serve` against real nats-server processes (2.9.10 and 2.15.x): changes
//! reach the server without a restart, survive a NATS outage and a `kill -9` of
//! Warden, drift is found and repaired, and the ledger detects tampering.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Home, connect};
use nats_jwt::{AccountClaims, KeyKind, KeyPair};
use warden_nats::{ResolverClient, delete_request};
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// A running `warden serve`, stopped with SIGTERM (or killed) on drop.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(home: &Home, nats: &str, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(home.data_dir())
            .args([
                "serve",
                "--nats",
                nats,
                "--http",
                "127.0.0.1:0",
                "--max-backoff",
                "1s",
            ])
            .args(extra)
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env("WARDEN_LOG", "warden=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start warden serve");
        // The first line says where it listens: proof that it started.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("warden serve printed its address");
        assert!(line.starts_with("warden serve: http://"), "{line}");
        Serve { child }
    }

    fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn resolver(home: &Home, url: &str) -> ResolverClient {
    let creds = home.ok(&["creds", "SYS", "sys"]);
    ResolverClient::connect(url, &creds, Duration::from_secs(5))
        .await
        .expect("sys connects")
}

fn account_key(home: &Home, name: &str) -> String {
    home.json(&["account", "show", name])["public_key"]
        .as_str()
        .unwrap()
        .to_string()
}

fn account_jwt(home: &Home, name: &str) -> String {
    home.json(&["account", "show", name])["jwt"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn live_changes_survive_outages(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    eprintln!("running against nats-server {v}");
    let home = Home::new();
    home.ok(&["init", "--name", "LIVEOP"]);
    let mut server = home.start_nats(&bin, "main");
    let url = server.url();
    let serve = Serve::start(&home, &url, &[]);
    home.wait_delivered();

    // An account added while serve runs reaches the server: its user connects.
    home.ok(&["account", "add", "LIVE"]);
    home.ok(&["user", "add", "dev", "-a", "LIVE"]);
    home.wait_delivered();
    let dev_creds = home.ok(&["creds", "LIVE", "dev"]);
    let mut dev = connect(&url, &dev_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] new account's user refused: {e}"));

    // A user revoked afterwards is disconnected and refused.
    home.ok(&["user", "revoke", "dev", "-a", "LIVE"]);
    let err = dev
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("[{v}] revoked user not disconnected"));
    assert!(err.to_lowercase().contains("revoked"), "[{v}] {err}");
    assert!(
        connect(&url, &dev_creds).await.is_err(),
        "[{v}] revoked user connected"
    );

    // NATS down: three changes wait in the outbox, and all reach the server after.
    server.stop();
    home.ok(&["account", "add", "OUTAGE_A"]);
    home.ok(&["account", "add", "OUTAGE_B"]);
    home.ok(&["account", "edit", "LIVE", "--conns", "7"]);
    assert!(home.json(&["status"])["outbox_pending"].as_i64().unwrap() >= 3);
    server.restart().expect("nats-server restarts");
    home.wait_delivered();
    let r = resolver(&home, &url).await;
    let listed = r.list().await.expect("list");
    for name in ["OUTAGE_A", "OUTAGE_B", "LIVE"] {
        assert!(
            listed.contains(&account_key(&home, name)),
            "[{v}] {name} not on the server"
        );
    }
    let on_server = r
        .lookup(&account_key(&home, "LIVE"))
        .await
        .expect("lookup")
        .expect("LIVE known");
    assert_eq!(
        on_server,
        account_jwt(&home, "LIVE"),
        "[{v}] the edit did not reach the server"
    );

    // The change stream: events of the outage were published too (delivered rows).
    // SIGTERM: serve stops cleanly.
    let status = serve.terminate();
    assert!(status.success(), "[{v}] serve exit status {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_changes_survive_outages_2_9() {
    live_changes_survive_outages(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn live_changes_survive_outages_2_15() {
    live_changes_survive_outages(ServerLine::V2_15).await;
}

async fn kill9_loses_nothing(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "KILLOP"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    // Many changes queued while no relay runs.
    let total = 400;
    {
        let w = home.warden().await;
        for i in 0..total {
            w.add_account(&format!("BULK_{i}"), Default::default())
                .await
                .unwrap();
        }
    }
    let before = home.json(&["status"])["outbox_pending"].as_i64().unwrap();
    assert!(before >= total, "[{v}] {before}");

    // Small batches, so that a kill lands in the middle of relaying.
    let serve = Serve::start(&home, &url, &["--batch", "10", "--no-service"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let pending = home.json(&["status"])["outbox_pending"].as_i64().unwrap();
        if pending < before {
            assert!(
                pending > 0,
                "[{v}] relay finished before it could be killed; make the test bigger"
            );
            break;
        }
        assert!(Instant::now() < deadline, "[{v}] relay made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    serve.kill9();
    let after_kill = home.json(&["status"])["outbox_pending"].as_i64().unwrap();
    assert!(after_kill > 0, "[{v}]");

    let serve = Serve::start(&home, &url, &["--no-service"]);
    home.wait_delivered();
    let listed = resolver(&home, &url).await.list().await.expect("list");
    for i in [0, total / 2, total - 1] {
        let key = account_key(&home, &format!("BULK_{i}"));
        assert!(listed.contains(&key), "[{v}] BULK_{i} lost");
    }
    let accounts = home.json(&["account", "list"]);
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .all(|a| listed.contains(&a["public_key"].as_str().unwrap().to_string())),
        "[{v}] some account never reached the server"
    );
    drop(serve);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_of_serve_loses_nothing_2_9() {
    kill9_loses_nothing(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_of_serve_loses_nothing_2_15() {
    kill9_loses_nothing(ServerLine::V2_15).await;
}

async fn sync_finds_and_repairs_drift(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "SYNCOP"]);
    home.ok(&["account", "add", "KEPT"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.ok(&["push", "--nats", &url]);
    home.ok(&["sync", "--check", "--nats", &url]);

    // Behind Warden's back: KEPT deleted on the server, a stranger account added.
    let r = resolver(&home, &url).await;
    let op = home.json(&["operator", "show"]);
    let store = home.store().await;
    let signer = KeyPair::from_seed(
        &store
            .seed(op["signing_key"].as_str().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    let kept: nats_jwt::AccountPublicKey = account_key(&home, "KEPT").parse().unwrap();
    let reply = r
        .delete(&delete_request(&signer, std::slice::from_ref(&kept)).unwrap())
        .await
        .expect("delete");
    assert_eq!(reply.code, 200);
    let stranger = KeyPair::generate(KeyKind::Account);
    let mut claims = AccountClaims::new(&stranger.account_public_key().unwrap(), "STRANGER");
    let jwt = claims.encode(&signer).unwrap();
    assert_eq!(r.update(&jwt).await.expect("push stranger").code, 200);

    let out = home.run(&["--json", "sync", "--check", "--nats", &url]);
    assert_eq!(out.status.code(), Some(1), "[{v}] drift not reported");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["missing"],
        serde_json::json!([kept.as_str()]),
        "[{v}] {report}"
    );
    assert_eq!(
        report["unknown"],
        serde_json::json!([stranger.public_key().as_str()]),
        "[{v}] {report}"
    );

    home.ok(&["sync", "--fix", "--nats", &url]);
    home.ok(&["sync", "--check", "--nats", &url]);
    let listed = r.list().await.expect("list");
    assert!(
        listed.contains(&kept.to_string()),
        "[{v}] KEPT not restored"
    );
    assert!(
        !listed.contains(&stranger.public_key().to_string()),
        "[{v}] stranger not removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_finds_and_repairs_drift_2_9() {
    sync_finds_and_repairs_drift(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_finds_and_repairs_drift_2_15() {
    sync_finds_and_repairs_drift(ServerLine::V2_15).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_names_an_edited_row() {
    let home = Home::new();
    home.ok(&["init"]);
    home.ok(&["account", "add", "APP"]);
    let out = home.json(&["audit", "verify"]);
    assert!(out["first_break"].is_null(), "{out}");
    let events = home.ok(&["--json", "audit", "list"]);
    assert!(events.lines().count() >= 5, "{events}");

    let dir = home.data_dir();
    warden_testkit::install_sqlx_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}/warden.db",
        dir.display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE ledger SET actor = 'mallory' WHERE seq = 3")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = home.fails(1, &["audit", "verify"]);
    assert!(err.contains("seq 3"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_are_published_on_the_change_stream() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    home.ok(&["init", "--name", "EVENTOP"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let _serve = Serve::start(&home, &url, &["--no-service"]);
    // The built-in backend user may follow the change stream.
    let backend = connect(&url, &home.ok(&["creds", "BACKEND", "backend"]))
        .await
        .expect("backend connects");
    let mut events = backend
        .client
        .subscribe("WARDEN.events.>")
        .await
        .expect("subscribe");
    backend.client.flush().await.expect("flush");
    home.ok(&["account", "add", "STREAMED"]);
    let key = account_key(&home, "STREAMED");
    let deadline = Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            futures::StreamExt::next(&mut events),
        )
        .await
        .expect("account.create event in time")
        .expect("subscription open");
        let event: serde_json::Value = serde_json::from_slice(&msg.payload).expect("event JSON");
        if event["object_key"] == key.as_str() {
            assert_eq!(msg.subject.as_str(), "WARDEN.events.account.create");
            assert_eq!(event["action"], "account.create");
            assert!(event["seq"].as_i64().unwrap() > 0);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_serve_on_postgresql_takes_over_the_relay() {
    let db = warden_testkit::PgDatabase::create().await;
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    let pg = ["--database-url", db.url()];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(pg.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: &[&str]| {
        let a = with(args);
        home.ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&["init", "--name", "PGRELAY"]);
    let port = free_port();
    let conf = home.path().join("server.conf");
    run(&[
        "nats-config",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--resolver-dir",
        home.path().join("resolver").to_str().unwrap(),
        "-o",
        conf.to_str().unwrap(),
    ]);
    let dir = home.path().join("nats");
    std::fs::create_dir_all(&dir).unwrap();
    let server = NatsServer::start(&bin, &dir, &std::fs::read_to_string(conf).unwrap()).unwrap();
    let url = server.url();
    let pending = || -> i64 {
        let out = run(&["--json", "status"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["outbox_pending"]
            .as_i64()
            .unwrap()
    };
    let wait_empty = || {
        let deadline = Instant::now() + WAIT;
        while pending() != 0 {
            assert!(Instant::now() < deadline, "outbox not delivered");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let first = Serve::start(&home, &url, &["--no-service", "--database-url", db.url()]);
    wait_empty();
    let second = Serve::start(&home, &url, &["--no-service", "--database-url", db.url()]);
    // The first relay dies; the standby takes the lock and delivers new changes.
    first.kill9();
    run(&["account", "add", "AFTER_TAKEOVER"]);
    wait_empty();
    let key = {
        let out = run(&["--json", "account", "show", "AFTER_TAKEOVER"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let sys = run(&["creds", "SYS", "sys"]);
    let r = ResolverClient::connect(&url, &sys, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        r.list().await.unwrap().contains(&key),
        "the standby did not relay"
    );
    drop(second);
}
