//! `warden bench callout`: clients connecting through a real nats-server (≥ 2.10) whose
//! connections Warden's auth callout responder authorizes, measured from outside.
//!
//! The bench sets Warden up in a temporary directory the way an operator would: an
//! account `APP`, a directory user holding a task (publish and subscribe `bench.>` in
//! `APP`) through a role, the callout account (`warden callout setup`, sealed with a
//! curve key when `--xkey`) and an OIDC authenticator trusting a key it made. It starts
//! nats-server with Warden's config and the responder in this process, then N clients
//! each connect M times in a row with the sentinel creds plus one ID token for the
//! directory user, timing each connect until the server has let the client in and one
//! flush has come back.
//!
//! Beside it, the same clients connect as often with creds issued in advance (a user of
//! the same account, no callout) on the same server: the cost of the callout is the
//! ratio of the two.
//!
//! The ceiling beside it is the raw Ed25519 signing rate of this machine measured in the
//! same run: each authorization signs two JWTs (the user JWT and the response) and
//! verifies one signature (the request), so at most about a third of the signing rate of
//! authorizations can be answered per second, whatever the rest costs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use data_encoding::BASE64URL_NOPAD;
use ed25519_dalek::Signer;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use warden_core::AccountSpec;
use warden_core::directory::NextUser;
use warden_core::governance::{Change, ProposalKind, TaskGrants};
use warden_ops::callout::CalloutSetup;
use warden_ops::callout::authenticators::{AuthenticatorSpec, OidcAuth};
use warden_ops::callout::responder::{self, CalloutStats, ResponderConfig};
use warden_ops::governance::ProposalInput;
use zeroize::Zeroizing;

use crate::bench::server::BenchServer;
use crate::cli::print_json;

/// The account clients are placed in.
const ACCOUNT: &str = "APP";
/// The directory user every client connects as.
const USER: &str = "bench_user";
/// The directory user who owns the task and the role (and confirms).
const ADMIN: &str = "bench_admin";
/// The ID token's issuer and audience (checked by the authenticator).
const ISSUER: &str = "https://idp.bench.invalid";
const AUDIENCE: &str = "nats-bench";
/// The user with creds issued in advance that the baseline connects as.
const BASELINE_USER: &str = "bench_plain";
/// Bound on one connect (the server's own callout timeout is 2 s by default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on every other wait of the bench.
const WAIT: Duration = Duration::from_secs(20);
/// Time spent measuring raw signatures and verifications (each).
const RAW_BUDGET: Duration = Duration::from_millis(500);

/// Flags of `warden bench callout`.
#[derive(Debug, Clone)]
pub struct CalloutBenchOptions {
    /// Concurrent clients.
    pub clients: u32,
    /// Connects each client makes, one after the other.
    pub connects: u32,
    /// Seal requests and responses with a curve key.
    pub xkey: bool,
    /// nats-server binary the bench starts (≥ 2.10).
    pub nats_server: PathBuf,
}

