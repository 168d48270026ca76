//! The rooms gateway (chat): the `/rooms` REST routes and the `/chat` websocket, inside
//! `warden serve` (on its HTTP address) or alone as `warden chat` for scale-out.
//!
//! - Who may do what: [`warden_chat::permissions::evaluate`], one function for every path.
//! - Tokens: HS256 from the upstream user service ([`warden_chat::token`]).
//! - Rooms, rules, invitations and messages live in the store; each room change is one
//!   transaction with its ledger event.
//! - Fan-out: every gateway process publishes a stored message once on NATS
//!   (`chat.room.<id>.msg`, in the dedicated chat account) and delivers what it receives
//!   there to its own clients in that room ([`hub`]). Rule changes and deletions are
//!   published on `chat.room.<id>.ctl`, so every gateway re-evaluates its open sockets at
//!   once (live enforcement).

pub mod hub;
mod rest;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::routing::{get, put};
use clap::Args;
use tokio::sync::watch;
use warden_chat::token::TokenValidator;
use warden_core::{AccountSpec, UserSpec};
use warden_store::Store;

use warden_ops::{OpsError, Warden};

pub use hub::Hub;

/// NATS subject prefix of the rooms: `<prefix>.<room id>.msg|ctl`.
pub const SUBJECT_PREFIX: &str = "chat.room";
/// The NATS account of the gateways (created by `warden serve` when missing).
pub const DEFAULT_ACCOUNT: &str = "CHAT";
/// The gateways' user in that account.
pub const GATEWAY_USER: &str = "gateway";

/// Flags of the rooms gateway, shared by `warden serve` and `warden chat`.
#[derive(Args, Debug, Clone, Default)]
pub struct ChatArgs {
    /// HS256 secret of the upstream user service; repeat (or comma-separate) to accept
    /// several during a rotation. Setting one enables the rooms gateway in `warden serve`.
    #[arg(
        long = "chat-secret",
        env = "WARDEN_CHAT_HS256_SECRET",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub secrets: Vec<String>,
    /// Accepted token audience (`aud`); repeatable.
    #[arg(
        long = "chat-audience",
        env = "WARDEN_CHAT_AUDIENCE",
        value_delimiter = ','
    )]
    pub audiences: Vec<String>,
    /// Accepted token issuer (`iss`); repeatable.
    #[arg(
        long = "chat-issuer",
        env = "WARDEN_CHAT_ISSUER",
        value_delimiter = ','
    )]
    pub issuers: Vec<String>,
    /// Clock skew tolerated on `exp`, seconds.
    #[arg(long = "chat-leeway", default_value_t = 0)]
    pub leeway_secs: u64,
    /// Lowest `levelOnEntity` that may create rooms.
    #[arg(long = "chat-create-level", default_value_t = 100)]
    pub create_level: i64,
    /// Largest message text, bytes.
    #[arg(long = "chat-max-message-bytes", default_value_t = 4096)]
    pub max_message_bytes: usize,
    /// Frames a connection may send per second on average.
    #[arg(long = "chat-rate", default_value_t = 20)]
    pub rate_per_second: u32,
    /// Frames a connection may send in a burst.
    #[arg(long = "chat-burst", default_value_t = 40)]
    pub burst: u32,
    /// Seconds between websocket pings; a client silent for two intervals is closed.
    #[arg(long = "chat-ping-secs", default_value_t = 20)]
    pub ping_secs: u64,
    /// Bad tokens allowed on a socket before `BADAUTH` and close.
    #[arg(long = "chat-token-attempts", default_value_t = 3)]
    pub token_attempts: u32,
    /// The NATS account of the gateways (`warden serve` creates it with a `gateway` user).
    #[arg(long = "chat-account", default_value = DEFAULT_ACCOUNT)]
    pub account: String,
}

impl ChatArgs {
    /// Whether the gateway is configured (a secret is set).
    pub fn enabled(&self) -> bool {
        self.secrets.iter().any(|s| !s.is_empty())
    }

    fn config(&self) -> Result<ChatConfig> {
        let secrets: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let validator =
            TokenValidator::new(&secrets, &self.audiences, &self.issuers, self.leeway_secs)
                .map_err(|e| crate::cli::UsageError(format!("{e} (see `warden chat --help`)")))?;
        if self.max_message_bytes == 0 || self.max_message_bytes > MAX_FRAME_BYTES / 2 {
            bail!(crate::cli::UsageError(format!(
                "--chat-max-message-bytes must be between 1 and {}",
                MAX_FRAME_BYTES / 2
            )));
        }
        Ok(ChatConfig {
            validator,
            create_level: self.create_level,
            max_message_bytes: self.max_message_bytes,
            rate_per_second: self.rate_per_second.max(1),
            burst: self.burst.max(1),
            ping_interval: Duration::from_secs(self.ping_secs.max(1)),
            token_attempts: self.token_attempts.max(1),
        })
    }
}

