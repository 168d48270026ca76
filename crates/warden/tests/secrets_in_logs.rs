//! No secret reaches a log: the CLI, and `warden serve` with its relay, HTTP API and rooms
//! gateway, run at the most verbose level (`WARDEN_LOG=trace`, every crate) through the
//! operations that handle seeds, creds and tokens; then the logs are searched for every
//! secret those operations handed out, for anything shaped like an NKey seed, and for
//! the creds file markers. On nats-server 2.9 and 2.15.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Home;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_chat::token::{ChatClaims, sign};
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(20);
const CHAT_SECRET: &str = "log-test-chat-secret-0123456789";
const AUD: &str = "chat.example.test";
const ISS: &str = "users.example.test";

/// Runs a CLI command at trace level; returns (stdout, stderr) and requires success.
fn logged(home: &Home, args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(home.data_dir())
        .args(args)
        .env_remove("WARDEN_DATABASE_URL")
        .env_remove("WARDEN_MASTER_KEY")
        .env_remove("WARDEN_DATA_DIR")
        .env("WARDEN_LOG", "trace")
        .output()
        .expect("run warden");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "warden {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// `warden serve` at trace level with the rooms gateway on, its log going to a file.
struct TracedServe {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl TracedServe {
    fn start(home: &Home, nats: &str) -> TracedServe {
        let log = home.path().join("serve.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(home.data_dir())
            .args(["serve", "--nats", nats, "--http", "127.0.0.1:0"])
            .args(["--max-backoff", "1s"])
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env("WARDEN_CHAT_HS256_SECRET", CHAT_SECRET)
            .env("WARDEN_CHAT_AUDIENCE", AUD)
            .env("WARDEN_CHAT_ISSUER", ISS)
            .env("WARDEN_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start warden serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).expect("serve printed its address");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        TracedServe { child, base, log }
    }

    /// Stops the server and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).expect("read serve log")
    }
}

impl Drop for TracedServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every NKey seed in a text (`S` + key kind + base32), as creds files carry them.
fn seeds_in(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 58
                && w.starts_with('S')
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        })
        .map(str::to_string)
        .collect()
}

async fn http(
    method: reqwest::Method,
    url: String,
    bearer: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(bearer)
        .timeout(WAIT);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("http call");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    let mut secrets: Vec<String> = Vec::new();
    let mut logs = String::new();

    let mut run = |args: &[&str]| {
        let (out, err) = logged(&home, args);
        logs.push_str(&err);
        out
    };
    run(&["init", "--name", "LOGOP"]);
    run(&["account", "add", "APP"]);
    run(&[
        "user",
        "add",
        "alice",
        "-a",
        "APP",
        "--allow-pub",
        "orders.>",
    ]);
    let creds = run(&["creds", "APP", "alice"]);
    assert_eq!(seeds_in(&creds).len(), 1, "{creds}");
    run(&["tenant", "add", "acme"]);
    let tenant_creds = run(&["tenant", "user", "add", "acme", "syslog"]);
    assert_eq!(seeds_in(&tenant_creds).len(), 1, "{tenant_creds}");
    let token: Value = serde_json::from_str(&run(&[
        "--json",
        "token",
        "create",
        "--name",
        "ops",
        "--scope",
        "read,write,creds",
    ]))
    .expect("token JSON");
    let api_token = token["token"].as_str().expect("token").to_string();
    secrets.extend(seeds_in(&creds));
    secrets.extend(seeds_in(&tenant_creds));
    secrets.push(api_token.clone());
    secrets.push(CHAT_SECRET.to_string());
    for entry in std::fs::read_dir(home.data_dir()).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "key") {
            let key = std::fs::read_to_string(&path).expect("master key");
            assert_eq!(key.trim().len(), 64, "a hex master key");
            secrets.push(key.trim().to_string());
        }
    }

    let server = home.start_nats(&bin, "main");
    let serve = TracedServe::start(&home, &server.url());
    let base = serve.base.clone();

    // The HTTP API: a user with creds, creds fetched, an onboarding package downloaded.
    let (s, body) = http(
        reqwest::Method::POST,
        format!("{base}/v1/accounts/APP/users"),
        &api_token,
        Some(json!({"name": "bob", "spec": {"permissions": {"pub": {"allow": ["orders.>"]}}}})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, bob_creds) = http(
        reqwest::Method::GET,
        format!("{base}/v1/accounts/APP/users/bob/creds"),
        &api_token,
        None,
    )
    .await;
    assert_eq!(s, 200, "{bob_creds}");
    let bob_creds: Value = serde_json::from_str(&bob_creds).expect("creds JSON");
    let bob_creds = bob_creds["creds"].as_str().expect("creds").to_string();
    assert_eq!(seeds_in(&bob_creds).len(), 1, "{bob_creds}");
    secrets.extend(seeds_in(&bob_creds));
    let (s, body) = http(
        reqwest::Method::POST,
        format!("{base}/v1/onboarding"),
        &api_token,
        Some(
            json!({"tenant": "acme", "component": "netflow", "site": "edge",
                    "nats_url": server.url()}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let created: Value = serde_json::from_str(&body).expect("package JSON");
    let download = created["token"]
        .as_str()
        .expect("download token")
        .to_string();
    secrets.push(download.clone());
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/onboarding/download"))
        .json(&json!({"token": download}))
        .timeout(WAIT)
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(!resp.bytes().await.expect("package").is_empty());

    // The rooms gateway: a token over REST and over a websocket.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        + 3600;
    let chat_token = sign(
        &ChatClaims {
            aud: AUD.into(),
            iss: ISS.into(),
            exp,
            user_uuid: "u-owner".into(),
            entity_uuid: "e-acme".into(),
            level_on_entity: 100,
        },
        CHAT_SECRET.as_bytes(),
    )
    .expect("chat token");
    secrets.push(chat_token.clone());
    let (s, body) = http(
        reqwest::Method::POST,
        format!("{base}/rooms"),
        &chat_token,
        Some(json!({"name": "ops", "level_admin": "9999", "type": "group"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let ws_url = format!("{}/chat", base.replacen("http://", "ws://", 1));
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url))
        .await
        .expect("ws connect in time")
        .expect("ws connect");
    let mut frames = Vec::new();
    ws.send(Message::text(
        json!({"type": "token", "content": chat_token}).to_string(),
    ))
    .await
    .expect("ws send");
    while frames.len() < 2 {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("frame") {
            Some(Ok(Message::Text(t))) => frames.push(t.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("websocket ended: {other:?}"),
        }
    }
    assert!(frames[1].contains("READY"), "{frames:?}");

    // The relay delivers everything (its pushes carry JWTs, signed with seeds).
    let deadline = Instant::now() + WAIT;
    loop {
        let status: Value = serde_json::from_str(&run(&["--json", "status"])).expect("status");
        if status["outbox_pending"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "outbox not delivered: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(ws);
    logs.push_str(&serve.stop());

    // The logs were really verbose (so finding nothing means something) ...
    let traced = logs.lines().filter(|l| l.contains("TRACE")).count();
    assert!(
        traced > 50,
        "only {traced} TRACE lines: was the level applied?"
    );
    // ... and hold none of the secrets handed out, nor anything shaped like one.
    assert!(secrets.len() >= 8, "secrets gathered: {}", secrets.len());
    for secret in &secrets {
        let lines: Vec<String> = logs
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .map(|l| l.replace(secret.as_str(), "<SECRET>"))
            .collect();
        assert!(
            lines.is_empty(),
            "a secret is in the logs:\n{}",
            lines.join("\n")
        );
    }
    assert_eq!(seeds_in(&logs), Vec::<String>::new(), "seeds in the logs");
    for marker in ["NKEY SEED", "BEGIN USER NKEY", "PRIVATE KEY"] {
        assert!(!logs.contains(marker), "{marker:?} in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs_2_15() {
    scenario(ServerLine::V2_15).await;
}
