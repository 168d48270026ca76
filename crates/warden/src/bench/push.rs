//! `warden bench push`: Warden's account pushes against a bare NATS client on the same
//! nats-server, in one run.
//!
//! Warden's side is the relay draining the outbox after N accounts were created: reading
//! the due rows, the accounts' JWTs, checking each JWT against the operator's trust, pushing
//! them in waves over its lanes, publishing the change events and marking every row
//! delivered. The bare client gets the same connections and the same window of requests in
//! flight and only sends `$SYS.REQ.CLAIMS.UPDATE` requests with JWTs of the same shape and
//! size (a Warden account's claims under fresh keys, signed by the same operator key) and
//! counts `200` replies. After a warm-up, the two run in pairs of rounds, alternating which
//! goes first, so the server's growing account count and the machine's changing load weigh
//! on both alike; the median of the pairs' ratios is the figure to quote.
//!
//! With `--relay serve`, Warden's rounds are drained by the relay loop of `warden serve`
//! ([`warden_ops::relay::run`]) instead, started for the round and timed from the moment
//! it reports itself connected (a `serve` connects once, not for every backlog) until it
//! has counted every row delivered.
//!
//! Each round also reports the CPU time per account of both processes, the pushing one
//! (this one) and nats-server: on a machine with few cores they share them, so what the
//! relay spends beyond the bare client is taken from the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};
use futures::StreamExt;
use nats_jwt::{Account, KeyKind, KeyPair};
use serde::Serialize;
use warden_core::AccountSpec;
use warden_ops::Warden;
use warden_ops::relay::{Connections, DrainReport, RelayConfig, RelayStats, drain_all};

use crate::bench::server::BenchServer;
use crate::bench::{CpuTime, cpu_time};
use crate::cli::print_json;

/// Account JWTs the bare client pushes before anything is measured.
const WARM_UP: u32 = 500;

/// The account whose claims the bare client's JWTs copy.
const MODEL: &str = "PUSH_MODEL";

/// Arguments of `warden bench push`.
#[derive(Debug, Clone)]
pub struct PushBenchOptions {
    /// Accounts per measured round.
    pub accounts: u32,
    /// Pairs of rounds (a bare one and a Warden one, alternating which goes first).
    pub pairs: u32,
    /// Which relay drains Warden's rounds.
    pub relay: Relay,
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
}

/// Which relay drains Warden's rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relay {
    /// `warden push`: one drain of everything due.
    Push,
    /// The relay loop of `warden serve`.
    Serve,
}

/// How often the bench reads a `serve` relay's counters: the resolution of its rounds'
/// start and end (tokio's timer has a resolution of a millisecond).
const SERVE_POLL: Duration = Duration::from_millis(1);
/// Longest a `serve` relay may take for a round.
const SERVE_ROUND_LIMIT: Duration = Duration::from_secs(120);

/// One measured round.
#[derive(Debug, Serialize)]
pub struct PushRound {
    /// `bare` or `warden`.
    pub who: &'static str,
    /// Accounts pushed.
    pub accounts: u32,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Accounts per second.
    pub per_s: f64,
    /// CPU time (user + system) of the pushing side — this process: the bare client, or
    /// Warden's relay with its store — per account, µs. The resolution is 10 ms per round.
    pub client_cpu_us_per_account: f64,
    /// CPU time of nats-server per account, µs.
    pub server_cpu_us_per_account: f64,
}

/// Result of `warden bench push`.
#[derive(Debug, Serialize)]
pub struct PushBenchReport {
    /// nats-server version line.
    pub nats_server: String,
    /// Which relay drained Warden's rounds.
    pub relay: Relay,
    /// Connections both sides push over.
    pub lanes: usize,
    /// Requests both sides keep in flight.
    pub window: usize,
    /// Bytes of one account JWT (Warden's and the bare client's alike).
    pub jwt_bytes: usize,
    /// The rounds, in the order they ran.
    pub rounds: Vec<PushRound>,
    /// Accounts per second over both bare rounds.
    pub bare_per_s: f64,
    /// Accounts per second over both Warden rounds.
    pub warden_per_s: f64,
    /// warden_per_s / bare_per_s.
    pub ratio: f64,
    /// Warden's rate over the bare client's within each pair of rounds, sorted.
    pub pair_ratios: Vec<f64>,
    /// The median of `pair_ratios`: the figure least moved by the machine's load changing
    /// between rounds.
    pub median_ratio: f64,
    /// Median over the bare rounds of the client's CPU per account, µs.
    pub bare_client_cpu_us: f64,
    /// Median over Warden's rounds of the relay's CPU per account, µs.
    pub warden_client_cpu_us: f64,
    /// Median over the bare rounds of nats-server's CPU per account, µs.
    pub bare_server_cpu_us: f64,
    /// Median over Warden's rounds of nats-server's CPU per account, µs.
    pub warden_server_cpu_us: f64,
    /// Load average (1 minute) when the bench ended.
    pub load: Option<f64>,
}

