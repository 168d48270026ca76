//! The `/chat` websocket: one task per socket running the command protocol of
//! [`warden_chat::protocol`], with the size limit, the rate limit, pings, resume and live
//! enforcement (rule changes re-evaluated at once; an expired token drops the room), and
//! a bounded goodbye when the server stops (Close `1001`, at most `SHUTDOWN_GOODBYE`).
//! Joining, resuming and sending are rooms operations ([`warden_ops::rooms`]) for the
//! socket's token user; this module renders their outcomes as protocol frames.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use warden_chat::protocol::{
    ClientFrame, ErrorCode, RateLimiter, ServerFrame, Status, parse_client,
};
use warden_chat::token::ValidToken;
use warden_ops::rooms::{Admission, Posting};
use warden_ops::{ErrorKind, OpsError};

use super::hub::{Membership, RoomEvent};
use super::rest::ChatError;
use super::{ChatState, MAX_FRAME_BYTES};

/// Refused frames in a row after which a flooding client is disconnected.
const FLOOD_CLOSE_AFTER: u32 = 200;

/// How long a closing socket waits for the client's Close.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);
/// How long a socket may take, once the server is stopping, to send its Close and hear
/// the client's (within the process's shutdown deadline, `crate::serve::GRACE`).
const SHUTDOWN_GOODBYE: Duration = Duration::from_millis(500);
/// Read buffer of a socket, held for the socket's life, so an idle socket pays for it
/// (1 KiB was a sixth of an idle socket's memory): a select, a ping or a short message
/// fits; a longer frame (a token, a long message) grows it to that frame's size, read in
/// pieces of this size.
pub(crate) const READ_BUFFER_BYTES: usize = 256;
/// Frames queued for a socket are written out together once this much is buffered (and
/// at the end of every batch); the buffer grows only while frames are queued.
pub(crate) const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// A socket whose unsent frames exceed this is failing to read: its writes fail.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// Room messages written to a socket per flush at most (the rest wait for the next one).
pub(crate) const FRAMES_PER_WRITE: u64 = 64;

/// Close codes (RFC 6455 and the private range).
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_BADAUTH: u16 = 4001;

/// `GET /chat`: upgrades to a websocket.
pub(super) async fn upgrade(
    State(state): State<ChatState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws
            // tungstenite's default 128 KiB read buffer per socket dominated an idle
            // socket's memory (`warden bench chat`: ~137 KB per connection); chat frames
            // are small, and a larger frame still grows the buffer as it is read.
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES)
            .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
            .max_message_size(MAX_FRAME_BYTES)
            .max_frame_size(MAX_FRAME_BYTES)
            .on_upgrade(move |socket| {
                // Split here, outside the socket's future: a `WebSocket` held by value
                // across an await would keep its size in the task for the socket's life.
                let (sink, stream) = socket.split();
                socket_task(state, sink, stream)
            })
            .into_response(),
        Err(e) => ChatError::Invalid(format!("/chat is a websocket: {e}")).into_response(),
    }
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;
type Stream = futures::stream::SplitStream<WebSocket>;

/// A socket's task: its session, and at shutdown a bounded wait for the goodbye.
async fn socket_task(state: ChatState, sink: Sink, stream: Stream) {
    let _open = state.sessions.open();
    let stop = state.stop.clone();
    let shard = stop.shard();
    let mut session = std::pin::pin!(Session::new(state).run(sink, stream, shard));
    tokio::select! {
        () = &mut session => {}
        () = stop.wait(shard) => {
            // The session sends its Close itself; a client that does not
            // read (the Close cannot even be written) or never answers it
            // gets this long, then the socket is dropped.
            if tokio::time::timeout(SHUTDOWN_GOODBYE, session).await.is_err() {
                tracing::debug!("chat socket dropped at shutdown without a closing handshake");
            }
        }
    }
}

struct Joined {
    room_id: i64,
    member: Membership,
    /// Live messages with an id up to this were already sent from the store (resume).
    replayed_upto: i64,
    /// An event taken from the queue while batching messages, handled next.
    pending: Option<Result<RoomEvent, RecvError>>,
}

struct Session {
    state: ChatState,
    token: Option<ValidToken>,
    bad_tokens: u32,
    joined: Option<Joined>,
    limiter: RateLimiter,
    refused_in_a_row: u32,
    last_heard: Instant,
}

