//! Identity governance over the HTTP API (`/v1/dir…`, `/v1/proposals…`), on SQLite and
//! on PostgreSQL: a real store, a real listener on 127.0.0.1:0, real requests. The
//! approval rule answers 403 `refused` and changes nothing; a confirmed proposal gives
//! the user a NATS user with the task's grants (compiled into its JWT); batch approval,
//! rejection, `explain` and the inbox (`to_approve`). ADD_KEY (`/v1/dir/users/{id}/keys…`):
//! registering needs `admin` for an operator's token (`403 forbidden` without), a seed or
//! a non-user key is `400 invalid` (the seed not echoed), someone else's key
//! `403 refused`, all with nothing changed; the user's NATS user is issued for the
//! registered key and goes back to a generated key when the key is removed.
//! Tokens bound to a directory user act as that user only (`as` naming anyone else is
//! `403 forbidden`), on the governance routes only.

use nats_jwt::{KeyKind, KeyPair, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden::http::{self, HttpState};
use warden_ops::tokens::{self, Scope};
use warden_ops::{InitOptions, Settings, Warden};
use warden_store::{MasterKey, Store};

/// `<name>::on_sqlite` and `<name>::on_postgres`: `flow` against an API on a fresh store of
/// each kind.
macro_rules! on_both_stores {
    ($name:ident, $flow:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("warden.db").display());
                super::$flow(super::start(&url).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let db = warden_testkit::PgDatabase::create().await;
                super::$flow(super::start(db.url()).await).await;
            }
        }
    };
}

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
    let mut w = Warden::open(store.clone(), warden_ops::Actor::operator("test"))
        .await
        .unwrap();
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
        self.call_with(&self.token, method, path, body).await
    }

    /// [`Api::call`] with another bearer token.
    async fn call_with(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
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

async fn flow(api: Api) {
    use Method as M;
    // The first user (no `as`: the operator) becomes a system administrator.
    let admin = api
        .ok(
            M::POST,
            "/v1/dir/users",
            Some(json!({"user": {"id": "admin", "name": "Ada"}})),
        )
        .await;
    assert_eq!(admin["sysadmin"], true);
    for (id, manager) in [
        ("olivia", None),
        ("ulrich", Some("olivia")),
        ("mallory", None),
    ] {
        api.ok(
            M::POST,
            "/v1/dir/users",
            Some(json!({"as": "admin", "user": {"id": id, "name": id, "manager": manager}})),
        )
        .await;
    }
    let (s, v) = api
        .call(
            M::POST,
            "/v1/dir/users",
            Some(json!({"user": {"id": "Bad Name"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api
        .call(
            M::POST,
            "/v1/dir/users",
            Some(json!({"as": "mallory", "user": {"id": "eve"}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("refused")),
        "{v}"
    );

    api.ok(
        M::POST,
        "/v1/dir/tasks",
        Some(json!({"as": "admin", "name": "orders", "account": "APP", "owners": ["admin"],
            "grants": {"allow_pub": ["orders.>"], "deny_pub": ["orders.secret"], "allow_sub": ["_INBOX.>"]}})),
    )
    .await;
    let (s, v) = api
        .call(
            M::POST,
            "/v1/dir/tasks",
            Some(json!({"name": "bad", "account": "APP", "owners": ["admin"], "grants": {"allow_pub": ["a..b"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    api.ok(
        M::POST,
        "/v1/dir/roles",
        Some(json!({"as": "olivia", "name": "sales", "owners": ["olivia"]})),
    )
    .await;

    let p = api
        .ok(
            M::POST,
            "/v1/proposals",
            Some(json!({"as": "olivia", "kind": "role-task", "change": "add", "object": "sales", "related": "orders"})),
        )
        .await;
    let task_p = p["id"].as_str().unwrap().to_string();
    let p = api
        .ok(
            M::POST,
            "/v1/proposals",
            Some(json!({"as": "ulrich", "kind": "role-member", "change": "add", "object": "sales", "related": "ulrich", "reason": "q4"})),
        )
        .await;
    let member_p = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["message"], "PROPOSE_ADD_ROLE_MEMBER");
    let (s, _) = api
        .call(M::POST, "/v1/proposals", Some(json!({"kind": "role-member", "change": "add", "object": "sales", "related": "mallory"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "`as` is required");

    // The inbox: olivia approves the membership, admin the task.
    let inbox = api
        .ok(M::GET, "/v1/proposals?as=olivia&to_approve=true", None)
        .await;
    let ids: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![member_p.as_str()]);
    let inbox = api
        .ok(M::GET, "/v1/proposals?as=admin&to_approve=true", None)
        .await;
    assert_eq!(
        inbox.as_array().unwrap().len(),
        2,
        "a system administrator may approve all"
    );

    // Unauthorised: 403 refused, nothing written.
    let before = api.store.counts().await.unwrap();
    let (s, v) = api
        .call(
            M::POST,
            &format!("/v1/proposals/{member_p}/confirm"),
            Some(json!({"as": "mallory"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("refused")),
        "{v}"
    );
    let after = api.store.counts().await.unwrap();
    assert_eq!(before.ledger_events, after.ledger_events);
    assert_eq!(before.users, after.users);

    // Batch: the task into the role (admin), then the membership (olivia).
    let r = api
        .ok(
            M::POST,
            "/v1/proposals/confirm",
            Some(json!({"as": "admin", "ids": [task_p, "p404"]})),
        )
        .await;
    assert_eq!(
        (r[0]["ok"].as_bool(), r[1]["ok"].as_bool()),
        (Some(true), Some(false)),
        "{r}"
    );
    let c = api
        .ok(
            M::POST,
            &format!("/v1/proposals/{member_p}/confirm"),
            Some(json!({"as": "olivia", "justification": "ok"})),
        )
        .await;
    assert_eq!(c["status"], "confirmed");
    assert_eq!(c["reissued"][0]["user"], "ulrich");

    // ulrich's NATS user in APP carries the compiled grants in its JWT.
    let u = api.ok(M::GET, "/v1/dir/users/ulrich", None).await;
    assert_eq!(u["nats_accounts"], json!(["APP"]), "{u}");
    let nats_user = api.ok(M::GET, "/v1/accounts/APP/users/ulrich", None).await;
    let jwt = nats_user["jwt"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap();
    let perms = &claims["nats"];
    assert_eq!(perms["pub"]["allow"], json!(["orders.>"]), "{claims}");
    assert_eq!(perms["pub"]["deny"], json!(["orders.secret"]), "{claims}");
    assert_eq!(perms["sub"]["allow"], json!(["_INBOX.>"]), "{claims}");

    let ex = api
        .ok(
            M::GET,
            "/v1/dir/users/ulrich/explain?subject=orders.new&account=APP",
            None,
        )
        .await;
    assert_eq!(ex[0]["allowed"], true, "{ex}");
    assert_eq!(ex[0]["allowed_by"][0]["task"], "orders");

    // Rejection needs a reason; the role shows the member and task.
    let p = api
        .ok(
            M::POST,
            "/v1/proposals",
            Some(json!({"as": "mallory", "kind": "role-member", "change": "add", "object": "sales", "related": "mallory"})),
        )
        .await;
    let id = p["id"].as_str().unwrap();
    let (s, _) = api
        .call(
            M::POST,
            &format!("/v1/proposals/{id}/reject"),
            Some(json!({"as": "olivia"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let r = api
        .ok(
            M::POST,
            &format!("/v1/proposals/{id}/reject"),
            Some(json!({"as": "olivia", "reason": "no"})),
        )
        .await;
    assert_eq!(r["status"], "rejected");
    let role = api.ok(M::GET, "/v1/dir/roles/sales", None).await;
    assert_eq!(role["role"]["members"], json!(["ulrich"]), "{role}");
    assert_eq!(role["tasks"], json!(["orders"]), "{role}");
    let mine = api
        .ok(M::GET, "/v1/proposals?as=mallory&mine=true", None)
        .await;
    assert_eq!(mine[0]["status"], "rejected");
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
}

on_both_stores!(governance_api, flow);

/// A directory sync through the operations layer: imported users and roles; a task
/// granted to an imported role by proposal reaches its members' NATS users; the
/// upstream dropping a member shrinks that user to deny-all; deleting a user upstream
/// revokes and removes their NATS user; re-applying a plan changes nothing.
async fn sync_flow(api: Api) {
    use warden_core::directory::{NextRole, NextUser, SyncPlan};
    use warden_core::governance::{Change, ProposalKind, TaskGrants};
    let w = Warden::open(api.store.clone(), warden_ops::Actor::operator("test"))
        .await
        .unwrap();
    let user = |id: &str| NextUser {
        id: id.into(),
        user_id: Some(format!("guid-{id}")),
        name: Some(id.to_uppercase()),
        ..Default::default()
    };
    let role = |members: &[&str]| NextRole {
        name: "eng".into(),
        role_id: Some("guid-eng".into()),
        members: members.iter().map(|m| m.to_string()).collect(),
        owners: vec!["lead".into()],
        ..Default::default()
    };
    let plan = SyncPlan {
        source: "ldap:corp".into(),
        create_users: vec![
            user("lead"),
            user("dev_a"),
            user("dev_b"),
            user("Not Valid"),
        ],
        create_roles: vec![role(&["dev_a", "dev_b"])],
        ..Default::default()
    };
    let r = w.apply_sync_plan(&plan).await.unwrap();
    assert_eq!((r.users_created, r.roles_created), (3, 1), "{r:?}");
    assert!(r.skipped.iter().any(|s| s.key == "Not Valid"), "{r:?}");
    let again = w.apply_sync_plan(&plan).await.unwrap();
    assert_eq!(
        again.users_created + again.users_updated + again.roles_created + again.roles_updated,
        0,
        "{again:?}"
    );
    assert_eq!(
        w.directory_snapshot("ldap:corp").await.unwrap().users.len(),
        3
    );

    // The first directory user (an import) is not made a system administrator: the
    // operator adds one.
    w.dir_user_add(
        None,
        NextUser {
            id: "root".into(),
            ..Default::default()
        },
        true,
    )
    .await
    .unwrap();
    w.task_create(
        None,
        "eng-pub",
        "APP",
        TaskGrants {
            allow_pub: vec![nats_jwt::Subject::new("eng.>").unwrap()],
            ..Default::default()
        },
        &["root".to_string()],
        None,
    )
    .await
    .unwrap();
    let p = w
        .propose(
            "lead",
            warden_ops::governance::ProposalInput {
                kind: ProposalKind::RoleTask,
                change: Change::Add,
                object: "eng".into(),
                related: "eng-pub".into(),
                reason: None,
                grant_expires_at: None,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    let c = w.confirm("root", &p.id, None).await.unwrap();
    let mut got: Vec<&str> = c.reissued.iter().map(|r| r.user.as_str()).collect();
    got.sort();
    assert_eq!(got, vec!["dev_a", "dev_b", "lead"], "members and the owner");

    // Upstream drops dev_b from eng: re-issued with nothing allowed.
    let dev_b_key = w.user("APP", "dev_b").await.unwrap().public_key;
    w.apply_sync_plan(&SyncPlan {
        source: "ldap:corp".into(),
        update_roles: vec![role(&["dev_a"])],
        ..Default::default()
    })
    .await
    .unwrap();
    let dev_b = w.user("APP", "dev_b").await.unwrap();
    assert_ne!(dev_b.public_key, dev_b_key);
    assert_eq!(dev_b.spec.permissions, warden_core::governance::deny_all());
    let acc = w.account("APP").await.unwrap();
    assert!(acc.spec.revocations.contains_key(&dev_b_key));

    // Upstream deletes dev_a: their NATS user is revoked and removed.
    let dev_a_key = w.user("APP", "dev_a").await.unwrap().public_key;
    let r = w
        .apply_sync_plan(&SyncPlan {
            source: "ldap:corp".into(),
            delete_users: vec!["dev_a".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.users_deleted, 1);
    assert!(w.user("APP", "dev_a").await.is_err());
    assert!(
        w.account("APP")
            .await
            .unwrap()
            .spec
            .revocations
            .contains_key(&dev_a_key)
    );
    let events = api.store.ledger(0, 10_000).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.action == "dir.sync").count(), 4);
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
}

on_both_stores!(directory_sync, sync_flow);

// ---------------------------------------------------------------------------------------
// ADD_KEY
// ---------------------------------------------------------------------------------------

fn jwt_subject(jwt: &str) -> String {
    nats_jwt::decode::<User>(jwt).expect("user JWT").sub
}

async fn keys_flow(api: Api) {
    use Method as M;
    let w = Warden::open(api.store.clone(), warden_ops::Actor::operator("test"))
        .await
        .unwrap();
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
    // Registering a key gives its holder a NATS user: an operator's token needs `admin`
    // (nothing proves it speaks for the user), so the read,write token is refused.
    let (_, admin) = tokens::create_token(&api.store, "test", "admin", &[Scope::Admin], None)
        .await
        .unwrap();
    let (s, v) = api
        .call(
            M::POST,
            "/v1/dir/users/ulrich/keys",
            Some(json!({"as": "ulrich", "public_key": pk})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{v}"
    );
    let events_before = api.store.verify_ledger().await.unwrap();
    for bad in [
        seed.expose().to_string(),
        KeyPair::generate(KeyKind::Account).public_key().to_string(),
        "UNOTAKEY".to_string(),
    ] {
        let (s, v) = api
            .call_with(
                &admin,
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
        .call_with(
            &admin,
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
        .call_with(
            &admin,
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
    assert_eq!(jwt_subject(jwt.jwt.as_deref().unwrap()), pk);
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

on_both_stores!(keys_api, keys_flow);

/// Tokens bound to a directory user: the approval rules hold against the holder. Naming
/// someone else in `as` is 403 `forbidden` with nothing written; without `as` the token
/// acts as its user (recorded as initiator and closer); other routes are closed to it; a
/// token for an unknown user is not created.
async fn bound_token_flow(api: Api) {
    use Method as M;
    api.ok(
        M::POST,
        "/v1/dir/users",
        Some(json!({"user": {"id": "admin", "name": "Ada"}})),
    )
    .await;
    for id in ["olivia", "mallory"] {
        api.ok(
            M::POST,
            "/v1/dir/users",
            Some(json!({"as": "admin", "user": {"id": id, "name": id}})),
        )
        .await;
    }
    api.ok(
        M::POST,
        "/v1/dir/roles",
        Some(json!({"as": "olivia", "name": "sales", "owners": ["olivia"]})),
    )
    .await;

    let tokens_before = tokens::list_tokens(&api.store).await.unwrap().len();
    let unknown = tokens::create_dir_user_token(&api.store, "test", "x", "nobody", None).await;
    assert!(
        matches!(unknown, Err(tokens::TokenError::UnknownDirUser(ref u)) if u == "nobody"),
        "{unknown:?}"
    );
    assert_eq!(
        tokens::list_tokens(&api.store).await.unwrap().len(),
        tokens_before
    );
    let (info, mallory) =
        tokens::create_dir_user_token(&api.store, "test", "mallory's", "mallory", None)
            .await
            .unwrap();
    assert_eq!(info.dir_user.as_deref(), Some("mallory"));
    assert_eq!(info.scopes, [Scope::Read, Scope::Write, Scope::Creds]);
    let (_, olivia) = tokens::create_dir_user_token(&api.store, "test", "olivia's", "olivia", None)
        .await
        .unwrap();

    // Without `as`, mallory's token proposes as mallory.
    let p = api
        .call_with(
            &mallory,
            M::POST,
            "/v1/proposals",
            Some(json!({"kind": "role-member", "change": "add", "object": "sales", "related": "mallory"})),
        )
        .await;
    assert_eq!(p.0, StatusCode::CREATED, "{}", p.1);
    assert_eq!(p.1["initiator"], "mallory", "{}", p.1);
    let id = p.1["id"].as_str().unwrap().to_string();

    // Claiming to be the role's owner: forbidden, nothing written.
    let before = api.store.counts().await.unwrap();
    for body in [
        json!({"as": "olivia"}),
        json!({"as": "admin", "justification": "trust me"}),
    ] {
        let (s, v) = api
            .call_with(
                &mallory,
                M::POST,
                &format!("/v1/proposals/{id}/confirm"),
                Some(body),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("acts as directory user mallory only"),
            "{v}"
        );
    }
    // As itself, the approval rule refuses: mallory does not own the role.
    let (s, v) = api
        .call_with(
            &mallory,
            M::POST,
            &format!("/v1/proposals/{id}/confirm"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("refused")),
        "{v}"
    );
    let (s, v) = api
        .call_with(
            &mallory,
            M::GET,
            "/v1/proposals?as=olivia&to_approve=true",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let after = api.store.counts().await.unwrap();
    assert_eq!(before.ledger_events, after.ledger_events);

    // Outside governance: closed, for reading and writing alike.
    for (method, path, body) in [
        (M::GET, "/v1/accounts", None),
        (M::POST, "/v1/accounts", Some(json!({"name": "EVIL"}))),
        (M::GET, "/v1/ledger", None),
    ] {
        let (s, v) = api.call_with(&mallory, method, path, body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{path}: {v}"
        );
    }
    assert_eq!(
        api.store.counts().await.unwrap().ledger_events,
        after.ledger_events
    );

    // The owner's own token confirms, recorded as the owner.
    let inbox = api
        .call_with(&olivia, M::GET, "/v1/proposals?to_approve=true", None)
        .await;
    assert_eq!(inbox.1[0]["id"], id.as_str(), "{}", inbox.1);
    let (s, c) = api
        .call_with(
            &olivia,
            M::POST,
            &format!("/v1/proposals/{id}/confirm"),
            Some(json!({"as": "olivia", "justification": "ok"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "confirmed");
    assert_eq!(c["closer"], "olivia");
    assert!(api.store.verify_ledger().await.unwrap().is_intact());
}

on_both_stores!(bound_tokens, bound_token_flow);
