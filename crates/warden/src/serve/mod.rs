//! `warden serve` composed: one long-running process with the HTTP API, the outbox
//! relay, the device observer, the expiry of governance grants, the NATS
//! request/reply service and (when configured) the rooms gateway. It takes a plain
//! [`ServeConfig`] (the command line builds it from its flags) and reports the
//! address it listens on through a callback; it neither parses flags nor prints.
//!
//! SIGTERM or Ctrl-C ([`shutdown_signal`]) stops it gracefully: new work stops,
//! in-flight requests and the current relay batch finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;

use warden_ops::relay::{self, RelayConfig};
use warden_ops::{Scope, Warden};

/// What `warden serve` runs, and where.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// NATS server to keep in step (and to serve the NATS API on).
    pub nats: String,
    /// HTTP listen address (port 0 picks a free one; see [`run`]'s `on_listening`).
    pub http: String,
    /// Longest wait between retries of a failed delivery.
    pub max_backoff: Duration,
    /// Outbox rows relayed per batch (at least 1).
    pub batch: i64,
    /// Whether the NATS request/reply service stays off.
    pub no_service: bool,
    /// The scopes the NATS request/reply service acts with (its callers are trusted
    /// backends; these bound what they may ask).
    pub service_scopes: Vec<Scope>,
    /// The rooms gateway (`/rooms`, `/chat`): on when a chat secret is set.
    pub chat: crate::chat::ChatSettings,
    /// How often expired governance grants are removed (and affected NATS users re-issued).
    pub dir_expire_every: Duration,
}

/// Runs until [`shutdown_signal`]. `on_listening` is called once with the bound HTTP
/// address, after everything that must exist before clients arrive (the rooms
/// gateway's account and user) exists.
pub async fn run(
    warden: Warden,
    config: ServeConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));

    // The rooms gateway, when configured: its account and user exist before the address
    // is reported (the relay pushes them like any account).
    let chat_router = if config.chat.enabled() {
        let creds = crate::chat::gateway_creds(&warden, &config.chat.account).await?;
        let state =
            crate::chat::start(&warden, &config.chat, &config.nats, &creds, stop_rx.clone())
                .await?;
        Some(crate::chat::router(state))
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(&config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    on_listening(listener.local_addr()?);

    let mut cfg = RelayConfig::new(config.nats.clone());
    cfg.max_backoff = config.max_backoff;
    cfg.batch = config.batch.max(1);
    let relay_task = tokio::spawn(relay::run(
        warden.clone(),
        cfg,
        stop_rx.clone(),
        ready.clone(),
    ));

    let observe_task = tokio::spawn(warden_ops::observe::run(
        warden.clone(),
        config.nats.clone(),
        stop_rx.clone(),
    ));

    let expiry_task = tokio::spawn(warden_ops::governance::run_expiry(
        warden.clone(),
        config.dir_expire_every,
        stop_rx.clone(),
    ));

    let http_state = crate::http::HttpState {
        warden: warden.clone(),
        ready: ready.clone(),
    };
    let http_task = tokio::spawn(crate::http::serve_with_nats(
        listener,
        http_state,
        Some(config.nats.clone()),
        chat_router,
        stopped(stop_rx.clone()),
    ));

    let service_task = if config.no_service {
        None
    } else {
        let creds = warden.service_user_creds().await?;
        let client = async_nats::ConnectOptions::with_credentials(&creds)?
            .name("warden-service")
            .retry_on_initial_connect()
            .connect(&config.nats)
            .await
            .with_context(|| format!("cannot connect to {}", config.nats))?;
        let prefix = warden.settings().service_prefix.clone();
        let w = warden.clone();
        let stop = stopped(stop_rx.clone());
        // The service's callers act as `Actor::nats_service(&scopes)`.
        let scopes = config.service_scopes.clone();
        Some(tokio::spawn(async move {
            crate::nats_api::run(client, w, &prefix, &scopes, stop).await
        }))
    };

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    relay_task.await.context("relay task")??;
    observe_task.await.context("device observer task")??;
    expiry_task.await.context("governance expiry task")?;
    http_task.await.context("http task")??;
    if let Some(t) = service_task {
        t.await.context("service task")??;
    }
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Resolves at the first SIGTERM or Ctrl-C: the one stop signal of the long-running
/// commands (`warden serve`, `warden chat`).
pub async fn shutdown_signal() {
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
