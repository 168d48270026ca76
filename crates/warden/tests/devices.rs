//! Device fleets against real nats-server processes (2.9.10 and 2.15.x): one account
//! per device behind the hub, isolation between devices, requests to the backend,
//! JetStream through the imported prefix, revoke / rotate / restore, bulk adds, the
//! first connection observed by `warden serve`, and the JetStream bounds that keep a
//! device from exhausting the hub (enforced by nats-server, defaults and overrides).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Client, Home, Serve, connect};
use futures::StreamExt;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// After an account update the server re-wires imports on its own schedule (a
/// plain stream is at-most-once): the backend publishes every 200 ms until one
/// message arrives, within a bound.
async fn delivered_eventually(backend: &Client, sub: &mut async_nats::Subscriber, subject: &str) {
    let deadline = Instant::now() + WAIT;
    let mut probes = 0;
    loop {
        probes += 1;
        backend
            .client
            .publish(subject.to_string(), "probe".into())
            .await
            .unwrap();
        backend.client.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert_eq!(m.subject.as_str(), subject);
            if probes > 1 {
                eprintln!("{subject}: delivered after {probes} probes");
            }
            return;
        }
        assert!(Instant::now() < deadline, "nothing on {subject} in time");
    }
}

/// The next permission error the server reports to `c`.
async fn permission_error(c: &mut Client, what: &str) {
    let e = c
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("no server error for {what}"));
    assert!(
        e.to_lowercase().contains("permissions violation"),
        "{what}: {e}"
    );
}

