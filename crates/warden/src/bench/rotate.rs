//! `warden bench rotate`: an operator signing key rotation over N accounts on a real
//! nats-server (full resolver), timed, against the way nsc users do it by hand — each
//! account re-signed and pushed on its own (`nsc edit account` + `nsc push -a`: one
//! transaction and one push request per account) — measured in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use warden_core::AccountSpec;
use warden_ops::operator_keys::{RotateOptions, RotateStep};

use crate::bench::server::BenchServer;
use crate::cli::print_json;

/// Arguments of `warden bench rotate`.
#[derive(Debug, Clone)]
pub struct RotateOptionsBench {
    /// Accounts to create (besides Warden's own).
    pub accounts: u32,
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
}

/// Result of `warden bench rotate`.
#[derive(Debug, Serialize)]
pub struct BenchRotateReport {
    /// Accounts created by the bench.
    pub accounts: u32,
    /// Accounts re-signed by the rotation (the bench's and Warden's own).
    pub accounts_resigned: usize,
    /// nats-server version.
    pub nats_server: String,
    /// Seconds to create the accounts (one transaction each).
    pub create_seconds: f64,
    /// Seconds of the first push of every account.
    pub first_push_seconds: f64,
    /// Seconds of the rotation step that re-signs (servers' trust checked, every account
    /// re-signed in one transaction, all pushed, every account looked up on the server,
    /// the old key retired).
    pub warden_seconds: f64,
    /// Seconds of the same re-sign and push done the nsc way: per account, one transaction
    /// and one push request answered before the next.
    pub nsc_way_seconds: f64,
    /// nsc_way_seconds / warden_seconds.
    pub ratio: f64,
    /// Pushes that failed in the nsc way.
    pub nsc_way_failed: usize,
}

/// Runs `warden bench rotate`.
pub async fn bench(json: bool, args: RotateOptionsBench) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("warden-bench-rotate-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, true).await?;

    let bar = crate::bench::progress(json, u64::from(args.accounts), "accounts");
    let t = Instant::now();
    for i in 0..args.accounts {
        w.add_account_with_users(
            &format!("ACC_{i:06}"),
            AccountSpec::default(),
            Vec::new(),
            &warden_ops::progress::Quiet,
        )
        .await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let create_seconds = t.elapsed().as_secs_f64();

    let mut server = BenchServer::start(&w, &args.nats_server, dir.path()).await?;
    let version = server.version.clone();
    let result = async {
        let t = Instant::now();
        let first = w.push_outbox(&server.url).await?;
        anyhow::ensure!(
            first.failed == 0,
            "first push failed: {:?}",
            first.first_error
        );
        let first_push_seconds = t.elapsed().as_secs_f64();

        // Start: the new key joins the operator JWT; the server restarts to trust it.
        let started = w
            .rotate_operator_signing_key(&RotateOptions::default())
            .await?;
        anyhow::ensure!(started.step == RotateStep::Started, "{:?}", started.step);
        server.stop();
        server = BenchServer::start(&w, &args.nats_server, dir.path()).await?;
        let opts = RotateOptions {
            nats: Some(server.url.clone()),
            timeout: Duration::from_secs(30),
            ..RotateOptions::default()
        };

        // Warden: one call re-signs all in one transaction, pushes, confirms, retires.
        let t = Instant::now();
        let r = w.rotate_operator_signing_key(&opts).await?;
        let warden_seconds = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            r.step == RotateStep::OldKeyRemoved,
            "rotation stopped at {:?}: {:?}",
            r.step,
            r.waiting_for
        );

        // The nsc way: each account re-signed in its own transaction, then pushed with
        // one request answered before the next account.
        let names: Vec<String> = w
            .account_jwts()
            .await?
            .into_iter()
            .map(|(n, _, _)| n)
            .collect();
        let link =
            warden_ops::drift::ResolverLink::new(server.url.clone(), Duration::from_secs(30));
        let bar = crate::bench::progress(json, names.len() as u64, "nsc way");
        let mut failed = 0;
        let t = Instant::now();
        for name in &names {
            w.resign_account_now(name).await?;
            let pushed = w.push_accounts(&link, Some(name)).await?;
            failed += pushed.iter().filter(|p| !p.ok).count();
            bar.inc(1);
        }
        let nsc_way_seconds = t.elapsed().as_secs_f64();
        bar.finish_and_clear();
        anyhow::Ok(BenchRotateReport {
            accounts: args.accounts,
            accounts_resigned: r.accounts_resigned,
            nats_server: version.clone(),
            create_seconds,
            first_push_seconds,
            warden_seconds,
            nsc_way_seconds,
            ratio: nsc_way_seconds / warden_seconds.max(1e-9),
            nsc_way_failed: failed,
        })
    }
    .await;
    server.stop();
    w.close().await;
    let out = result?;
    if json {
        return print_json(&out);
    }
    println!(
        "{} accounts on {}: created in {:.1}s, first push {:.1}s\nrotation (re-sign {} in one transaction, push, confirm on the server, retire the old key): {:.2}s\nnsc way (one transaction + one push per account): {:.2}s ({} failed)\nratio {:.1}x",
        out.accounts,
        out.nats_server,
        out.create_seconds,
        out.first_push_seconds,
        out.accounts_resigned,
        out.warden_seconds,
        out.nsc_way_seconds,
        out.nsc_way_failed,
        out.ratio
    );
    Ok(())
}
