//! End-to-end proof against real nats-server processes (2.9.10 and 2.15.x): the
//! credentials Warden issues, in the configuration Warden renders, are accepted
//! and enforced by the server itself — allowed publish/subscribe work, denied ones
//! are refused, expired, revoked and tampered users are refused.

mod common;

use std::time::Duration;

use common::{Home, connect};
use data_encoding::BASE64URL_NOPAD;
use futures::StreamExt;
use warden_core::UserSpec;
use warden_ops::now;
use warden_testkit::{NatsServerBinary, ServerLine};

const WAIT: Duration = Duration::from_secs(10);

async fn scenario(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    eprintln!("running against nats-server {v} ({})", bin.path.display());

    let home = Home::new();
    home.ok(&["init", "--name", "ACME"]);
    home.ok(&["account", "add", "APP"]);
    home.ok(&[
        "user",
        "add",
        "alice",
        "-a",
        "APP",
        "--allow-pub",
        "orders.>",
        "--allow-sub",
        "orders.>,_INBOX.>",
        "--deny-pub",
        "orders.secret",
    ]);
    home.ok(&["user", "add", "bob", "-a", "APP"]);
    // An already expired user cannot be made from the CLI (the expiry is refused
    // as bad input), so make it through the same operations layer.
    let w = home.warden().await;
    let expired = UserSpec {
        expires_at: Some(now() - 60),
        ..UserSpec::default()
    };
    w.add_user("APP", "carol", expired)
        .await
        .expect("add expired user");
    let carol = w.creds("APP", "carol").await.expect("carol creds");
    drop(w);

    let server = home.start_nats(&bin, "main");
    let url = server.url();
    assert_eq!(server.version(), v);

    // A user connects with its creds; allowed subscribe and publish work.
    let alice_creds = home.ok(&["creds", "APP", "alice"]);
    let mut alice = connect(&url, &alice_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] alice refused: {e}"));
    let mut sub = alice
        .client
        .subscribe("orders.new")
        .await
        .expect("subscribe");
    alice.client.flush().await.expect("flush");
    alice
        .client
        .publish("orders.new", "hello".into())
        .await
        .expect("publish");
    alice.client.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap_or_else(|_| panic!("[{v}] allowed message not delivered"))
        .expect("subscription open");
    assert_eq!(&msg.payload[..], b"hello");
    assert!(
        alice.errors.try_recv().is_err(),
        "[{v}] no violation expected yet"
    );

    // A denied publish (not allowed, and explicitly denied) is refused by the server.
    for subject in ["billing.x", "orders.secret"] {
        alice
            .client
            .publish(subject, "no".into())
            .await
            .expect("publish");
        alice.client.flush().await.expect("flush");
        let err = alice
            .next_error(WAIT)
            .await
            .unwrap_or_else(|| panic!("[{v}] publish to {subject} was not refused"));
        let e = err.to_lowercase();
        assert!(
            e.contains("permissions violation") && e.contains("publish"),
            "[{v}] {err}"
        );
        assert!(err.contains(subject), "[{v}] {err}");
    }
    // A denied subscribe is refused by the server.
    let _denied = alice
        .client
        .subscribe("billing.>")
        .await
        .expect("subscribe call");
    alice.client.flush().await.expect("flush");
    let err = alice
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("[{v}] subscribe not refused"));
    let e = err.to_lowercase();
    assert!(
        e.contains("permissions violation") && e.contains("subscription"),
        "[{v}] {err}"
    );

    // An expired user is refused.
    let refused = connect(&url, &carol)
        .await
        .err()
        .unwrap_or_else(|| panic!("[{v}] expired user connected"));
    assert!(
        refused.to_lowercase().contains("authorization"),
        "[{v}] {refused}"
    );

    // A tampered JWT (payload changed, signature kept) is refused.
    let tampered = tamper(&alice_creds);
    let refused = connect(&url, &tampered)
        .await
        .err()
        .unwrap_or_else(|| panic!("[{v}] tampered JWT accepted"));
    assert!(
        refused.to_lowercase().contains("authorization"),
        "[{v}] {refused}"
    );

    // A revoked user is refused once the account JWT is loaded, and a connected
    // one is disconnected: push the re-signed account JWT as the system user.
    let bob_creds = home.ok(&["creds", "APP", "bob"]);
    let mut bob = connect(&url, &bob_creds)
        .await
        .unwrap_or_else(|e| panic!("[{v}] bob refused: {e}"));
    home.ok(&["user", "revoke", "bob", "-a", "APP"]);
    let account = home.json(&["account", "show", "APP"]);
    let jwt = account["jwt"].as_str().expect("jwt").to_string();
    let sys = connect(&url, &home.ok(&["creds", "SYS", "sys"]))
        .await
        .unwrap_or_else(|e| panic!("[{v}] sys refused: {e}"));
    let reply = tokio::time::timeout(
        WAIT,
        sys.client.request("$SYS.REQ.CLAIMS.UPDATE", jwt.into()),
    )
    .await
    .expect("push reply in time")
    .expect("push reply");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).expect("reply JSON");
    assert_eq!(reply["data"]["code"], 200, "[{v}] push refused: {reply}");
    let err = bob
        .next_error(WAIT)
        .await
        .unwrap_or_else(|| panic!("[{v}] bob not disconnected"));
    assert!(err.to_lowercase().contains("revoked"), "[{v}] {err}");
    let refused = connect(&url, &bob_creds)
        .await
        .err()
        .unwrap_or_else(|| panic!("[{v}] revoked user connected"));
    assert!(
        refused.to_lowercase().contains("authorization"),
        "[{v}] {refused}"
    );

    // Alice is unaffected by bob's revocation.
    assert!(
        connect(&url, &alice_creds).await.is_ok(),
        "[{v}] alice refused after bob's revocation"
    );

    // A restarted server with a freshly rendered config knows the revocation too.
    drop(server);
    let server = home.start_nats(&bin, "fresh");
    let refused = connect(&server.url(), &bob_creds).await.err();
    assert!(
        refused.is_some(),
        "[{v}] revoked user connected after restart"
    );
    assert!(
        connect(&server.url(), &alice_creds).await.is_ok(),
        "[{v}] alice refused after restart"
    );
}

/// Changes the user's name in the JWT payload and keeps the old signature.
fn tamper(creds: &str) -> String {
    let jwt = creds
        .lines()
        .find(|l| l.starts_with("eyJ"))
        .expect("jwt line in creds")
        .to_string();
    let parts: Vec<&str> = jwt.split('.').collect();
    let payload = BASE64URL_NOPAD
        .decode(parts[1].as_bytes())
        .expect("payload");
    let mut claims: serde_json::Value = serde_json::from_slice(&payload).expect("payload JSON");
    claims["nats"]["pub"] = serde_json::json!({"allow": [">"]});
    let forged = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
    let forged_jwt = format!("{}.{}.{}", parts[0], forged, parts[2]);
    creds.replace(&jwt, &forged_jwt)
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_enforced_by_nats_server_2_9() {
    scenario(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_enforced_by_nats_server_2_15() {
    scenario(ServerLine::V2_15).await;
}
