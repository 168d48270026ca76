//! The console's account-model forms, driven in a real headless Chromium (Debian
//! `chromium` + `chromium-driver`, fantoccini) against a real `warden serve` and
//! nats-server (2.9 and 2.15), with the JWTs Warden signs read back through the CLI:
//!
//! - a private export added on one account and imported by another through the forms: the
//!   exporter's JWT says `token_req`, the importer's import carries the activation; an
//!   import with a bad local subject shows its error on the form, keeps what was typed and
//!   changes nothing;
//! - a role (scoped signing key with a template) added and a user added by that role: the
//!   user page shows the template expanded for the user and its check answers as the
//!   server does; the user connects and the server enforces the expanded template; the
//!   user's key rotated from its page (the new creds are the answer, the old key revoked);
//! - a subject mapping added (a weight over 100 refused first, values kept, nothing
//!   changed); the settings form (tags, info URL, default permissions);
//! - the operator page: an operator signing key rotation started (the CLI sees phase
//!   `trust`);
//! - plain HTTP: a read-only session sees the sections without forms and its POSTs are
//!   refused by the operation (nothing changed); a write session without `creds` is not
//!   offered the user key rotation, nor the operator's buttons (admin); a form without
//!   the CSRF token is refused; a JetStream tier set through the settings form (a bad
//!   tier name first: shown with the typed values, nothing changed).

mod common;

use std::time::{Duration, Instant};

use common::browser::{
    self, click, csrf_in, fill, select, shot, submit, text_of, value_of, wait_path,
};
use common::chromedriver::Driver;
use common::{Home, Serve, connect};
use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(20);

/// The claims of account `name`'s JWT, as `warden account show --json` gives it.
fn account_claims(home: &Home, name: &str) -> Value {
    let jwt = home.json(&["account", "show", name])["jwt"]
        .as_str()
        .unwrap()
        .to_string();
    let body = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&BASE64URL_NOPAD.decode(body.as_bytes()).unwrap()).unwrap()
}

