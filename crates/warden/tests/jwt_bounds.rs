//! Account JWTs stay within what nats-server accepts: a change that would sign an
//! account JWT over the bound (default: nats-server's default `max_payload` less room
//! for the resolver push) is refused on every surface and stores nothing, an account
//! just under it works with real nats-server 2.9.10 and 2.15.x, and `warden nats-config`
//! never renders a stored account JWT over the bound.

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{Home, connect};
use nats_jwt::{Export, ExportType, KeyKind, KeyPair, Subject};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::http::{self, HttpState};
use warden_core::compile::{DEFAULT_MAX_ACCOUNT_JWT, NATS_DEFAULT_MAX_PAYLOAD};
use warden_core::{AccountName, AccountSpec, compile_account};
use warden_ops::tokens::{self, Scope};
use warden_ops::{ErrorKind, InitOptions, Settings, Warden};
use warden_store::{MasterKey, Store};
use warden_testkit::{NatsServerBinary, ServerLine};

const BOUND: usize = DEFAULT_MAX_ACCOUNT_JWT;

/// `n` stream exports `svc.exported.<i>`, the descriptions sharing `description_bytes`
/// (the first takes the remainder).
fn exports(n: usize, description_bytes: usize) -> Vec<Export> {
    (0..n)
        .map(|i| {
            let len = description_bytes / n + if i == 0 { description_bytes % n } else { 0 };
            Export {
                name: None,
                subject: Subject::new(&format!("svc.exported.{i}")).expect("subject"),
                export_type: ExportType::Stream,
                token_req: false,
                revocations: Default::default(),
                response_type: None,
                response_threshold_ns: None,
                service_latency: None,
                account_token_position: None,
                advertise: false,
                allow_trace: false,
                description: Some("d".repeat(len)),
                info_url: None,
            }
        })
        .collect()
}

fn spec_with(n: usize, description_bytes: usize) -> AccountSpec {
    AccountSpec {
        exports: exports(n, description_bytes),
        ..AccountSpec::default()
    }
}

/// The size of the JWT Warden signs for account `name` with `spec`: the same claims
/// signed by throwaway keys of the same kinds (keys, `jti` and `iat` have fixed lengths).
fn jwt_len(name: &str, spec: &AccountSpec) -> usize {
    let account = KeyPair::generate(KeyKind::Account);
    let signer = KeyPair::generate(KeyKind::Operator);
    let name = AccountName::parse_any_case(name).expect("account name");
    let mut claims = compile_account(&account.account_public_key().expect("key"), &name, spec);
    claims.encode(&signer).expect("encode").len()
}

/// A spec of `n` exports whose JWT is the largest not over `target` bytes; base64 grows
/// by 4 bytes per 3, so it lands within 3 bytes of `target`.
fn spec_sized(name: &str, n: usize, target: usize) -> (AccountSpec, usize) {
    // Descriptions as long as the target cannot fit: base64 alone makes it 4/3 longer.
    let (mut lo, mut hi) = (0, target.min(8000 * n));
    assert!(
        jwt_len(name, &spec_with(n, hi)) > target,
        "target too large"
    );
    // Invariant: total `lo` fits, total `hi` does not.
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if jwt_len(name, &spec_with(n, mid)) <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let spec = spec_with(n, lo);
    let len = jwt_len(name, &spec);
    assert!(len <= target && len + 4 > target, "{len} vs {target}");
    (spec, len)
}

/// Thousands of exports whose JWT is well over the bound, in a request body under the
/// HTTP API's 1 MiB limit.
fn oversized_spec() -> (AccountSpec, usize) {
    let spec = spec_with(2000, 2000 * 400);
    let len = jwt_len("BIG", &spec);
    assert!(len > BOUND + 100_000, "{len}");
    (spec, len)
}

