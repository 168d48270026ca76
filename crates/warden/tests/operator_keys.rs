//! Operator signing keys against real nats-server processes (2.9.10 and 2.15.x): a rotation
//! with clients of several accounts connected, across two restarts, never gets a client
//! refused; every account ends up on the server signed by the new key, the old key leaves the
//! operator JWT and the rendered configuration, and accounts created at every step connect.
//! A config reload does not make a server trust a new key (only a restart does). `add`,
//! `list` and `rm` behave, and refusals change nothing.

mod common;

use std::time::{Duration, Instant};

use common::Home;
use futures::StreamExt;
use nats_jwt::{Account, Operator};
use tokio::sync::mpsc;
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(15);

/// A client that reconnects forever, with every connection event it saw.
struct Watched {
    name: String,
    client: async_nats::Client,
    sub: async_nats::Subscriber,
    subject: String,
    events: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Watched {
    async fn connect(url: &str, creds: &str, name: &str) -> Watched {
        let (tx, events) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::with_credentials(creds)
            .expect("creds")
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(event.to_string());
                }
            })
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .reconnect_delay_callback(|_| Duration::from_millis(100))
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("{name} cannot connect: {e}"));
        let subject = format!("probe.{}", name.to_lowercase());
        let sub = client.subscribe(subject.clone()).await.expect("subscribe");
        Watched {
            name: name.to_string(),
            client,
            sub,
            subject,
            events,
            seen: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
    }

    /// Waits (bounded) until the client is connected again and a message it publishes to
    /// itself comes back.
    async fn round_trip(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.client.connection_state() == async_nats::connection::State::Connected {
                let _ = self
                    .client
                    .publish(self.subject.clone(), "probe".into())
                    .await;
                let _ = self.client.flush().await;
                if let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(300), self.sub.next()).await
                {
                    self.drain();
                    return;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            self.drain();
            assert!(
                Instant::now() < deadline,
                "{}: no round trip in time; events {:?}",
                self.name,
                self.seen
            );
        }
    }

    /// Fails when the server ever refused this client.
    fn never_refused(&mut self) {
        self.drain();
        let refused: Vec<&String> = self
            .seen
            .iter()
            .filter(|e| {
                let e = e.to_lowercase();
                e.contains("authoriz") || e.contains("authentication") || e.contains("permission")
            })
            .collect();
        assert!(
            refused.is_empty(),
            "{} was refused: {:?}",
            self.name,
            self.seen
        );
    }
}

fn signing_keys_of(jwt: &str) -> Vec<String> {
    nats_jwt::decode::<Operator>(jwt)
        .expect("operator JWT")
        .nats
        .signing_keys
        .iter()
        .map(|k| k.to_string())
        .collect()
}

fn operator_keys(home: &Home) -> Vec<String> {
    signing_keys_of(home.json(&["operator", "show"])["jwt"].as_str().unwrap())
}

/// The operator signing keys of the configuration `warden nats-config` renders now.
fn rendered_keys(home: &Home) -> Vec<String> {
    let text = home.ok(&["nats-config", "--listen", "127.0.0.1:4999"]);
    let line = text
        .lines()
        .find(|l| l.starts_with("operator:"))
        .expect("operator line");
    let jwt = line["operator:".len()..].trim().trim_matches('"');
    signing_keys_of(jwt)
}

/// Re-renders the server's configuration (same port and resolver directory) into its
/// config file.
fn rerender(home: &Home, server: &NatsServer, tag: &str) {
    let listen = format!("127.0.0.1:{}", server.port());
    let resolver = home.path().join(format!("{tag}-resolver"));
    home.ok(&[
        "nats-config",
        "--listen",
        &listen,
        "--resolver-dir",
        resolver.to_str().unwrap(),
        "-o",
        server.config_path().to_str().unwrap(),
    ]);
}

/// What must not change when a step is refused or waits.
fn state(home: &Home) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    (
        home.json(&["operator", "show"]),
        home.json(&["operator", "signing-key", "list"]),
        home.json(&["account", "list"]),
    )
}

fn rotate(home: &Home, url: &str) -> serde_json::Value {
    home.json(&["operator", "signing-key", "rotate", "--nats", url])
}

/// `rotate` that cannot advance: exit 1, nothing changed; returns stderr.
fn rotate_waits(home: &Home, url: Option<&str>) -> String {
    let before = state(home);
    let mut args = vec!["operator", "signing-key", "rotate"];
    if let Some(u) = url {
        args.extend(["--nats", u]);
    }
    let err = home.fails(1, &args);
    assert!(err.contains("did not advance"), "{err}");
    assert_eq!(state(home), before, "a waiting rotate changed something");
    err
}