/// Result of `warden bench callout`.
#[derive(Debug, Serialize)]
pub struct BenchCalloutReport {
    /// `nats-server --version`.
    pub nats_server: String,
    /// Whether this executable is an optimised build.
    pub release_build: bool,
    /// CPUs available.
    pub cpus: usize,
    /// `/proc/loadavg` when the bench started.
    pub load_at_start: String,
    /// `/proc/loadavg` when the connects were done.
    pub load_at_end: String,
    /// Whether requests and responses were sealed (`--xkey`).
    pub xkey: bool,
    /// Concurrent clients.
    pub clients: u32,
    /// Connects per client.
    pub connects_per_client: u32,
    /// Connects in all.
    pub connects: u64,
    /// Connects that failed (refused or timed out).
    pub failed_connects: u64,
    /// Wall time of all connects, seconds.
    pub seconds: f64,
    /// Successful connects per second over the wall time.
    pub connects_per_s: f64,
    /// One connect (TCP, CONNECT, callout round trip, PONG, one flush): median, ms.
    pub connect_ms_p50: f64,
    /// 99th percentile, ms.
    pub connect_ms_p99: f64,
    /// Slowest, ms.
    pub connect_ms_max: f64,
    /// Raw Ed25519 signatures per second over a user-JWT-sized message.
    pub raw_sign_per_s: f64,
    /// Raw Ed25519 verifications per second over the same message.
    pub raw_verify_per_s: f64,
    /// Authorizations per second the signatures alone allow: raw_sign_per_s / 3 (two
    /// JWTs signed and one verified per authorization, verification counted as one
    /// signature).
    pub ceiling_per_s: f64,
    /// connects_per_s / ceiling_per_s.
    pub ratio: f64,
    /// The responder's decisions during the connects: clients let in.
    pub responder_allowed: u64,
    /// Clients refused.
    pub responder_refused: u64,
    /// Requests not answered at all.
    pub responder_failed: u64,
    /// Mean time the responder took for one decision, ms.
    pub responder_mean_ms: f64,
    /// A client publishing on `bench.x` reached a subscriber on `bench.>`, and its
    /// publish on `other.x` was refused by the server.
    pub permissions_checked: bool,
    /// The first connect error, when any failed.
    pub first_error: Option<String>,
    /// Connects per second of the same clients with creds issued in advance (no callout).
    pub baseline_connects_per_s: f64,
    /// p50 of one such connect, ms.
    pub baseline_ms_p50: f64,
    /// p99 of one such connect, ms.
    pub baseline_ms_p99: f64,
    /// Callout connects/s ÷ baseline connects/s.
    pub vs_baseline: f64,
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `nats-server: v2.15.1` → `2.15.1`.
fn version_number(line: &str) -> &str {
    line.split_whitespace()
        .last()
        .unwrap_or(line)
        .trim_start_matches('v')
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Raw Ed25519 signatures and verifications per second over a message the size of a
/// user JWT's signed part, each run for [`RAW_BUDGET`].
fn raw_rates() -> Result<(f64, f64)> {
    let key = nats_jwt::KeyPair::generate(nats_jwt::KeyKind::Account);
    let message = vec![b'x'; 600];
    let signature = key.sign(&message);
    let public = key.public_key();
    let batch = 200u32;

    let mut signed = 0u32;
    let mut sink = 0usize;
    let t = Instant::now();
    while t.elapsed() < RAW_BUDGET {
        for _ in 0..batch {
            sink = sink.wrapping_add(key.sign(&message).len());
        }
        signed += batch;
    }
    let sign_per_s = f64::from(signed) / t.elapsed().as_secs_f64();

    let mut verified = 0u32;
    let t = Instant::now();
    while t.elapsed() < RAW_BUDGET {
        for _ in 0..batch {
            nats_jwt::verify_signature(&public, &message, &signature)?;
        }
        verified += batch;
    }
    let verify_per_s = f64::from(verified) / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    Ok((sign_per_s, verify_per_s))
}

/// The OIDC provider of the bench: an Ed25519 key, its JWKS, and ID tokens it signs.
struct Idp {
    key: ed25519_dalek::SigningKey,
}

impl Idp {
    fn new() -> Idp {
        Idp {
            key: ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        }
    }

    fn jwks(&self) -> String {
        serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": BASE64URL_NOPAD.encode(self.key.verifying_key().as_bytes()),
            "kid": "bench",
            "alg": "EdDSA",
            "use": "sig",
        }]})
        .to_string()
    }

    /// An EdDSA ID token for `sub`, valid for an hour.
    fn id_token(&self, sub: &str) -> Zeroizing<String> {
        let now = warden_ops::now();
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "bench"});
        let claims = serde_json::json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
            BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(signing_input.as_bytes()).to_bytes();
        Zeroizing::new(format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&sig)))
    }
}

/// The directory user [`USER`] holding a task `bench.>` (pub and sub) in [`ACCOUNT`]
/// through a role, made with the governance operations as an operator would.
async fn grant_user(w: &warden_ops::Warden) -> Result<()> {
    let admin = NextUser {
        id: ADMIN.into(),
        name: Some("Bench Admin".into()),
        ..Default::default()
    };
    w.dir_user_add(None, admin, true).await?;
    let user = NextUser {
        id: USER.into(),
        name: Some("Bench User".into()),
        ..Default::default()
    };
    w.dir_user_add(None, user, false).await?;
    let bench = nats_jwt::Subject::new("bench.>")?;
    w.task_create(
        None,
        "bench-callout",
        ACCOUNT,
        TaskGrants {
            allow_pub: vec![bench.clone()],
            allow_sub: vec![bench],
            ..Default::default()
        },
        &[ADMIN.to_string()],
        None,
    )
    .await?;
    w.role_create(None, "bench-clients", &[ADMIN.to_string()], None)
        .await?;
    let proposals = [
        (ProposalKind::RoleTask, ADMIN, "bench-callout"),
        (ProposalKind::RoleMember, USER, USER),
    ];
    for (kind, actor, related) in proposals {
        let p = w
            .propose(
                actor,
                ProposalInput {
                    kind,
                    change: Change::Add,
                    object: "bench-clients".into(),
                    related: related.into(),
                    reason: None,
                    grant_expires_at: None,
                    expires_at: None,
                },
            )
            .await?;
        w.confirm(ADMIN, &p.id, None).await?;
    }
    let held = w.held_tasks(USER).await?;
    if !held.iter().any(|h| h.account == ACCOUNT) {
        return Err(anyhow!(
            "{USER} holds no task in {ACCOUNT} after the set-up"
        ));
    }
    Ok(())
}