fn assert_names_size_and_bound(message: &str, account: &str, size: usize) {
    for needle in [
        format!("account {account}"),
        format!("{size} bytes"),
        format!("{BOUND} bytes"),
    ] {
        assert!(message.contains(&needle), "{needle:?} not in: {message}");
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

struct Api {
    base: String,
    client: reqwest::Client,
    store: Store,
    token: String,
}

impl Api {
    async fn start(url: &str) -> (Api, tokio::sync::oneshot::Sender<()>) {
        let store = Store::open(url, MasterKey::from_bytes([7; 32]))
            .await
            .expect("store");
        let mut warden = Warden::open(store.clone(), warden_ops::Actor::operator("test"))
            .await
            .expect("open");
        warden
            .init(InitOptions {
                operator: "ACME".into(),
                account: None,
                user: None,
                settings: Settings::default(),
                service_urls: Vec::new(),
                migrations: Vec::new(),
            })
            .await
            .expect("init");
        let (_, token) = tokens::create_token(
            &store,
            "test",
            "writer",
            &[Scope::Read, Scope::Write, Scope::Admin],
            None,
        )
        .await
        .expect("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = HttpState {
            warden,
            ready: Arc::new(AtomicBool::new(true)),
        };
        tokio::spawn(http::serve(listener, state, None, async move {
            let _ = rx.await;
        }));
        let api = Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
            store,
            token: token.to_string(),
        };
        (api, tx)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:.300}"));
        (status, body)
    }

    /// Every account's name and JWT, and the ledger and outbox counts.
    async fn state(&self) -> Value {
        let (s, accounts) = self.send(Method::GET, "/v1/accounts", None).await;
        assert_eq!(s, StatusCode::OK, "{accounts}");
        let (s, status) = self.send(Method::GET, "/v1/status", None).await;
        assert_eq!(s, StatusCode::OK, "{status}");
        let accounts: Vec<Value> = accounts
            .as_array()
            .expect("list")
            .iter()
            .map(|a| json!([a["name"], a["jwt"]]))
            .collect();
        json!({
            "accounts": accounts,
            "ledger": status["ledger_events"],
            "outbox": status["outbox_pending"],
        })
    }

    fn refused(&self, status: StatusCode, body: &Value, account: &str, size: usize) {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.300}");
        assert_eq!(body["error"]["code"], "invalid", "{body:.300}");
        let message = body["error"]["message"].as_str().expect("message");
        assert_names_size_and_bound(message, account, size);
    }
}

