//! The rooms gateway (chat): the `/rooms` REST routes and the `/chat` websocket, inside
//! `warden serve` (on its HTTP address) or alone as `warden chat` for scale-out.
//!
//! - What happens in a room: [`warden_ops::rooms`] (every read and change of rooms, rules,
//!   invitations and messages, decided there with [`warden_chat::permissions::evaluate`]).
//!   This module parses requests and frames, calls those operations and renders their
//!   results; it holds a [`Warden`], never the store.
//! - Tokens: HS256 from the upstream user service ([`warden_chat::token`]); the token's
//!   user is who the rooms operations act for.
//! - Fan-out: every gateway process hands a message it stored to its own clients in the
//!   room and publishes it once on NATS (`chat.room.<id>.msg`, in the dedicated chat
//!   account), for the other gateways to deliver to theirs ([`hub`]). Rule changes and deletions are
//!   published on `chat.room.<id>.ctl`, so every gateway re-evaluates its open sockets at
//!   once (live enforcement).
//! - Counters for `/metrics` ([`stats`]): sockets opened and open, messages accepted,
//!   deliveries to sockets.

pub mod hub;
mod rest;
pub(crate) mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, put};
use tokio::sync::{Notify, watch};
use warden_chat::token::TokenValidator;
use warden_core::{AccountSpec, UserSpec};
use warden_ops::rooms::{RoomWriter, Rooms, RoomsPolicy, StoredHook};
use warden_ops::{Actor, OpsError, Warden};

pub use hub::Hub;

