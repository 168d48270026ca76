//! The auth callout over `warden serve`'s HTTP API, its NATS service and its console,
//! against a real nats-server (2.15.x): set-up and authenticator changes need `admin`
//! (a `read,write` token is refused, 403, nothing changed), the sentinel's creds need
//! `creds`, an OIDC authenticator is added with its JWKS as JSON and listed without
//! secrets, an LDAP bind password is never answered, recorded or stored in clear, bad
//! input is 400 `invalid` with nothing changed, the NATS service answers the same
//! views, and the console shows the set-up (or how to make one).

mod common;

use std::time::Duration;

use common::callout::{Alg, Idp};
use common::http::{Http, Reply, token};
use common::pki::ca;
use common::{Home, Serve, connect, service_call};
use data_encoding::BASE64URL_NOPAD;
use reqwest::header::{CACHE_CONTROL, HeaderMap, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// An LDAP bind password that must appear nowhere Warden answers or records.
const PASSWORD: &str = "Bind-Pa55word-never-shown-7f3a";

impl Http {
    /// `POST /v1/callout/authenticators` with `body`.
    async fn add_authenticator(&self, token: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/v1/callout/authenticators",
            token,
            Some(body.clone()),
        )
        .await
    }

    /// `DELETE /v1/callout/authenticators/NAME`.
    async fn remove_authenticator(&self, token: &str, name: &str) -> Reply {
        let path = format!("/v1/callout/authenticators/{name}");
        self.send(Method::DELETE, &path, token, None).await
    }
}

/// A JWKS with one Ed25519 key (as an identity provider publishes it).
fn ed25519_jwks() -> Value {
    json!({"keys": [Idp::new().jwk(Alg::EdDsa)]})
}

/// The claims of the JWT in a creds file.
fn creds_claims(creds: &str) -> Value {
    let jwt = creds
        .lines()
        .skip_while(|l| !l.contains("BEGIN NATS USER JWT"))
        .nth(1)
        .expect("a JWT in the creds");
    let payload = jwt.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(
        &BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .expect("base64url"),
    )
    .expect("JSON claims")
}

/// Every file of the data directory (the database and its journal), as bytes.
fn data_files(home: &Home) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(home.data_dir())
        .expect("data dir")
        .flatten()
    {
        if entry.path().is_file() {
            out.push((
                entry.file_name().to_string_lossy().to_string(),
                std::fs::read(entry.path()).expect("readable"),
            ));
        }
    }
    out
}

fn ledger_events(home: &Home) -> u64 {
    home.json(&["status"])["ledger_events"]
        .as_u64()
        .expect("ledger_events")
}

/// A console session signed in with `token` (form sign-in with its CSRF cookie).
struct Console {
    base: String,
    client: reqwest::Client,
    session: String,
}

