//! `warden bench`: measurements users can run on their own hardware (like
//! `nats bench`). Each reports figures measured in the same run, so ratios are
//! meaningful on any machine.
//!
//! - `issue`: user JWTs issued per second (claims with a few permissions, signed
//!   by one account key) against raw Ed25519 signatures per second over a
//!   token-sized message, and their ratio: on one thread, then on N threads at once
//!   (`--threads`), with how issuance scales against N × the one-thread rate.
//! - `user-add`: wall time of N `user add` operations on a fresh SQLite database.
//! - `callout`: connects per second authorized by the auth callout responder, against
//!   the Ed25519 signing ceiling.
//! - `cluster`: how a cluster of full resolvers spreads pushed account updates (bulk lag,
//!   one revocation enforced on another node), against one server alone.
//! - `org`: `org apply` of N people in one unit against key generation plus signing on
//!   the same cores.
//! - `push`: account pushes by the relay against a bare NATS client on the same server.

pub mod callout;
pub mod chat;
pub mod cluster;
pub mod devices;
pub mod fanout;
pub mod governance;
pub mod nsc;
pub mod org;
pub mod push;
pub mod rotate;
pub mod server;
pub mod tenants;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use nats_jwt::{KeyKind, KeyPair, Subject, UserClaims};
use serde::Serialize;
use warden_core::UserSpec;
use warden_store::{MasterKey, Store};

use warden_ops::{InitOptions, Settings, Warden};

/// A Warden on a fresh database for one bench run: SQLite in `dir`, or the (empty)
/// PostgreSQL database at `pg`, with a `BENCH` operator and, when `migrations` is set,
/// Warden's default JWT migrations (the service account and user).
pub async fn fresh_warden(dir: &Path, pg: Option<&str>, migrations: bool) -> Result<Warden> {
    let url = match pg {
        Some(u) => u.to_string(),
        None => format!("sqlite://{}/warden.db", dir.display()),
    };
    let store = Store::open(&url, MasterKey::from_bytes(rand_key())).await?;
    let mut w = Warden::open(store, warden_ops::Actor::operator("bench")).await?;
    if w.is_initialised().await? {
        return Err(crate::cli::UsageError("the bench needs an empty database".into()).into());
    }
    w.init(InitOptions {
        operator: "BENCH".into(),
        account: None,
        user: None,
        settings: Settings::default(),
        service_urls: Vec::new(),
        migrations: if migrations {
            warden_core::default_migrations(warden_core::bootstrap::DEFAULT_SERVICE_PREFIX)
        } else {
            Vec::new()
        },
    })
    .await?;
    Ok(w)
}

/// Result of `bench issue`.
#[derive(Debug, Serialize)]
pub struct IssueReport {
    /// Tokens issued (and signatures made) per thread and round (the fastest of 5
    /// interleaved rounds counts).
    pub count: u32,
    /// User JWTs issued per second, one thread.
    pub issue_per_s: f64,
    /// Raw Ed25519 signatures per second over a message of the same size, one thread.
    pub raw_sign_per_s: f64,
    /// issue_per_s / raw_sign_per_s.
    pub ratio: f64,
    /// Size of the signed message (header.payload) in bytes.
    pub message_bytes: usize,
    /// Threads of the second measurement.
    pub threads: u32,
    /// User JWTs issued per second by `threads` threads together.
    pub issue_per_s_threads: f64,
    /// Raw signatures per second by `threads` threads together.
    pub raw_sign_per_s_threads: f64,
    /// issue_per_s_threads / (threads × issue_per_s): how issuance scales.
    pub scaling: f64,
    /// issue_per_s_threads / raw_sign_per_s_threads: issuance against raw signing on as
    /// many threads.
    pub ratio_threads: f64,
    /// Cores the machine reports.
    pub cores: usize,
}

