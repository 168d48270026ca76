//! Who may do what is decided by the operations, so every surface answers alike. Over
//! the HTTP API (SQLite and PostgreSQL): every route whose answer lets its holder connect
//! to NATS is `403 forbidden` without the `creds` scope, with nothing written where it is
//! a change, and allowed with it; a bearer user's JWT is withheld from a token without
//! `creds`; registering a directory user's key takes `admin` for an operator's token and
//! the user's own bound token otherwise. Over the NATS service (nats-server 2.9 and
//! 2.15): with the scopes `read,write` its creds endpoints are refused (`403`, message
//! `forbidden: …`), with `read,write,creds` they answer.

mod common;

use std::time::Duration;

use common::{Home, connect};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::http::{self, HttpState};
use warden::nats_api;
use warden_core::UserSpec;
use warden_ops::tokens::{self, Scope};
use warden_ops::{Actor, Warden};
use warden_store::Store;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(20);

/// `<name>::on_sqlite` and `<name>::on_postgres`.
macro_rules! on_both_stores {
    ($name:ident, $flow:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                super::$flow(&url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let db = warden_testkit::PgDatabase::create().await;
                super::$flow(db.url()).await;
            }
        }
    };
}

struct Api {
    http: common::http::Http,
    store: Store,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Api {
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.http.send(method, path, token, body).await;
        (r.status, r.body)
    }

    async fn token(&self, name: &str, scopes: &[Scope]) -> String {
        tokens::create_token(&self.store, "test", name, scopes, None)
            .await
            .expect("token")
            .1
            .to_string()
    }

    async fn events(&self) -> i64 {
        self.store.counts().await.expect("counts").ledger_events
    }

    /// `403 forbidden` with the ledger unchanged.
    async fn forbidden(&self, token: &str, method: Method, path: &str, body: Option<Value>) {
        let before = self.events().await;
        let (s, v) = self.call(token, method.clone(), path, body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{method} {path}: {v}"
        );
        assert_eq!(
            self.events().await,
            before,
            "{method} {path}: the refusal wrote"
        );
    }

