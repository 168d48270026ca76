//! The account model over `warden serve`'s HTTP API and its NATS service, against real
//! nats-server processes (2.9.10 and 2.15.x): mappings, exports, imports, signing keys,
//! users by role and user key rotation do what the CLI does (the account's spec after
//! an API change equals the spec after the same CLI change), bad input is 400 with the
//! CLI's error and changes nothing, a `read` token is refused changes (403) and creds
//! need `creds`. An import added over HTTP lets a request cross accounts on the server.

mod common;

use std::time::Duration;

use common::http::token;
use common::{Home, Serve, answered, connect, service_call};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// The account's spec and JWT, as `account show --json` prints them.
fn account(home: &Home, name: &str) -> Value {
    let v = home.json(&["account", "show", name]);
    json!({"spec": v["spec"], "jwt": v["jwt"]})
}

fn spec(home: &Home, name: &str) -> Value {
    home.json(&["account", "show", name])["spec"].clone()
}

/// The API, answering `(status, body)` as this test reads it.
struct Http(common::http::Http);

impl Http {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.0.send(method, path, token, body).await;
        (r.status, r.body)
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&["user", "add", "svc", "-a", "SHOP"]);
    home.ok(&["user", "add", "cli", "-a", "APP"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let serve = Serve::start(&home, &url);
    let http = Http(common::http::Http::new(&serve.base));
    let w = home.warden().await;
    let read = token(&home, "reader", "read");
    let write = token(&home, "writer", "write");
    let creds = token(&home, "issuer", "write,creds");
    let admin = token(&home, "admin", "admin");

    // --- Exports over HTTP ------------------------------------------------------------
    let export = json!({"subject": "orders.>", "type": "service"});
    let before = account(&home, "SHOP");
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/SHOP/exports",
            &read,
            Some(export.clone()),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "[{v}] {b}"
    );
    for bad in [
        json!({"subject": "orders..x", "type": "service"}),
        json!({"subject": "orders.>", "type": "service", "bogus": 1}),
        json!({"subject": "orders.>", "type": "neither"}),
    ] {
        let (s, b) = http
            .send(
                Method::POST,
                "/v1/accounts/SHOP/exports",
                &write,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{v}] {bad}: {b}");
    }
    assert_eq!(
        account(&home, "SHOP"),
        before,
        "[{v}] refused changes changed nothing"
    );
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/SHOP/exports",
            &write,
            Some(export),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "[{v}] {b}");
    assert_eq!(b["export"]["type"], "service", "[{v}] {b}");
    let by_http = spec(&home, "SHOP");
    // The same change through the CLI gives the same account.
    home.ok(&["account", "export", "rm", "SHOP", "--subject", "orders.>"]);
    home.ok(&[
        "account",
        "export",
        "add",
        "SHOP",
        "--subject",
        "orders.>",
        "--service",
    ]);
    assert_eq!(
        spec(&home, "SHOP"),
        by_http,
        "[{v}] HTTP and CLI exports agree"
    );
    // A second identical export: the ops' conflict, as the CLI gets it.
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/SHOP/exports",
            &write,
            Some(json!({"subject": "orders.>", "type": "service"})),
        )
        .await;
    assert!(s.is_client_error(), "[{v}] {s} {b}");
    let (s, b) = http
        .send(Method::GET, "/v1/accounts/SHOP/exports", &read, None)
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    assert_eq!(b.as_array().map(Vec::len), Some(1), "[{v}] {b}");

    // --- Import over HTTP, then a request crosses accounts on the server ---------------
    let before = account(&home, "APP");
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/APP/imports",
            &write,
            Some(json!({"from": "SHOP", "subject": "billing.x"})),
        )
        .await;
    assert!(
        s.is_client_error(),
        "[{v}] an import of a missing export: {s} {b}"
    );
    assert_eq!(account(&home, "APP"), before, "[{v}]");
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/APP/imports",
            &write,
            Some(json!({"from": "SHOP", "subject": "orders.>"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "[{v}] {b}");
    home.push(&url);
    let svc = connect(&url, &w.creds("SHOP", "svc").await.expect("svc creds"))
        .await
        .expect("svc");
    let mut sub = svc.client.subscribe("orders.>").await.expect("subscribe");
    svc.client.flush().await.expect("flush");
    let responder = tokio::spawn({
        let c = svc.client.clone();
        async move {
            while let Some(m) = sub.next().await {
                if let Some(reply) = m.reply {
                    let _ = c.publish(reply, "ok".into()).await;
                }
            }
        }
    });
    let cli = connect(&url, &w.creds("APP", "cli").await.expect("cli creds"))
        .await
        .expect("cli");
    let m = answered(&cli.client, "orders.new", WAIT).await;
    assert_eq!(
        &m.payload[..],
        b"ok",
        "[{v}] the import carries the request"
    );
    responder.abort();
    let (s, b) = http
        .send(
            Method::DELETE,
            "/v1/accounts/APP/imports?subject=orders.%3E",
            &write,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");

    // --- Export edit, activations, imports over the service -----------------------------
    let before = account(&home, "SHOP");
    let (s, b) = http
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP/exports?subject=orders.%3E",
            &write,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "[{v}] an empty edit: {b}");
    let (s, b) = http
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP/exports?subject=orders..x",
            &write,
            Some(json!({"private": true})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "[{v}] a bad subject: {b}");
    assert_eq!(account(&home, "SHOP"), before, "[{v}]");
    let (s, b) = http
        .send(
            Method::PATCH,
            "/v1/accounts/SHOP/exports?subject=orders.%3E",
            &write,
            Some(json!({"private": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    assert_eq!(b["export"]["token_req"], true, "[{v}] {b}");
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/SHOP/activations",
            &write,
            Some(json!({"subject": "orders.>", "target": "APP"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "[{v}] {b}");
    assert!(
        b["jwt"].as_str().is_some_and(|j| j.starts_with("ey")),
        "[{v}] {b}"
    );
    let w_backend = connect(
        &url,
        &w.creds("BACKEND", "backend").await.expect("backend creds"),
    )
    .await
    .expect("backend");
    let before = account(&home, "APP");
    let bad = service_call(
        &w_backend.client,
        "account.import.add",
        &json!({"account": "APP", "import": {"from": "SHOP", "subject": "orders.>", "bogus": true}}),
        WAIT,
    )
    .await
    .expect_err("an unknown import field");
    assert_eq!(bad.0, 400, "[{v}] {bad:?}");
    assert_eq!(account(&home, "APP"), before, "[{v}]");
    let imp = service_call(
        &w_backend.client,
        "account.import.add",
        &json!({"account": "APP", "import": {"from": "SHOP", "subject": "orders.>"}}),
        WAIT,
    )
    .await
    .expect("import of the private export");
    assert!(
        imp["import"]["token"].is_string(),
        "[{v}] the activation is embedded: {imp}"
    );
    let revoked = service_call(
        &w_backend.client,
        "account.activation.revoke",
        &json!({"account": "SHOP", "subject": "orders.>", "target": "APP"}),
        WAIT,
    )
    .await
    .expect("revoked");
    assert_eq!(revoked["target_account"], "APP", "[{v}] {revoked}");
    service_call(
        &w_backend.client,
        "account.import.remove",
        &json!({"account": "APP", "subject": "orders.>"}),
        WAIT,
    )
    .await
    .expect("import removed");
    let exports = service_call(
        &w_backend.client,
        "account.export.list",
        &json!({"account": "SHOP"}),
        WAIT,
    )
    .await
    .expect("exports");
    assert_eq!(exports[0]["importers"], json!([]), "[{v}] {exports}");

    // --- Mappings over the NATS service ------------------------------------------------
    let backend_creds = w.creds("BACKEND", "backend").await.expect("backend creds");
    let backend = connect(&url, &backend_creds).await.expect("backend");
    let before = account(&home, "APP");
    let bad = service_call(
        &backend.client,
        "account.mapping.add",
        &json!({"account": "APP", "from": "m.a", "to": [{"subject": "m.b", "weight": 120}]}),
        WAIT,
    )
    .await
    .expect_err("a weight over 100");
    assert_eq!(bad.0, 400, "[{v}] {bad:?}");
    let cli_err = home.fails(
        2,
        &[
            "account", "mapping", "add", "APP", "--from", "m.a", "--to", "m.b:120%",
        ],
    );
    assert!(!cli_err.is_empty(), "[{v}]");
    assert_eq!(account(&home, "APP"), before, "[{v}] nothing changed");
    service_call(
        &backend.client,
        "account.mapping.add",
        &json!({"account": "APP", "from": "m.a", "to": [{"subject": "m.b", "weight": 60}]}),
        WAIT,
    )
    .await
    .expect("mapping added");
    let by_service = spec(&home, "APP");
    home.ok(&["account", "mapping", "rm", "APP", "--from", "m.a"]);
    home.ok(&[
        "account", "mapping", "add", "APP", "--from", "m.a", "--to", "m.b:60%",
    ]);
    assert_eq!(
        spec(&home, "APP"),
        by_service,
        "[{v}] service and CLI mappings agree"
    );
    let listed = service_call(
        &backend.client,
        "account.mapping.list",
        &json!({"account": "APP"}),
        WAIT,
    )
    .await
    .expect("list");
    assert_eq!(listed["mappings"][0]["from"], "m.a", "[{v}] {listed}");
    // The same over HTTP: a remove by query.
    let (s, b) = http
        .send(
            Method::DELETE,
            "/v1/accounts/APP/mappings?from=m.a",
            &read,
            None,
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "[{v}]");
    let (s, b) = http
        .send(
            Method::DELETE,
            "/v1/accounts/APP/mappings?from=m.a",
            &write,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    assert_eq!(b["mappings"], json!([]), "[{v}] {b}");

    // --- Account edit: tags and info URL over HTTP ---------------------------------------
    let before = account(&home, "APP");
    let (s, b) = http
        .send(
            Method::PATCH,
            "/v1/accounts/APP",
            &write,
            Some(json!({"js_tier": "R9"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "[{v}] {b}");
    assert_eq!(account(&home, "APP"), before, "[{v}]");
    let (s, b) = http
        .send(
            Method::PATCH,
            "/v1/accounts/APP",
            &write,
            Some(json!({"add_tags": ["team:a"], "info_url": "https://example.com/app"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    let by_http = spec(&home, "APP");
    home.ok(&[
        "account",
        "edit",
        "APP",
        "--rm-tag",
        "team:a",
        "--info-url",
        "",
    ]);
    home.ok(&[
        "account",
        "edit",
        "APP",
        "--tag",
        "team:a",
        "--info-url",
        "https://example.com/app",
    ]);
    assert_eq!(
        spec(&home, "APP"),
        by_http,
        "[{v}] HTTP and CLI edits agree"
    );

    // --- Signing keys and a role's user over the service; rotation over HTTP -------------
    let before = account(&home, "APP");
    let bad = service_call(
        &backend.client,
        "account.signing_key.add",
        &json!({"account": "APP", "role": "dev", "template": {"pub": {"allow": ["a.>"]}, "bogus": 1}}),
        WAIT,
    )
    .await
    .expect_err("an unknown template field");
    assert_eq!(bad.0, 400, "[{v}] {bad:?}");
    assert_eq!(account(&home, "APP"), before, "[{v}]");
    // What only an operation can know is refused alike on every surface: a queue group
    // in a publish permission, a response max below 1, a limit below -1.
    for template in [
        json!({"pub": {"allow": ["a.> q"]}}),
        json!({"resp": {"max": 0, "ttl": 0}}),
        json!({"subs": -2}),
    ] {
        let bad = service_call(
            &backend.client,
            "account.signing_key.add",
            &json!({"account": "APP", "role": "dev", "template": template}),
            WAIT,
        )
        .await
        .expect_err("a template no server can use");
        assert_eq!(bad.0, 400, "[{v}] {template}: {bad:?}");
        let (s, b) = http
            .send(
                Method::POST,
                "/v1/accounts/APP/signing-keys",
                &admin,
                Some(json!({"role": "dev", "template": template})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "[{v}] {template}: {b}");
        assert_eq!(account(&home, "APP"), before, "[{v}] {template}");
    }
    for flags in [
        &["--allow-pub", "a.> q"][..],
        &["--allow-pub-response", "0"][..],
        &["--subs", "-2"][..],
    ] {
        let mut args = vec!["account", "signing-key", "add", "APP", "--role", "dev"];
        args.extend_from_slice(flags);
        home.fails(2, &args);
        assert_eq!(account(&home, "APP"), before, "[{v}] {flags:?}");
    }
    let added = service_call(
        &backend.client,
        "account.signing_key.add",
        &json!({"account": "APP", "role": "dev", "template": {"pub": {"allow": ["dev.>"]}, "sub": {"allow": ["dev.>", "_INBOX.>"]}}}),
        WAIT,
    )
    .await
    .expect("role added");
    assert_eq!(added["signing_key"]["role"], "dev", "[{v}] {added}");
    assert_eq!(
        added["signing_key"]["template"]["subs"], -1,
        "[{v}] {added}"
    );
    let user = service_call(
        &backend.client,
        "user.create",
        &json!({"account": "APP", "name": "dana", "role": "dev"}),
        WAIT,
    )
    .await
    .expect("role user");
    assert_eq!(user["role"], "dev", "[{v}] {user}");
    let (s, b) = http
        .send(
            Method::GET,
            "/v1/accounts/APP/users/dana/explain?direction=publish&subject=dev.x",
            &read,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    assert_eq!(b["allowed"], true, "[{v}] {b}");
    let keys = http
        .send(Method::GET, "/v1/accounts/APP/signing-keys", &read, None)
        .await;
    assert_eq!(keys.0, StatusCode::OK, "[{v}] {}", keys.1);
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/APP/signing-keys/dev/rotate",
            &read,
            None,
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "[{v}]");
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/APP/signing-keys/dev/rotate",
            &write,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    assert_eq!(b["reissued"], json!(["dana"]), "[{v}] {b}");

    // User key rotation hands out creds: write alone is refused, nothing changes.
    let before_user = home.json(&["user", "show", "cli", "-a", "APP"])["public_key"].clone();
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/APP/users/cli/rotate",
            &write,
            None,
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "[{v}] {b}"
    );
    assert_eq!(
        home.json(&["user", "show", "cli", "-a", "APP"])["public_key"],
        before_user
    );
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/accounts/APP/users/cli/rotate",
            &creds,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    let new_creds = b["creds"].as_str().expect("creds").to_string();
    assert_eq!(b["old_key"], before_user, "[{v}] {b}");
    home.push(&url);
    let rotated = connect(&url, &new_creds).await;
    assert!(rotated.is_ok(), "[{v}] the new creds connect");

    // The service's callers hold creds by default: user.rotate answers new creds.
    let r = service_call(
        &backend.client,
        "user.rotate",
        &json!({"account": "APP", "name": "cli"}),
        WAIT,
    )
    .await
    .expect("rotated over the service");
    assert!(
        r["creds"].as_str().is_some_and(|c| c.contains("NKEY SEED")),
        "[{v}] creds in the reply"
    );
    home.push(&url);
    let again = r["creds"].as_str().unwrap_or_default().to_string();
    assert!(
        connect(&url, &again).await.is_ok(),
        "[{v}] the service's new creds connect"
    );

    // --- Operator signing keys: reads for read, changes for admin only -------------------
    let (s, b) = http
        .send(Method::GET, "/v1/operator/signing-keys", &read, None)
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    let n = b["keys"].as_array().map(Vec::len).unwrap_or(0);
    let (s, b) = http
        .send(Method::POST, "/v1/operator/signing-keys", &creds, None)
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "[{v}] {b}"
    );
    let (s, b) = http
        .send(Method::POST, "/v1/operator/signing-keys", &admin, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "[{v}] {b}");
    let key = b["public_key"].as_str().expect("key").to_string();
    let (_, b) = http
        .send(Method::GET, "/v1/operator/signing-keys", &read, None)
        .await;
    assert_eq!(b["keys"].as_array().map(Vec::len), Some(n + 1), "[{v}] {b}");
    let (s, b) = http
        .send(
            Method::DELETE,
            &format!("/v1/operator/signing-keys/{key}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "[{v}] {b}");
    // The service runs without admin by default: refused.
    let refused = service_call(
        &backend.client,
        "operator.signing_key.add",
        &json!({}),
        WAIT,
    )
    .await
    .expect_err("no admin scope");
    assert_eq!(refused.0, 403, "[{v}] {refused:?}");
    // Rotation over HTTP asks the server `warden serve` talks to: started, then waiting
    // for that server (not restarted) to trust the new key; bad options change nothing.
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/operator/signing-keys/rotate",
            &admin,
            Some(json!({"timeout_ms": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "[{v}] {b}");
    let (_, keys) = http
        .send(Method::GET, "/v1/operator/signing-keys", &read, None)
        .await;
    assert!(keys["rotation"].is_null(), "[{v}] {keys}");
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/operator/signing-keys/rotate",
            &write,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "[{v}] {b}"
    );
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/operator/signing-keys/rotate",
            &admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, b["step"].as_str()),
        (StatusCode::OK, Some("started")),
        "[{v}] {b}"
    );
    let (s, b) = http
        .send(
            Method::POST,
            "/v1/operator/signing-keys/rotate",
            &admin,
            Some(json!({"timeout_ms": 3000})),
        )
        .await;
    assert_eq!(
        (s, b["step"].as_str()),
        (StatusCode::OK, Some("awaiting_trust")),
        "[{v}] {b}"
    );
    assert_eq!(b["changed"], false, "[{v}] {b}");
    assert!(
        b["servers"].as_array().is_some_and(|a| !a.is_empty()),
        "[{v}] the server was asked: {b}"
    );
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_model_over_http_and_nats_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_model_over_http_and_nats_2_15() {
    scenario(ServerLine::V2_15).await;
}

/// The OpenAPI document names the scope each new route's operation asks for.
#[test]
fn openapi_scopes_of_the_account_model() {
    let doc = warden::http::openapi::document();
    for (method, path, scope) in [
        ("get", "/v1/accounts/{account}/exports", "read"),
        ("post", "/v1/accounts/{account}/exports", "write"),
        ("patch", "/v1/accounts/{account}/exports", "write"),
        ("delete", "/v1/accounts/{account}/imports", "write"),
        ("post", "/v1/accounts/{account}/activations", "write"),
        ("post", "/v1/accounts/{account}/signing-keys", "write"),
        (
            "post",
            "/v1/accounts/{account}/users/{user}/rotate",
            "creds",
        ),
        ("get", "/v1/operator/signing-keys", "read"),
        ("post", "/v1/operator/signing-keys", "admin"),
        ("post", "/v1/operator/signing-keys/rotate", "admin"),
        ("delete", "/v1/operator/signing-keys/{key}", "admin"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["x-warden-scope"], scope,
            "{method} {path}"
        );
    }
}
