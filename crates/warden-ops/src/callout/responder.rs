//! The auth callout responder: connects as the callout account's responder user (an
//! auth user, so it bypasses the callout itself), joins the queue group on
//! `$SYS.REQ.USER.AUTH` so that any one of several responders answers each request,
//! and answers with [`Warden::callout_authorize`]. It reloads the configuration
//! periodically (authenticators added or removed apply without a restart), counts
//! every decision ([`CalloutStats`]) and summarises them in the ledger per window
//! ([`super::DecisionLog`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_jwt::{AUTH_CALLOUT_SUBJECT, AUTH_REQUEST_XKEY_HEADER};
use serde::Serialize;
use tokio::sync::{RwLock, Semaphore, watch};

use super::{CalloutContext, DecisionLog, QUEUE_GROUP, no_callout_error, server_has_callout};
use crate::{OpsError, Result, Warden};

/// How the responder runs.
#[derive(Clone, Debug)]
pub struct ResponderConfig {
    /// The nats-server to answer on.
    pub nats: String,
    /// The connection name it shows on the server.
    pub name: String,
    /// How often the configuration is reloaded.
    pub reload_every: Duration,
    /// How often decisions are summarised in the ledger.
    pub summary_every: Duration,
    /// Requests answered at once.
    pub concurrency: usize,
    /// Config mode: the server has no operator; the responder logs in with the user and
    /// password of `warden nats-config --auth-callout`, and the config-mode issuer signs.
    pub config_mode: bool,
    /// CA (PEM file) to trust for a `tls://` server with a private CA.
    pub tls_ca: Option<std::path::PathBuf>,
    /// Client certificate and key (PEM files), for a server that verifies clients'.
    pub tls_client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl ResponderConfig {
    /// Defaults for `nats`: reload every 5 s, a ledger summary a minute, 64 at once.
    pub fn new(nats: impl Into<String>) -> ResponderConfig {
        ResponderConfig {
            nats: nats.into(),
            name: "warden-callout".into(),
            reload_every: Duration::from_secs(5),
            summary_every: Duration::from_secs(60),
            concurrency: 64,
            config_mode: false,
            tls_ca: None,
            tls_client: None,
        }
    }
}

/// Upper bounds (seconds) of the decision latency histogram.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Decisions counted since the responder started (for metrics).
#[derive(Debug, Default)]
pub struct CalloutStats {
    allowed: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// A copy of [`CalloutStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// Clients let in.
    pub allowed: u64,
    /// Clients refused (an error response was sent).
    pub refused: u64,
    /// Requests that could not be answered at all.
    pub failed: u64,
    /// Cumulative latency histogram: `(upper bound in seconds, count)`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the latencies, seconds.
    pub sum_secs: f64,
    /// Number of latencies observed.
    pub count: u64,
}

impl CalloutStats {
    /// Counts one request: `Some(allowed)` when answered, `None` when it failed.
    pub fn observe(&self, allowed: Option<bool>, elapsed: Duration) {
        match allowed {
            Some(true) => &self.allowed,
            Some(false) => &self.refused,
            None => &self.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        crate::metrics::observe_histogram(
            &LATENCY_BUCKETS,
            &self.buckets,
            &self.sum_micros,
            &self.count,
            elapsed,
        );
    }

    /// The counts now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            allowed: self.allowed.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            buckets: LATENCY_BUCKETS
                .iter()
                .zip(&self.buckets)
                .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
                .collect(),
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// Connects, waiting (bounded by `shutdown`) for the server to come up; `None` once
/// stopped. A server without auth callout is an error at once.
/// How the responder logs in: creds of its user (operator mode), or the config-mode
/// user and password.
enum Login {
    Creds(zeroize::Zeroizing<String>),
    Password(String, zeroize::Zeroizing<String>),
}

async fn connect(
    login: &Login,
    cfg: &ResponderConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<async_nats::Client>> {
    let mut wait = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        let opts = match login {
            Login::Creds(creds) => async_nats::ConnectOptions::with_credentials(creds)
                .map_err(|e| OpsError::Invalid(format!("responder creds: {e}")))?,
            Login::Password(user, password) => async_nats::ConnectOptions::with_user_and_password(
                user.clone(),
                password.to_string(),
            ),
        }
        .name(&cfg.name);
        let opts = match &cfg.tls_ca {
            Some(ca) => opts.add_root_certificates(ca.clone()).require_tls(true),
            None => opts,
        };
        let opts = match &cfg.tls_client {
            Some((cert, key)) => opts.add_client_certificate(cert.clone(), key.clone()),
            None => opts,
        };
        match opts
            .retain_servers_order()
            .connect(warden_nats::servers(&cfg.nats))
            .await
        {
            Ok(client) => {
                let version = client.server_info().version;
                if !server_has_callout(&version)? {
                    return Err(no_callout_error(&version));
                }
                return Ok(Some(client));
            }
            Err(e) => {
                tracing::warn!(
                    "auth callout: cannot connect to {}: {e}; retrying",
                    cfg.nats
                );
                let _ = tokio::time::timeout(wait, shutdown.changed()).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Answers authorization requests until `shutdown` turns true; `on_ready` is called
/// once the subscription is sent to the server. A server older than 2.10 is refused
/// with a clear error; a server that goes away is reconnected to.
pub async fn run(
    warden: Warden,
    cfg: ResponderConfig,
    stats: Arc<CalloutStats>,
    mut shutdown: watch::Receiver<bool>,
    on_ready: impl FnOnce(),
) -> Result<()> {
    let login = if cfg.config_mode {
        let setup = warden.callout_config_mode().await?;
        Login::Password(setup.responder_user, setup.responder_password)
    } else {
        Login::Creds(warden.callout_responder_creds().await?)
    };
    let ctx = Arc::new(RwLock::new(Arc::new(
        warden.callout_context_for(cfg.config_mode).await?,
    )));
    let Some(client) = connect(&login, &cfg, &mut shutdown).await? else {
        return Ok(());
    };
    drop(login);
    let mut sub = client
        .queue_subscribe(AUTH_CALLOUT_SUBJECT, QUEUE_GROUP.to_string())
        .await
        .map_err(|e| OpsError::unavailable(format!("subscribing on {}: {e}", cfg.nats)))?;
    client
        .flush()
        .await
        .map_err(|e| OpsError::unavailable(format!("subscribing on {}: {e}", cfg.nats)))?;
    tracing::info!("auth callout responder answering on {}", cfg.nats);
    on_ready();

    let log = Arc::new(DecisionLog::default());
    let limit = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let mut reload = tokio::time::interval(cfg.reload_every);
    reload.tick().await;
    let mut summary = tokio::time::interval(cfg.summary_every);
    summary.tick().await;
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            _ = reload.tick() => {
                match warden.callout_context_for(cfg.config_mode).await {
                    Ok(fresh) => *ctx.write().await = Arc::new(fresh),
                    Err(e) => tracing::warn!("auth callout: configuration not reloaded: {e}"),
                }
            }
            _ = summary.tick() => {
                if let Err(e) = log.flush(&warden).await {
                    tracing::warn!("auth callout: decisions not summarised: {e}");
                }
            }
            msg = sub.next() => {
                let Some(msg) = msg else { break };
                let Ok(permit) = limit.clone().acquire_owned().await else { break };
                let (warden, client, ctx, stats, log) =
                    (warden.clone(), client.clone(), ctx.read().await.clone(), stats.clone(), log.clone());
                tokio::spawn(async move {
                    answer(&warden, &client, &ctx, &stats, &log, msg).await;
                    drop(permit);
                });
            }
        }
    }
    let _ = sub.unsubscribe().await;
    let _ = client.flush().await;
    if let Err(e) = log.flush(&warden).await {
        tracing::warn!("auth callout: decisions not summarised: {e}");
    }
    Ok(())
}

async fn answer(
    warden: &Warden,
    client: &async_nats::Client,
    ctx: &CalloutContext,
    stats: &CalloutStats,
    log: &DecisionLog,
    msg: async_nats::Message,
) {
    let started = Instant::now();
    let Some(reply) = msg.reply.clone() else {
        stats.observe(None, started.elapsed());
        return;
    };
    let xkey = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(AUTH_REQUEST_XKEY_HEADER))
        .map(|v| v.as_str().to_string());
    match warden
        .callout_authorize(ctx, &msg.payload, xkey.as_deref())
        .await
    {
        Ok(decision) => {
            if let Err(e) = client.publish(reply, decision.reply.clone().into()).await {
                tracing::warn!("auth callout: reply not sent: {e}");
                stats.observe(None, started.elapsed());
                return;
            }
            if !decision.allowed {
                tracing::info!(
                    code = decision.code,
                    user = decision.user.as_deref().unwrap_or(""),
                    "auth callout refused a client: {}",
                    decision.reason.as_deref().unwrap_or("")
                );
            }
            stats.observe(Some(decision.allowed), started.elapsed());
            log.count(&decision);
        }
        Err(e) => {
            tracing::warn!("auth callout: request not answered: {e}");
            stats.observe(None, started.elapsed());
        }
    }
}
