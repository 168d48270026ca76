//! `warden serve` composed: one long-running process with the HTTP API, the outbox
//! relay, the device observer, the expiry of governance grants, the NATS
//! request/reply service and (when configured) the rooms gateway. It takes a plain
//! [`ServeConfig`] (the command line builds it from its flags) and reports the
//! address it listens on through a callback; it neither parses flags nor prints.
//!
//! SIGTERM or SIGINT stops it ([`shutdown`]): new work stops, in-flight requests, the
//! current relay batch and the rooms sockets' goodbyes get until [`GRACE`] after the
//! signal, and the process exits then whatever is still running (logged by name), with
//! success: NATS, the database or a client in any state cannot hold it up.

pub mod shutdown;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};

use warden_ops::relay::{self, RelayConfig};
use warden_ops::{Scope, Warden};

pub use shutdown::{GRACE, Shutdown, Tasks};

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
    /// Whether the auth callout responder runs here.
    pub callout: bool,
    /// HTTPS instead of HTTP: certificate, key and an optional client CA.
    pub tls: Option<crate::http::tls::TlsFiles>,
}

/// The name of `serve`'s auth callout task.
const CALLOUT_TASK: &str = "auth callout responder";

/// Set when the auth callout responder could not run: `serve` then exits with an error.
static CALLOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// The auth callout responder's counters in this process (served as metrics).
pub fn callout_stats() -> Arc<warden_ops::callout::responder::CalloutStats> {
    static STATS: std::sync::OnceLock<Arc<warden_ops::callout::responder::CalloutStats>> =
        std::sync::OnceLock::new();
    STATS.get_or_init(Default::default).clone()
}

/// How long the last summary of refused onboarding downloads may take at a stop.
const SUMMARY_GRACE: Duration = Duration::from_millis(250);