/// What the loop does after handling something.
enum Next {
    Continue,
    Close(u16, &'static str),
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(frame.to_json().into())
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn unix_now() -> i64 {
    warden_ops::now()
}

/// The protocol's form of an operation's error (the one mapping of the socket): failures
/// of Warden itself are logged and answered without details.
fn error_frame(e: &OpsError) -> ServerFrame {
    let code = match e.kind() {
        ErrorKind::Invalid => ErrorCode::InvalidJson,
        ErrorKind::NotFound => ErrorCode::NoSuchRoom,
        ErrorKind::Refused => ErrorCode::NotAuthorised,
        ErrorKind::Conflict | ErrorKind::Unavailable | ErrorKind::Internal => {
            return internal_frame(e);
        }
    };
    ServerFrame::error(code, e.to_string())
}

/// A failure of the gateway (logged; the client learns only that it failed).
fn internal_frame(e: &dyn std::fmt::Display) -> ServerFrame {
    tracing::error!(error = %e, "chat socket command failed");
    ServerFrame::error(
        ErrorCode::Internal,
        "internal error; the details are in the server log",
    )
}

impl Session {
    fn new(state: ChatState) -> Session {
        let limiter = RateLimiter::new(state.cfg.rate_per_second, state.cfg.burst, Instant::now());
        Session {
            state,
            token: None,
            bad_tokens: 0,
            joined: None,
            limiter,
            refused_in_a_row: 0,
            last_heard: Instant::now(),
        }
    }

    // Not an `async fn`: its arguments would be kept twice in the future (once as the
    // arguments, once as the body's locals); captured by this block, they are kept once.
    #[allow(clippy::manual_async_fn)]
    fn run(
        mut self,
        mut sink: Sink,
        mut stream: Stream,
        stop_shard: usize,
    ) -> impl std::future::Future<Output = ()> + Send {
        async move {
            if sink
                .send(text(&ServerFrame::status(Status::Start)))
                .await
                .is_err()
            {
                return;
            }
            let ping_every = self.state.cfg.ping_interval;
            // The shutdown signal and one timer are waited on by futures made once and kept
            // across turns of the loop (made anew for every frame, each was registered with,
            // and removed from, the timer wheel and the stop's waiters per delivery). The
            // timer serves both the next ping and the token's expiry, whichever comes first:
            // one timer less on every idle socket.
            let stop = self.state.stop.clone();
            let mut stopping = std::pin::pin!(async move { stop.wait(stop_shard).await });
            let mut next_ping = tokio::time::Instant::now() + ping_every;
            let mut timer = std::pin::pin!(tokio::time::sleep_until(next_ping));
            // When the token expires (none: no token), and the `exp` that was computed from.
            let mut expires_at: Option<tokio::time::Instant> = None;
            let mut expiry_for: Option<i64> = None;
            loop {
                let exp = self.token.as_ref().map(|t| t.exp);
                if exp != expiry_for {
                    expires_at = exp.map(|exp| {
                        let left = (exp - unix_now()).max(0) as u64;
                        tokio::time::Instant::now() + Duration::from_secs(left)
                    });
                    expiry_for = exp;
                }
                let due = expires_at.map_or(next_ping, |at| at.min(next_ping));
                if timer.deadline() != due {
                    timer.as_mut().reset(due);
                }
                let next = tokio::select! {
                    incoming = stream.next() => match incoming {
                        None => break,
                        Some(Err(e)) => {
                            // Oversize frames end here (the reader refuses them).
                            let too_big = e.to_string().to_ascii_lowercase().contains("too long")
                                || e.to_string().to_ascii_lowercase().contains("too big")
                                || e.to_string().to_ascii_lowercase().contains("capacity");
                            if too_big {
                                let _ = sink.send(text(&ServerFrame::error(
                                    ErrorCode::TooLarge,
                                    format!("frame larger than {MAX_FRAME_BYTES} bytes; closing"),
                                ))).await;
                                let _ = sink.send(close(CLOSE_TOO_BIG, "frame too big")).await;
                            }
                            break;
                        }
                        Some(Ok(msg)) => {
                            self.last_heard = Instant::now();
                            match msg {
                                Message::Text(t) => Box::pin(self.on_text(t.as_str(), &mut sink)).await,
                                Message::Binary(_) => {
                                    self.reply(&mut sink, &ServerFrame::error(
                                        ErrorCode::InvalidJson,
                                        "binary frames are not part of the protocol: send JSON text",
                                    )).await
                                }
                                Message::Ping(_) | Message::Pong(_) => Next::Continue,
                                Message::Close(_) => break,
                            }
                        }
                    },
                    event = recv_room(&mut self.joined) => Box::pin(self.on_room_event(event, &mut sink)).await,
                    () = &mut timer => {
                        let now = tokio::time::Instant::now();
                        if expires_at.is_some_and(|at| at <= now) {
                            // A ping due too is sent on the next turn (the timer is reset
                            // to it, in the past, so it fires at once).
                            expires_at = None;
                            Box::pin(self.on_token_expired(&mut sink)).await
                        } else {
                            next_ping = now + ping_every;
                            if self.last_heard.elapsed() > ping_every * 2 {
                                Next::Close(CLOSE_POLICY, "no pong")
                            } else if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                                break;
                            } else {
                                Next::Continue
                            }
                        }
                    }
                    () = &mut stopping => Next::Close(CLOSE_GOING_AWAY, "server shutting down"),
                };
                match next {
                    Next::Continue => {}
                    Next::Close(code, reason) => {
                        let _ = sink.send(close(code, reason)).await;
                        // The closing handshake: read (and drop) what the client still sends
                        // until its Close, so the socket is not dropped with unread data —
                        // that would reset the connection and the client could lose our
                        // Close frame and its code (a flooder, typically).
                        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                            while let Some(Ok(m)) = stream.next().await {
                                if matches!(m, Message::Close(_)) {
                                    break;
                                }
                            }
                        })
                        .await;
                        break;
                    }
                }
            }
        }
    }

    async fn reply(&mut self, sink: &mut Sink, frame: &ServerFrame) -> Next {
        if sink.send(text(frame)).await.is_err() {
            return Next::Close(CLOSE_GOING_AWAY, "send failed");
        }
        Next::Continue
    }

    async fn on_text(&mut self, raw: &str, sink: &mut Sink) -> Next {
        if !self.limiter.allow(Instant::now()) {
            self.refused_in_a_row += 1;
            if self.refused_in_a_row >= FLOOD_CLOSE_AFTER {
                let _ = sink
                    .send(text(&ServerFrame::error(
                        ErrorCode::RateLimited,
                        "flooding: closing the connection",
                    )))
                    .await;
                return Next::Close(CLOSE_POLICY, "rate limit");
            }
            let wait = self.limiter.wait_hint();
            return self
                .reply(
                    sink,
                    &ServerFrame::error(
                        ErrorCode::RateLimited,
                        format!(
                            "more than {} frames per second: frame dropped; retry in {} ms",
                            self.state.cfg.rate_per_second,
                            wait.as_millis().max(1)
                        ),
                    ),
                )
                .await;
        }
        self.refused_in_a_row = 0;
        let frame = match parse_client(raw) {
            Ok(f) => f,
            Err(reply) => return self.reply(sink, &reply).await,
        };
        match frame {
            ClientFrame::Token { content } => self.on_token(&content, sink).await,
            ClientFrame::Ping => self.reply(sink, &ServerFrame::Pong).await,
            _ if self.token.is_none() => {
                self.reply(
                    sink,
                    &ServerFrame::error(
                        ErrorCode::NotAuthenticated,
                        "send {\"type\":\"token\",\"content\":\"<jwt>\"} first",
                    ),
                )
                .await
            }
            ClientFrame::SelectRoom { room_id, after } => {
                self.on_select(room_id, after, sink).await
            }
            ClientFrame::Message { content } => self.on_message(content, sink).await,
            ClientFrame::LeaveRoom => match self.joined.take() {
                Some(j) => self.reply(sink, &left(j.room_id, "left")).await,
                None => {
                    self.reply(
                        sink,
                        &ServerFrame::error(ErrorCode::NotInRoom, "no room selected"),
                    )
                    .await
                }
            },
        }
    }

    async fn on_token(&mut self, token: &str, sink: &mut Sink) -> Next {
        match self.state.cfg.validator.validate(token) {
            Ok(valid) => {
                let same_user = self.token.as_ref().is_none_or(|t| t.caller == valid.caller);
                self.token = Some(valid);
                self.bad_tokens = 0;
                if !same_user
                    && let Some(j) = self.joined.take()
                    && let Next::Close(c, r) =
                        self.reply(sink, &left(j.room_id, "new identity")).await
                {
                    return Next::Close(c, r);
                }
                self.reply(sink, &ServerFrame::status(Status::Ready)).await
            }
            Err(e) => {
                self.bad_tokens += 1;
                if self.bad_tokens >= self.state.cfg.token_attempts {
                    let _ = sink
                        .send(text(&ServerFrame::Status {
                            content: Status::BadAuth,
                            room_id: None,
                            reason: Some(e.to_string()),
                        }))
                        .await;
                    return Next::Close(CLOSE_BADAUTH, "BADAUTH");
                }
                self.reply(
                    sink,
                    &ServerFrame::Status {
                        content: Status::TokenAgain,
                        room_id: None,
                        reason: Some(e.to_string()),
                    },
                )
                .await
            }
        }
    }

    async fn on_select(&mut self, room_id: i64, after: Option<i64>, sink: &mut Sink) -> Next {
        let Some(caller) = self.token.as_ref().map(|t| t.caller.clone()) else {
            return Next::Continue;
        };
        // Leave the current room first: a refused select leaves the socket in no room.
        self.joined = None;
        match self.state.rooms.admission(&caller, room_id).await {
            Ok(Admission::Admitted(_)) => {}
            Ok(Admission::Banned) => {
                return self
                    .reply(
                        sink,
                        &ServerFrame::error(
                            ErrorCode::Banned,
                            format!("banned from room {room_id}"),
                        ),
                    )
                    .await;
            }
            Ok(Admission::NotReadable) => {
                return self
                    .reply(
                        sink,
                        &ServerFrame::error(
                            ErrorCode::NotAuthorised,
                            format!("joining room {room_id} needs the r permission"),
                        ),
                    )
                    .await;
            }
            Err(e) => return self.reply(sink, &error_frame(&e)).await,
        }
        // Subscribe before reading the stored messages: whatever is stored after the read
        // arrives live, whatever before is replayed; the overlap is skipped by id.
        let member = match self.state.hub.join(room_id).await {
            Ok(m) => m,
            Err(e) => return self.reply(sink, &internal_frame(&e)).await,
        };
        let mut replayed_upto = 0;
        if let Some(after) = after {
            replayed_upto = after;
            let replay = match self
                .state
                .rooms
                .messages_after(&caller, room_id, after)
                .await
            {
                Ok(messages) => messages,
                Err(e) => return self.reply(sink, &error_frame(&e)).await,
            };
            for m in replay {
                replayed_upto = replayed_upto.max(m.id);
                if let Next::Close(c, r) = self.reply(sink, &ServerFrame::Message(m)).await {
                    return Next::Close(c, r);
                }
            }
        }
        self.joined = Some(Joined {
            room_id,
            member,
            replayed_upto,
            pending: None,
        });
        self.reply(
            sink,
            &ServerFrame::Status {
                content: Status::Connected,
                room_id: Some(room_id),
                reason: None,
            },
        )
        .await
    }

    async fn on_message(&mut self, content: String, sink: &mut Sink) -> Next {
        let Some(joined) = &self.joined else {
            return self
                .reply(
                    sink,
                    &ServerFrame::error(ErrorCode::NotInRoom, "select a room before sending"),
                )
                .await;
        };
        let room_id = joined.room_id;
        let Some(caller) = self.token.as_ref().map(|t| t.caller.clone()) else {
            return Next::Continue;
        };
        // Stored once, by the gateway's writer (a group commit with whatever other sockets
        // sent meanwhile), which publishes the batch to every gateway (this one included)
        // before answering: the sender gets its echo as a delivery in the room.
        match self.state.writer.post(&caller, room_id, content).await {
            Ok(Posting::Stored(_)) => {
                super::stats().accepted();
                Next::Continue
            }
            Ok(Posting::NotWritable) => {
                self.reply(
                    sink,
                    &ServerFrame::error(
                        ErrorCode::NotAuthorised,
                        format!("sending to room {room_id} needs the w permission"),
                    ),
                )
                .await
            }
            Ok(Posting::TooLarge { bytes, limit }) => {
                self.reply(
                    sink,
                    &ServerFrame::error(
                        ErrorCode::TooLarge,
                        format!("message of {bytes} bytes; the limit is {limit}"),
                    ),
                )
                .await
            }
            Ok(Posting::Empty) => {
                self.reply(
                    sink,
                    &ServerFrame::error(ErrorCode::EmptyMessage, "empty message"),
                )
                .await
            }
            Err(e) => {
                // A room deleted under the socket: the socket is no longer in it.
                if matches!(e, OpsError::NotFound(_)) {
                    self.joined = None;
                }
                self.reply(sink, &error_frame(&e)).await
            }
        }
    }

    async fn on_room_event(
        &mut self,
        event: Result<RoomEvent, RecvError>,
        sink: &mut Sink,
    ) -> Next {
        let Some(joined) = &mut self.joined else {
            return Next::Continue;
        };
        let room_id = joined.room_id;
        match event {
            Ok(RoomEvent::Message(message)) => {
                // This message and whatever else is already queued for the socket go out
                // in one write: fed one by one, flushed once.
                let mut fed = 0u64;
                let mut next = Some(message);
                while let Some(message) = next.take() {
                    if message.id > joined.replayed_upto {
                        if sink
                            .feed(Message::Text(message.frame.clone()))
                            .await
                            .is_err()
                        {
                            return Next::Close(CLOSE_GOING_AWAY, "send failed");
                        }
                        fed += 1;
                    }
                    if fed >= FRAMES_PER_WRITE {
                        break;
                    }
                    match joined.member.rx.try_recv() {
                        Ok(RoomEvent::Message(message)) => next = Some(message),
                        Ok(other) => joined.pending = Some(Ok(other)),
                        Err(TryRecvError::Empty) => {}
                        Err(TryRecvError::Lagged(n)) => {
                            joined.pending = Some(Err(RecvError::Lagged(n)));
                        }
                        Err(TryRecvError::Closed) => joined.pending = Some(Err(RecvError::Closed)),
                    }
                }
                if fed > 0 {
                    if sink.flush().await.is_err() {
                        return Next::Close(CLOSE_GOING_AWAY, "send failed");
                    }
                    super::stats().delivered(fed);
                }
                Next::Continue
            }
            Ok(RoomEvent::RulesChanged) => self.recheck(sink).await,
            Ok(RoomEvent::Deleted) => {
                self.joined = None;
                self.reply(sink, &left(room_id, "room deleted")).await
            }
            Err(RecvError::Lagged(n)) => {
                self.reply(
                    sink,
                    &ServerFrame::error(
                        ErrorCode::Lagged,
                        format!("{n} messages of room {room_id} were skipped: select the room again with \"after\" set to the last id you have"),
                    ),
                )
                .await
            }
            Err(RecvError::Closed) => {
                self.joined = None;
                self.reply(sink, &left(room_id, "room closed")).await
            }
        }
    }

    /// Re-checks whether the caller may still be in the joined room; leaves it when not.
    /// (Writing is checked by every send.)
    async fn recheck(&mut self, sink: &mut Sink) -> Next {
        let (Some(joined), Some(token)) = (&self.joined, &self.token) else {
            return Next::Continue;
        };
        let room_id = joined.room_id;
        match self.state.rooms.admission(&token.caller, room_id).await {
            Ok(Admission::Admitted(_)) => Next::Continue,
            Ok(Admission::Banned) => {
                self.joined = None;
                self.reply(sink, &left(room_id, "banned")).await
            }
            Ok(Admission::NotReadable) => {
                self.joined = None;
                self.reply(sink, &left(room_id, "removed")).await
            }
            Err(OpsError::NotFound(_)) => {
                self.joined = None;
                self.reply(sink, &left(room_id, "room deleted")).await
            }
            Err(e) => self.reply(sink, &error_frame(&e)).await,
        }
    }

    async fn on_token_expired(&mut self, sink: &mut Sink) -> Next {
        self.token = None;
        if let Some(j) = self.joined.take()
            && let Next::Close(c, r) = self.reply(sink, &left(j.room_id, "token expired")).await
        {
            return Next::Close(c, r);
        }
        if let Next::Close(c, r) = self
            .reply(
                sink,
                &ServerFrame::error(ErrorCode::TokenExpired, "the token has expired"),
            )
            .await
        {
            return Next::Close(c, r);
        }
        self.reply(
            sink,
            &ServerFrame::Status {
                content: Status::TokenAgain,
                room_id: None,
                reason: Some("token expired".into()),
            },
        )
        .await
    }
}

fn left(room_id: i64, reason: &str) -> ServerFrame {
    ServerFrame::Status {
        content: Status::Left,
        room_id: Some(room_id),
        reason: Some(reason.to_string()),
    }
}

async fn recv_room(joined: &mut Option<Joined>) -> Result<RoomEvent, RecvError> {
    match joined {
        Some(j) => match j.pending.take() {
            Some(event) => event,
            None => j.member.rx.recv().await,
        },
        None => std::future::pending().await,
    }
}