/// A user with a few permissions, as issuance benchmarks sign it.
fn bench_claims() -> Result<UserClaims> {
    let user = KeyPair::generate(KeyKind::User).user_public_key()?;
    let mut claims = UserClaims::new(&user, "bench_user");
    let p = &mut claims.nats.limits.permissions;
    p.publish.allow = vec![Subject::new("orders.>")?, Subject::new("_INBOX.>")?];
    p.subscribe.allow = vec![Subject::new("orders.*.status")?, Subject::new("_INBOX.>")?];
    p.publish.deny = vec![Subject::new("orders.admin.>")?];
    Ok(claims)
}

/// Runs `work` on `threads` threads started together (each with its own claims and key,
/// as independent issuers would be); the wall time from the common start until the
/// last one finishes.
fn on_threads(
    threads: u32,
    work: impl Fn(&mut UserClaims, &KeyPair) -> Result<usize> + Sync,
) -> Result<Duration> {
    let barrier = std::sync::Barrier::new(threads as usize + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, work) = (&barrier, &work);
                scope.spawn(move || -> Result<usize> {
                    let account = KeyPair::generate(KeyKind::Account);
                    let setup = bench_claims().and_then(|mut claims| {
                        claims.encode(&account)?; // warm up
                        Ok(claims)
                    });
                    // Reached whatever the setup gave, so the start never waits forever.
                    barrier.wait();
                    work(&mut setup?, &account)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut sink = 0usize;
        for h in handles {
            let n = h
                .join()
                .map_err(|_| anyhow::anyhow!("a bench thread panicked"))??;
            sink = sink.wrapping_add(n);
        }
        std::hint::black_box(sink);
        Ok(start.elapsed())
    })
}

/// Rounds of `bench issue`: each measurement keeps its fastest.
const ROUNDS: u32 = 5;

