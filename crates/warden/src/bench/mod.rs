//! `warden bench`: measurements users can run on their own hardware (like
//! `nats bench`). Each reports figures measured in the same run, so ratios are
//! meaningful on any machine.
//!
//! - `issue`: user JWTs issued per second (claims with a few permissions, signed
//!   by one account key, one thread) against raw Ed25519 signatures per second over
//!   a token-sized message, and their ratio.
//! - `user-add`: wall time of N `user add` operations on a fresh SQLite database.

pub mod chat;
pub mod devices;
pub mod governance;
pub mod nsc;
pub mod server;
pub mod tenants;

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Subcommand;
use nats_jwt::{KeyKind, KeyPair, Subject, UserClaims};
use serde::Serialize;
use warden_core::UserSpec;
use warden_store::{MasterKey, Store};

use warden_ops::{InitOptions, Settings, Warden};

/// Subcommands of `warden bench`.
#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// JWT issuance rate vs raw Ed25519 signing rate.
    Issue {
        /// Tokens to issue (and signatures to make).
        #[arg(long, default_value_t = 20_000)]
        count: u32,
    },
    /// Time N `user add` operations on a fresh SQLite database.
    UserAdd {
        /// Users to add.
        #[arg(long, default_value_t = 1_000)]
        count: u32,
    },
    /// Export an organisation of N units and M users as an nsc store: wall time.
    Export(crate::bench::nsc::BenchExportArgs),
    /// Provision N devices (store + JWTs + resolver pushes): wall time and devices per second.
    Devices(crate::bench::devices::BenchDevicesArgs),
    /// Add N tenants and push them: wall time, platform JWT size, one more at N.
    Tenants(crate::bench::tenants::BenchTenantsArgs),
    /// Import N directory users and M roles (apply_sync_plan), and time proposals end to end until nats-server enforces them.
    Governance(crate::bench::governance::BenchGovernanceArgs),
    /// Rooms gateway: 10,000 idle websockets (memory) and 1,000 clients in 100 rooms
    /// (deliveries per second, latency), against a `warden chat` child and a real nats-server.
    Chat(crate::bench::chat::BenchChatArgs),
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
    let url = format!("sqlite://{}/warden.db", dir.path().display());
    let store = Store::open(&url, MasterKey::from_bytes(rand_key())).await?;
    let mut w = Warden::open(store, warden_ops::Actor::operator("bench")).await?;
    w.init(InitOptions {
        operator: "BENCH".into(),
        account: None,
        user: None,
        settings: Settings::default(),
        service_urls: Vec::new(),
        migrations: Vec::new(),
    })
    .await?;
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

/// Runs a bench subcommand.
pub async fn run(json: bool, cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Export(args) => return crate::bench::nsc::bench_export(json, args).await,
        BenchCmd::Devices(args) => return crate::bench::devices::bench(json, args).await,
        BenchCmd::Tenants(args) => return crate::bench::tenants::bench(json, args).await,
        BenchCmd::Governance(args) => return crate::bench::governance::bench(json, args).await,
        BenchCmd::Chat(args) => return crate::bench::chat::bench(json, args).await,
        BenchCmd::Issue { count } => {
            let r = measure_issue(count)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "issued {} user JWTs: {:.0}/s\nraw Ed25519 signatures over {} bytes: {:.0}/s\nratio issue/raw: {:.3}",
                    r.count, r.issue_per_s, r.message_bytes, r.raw_sign_per_s, r.ratio
                );
            }
        }
        BenchCmd::UserAdd { count } => {
            let r = measure_user_add(count, json).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} user add operations on SQLite: {:.2} s ({:.1} ms each, {:.0}/s)",
                    r.count, r.seconds, r.ms_per_op, r.per_s
                );
            }
        }
    }
    Ok(())
}