/// What every client presents: the sentinel's creds and the ID token.
#[derive(Clone)]
struct Credentials {
    creds: Arc<Zeroizing<String>>,
    /// The ID token; `None` for the baseline (a user with creds issued in advance).
    token: Option<Arc<Zeroizing<String>>>,
    url: Arc<str>,
}

impl Credentials {
    fn options(&self) -> Result<async_nats::ConnectOptions> {
        // The creds sign the nonce as the sentinel; the token travels as the CONNECT's
        // `auth_token`, which the server hands to the callout (connect_opts.auth_token).
        let opts = async_nats::ConnectOptions::with_credentials(self.creds.as_str())
            .context("creds")?
            .connection_timeout(CONNECT_TIMEOUT);
        Ok(match &self.token {
            Some(t) => opts.token(t.as_str().to_string()),
            None => opts,
        })
    }
}

/// One client's connects, one after the other: the latency of each that succeeded (ms),
/// the number that failed and the first error.
async fn client_loop(
    c: Credentials,
    connects: u32,
    bar: crate::cli::progress::Bar,
) -> (Vec<f64>, u64, Option<String>) {
    let mut latencies = Vec::with_capacity(connects as usize);
    let mut failed = 0;
    let mut first_error = None;
    for _ in 0..connects {
        let t = Instant::now();
        let result = async {
            let client = c.options()?.connect(c.url.as_ref()).await?;
            tokio::time::timeout(CONNECT_TIMEOUT, client.flush())
                .await
                .map_err(|_| anyhow!("flush timed out"))??;
            anyhow::Ok(client)
        }
        .await;
        match result {
            Ok(client) => {
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                drop(client);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
        bar.inc(1);
    }
    (latencies, failed, first_error)
}

/// A client let in by the callout may publish on `bench.x` (a subscriber on `bench.>`
/// gets it) and is refused `other.x` by the server.
async fn check_permissions(c: &Credentials) -> Result<()> {
    let subscriber = c
        .options()?
        .connect(c.url.as_ref())
        .await
        .context("the callout did not let the first client in")?;
    let mut sub = subscriber.subscribe("bench.>").await?;
    subscriber.flush().await?;

    let (tx, mut errors) = mpsc::unbounded_channel();
    let publisher = c
        .options()?
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(c.url.as_ref())
        .await
        .context("the callout did not let the second client in")?;
    publisher.publish("bench.x", "allowed".into()).await?;
    publisher.flush().await?;
    let got = tokio::time::timeout(WAIT, sub.next())
        .await
        .map_err(|_| anyhow!("a publish on bench.x was not delivered to bench.>"))?
        .ok_or_else(|| anyhow!("the subscription on bench.> closed"))?;
    if got.subject.as_str() != "bench.x" {
        return Err(anyhow!("expected bench.x, got {}", got.subject));
    }

    publisher.publish("other.x", "refused".into()).await?;
    publisher.flush().await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = tokio::time::timeout_at(deadline, errors.recv())
            .await
            .map_err(|_| anyhow!("a publish on other.x was not refused"))?
            .ok_or_else(|| anyhow!("the publisher's events ended"))?;
        if e.to_lowercase().contains("permissions violation") {
            break;
        }
    }
    drop(sub);
    drop(subscriber);
    drop(publisher);
    Ok(())
}

/// Runs `warden bench callout`.
pub async fn bench(json: bool, args: CalloutBenchOptions) -> Result<()> {
    if args.clients == 0 || args.connects == 0 {
        return Err(
            crate::cli::UsageError("--clients and --connects must be at least 1".into()).into(),
        );
    }
    let load_at_start = load_avg();
    let version = std::process::Command::new(&args.nats_server)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", args.nats_server.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    if !warden_ops::callout::server_has_callout(version_number(&version))? {
        return Err(warden_ops::callout::no_callout_error(version_number(&version)).into());
    }

    // Raw rates first, on a machine the bench does not load yet.
    let (raw_sign_per_s, raw_verify_per_s) = raw_rates()?;

    let dir = tempfile::Builder::new()
        .prefix("warden-bench-callout-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, true).await?;
    w.add_account(ACCOUNT, AccountSpec::default()).await?;
    grant_user(&w).await?;
    w.callout_setup(CalloutSetup {
        xkey: Some(args.xkey),
        server_version: Some(version_number(&version).to_string()),
        ..Default::default()
    })
    .await?;
    let idp = Idp::new();
    let oidc = OidcAuth::from_jwks_text("bench", &idp.jwks(), ISSUER, AUDIENCE, Some("sub"))?;
    w.callout_auth_add(AuthenticatorSpec::Oidc(oidc), None, None)
        .await?;
    // The baseline: a user of the same account with creds issued in advance, whose
    // connects never reach the callout.
    w.add_user(ACCOUNT, BASELINE_USER, warden_core::UserSpec::default())
        .await?;

    // The server preloads every account, the callout account's authorization included.
    let mut server = BenchServer::start(&w, &args.nats_server, dir.path()).await?;
    let creds = Credentials {
        creds: Arc::new(w.callout_sentinel_creds().await?),
        token: Some(Arc::new(idp.id_token(USER))),
        url: Arc::from(server.url.as_str()),
    };
    let stats = Arc::new(CalloutStats::default());
    let (stop, stopped) = watch::channel(false);
    let (ready_tx, ready_rx) = oneshot::channel();
    let mut responder = tokio::spawn(responder::run(
        w.clone(),
        ResponderConfig::new(server.url.clone()),
        stats.clone(),
        stopped,
        move || {
            let _ = ready_tx.send(());
        },
    ));

    let result = async {
        tokio::select! {
            r = ready_rx => r.map_err(|_| anyhow!("the responder stopped before it was ready"))?,
            r = &mut responder => {
                return Err(match r {
                    Ok(Err(e)) => anyhow::Error::from(e).context("the callout responder failed"),
                    Ok(Ok(())) => anyhow!("the callout responder stopped before it was ready"),
                    Err(e) => anyhow!("the callout responder panicked: {e}"),
                });
            }
            _ = tokio::time::sleep(WAIT) => {
                return Err(anyhow!("the callout responder was not ready within {WAIT:?}"));
            }
        }
        // Also the warm-up: the first decisions load the account's signer.
        check_permissions(&creds)
            .await
            .context("checking the permissions of a client the callout let in")?;

        let before = stats.snapshot();
        let total = u64::from(args.clients) * u64::from(args.connects);
        let bar = crate::bench::progress(json, total, "connects");
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.clients {
            tasks.spawn(client_loop(creds.clone(), args.connects, bar.clone()));
        }
        let mut latencies = Vec::with_capacity(total as usize);
        let mut failed = 0;
        let mut first_error = None;
        while let Some(r) = tasks.join_next().await {
            let (l, f, e) = r.context("a client task panicked")?;
            latencies.extend(l);
            failed += f;
            if first_error.is_none() {
                first_error = e;
            }
        }
        let seconds = t.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let after = stats.snapshot();
        latencies.sort_by(|a, b| a.total_cmp(b));

        // The same connects with creds issued in advance (no callout), same server.
        let plain = Credentials {
            creds: Arc::new(w.creds(ACCOUNT, BASELINE_USER).await?),
            token: None,
            url: creds.url.clone(),
        };
        let bar = crate::bench::progress(json, total, "baseline connects");
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.clients {
            tasks.spawn(client_loop(plain.clone(), args.connects, bar.clone()));
        }
        let mut baseline = Vec::with_capacity(total as usize);
        while let Some(r) = tasks.join_next().await {
            let (l, f, e) = r.context("a client task panicked")?;
            if f > 0 {
                return Err(anyhow!(
                    "{f} baseline connects failed: {}",
                    e.unwrap_or_default()
                ));
            }
            baseline.extend(l);
        }
        let baseline_seconds = t.elapsed().as_secs_f64();
        bar.finish_and_clear();
        baseline.sort_by(|a, b| a.total_cmp(b));
        let baseline_connects_per_s = baseline.len() as f64 / baseline_seconds.max(1e-9);
        let load_at_end = load_avg();

        let ok = latencies.len() as f64;
        let connects_per_s = ok / seconds.max(1e-9);
        let ceiling_per_s = raw_sign_per_s / 3.0;
        let decisions = after.count - before.count;
        anyhow::Ok(BenchCalloutReport {
            nats_server: version.clone(),
            release_build: !cfg!(debug_assertions),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_at_start: load_at_start.clone(),
            load_at_end,
            xkey: args.xkey,
            clients: args.clients,
            connects_per_client: args.connects,
            connects: total,
            failed_connects: failed,
            seconds,
            connects_per_s,
            connect_ms_p50: percentile(&latencies, 0.50),
            connect_ms_p99: percentile(&latencies, 0.99),
            connect_ms_max: latencies.last().copied().unwrap_or(0.0),
            raw_sign_per_s,
            raw_verify_per_s,
            ceiling_per_s,
            ratio: connects_per_s / ceiling_per_s.max(1e-9),
            responder_allowed: after.allowed - before.allowed,
            responder_refused: after.refused - before.refused,
            responder_failed: after.failed - before.failed,
            responder_mean_ms: if decisions == 0 {
                0.0
            } else {
                (after.sum_secs - before.sum_secs) * 1000.0 / decisions as f64
            },
            permissions_checked: true,
            first_error,
            baseline_connects_per_s,
            baseline_ms_p50: percentile(&baseline, 0.50),
            baseline_ms_p99: percentile(&baseline, 0.99),
            vs_baseline: connects_per_s / baseline_connects_per_s.max(1e-9),
        })
    }
    .await;

    let _ = stop.send(true);
    match tokio::time::timeout(WAIT, &mut responder).await {
        Ok(Ok(Err(e))) => tracing::warn!("the callout responder ended with an error: {e}"),
        Ok(_) => {}
        Err(_) => responder.abort(),
    }
    server.stop();
    w.close().await;
    let report = result?;
    print_report(json, &report)?;

    let complete = report.failed_connects == 0
        && report.responder_refused == 0
        && report.responder_failed == 0
        && report.responder_allowed == report.connects;
    if !complete {
        return Err(anyhow!(
            "not every connect was let in: {} failed, the responder allowed {} of {}, refused {}, could not answer {}{}",
            report.failed_connects,
            report.responder_allowed,
            report.connects,
            report.responder_refused,
            report.responder_failed,
            report
                .first_error
                .as_deref()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

fn print_report(json: bool, r: &BenchCalloutReport) -> Result<()> {
    if json {
        return print_json(r);
    }
    println!(
        "auth callout on {} ({} build, {} CPUs, requests {}); load at start {}, at end {}",
        r.nats_server,
        if r.release_build { "release" } else { "debug" },
        r.cpus,
        if r.xkey {
            "sealed (xkey)"
        } else {
            "not sealed"
        },
        r.load_at_start,
        r.load_at_end
    );
    println!(
        "{} connects ({} clients x {}) in {:.2} s: {:.0} connects/s; one connect p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.connects,
        r.clients,
        r.connects_per_client,
        r.seconds,
        r.connects_per_s,
        r.connect_ms_p50,
        r.connect_ms_p99,
        r.connect_ms_max
    );
    println!(
        "responder: {} allowed, {} refused, {} not answered; {:.2} ms per decision",
        r.responder_allowed, r.responder_refused, r.responder_failed, r.responder_mean_ms
    );
    println!(
        "raw Ed25519: {:.0} signatures/s, {:.0} verifications/s; ceiling (2 signed + 1 verified per authorization) {:.0} authorizations/s; connects/s / ceiling {:.3}",
        r.raw_sign_per_s, r.raw_verify_per_s, r.ceiling_per_s, r.ratio
    );
    println!(
        "baseline (creds issued in advance, no callout, same server and clients): {:.0} connects/s, p50 {:.2} ms, p99 {:.2} ms; callout / baseline {:.2}",
        r.baseline_connects_per_s, r.baseline_ms_p50, r.baseline_ms_p99, r.vs_baseline
    );
    println!("permissions: publish on bench.x delivered, on other.x refused");
    if r.failed_connects > 0 || r.responder_refused > 0 || r.responder_failed > 0 {
        println!(
            "warning: {} connects failed, {} refused by the responder, {} not answered{}",
            r.failed_connects,
            r.responder_refused,
            r.responder_failed,
            r.first_error
                .as_deref()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
