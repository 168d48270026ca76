//! The rooms gateway as its clients see it: a `warden serve` or `warden chat` process
//! (killed on drop), chat tokens signed with the tests' secret, REST calls, and a
//! websocket client of `/chat` that reads frames within a bound.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use warden_chat::token::{ChatClaims, sign};

use super::Home;

pub const WAIT: Duration = Duration::from_secs(20);
pub const SECRET: &str = "rooms-test-secret-0123456789";
pub const AUD: &str = "chat.example.test";
pub const ISS: &str = "users.example.test";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn token_with(user: &str, entity: &str, level: i64, exp: i64) -> String {
    sign(
        &ChatClaims {
            aud: AUD.into(),
            iss: ISS.into(),
            exp,
            user_uuid: user.into(),
            entity_uuid: entity.into(),
            level_on_entity: level,
        },
        SECRET.as_bytes(),
    )
    .unwrap()
}

/// A chat token of a user service other than the tests' own: `secret`, `aud`, `iss`.
pub fn token_of_service(
    (secret, aud, iss): (&str, &str, &str),
    user: &str,
    entity: &str,
    level: i64,
) -> String {
    sign(
        &ChatClaims {
            aud: aud.into(),
            iss: iss.into(),
            exp: now() + 3600,
            user_uuid: user.into(),
            entity_uuid: entity.into(),
            level_on_entity: level,
        },
        secret.as_bytes(),
    )
    .unwrap()
}

pub fn token(user: &str, entity: &str, level: i64) -> String {
    token_with(user, entity, level, now() + 3600)
}

/// A gateway process (`warden serve` or `warden chat`), killed on drop.
pub struct Gateway {
    pub child: Child,
    pub addr: String,
}

impl Gateway {
    pub fn start(home: &Home, command: &[&str], extra: &[&str]) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(home.data_dir())
            .args(command)
            .args(["--http", "127.0.0.1:0"])
            .args(extra)
            .env_remove("WARDEN_DATABASE_URL")
            .env_remove("WARDEN_MASTER_KEY")
            .env("WARDEN_CHAT_HS256_SECRET", SECRET)
            .env("WARDEN_CHAT_AUDIENCE", AUD)
            .env("WARDEN_CHAT_ISSUER", ISS)
            .env("WARDEN_LOG", "warden=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gateway");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).expect("gateway printed its address");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Gateway { child, addr }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP calls to a gateway with a chat token.
pub async fn call(
    addr: &str,
    method: reqwest::Method,
    path: &str,
    tok: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(tok)
        .timeout(WAIT);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("http call");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, value)
}

pub async fn create_room(addr: &str, tok: &str, name: &str) -> i64 {
    let (status, body) = call(
        addr,
        reqwest::Method::POST,
        "/rooms",
        tok,
        Some(json!({"name": name, "level_admin": "9999", "type": "group"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

pub async fn put_rule(
    addr: &str,
    tok: &str,
    room: i64,
    who: &str,
    perms: &str,
    level: i64,
) -> (u16, Value) {
    call(
        addr,
        reqwest::Method::PUT,
        &format!("/rooms/{room}/members"),
        tok,
        Some(json!({"entity_UUID": who, "permissions": perms, "level": level})),
    )
    .await
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A websocket client of `/chat`.
pub struct Ws {
    pub ws: WsStream,
    pub name: &'static str,
}

impl Ws {
    pub async fn connect(gw: &Gateway, name: &'static str) -> Ws {
        Ws::connect_to(&gw.addr, name).await
    }

    /// Connected to the gateway at `addr` (`host:port`), hello read.
    pub async fn connect_to(addr: &str, name: &'static str) -> Ws {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{addr}/chat")),
        )
        .await
        .expect("ws connect in time")
        .expect("ws connect");
        let mut c = Ws { ws, name };
        let hello = c.next().await;
        assert_eq!(hello, json!({"type":"status","content":"START?"}), "{name}");
        c
    }

    /// Connected, authenticated and in `room`.
    pub async fn joined(gw: &Gateway, name: &'static str, tok: &str, room: i64) -> Ws {
        Ws::joined_at(&gw.addr, name, tok, room).await
    }

    /// Connected to the gateway at `addr`, authenticated and in `room`.
    pub async fn joined_at(addr: &str, name: &'static str, tok: &str, room: i64) -> Ws {
        let mut c = Ws::connect_to(addr, name).await;
        c.auth(tok).await;
        c.send(json!({"type":"select_room","room_id": room})).await;
        let f = c.next().await;
        assert_eq!(
            f,
            json!({"type":"status","content":"CONNECTED","room_id": room}),
            "{name}"
        );
        c
    }

    pub async fn auth(&mut self, tok: &str) {
        self.send(json!({"type":"token","content": tok})).await;
        let f = self.next().await;
        assert_eq!(
            f,
            json!({"type":"status","content":"READY"}),
            "{}",
            self.name
        );
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, t: String) {
        self.ws.send(Message::text(t)).await.expect("ws send");
    }

    /// The next JSON frame (pings skipped), within the bound.
    pub async fn next(&mut self) -> Value {
        match self.next_or_close().await {
            Ok(v) => v,
            Err(close) => panic!(
                "{}: closed ({close:?}) while waiting for a frame",
                self.name
            ),
        }
    }

    /// The next JSON frame, or the close code.
    pub async fn next_or_close(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no frame in time", self.name));
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).unwrap_or_else(|e| {
                        panic!("{}: reply is not JSON ({e}): {t}", self.name)
                    }));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(other)) => panic!("{}: unexpected frame {other:?}", self.name),
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next `message` frame, failing on any other frame.
    pub async fn message(&mut self) -> Value {
        let f = self.next().await;
        assert_eq!(f["type"], "message", "{}: {f}", self.name);
        f
    }

    pub async fn error_code(&mut self) -> String {
        let f = self.next().await;
        assert_eq!(f["type"], "error", "{}: {f}", self.name);
        assert!(f["content"].as_str().is_some_and(|c| !c.is_empty()), "{f}");
        f["code"].as_str().unwrap().to_string()
    }
}
