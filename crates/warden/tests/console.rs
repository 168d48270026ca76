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

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Home, Serve, connect};
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use warden::http::{self, HttpState};
use warden::ops::{InitOptions, Settings, Warden};
use warden::tokens::{self, Scope};
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
}

async fn start_console() -> Console {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("warden.db").display());
    let store = Store::open(&url, MasterKey::from_bytes([7; 32]))
        .await
        .unwrap();
    let mut warden = Warden::open(store.clone(), "test").await.unwrap();
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
    tokio::spawn(http::serve(listener, state, None, async move {
        let _ = rx.await;
    }));
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
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap()
}

/// The value of the first hidden `csrf` field in `html`.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
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
        let page = self.get("/console/login", None).await;
        let login = cookie_value(&set_cookie(page.headers(), "warden_console_login").unwrap());
        let html = page.text().await.unwrap();
        let res = self
            .post(
                "/console/login",
                &format!("warden_console_login={login}"),
                &[("token", token), ("csrf", &csrf_in(&html))],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        cookie_value(&set_cookie(res.headers(), "warden_console").unwrap())
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
    tokens::revoke_token(&c.store, "test", &list[0].id)
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
        .with_actor("cli:test")
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

/// `chromedriver` on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let bin =
            std::env::var("WARDEN_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&bin).exists(),
            "{bin} is missing: install chromium and chromium-driver (scripts/test does)"
        );
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(res) = reqwest::get(format!("{url}/status")).await
                && res.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }

    async fn browser(&self, downloads: &Path) -> Client {
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": std::env::var("WARDEN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
                "prefs": {
                    "download.default_directory": downloads.to_str().unwrap(),
                    "download.prompt_for_download": false,
                }
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        builder
            .connect(&self.url)
            .await
            .expect("a headless Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn shots_dir() -> PathBuf {
    // CARGO_MANIFEST_DIR is crates/warden; the workspace target/ is two levels up.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn fill(b: &Client, css: &str, text: &str) {
    let field = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

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
    let b = driver.browser(&downloads).await;

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
    click(&b, "form[action='/console/accounts'] button").await;
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