/// Makes glibc's allocator keep one arena for the whole process; call it before any thread
/// starts. By default glibc gives threads that contend for it an arena of their own, up to
/// eight per core, and each arena keeps freed memory apart: in a standalone gateway with
/// 2,000 idle sockets, its few threads (two workers, SQLite's connections) held 0.8–0.9 MiB
/// more that way, with no measurable gain in its throughput or latency (BENCHMARKS.md,
/// rooms gateway). Elsewhere (another C library) this does nothing.
pub fn one_allocator_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` sets a tunable of the C allocator under the allocator's own lock,
    // and any positive M_ARENA_MAX is valid. (Called early only so that it takes effect.)
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// NATS subject prefix of the rooms: `<prefix>.<room id>.msg|ctl`.
pub const SUBJECT_PREFIX: &str = "chat.room";
/// The NATS account of the gateways (created by `warden serve` when missing).
pub const DEFAULT_ACCOUNT: &str = "CHAT";
/// The gateways' user in that account.
pub const GATEWAY_USER: &str = "gateway";
/// The ledger name of the gateway's own [`Warden`] (room events name the chat user,
/// `chat:<user UUID>`).
pub const GATEWAY_ACTOR: &str = "chat";

/// Largest websocket frame read (bigger ones close the socket with 1009 "too big").
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The gateway's settings as given (by `warden serve` and `warden chat` from their
/// flags); [`ChatSettings::check`] turns them into a [`ChatConfig`].
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// HS256 secrets of the upstream user service (several during a rotation; empty ones
    /// are ignored). Setting one enables the gateway.
    pub secrets: Vec<String>,
    /// Accepted token audiences (`aud`).
    pub audiences: Vec<String>,
    /// Accepted token issuers (`iss`).
    pub issuers: Vec<String>,
    /// Clock skew tolerated on `exp`, seconds.
    pub leeway_secs: u64,
    /// Lowest `levelOnEntity` that may create rooms.
    pub create_level: i64,
    /// Largest message text, bytes.
    pub max_message_bytes: usize,
    /// Frames a connection may send per second on average.
    pub rate_per_second: u32,
    /// Frames a connection may send in a burst.
    pub burst: u32,
    /// Seconds between websocket pings.
    pub ping_secs: u64,
    /// Bad tokens allowed on a socket before `BADAUTH` and close.
    pub token_attempts: u32,
    /// The NATS account of the gateways.
    pub account: String,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            secrets: Vec::new(),
            audiences: Vec::new(),
            issuers: Vec::new(),
            leeway_secs: 0,
            create_level: 100,
            max_message_bytes: 4096,
            rate_per_second: 20,
            burst: 40,
            ping_secs: 20,
            token_attempts: 3,
            account: DEFAULT_ACCOUNT.to_string(),
        }
    }
}

impl ChatSettings {
    /// Whether the gateway is configured (a secret is set).
    pub fn enabled(&self) -> bool {
        self.secrets.iter().any(|s| !s.is_empty())
    }

    /// The checked configuration; unusable settings are [`OpsError::Invalid`].
    pub fn check(&self) -> Result<ChatConfig, OpsError> {
        let secrets: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let validator =
            TokenValidator::new(&secrets, &self.audiences, &self.issuers, self.leeway_secs)
                .map_err(|e| OpsError::Invalid(format!("{e} (see `warden chat --help`)")))?;
        if self.max_message_bytes == 0 || self.max_message_bytes > MAX_FRAME_BYTES / 2 {
            return Err(OpsError::Invalid(format!(
                "--chat-max-message-bytes must be between 1 and {}",
                MAX_FRAME_BYTES / 2
            )));
        }
        Ok(ChatConfig {
            validator,
            policy: RoomsPolicy {
                create_level: self.create_level,
                max_message_bytes: self.max_message_bytes,
            },
            rate_per_second: self.rate_per_second.max(1),
            burst: self.burst.max(1),
            ping_interval: Duration::from_secs(self.ping_secs.max(1)),
            token_attempts: self.token_attempts.max(1),
        })
    }
}

/// The gateway's settings, checked.
#[derive(Debug)]
pub struct ChatConfig {
    /// Token checks.
    pub validator: TokenValidator,
    /// What the rooms operations enforce (creation level, message size).
    pub policy: RoomsPolicy,
    /// Average frames per second per connection.
    pub rate_per_second: u32,
    /// Burst of frames per connection.
    pub burst: u32,
    /// Websocket ping interval.
    pub ping_interval: Duration,
    /// Bad tokens before `BADAUTH`.
    pub token_attempts: u32,
}

/// What can stop the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The settings are unusable (the caller's mistake).
    #[error("{0}")]
    Settings(#[source] OpsError),
    /// The gateway's NATS account or user could not be made or read.
    #[error("{what}")]
    Setup {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: OpsError,
    },
    /// The creds do not parse.
    #[error("chat gateway creds: {0}")]
    Creds(String),
    /// NATS refused the connection.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The NATS URL.
        url: String,
        /// Why.
        reason: String,
    },
}

/// What the gateway's handlers share: one allocation, so that each request and each
/// socket holds a pointer to it, not a copy (a socket's task keeps what it was handed for
/// as long as the socket is open: a copy of the [`Warden`] and the rest was ~1 KB of
/// every idle socket).
#[derive(Clone)]
pub struct ChatState(Arc<ChatShared>);

/// The parts of [`ChatState`].
pub struct ChatShared {
    /// The rooms operations, on the gateway's [`Warden`].
    pub(crate) rooms: Rooms,
    /// Messages from sockets, stored in group commits and published by the writer.
    pub(crate) writer: RoomWriter,
    pub(crate) cfg: ChatConfig,
    pub(crate) hub: Arc<Hub>,
    pub(crate) stop: Arc<Stopping>,
    pub(crate) sessions: Sessions,
}

/// The server's stop as every socket waits for it (twice: its session, and its task
/// bounding the goodbye): a flag and [`Notify`]s, whose waiting future is about half the
/// size of a `watch` receiver's (~160 bytes each), on every idle socket. A waiting
/// `Notified` takes its `Notify`'s lock each time its task is polled (every delivery):
/// the sockets are spread over several, as `watch` does, so they do not all take one.
pub(crate) struct Stopping {
    stopped: AtomicBool,
    notify: [Notify; STOP_SHARDS],
    next: AtomicUsize,
}

/// How many [`Notify`]s the sockets are spread over.
const STOP_SHARDS: usize = 16;

impl Stopping {
    /// Follows `stop` (true, or its sender gone, is the stop).
    fn follow(mut stop: watch::Receiver<bool>) -> Arc<Stopping> {
        let stopping = Arc::new(Stopping {
            stopped: AtomicBool::new(false),
            notify: std::array::from_fn(|_| Notify::new()),
            next: AtomicUsize::new(0),
        });
        let set = stopping.clone();
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            set.stopped.store(true, Ordering::Release);
            for n in &set.notify {
                n.notify_waiters();
            }
        });
        stopping
    }

    /// The [`Notify`] a new socket waits on (they take turns).
    pub(crate) fn shard(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % STOP_SHARDS
    }

    /// Returns once the server is stopping; `shard` is the socket's [`Stopping::shard`].
    pub(crate) async fn wait(&self, shard: usize) {
        let notified = self.notify[shard % STOP_SHARDS].notified();
        tokio::pin!(notified);
        // Registered before the flag is read: a stop between the two still wakes it.
        notified.as_mut().enable();
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

impl std::ops::Deref for ChatState {
    type Target = ChatShared;

    fn deref(&self) -> &ChatShared {
        &self.0
    }
}

impl ChatState {
    /// The gateway's open websockets (to wait, at shutdown, for their goodbyes).
    pub fn sessions(&self) -> Sessions {
        self.sessions.clone()
    }
}

/// The open websockets of a gateway, counted. The HTTP server stops tracking a socket
/// once it is upgraded, so this is what a shutdown waits on for every socket to have
/// sent its Close (each socket bounds its own goodbye).
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    open: Arc<watch::Sender<usize>>,
}

/// What the rooms gateway of this process did since it started (served as metrics).
#[derive(Debug, Default)]
pub struct ChatStats {
    opened: AtomicU64,
    closed: AtomicU64,
    accepted: AtomicU64,
    delivered: AtomicU64,
}

/// A copy of [`ChatStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatStatsSnapshot {
    /// Websockets open now.
    pub open: u64,
    /// Websockets opened.
    pub opened: u64,
    /// Messages accepted from sockets (stored and published).
    pub accepted: u64,
    /// Messages sent to sockets.
    pub delivered: u64,
}

