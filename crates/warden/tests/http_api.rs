//! The HTTP API end to end: a real store (SQLite in a temp dir; one flow on PostgreSQL), a
//! real TCP listener on 127.0.0.1:0 served by `warden::http::serve`, real HTTP requests.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warden::http::{self, HttpState, openapi};
use warden_ops::tokens::{self, Scope};
use warden_ops::{InitOptions, Settings, Warden};
use warden_store::{MasterKey, Store};

/// A running API over a fresh, initialised store.
struct Api {
    base: String,
    addr: std::net::SocketAddr,
    client: reqwest::Client,
    store: Store,
    ready: Arc<AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<warden_testkit::PgDatabase>,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn start() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    start_on(&url, Some(dir), None).await
}

async fn start_on(
    url: &str,
    dir: Option<tempfile::TempDir>,
    pg: Option<warden_testkit::PgDatabase>,
) -> Api {
    start_with(url, dir, pg, Vec::new()).await
}

/// An API over a store initialised with these JWT migrations.
async fn start_with(
    url: &str,
    dir: Option<tempfile::TempDir>,
    pg: Option<warden_testkit::PgDatabase>,
    migrations: Vec<warden_core::bootstrap::JwtMigration>,
) -> Api {
    let store = Store::open(url, MasterKey::from_bytes([9; 32]))
        .await
        .unwrap();
    let mut warden = Warden::open(store.clone(), warden_ops::Actor::operator("test"))
        .await
        .unwrap();
    warden
        .init(InitOptions {
            operator: "ACME".into(),
            account: None,
            user: None,
            settings: Settings::default(),
            service_urls: Vec::new(),
            migrations,
        })
        .await
        .unwrap();
    let ready = Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let state = HttpState {
        warden,
        ready: ready.clone(),
    };
    let server = tokio::spawn(http::serve(listener, state, None, async move {
        let _ = rx.await;
    }));
    Api {
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::new(),
        store,
        ready,
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
        _pg: pg,
    }
}

impl Api {
    async fn token(&self, name: &str, scopes: &[Scope]) -> String {
        let (_, secret) = tokens::create_token(&self.store, "test", name, scopes, None)
            .await
            .unwrap();
        secret.to_string()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: body is not JSON ({e}): {text:?}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        ct: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.json().await.unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops")
                .unwrap()
                .unwrap();
        }
        self.store.close().await;
    }
}

fn assert_status(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.body
    );
}

