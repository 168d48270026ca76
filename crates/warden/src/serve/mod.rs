//! `warden serve`: one long-running process with the HTTP API, the outbox relay
//! and the NATS request/reply service. SIGTERM or Ctrl-C stops it gracefully:
//! new work stops, in-flight requests and the current relay batch finish.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tokio::sync::watch;

use warden_ops::Warden;
use warden_ops::relay::{self, RelayConfig};

/// Flags of `warden serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// NATS server to keep in step (and to serve the NATS API on).
    #[arg(long, env = "WARDEN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// HTTP API listen address (port 0 picks a free one; the address is printed).
    #[arg(long, env = "WARDEN_HTTP_LISTEN", default_value = "127.0.0.1:7480")]
    pub http: String,
    /// Longest wait between retries of a failed delivery (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = secs)]
    pub max_backoff: Duration,
    /// Outbox rows relayed per batch.
    #[arg(long, default_value_t = 2_000, hide = true)]
    pub batch: i64,
    /// Do not serve the NATS request/reply API.
    #[arg(long)]
    pub no_service: bool,
    /// The rooms gateway (`/rooms`, `/chat`): on when a chat secret is set.
    #[command(flatten)]
    pub chat: crate::chat::ChatArgs,
    /// How often expired governance grants are removed (and affected NATS users re-issued).
    #[arg(long, default_value = "30s", value_parser = secs)]
    pub dir_expire_every: Duration,
}

fn secs(s: &str) -> Result<Duration, String> {
    warden_core::parse::parse_duration_ns(s)
        .map(|ns| Duration::from_nanos(ns.max(0) as u64))
        .map_err(|e| e.to_string())
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(warden: Warden, args: ServeArgs) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));

    // The rooms gateway, when configured: its account and user exist before the address
    // is printed (the relay pushes them like any account).
    let chat_router = if args.chat.enabled() {
        let creds = crate::chat::gateway_creds(&warden, &args.chat.account).await?;
        let state = crate::chat::start(
            warden.store().clone(),
            &args.chat,
            &args.nats,
            &creds,
            stop_rx.clone(),
        )
        .await?;
        Some(crate::chat::router(state))
    } else {
        None
    };

    let listener = tokio::net::TcpListener::bind(&args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let addr = listener.local_addr()?;
    println!("warden serve: http://{addr} (nats {})", args.nats);

    let mut cfg = RelayConfig::new(args.nats.clone());
    cfg.max_backoff = args.max_backoff;
    cfg.batch = args.batch.max(1);
    let relay_task = tokio::spawn(relay::run(
        warden.clone(),
        cfg,
        stop_rx.clone(),
        ready.clone(),
    ));

    let observe_task = tokio::spawn(warden_ops::observe::run(
        warden.clone(),
        args.nats.clone(),
        stop_rx.clone(),
    ));

    let expiry_task = tokio::spawn(warden_ops::governance::run_expiry(
        warden.clone(),
        args.dir_expire_every,
        stop_rx.clone(),
    ));

    let http_state = crate::http::HttpState {
        warden: warden.clone(),
        ready: ready.clone(),
    };
    let http_task = tokio::spawn(crate::http::serve_with_nats(
        listener,
        http_state,
        Some(args.nats.clone()),
        chat_router,
        stopped(stop_rx.clone()),
    ));

    let service_task = if args.no_service {
        None
    } else {
        let creds = warden.service_user_creds().await?;
        let client = async_nats::ConnectOptions::with_credentials(&creds)?
            .name("warden-service")
            .retry_on_initial_connect()
            .connect(&args.nats)
            .await
            .with_context(|| format!("cannot connect to {}", args.nats))?;
        let prefix = warden.settings().service_prefix.clone();
        let w = warden.clone();
        let stop = stopped(stop_rx.clone());
        Some(tokio::spawn(async move {
            crate::nats_api::run(client, w, &prefix, stop).await
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
