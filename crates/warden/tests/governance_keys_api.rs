//! ADD_KEY over the HTTP API (`/v1/dir/users/{id}/keys…`), on SQLite and on PostgreSQL:
//! a real store, a real listener on 127.0.0.1:0, real requests. A seed or a non-user key
//! is `400 invalid` (the seed not echoed), someone else's key `403 refused`, both with
//! nothing changed; the user's NATS user is issued for the registered key (its JWT's
//! subject) and goes back to a generated key when the key is removed.

use nats_jwt::{KeyKind, KeyPair, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::http::{self, HttpState};
use warden::ops::{InitOptions, Settings, Warden};
use warden::tokens::{self, Scope};
use warden_store::{MasterKey, Store};

struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
    store: Store,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(url: &str) -> Api {
    let store = Store::open(url, MasterKey::from_bytes([3; 32]))
        .await
        .unwrap();
    let mut w = Warden::open(store.clone(), "test").await.unwrap();
    w.init(InitOptions {
        operator: "GOV".into(),
        account: None,
        user: None,
        settings: Settings::default(),
        service_urls: Vec::new(),
        migrations: Vec::new(),
    })
    .await
    .unwrap();
    w.add_account("APP", Default::default()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        warden: w,
        ready: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    tokio::spawn(http::serve(listener, state, None, async move {
        let _ = rx.await;
    }));
    let (_, secret) =
        tokens::create_token(&store, "test", "gov", &[Scope::Read, Scope::Write], None)
            .await
            .unwrap();
    Api {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        token: secret.to_string(),
        store,
        _stop: tx,
    }
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(std::time::Duration::from_secs(20));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method.clone(), path, body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }
}

fn jwt_subject(jwt: &str) -> String {
    nats_jwt::decode::<User>(jwt).expect("user JWT").sub
}

async fn flow(api: Api) {
    use Method as M;
    let w = Warden::open(api.store.clone(), "test").await.unwrap();
    api.ok(
        M::POST,
        "/v1/dir/users",
        Some(json!({"user": {"id": "admin", "name": "Ada"}})),
    )
    .await;
    for id in ["ulrich", "mallory"] {
        api.ok(
            M::POST,
            "/v1/dir/users",
            Some(json!({"as": "admin", "user": {"id": id, "name": id}})),
        )
        .await;
    }
    api.ok(
        M::POST,
        "/v1/dir/tasks",
        Some(
            json!({"as": "admin", "name": "orders", "account": "APP", "owners": ["admin"],
            "grants": {"allow_pub": ["orders.>"]}}),
        ),
    )
    .await;
    api.ok(
        M::POST,
        "/v1/dir/roles",
        Some(json!({"as": "admin", "name": "sales", "owners": ["admin"]})),
    )
    .await;
    for (kind, object, related) in [
        ("role-task", "sales", "orders"),
        ("role-member", "sales", "ulrich"),
    ] {
        let p = api
            .ok(
                M::POST,
                "/v1/proposals",
                Some(json!({"as": "admin", "kind": kind, "change": "add", "object": object, "related": related})),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_string();
        api.ok(
            M::POST,
            &format!("/v1/proposals/{id}/confirm"),
            Some(json!({"as": "admin"})),
        )
        .await;
    }
    let generated = w.user("APP", "ulrich").await.unwrap().public_key;

    let kp = KeyPair::generate(KeyKind::User);
    let pk = kp.public_key().to_string();
    let seed = kp.seed();
    let events_before = api.store.verify_ledger().await.unwrap();
    for bad in [
        seed.expose().to_string(),
        KeyPair::generate(KeyKind::Account).public_key().to_string(),
        "UNOTAKEY".to_string(),
    ] {
        let (s, v) = api
            .call(
                M::POST,
                "/v1/dir/users/ulrich/keys",
                Some(json!({"as": "ulrich", "public_key": bad})),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid")),
            "{v}"
        );
        assert!(
            !v.to_string().contains(seed.expose()),
            "the seed was echoed: {v}"
        );
    }
    let (s, v) = api
        .call(
            M::POST,
            "/v1/dir/users/ulrich/keys",
            Some(json!({"as": "mallory", "public_key": pk})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("refused")),
        "{v}"
    );
    assert_eq!(
        api.ok(M::GET, "/v1/dir/users/ulrich/keys", None).await,
        json!([])
    );
    assert_eq!(
        api.store.verify_ledger().await.unwrap(),
        events_before,
        "refused input changed the ledger"
    );
    let (s, _) = api.call(M::GET, "/v1/dir/users/nobody/keys", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, added) = api
        .call(
            M::POST,
            "/v1/dir/users/ulrich/keys",
            Some(json!({"as": "ulrich", "public_key": pk})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{added}");
    assert_eq!(
        added["reissued"][0]["revoked"],
        generated.as_str(),
        "{added}"
    );
    let list = api.ok(M::GET, "/v1/dir/users/ulrich/keys", None).await;
    assert_eq!(list[0]["public_key"], pk.as_str(), "{list}");
    let jwt = w.user_jwt("APP", "ulrich").await.unwrap();
    assert_eq!(jwt_subject(&jwt.jwt), pk);
    assert!(!jwt.seed_held_by_warden);
    assert!(
        w.creds("APP", "ulrich").await.is_err(),
        "creds for a key Warden has no seed of"
    );

    let (s, v) = api
        .call(
            M::DELETE,
            &format!("/v1/dir/users/ulrich/keys/{pk}?as=mallory"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let removed = api
        .ok(
            M::DELETE,
            &format!("/v1/dir/users/ulrich/keys/{pk}?as=ulrich"),
            None,
        )
        .await;
    assert_eq!(removed["reissued"][0]["revoked"], pk.as_str(), "{removed}");
    assert_eq!(
        api.ok(M::GET, "/v1/dir/users/ulrich/keys", None).await,
        json!([])
    );
    let back = w.user_jwt("APP", "ulrich").await.unwrap();
    assert!(back.seed_held_by_warden);
    assert_ne!(back.public_key, pk);
    assert!(w.creds("APP", "ulrich").await.is_ok());

    let doc = api.ok(M::GET, "/openapi.json", None).await;
    assert!(doc["paths"]["/v1/dir/users/{id}/keys"]["post"].is_object());
    assert!(doc["paths"]["/v1/dir/users/{id}/keys/{key}"]["delete"].is_object());
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    flow(start(&url).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_api_on_postgres() {
    let db = warden_testkit::PgDatabase::create().await;
    flow(start(db.url()).await).await;
}