impl ChatStats {
    /// The counts now.
    pub fn snapshot(&self) -> ChatStatsSnapshot {
        let opened = self.opened.load(Ordering::Relaxed);
        ChatStatsSnapshot {
            open: opened.saturating_sub(self.closed.load(Ordering::Relaxed)),
            opened,
            accepted: self.accepted.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self, frames: u64) {
        self.delivered.fetch_add(frames, Ordering::Relaxed);
    }
}

/// The rooms gateway's counters in this process (one gateway per process).
pub fn stats() -> &'static ChatStats {
    static STATS: std::sync::OnceLock<ChatStats> = std::sync::OnceLock::new();
    STATS.get_or_init(ChatStats::default)
}

/// One open websocket; dropping it closes it in the count.
pub(crate) struct SessionGuard(Arc<watch::Sender<usize>>);

impl Sessions {
    /// Counts one more open socket, until the guard is dropped.
    pub(crate) fn open(&self) -> SessionGuard {
        stats().opened.fetch_add(1, Ordering::Relaxed);
        self.open.send_modify(|n| *n += 1);
        SessionGuard(self.open.clone())
    }

    /// Resolves once no socket is open.
    pub async fn closed(&self) {
        let mut rx = self.open.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        stats().closed.fetch_add(1, Ordering::Relaxed);
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The gateway's routes (state applied), to serve alone or merge into `warden serve`.
pub fn router(state: ChatState) -> Router {
    Router::new()
        .route("/rooms", get(rest::list_rooms).post(rest::create_room))
        .route("/rooms/{id}", get(rest::room).delete(rest::delete_room))
        .route("/rooms/{id}/members", put(rest::put_member))
        .route(
            "/rooms/{id}/members/{entity}",
            axum::routing::delete(rest::delete_member),
        )
        .route("/rooms/{id}/invitation", put(rest::answer_invitation))
        .route("/rooms/{id}/messages", get(rest::messages))
        .route("/chat", get(ws::upgrade))
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// Checks `settings`, connects to NATS with `creds` (retrying in the background until the
/// account is known to the server) and builds the gateway's state on `warden`'s store, as
/// the gateway ([`GATEWAY_ACTOR`]).
pub async fn start(
    warden: &Warden,
    settings: &ChatSettings,
    nats: &str,
    creds: &str,
    stop: watch::Receiver<bool>,
) -> Result<ChatState, GatewayError> {
    let cfg = settings.check().map_err(GatewayError::Settings)?;
    let options = async_nats::ConnectOptions::with_credentials(creds)
        .map_err(|e| GatewayError::Creds(e.to_string()))?;
    let client = Hub::connect_options(options)
        .name("warden-chat")
        .retry_on_initial_connect()
        .retain_servers_order()
        .connect(warden_nats::servers(nats))
        .await
        .map_err(|e| GatewayError::Connect {
            url: nats.to_string(),
            reason: e.to_string(),
        })?;
    let rooms = Rooms::new(warden.with_actor(Actor::system(GATEWAY_ACTOR)), cfg.policy);
    let hub = Arc::new(Hub::new(client, SUBJECT_PREFIX));
    // Each committed batch is published in id order before its senders hear back, so a
    // sender's echo follows its ack and one gateway's messages of a room go out in order.
    let publisher = hub.clone();
    let hook: StoredHook = Arc::new(move |messages| {
        let hub = publisher.clone();
        Box::pin(async move {
            hub.publish_messages(&messages)
                .await
                .map_err(|e| e.to_string())
        })
    });
    Ok(ChatState(Arc::new(ChatShared {
        writer: rooms.writer(hook),
        rooms,
        cfg,
        hub,
        stop: Stopping::follow(stop),
        sessions: Sessions::default(),
    })))
}

/// Serves the gateway alone on `listener` (with `GET /metrics`, no token: counts only)
/// until `stop` resolves, then waits for the requests in flight and the websockets' goodbyes (unbounded: the caller bounds the
/// whole, see [`crate::serve::Tasks`]); unknown paths get the gateway's JSON `no_route`
/// error.
pub async fn serve(
    listener: crate::http::Listening,
    state: ChatState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sessions = state.sessions();
    let app = router(state)
        .route("/metrics", get(crate::http::metrics::chat_metrics))
        .fallback(|| async { rest::ChatError::NoRoute.into_response_json() })
        .layer(axum::middleware::from_fn(crate::http::metrics::track));
    match listener {
        crate::http::Listening::Plain(l) => {
            use axum::serve::ListenerExt as _;
            crate::http::serve_router(l.tap_io(crate::http::no_delay), app, stop).await?
        }
        crate::http::Listening::Tls(l) => {
            let app = app.layer(axum::middleware::map_response(crate::http::hsts));
            crate::http::serve_router(l, app, stop).await?
        }
    }
    sessions.closed().await;
    Ok(())
}

/// In `warden serve`: the gateway's account and user exist (created on first start, and
/// pushed by the relay like any account), and their creds.
pub async fn gateway_creds(
    warden: &Warden,
    account: &str,
) -> Result<zeroize::Zeroizing<String>, GatewayError> {
    match warden.account(account).await {
        Ok(_) => {}
        Err(OpsError::NotFound(_)) => {
            warden
                .add_account(account, AccountSpec::default())
                .await
                .map_err(|source| GatewayError::Setup {
                    what: format!("creating the chat account {account}"),
                    source,
                })?;
        }
        Err(source) => {
            return Err(GatewayError::Setup {
                what: format!("reading the chat account {account}"),
                source,
            });
        }
    }
    match warden.user(account, GATEWAY_USER).await {
        Ok(_) => {}
        Err(OpsError::NotFound(_)) => {
            warden
                .add_user(account, GATEWAY_USER, UserSpec::default())
                .await
                .map_err(|source| GatewayError::Setup {
                    what: format!("creating the chat gateway user {account}/{GATEWAY_USER}"),
                    source,
                })?;
        }
        Err(source) => {
            return Err(GatewayError::Setup {
                what: format!("reading the chat gateway user {account}/{GATEWAY_USER}"),
                source,
            });
        }
    }
    warden
        .creds(account, GATEWAY_USER)
        .await
        .map_err(|source| GatewayError::Setup {
            what: format!("the creds of {account}/{GATEWAY_USER}"),
            source,
        })
}
