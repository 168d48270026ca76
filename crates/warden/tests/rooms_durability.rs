//! The rooms gateway's group commit, end to end: a real `warden chat` process is killed
//! with SIGKILL while senders are sending, and every message whose sender got its echo
//! (the gateway answers a sender only once its batch is committed) is in the store after a
//! restart — on SQLite and on PostgreSQL. Meanwhile each socket sees its room's ids
//! strictly increasing and each sender's messages in order, and refused posts (empty, no
//! `w`) mixed into the same batches change nothing and do not disturb their neighbours.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::Home;
use common::chat::*;
use serde_json::Value;
use warden_testkit::{NatsServerBinary, PgDatabase, ServerLine};

const ROOMS: usize = 4;
const SENDERS_PER_ROOM: usize = 4;
/// Echoes received across all senders before the gateway is killed.
const KILL_AFTER_ACKS: usize = 400;

/// `warden [--database-url URL] ARGS…` in `home`, required to succeed.
fn ok(home: &Home, db: &[&str], args: &[&str]) -> String {
    let mut full = db.to_vec();
    full.extend_from_slice(args);
    home.ok(&full)
}

/// Warden's rendered nats-server config, on the given store, started.
fn start_nats(home: &Home, db: &[&str], bin: &NatsServerBinary) -> warden_testkit::NatsServer {
    let port = warden_testkit::free_port();
    let conf = home.path().join("main.conf");
    let resolver = home.path().join("main-resolver");
    let listen = format!("127.0.0.1:{port}");
    ok(
        home,
        db,
        &[
            "nats-config",
            "--listen",
            &listen,
            "--resolver-dir",
            resolver.to_str().unwrap(),
            "-o",
            conf.to_str().unwrap(),
        ],
    );
    let config = std::fs::read_to_string(&conf).expect("rendered config");
    let dir = home.path().join("main-server");
    std::fs::create_dir_all(&dir).expect("server dir");
    warden_testkit::NatsServer::start(bin, &dir, &config).expect("nats-server starts")
}

/// What one sender saw: its acknowledged messages (room, id, content) and its refusals.
#[derive(Default)]
struct Sent {
    acked: Vec<(i64, i64, String)>,
    refusals: usize,
}

/// Sends `m <who> <seq>` in a closed loop (the next once the echo is in), with an empty
/// message before every fifth one (refused: `empty_message`), until the socket dies.
async fn sender(mut ws: Ws, who: String, room: i64, acks: Arc<AtomicUsize>) -> Sent {
    let mut sent = Sent::default();
    let mut last_id = 0i64;
    let mut last_own_seq: Option<u64> = None;
    for seq in 0u64.. {
        if seq % 5 == 4 {
            if ws
                .ws_send(serde_json::json!({"type":"message","content":"   "}))
                .await
                .is_err()
            {
                break;
            }
            // Other senders' messages may come first; the refusal follows.
            let mut refused = false;
            while let Some(f) = ws.frame().await {
                if f["type"] == "error" {
                    assert_eq!(f["code"], "empty_message", "{who}: {f}");
                    sent.refusals += 1;
                    refused = true;
                    break;
                }
                check_order(&f, room, &mut last_id, &who, &mut last_own_seq);
            }
            if !refused {
                break;
            }
        }
        let content = format!("m {who} {seq}");
        if ws
            .ws_send(serde_json::json!({"type":"message","content": content}))
            .await
            .is_err()
        {
            break;
        }
        // Read until the own echo: the ack.
        let mut acked = false;
        while let Some(f) = ws.frame().await {
            assert_eq!(f["type"], "message", "{who}: {f}");
            check_order(&f, room, &mut last_id, &who, &mut last_own_seq);
            if f["content"] == content.as_str() {
                sent.acked
                    .push((room, f["id"].as_i64().unwrap(), content.clone()));
                acks.fetch_add(1, Ordering::Relaxed);
                acked = true;
                break;
            }
        }
        if !acked {
            break;
        }
    }
    sent
}

/// Ids of a room strictly increase on a socket, and a sender's own messages arrive in
/// the order it sent them.
fn check_order(f: &Value, room: i64, last_id: &mut i64, who: &str, last_own_seq: &mut Option<u64>) {
    assert_eq!(f["room_id"], room, "{who}: {f}");
    let id = f["id"].as_i64().unwrap();
    assert!(id > *last_id, "{who}: id {id} after {last_id}: {f}");
    *last_id = id;
    let content = f["content"].as_str().unwrap();
    let mut words = content.split(' ');
    if words.next() == Some("m") && words.next() == Some(who) {
        let seq: u64 = words.next().unwrap().parse().unwrap();
        assert!(
            last_own_seq.is_none_or(|last| seq > last),
            "{who}: own message {seq} after {last_own_seq:?}"
        );
        *last_own_seq = Some(seq);
    }
}

impl Ws {
    async fn ws_send(&mut self, v: Value) -> Result<(), ()> {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(v.to_string()))
            .await
            .map_err(|_| ())
    }

    /// The next JSON frame, or `None` once the socket is gone.
    async fn frame(&mut self) -> Option<Value> {
        self.next_or_close().await.ok()
    }
}

