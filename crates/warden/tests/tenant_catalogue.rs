//! How tenant traffic reaches the platform account, and the configurable subject
//! catalogue, against real nats-server processes (2.9.10 and 2.15.x).
//!
//! Each tenant account imports its own slice (`a.events.>` as `events.>`) of the platform's
//! wildcard service exports (`*.events.>`): a collector's plain publish reaches every
//! platform subscriber (a queue group once) and a platform stream; a JetStream publish
//! gets its acknowledgement back; the platform JWT does not change when tenants come and
//! go. `warden tenant settings set` changes the catalogue: bad settings change nothing
//! (exit 2), and a new subject (`logs.>`) flows once the accounts are pushed.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Home, connect};
use futures::StreamExt;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// Adds user `name` to tenant `slug`; its creds (checked 0600).
fn tenant_user(home: &Home, slug: &str, name: &str) -> String {
    let file = format!("{slug}-{name}.creds");
    let path = home.path().join(&file);
    home.ok(&[
        "tenant",
        "user",
        "add",
        slug,
        name,
        "-o",
        path.to_str().unwrap(),
    ]);
    home.creds_file(&file)
}

/// The tenant's creds for `name`, fetched again (after a re-sign).
fn fresh_creds(home: &Home, slug: &str, name: &str) -> String {
    let file = format!("{slug}-{name}-fresh.creds");
    let path = home.path().join(&file);
    home.ok(&["tenant", "creds", slug, name, "-o", path.to_str().unwrap()]);
    home.creds_file(&file)
}

/// Publishes `local` until `sub` gets `expected` (the server wires imports on its own
/// schedule after a push), within [`WAIT`]; other messages on `sub` are skipped.
async fn arrives(tenant: &Client, sub: &mut async_nats::Subscriber, local: &str, expected: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        tenant
            .client
            .publish(local.to_string(), "probe".into())
            .await
            .unwrap();
        tenant.client.flush().await.unwrap();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            if m.subject.as_str() == expected {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing on {expected} in time");
    }
}

/// Messages on `sub` within `within`.
async fn drain(sub: &mut async_nats::Subscriber, within: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(within, sub.next()).await {
        out.push(m.subject.to_string());
    }
    out
}

/// `iat` of the user JWT in a creds text.
fn jwt_iat(creds: &str) -> i64 {
    let jwt = creds
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("user jwt in creds");
    let payload = jwt.split('.').nth(1).expect("jwt payload");
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .expect("base64url payload");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("claims");
    claims["iat"].as_i64().expect("iat")
}

