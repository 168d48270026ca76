//! The auth callout's decision metrics, scraped over HTTP as Prometheus text from a real
//! responder on nats-server 2.15: `warden callout run --metrics-listen` counts one
//! allowed and one refused client (an ID token for another audience) and their latency;
//! `warden serve --callout` serves the same counters at `GET /metrics` without a token.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Client, Home};
use serde_json::{Value, json};
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "nats";

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A test identity provider with one Ed25519 key.
struct Idp {
    key: rcgen::KeyPair,
}

impl Idp {
    fn new() -> Idp {
        Idp {
            key: rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
        }
    }

    fn jwks(&self) -> Value {
        json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "use": "sig",
             "x": data_encoding::BASE64URL_NOPAD.encode(self.key.public_key_raw())},
        ]})
    }

    /// An ID token for `sub` with audience `aud`, valid for ten minutes.
    fn token(&self, sub: &str, aud: &str) -> String {
        let now = unix_now();
        let claims = json!({"iss": ISSUER, "aud": aud, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 600});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("ed-1".into());
        let key = jsonwebtoken::EncodingKey::from_ed_der(&self.key.serialize_der());
        jsonwebtoken::encode(&header, &claims, &key).expect("sign ID token")
    }
}

/// A directory where `ada` holds the task `orders` in APP (through the role `sales`),
/// the callout set up with an OIDC authenticator, and a 2.15 server with it all pushed:
/// (home, server, sentinel creds, idp).
fn oidc_world() -> (Home, NatsServer, String, Idp) {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    home.ok(&["init", "--name", "METRICSOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["dir", "user", "add", "admin", "--name", "Ada Admin"]);
    home.ok(&[
        "dir", "user", "add", "ada", "--name", "Ada", "--as", "admin",
    ]);
    home.ok(&[
        "task",
        "create",
        "orders",
        "--account",
        "APP",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "orders.>",
        "--owner",
        "admin",
        "--as",
        "admin",
    ]);
    home.ok(&[
        "role", "create", "sales", "--owner", "admin", "--as", "admin",
    ]);
    for proposal in [
        ["role-task", "add", "--role", "sales", "--task", "orders"],
        ["role-member", "add", "--role", "sales", "--user", "ada"],
    ] {
        let mut args = vec!["propose"];
        args.extend(proposal);
        args.extend(["--as", "admin"]);
        let p = home.json(&args);
        home.ok(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    }

    home.ok(&["callout", "setup", "--allowed-account", "APP"]);
    let idp = Idp::new();
    let jwks = home.path().join("jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).expect("write JWKS");
    home.ok(&[
        "callout",
        "auth",
        "add",
        "oidc",
        "idp",
        "--jwks",
        jwks.to_str().unwrap(),
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
    ]);
    home.ok(&[
        "callout",
        "sentinel",
        "-o",
        home.path().join("sentinel.creds").to_str().unwrap(),
    ]);
    let sentinel = home.creds_file("sentinel.creds");
    let server = home.start_nats(&bin, "callout");
    home.push(&server.url());
    (home, server, sentinel, idp)
}

/// Connects with the sentinel creds and an ID token; the refusal text on refusal.
async fn connect_with_token(url: &str, sentinel: &str, token: &str) -> Result<Client, String> {
    let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
    let opts = async_nats::ConnectOptions::with_credentials(sentinel)
        .map_err(|e| format!("bad creds: {e}"))?
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .token(token.to_string())
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(Some(0));
    match tokio::time::timeout(Duration::from_secs(10), opts.connect(url)).await {
        Ok(Ok(client)) => Ok(Client { client, errors }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

/// Connects until admitted (the responder's subscription reaches the server on its own
/// schedule; a connect nobody answered is not a decision), within a bound.
async fn admitted(url: &str, sentinel: &str, token: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match connect_with_token(url, sentinel, token).await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "never admitted: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A `warden callout run` child, killed on drop.
struct Responder {
    child: Child,
}

impl Responder {
    /// `warden callout run ARGS…`, once its first line says it answers.
    fn start(home: &Home, args: &[&str]) -> Responder {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(home.data_dir())
            .args(["callout", "run"])
            .args(args)
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start warden callout run");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("warden callout run said it answers");
        assert!(line.starts_with("warden callout: answering on"), "{line}");
        Responder { child }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET <base>/metrics` without a token: (content type, body), after checking it is 200.
async fn scrape(base: &str) -> (String, String) {
    let res = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (content_type, res.text().await.expect("metrics body"))
}

/// The value of the sample line `name` (with its labels, as written), if present.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn decisions(page: &str, result: &str) -> Option<f64> {
    sample(
        page,
        &format!("warden_callout_decisions_total{{result=\"{result}\"}}"),
    )
}

/// Scrapes until `done` holds for the page (a decision is counted just after its answer
/// is sent, so the client may hear it first), within 10 s; the last page.
async fn scrape_until(base: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = scrape(base).await;
        if done(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "{what}, never reached:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn callout_run_serves_its_decisions_as_prometheus_metrics_2_15() {
    let (home, server, sentinel, idp) = oidc_world();
    let url = server.url();
    let base = format!("http://127.0.0.1:{}", warden_testkit::free_port());
    let listen = base.trim_start_matches("http://").to_string();
    let _responder = Responder::start(&home, &["--nats", &url, "--metrics-listen", &listen]);

    // Listening as soon as the responder says it answers; nothing counted yet.
    let (content_type, page) = scrape(&base).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(decisions(&page, "allowed"), Some(0.0), "{page}");
    assert!(
        page.contains("# TYPE warden_callout_decisions_total counter\n"),
        "{page}"
    );
    assert!(
        page.contains("# TYPE warden_callout_decision_seconds histogram\n"),
        "{page}"
    );

    let mut ada = admitted(&url, &sentinel, &idp.token("ada", AUDIENCE)).await;
    ada.publish_delivered("orders.new", "ada may use orders")
        .await;
    let e = connect_with_token(&url, &sentinel, &idp.token("ada", "someone-else"))
        .await
        .err()
        .expect("a token for another audience is refused");
    assert!(e.to_lowercase().contains("authorization"), "{e}");

    let page = scrape_until(&base, "one allowed and one refused decision", |p| {
        decisions(p, "allowed") == Some(1.0) && decisions(p, "refused") == Some(1.0)
    })
    .await;
    for line in [
        "warden_callout_decisions_total{result=\"allowed\"} 1",
        "warden_callout_decisions_total{result=\"refused\"} 1",
        "warden_callout_decisions_total{result=\"failed\"} 0",
        "warden_callout_decision_seconds_bucket{le=\"+Inf\"} 2",
        "warden_callout_decision_seconds_count 2",
    ] {
        assert!(page.lines().any(|l| l == line), "{line} in:\n{page}");
    }
    let sum = sample(&page, "warden_callout_decision_seconds_sum").expect("_sum");
    assert!(sum > 0.0 && sum < 20.0, "{page}");
    // Buckets are cumulative and never exceed the count.
    let buckets: Vec<f64> = page
        .lines()
        .filter(|l| l.starts_with("warden_callout_decision_seconds_bucket{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(buckets.len(), 11, "{page}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{page}");

    // The metrics listener serves metrics and nothing else.
    let other = reqwest::get(format!("{base}/v1/status")).await.unwrap();
    assert_eq!(other.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_the_callout_serves_its_decisions_at_metrics_2_15() {
    let (home, server, sentinel, idp) = oidc_world();
    let url = server.url();
    let serve = common::Serve::start_with(&home, &url, &["--callout"]);

    // No token needed; nothing decided yet.
    let (content_type, page) = scrape(&serve.base).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(decisions(&page, "allowed"), Some(0.0), "{page}");
    assert_eq!(
        sample(&page, "warden_callout_decision_seconds_count"),
        Some(0.0),
        "{page}"
    );

    let mut ada = admitted(&url, &sentinel, &idp.token("ada", AUDIENCE)).await;
    ada.publish_delivered("orders.serve", "through serve").await;
    let page = scrape_until(&serve.base, "one allowed decision", |p| {
        decisions(p, "allowed") == Some(1.0)
    })
    .await;
    assert_eq!(decisions(&page, "refused"), Some(0.0), "{page}");
    assert_eq!(
        sample(&page, "warden_callout_decision_seconds_count"),
        Some(1.0),
        "{page}"
    );
}
