//! The rooms gateway end to end: `warden serve` and a standalone `warden chat` on one
//! nats-server (2.9.10 and 2.15.x) and one store, real websockets (tokio-tungstenite) and
//! real HTTP. A message reaches every reader in the room across both gateways and nobody
//! outside; banned and read-only users behave as the rules say; rule changes and token
//! expiry take effect on open sockets; bad input gets clear errors and no crash.

mod common;

use std::time::{Duration, Instant};

use common::Home;
use common::chat::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_chat::token::{ChatClaims, sign};
use warden_testkit::{NatsServerBinary, ServerLine};

/// `warden serve` with the gateway on, and a standalone `warden chat` on the same NATS and
/// store; returns (home, server, serve, chat).
fn two_gateways(
    line: ServerLine,
    extra_chat: &[&str],
) -> (Home, warden_testkit::NatsServer, Gateway, Gateway) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "CHATOP"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let serve = Gateway::start(
        &home,
        &["serve", "--nats", &url, "--max-backoff", "1s"],
        &[],
    );
    // The chat account is created by serve; the standalone gateway uses its user's creds.
    let creds = home.path().join("gateway.creds");
    home.ok(&["creds", "CHAT", "gateway", "-o", creds.to_str().unwrap()]);
    home.creds_file("gateway.creds");
    let mut args = vec!["--creds", creds.to_str().unwrap()];
    args.extend_from_slice(extra_chat);
    let chat = Gateway::start(&home, &["chat", "--nats", &url], &args);
    (home, server, serve, chat)
}

