//! Leaf nodes of tenants against real nats-server processes (2.9.10 and 2.15.x): a hub
//! started from Warden's config (operator mode, leaf node listener), a second server started
//! from the config `warden tenant leaf-config a` rendered, a collector on the leaf without
//! credentials. Its traffic reaches the platform as tenant a's, and only as a's; tenant b
//! sees nothing; `EVENTS` (JetStream, platform account) stores the leaf's events under
//! a's prefix; the request path works through the leaf; suspending the tenant cuts the
//! leaf off and resuming lets it back. A TLS variant runs the leaf connection over
//! verified TLS with certificates made by the test.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Client, Home, connect};
use futures::StreamExt;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(10);
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/streams.yaml");

/// The hub: Warden's rendered config with a leaf node listener and monitoring.
struct Hub {
    server: NatsServer,
    leaf_port: u16,
    monitor: String,
}

/// TLS material made for one test run (PEM files under the home).
struct Pki {
    ca: PathBuf,
    hub_cert: PathBuf,
    hub_key: PathBuf,
    leaf_cert: PathBuf,
    leaf_key: PathBuf,
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn start_hub(home: &Home, bin: &NatsServerBinary, pki: Option<&Pki>, jetstream: bool) -> Hub {
    let leaf_port = free_port();
    let monitor_port = free_port();
    let conf = home.path().join("hub.conf");
    let resolver = home.path().join("hub-resolver");
    let listen = format!("127.0.0.1:{}", free_port());
    let leafnodes = format!("127.0.0.1:{leaf_port}");
    let monitoring = format!("127.0.0.1:{monitor_port}");
    let js = home.path().join("hub-js");
    let mut args = vec![
        "nats-config",
        "--listen",
        &listen,
        "--resolver-dir",
        path_str(&resolver),
        "--leafnodes",
        &leafnodes,
        "--monitoring",
        &monitoring,
        "-o",
        path_str(&conf),
    ];
    if jetstream {
        args.extend(["--jetstream", path_str(&js)]);
    }
    if let Some(pki) = pki {
        args.extend([
            "--leafnodes-tls-cert",
            path_str(&pki.hub_cert),
            "--leafnodes-tls-key",
            path_str(&pki.hub_key),
            "--leafnodes-tls-verify-ca",
            path_str(&pki.ca),
        ]);
    }
    home.ok(&args);
    let config = std::fs::read_to_string(&conf).expect("rendered hub config");
    assert!(
        config.contains(&format!("listen: \"{leafnodes}\"")),
        "{config}"
    );
    let server = NatsServer::start(bin, &home.path().join("hub"), &config)
        .unwrap_or_else(|e| panic!("nats-server {} refused the hub config: {e}", bin.version));
    Hub {
        server,
        leaf_port,
        monitor: format!("http://{monitoring}"),
    }
}

/// Account keys of the leaf connections the hub reports on `/leafz`.
async fn leaf_accounts(hub: &Hub) -> Vec<String> {
    let url = format!("{}/leafz", hub.monitor);
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .expect("leafz JSON");
    body["leafs"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|x| x["account"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until the hub's leaf connections are exactly `want`.
async fn leafs_become(hub: &Hub, want: &[&str], what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let have = leaf_accounts(hub).await;
        if have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the hub's leaf connections are {have:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A collector on the leaf: no credentials.
async fn connect_plain(url: &str) -> async_nats::Client {
    let opts = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
    tokio::time::timeout(WAIT, opts.connect(url))
        .await
        .expect("connect to the leaf in time")
        .expect("connect to the leaf")
}

/// The collector publishes `local` every 200 ms until the platform's subscription gets
/// `expected` (interest crosses the leaf connection on the servers' schedule), within a
/// bound. Every message the platform gets on the way must carry tenant a's prefix.
async fn arrives(
    collector: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    local: &str,
    expected: &str,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        collector
            .publish(local.to_string(), "probe".into())
            .await
            .unwrap();
        collector.flush().await.unwrap();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            assert!(m.subject.as_str().starts_with("a."), "{}", m.subject);
            if m.subject.as_str() == expected {
                return;
            }
        }
        assert!(Instant::now() < deadline, "nothing on {expected} in time");
    }
}

/// Nothing arrives on `sub` within `window`.
async fn silent(sub: &mut async_nats::Subscriber, window: Duration, what: &str) {
    if let Ok(Some(m)) = tokio::time::timeout(window, sub.next()).await {
        panic!("{what}: got {}", m.subject);
    }
}

/// For `window`, the platform's subscription gets nothing on `subject` and nothing outside
/// tenant a's prefix (late copies of earlier probes may still come in).
async fn never(sub: &mut async_nats::Subscriber, window: Duration, subject: &str) {
    let until = Instant::now() + window;
    while let Ok(Some(m)) = tokio::time::timeout_at(until.into(), sub.next()).await {
        assert!(m.subject.as_str().starts_with("a."), "{}", m.subject);
        assert_ne!(m.subject.as_str(), subject, "{subject} arrived");
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

/// `warden tenant leaf-config a …` into `<home>/<site>/leaf-a.conf`; the JSON report.
fn render_leaf(home: &Home, site: &str, hub_url: &str, extra: &[&str]) -> serde_json::Value {
    let dir = home.path().join(site);
    std::fs::create_dir_all(&dir).expect("site dir");
    let conf = dir.join("leaf-a.conf");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "tenant",
        "leaf-config",
        "a",
        "--hub",
        hub_url,
        "--listen",
        &listen,
        "-o",
        path_str(&conf),
    ];
    args.extend_from_slice(extra);
    home.json(&args)
}

fn start_leaf(bin: &NatsServerBinary, home: &Home, report: &serde_json::Value) -> NatsServer {
    let conf = report["file"].as_str().expect("file");
    let text = std::fs::read_to_string(conf).expect("leaf config");
    let dir = home.path().join(format!("leaf-{}", free_port()));
    NatsServer::start(bin, &dir, &text)
        .unwrap_or_else(|e| panic!("nats-server {} refused the leaf config: {e}", bin.version))
}

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

async fn leaf_nodes(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "LEAFOP"]);
    let a = home.json(&["tenant", "add", "a"]);
    let a_key = a["account_key"].as_str().unwrap().to_string();
    home.json(&["tenant", "add", "b"]);
    let b_path = home.path().join("b.creds");
    home.ok(&[
        "tenant",
        "user",
        "add",
        "b",
        "coll",
        "-o",
        path_str(&b_path),
    ]);
    let b_creds = home.creds_file("b.creds");
    let platform_creds = home.warden().await.platform_creds().await.unwrap();

    let hub = start_hub(&home, &bin, None, true);
    let url = hub.server.url();
    home.push(&url);
    let hub_leaf = format!("nats-leaf://127.0.0.1:{}", hub.leaf_port);
    let hl = hub_leaf.as_str();

    // Bad input: usage errors, no user created.
    let missing = home.path().join("missing.pem");
    for bad in [
        vec!["--hub", "http://127.0.0.1:7422"],
        vec!["--hub", "nats-leaf://127.0.0.1"],
        vec!["--hub", "nats-leaf://u:p@127.0.0.1:7422"],
        vec!["--hub", hl, "--listen", "4222"],
        vec!["--hub", hl, "--tls-ca", path_str(&missing)],
        vec!["--hub", hl, "--tls-cert", path_str(&missing)],
        vec!["--hub", hl, "--user", "bad user"],
        vec!["--hub", hl, "--server-name", "a b"],
        vec![],
    ] {
        let mut args = vec!["tenant", "leaf-config", "a"];
        args.extend(bad.iter().copied());
        home.fails(2, &args);
    }
    home.fails(2, &["tenant", "leaf-config", "Bad", "--hub", hl]);
    let e = home.fails(1, &["tenant", "leaf-config", "zz", "--hub", hl]);
    assert!(e.contains("tenant zz not found"), "{e}");
    assert_eq!(
        home.json(&["tenant", "show", "a"])["users"],
        serde_json::json!([])
    );

    // Render: the leaf user is created, its creds written 0600 next to the config, which
    // names them by absolute path.
    let report = render_leaf(&home, "site1", &hub_leaf, &[]);
    assert_eq!(report["tenant"], "a");
    assert_eq!(report["account"], "TENANT-a");
    assert_eq!(report["account_key"], a_key.as_str());
    assert_eq!(report["user"], "leaf");
    assert_eq!(report["user_created"], true);
    assert_eq!(report["tls"], false);
    let creds_file = PathBuf::from(report["creds_file"].as_str().unwrap());
    assert_eq!(creds_file, home.path().join("site1/leaf-a.creds"));
    assert_eq!(mode(&creds_file), 0o600);
    let text = std::fs::read_to_string(report["file"].as_str().unwrap()).unwrap();
    assert!(
        text.contains(&format!("credentials: \"{}\"", creds_file.display())),
        "{text}"
    );
    assert!(text.contains(&format!("urls: [\"{hub_leaf}\"]")), "{text}");
    assert_eq!(
        home.json(&["tenant", "show", "a"])["users"],
        serde_json::json!(["leaf"])
    );
    // Rendering again reuses the user.
    let again = render_leaf(&home, "site2", &hub_leaf, &[]);
    assert_eq!(again["user_created"], false);
    let leaf_creds = std::fs::read_to_string(&creds_file).unwrap();
    assert_eq!(
        std::fs::read_to_string(again["creds_file"].as_str().unwrap()).unwrap(),
        leaf_creds
    );
    // The leaf user's creds are for leaf connections only.
    let e = connect(&url, &leaf_creds)
        .await
        .err()
        .expect("leaf creds refused as a plain client");
    eprintln!("leaf creds as a client: {e}");

    // The leaf server starts from the rendered file and connects, in tenant a's account.
    let leaf = start_leaf(&bin, &home, &report);
    leafs_become(&hub, &[a_key.as_str()], "leaf started").await;

    let platform = connect(&url, &platform_creds).await.unwrap();
    let mut events = platform
        .client
        .subscribe("*.events.>".to_string())
        .await
        .unwrap();
    platform.client.flush().await.unwrap();

    // A collector on the leaf publishes tenant-local; the platform sees it under `a.`.
    let collector = connect_plain(&leaf.url()).await;
    arrives(&collector, &mut events, "events.syslog", "a.events.syslog").await;

    // JetStream on the hub: the example streams in the platform account store the leaf's
    // traffic under tenant a's prefix.
    let applied = home.json(&["streams", "apply", EXAMPLE, "--nats", &url]);
    assert_eq!(applied["streams"][0]["action"], "create", "{applied}");
    let js = async_nats::jetstream::new(platform.client.clone());
    let stream = js.get_stream("EVENTS").await.expect("EVENTS");
    let deadline = Instant::now() + WAIT;
    loop {
        collector
            .publish("events.stored", "via the leaf".into())
            .await
            .unwrap();
        collector.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(m) = stream
            .get_last_raw_message_by_subject("a.events.stored")
            .await
        {
            assert_eq!(&m.payload[..], b"via the leaf");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "EVENTS never stored the leaf's event"
        );
    }

    // B on the hub: `>` refused; its inbox gets nothing of a's.
    let mut b = connect(&url, &b_creds).await.unwrap();
    let mut b_all = b.client.subscribe(">".to_string()).await.unwrap();
    b.client.flush().await.unwrap();
    permission_error(&mut b, "B subscribing to >").await;
    let mut b_inbox = b.client.subscribe("_INBOX.>".to_string()).await.unwrap();
    b.client.flush().await.unwrap();
    collector
        .publish("events.secret", "secret".into())
        .await
        .unwrap();
    collector.flush().await.unwrap();
    arrives(&collector, &mut events, "events.more", "a.events.more").await;
    silent(&mut b_all, Duration::from_millis(300), "B's `>`").await;
    silent(&mut b_inbox, Duration::from_millis(300), "B's inbox").await;

    // A collector on the leaf cannot speak for b: `b.events.x` is not in the leaf user's
    // permissions, so it never reaches the platform as b's (`arrives` checks that every
    // message the platform gets meanwhile is under `a.`).
    collector
        .publish("b.events.x", "forged".into())
        .await
        .unwrap();
    collector.flush().await.unwrap();
    arrives(&collector, &mut events, "events.after", "a.events.after").await;
    never(&mut events, Duration::from_millis(500), "b.events.x").await;

    // Requests: `cmd.ping` from the leaf reaches the platform's responder as
    // `a.cmd.ping`, and the reply comes back through the hub and the leaf.
    let mut service = platform
        .client
        .subscribe("*.cmd.>".to_string())
        .await
        .unwrap();
    platform.client.flush().await.unwrap();
    let responder = platform.client.clone();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let served = tokio::spawn(async move {
        while let Some(m) = service.next().await {
            let reply = m.reply.clone().expect("a reply subject");
            let _ = seen_tx.send(m.subject.to_string());
            responder
                .publish(reply, format!("pong from {}", m.subject).into())
                .await
                .unwrap();
            responder.flush().await.unwrap();
        }
    });
    // Interest in `cmd.>` and the requester's inbox crosses the leaf on the servers'
    // schedule: a request that finds no responder or times out is retried, within a bound.
    let answer = common::answered(&collector, "cmd.ping", WAIT).await;
    served.abort();
    let subjects: Vec<String> = std::iter::from_fn(|| seen.try_recv().ok()).collect();
    assert!(
        !subjects.is_empty() && subjects.iter().all(|s| s == "a.cmd.ping"),
        "the platform saw {subjects:?}"
    );
    assert_eq!(&answer.payload[..], b"pong from a.cmd.ping");

    // Suspend: the leaf connection is closed (every user revoked, leaf limit 0) and its
    // reconnects are refused; the collector's traffic no longer reaches the platform.
    home.json(&["tenant", "suspend", "a"]);
    home.push(&url);
    leafs_become(&hub, &[], "tenant suspended").await;
    let e = home.fails(1, &["tenant", "leaf-config", "a", "--hub", hl]);
    assert!(e.contains("suspended"), "{e}");
    // The leaf retries every second: still out after a few attempts.
    assert!(
        hub.server.wait_for_log("Leafnode connection closed", WAIT),
        "no closed leaf connection in the hub's log"
    );
    for _ in 0..3 {
        collector
            .publish("events.cut", "after suspension".into())
            .await
            .unwrap();
        collector.flush().await.unwrap();
        never(&mut events, Duration::from_millis(700), "a.events.cut").await;
    }
    assert_eq!(leaf_accounts(&hub).await, Vec::<String>::new());

    // Resume: the leaf gets back in by itself and the traffic flows again.
    home.json(&["tenant", "resume", "a"]);
    home.push(&url);
    leafs_become(&hub, &[a_key.as_str()], "tenant resumed").await;
    arrives(&collector, &mut events, "events.back", "a.events.back").await;
    drop(leaf);
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
fn make_pki(dir: &Path) -> Pki {
    use common::pki;
    let (ca_pem, issuer) = pki::ca("Warden test CA");
    let hub = pki::server(&issuer, "hub");
    let leaf = pki::client(&issuer, "leaf.site1.a");
    Pki {
        ca: pki::write(dir, "ca.pem", &ca_pem),
        hub_cert: pki::write(dir, "hub.pem", &hub.cert),
        hub_key: pki::write(dir, "hub-key.pem", &hub.key),
        leaf_cert: pki::write(dir, "leaf.pem", &leaf.cert),
        leaf_key: pki::write(dir, "leaf-key.pem", &leaf.key),
    }
}

/// The leaf connection over TLS, the hub verifying the leaf's client certificate: a leaf
/// rendered with the CA and its certificate connects and carries traffic; one rendered
/// without a client certificate is refused by the hub.
async fn leaf_nodes_tls(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "LEAFTLSOP"]);
    let a = home.json(&["tenant", "add", "a"]);
    let a_key = a["account_key"].as_str().unwrap().to_string();
    let platform_creds = home.warden().await.platform_creds().await.unwrap();
    let pki = make_pki(home.path());
    // The hub's TLS files must exist (and a certificate needs its key): usage errors.
    let missing = home.path().join("missing.pem");
    for bad in [
        vec![
            "--leafnodes-tls-cert",
            path_str(&missing),
            "--leafnodes-tls-key",
            path_str(&pki.hub_key),
        ],
        vec!["--leafnodes-tls-cert", path_str(&pki.hub_cert)],
    ] {
        let mut args = vec!["nats-config", "--leafnodes", "127.0.0.1:7422"];
        args.extend(bad);
        home.fails(2, &args);
    }
    let hub = start_hub(&home, &bin, Some(&pki), false);
    let hub_conf = std::fs::read_to_string(hub.server.config_path()).unwrap();
    assert!(hub_conf.contains("verify: true"), "{hub_conf}");
    let url = hub.server.url();
    home.push(&url);
    let hub_tls = format!("tls://127.0.0.1:{}", hub.leaf_port);

    // Without a client certificate: rendered, but the hub refuses the TLS handshake.
    let no_cert = render_leaf(&home, "nocert", &hub_tls, &["--tls-ca", path_str(&pki.ca)]);
    assert_eq!(no_cert["tls"], true);
    let refused = start_leaf(&bin, &home, &no_cert);
    assert!(
        hub.server.wait_for_log(
            "TLS leafnode handshake error: tls: client didn't provide a certificate",
            WAIT
        ),
        "the hub logged no refused TLS handshake"
    );
    assert_eq!(leaf_accounts(&hub).await, Vec::<String>::new());
    drop(refused);

    let report = render_leaf(
        &home,
        "site1",
        &hub_tls,
        &[
            "--tls-ca",
            path_str(&pki.ca),
            "--tls-cert",
            path_str(&pki.leaf_cert),
            "--tls-key",
            path_str(&pki.leaf_key),
        ],
    );
    let text = std::fs::read_to_string(report["file"].as_str().unwrap()).unwrap();
    for f in [&pki.ca, &pki.leaf_cert, &pki.leaf_key] {
        assert!(text.contains(&format!("\"{}\"", f.display())), "{text}");
    }
    let leaf = start_leaf(&bin, &home, &report);
    leafs_become(&hub, &[a_key.as_str()], "TLS leaf started").await;
    let platform = connect(&url, &platform_creds).await.unwrap();
    let mut events = platform
        .client
        .subscribe("*.events.>".to_string())
        .await
        .unwrap();
    platform.client.flush().await.unwrap();
    let collector = connect_plain(&leaf.url()).await;
    arrives(&collector, &mut events, "events.syslog", "a.events.syslog").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_nodes_2_9() {
    leaf_nodes(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_nodes_2_15() {
    leaf_nodes(ServerLine::V2_15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_nodes_tls_2_9() {
    leaf_nodes_tls(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_nodes_tls_2_15() {
    leaf_nodes_tls(ServerLine::V2_15).await;
}
