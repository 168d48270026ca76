//! `warden bench`: measurements users can run on their own hardware (like
//! `nats bench`). Each reports figures measured in the same run, so ratios are
//! meaningful on any machine.
//!
//! - `issue`: user JWTs issued per second (claims with a few permissions, signed
//!   by one account key, one thread) against raw Ed25519 signatures per second over
//!   a token-sized message, and their ratio.
//! - `user-add`: wall time of N `user add` operations on a fresh SQLite database.
//! - `callout`: connects per second authorized by the auth callout responder, against
//!   the Ed25519 signing ceiling.
//! - `cluster`: how a cluster of full resolvers spreads pushed account updates (bulk lag,
//!   one revocation enforced on another node), against one server alone.
//! - `push`: account pushes by the relay against a bare NATS client on the same server.

pub mod callout;
pub mod chat;
pub mod cluster;
pub mod devices;
pub mod governance;
pub mod nsc;
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
    /// Tokens issued.
    pub count: u32,
    /// User JWTs issued per second.
    pub issue_per_s: f64,
    /// Raw Ed25519 signatures per second over a message of the same size.
    pub raw_sign_per_s: f64,
    /// issue_per_s / raw_sign_per_s.
    pub ratio: f64,
    /// Size of the signed message (header.payload) in bytes.
    pub message_bytes: usize,
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

/// Issues `count` user JWTs and makes `count` raw signatures, timing each.
pub fn measure_issue(count: u32) -> Result<IssueReport> {
    let count = count.max(1);
    let account = KeyPair::generate(KeyKind::Account);
    let user = KeyPair::generate(KeyKind::User).user_public_key()?;
    let mut claims = UserClaims::new(&user, "bench_user");
    let p = &mut claims.nats.limits.permissions;
    p.publish.allow = vec![Subject::new("orders.>")?, Subject::new("_INBOX.>")?];
    p.subscribe.allow = vec![Subject::new("orders.*.status")?, Subject::new("_INBOX.>")?];
    p.publish.deny = vec![Subject::new("orders.admin.>")?];

    // Warm up and learn the message size.
    let token = claims.encode(&account)?;
    let message_len = token.rfind('.').unwrap_or(token.len());
    let message = token.as_bytes()[..message_len].to_vec();

    let start = Instant::now();
    let mut sink = 0usize;
    for _ in 0..count {
        sink = sink.wrapping_add(claims.encode(&account)?.len());
    }
    let issue = start.elapsed();

    let start = Instant::now();
    for _ in 0..count {
        sink = sink.wrapping_add(account.sign(&message).len());
    }
    let raw = start.elapsed();
    std::hint::black_box(sink);

    let per_s = |d: Duration| f64::from(count) / d.as_secs_f64().max(1e-9);
    let issue_per_s = per_s(issue);
    let raw_sign_per_s = per_s(raw);
    Ok(IssueReport {
        count,
        issue_per_s,
        raw_sign_per_s,
        ratio: issue_per_s / raw_sign_per_s,
        message_bytes: message_len,
    })
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

/// Runs `warden bench issue` and prints its report.
pub fn issue(json: bool, count: u32) -> Result<()> {
    let r = measure_issue(count)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "issued {} user JWTs: {:.0}/s\nraw Ed25519 signatures over {} bytes: {:.0}/s\nratio issue/raw: {:.3}",
            r.count, r.issue_per_s, r.message_bytes, r.raw_sign_per_s, r.ratio
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
