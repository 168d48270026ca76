//! What an account carries besides users and limits, asserted against real nats-server
//! processes (2.9.10 and 2.15.x): subject mappings route as declared (a weighted split
//! sends each message to exactly one destination), JetStream tiered limits are enforced
//! by the server per replication tier, the account's default permissions bind users
//! whose JWT carries none, and tags and the info URL reach the JWT. Bad input changes
//! nothing.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Client, Home, connect};
use futures::StreamExt;
use serde_json::Value;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// The account as `account show --json` prints it (spec and JWT), to compare before and
/// after a refused change.
fn account(home: &Home, name: &str) -> Value {
    let v = home.json(&["account", "show", name]);
    serde_json::json!({"spec": v["spec"], "jwt": v["jwt"]})
}

/// The decoded claims of an account's JWT, through `warden describe`.
fn claims(home: &Home, name: &str) -> Value {
    let v = home.json(&["account", "show", name]);
    home.json(&["describe", v["jwt"].as_str().expect("jwt")])
}

/// The `nats` body of a described JWT (describe may wrap the claims).
fn nats_body(described: &Value) -> Value {
    if let Some(n) = described.get("nats") {
        return n.clone();
    }
    for v in described.as_object().into_iter().flat_map(|o| o.values()) {
        if let Some(n) = v.get("nats") {
            return n.clone();
        }
    }
    panic!("no nats body in {described}")
}

/// Publishes `n` numbered messages on `subject` and collects, per subscription, the
/// numbers it received until all `n` arrived somewhere (bounded).
async fn spread(
    c: &Client,
    subject: &str,
    subs: &mut [(&str, async_nats::Subscriber)],
    n: usize,
) -> Vec<Vec<usize>> {
    for i in 0..n {
        c.client
            .publish(subject.to_string(), i.to_string().into())
            .await
            .expect("publish");
    }
    c.client.flush().await.expect("flush");
    let mut got: Vec<Vec<usize>> = vec![Vec::new(); subs.len()];
    let deadline = Instant::now() + WAIT;
    while got.iter().map(Vec::len).sum::<usize>() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages on {subject} arrived",
            got.iter().map(Vec::len).sum::<usize>()
        );
        for (k, (_, sub)) in subs.iter_mut().enumerate() {
            while let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(20), sub.next()).await
            {
                let i: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                got[k].push(i);
            }
        }
    }
    // Nothing more trickles in: each message went to one destination only.
    for (k, (_, sub)) in subs.iter_mut().enumerate() {
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            got[k].push(std::str::from_utf8(&m.payload).unwrap().parse().unwrap());
        }
    }
    got
}