/// Runs until the first SIGTERM or SIGINT ([`Shutdown::on_signals`], listened to from
/// the start), then stops within [`GRACE`]: `Ok` once stopped, even when a task failed
/// or had to be abandoned (the log names it), since the stop was asked for.
/// `on_listening` is called once with the bound HTTP address, after everything that must
/// exist before clients arrive (the rooms gateway's account and user) exists.
pub async fn run(
    warden: Warden,
    config: ServeConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let shutdown = Shutdown::on_signals().context("cannot listen for SIGTERM and SIGINT")?;
    let mut tasks = Tasks::default();
    let started = tokio::select! {
        started = start(&warden, &config, on_listening, &shutdown, &mut tasks) => Some(started),
        () = shutdown.triggered() => None,
    };
    match started {
        Some(Ok(())) => shutdown.triggered().await,
        Some(Err(e)) => {
            // What did start stops with it.
            shutdown.trigger();
            tasks.finish_by(tokio::time::Instant::now() + GRACE).await;
            return Err(e);
        }
        None => tracing::info!("stopped while starting"),
    }
    tasks.finish_by(tokio::time::Instant::now() + GRACE).await;
    // Refused onboarding downloads of a window still open are summarised in the ledger
    // (their counters are exact already); bounded, so a database that is gone cannot
    // hold the stop.
    match tokio::time::timeout(SUMMARY_GRACE, warden.flush_download_refusals()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("refused downloads not summarised: {e}"),
        Err(_) => tracing::warn!("refused downloads not summarised within {SUMMARY_GRACE:?}"),
    }
    if CALLOUT_FAILED.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!("the auth callout responder failed (the log says why); warden serve stopped");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts every part of `warden serve` as a task of `tasks`, each ending on `shutdown`.
async fn start(
    warden: &Warden,
    config: &ServeConfig,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: &Shutdown,
    tasks: &mut Tasks,
) -> Result<()> {
    let ready = Arc::new(AtomicBool::new(false));

    // The rooms gateway, when configured: its account and user exist before the address
    // is reported (the relay pushes them like any account).
    let chat_router = if config.chat.enabled() {
        let creds = crate::chat::gateway_creds(warden, &config.chat.account).await?;
        let state = crate::chat::start(
            warden,
            &config.chat,
            &config.nats,
            &creds,
            shutdown.receiver(),
        )
        .await?;
        // The sockets are not the HTTP server's to wait for: they say goodbye on
        // their own once the stop is signalled, and this waits for that.
        let sockets = state.sessions();
        let stop = shutdown.triggered();
        tasks.spawn("rooms websockets", async move {
            stop.await;
            sockets.closed().await;
            Ok(())
        });
        Some(crate::chat::router(state))
    } else {
        None
    };

    // The TLS files are read before anything listens: unusable ones stop serve here.
    let tls = match &config.tls {
        Some(files) => Some(crate::http::tls::Reloadable::new(files.clone())?),
        None => None,
    };
    let tcp = tokio::net::TcpListener::bind(&config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let listener = match tls {
        Some(tls) => {
            tls.reload_on_sighup()
                .context("cannot listen for SIGHUP (TLS certificate reloads)")?;
            crate::http::Listening::Tls(crate::http::tls::TlsListener::new(tcp, tls)?)
        }
        None => crate::http::Listening::Plain(tcp),
    };
    on_listening(listener.local_addr()?);

    let mut cfg = RelayConfig::new(config.nats.clone());
    cfg.max_backoff = config.max_backoff;
    cfg.batch = config.batch.max(1);
    let relay = relay::run(
        warden.clone(),
        cfg,
        shutdown.receiver(),
        crate::http::metrics::observed().relay.clone(),
    );
    tasks.spawn("outbox relay", async move { Ok(relay.await?) });

    let observe =
        warden_ops::observe::run(warden.clone(), config.nats.clone(), shutdown.receiver());
    tasks.spawn("device observer", async move { Ok(observe.await?) });

    let expiry = warden_ops::governance::run_expiry(
        warden.clone(),
        config.dir_expire_every,
        shutdown.receiver(),
    );
    tasks.spawn("governance expiry", async move {
        expiry.await;
        Ok(())
    });

    // `warden sync`, `push` and `user revoke` read this to know serve runs and where.
    let presence = warden_ops::presence::run_presence(
        warden.clone(),
        config.nats.clone(),
        shutdown.receiver(),
    );
    tasks.spawn("presence note", async move {
        presence.await;
        Ok(())
    });

    let http_state = crate::http::HttpState {
        warden: warden.clone(),
        ready: ready.clone(),
    };
    let http = crate::http::serve_on(
        listener,
        http_state,
        Some(config.nats.clone()),
        chat_router,
        shutdown.triggered(),
    );
    tasks.spawn("HTTP server", async move { Ok(http.await?) });

    if config.callout {
        // A callout that is not set up is a configuration error, not something to retry.
        warden.callout_status().await?;
        let responder = warden_ops::callout::responder::run(
            warden.clone(),
            warden_ops::callout::responder::ResponderConfig::new(config.nats.clone()),
            callout_stats(),
            shutdown.receiver(),
            || {},
        );
        // A responder that cannot run (a server without auth callout) stops `serve`:
        // clients would be refused while it looked healthy.
        let stop = shutdown.clone();
        tasks.spawn(CALLOUT_TASK, async move {
            let answered = responder.await;
            if let Err(e) = &answered {
                tracing::error!("auth callout responder: {e}; warden serve stops");
                CALLOUT_FAILED.store(true, std::sync::atomic::Ordering::SeqCst);
                stop.trigger();
            }
            Ok(answered?)
        });
    }

    if !config.no_service {
        let creds = warden.service_user_creds().await?;
        // Connects in the background: NATS may be down now and come up later.
        let client = async_nats::ConnectOptions::with_credentials(&creds)?
            .name("warden-service")
            .retry_on_initial_connect()
            .retain_servers_order()
            .connect(warden_nats::servers(&config.nats))
            .await
            .with_context(|| format!("cannot connect to {}", config.nats))?;
        // Its connection state tells /readyz whether NATS is there when the relay of
        // another process holds the lock.
        crate::http::metrics::observed().watch_nats(&config.nats, Some(client.clone()));
        let prefix = warden.settings().service_prefix.clone();
        let w = warden.clone();
        let stop = shutdown.triggered();
        // The service's callers act as `Actor::nats_service(&scopes)`.
        let scopes = config.service_scopes.clone();
        tasks.spawn("NATS service", async move {
            crate::nats_api::run(client, w, &prefix, &scopes, stop).await
        });
    } else {
        crate::http::metrics::observed().watch_nats(&config.nats, None);
    }
    // Ready from now until the stop begins (whether NATS is there is /readyz's
    // "degraded", not a reason to take this process out of a load balancer).
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let stop = shutdown.triggered();
    tasks.spawn("readiness", async move {
        stop.await;
        ready.store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    });
    Ok(())
}