async fn add_account_with_user(home: &Home, account: &str, user: &str) -> String {
    home.ok(&["account", "add", account]);
    home.ok(&["user", "add", "--account", account, user]);
    home.warden()
        .await
        .creds(account, user)
        .await
        .expect("creds")
        .to_string()
}

async fn connects(url: &str, creds: &str, name: &str) {
    let mut c = Watched::connect(url, creds, name).await;
    c.round_trip().await;
    c.never_refused();
}

/// Every account Warden keeps on the resolver, as the server holds it, is issued by `key`.
async fn server_accounts_signed_by(home: &Home, url: &str, key: &str) {
    let w = home.warden().await;
    let sys = w.system_user_creds().await.unwrap();
    let client = warden_nats::ResolverClient::connect(url, &sys, Duration::from_secs(5))
        .await
        .unwrap();
    let accounts = w.account_jwts().await.unwrap();
    assert!(accounts.len() >= 4);
    for (name, pk, _) in accounts {
        let jwt = client
            .lookup(&pk)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not on the server"));
        let claims = nats_jwt::decode::<Account>(&jwt).unwrap();
        assert_eq!(claims.iss, key, "{name} on the server");
    }
}

async fn rotation_with_clients(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init"]);
    let alpha = add_account_with_user(&home, "ALPHA", "a").await;
    let beta = add_account_with_user(&home, "BETA", "b").await;
    let tag = "rot";
    let mut server = home.start_nats(&bin, tag);
    let url = server.url();
    home.push(&url);
    let k1 = home.json(&["operator", "show"])["signing_key"]
        .as_str()
        .unwrap()
        .to_string();

    let mut clients = vec![
        Watched::connect(&url, &alpha, "ALPHA").await,
        Watched::connect(&url, &beta, "BETA").await,
    ];
    for c in &mut clients {
        c.round_trip().await;
    }

    // 1. Start: a new key joins the operator JWT; the old one still issues.
    let started = home.json(&["operator", "signing-key", "rotate"]);
    assert_eq!(started["step"], "started", "{started}");
    let k2 = started["to"].as_str().unwrap().to_string();
    assert_eq!(started["from"], k1.as_str());
    assert_eq!(operator_keys(&home), vec![k1.clone(), k2.clone()]);
    assert_eq!(home.json(&["operator", "show"])["signing_key"], k1.as_str());
    // Twice is safe: without a server it says what it waits for and changes nothing.
    rotate_waits(&home, None);
    // The server does not trust K2 yet: re-signing is refused, also after a config reload,
    // which nats-server refuses for a changed operator (only a restart reloads it).
    rotate_waits(&home, Some(&url));
    rerender(&home, &server, tag);
    let pid = server.pid().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    assert!(
        server.wait_for_log("config reload not supported for TrustedOperators", WAIT),
        "{}",
        server.log()
    );
    let err = rotate_waits(&home, Some(&url));
    assert!(err.contains("not restarted with the new key"), "{err}");
    // An account made now is signed by K1, which the server trusts.
    let gamma = add_account_with_user(&home, "GAMMA", "g").await;
    home.push(&url);
    connects(&url, &gamma, "GAMMA").await;
    for c in &mut clients {
        c.round_trip().await;
    }

    // 2. Restart with the re-rendered configuration: the server trusts K1 and K2. Rotate:
    // every account re-signed by K2 in one transaction, pushed, confirmed; K1 leaves.
    server.restart().unwrap();
    for c in &mut clients {
        c.round_trip().await;
    }
    let retired = rotate(&home, &url);
    assert_eq!(retired["step"], "old_key_removed", "{retired}");
    assert!(
        retired["accounts_resigned"].as_u64().unwrap() >= 5,
        "{retired}"
    );
    assert_eq!(retired["unconfirmed_count"], 0);
    assert_eq!(retired["phase"], "untrust");
    assert_eq!(operator_keys(&home), vec![k2.clone()]);
    assert_eq!(rendered_keys(&home), vec![k2.clone()]);
    assert_eq!(home.json(&["operator", "show"])["signing_key"], k2.as_str());
    server_accounts_signed_by(&home, &url, &k2).await;
    home.ok(&["sync", "--check", "--nats", &url]);
    let list = home.json(&["operator", "signing-key", "list"]);
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["public_key"], k2.as_str());
    assert_eq!(keys[0]["issuing"], true);
    assert_eq!(list["rotation"]["phase"], "untrust");
    for c in &mut clients {
        c.round_trip().await;
    }
    // Twice is safe: the server still trusts K1 until it restarts.
    let err = rotate_waits(&home, Some(&url));
    assert!(err.contains("still trusting the old key"), "{err}");
    // An account made now is signed by K2, which the server trusts.
    let delta = add_account_with_user(&home, "DELTA", "d").await;
    home.push(&url);
    connects(&url, &delta, "DELTA").await;

    // 3. Restart again: the server forgets K1; the rotation completes.
    rerender(&home, &server, tag);
    server.restart().unwrap();
    for c in &mut clients {
        c.round_trip().await;
    }
    let done = rotate(&home, &url);
    assert_eq!(done["step"], "completed", "{done}");
    assert!(done["phase"].is_null());
    assert!(
        home.json(&["operator", "signing-key", "list"])["rotation"].is_null(),
        "rotation still recorded"
    );
    server_accounts_signed_by(&home, &url, &k2).await;
    assert_eq!(rendered_keys(&home), vec![k2.clone()]);
    assert!(
        !home.warden().await.store().has_seed(&k1).await.unwrap(),
        "the old key's seed is kept"
    );
    // Accounts from every step still connect, and so does one made now.
    connects(&url, &gamma, "GAMMA").await;
    connects(&url, &delta, "DELTA").await;
    let eps = add_account_with_user(&home, "EPSILON", "e").await;
    home.push(&url);
    connects(&url, &eps, "EPSILON").await;
    for c in &mut clients {
        c.round_trip().await;
        c.never_refused();
    }
    // Every step is in the ledger.
    let steps: Vec<String> = home
        .ledger()
        .iter()
        .filter(|e| e["action"] == "operator.signing_key.rotate")
        .map(|e| e["summary"]["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["start", "resign", "retire", "complete"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_clients_2_9() {
    rotation_with_clients(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_clients_2_15() {
    rotation_with_clients(ServerLine::V2_15).await;
}

/// `add`, `list` and `rm`; refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_rm() {
    let home = Home::new();
    home.ok(&["init"]);
    home.ok(&["account", "add", "ALPHA"]);
    let k1 = home.json(&["operator", "show"])["signing_key"]
        .as_str()
        .unwrap()
        .to_string();
    let list = home.json(&["operator", "signing-key", "list"]);
    assert_eq!(list["issuing_key"], k1.as_str());
    let accounts = home.json(&["account", "list"]).as_array().unwrap().len();
    assert_eq!(list["keys"][0]["accounts"], accounts, "{list}");
    assert!(list["rotation"].is_null());

    // add: in the operator JWT, not issuing, no accounts.
    let added = home.json(&["operator", "signing-key", "add"]);
    let k3 = added["public_key"].as_str().unwrap().to_string();
    assert_eq!(added["signing_keys"], serde_json::json!([k1, k3]));
    assert_eq!(operator_keys(&home), vec![k1.clone(), k3.clone()]);
    assert_eq!(rendered_keys(&home), vec![k1.clone(), k3.clone()]);
    let list = home.json(&["operator", "signing-key", "list"]);
    let row = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["public_key"] == k3.as_str())
        .expect("added key listed")
        .clone();
    assert_eq!(row["issuing"], false);
    assert_eq!(row["in_operator_jwt"], true);
    assert_eq!(row["accounts"], 0);
    assert_eq!(row["seed_held"], true);
    let human = home.ok(&["operator", "signing-key", "list"]);
    assert!(
        human.contains(&k3) && human.contains("no rotation in progress"),
        "{human}"
    );

    // rm of the issuing key: refused, nothing changed.
    let before = state(&home);
    let err = home.fails(1, &["operator", "signing-key", "rm", &k1]);
    assert!(err.contains("issuing key"), "{err}");
    assert_eq!(state(&home), before);
    // Not a key: usage error; unknown key: not found; both change nothing.
    home.fails(2, &["operator", "signing-key", "rm", "nope"]);
    let stranger = nats_jwt::KeyPair::generate(nats_jwt::KeyKind::Operator)
        .public_key()
        .to_string();
    let err = home.fails(1, &["operator", "signing-key", "rm", &stranger]);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(state(&home), before);

    // A key that still signs an account (as an nsc import can leave it): refused.
    {
        let store = home.warden().await.store().clone();
        let signer = nats_jwt::KeyPair::from_seed(&store.seed(&k3).await.unwrap()).unwrap();
        let op = store.operator().await.unwrap().unwrap();
        let mut acc = store
            .account_by_name(&op.public_key, "ALPHA")
            .await
            .unwrap()
            .unwrap();
        let mut claims = nats_jwt::decode::<Account>(&acc.jwt).unwrap();
        acc.jwt = claims.encode(&signer).unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.update_account(&acc).await.unwrap();
        tx.commit().await.unwrap();
    }
    let list = home.json(&["operator", "signing-key", "list"]);
    let row = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["public_key"] == k3.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["accounts"], 1, "{list}");
    let before = state(&home);
    let err = home.fails(1, &["operator", "signing-key", "rm", &k3]);
    assert!(
        err.contains("still signs 1 account") && err.contains("ALPHA"),
        "{err}"
    );
    assert_eq!(state(&home), before);
    // Re-signed by the issuing key (what `nsc edit account` would do): now it may go.
    home.warden()
        .await
        .resign_account_now("ALPHA")
        .await
        .unwrap();
    let removed = home.json(&["operator", "signing-key", "rm", &k3]);
    assert_eq!(removed["action"], "removed");
    assert_eq!(operator_keys(&home), vec![k1.clone()]);
    assert!(!home.warden().await.store().has_seed(&k3).await.unwrap());
    let actions: Vec<String> = home
        .ledger()
        .iter()
        .filter_map(|e| e["action"].as_str().map(String::from))
        .filter(|a| a.starts_with("operator.signing_key"))
        .collect();
    assert_eq!(
        actions,
        ["operator.signing_key.add", "operator.signing_key.remove"]
    );

    // During a rotation, neither of its keys may be removed.
    let started = home.json(&["operator", "signing-key", "rotate"]);
    let k2 = started["to"].as_str().unwrap().to_string();
    let before = state(&home);
    let err = home.fails(1, &["operator", "signing-key", "rm", &k2]);
    assert!(err.contains("rotation in progress"), "{err}");
    let err = home.fails(1, &["operator", "signing-key", "rm", &k1]);
    assert!(err.contains("issuing key"), "{err}");
    assert_eq!(state(&home), before);
    let human = home.ok(&["operator", "signing-key", "list"]);
    assert!(
        human.contains("waiting for servers to trust the new key"),
        "{human}"
    );
    // `operator show` still works, human and JSON.
    assert!(home.ok(&["operator", "show"]).contains(&k1));
}

