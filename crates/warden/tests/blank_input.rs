//! Blank input is refused on every surface, and changes nothing.
//!
//! An empty or whitespace-only subject, source network, connection type or tag is a
//! mistake, never "nothing": a command line that dropped a blank `--allow-pub ' '`
//! would issue a user with an empty allow list, which NATS reads as "may publish
//! anything". The command line (the real binary), the HTTP API and the NATS
//! request/reply service (a real `warden serve` on a real nats-server) and the console
//! (form posts to the same process) all refuse such input; the ledger and the users of
//! the account are the same afterwards.

mod common;

use std::time::Duration;

use common::{Home, Serve, answered, connect};
use serde_json::{Value, json};
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

/// What refused input must leave alone: the ledger's length and the account's users
/// (names and specs).
fn snapshot(home: &Home) -> (usize, Value) {
    (
        home.ledger().len(),
        home.json(&["user", "list", "-a", "SHOP"]),
    )
}

/// A home with account SHOP and user `existing` (may publish on `shop.>` only).
fn shop_home() -> Home {
    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "SHOP"]);
    home.ok(&[
        "user",
        "add",
        "existing",
        "-a",
        "SHOP",
        "--allow-pub",
        "shop.>",
    ]);
    home
}

/// Every flag that takes a subject, source network, connection type or tag, with
/// each way of writing a blank value: alone (`' '`, `''`) and as an empty list entry.
fn blank_flags() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for flag in [
        "--allow-pub",
        "--allow-sub",
        "--allow-pubsub",
        "--deny-pub",
        "--deny-sub",
        "--deny-pubsub",
    ] {
        out.extend([(flag, " "), (flag, ""), (flag, "a.>, ,b")]);
    }
    for flag in ["--source-network", "--conn-type", "--tag"] {
        out.extend([(flag, " "), (flag, ""), (flag, "\t")]);
    }
    out.push(("--source-network", "10.0.0.0/8,"));
    out.push(("--conn-type", "STANDARD, "));
    out
}

#[test]
fn cli_refuses_blank_values_with_exit_2_and_changes_nothing() {
    let home = shop_home();
    let before = snapshot(&home);

    for (flag, value) in blank_flags() {
        let stderr = home.fails(2, &["user", "add", "u", "-a", "SHOP", flag, value]);
        assert!(
            stderr.contains(flag) && stderr.contains("empty"),
            "user add {flag} {value:?}: {stderr}"
        );
        let stderr = home.fails(2, &["user", "edit", "existing", "-a", "SHOP", flag, value]);
        assert!(
            stderr.contains(flag) && stderr.contains("empty"),
            "user edit {flag} {value:?}: {stderr}"
        );
    }
    for flag in ["--rm", "--rm-conn-type", "--rm-source-network", "--rm-tag"] {
        for value in [" ", ""] {
            let stderr = home.fails(2, &["user", "edit", "existing", "-a", "SHOP", flag, value]);
            assert!(
                stderr.contains(flag) && stderr.contains("empty"),
                "user edit {flag} {value:?}: {stderr}"
            );
        }
    }
    // A governance task's grants.
    for flag in ["--allow-pub", "--allow-sub", "--deny-pub", "--deny-sub"] {
        for value in [" ", ""] {
            let stderr = home.fails(
                2,
                &[
                    "task",
                    "create",
                    "t",
                    "--account",
                    "SHOP",
                    "--owner",
                    "x",
                    flag,
                    value,
                ],
            );
            assert!(
                stderr.contains(flag) && stderr.contains("empty"),
                "task create {flag} {value:?}: {stderr}"
            );
        }
    }

    assert_eq!(snapshot(&home), before, "refused input changed something");
    // The user who was there may still publish on shop.> only.
    let existing = home.json(&["user", "show", "existing", "-a", "SHOP"]);
    assert_eq!(
        existing["spec"]["permissions"]["pub"]["allow"],
        json!(["shop.>"]),
        "{existing}"
    );
    // Sanity: the same commands with real values are accepted.
    home.ok(&[
        "user",
        "add",
        "u",
        "-a",
        "SHOP",
        "--allow-pub",
        "u.>",
        "--source-network",
        "10.0.0.1",
        "--conn-type",
        "standard",
    ]);
    let u = home.json(&["user", "show", "u", "-a", "SHOP"]);
    assert_eq!(u["spec"]["src"], json!(["10.0.0.1/32"]), "{u}");
    assert_eq!(
        u["spec"]["allowed_connection_types"],
        json!(["STANDARD"]),
        "{u}"
    );
}

