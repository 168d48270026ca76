//! `warden sync --check|--fix` against a cluster (2.9.10 and 2.15.x): three routed full
//! resolvers and one server of the same operator outside the cluster, every config
//! rendered by `warden nats-config`. Each server is compared on its own: a server that
//! missed a push (not routed, or down while it happened and restarted since) is named
//! with the account it lacks, and `--fix` repairs it.

mod common;

use std::time::{Duration, Instant};

use common::Home;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(30);

/// One cluster node (`--cluster`, `--cluster-listen`, `--routes`) or, with no routes, a
/// standalone server; `--server-name` is its tag.
fn start_node(
    home: &Home,
    bin: &NatsServerBinary,
    tag: &str,
    cluster: Option<(&str, &[String])>,
) -> NatsServer {
    let port = free_port();
    let conf = home.path().join(format!("{tag}.conf"));
    let resolver = home.path().join(format!("{tag}-resolver"));
    let listen = format!("127.0.0.1:{port}");
    let mut args: Vec<String> = [
        "nats-config",
        "--listen",
        &listen,
        "--server-name",
        tag,
        "--resolver-dir",
        resolver.to_str().expect("utf-8 path"),
        "-o",
        conf.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some((route_listen, routes)) = cluster {
        args.extend([
            "--cluster".into(),
            "WARDEN".into(),
            "--cluster-listen".into(),
            route_listen.into(),
            "--routes".into(),
            routes.join(","),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    home.ok(&args);
    let config = std::fs::read_to_string(&conf).expect("rendered config");
    let dir = home.path().join(format!("{tag}-server"));
    NatsServer::start(bin, &dir, &config)
        .unwrap_or_else(|e| panic!("nats-server {} refused Warden's config: {e}", bin.version))
}

/// `sync --check` JSON (whatever the exit code).
fn check(home: &Home, nats: &str) -> (Option<i32>, serde_json::Value) {
    let out = home.run(&["--json", "sync", "--check", "--nats", nats]);
    let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sync --check --nats {nats}: bad JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), value)
}

/// Waits (bounded) until each server at `urls`, given alone, announces the other
/// `peers` servers of its cluster: its routes are up.
fn wait_routed(home: &Home, urls: &[&str], peers: usize) {
    let deadline = Instant::now() + WAIT;
    for url in urls {
        loop {
            let (_, report) = check(home, url);
            if report["not_compared"].as_array().map(Vec::len) == Some(peers) {
                break;
            }
            assert!(Instant::now() < deadline, "{url} not routed: {report}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn account_key(home: &Home, name: &str) -> String {
    home.json(&["account", "show", name])["public_key"]
        .as_str()
        .expect("public_key")
        .to_string()
}

/// The servers of a report by name; the state of `key` on each.
fn state_of(report: &serde_json::Value, server: &str, key: &str) -> String {
    let s = report["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["server_name"] == server)
        .unwrap_or_else(|| panic!("{server} not in {report}"));
    s["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["public_key"] == key)
        .map(|a| a["state"].as_str().expect("state").to_string())
        .unwrap_or_else(|| panic!("{key} not on {server}: {report}"))
}

fn in_step(report: &serde_json::Value, server: &str) -> bool {
    report["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["server_name"] == server)
        .unwrap_or_else(|| panic!("{server} not in {report}"))["in_step"]
        == true
}

async fn cluster_sync(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "CLUSTEROP"]);

    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes: Vec<String> = route_ports
        .iter()
        .map(|p| format!("nats-route://127.0.0.1:{p}"))
        .collect();
    let mut nodes: Vec<NatsServer> = ["a", "b", "c"]
        .iter()
        .zip(&route_ports)
        .map(|(tag, p)| {
            let listen = format!("127.0.0.1:{p}");
            start_node(&home, &bin, tag, Some((&listen, &routes)))
        })
        .collect();
    let alone = start_node(&home, &bin, "d", None);
    let (a, b, c, d) = (nodes[0].url(), nodes[1].url(), nodes[2].url(), alone.url());
    let cluster = format!("{a},{b},{c}");
    let all = format!("{cluster},{d}");
    // Given one server, the other two are named as announced but not compared.
    wait_routed(&home, &[&a, &b, &c], 2);
    let (_, three) = check(&home, &cluster);
    assert_eq!(
        three["not_compared"],
        serde_json::json!([]),
        "[{v}] {three}"
    );
    home.push(&a);
    let (code, before) = check(&home, &all);
    assert_eq!(code, Some(0), "[{v}] in step from the start: {before}");

    // An account pushed through A reaches B and C over the routes, not D.
    home.ok(&["account", "add", "LATE"]);
    let late = account_key(&home, "LATE");
    home.push(&a);
    let (code, report) = check(&home, &all);
    assert_eq!(code, Some(1), "[{v}] drift on D not reported: {report}");
    for s in ["a", "b", "c"] {
        assert!(in_step(&report, s), "[{v}] {s}: {report}");
    }
    assert!(!in_step(&report, "d"), "[{v}] {report}");
    assert_eq!(state_of(&report, "d", &late), "missing", "[{v}] {report}");
    assert_eq!(
        report["missing"],
        serde_json::json!([late]),
        "[{v}] {report}"
    );
    let d_row = report["servers"][3].clone();
    assert_eq!(d_row["url"], d.as_str(), "[{v}] {d_row}");
    assert!(
        d_row["server_id"]
            .as_str()
            .is_some_and(|id| id.starts_with('N')),
        "[{v}] {d_row}"
    );
    // The table names the server, the account by name and its state.
    let out = home.run(&["sync", "--check", "--nats", &all]);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains("LATE"))
        .unwrap_or_else(|| panic!("[{v}] no LATE row:\n{text}"));
    assert!(
        row.contains(" d ") && row.contains("missing") && row.contains(&late),
        "[{v}] {row}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&d), "[{v}] {stderr}");

    home.ok(&["sync", "--fix", "--nats", &all]);
    let (code, report) = check(&home, &all);
    assert_eq!(code, Some(0), "[{v}] D not repaired: {report}");

    // C misses a push while it is down; restarted, it rejoins the cluster without it
    // (its peers' periodic sync is minutes away), and is named until repaired.
    nodes[2].stop();
    home.ok(&["account", "add", "WHILE_DOWN"]);
    let while_down = account_key(&home, "WHILE_DOWN");
    home.push(&a);
    nodes[2].restart().expect("c restarts");
    wait_routed(&home, &[&c], 2);
    let (code, report) = check(&home, &all);
    assert_eq!(code, Some(1), "[{v}] {report}");
    for s in ["a", "b"] {
        assert!(in_step(&report, s), "[{v}] {s}: {report}");
    }
    for s in ["c", "d"] {
        assert_eq!(
            state_of(&report, s, &while_down),
            "missing",
            "[{v}] {s}: {report}"
        );
    }
    let fixed = home.json(&["sync", "--fix", "--nats", &all]);
    assert_eq!(fixed["in_step"], true, "[{v}] {fixed}");
    let (code, report) = check(&home, &all);
    assert_eq!(code, Some(0), "[{v}] {report}");

    // A server that cannot be reached is named with its URL; the others are still read.
    let gone = format!("nats://127.0.0.1:{}", free_port());
    let out = home.run(&[
        "--json",
        "sync",
        "--check",
        "--nats",
        &format!("{a},{gone}"),
    ]);
    assert_eq!(out.status.code(), Some(1), "[{v}]");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(in_step(&report, "a"), "[{v}] {report}");
    assert!(
        report["servers"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains(&gone)),
        "[{v}] {report}"
    );
    let err = home.fails(1, &["sync", "--check", "--nats", &gone]);
    assert!(err.contains(&gone), "[{v}] {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_sync_names_the_lagging_server_2_9() {
    cluster_sync(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_sync_names_the_lagging_server_2_15() {
    cluster_sync(ServerLine::V2_15).await;
}
