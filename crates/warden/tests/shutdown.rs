//! How `warden serve` and `warden chat` stop: within 2 s of SIGTERM or SIGINT, with exit
//! status 0, whatever the state of NATS (up, killed mid-run, never reachable) and of their
//! clients (a request whose headers are half sent, a websocket client that never reads, a
//! request stuck on a NATS that is gone), on nats-server 2.9.10 and 2.15.x. Changes NATS
//! has not received stay pending in the outbox and reach it after the next start.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Home, answered, connect};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use warden_chat::token::{ChatClaims, sign};
use warden_testkit::{NatsServer, NatsServerBinary, ServerLine, free_port};

/// What the requirement allows between the signal and the exit.
const STOP_WITHIN: Duration = Duration::from_secs(2);
/// How long a test waits for a process to exit before it gives up (and kills it).
const GIVE_UP: Duration = Duration::from_secs(10);
/// Bound on everything else a test waits for.
const WAIT: Duration = Duration::from_secs(20);

const SECRET: &str = "shutdown-test-secret-0123456789";
const AUD: &str = "chat.example.test";
const ISS: &str = "users.example.test";

#[derive(Clone, Copy, Debug)]
enum Signal {
    Term,
    Int,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Int => "-INT",
        }
    }
}

/// A running `warden serve` or `warden chat` (killed on drop if still running).
struct Process {
    child: Option<Child>,
    pid: u32,
    /// Its HTTP address (`127.0.0.1:PORT`).
    addr: String,
    what: String,
}

