//! The scale-out recipe of docs/scale-out.md, run as written on PostgreSQL with three
//! nats-servers (2.9.10 and 2.15.x) rendered by `warden deploy render`, two `warden
//! serve` and one `warden chat`: every shell line of the doc's blocks, in order, then
//! `kill -9` of a nats-server and of the `serve` holding the relay, then the doc's
//! changes (an account, a revocation, a device, a tenant, a publish across servers,
//! `sync --check` of each surviving server). Afterwards the test checks what the doc
//! promises on every surviving server — the new users connect, the revoked one is
//! refused, nothing is left in the outbox, the ledger verifies — and sends a chat message
//! through one gateway that a member on the other gateway receives.
//!
//! The blocks are read from the doc itself, so the test runs whatever it says. Only the
//! addresses are the test's own: every port the doc names becomes a free one, and the
//! database URL becomes the test's own database.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::chat::{Ws, create_room, put_rule, token_of_service};
use common::{Home, connect, service_call};
use serde_json::json;
use warden_testkit::{NatsServerBinary, PgDatabase, ServerLine, free_port};

const DOC: &str = include_str!("../../../docs/scale-out.md");
const DOC_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/warden";
const WAIT: Duration = Duration::from_secs(30);

/// The fenced blocks of the doc with the given info string, in order.
fn blocks(lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in DOC.lines() {
        match &mut current {
            None if line.trim_end() == format!("```{lang}") => current = Some(String::new()),
            Some(text) if line.trim_end() == "```" => {
                out.push(std::mem::take(text));
                current = None;
            }
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Every four-digit port of the doc's addresses (`:4301`, `client_port: 4301`…).
fn doc_ports(text: &str) -> Vec<String> {
    let mut ports: Vec<String> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| {
            w.len() == 4
                && (w.starts_with("43")
                    || w.starts_with("63")
                    || w.starts_with("83")
                    || w.starts_with("73"))
        })
        .map(String::from)
        .collect();
    ports.sort();
    ports.dedup();
    ports
}

/// Replaces whole numbers only (`4301` but not `43010`).
fn replace_port(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from)
            && (i == 0 || !bytes[i - 1].is_ascii_digit())
            && !bytes
                .get(i + from.len())
                .is_some_and(|b| b.is_ascii_digit())
        {
            out.push_str(to);
            i += from.len();
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A line's words: quotes removed, `#` comments dropped; whether it ends in `&`.
fn words(line: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    if in_word {
        out.push(word);
    }
    let background = out.last().is_some_and(|w| w == "&");
    if background {
        out.pop();
    }
    (out, background)
}

/// A background job of the doc's shell, killed on drop; its output lines as they come.
struct Job {
    child: Child,
    line: String,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

impl Job {
    /// Waits (bounded) for a line of standard output (`stdout`) or error containing
    /// `needle`; on failure the panic shows what the job wrote on both.
    fn wait_line(&self, stdout: bool, needle: &str) -> String {
        let (rx, other) = if stdout {
            (&self.stdout, &self.stderr)
        } else {
            (&self.stderr, &self.stdout)
        };
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let rest: Vec<String> = other.try_iter().collect();
                    panic!(
                        "{}: no line with {needle:?} in time; saw {seen:?}; and {rest:?}",
                        self.line
                    )
                }
            }
        }
    }
}

/// The reader's shell: working directory and data directory in a temporary home,
/// `export`ed variables, jobs numbered as a shell numbers them (`%1`, `%2`…).
struct Shell {
    home: Home,
    nats_server: PathBuf,
    vars: HashMap<String, String>,
    jobs: Vec<Option<Job>>,
}

impl Shell {
    fn command(&self, words: &[String]) -> Command {
        let program = match words[0].as_str() {
            "warden" => PathBuf::from(env!("CARGO_BIN_EXE_warden")),
            "nats-server" => self.nats_server.clone(),
            other => panic!("the doc runs {other:?}, which the test does not know"),
        };
        let mut cmd = Command::new(program);
        cmd.args(&words[1..])
            .current_dir(self.home.path())
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env_remove("WARDEN_NATS_URL")
            .env_remove("NATS_URL")
            .env("WARDEN_DATA_DIR", self.home.data_dir())
            .env("WARDEN_LOG", "warden=info")
            .envs(&self.vars);
        cmd
    }

    /// Runs `warden ARGS` with the shell's environment; stdout.
    fn warden(&self, args: &[&str]) -> String {
        let words: Vec<String> = std::iter::once("warden")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let out = self.command(&words).output().expect("run warden");
        assert!(
            out.status.success(),
            "warden {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn outbox_pending(&self) -> i64 {
        let status: serde_json::Value =
            serde_json::from_str(&self.warden(&["--json", "status"])).expect("status JSON");
        status["outbox_pending"].as_i64().expect("outbox_pending")
    }

    /// Waits (bounded) until the relay has delivered every change. The bound is much
    /// longer than the others: a server killed with SIGKILL sends no shutdown event, and
    /// nats-server 2.9.10 keeps it among the candidates for new streams until it notices
    /// the missed heartbeats. The doc's device streams are R3, so one placed on the dead
    /// server still has a quorum (at R1 it stayed offline: "stream is offline", 10118),
    /// but its creation can wait for the cluster's new leaders (seen: 93 s); each failed
    /// creation is retried after a backoff of up to the relay's 30 s.
    fn wait_delivered(&self, what: &str) {
        let deadline = Instant::now() + 10 * WAIT;
        loop {
            let pending = self.outbox_pending();
            if pending == 0 {
                return;
            }
            if Instant::now() >= deadline {
                // The doctor's outbox line names the oldest row's last delivery error.
                let words: Vec<String> = ["warden", "--json", "doctor"].map(String::from).into();
                let doctor = self
                    .command(&words)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_else(|e| e.to_string());
                panic!(
                    "{what}: {pending} outbox rows left: {}\ndoctor: {doctor}",
                    self.warden(&["--json", "status"])
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one line of the doc; what the test needs to wait for around it is done by
    /// the caller through `before`/`after`.
    fn run(&mut self, line: &str) -> Option<usize> {
        let (words, background) = words(line);
        if words.is_empty() {
            return None;
        }
        if words[0] == "export" {
            for pair in &words[1..] {
                let (k, v) = pair.split_once('=').expect("export NAME=VALUE");
                self.vars.insert(k.to_string(), v.to_string());
            }
            return None;
        }
        if words[0] == "kill" {
            assert_eq!(words[1], "-9", "{line}");
            for job in &words[2..] {
                let n: usize = job.trim_start_matches('%').parse().expect("%N");
                let mut j = self.jobs[n - 1].take().expect("job still running");
                j.child.kill().expect("SIGKILL");
                j.child.wait().expect("reaped");
            }
            return None;
        }
        let mut cmd = self.command(&words);
        if background {
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            let stdout = lines_of(child.stdout.take().expect("stdout"));
            let stderr = lines_of(child.stderr.take().expect("stderr"));
            self.jobs.push(Some(Job {
                child,
                line: line.to_string(),
                stdout,
                stderr,
            }));
            Some(self.jobs.len())
        } else {
            let out = cmd.output().unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(
                out.status.success(),
                "{line}: exit {:?}\nstdout: {}\nstderr: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
    }

    /// Runs a foreground line of the doc until it succeeds, within `WAIT`. For
    /// `warden sync --check` right after the outbox is empty: every server of the cluster
    /// answers a pushed update (`$SYS.REQ.CLAIMS.UPDATE`), the relay counts the first
    /// answer, and the others store the JWT a moment later (seconds, on a loaded machine).
    fn run_until_success(&mut self, line: &str) {
        let (words, background) = words(line);
        assert!(!background, "{line}: a foreground command");
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self
                .command(&words)
                .output()
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{line}: exit {:?} for {} s\nstdout: {}\nstderr: {}",
                out.status.code(),
                WAIT.as_secs(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn job(&self, n: usize) -> &Job {
        self.jobs[n - 1].as_ref().expect("job running")
    }
}

/// Waits (bounded) until the server's monitoring endpoint shows routes to `peers` other
/// servers (2.10 and later pool several route connections per peer: servers are
/// counted, not connections).
async fn wait_routes(monitoring: &str, peers: usize) {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok(r) = reqwest::get(format!("http://{monitoring}/routez")).await
            && let Ok(v) = r.json::<serde_json::Value>().await
        {
            let mut remotes: Vec<&str> = v["routes"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r["remote_id"].as_str()).collect())
                .unwrap_or_default();
            remotes.sort();
            remotes.dedup();
            if remotes.len() == peers {
                return;
            }
            last = format!("{remotes:?}");
        }
        assert!(
            Instant::now() < deadline,
            "{monitoring}: routes to {peers} servers not formed in time (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names of the client connections a server's monitoring endpoint lists.
async fn connection_names(monitoring: &str) -> Vec<String> {
    let v: serde_json::Value = reqwest::get(format!("http://{monitoring}/connz?limit=4096"))
        .await
        .expect("connz")
        .json()
        .await
        .expect("connz JSON");
    v["connections"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn read(home: &Path, file: &str) -> String {
    std::fs::read_to_string(home.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

async fn recipe(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let db = PgDatabase::create().await;
    let [yaml] = <[String; 1]>::try_from(blocks("yaml")).expect("one yaml block in the doc");
    let sh = blocks("sh");
    assert_eq!(
        sh.len(),
        4,
        "the doc's shell blocks: start, kill, changes, return"
    );

    // The doc's ports become free ones, everywhere they occur.
    let mut ports = HashMap::new();
    for p in doc_ports(&(yaml.clone() + &sh.concat())) {
        ports.insert(p, free_port().to_string());
    }
    let localise = |text: &str| -> String {
        let mut t = text.replace(DOC_DATABASE, db.url());
        for (from, to) in &ports {
            t = replace_port(&t, from, to);
        }
        t
    };
    let port = |doc: &str| ports[doc].clone();

    let mut shell = Shell {
        home: Home::new(),
        nats_server: bin.path.clone(),
        vars: HashMap::new(),
        jobs: Vec::new(),
    };
    std::fs::write(shell.home.path().join("cluster.yaml"), localise(&yaml)).unwrap();

    // Start it.
    let mut serves = Vec::new();
    for line in localise(&sh[0]).lines() {
        let job = shell.run(line);
        let Some(n) = job else { continue };
        let words = words(line).0;
        let what = (words[0].as_str(), words[1].as_str());
        if what == ("warden", "serve") {
            shell.job(n).wait_line(true, "warden serve: http://");
            if serves.is_empty() {
                // The first serve relays before the second starts: it holds the lock.
                shell.wait_delivered("the first serve's relay");
            }
            serves.push(n);
        } else if what == ("warden", "chat") {
            shell.job(n).wait_line(true, "warden chat: http://");
        } else {
            assert_eq!(words[0], "nats-server", "no wait known for {line}");
        }
        if words[0] == "nats-server" && shell.jobs.len() == 3 {
            for m in ["8301", "8302", "8303"] {
                wait_routes(&format!("127.0.0.1:{}", port(m)), 2).await;
            }
            // Every server holds the operator's accounts before anyone connects.
        }
    }
    assert_eq!(serves, [4, 5], "jobs %4 and %5 are the two serve");
    let chat_addr = format!("127.0.0.1:{}", port("7303"));
    let serve2_addr = format!("127.0.0.1:{}", port("7302"));

    // Servers are tried in the order given: every connection of Warden's is on n1, the
    // one the doc kills, so each must move for the checks below to pass.
    let n1_monitor = format!("127.0.0.1:{}", port("8301"));
    let on_n1 = connection_names(&n1_monitor).await;
    for kind in [
        "warden-resolver",
        "warden-events",
        "warden-service",
        "warden-chat",
    ] {
        assert!(
            on_n1.iter().any(|n| n == kind),
            "no {kind} connection on n1: {on_n1:?}"
        );
    }

    // Take things away: the doc kills n1 and the first serve.
    let [kill] = <[&str; 1]>::try_from(sh[1].lines().collect::<Vec<_>>()).expect("one kill line");
    assert_eq!(kill, "kill -9 %1 %4");
    shell.run(kill);

    // The second serve's and the chat gateway's connections come back on the others.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut moved = connection_names(&format!("127.0.0.1:{}", port("8302"))).await;
        moved.extend(connection_names(&format!("127.0.0.1:{}", port("8303"))).await);
        let back = [
            "warden-resolver",
            "warden-events",
            "warden-service",
            "warden-chat",
        ]
        .iter()
        .all(|kind| moved.iter().any(|n| n == kind));
        // Two chat fan-outs: the second serve's and the separate gateway's.
        if back && moved.iter().filter(|n| *n == "warden-chat").count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Warden's connections did not move to n2/n3: {moved:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The changes, through the survivors.
    for line in localise(&sh[2]).lines() {
        let w = words(line).0;
        let is = |a: &str, b: &str| w.len() > 1 && w[0] == a && w[1] == b;
        if is("warden", "tool") && w[2] == "sub" {
            shell.wait_delivered("the changes before the subscriber connects");
            let n = shell.run(line).expect("sub in the background");
            shell.job(n).wait_line(false, "listening on");
            continue;
        }
        if is("warden", "tool") && w[2] == "pub" {
            // NATS core is at-most-once and the subscriber's interest crosses the route
            // on its own schedule: the publish is repeated until it is received.
            let sub = shell.jobs.len();
            let deadline = Instant::now() + WAIT;
            loop {
                shell.run(line);
                if let Ok(got) = shell
                    .job(sub)
                    .stdout
                    .recv_timeout(Duration::from_millis(500))
                {
                    assert_eq!(got, "[orders.new] hi", "{}", shell.job(sub).line);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the subscriber on n3 never got the message from n2"
                );
            }
            continue;
        }
        if is("warden", "sync") {
            shell.wait_delivered("the changes before sync --check");
            shell.run_until_success(line);
            continue;
        }
        shell.run(line);
    }

    // What the doc promises, on every surviving server.
    shell.wait_delivered("every change");
    let survivors = [port("4302"), port("4303")].map(|p| format!("nats://127.0.0.1:{p}"));
    let old = shell.warden(&["creds", "SHOP", "old"]);
    for url in &survivors {
        for file in ["app.creds", "sensor-1.creds", "collector.creds"] {
            let creds = read(shell.home.path(), file);
            if let Err(e) = connect(url, &creds).await {
                panic!("{file} refused by {url}: {e}");
            }
        }
        let refused = connect(url, &old).await;
        assert!(refused.is_err(), "the revoked user connected to {url}");
    }
    // The NATS service answers through the survivors, from the serve that is left.
    let backend = shell.warden(&["creds", "BACKEND", "backend"]);
    for url in &survivors {
        let client = connect(url, &backend).await.expect("backend connects");
        let status = service_call(&client.client, "status", &json!({}), WAIT)
            .await
            .unwrap_or_else(|e| panic!("WARDEN.status through {url}: {e:?}"));
        assert_eq!(status["operator"]["name"], "ACME", "{status}");
    }
    // Nothing lost, and the ledger still verifies.
    assert_eq!(shell.outbox_pending(), 0);
    shell.warden(&["audit", "verify"]);

    // Chat through the surviving serve and the separate gateway: a member on each.
    let service = (
        shell.vars["WARDEN_CHAT_HS256_SECRET"].as_str(),
        shell.vars["WARDEN_CHAT_AUDIENCE"].as_str(),
        shell.vars["WARDEN_CHAT_ISSUER"].as_str(),
    );
    let owner = token_of_service(service, "u-owner", "e-acme", 100);
    let room = create_room(&serve2_addr, &owner, "after-failover").await;
    for who in ["u-ann", "u-bea"] {
        let (status, body) = put_rule(&serve2_addr, &owner, room, who, "rw", 0).await;
        assert!(status < 300, "{body}");
    }
    let ann_token = token_of_service(service, "u-ann", "e-other", 1);
    let bea_token = token_of_service(service, "u-bea", "e-other", 1);
    let mut ann = Ws::joined_at(&serve2_addr, "ann", &ann_token, room).await;
    let mut bea = Ws::joined_at(&chat_addr, "bea", &bea_token, room).await;
    ann.send(json!({"type":"message","content":"across gateways"}))
        .await;
    let got = bea.message().await;
    assert_eq!(got["content"], "across gateways", "{got}");

    // n1 comes back and is repaired: it enforces what it missed.
    for line in localise(&sh[3]).lines() {
        let words = words(line).0;
        if shell.run(line).is_some() {
            assert_eq!(words[0], "nats-server", "{line}");
            for m in ["8301", "8302", "8303"] {
                wait_routes(&format!("127.0.0.1:{}", port(m)), 2).await;
            }
        }
    }
    let n1 = format!("nats://127.0.0.1:{}", port("4301"));
    let app = read(shell.home.path(), "app.creds");
    connect(&n1, &app)
        .await
        .unwrap_or_else(|e| panic!("app refused by the returned n1: {e}"));
    assert!(
        connect(&n1, &old).await.is_err(),
        "the revoked user connected to the returned n1"
    );
    let check: serde_json::Value =
        serde_json::from_str(&shell.warden(&["--json", "sync", "--check"]))
            .expect("sync --check JSON");
    assert_eq!(check["in_step"], true, "{check}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_out_recipe_survives_kill9_2_9() {
    recipe(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scale_out_recipe_survives_kill9_2_15() {
    recipe(ServerLine::V2_15).await;
}
