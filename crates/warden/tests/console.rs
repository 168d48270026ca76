//! The web console (`/console` of `warden serve`).
//!
//! - Plain HTTP (reqwest, no browser) against `warden::http::serve` over a real SQLite
//!   store: sign-in (bad token refused), cookie flags, CSRF refusal (nothing changed),
//!   scopes, readability without JavaScript, the permission check, creds download, the
//!   event stream, sign-out.
//! - A real headless Chromium (Debian `chromium` + `chromium-driver`, driven with
//!   fantoccini) against a real `warden serve` process and a real nats-server (2.9 and
//!   2.15): sign in, create an account and a user through the forms, download the creds
//!   and connect with them, see a CLI change appear without reload. Screenshots go to
//!   `target/console-shots/`.
//! - Plain HTTP: the edit and delete forms (validation errors shown on the form with
//!   nothing changed, CSRF refusals, confirmations), the sync, onboarding and rooms views.
//! - Chromium again (2.9 and 2.15): drift (missing, stale, unknown and in-sync accounts made
//!   behind Warden's back), "Push" and "Sync (fix)"; usage of an account with a connected
//!   client; editing a user's permissions (a bad subject first) and the server enforcing
//!   the new JWT.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::browser::{
    self, click, cookie_value, csrf_in, fill, form, set_cookie, shot, submit, text_of,
};
use common::chromedriver::Driver;
use common::{Home, Serve, connect};
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use warden::http::{self, HttpState};
use warden_ops::tokens::{self, Scope};
use warden_ops::{InitOptions, Settings, Warden};
use warden_store::{MasterKey, Store};
use warden_testkit::{NatsServerBinary, ServerLine, free_port};

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------------------

struct Console {
    base: String,
    store: Store,
    warden: Warden,
    http: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database of a console on PostgreSQL (dropped last).
    _pg: Option<warden_testkit::PgDatabase>,
}

async fn start_console() -> Console {
    start_console_on(None, None).await
}

/// A console over a fresh PostgreSQL database (`WARDEN_TEST_PG_URL`).
async fn start_console_pg() -> Console {
    start_console_on(Some(warden_testkit::PgDatabase::create().await), None).await
}

/// A console over SQLite, or over `pg` when given; its sync and usage views ask the
/// nats-server at `nats`, when given.
async fn start_console_on(pg: Option<warden_testkit::PgDatabase>, nats: Option<String>) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let url = match &pg {
        Some(db) => db.url().to_string(),
        None => format!("sqlite://{}", dir.path().join("warden.db").display()),
    };
    let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
        .await
        .unwrap();
    let mut warden = Warden::open(store.clone(), warden_ops::Actor::operator("test"))
        .await
        .unwrap();
    warden
        .init(InitOptions {
            operator: "CONSOLEOP".into(),
            account: None,
            user: None,
            settings: Settings::default(),
            service_urls: Vec::new(),
            migrations: Vec::new(),
        })
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = HttpState {
        warden: warden.clone(),
        ready: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
    };
    tokio::spawn(http::serve_with_nats(
        listener,
        state,
        nats,
        None,
        async move {
            let _ = rx.await;
        },
    ));
    Console {
        base: format!("http://{addr}"),
        store,
        warden,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _shutdown: tx,
        _dir: dir,
        _pg: pg,
    }
}

impl Console {
    async fn token(&self, name: &str, scopes: &[Scope]) -> String {
        let (_, secret) = tokens::create_token(&self.store, "test", name, scopes, None)
            .await
            .unwrap();
        secret.to_string()
    }

    async fn get(&self, path: &str, session: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(s) = session {
            req = req.header("cookie", format!("warden_console={s}"));
        }
        req.send().await.unwrap()
    }

    async fn post(&self, path: &str, cookie: &str, body: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(body))
            .send()
            .await
            .unwrap()
    }

    /// Signs in with `token`; the session id.
    async fn sign_in(&self, token: &str) -> String {
        browser::sign_in(&self.http, &self.base, token).await
    }

    /// The CSRF token of a session (from any page's forms).
    async fn csrf(&self, session: &str) -> String {
        csrf_in(
            &self
                .get("/console/accounts", Some(session))
                .await
                .text()
                .await
                .unwrap(),
        )
    }
}