/// The rotation on PostgreSQL against 2.15: the same steps; two `rotate` started at once
/// make one rotation (the other is refused or waits), never two new keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_on_postgresql() {
    let db = warden_testkit::PgDatabase::create().await;
    let home = Home::new();
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_warden"));
        c.args([
            "--json",
            "--data-dir",
            home.data_dir().to_str().unwrap(),
            "--database-url",
            db.url(),
        ])
        .args(args);
        c
    };
    let run = |args: &[&str]| {
        let out = cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    run(&["init"]);
    run(&["account", "add", "ALPHA"]);
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let dir = home.path().join("pg-server");
    let resolver = home.path().join("pg-resolver");
    let port = warden_testkit::free_port();
    let render = || {
        let out = cmd(&[
            "nats-config",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--resolver-dir",
            resolver.to_str().unwrap(),
        ])
        .output()
        .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let mut server = NatsServer::start(&bin, &dir, &render()).unwrap();
    let url = server.url();
    run(&["push", "--nats", &url]);

    // Two starts at once: one rotation.
    let a = cmd(&["operator", "signing-key", "rotate"]).spawn().unwrap();
    let b = cmd(&["operator", "signing-key", "rotate"]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert!(ok >= 1, "{a:?} {b:?}");
    let list = run(&["operator", "signing-key", "list"]);
    assert_eq!(list["keys"].as_array().unwrap().len(), 2, "{list}");
    let k2 = list["rotation"]["to"].as_str().unwrap().to_string();

    std::fs::write(server.config_path(), render()).unwrap();
    server.restart().unwrap();
    let r = run(&["operator", "signing-key", "rotate", "--nats", &url]);
    assert_eq!(r["step"], "old_key_removed", "{r}");
    std::fs::write(server.config_path(), render()).unwrap();
    server.restart().unwrap();
    let r = run(&["operator", "signing-key", "rotate", "--nats", &url]);
    assert_eq!(r["step"], "completed", "{r}");
    let list = run(&["operator", "signing-key", "list"]);
    assert_eq!(list["issuing_key"], k2.as_str());
    assert_eq!(list["keys"].as_array().unwrap().len(), 1, "{list}");
    assert!(list["rotation"].is_null());
    let creds = {
        run(&["user", "add", "--account", "ALPHA", "a"]);
        let out = cmd(&["creds", "ALPHA", "a", "-o", "-"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["push", "--nats", &url]);
    let mut c = Watched::connect(&url, &creds, "ALPHA").await;
    c.round_trip().await;
    c.never_refused();
}