/// Issues `count` user JWTs and makes `count` raw signatures on one thread, then
/// `count` of each per thread on `threads` threads at once, timing each; in
/// [`ROUNDS`] interleaved rounds, keeping each measurement's fastest.
pub fn measure_issue(count: u32, threads: u32) -> Result<IssueReport> {
    let count = count.max(1);
    let threads = threads.max(1);
    let mut claims = bench_claims()?;
    let account = KeyPair::generate(KeyKind::Account);
    // Warm up and learn the message size.
    let token = claims.encode(&account)?;
    let message_len = token.rfind('.').unwrap_or(token.len());
    let message = token.as_bytes()[..message_len].to_vec();

    let issue_loop = |claims: &mut UserClaims, account: &KeyPair| -> Result<usize> {
        let mut sink = 0usize;
        for _ in 0..count {
            sink = sink.wrapping_add(claims.encode(account)?.len());
        }
        Ok(sink)
    };
    let sign_loop = |_: &mut UserClaims, account: &KeyPair| -> Result<usize> {
        let mut sink = 0usize;
        for _ in 0..count {
            sink = sink.wrapping_add(account.sign(&message).len());
        }
        Ok(sink)
    };

    // The four measurements take turns, ROUNDS times, and each keeps its fastest round:
    // on a shared machine a neighbour's burst then slows one round, not one measurement.
    let (mut issue, mut raw, mut issue_n, mut raw_n) =
        (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        issue = issue.min(on_threads(1, issue_loop)?);
        raw = raw.min(on_threads(1, sign_loop)?);
        issue_n = issue_n.min(on_threads(threads, issue_loop)?);
        raw_n = raw_n.min(on_threads(threads, sign_loop)?);
    }

    let per_s = |n: u32, d: Duration| f64::from(n) * f64::from(count) / d.as_secs_f64().max(1e-9);
    let issue_per_s = per_s(1, issue);
    let raw_sign_per_s = per_s(1, raw);
    let issue_per_s_threads = per_s(threads, issue_n);
    let raw_sign_per_s_threads = per_s(threads, raw_n);
    Ok(IssueReport {
        count,
        issue_per_s,
        raw_sign_per_s,
        ratio: issue_per_s / raw_sign_per_s,
        message_bytes: message_len,
        threads,
        issue_per_s_threads,
        raw_sign_per_s_threads,
        scaling: issue_per_s_threads / (f64::from(threads) * issue_per_s),
        ratio_threads: issue_per_s_threads / raw_sign_per_s_threads,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// Result of `bench user-add`.
#[derive(Debug, Serialize)]
pub struct UserAddReport {
    /// Users added.
    pub count: u32,
    /// Total wall time in seconds.
    pub seconds: f64,
    /// Users added per second.
    pub per_s: f64,
    /// Mean time per `user add`, in milliseconds.
    pub ms_per_op: f64,
}

pub(crate) fn progress(json: bool, len: u64, what: &str) -> crate::cli::progress::Bar {
    crate::cli::progress::Bar::for_output(json, len, what)
}

/// Adds `count` users to a fresh SQLite database in a temporary directory.
pub async fn measure_user_add(count: u32, json: bool) -> Result<UserAddReport> {
    let dir = tempfile::tempdir()?;
    let w = fresh_warden(dir.path(), None, false).await?;
    w.add_account("LOAD", Default::default()).await?;
    let bar = progress(json, u64::from(count), "user add");
    let start = Instant::now();
    for i in 0..count {
        w.add_user("LOAD", &format!("user_{i}"), UserSpec::default())
            .await?;
        bar.inc(1);
    }
    let elapsed = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(UserAddReport {
        count,
        seconds: elapsed,
        per_s: f64::from(count) / elapsed.max(1e-9),
        ms_per_op: elapsed * 1000.0 / f64::from(count.max(1)),
    })
}

fn rand_key() -> [u8; 32] {
    rand::random()
}

/// Runs `warden bench issue` and prints its report; `threads` defaults to one per core.
pub fn issue(json: bool, count: u32, threads: Option<u32>) -> Result<()> {
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
    });
    let r = measure_issue(count, threads)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "one thread: issued {} user JWTs: {:.0}/s; raw Ed25519 signatures over {} bytes: {:.0}/s; ratio issue/raw: {:.3}\n\
             {} threads ({} cores): issued {:.0}/s = {:.3} × {} × the one-thread rate; raw signatures {:.0}/s; ratio issue/raw: {:.3}",
            r.count,
            r.issue_per_s,
            r.message_bytes,
            r.raw_sign_per_s,
            r.ratio,
            r.threads,
            r.cores,
            r.issue_per_s_threads,
            r.scaling,
            r.threads,
            r.raw_sign_per_s_threads,
            r.ratio_threads
        );
    }
    Ok(())
}

/// Runs `warden bench user-add` and prints its report.
pub async fn user_add(json: bool, count: u32) -> Result<()> {
    let r = measure_user_add(count, json).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} user add operations on SQLite: {:.2} s ({:.1} ms each, {:.0}/s)",
            r.count, r.seconds, r.ms_per_op, r.per_s
        );
    }
    Ok(())
}

/// CPU time a process used, all its threads together (`utime` and `stime` of
/// `/proc/PID/stat`, in clock ticks of 10 ms: Linux reports them in `USER_HZ`, 100).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CpuTime {
    /// User time, ms.
    pub user_ms: u64,
    /// System time, ms.
    pub system_ms: u64,
}

impl CpuTime {
    /// The time used since `before`.
    pub fn since(self, before: CpuTime) -> CpuTime {
        CpuTime {
            user_ms: self.user_ms.saturating_sub(before.user_ms),
            system_ms: self.system_ms.saturating_sub(before.system_ms),
        }
    }
}

/// What [`CpuTime`] process `pid` has used so far.
pub(crate) fn cpu_time(pid: u32) -> Result<CpuTime> {
    use anyhow::{Context, anyhow};
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let tick = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|t| t * 10)
            .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))
    };
    Ok(CpuTime {
        user_ms: tick(11)?,
        system_ms: tick(12)?,
    })
}