async fn fan_out_across_gateways(line: ServerLine) {
    let (_home, _server, a, b) = two_gateways(line, &[]);
    let owner = token("u-owner", "e-acme", 100);
    let alice_t = token("u-alice", "e-other", 1);
    let bob_t = token("u-bob", "e-other", 1);
    let carol_t = token("u-carol", "e-other", 1);
    let dave_t = token("u-dave", "e-partner", 60);
    let low_t = token("u-low", "e-partner", 10);
    let eve_t = token("u-eve", "e-other", 1);

    let room = create_room(&a.addr, &owner, "ops").await;
    let other_room = create_room(&b.addr, &owner, "elsewhere").await;
    for (who, perms, level) in [
        ("u-alice", "rw", 0),
        ("u-bob", "r", 0),
        ("u-carol", "b", 0),
        ("e-partner", "rw", 50),
    ] {
        let (s, body) = put_rule(&a.addr, &owner, room, who, perms, level).await;
        assert_eq!(s, 201, "{body}");
    }
    let (s, _) = put_rule(&b.addr, &owner, other_room, "u-eve", "rw", 0).await;
    assert_eq!(s, 201);

    // Clients on both gateways.
    let mut o = Ws::joined(&a, "owner@A", &owner, room).await;
    let mut alice = Ws::joined(&b, "alice@B", &alice_t, room).await;
    let mut bob = Ws::joined(&a, "bob@A", &bob_t, room).await;
    let mut dave = Ws::joined(&b, "dave@B", &dave_t, room).await;
    let mut eve = Ws::joined(&b, "eve@B", &eve_t, other_room).await;

    // Refused joins: banned, no rule, entity rule above the caller's level, no such room.
    let mut carol = Ws::connect(&b, "carol@B").await;
    carol.auth(&carol_t).await;
    carol
        .send(json!({"type":"select_room","room_id": room}))
        .await;
    assert_eq!(carol.error_code().await, "banned");
    let mut outsider = Ws::connect(&a, "eve@A").await;
    outsider.auth(&eve_t).await;
    outsider
        .send(json!({"type":"select_room","room_id": room}))
        .await;
    assert_eq!(outsider.error_code().await, "not_authorised");
    let mut low = Ws::connect(&a, "low@A").await;
    low.auth(&low_t).await;
    low.send(json!({"type":"select_room","room_id": room}))
        .await;
    assert_eq!(low.error_code().await, "not_authorised");
    low.send(json!({"type":"select_room","room_id": 987654}))
        .await;
    assert_eq!(low.error_code().await, "no_such_room");

    // A message sent on B reaches every reader on A and B, the sender included.
    alice
        .send(json!({"type":"message","content":"hello from B"}))
        .await;
    let mut ids = Vec::new();
    for c in [&mut o, &mut alice, &mut bob, &mut dave] {
        let m = c.message().await;
        assert_eq!(m["content"], "hello from B", "{}", c.name);
        assert_eq!(m["user_uuid"], "u-alice");
        assert_eq!(m["room_id"], room);
        ids.push(m["id"].as_i64().unwrap());
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one stored message, one id: {ids:?}"
    );
    let first_id = ids[0];

    // And one sent on A reaches B.
    o.send(json!({"type":"message","content":"hello from A"}))
        .await;
    for c in [&mut o, &mut alice, &mut bob, &mut dave] {
        assert_eq!(c.message().await["content"], "hello from A", "{}", c.name);
    }

    // Read-only bob cannot send; nothing reaches the others.
    bob.send(json!({"type":"message","content":"I should not"}))
        .await;
    assert_eq!(bob.error_code().await, "not_authorised");

    // Nobody outside: eve (in another room, on B) gets her own message next, nothing of
    // the room's; carol and the refused sockets get a pong to a ping, not a message.
    eve.send(json!({"type":"message","content":"sentinel"}))
        .await;
    assert_eq!(eve.message().await["content"], "sentinel");
    for c in [&mut carol, &mut outsider, &mut low] {
        c.send(json!({"type":"ping"})).await;
        assert_eq!(c.next().await, json!({"type":"pong"}), "{}", c.name);
    }

    // History over HTTP on the other gateway: newest first, with a cursor.
    let (s, page) = call(
        &b.addr,
        reqwest::Method::GET,
        &format!("/rooms/{room}/messages?limit=1"),
        &bob_t,
        None,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["messages"][0]["content"], "hello from A");
    let before = page["next_before"].as_i64().expect("a next page");
    let (_, page2) = call(
        &b.addr,
        reqwest::Method::GET,
        &format!("/rooms/{room}/messages?before={before}"),
        &bob_t,
        None,
    )
    .await;
    assert_eq!(page2["messages"][0]["content"], "hello from B");
    assert!(page2["next_before"].is_null());
    let (s, _) = call(
        &b.addr,
        reqwest::Method::GET,
        &format!("/rooms/{room}/messages"),
        &carol_t,
        None,
    )
    .await;
    assert_eq!(s, 403, "banned users read no history");

    // Resume after a reconnect: bob comes back on B from the first id and gets the rest.
    drop(bob);
    let mut bob = Ws::connect(&b, "bob@B").await;
    bob.auth(&bob_t).await;
    bob.send(json!({"type":"select_room","room_id": room, "after": first_id}))
        .await;
    assert_eq!(bob.message().await["content"], "hello from A");
    assert_eq!(
        bob.next().await,
        json!({"type":"status","content":"CONNECTED","room_id": room})
    );

    // Live enforcement across gateways: the rule of alice (on B) is removed through A,
    // dave (on B, by entity) is banned by a user rule: both are put out at once.
    let (s, body) = call(
        &a.addr,
        reqwest::Method::DELETE,
        &format!("/rooms/{room}/members/u-alice"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let f = alice.next().await;
    assert_eq!(
        f,
        json!({"type":"status","content":"LEFT","room_id": room,"reason":"removed"})
    );
    alice
        .send(json!({"type":"message","content":"still here?"}))
        .await;
    assert_eq!(alice.error_code().await, "not_in_room");
    let (s, _) = put_rule(&a.addr, &owner, room, "u-dave", "b", 0).await;
    assert_eq!(s, 201);
    assert_eq!(
        dave.next().await,
        json!({"type":"status","content":"LEFT","room_id": room,"reason":"banned"})
    );

    // The remaining readers still get messages; the removed ones do not.
    o.send(json!({"type":"message","content":"after the changes"}))
        .await;
    assert_eq!(o.message().await["content"], "after the changes");
    assert_eq!(bob.message().await["content"], "after the changes");
    for c in [&mut alice, &mut dave] {
        c.send(json!({"type":"ping"})).await;
        assert_eq!(c.next().await, json!({"type":"pong"}), "{}", c.name);
    }

    // Deleting the room puts everyone out.
    let (s, _) = call(
        &b.addr,
        reqwest::Method::DELETE,
        &format!("/rooms/{room}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(o.next().await["reason"], "room deleted");
    assert_eq!(bob.next().await["reason"], "room deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn fan_out_across_gateways_2_9() {
    fan_out_across_gateways(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fan_out_across_gateways_2_15() {
    fan_out_across_gateways(ServerLine::V2_15).await;
}

/// Bad input over the websocket: clear JSON errors, limits, BADAUTH; the gateway survives.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors_and_no_crash() {
    let (_home, _server, a, b) = two_gateways(
        ServerLine::V2_15,
        &["--chat-rate", "1", "--chat-burst", "5"],
    );
    let owner = token("u-owner", "e-acme", 100);
    let room = create_room(&a.addr, &owner, "noisy").await;

    let mut c = Ws::connect(&a, "garbage").await;
    c.send_text("{not json".into()).await;
    assert_eq!(c.error_code().await, "invalid_json");
    c.send(json!({"type":"shout"})).await;
    assert_eq!(c.error_code().await, "unknown_type");
    c.send(json!({"type":"message","content":"before a token"}))
        .await;
    assert_eq!(c.error_code().await, "not_authenticated");
    // Bad tokens: TOKEN? twice, then BADAUTH and close.
    let mut wrong = token("u-x", "e-x", 1);
    wrong.push('x');
    let expired = token_with("u-x", "e-x", 1, now() - 60);
    let other_aud = sign(
        &ChatClaims {
            aud: "elsewhere".into(),
            iss: ISS.into(),
            exp: now() + 60,
            user_uuid: "u".into(),
            entity_uuid: "e".into(),
            level_on_entity: 1,
        },
        SECRET.as_bytes(),
    )
    .unwrap();
    for (t, why) in [(&wrong, "signature"), (&expired, "expired")] {
        c.send(json!({"type":"token","content": t})).await;
        let f = c.next().await;
        assert_eq!(f["content"], "TOKEN?", "{f}");
        assert!(f["reason"].as_str().unwrap().contains(why), "{f}");
    }
    c.send(json!({"type":"token","content": other_aud})).await;
    let f = c.next().await;
    assert_eq!(f["content"], "BADAUTH", "{f}");
    assert_eq!(c.next_or_close().await.unwrap_err(), Some(4001));

    // Oversize: a long message is refused and the socket stays; a huge frame closes it.
    let mut w = Ws::joined(&a, "writer", &owner, room).await;
    // Sent back to back, answered in order: a frame that follows a message is read once
    // that message's outcome is known.
    w.send(json!({"type":"message","content": "x".repeat(5000)}))
        .await;
    w.send(json!({"type":"message","content":""})).await;
    w.send(json!({"type":"ping"})).await;
    assert_eq!(w.error_code().await, "too_large");
    assert_eq!(w.error_code().await, "empty_message");
    assert_eq!(w.next().await, json!({"type":"pong"}));
    w.send_text(format!(
        "{{\"type\":\"message\",\"content\":\"{}\"}}",
        "y".repeat(100_000)
    ))
    .await;
    loop {
        match w.next_or_close().await {
            Ok(f) => assert_eq!(f["code"], "too_large", "{f}"),
            Err(code) => {
                assert!(code.is_none() || code == Some(1009), "{code:?}");
                break;
            }
        }
    }

    // A flood on B (1 frame per second, bursts of 5): the burst is served, the rest get
    // rate_limited, and the socket recovers.
    let mut f = Ws::joined(&b, "flooder", &owner, room).await;
    for _ in 0..30 {
        f.send(json!({"type":"ping"})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..30 {
        let r = f.next().await;
        if r == json!({"type":"pong"}) {
            pongs += 1;
        } else {
            assert_eq!(r["code"], "rate_limited", "{r}");
            limited += 1;
        }
    }
    // The handshake used 2 of the 5; the rest of the burst (and what refilled meanwhile)
    // is served.
    assert!(
        limited >= 20 && pongs >= 1,
        "pongs {pongs}, limited {limited}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        f.send(json!({"type":"ping"})).await;
        if f.next().await == json!({"type":"pong"}) {
            break;
        }
        assert!(Instant::now() < deadline, "the flooder never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await; // pacing a retry, not a sync
    }

    // A client that keeps flooding is disconnected (1008) after 200 refused frames in a
    // row; the gateway goes on.
    for _ in 0..1000 {
        if f.ws
            .send(Message::text(json!({"type":"ping"}).to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut closed = None;
    while closed.is_none() {
        match f.next_or_close().await {
            Ok(r) => assert!(
                r == json!({"type":"pong"}) || r["code"] == "rate_limited",
                "{r}"
            ),
            Err(code) => closed = Some(code),
        }
    }
    assert_eq!(
        closed,
        Some(Some(1008)),
        "flooder closed with policy violation"
    );

    // Both gateways still serve.
    let mut again = Ws::joined(&a, "after", &owner, room).await;
    again
        .send(json!({"type":"message","content":"still up"}))
        .await;
    assert_eq!(again.message().await["content"], "still up");
    let _ = Ws::joined(&b, "after@B", &owner, room).await;
}

/// The REST rules: creation level, the exact rule cap, listing with invitations,
/// declining, bad bodies, and an expired token on an open socket.
#[tokio::test(flavor = "multi_thread")]
async fn rest_rules_and_token_expiry() {
    let (_home, _server, a, _b) = two_gateways(ServerLine::V2_9, &[]);
    let owner = token("u-owner", "e-acme", 100);
    let low = token("u-low", "e-acme", 99);

    let (s, body) = call(
        &a.addr,
        reqwest::Method::POST,
        "/rooms",
        &low,
        Some(json!({"name":"x"})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("refused")),
        "{body}"
    );
    let (s, body) = call(
        &a.addr,
        reqwest::Method::POST,
        "/rooms",
        &owner,
        Some(json!({"name":"x","type":"party"})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let (s, body) = call(&a.addr, reqwest::Method::GET, "/rooms", "not-a-token", None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );

    let room = create_room(&a.addr, &owner, "capped").await;
    // The PoC's own example body (`"permissions": false`) is refused clearly.
    let (s, body) = call(
        &a.addr,
        reqwest::Method::PUT,
        &format!("/rooms/{room}/members"),
        &owner,
        Some(json!({"entity_UUID":"u-1","permissions":false,"level":999999})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("string"),
        "{body}"
    );
    let (s, _) = put_rule(&a.addr, &owner, room, "u-1", "rwx", 0).await;
    assert_eq!(s, 400);
    // Exactly 10 rules (the default cap), concurrently requested.
    let mut tasks = Vec::new();
    for i in 0..15 {
        let owner = owner.clone();
        let addr = a.addr.clone();
        tasks.push(tokio::spawn(async move {
            let entity = format!("u-{i}");
            let code = put_rule(&addr, &owner, room, &entity, "r", 0).await.0;
            (entity, code)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let codes: Vec<u16> = results.iter().map(|(_, c)| *c).collect();
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 10, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 5, "{codes:?}");
    // Replacing an existing rule still works at the cap (which ten won the race varies).
    let accepted = results
        .iter()
        .find(|(_, c)| *c == 201)
        .expect("an accepted rule")
        .0
        .clone();
    let (s, body) = put_rule(&a.addr, &owner, room, &accepted, "rw", 0).await;
    assert_eq!((s, body["created"].as_bool()), (200, Some(false)), "{body}");

    // Non-admins cannot manage; the listing shows rooms and invitations.
    let u1 = token(&accepted, "e-x", 1);
    let (s, _) = put_rule(&a.addr, &u1, room, "u-99", "r", 0).await;
    assert_eq!(s, 403);
    let (s, list) = call(&a.addr, reqwest::Method::GET, "/rooms", &u1, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["rooms"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["invitations"][0]["room_id"], room, "{list}");
    let (s, list) = call(&a.addr, reqwest::Method::GET, "/rooms?limit=0", &u1, None).await;
    assert_eq!(s, 400, "{list}");
    // Declining removes that user's rule.
    let (s, body) = call(
        &a.addr,
        reqwest::Method::PUT,
        &format!("/rooms/{room}/invitation"),
        &u1,
        Some(json!({"accept": false})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (_, list) = call(&a.addr, reqwest::Method::GET, "/rooms", &u1, None).await;
    assert!(list["rooms"].as_array().unwrap().is_empty(), "{list}");
    assert!(list["invitations"].as_array().unwrap().is_empty(), "{list}");

    // An expired token takes effect on an open socket: the room is left and a new token
    // is asked for.
    let short = token_with("u-owner", "e-acme", 100, now() + 2);
    let mut c = Ws::joined(&a, "short-lived", &short, room).await;
    let f = c.next().await; // awaited event: the expiry, within WAIT
    assert_eq!(f["content"], "LEFT", "{f}");
    assert_eq!(f["reason"], "token expired");
    assert_eq!(c.error_code().await, "token_expired");
    assert_eq!(c.next().await["content"], "TOKEN?");
    c.send(json!({"type":"message","content":"x"})).await;
    assert_eq!(c.error_code().await, "not_authenticated");
    c.auth(&owner).await;
}

/// `warden chat` without a secret is a usage error.
#[test]
fn chat_without_a_secret_is_a_usage_error() {
    let home = Home::new();
    home.ok(&["init", "--name", "CHATOP"]);
    let err = home.fails(
        2,
        &[
            "chat",
            "--nats",
            "nats://127.0.0.1:1",
            "--http",
            "127.0.0.1:0",
        ],
    );
    assert!(err.contains("secret"), "{err}");
}

/// Unusable gateway settings are usage errors too, found before the gateway looks for its
/// creds (none exist here) or connects.
#[test]
fn chat_bad_settings_are_usage_errors() {
    let home = Home::new();
    home.ok(&["init", "--name", "CHATOP"]);
    let base = [
        "chat",
        "--nats",
        "nats://127.0.0.1:1",
        "--http",
        "127.0.0.1:0",
        "--chat-audience",
        AUD,
        "--chat-issuer",
        ISS,
    ];
    for (extra, says) in [
        (&["--chat-secret", "short"][..], "too short"),
        (
            &["--chat-secret", SECRET, "--chat-max-message-bytes", "0"][..],
            "--chat-max-message-bytes",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let err = home.fails(2, &args);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}

fn token_signed(user: &str, level: i64, aud: &str, iss: &str, exp: i64, secret: &str) -> String {
    sign(
        &ChatClaims {
            aud: aud.into(),
            iss: iss.into(),
            exp,
            user_uuid: user.into(),
            entity_uuid: "e-acme".into(),
            level_on_entity: level,
        },
        secret.as_bytes(),
    )
    .unwrap()
}

/// A raw HTTP/1.1 websocket upgrade on a plain TCP socket that then never answers
/// anything (no pongs): returns every byte the server sends until it closes, within WAIT.
async fn silent_socket(addr: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    tcp.write_all(
        format!(
            "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("upgrade request");
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut all))
        .await
        .expect("the server closes a silent socket in time")
        .expect("read");
    all
}

/// Paging, history time range, per-room rule caps, several secrets, aud/iss/exp over
/// HTTP, JSON errors for bad paths, methods and bodies, keep-alive, a lost `w` right on an
/// open socket, and the OpenAPI document listing the rooms routes.
async fn limits_paging_and_keepalive(line: ServerLine) {
    const OLD: &str = "rooms-old-secret-0123456789";
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "CHATOP"]);
    let server = home.start_nats(&bin, "main");
    // Two secrets during a rotation: the flag repeated (a secret is never split on commas).
    let gw = Gateway::start(
        &home,
        &["serve", "--nats", &server.url(), "--max-backoff", "1s"],
        &[
            "--chat-secret",
            OLD,
            "--chat-secret",
            SECRET,
            "--chat-ping-secs",
            "2",
        ],
    );
    let a = &gw.addr;
    let get = reqwest::Method::GET;
    let owner = token("u-pager", "e-acme", 100);

    // Several active secrets: a token signed with either is accepted; a third is not.
    let old_t = token_signed("u-pager", 100, AUD, ISS, now() + 600, OLD);
    let (s, _) = call(a, get.clone(), "/rooms", &old_t, None).await;
    assert_eq!(
        s, 200,
        "a token of the older secret passes during a rotation"
    );
    let other = token_signed(
        "u-pager",
        100,
        AUD,
        ISS,
        now() + 600,
        "some-other-secret-0123456",
    );
    // aud, iss and exp are checked on HTTP like on the websocket.
    for (t, why) in [
        (other, "signature"),
        (
            token_signed("u-pager", 100, "elsewhere", ISS, now() + 600, SECRET),
            "aud",
        ),
        (
            token_signed("u-pager", 100, AUD, "elsewhere", now() + 600, SECRET),
            "iss",
        ),
        (
            token_signed("u-pager", 100, AUD, ISS, now() - 60, SECRET),
            "exp",
        ),
    ] {
        let (s, body) = call(a, get.clone(), "/rooms", &t, None).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{why}: {body}"
        );
    }

    // GET /rooms is paged by id.
    let mut ids = Vec::new();
    for name in ["p1", "p2", "p3"] {
        ids.push(create_room(a, &owner, name).await);
    }
    let (s, page) = call(a, get.clone(), "/rooms?limit=2", &owner, None).await;
    assert_eq!(s, 200, "{page}");
    let got: Vec<i64> = page["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids[..2], "{page}");
    let after = page["next_after"].as_i64().expect("a next page");
    let (_, page) = call(
        a,
        get.clone(),
        &format!("/rooms?limit=2&after={after}"),
        &owner,
        None,
    )
    .await;
    let got: Vec<i64> = page["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids[2..], "{page}");
    assert!(page["next_after"].is_null(), "{page}");

    // The rule cap is per room: 2 here, exact; bad caps are refused.
    let (s, body) = call(
        a,
        reqwest::Method::POST,
        "/rooms",
        &owner,
        Some(json!({"name": "small", "rule_cap": "2"})),
    )
    .await;
    assert_eq!((s, body["rule_cap"].as_i64()), (201, Some(2)), "{body}");
    let small = body["id"].as_i64().unwrap();
    assert_eq!(put_rule(a, &owner, small, "u-1", "r", 0).await.0, 201);
    assert_eq!(put_rule(a, &owner, small, "u-2", "r", 0).await.0, 201);
    let (s, body) = put_rule(a, &owner, small, "u-3", "r", 0).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    assert_eq!(put_rule(a, &owner, small, "u-2", "rw", 0).await.0, 200);
    // Accepting an invitation: it is no longer pending, the room is listed.
    let u1 = token("u-1", "e-other", 1);
    let (_, list) = call(a, get.clone(), "/rooms", &u1, None).await;
    assert_eq!(list["invitations"][0]["room_id"], small, "{list}");
    let (s, body) = call(
        a,
        reqwest::Method::PUT,
        &format!("/rooms/{small}/invitation"),
        &u1,
        Some(json!({"accept": true})),
    )
    .await;
    assert_eq!(
        (s, body["state"].as_str()),
        (200, Some("accepted")),
        "{body}"
    );
    let (_, list) = call(a, get.clone(), "/rooms", &u1, None).await;
    assert_eq!(list["invitations"], json!([]), "{list}");
    assert_eq!(list["rooms"][0]["id"], small, "{list}");
    for bad in [
        json!({"name": "x", "rule_cap": 0}),
        json!({"name": "x", "rule_cap": 1001}),
        json!({"name": "x", "type": "user2user", "rule_cap": 2}),
    ] {
        let (s, body) = call(
            a,
            reqwest::Method::POST,
            "/rooms",
            &owner,
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 400, "{bad}: {body}");
    }
    let (s, body) = call(
        a,
        reqwest::Method::POST,
        "/rooms",
        &owner,
        Some(json!({"name": "pair", "type": "user2user"})),
    )
    .await;
    assert_eq!((s, body["rule_cap"].as_i64()), (201, Some(1)), "{body}");
    let pair = body["id"].as_i64().unwrap();
    assert_eq!(put_rule(a, &owner, pair, "u-friend", "rw", 0).await.0, 201);
    assert_eq!(put_rule(a, &owner, pair, "u-third", "rw", 0).await.0, 409);

    // Bad paths, methods and bodies are JSON errors too.
    let (s, body) = call(a, get.clone(), "/rooms/not-a-number", &owner, None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    let (s, body) = call(a, reqwest::Method::PATCH, "/rooms", &owner, None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
    let resp = reqwest::Client::new()
        .post(format!("http://{a}/rooms"))
        .bearer_auth(&owner)
        .body(vec![b' '; 100_000])
        .timeout(WAIT)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 413);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).expect("JSON 413");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");

    // History: a time range, newest first.
    let room = ids[0];
    let mut w = Ws::joined(&gw, "writer", &old_t, room).await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        w.send(json!({"type":"message","content": text})).await;
        sent.push(w.message().await);
    }
    let t = |i: usize| sent[i]["time_ms"].as_i64().unwrap();
    let id = |i: usize| sent[i]["id"].as_i64().unwrap();
    let (s, page) = call(
        a,
        get.clone(),
        &format!(
            "/rooms/{room}/messages?since_ms={}&until_ms={}",
            t(1),
            t(1) + 1
        ),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 200, "{page}");
    let msgs = page["messages"].as_array().unwrap();
    assert!(msgs.iter().any(|m| m["id"] == id(1)), "{page}");
    assert!(
        msgs.iter().all(|m| m["time_ms"].as_i64() == Some(t(1))),
        "only messages of that millisecond: {page}"
    );
    let (_, page) = call(
        a,
        get.clone(),
        &format!("/rooms/{room}/messages?until_ms={}", t(0)),
        &owner,
        None,
    )
    .await;
    assert!(
        page["messages"].as_array().unwrap().is_empty(),
        "until is exclusive: {page}"
    );
    let (_, page) = call(
        a,
        get.clone(),
        &format!("/rooms/{room}/messages?since_ms={}", t(0)),
        &owner,
        None,
    )
    .await;
    let got: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![id(2), id(1), id(0)], "newest first: {page}");
    let (s, _) = call(
        a,
        get.clone(),
        &format!("/rooms/{room}/messages?limit=501"),
        &owner,
        None,
    )
    .await;
    assert_eq!(s, 400);

    // A rule downgraded from rw to r while connected: sending is refused at once,
    // receiving goes on.
    assert_eq!(put_rule(a, &owner, room, "u-reader", "rw", 0).await.0, 201);
    let reader_t = token("u-reader", "e-other", 1);
    let mut reader = Ws::joined(&gw, "reader", &reader_t, room).await;
    reader
        .send(json!({"type":"message","content":"while I may"}))
        .await;
    assert_eq!(reader.message().await["content"], "while I may");
    assert_eq!(w.message().await["content"], "while I may");
    assert_eq!(put_rule(a, &owner, room, "u-reader", "r", 0).await.0, 200);
    // The control event is applied before the socket's next frame is handled; a message
    // from the writer (stored after the change) proves the reader has seen it.
    w.send(json!({"type":"message","content":"after the downgrade"}))
        .await;
    assert_eq!(w.message().await["content"], "after the downgrade");
    assert_eq!(reader.message().await["content"], "after the downgrade");
    reader
        .send(json!({"type":"message","content":"not any more"}))
        .await;
    assert_eq!(reader.error_code().await, "not_authorised");

    // Keep-alive: a socket that never answers pings is closed (1008) after two intervals;
    // one that reads gets pings and stays.
    let silent = tokio::spawn({
        let addr = gw.addr.clone();
        async move { silent_socket(&addr).await }
    });
    let mut pings = 0;
    while pings < 3 {
        let msg = tokio::time::timeout(WAIT, reader.ws.next())
            .await
            .expect("a ping in time")
            .expect("open")
            .expect("frame");
        match msg {
            Message::Ping(_) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    reader.send(json!({"type":"ping"})).await;
    assert_eq!(reader.next().await, json!({"type":"pong"}));
    let bytes = silent.await.unwrap();
    assert!(
        bytes.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );
    // A server close frame: FIN+close opcode, length, then the code 1008 (0x03F0).
    assert!(
        bytes
            .windows(4)
            .any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xF0),
        "no close 1008 in {:?}",
        String::from_utf8_lossy(&bytes)
    );

    // The served OpenAPI document lists the rooms routes, and the gateway serves each.
    let doc: Value = reqwest::get(format!("http://{a}/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for r in warden::http::openapi::CHAT_ROUTES {
        let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} not documented", r.method, r.path);
        if r.path == "/chat" {
            continue;
        }
        let path = r
            .path
            .replace("{id}", "987654")
            .replace("{entity}", "u-none");
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
        let body = r.request.map(|_| json!({}));
        let (s, body) = call(a, method, &path, &owner, body).await;
        assert!(
            !matches!(
                body["error"]["code"].as_str(),
                Some("no_route" | "method_not_allowed")
            ),
            "{} {}: {s} {body}",
            r.method,
            r.path
        );
    }
    assert_eq!(
        doc["paths"]["/rooms"]["get"]["security"],
        json!([{"chatToken": []}])
    );
    assert!(doc["components"]["securitySchemes"]["chatToken"].is_object());
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_paging_and_keepalive_2_9() {
    limits_paging_and_keepalive(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_paging_and_keepalive_2_15() {
    limits_paging_and_keepalive(ServerLine::V2_15).await;
}

/// The room events of the ledger (`warden --json audit list`), oldest first.
fn room_events(home: &Home) -> Vec<Value> {
    home.ok(&["--json", "audit", "list", "--limit", "10000"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|e| e["object_kind"] == "room")
        .collect()
}

/// A refused request of the rooms REST says what the operation decided, with the codes
/// and statuses of Warden's HTTP API (`invalid` 400, `not_found` 404, `conflict` 409,
/// `refused` 403) on both gateways alike, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn rest_errors_carry_the_operation_kind() {
    use reqwest::Method;
    let (home, _server, a, b) = two_gateways(ServerLine::V2_15, &[]);
    let owner = token("u-owner", "e-acme", 100);
    let reader = token("u-reader", "e-other", 1);
    let banned = token("u-banned", "e-other", 1);
    let writer = token("u-writer", "e-other", 1);
    let room = create_room(&a.addr, &owner, "kinds").await;
    for (who, perms) in [("u-reader", "r"), ("u-banned", "b"), ("u-writer", "w")] {
        assert_eq!(put_rule(&a.addr, &owner, room, who, perms, 0).await.0, 201);
    }
    let (s, body) = call(
        &a.addr,
        Method::POST,
        "/rooms",
        &owner,
        Some(json!({"name": "pair", "type": "user2user"})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let pair = body["id"].as_i64().unwrap();
    assert_eq!(
        put_rule(&a.addr, &owner, pair, "u-friend", "rw", 0).await.0,
        201
    );

    let events_before = room_events(&home);
    assert_eq!(events_before.len(), 6, "{events_before:?}");
    assert!(
        events_before.iter().all(|e| e["actor"] == "chat:u-owner"),
        "{events_before:?}"
    );
    let (_, detail_before) = call(
        &a.addr,
        Method::GET,
        &format!("/rooms/{room}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(
        detail_before["rules"].as_array().map(Vec::len),
        Some(3),
        "{detail_before}"
    );

    let missing = pair + 1_000;
    let members = format!("/rooms/{room}/members");
    let rule = |who: &str| Some(json!({"entity_UUID": who, "permissions": "r", "level": 0}));
    /// Method, path, token, body; the status and code expected.
    type Case<'a> = (Method, String, &'a str, Option<Value>, u16, &'a str);
    let cases: Vec<Case> = vec![
        // The request itself is wrong.
        (
            Method::POST,
            "/rooms".into(),
            &owner,
            Some(json!({"name": "  "})),
            400,
            "invalid",
        ),
        (
            Method::POST,
            "/rooms".into(),
            &owner,
            Some(json!({"name": "x", "type": "party"})),
            400,
            "invalid",
        ),
        (
            Method::POST,
            "/rooms".into(),
            &owner,
            Some(json!({"name": "x", "rule_cap": 0})),
            400,
            "invalid",
        ),
        (
            Method::PUT,
            members.clone(),
            &owner,
            Some(json!({"entity_UUID": "u-x", "permissions": "rwx"})),
            400,
            "invalid",
        ),
        (
            Method::PUT,
            members.clone(),
            &owner,
            Some(json!({"entity_UUID": " ", "permissions": "r"})),
            400,
            "invalid",
        ),
        (
            Method::GET,
            "/rooms?limit=501".into(),
            &reader,
            None,
            400,
            "invalid",
        ),
        (
            Method::GET,
            format!("/rooms/{room}/messages?limit=0"),
            &reader,
            None,
            400,
            "invalid",
        ),
        // What it names does not exist (or is not visible to the caller).
        (
            Method::GET,
            format!("/rooms/{missing}"),
            &owner,
            None,
            404,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/rooms/{missing}"),
            &owner,
            None,
            404,
            "not_found",
        ),
        (
            Method::GET,
            format!("/rooms/{missing}/messages"),
            &reader,
            None,
            404,
            "not_found",
        ),
        (
            Method::PUT,
            format!("/rooms/{missing}/members"),
            &owner,
            rule("u-x"),
            404,
            "not_found",
        ),
        (
            Method::PUT,
            format!("/rooms/{missing}/invitation"),
            &reader,
            Some(json!({"accept": true})),
            404,
            "not_found",
        ),
        (
            Method::DELETE,
            format!("/rooms/{room}/members/u-nobody"),
            &owner,
            None,
            404,
            "not_found",
        ),
        (
            Method::GET,
            format!("/rooms/{pair}"),
            &reader,
            None,
            404,
            "not_found",
        ),
        // It conflicts with the room as it is.
        (
            Method::PUT,
            format!("/rooms/{pair}/members"),
            &owner,
            rule("u-third"),
            409,
            "conflict",
        ),
        // The caller may not do it.
        (
            Method::POST,
            "/rooms".into(),
            &reader,
            Some(json!({"name": "mine"})),
            403,
            "refused",
        ),
        (
            Method::PUT,
            members.clone(),
            &reader,
            rule("u-x"),
            403,
            "refused",
        ),
        (
            Method::DELETE,
            format!("/rooms/{room}"),
            &reader,
            None,
            403,
            "refused",
        ),
        (
            Method::DELETE,
            format!("/rooms/{room}/members/u-reader"),
            &writer,
            None,
            403,
            "refused",
        ),
        (
            Method::GET,
            format!("/rooms/{room}"),
            &banned,
            None,
            403,
            "refused",
        ),
        (
            Method::GET,
            format!("/rooms/{room}/messages"),
            &banned,
            None,
            403,
            "refused",
        ),
        (
            Method::GET,
            format!("/rooms/{room}/messages"),
            &writer,
            None,
            403,
            "refused",
        ),
    ];
    for gw in [&a, &b] {
        for (method, path, tok, body, status, code) in &cases {
            let (s, v) = call(&gw.addr, method.clone(), path, tok, body.clone()).await;
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (*status, Some(*code)),
                "{method} {path} on {}: {v}",
                gw.addr
            );
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.is_empty() && !message.contains("internal error"),
                "{method} {path}: {v}"
            );
        }
    }

    // Nothing changed: no room event, the same rules, no new room.
    assert_eq!(room_events(&home), events_before);
    let (_, detail_after) = call(
        &b.addr,
        Method::GET,
        &format!("/rooms/{room}"),
        &owner,
        None,
    )
    .await;
    assert_eq!(
        detail_after["rules"], detail_before["rules"],
        "{detail_after}"
    );
    let (_, list) = call(&b.addr, Method::GET, "/rooms", &owner, None).await;
    let ids: Vec<i64> = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![room, pair], "{list}");
}

/// `warden bench chat` at a small scale: every message reaches every member of its room,
/// the idle sockets are all held, and the figures are there (`--json`).
fn bench_chat_small(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    let nats = bin.path.to_str().unwrap();
    let r = home.json(&[
        "bench",
        "chat",
        "--nats-server",
        nats,
        "--idle",
        "100",
        "--clients",
        "40",
        "--rooms",
        "4",
        "--rate",
        "4",
        "--seconds",
        "2",
    ]);
    assert!(
        r["nats_server"].as_str().unwrap().contains(&bin.version),
        "{r}"
    );
    let idle = &r["idle"];
    assert_eq!(idle["connections"], 100, "{r}");
    assert!(
        idle["rss_after_kib"].as_u64() > idle["rss_before_kib"].as_u64(),
        "{r}"
    );
    let d = &r["delivery"];
    let sent = d["sent"].as_u64().unwrap();
    assert!(sent >= 40, "every client sent: {r}");
    // 10 clients per room: each message is delivered 10 times, the sender included.
    assert_eq!(d["expected_deliveries"].as_u64(), Some(sent * 10), "{r}");
    assert_eq!(d["delivered"], d["expected_deliveries"], "{r}");
    assert_eq!(d["errors"], json!({}), "{r}");
    let (p50, p99) = (
        d["latency_ms_p50"].as_f64().unwrap(),
        d["latency_ms_p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{r}");
}

#[test]
fn bench_chat_small_2_9() {
    bench_chat_small(ServerLine::V2_9);
}

#[test]
fn bench_chat_small_2_15() {
    bench_chat_small(ServerLine::V2_15);
}

/// `warden bench chat --messages`: the closed loop delivers every message of every sender
/// to every member of its room, and reports the figures of that mode; with `--floor` the
/// same loop runs against the bare fan-out too, and the gateway's figures come as ratios of
/// the floor's.
#[test]
fn bench_chat_closed_loop_small() {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    let r = home.json(&[
        "bench",
        "chat",
        "--nats-server",
        bin.path.to_str().unwrap(),
        "--idle",
        "0",
        "--clients",
        "20",
        "--rooms",
        "4",
        "--messages",
        "10",
        "--senders-per-room",
        "2",
        "--window",
        "2",
        "--floor",
    ]);
    let d = &r["delivery"];
    assert_eq!(d["mode"], "closed_loop", "{r}");
    assert_eq!(d["sent"], 4 * 2 * 10, "{r}");
    // 5 members per room receive every message of the room's 2 senders.
    assert_eq!(d["expected_deliveries"], 4 * 2 * 10 * 5, "{r}");
    assert_eq!(d["delivered"], d["expected_deliveries"], "{r}");
    assert_eq!(d["errors"], json!({}), "{r}");
    let shape = &d["closed_loop"];
    assert_eq!(shape["senders_per_room"], 2, "{r}");
    assert_eq!(shape["window"], 2, "{r}");
    assert_eq!(shape["messages"], 10, "{r}");
    // The senders' own copies are timed apart too: among all deliveries, so within their
    // range.
    let (echo_p50, echo_p99) = (
        shape["echo_latency_ms_p50"].as_f64().unwrap(),
        shape["echo_latency_ms_p99"].as_f64().unwrap(),
    );
    assert!(echo_p50 > 0.0 && echo_p50 <= echo_p99, "{r}");
    assert!(echo_p99 <= d["latency_ms_max"].as_f64().unwrap(), "{r}");
    assert!(d["rss_anon_kib"].as_u64() > Some(0), "{r}");
    // The gateway's own CPU time is read beside the rates (/proc/PID/stat): some was spent,
    // and per delivery it is the total over the deliveries.
    let (user, system) = (
        d["gateway_cpu_user_ms"].as_u64().unwrap(),
        d["gateway_cpu_system_ms"].as_u64().unwrap(),
    );
    let per = d["gateway_cpu_us_per_delivery"].as_f64().unwrap();
    let delivered = d["delivered"].as_u64().unwrap() as f64;
    assert!(
        (per - (user + system) as f64 * 1000.0 / delivered).abs() < 1e-6,
        "{r}"
    );
    assert!(d["rss_file_kib"].as_u64().is_some(), "{r}");

    // The floor ran the same loop in a process of its own: every delivery arrived there
    // too, and its messages are the protocol's `message` frames (the clients timed them).
    let f = &r["floor"];
    assert_eq!(f["mode"], "closed_loop", "{r}");
    assert_eq!(f["sent"], d["sent"], "{r}");
    assert_eq!(f["delivered"], f["expected_deliveries"], "{r}");
    assert_eq!(f["expected_deliveries"], d["expected_deliveries"], "{r}");
    assert_eq!(f["errors"], json!({}), "{r}");
    assert!(f["latency_ms_p50"].as_f64().unwrap() > 0.0, "{r}");
    // Every ratio is the gateway's figure over the floor's (0 where the floor's is 0: CPU
    // time is counted in clock ticks, and the floor may spend less than one on a run this
    // small).
    let q = &r["gateway_to_floor"];
    for (ratio, figure) in [
        ("delivered_per_s", "delivered_per_s"),
        ("latency_p50", "latency_ms_p50"),
        ("latency_p99", "latency_ms_p99"),
        ("cpu_per_delivery", "gateway_cpu_us_per_delivery"),
    ] {
        let (gateway, floor) = (d[figure].as_f64().unwrap(), f[figure].as_f64().unwrap());
        let want = if floor > 0.0 { gateway / floor } else { 0.0 };
        assert!(
            (q[ratio].as_f64().unwrap() - want).abs() < 1e-9,
            "{ratio}: {r}"
        );
    }
    assert!(q["delivered_per_s"].as_f64().unwrap() > 0.0, "{r}");
}

/// Bad `warden bench chat` flags are usage errors (exit 2), checked before anything starts.
#[test]
fn bench_chat_usage_errors() {
    let home = Home::new();
    for args in [
        &["bench", "chat", "--rooms", "0"][..],
        &["bench", "chat", "--clients", "10", "--rooms", "20"][..],
        &["bench", "chat", "--rate", "0"][..],
        &["bench", "chat", "--seconds", "0"][..],
        &["bench", "chat", "--messages", "5", "--window", "0"][..],
        &["bench", "chat", "--clients", "0", "--floor"][..],
        &[
            "bench",
            "chat",
            "--clients",
            "10",
            "--rooms",
            "5",
            "--messages",
            "5",
            "--senders-per-room",
            "3",
        ][..],
    ] {
        let err = home.fails(2, args);
        assert!(err.contains("--"), "{args:?}: {err}");
    }
}