fn account_jwt(home: &Home, name: &str) -> String {
    home.json(&["account", "show", name])["jwt"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn account_model(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let tag = format!("model-v{}", bin.version.replace('.', "_"));
    let home = Home::new();
    home.ok(&["init", "--name", "MODELOP"]);
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&["account", "add", "BILLING"]);
    let token = home.json(&["token", "create", "--name", "browser", "--scope", "admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let server = home.start_nats(&bin, "main");
    let nats = server.url();
    let serve = Serve::start(&home, &nats);
    let driver = Driver::start().await;
    let b = driver.chromium(1280, 900, None).await;
    let base = serve.base.clone();

    b.goto(&format!("{base}/console/login")).await.unwrap();
    fill(&b, "#token", &token).await;
    submit(&b, "form button[type=submit]").await;
    text_of(&b, "#count-accounts").await;

    // A private service export on SHOP.
    b.goto(&format!("{base}/console/accounts/SHOP"))
        .await
        .unwrap();
    click(&b, "#add-export summary").await;
    fill(&b, "#export-subject", "orders.>").await;
    select(&b, "#export-kind", "service").await;
    fill(&b, "#export-name", "orders").await;
    click(&b, "#export-private").await;
    submit(&b, "#add-export button[type=submit]").await;
    let exports = text_of(&b, "#exports").await;
    assert!(
        exports.contains("orders.>") && exports.contains("private"),
        "{exports}"
    );
    let shop = account_claims(&home, "SHOP");
    let export = &shop["nats"]["exports"][0];
    assert_eq!(export["subject"], "orders.>", "{shop}");
    assert_eq!(export["type"], "service", "{shop}");
    assert_eq!(export["token_req"], true, "{shop}");

    // A bad import on BILLING: the error on the form, the typed values kept, nothing changed.
    let billing_before = account_jwt(&home, "BILLING");
    b.goto(&format!("{base}/console/accounts/BILLING"))
        .await
        .unwrap();
    click(&b, "#add-import summary").await;
    select(&b, "#import-export", "SHOP orders.>").await;
    fill(&b, "#import-local", "billing..orders").await;
    submit(&b, "#add-import button[type=submit]").await;
    let err = text_of(&b, "#imports #form-error").await;
    assert!(err.contains("Local subject"), "{err}");
    assert_eq!(value_of(&b, "#import-local").await, "billing..orders");
    assert_eq!(value_of(&b, "#import-export").await, "SHOP orders.>");
    shot(&b, &format!("{tag}-01-import-error")).await;
    assert_eq!(account_jwt(&home, "BILLING"), billing_before);

    // The import, corrected: it carries the activation SHOP's key issued.
    fill(&b, "#import-local", "").await;
    fill(&b, "#import-subject", "orders.new").await;
    submit(&b, "#add-import button[type=submit]").await;
    let imports = text_of(&b, "#imports").await;
    assert!(
        imports.contains("orders.new") && imports.contains("activation"),
        "{imports}"
    );
    let billing = account_claims(&home, "BILLING");
    let import = &billing["nats"]["imports"][0];
    assert_eq!(import["subject"], "orders.new", "{billing}");
    assert_eq!(import["account"], shop["sub"], "{billing}");
    assert!(
        import["token"].as_str().is_some_and(|t| t.len() > 20),
        "{billing}"
    );
    // The exporter's page names the importer and its activation.
    b.goto(&format!("{base}/console/accounts/SHOP"))
        .await
        .unwrap();
    let exports = text_of(&b, "#exports").await;
    assert!(
        exports.contains("BILLING imports orders.new") && exports.contains("activation"),
        "{exports}"
    );

    // A role with a template, and a user added by it.
    click(&b, "#add-role summary").await;
    fill(&b, "#role-name", "clerk").await;
    fill(&b, "#role-pub-allow", "orders.{{name()}}.>").await;
    fill(&b, "#role-sub-allow", "_INBOX.>").await;
    submit(&b, "#add-role button[type=submit]").await;
    let keys = text_of(&b, "#signing-keys").await;
    assert!(
        keys.contains("role clerk") && keys.contains("signed 0 users"),
        "{keys}"
    );
    let shop = account_claims(&home, "SHOP");
    let scoped = &shop["nats"]["signing_keys"][0];
    assert_eq!(scoped["kind"], "user_scope", "{shop}");
    assert_eq!(scoped["role"], "clerk", "{shop}");
    assert_eq!(
        scoped["template"]["pub"]["allow"][0], "orders.{{name()}}.>",
        "{shop}"
    );

    fill(&b, "#user-name", "dora").await;
    select(&b, "#user-role", "clerk").await;
    submit(&b, "form[action='/console/accounts/SHOP/users'] button").await;
    wait_path(&b, "/console/accounts/SHOP/users/dora").await;
    let effective = text_of(&b, "#effective").await;
    assert!(
        effective.contains("role clerk") && effective.contains("orders.dora.>"),
        "{effective}"
    );
    shot(&b, &format!("{tag}-02-role-user")).await;
    // The page's check answers as the server decides for a role's user.
    fill(&b, "#check-subject", "orders.eve.x").await;
    submit(&b, "form[method=get] button").await;
    let answer = text_of(&b, "#check-result").await;
    assert!(answer.starts_with("Denied"), "{answer}");
    fill(&b, "#check-subject", "orders.dora.x").await;
    submit(&b, "form[method=get] button").await;
    let answer = text_of(&b, "#check-result").await;
    assert!(answer.starts_with("Allowed"), "{answer}");
    // The server enforces the expanded template.
    let creds = home.ok(&["creds", "SHOP", "dora"]);
    home.wait_delivered();
    let deadline = Instant::now() + WAIT;
    let mut dora = loop {
        match connect(&nats, &creds).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "dora cannot connect: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    dora.publish_refused("orders.eve.x", "another user's subject")
        .await;
    // Back on the account page, the role's key counts its user.
    b.goto(&format!("{base}/console/accounts/SHOP"))
        .await
        .unwrap();
    let keys = text_of(&b, "#signing-keys").await;
    assert!(
        keys.contains("signed 1 user") && !keys.contains("signed 1 users"),
        "{keys}"
    );

    // Rotating dora's key (a session with the creds scope): the answer is the new creds,
    // as a download; the old key is revoked in the account.
    b.goto(&format!("{base}/console/accounts/SHOP/users/dora"))
        .await
        .unwrap();
    let csrf = value_of(&b, "form[action$='/rotate'] input[name=csrf]").await;
    let sid = b
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .find(|c| c.name() == "warden_console")
        .expect("session cookie")
        .value()
        .to_string();
    let old_key = home.json(&["user", "show", "dora", "-a", "SHOP"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let res = reqwest::Client::new()
        .post(format!("{base}/console/accounts/SHOP/users/dora/rotate"))
        .header("cookie", format!("warden_console={sid}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.contains("SHOP-dora.creds"), "{disposition}");
    let new_creds = res.text().await.unwrap();
    assert!(new_creds.contains("BEGIN NATS USER JWT"), "{new_creds}");
    let new_key = home.json(&["user", "show", "dora", "-a", "SHOP"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_key, old_key);
    let shop = account_claims(&home, "SHOP");
    assert!(shop["nats"]["revocations"][&old_key].is_number(), "{shop}");
    drop(dora);
    b.goto(&format!("{base}/console/accounts/SHOP"))
        .await
        .unwrap();

    // A mapping: a weight over 100 refused with the values kept, then a good one.
    let shop_before = account_jwt(&home, "SHOP");
    click(&b, "#add-mapping summary").await;
    fill(&b, "#mapping-from", "legacy.orders").await;
    fill(&b, "#mapping-to", "orders.legacy").await;
    fill(&b, "#mapping-weight", "150").await;
    submit(&b, "#add-mapping button[type=submit]").await;
    let err = text_of(&b, "#mappings #form-error").await;
    assert!(err.contains("Weight"), "{err}");
    assert_eq!(value_of(&b, "#mapping-from").await, "legacy.orders");
    assert_eq!(value_of(&b, "#mapping-weight").await, "150");
    assert_eq!(account_jwt(&home, "SHOP"), shop_before);
    fill(&b, "#mapping-weight", "40").await;
    submit(&b, "#add-mapping button[type=submit]").await;
    let mappings = text_of(&b, "#mappings").await;
    assert!(
        mappings.contains("legacy.orders")
            && mappings.contains("40%")
            && mappings.contains("60% unmapped"),
        "{mappings}"
    );
    let shop = account_claims(&home, "SHOP");
    let m = &shop["nats"]["mappings"]["legacy.orders"][0];
    assert_eq!(m["subject"], "orders.legacy", "{shop}");
    assert_eq!(m["weight"], 40, "{shop}");

    // Settings: tags, info URL and default permissions.
    click(&b, "#edit-settings").await;
    fill(&b, "#tags", "retail eu").await;
    fill(&b, "#info_url", "https://example.com/shop").await;
    fill(&b, "#default_sub_allow", "_INBOX.>").await;
    submit(&b, "#settings-edit button[type=submit]").await;
    wait_path(&b, "/console/accounts/SHOP").await;
    let settings = text_of(&b, "#settings").await;
    assert!(
        settings.contains("retail") && settings.contains("https://example.com/shop"),
        "{settings}"
    );
    let shop = account_claims(&home, "SHOP");
    assert_eq!(
        shop["nats"]["info_url"], "https://example.com/shop",
        "{shop}"
    );
    assert_eq!(
        shop["nats"]["default_permissions"]["sub"]["allow"][0], "_INBOX.>",
        "{shop}"
    );
    shot(&b, &format!("{tag}-03-account")).await;

    // The operator page: start a signing key rotation.
    b.goto(&format!("{base}/console/operator")).await.unwrap();
    let keys = text_of(&b, "#operator-keys").await;
    assert!(keys.contains("issues accounts"), "{keys}");
    submit(&b, "#rotate-operator").await;
    let notice = text_of(&b, "#operator-notice").await;
    assert!(notice.contains("Rotation started"), "{notice}");
    let phase = text_of(&b, "#rotation-phase").await;
    assert!(phase.contains("trust the new key"), "{phase}");
    shot(&b, &format!("{tag}-04-operator")).await;
    let listed = home.json(&["operator", "signing-key", "list"]);
    assert_eq!(listed["rotation"]["phase"], "trust", "{listed}");

    b.close().await.unwrap();
    drop(driver);
    drop(serve);
}

#[tokio::test]
async fn account_model_forms_nats_2_9() {
    account_model(ServerLine::V2_9).await;
}

#[tokio::test]
async fn account_model_forms_nats_2_15() {
    account_model(ServerLine::V2_15).await;
}

// ---------------------------------------------------------------------------------------
// Plain HTTP: scopes and CSRF on the account-model forms
// ---------------------------------------------------------------------------------------

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    /// Signs in with `token`: the session cookie header.
    async fn sign_in(&self, token: &str) -> String {
        format!(
            "warden_console={}",
            browser::sign_in(&self.client, &self.base, token).await
        )
    }

    async fn page(&self, cookie: &str, path: &str) -> String {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK, "{path}");
        res.text().await.unwrap()
    }

    async fn post(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(browser::form(form))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn account_model_forms_follow_scopes_and_need_csrf() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    home.ok(&["init", "--name", "SCOPEOP"]);
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&["user", "add", "u", "-a", "SHOP"]);
    let token = |name: &str, scopes: &[&str]| {
        let mut args = vec!["token", "create", "--name", name];
        for s in scopes {
            args.extend(["--scope", s]);
        }
        home.json(&args)["token"].as_str().unwrap().to_string()
    };
    let reader = token("reader", &["read"]);
    let writer = token("writer", &["read", "write"]);
    let admin = token("admin", &["admin"]);
    let server = home.start_nats(&bin, "main");
    let serve = Serve::start(&home, &server.url());
    let http = Http {
        base: serve.base.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };

    // Read only: the sections are listed, no form or button of the account model.
    let r = http.sign_in(&reader).await;
    let html = http.page(&r, "/console/accounts/SHOP").await;
    for id in [
        "id=\"exports\"",
        "id=\"imports\"",
        "id=\"signing-keys\"",
        "id=\"mappings\"",
        "id=\"settings\"",
    ] {
        assert!(html.contains(id), "{id} missing");
    }
    for form in [
        "add-export",
        "add-plain-key",
        "add-role",
        "add-mapping",
        "edit-settings",
    ] {
        assert!(
            !html.contains(&format!("id=\"{form}\"")),
            "{form} offered to a reader"
        );
    }
    let user = http.page(&r, "/console/accounts/SHOP/users/u").await;
    assert!(!user.contains("rotate-user"));
    let op = http.page(&r, "/console/operator").await;
    assert!(op.contains("issues accounts") && !op.contains("rotate-operator"));
    // The operation decides: a reader's POST (with its CSRF token) is refused, nothing changes.
    let before = account_jwt(&home, "SHOP");
    let csrf = csrf_in(&html);
    let res = http
        .post(
            &r,
            "/console/accounts/SHOP/mappings",
            &[("csrf", &csrf), ("from", "a"), ("to", "b")],
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("Nothing was changed"));
    assert_eq!(account_jwt(&home, "SHOP"), before);

    // Write without creds: forms offered, but no user key rotation (it hands out creds),
    // and no operator key buttons (admin).
    let w = http.sign_in(&writer).await;
    let html = http.page(&w, "/console/accounts/SHOP").await;
    for form in [
        "add-export",
        "add-plain-key",
        "add-role",
        "add-mapping",
        "edit-settings",
    ] {
        assert!(
            html.contains(&format!("id=\"{form}\"")),
            "{form} not offered to a writer"
        );
    }
    let user = http.page(&w, "/console/accounts/SHOP/users/u").await;
    assert!(!user.contains("rotate-user"));
    let op = http.page(&w, "/console/operator").await;
    assert!(!op.contains("rotate-operator") && !op.contains("add-operator-key"));
    let csrf = csrf_in(&html);
    let res = http
        .post(&w, "/console/operator/rotate", &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(home.json(&["operator", "signing-key", "list"])["rotation"].is_null());
    // Without the CSRF token: refused, nothing changed.
    let res = http
        .post(&w, "/console/accounts/SHOP/signing-keys", &[("role", "x")])
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(account_jwt(&home, "SHOP"), before);
    // A plain key added by the writer: listed with its user count.
    let res = http
        .post(
            &w,
            "/console/accounts/SHOP/signing-keys",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let html = http.page(&w, "/console/accounts/SHOP").await;
    assert!(
        html.contains("1 signing key<") && html.contains("signed 0 users"),
        "{html}"
    );

    // JetStream tiers through the settings form: a bad tier name is shown on the form
    // with what was typed and changes nothing; then R1 set (flat limits cleared first).
    let before = account_jwt(&home, "SHOP");
    let res = http
        .post(
            &w,
            "/console/accounts/SHOP/settings",
            &[("csrf", &csrf), ("tier", "R99x"), ("tier_mem", "1M")],
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"form-error\"") && html.contains("value=\"R99x\""),
        "{html}"
    );
    assert_eq!(account_jwt(&home, "SHOP"), before);
    let res = http
        .post(
            &w,
            "/console/accounts/SHOP/settings",
            &[
                ("csrf", &csrf),
                ("tier", "R1"),
                ("tier_mem", "1M"),
                ("tier_disk", "10M"),
                ("tier_streams", "5"),
                ("tier_consumers", "50"),
                ("js_disable", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::SEE_OTHER);
    let shop = account_claims(&home, "SHOP");
    let r1 = &shop["nats"]["limits"]["tiered_limits"]["R1"];
    assert_eq!(r1["mem_storage"], 1 << 20, "{shop}");
    assert_eq!(r1["disk_storage"], 10 << 20, "{shop}");
    let html = http.page(&w, "/console/accounts/SHOP").await;
    assert!(
        html.contains("R1: memory 1 MiB, disk 10 MiB, 5 streams, 50 consumers"),
        "{html}"
    );

    // Admin: every button, including the operator's.
    let a = http.sign_in(&admin).await;
    let user = http.page(&a, "/console/accounts/SHOP/users/u").await;
    assert!(user.contains("rotate-user"));
    let op = http.page(&a, "/console/operator").await;
    assert!(op.contains("rotate-operator") && op.contains("add-operator-key"));
    drop(serve);
}