async fn subscribe(
    c: &Client,
    subjects: &[&'static str],
) -> Vec<(&'static str, async_nats::Subscriber)> {
    let mut out = Vec::new();
    for s in subjects {
        out.push((
            *s,
            c.client.subscribe(s.to_string()).await.expect("subscribe"),
        ));
    }
    c.client.flush().await.expect("flush");
    out
}

async fn mappings(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "MAPOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "u", "-a", "APP"]);
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "m.a", "--to", "m.b",
    ]);
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "m.split", "--to", "m.x:50%", "--to",
        "m.y:50%",
    ]);
    // Half mapped: nats-server keeps the rest on the source subject itself.
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "m.half", "--to", "m.h:50",
    ]);
    // Cluster-specific: rendered in the JWT; this server has no cluster, so it does not apply.
    home.ok(&[
        "account",
        "mapping",
        "add",
        "APP",
        "--from",
        "m.c",
        "--to",
        "m.d",
        "--cluster",
        "east",
    ]);
    let list = home.json(&["account", "mapping", "list", "APP"]);
    let froms: Vec<&str> = list["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["from"].as_str().unwrap())
        .collect();
    assert_eq!(froms, ["m.a", "m.c", "m.half", "m.split"], "{list}");
    let body = nats_body(&claims(&home, "APP"));
    assert_eq!(body["mappings"]["m.c"][0]["cluster"], "east", "{body}");
    assert_eq!(body["mappings"]["m.split"][1]["weight"], 50, "{body}");
    assert!(body["mappings"]["m.a"][0].get("weight").is_none(), "{body}");

    // Over 100 in total for one source: refused, nothing changed.
    let before = account(&home, "APP");
    let e = home.fails(
        2,
        &[
            "account", "mapping", "add", "APP", "--from", "m.split", "--to", "m.z:10%",
        ],
    );
    assert!(e.contains("110%"), "{e}");
    assert_eq!(account(&home, "APP"), before);
    // Updating an existing destination (nsc's semantics) within 100 works.
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "m.split", "--to", "m.x:40%",
    ]);
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "m.split", "--to", "m.x:50%",
    ]);

    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let creds = home.ok(&["creds", "APP", "u"]);
    let c = connect(&url, &creds).await.expect("connect");

    // a → b: b's subscriber gets what is published on a; nothing stays on a.
    let mut subs = subscribe(&c, &["m.a", "m.b"]).await;
    let got = spread(&c, "m.a", &mut subs, 20).await;
    assert_eq!((got[0].len(), got[1].len()), (0, 20), "m.a → m.b");

    // 50/50: every one of 400 messages reaches exactly one of x and y, both get some.
    let mut subs = subscribe(&c, &["m.x", "m.y", "m.split"]).await;
    let got = spread(&c, "m.split", &mut subs, 400).await;
    let all: BTreeSet<usize> = got[0].iter().chain(&got[1]).copied().collect();
    assert_eq!(got[0].len() + got[1].len(), 400, "duplicates or losses");
    assert_eq!(all.len(), 400);
    assert!(
        !got[0].is_empty() && !got[1].is_empty(),
        "{} / {}",
        got[0].len(),
        got[1].len()
    );
    assert!(got[2].is_empty(), "nothing stays on the source at 100%");

    // 50% mapped: the other half is delivered on the source subject.
    let mut subs = subscribe(&c, &["m.h", "m.half"]).await;
    let got = spread(&c, "m.half", &mut subs, 200).await;
    assert_eq!(got[0].len() + got[1].len(), 200);
    assert!(
        !got[0].is_empty() && !got[1].is_empty(),
        "{} / {}",
        got[0].len(),
        got[1].len()
    );

    // A cluster mapping for another cluster leaves the subject as it is here.
    let mut subs = subscribe(&c, &["m.c", "m.d"]).await;
    let got = spread(&c, "m.c", &mut subs, 10).await;
    assert_eq!(
        (got[0].len(), got[1].len()),
        (10, 0),
        "cluster east mapping"
    );

    // rm of one destination, then of a whole source: the route is gone on the server.
    home.ok(&[
        "account", "mapping", "rm", "APP", "--from", "m.split", "--to", "m.y",
    ]);
    home.ok(&["account", "mapping", "rm", "APP", "--from", "m.a"]);
    let e = home.fails(1, &["account", "mapping", "rm", "APP", "--from", "m.a"]);
    assert!(e.contains("no mapping from m.a"), "{e}");
    home.push(&url);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut subs = subscribe(&c, &["m.a", "m.b"]).await;
        let got = spread(&c, "m.a", &mut subs, 5).await;
        if got[0].len() == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "m.a still mapped after rm");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = home.json(&["account", "mapping", "list", "APP"]);
    let split = list["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "m.split")
        .unwrap()
        .clone();
    assert_eq!(split["to"].as_array().unwrap().len(), 1, "{split}");
    assert_eq!(split["unmapped"], 50, "{split}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_2_9() {
    mappings(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_2_15() {
    mappings(ServerLine::V2_15).await;
}

async fn tiered_limits(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "TIEROP"]);
    home.ok(&[
        "account",
        "add",
        "JSA",
        "--js-tier",
        "R1",
        "--js-disk-storage",
        "1M",
        "--js-mem-storage",
        "256K",
        "--js-streams",
        "2",
    ]);
    home.ok(&["user", "add", "u", "-a", "JSA"]);
    let body = nats_body(&claims(&home, "JSA"));
    let r1 = &body["limits"]["tiered_limits"]["R1"];
    assert_eq!(r1["disk_storage"], 1 << 20, "{body}");
    assert_eq!(r1["mem_storage"], 256 << 10, "{body}");
    assert_eq!(r1["streams"], 2, "{body}");
    assert!(body["limits"].get("disk_storage").is_none(), "{body}");
    let shown = home.ok(&["account", "show", "JSA"]);
    assert!(
        shown.contains("jetstream R1") && shown.contains("disk 1 MiB"),
        "{shown}"
    );

    // Flat limits next to the tier: refused by Warden, nothing changed.
    let before = account(&home, "JSA");
    let e = home.fails(2, &["account", "edit", "JSA", "--js-disk-storage", "2M"]);
    assert!(e.contains("tiered JetStream limits (R1)"), "{e}");
    assert_eq!(account(&home, "JSA"), before);

    let server = home.start_js_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let c = connect(&url, &home.ok(&["creds", "JSA", "u"]))
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(c.client.clone());
    let cfg = |name: &str, max_bytes: i64| async_nats::jetstream::stream::Config {
        name: name.into(),
        subjects: vec![format!("{name}.>")],
        max_bytes,
        num_replicas: 1,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    };
    // Within the R1 tier: accepted.
    tokio::time::timeout(WAIT, js.create_stream(cfg("OK", 512 << 10)))
        .await
        .expect("create in time")
        .expect("a 512 KiB stream within the 1 MiB R1 tier");
    // Over the tier's disk storage: the server refuses it.
    let over = tokio::time::timeout(WAIT, js.create_stream(cfg("BIG", 2 << 20)))
        .await
        .expect("create in time");
    assert!(
        over.is_err(),
        "a 2 MiB stream over the 1 MiB tier was accepted"
    );
    eprintln!("server refused the big stream: {}", over.err().unwrap());

    // Raising the tier through Warden: the server then accepts it.
    home.ok(&[
        "account",
        "edit",
        "JSA",
        "--js-tier",
        "R1",
        "--js-disk-storage",
        "4M",
    ]);
    home.push(&url);
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout(WAIT, js.create_stream(cfg("BIG", 2 << 20)))
            .await
            .expect("create in time")
        {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "raised tier not applied: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // The streams count of the tier (2) is enforced too.
    let third = tokio::time::timeout(WAIT, js.create_stream(cfg("THIRD", 1024)))
        .await
        .expect("create in time");
    assert!(
        third.is_err(),
        "a third stream over --js-streams 2 was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_limits_2_9() {
    tiered_limits(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiered_limits_2_15() {
    tiered_limits(ServerLine::V2_15).await;
}

/// Flat and tiered JetStream limits exclude each other; `--js-disable` converts.
#[test]
fn flat_and_tiered_limits_are_refused_together() {
    let home = Home::new();
    home.ok(&["init", "--name", "TIERS"]);
    home.ok(&[
        "account",
        "add",
        "FLAT",
        "--js-disk-storage",
        "1M",
        "--js-mem-storage",
        "1M",
    ]);
    let before = account(&home, "FLAT");
    let e = home.fails(
        2,
        &[
            "account",
            "edit",
            "FLAT",
            "--js-tier",
            "R3",
            "--js-disk-storage",
            "1M",
        ],
    );
    assert!(e.contains("--js-disable"), "{e}");
    assert_eq!(account(&home, "FLAT"), before);
    // Converted in one edit.
    let v = home.json(&[
        "account",
        "edit",
        "FLAT",
        "--js-disable",
        "--js-tier",
        "3",
        "--js-disk-storage",
        "1G",
    ]);
    let limits = &v["spec"]["limits"];
    assert_eq!(limits["jetstream"]["disk_storage"], 0, "{v}");
    assert_eq!(
        limits["jetstream_tiers"]["R3"]["disk_storage"],
        1i64 << 30,
        "{v}"
    );
    // A tier that is not there cannot be removed; R3 can.
    let before = account(&home, "FLAT");
    let e = home.fails(2, &["account", "edit", "FLAT", "--rm-js-tier", "R1"]);
    assert!(e.contains("no JetStream tier R1"), "{e}");
    assert_eq!(account(&home, "FLAT"), before);
    let v = home.json(&["account", "edit", "FLAT", "--rm-js-tier", "R3"]);
    assert!(v["spec"]["limits"].get("jetstream_tiers").is_none(), "{v}");
    // Tier names as nats-server names them.
    for bad in ["R0", "R6", "0", "X1", ""] {
        let e = home.fails(
            2,
            &[
                "account",
                "edit",
                "FLAT",
                "--js-tier",
                bad,
                "--js-disk-storage",
                "1M",
            ],
        );
        assert!(e.contains("tier"), "{bad}: {e}");
    }
    // A missing tier to remove refuses the whole edit, the flat limit with it.
    home.fails(
        2,
        &[
            "account",
            "edit",
            "FLAT",
            "--js-disk-storage",
            "1M",
            "--rm-js-tier",
            "R2",
        ],
    );
}

async fn default_permissions(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "DEFOP"]);
    home.ok(&[
        "account",
        "add",
        "DP",
        "--default-allow-pub",
        "ok.>",
        "--default-allow-sub",
        "ok.>,_INBOX.>",
        "--default-deny-pub",
        "ok.secret",
    ]);
    // No permissions of its own: the account's defaults apply.
    home.ok(&["user", "add", "plain", "-a", "DP"]);
    // Permissions of its own: the defaults do not.
    home.ok(&[
        "user",
        "add",
        "own",
        "-a",
        "DP",
        "--allow-pub",
        "other.>",
        "--allow-sub",
        "other.>",
    ]);
    let shown = home.ok(&["account", "show", "DP"]);
    assert!(shown.contains("default pub allow ok.>"), "{shown}");
    let body = nats_body(&claims(&home, "DP"));
    assert_eq!(
        body["default_permissions"]["pub"]["allow"][0], "ok.>",
        "{body}"
    );

    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let mut plain = connect(&url, &home.ok(&["creds", "DP", "plain"]))
        .await
        .expect("plain connects");
    plain.publish_delivered("ok.x", "default allow").await;
    plain
        .publish_refused("other.x", "outside the defaults")
        .await;
    plain.publish_refused("ok.secret", "default deny").await;
    let mut own = connect(&url, &home.ok(&["creds", "DP", "own"]))
        .await
        .expect("own connects");
    own.publish_delivered("other.x", "the user's own permissions")
        .await;
    own.publish_refused("ok.x", "defaults do not add to a user's own")
        .await;

    // Removing a default subject: new connections of the plain user lose it.
    home.ok(&[
        "account",
        "edit",
        "DP",
        "--rm-default",
        "ok.>",
        "--default-allow-pub",
        "next.>",
        "--default-allow-sub",
        "next.>",
    ]);
    home.push(&url);
    let creds = home.ok(&["creds", "DP", "plain"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut c = connect(&url, &creds).await.expect("plain connects");
        let mut sub = c.client.subscribe("next.y").await.expect("subscribe");
        c.client.flush().await.expect("flush");
        c.client
            .publish("next.y", "n".into())
            .await
            .expect("publish");
        c.client.flush().await.expect("flush");
        if tokio::time::timeout(Duration::from_millis(500), sub.next())
            .await
            .is_ok()
        {
            c.publish_refused("ok.x", "removed default").await;
            break;
        }
        assert!(Instant::now() < deadline, "new defaults not applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_permissions_2_9() {
    default_permissions(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_permissions_2_15() {
    default_permissions(ServerLine::V2_15).await;
}

#[test]
fn tags_and_info_url_reach_the_jwt() {
    let home = Home::new();
    home.ok(&["init", "--name", "TAGOP"]);
    home.ok(&[
        "account",
        "add",
        "T",
        "--tag",
        " Team:Blue ,env:prod",
        "--info-url",
        "https://example.com/accounts/t",
        "--description",
        "the T account",
    ]);
    let body = nats_body(&claims(&home, "T"));
    assert_eq!(
        body["tags"],
        serde_json::json!(["team:blue", "env:prod"]),
        "{body}"
    );
    assert_eq!(body["info_url"], "https://example.com/accounts/t", "{body}");
    let shown = home.ok(&["account", "show", "T"]);
    assert!(
        shown.contains("tags          team:blue, env:prod")
            && shown.contains("info url      https://example.com/accounts/t"),
        "{shown}"
    );
    home.ok(&[
        "account",
        "edit",
        "T",
        "--rm-tag",
        "TEAM:BLUE",
        "--tag",
        "tier:gold",
        "--info-url",
        "",
    ]);
    let body = nats_body(&claims(&home, "T"));
    assert_eq!(
        body["tags"],
        serde_json::json!(["env:prod", "tier:gold"]),
        "{body}"
    );
    assert!(body.get("info_url").is_none(), "{body}");
    // Not a URL: refused, nothing changed.
    let before = account(&home, "T");
    let e = home.fails(2, &["account", "edit", "T", "--info-url", "not a url"]);
    assert!(e.contains("info_url"), "{e}");
    assert_eq!(account(&home, "T"), before);
}

#[test]
fn bad_input_changes_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "BADOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "a", "--to", "b:60%",
    ]);
    let before = account(&home, "APP");
    let events = home.ledger().len();
    for (code, args, needle) in [
        (2, vec!["--from", "", "--to", "b"], "empty"),
        (2, vec!["--from", "a", "--to", " "], "empty"),
        (2, vec!["--from", "a", "--to", "b:"], "SUBJECT:WEIGHT%"),
        (2, vec!["--from", "a", "--to", "b:x%"], "SUBJECT:WEIGHT%"),
        (2, vec!["--from", "a", "--to", "c:0%"], "1% to 100%"),
        (2, vec!["--from", "a", "--to", "c:101%"], "1% to 100%"),
        (2, vec!["--from", "a", "--to", "c:41%"], "101%"),
        (2, vec!["--from", "a", "--to", "c.*"], "plain subject"),
        (2, vec!["--from", "a"], "--to"),
        (
            2,
            vec!["--from", "a", "--to", "c", "--cluster", " "],
            "cluster",
        ),
    ] {
        let mut full = vec!["account", "mapping", "add", "APP"];
        full.extend(args.iter().copied());
        let e = home.fails(code, &full);
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    let e = home.fails(
        1,
        &[
            "account", "mapping", "add", "NOPE", "--from", "a", "--to", "b",
        ],
    );
    assert!(e.contains("NOPE"), "{e}");
    home.fails(1, &["account", "mapping", "list", "NOPE"]);
    let e = home.fails(
        1,
        &[
            "account", "mapping", "rm", "APP", "--from", "a", "--to", "zz",
        ],
    );
    assert!(e.contains("no destination zz"), "{e}");
    for args in [
        vec!["--default-allow-pub", " "],
        vec!["--default-allow-pub", "a q"],
        vec!["--default-allow-pub-response=0"],
        vec!["--tag", " "],
        vec!["--rm-tag", ""],
        vec!["--js-tier", "R9", "--js-disk-storage", "1M"],
    ] {
        let mut full = vec!["account", "edit", "APP"];
        full.extend(args.iter().copied());
        home.fails(2, &full);
    }
    home.fails(2, &["account", "edit", "APP"]);
    home.fails(1, &["account", "edit", "NOPE", "--tag", "x"]);
    assert_eq!(account(&home, "APP"), before);
    assert_eq!(
        home.ledger().len(),
        events,
        "a refused change left a ledger event"
    );
}
