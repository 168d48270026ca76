//! The websocket `/chat` command protocol (nano-messaging's AT-style commands, in JSON), and the
//! per-connection rate limit.
//!
//! The server greets with `{"type":"status","content":"START?"}`. The client sends
//! `{"type":"token","content":"<jwt>"}` and gets `READY` or `TOKEN?` (and after too many
//! bad tokens `BADAUTH`, then the socket closes); `{"type":"select_room","room_id":N}`
//! (optionally `"after": <last message id seen>` to resume) gets the missed messages, then
//! `{"type":"status","content":"CONNECTED","room_id":N}`; `{"type":"message","content":"…"}`
//! is stored and delivered to everyone in the room, the sender included, as a
//! [`MessageOut`]. Every reply, errors included, is one JSON object with a `type`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A command from the client.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Authenticate (or re-authenticate, e.g. with a fresh token before the old expires).
    Token {
        /// The HS256 JWT.
        content: String,
    },
    /// Join a room (leaving the current one).
    SelectRoom {
        /// The room.
        room_id: i64,
        /// Resume: deliver the stored messages with a greater id first.
        #[serde(default)]
        after: Option<i64>,
    },
    /// Send a message to the joined room.
    Message {
        /// The text.
        content: String,
    },
    /// Leave the joined room.
    LeaveRoom,
    /// Application-level keep-alive: answered with `pong`.
    Ping,
}

/// The `content` of a `status` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Greeting: send a token.
    #[serde(rename = "START?")]
    Start,
    /// The token was accepted.
    #[serde(rename = "READY")]
    Ready,
    /// The token was refused (or has expired): send another.
    #[serde(rename = "TOKEN?")]
    TokenAgain,
    /// Too many bad tokens: the socket closes.
    #[serde(rename = "BADAUTH")]
    BadAuth,
    /// Joined the room; live messages follow.
    #[serde(rename = "CONNECTED")]
    Connected,
    /// Left the room (asked, or removed: see `reason`).
    #[serde(rename = "LEFT")]
    Left,
}

/// Why a command failed; stable codes for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a known command shape.
    InvalidJson,
    /// A `type` the server does not know.
    UnknownType,
    /// A command that needs a token first.
    NotAuthenticated,
    /// No room joined.
    NotInRoom,
    /// The caller lacks the right (read to join, write to send).
    NotAuthorised,
    /// The caller is banned from the room.
    Banned,
    /// No such room.
    NoSuchRoom,
    /// The frame or message is larger than allowed.
    TooLarge,
    /// An empty message.
    EmptyMessage,
    /// Too many frames: this one was dropped.
    RateLimited,
    /// The token expired: send a new one.
    TokenExpired,
    /// The client fell behind and messages were skipped: resume with `after`.
    Lagged,
    /// The server failed (details in its log).
    Internal,
}

/// A stored message as delivered to clients (and published between gateways).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageOut {
    /// The room.
    pub room_id: i64,
    /// Its id, increasing within the room (the resume cursor).
    pub id: i64,
    /// The sender's user UUID.
    pub user_uuid: String,
    /// The sender's entity UUID.
    pub entity_uuid: String,
    /// The text.
    pub content: String,
    /// When it was stored, unix milliseconds.
    pub time_ms: i64,
}

/// A reply from the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Protocol state.
    Status {
        /// `START?`, `READY`, `TOKEN?`, `BADAUTH`, `CONNECTED`, `LEFT`.
        content: Status,
        /// The room, for `CONNECTED` and `LEFT`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<i64>,
        /// Why, for `LEFT` and `TOKEN?` after an expiry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A message of the joined room.
    Message(MessageOut),
    /// A command failed; the connection stays open unless said otherwise.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What happened, for people.
        content: String,
    },
    /// Answer to `ping`.
    Pong,
}

impl ServerFrame {
    /// A `status` reply without room or reason.
    pub fn status(content: Status) -> ServerFrame {
        ServerFrame::Status {
            content,
            room_id: None,
            reason: None,
        }
    }

    /// An `error` reply.
    pub fn error(code: ErrorCode, content: impl Into<String>) -> ServerFrame {
        ServerFrame::Error {
            code,
            content: content.into(),
        }
    }

    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail; the fallback keeps replies JSON anyway.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","content":"cannot encode reply"}"#.to_string()
        })
    }
}

