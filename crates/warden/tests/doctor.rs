//! `warden doctor` against real nats-servers (2.9.10 and 2.15.x) running the configuration
//! Warden renders: every check ok; the server stopped: the nats check fails naming its URL;
//! a server that trusts another operator: the trust check fails saying so. Exit code 1
//! whenever a check fails, and the report as JSON either way.

mod common;

use common::Home;
use serde_json::Value;
use warden_testkit::{NatsServerBinary, ServerLine};

/// `warden --json doctor --nats URL`: exit code and report.
fn doctor(home: &Home, url: &str) -> (Option<i32>, Value) {
    let out = home.run(&["--json", "doctor", "--nats", url, "--timeout", "3s"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    let mut server = home.start_nats(&bin, "main");
    let url = server.url();

    // Everything in order: one ok line per check, exit 0.
    let (code, report) = doctor(&home, &url);
    assert_eq!(code, Some(0), "[{v}] {report:#}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "database",
            "master_key",
            "nats",
            "trust",
            "resolver",
            "outbox",
            "clock"
        ]
    );
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "[{v}] {c}");
    }
    assert_eq!(report["ok"], true);
    assert!(
        check(&report, "nats")["detail"]
            .as_str()
            .unwrap()
            .contains(&v),
        "[{v}] the nats check names the server's version: {report:#}"
    );
    // The human form: one line per check.
    let text = home.ok(&["doctor", "--nats", &url, "--timeout", "3s"]);
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.lines().all(|l| l.starts_with("ok ")), "{text}");

    // A server that trusts another operator refuses Warden: the trust check says so.
    let other = Home::new();
    other.ok(&["init", "--name", "OTHER"]);
    let foreign = other.start_nats(&bin, "other");
    let (code, report) = doctor(&home, &foreign.url());
    assert_eq!(code, Some(1), "[{v}] {report:#}");
    let trust = check(&report, "trust");
    assert_eq!(trust["status"], "fail", "[{v}] {report:#}");
    let detail = trust["detail"].as_str().unwrap();
    assert!(
        detail.contains("does not trust this operator") && detail.contains(&foreign.url()),
        "[{v}] {detail}"
    );
    assert!(
        trust["fix"]
            .as_str()
            .unwrap()
            .contains("warden nats-config")
    );
    assert_eq!(check(&report, "database")["status"], "ok");

    // The server down: the nats check fails naming the URL; what needs it is not checked.
    server.stop();
    let (code, report) = doctor(&home, &url);
    assert_eq!(code, Some(1), "[{v}] {report:#}");
    let nats = check(&report, "nats");
    assert_eq!(nats["status"], "fail", "[{v}] {report:#}");
    assert!(
        nats["detail"].as_str().unwrap().contains(&url),
        "[{v}] {nats}"
    );
    for name in ["trust", "resolver", "clock"] {
        assert_eq!(check(&report, name)["status"], "warn", "{report:#}");
    }
    assert_eq!(report["ok"], false);
    let out = home.run(&["doctor", "--nats", &url, "--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fail") && l.contains(&url) && l.contains("fix:")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_on_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_on_2_15() {
    scenario(ServerLine::V2_15).await;
}

/// No database: the database check fails and names `warden init`; nothing is created.
#[test]
fn doctor_without_a_database_fails_and_creates_nothing() {
    let home = Home::new();
    let out = home.run(&["doctor", "--nats", "nats://127.0.0.1:1", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fail") && l.contains("database") && l.contains("warden init")),
        "{text}"
    );
    assert!(
        !home.data_dir().exists(),
        "doctor created the data directory"
    );
}