/// A request to the HTTP API of `serve`: status and JSON body.
async fn http(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let res = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .timeout(WAIT)
        .send()
        .await
        .expect("HTTP request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The NATS service's answer: `Ok(body)`, or `Err((code, message))` from its headers.
async fn service(
    client: &async_nats::Client,
    op: &str,
    body: Value,
) -> Result<Value, (u16, String)> {
    common::service_call(client, op, &body, WAIT).await
}

/// Whether an HTTP error body says the input was invalid: `invalid`, or `invalid_json`
/// when the value is refused while the body is read into its typed request.
fn refused_as_invalid(body: &Value) -> bool {
    matches!(
        body["error"]["code"].as_str(),
        Some("invalid" | "invalid_json")
    )
}

/// The blank values of a user's spec (creation) and of a user edit, as JSON.
fn blank_specs() -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for blank in [" ", ""] {
        out.push((
            json!({"permissions": {"pub": {"allow": [blank]}}}),
            json!({"permissions": {"allow_pub": [blank]}}),
        ));
        out.push((
            json!({"permissions": {"sub": {"deny": ["a.>", blank]}}}),
            json!({"permissions": {"deny_sub": ["a.>", blank]}}),
        ));
        out.push((
            json!({"src": [blank]}),
            json!({"add_source_networks": [blank]}),
        ));
        out.push((
            json!({"allowed_connection_types": [blank]}),
            json!({"add_conn_types": [blank]}),
        ));
    }
    out
}

#[tokio::test]
async fn http_api_and_nats_service_refuse_blank_values_and_change_nothing() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = shop_home();
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let token = home.json(&["token", "create", "--name", "blank", "--scope", "admin"])["token"]
        .as_str()
        .expect("token secret")
        .to_string();
    let serve = Serve::start(&home, &url);
    let before = snapshot(&home);
    let client = reqwest::Client::new();

    let backend_creds = home.ok(&["creds", "BACKEND", "backend"]);
    let backend = connect(&url, &backend_creds)
        .await
        .expect("backend connects");
    let b = &backend.client;
    // The service answers once its subscriptions reached the server.
    answered(b, "WARDEN.status", WAIT).await;

    for (spec, edit) in blank_specs() {
        let (status, body) = http(
            &client,
            reqwest::Method::POST,
            format!("{}/v1/accounts/SHOP/users", serve.base),
            &token,
            json!({"name": "u", "spec": spec}),
        )
        .await;
        assert_eq!(status, 400, "POST user {spec}: {body}");
        assert!(refused_as_invalid(&body), "POST user {spec}: {body}");

        let (status, body) = http(
            &client,
            reqwest::Method::PATCH,
            format!("{}/v1/accounts/SHOP/users/existing", serve.base),
            &token,
            edit.clone(),
        )
        .await;
        assert_eq!(status, 400, "PATCH user {edit}: {body}");
        assert!(refused_as_invalid(&body), "PATCH user {edit}: {body}");

        let (code, msg) = service(
            b,
            "user.create",
            json!({"account": "SHOP", "name": "u", "spec": spec}),
        )
        .await
        .expect_err("user.create with a blank value");
        assert_eq!(code, 400, "user.create {spec}: {msg}");
        let (code, msg) = service(
            b,
            "user.edit",
            json!({"account": "SHOP", "name": "existing", "edit": edit}),
        )
        .await
        .expect_err("user.edit with a blank value");
        assert_eq!(code, 400, "user.edit {edit}: {msg}");
    }

    assert_eq!(snapshot(&home), before, "refused input changed something");
    drop(serve);
}
