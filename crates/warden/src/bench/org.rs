//! `warden bench org`: `warden org apply` of an organisation of N people in one unit
//! on a fresh store, timed against the Ed25519 ceiling of the same cores measured in
//! the same run (a user costs at least one key generated and one JWT signed).

use std::time::Instant;

use anyhow::anyhow;
use nats_jwt::{KeyKind, KeyPair};
use serde::Serialize;
use serde_json::json;
use warden_core::org::OrgSpec;

use crate::cli::print_json;

/// Arguments of `warden bench org`.
#[derive(Debug, Clone)]
pub struct OrgBenchOptions {
    /// People (each a Service person, so each becomes a user) in the one unit.
    pub people: u32,
    /// Use this (empty) PostgreSQL database instead of a fresh SQLite file.
    pub pg: Option<String>,
}

/// Result of `warden bench org`.
#[derive(Debug, Serialize)]
pub struct OrgBenchReport {
    /// Database backend.
    pub backend: String,
    /// People applied (users created).
    pub people: u32,
    /// Threads the signing ceiling ran on (the cores this process may use).
    pub cores: usize,
    /// Wall time of the apply (validation, plan, keys, JWTs, rows, ledger, commit).
    pub apply_seconds: f64,
    /// Users created per second by the apply.
    pub users_per_s: f64,
    /// Wall time of applying the same spec again (an empty plan: nothing written).
    pub reapply_seconds: f64,
    /// Key pairs generated (nkeys: one scalar multiplication each) and token-sized
    /// messages signed per second, on every core.
    pub raw_keygen_sign_per_s: f64,
    /// Token-sized messages signed per second, on every core (no key generation).
    pub raw_sign_per_s: f64,
    /// users_per_s / raw_keygen_sign_per_s.
    pub ratio: f64,
    /// Size of a user JWT's signed part (header.payload), bytes.
    pub message_bytes: usize,
    /// Whether the ledger's hash chain verified after the apply.
    pub ledger_intact: bool,
}

/// The organisation the bench applies: one unit, `people` Service persons, each with a
/// domain of its own (so each user's permissions differ, as in a real organisation).
pub fn spec(people: u32) -> anyhow::Result<OrgSpec> {
    let people: Vec<_> = (0..people)
        .map(|i| {
            json!({
                "id": format!("p{i:06}"),
                "name": format!("person-{i:06}"),
                "roles": ["Service"],
                "units": ["staff"],
                "domain": format!("d{i:06}"),
            })
        })
        .collect();
    Ok(serde_json::from_value(json!({
        "organization": {"name": "bench"},
        "units": [{"id": "staff", "name": "Staff", "type": "team"}],
        "people": people,
    }))?)
}

/// `count` iterations of `work` spread over `threads` threads; per second.
fn ceiling(threads: usize, count: u32, work: impl Fn() -> usize + Sync) -> f64 {
    let per = (count as usize).div_ceil(threads);
    let start = Instant::now();
    let sink: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| (0..per).map(|_| work()).fold(0usize, usize::wrapping_add)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .fold(0, usize::wrapping_add)
    });
    std::hint::black_box(sink);
    (per * threads) as f64 / start.elapsed().as_secs_f64().max(1e-9)
}

/// Runs `warden bench org`.
pub async fn bench(json: bool, args: OrgBenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("warden-bench-org-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), args.pg.as_deref(), false).await?;
    let spec = spec(args.people)?;
    let bar = crate::bench::progress(json, 0, "org apply");
    let t0 = Instant::now();
    let plan = w.org_apply_with_progress(&spec, false, &bar).await?;
    let apply_seconds = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if plan.steps.len() != args.people as usize + 1 {
        return Err(anyhow!(
            "the plan had {} steps, not one account and {} users",
            plan.steps.len(),
            args.people
        ));
    }
    let t1 = Instant::now();
    let again = w.org_apply(&spec, false).await?;
    let reapply_seconds = t1.elapsed().as_secs_f64();
    if again.applied || !again.steps.is_empty() {
        return Err(anyhow!("applying the same spec again changed something"));
    }
    let ledger_intact = w.verify_ledger().await?.is_intact();

    // The ceiling: the same work a user needs at the least, on every core.
    let users = w.list_users("STAFF").await?;
    let jwt = users
        .first()
        .and_then(|u| u.jwt.clone())
        .ok_or_else(|| anyhow!("no user was created"))?;
    let message = jwt.as_bytes()[..jwt.rfind('.').unwrap_or(jwt.len())].to_vec();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let signer = KeyPair::generate(KeyKind::Account);
    let count = args.people.max(1_000);
    let raw_keygen_sign_per_s = ceiling(cores, count, || {
        let kp = nkeys::KeyPair::new(nkeys::KeyPairType::User);
        kp.public_key().len() + signer.sign(&message).len()
    });
    let raw_sign_per_s = ceiling(cores, count, || signer.sign(&message).len());
    let users_per_s = f64::from(args.people) / apply_seconds.max(1e-9);
    let out = OrgBenchReport {
        backend: w.backend_name().to_string(),
        people: args.people,
        cores,
        apply_seconds,
        users_per_s,
        reapply_seconds,
        raw_keygen_sign_per_s,
        raw_sign_per_s,
        ratio: users_per_s / raw_keygen_sign_per_s,
        message_bytes: message.len(),
        ledger_intact,
    };
    w.close().await;
    if json {
        return print_json(&out);
    }
    println!(
        "org apply of {} people in one unit on {}: {:.2} s = {:.0} users/s; applied again (nothing to change) in {:.2} s; ledger {}\n\
         ceiling on {} cores: {:.0} key pairs + signatures/s, {:.0} signatures/s over {} bytes; ratio users/s ÷ (key pair + signature)/s = {:.3}",
        out.people,
        out.backend,
        out.apply_seconds,
        out.users_per_s,
        out.reapply_seconds,
        if out.ledger_intact {
            "intact"
        } else {
            "BROKEN"
        },
        out.cores,
        out.raw_keygen_sign_per_s,
        out.raw_sign_per_s,
        out.message_bytes,
        out.ratio
    );
    Ok(())
}
