//! `warden deploy render` and the cluster flags of `warden nats-config`, against real
//! nats-server processes (2.9.10 and 2.15.x): every rendered file passes `nats-server -t`;
//! the three rendered nodes of a cluster route to each other, elect a JetStream meta
//! leader, and carry an account pushed through one node to clients of another (a revoked
//! user refused there too), and the other cluster's node joins them through gateways; routes over TLS form with certificates the test makes; bad
//! flags and bad specs are usage errors that write nothing.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Home, connect};
use futures::StreamExt;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(20);

/// The ports of one node of the test topology.
struct Node {
    name: &'static str,
    client: u16,
    cluster: u16,
    gateway: u16,
    monitoring: u16,
}

impl Node {
    fn new(name: &'static str) -> Node {
        Node {
            name,
            client: free_port(),
            cluster: free_port(),
            gateway: free_port(),
            monitoring: free_port(),
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client)
    }
}

/// A spec of two clusters: "east" (three nodes, JetStream, a leaf node hub on the first)
/// and "west" (one node, a websocket listener), joined by gateways; the spec's path and
/// the nodes of each cluster.
fn two_clusters(home: &Home) -> (PathBuf, Vec<Node>, Node) {
    let east: Vec<Node> = ["e1", "e2", "e3"].into_iter().map(Node::new).collect();
    let west = Node::new("w1");
    let mut yaml = String::from(
        "# Two clusters joined by gateways.\ndata_root: state\nclusters:\n  - name: east\n    jetstream: { max_memory_store: 64M, max_file_store: 1G }\n    nodes:\n",
    );
    for (i, n) in east.iter().enumerate() {
        yaml += &format!(
            "      - name: {}\n        host: 127.0.0.1\n        client_port: {}\n        cluster_port: {}\n        gateway_port: {}\n        monitoring_port: {}\n",
            n.name, n.client, n.cluster, n.gateway, n.monitoring
        );
        if i == 0 {
            yaml += &format!("        leafnode_port: {}\n", free_port());
        }
    }
    yaml += &format!(
        "  - name: west\n    nodes:\n      - {{ name: w1, host: 127.0.0.1, client_port: {}, gateway_port: {}, monitoring_port: {}, websocket_port: {} }}\n",
        west.client,
        west.gateway,
        west.monitoring,
        free_port()
    );
    let dir = home.path().join("topology");
    std::fs::create_dir_all(&dir).expect("spec dir");
    let spec = dir.join("deploy.yaml");
    std::fs::write(&spec, yaml).expect("spec");
    (spec, east, west)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `nats-server -t -c FILE` succeeds.
fn check_config(bin: &NatsServerBinary, file: &Path) {
    let out = std::process::Command::new(&bin.path)
        .arg("-t")
        .arg("-c")
        .arg(file)
        .output()
        .expect("run nats-server -t");
    assert!(
        out.status.success(),
        "nats-server {} refused {}:\n{}{}",
        bin.version,
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET a monitoring endpoint as JSON.
async fn monitor(port: u16, path: &str) -> Option<serde_json::Value> {
    let reply = reqwest::get(format!("http://127.0.0.1:{port}/{path}"))
        .await
        .ok()?;
    reply.json().await.ok()
}

/// Waits (bounded) until the server behind `port` has routes to `peers` other servers;
/// counted by remote server id, since 2.10+ pools several connections per peer.
async fn wait_routes(port: u16, peers: usize) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(routez) = monitor(port, "routez").await {
            let mut ids: Vec<&str> = routez["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["remote_id"].as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() == peers {
                return routez;
            }
            assert!(
                Instant::now() < deadline,
                "routes to {peers} peers not formed on :{port}: {routez}"
            );
        } else {
            assert!(Instant::now() < deadline, "no /routez on :{port}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until every node names the same JetStream meta leader; returns it.
async fn wait_meta_leader(nodes: &[Node]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut leaders = Vec::new();
        for n in nodes {
            if let Some(jsz) = monitor(n.monitoring, "jsz").await {
                leaders.push(
                    jsz["meta_cluster"]["leader"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
        if leaders.len() == nodes.len()
            && !leaders[0].is_empty()
            && leaders.iter().all(|l| *l == leaders[0])
        {
            return leaders[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no JetStream meta leader agreed on: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Connects with `creds` to `url`, retrying (bounded) while the server does not know the
/// account yet: the resolver update reaches the other nodes of the cluster after the push
/// was answered by the first.
async fn connect_when_known(url: &str, creds: &str) -> common::Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect(url, creds).await {
            Ok(c) => return c,
            Err(e) => assert!(Instant::now() < deadline, "never connected to {url}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `deploy render` of two clusters: the table and JSON name every node; every file passes
/// `nats-server -t`; paths are absolute, relative to the spec's directory.
async fn render_two_clusters(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "DEPLOYOP"]);
    home.ok(&["account", "add", "APP"]);
    let (spec, east, _) = two_clusters(&home);
    let out = home.path().join("rendered");
    let report = home.json(&["deploy", "render", path_str(&spec), "-o", path_str(&out)]);
    let nodes = report["nodes"].as_array().expect("nodes");
    let names: Vec<&str> = nodes.iter().map(|n| n["node"].as_str().unwrap()).collect();
    assert_eq!(names, ["e1", "e2", "e3", "w1"]);
    assert_eq!(nodes[0]["jetstream"], true);
    assert_eq!(nodes[3]["jetstream"], false);
    assert_eq!(nodes[0]["client_url"], east[0].url());
    for n in nodes {
        let file = PathBuf::from(n["file"].as_str().expect("file"));
        check_config(&bin, &file);
        let text = std::fs::read_to_string(&file).expect("config");
        let state = home.path().join("topology").join("state");
        assert!(
            text.contains(&format!(
                "\"{}/{}/resolver\"",
                state.display(),
                n["node"].as_str().unwrap()
            )),
            "{text}"
        );
        assert!(text.contains("{ name: \"west\", urls: [ "), "{text}");
        assert!(
            text.contains("  # APP\n"),
            "the account is preloaded: {text}"
        );
    }
    let e1 = std::fs::read_to_string(out.join("e1.conf")).unwrap();
    assert!(e1.contains("leafnodes: {"), "{e1}");
    assert!(e1.contains("max_memory_store: 67108864"), "{e1}");
    let w1 = std::fs::read_to_string(out.join("w1.conf")).unwrap();
    assert!(w1.contains("websocket: {"), "{w1}");
    // The human form: a table with every node.
    let table = home.ok(&["deploy", "render", path_str(&spec), "-o", path_str(&out)]);
    for n in ["e1", "e2", "e3", "w1", "4 configurations written"] {
        assert!(table.contains(n), "{table}");
    }
}

/// The three rendered east nodes form their cluster: routes to the two others each, one
/// JetStream meta leader; an account pushed through node 1 is usable on node 3, traffic
/// crosses the routes, a revoked user is refused on node 3.
async fn east_cluster_runs(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "DEPLOYOP"]);
    let (spec, east, west) = two_clusters(&home);
    let out = home.path().join("rendered");
    home.ok(&["deploy", "render", path_str(&spec), "-o", path_str(&out)]);
    let servers: Vec<NatsServer> = east
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(out.join(format!("{}.conf", n.name))).unwrap();
            NatsServer::start(&bin, &home.path().join(format!("{}-run", n.name)), &text)
                .unwrap_or_else(|e| panic!("[{v}] node {} did not start: {e}", n.name))
        })
        .collect();
    for n in &east {
        wait_routes(n.monitoring, 2).await;
    }
    let leader = wait_meta_leader(&east).await;
    assert!(
        ["e1", "e2", "e3"].contains(&leader.as_str()),
        "[{v}] leader {leader}"
    );
    eprintln!("[{v}] routes formed, JetStream meta leader {leader}");

    // An account and users made after the servers started reach them through node 1 only.
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "alice", "-a", "APP"]);
    home.ok(&["user", "add", "bob", "-a", "APP"]);
    home.push(&east[0].url());
    let alice = home.ok(&["creds", "APP", "alice"]);
    let bob = home.ok(&["creds", "APP", "bob"]);
    let on3 = connect_when_known(&east[2].url(), &alice).await;
    let on1 = connect_when_known(&east[0].url(), &alice).await;
    let mut sub = on3.client.subscribe("orders.created").await.unwrap();
    on3.client.flush().await.unwrap();
    // The subscription's interest reaches node 1 over the route a moment later: publish
    // until the message arrives (bounded).
    let deadline = Instant::now() + WAIT;
    let got = loop {
        on1.client
            .publish("orders.created", "from e1".into())
            .await
            .unwrap();
        on1.client.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "[{v}] nothing crossed from e1 to e3"
        );
    };
    assert_eq!(&got.payload[..], b"from e1");

    // bob works on node 3, then is revoked (pushed through node 1) and refused there.
    drop(connect_when_known(&east[2].url(), &bob).await);
    home.ok(&["user", "revoke", "bob", "-a", "APP"]);
    home.push(&east[0].url());
    let deadline = Instant::now() + WAIT;
    let err = loop {
        match connect(&east[2].url(), &bob).await {
            Err(e) => break e,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "[{v}] revoked bob still connects to e3"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        err.to_lowercase().contains("authorization") || err.to_lowercase().contains("revoked"),
        "[{v}] {err}"
    );

    // The west cluster's node joins through the gateways: both sides see the other.
    let text = std::fs::read_to_string(out.join("w1.conf")).unwrap();
    let w1 = NatsServer::start(&bin, &home.path().join("w1-run"), &text)
        .unwrap_or_else(|e| panic!("[{v}] node w1 did not start: {e}"));
    wait_gateway(west.monitoring, "east").await;
    for n in &east {
        wait_gateway(n.monitoring, "west").await;
    }
    drop(w1);
    drop(servers);
}

/// Waits (bounded) until the server behind `port` has an outbound gateway to `cluster`.
async fn wait_gateway(port: u16, cluster: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let gatewayz = monitor(port, "gatewayz").await;
        if gatewayz
            .as_ref()
            .is_some_and(|g| g["outbound_gateways"][cluster].is_object())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no gateway to {cluster} from :{port}: {gatewayz:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A CA and one certificate for 127.0.0.1 used by both ends of a route (server and client).
fn route_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use common::pki;
    let (ca_pem, issuer) = pki::ca("Warden route CA");
    let route = pki::leaf(
        &issuer,
        "route",
        true,
        &[
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ],
    );
    (
        pki::write(dir, "route.pem", &route.cert),
        pki::write(dir, "route-key.pem", &route.key),
        pki::write(dir, "ca.pem", &ca_pem),
    )
}

/// Two servers rendered by `nats-config --cluster-tls-*` route to each other over TLS,
/// verifying each other's certificate against the test's CA.
async fn route_tls(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "ROUTETLSOP"]);
    let (cert, key, ca) = route_pki(home.path());
    let nodes = [Node::new("t1"), Node::new("t2")];
    let mut servers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let other = &nodes[1 - i];
        let conf = home.path().join(format!("{}.conf", n.name));
        let listen = format!("127.0.0.1:{}", n.client);
        let cluster_listen = format!("127.0.0.1:{}", n.cluster);
        // The node's own URL among the routes, as a shared list would have it: ignored.
        let routes = format!(
            "nats-route://127.0.0.1:{},nats-route://127.0.0.1:{}",
            other.cluster, n.cluster
        );
        let monitoring = format!("127.0.0.1:{}", n.monitoring);
        let resolver = home.path().join(format!("{}-resolver", n.name));
        home.ok(&[
            "nats-config",
            "--listen",
            &listen,
            "--server-name",
            n.name,
            "--monitoring",
            &monitoring,
            "--resolver-dir",
            path_str(&resolver),
            "--cluster",
            "secure",
            "--cluster-listen",
            &cluster_listen,
            "--routes",
            &routes,
            "--cluster-tls-cert",
            path_str(&cert),
            "--cluster-tls-key",
            path_str(&key),
            "--cluster-tls-ca",
            path_str(&ca),
            "-o",
            path_str(&conf),
        ]);
        check_config(&bin, &conf);
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(
            text.contains(&format!("ca_file: \"{}\"\n    verify: true", ca.display())),
            "{text}"
        );
        servers.push(
            NatsServer::start(&bin, &home.path().join(format!("{}-run", n.name)), &text)
                .unwrap_or_else(|e| panic!("[{v}] {} did not start: {e}", n.name)),
        );
    }
    for n in &nodes {
        wait_routes(n.monitoring, 1).await;
        // The routes are TLS, peers verified: what the server itself reports.
        let varz = monitor(n.monitoring, "varz").await.expect("varz");
        assert_eq!(
            varz["cluster"]["tls_required"], true,
            "[{v}] {}",
            varz["cluster"]
        );
        assert_eq!(
            varz["cluster"]["tls_verify"], true,
            "[{v}] {}",
            varz["cluster"]
        );
    }
    for s in &servers {
        assert!(!s.log().contains("handshake error"), "[{v}] {}", s.log());
    }
}

#[tokio::test]
async fn render_two_clusters_2_9() {
    render_two_clusters(ServerLine::V2_9).await;
}

#[tokio::test]
async fn render_two_clusters_2_15() {
    render_two_clusters(ServerLine::V2_15).await;
}

#[tokio::test]
async fn east_cluster_runs_2_9() {
    east_cluster_runs(ServerLine::V2_9).await;
}

#[tokio::test]
async fn east_cluster_runs_2_15() {
    east_cluster_runs(ServerLine::V2_15).await;
}

#[tokio::test]
async fn route_tls_2_9() {
    route_tls(ServerLine::V2_9).await;
}

#[tokio::test]
async fn route_tls_2_15() {
    route_tls(ServerLine::V2_15).await;
}

/// Bad flags and bad specs: exit 2, a message naming each problem, no file written.
#[test]
fn bad_input_writes_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "BADOP"]);
    let conf = home.path().join("out.conf");
    let o = path_str(&conf);
    let missing = home.path().join("missing.pem");
    for (args, needles) in [
        (
            vec!["nats-config", "--cluster", "X", "-o", o],
            vec!["--cluster X needs --cluster-listen"],
        ),
        (
            vec![
                "nats-config",
                "--cluster",
                "east",
                "--cluster-listen",
                "127.0.0.1:6222",
                "--gateway",
                "west",
                "--gateway-listen",
                "127.0.0.1:7222",
                "-o",
                o,
            ],
            vec!["cluster name \"east\" differs from gateway name \"west\""],
        ),
        (
            vec![
                "nats-config",
                "--cluster",
                "east",
                "--cluster-listen",
                "127.0.0.1:6222",
                "--cluster-tls-cert",
                path_str(&missing),
                "--cluster-tls-key",
                path_str(&missing),
                "-o",
                o,
            ],
            vec!["--cluster-tls-cert", "does not exist"],
        ),
        (
            vec![
                "nats-config",
                "--jetstream",
                "js",
                "--cluster",
                "east",
                "--cluster-listen",
                "127.0.0.1:4222",
                "--routes",
                "http://x",
                "-o",
                o,
            ],
            vec![
                "JetStream in a cluster needs a server_name",
                "client listen and cluster listen both listen on 127.0.0.1:4222",
                "route \"http://x\" is not a valid URL",
            ],
        ),
        (
            vec![
                "nats-config",
                "--gateway",
                "g",
                "--gateway-listen",
                "127.0.0.1:7222",
                "--gateways",
                "nourl",
                "-o",
                o,
            ],
            vec!["--gateways \"nourl\" is not NAME=URL"],
        ),
    ] {
        let err = home.fails(2, &args);
        for n in needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
        assert!(!conf.exists(), "{args:?} wrote {o}");
    }

    let (spec, east, _) = two_clusters(&home);
    let good = std::fs::read_to_string(&spec).unwrap();
    let out = home.path().join("never");
    // An unknown key: refused by name.
    std::fs::write(&spec, good.replace("monitoring_port", "monitor_port")).unwrap();
    let err = home.fails(
        2,
        &["deploy", "render", path_str(&spec), "-o", path_str(&out)],
    );
    assert!(err.contains("unknown field `monitor_port`"), "{err}");
    // A node listed twice, and a port used twice on one host: both named at once.
    let clash = good.replace("name: e2", "name: e1").replace(
        &format!("client_port: {}", east[2].client),
        &format!("client_port: {}", east[0].cluster),
    );
    std::fs::write(&spec, clash).unwrap();
    let err = home.fails(
        2,
        &["deploy", "render", path_str(&spec), "-o", path_str(&out)],
    );
    assert!(err.contains("node \"e1\" is listed twice"), "{err}");
    assert!(
        err.contains(&format!(
            "port {} on host 127.0.0.1 is both the cluster_port of node \"e1\" and the client_port of node \"e3\"",
            east[0].cluster
        )),
        "{err}"
    );
    // A TLS file that does not exist.
    std::fs::write(
        &spec,
        format!("tls:\n  routes: {{ cert: nope.pem, key: nope-key.pem }}\n{good}"),
    )
    .unwrap();
    let err = home.fails(
        2,
        &["deploy", "render", path_str(&spec), "-o", path_str(&out)],
    );
    assert!(
        err.contains("tls.routes.cert") && err.contains("nope.pem does not exist"),
        "{err}"
    );
    // A spec that is not there.
    let err = home.fails(
        2,
        &[
            "deploy",
            "render",
            "/nonexistent/deploy.yaml",
            "-o",
            path_str(&out),
        ],
    );
    assert!(err.contains("cannot read the deploy spec"), "{err}");
    assert!(!out.exists(), "a bad spec wrote {}", out.display());
}
