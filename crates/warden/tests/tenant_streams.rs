//! JetStream through tenant accounts, against real nats-server processes (2.9.10 and
//! 2.15.x): the example streams (`examples/streams.yaml`: `EVENTS` on `*.events.>`, …)
//! applied in the platform account that `tenant add` created; tenant collectors publish
//! plain `events.syslog` with their tenant creds, and `EVENTS` stores each message under
//! its tenant's prefix (`a.events.syslog`, `b.events.syslog`), read back through JetStream
//! as the platform user; a tenant cannot reach the platform's JetStream API.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Home, connect};
use warden_testkit::{NatsServerBinary, ServerLine};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/streams.yaml");
const WAIT: Duration = Duration::from_secs(10);

/// The tenant publishes `subject` with `payload` until `EVENTS` holds a message on
/// `stored` with that payload (the tenant's route into the platform is wired on the
/// server's schedule after a push), within a bound. The streams are `no_ack` (see the
/// example), so publishes are plain.
async fn lands(
    tenant: &Client,
    events: &async_nats::jetstream::stream::Stream,
    subject: &str,
    payload: &str,
    stored: &str,
) -> async_nats::jetstream::message::StreamMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        tenant
            .client
            .publish(subject.to_string(), payload.to_string().into())
            .await
            .unwrap();
        tenant.client.flush().await.unwrap();
        let poll_until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < poll_until {
            if let Ok(m) = events.get_last_raw_message_by_subject(stored).await
                && &m.payload[..] == payload.as_bytes()
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            Instant::now() < deadline,
            "{payload:?} on {subject} never stored as {stored}"
        );
    }
}

async fn tenant_streams(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "TENANTJSOP"]);
    for t in ["a", "b"] {
        home.json(&["tenant", "add", t]);
        let path = home.path().join(format!("{t}.creds"));
        home.ok(&[
            "tenant",
            "user",
            "add",
            t,
            "coll",
            "-o",
            path.to_str().unwrap(),
        ]);
    }
    let a_creds = home.creds_file("a.creds");
    let b_creds = home.creds_file("b.creds");
    let platform_creds = home.warden().await.platform_creds().await.unwrap();

    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    home.push(&url);

    // The example streams, in the PLATFORM account the first `tenant add` created.
    let report = home.json(&["streams", "apply", EXAMPLE, "--nats", &url]);
    let created: Vec<&str> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["create", "create", "create"], "{report}");

    let platform = connect(&url, &platform_creds).await.unwrap();
    let js = async_nats::jetstream::new(platform.client.clone());
    let events = js.get_stream("EVENTS").await.expect("EVENTS");

    // Tenant a's collector publishes `events.syslog` with the tenant's creds; EVENTS
    // stores it as `a.events.syslog`. Then b's, as `b.events.syslog`.
    let a = connect(&url, &a_creds).await.unwrap();
    let m = lands(
        &a,
        &events,
        "events.syslog",
        "<13>from a",
        "a.events.syslog",
    )
    .await;
    assert_eq!(m.subject.as_str(), "a.events.syslog");
    let b = connect(&url, &b_creds).await.unwrap();
    let m = lands(
        &b,
        &events,
        "events.syslog",
        "<13>from b",
        "b.events.syslog",
    )
    .await;
    assert_eq!(m.subject.as_str(), "b.events.syslog");
    // a's last message is still a's: b's did not land under a's prefix.
    let last_a = events
        .get_last_raw_message_by_subject("a.events.syslog")
        .await
        .unwrap();
    assert_eq!(&last_a.payload[..], b"<13>from a");

    // Every stored message is under a tenant prefix and carries that tenant's payload.
    let info = js
        .get_stream("EVENTS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert!(info.state.messages >= 2, "{:?}", info.state);
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let m = events.get_raw_message(seq).await.unwrap();
        let from = match m.subject.as_str() {
            "a.events.syslog" => "<13>from a",
            "b.events.syslog" => "<13>from b",
            other => panic!("unexpected subject {other} in EVENTS"),
        };
        assert_eq!(&m.payload[..], from.as_bytes(), "seq {seq}");
    }
    // Other streams got nothing.
    let snmp = js
        .get_stream("SNMP_TRAPS")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(snmp.state.messages, 0);

    // Tenant a cannot read EVENTS: its users may not publish on `$JS.API.>`, so the
    // server refuses the request (a permission violation) and no stream info comes back.
    let mut a = a;
    // A refused request gets no reply: bound it well inside WAIT (async-nats would
    // otherwise wait its own 10 s request timeout, the same as WAIT).
    let mut ajs = async_nats::jetstream::new(a.client.clone());
    ajs.set_timeout(Duration::from_secs(3));
    let r = tokio::time::timeout(WAIT, ajs.get_stream("EVENTS"))
        .await
        .expect("get_stream answered or failed in time");
    assert!(r.is_err(), "tenant a read EVENTS");
    let e = a.next_error(WAIT).await.expect("a server error");
    assert!(
        e.to_lowercase().contains("permissions violation") && e.contains("$JS.API"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_streams_2_9() {
    tenant_streams(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_streams_2_15() {
    tenant_streams(ServerLine::V2_15).await;
}