fn cookie_value(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

impl Console {
    async fn sign_in(base: &str, token: &str) -> Console {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(WAIT)
            .build()
            .expect("client");
        let page = client
            .get(format!("{base}/console/login"))
            .send()
            .await
            .expect("login page");
        let login = cookie_value(page.headers(), "warden_console_login");
        let html = page.text().await.expect("html");
        let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        let csrf = html[at..].split('"').next().expect("csrf").to_string();
        let res = client
            .post(format!("{base}/console/login"))
            .header("cookie", format!("warden_console_login={login}"))
            .header("content-type", "application/x-www-form-urlencoded")
            // Both are base32 (after `wdn_`): nothing to percent-encode.
            .body(format!("token={token}&csrf={csrf}"))
            .send()
            .await
            .expect("sign in");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "signed in");
        Console {
            base: base.to_string(),
            session: cookie_value(res.headers(), "warden_console"),
            client,
        }
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("warden_console={}", self.session))
            .send()
            .await
            .expect("console page");
        (r.status(), r.text().await.expect("html"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callout_over_http_the_nats_service_and_the_console() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "SHOP"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    home.push(&url);
    let serve = Serve::start(&home, &url);
    let http = Http {
        base: serve.base.clone(),
        client: reqwest::Client::new(),
    };
    let read = token(&home, "reader", "read");
    let rw = token(&home, "writer", "read,write");
    let creds = token(&home, "issuer", "creds");
    let admin = token(&home, "admin", "admin");

    // --- Before set-up: 404, and the console says how to set it up ----------------------
    http.get("/v1/callout", &read).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        "GET /v1/callout before set-up",
    );
    let console = Console::sign_in(&serve.base, &read).await;
    let (status, html) = console.page("/console/callout").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-state=\"not-set-up\""), "{html}");
    assert!(html.contains("warden callout setup"), "{html}");
    assert!(
        html.contains("href=\"/console/callout\" aria-current=\"page\""),
        "the page is in the navigation: {html}"
    );
    let (_, overview) = console.page("/console").await;
    assert!(
        overview.contains("href=\"/console/callout\""),
        "linked from every page"
    );

    // --- Set-up: admin only; refused set-ups change nothing ----------------------------
    let setup = json!({"allowed_accounts": ["SHOP"], "ttl_secs": 900, "xkey": true, "server_version": "2.15.1"});
    let events = ledger_events(&home);
    http.send(Method::PUT, "/v1/callout", &rw, Some(setup.clone()))
        .await
        .refused(StatusCode::FORBIDDEN, "forbidden", "set-up with read,write");
    for bad in [
        json!({"server_version": "2.9.10"}),
        json!({"ttl_secs": 5}),
        json!({"allowed_accounts": ["NOPE"]}),
    ] {
        let r = http
            .send(Method::PUT, "/v1/callout", &admin, Some(bad.clone()))
            .await;
        assert!(r.status.is_client_error(), "{bad}: {} {}", r.status, r.text);
    }
    http.send(
        Method::PUT,
        "/v1/callout",
        &admin,
        Some(json!({"bogus": 1})),
    )
    .await
    .refused(StatusCode::BAD_REQUEST, "invalid_json", "an unknown field");
    assert_eq!(
        http.get("/v1/callout", &read).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ledger_events(&home),
        events,
        "refused set-ups recorded nothing"
    );

    let r = http
        .send(Method::PUT, "/v1/callout", &admin, Some(setup))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let view = r.body;
    assert_eq!(view["account"], "AUTH", "{view}");
    assert_eq!(view["allowed_accounts"], json!(["SHOP"]), "{view}");
    assert_eq!(view["ttl_secs"], 900, "{view}");
    assert!(
        view["xkey"].as_str().is_some_and(|x| x.starts_with('X')),
        "{view}"
    );
    assert_eq!(view["authenticators"], json!([]), "{view}");
    let r = http.get("/v1/callout", &read).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::OK, &view),
        "GET shows the set-up"
    );
    // What the callout would decide: a refusal is an answer, with its code.
    let r = http
        .get("/v1/callout/explain/nobody@example.com", &read)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["allowed"], false, "{}", r.text);
    assert_eq!(r.body["code"], "unknown_user", "{}", r.text);

    // --- The sentinel's creds: `creds` only, never cached ------------------------------
    for (refused, scopes) in [(&rw, "read,write"), (&read, "read")] {
        let r = http.get("/v1/callout/sentinel", refused).await;
        r.refused(StatusCode::FORBIDDEN, "forbidden", scopes);
        assert!(!r.text.contains("NKEY SEED"), "{}", r.text);
    }
    let r = http.get("/v1/callout/sentinel", &creds).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.headers.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let sentinel = r.body["creds"].as_str().expect("creds").to_string();
    assert!(sentinel.contains("NKEY SEED"), "a creds file");
    let claims = creds_claims(&sentinel);
    assert_eq!(claims["sub"], view["sentinel_key"], "{claims}");
    assert_eq!(claims["iss"], view["account_key"], "{claims}");

    // --- An OIDC authenticator with its JWKS as JSON ------------------------------------
    let oidc = json!({
        "kind": "oidc", "name": "idp", "issuer": "https://idp.example.com",
        "audience": "nats", "jwks": ed25519_jwks(),
    });
    http.add_authenticator(&rw, &oidc).await.refused(
        StatusCode::FORBIDDEN,
        "forbidden",
        "oidc with read,write",
    );
    let r = http.add_authenticator(&admin, &oidc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["kind"], "oidc", "{}", r.text);
    assert_eq!(r.body["position"], 1, "{}", r.text);
    assert_eq!(r.body["has_secret"], false, "{}", r.text);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("https://idp.example.com") && d.contains("sub")),
        "the default user claim: {}",
        r.text
    );
    let r = http.get("/v1/callout/authenticators", &read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.body.as_array().expect("a list").clone();
    assert_eq!(list.len(), 1, "{}", r.text);
    assert_eq!(list[0]["name"], "idp");
    assert!(
        !r.text.contains("\"keys\""),
        "no JWKS in the list: {}",
        r.text
    );

    // --- An LDAP authenticator with a bind password: never shown, recorded or in clear --
    let ldap = json!({
        "kind": "ldap", "name": "corp", "url": "ldap://127.0.0.1:3890",
        "base": "ou=people,dc=example,dc=org", "bind_dn": "cn=search,dc=example,dc=org",
        "password": PASSWORD,
    });
    let r = http.add_authenticator(&rw, &ldap).await;
    r.refused(StatusCode::FORBIDDEN, "forbidden", "ldap with read,write");
    assert!(!r.text.contains(PASSWORD), "{}", r.text);
    let r = http.add_authenticator(&admin, &ldap).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.contains(PASSWORD), "{}", r.text);
    assert_eq!(r.body["has_secret"], true, "{}", r.text);
    assert_eq!(r.body["position"], 2, "{}", r.text);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(uid={user})")),
        "the default filter: {}",
        r.text
    );
    // An mTLS authenticator put first.
    let (ca_pem, _) = ca("Callout test CA");
    let r = http
        .add_authenticator(
            &admin,
            &json!({"kind": "mtls", "name": "certs", "ca_pem": ca_pem, "map": "san", "position": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = http.get("/v1/callout", &read).await;
    let names: Vec<&str> = r.body["authenticators"]
        .as_array()
        .expect("authenticators")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["certs", "idp", "corp"], "{}", r.text);
    for path in ["/v1/callout", "/v1/callout/authenticators"] {
        let r = http.get(path, &read).await;
        assert!(!r.text.contains(PASSWORD), "{path}: {}", r.text);
    }
    let r = http.get("/v1/ledger?limit=1000", &read).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("callout.auth.add") && !r.text.contains(PASSWORD),
        "the ledger records the change, not the password"
    );
    let audit = home.ok(&["--json", "audit", "list", "--limit", "100000"]);
    assert!(audit.contains("callout.auth.add") && !audit.contains(PASSWORD));
    for (name, bytes) in data_files(&home) {
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "the password is in {name} in clear"
        );
    }

    // --- Bad input: 400 `invalid`, nothing changed --------------------------------------
    let before = http.get("/v1/callout", &read).await.body;
    let events = ledger_events(&home);
    // Bodies that fit a kind's fields with values it refuses are `invalid`; a body that
    // does not fit its kind's fields (a password for OIDC, a missing field) is
    // `invalid_json`; a name already used is a conflict.
    let (invalid, invalid_json) = (
        (StatusCode::BAD_REQUEST, "invalid"),
        (StatusCode::BAD_REQUEST, "invalid_json"),
    );
    for (bad, (status, code)) in [
        (
            json!({"kind": "oidc", "name": "bad", "issuer": "https://i", "audience": "a", "jwks": {"keys": []}}),
            invalid,
        ),
        (
            json!({"kind": "oidc", "name": "bad", "issuer": "https://i", "audience": "a",
                   "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            invalid,
        ),
        (
            json!({"kind": "oidc", "name": "bad", "issuer": "https://i", "audience": "a", "jwks": "not json"}),
            invalid,
        ),
        (json!({"kind": "kerberos", "name": "bad"}), invalid),
        (
            json!({"kind": "oidc", "name": " ", "issuer": "https://i", "audience": "a", "jwks": ed25519_jwks()}),
            invalid,
        ),
        (
            json!({"kind": "oidc", "name": "", "issuer": "https://i", "audience": "a", "jwks": ed25519_jwks()}),
            invalid,
        ),
        (
            json!({"kind": "ldap", "name": "bad", "url": "http://x", "base": "dc=x"}),
            invalid,
        ),
        (
            json!({"kind": "ldap", "name": "bad", "url": "ldap://x", "base": "dc=x", "password": PASSWORD}),
            invalid,
        ),
        (
            json!({"kind": "mtls", "name": "bad", "ca_pem": "not a certificate"}),
            invalid,
        ),
        (
            json!({"kind": "oidc", "name": "bad", "issuer": "https://i", "audience": "a", "jwks": ed25519_jwks(), "password": PASSWORD}),
            invalid_json,
        ),
        (
            json!({"kind": "oidc", "name": "bad", "issuer": "https://i", "audience": "a"}),
            invalid_json,
        ),
        (json!({"name": "bad"}), invalid_json),
        (
            json!({"kind": "oidc", "name": "idp", "issuer": "https://i", "audience": "a", "jwks": ed25519_jwks()}),
            (StatusCode::CONFLICT, "conflict"),
        ),
    ] {
        let r = http.add_authenticator(&admin, &bad).await;
        r.refused(status, code, &bad.to_string());
        assert!(!r.text.contains(PASSWORD), "{}", r.text);
    }
    assert_eq!(
        http.get("/v1/callout", &read).await.body,
        before,
        "nothing changed"
    );
    assert_eq!(ledger_events(&home), events, "nothing recorded");

    // --- The console shows it, without secrets ------------------------------------------
    let (status, html) = console.page("/console/callout").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-state=\"set-up\""), "{html}");
    for shown in [
        view["account_key"].as_str().expect("key"),
        view["sentinel_key"].as_str().expect("key"),
        view["responder_key"].as_str().expect("key"),
        view["xkey"].as_str().expect("xkey"),
        "id=\"authenticator-idp\"",
        "id=\"authenticator-corp\"",
        "id=\"authenticator-certs\"",
        "15 min",
        "/console/accounts/SHOP",
    ] {
        assert!(html.contains(shown), "{shown} on the page: {html}");
    }
    assert!(!html.contains(PASSWORD), "{html}");
    assert!(
        !html.contains("<form method=\"post\" action=\"/console/callout"),
        "read-only"
    );

    // --- Removal: admin only --------------------------------------------------------------
    http.remove_authenticator(&rw, "corp").await.refused(
        StatusCode::FORBIDDEN,
        "forbidden",
        "removal with read,write",
    );
    let r = http.remove_authenticator(&admin, "corp").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "corp", "{}", r.text);
    http.remove_authenticator(&admin, "corp").await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        "removed twice",
    );
    let r = http.get("/v1/callout/authenticators", &read).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(2), "{}", r.text);

    // --- The NATS service answers the same views ------------------------------------------
    let w = home.warden().await;
    let backend = connect(
        &url,
        &w.creds("BACKEND", "backend").await.expect("backend creds"),
    )
    .await
    .expect("backend");
    let status = service_call(&backend.client, "callout.status", &json!({}), WAIT)
        .await
        .expect("callout.status");
    assert_eq!(status, http.get("/v1/callout", &read).await.body);
    let list = service_call(&backend.client, "callout.auth.list", &json!({}), WAIT)
        .await
        .expect("callout.auth.list");
    assert_eq!(
        list,
        http.get("/v1/callout/authenticators", &read).await.body
    );
    let explained = service_call(
        &backend.client,
        "callout.explain",
        &json!({"login": "nobody"}),
        WAIT,
    )
    .await
    .expect("callout.explain");
    assert_eq!(
        explained,
        http.get("/v1/callout/explain/nobody", &read).await.body
    );
    assert_eq!(explained["code"], "unknown_user", "{explained}");
    // The service's callers hold read, write and creds by default: the sentinel, yes;
    // set-up and authenticator changes (admin), no.
    let s = service_call(&backend.client, "callout.sentinel", &json!({}), WAIT)
        .await
        .expect("callout.sentinel");
    assert_eq!(
        creds_claims(s["creds"].as_str().expect("creds"))["sub"],
        view["sentinel_key"]
    );
    let events = ledger_events(&home);
    for (op, body, code, why) in [
        (
            "callout.setup",
            json!({"ttl_secs": 600}),
            403,
            "no admin scope",
        ),
        (
            "callout.auth.add",
            json!({"kind": "oidc", "name": "idp2", "issuer": "https://i", "audience": "a", "jwks": ed25519_jwks()}),
            403,
            "no admin scope",
        ),
        (
            "callout.auth.remove",
            json!({"name": "idp"}),
            403,
            "no admin scope",
        ),
        (
            "callout.auth.add",
            json!({"kind": "kerberos", "name": "x"}),
            400,
            "an unknown kind",
        ),
        (
            "callout.status",
            json!({"bogus": 1}),
            400,
            "an unknown field",
        ),
    ] {
        let e = service_call(&backend.client, op, &body, WAIT)
            .await
            .expect_err(why);
        assert_eq!(e.0, code, "{op} ({why}): {e:?}");
    }
    assert_eq!(
        ledger_events(&home),
        events,
        "refused service calls recorded nothing"
    );
    drop(serve);
}

/// The OpenAPI document lists the callout's routes with the scope their operations ask.
#[test]
fn openapi_documents_the_callout_routes_and_their_scopes() {
    let doc = warden::http::openapi::document();
    for (method, path, scope) in [
        ("get", "/v1/callout", "read"),
        ("put", "/v1/callout", "admin"),
        ("get", "/v1/callout/sentinel", "creds"),
        ("get", "/v1/callout/authenticators", "read"),
        ("post", "/v1/callout/authenticators", "admin"),
        ("delete", "/v1/callout/authenticators/{name}", "admin"),
        ("get", "/v1/callout/explain/{login}", "read"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["x-warden-scope"], scope,
            "{method} {path}"
        );
        assert!(
            warden::http::openapi::ROUTES
                .iter()
                .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
            "{method} {path} in ROUTES"
        );
    }
    let new = &doc["components"]["schemas"]["NewAuthenticator"];
    assert_eq!(new["oneOf"].as_array().map(Vec::len), Some(3), "{new}");
    assert_eq!(
        doc["components"]["schemas"]["CalloutSetup"]["additionalProperties"],
        false
    );
}