impl Process {
    /// Starts `warden --data-dir … ARGS --http 127.0.0.1:0` and waits for the line with
    /// its address.
    fn start(home: &Home, args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(home.data_dir())
            .args(args)
            .args(["--http", "127.0.0.1:0"])
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env("WARDEN_CHAT_HS256_SECRET", SECRET)
            .env("WARDEN_CHAT_AUDIENCE", AUD)
            .env("WARDEN_CHAT_ISSUER", ISS)
            .env("WARDEN_LOG", "warden=info,warden_ops=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start warden");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let what = format!("warden {}", args.first().copied().unwrap_or_default());
        let line = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what} did not print its address"));
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{what}: no address in {line:?}"))
            .to_string();
        Process {
            pid: child.id(),
            child: Some(child),
            addr,
            what,
        }
    }

    /// Sends `signal` and waits (at most [`GIVE_UP`]) for the exit: the status, and the
    /// time from the signal to the exit.
    fn stop(&mut self, signal: Signal) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let (tx, rx) = std::sync::mpsc::channel();
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args([signal.flag(), &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill {signal:?} {}", self.pid);
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send((status, Instant::now()));
        });
        match rx.recv_timeout(GIVE_UP) {
            Ok((status, at)) => (status.expect("wait"), at.duration_since(sent)),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.pid.to_string()])
                    .status();
                panic!(
                    "{} still running {GIVE_UP:?} after {signal:?} (killed)",
                    self.what
                );
            }
        }
    }

    /// [`Process::stop`], requiring exit status 0 within [`STOP_WITHIN`].
    fn stops_cleanly(&mut self, signal: Signal, case: &str) {
        let (status, took) = self.stop(signal);
        eprintln!(
            "{case}: {} exited ({status}) {took:?} after {signal:?}",
            self.what
        );
        assert!(
            status.success(),
            "{case}: {} exit status {status} after {signal:?}",
            self.what
        );
        assert!(
            took <= STOP_WITHIN,
            "{case}: {} took {took:?} to exit after {signal:?} (at most {STOP_WITHIN:?})",
            self.what
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A connection whose request line and first header are sent, the rest never: a
/// request the server is in the middle of receiving.
fn half_sent_request(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: warden\r\n")
        .expect("write");
    s
}

/// Sends one whole request on a kept-alive connection and reads its response head and
/// body (proof that the server serves this connection).
fn request_on(conn: &mut TcpStream, method: &str, path: &str, token: &str, body: &str) -> String {
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: warden\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    conn.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("utf-8 head");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"));
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).expect("response body");
    format!("{head}{}", String::from_utf8_lossy(&body))
}

fn kill9(server: &mut NatsServer) {
    let pid = server.pid().expect("nats-server runs");
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    // Reaps it (it is gone already).
    server.stop();
}

/// Waits (bounded) until Warden's NATS service answers `WARDEN.status`.
async fn service_answers(home: &Home, url: &str) {
    let backend = connect(url, &home.ok(&["creds", "BACKEND", "backend"]))
        .await
        .expect("backend connects");
    answered(&backend.client, "WARDEN.status", WAIT).await;
}

fn pending(home: &Home) -> i64 {
    home.json(&["status"])["outbox_pending"]
        .as_i64()
        .expect("outbox_pending")
}

// ---------------------------------------------------------------------------------------
// warden serve
// ---------------------------------------------------------------------------------------

/// NATS up, the relay and the NATS service running, and an HTTP request half received.
async fn serve_stops_with_nats_up(line: ServerLine) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "STOPOP"]);
    let server = home.start_nats(&bin, "main");
    let url = server.url();
    let mut serve = Process::start(&home, &["serve", "--nats", &url]);
    home.wait_delivered();
    service_answers(&home, &url).await;
    let _half = half_sent_request(&serve.addr);
    serve.stops_cleanly(Signal::Term, &format!("[{v}] NATS up"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_within_2s_with_nats_up_2_9() {
    serve_stops_with_nats_up(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_within_2s_with_nats_up_2_15() {
    serve_stops_with_nats_up(ServerLine::V2_15).await;
}

/// NATS killed while serve runs; a change made meanwhile stays pending through the stop
/// and reaches NATS after the next start.
async fn serve_stops_after_nats_was_killed(line: ServerLine, signal: Signal) {
    let bin = NatsServerBinary::get(line);
    let v = bin.version.clone();
    let home = Home::new();
    home.ok(&["init", "--name", "GONEOP"]);
    let mut server = home.start_nats(&bin, "main");
    let url = server.url();
    let mut serve = Process::start(&home, &["serve", "--nats", &url]);
    home.wait_delivered();
    service_answers(&home, &url).await;

    kill9(&mut server);
    home.ok(&["account", "add", "WHILE_DOWN"]);
    assert!(pending(&home) >= 1, "[{v}]");
    serve.stops_cleanly(signal, &format!("[{v}] NATS killed"));
    // Nothing NATS did not get was marked delivered.
    assert!(
        pending(&home) >= 1,
        "[{v}] the change made while NATS was down is no longer pending"
    );

    server.restart().expect("nats-server restarts");
    let serve = Process::start(&home, &["serve", "--nats", &url, "--max-backoff", "1s"]);
    home.wait_delivered();
    let key = home.json(&["account", "show", "WHILE_DOWN"])["public_key"]
        .as_str()
        .expect("public key")
        .to_string();
    let sys = home.ok(&["creds", "SYS", "sys"]);
    let listed = warden_nats::ResolverClient::connect(&url, &sys, Duration::from_secs(5))
        .await
        .expect("sys connects")
        .list()
        .await
        .expect("list");
    assert!(
        listed.contains(&key),
        "[{v}] WHILE_DOWN did not reach NATS after the restart"
    );
    drop(serve);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_within_2s_of_sigterm_after_nats_was_killed_2_9() {
    serve_stops_after_nats_was_killed(ServerLine::V2_9, Signal::Term).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_within_2s_of_sigterm_after_nats_was_killed_2_15() {
    serve_stops_after_nats_was_killed(ServerLine::V2_15, Signal::Term).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_within_2s_of_sigint_after_nats_was_killed_2_9() {
    serve_stops_after_nats_was_killed(ServerLine::V2_9, Signal::Int).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_within_2s_of_sigint_after_nats_was_killed_2_15() {
    serve_stops_after_nats_was_killed(ServerLine::V2_15, Signal::Int).await;
}

/// Nothing listens at the NATS address, from the start.
fn serve_stops_with_nats_never_reachable(signal: Signal) {
    let home = Home::new();
    home.ok(&["init", "--name", "NONEOP"]);
    let closed = format!("nats://127.0.0.1:{}", free_port());
    let mut serve = Process::start(&home, &["serve", "--nats", &closed]);
    // It serves HTTP meanwhile (and is not ready: the relay has no NATS).
    let mut conn = TcpStream::connect(&serve.addr).expect("connect");
    let health = request_on(&mut conn, "GET", "/healthz", "-", "");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    serve.stops_cleanly(signal, "NATS never reachable");
}

#[test]
fn serve_stops_within_2s_of_sigterm_with_nats_never_reachable() {
    serve_stops_with_nats_never_reachable(Signal::Term);
}

#[test]
fn serve_stops_within_2s_of_sigint_with_nats_never_reachable() {
    serve_stops_with_nats_never_reachable(Signal::Int);
}

/// A "NATS" that accepts connections and never says a word (a server hung, or a
/// firewall that swallows the traffic): connecting, relaying and subscribing all wait.
#[test]
fn serve_stops_within_2s_with_a_nats_that_never_answers() {
    let home = Home::new();
    home.ok(&["init", "--name", "MUTEOP"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute = format!("nats://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            held.push(conn);
            let _ = tx.send(());
        }
    });
    let mut serve = Process::start(&home, &["serve", "--nats", &mute]);
    // Its NATS clients (relay, observer, service) are connecting.
    rx.recv_timeout(WAIT).expect("serve connects to NATS");
    serve.stops_cleanly(Signal::Term, "NATS never answers");
}

// ---------------------------------------------------------------------------------------
// warden chat
// ---------------------------------------------------------------------------------------

fn chat_token(user: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        + 3600;
    sign(
        &ChatClaims {
            aud: AUD.into(),
            iss: ISS.into(),
            exp,
            user_uuid: user.into(),
            entity_uuid: "e-acme".into(),
            level_on_entity: 100,
        },
        SECRET.as_bytes(),
    )
    .expect("sign")
}

/// A store with the gateway's account and user (as `warden serve` makes them) pushed to
/// a fresh nats-server.
fn chat_setup(line: ServerLine) -> (Home, NatsServer) {
    let bin = NatsServerBinary::get(line);
    let home = Home::new();
    home.ok(&["init", "--name", "CHATSTOP"]);
    home.ok(&["account", "add", "CHAT"]);
    home.ok(&["user", "add", "gateway", "-a", "CHAT"]);
    let server = home.start_nats(&bin, "main");
    home.push(&server.url());
    (home, server)
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(addr: &str) -> WsStream {
    tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/chat")),
    )
    .await
    .expect("ws connect in time")
    .expect("ws connect")
    .0
}

/// The next text frame (pings skipped) as JSON, within the bound.
async fn ws_next(ws: &mut WsStream) -> serde_json::Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).expect("JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn ws_send(ws: &mut WsStream, v: serde_json::Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("ws send");
}

/// Authenticated and in `room` (every reply read).
async fn ws_joined(addr: &str, user: &str, room: i64) -> WsStream {
    let mut ws = ws_connect(addr).await;
    assert_eq!(ws_next(&mut ws).await["content"], "START?");
    ws_send(&mut ws, json!({"type":"token","content": chat_token(user)})).await;
    assert_eq!(ws_next(&mut ws).await["content"], "READY");
    ws_send(&mut ws, json!({"type":"select_room","room_id": room})).await;
    assert_eq!(ws_next(&mut ws).await["content"], "CONNECTED");
    ws
}

fn create_room(conn: &mut TcpStream, token: &str) -> i64 {
    let reply = request_on(
        conn,
        "POST",
        "/rooms",
        token,
        &json!({"name": "stop", "level_admin": "9999", "type": "group"}).to_string(),
    );
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let body = &reply[reply.find("\r\n\r\n").expect("head end") + 4..];
    serde_json::from_str::<serde_json::Value>(body).expect("room JSON")["id"]
        .as_i64()
        .expect("room id")
}

/// A websocket client that stops reading in a room being flooded, a reading client in the
/// same room (told `1001` "server shutting down"), and a request half received.
async fn chat_stops_with_open_sockets(line: ServerLine) {
    let (home, server) = chat_setup(line);
    let v = server.version().to_string();
    let url = server.url();
    let mut chat = Process::start(
        &home,
        &[
            "chat",
            "--nats",
            &url,
            "--chat-rate",
            "1000",
            "--chat-burst",
            "1000",
        ],
    );
    let owner = chat_token("u-owner");
    let mut conn = TcpStream::connect(&chat.addr).expect("connect");
    let room = create_room(&mut conn, &owner);

    // The silent client: joined, then never reads again, on a small receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket
        .connect(chat.addr.parse().expect("addr"))
        .await
        .expect("connect");
    let (mut silent, _) = tokio_tungstenite::client_async(
        format!("ws://{}/chat", chat.addr),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("ws handshake");
    assert_eq!(ws_next(&mut silent).await["content"], "START?");
    ws_send(
        &mut silent,
        json!({"type":"token","content": chat_token("u-owner")}),
    )
    .await;
    assert_eq!(ws_next(&mut silent).await["content"], "READY");
    ws_send(&mut silent, json!({"type":"select_room","room_id": room})).await;
    assert_eq!(ws_next(&mut silent).await["content"], "CONNECTED");

    // The talker floods the room (reading its echoes) far beyond what the silent
    // client's buffers hold.
    let mut talker = ws_joined(&chat.addr, "u-owner", room).await;
    let text = "x".repeat(4000);
    let count = 300;
    for _ in 0..count {
        ws_send(&mut talker, json!({"type":"message","content": text})).await;
    }
    let mut echoed = 0;
    while echoed < count {
        let f = ws_next(&mut talker).await;
        assert_eq!(f["type"], "message", "[{v}] {f}");
        echoed += 1;
    }

    let _half = half_sent_request(&chat.addr);
    chat.stops_cleanly(Signal::Term, &format!("[{v}] open sockets"));

    // The reading client was told why the socket closed.
    let close = loop {
        let m = tokio::time::timeout(WAIT, talker.next())
            .await
            .expect("close in time");
        match m {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("[{v}] socket failed before its Close: {e}"),
            None => panic!("[{v}] socket ended without a Close"),
        }
    };
    assert_eq!(close, Some(1001), "[{v}]");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_stops_within_2s_with_a_websocket_client_that_never_reads_2_9() {
    chat_stops_with_open_sockets(ServerLine::V2_9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_stops_within_2s_with_a_websocket_client_that_never_reads_2_15() {
    chat_stops_with_open_sockets(ServerLine::V2_15).await;
}

/// Takes the port of a nats-server that is gone and waits (bounded) for the gateway's
/// next reconnect attempt, which it holds open and never answers: from then on the
/// gateway's NATS client is reconnecting, and whatever waits on NATS waits.
fn reconnect_attempt(port: u16) -> TcpStream {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the NATS port");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    rx.recv_timeout(WAIT)
        .expect("the gateway tried to reconnect to NATS")
        .expect("accept")
}

/// Waits (bounded) until the room has a rule for `entity` in the store.
async fn rule_committed(home: &Home, room: i64, entity: &str) {
    warden_testkit::install_sqlx_drivers();
    let url = format!("sqlite://{}/warden.db", home.data_dir().display());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("open the store");
    let deadline = Instant::now() + WAIT;
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM room_rules WHERE room_id = $1 AND entity_uuid = $2",
        )
        .bind(room)
        .bind(entity)
        .fetch_one(&mut conn)
        .await
        .expect("count rules");
        if n > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the rule was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// NATS killed under the gateway (which is reconnecting), with a socket in a room and a
/// rule change in flight: stored, then waiting to tell the other gateways through NATS.
async fn chat_stops_with_nats_gone(line: ServerLine, signal: Signal) {
    let (home, mut server) = chat_setup(line);
    let v = server.version().to_string();
    let url = server.url();
    let mut chat = Process::start(&home, &["chat", "--nats", &url]);
    let owner = chat_token("u-owner");
    let mut conn = TcpStream::connect(&chat.addr).expect("connect");
    let room = create_room(&mut conn, &owner);
    let _ws = ws_joined(&chat.addr, "u-owner", room).await;

    kill9(&mut server);
    let _mute = reconnect_attempt(server.port());
    let body = json!({"entity_UUID": "u-other", "permissions": "rw", "level": 0}).to_string();
    write!(
        conn,
        "PUT /rooms/{room}/members HTTP/1.1\r\nHost: warden\r\nAuthorization: Bearer {owner}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    rule_committed(&home, room, "u-other").await;
    chat.stops_cleanly(signal, &format!("[{v}] NATS gone"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_stops_within_2s_with_nats_gone_2_9() {
    chat_stops_with_nats_gone(ServerLine::V2_9, Signal::Term).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_stops_within_2s_with_nats_gone_2_15() {
    chat_stops_with_nats_gone(ServerLine::V2_15, Signal::Term).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_stops_within_2s_of_sigint_with_nats_gone_2_15() {
    chat_stops_with_nats_gone(ServerLine::V2_15, Signal::Int).await;
}
