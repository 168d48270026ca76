//! `warden streams` against real nats-server processes (2.9.10 and 2.15.x): the
//! seed's streams created in a `PLATFORM` account with the declared settings, a
//! tenant-prefixed event landing in `EVENTS`, re-apply unchanged, an in-place
//! update, a storage change refused without `--recreate`, and a bad spec refused
//! with every problem listed and nothing created.

mod common;

use std::time::{Duration, Instant};

use common::{Home, connect};
use warden_testkit::{NatsServerBinary, ServerLine};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/streams.yaml");
const SEVEN_DAYS_NS: i64 = 7 * 86_400 * 1_000_000_000;

fn actions(report: &serde_json::Value) -> Vec<(String, String)> {
    report["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            (
                s["stream"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn listed(home: &Home, url: &str) -> serde_json::Value {
    home.json(&["streams", "list", "--nats", url, "--account", "PLATFORM"])
}

fn stream<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {list}"))
}

async fn streams(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "STREAMOP"]);
    home.ok(&[
        "account",
        "add",
        "PLATFORM",
        "--js-disk-storage",
        "1G",
        "--js-mem-storage",
        "64M",
    ]);
    home.ok(&["account", "add", "NOJS"]);
    home.ok(&["user", "add", "--account", "PLATFORM", "collector"]);
    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    let pushed = home.json(&["push", "--all", "--nats", &url]);
    let pushed = pushed.as_array().expect("push report");
    assert!(pushed.iter().all(|a| a["ok"] == true), "{pushed:?}");

    // A bad spec: exit 2, every problem listed, nothing created.
    let bad = home.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "streams:\n  - name: BAD.NAME\n    account: PLATFORM\n    subjects: [\"a..b\"]\n    max_age: 7 weeks\n    storage: tape\n  - name: E1\n    account: PLATFORM\n    subjects: [\"x.events.>\"]\n  - name: E2\n    account: PLATFORM\n    subjects: [\"x.events.y\"]\n",
    )
    .unwrap();
    let out = home.run(&[
        "--json",
        "streams",
        "apply",
        bad.to_str().unwrap(),
        "--nats",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json problems");
    let at: Vec<&str> = problems["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["at"].as_str().unwrap())
        .collect();
    for want in [
        "streams[0].name",
        "streams[0].subjects[0]",
        "streams[0].max_age",
        "streams[0].storage",
        "streams[2].subjects",
    ] {
        assert!(at.contains(&want), "{want} not in {problems}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 problems"), "{stderr}");

    // An account without JetStream: a clear refusal.
    let nojs = home.path().join("nojs.yaml");
    std::fs::write(
        &nojs,
        "streams:\n  - name: X\n    account: NOJS\n    subjects: [\"x.>\"]\n",
    )
    .unwrap();
    let err = home.fails(
        2,
        &["streams", "apply", nojs.to_str().unwrap(), "--nats", &url],
    );
    assert!(err.contains("JetStream disabled"), "{err}");
    std::fs::write(
        &nojs,
        "streams:\n  - name: X\n    account: MISSING\n    subjects: [\"x.>\"]\n",
    )
    .unwrap();
    let err = home.fails(
        2,
        &["streams", "apply", nojs.to_str().unwrap(), "--nats", &url],
    );
    assert!(
        err.contains("streams[0].account") && err.contains("MISSING"),
        "{err}"
    );

    // The bad spec and the refused one created nothing (this also creates jsadmin).
    let list = listed(&home, &url);
    assert_eq!(list["streams"].as_array().unwrap().len(), 0, "{list}");
    let jsadmin = home.json(&["user", "show", "--account", "PLATFORM", "jsadmin"]);
    assert_eq!(jsadmin["name"], "jsadmin", "{jsadmin}");

    // Apply the example.
    let report = home.json(&["streams", "apply", EXAMPLE, "--nats", &url]);
    assert_eq!(
        actions(&report),
        [
            ("EVENTS", "create"),
            ("SNMP_TRAPS", "create"),
            ("NETFLOW", "create")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let list = listed(&home, &url);
    let events = stream(&list, "EVENTS");
    assert_eq!(
        events["config"]["subjects"],
        serde_json::json!(["*.events.>"])
    );
    assert_eq!(events["config"]["storage"], "file");
    assert_eq!(events["config"]["retention"], "limits");
    assert_eq!(events["config"]["max_age_ns"], SEVEN_DAYS_NS);
    assert_eq!(
        stream(&list, "SNMP_TRAPS")["config"]["subjects"],
        serde_json::json!(["*.snmp.traps"])
    );
    assert_eq!(
        stream(&list, "NETFLOW")["config"]["max_age_ns"],
        24 * 3_600 * 1_000_000_000_i64
    );

    // A tenant-prefixed event lands in EVENTS. The streams are no_ack (see the
    // example), so the collector publishes plainly and the JetStream admin waits,
    // bounded, until the stream holds the message.
    let creds = home.ok(&["creds", "PLATFORM", "collector"]);
    let collector = connect(&url, &creds).await.expect("collector connects");
    collector
        .client
        .publish("a.events.syslog", "<13>hello".into())
        .await
        .unwrap();
    collector.client.flush().await.unwrap();
    let admin = home.ok(&["creds", "PLATFORM", "jsadmin"]);
    let admin = connect(&url, &admin).await.expect("jsadmin connects");
    let ajs = async_nats::jetstream::new(admin.client.clone());
    let ev = ajs.get_stream("EVENTS").await.expect("EVENTS");
    let deadline = Instant::now() + Duration::from_secs(10);
    let msg = loop {
        match ev.get_last_raw_message_by_subject("a.events.syslog").await {
            Ok(m) => break m,
            Err(e) => {
                assert!(Instant::now() < deadline, "not stored in EVENTS: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(msg.subject.as_str(), "a.events.syslog");
    assert_eq!(&msg.payload[..], b"<13>hello");
    let events = stream(&listed(&home, &url), "EVENTS").clone();
    assert_eq!(events["messages"], 1, "{events}");
    assert_eq!(stream(&listed(&home, &url), "SNMP_TRAPS")["messages"], 0);

    // Re-apply: every stream unchanged.
    let report = home.json(&["streams", "apply", EXAMPLE, "--nats", &url]);
    assert!(
        actions(&report).iter().all(|(_, a)| a == "unchanged"),
        "{report}"
    );

    // Change max_age: updated in place (the message is kept).
    let text = std::fs::read_to_string(EXAMPLE).unwrap();
    let changed = home.path().join("changed.yaml");
    std::fs::write(&changed, text.replacen("max_age: 7d", "max_age: 3d", 1)).unwrap();
    let dry = home.json(&[
        "streams",
        "apply",
        changed.to_str().unwrap(),
        "--nats",
        &url,
        "--dry-run",
    ]);
    assert_eq!(dry["streams"][0]["action"], "update", "{dry}");
    assert_eq!(
        stream(&listed(&home, &url), "EVENTS")["config"]["max_age_ns"],
        SEVEN_DAYS_NS
    );
    let report = home.json(&[
        "streams",
        "apply",
        changed.to_str().unwrap(),
        "--nats",
        &url,
    ]);
    assert_eq!(report["streams"][0]["action"], "update", "{report}");
    assert_eq!(report["streams"][0]["changes"][0]["field"], "max_age");
    assert_eq!(report["streams"][1]["action"], "unchanged");
    let events = stream(&listed(&home, &url), "EVENTS").clone();
    assert_eq!(
        events["config"]["max_age_ns"],
        3 * 86_400 * 1_000_000_000_i64
    );
    assert_eq!(events["messages"], 1);

    // Change storage: refused without --recreate, nothing changed; done with it.
    let mem = home.path().join("mem.yaml");
    std::fs::write(
        &mem,
        text.replacen("max_age: 7d", "max_age: 3d", 1).replacen(
            "storage: file",
            "storage: memory",
            1,
        ),
    )
    .unwrap();
    let err = home.fails(
        2,
        &["streams", "apply", mem.to_str().unwrap(), "--nats", &url],
    );
    assert!(err.contains("--recreate"), "{err}");
    assert_eq!(
        stream(&listed(&home, &url), "EVENTS")["config"]["storage"],
        "file"
    );
    let report = home.json(&[
        "streams",
        "apply",
        mem.to_str().unwrap(),
        "--nats",
        &url,
        "--recreate",
    ]);
    assert_eq!(report["streams"][0]["action"], "recreate", "{report}");
    let events = stream(&listed(&home, &url), "EVENTS").clone();
    assert_eq!(events["config"]["storage"], "memory");
    let report = home.json(&["streams", "apply", mem.to_str().unwrap(), "--nats", &url]);
    assert!(
        actions(&report).iter().all(|(_, a)| a == "unchanged"),
        "{report}"
    );

    // The ledger holds the changes.
    let audit = home.ok(&["audit", "list", "--limit", "1000"]);
    assert!(audit.contains("stream.create"), "{audit}");
    assert!(audit.contains("stream.recreate"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_apply_2_9() {
    streams(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_apply_2_15() {
    streams(ServerLine::V2_15).await;
}