/// Every stored message of `room`, oldest first, read page by page through `addr`.
async fn stored(addr: &str, tok: &str, room: i64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/rooms/{room}/messages?limit=500&before={b}"),
            None => format!("/rooms/{room}/messages?limit=500"),
        };
        let (status, page) = call(addr, reqwest::Method::GET, &path, tok, None).await;
        assert_eq!(status, 200, "{page}");
        all.extend(page["messages"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    all.reverse();
    all
}

async fn acked_messages_survive_sigkill(pg: Option<&PgDatabase>) {
    let bin = NatsServerBinary::get(ServerLine::V2_15);
    let home = Home::new();
    let db: Vec<&str> = match pg {
        Some(pg) => vec!["--database-url", pg.url()],
        None => Vec::new(),
    };
    ok(&home, &db, &["init", "--name", "CHATOP"]);
    let server = start_nats(&home, &db, &bin);
    let url = server.url();
    let mut serve_cmd = db.clone();
    serve_cmd.extend(["serve", "--nats", &url, "--max-backoff", "1s"]);
    let serve = Gateway::start(&home, &serve_cmd, &[]);
    let creds = home.path().join("gateway.creds");
    ok(
        &home,
        &db,
        &["creds", "CHAT", "gateway", "-o", creds.to_str().unwrap()],
    );
    let mut chat_cmd = db.clone();
    chat_cmd.extend(["chat", "--nats", &url]);
    let chat_args = [
        "--creds",
        creds.to_str().unwrap(),
        "--chat-rate",
        "100000",
        "--chat-burst",
        "100000",
    ];
    let mut chat = Gateway::start(&home, &chat_cmd, &chat_args);

    let owner = token("u-owner", "e-acme", 100);
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        let room = create_room(&serve.addr, &owner, &format!("durable-{r}")).await;
        let (status, body) = put_rule(&serve.addr, &owner, room, "e-senders", "rw", 0).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = put_rule(&serve.addr, &owner, room, "u-reader", "r", 0).await;
        assert_eq!(status, 201, "{body}");
        rooms.push(room);
    }

    // Readers without `w` post into the same batches: refused, nothing stored.
    let reader_tok = token("u-reader", "e-readers", 1);
    let mut readers = Vec::new();
    for &room in &rooms {
        readers.push(Ws::joined(&chat, "reader", &reader_tok, room).await);
    }
    let acks = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (r, &room) in rooms.iter().enumerate() {
        for s in 0..SENDERS_PER_ROOM {
            let who = format!("s{r}x{s}");
            let tok = token(&format!("u-{who}"), "e-senders", 1);
            let ws = Ws::joined(&chat, "sender", &tok, room).await;
            tasks.push(tokio::spawn(sender(ws, who, room, acks.clone())));
        }
    }
    let mut refused_reader = 0;
    let deadline = Instant::now() + WAIT;
    while acks.load(Ordering::Relaxed) < KILL_AFTER_ACKS {
        assert!(
            Instant::now() < deadline,
            "senders stalled at {acks:?} acks"
        );
        for ws in &mut readers {
            ws.ws_send(serde_json::json!({"type":"message","content":"ro"}))
                .await
                .unwrap();
        }
        for ws in &mut readers {
            // The reader gets the room's messages too; its refusal is among them.
            loop {
                let f = ws.next().await;
                if f["type"] == "error" {
                    assert_eq!(f["code"], "not_authorised", "{f}");
                    refused_reader += 1;
                    break;
                }
            }
        }
    }
    // SIGKILL mid-stream: senders have messages in flight, batches are being written.
    chat.child.kill().expect("SIGKILL the gateway");
    chat.child.wait().expect("reap the gateway");
    drop(readers);

    let mut acked = Vec::new();
    let mut refusals = 0;
    for t in tasks {
        let sent = tokio::time::timeout(WAIT, t)
            .await
            .expect("senders end once the gateway is gone")
            .expect("sender task");
        acked.extend(sent.acked);
        refusals += sent.refusals;
    }
    assert!(acked.len() >= KILL_AFTER_ACKS, "{} acks", acked.len());
    assert!(refusals > 0 && refused_reader > 0, "refusals were mixed in");

    // Restarted on the same store: every acknowledged message is there, as acknowledged.
    let restarted = Gateway::start(&home, &chat_cmd, &chat_args);
    let mut by_room: BTreeMap<i64, BTreeMap<i64, String>> = BTreeMap::new();
    for &room in &rooms {
        let messages = stored(&restarted.addr, &owner, room).await;
        let ids: Vec<i64> = messages.iter().map(|m| m["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "room {room}: {ids:?}");
        let mut contents = BTreeMap::new();
        for m in &messages {
            let c = m["content"].as_str().unwrap();
            assert!(c.starts_with("m s"), "a refused post was stored: {m}");
            contents.insert(m["id"].as_i64().unwrap(), c.to_string());
        }
        by_room.insert(room, contents);
    }
    let mut missing = BTreeSet::new();
    for (room, id, content) in &acked {
        if by_room[room].get(id) != Some(content) {
            missing.insert((room, id, content));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages are not in the store after SIGKILL: {missing:?}",
        missing.len(),
        acked.len()
    );
    drop(restarted);
    drop(serve);
}

#[tokio::test(flavor = "multi_thread")]
async fn acked_messages_survive_sigkill_sqlite() {
    acked_messages_survive_sigkill(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acked_messages_survive_sigkill_postgres() {
    let pg = PgDatabase::create().await;
    acked_messages_survive_sigkill(Some(&pg)).await;
}