/// Entries of a JSON list (empty lists are left out of specs).
fn count(v: &serde_json::Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

fn platform_jwt(home: &Home) -> String {
    home.json(&["account", "show", "PLATFORM"])["jwt"]
        .as_str()
        .expect("platform jwt")
        .to_string()
}

async fn catalogue(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "CATOP"]);
    for t in ["a", "b"] {
        home.json(&["tenant", "add", t, "--js-disk", "1000000"]);
    }
    let a_creds = tenant_user(&home, "a", "coll");
    let b_creds = tenant_user(&home, "b", "coll");

    // The platform account names no tenant: adding or deleting one leaves its JWT as is.
    let platform = home.json(&["account", "show", "PLATFORM"]);
    assert_eq!(count(&platform["spec"]["imports"]), 0, "{platform}");
    let before = platform_jwt(&home);
    home.json(&["tenant", "add", "c"]);
    home.json(&["tenant", "suspend", "c"]);
    home.json(&["tenant", "delete", "c"]);
    assert_eq!(platform_jwt(&home), before, "the platform was re-signed");
    let tenant_a = home.json(&["account", "show", "TENANT-a"]);
    assert_eq!(count(&tenant_a["spec"]["exports"]), 0);
    assert_eq!(count(&tenant_a["spec"]["imports"]), 5, "{tenant_a}");

    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let platform_creds = home.warden().await.platform_creds().await.unwrap();
    let p1 = connect(&url, &platform_creds).await.unwrap();
    let p2 = connect(&url, &platform_creds).await.unwrap();

    // Plain publishes: every subscriber gets one, a queue group one in all.
    let mut s1 = p1.client.subscribe("*.events.>").await.unwrap();
    let mut s2 = p2.client.subscribe("*.events.>").await.unwrap();
    let mut q1 = p1
        .client
        .queue_subscribe("*.events.>", "writers".into())
        .await
        .unwrap();
    let mut q2 = p2
        .client
        .queue_subscribe("*.events.>", "writers".into())
        .await
        .unwrap();
    p1.client.flush().await.unwrap();
    p2.client.flush().await.unwrap();
    let mut a = connect(&url, &a_creds).await.unwrap();
    arrives(&a, &mut s1, "events.wired", "a.events.wired").await;
    // Earlier probes (before the import was wired everywhere) are dropped from the count.
    drain(&mut s2, Duration::from_millis(300)).await;
    drain(&mut q1, Duration::from_millis(300)).await;
    drain(&mut q2, Duration::from_millis(300)).await;
    drain(&mut s1, Duration::from_millis(300)).await;
    for i in 0..10 {
        a.client
            .publish(format!("events.n{i}"), "x".into())
            .await
            .unwrap();
    }
    a.client.flush().await.unwrap();
    let quiet = Duration::from_millis(500);
    let (g1, g2) = (drain(&mut s1, quiet).await, drain(&mut s2, quiet).await);
    let (h1, h2) = (drain(&mut q1, quiet).await, drain(&mut q2, quiet).await);
    let expected: Vec<String> = (0..10).map(|i| format!("a.events.n{i}")).collect();
    assert_eq!(g1, expected);
    assert_eq!(g2, expected);
    let mut queued: Vec<String> = h1.into_iter().chain(h2).collect();
    queued.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(queued, sorted, "the queue group got each message once");

    // JetStream in the platform account: a stream on every tenant's events (a leading
    // wildcard needs no_ack on 2.10+) and one on a literal tenant prefix, which
    // acknowledges a collector's JetStream publish through the import.
    let js = async_nats::jetstream::new(p1.client.clone());
    let events = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["*.events.>".into()],
            storage: async_nats::jetstream::stream::StorageType::Memory,
            no_ack: true,
            ..Default::default()
        })
        .await
        .expect("EVENTS in the platform account");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "A_TRAPS".into(),
        subjects: vec!["a.snmp.traps".into()],
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("A_TRAPS in the platform account");
    a.client
        .publish("events.stored", "kept".into())
        .await
        .unwrap();
    a.client.flush().await.unwrap();
    let a_js = async_nats::jetstream::new(a.client.clone());
    let ack = tokio::time::timeout(WAIT, async {
        a_js.publish("snmp.traps", "trap".into())
            .await
            .expect("publish")
            .await
    })
    .await
    .expect("ack in time")
    .expect("the collector's JetStream publish is acknowledged");
    assert_eq!(ack.stream, "A_TRAPS");
    let trap = js
        .get_stream("A_TRAPS")
        .await
        .unwrap()
        .get_raw_message(ack.sequence)
        .await
        .expect("stored trap");
    assert_eq!(trap.subject.as_str(), "a.snmp.traps");
    // EVENTS holds the plain publishes, prefixed.
    let deadline = Instant::now() + WAIT;
    let mut stream = events;
    let stored = loop {
        let info = stream.info().await.unwrap();
        let last = info.state.last_sequence;
        if last > 0 {
            let m = stream.get_raw_message(last).await.unwrap();
            if m.subject.as_str() == "a.events.stored" {
                break m;
            }
        }
        assert!(Instant::now() < deadline, "a.events.stored not in EVENTS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(&stored.payload[..], b"kept");

    // B's traffic arrives as b.…; B cannot publish into A's slice.
    let mut b = connect(&url, &b_creds).await.unwrap();
    arrives(&b, &mut s1, "events.from-b", "b.events.from-b").await;
    b.client
        .publish("a.events.forged", "x".into())
        .await
        .unwrap();
    b.client.flush().await.unwrap();
    let e = b
        .next_error(WAIT)
        .await
        .expect("B's forged publish refused");
    assert!(e.to_lowercase().contains("permissions violation"), "{e}");

    // Before the catalogue change, `logs.app` is not A's to publish.
    a.client.publish("logs.app", "x".into()).await.unwrap();
    a.client.flush().await.unwrap();
    let e = a.next_error(WAIT).await.expect("logs.app refused");
    assert!(e.to_lowercase().contains("permissions violation"), "{e}");

    // Bad settings: usage errors, nothing changed.
    let shown = home.json(&["tenant", "settings", "show"]);
    assert_eq!(shown["catalogue"]["publish"][0], "events.>");
    let file = |name: &str, text: &str| {
        let path = home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    for (name, text, why) in [
        (
            "bad1.yaml",
            "catalogue:\n  publish: [\"*.x\"]\n",
            "first token",
        ),
        ("bad2.yaml", "catalog: {}\n", "unknown field"),
        (
            "bad3.json",
            r#"{"catalogue": {"publish": ["events.>", "events.x"], "requests": []}}"#,
            "overlap",
        ),
        // Tenant `a` exists: `a` cannot become a catalogue token.
        (
            "bad4.yaml",
            "catalogue:\n  publish: [\"a.x\"]\n",
            "tenant a",
        ),
        ("bad5.yaml", "platform_account: \"bad name\"\n", "bad name"),
    ] {
        let e = home.fails(2, &["tenant", "settings", "set", &file(name, text)]);
        assert!(e.contains(why), "{name}: {e}");
    }
    home.fails(
        2,
        &["tenant", "settings", "set", "/nonexistent/settings.yaml"],
    );
    // Names cannot change once the platform exists: a conflict, not a usage error.
    let e = home.fails(
        1,
        &[
            "tenant",
            "settings",
            "set",
            &file("rename.yaml", "account_prefix: CUST-\n"),
        ],
    );
    assert!(e.contains("can no longer change"), "{e}");
    assert_eq!(home.json(&["tenant", "settings", "show"]), shown);

    // A suspended tenant stays cut off through the recompilation below.
    home.json(&["tenant", "add", "d"]);
    tenant_user(&home, "d", "coll");
    home.json(&["tenant", "suspend", "d"]);

    // Adding `logs.>`: a dry run first (nothing stored), then for real.
    let logs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/tenant-settings.yaml"
    );
    // A tenant whose imports cannot take one more subject holds the change back.
    let e = home.fails(2, &["tenant", "add", "x", "--imports", "4"]);
    assert!(e.contains("imports"), "{e}");
    home.json(&["tenant", "edit", "a", "--imports", "5"]);
    let e = home.fails(2, &["tenant", "settings", "set", logs]);
    assert!(e.contains("tenant a") && e.contains("imports"), "{e}");
    assert_eq!(home.json(&["tenant", "settings", "show"]), shown);
    home.json(&["tenant", "edit", "a", "--imports", "16"]);
    let dry = home.json(&["tenant", "settings", "set", logs, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["catalogue_changed"], true);
    assert_eq!(home.json(&["tenant", "settings", "show"]), shown);
    let jwt_before = platform_jwt(&home);
    let done = home.json(&["tenant", "settings", "set", logs]);
    assert_eq!(
        done["accounts"],
        serde_json::json!(["PLATFORM", "TENANT-a", "TENANT-b", "TENANT-d"]),
        "{done}"
    );
    // platform, and the collectors of a, b and d.
    assert_eq!(done["users"], 4, "{done}");
    assert_eq!(
        home.json(&["tenant", "settings", "show"])["catalogue"]["publish"][4],
        "logs.>"
    );
    assert_ne!(platform_jwt(&home), jwt_before);
    // A slug equal to the new token is refused now.
    home.fails(2, &["tenant", "add", "logs"]);
    home.push(&url);

    // New creds carry the new permissions: logs.app arrives as a.logs.app.
    let platform_creds = home.warden().await.platform_creds().await.unwrap();
    let p3 = connect(&url, &platform_creds).await.unwrap();
    let mut logs_sub = p3.client.subscribe("*.logs.>").await.unwrap();
    p3.client.flush().await.unwrap();
    let a2 = connect(&url, &fresh_creds(&home, "a", "coll"))
        .await
        .unwrap();
    arrives(&a2, &mut logs_sub, "logs.app", "a.logs.app").await;
    // The old subjects still flow.
    arrives(&a2, &mut s1, "events.after", "a.events.after").await;
    // D's re-signed user is covered by its account's `*` revocation, and refused.
    let d_creds = fresh_creds(&home, "d", "coll");
    let revoked_at = home.json(&["account", "show", "TENANT-d"])["spec"]["revocations"]["*"]
        .as_i64()
        .expect("suspended: * revoked");
    assert!(
        jwt_iat(&d_creds) <= revoked_at,
        "d's user issued after its revocation"
    );
    assert!(
        connect(&url, &d_creds).await.is_err(),
        "a suspended tenant connected after the catalogue change"
    );
    drop((a, b, p1, p2));
}

/// Rewrites the store as the code before 2026-11-26 left it: the platform account with
/// one stream import per tenant and publish subject, each tenant account with stream
/// exports of the catalogue and only its request import; no `tenant_layout`. Signed
/// with the operator's signing key, queued for the push like any change.
async fn make_old_layout(home: &Home) {
    use nats_jwt::{AccountPublicKey, Export, ExportType, Import, KeyPair, Subject};
    use warden_core::{AccountName, AccountSpec};
    let store = home.store().await;
    let mut tx = store.begin().await.unwrap();
    let op = tx.operator().await.unwrap().unwrap();
    let signer = KeyPair::from_seed(&tx.seed(&op.signing_key).await.unwrap()).unwrap();
    let publish = ["events.>", "snmp.traps", "otel.>", "netflow.>"];
    let subj = |s: &str| Subject::new(s).unwrap();
    let mut platform = tx
        .account_by_name(&op.public_key, "PLATFORM")
        .await
        .unwrap()
        .unwrap();
    let platform_key: AccountPublicKey = platform.public_key.parse().unwrap();
    let mut pspec: AccountSpec = serde_json::from_value(platform.spec.clone()).unwrap();
    pspec.exports = vec![Export::new(subj("*.cmd.>"), ExportType::Service)];
    pspec.imports.clear();
    let mut rows = vec![];
    for t in tx.tenants(None).await.unwrap() {
        let mut acc = tx.account(&t.account_key).await.unwrap().unwrap();
        let key: AccountPublicKey = acc.public_key.parse().unwrap();
        let mut spec: AccountSpec = serde_json::from_value(acc.spec.clone()).unwrap();
        spec.exports = publish
            .iter()
            .map(|s| Export::new(subj(s), ExportType::Stream))
            .collect();
        let mut cmd = Import::new(
            subj(&format!("{}.cmd.>", t.slug)),
            platform_key.clone(),
            ExportType::Service,
        );
        cmd.local_subject = Some(subj("cmd.>"));
        spec.imports = vec![cmd];
        for s in publish {
            let mut i = Import::new(subj(s), key.clone(), ExportType::Stream);
            i.local_subject = Some(subj(&format!("{}.{s}", t.slug)));
            pspec.imports.push(i);
        }
        acc.jwt = warden_core::compile_account(
            &key,
            &AccountName::parse_any_case(&acc.name).unwrap(),
            &spec,
        )
        .encode(&signer)
        .unwrap();
        acc.spec = serde_json::to_value(&spec).unwrap();
        rows.push(acc);
    }
    platform.jwt = warden_core::compile_account(
        &platform_key,
        &AccountName::parse_any_case("PLATFORM").unwrap(),
        &pspec,
    )
    .encode(&signer)
    .unwrap();
    platform.spec = serde_json::to_value(&pspec).unwrap();
    rows.push(platform);
    for row in rows {
        tx.update_account(&row).await.unwrap();
        tx.enqueue("account.update", &row.public_key).await.unwrap();
    }
    tx.set_meta("tenant_layout", "").await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
}

/// `tenant.upgrade` events in the ledger.
async fn upgrades(home: &Home) -> usize {
    let store = home.store().await;
    let n = store
        .ledger(0, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "tenant.upgrade")
        .count();
    store.close().await;
    n
}

/// A store with the old wiring (platform importing each tenant) works as before and is
/// recompiled by the next tenant change: the platform loses its imports, the tenants
/// import their slices, and traffic keeps arriving prefixed.
async fn upgrade(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "UPOP"]);
    home.json(&["tenant", "add", "a", "--js-disk", "1000000"]);
    let a_creds = tenant_user(&home, "a", "coll");
    make_old_layout(&home).await;
    let old = home.json(&["account", "show", "PLATFORM"]);
    assert_eq!(count(&old["spec"]["imports"]), 4);

    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let platform = connect(&url, &home.warden().await.platform_creds().await.unwrap())
        .await
        .unwrap();
    let mut events = platform.client.subscribe("*.events.>").await.unwrap();
    platform.client.flush().await.unwrap();
    let a = connect(&url, &a_creds).await.unwrap();
    arrives(&a, &mut events, "events.old", "a.events.old").await;

    // The next tenant change upgrades the whole store in its transaction.
    home.json(&["tenant", "add", "b"]);
    let new = home.json(&["account", "show", "PLATFORM"]);
    assert_eq!(count(&new["spec"]["imports"]), 0, "{new}");
    assert_eq!(count(&new["spec"]["exports"]), 5);
    assert!(
        new["jwt"].as_str().unwrap().len() < old["jwt"].as_str().unwrap().len(),
        "the platform JWT shrank"
    );
    let tenant_a = home.json(&["account", "show", "TENANT-a"]);
    assert_eq!(count(&tenant_a["spec"]["exports"]), 0);
    assert_eq!(count(&tenant_a["spec"]["imports"]), 5, "{tenant_a}");
    // Recorded once; the next change finds nothing to upgrade.
    assert_eq!(upgrades(&home).await, 1);
    home.json(&["tenant", "add", "c"]);
    assert_eq!(upgrades(&home).await, 1);

    home.push(&url);
    // The same creds (a's permissions did not change) now go through its import.
    arrives(&a, &mut events, "events.new", "a.events.new").await;
    let b_creds = tenant_user(&home, "b", "coll");
    let b = connect(&url, &b_creds).await.unwrap();
    arrives(&b, &mut events, "events.new", "b.events.new").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_2_9() {
    upgrade(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_2_15() {
    upgrade(ServerLine::V2_15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_2_9() {
    catalogue(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_2_15() {
    catalogue(ServerLine::V2_15).await;
}