async fn fleet(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "FLEETOP"]);
    for id in ["a", "b", "c"] {
        let out = home.json(&[
            "device",
            "add",
            id,
            "--meta",
            "site=lab",
            "-o",
            home.path().join(format!("{id}.creds")).to_str().unwrap(),
        ]);
        assert_eq!(out["device"]["state"], "provisioned");
        assert_eq!(out["device"]["account"], format!("EMDEV-{id}"));
        assert_eq!(out["device"]["meta"]["site"], "lab");
    }
    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    let report = home.push(&url);
    assert_eq!(report["streams_created"], 3, "{report}");

    let a_creds = home.creds_file("a.creds");
    let b_creds = home.creds_file("b.creds");
    let c_creds = home.creds_file("c.creds");
    let backend_creds = home.ok(&["creds", "EMDEVS", "backend"]);
    let mut a = connect(&url, &a_creds).await.expect("device a connects");
    let b = connect(&url, &b_creds).await.expect("device b connects");
    let c = connect(&url, &c_creds).await.expect("device c connects");
    let mut backend = connect(&url, &backend_creds).await.expect("backend");

    // Backend → A reaches A, not B.
    let mut a_in = a.client.subscribe("EMDEV.a.>").await.unwrap();
    let mut b_in = b.client.subscribe("EMDEV.b.>").await.unwrap();
    a.client.flush().await.unwrap();
    b.client.flush().await.unwrap();
    delivered_eventually(&backend, &mut a_in, "EMDEV.a.hello").await;
    // B's first message is its own: none of A's reached it.
    delivered_eventually(&backend, &mut b_in, "EMDEV.b.hello").await;

    // A may not touch B's subjects nor anything outside its space.
    let _deny = a.client.subscribe("EMDEV.b.>").await.unwrap();
    permission_error(&mut a, "subscribe to B's messages").await;
    a.client.publish("EMDEVS.b.x", "x".into()).await.unwrap();
    permission_error(&mut a, "publish as B").await;
    a.client.publish("elsewhere", "x".into()).await.unwrap();
    permission_error(&mut a, "publish outside its space").await;
    // Nor may the backend step outside device subjects.
    backend
        .client
        .publish("elsewhere", "x".into())
        .await
        .unwrap();
    permission_error(&mut backend, "backend publishes elsewhere").await;

    // A's request reaches the backend, which answers.
    let mut requests = backend.client.subscribe("EMDEVS.>").await.unwrap();
    backend.client.flush().await.unwrap();
    let bc = backend.client.clone();
    let responder = tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply.clone() {
                let _ = bc
                    .publish(reply, format!("pong:{}", m.subject).into())
                    .await;
                let _ = bc.flush().await;
            }
        }
    });
    // Right after a device's first connection the server may still be wiring its
    // imports (no responders, or a lost first request): retry within the bound.
    let deadline = Instant::now() + WAIT;
    let r = loop {
        match a
            .client
            .send_request(
                "EMDEVS.a.ping",
                async_nats::Request::new()
                    .payload("hi".into())
                    .timeout(Some(Duration::from_secs(1))),
            )
            .await
        {
            Ok(r) => break r,
            Err(e) if Instant::now() < deadline => {
                eprintln!("EMDEVS.a.ping: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("backend did not answer: {e}"),
        }
    };
    responder.abort();
    assert_eq!(&r.payload[..], b"pong:EMDEVS.a.ping");

    // JetStream: A consumes its own stream through EMDEVJS.API; B cannot reach it.
    backend
        .client
        .publish("EMDEV.a.stored", "kept".into())
        .await
        .unwrap();
    backend.client.flush().await.unwrap();
    let js_a = async_nats::jetstream::with_prefix(a.client.clone(), "EMDEVJS.API");
    let stream = tokio::time::timeout(WAIT, js_a.get_stream("EMDEV_a"))
        .await
        .expect("stream info in time")
        .expect("A sees its stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("inbox".into()),
            ..Default::default()
        })
        .await
        .expect("A creates a consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("fetch");
    let mut got = Vec::new();
    while let Some(m) = tokio::time::timeout(WAIT, batch.next())
        .await
        .expect("fetch ends in time")
    {
        let m = m.expect("message");
        m.ack().await.expect("ack");
        got.push(String::from_utf8_lossy(&m.payload).to_string());
    }
    // Everything the backend sent to A, in order, ending with the last one.
    assert_eq!(got.first().map(String::as_str), Some("probe"), "{got:?}");
    assert_eq!(got.last().map(String::as_str), Some("kept"), "{got:?}");
    // A refused request gets no reply: bound it well inside WAIT (async-nats would
    // otherwise wait its own 10 s request timeout, the same as WAIT).
    let mut js_b = async_nats::jetstream::with_prefix(b.client.clone(), "EMDEVJS.API");
    js_b.set_timeout(Duration::from_secs(3));
    let refused = tokio::time::timeout(WAIT, js_b.get_stream("EMDEV_a"))
        .await
        .expect("B's attempt ends in time");
    assert!(refused.is_err(), "B reached A's stream");
    let own = tokio::time::timeout(WAIT, js_b.get_stream("EMDEV_b"))
        .await
        .expect("B's own stream in time");
    assert!(
        own.is_ok(),
        "B cannot reach its own stream: {:?}",
        own.err()
    );

    // Revoke A: its live connection is closed, reconnect refused; B and C work.
    let revoked = home.json(&["device", "revoke", "a"]);
    assert_eq!(revoked["state"], "revoked");
    let hub_before = home.json(&["account", "show", "EMDEVS"])["jwt"]
        .as_str()
        .unwrap()
        .len();
    let report = home.push(&url);
    assert_eq!(report["accounts_deleted"], 1, "{report}");
    let closed = a.next_error(WAIT).await.expect("A is told it is out");
    assert!(
        closed.contains("Revoked") || closed.contains("Expired"),
        "{closed}"
    );
    let again = connect(&url, &a_creds).await;
    assert!(again.is_err(), "revoked device reconnected");
    delivered_eventually(&backend, &mut b_in, "EMDEV.b.after").await;
    let mut c_in = c.client.subscribe("EMDEV.c.>").await.unwrap();
    c.client.flush().await.unwrap();
    delivered_eventually(&backend, &mut c_in, "EMDEV.c.after").await;
    eprintln!("hub JWT after one revocation: {hub_before} bytes");

    // Rotate B: old creds refused, new ones work.
    let new_b = home.path().join("b2.creds");
    home.json(&["device", "rotate", "b", "-o", new_b.to_str().unwrap()]);
    home.push(&url);
    drop(b);
    assert!(
        connect(&url, &b_creds).await.is_err(),
        "old creds of b still work"
    );
    let b2 = connect(&url, &home.creds_file("b2.creds"))
        .await
        .expect("new creds of b");
    let mut b2_in = b2.client.subscribe("EMDEV.b.>").await.unwrap();
    b2.client.flush().await.unwrap();
    delivered_eventually(&backend, &mut b2_in, "EMDEV.b.rotated").await;

    // Restore A: its creds work again, at once (the push orders the hub before the device
    // account: see warden_nats::push_waves for the server race that otherwise kept it out).
    home.json(&["device", "restore", "a"]);
    home.push(&url);
    connect(&url, &a_creds)
        .await
        .expect("restored device connects");

    // serve observes the first connection of a new device.
    let d_path = home.path().join("d.creds");
    home.json(&["device", "add", "d", "-o", d_path.to_str().unwrap()]);
    let serve = Serve::start(&home, &url);
    let deadline = Instant::now() + Duration::from_secs(20);
    while home.json(&["status"])["outbox_pending"] != 0 {
        assert!(Instant::now() < deadline, "outbox not delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(home.json(&["device", "show", "d"])["state"], "provisioned");
    let _d = connect(&url, &home.creds_file("d.creds"))
        .await
        .expect("d connects");
    loop {
        let d = home.json(&["device", "show", "d"]);
        if d["state"] == "active" {
            assert!(d["activated_at"].as_i64().is_some(), "{d}");
            break;
        }
        assert!(Instant::now() < deadline, "d never observed active: {d}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_fleet_2_9() {
    fleet(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_fleet_2_15() {
    fleet(ServerLine::V2_15).await;
}

#[test]
fn fleet_names_are_configurable_until_the_first_device() {
    let home = Home::new();
    home.ok(&["init", "--name", "NAMEDOP"]);
    assert_eq!(home.json(&["device", "fleet"])["hub_account"], "EMDEVS");
    home.fails(2, &["device", "fleet", "--js-api-prefix", "$JS.API"]);
    home.fails(2, &["device", "fleet", "--to-device", "A.*"]);
    let s = home.json(&[
        "device",
        "fleet",
        "--hub",
        "SENSORS",
        "--account-prefix",
        "SENSOR-",
        "--to-device",
        "TO",
    ]);
    assert_eq!(s["hub_account"], "SENSORS");
    let d = home.json(&["device", "add", "s-1"]);
    assert_eq!(d["device"]["account"], "SENSOR-s-1");
    assert_eq!(d["device"]["to_device"], "TO.s-1.>");
    home.json(&["account", "show", "SENSORS"]);
    home.fails(1, &["device", "fleet", "--hub", "OTHER"]);
}

#[test]
fn bulk_add_is_idempotent_and_bad_input_changes_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "BULKOP"]);
    let csv = home.path().join("fleet.csv");
    std::fs::write(&csv, "id,site,model\nd-1,lab,x1\nd-2,,x2\nd-3,field,x1\n").unwrap();
    let creds_dir = home.path().join("creds");
    let out = home.json(&[
        "device",
        "add",
        "--from",
        csv.to_str().unwrap(),
        "--creds-dir",
        creds_dir.to_str().unwrap(),
    ]);
    assert_eq!(out["added"], serde_json::json!(["d-1", "d-2", "d-3"]));
    assert_eq!(out["skipped"], serde_json::json!([]));
    for id in ["d-1", "d-2", "d-3"] {
        let p = creds_dir.join(format!("{id}.creds"));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let d2 = home.json(&["device", "show", "d-2"]);
    assert_eq!(d2["meta"], serde_json::json!({"model": "x2"}));

    // A creds file lost after its device was committed (a run killed before it wrote
    // the files) is written again by a re-run, with the stored creds.
    let d2_file = creds_dir.join("d-2.creds");
    std::fs::remove_file(&d2_file).unwrap();
    let out = home.json(&[
        "device",
        "add",
        "--from",
        csv.to_str().unwrap(),
        "--creds-dir",
        creds_dir.to_str().unwrap(),
    ]);
    assert_eq!(out["added"], serde_json::json!([]));
    let d2 = home.json(&["device", "show", "d-2"]);
    let stored = home.ok(&[
        "creds",
        d2["account"].as_str().unwrap(),
        d2["user"].as_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&d2_file).unwrap(), stored);

    // Re-run with one more: only the new one is added.
    std::fs::write(&csv, "id,site\nd-1,lab\nd-4,lab\nd-2,\nd-3,\n").unwrap();
    let out = home.json(&["device", "add", "--from", csv.to_str().unwrap()]);
    assert_eq!(out["added"], serde_json::json!(["d-4"]));
    assert_eq!(out["skipped"], serde_json::json!(["d-1", "d-2", "d-3"]));
    let json = home.path().join("more.json");
    std::fs::write(&json, r#"["d-5", {"id": "d-6", "meta": {"n": 6}}, "d-1"]"#).unwrap();
    let out = home.json(&["device", "add", "--from", json.to_str().unwrap()]);
    assert_eq!(out["added"], serde_json::json!(["d-5", "d-6"]));
    assert_eq!(home.json(&["device", "list"]).as_array().unwrap().len(), 6);

    let before = home.json(&["status"]);
    let bad_csv = home.path().join("bad.csv");
    std::fs::write(&bad_csv, "id\nd-7\nBad_ID\n").unwrap();
    let no_id = home.path().join("noid.csv");
    std::fs::write(&no_id, "name\nd-8\n").unwrap();
    let dup = home.path().join("dup.json");
    std::fs::write(&dup, r#"["d-9", "d-9"]"#).unwrap();
    let broken = home.path().join("broken.json");
    std::fs::write(&broken, r#"[{"id": 5}"#).unwrap();
    for f in [&bad_csv, &no_id, &dup, &broken] {
        let e = home.fails(2, &["device", "add", "--from", f.to_str().unwrap()]);
        assert!(!e.is_empty());
    }
    home.fails(2, &["device", "add", "--from", "/nonexistent/file.csv"]);
    for bad in ["UPPER", "-x", "a.b", "a b", "é", &"x".repeat(41)] {
        let e = home.fails(2, &["device", "add", "--", bad]);
        assert!(e.contains("invalid device id"), "{e}");
    }
    home.fails(2, &["device", "add"]);
    home.fails(2, &["device", "add", "ok-1", "--meta", "novalue"]);
    // An output that cannot take a file is refused before the device exists.
    let e = home.fails(2, &["device", "add", "ok-2", "-o", "/dev/null"]);
    assert!(e.contains("not a regular file"), "{e}");
    let e = home.fails(2, &["device", "rotate", "d-2", "-o", "/dev/null"]);
    assert!(e.contains("not a regular file"), "{e}");
    home.fails(2, &["device", "list", "--state", "sleeping"]);
    let after = home.json(&["status"]);
    assert_eq!(before["accounts"], after["accounts"]);
    assert_eq!(before["ledger_events"], after["ledger_events"]);
    assert_eq!(home.json(&["device", "list"]).as_array().unwrap().len(), 6);

    // Lifecycle errors are failures (exit 1) and change nothing either.
    home.fails(1, &["device", "add", "d-1"]);
    home.fails(1, &["device", "show", "nope"]);
    home.fails(1, &["device", "restore", "d-1"]);
    home.ok(&["device", "revoke", "d-1"]);
    home.fails(1, &["device", "revoke", "d-1"]);
    home.fails(1, &["device", "rotate", "d-1"]);
    let revoked = home.json(&["device", "list", "--state", "revoked"]);
    assert_eq!(revoked.as_array().unwrap().len(), 1);
    // A revoked device's account is neither preloaded nor pushed.
    let key = revoked[0]["account_key"].as_str().unwrap().to_string();
    let conf = home.ok(&["nats-config"]);
    assert!(!conf.contains(&key), "revoked device account in the config");
}

/// Creates a durable pull consumer `name` on `stream`, waiting at most [`WAIT`].
async fn durable(
    stream: &async_nats::jetstream::stream::Stream,
    name: &str,
) -> Result<
    async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>,
    async_nats::jetstream::stream::ConsumerError,
> {
    tokio::time::timeout(
        WAIT,
        stream.create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(name.to_string()),
            ..Default::default()
        }),
    )
    .await
    .expect("consumer create in time")
}

/// The JetStream limits the hub account's JWT carries, as the server reads them.
fn hub_jetstream(home: &Home) -> nats_jwt::JetStreamLimits {
    let show = home.json(&["account", "show", "EMDEVS"]);
    let jwt = show["jwt"].as_str().expect("hub JWT");
    let claims: nats_jwt::AccountClaims = nats_jwt::decode(jwt).expect("hub JWT decodes");
    claims.nats.limits.jetstream
}

/// `warden device fleet` shows the documented defaults of the JetStream bounds, the
/// hub JWT carries them, bad bounds change nothing, overrides are signed into the hub
/// even once the fleet has devices, and a device past the hub's capacity is refused.
#[test]
fn fleet_jetstream_bounds_default_and_override() {
    let home = Home::new();
    home.ok(&["init", "--name", "BOUNDSOP"]);
    let defaults = serde_json::json!({
        "device_max_consumers": 4,
        "device_max_bytes": 1_048_576,
        "device_max_msgs": 10_000,
        "hub_mem_storage": 268_435_456,
        "hub_disk_storage": 21_474_836_480_i64,
        "hub_max_streams": 20_000,
        "hub_max_consumers": 4,
        "hub_max_ack_pending": 1_000,
    });
    let shown_bounds = |home: &Home| {
        let s = home.json(&["device", "fleet"]);
        let mut out = serde_json::Map::new();
        for k in defaults.as_object().unwrap().keys() {
            out.insert(k.clone(), s[k].clone());
        }
        serde_json::Value::Object(out)
    };
    assert_eq!(shown_bounds(&home), defaults);
    let text = home.ok(&["device", "fleet"]);
    assert!(text.contains("device_max_consumers: 4"), "{text}");

    // Unbounded, zero, malformed or inconsistent bounds: usage errors, nothing stored.
    for bad in [
        &["--device-max-consumers=0"][..],
        &["--device-max-msgs=-1"],
        &["--hub-disk-storage=-1"],
        &["--hub-max-streams", "unlimited"],
        &["--hub-max-ack-pending", "0"],
        &["--device-max-bytes", "12Q"],
        &["--device-max-bytes", "2G", "--hub-disk-storage", "1G"],
    ] {
        let mut args = vec!["device", "fleet"];
        args.extend_from_slice(bad);
        let e = home.fails(2, &args);
        assert!(!e.is_empty(), "{bad:?}");
    }
    assert_eq!(shown_bounds(&home), defaults);

    // The first device creates the hub with the default limits in its JWT.
    home.json(&["device", "add", "d-1"]);
    let js = hub_jetstream(&home);
    assert_eq!(
        (
            js.mem_storage,
            js.disk_storage,
            js.streams,
            js.consumer,
            js.max_ack_pending
        ),
        (256 << 20, 20 << 30, 20_000, 4, 1_000),
        "{js:?}"
    );

    // Bounds may change with devices present: the hub is re-signed with them.
    let s = home.json(&[
        "device",
        "fleet",
        "--hub-max-consumers",
        "2",
        "--hub-max-ack-pending",
        "50",
        "--hub-max-streams",
        "2",
        "--hub-disk-storage",
        "64M",
        "--hub-mem-storage",
        "8M",
        "--device-max-bytes",
        "32M",
        "--device-max-msgs",
        "100",
    ]);
    assert_eq!(s["hub_max_consumers"], 2);
    assert_eq!(s["device_max_bytes"], 32 << 20);
    assert_eq!(s["device_max_msgs"], 100);
    assert_eq!(home.json(&["device", "fleet"])["hub_max_streams"], 2);
    let js = hub_jetstream(&home);
    assert_eq!(
        (
            js.mem_storage,
            js.disk_storage,
            js.streams,
            js.consumer,
            js.max_ack_pending
        ),
        (8 << 20, 64 << 20, 2, 2, 50),
        "{js:?}"
    );

    // The hub now holds two devices (2 streams; 64M / 32M): the third is refused.
    home.json(&["device", "add", "d-2"]);
    let before = home.json(&["status"]);
    let e = home.fails(1, &["device", "add", "d-3"]);
    assert!(e.contains("holds 2"), "{e}");
    let more = home.path().join("more.json");
    std::fs::write(&more, r#"["d-2", "d-3"]"#).unwrap();
    let e = home.fails(1, &["device", "add", "--from", more.to_str().unwrap()]);
    assert!(e.contains("holds 2"), "{e}");
    // Nor can the bounds shrink below the fleet.
    home.fails(1, &["device", "fleet", "--hub-max-streams", "1"]);
    let after = home.json(&["status"]);
    assert_eq!(before["accounts"], after["accounts"]);
    assert_eq!(before["ledger_events"], after["ledger_events"]);
    assert_eq!(home.json(&["device", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(home.json(&["device", "fleet"])["hub_max_streams"], 2);
}

/// The JetStream error text of a refused request, lower-cased.
fn refused<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what} was allowed"),
        Err(e) => e.to_string().to_lowercase(),
    }
}

/// A device, connected with its own creds, cannot exhaust the hub: nats-server refuses
/// its consumer past its stream's `max_consumers`, it cannot raise its stream's limits,
/// the stream keeps at most `max_msgs`, and the hub JWT's limits bound the hub's other
/// streams too.
async fn bounded(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "BOUNDOP"]);
    home.json(&[
        "device",
        "fleet",
        "--device-max-consumers",
        "3",
        "--device-max-msgs",
        "5",
        "--device-max-bytes",
        "64K",
        "--hub-max-consumers",
        "6",
        "--hub-max-ack-pending",
        "50",
        "--hub-max-streams",
        "3",
        "--hub-disk-storage",
        "256K",
        "--hub-mem-storage",
        "1M",
    ]);
    let creds_path = home.path().join("a.creds");
    home.json(&["device", "add", "a", "-o", creds_path.to_str().unwrap()]);
    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    let report = home.push(&url);
    assert_eq!(report["streams_created"], 1, "{report}");

    let a = connect(&url, &home.creds_file("a.creds"))
        .await
        .expect("device a connects");
    let mut js_a = async_nats::jetstream::with_prefix(a.client.clone(), "EMDEVJS.API");
    // A refused request may get no reply at all: bound it well inside WAIT.
    js_a.set_timeout(Duration::from_secs(3));
    let mut stream = tokio::time::timeout(WAIT, js_a.get_stream("EMDEV_a"))
        .await
        .expect("stream info in time")
        .expect("a sees its stream");
    let cfg = stream.cached_info().config.clone();
    assert_eq!(
        (cfg.max_consumers, cfg.max_messages, cfg.max_bytes),
        (3, 5, 64 << 10)
    );

    // Up to the bound, then the server refuses: durable or ephemeral alike.
    for i in 0..3 {
        durable(&stream, &format!("c{i}"))
            .await
            .unwrap_or_else(|e| panic!("consumer c{i}: {e}"));
    }
    let e = refused(durable(&stream, "c3").await, "a fourth durable consumer");
    assert!(e.contains("maximum consumers"), "{e}");
    let e = refused(
        tokio::time::timeout(
            WAIT,
            stream.create_consumer(async_nats::jetstream::consumer::pull::Config::default()),
        )
        .await
        .expect("consumer create in time"),
        "an ephemeral consumer past the bound",
    );
    assert!(e.contains("maximum consumers"), "{e}");

    // It cannot raise its stream's limits, nor make a stream of its own.
    let raised = async_nats::jetstream::stream::Config {
        max_consumers: -1,
        max_messages: -1,
        max_bytes: -1,
        ..cfg.clone()
    };
    refused(
        tokio::time::timeout(WAIT, js_a.update_stream(&raised))
            .await
            .expect("update attempt ends in time"),
        "a device updating its stream",
    );
    refused(
        tokio::time::timeout(
            WAIT,
            js_a.create_stream(async_nats::jetstream::stream::Config {
                name: "EMDEV_a2".into(),
                subjects: vec!["EMDEV.a.x.>".into()],
                ..Default::default()
            }),
        )
        .await
        .expect("create attempt ends in time"),
        "a device creating a stream",
    );
    let info = tokio::time::timeout(WAIT, stream.info())
        .await
        .expect("stream info in time")
        .expect("stream info")
        .clone();
    assert_eq!(
        (
            info.config.max_consumers,
            info.config.max_messages,
            info.config.max_bytes
        ),
        (3, 5, 64 << 10)
    );
    assert_eq!(info.state.consumer_count, 3);

    // What the backend sends: the oldest are dropped past max_msgs.
    let backend = connect(&url, &home.ok(&["creds", "EMDEVS", "backend"]))
        .await
        .expect("backend");
    for i in 0..8 {
        backend
            .client
            .publish("EMDEV.a.cmd", format!("m{i}").into())
            .await
            .unwrap();
    }
    backend.client.flush().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let info = stream.info().await.expect("stream info");
        assert!(info.state.messages <= 5, "{:?}", info.state);
        if info.state.last_sequence == 8 {
            assert_eq!(info.state.messages, 5, "{:?}", info.state);
            assert_eq!(info.state.first_sequence, 4, "{:?}", info.state);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "messages not stored: {:?}",
            info.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The hub JWT carries the fleet's limits, and nats-server applies them to the hub's
    // other streams: consumers per stream, ack pending, stream count.
    let js = hub_jetstream(&home);
    assert_eq!(
        (
            js.mem_storage,
            js.disk_storage,
            js.streams,
            js.consumer,
            js.max_ack_pending
        ),
        (1 << 20, 256 << 10, 3, 6, 50),
        "{js:?}"
    );
    let admin = connect(&url, &home.ok(&["creds", "EMDEVS", "superuser"]))
        .await
        .expect("hub admin");
    let mut js_admin = async_nats::jetstream::new(admin.client.clone());
    js_admin.set_timeout(Duration::from_secs(3));
    let other = |n: &str| async_nats::jetstream::stream::Config {
        name: n.to_uppercase(),
        subjects: vec![format!("{n}.>")],
        ..Default::default()
    };
    let o1 = tokio::time::timeout(WAIT, js_admin.create_stream(other("other1")))
        .await
        .expect("in time")
        .expect("a second stream in the hub");
    let e = refused(
        tokio::time::timeout(
            WAIT,
            o1.create_consumer(async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("greedy".into()),
                max_ack_pending: 51,
                ..Default::default()
            }),
        )
        .await
        .expect("in time"),
        "a consumer asking for more ack pending than the hub allows",
    );
    assert!(e.contains("max ack pending"), "{e}");
    for i in 0..6 {
        durable(&o1, &format!("o{i}"))
            .await
            .unwrap_or_else(|e| panic!("consumer o{i}: {e}"));
    }
    let e = refused(
        durable(&o1, "o6").await,
        "a seventh consumer on a hub stream",
    );
    assert!(e.contains("maximum consumers"), "{e}");
    tokio::time::timeout(WAIT, js_admin.create_stream(other("other2")))
        .await
        .expect("in time")
        .expect("a third stream in the hub");
    let e = refused(
        tokio::time::timeout(WAIT, js_admin.create_stream(other("other3")))
            .await
            .expect("in time"),
        "a fourth stream in the hub",
    );
    assert!(e.contains("maximum number of streams"), "{e}");

    // Bounds changed later reach the existing device stream through the relay.
    home.json(&["device", "fleet", "--device-max-msgs", "7"]);
    let report = home.push(&url);
    assert_eq!(report["streams_created"], 1, "{report}");
    let info = tokio::time::timeout(WAIT, stream.info())
        .await
        .expect("stream info in time")
        .expect("stream info");
    assert_eq!(info.config.max_messages, 7);
    assert_eq!(info.config.max_consumers, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_cannot_exhaust_the_hub_2_9() {
    bounded(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_cannot_exhaust_the_hub_2_15() {
    bounded(ServerLine::V2_15).await;
}

/// A data directory on SQLite or on a fresh PostgreSQL database, driven through the CLI.
struct Fleet {
    home: Home,
    url: Option<String>,
    _pg: Option<warden_testkit::PgDatabase>,
}

impl Fleet {
    async fn new(pg: bool) -> Fleet {
        let pg = if pg {
            Some(warden_testkit::PgDatabase::create().await)
        } else {
            None
        };
        let fleet = Fleet {
            home: Home::new(),
            url: pg.as_ref().map(|p| p.url().to_string()),
            _pg: pg,
        };
        // Any account case, so a test can take a device account's name (`EMDEV-x`).
        fleet.ok(&["init", "--name", "BULKOP", "--account-case", "any"]);
        fleet
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.home.command();
        if let Some(url) = &self.url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(args).output().expect("run warden")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "warden {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }

    /// Runs, requires exit `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "warden {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn ledger(&self) -> Vec<serde_json::Value> {
        self.ok(&["--json", "audit", "list", "--limit", "1000000"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }

    /// Row counts and the ledger's length: what "changed nothing" compares.
    fn state(&self) -> serde_json::Value {
        let s = self.json(&["status"]);
        serde_json::json!([
            s["accounts"],
            s["users"],
            s["ledger_events"],
            self.json(&["device", "list"]).as_array().unwrap().len()
        ])
    }
}

/// A bulk add of more devices than one parallel step makes (and in an order that is
/// not sorted): the report, the creds files and the ledger follow the input order;
/// every creds file holds the device's own user, issued by its own account; one
/// `device.add_batch` event per batch lists every device and no secret; the ledger
/// verifies. The same file again changes nothing; a file with one bad row, or one
/// device whose account name is taken, changes nothing either and names the row.
async fn bulk_add(pg: bool) {
    let fleet = Fleet::new(pg).await;
    let n = 600;
    let ids: Vec<String> = (0..n).map(|i| format!("z-{:04}", (i * 7919) % n)).collect();
    let csv = fleet.home.path().join("fleet.csv");
    let mut text = String::from("id,site\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("{id},site-{}\n", i % 5));
    }
    std::fs::write(&csv, &text).unwrap();
    let creds_dir = fleet.home.path().join("creds");
    let add = [
        "device",
        "add",
        "--from",
        csv.to_str().unwrap(),
        "--creds-dir",
        creds_dir.to_str().unwrap(),
    ];
    let out = fleet.json(&add);
    assert_eq!(out["added"], serde_json::json!(ids), "input order");
    assert_eq!(out["skipped"], serde_json::json!([]));

    let listed = fleet.json(&["device", "list"]);
    let by_id: std::collections::BTreeMap<&str, &serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d))
        .collect();
    assert_eq!(by_id.len(), n);
    for (i, id) in ids.iter().enumerate() {
        let d = by_id[id.as_str()];
        assert_eq!(d["meta"]["site"], format!("site-{}", i % 5), "{id}");
        let path = creds_dir.join(format!("{id}.creds"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
        let creds = nats_jwt::parse_creds(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let claims = nats_jwt::decode_any(&creds.jwt).unwrap();
        assert!(matches!(claims, nats_jwt::AnyClaims::User(_)), "{id}");
        assert_eq!(claims.subject(), d["user_key"].as_str().unwrap(), "{id}");
        assert_eq!(claims.issuer(), d["account_key"].as_str().unwrap(), "{id}");
        let seed = creds.seed.expect("creds seed");
        let kp = nats_jwt::KeyPair::from_seed(seed.expose()).unwrap();
        assert_eq!(kp.public_key().to_string(), claims.subject(), "{id}");
    }
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(&creds_dir).unwrap().count(), n);

    fleet.ok(&["audit", "verify"]);
    let ledger = fleet.ledger();
    let batches: Vec<&serde_json::Value> = ledger
        .iter()
        .filter(|e| e["action"] == "device.add_batch")
        .collect();
    assert!(!batches.is_empty());
    assert!(
        ledger.iter().all(|e| e["action"] != "device.add"),
        "a bulk add records batches, not one event per device"
    );
    let mut logged = Vec::new();
    for b in &batches {
        let devices = b["summary"]["devices"].as_array().unwrap();
        assert_eq!(b["summary"]["count"], devices.len());
        assert!(devices.len() <= 1_000);
        for d in devices {
            let id = d["id"].as_str().unwrap();
            let stored = by_id[id];
            assert_eq!(d["account_key"], stored["account_key"], "{id}");
            assert_eq!(d["user_key"], stored["user_key"], "{id}");
            assert_eq!(d["account"], stored["account"], "{id}");
            assert_eq!(d["meta"], stored["meta"], "{id}");
            logged.push(id.to_string());
        }
    }
    assert_eq!(
        logged, ids,
        "the batch events list every device, in input order"
    );
    let all = serde_json::to_string(&ledger).unwrap();
    assert!(!all.contains("NKEY SEED") && !all.contains("\"SU") && !all.contains("\"SA"));

    // The same file again: nothing added, nothing changed (not even the ledger).
    let before = fleet.state();
    let out = fleet.json(&add);
    assert_eq!(out["added"], serde_json::json!([]));
    assert_eq!(out["skipped"], serde_json::json!(ids));
    assert_eq!(fleet.state(), before);

    // A creds file cut short (the machine went down after the rename) is rewritten.
    let cut = creds_dir.join(format!("{}.creds", ids[3]));
    std::fs::write(&cut, "").unwrap();
    fleet.json(&add);
    assert!(
        std::fs::read_to_string(&cut)
            .unwrap()
            .contains("USER NKEY SEED")
    );
    assert_eq!(fleet.state(), before);

    // One bad row among new ones: a usage error naming it, nothing written.
    let bad = fleet.home.path().join("bad.csv");
    std::fs::write(&bad, "id,site\nnew-1,x\nnew-2,x\nBad_Id,x\nnew-3,x\n").unwrap();
    let e = fleet.fails(2, &["device", "add", "--from", bad.to_str().unwrap()]);
    assert!(e.contains("entry 3") && e.contains("Bad_Id"), "{e}");
    assert_eq!(fleet.state(), before);

    // A device whose account name is taken (by an account that is no device): the
    // whole file is refused, naming it, and nothing is written.
    fleet.ok(&["account", "add", "EMDEV-new-5"]);
    let before = fleet.state();
    let clash = fleet.home.path().join("clash.csv");
    std::fs::write(&clash, "id\nnew-4\nnew-5\nnew-6\n").unwrap();
    let e = fleet.fails(
        1,
        &[
            "device",
            "add",
            "--from",
            clash.to_str().unwrap(),
            "--creds-dir",
            creds_dir.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("EMDEV-new-5") && e.contains("already exists"),
        "{e}"
    );
    assert_eq!(fleet.state(), before);
    for id in ["new-4", "new-6"] {
        fleet.fails(1, &["device", "show", id]);
        assert!(!creds_dir.join(format!("{id}.creds")).exists());
    }
    fleet.ok(&["audit", "verify"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_add_on_sqlite() {
    bulk_add(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_add_on_postgres() {
    bulk_add(true).await;
}