/// Reads one client frame; the error is the reply to send.
pub fn parse_client(text: &str) -> Result<ClientFrame, ServerFrame> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ServerFrame::error(ErrorCode::InvalidJson, format!("frame is not JSON: {e}"))
    })?;
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
    else {
        return Err(ServerFrame::error(
            ErrorCode::InvalidJson,
            "frame must be a JSON object with a string \"type\"",
        ));
    };
    const KNOWN: [&str; 5] = ["token", "select_room", "message", "leave_room", "ping"];
    if !KNOWN.contains(&kind.as_str()) {
        return Err(ServerFrame::error(
            ErrorCode::UnknownType,
            format!(
                "unknown type {kind:?}; expected one of {}",
                KNOWN.join(", ")
            ),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ServerFrame::error(ErrorCode::InvalidJson, format!("bad {kind} frame: {e}")))
}

/// A token bucket: `per_second` frames on average, bursts of up to `burst`.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket at `now`.
    pub fn new(per_second: u32, burst: u32, now: Instant) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one at `now`.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until one token is back (zero when one is there).
    pub fn wait_hint(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_second)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_frames_of_the_poc_parse() {
        assert_eq!(
            parse_client(r#"{"type":"token","content":"a.b.c"}"#).unwrap(),
            ClientFrame::Token {
                content: "a.b.c".into()
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"select_room","room_id":99999}"#).unwrap(),
            ClientFrame::SelectRoom {
                room_id: 99999,
                after: None
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"select_room","room_id":7,"after":41}"#).unwrap(),
            ClientFrame::SelectRoom {
                room_id: 7,
                after: Some(41)
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"message","content":"Fueled up and ready to go"}"#).unwrap(),
            ClientFrame::Message {
                content: "Fueled up and ready to go".into()
            }
        );
        assert_eq!(
            parse_client(r#"{"type":"ping"}"#).unwrap(),
            ClientFrame::Ping
        );
        assert_eq!(
            parse_client(r#"{"type":"leave_room"}"#).unwrap(),
            ClientFrame::LeaveRoom
        );
    }

    fn code_of(text: &str) -> ErrorCode {
        match parse_client(text).unwrap_err() {
            ServerFrame::Error { code, content } => {
                assert!(!content.is_empty());
                code
            }
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn bad_frames_get_coded_errors() {
        assert_eq!(code_of("{not json"), ErrorCode::InvalidJson);
        assert_eq!(code_of("[1,2]"), ErrorCode::InvalidJson);
        assert_eq!(code_of(r#"{"content":"x"}"#), ErrorCode::InvalidJson);
        assert_eq!(code_of(r#"{"type":"shout"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code_of(r#"{"type":"select_room","room_id":"x"}"#),
            ErrorCode::InvalidJson
        );
        assert_eq!(code_of(r#"{"type":"message"}"#), ErrorCode::InvalidJson);
        assert_eq!(
            code_of(r#"{"type":"message","content":"x","extra":1}"#),
            ErrorCode::InvalidJson,
            "unknown fields are refused, not ignored"
        );
    }

    #[test]
    fn server_frames_are_the_documented_json() {
        let f = |v: ServerFrame| serde_json::from_str::<serde_json::Value>(&v.to_json()).unwrap();
        assert_eq!(
            f(ServerFrame::status(Status::Start)),
            json!({"type":"status","content":"START?"})
        );
        assert_eq!(
            f(ServerFrame::status(Status::Ready)),
            json!({"type":"status","content":"READY"})
        );
        assert_eq!(
            f(ServerFrame::status(Status::TokenAgain)),
            json!({"type":"status","content":"TOKEN?"})
        );
        assert_eq!(
            f(ServerFrame::status(Status::BadAuth)),
            json!({"type":"status","content":"BADAUTH"})
        );
        assert_eq!(
            f(ServerFrame::Status {
                content: Status::Connected,
                room_id: Some(3),
                reason: None
            }),
            json!({"type":"status","content":"CONNECTED","room_id":3})
        );
        assert_eq!(
            f(ServerFrame::error(ErrorCode::TooLarge, "too big")),
            json!({"type":"error","code":"too_large","content":"too big"})
        );
        assert_eq!(f(ServerFrame::Pong), json!({"type":"pong"}));
        let m = MessageOut {
            room_id: 1,
            id: 2,
            user_uuid: "u".into(),
            entity_uuid: "e".into(),
            content: "hi".into(),
            time_ms: 5,
        };
        assert_eq!(
            f(ServerFrame::Message(m.clone())),
            json!({"type":"message","room_id":1,"id":2,"user_uuid":"u","entity_uuid":"e","content":"hi","time_ms":5})
        );
        // Round trip (gateways publish these between each other).
        let back: ServerFrame =
            serde_json::from_str(&ServerFrame::Message(m.clone()).to_json()).unwrap();
        assert_eq!(back, ServerFrame::Message(m));
    }

    #[test]
    fn rate_limiter_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 5, t0);
        for i in 0..5 {
            assert!(r.allow(t0), "burst frame {i}");
        }
        assert!(!r.allow(t0), "the sixth at once is refused");
        assert!(r.wait_hint() > Duration::ZERO);
        assert!(
            r.allow(t0 + Duration::from_millis(100)),
            "one token back after 1/10 s"
        );
        assert!(!r.allow(t0 + Duration::from_millis(100)));
        // Refilling is capped at the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(r.allow(later));
        }
        assert!(!r.allow(later));
    }
}