/// Runs `warden bench push`.
pub async fn bench(json: bool, opts: PushBenchOptions) -> anyhow::Result<()> {
    ensure!(opts.accounts > 0, "--accounts must be at least 1");
    let dir = tempfile::Builder::new()
        .prefix("warden-bench-push-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, true).await?;
    let mut server = BenchServer::start(&w, &opts.nats_server, dir.path()).await?;
    let out = measure(&w, &server, &opts, json).await;
    server.stop();
    w.close().await;
    let out = out?;
    if json {
        return print_json(&out);
    }
    println!(
        "account pushes on {} ({} lanes, {} in flight, JWTs of {} bytes; Warden's relay: {})",
        out.nats_server,
        out.lanes,
        out.window,
        out.jwt_bytes,
        match out.relay {
            Relay::Push => "warden push",
            Relay::Serve => "warden serve",
        }
    );
    for r in &out.rounds {
        println!(
            "  {:<7} {:>7} accounts  {:>8.1} ms  {:>8.0} accounts/s  CPU per account: pusher {:>5.0} µs, nats-server {:>5.0} µs",
            r.who,
            r.accounts,
            r.seconds * 1e3,
            r.per_s,
            r.client_cpu_us_per_account,
            r.server_cpu_us_per_account
        );
    }
    println!(
        "bare client {:.0}/s, Warden's relay {:.0}/s: ratio {:.2}, median of the pairs' ratios {:.2} (load {})",
        out.bare_per_s,
        out.warden_per_s,
        out.ratio,
        out.median_ratio,
        out.load.map_or("?".into(), |l| format!("{l:.2}"))
    );
    println!(
        "CPU per account (medians): bare client {:.0} µs, relay {:.0} µs; nats-server {:.0} µs for the bare client's, {:.0} µs for the relay's",
        out.bare_client_cpu_us,
        out.warden_client_cpu_us,
        out.bare_server_cpu_us,
        out.warden_server_cpu_us
    );
    Ok(())
}

async fn measure(
    w: &Warden,
    server: &BenchServer,
    opts: &PushBenchOptions,
    json: bool,
) -> anyhow::Result<PushBenchReport> {
    let cfg = RelayConfig::new(server.url.clone());
    let conns = Connections::open(w, &cfg).await?;
    // Warden's own accounts and the account the bare client's JWTs are modelled on first,
    // so the rounds start from an empty outbox.
    w.add_account_with_users(
        MODEL,
        AccountSpec::default(),
        Vec::new(),
        &warden_ops::progress::Quiet,
    )
    .await?;
    let first = drain_all(w, &conns, &cfg).await?;
    ensure!(
        first.failed == 0,
        "first push failed: {:?}",
        first.first_error
    );

    let sys_creds = w.system_user_creds().await?;
    let mut bare = Vec::with_capacity(cfg.lanes);
    for _ in 0..cfg.lanes {
        let client = async_nats::ConnectOptions::with_credentials(&sys_creds)?
            .name("bench-bare-client")
            .request_timeout(Some(cfg.timeout))
            .connect(server.url.as_str())
            .await
            .with_context(|| format!("connecting to {}", server.url))?;
        bare.push(client);
    }

    // Warm-up (not measured): the server's first requests pay for its resolver store
    // getting going, which would weigh on whichever side went first.
    let warm = lookalike_jwts(w, &conns, WARM_UP, usize::MAX).await?;
    bare_push(&bare, &warm, cfg.concurrency).await?;

    let n = opts.accounts;
    let mut rounds = Vec::new();
    let mut ratios = Vec::new();
    let mut jwt_bytes = 0;
    for pair in 0..opts.pairs.max(1) {
        // Alternating which side goes first: bare, Warden | Warden, bare | …
        let order = if pair % 2 == 0 {
            ["bare", "warden"]
        } else {
            ["warden", "bare"]
        };
        let mut secs = [0.0; 2];
        for who in order {
            let round = rounds.len();
            // Both processes' CPU time when the measured part of the round starts.
            let cpu_before;
            let took = match who {
                "bare" => {
                    let jwts = lookalike_jwts(w, &conns, n, round).await?;
                    jwt_bytes = jwts[0].len();
                    cpu_before = (cpu_time(std::process::id())?, server.cpu()?);
                    let started = Instant::now();
                    bare_push(&bare, &jwts, cfg.concurrency).await?;
                    started.elapsed()
                }
                _ => {
                    create_accounts(w, n, round, json).await?;
                    let (r, took) = match opts.relay {
                        Relay::Push => {
                            cpu_before = (cpu_time(std::process::id())?, server.cpu()?);
                            let started = Instant::now();
                            let r = drain_all(w, &conns, &cfg).await?;
                            (r, started.elapsed())
                        }
                        Relay::Serve => {
                            let (r, took, cpu) = serve_round(w, &cfg, server).await?;
                            cpu_before = cpu;
                            (r, took)
                        }
                    };
                    ensure!(
                        r.failed == 0 && r.accounts_pushed == n as usize,
                        "the relay pushed {} of {n} ({} failed: {:?})",
                        r.accounts_pushed,
                        r.failed,
                        r.first_error
                    );
                    took
                }
            };
            let client_cpu = cpu_time(std::process::id())?.since(cpu_before.0);
            let server_cpu = server.cpu()?.since(cpu_before.1);
            let per_account =
                |c: CpuTime| (c.user_ms + c.system_ms) as f64 * 1e3 / f64::from(n.max(1));
            secs[usize::from(who == "warden")] = took.as_secs_f64();
            rounds.push(PushRound {
                who,
                accounts: n,
                seconds: took.as_secs_f64(),
                per_s: f64::from(n) / took.as_secs_f64().max(1e-9),
                client_cpu_us_per_account: per_account(client_cpu),
                server_cpu_us_per_account: per_account(server_cpu),
            });
        }
        // Warden's rate over the bare client's, within the pair.
        ratios.push(secs[0] / secs[1].max(1e-9));
    }
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios[ratios.len() / 2];
    let rate = |who: &str| {
        let (count, secs) = rounds
            .iter()
            .filter(|r| r.who == who)
            .fold((0.0, 0.0), |(c, s), r| {
                (c + f64::from(r.accounts), s + r.seconds)
            });
        count / f64::max(secs, 1e-9)
    };
    let (bare_per_s, warden_per_s) = (rate("bare"), rate("warden"));
    let median = |who: &str, cpu: fn(&PushRound) -> f64| {
        let mut v: Vec<f64> = rounds.iter().filter(|r| r.who == who).map(cpu).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let client = |r: &PushRound| r.client_cpu_us_per_account;
    let server_side = |r: &PushRound| r.server_cpu_us_per_account;
    let (bare_client_cpu_us, warden_client_cpu_us) =
        (median("bare", client), median("warden", client));
    let (bare_server_cpu_us, warden_server_cpu_us) =
        (median("bare", server_side), median("warden", server_side));
    Ok(PushBenchReport {
        nats_server: server.version.clone(),
        relay: opts.relay,
        lanes: cfg.lanes,
        window: cfg.concurrency,
        jwt_bytes,
        rounds,
        bare_per_s,
        warden_per_s,
        ratio: warden_per_s / bare_per_s.max(1e-9),
        pair_ratios: ratios,
        median_ratio,
        bare_client_cpu_us,
        warden_client_cpu_us,
        bare_server_cpu_us,
        warden_server_cpu_us,
        load: load_average(),
    })
}

/// One round drained by the relay loop of `warden serve`: started now, timed from its
/// connecting to its counting every due row delivered, then stopped. Its report (pushes
/// counted from its push histogram, failures from its counters), the time, and both
/// processes' CPU time when the timing started.
async fn serve_round(
    w: &Warden,
    cfg: &RelayConfig,
    server: &BenchServer,
) -> anyhow::Result<(DrainReport, Duration, (CpuTime, CpuTime))> {
    let due = u64::try_from(w.status().await?.outbox_pending)?;
    let stats = Arc::new(RelayStats::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(warden_ops::relay::run(
        w.clone(),
        cfg.clone(),
        stopped,
        stats.clone(),
    ));
    let timed = async {
        while !stats.snapshot().connected {
            tokio::time::sleep(SERVE_POLL).await;
        }
        let cpu = (cpu_time(std::process::id())?, server.cpu()?);
        let started = Instant::now();
        loop {
            let now = stats.snapshot();
            if now.delivered + now.failed >= due {
                return anyhow::Ok((now, started.elapsed(), cpu));
            }
            tokio::time::sleep(SERVE_POLL).await;
        }
    };
    let outcome = tokio::time::timeout(SERVE_ROUND_LIMIT, timed).await;
    let _ = stop.send(true);
    relay.await??;
    let (seen, took, cpu) = outcome.map_err(|_| {
        anyhow!("the serve relay did not drain {due} rows within {SERVE_ROUND_LIMIT:?}")
    })??;
    let report = DrainReport {
        delivered: usize::try_from(seen.delivered)?,
        failed: usize::try_from(seen.failed)?,
        accounts_pushed: usize::try_from(seen.push_count)?,
        first_error: seen.last_error.clone(),
        ..DrainReport::default()
    };
    Ok((report, took, cpu))
}

/// Creates `n` accounts the relay will push (not timed).
async fn create_accounts(w: &Warden, n: u32, round: usize, json: bool) -> anyhow::Result<()> {
    let bar = crate::bench::progress(json, u64::from(n), "accounts");
    for i in 0..n {
        w.add_account_with_users(
            &format!("PUSH{round}_{i:06}"),
            AccountSpec::default(),
            Vec::new(),
            &warden_ops::progress::Quiet,
        )
        .await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// `n` account JWTs like the ones Warden makes: the claims of a Warden account under
/// fresh account keys and names, signed by the operator's signing key.
async fn lookalike_jwts(
    w: &Warden,
    conns: &Connections,
    n: u32,
    round: usize,
) -> anyhow::Result<Vec<String>> {
    let (_, _, template) = w
        .account_jwts()
        .await?
        .into_iter()
        .find(|(name, _, _)| name == MODEL)
        .ok_or_else(|| anyhow!("no account {MODEL} to model the bare client's JWTs on"))?;
    let claims = nats_jwt::decode::<Account>(&template)?;
    let signer = conns.operator_signer();
    let jwts = (0..n)
        .map(|i| {
            let mut c = claims.clone();
            c.sub = KeyPair::generate(KeyKind::Account).public_key().to_string();
            c.name = format!("BARE{round}_{i:06}");
            c.encode(signer)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jwts)
}

/// Pushes `jwts` round-robin over `clients` with `window` requests in flight, and
/// requires a `200` reply to each.
async fn bare_push(
    clients: &[async_nats::Client],
    jwts: &[String],
    window: usize,
) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Reply {
        data: Option<Data>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        code: i64,
    }
    let mut replies = futures::stream::iter(jwts.iter().enumerate())
        .map(|(i, jwt)| {
            let client = &clients[i % clients.len()];
            client.request("$SYS.REQ.CLAIMS.UPDATE", jwt.clone().into_bytes().into())
        })
        .buffer_unordered(window.max(1));
    while let Some(reply) = replies.next().await {
        let msg = reply.map_err(|e| anyhow!("bare push: {e}"))?;
        let code = serde_json::from_slice::<Reply>(&msg.payload)
            .ok()
            .and_then(|r| r.data)
            .map(|d| d.code);
        ensure!(
            code == Some(200),
            "bare push refused: {}",
            String::from_utf8_lossy(&msg.payload)
        );
    }
    Ok(())
}

/// The 1-minute load average, where the system tells it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
