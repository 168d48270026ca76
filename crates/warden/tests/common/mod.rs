//! Shared helpers of the `warden` end-to-end tests: running the real binary
//! against a data directory, and connecting to a real nats-server with creds.
#![allow(dead_code, clippy::new_without_default)]

pub mod browser;
pub mod callout;
pub mod chat;
pub mod chromedriver;
pub mod http;
pub mod pki;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tokio::sync::mpsc;

/// A store at `url` (sealed with a master key of `key` bytes) and a Warden on it acting as
/// the local operator, initialised with operator `operator` and nothing else.
pub async fn initialised_warden(
    url: &str,
    key: u8,
    operator: &str,
) -> (warden_store::Store, warden_ops::Warden) {
    let store = warden_store::Store::open(url, warden_store::MasterKey::from_bytes([key; 32]))
        .await
        .expect("store");
    let mut w = warden_ops::Warden::open(store.clone(), warden_ops::Actor::operator("test"))
        .await
        .expect("open");
    w.init(warden_ops::InitOptions::named(operator))
        .await
        .expect("init");
    (store, w)
}

/// A data directory with its own SQLite database and master key file.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `warden --data-dir <data>` with a clean environment (none of Warden's variables
    /// inherited from whoever runs the tests), for the caller to add arguments to.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env_remove("WARDEN_DATA_DIR");
        cmd
    }

    /// Runs `warden --data-dir <data> ARGS…` with a clean environment.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run warden")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "warden {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let text = self.ok(&full);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("warden {args:?}: bad JSON ({e}): {text}"))
    }

    /// Runs, requires the given exit code, returns stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "warden {args:?}: expected exit {code}\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }
}

impl Home {
    /// The operations layer on this data directory's SQLite database (for what the
    /// CLI refuses to do, such as issuing an already expired user).
    pub async fn warden(&self) -> warden_ops::Warden {
        warden_ops::Warden::open(self.store().await, warden_ops::Actor::operator("test"))
            .await
            .expect("open warden")
    }

    /// The store of this data directory.
    pub async fn store(&self) -> warden_store::Store {
        let dir = self.data_dir();
        let url = format!("sqlite://{}/warden.db", dir.display());
        let key = warden_store::MasterKey::from_env_or_file(&dir, false).expect("master key");
        warden_store::Store::open(&url, key)
            .await
            .expect("open store")
    }

    /// `warden push --nats URL`, asserting that nothing failed; the report.
    #[allow(dead_code)] // not every test binary pushes
    pub fn push(&self, url: &str) -> serde_json::Value {
        let report = self.json(&["push", "--nats", url]);
        assert_eq!(report["failed"], 0, "{report}");
        report
    }

    /// Waits (at most 20 s) until Warden's outbox is empty: the relay delivered every
    /// change.
    #[allow(dead_code)] // not every test binary runs the relay
    pub fn wait_delivered(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.json(&["status"]);
            if status["outbox_pending"] == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "outbox not delivered in time: {status}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A creds file under the home, after checking it is readable by its owner only.
    #[allow(dead_code)] // not every test binary writes creds files
    pub fn creds_file(&self, name: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().join(name);
        let mode = std::fs::metadata(&path)
            .expect("creds file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} mode {mode:o}");
        std::fs::read_to_string(path).expect("creds")
    }

    /// Renders Warden's nats-server config (`warden nats-config`) on a free loopback
    /// port and starts that server; `tag` names its files, so several can coexist.
    pub fn start_nats(
        &self,
        bin: &warden_testkit::NatsServerBinary,
        tag: &str,
    ) -> warden_testkit::NatsServer {
        self.start_rendered_nats(bin, tag, false)
    }

    /// As [`Home::start_nats`], with JetStream on (`--jetstream <home>/<tag>-js`).
    #[allow(dead_code)] // not every test binary uses JetStream
    pub fn start_js_nats(
        &self,
        bin: &warden_testkit::NatsServerBinary,
        tag: &str,
    ) -> warden_testkit::NatsServer {
        self.start_rendered_nats(bin, tag, true)
    }

    fn start_rendered_nats(
        &self,
        bin: &warden_testkit::NatsServerBinary,
        tag: &str,
        jetstream: bool,
    ) -> warden_testkit::NatsServer {
        let port = warden_testkit::free_port();
        let conf = self.path().join(format!("{tag}.conf"));
        let resolver = self.path().join(format!("{tag}-resolver"));
        let js = self.path().join(format!("{tag}-js"));
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "nats-config",
            "--listen",
            &listen,
            "--resolver-dir",
            resolver.to_str().expect("utf-8 path"),
            "-o",
            conf.to_str().expect("utf-8 path"),
        ];
        if jetstream {
            args.extend(["--jetstream", js.to_str().expect("utf-8 path")]);
        }
        self.ok(&args);
        let config = std::fs::read_to_string(&conf).expect("rendered config");
        let dir = self.path().join(format!("{tag}-server"));
        std::fs::create_dir_all(&dir).expect("server dir");
        warden_testkit::NatsServer::start(bin, &dir, &config)
            .unwrap_or_else(|e| panic!("nats-server {} refused Warden's config: {e}", bin.version))
    }
}

