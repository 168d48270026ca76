//! The console's test helpers shared by its browser and plain-HTTP tests: a headless
//! Chromium session on a [`Driver`], the element helpers every browser test uses (each
//! wait bounded), screenshots into `target/console-shots/`, and signing in to the console
//! over plain HTTP (the login form's double-submit cookie and CSRF field).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::chromedriver::Driver;

/// How long a browser helper waits for an element or a page.
pub const WAIT: Duration = Duration::from_secs(20);

impl Driver {
    /// A headless Chromium session (`$WARDEN_CHROMIUM`, default `/usr/bin/chromium`) with
    /// a window of `width`×`height`, saving downloads into `downloads` when given.
    pub async fn chromium(&self, width: u32, height: u32, downloads: Option<&Path>) -> Client {
        let mut options = serde_json::json!({
            "binary": std::env::var("WARDEN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}")],
        });
        if let Some(dir) = downloads {
            options["prefs"] = serde_json::json!({
                "download.default_directory": dir.to_str().expect("utf-8 path"),
                "download.prompt_for_download": false,
            });
        }
        let serde_json::Value::Object(caps) = serde_json::json!({ "goog:chromeOptions": options })
        else {
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

/// `target/console-shots/` of the workspace, made if missing.
pub fn shots_dir() -> PathBuf {
    // CARGO_MANIFEST_DIR is crates/warden; the workspace target/ is two levels up.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-shots");
    std::fs::create_dir_all(&dir).expect("shots dir");
    dir
}

/// A screenshot of the page as `target/console-shots/<name>.png`.
pub async fn shot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).expect("write screenshot");
}

/// Types `text` into the field `css` (cleared first).
pub async fn fill(b: &Client, css: &str, text: &str) {
    let field = b
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Clicks the element `css`.
pub async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Picks `value` in the select `css`.
pub async fn select(b: &Client, css: &str, value: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}

/// The `value` of the field `css`.
pub async fn value_of(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .unwrap_or_default()
}

/// Whether an element reference went away under a page change or a live update: Chromium
/// says "stale element" or, mid-replacement, that the node "does not belong to the
/// document".
fn gone(e: &fantoccini::error::CmdError) -> bool {
    let t = e.to_string();
    t.contains("stale element") || t.contains("does not belong to the document")
}

/// The text of the element `css`, waited for (bounded). A live update or the answer to a
/// form may replace the element between finding and reading it: then it is found again.
pub async fn text_of(b: &Client, css: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let el = b
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match el.text().await {
            Ok(t) => return t,
            Err(e) if gone(&e) => {
                assert!(Instant::now() < deadline, "{css}: still stale: {e}");
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

/// Submits a form with the button at `css` and waits (bounded) until the page it leaves
/// is gone, so what is read next is the answer's page, not the form's.
pub async fn submit(b: &Client, css: &str) {
    let old = b
        .find(Locator::Css("html"))
        .await
        .unwrap_or_else(|e| panic!("html: {e}"));
    click(b, css).await;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Err(e) = old.tag_name().await
            && gone(&e)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{css}: the page did not change");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the page's path ends with `suffix`.
pub async fn wait_path(b: &Client, suffix: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let path = b.current_url().await.expect("url").path().to_string();
        if path.ends_with(suffix) {
            return;
        }
        assert!(Instant::now() < deadline, "still on {path}, not …{suffix}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in on the console's login page in the browser with `token`, and waits for the
/// overview.
pub async fn browser_sign_in(b: &Client, base: &str, token: &str) {
    b.goto(&format!("{base}/console/login"))
        .await
        .expect("login page");
    fill(b, "#token", token).await;
    click(b, "form button[type=submit]").await;
    text_of(b, "#count-accounts").await;
}

// ---------------------------------------------------------------------------------------
// Plain HTTP
// ---------------------------------------------------------------------------------------

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
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

/// The value of the first hidden `csrf` field in `html`.
pub fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..]
        .split('"')
        .next()
        .expect("csrf value")
        .to_string()
}

/// The whole `Set-Cookie` header that sets cookie `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value a `Set-Cookie` header sets.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("name=value")
}

/// Signs in to the console at `base` with `token` over plain HTTP (`http` must not follow
/// redirects): the session id (the `warden_console` cookie's value).
pub async fn sign_in(http: &reqwest::Client, base: &str, token: &str) -> String {
    let page = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .expect("login page");
    let login =
        cookie_value(&set_cookie(page.headers(), "warden_console_login").expect("login cookie"));
    let html = page.text().await.expect("login page text");
    let res = http
        .post(format!("{base}/console/login"))
        .header("cookie", format!("warden_console_login={login}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", token), ("csrf", &csrf_in(&html))]))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console");
    cookie_value(&set_cookie(res.headers(), "warden_console").expect("session cookie"))
}