#[tokio::test]
async fn sign_in_cookie_flags_and_bad_tokens() {
    let c = start_console().await;
    let admin = c.token("admin", &[Scope::Admin]).await;

    // Without a session every page sends the browser to the sign-in form.
    let res = c.get("/console", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console/login");

    // The form: labelled field, CSRF double-submit cookie with the strict flags.
    let page = c.get("/console/login", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let login_cookie = set_cookie(page.headers(), "warden_console_login").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(login_cookie.contains(flag), "{login_cookie}");
    }
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<label for=\"token\">"), "{html}");
    let csrf = csrf_in(&html);
    let login = format!("warden_console_login={}", cookie_value(&login_cookie));

    // A bad token: 401, the form again with the reason, no session cookie.
    let res = c
        .post(
            "/console/login",
            &login,
            &[("token", "wdn_nope"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(res.headers(), "warden_console").is_none());
    assert!(res.text().await.unwrap().contains("refused"));

    // A directory user's token governs only: no console session.
    let w = warden_ops::Warden::open(c.store.clone(), warden_ops::Actor::operator("test"))
        .await
        .unwrap();
    w.dir_user_add(
        None,
        warden_core::directory::NextUser {
            id: "olivia".into(),
            ..Default::default()
        },
        false,
    )
    .await
    .unwrap();
    let (_, bound) = tokens::create_dir_user_token(&c.store, "test", "o", "olivia", None)
        .await
        .unwrap();
    let res = c
        .post(
            "/console/login",
            &login,
            &[("token", bound.as_str()), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(res.headers(), "warden_console").is_none());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("the console needs an operator"),
        "a directory user's token opened a console session"
    );

    // A good token without the form's CSRF value (or with a different cookie): refused.
    let res = c.post("/console/login", &login, &[("token", &admin)]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(res.headers(), "warden_console").is_none());
    let res = c
        .post(
            "/console/login",
            "warden_console_login=forged",
            &[("token", &admin), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The good token: a session cookie (random id, not the token), HttpOnly, Strict.
    let res = c
        .post(
            "/console/login",
            &login,
            &[("token", &admin), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console");
    let session_cookie = set_cookie(res.headers(), "warden_console").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session_cookie.contains(flag), "{session_cookie}");
    }
    let sid = cookie_value(&session_cookie);
    assert!(
        !session_cookie.contains(&admin) && sid.len() >= 40,
        "{session_cookie}"
    );

    // Readable without JavaScript: the server's HTML carries the content itself.
    let res = c.get("/console", Some(&sid)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    for needle in [
        "<main",
        "<nav aria-label=\"Main\">",
        "CONSOLEOP",
        "SYS",
        "<h1>Overview</h1>",
    ] {
        assert!(html.contains(needle), "{needle} missing:\n{html}");
    }
    let html = c
        .get("/console/hierarchy", Some(&sid))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<svg") && html.contains("Operator CONSOLEOP"),
        "{html}"
    );

    // The read-only views render from the store.
    for (path, needle) in [
        ("/console/devices", "0 devices"),
        ("/console/tenants", "0 tenants"),
        ("/console/ledger", "Hash chain intact"),
    ] {
        let res = c.get(path, Some(&sid)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains(needle), "{path}: {needle} missing:\n{html}");
    }

    // Revoking the token ends the session at once.
    let list = tokens::list_tokens(&c.store).await.unwrap();
    let admin_id = &list.iter().find(|t| t.name == "admin").unwrap().id;
    tokens::revoke_token(&c.store, "test", admin_id)
        .await
        .unwrap();
    let res = c.get("/console", Some(&sid)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_need_the_csrf_token_and_the_scope() {
    let c = start_console().await;
    let admin = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    let reader = c.sign_in(&c.token("reader", &[Scope::Read]).await).await;
    let csrf = c.csrf(&admin).await;
    let cookie = format!("warden_console={admin}");

    // No CSRF token, or another session's: refused, nothing created.
    let res = c
        .post("/console/accounts", &cookie, &[("name", "NOCSRF")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let other = c.csrf(&reader).await;
    let res = c
        .post(
            "/console/accounts",
            &cookie,
            &[("name", "NOCSRF"), ("csrf", &other)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(c.warden.account("NOCSRF").await.is_err());

    // With it: created, by a console actor, and the browser is sent to the new page.
    let res = c
        .post(
            "/console/accounts",
            &cookie,
            &[("name", "ORDERS"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(res.headers()[LOCATION], "/console/accounts/ORDERS");
    let events = c.store.ledger(0, 1000).await.unwrap();
    let last = events.last().unwrap();
    assert!(last.actor.starts_with("console:admin:tok_"), "{last:?}");

    // A user with publish/subscribe allows; a bad subject is a clear 400, nothing made.
    let res = c
        .post(
            "/console/accounts/ORDERS/users",
            &cookie,
            &[("name", "bad"), ("pub_allow", "orders.*x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(c.warden.user("ORDERS", "bad").await.is_err());
    // A blank entry (nothing between two commas) is refused too, never dropped: dropping it
    // would leave a user who may publish anything, as the CLI and the API refuse it.
    let before = c.store.ledger(0, 10_000).await.unwrap().len();
    for blank in ["orders.>, ,audit.*", "orders.>,", " , "] {
        let res = c
            .post(
                "/console/accounts/ORDERS/users",
                &cookie,
                &[("name", "blank"), ("pub_allow", blank), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{blank:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("empty entry"), "{blank:?}: {html}");
    }
    assert!(c.warden.user("ORDERS", "blank").await.is_err());
    assert_eq!(c.store.ledger(0, 10_000).await.unwrap().len(), before);
    let res = c
        .post(
            "/console/accounts/ORDERS/users",
            &cookie,
            &[
                ("name", "alice"),
                ("pub_allow", "orders.> audit.*"),
                ("sub_allow", "orders.>"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let alice = c.warden.user("ORDERS", "alice").await.unwrap();
    assert_eq!(alice.spec.permissions.publish.allow.len(), 2);

    // The permission check answers with the rule.
    let html = c
        .get(
            "/console/accounts/ORDERS/users/alice?direction=publish&subject=billing.x",
            Some(&admin),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<strong>Denied</strong>"), "{html}");
    let html = c
        .get(
            "/console/accounts/ORDERS/users/alice?direction=subscribe&subject=orders.new",
            Some(&admin),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<strong>Allowed</strong>") && html.contains("allow rule orders.&gt;"));

    // A read token may look but not act, nor download creds.
    let rcookie = format!("warden_console={reader}");
    let rcsrf = c.csrf(&reader).await;
    let res = c
        .post(
            "/console/accounts",
            &rcookie,
            &[("name", "NOPE"), ("csrf", &rcsrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(c.warden.account("NOPE").await.is_err());
    let res = c
        .get("/console/accounts/ORDERS/users/alice/creds", Some(&reader))
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Admin downloads the creds: an attachment, not cached, a creds file of alice.
    let res = c
        .get("/console/accounts/ORDERS/users/alice/creds", Some(&admin))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.contains("ORDERS-alice.creds"), "{disposition}");
    let text = res.text().await.unwrap();
    assert!(text.contains("BEGIN NATS USER JWT") && text.contains("BEGIN USER NKEY SEED"));

    // Revoke through the form.
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/revoke",
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        c.warden
            .user("ORDERS", "alice")
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );

    // Sign-out needs the CSRF token too, and ends the session.
    let res = c.post("/console/logout", &cookie, &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c.post("/console/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        c.get("/console", Some(&admin)).await.status(),
        StatusCode::SEE_OTHER
    );
}

/// Every kind of error maps to one console page status (`console::status_of`), and the
/// mapping covers every kind.
#[test]
fn each_error_kind_has_its_console_status() {
    use warden::console::status_of;
    use warden_ops::ErrorKind;
    let table = [
        (ErrorKind::Invalid, StatusCode::BAD_REQUEST),
        (ErrorKind::NotFound, StatusCode::NOT_FOUND),
        (ErrorKind::Conflict, StatusCode::CONFLICT),
        (ErrorKind::Refused, StatusCode::FORBIDDEN),
        (ErrorKind::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        (ErrorKind::Internal, StatusCode::INTERNAL_SERVER_ERROR),
    ];
    assert_eq!(table.len(), ErrorKind::ALL.len());
    for (kind, status) in table {
        assert_eq!(status_of(kind).as_u16(), status.as_u16(), "{kind:?}");
    }
}

/// A refused form is answered with its own page: the status of the error's kind (bad
/// input 400, a name taken 409, a session without the scope 403), the message, the
/// navigation and the values typed; nothing is written.
#[tokio::test]
async fn a_refused_form_keeps_its_page_the_typed_values_and_the_status_of_its_kind() {
    let c = start_console().await;
    let admin = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    let reader = c.sign_in(&c.token("reader", &[Scope::Read]).await).await;
    let csrf = c.csrf(&admin).await;
    let cookie = format!("warden_console={admin}");
    let events = || async { c.store.counts().await.unwrap().ledger_events };
    let on_the_form = |html: &str, typed: &[&str]| {
        assert!(
            html.contains("id=\"form-error\""),
            "no error block:\n{html}"
        );
        assert!(
            html.contains("<nav aria-label=\"Main\">"),
            "no navigation:\n{html}"
        );
        for v in typed {
            assert!(
                html.contains(&format!("value=\"{v}\"")),
                "{v} not kept:\n{html}"
            );
        }
    };

    let n = events().await;
    // Invalid: a name NATS tooling would refuse.
    let res = c
        .post(
            "/console/accounts",
            &cookie,
            &[
                ("name", "bad name"),
                ("description", "Kept text"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    on_the_form(&html, &["bad name", "Kept text"]);
    assert!(html.contains("<title>Accounts"), "{html}");
    assert_eq!(events().await, n, "the invalid name wrote to the ledger");

    // Conflict: the name is taken.
    let res = c
        .post(
            "/console/accounts",
            &cookie,
            &[("name", "SHOP"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let n = events().await;
    let res = c
        .post(
            "/console/accounts",
            &cookie,
            &[("name", "SHOP"), ("description", "again"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = res.text().await.unwrap();
    on_the_form(&html, &["SHOP", "again"]);
    assert!(html.contains("already exists"), "{html}");

    // Refused: a read-only session; the operation decides, the page says so.
    let rcsrf = c.csrf(&reader).await;
    let rcookie = format!("warden_console={reader}");
    let res = c
        .post(
            "/console/accounts",
            &rcookie,
            &[
                ("name", "NOPE"),
                ("description", "not mine"),
                ("csrf", &rcsrf),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    on_the_form(&html, &["NOPE", "not mine"]);
    assert!(html.contains("write scope"), "{html}");
    assert!(c.warden.account("NOPE").await.is_err());

    // The new-user form of an account page: a bad subject (the console's parse), then a
    // read-only session (the operation's refusal); the account page both times.
    let res = c
        .post(
            "/console/accounts/SHOP/users",
            &cookie,
            &[
                ("name", "carol"),
                ("pub_allow", "shop.*x"),
                ("sub_allow", "shop.>"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    on_the_form(&html, &["carol", "shop.*x", "shop.&gt;"]);
    assert!(html.contains("<title>Account SHOP"), "{html}");
    let res = c
        .post(
            "/console/accounts/SHOP/users",
            &rcookie,
            &[("name", "dave"), ("pub_allow", "shop.>"), ("csrf", &rcsrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    on_the_form(&html, &["dave", "shop.&gt;"]);
    assert!(c.warden.user("SHOP", "carol").await.is_err());
    assert!(c.warden.user("SHOP", "dave").await.is_err());

    // The edit form of an account sent by a read-only session: refused by the
    // operation, shown on the form with 403, the values typed kept.
    let fields = account_fields(&rcsrf, &[("conn", "7"), ("description", "typed")]);
    let res = c
        .post("/console/accounts/SHOP/edit", &rcookie, &fields)
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    on_the_form(&html, &["7", "typed"]);
    assert_eq!(c.warden.account("SHOP").await.unwrap().spec.limits.conn, -1);

    assert_eq!(events().await, n, "a refused form wrote to the ledger");
}

#[tokio::test]
async fn event_stream_carries_new_ledger_entries() {
    let c = start_console().await;
    let sid = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    // Without a session: no stream.
    assert_eq!(
        c.get("/console/events", None).await.status(),
        StatusCode::SEE_OTHER
    );

    // A raw HTTP/1.1 reader, so the test sees each event as it arrives.
    let addr = c.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    write
        .write_all(
            format!(
                "GET /console/events HTTP/1.1\r\nHost: {addr}\r\nCookie: warden_console={sid}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut lines = tokio::io::BufReader::new(read).lines();
    let head = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(head.contains("200"), "{head}");

    c.warden
        .with_actor(warden_ops::Actor::operator("cli:test"))
        .add_account("LIVE", Default::default())
        .await
        .unwrap();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("data:") && line.contains("\"action\":\"account.add") {
                return line;
            }
            if line.starts_with("data:") && line.contains("cli:test") {
                return line;
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("the new ledger entry arrives within the bound");
    assert!(found.contains("cli:test"), "{found}");
}

// ---------------------------------------------------------------------------------------
// Headless Chromium against `warden serve` and nats-server
// ---------------------------------------------------------------------------------------

/// Waits (bounded) for a file in `dir` whose name ends with `suffix` (a finished download).
async fn wait_file(dir: &Path, suffix: &str) -> PathBuf {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(p) = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with(suffix))
        {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no {suffix} downloaded into {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser_flow(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let tag = format!("v{}", bin.version.replace('.', "_"));
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "WEBOP"]);
    let token = home.json(&["token", "create", "--name", "browser", "--scope", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let server = home.start_nats(&bin, "main");
    let nats = server.url();
    let serve = Serve::start(&home, &nats);
    let driver = Driver::start().await;
    let downloads = home.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = driver.chromium(1280, 900, Some(&downloads)).await;

    // Sign-in: a bad token is refused, the admin token gets in.
    b.goto(&format!("{}/console", serve.base)).await.unwrap();
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login")
    );
    fill(&b, "#token", "wdn_notatoken").await;
    click(&b, "form button[type=submit]").await;
    let err = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#login-error"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("refused"));
    shot(&b, &format!("{tag}-01-bad-token")).await;
    fill(&b, "#token", &token).await;
    click(&b, "form button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#count-accounts"))
        .await
        .unwrap();
    shot(&b, &format!("{tag}-02-overview")).await;

    // The session cookie is HttpOnly: scripts on the page cannot read it.
    let js_cookies = b.execute("return document.cookie;", vec![]).await.unwrap();
    assert_eq!(
        js_cookies,
        serde_json::json!(""),
        "cookies visible to scripts"
    );

    // Create an account and a user through the forms.
    b.goto(&format!("{}/console/accounts", serve.base))
        .await
        .unwrap();
    fill(&b, "#account-name", "SHOP").await;
    click(&b, "form[action='/console/accounts'][method=post] button").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#user-name"))
        .await
        .unwrap();
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/accounts/SHOP")
    );
    fill(&b, "#user-name", "carol").await;
    fill(&b, "#user-pub", "shop.>").await;
    fill(&b, "#user-sub", "shop.> _INBOX.>").await;
    click(&b, "form[action='/console/accounts/SHOP/users'] button").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#download-creds"))
        .await
        .unwrap();
    shot(&b, &format!("{tag}-03-user")).await;

    // The permission check.
    fill(&b, "#check-subject", "billing.x").await;
    click(&b, "form[method=get] button").await;
    let answer = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#check-result"))
        .await
        .unwrap();
    assert!(
        answer.text().await.unwrap().starts_with("Denied"),
        "{}",
        answer.text().await.unwrap()
    );

    // Download the creds through the browser, then connect to nats-server with them.
    click(&b, "#download-creds").await;
    let file = wait_file(&downloads, "SHOP-carol.creds").await;
    let creds = std::fs::read_to_string(&file).unwrap();
    assert!(creds.contains("BEGIN NATS USER JWT"), "{creds}");
    // The relay pushes SHOP to the server shortly: retry the connection, bounded.
    let deadline = Instant::now() + WAIT;
    let client = loop {
        match connect(&nats, &creds).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "carol cannot connect: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    client
        .client
        .publish("shop.order", "x".into())
        .await
        .unwrap();
    client.client.flush().await.unwrap();

    // A change made from the CLI appears on the open page without a reload.
    b.goto(&format!("{}/console/accounts", serve.base))
        .await
        .unwrap();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#account-SHOP"))
        .await
        .unwrap();
    // Wait for the live stream to be open before changing anything.
    let deadline = Instant::now() + WAIT;
    loop {
        let state = b
            .execute(
                "return document.getElementById('live').dataset.state;",
                vec![],
            )
            .await
            .unwrap();
        let text = b
            .find(Locator::Css("#live"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if state == "live" && text.starts_with("Live:") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live stream did not open: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.execute("window.__noReload = 42;", vec![]).await.unwrap();
    home.ok(&["account", "add", "FROMCLI"]);
    if let Err(e) = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#account-FROMCLI"))
        .await
    {
        shot(&b, &format!("{tag}-04-live-failed")).await;
        let live = b
            .find(Locator::Css("#live"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let probe = b
            .execute_async(
                "const done = arguments[arguments.length - 1]; fetch(location.href).then(r => r.text()).then(t => done(t.includes('FROMCLI') + ' ' + document.querySelectorAll('[data-live][id]').length)).catch(e => done(String(e)));",
                vec![],
            )
            .await;
        panic!(
            "the CLI's account did not appear without reload ({e}); live region: {live}; probe: {probe:?}"
        );
    }
    let marker = b
        .execute("return window.__noReload;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, serde_json::json!(42), "the page was reloaded");
    shot(&b, &format!("{tag}-04-live")).await;

    // Hierarchy picture, and the page at phone width.
    b.goto(&format!("{}/console/hierarchy", serve.base))
        .await
        .unwrap();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("svg.hierarchy"))
        .await
        .unwrap();
    shot(&b, &format!("{tag}-05-hierarchy")).await;
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{}/console/accounts/SHOP", serve.base))
        .await
        .unwrap();
    let width = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        width,
        serde_json::json!(true),
        "the page scrolls sideways at phone width"
    );
    shot(&b, &format!("{tag}-06-phone")).await;

    // A POST without the CSRF token, with the browser's own session cookie: refused.
    let cookies = b.get_all_cookies().await.unwrap();
    let sid = cookies
        .iter()
        .find(|c| c.name() == "warden_console")
        .expect("session cookie")
        .value()
        .to_string();
    let res = reqwest::Client::new()
        .post(format!("{}/console/accounts", serve.base))
        .header("cookie", format!("warden_console={sid}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=FORGED")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let accounts = home.json(&["account", "list"]).to_string();
    assert!(
        !accounts.contains("FORGED") && accounts.contains("FROMCLI"),
        "{accounts}"
    );

    b.close().await.unwrap();
    drop(driver);
    drop(serve);
}

#[tokio::test]
async fn browser_flow_nats_2_9() {
    browser_flow(ServerLine::V2_9).await;
}

#[tokio::test]
async fn browser_flow_nats_2_15() {
    browser_flow(ServerLine::V2_15).await;
}

// ---------------------------------------------------------------------------------------
// Edit and delete forms, sync, usage, onboarding and rooms views (plain HTTP)
// ---------------------------------------------------------------------------------------

/// The account edit form's fields with the values a default account shows, `changes`
/// replacing some of them.
fn account_fields<'a>(csrf: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f: Vec<(&str, &str)> = vec![
        ("csrf", csrf),
        ("description", ""),
        ("conn", "unlimited"),
        ("leaf", "unlimited"),
        ("subs", "unlimited"),
        ("payload", "unlimited"),
        ("data", "unlimited"),
        ("imports", "unlimited"),
        ("exports", "unlimited"),
        ("wildcards", "on"),
        ("js_mem", "0"),
        ("js_disk", "0"),
        ("js_streams", "0"),
        ("js_consumer", "0"),
        ("js_max_ack_pending", "0"),
    ];
    for &(k, v) in changes {
        match f.iter_mut().find(|(fk, _)| *fk == k) {
            Some(slot) => slot.1 = v,
            None => f.push((k, v)),
        }
    }
    f
}

/// The user edit form's fields for a user with only `pub_allow`, `changes` replacing some.
fn user_fields<'a>(
    csrf: &'a str,
    pub_allow: &'a str,
    changes: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut f: Vec<(&str, &str)> = vec![
        ("csrf", csrf),
        ("pub_allow", pub_allow),
        ("subs", "unlimited"),
        ("data", "unlimited"),
        ("payload", "unlimited"),
    ];
    for &(k, v) in changes {
        match f.iter_mut().find(|(fk, _)| *fk == k) {
            Some(slot) => slot.1 = v,
            None => f.push((k, v)),
        }
    }
    f
}

#[tokio::test]
async fn edit_and_delete_forms_validate_and_change_nothing_on_error() {
    edit_and_delete_forms(start_console().await).await;
}

#[tokio::test]
async fn edit_and_delete_forms_validate_and_change_nothing_on_error_postgres() {
    edit_and_delete_forms(start_console_pg().await).await;
}

async fn edit_and_delete_forms(c: Console) {
    let admin = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    let reader = c.sign_in(&c.token("reader", &[Scope::Read]).await).await;
    let csrf = c.csrf(&admin).await;
    let cookie = format!("warden_console={admin}");
    c.warden
        .add_account("ORDERS", Default::default())
        .await
        .unwrap();
    let mut spec = warden_core::UserSpec::default();
    spec.permissions.publish.allow = vec![nats_jwt::Subject::new("orders.>").unwrap()];
    c.warden.add_user("ORDERS", "alice", spec).await.unwrap();
    let events = || async { c.store.counts().await.unwrap().ledger_events };

    // The forms render without JavaScript, labelled, for write sessions only.
    let res = c.get("/console/accounts/ORDERS/edit", Some(&admin)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    for needle in [
        "<label for=\"conn\">Connections</label>",
        "name=\"csrf\"",
        "value=\"unlimited\"",
    ] {
        assert!(html.contains(needle), "{needle} missing:\n{html}");
    }
    let html = c
        .get("/console/accounts/ORDERS/users/alice/edit", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<label for=\"pub_allow\">Publish allow</label>")
            && html.contains(">orders.&gt;</textarea>"),
        "{html}"
    );
    assert_eq!(
        c.get("/console/accounts/ORDERS/edit", Some(&reader))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Account edit: no CSRF token, a bad limit, nothing changed: refused, state kept.
    let before = c.warden.account("ORDERS").await.unwrap();
    let n = events().await;
    let res = c
        .post(
            "/console/accounts/ORDERS/edit",
            &cookie,
            &account_fields("", &[("conn", "5")])[1..],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    for (bad, says) in [
        (account_fields(&csrf, &[("conn", "lots")]), "Connections"),
        (account_fields(&csrf, &[("subs", "-7")]), "Subscriptions"),
        (account_fields(&csrf, &[("payload", "")]), "Payload"),
        (account_fields(&csrf, &[]), "no field was changed"),
    ] {
        let res = c.post("/console/accounts/ORDERS/edit", &cookie, &bad).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("id=\"form-error\"") && html.contains(says),
            "{says}: {html}"
        );
    }
    // The typed value is kept on the form that shows the error.
    let res = c
        .post(
            "/console/accounts/ORDERS/edit",
            &cookie,
            &account_fields(&csrf, &[("conn", "lots")]),
        )
        .await;
    assert!(res.text().await.unwrap().contains("value=\"lots\""));
    let after = c.warden.account("ORDERS").await.unwrap();
    assert_eq!((after.jwt, after.spec), (before.jwt.clone(), before.spec));
    assert_eq!(events().await, n, "a refused form wrote to the ledger");

    // A good edit: limits and description change, the JWT is re-signed, by the console.
    let res = c
        .post(
            "/console/accounts/ORDERS/edit",
            &cookie,
            &account_fields(
                &csrf,
                &[
                    ("conn", "5"),
                    ("payload", "1K"),
                    ("description", "Orders team"),
                ],
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console/accounts/ORDERS");
    let after = c.warden.account("ORDERS").await.unwrap();
    assert_eq!(after.spec.limits.conn, 5);
    assert_eq!(after.spec.limits.payload, 1024);
    assert_eq!(after.spec.limits.subs, -1);
    assert_eq!(after.spec.description.as_deref(), Some("Orders team"));
    assert_ne!(after.jwt, before.jwt);
    let claims = nats_jwt::decode::<nats_jwt::Account>(&after.jwt).unwrap();
    assert_eq!(claims.nats.limits.account.conn, 5);
    let last = c.store.ledger(0, 1000).await.unwrap().pop().unwrap();
    assert_eq!(last.action, "account.edit");
    assert!(last.actor.starts_with("console:admin:"), "{last:?}");

    // User edit: bad subject, queue group on publish, past expiry: refused, JWT kept.
    let alice = c.warden.user("ORDERS", "alice").await.unwrap();
    let n = events().await;
    for (bad, says) in [
        (user_fields(&csrf, "orders..x", &[]), "Publish allow"),
        (user_fields(&csrf, "orders.> q", &[]), "queue group"),
        (
            user_fields(&csrf, "orders.>", &[("expiry", "2001-01-01")]),
            "in the past",
        ),
        (
            user_fields(&csrf, "orders.>", &[("src", "not-a-net")]),
            "source network",
        ),
        // Blank entries are refused, never dropped (as on the CLI and the API).
        (
            user_fields(&csrf, "orders.>", &[("src", "10.0.0.1, ,10.0.0.2")]),
            "Source networks: an empty entry",
        ),
        (
            user_fields(&csrf, "orders.>", &[("conn_types", "STANDARD,")]),
            "Connection types: an empty entry",
        ),
        (user_fields(&csrf, "orders.>, ", &[]), "an empty entry"),
    ] {
        let res = c
            .post("/console/accounts/ORDERS/users/alice/edit", &cookie, &bad)
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("id=\"form-error\"") && html.contains(says),
            "{says}: {html}"
        );
    }
    let same = c.warden.user("ORDERS", "alice").await.unwrap();
    assert_eq!(same.jwt, alice.jwt);
    assert_eq!(events().await, n);
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/edit",
            &cookie,
            &user_fields(&csrf, "orders.>", &[("csrf", "forged")]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // A good user edit: the lists become what the form says; new JWT carries them.
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/edit",
            &cookie,
            &user_fields(
                &csrf,
                "orders.new\norders.paid",
                &[
                    ("sub_allow", "orders.>, _INBOX.>"),
                    ("sub_deny", "orders.secret"),
                    ("bearer", "on"),
                    ("src", "10.0.0.1"),
                    ("expiry", "30d"),
                    ("tags", "VIP ops"),
                ],
            ),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );
    let alice2 = c.warden.user("ORDERS", "alice").await.unwrap();
    assert_eq!(
        nats_jwt::decode::<nats_jwt::User>(
            alice2.jwt.as_deref().expect("the operator sees the JWT")
        )
        .unwrap()
        .nats
        .tags,
        ["vip", "ops"]
    );
    // Deleting a word from the field removes that tag.
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/edit",
            &cookie,
            &user_fields(
                &csrf,
                "orders.new\norders.paid",
                &[
                    ("sub_allow", "orders.>, _INBOX.>"),
                    ("sub_deny", "orders.secret"),
                    ("bearer", "on"),
                    ("src", "10.0.0.1"),
                    ("expiry", "30d"),
                    ("tags", "ops"),
                ],
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let alice2 = c.warden.user("ORDERS", "alice").await.unwrap();
    assert_eq!(
        nats_jwt::decode::<nats_jwt::User>(
            alice2.jwt.as_deref().expect("the operator sees the JWT")
        )
        .unwrap()
        .nats
        .tags,
        ["ops"]
    );
    let claims = nats_jwt::decode::<nats_jwt::User>(
        alice2.jwt.as_deref().expect("the operator sees the JWT"),
    )
    .unwrap();
    let p = &claims.nats.limits.permissions;
    let strs =
        |l: &[nats_jwt::Subject]| l.iter().map(|s| s.as_str().to_string()).collect::<Vec<_>>();
    assert_eq!(strs(&p.publish.allow), ["orders.new", "orders.paid"]);
    assert_eq!(strs(&p.subscribe.allow), ["orders.>", "_INBOX.>"]);
    assert_eq!(strs(&p.subscribe.deny), ["orders.secret"]);
    assert!(claims.nats.limits.bearer_token);
    assert_eq!(claims.nats.limits.src, ["10.0.0.1/32"]);
    let exp = claims.exp.expect("an expiry");
    assert!((exp - warden_ops::now() - 30 * 86_400).abs() < 60, "{exp}");
    let last = c.store.ledger(0, 1000).await.unwrap().pop().unwrap();
    assert_eq!(last.action, "user.edit");
    // The user page shows the new permissions and the edit/delete actions.
    let html = c
        .get("/console/accounts/ORDERS/users/alice", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<code>orders.paid</code>") && html.contains("id=\"edit-user\""),
        "{html}"
    );

    // Delete user: the confirmation page, a wrong name refused (kept), then deleted.
    let html = c
        .get("/console/accounts/ORDERS/users/alice/delete", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<label for=\"confirm\">"), "{html}");
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/delete",
            &cookie,
            &[("csrf", &csrf), ("confirm", "bob")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(c.warden.user("ORDERS", "alice").await.is_ok());
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/delete",
            &cookie,
            &[("confirm", "alice")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(c.warden.user("ORDERS", "alice").await.is_ok());
    let res = c
        .post(
            "/console/accounts/ORDERS/users/alice/delete",
            &cookie,
            &[("csrf", &csrf), ("confirm", "alice")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console/accounts/ORDERS");
    assert!(c.warden.user("ORDERS", "alice").await.is_err());

    // Delete account: the system account has no delete; ORDERS goes after confirmation.
    let html = c
        .get("/console/accounts/SYS", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("id=\"delete-account\""), "{html}");
    let res = c
        .post(
            "/console/accounts/SYS/delete",
            &cookie,
            &[("csrf", &csrf), ("confirm", "SYS")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(c.warden.account("SYS").await.is_ok());
    let res = c
        .post(
            "/console/accounts/ORDERS/delete",
            &cookie,
            &[("csrf", &csrf), ("confirm", "orders-typo")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(c.warden.account("ORDERS").await.is_ok());
    let res = c
        .post(
            "/console/accounts/ORDERS/delete",
            &cookie,
            &[("csrf", &csrf), ("confirm", "ORDERS")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(c.warden.account("ORDERS").await.is_err());
}

#[tokio::test]
async fn sync_onboarding_and_rooms_views_render_without_javascript() {
    sync_onboarding_and_rooms_views(start_console().await).await;
}

#[tokio::test]
async fn sync_onboarding_and_rooms_views_render_without_javascript_postgres() {
    sync_onboarding_and_rooms_views(start_console_pg().await).await;
}

async fn sync_onboarding_and_rooms_views(c: Console) {
    let admin = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    let csrf = c.csrf(&admin).await;
    let cookie = format!("warden_console={admin}");

    // Without a nats-server the sync page and the usage block say so. Action results
    // come from the session, never from the URL.
    let html = c
        .get(
            "/console/sync?failed=EVILTEXT&pushed=EVILTEXT",
            Some(&admin),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("EVILTEXT") && !html.contains("sync-notice"),
        "{html}"
    );
    let html = c
        .get("/console/sync", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"drift-unavailable\"") && html.contains("id=\"outbox-pending\""),
        "{html}"
    );
    let html = c
        .get("/console/accounts/SYS", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"usage-none\"") && html.contains("Not reported"),
        "{html}"
    );
    let res = c
        .post("/console/sync/fix", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // No relay runs here: the backlog shows, and a failed delivery's error with it.
    let pending = c.store.pending_outbox(i64::MAX, 10).await.unwrap();
    assert!(!pending.is_empty());
    c.store
        .mark_failed(pending[0].id, "nats: connection <refused>", i64::MAX)
        .await
        .unwrap();
    let html = c.get("/console", Some(&admin)).await.text().await.unwrap();
    assert!(
        html.contains("change(s) waiting for the relay")
            && html.contains("nats: connection &lt;refused&gt; (after 1 attempt(s))"),
        "{html}"
    );
    let res = c.post("/console/sync/fix", &cookie, &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Onboarding packages, by tenant, with their state; revoke through the form.
    c.warden
        .add_tenant("acme", &Default::default())
        .await
        .unwrap();
    let issued = c
        .warden
        .create_package(&warden_ops::onboarding::NewPackage {
            tenant: "acme".into(),
            component: "flowgger".into(),
            site: "paris".into(),
            token_expires_at: warden_ops::now() + 3600,
            nats_url: format!("nats://127.0.0.1:{}", free_port()),
            install_dir: None,
        })
        .await
        .unwrap();
    let id = issued.package.id.clone();
    let html = c
        .get("/console/onboarding", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("1 onboarding package")
            && html.contains("href=\"/console/tenants/acme\">acme</a>")
            && html.contains(&format!("id=\"pkg-{id}\""))
            && html.contains("data-state=\"issued\"")
            && html.contains("Showing 1–1 of 1 package"),
        "{html}"
    );
    // A search that matches nothing: an empty page, said so.
    let html = c
        .get("/console/onboarding?q=nosuchcollector", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("no packages match"), "{html}");
    let path = format!("/console/onboarding/{id}/revoke");
    assert_eq!(
        c.post(&path, &cookie, &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(c.warden.package(&id).await.unwrap().state, "issued");
    let res = c.post(&path, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.warden.package(&id).await.unwrap().state, "revoked");
    let html = c
        .get("/console/onboarding?tenant=acme", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-state=\"revoked\""), "{html}");

    // Rooms and their rules (read-only).
    let html = c
        .get("/console/rooms", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("0 rooms"), "{html}");
    let mut tx = c.store.begin().await.unwrap();
    let room = tx
        .insert_room(&warden_store::rooms::NewRoom {
            name: "ops <team>".into(),
            kind: "group".into(),
            owner_user: "u-1".into(),
            owner_entity: "e-1".into(),
            level_admin: 1,
            rule_cap: 10,
        })
        .await
        .unwrap();
    tx.put_room_rule(&warden_store::rooms::RoomRuleRow {
        room_id: room.id,
        entity_uuid: "u-2".into(),
        permissions: "rw".into(),
        level: 0,
        updated_at: warden_ops::now(),
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let html = c
        .get("/console/rooms", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("1 rooms") && html.contains("ops &lt;team&gt;"),
        "{html}"
    );
    let html = c
        .get(&format!("/console/rooms/{}", room.id), Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<code>u-2</code>") && html.contains("read, write"),
        "{html}"
    );
    assert_eq!(
        c.get("/console/rooms/999999", Some(&admin)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/console/rooms/x", Some(&admin)).await.status(),
        StatusCode::BAD_REQUEST
    );
}

// ---------------------------------------------------------------------------------------
// Headless Chromium: edit a user, drift and push, usage (nats-server 2.9 and 2.15)
// ---------------------------------------------------------------------------------------

/// The `data-state` of the sync row of `account` on the open sync page.
async fn sync_state(b: &Client, account: &str) -> String {
    b.find(Locator::Css(&format!("#sync-{account}")))
        .await
        .unwrap_or_else(|e| panic!("no sync row for {account}: {e}"))
        .attr("data-state")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits (bounded) until `warden serve`'s relay has delivered every outbox row.
async fn relay_drained(home: &Home) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = home.json(&["status"]);
        if status["outbox_pending"] == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not deliver everything: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn browser_edit_drift_usage(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let tag = format!("v{}", bin.version.replace('.', "_"));
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "EDITOP"]);
    let token = home.json(&["token", "create", "--name", "browser", "--scope", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&[
        "user",
        "add",
        "carol",
        "--account",
        "SHOP",
        "--allow-pub",
        "shop.>",
        "--allow-sub",
        "shop.>,_INBOX.>",
    ]);
    home.ok(&["account", "add", "GHOSTA"]);
    home.ok(&["account", "add", "GHOSTB"]);
    home.ok(&["account", "add", "TEMP"]);
    // With JetStream: the account page shows what an account's streams use.
    let server = home.start_js_nats(&bin, "main");
    let nats = server.url();
    let serve = Serve::start(&home, &nats);
    relay_drained(&home).await;
    let w = home.warden().await;

    // Warden forgets TEMP without telling the server (a row removed behind its back):
    // the server holds an account Warden does not know.
    let temp = w.account("TEMP").await.unwrap();
    let mut tx = w.store().begin().await.unwrap();
    tx.delete_account(&temp.public_key).await.unwrap();
    tx.commit().await.unwrap();
    // SHOP changes (pushed by the relay), then the server is handed its older JWT back.
    let old_shop = w.account("SHOP").await.unwrap().jwt;
    home.ok(&[
        "account",
        "edit",
        "SHOP",
        "--conns",
        "100",
        "--js-mem-storage",
        "1M",
        "--js-disk-storage",
        "10M",
        "--js-streams",
        "5",
        "--js-consumer",
        "10",
    ]);
    relay_drained(&home).await;

    // Behind Warden's back, the server loses two accounts (an operator-signed delete as
    // the system user): the drift view must show them missing, the rest in sync.
    let sys = w.system_user_creds().await.unwrap();
    let resolver = warden_nats::ResolverClient::connect(&nats, &sys, Duration::from_secs(5))
        .await
        .unwrap();
    let reply = resolver.update(&old_shop).await.unwrap();
    assert_eq!(reply.code, 200, "{reply:?}");
    let op = w.operator().await.unwrap();
    let signer =
        nats_jwt::KeyPair::from_seed(&w.store().seed(&op.signing_key).await.unwrap()).unwrap();
    let mut ghosts = Vec::new();
    for name in ["GHOSTA", "GHOSTB"] {
        ghosts.push(w.account(name).await.unwrap());
    }
    let keys: Vec<nats_jwt::AccountPublicKey> = ghosts
        .iter()
        .map(|a| a.public_key.parse().unwrap())
        .collect();
    let reply = resolver
        .delete(&warden_nats::delete_request(&signer, &keys).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.code, 200, "{reply:?}");
    assert!(
        resolver
            .list()
            .await
            .unwrap()
            .iter()
            .all(|k| !k.is_empty() && !ghosts.iter().any(|g| &g.public_key == k))
    );

    let driver = Driver::start().await;
    let downloads = home.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = driver.chromium(1280, 900, Some(&downloads)).await;
    b.goto(&format!("{}/console/login", serve.base))
        .await
        .unwrap();
    fill(&b, "#token", &token).await;
    click(&b, "form button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#count-accounts"))
        .await
        .unwrap();

    // Drift: GHOSTA and GHOSTB missing, SHOP and SYS in sync. The page shows the
    // comparison kept in the background, made before the changes behind Warden's back:
    // "Check now" compares again.
    b.goto(&format!("{}/console/sync", serve.base))
        .await
        .unwrap();
    assert!(
        text_of(&b, "#drift-computed")
            .await
            .contains("resolver compared")
    );
    submit(&b, "#check-now").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#drift-verdict"))
        .await
        .unwrap();
    assert_eq!(sync_state(&b, "GHOSTA").await, "missing");
    assert_eq!(sync_state(&b, "GHOSTB").await, "missing");
    assert_eq!(sync_state(&b, "SHOP").await, "stale");
    assert_eq!(sync_state(&b, &temp.public_key).await, "unknown");
    // Accounts in sync are counted, not listed, unless asked.
    assert!(b.find(Locator::Css("#sync-SYS")).await.is_err());
    let verdict = text_of(&b, "#drift-verdict").await;
    assert!(
        verdict.contains("3 accounts not in sync, 1 unknown account"),
        "{verdict}"
    );
    b.goto(&format!("{}/console/sync?show=all", serve.base))
        .await
        .unwrap();
    assert_eq!(sync_state(&b, "SYS").await, "in-sync");
    assert!(
        text_of(&b, "#outbox-pending")
            .await
            .contains("all delivered"),
        "{}",
        text_of(&b, "#outbox-pending").await
    );
    shot(&b, &format!("{tag}-11-drift")).await;

    // GHOSTA selected, "Push selected": it is back, GHOSTB still missing.
    click(&b, "#pick-GHOSTA").await;
    submit(&b, "#push-selected").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sync-notice"))
        .await
        .unwrap();
    assert!(
        text_of(&b, "#sync-notice")
            .await
            .contains("Pushed account GHOSTA")
    );
    assert!(b.find(Locator::Css("#sync-GHOSTA")).await.is_err());
    assert_eq!(sync_state(&b, "GHOSTB").await, "missing");
    assert_eq!(
        resolver
            .lookup(&ghosts[0].public_key)
            .await
            .unwrap()
            .as_deref(),
        Some(ghosts[0].jwt.as_str())
    );

    // "Sync (fix)": everything in step, and the server holds Warden's JWT for GHOSTB.
    submit(&b, "#sync-fix button").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#sync-notice"))
        .await
        .unwrap();
    let notice = text_of(&b, "#sync-notice").await;
    assert!(
        notice.contains("pushed 2 accounts, deleted 1 unknown"),
        "{notice}"
    );
    assert!(text_of(&b, "#drift-verdict").await.contains("in step"));
    b.goto(&format!("{}/console/sync?show=all", serve.base))
        .await
        .unwrap();
    assert_eq!(sync_state(&b, "GHOSTA").await, "in-sync");
    assert_eq!(sync_state(&b, "GHOSTB").await, "in-sync");
    assert_eq!(sync_state(&b, "SHOP").await, "in-sync");
    assert!(
        b.find(Locator::Css(&format!("#sync-{}", temp.public_key)))
            .await
            .is_err(),
        "TEMP still listed"
    );
    assert!(!resolver.list().await.unwrap().contains(&temp.public_key));
    assert!(text_of(&b, "#drift-verdict").await.contains("in step"));
    assert_eq!(
        resolver
            .lookup(&ghosts[1].public_key)
            .await
            .unwrap()
            .as_deref(),
        Some(ghosts[1].jwt.as_str())
    );
    shot(&b, &format!("{tag}-12-synced")).await;

    // Usage: carol connects, subscribes twice and publishes; the account page shows it.
    let carol_creds = w.creds("SHOP", "carol").await.unwrap().to_string();
    let carol = connect(&nats, &carol_creds).await.expect("carol connects");
    let _s1 = carol.client.subscribe("shop.a").await.unwrap();
    let _s2 = carol.client.subscribe("shop.b").await.unwrap();
    for _ in 0..3 {
        carol
            .client
            .publish("shop.a", "hello".into())
            .await
            .unwrap();
    }
    carol.client.flush().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        b.goto(&format!("{}/console/accounts/SHOP", serve.base))
            .await
            .unwrap();
        if let Ok(e) = b.find(Locator::Css("#usage-connections")).await
            && e.text().await.unwrap() == "1"
            && text_of(&b, "#usage-subscriptions").await == "2"
            && text_of(&b, "#usage-in").await.starts_with("3 msgs")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "usage not shown: {}",
            text_of(&b, "#usage").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shot(&b, &format!("{tag}-13-usage")).await;

    // JetStream: a stream with a consumer and two messages in SHOP, shown against its
    // limits in human units.
    let app_creds = w
        .add_user_with_creds("SHOP", "jsapp", Default::default())
        .await
        .unwrap()
        .1
        .to_string();
    let app = connect(&nats, &app_creds).await.expect("jsapp connects");
    let js = async_nats::jetstream::new(app.client.clone());
    let stream = tokio::time::timeout(
        WAIT,
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        }),
    )
    .await
    .expect("stream made in time")
    .expect("stream made");
    stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("worker".into()),
            ..Default::default()
        })
        .await
        .expect("consumer made");
    for i in 0..2 {
        js.publish(format!("orders.{i}"), "an order".into())
            .await
            .unwrap()
            .await
            .expect("stored");
    }
    b.goto(&format!("{}/console/accounts/SHOP", serve.base))
        .await
        .unwrap();
    assert_eq!(text_of(&b, "#js-streams").await, "1");
    assert_eq!(text_of(&b, "#js-consumers").await, "1");
    let storage = text_of(&b, "#js-storage").await;
    assert!(storage.ends_with(" B") && storage != "0 B", "{storage}");
    let table = text_of(&b, "#jetstream-table").await;
    assert!(
        table.contains("10 MiB") && table.contains("1 MiB"),
        "{table}"
    );
    shot(&b, &format!("{tag}-13b-jetstream")).await;
    // An account nobody uses: zero connections (the server answers; not "not reported").
    b.goto(&format!("{}/console/accounts/GHOSTA", serve.base))
        .await
        .unwrap();
    assert_eq!(text_of(&b, "#usage-connections").await, "0");
    // GHOSTA has no JetStream: the page says why there are no figures.
    let said = text_of(&b, "#jetstream-unavailable").await;
    assert!(said.starts_with("Unavailable: the server says"), "{said}");

    // Edit carol's permissions in the browser. First a bad subject: the form comes back
    // with the error and the typed text, and nothing changed.
    let before = w.user("SHOP", "carol").await.unwrap();
    b.goto(&format!("{}/console/accounts/SHOP/users/carol", serve.base))
        .await
        .unwrap();
    click(&b, "#edit-user").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#pub_allow"))
        .await
        .unwrap();
    fill(&b, "#pub_allow", "shop..orders").await;
    click(&b, "#user-edit button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#form-error"))
        .await
        .unwrap();
    assert!(text_of(&b, "#form-error").await.contains("Publish allow"));
    let kept = b
        .find(Locator::Css("#pub_allow"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("shop..orders"));
    shot(&b, &format!("{tag}-14-form-error")).await;
    let same = w.user("SHOP", "carol").await.unwrap();
    assert_eq!(same.jwt, before.jwt, "a refused form changed the user");

    // Then a good one: publish only to shop.orders.>.
    fill(&b, "#pub_allow", "shop.orders.>").await;
    click(&b, "#user-edit button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#download-creds"))
        .await
        .unwrap();
    shot(&b, &format!("{tag}-15-user-edited")).await;
    let after = w.user("SHOP", "carol").await.unwrap();
    assert_ne!(after.jwt, before.jwt);
    let claims = nats_jwt::decode::<nats_jwt::User>(
        after.jwt.as_deref().expect("the operator sees the JWT"),
    )
    .unwrap();
    let allow: Vec<&str> = claims
        .nats
        .limits
        .permissions
        .publish
        .allow
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(allow, ["shop.orders.>"]);

    // The server enforces the new JWT: download the creds from the page and connect.
    click(&b, "#download-creds").await;
    let file = wait_file(&downloads, "SHOP-carol.creds").await;
    let creds = std::fs::read_to_string(&file).unwrap();
    assert!(
        creds.contains(after.jwt.as_deref().expect("the operator sees the JWT")),
        "the download is not the new JWT"
    );
    let mut fresh = connect(&nats, &creds).await.expect("carol reconnects");
    fresh
        .client
        .publish("shop.orders.1", "ok".into())
        .await
        .unwrap();
    fresh.client.flush().await.unwrap();
    assert_eq!(fresh.next_error(Duration::from_millis(500)).await, None);
    fresh
        .client
        .publish("shop.other", "no".into())
        .await
        .unwrap();
    fresh.client.flush().await.unwrap();
    let err = fresh
        .next_error(WAIT)
        .await
        .expect("the server refuses the publish the edit removed");
    assert!(
        err.to_lowercase().contains("permissions violation") && err.contains("shop.other"),
        "{err}"
    );

    // The kept comparison follows the relay: an account added from the command line is
    // delivered by serve's relay, and the sync page soon shows it in sync, compared
    // after the delivery, without "Check now".
    let computed_at = |b: &Client| {
        let b = b.clone();
        async move {
            b.find(Locator::Css("#drift-computed"))
                .await
                .unwrap()
                .attr("data-computed-at")
                .await
                .unwrap()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    b.goto(&format!("{}/console/sync", serve.base))
        .await
        .unwrap();
    let before = computed_at(&b).await;
    // A second later, so the next comparison's time (whole seconds) tells them apart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    home.ok(&["account", "add", "LATE"]);
    let deadline = Instant::now() + WAIT;
    loop {
        b.goto(&format!("{}/console/sync?show=all&q=LATE", serve.base))
            .await
            .unwrap();
        if computed_at(&b).await > before
            && b.find(Locator::Css("#sync-LATE")).await.is_ok()
            && sync_state(&b, "LATE").await == "in-sync"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kept comparison did not follow the relay: {}",
            text_of(&b, "#drift").await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The edit form and the sync page fit a phone's width.
    b.set_window_size(390, 844).await.unwrap();
    for path in ["/console/accounts/SHOP/users/carol/edit", "/console/sync"] {
        b.goto(&format!("{}{path}", serve.base)).await.unwrap();
        let fits = b
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, serde_json::json!(true), "{path} scrolls sideways");
    }
    shot(&b, &format!("{tag}-16-sync-phone")).await;

    b.close().await.unwrap();
    drop(driver);
    drop(serve);
}

#[tokio::test]
async fn browser_edit_drift_usage_nats_2_9() {
    browser_edit_drift_usage(ServerLine::V2_9).await;
}

#[tokio::test]
async fn browser_edit_drift_usage_nats_2_15() {
    browser_edit_drift_usage(ServerLine::V2_15).await;
}

#[tokio::test]
async fn an_unreachable_nats_server_is_reported_within_the_bound() {
    // Nothing listens on this loopback port: connecting is refused.
    let url = format!("nats://127.0.0.1:{}", free_port());
    let c = start_console_on(None, Some(url.clone())).await;
    let admin = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    let csrf = c.csrf(&admin).await;
    let started = Instant::now();
    let html = c
        .get("/console/sync", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"drift-unavailable\"") && html.contains(&url),
        "{html}"
    );
    let html = c
        .get("/console/accounts/SYS", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Not reported"), "{html}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "pages waited {:?}",
        started.elapsed()
    );
    // A push that cannot reach the server: the failure is shown once, nothing else.
    let cookie = format!("warden_console={admin}");
    let res = c
        .post("/console/sync/push/SYS", &cookie, &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = c
        .get("/console/sync", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"sync-notice\"") && html.contains("The push of SYS failed"),
        "{html}"
    );
    let html = c
        .get("/console/sync", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("id=\"sync-notice\""),
        "the notice showed twice"
    );
}

// ---------------------------------------------------------------------------------------
// Governance: directory views and the proposals inbox (plain HTTP, then Chromium)
// ---------------------------------------------------------------------------------------

/// Directory users admin (sysadmin), olivia, ulrich (managed by olivia) and mallory;
/// task `orders` in APP (admin owns it); role `sales` (olivia owns it) holding `orders`
/// (p1, confirmed by admin); open p2 (ulrich joins sales, reason "Q4") and p3 (mallory
/// joins sales).
async fn governance_fixture(c: &Console) {
    use warden_core::directory::NextUser;
    use warden_core::governance::{Change, ProposalKind, TaskGrants};
    use warden_ops::governance::ProposalInput;
    let w = &c.warden;
    w.add_account("APP", Default::default()).await.unwrap();
    let user = |id: &str, name: &str, manager: Option<&str>| NextUser {
        id: id.into(),
        name: Some(name.into()),
        manager: manager.map(str::to_string),
        ..Default::default()
    };
    w.dir_user_add(None, user("admin", "Ada Admin", None), false)
        .await
        .unwrap();
    w.dir_user_add(Some("admin"), user("olivia", "Olivia Owner", None), false)
        .await
        .unwrap();
    w.dir_user_add(
        Some("admin"),
        user("ulrich", "Ulrich User", Some("olivia")),
        false,
    )
    .await
    .unwrap();
    w.dir_user_add(Some("admin"), user("mallory", "Mallory", None), false)
        .await
        .unwrap();
    let orders = nats_jwt::Subject::new("orders.>").unwrap();
    let grants = TaskGrants {
        allow_pub: vec![orders.clone()],
        allow_sub: vec![orders],
        ..Default::default()
    };
    w.task_create(
        Some("admin"),
        "orders",
        "APP",
        grants,
        &["admin".into()],
        None,
    )
    .await
    .unwrap();
    w.role_create(Some("olivia"), "sales", &["olivia".into()], None)
        .await
        .unwrap();
    let propose = |kind, object: &str, related: &str, reason: Option<&str>| ProposalInput {
        kind,
        change: Change::Add,
        object: object.into(),
        related: related.into(),
        reason: reason.map(str::to_string),
        grant_expires_at: None,
        expires_at: None,
    };
    let p1 = w
        .propose(
            "olivia",
            propose(ProposalKind::RoleTask, "sales", "orders", None),
        )
        .await
        .unwrap();
    assert_eq!(p1.id, "p1");
    w.confirm("admin", "p1", Some("sales sells")).await.unwrap();
    let p2 = w
        .propose(
            "ulrich",
            propose(ProposalKind::RoleMember, "sales", "ulrich", Some("Q4")),
        )
        .await
        .unwrap();
    assert_eq!(p2.id, "p2");
    let p3 = w
        .propose(
            "mallory",
            propose(ProposalKind::RoleMember, "sales", "mallory", None),
        )
        .await
        .unwrap();
    assert_eq!(p3.id, "p3");
}

async fn page_text(c: &Console, path: &str, session: &str) -> String {
    let res = c.get(path, Some(session)).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    res.text().await.unwrap()
}

async fn status_of(c: &Console, id: &str) -> warden_core::governance::ProposalStatus {
    c.warden.proposal(id).await.unwrap().proposal.status
}

#[tokio::test]
async fn directory_and_proposals_views_without_javascript() {
    directory_and_proposals_views(start_console().await).await;
}

#[tokio::test]
async fn directory_and_proposals_views_without_javascript_postgres() {
    directory_and_proposals_views(start_console_pg().await).await;
}

async fn directory_and_proposals_views(c: Console) {
    use warden_core::governance::ProposalStatus::{Confirmed, Open, Rejected};
    governance_fixture(&c).await;
    let admin = c.sign_in(&c.token("admin", &[Scope::Admin]).await).await;
    let csrf = c.csrf(&admin).await;
    let cookie = format!("warden_console={admin}");

    // Until a directory user is acted as, Approve and Reject are disabled. Whom to act as
    // is typed or found by a search: the page lists the matches, not the directory.
    let html = page_text(&c, "/console/proposals", &admin).await;
    assert!(
        html.contains("id=\"approve-p2\" disabled>") && html.contains("id=\"reject-p2\" disabled>"),
        "{html}"
    );
    assert!(!html.contains("id=\"act-as-olivia\""), "{html}");
    let html = page_text(&c, "/console/proposals?who=ULRI", &admin).await;
    assert!(
        html.contains("id=\"act-as-ulrich\"") && !html.contains("id=\"act-as-olivia\""),
        "{html}"
    );
    let html = page_text(&c, "/console/proposals?who=nobody-at-all", &admin).await;
    assert!(html.contains("No directory user matches"), "{html}");

    // The directory: users with manager, sysadmin flag and source; roles; tasks.
    let html = page_text(&c, "/console/directory", &admin).await;
    for needle in [
        "<h1>Directory</h1>",
        "4 directory users",
        "1 role",
        "1 task",
        "href=\"/console/directory\" aria-current=\"page\"",
        "href=\"/console/proposals\"",
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    let row = |html: &str, id: &str| {
        let at = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {html}"));
        html[at..].split("</tr>").next().unwrap().to_string()
    };
    let r = row(&html, "dir-user-admin");
    assert!(r.contains("sysadmin") && r.contains("warden"), "{r}");
    let r = row(&html, "dir-user-ulrich");
    assert!(
        r.contains("/console/directory/users/olivia") && !r.contains("sysadmin"),
        "{r}"
    );
    let r = row(&html, "dir-role-sales");
    assert!(
        r.contains("<td>1</td>") && r.contains("/console/directory/tasks/orders"),
        "{r}"
    );
    let r = row(&html, "dir-task-orders");
    assert!(
        r.contains("/console/accounts/APP") && r.contains("orders.&gt;"),
        "{r}"
    );
    let html = page_text(&c, "/console/directory/roles/sales", &admin).await;
    assert!(
        html.contains("<h1>Role sales</h1>") && html.contains("id=\"role-owners\""),
        "{html}"
    );
    let html = page_text(&c, "/console/directory/tasks/orders", &admin).await;
    assert!(
        html.contains("<h1>Task orders</h1>") && html.contains("Publish allow"),
        "{html}"
    );
    assert_eq!(
        c.get("/console/directory/users/nobody", Some(&admin))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let res = c
        .get("/console/directory/users/ulrich?subject=a..b", Some(&admin))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The inbox: open p2, p3 with who may approve; p1 closed by admin.
    let html = page_text(&c, "/console/proposals", &admin).await;
    for needle in [
        "<h1>Proposals</h1>",
        "2 open proposals",
        "1 closed proposal",
        "Not acting",
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    let r = row(&html, "proposal-p2");
    assert!(
        r.contains("role-member")
            && r.contains("PROPOSE_ADD_ROLE_MEMBER")
            && r.contains("Q4")
            && r.contains("Add user <a href=\"/console/directory/users/ulrich\">ulrich</a> as member of role <a href=\"/console/directory/roles/sales\">sales</a>")
            && r.contains("class=\"approvers\"><a href=\"/console/directory/users/olivia\">"),
        "{r}"
    );
    let r = row(&html, "closed-p1");
    assert!(
        r.contains("confirmed") && r.contains("users/admin") && r.contains("sales sells"),
        "{r}"
    );

    // Forms without the CSRF token are refused and change nothing.
    let res = c
        .post("/console/proposals/act-as", &cookie, &[("user", "olivia")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c
        .post(
            "/console/proposals/decide",
            &cookie,
            &[("one", "confirm:p2")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(status_of(&c, "p2").await, Open);
    // Deciding before picking whom to act as is a clear error.
    let res = c
        .post(
            "/console/proposals/decide",
            &cookie,
            &[("csrf", &csrf), ("one", "confirm:p2")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("act as"));
    // An unknown directory user cannot be acted as.
    let res = c
        .post(
            "/console/proposals/act-as",
            &cookie,
            &[("csrf", &csrf), ("user", "nobody")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // A read-only token may look but not act.
    let reader = c.sign_in(&c.token("reader", &[Scope::Read]).await).await;
    let rcsrf = csrf_in(&page_text(&c, "/console/proposals", &reader).await);
    let res = c
        .post(
            "/console/proposals/act-as",
            &format!("warden_console={reader}"),
            &[("csrf", &rcsrf), ("user", "admin")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        !page_text(&c, "/console/proposals", &reader)
            .await
            .contains("id=\"decide\"")
    );

    // Mallory may approve nothing: the filter shows nothing, and her confirm is refused
    // with the rule in words; p2 stays open.
    let res = c
        .post(
            "/console/proposals/act-as",
            &cookie,
            &[("csrf", &csrf), ("user", "mallory")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = page_text(&c, "/console/proposals?show=to-approve", &admin).await;
    assert!(
        html.contains("0 open proposals") && html.contains("Acting as"),
        "{html}"
    );
    let res = c
        .post(
            "/console/proposals/decide",
            &cookie,
            &[
                ("csrf", &csrf),
                ("one", "confirm:p2"),
                ("justification", "me"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = page_text(&c, "/console/proposals", &admin).await;
    let at = html.find("id=\"proposal-results\"").expect("results shown");
    let results = html[at..].split("</div>").next().unwrap();
    assert!(
        results.contains("p2: not confirmed: refused: mallory may not close")
            && results.contains("olivia")
            && html[..at].ends_with("role=\"alert\" "),
        "{results}"
    );
    assert_eq!(status_of(&c, "p2").await, Open);
    assert!(
        c.warden
            .dir_user("ulrich")
            .await
            .unwrap()
            .nats_accounts
            .is_empty()
    );
    // The notice is shown once.
    assert!(
        !page_text(&c, "/console/proposals", &admin)
            .await
            .contains("proposal-results")
    );

    // Olivia (owner of sales) approves a batch: p2 and p3 confirmed, an unknown id fails;
    // one result per id.
    c.post(
        "/console/proposals/act-as",
        &cookie,
        &[("csrf", &csrf), ("user", "olivia")],
    )
    .await;
    let html = page_text(&c, "/console/proposals?show=to-approve", &admin).await;
    assert!(html.contains("2 open proposals"), "{html}");
    let res = c
        .post(
            "/console/proposals/decide",
            &cookie,
            &[
                ("csrf", &csrf),
                ("justification", "welcome"),
                ("id", "p2"),
                ("id", "p99"),
                ("batch", "confirm"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = page_text(&c, "/console/proposals", &admin).await;
    assert!(
        html.contains("p2: confirmed as olivia (1 NATS user(s) re-issued)")
            && html.contains("p99: not confirmed: proposal p99 not found"),
        "{html}"
    );
    let p2 = c.warden.proposal("p2").await.unwrap().proposal;
    assert_eq!(p2.status, Confirmed);
    assert_eq!(p2.closer.as_deref(), Some("olivia"));
    assert_eq!(p2.justification.as_deref(), Some("welcome"));
    let r = row(&html, "closed-p2");
    assert!(r.contains("welcome") && r.contains("users/olivia"), "{r}");

    // A rejection needs a reason; with one, p3 is rejected.
    c.post(
        "/console/proposals/decide",
        &cookie,
        &[("csrf", &csrf), ("one", "reject:p3")],
    )
    .await;
    assert!(
        page_text(&c, "/console/proposals", &admin)
            .await
            .contains("p3: not rejected")
    );
    assert_eq!(status_of(&c, "p3").await, Open);
    c.post(
        "/console/proposals/decide",
        &cookie,
        &[
            ("csrf", &csrf),
            ("id", "p3"),
            ("reason", "not sales"),
            ("batch", "reject"),
        ],
    )
    .await;
    assert!(
        page_text(&c, "/console/proposals", &admin)
            .await
            .contains("p3: rejected as olivia")
    );
    assert_eq!(status_of(&c, "p3").await, Rejected);

    // A new proposal from the console, as olivia: the form is on the page; without the
    // CSRF value or with a bad kind nothing is proposed; what the rules refuse is shown.
    assert!(
        page_text(&c, "/console/proposals", &admin)
            .await
            .contains("id=\"propose\"")
    );
    let fields = |kind: &'static str, object: &'static str| {
        vec![
            ("kind", kind),
            ("change", "add"),
            ("object", object),
            ("related", "mallory"),
            ("reason", "second try"),
            ("grant_expires", "30d"),
        ]
    };
    let res = c
        .post(
            "/console/proposals/new",
            &cookie,
            &fields("role-member", "sales"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let mut bad = fields("role-boss", "sales");
    bad.push(("csrf", &csrf));
    let res = c.post("/console/proposals/new", &cookie, &bad).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("unknown proposal kind"));
    let mut unknown = fields("role-member", "nosuchrole");
    unknown.push(("csrf", &csrf));
    let res = c.post("/console/proposals/new", &cookie, &unknown).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = page_text(&c, "/console/proposals", &admin).await;
    assert!(html.contains("not proposed:"), "{html}");
    assert!(c.warden.proposal("p4").await.is_err(), "nothing proposed");
    let mut good = fields("role-member", "sales");
    good.push(("csrf", &csrf));
    let res = c.post("/console/proposals/new", &cookie, &good).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let html = page_text(&c, "/console/proposals", &admin).await;
    assert!(
        html.contains("p4: proposed as olivia (PROPOSE_ADD_ROLE_MEMBER); may approve: olivia"),
        "{html}"
    );
    let p4 = c.warden.proposal("p4").await.unwrap().proposal;
    assert_eq!(p4.initiator, "olivia");
    assert_eq!(p4.reason.as_deref(), Some("second try"));
    let grant = p4.grant_expires_at.expect("grant expiry");
    assert!(
        (grant - warden_ops::now() - 30 * 86_400).abs() < 60,
        "{grant}"
    );
    assert!(row(&html, "proposal-p4").contains("second try"));

    // Ulrich's page: his role, held task, NATS user in APP, and explain.
    let html = page_text(&c, "/console/directory/users/ulrich", &admin).await;
    assert!(
        html.contains("<h1>Directory user ulrich</h1>")
            && html.contains("Held tasks")
            && html.contains("href=\"/console/accounts/APP/users/ulrich\""),
        "{html}"
    );
    let html = page_text(
        &c,
        "/console/directory/users/ulrich?subject=orders.new&account=APP",
        &admin,
    )
    .await;
    assert!(
        html.contains("data-direction=\"publish\" data-allowed=\"true\"")
            && html.contains("data-direction=\"subscribe\" data-allowed=\"true\""),
        "{html}"
    );
    let html = page_text(
        &c,
        "/console/directory/users/ulrich?subject=billing.x&account=APP",
        &admin,
    )
    .await;
    assert!(
        html.contains("data-direction=\"publish\" data-allowed=\"false\""),
        "{html}"
    );
}

/// Waits (bounded) until the open page's live stream is connected.
async fn live_open(b: &Client) {
    let deadline = Instant::now() + WAIT;
    loop {
        let state = b
            .execute(
                "return document.getElementById('live').dataset.state;",
                vec![],
            )
            .await
            .unwrap();
        if state == "live" && text_of(b, "#live").await.starts_with("Live:") {
            return;
        }
        assert!(Instant::now() < deadline, "live stream did not open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser_proposals(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let tag = format!("v{}", bin.version.replace('.', "_"));
    eprintln!("running against nats-server {}", bin.version);
    let home = Home::new();
    home.ok(&["init", "--name", "GOVWEBOP"]);
    let token = home.json(&["token", "create", "--name", "browser", "--scope", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    home.ok(&["account", "add", "APP"]);
    home.ok(&["dir", "user", "add", "admin", "--name", "Ada Admin"]);
    home.ok(&[
        "dir", "user", "add", "olivia", "--name", "Olivia", "--as", "admin",
    ]);
    home.ok(&[
        "dir",
        "user",
        "add",
        "ulrich",
        "--name",
        "Ulrich",
        "--manager",
        "olivia",
        "--as",
        "admin",
    ]);
    home.ok(&[
        "task",
        "create",
        "status-read",
        "--account",
        "APP",
        "--allow-sub",
        "status.>",
        "--owner",
        "admin",
        "--as",
        "admin",
    ]);
    home.ok(&[
        "task",
        "create",
        "orders",
        "--account",
        "APP",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "orders.>",
        "--owner",
        "admin",
        "--as",
        "admin",
    ]);
    home.ok(&[
        "role", "create", "readers", "--owner", "olivia", "--as", "olivia",
    ]);
    home.ok(&[
        "role", "create", "sales", "--owner", "olivia", "--as", "olivia",
    ]);
    for (role, task) in [("readers", "status-read"), ("sales", "orders")] {
        let p = home.json(&[
            "propose",
            "role-task",
            "add",
            "--role",
            role,
            "--task",
            task,
            "--as",
            "olivia",
        ]);
        home.ok(&["confirm", p["id"].as_str().unwrap(), "--as", "admin"]);
    }
    // Ulrich reads status already (so he has a NATS user whose re-issue we can see).
    let p = home.json(&[
        "propose",
        "role-member",
        "add",
        "--role",
        "readers",
        "--user",
        "ulrich",
        "--as",
        "ulrich",
    ]);
    home.ok(&["confirm", p["id"].as_str().unwrap(), "--as", "olivia"]);
    let before = home.json(&["user", "show", "ulrich", "-a", "APP"]);
    let server = home.start_nats(&bin, "main");
    let nats = server.url();
    let serve = Serve::start(&home, &nats);
    relay_drained(&home).await;
    let driver = Driver::start().await;
    let downloads = home.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let b = driver.chromium(1280, 900, Some(&downloads)).await;

    b.goto(&format!("{}/console/login", serve.base))
        .await
        .unwrap();
    fill(&b, "#token", &token).await;
    click(&b, "form button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#count-accounts"))
        .await
        .unwrap();

    // The directory.
    click(&b, "nav a[href='/console/directory']").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#dir-user-ulrich"))
        .await
        .unwrap();
    assert!(text_of(&b, "#dir-role-sales").await.contains("orders"));
    shot(&b, &format!("{tag}-gov-01-directory")).await;

    // The inbox; act as olivia (remembered by the session across pages).
    click(&b, "nav a[href='/console/proposals']").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#act-as-user"))
        .await
        .unwrap();
    // The directory is searched, not listed: find olivia, act as her.
    fill(&b, "#act-as-q", "oliv").await;
    submit(&b, "#act-as-find button[type=submit]").await;
    assert!(text_of(&b, "#act-as-found").await.contains("matching"));
    click(&b, "#act-as-olivia").await;
    let acting = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#acting a"))
        .await
        .unwrap();
    assert_eq!(acting.text().await.unwrap(), "olivia");
    live_open(&b).await;

    // Ulrich proposes from the CLI; the proposal appears without reload.
    b.execute("window.__noReload = 7;", vec![]).await.unwrap();
    let p = home.json(&[
        "propose",
        "role-member",
        "add",
        "--role",
        "sales",
        "--user",
        "ulrich",
        "--reason",
        "Q4 orders",
        "--as",
        "ulrich",
    ]);
    let pid = p["id"].as_str().unwrap().to_string();
    let row = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("#proposal-{pid}")))
        .await
        .unwrap_or_else(|e| panic!("{pid} did not appear without reload: {e}"));
    let text = row.text().await.unwrap();
    assert!(
        text.contains("Q4 orders") && text.contains("olivia"),
        "{text}"
    );
    assert_eq!(
        b.execute("return window.__noReload;", vec![])
            .await
            .unwrap(),
        serde_json::json!(7),
        "the page was reloaded"
    );
    // Ticks and typed text survive the live refresh a further proposal brings.
    click(&b, &format!("#pick-{pid}")).await;
    fill(&b, "#justification", "welcome to sales").await;
    let p2 = home.json(&[
        "propose",
        "role-owner",
        "add",
        "--role",
        "sales",
        "--user",
        "ulrich",
        "--as",
        "ulrich",
    ]);
    let pid2 = p2["id"].as_str().unwrap().to_string();
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("#proposal-{pid2}")))
        .await
        .unwrap_or_else(|e| panic!("{pid2} did not appear without reload: {e}"));
    let kept = b
        .execute(
            &format!(
                "return [document.getElementById('pick-{pid}').checked, document.getElementById('justification').value];"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!([true, "welcome to sales"]));
    shot(&b, &format!("{tag}-gov-02-inbox")).await;

    // Approve it (its row's button: only that one, whatever else is ticked).
    click(&b, &format!("#approve-{pid}")).await;
    let results = b
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#proposal-results"))
        .await
        .unwrap();
    let text = results.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "{pid}: confirmed as olivia (1 NATS user(s) re-issued)"
        )),
        "{text}"
    );
    shot(&b, &format!("{tag}-gov-03-approved")).await;
    let list = home.json(&["proposals", "list"]);
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == pid.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(mine["status"], "confirmed", "{mine}");
    assert_eq!(mine["closer"], "olivia", "{mine}");
    assert_eq!(mine["justification"], "welcome to sales", "{mine}");
    let other = list
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == pid2.as_str())
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(other["status"], "open", "{other}");

    // Ulrich's NATS user was re-issued with the task's grants.
    let after = home.json(&["user", "show", "ulrich", "-a", "APP"]);
    assert_ne!(after["public_key"], before["public_key"], "{after}");
    let described = home.json(&["describe", after["jwt"].as_str().unwrap()]);
    let nats_claims = &described["claims"]["nats"];
    assert!(
        nats_claims["pub"]["allow"]
            .as_array()
            .is_some_and(|a| a.contains(&serde_json::json!("orders.>"))),
        "{described}"
    );

    // The explain form on ulrich's directory page.
    b.goto(&format!("{}/console/directory/users/ulrich", serve.base))
        .await
        .unwrap();
    fill(&b, "#explain-subject", "orders.new").await;
    click(&b, "#dir-explain button[type=submit]").await;
    b.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(
            "#explain-result tr[data-direction='publish'][data-allowed='true']",
        ))
        .await
        .unwrap();
    shot(&b, &format!("{tag}-gov-04-explain")).await;

    // The server lets the new creds publish on the task's subject (once the relay has
    // pushed the account with the revocation) and refuses others.
    relay_drained(&home).await;
    let creds = home.ok(&["creds", "APP", "ulrich"]);
    let mut c = connect(&nats, &creds).await.expect("the new creds connect");
    let mut sub = c.client.subscribe("orders.new").await.unwrap();
    c.client.flush().await.unwrap();
    c.client.publish("orders.new", "yes".into()).await.unwrap();
    c.client.flush().await.unwrap();
    let m = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut sub))
        .await
        .expect("orders.new delivered")
        .expect("subscription open");
    assert_eq!(&m.payload[..], b"yes");
    c.client.publish("billing.x", "no".into()).await.unwrap();
    c.client.flush().await.unwrap();
    let e = c.next_error(WAIT).await.expect("billing.x refused");
    assert!(e.to_lowercase().contains("permissions violation"), "{e}");

    b.close().await.unwrap();
    drop(driver);
    drop(serve);
}

#[tokio::test]
async fn browser_proposals_nats_2_9() {
    browser_proposals(ServerLine::V2_9).await;
}

#[tokio::test]
async fn browser_proposals_nats_2_15() {
    browser_proposals(ServerLine::V2_15).await;
}
