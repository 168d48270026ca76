//! Replicated JetStream against a three-server JetStream cluster rendered by Warden
//! (`warden nats-config --server-name --cluster --cluster-listen --routes --jetstream`),
//! on nats-server 2.9.10 and 2.15.x: device streams follow the fleet's `stream_replicas`
//! (created with three replicas, an existing R1 stream scaled up and back down by the
//! relay) and the hub's JetStream limits move to the tier `R3` and back; a tenant with
//! `--js-replicas 3` gets the `R3` tier and its declared R3 streams; a declared stream
//! with more replicas than the cluster has servers, or with three against a server
//! without a cluster, is refused before anything is created; bad replica counts are
//! usage errors that change nothing; and how each server counts a replicated stream's
//! `max_bytes` against the hub's `R3` tier, which Warden's capacity plans for.

mod common;

use std::time::{Duration, Instant};

use common::Home;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(30);

/// Three servers of one JetStream cluster (`C3`, servers `n1`..`n3`), each started from
/// the configuration `warden nats-config` rendered for it.
struct Cluster {
    servers: Vec<NatsServer>,
}

impl Cluster {
    fn start(home: &Home, bin: &NatsServerBinary) -> Cluster {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes = ports
            .iter()
            .map(|(_, r)| format!("nats-route://127.0.0.1:{r}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::new();
        for (i, (port, route)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let file = |what: &str| home.path().join(format!("{name}-{what}"));
            let listen = format!("127.0.0.1:{port}");
            let cluster_listen = format!("127.0.0.1:{route}");
            home.ok(&[
                "nats-config",
                "--listen",
                &listen,
                "--server-name",
                &name,
                "--cluster",
                "C3",
                "--cluster-listen",
                &cluster_listen,
                "--routes",
                &routes,
                "--resolver-dir",
                file("resolver").to_str().unwrap(),
                "--jetstream",
                file("js").to_str().unwrap(),
                "-o",
                file("conf").to_str().unwrap(),
            ]);
            let config = std::fs::read_to_string(file("conf")).unwrap();
            servers.push(
                NatsServer::start(bin, &file("server"), &config)
                    .unwrap_or_else(|e| panic!("{name} refused Warden's config: {e}")),
            );
        }
        Cluster { servers }
    }

    fn url(&self) -> String {
        self.servers[0].url()
    }
}

/// Answers of `$SYS.REQ.SERVER.PING.JSZ` (as the system user) until the cluster has a
/// JetStream meta leader and all three servers in its meta group, within [`WAIT`].
async fn meta_leader(home: &Home, url: &str) -> serde_json::Value {
    let creds = home.ok(&["creds", "SYS", "sys"]);
    let sys = common::connect(url, &creds).await.expect("system user");
    let deadline = Instant::now() + WAIT;
    loop {
        let meta = match sys
            .client
            .request("$SYS.REQ.SERVER.PING.JSZ", "{}".into())
            .await
        {
            Ok(reply) => {
                let j: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
                j["data"]["meta_cluster"].clone()
            }
            Err(_) => serde_json::Value::Null,
        };
        // 2.9.10 may elect a leader before the third server joined the meta group.
        if meta["leader"].as_str().is_some_and(|l| !l.is_empty()) && meta["cluster_size"] == 3 {
            return meta;
        }
        assert!(
            Instant::now() < deadline,
            "no JetStream meta leader: {meta}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `warden push` until the outbox is empty, within [`WAIT`]: right after an account
/// reaches one server, the meta leader may not know it yet, and a stream created then
/// fails and is retried.
fn deliver(home: &Home, url: &str) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut streams = 0;
    loop {
        // A row can fail while the JetStream cluster settles (exit 1, the row kept for a
        // retry): the loop pushes again until the outbox is empty.
        let out = home.run(&["--json", "push", "--nats", url]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("push report: {e}: {out:?}"));
        streams += report["streams_created"].as_u64().unwrap_or(0) as usize;
        if home.json(&["status"])["outbox_pending"] == 0 {
            return streams;
        }
        assert!(Instant::now() < deadline, "outbox not delivered: {report}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the cluster behind `url` answers JetStream requests of `account`: a pushed
/// account reaches the other servers by the resolver's gossip, and until the meta leader
/// has it, the JetStream API says "not enabled for account".
fn account_jetstream_ready(home: &Home, url: &str, account: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = home.run(&[
            "--json",
            "streams",
            "list",
            "--nats",
            url,
            "--account",
            account,
        ]);
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.contains("JetStream disabled") && Instant::now() < deadline,
            "{account}'s JetStream not ready: {err}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn account_claims(home: &Home, account: &str) -> nats_jwt::AccountClaims {
    let show = home.json(&["account", "show", account]);
    nats_jwt::decode(show["jwt"].as_str().expect("JWT")).expect("account JWT decodes")
}

/// A JetStream context as `account`'s user `user`, once the cluster admits it.
async fn jetstream(
    home: &Home,
    url: &str,
    account: &str,
    user: &str,
) -> async_nats::jetstream::Context {
    let creds = home.ok(&["creds", account, user]);
    let deadline = Instant::now() + WAIT;
    loop {
        match common::connect(url, &creds).await {
            Ok(c) => {
                let mut js = async_nats::jetstream::new(c.client);
                js.set_timeout(Duration::from_secs(5));
                return js;
            }
            Err(e) => assert!(Instant::now() < deadline, "{account}/{user}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (within [`WAIT`]) until `stream` has `replicas` replicas, each on its own server
/// and current: its config says so, and its cluster info names a leader and
/// `replicas - 1` followers.
async fn replicated(js: &async_nats::jetstream::Context, stream: &str, replicas: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = match js.get_stream(stream).await {
            Ok(mut s) => match s.info().await {
                Ok(info) => {
                    let c = info.cluster.clone().unwrap_or_default();
                    let mut peers: Vec<String> =
                        c.replicas.iter().map(|p| p.name.clone()).collect();
                    peers.extend(c.leader.clone());
                    peers.sort();
                    peers.dedup();
                    let current = c.replicas.iter().all(|p| p.current && !p.offline);
                    if info.config.num_replicas == replicas
                        && c.leader.is_some()
                        && peers.len() == replicas
                        && c.replicas.len() == replicas - 1
                        && current
                    {
                        return;
                    }
                    format!(
                        "R{} leader {:?} peers {peers:?}",
                        info.config.num_replicas, c.leader
                    )
                }
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "{stream} not at {replicas} replicas: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn device_streams(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "REPLOP"]);
    let cluster = Cluster::start(&home, &bin);
    let url = cluster.url();
    home.json(&["push", "--all", "--nats", &url]);
    eprintln!("meta cluster: {}", meta_leader(&home, &url).await);

    // A device made while the fleet is R1: its stream has one replica, the hub flat limits.
    home.json(&[
        "device",
        "add",
        "a",
        "-o",
        home.path().join("a.creds").to_str().unwrap(),
    ]);
    assert_eq!(deliver(&home, &url), 1);
    let hub = jetstream(&home, &url, "EMDEVS", "superuser").await;
    replicated(&hub, "EMDEV_a", 1).await;
    assert!(
        account_claims(&home, "EMDEVS")
            .nats
            .limits
            .tiered_limits
            .is_empty()
    );

    // R3: the hub's limits become its tier R3, new devices get R3 streams and the relay
    // scales the existing one up.
    let fleet = home.json(&["device", "fleet", "--stream-replicas", "3"]);
    assert_eq!(fleet["stream_replicas"], 3, "{fleet}");
    for id in ["b", "c"] {
        let creds = home.path().join(format!("{id}.creds"));
        home.json(&["device", "add", id, "-o", creds.to_str().unwrap()]);
    }
    assert_eq!(deliver(&home, &url), 3);
    let limits = account_claims(&home, "EMDEVS").nats.limits;
    let r3 = limits.tiered_limits.get("R3").expect("the hub's R3 tier");
    assert_eq!(
        (r3.disk_storage, r3.streams, r3.consumer),
        (20 << 30, 20_000, 4),
        "{limits:?}"
    );
    assert_eq!(limits.tiered_limits.len(), 1, "{limits:?}");
    assert_eq!(
        (limits.jetstream.disk_storage, limits.jetstream.mem_storage),
        (0, 0),
        "no flat limits beside the tier: {limits:?}"
    );
    for id in ["a", "b", "c"] {
        replicated(&hub, &format!("EMDEV_{id}"), 3).await;
    }

    // The replicated stream holds what the backend sends, and the device reads it
    // through its own JetStream prefix.
    let backend = common::connect(&url, &home.ok(&["creds", "EMDEVS", "backend"]))
        .await
        .expect("backend");
    let device = common::connect(&url, &home.creds_file("b.creds"))
        .await
        .expect("device b");
    let device_js = async_nats::jetstream::with_prefix(device.client.clone(), "EMDEVJS.API");
    let deadline = Instant::now() + WAIT;
    loop {
        backend
            .client
            .publish("EMDEV.b.hello", "hi".into())
            .await
            .unwrap();
        backend.client.flush().await.unwrap();
        let stored = match device_js.get_stream("EMDEV_b").await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        if stored > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "nothing stored in EMDEV_b");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Back to R1: flat limits, every stream scaled down.
    home.json(&["device", "fleet", "--stream-replicas", "1"]);
    assert_eq!(deliver(&home, &url), 3);
    let limits = account_claims(&home, "EMDEVS").nats.limits;
    assert!(limits.tiered_limits.is_empty(), "{limits:?}");
    assert_eq!(limits.jetstream.disk_storage, 20 << 30);
    for id in ["a", "b", "c"] {
        replicated(&hub, &format!("EMDEV_{id}"), 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_streams_follow_stream_replicas_2_9() {
    device_streams(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_streams_follow_stream_replicas_2_15() {
    device_streams(ServerLine::V2_15).await;
}

/// How nats-server reserves a replicated stream's `max_bytes` against the hub's `R3`
/// tier, and Warden's capacity planned for the stricter count: with 10M of disk and
/// 3M streams at R3 the fleet holds one device; another R3 stream of 3M in the hub is
/// refused by 2.9.10 (3 × 3M already reserved) and taken by 2.15 (3M reserved).
async fn hub_reservation(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "RESERVEOP"]);
    home.json(&[
        "device",
        "fleet",
        "--stream-replicas",
        "3",
        "--hub-disk-storage",
        "10M",
        "--device-max-bytes",
        "3M",
    ]);
    home.json(&[
        "device",
        "add",
        "a",
        "-o",
        home.path().join("a.creds").to_str().unwrap(),
    ]);
    let err = home.fails(1, &["device", "add", "b"]);
    assert!(
        err.contains("holds 1") && err.contains("stream_replicas 3"),
        "{err}"
    );
    let cluster = Cluster::start(&home, &bin);
    let url = cluster.url();
    home.json(&["push", "--all", "--nats", &url]);
    meta_leader(&home, &url).await;
    assert_eq!(deliver(&home, &url), 1);
    let hub = jetstream(&home, &url, "EMDEVS", "superuser").await;
    replicated(&hub, "EMDEV_a", 3).await;
    let other = hub
        .create_stream(async_nats::jetstream::stream::Config {
            name: "OTHER".into(),
            subjects: vec!["other.>".into()],
            max_bytes: 3 << 20,
            num_replicas: 3,
            ..Default::default()
        })
        .await;
    match line {
        ServerLine::V2_9 => {
            let e = match other {
                Ok(_) => panic!("2.9.10 reserves 3 × 3M for EMDEV_a: OTHER must not fit"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("insufficient storage"), "{e}");
        }
        _ => {
            other.expect("2.15 reserves 3M for EMDEV_a");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_r3_reservation_2_9() {
    hub_reservation(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_r3_reservation_2_15() {
    hub_reservation(ServerLine::V2_15).await;
}

fn write_spec(home: &Home, name: &str, text: &str) -> String {
    let path = home.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn stream_names(home: &Home, url: &str, account: &str) -> Vec<String> {
    let list = home.json(&["streams", "list", "--nats", url, "--account", account]);
    list["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

async fn tenant_streams(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "TENREPOP"]);
    let t = home.json(&["tenant", "add", "acme", "--js-replicas", "3"]);
    assert_eq!(t["limits"]["js_replicas"], 3, "{t}");
    let limits = account_claims(&home, "TENANT-acme").nats.limits;
    let r3 = limits
        .tiered_limits
        .get("R3")
        .expect("the tenant's R3 tier");
    assert_eq!((r3.disk_storage, r3.streams), (1 << 30, 10), "{limits:?}");
    assert!(r3.max_bytes_required);
    assert_eq!(limits.jetstream.disk_storage, 0, "{limits:?}");
    let cluster = Cluster::start(&home, &bin);
    let url = cluster.url();
    home.json(&["push", "--all", "--nats", &url]);
    meta_leader(&home, &url).await;
    deliver(&home, &url);
    account_jetstream_ready(&home, &url, "TENANT-acme");

    // More replicas than the cluster has servers: refused, nothing created (not even
    // the stream declared before it).
    let spec = write_spec(
        &home,
        "r5.yaml",
        "streams:\n  - name: LOCAL\n    account: TENANT-acme\n    subjects: [\"local.>\"]\n    max_bytes: 1M\n    replicas: 3\n  - name: WIDE\n    account: TENANT-acme\n    subjects: [\"wide.>\"]\n    max_bytes: 1M\n    replicas: 5\n",
    );
    let err = home.fails(2, &["streams", "apply", &spec, "--nats", &url]);
    assert!(
        err.contains("streams[1].replicas")
            && err.contains("5 replicas")
            && err.contains("a JetStream cluster of 3 servers (C3)")
            && !err.contains("streams[0]"),
        "{err}"
    );
    assert!(stream_names(&home, &url, "TENANT-acme").is_empty());

    // R3 streams of the tenant: created with three replicas under its R3 tier.
    let spec = write_spec(
        &home,
        "r3.yaml",
        "streams:\n  - name: LOCAL\n    account: TENANT-acme\n    subjects: [\"local.>\"]\n    max_bytes: 1M\n    replicas: 3\n  - name: AUDIT\n    account: TENANT-acme\n    subjects: [\"audit.>\"]\n    max_bytes: 1M\n    replicas: 3\n",
    );
    let report = home.json(&["streams", "apply", &spec, "--nats", &url]);
    let actions: Vec<&str> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "create"], "{report}");
    let js = jetstream(&home, &url, "TENANT-acme", "jsadmin").await;
    for s in ["LOCAL", "AUDIT"] {
        replicated(&js, s, 3).await;
    }
    // Under the R3 tier alone, nats-server takes no R1 stream in the tenant's account.
    let spec = write_spec(
        &home,
        "r1.yaml",
        "streams:\n  - name: SINGLE\n    account: TENANT-acme\n    subjects: [\"single.>\"]\n    max_bytes: 1M\n",
    );
    let err = home.fails(1, &["streams", "apply", &spec, "--nats", &url]);
    assert!(err.contains("tiered limit"), "{err}");

    // A server without a cluster: R3 refused before anything is created.
    let single = home.start_js_nats(&bin, "single");
    home.json(&["push", "--all", "--nats", &single.url()]);
    home.ok(&[
        "account",
        "add",
        "SOLO",
        "--js-disk-storage",
        "1G",
        "--js-mem-storage",
        "0",
    ]);
    home.json(&["push", "--all", "--nats", &single.url()]);
    let spec = write_spec(
        &home,
        "solo.yaml",
        "streams:\n  - name: ONE\n    account: SOLO\n    subjects: [\"one.>\"]\n  - name: THREE\n    account: SOLO\n    subjects: [\"three.>\"]\n    replicas: 3\n",
    );
    let out = home.run(&["--json", "streams", "apply", &spec, "--nats", &single.url()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).expect("problems");
    let problems = problems["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["at"], "streams[1].replicas");
    let message = problems[0]["message"].as_str().unwrap();
    assert!(
        message.contains("3 replicas")
            && message.contains("a JetStream server without a cluster")
            && message.contains("at most 1"),
        "{message}"
    );
    assert!(stream_names(&home, &single.url(), "SOLO").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_r3_streams_2_9() {
    tenant_streams(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_r3_streams_2_15() {
    tenant_streams(ServerLine::V2_15).await;
}

/// Replica counts outside 1 to 5 are usage errors (exit 2) that change nothing: the
/// fleet settings, the hub, the tenant, the outbox.
#[test]
fn bad_replica_counts_change_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "BADREPOP"]);
    home.json(&[
        "device",
        "add",
        "a",
        "-o",
        home.path().join("a.creds").to_str().unwrap(),
    ]);
    home.json(&["device", "fleet", "--stream-replicas", "3"]);
    home.json(&["tenant", "add", "acme"]);
    let fleet = home.json(&["device", "fleet"]);
    let hub = home.json(&["account", "show", "EMDEVS"])["jwt"].clone();
    let tenant = home.json(&["tenant", "show", "acme"]);
    let pending = home.json(&["status"])["outbox_pending"].clone();
    for bad in ["0", "6", "300", "-1", "three"] {
        let err = home.fails(2, &["device", "fleet", "--stream-replicas", bad]);
        if bad == "0" || bad == "6" {
            assert!(
                err.contains("stream_replicas") && err.contains("1 to 5"),
                "{err}"
            );
        }
        let err = home.fails(2, &["tenant", "edit", "acme", "--js-replicas", bad]);
        if bad == "0" || bad == "6" {
            assert!(
                err.contains("js_replicas") && err.contains("1 to 5"),
                "{err}"
            );
        }
        home.fails(2, &["tenant", "add", "other", "--js-replicas", bad]);
    }
    assert_eq!(home.json(&["device", "fleet"]), fleet);
    assert_eq!(home.json(&["account", "show", "EMDEVS"])["jwt"], hub);
    assert_eq!(home.json(&["tenant", "show", "acme"]), tenant);
    assert_eq!(home.json(&["status"])["outbox_pending"], pending);
    assert_eq!(home.json(&["tenant", "list"]).as_array().unwrap().len(), 1);
    // A stream too large for the hub's disk once per replica: refused too.
    let err = home.fails(
        2,
        &[
            "device",
            "fleet",
            "--hub-disk-storage",
            "2M",
            "--device-max-bytes",
            "1M",
        ],
    );
    assert!(err.contains("3 replicas"), "{err}");
    assert_eq!(home.json(&["device", "fleet"]), fleet);
}