/// Largest websocket frame read (bigger ones close the socket with 1009 "too big").
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The gateway's settings, checked.
#[derive(Debug)]
pub struct ChatConfig {
    /// Token checks.
    pub validator: TokenValidator,
    /// Lowest level that may create rooms.
    pub create_level: i64,
    /// Largest message text.
    pub max_message_bytes: usize,
    /// Average frames per second per connection.
    pub rate_per_second: u32,
    /// Burst of frames per connection.
    pub burst: u32,
    /// Websocket ping interval.
    pub ping_interval: Duration,
    /// Bad tokens before `BADAUTH`.
    pub token_attempts: u32,
}

/// What the gateway's handlers share.
#[derive(Clone)]
pub struct ChatState {
    pub(crate) store: Store,
    pub(crate) cfg: Arc<ChatConfig>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) stop: watch::Receiver<bool>,
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

/// Connects to NATS with `creds` (retrying in the background until the account is known
/// to the server) and builds the gateway's state.
pub async fn start(
    store: Store,
    args: &ChatArgs,
    nats: &str,
    creds: &str,
    stop: watch::Receiver<bool>,
) -> Result<ChatState> {
    let cfg = args.config()?;
    let client = async_nats::ConnectOptions::with_credentials(creds)
        .context("chat gateway creds")?
        .name("warden-chat")
        .retry_on_initial_connect()
        .connect(nats)
        .await
        .with_context(|| format!("cannot connect to {nats}"))?;
    Ok(ChatState {
        store,
        cfg: Arc::new(cfg),
        hub: Arc::new(Hub::new(client, SUBJECT_PREFIX)),
        stop,
    })
}

/// In `warden serve`: the gateway's account and user exist (created on first start, and
/// pushed by the relay like any account), and their creds.
pub async fn gateway_creds(warden: &Warden, account: &str) -> Result<zeroize::Zeroizing<String>> {
    match warden.account(account).await {
        Ok(_) => {}
        Err(OpsError::NotFound(_)) => {
            warden
                .add_account(account, AccountSpec::default())
                .await
                .with_context(|| format!("creating the chat account {account}"))?;
        }
        Err(e) => return Err(e.into()),
    }
    match warden.user(account, GATEWAY_USER).await {
        Ok(_) => {}
        Err(OpsError::NotFound(_)) => {
            warden
                .add_user(account, GATEWAY_USER, UserSpec::default())
                .await
                .with_context(|| {
                    format!("creating the chat gateway user {account}/{GATEWAY_USER}")
                })?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(warden.creds(account, GATEWAY_USER).await?)
}

/// Flags of `warden chat`.
#[derive(Args, Debug, Clone)]
pub struct ChatCmdArgs {
    /// NATS server the gateways share.
    #[arg(long, env = "WARDEN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// HTTP listen address (port 0 picks a free one; the address is printed).
    #[arg(
        long,
        env = "WARDEN_CHAT_HTTP_LISTEN",
        default_value = "127.0.0.1:7481"
    )]
    pub http: String,
    /// Creds file of the gateway user (`warden creds CHAT gateway -o FILE`); by default
    /// they are read from the store.
    #[arg(long, value_name = "FILE")]
    pub creds: Option<std::path::PathBuf>,
    /// Gateway settings.
    #[command(flatten)]
    pub chat: ChatArgs,
}

/// `warden chat`: the gateway alone (same store, same NATS as the others) until SIGTERM or
/// Ctrl-C.
pub async fn run_standalone(warden: Warden, args: ChatCmdArgs) -> Result<()> {
    if !args.chat.enabled() {
        bail!(crate::cli::UsageError(
            "no token secret: set --chat-secret or WARDEN_CHAT_HS256_SECRET".into()
        ));
    }
    let creds = match &args.creds {
        Some(path) => zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => warden
            .creds(&args.chat.account, GATEWAY_USER)
            .await
            .with_context(|| {
                format!(
                    "the chat gateway user {}/{GATEWAY_USER} (start `warden serve` with a chat secret once, or pass --creds)",
                    args.chat.account
                )
            })?,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = start(
        warden.store().clone(),
        &args.chat,
        &args.nats,
        &creds,
        stop_rx.clone(),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(&args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let addr = listener.local_addr()?;
    println!("warden chat: http://{addr} (nats {})", args.nats);
    let app = router(state).fallback(|| async { rest::ChatError::NoRoute.into_response_json() });
    let mut stopped = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    server.await.context("http task")??;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