    async fn ok(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(token, method.clone(), path, body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }
}

async fn start(url: &str) -> Api {
    let (store, w) = common::initialised_warden(url, 4, "ACME").await;
    w.add_account("APP", Default::default()).await.expect("APP");
    w.add_user("APP", "alice", UserSpec::default())
        .await
        .expect("alice");
    let bearer = UserSpec {
        bearer_token: true,
        ..Default::default()
    };
    w.add_user("APP", "bob", bearer).await.expect("bob");
    w.add_device("d1", Default::default()).await.expect("d1");
    w.add_tenant("acme", &Default::default())
        .await
        .expect("tenant");
    w.add_tenant_user("acme", "collector")
        .await
        .expect("tenant user");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        warden: w,
        ready: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    tokio::spawn(http::serve(listener, state, None, async move {
        let _ = rx.await;
    }));
    Api {
        http: common::http::Http::new(&format!("http://{addr}")),
        store,
        _stop: tx,
    }
}

/// The routes whose answer lets its holder connect to NATS.
async fn creds_routes(url: &str) {
    use Method as M;
    let api = start(url).await;
    let read = api.token("read", &[Scope::Read]).await;
    let write = api.token("write", &[Scope::Read, Scope::Write]).await;
    let creds = api
        .token("creds", &[Scope::Read, Scope::Write, Scope::Creds])
        .await;

    // Creds reads: refused without `creds`, answered with it.
    for path in [
        "/v1/accounts/APP/users/alice/creds",
        "/v1/devices/d1/creds",
        "/v1/tenants/acme/users/collector/creds",
    ] {
        for t in [&read, &write] {
            api.forbidden(t, M::GET, path, None).await;
        }
        let v = api.ok(&creds, M::GET, path, None).await;
        assert!(
            v["creds"].as_str().unwrap_or("").contains("USER NKEY SEED"),
            "{path}: {v}"
        );
    }

    // Changes that issue creds: done for `write`, the creds only for `creds`.
    let (s, v) = api
        .call(&write, M::POST, "/v1/devices", Some(json!({"id": "d2"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v.get("creds").is_none() && v["device"]["id"] == "d2", "{v}");
    let (s, v) = api
        .call(&creds, M::POST, "/v1/devices", Some(json!({"id": "d3"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["creds"].as_str().unwrap_or("").contains("USER NKEY SEED"),
        "{v}"
    );
    let v = api
        .ok(
            &write,
            M::POST,
            "/v1/devices/bulk",
            Some(json!({"devices": [{"id": "d4"}]})),
        )
        .await;
    assert!(
        v.get("creds").is_none() && v["added"] == json!(["d4"]),
        "{v}"
    );
    let v = api
        .ok(
            &creds,
            M::POST,
            "/v1/devices/bulk",
            Some(json!({"devices": [{"id": "d5"}]})),
        )
        .await;
    assert!(
        v["creds"]["d5"]
            .as_str()
            .unwrap_or("")
            .contains("USER NKEY SEED"),
        "{v}"
    );
    let v = api.ok(&write, M::POST, "/v1/devices/d1/rotate", None).await;
    assert!(v.get("creds").is_none() && v["device"]["id"] == "d1", "{v}");
    let v = api.ok(&creds, M::POST, "/v1/devices/d1/rotate", None).await;
    assert!(
        v["creds"].as_str().unwrap_or("").contains("USER NKEY SEED"),
        "{v}"
    );
    let v = api
        .ok(
            &write,
            M::POST,
            "/v1/tenants/acme/users",
            Some(json!({"name": "c2"})),
        )
        .await;
    assert!(v.get("creds").is_none() && v["user"] == "c2", "{v}");
    let v = api
        .ok(
            &creds,
            M::POST,
            "/v1/tenants/acme/users",
            Some(json!({"name": "c3"})),
        )
        .await;
    assert!(
        v["creds"].as_str().unwrap_or("").contains("USER NKEY SEED"),
        "{v}"
    );
    // A read-only token changes nothing.
    api.forbidden(&read, M::POST, "/v1/devices", Some(json!({"id": "d6"})))
        .await;
    api.forbidden(&read, M::POST, "/v1/devices/d1/rotate", None)
        .await;

    // An onboarding package holds creds and a private key.
    let package = json!({"tenant": "acme", "component": "netflow", "site": "edge",
        "nats_url": "nats://127.0.0.1:4222"});
    api.forbidden(&write, M::POST, "/v1/onboarding", Some(package.clone()))
        .await;
    let (s, v) = api
        .call(&creds, M::POST, "/v1/onboarding", Some(package))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["token"].as_str().unwrap_or("").starts_with("wdl_"), "{v}");

    // A bearer user's JWT: withheld from `read`, shown to `creds`; others always shown.
    let bob = api
        .ok(&read, M::GET, "/v1/accounts/APP/users/bob", None)
        .await;
    assert_eq!(
        (&bob["jwt"], &bob["jwt_withheld"]),
        (&Value::Null, &json!(true)),
        "{bob}"
    );
    let bob = api
        .ok(&creds, M::GET, "/v1/accounts/APP/users/bob", None)
        .await;
    assert!(
        bob["jwt"].as_str().unwrap_or("").starts_with("eyJ"),
        "{bob}"
    );
    assert_eq!(bob["jwt_withheld"], false);
    let list = api.ok(&read, M::GET, "/v1/accounts/APP/users", None).await;
    for u in list.as_array().expect("users") {
        let hidden = u["name"] == "bob";
        assert_eq!(u["jwt"].is_null(), hidden, "{u}");
        assert_eq!(u["jwt_withheld"], hidden, "{u}");
    }
    // Flipping a user to bearer with a `write` token: its JWT is withheld in the answer.
    let write_only = api.token("write-only", &[Scope::Write]).await;
    let v = api
        .ok(
            &write_only,
            M::PATCH,
            "/v1/accounts/APP/users/alice",
            Some(json!({"bearer": true})),
        )
        .await;
    assert_eq!(v["spec"]["bearer_token"], true, "{v}");
    assert_eq!(
        (&v["jwt"], &v["jwt_withheld"]),
        (&Value::Null, &json!(true)),
        "{v}"
    );
    let v = api
        .ok(&creds, M::GET, "/v1/accounts/APP/users/alice", None)
        .await;
    assert!(v["jwt"].is_string(), "{v}");
    assert!(api.store.verify_ledger().await.expect("verify").is_intact());
}

on_both_stores!(creds_routes_need_creds, creds_routes);

/// Registering a directory user's NATS key.
async fn key_registration(url: &str) {
    use Method as M;
    let api = start(url).await;
    let admin = api.token("admin", &[Scope::Admin]).await;
    for (id, extra) in [
        ("admin", json!({})),
        ("ulrich", json!({"as": "admin"})),
        ("mallory", json!({"as": "admin"})),
    ] {
        let mut body = json!({"user": {"id": id, "name": id}});
        if let Some(a) = extra.get("as") {
            body["as"] = a.clone();
        }
        api.ok(&admin, M::POST, "/v1/dir/users", Some(body)).await;
    }
    let rw = api.token("rw", &[Scope::Read, Scope::Write]).await;
    let rwc = api
        .token("rwc", &[Scope::Read, Scope::Write, Scope::Creds])
        .await;
    let (_, mallory) =
        tokens::create_dir_user_token(&api.store, "test", "mallory's", "mallory", None)
            .await
            .expect("mallory's token");
    let (_, ulrich) = tokens::create_dir_user_token(&api.store, "test", "ulrich's", "ulrich", None)
        .await
        .expect("ulrich's token");
    let key = || {
        nats_jwt::KeyPair::generate(nats_jwt::KeyKind::User)
            .public_key()
            .to_string()
    };
    let path = "/v1/dir/users/ulrich/keys";

    // For someone else: refused for an operator's read,write (and read,write,creds) token
    // and for another user's bound token, whatever `as` says.
    for (t, body) in [
        (rw.as_str(), json!({"as": "ulrich", "public_key": key()})),
        (rwc.as_str(), json!({"as": "ulrich", "public_key": key()})),
        (mallory.as_str(), json!({"public_key": key()})),
        (
            mallory.as_str(),
            json!({"as": "ulrich", "public_key": key()}),
        ),
    ] {
        api.forbidden(t, M::POST, path, Some(body)).await;
    }
    assert_eq!(api.ok(&admin, M::GET, path, None).await, json!([]));

    // For themself, with their own bound token: registered.
    let own = key();
    let (s, v) = api
        .call(&ulrich, M::POST, path, Some(json!({"public_key": own})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["keys"][0]["public_key"], own.as_str(), "{v}");
    // An operator's admin token may register one for anyone.
    let other = key();
    let (s, v) = api
        .call(
            &admin,
            M::POST,
            "/v1/dir/users/mallory/keys",
            Some(json!({"public_key": other})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The local operator (the CLI's actor, admin) too.
    let cli = Warden::open(api.store.clone(), Actor::operator("cli:test"))
        .await
        .expect("open");
    cli.dir_key_add(None, "ulrich", &key())
        .await
        .expect("operator adds a key");
    assert!(api.store.verify_ledger().await.expect("verify").is_intact());
}

on_both_stores!(
    key_registration_needs_creds_and_self_or_admin,
    key_registration
);

/// A service request: the body, or the error (code, message) from its headers.
async fn request(
    client: &async_nats::Client,
    op: &str,
    body: Value,
) -> Result<Value, (u16, String)> {
    common::service_call(client, op, &body, WAIT).await
}

/// Runs the service with `scopes` until the returned sender is dropped or fired.
fn run_service(
    client: async_nats::Client,
    w: Warden,
    scopes: Vec<Scope>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        nats_api::run(client, w, "WARDEN", &scopes, async move {
            let _ = rx.await;
        })
        .await
    });
    (tx, task)
}

/// Waits until the service answers.
async fn ready(client: &async_nats::Client) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.request("WARDEN.status", "".into()).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn nats_service(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "alice", "-a", "APP"]);
    home.ok(&["user", "add", "bob", "-a", "APP", "--bearer"]);
    let w = home.warden().await;
    w.add_device("d1", Default::default()).await.expect("d1");
    w.add_tenant("acme", &Default::default())
        .await
        .expect("acme");
    w.add_tenant_user("acme", "collector")
        .await
        .expect("collector");
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let svc = connect(&url, &w.creds("BACKEND", "warden").await.expect("creds"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] service user refused: {e}"));
    let caller = connect(&url, &w.creds("BACKEND", "backend").await.expect("creds"))
        .await
        .unwrap_or_else(|e| panic!("[{v}] backend refused: {e}"));
    let b = &caller.client;
    let store = home.store().await;
    let events = || async { store.counts().await.expect("counts").ledger_events };

    let creds_calls = [
        ("user.creds", json!({"account": "APP", "name": "alice"})),
        ("device.creds", json!({"id": "d1"})),
        ("tenant.creds", json!({"slug": "acme", "name": "collector"})),
        ("device.create", json!({"id": "d2"})),
        ("device.rotate", json!({"id": "d1"})),
        ("user.create", json!({"account": "APP", "name": "carol"})),
        ("tenant.user.add", json!({"slug": "acme", "name": "c2"})),
    ];

    // read,write: the creds endpoints are refused, nothing written; the rest answers.
    let (stop, task) = run_service(
        svc.client.clone(),
        w.clone(),
        vec![Scope::Read, Scope::Write],
    );
    ready(b).await;
    let before = events().await;
    for (op, body) in &creds_calls {
        let (code, msg) = request(b, op, body.clone())
            .await
            .expect_err(&format!("[{v}] {op} answered without creds"));
        assert_eq!(code, 403, "[{v}] {op}: {msg}");
        assert!(msg.starts_with("forbidden: "), "[{v}] {op}: {msg}");
        assert!(!msg.contains("SEED"), "[{v}] {op}: {msg}");
    }
    assert_eq!(events().await, before, "[{v}] a refused request wrote");
    assert!(
        w.device("d2").await.is_err(),
        "[{v}] refused device.create wrote"
    );
    let bob = request(b, "user.get", json!({"account": "APP", "name": "bob"}))
        .await
        .expect("user.get");
    assert_eq!(
        (&bob["jwt"], &bob["jwt_withheld"]),
        (&Value::Null, &json!(true)),
        "[{v}] {bob}"
    );
    let alice = request(b, "user.get", json!({"account": "APP", "name": "alice"}))
        .await
        .expect("user.get");
    assert!(alice["jwt"].is_string(), "[{v}] {alice}");
    request(b, "account.create", json!({"name": "SHOP"}))
        .await
        .expect("write works without creds");
    let _ = stop.send(());
    task.await.expect("join").expect("service ran");

    // read,write,creds (the default): answered.
    let (stop, task) = run_service(
        svc.client.clone(),
        w.clone(),
        nats_api::default_service_scopes(),
    );
    ready(b).await;
    for (op, body) in &creds_calls {
        let r = request(b, op, body.clone())
            .await
            .unwrap_or_else(|(c, m)| panic!("[{v}] {op}: {c} {m}"));
        assert!(
            r["creds"].as_str().unwrap_or("").contains("USER NKEY SEED"),
            "[{v}] {op}: {r}"
        );
    }
    let bob = request(b, "user.get", json!({"account": "APP", "name": "bob"}))
        .await
        .expect("user.get");
    assert!(
        bob["jwt"].is_string() && bob["jwt_withheld"] == false,
        "[{v}] {bob}"
    );
    let _ = stop.send(());
    task.await.expect("join").expect("service ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_service_scopes_against_nats_server_2_9() {
    nats_service(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_service_scopes_against_nats_server_2_15() {
    nats_service(ServerLine::V2_15).await;
}