fn assert_unauthorized(r: &Reply) {
    assert_status(r, StatusCode::UNAUTHORIZED, "unauthorized");
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_need_no_token() {
    let api = start().await;
    let r = api.get("/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
    let r = api.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    api.ready.store(false, Ordering::SeqCst);
    let r = api.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    api.ready.store(true, Ordering::SeqCst);

    // A database that does not answer: not ready, but alive.
    api.store.close().await;
    let r = api.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(api.get("/healthz", None).await.status, StatusCode::OK);

    // Unknown paths and methods are JSON errors too.
    let r = api.get("/nope", None).await;
    assert_status(&r, StatusCode::NOT_FOUND, "no_route");
    let r = api.send(Method::PUT, "/healthz", None, None).await;
    assert_status(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_and_every_documented_route_is_served() {
    let api = start().await;
    let r = api.get("/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/v1/accounts"]["post"].is_object());
    assert_eq!(
        doc["paths"]["/v1/accounts"]["post"]["x-warden-scope"],
        "write"
    );
    assert_eq!(
        doc["paths"]["/v1/accounts"]["get"]["x-warden-scope"],
        "read"
    );
    assert_eq!(
        doc["paths"]["/v1/accounts/{account}/users/{user}/creds"]["get"]["x-warden-scope"],
        "creds"
    );
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }

    // Every documented route is served (on names that do not exist, so nothing changes).
    let admin = api.token("admin", &[Scope::Admin]).await;
    let before = api.store.counts().await.unwrap();
    for route in openapi::ROUTES {
        assert!(doc["paths"][route.path][route.method.to_ascii_lowercase()].is_object());
        let path = route
            .path
            .replace("{name}", "NOPE")
            .replace("{account}", "NOPE")
            .replace("{user}", "nope")
            .replace("{id}", "nope")
            .replace("{slug}", "nope");
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        if route.path == "/metrics" {
            // Prometheus text, not JSON.
            let r = api.client.get(format!("{}{path}", api.base)).send().await;
            assert_eq!(r.unwrap().status(), StatusCode::OK, "GET /metrics");
            continue;
        }
        // `{}` is a whole callout set-up (it makes the callout account): send one the
        // operation refuses before anything changes.
        let body = match (route.method, route.path) {
            ("PUT", "/v1/callout") => Some(json!({"ttl_secs": 1})),
            _ => route.request.map(|_| json!({})),
        };
        let r = api.send(method, &path, Some(&admin), body).await;
        assert!(
            !matches!(
                r.code(),
                "no_route" | "method_not_allowed" | "unauthorized" | "forbidden"
            ),
            "{} {}: {}",
            route.method,
            route.path,
            r.body
        );
    }
    let after = api.store.counts().await.unwrap();
    assert_eq!(before.accounts, after.accounts);
    assert_eq!(before.users, after.users);
    assert!(api.store.devices(None).await.unwrap().is_empty());
    assert_eq!(
        doc["paths"]["/v1/devices"]["post"]["x-warden-scope"],
        "write"
    );
    assert_eq!(
        doc["paths"]["/v1/devices/{id}/creds"]["get"]["x-warden-scope"],
        "creds"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_401() {
    let api = start().await;
    // No token, wrong scheme, malformed, well-formed but unknown.
    assert_unauthorized(&api.get("/v1/accounts", None).await);
    let r = api
        .client
        .get(format!("{}/v1/accounts", api.base))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_unauthorized(&api.get("/v1/accounts", Some("nope")).await);
    let unknown = format!("wdn_{}", "a".repeat(52));
    assert_unauthorized(&api.get("/v1/accounts", Some(&unknown)).await);

    // Revoked.
    let (info, secret) = tokens::create_token(&api.store, "test", "ci", &[Scope::Read], None)
        .await
        .unwrap();
    assert_eq!(
        api.get("/v1/accounts", Some(&secret)).await.status,
        StatusCode::OK
    );
    let used = tokens::list_tokens(&api.store).await.unwrap();
    assert!(
        used.iter()
            .any(|t| t.id == info.id && t.last_used_at.is_some())
    );
    tokens::revoke_token(&api.store, "test", &info.id)
        .await
        .unwrap();
    let r = api.get("/v1/accounts", Some(&secret)).await;
    assert_unauthorized(&r);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert!(
        tokens::revoke_token(&api.store, "test", &info.id)
            .await
            .is_err()
    );

    // Expired (one second of life).
    let now = warden_ops::now();
    let (_, short) =
        tokens::create_token(&api.store, "test", "short", &[Scope::Read], Some(now + 1))
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = api.get("/v1/accounts", Some(&short)).await;
    assert_unauthorized(&r);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Tokens are refused without a name or scope, or with an expiry in the past.
    assert!(
        tokens::create_token(&api.store, "test", " ", &[Scope::Read], None)
            .await
            .is_err()
    );
    assert!(
        tokens::create_token(&api.store, "test", "x", &[], None)
            .await
            .is_err()
    );
    assert!(
        tokens::create_token(&api.store, "test", "x", &[Scope::Read], Some(now - 5))
            .await
            .is_err()
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_enforced() {
    let api = start().await;
    let read = api.token("reader", &[Scope::Read]).await;
    let write = api.token("writer", &[Scope::Write]).await;
    let creds = api.token("creds", &[Scope::Creds]).await;

    assert_eq!(
        api.get("/v1/accounts", Some(&read)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/v1/operator", Some(&read)).await.status,
        StatusCode::OK
    );
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&read),
            Some(json!({"name": "SHOP"})),
        )
        .await;
    assert_status(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        api.store
            .account_by_name("x", "SHOP")
            .await
            .unwrap()
            .is_none()
    );
    // Scopes are separate: write does not read, neither gives creds.
    assert_status(
        &api.get("/v1/accounts", Some(&write)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_status(
        &api.get("/v1/accounts", Some(&creds)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let path = "/v1/accounts/ACME/users/acme/creds";
    assert_status(
        &api.get(path, Some(&read)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_status(
        &api.get(path, Some(&write)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(api.get(path, Some(&creds)).await.status, StatusCode::OK);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_users_through_the_api() {
    let api = start().await;
    let read = api.token("reader", &[Scope::Read]).await;
    let write = api.token("writer", &[Scope::Write]).await;
    let creds_token = api.token("creds", &[Scope::Creds]).await;

    // Create an account with JetStream, and a user limited to orders.>.
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&write),
            Some(json!({"name": "SHOP", "spec": {"limits": {"conn": 10, "jetstream": {"mem_storage": 1048576}}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "SHOP");
    assert!(r.body["public_key"].as_str().unwrap().starts_with('A'));
    assert_eq!(r.body["spec"]["limits"]["conn"], 10);
    let r = api
        .send(
            Method::POST,
            "/v1/accounts/SHOP/users",
            Some(&write),
            Some(json!({"name": "alice", "spec": {"permissions": {"pub": {"allow": ["orders.>"]}, "sub": {"allow": ["_INBOX.>"]}}, "src": ["10.0.0.1"]}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let alice_key = r.body["public_key"].as_str().unwrap().to_string();
    assert_eq!(r.body["spec"]["src"], json!(["10.0.0.1/32"]));

    // Reads show them.
    let r = api.get("/v1/accounts", Some(&read)).await;
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"SHOP"), "{names:?}");
    let r = api.get("/v1/accounts/SHOP", Some(&read)).await;
    assert_eq!(r.body["users"], 1);
    let r = api.get("/v1/accounts/SHOP/users", Some(&read)).await;
    assert_eq!(r.body[0]["name"], "alice");
    let r = api.get("/v1/accounts/SHOP/users/alice", Some(&read)).await;
    assert_eq!(
        r.body["spec"]["permissions"]["pub"]["allow"],
        json!(["orders.>"])
    );
    let status = api.get("/v1/status", Some(&read)).await;
    assert_eq!(status.status, StatusCode::OK);

    // Duplicates conflict.
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&write),
            Some(json!({"name": "SHOP"})),
        )
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");
    let r = api
        .send(
            Method::POST,
            "/v1/accounts/SHOP/users",
            Some(&write),
            Some(json!({"name": "alice"})),
        )
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");

    // Bad input changes nothing.
    let before = api.store.counts().await.unwrap();
    let bad = [
        (
            json!({"name": "no spaces allowed"}),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            json!({"name": "OK_NAME", "spec": {"limitz": {}}}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            json!({"name": "OK_NAME", "extra": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (json!({"name": 5}), StatusCode::BAD_REQUEST, "invalid_json"),
        (json!({"spec": {}}), StatusCode::BAD_REQUEST, "invalid_json"),
    ];
    for (body, status, code) in bad {
        let r = api
            .send(
                Method::POST,
                "/v1/accounts",
                Some(&write),
                Some(body.clone()),
            )
            .await;
        assert_status(&r, status, code);
    }
    let r = api
        .send(
            Method::POST,
            "/v1/accounts/SHOP/users",
            Some(&write),
            Some(json!({"name": "bob", "spec": {"permissions": {"pub": {"allow": ["bad subject"]}}}})),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid");
    let r = api
        .send(
            Method::POST,
            "/v1/accounts/SHOP/users",
            Some(&write),
            Some(json!({"name": "bob", "spec": {"src": ["not-a-net"]}})),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid");
    let r = api
        .raw(
            Method::POST,
            "/v1/accounts",
            &write,
            Some("application/json"),
            b"{\"name\": ".to_vec(),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid_json");
    let r = api
        .raw(
            Method::POST,
            "/v1/accounts",
            &write,
            Some("application/json"),
            b"[1,2]".to_vec(),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid_json");
    let r = api
        .raw(
            Method::POST,
            "/v1/accounts",
            &write,
            None,
            b"{\"name\":\"X\"}".to_vec(),
        )
        .await;
    assert_status(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let mut huge = b"{\"name\":\"HUGE\",\"spec\":{\"description\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', http::MAX_BODY_BYTES + 10));
    huge.extend(b"\"}}");
    let r = api
        .raw(
            Method::POST,
            "/v1/accounts",
            &write,
            Some("application/json"),
            huge,
        )
        .await;
    assert_status(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = api
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP",
            Some(&write),
            Some(json!({})),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid");
    let r = api
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP",
            Some(&write),
            Some(json!({"limits": {"conn": 5}})),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.conn"),
        "{}",
        r.body
    );
    let after = api.store.counts().await.unwrap();
    assert_eq!(before, after);

    // Edits.
    let r = api
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP",
            Some(&write),
            Some(json!({"limits": {"conns": 5}, "description": "the shop"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["limits"]["conn"], 5);
    assert_eq!(r.body["spec"]["description"], "the shop");
    let r = api
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP/users/alice",
            Some(&write),
            Some(json!({"permissions": {"allow_sub": ["orders.>"]}, "expiry": 4102444800i64})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["spec"]["permissions"]["sub"]["allow"],
        json!(["_INBOX.>", "orders.>"])
    );
    assert_eq!(r.body["spec"]["expires_at"], 4102444800i64);
    let r = api
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP/users/alice",
            Some(&write),
            Some(json!({"expiry": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["spec"].get("expires_at").is_none(), "{}", r.body);

    // Creds: a creds file for alice.
    let r = api
        .get("/v1/accounts/SHOP/users/alice/creds", Some(&creds_token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let parsed = nats_jwt::parse_creds(r.body["creds"].as_str().unwrap()).unwrap();
    assert!(parsed.seed.is_some());
    let claims = nats_jwt::decode_any(&parsed.jwt).unwrap();
    assert!(format!("{claims:?}").contains(&alice_key));

    // Revoke, delete.
    let r = api
        .send(
            Method::POST,
            "/v1/accounts/SHOP/users/alice/revoke",
            Some(&write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["revoked_at"].is_i64());
    let r = api
        .send(
            Method::POST,
            "/v1/accounts/SHOP/users/alice/revoke",
            Some(&write),
            None,
        )
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");
    let r = api
        .send(
            Method::DELETE,
            "/v1/accounts/SHOP/users/alice",
            Some(&write),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_status(
        &api.get("/v1/accounts/SHOP/users/alice", Some(&read)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let r = api
        .send(Method::DELETE, "/v1/accounts/SHOP", Some(&write), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_status(
        &api.get("/v1/accounts/SHOP", Some(&read)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let r = api
        .send(Method::DELETE, "/v1/accounts/SYS", Some(&write), None)
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_lists_verifies_and_never_holds_a_token() {
    let api = start().await;
    let (info, admin) = tokens::create_token(&api.store, "test", "admin", &[Scope::Admin], None)
        .await
        .unwrap();
    let admin = admin.to_string();
    let (other, other_secret) = tokens::create_token(
        &api.store,
        "test",
        "other",
        &[Scope::Read, Scope::Write],
        None,
    )
    .await
    .unwrap();
    tokens::revoke_token(&api.store, "test", &other.id)
        .await
        .unwrap();
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&admin),
            Some(json!({"name": "SHOP"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = api.get("/v1/ledger", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = r.body.as_array().unwrap().clone();
    assert!(events.len() >= 5, "{}", r.body);
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"token.create") && actions.contains(&"token.revoke"),
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&"account.create"));
    // A change made through the API is recorded under the token that made it.
    assert_eq!(
        events.last().unwrap()["actor"],
        format!("http:admin:{}", info.id).as_str()
    );
    let created = events
        .iter()
        .find(|e| e["object_key"] == info.id.as_str())
        .unwrap();
    assert_eq!(created["summary"]["name"], "admin");
    assert_eq!(created["summary"]["scopes"], json!(["admin"]));

    // Paging.
    let r = api.get("/v1/ledger?after=2&limit=2", Some(&admin)).await;
    let page: Vec<i64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(page, [3, 4]);
    for bad in ["limit=0", "limit=100000", "after=-1", "after=abc"] {
        let r = api.get(&format!("/v1/ledger?{bad}"), Some(&admin)).await;
        assert_status(&r, StatusCode::BAD_REQUEST, "invalid");
    }

    let r = api.get("/v1/ledger/verify", Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["first_break"], Value::Null);
    assert_eq!(r.body["events"].as_i64().unwrap() as usize, events.len());

    // Neither a secret nor its hash is anywhere in the ledger.
    let all = serde_json::to_string(&api.store.ledger(0, 100_000).await.unwrap()).unwrap();
    for secret in [admin.as_str(), other_secret.as_str()] {
        let hash = data_encoding::HEXLOWER.encode(&Sha256::digest(secret.as_bytes()));
        assert!(!all.contains(secret));
        assert!(!all.contains(&secret[4..]));
        assert!(!all.contains(&hash));
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish() {
    let api = start().await;
    let write = api.token("writer", &[Scope::Write]).await;
    let body = br#"{"name": "LATE"}"#;
    let mut conn = tokio::net::TcpStream::connect(api.addr).await.unwrap();
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {write}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Shut down while the request is half sent: the server waits for it.
    let mut api = api;
    let _ = api.shutdown.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = api.server.take().unwrap();
    assert!(
        !server.is_finished(),
        "the server stopped with a request in flight"
    );
    // New connections are no longer accepted.
    assert!(
        tokio::net::TcpStream::connect(api.addr).await.is_err()
            || api
                .client
                .get(format!("{}/healthz", api.base))
                .send()
                .await
                .is_err()
    );

    conn.write_all(&body[5..]).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
    assert!(
        api.store
            .account_by_name(
                &api.store.operator().await.unwrap().unwrap().public_key,
                "LATE"
            )
            .await
            .unwrap()
            .is_some()
    );
    api.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_postgres() {
    let pg = warden_testkit::PgDatabase::create().await;
    let url = pg.url().to_string();
    let api = start_on(&url, None, Some(pg)).await;
    let write = api.token("writer", &[Scope::Write, Scope::Read]).await;
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&write),
            Some(json!({"name": "SHOP"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = api
        .send(
            Method::POST,
            "/v1/accounts",
            Some(&write),
            Some(json!({"name": "SHOP"})),
        )
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");
    let r = api.get("/v1/accounts/SHOP", Some(&write)).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = tokens::list_tokens(&api.store).await.unwrap();
    tokens::revoke_token(&api.store, "test", &list[0].id)
        .await
        .unwrap();
    assert_unauthorized(&api.get("/v1/accounts", Some(&write)).await);
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
    api.stop().await;
}

/// The device id and user key in creds text, proving the seed belongs to the user.
fn creds_user_key(creds: &Value) -> String {
    let c = nats_jwt::parse_creds(creds.as_str().expect("creds text")).expect("creds parse");
    let seed = c.seed.expect("creds hold a seed");
    nats_jwt::KeyPair::from_seed(seed.expose())
        .expect("seed")
        .public_key()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_through_the_api() {
    let api = start().await;
    let read = api.token("reader", &[Scope::Read]).await;
    let write = api.token("writer", &[Scope::Write]).await;
    let ops = api
        .token("ops", &[Scope::Read, Scope::Write, Scope::Creds])
        .await;
    let ids = |r: &Reply| -> Vec<String> {
        r.body
            .as_array()
            .expect("array")
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Without write: 403, nothing created.
    let new_a = json!({"id": "a", "meta": {"site": "lab"}});
    let r = api
        .send(
            Method::POST,
            "/v1/devices",
            Some(&read),
            Some(new_a.clone()),
        )
        .await;
    assert_status(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(api.store.devices(None).await.unwrap().is_empty());

    // With write and creds: the view and the creds, never cached.
    let r = api
        .send(Method::POST, "/v1/devices", Some(&ops), Some(new_a))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let a = r.body["device"].clone();
    assert_eq!(a["state"], "provisioned");
    assert_eq!(a["account"], "EMDEV-a");
    assert_eq!(a["meta"]["site"], "lab");
    assert_eq!(
        creds_user_key(&r.body["creds"]),
        a["user_key"].as_str().unwrap()
    );
    // Write alone changes the fleet but is handed no creds.
    let r = api
        .send(
            Method::POST,
            "/v1/devices",
            Some(&write),
            Some(json!({"id": "b"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["device"]["id"], "b");
    assert!(r.body.get("creds").is_none(), "{}", r.body);

    // Bad input: 400, nothing changes; a duplicate is 409.
    for (body, code) in [
        (json!({"id": "Bad Id!"}), "invalid"),
        (json!({"id": "c", "bogus": 1}), "invalid_json"),
        (json!({"meta": {}}), "invalid_json"),
    ] {
        let r = api
            .send(Method::POST, "/v1/devices", Some(&ops), Some(body))
            .await;
        assert_status(&r, StatusCode::BAD_REQUEST, code);
    }
    let r = api
        .send(
            Method::POST,
            "/v1/devices",
            Some(&ops),
            Some(json!({"id": "a"})),
        )
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");
    let bad_bulk = json!({"devices": [{"id": "e"}, {"id": "BAD!"}]});
    let r = api
        .send(Method::POST, "/v1/devices/bulk", Some(&ops), Some(bad_bulk))
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST, "invalid");
    let r = api.get("/v1/devices", Some(&read)).await;
    assert_eq!(ids(&r), ["a", "b"], "bad input created nothing");

    // Bulk: existing ids skipped; creds only for the new ones, only with creds scope.
    let bulk = json!({"devices": [{"id": "a"}, {"id": "c", "meta": {"n": 3}}]});
    let r = api
        .send(Method::POST, "/v1/devices/bulk", Some(&ops), Some(bulk))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["added"], json!(["c"]));
    assert_eq!(r.body["skipped"], json!(["a"]));
    let c_key = creds_user_key(&r.body["creds"]["c"]);
    assert_eq!(r.body["creds"].as_object().unwrap().len(), 1, "{}", r.body);
    let r = api
        .send(
            Method::POST,
            "/v1/devices/bulk",
            Some(&write),
            Some(json!({"devices": [{"id": "d"}]})),
        )
        .await;
    assert_eq!(r.body["added"], json!(["d"]), "{}", r.body);
    assert!(r.body.get("creds").is_none(), "{}", r.body);

    // Reads: one device, 404 for an unknown one, 400 for a bad id or state.
    let r = api.get("/v1/devices/c", Some(&read)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user_key"], c_key.as_str());
    assert_eq!(r.body["meta"]["n"], 3);
    assert_status(
        &api.get("/v1/devices/nope", Some(&read)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_status(
        &api.get("/v1/devices/Bad!", Some(&read)).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
    // The bulk route shadows GET of a device named `bulk` (documented).
    assert_status(
        &api.get("/v1/devices/bulk", Some(&read)).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
    assert_status(
        &api.get("/v1/devices?state=gone", Some(&read)).await,
        StatusCode::BAD_REQUEST,
        "invalid",
    );
    // Creds need the creds scope.
    assert_status(
        &api.get("/v1/devices/a/creds", Some(&read)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let r = api.get("/v1/devices/a/creds", Some(&ops)).await;
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(
        creds_user_key(&r.body["creds"]),
        a["user_key"].as_str().unwrap()
    );

    // Rotate: a new user key and its creds.
    let r = api
        .send(Method::POST, "/v1/devices/a/rotate", Some(&read), None)
        .await;
    assert_status(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = api
        .send(Method::POST, "/v1/devices/a/rotate", Some(&ops), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_key = r.body["device"]["user_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, a["user_key"].as_str().unwrap());
    assert_eq!(creds_user_key(&r.body["creds"]), new_key);
    assert!(r.body["device"]["rotated_at"].is_i64());

    // Revoke, conflict on a second revoke, restore; recorded under the token.
    let r = api
        .send(Method::POST, "/v1/devices/a/revoke", Some(&write), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "revoked");
    let r = api
        .send(Method::POST, "/v1/devices/a/revoke", Some(&write), None)
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");
    let r = api
        .send(Method::POST, "/v1/devices/nope/revoke", Some(&write), None)
        .await;
    assert_status(&r, StatusCode::NOT_FOUND, "not_found");
    let r = api.get("/v1/devices?state=revoked", Some(&read)).await;
    assert_eq!(ids(&r), ["a"]);
    let r = api
        .send(Method::POST, "/v1/devices/a/restore", Some(&write), None)
        .await;
    assert_eq!(r.body["state"], "provisioned", "{}", r.body);
    let r = api
        .send(Method::POST, "/v1/devices/a/restore", Some(&write), None)
        .await;
    assert_status(&r, StatusCode::CONFLICT, "conflict");
    let events = api.store.ledger(0, 1000).await.unwrap();
    let revoke = events
        .iter()
        .find(|e| e.action == "device.revoke")
        .expect("revoke in the ledger");
    assert!(revoke.actor.starts_with("http:writer:"), "{}", revoke.actor);
    let add = events
        .iter()
        .find(|e| e.action == "device.add")
        .expect("add in the ledger");
    assert!(add.actor.starts_with("http:ops:"), "{}", add.actor);
    api.stop().await;
}

/// Until the server has wired a new device account's imports a message may be lost:
/// the device publishes on its request subject every 200 ms until the hub's backend
/// receives one (bounded).
async fn device_reaches_backend(device: &common::Client, backend: &common::Client, id: &str) {
    use futures::StreamExt;
    let subject = format!("EMDEVS.{id}.x");
    let mut inbox = backend.client.subscribe("EMDEVS.>").await.unwrap();
    backend.client.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        device
            .client
            .publish(subject.clone(), "hi".into())
            .await
            .unwrap();
        device.client.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), inbox.next()).await {
            assert_eq!(m.subject.as_str(), subject);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing from {id} reached the backend"
        );
    }
}

/// Creds from `POST /v1/devices` connect to a real nats-server once the relay pushed
/// the account; `POST /v1/devices/{id}/revoke` gets the device refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_creds_from_the_api_work_on_nats_server() {
    for bin in warden_testkit::NatsServerBinary::all() {
        let v = bin.version.clone();
        // The built-in migrations: the relay connects as their service user.
        let home = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", home.path().join("warden.db").display());
        let migrations =
            warden_core::default_migrations(warden_core::bootstrap::DEFAULT_SERVICE_PREFIX);
        let api = start_with(&url, Some(home), None, migrations).await;
        let ops = api.token("ops", &[Scope::Write, Scope::Creds]).await;
        let w = Warden::open(api.store.clone(), warden_ops::Actor::operator("test"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let op = w.operator().await.unwrap();
        let port = warden_testkit::free_port();
        let mut cfg = warden_nats::config::ServerConfig::new(
            format!("127.0.0.1:{port}"),
            op.jwt,
            op.system_account,
            dir.path().join("resolver"),
        );
        cfg.preload = w.account_jwts().await.unwrap();
        cfg.jetstream_dir = Some(dir.path().join("js"));
        let server =
            warden_testkit::NatsServer::start(&bin, &dir.path().join("server"), &cfg.render())
                .unwrap_or_else(|e| panic!("[{v}] nats-server refused the config: {e}"));
        let relay = warden_ops::relay::RelayConfig::new(server.url());
        let conns = warden_ops::relay::Connections::open(&w, &relay)
            .await
            .unwrap();
        let push = || async {
            let report = warden_ops::relay::drain_all(&w, &conns, &relay)
                .await
                .unwrap();
            assert_eq!(report.failed, 0, "[{v}] {:?}", report.first_error);
            report
        };

        // The device and the hub exist only in the store until the relay pushes.
        let r = api
            .send(
                Method::POST,
                "/v1/devices",
                Some(&ops),
                Some(json!({"id": "a"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "[{v}] {}", r.body);
        let creds = r.body["creds"].as_str().unwrap().to_string();
        assert!(push().await.accounts_pushed >= 2, "[{v}] hub and device");
        let backend = common::connect(&server.url(), &w.creds("EMDEVS", "backend").await.unwrap())
            .await
            .unwrap_or_else(|e| panic!("[{v}] hub backend refused: {e}"));
        let mut device = common::connect(&server.url(), &creds)
            .await
            .unwrap_or_else(|e| panic!("[{v}] device creds from the API refused: {e}"));
        device_reaches_backend(&device, &backend, "a").await;
        assert!(
            device.errors.try_recv().is_err(),
            "[{v}] device a hit a wall"
        );

        let r = api
            .send(Method::POST, "/v1/devices/a/revoke", Some(&ops), None)
            .await;
        assert_eq!(r.body["state"], "revoked", "[{v}] {}", r.body);
        assert_eq!(push().await.accounts_deleted, 1, "[{v}]");
        let closed = device
            .next_error(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("[{v}] the revoked device was not told"));
        assert!(
            closed.contains("Revoked") || closed.contains("Expired"),
            "[{v}] {closed}"
        );
        assert!(
            common::connect(&server.url(), &creds).await.is_err(),
            "[{v}] revoked device reconnected"
        );
        api.stop().await;
    }
}