async fn http_scenario(url: &str) {
    let (api, stop) = Api::start(url).await;
    let before = api.state().await;
    assert!(before["ledger"].as_i64().is_some(), "{before}");

    // Thousands of exports: refused, naming the account, the size and the bound.
    let (big, big_len) = oversized_spec();
    let (s, body) = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(json!({"name": "BIG", "spec": big})),
        )
        .await;
    api.refused(s, &body, "BIG", big_len);

    // A few bytes over: refused too. Nothing of either was stored.
    let (over, over_len) = spec_sized("EDGE", 1000, BOUND + 4);
    assert!(over_len > BOUND, "{over_len}");
    let (s, body) = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(json!({"name": "EDGE", "spec": over})),
        )
        .await;
    api.refused(s, &body, "EDGE", over_len);
    assert_eq!(api.state().await, before, "a refused account left a trace");
    let (s, _) = api.send(Method::GET, "/v1/accounts/BIG", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Just under the bound: created, with the JWT predicted.
    let (near, near_len) = spec_sized("NEAR", 1000, BOUND);
    let (s, body) = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(json!({"name": "NEAR", "spec": near})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body:.300}");
    assert_eq!(body["jwt"].as_str().expect("jwt").len(), near_len);

    // An update that would push it over: refused, the stored account unchanged.
    let (_, stored) = api.send(Method::GET, "/v1/accounts/NEAR", None).await;
    let after_create = api.state().await;
    let description = "d".repeat(4000);
    let (s, body) = api
        .send(
            Method::PATCH,
            "/v1/accounts/NEAR",
            Some(json!({"description": description})),
        )
        .await;
    let grown = {
        let mut spec: AccountSpec = serde_json::from_value(stored["spec"].clone()).expect("spec");
        spec.description = Some(description);
        jwt_len("NEAR", &spec)
    };
    api.refused(s, &body, "NEAR", grown);
    let (_, unchanged) = api.send(Method::GET, "/v1/accounts/NEAR", None).await;
    assert_eq!(unchanged, stored);
    assert_eq!(api.state().await, after_create);

    let _ = stop.send(());
    api.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_account_jwts_over_the_bound_and_stores_nothing_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    http_scenario(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_account_jwts_over_the_bound_and_stores_nothing_postgres() {
    let pg = warden_testkit::PgDatabase::create().await;
    http_scenario(pg.url()).await;
}

// ---------------------------------------------------------------------------------------
// CLI and nats-server
// ---------------------------------------------------------------------------------------

/// A migrations file creating `account` with `spec` (and, when given, a user in it).
fn migration_file(
    home: &Home,
    id: &str,
    account: &str,
    spec: &AccountSpec,
    user: Option<&str>,
) -> String {
    let mut steps = vec![json!({"kind": "account", "name": account, "spec": spec})];
    if let Some(u) = user {
        steps.push(json!({"kind": "user", "account": account, "name": u}));
    }
    let path = home.path().join(format!("{id}.json"));
    let text = json!([{"id": id, "description": "jwt bounds", "steps": steps}]).to_string();
    std::fs::write(&path, text).expect("write migrations");
    path.to_str().expect("utf-8 path").to_string()
}

fn account_names(home: &Home) -> Vec<String> {
    home.json(&["account", "list"])
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn cli_refuses_an_oversized_account_with_exit_2_and_stores_nothing() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    let before = account_names(&home);
    let status_before = home.json(&["status"]);

    let (big, big_len) = oversized_spec();
    let file = migration_file(&home, "0100_big", "BIG", &big, Some("alice"));
    let stderr = home.fails(2, &["migrate", "--file", &file]);
    assert_names_size_and_bound(&stderr, "BIG", big_len);

    assert_eq!(account_names(&home), before);
    let status = home.json(&["status"]);
    for field in [
        "accounts",
        "users",
        "ledger_events",
        "outbox_pending",
        "migrations",
    ] {
        assert_eq!(status[field], status_before[field], "{field}");
    }
}

/// At the bound's edge through the CLI: a few bytes over is refused; just under is
/// created, rendered by `warden nats-config` into a configuration `line`'s nats-server
/// starts with, resolves for its user, and is pushed within the server's max_payload.
async fn edge_scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);

    let (over, over_len) = spec_sized("EDGE", 1000, BOUND + 4);
    let file = migration_file(&home, "0100_over", "EDGE", &over, None);
    let stderr = home.fails(2, &["migrate", "--file", &file]);
    assert_names_size_and_bound(&stderr, "EDGE", over_len);
    assert!(!account_names(&home).contains(&"EDGE".to_string()));

    let (near, near_len) = spec_sized("NEAR", 1000, BOUND);
    let file = migration_file(&home, "0200_near", "NEAR", &near, Some("alice"));
    home.ok(&["migrate", "--file", &file]);
    let shown = home.json(&["account", "show", "NEAR"]);
    assert_eq!(shown["jwt"].as_str().expect("jwt").len(), near_len);

    let server = home.start_nats(&bin, "main");
    let conf = std::fs::read_to_string(home.path().join("main.conf")).expect("config");
    assert!(
        conf.contains(shown["jwt"].as_str().expect("jwt")),
        "[{v}] not preloaded"
    );
    let creds = home.ok(&["creds", "NEAR", "alice"]);
    let client = connect(&server.url(), &creds).await.unwrap_or_else(|e| {
        panic!("[{v}] a user of the account just under the bound refused: {e}")
    });
    client.client.flush().await.expect("flush");
    // The outbox holds its push: delivered within the server's max_payload, none failed.
    let report = home.push(&server.url());
    assert!(
        report["accounts_pushed"].as_u64() > Some(0),
        "[{v}] {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_at_the_bound_edge_with_nats_server_2_15() {
    edge_scenario(ServerLine::V2_15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_at_the_bound_edge_with_nats_server_2_9() {
    edge_scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_config_refuses_a_stored_account_jwt_over_the_bound() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    // As an older Warden (or an engine with a higher bound) would have stored it.
    let (old, old_len) = spec_sized("OLD", 1000, BOUND + 2000);
    let lenient = home
        .warden()
        .await
        .with_max_account_jwt(NATS_DEFAULT_MAX_PAYLOAD)
        .expect("bound");
    lenient.add_account("OLD", old).await.expect("stored");
    drop(lenient);

    let out = home.path().join("nats.conf");
    let stderr = home.fails(1, &["nats-config", "-o", out.to_str().expect("utf-8 path")]);
    assert!(
        stderr.contains(&format!("account OLD ({old_len} bytes)"))
            && stderr.contains(&format!("{BOUND} bytes")),
        "{stderr}"
    );
    assert!(!out.exists(), "a configuration was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_is_settable_within_what_nats_server_accepts() {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    let w = home.warden().await;
    assert_eq!(w.max_account_jwt(), BOUND);
    for bad in [0, 1023, NATS_DEFAULT_MAX_PAYLOAD + 1] {
        let e = w.with_max_account_jwt(bad).err().expect("refused");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{bad}: {e}");
    }
    // A lower bound applies to every signing: creating, then editing.
    let small = w.with_max_account_jwt(2048).expect("bound");
    let e = small
        .add_account(
            "WIDE",
            AccountSpec {
                description: Some("d".repeat(2000)),
                ..AccountSpec::default()
            },
        )
        .await
        .expect_err("over 2048 bytes");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("2048 bytes"), "{e}");
    small
        .add_account("SLIM", AccountSpec::default())
        .await
        .expect("small account");
    let e = small
        .edit_account("SLIM", &Default::default(), Some("d".repeat(2000)))
        .await
        .expect_err("edit over 2048 bytes");
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("account SLIM"), "{e}");
}