/// A client connected with creds, with the server's asynchronous errors
/// (permission violations) collected in a channel.
pub struct Client {
    pub client: async_nats::Client,
    pub errors: mpsc::UnboundedReceiver<String>,
}

/// Connects with creds text; returns the connect error text on refusal.
pub async fn connect(url: &str, creds: &str) -> Result<Client, String> {
    let opts = async_nats::ConnectOptions::with_credentials(creds)
        .map_err(|e| format!("bad creds: {e}"))?;
    connect_with(url, opts).await
}

/// Connects with `opts` (what the client presents, TLS), collecting the server's
/// asynchronous errors, never reconnecting and bounded in time; returns the connect
/// error text on refusal.
pub async fn connect_with(url: &str, opts: async_nats::ConnectOptions) -> Result<Client, String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let opts = opts
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(Some(0));
    match tokio::time::timeout(Duration::from_secs(10), opts.connect(url)).await {
        Ok(Ok(client)) => Ok(Client { client, errors: rx }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out".into()),
    }
}

impl Client {
    /// Waits (bounded) for the next error the server reported.
    pub async fn next_error(&mut self, within: Duration) -> Option<String> {
        tokio::time::timeout(within, self.errors.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A running `warden serve` on a Home's data directory (HTTP on a free loopback port,
/// relay backoff at most 1 s), killed on drop; `base` is its HTTP address.
#[allow(dead_code)] // not every test binary runs serve
pub struct Serve {
    child: std::process::Child,
    pub base: String,
}

#[allow(dead_code)]
impl Serve {
    /// Starts `warden serve --nats <nats>` and waits (at most 20 s) for the line with its address.
    pub fn start(home: &Home, nats: &str) -> Serve {
        Serve::start_with(home, nats, &[])
    }

    /// As [`Serve::start`], with extra `serve` flags.
    pub fn start_with(home: &Home, nats: &str, extra: &[&str]) -> Serve {
        let mut child = home
            .command()
            .args([
                "serve",
                "--nats",
                nats,
                "--http",
                "127.0.0.1:0",
                "--max-backoff",
                "1s",
            ])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start warden serve");
        let line = first_line(&mut child, "warden serve printed its address");
        // `warden serve: http://127.0.0.1:PORT (nats …)`
        let base = line
            .strip_prefix("warden serve: ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Serve { child, base }
    }
}

/// The first line a child started with a piped stdout writes there, waited for at most
/// 20 s (`what` says what the line was awaited for). The rest of stdout is not read.
pub fn first_line(child: &mut std::process::Child, what: &str) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("a piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(Duration::from_secs(20)).expect(what)
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request on `subject` until it is answered, within `within`: interest in the
/// subject reaches a server (through an import, a leaf) on the server's schedule, so
/// "no responders" and one-second timeouts are retried; other errors fail the test.
#[allow(dead_code)] // not every test binary sends requests
pub async fn answered(
    client: &async_nats::Client,
    subject: &str,
    within: Duration,
) -> async_nats::Message {
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = client
            .send_request(
                subject.to_string(),
                async_nats::Request::new()
                    .payload("".into())
                    .timeout(Some(Duration::from_secs(1))),
            )
            .await;
        match r {
            Ok(m) => return m,
            Err(e)
                if matches!(
                    e.kind(),
                    async_nats::RequestErrorKind::NoResponders
                        | async_nats::RequestErrorKind::TimedOut
                ) =>
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{subject} never answered: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("request on {subject} failed: {e}"),
        }
    }
}

/// How long the permission helpers below wait for the server.
const PERMISSION_WAIT: Duration = Duration::from_secs(10);

impl Client {
    /// Publishes on `subject` and requires the server's permissions violation for it.
    pub async fn publish_refused(&mut self, subject: &str, what: &str) {
        self.client
            .publish(subject.to_string(), "no".into())
            .await
            .expect("publish call");
        self.client.flush().await.expect("flush");
        let e = self
            .next_error(PERMISSION_WAIT)
            .await
            .unwrap_or_else(|| panic!("{what}: publish to {subject} was not refused"));
        let l = e.to_lowercase();
        assert!(
            l.contains("permissions violation") && l.contains("publish") && e.contains(subject),
            "{what}: {e}"
        );
    }

    /// Subscribes to `subject`, publishes on it and requires the message back (the
    /// server allowed both), with no server error.
    pub async fn publish_delivered(&mut self, subject: &str, what: &str) {
        use futures::StreamExt;
        let mut sub = self
            .client
            .subscribe(subject.to_string())
            .await
            .expect("subscribe");
        self.client.flush().await.expect("flush");
        self.client
            .publish(subject.to_string(), "yes".into())
            .await
            .expect("publish");
        self.client.flush().await.expect("flush");
        let m = tokio::time::timeout(PERMISSION_WAIT, sub.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: message on {subject} not delivered"))
            .expect("subscription open");
        assert_eq!(&m.payload[..], b"yes");
        assert!(
            self.errors.try_recv().is_err(),
            "{what}: unexpected server error"
        );
    }
}

/// Connects until the server refuses the creds (a pushed revocation or account JWT
/// applies on the server's schedule), within a bound; the refusal text.
pub async fn refused_eventually(url: &str, creds: &str, what: &str) -> String {
    let deadline = std::time::Instant::now() + PERMISSION_WAIT;
    loop {
        match connect(url, creds).await {
            Err(e) => return e,
            Ok(c) => {
                drop(c);
                assert!(
                    std::time::Instant::now() < deadline,
                    "{what}: still admitted"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Home {
    /// Every ledger entry, as `warden --json audit list` prints them.
    pub fn ledger(&self) -> Vec<serde_json::Value> {
        self.ok(&["--json", "audit", "list", "--limit", "100000"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }
}

/// A request to Warden's NATS service (`WARDEN.<op>` with a JSON body), answered within
/// `wait`: `Ok(body)`, or `Err((code, message))` from the service's error headers (an
/// error reply has no body).
pub async fn service_call(
    client: &async_nats::Client,
    op: &str,
    body: &serde_json::Value,
    wait: Duration,
) -> Result<serde_json::Value, (u16, String)> {
    let subject = format!("WARDEN.{op}");
    let msg = tokio::time::timeout(
        wait,
        client.request(subject.clone(), body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no reply to {subject} within {wait:?}"))
    .unwrap_or_else(|e| panic!("request to {subject} failed: {e}"));
    let header = |name: &str| {
        msg.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    match header(async_nats::service::NATS_SERVICE_ERROR_CODE) {
        Some(code) => {
            assert!(msg.payload.is_empty(), "error replies have no body");
            Err((
                code.parse().expect("numeric code"),
                header(async_nats::service::NATS_SERVICE_ERROR).unwrap_or_default(),
            ))
        }
        None => Ok(serde_json::from_slice(&msg.payload).unwrap_or_else(|e| {
            panic!(
                "reply to {subject} is not JSON ({e}): {}",
                String::from_utf8_lossy(&msg.payload)
            )
        })),
    }
}
