//! `warden bench devices`: a fleet provisioned and pushed to a real nats-server, timed:
//! the store phase (keys, activations and JWTs on every core, rows in multi-row
//! statements), the account pushes, and the device streams apart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::anyhow;
use serde::Serialize;

use warden_ops::device::*;

use crate::cli::print_json;

/// Arguments of `warden bench devices`.
#[derive(Debug, Clone)]
pub struct DevicesOptions {
    /// Devices to provision.
    pub count: u32,
    /// Use this (empty) PostgreSQL database instead of a fresh SQLite file.
    pub pg: Option<String>,
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
    /// Devices revoked afterwards (to measure the hub JWT).
    pub revoke: u32,
    /// Outbox rows the relay reads per batch (`None`: the relay's default).
    pub batch: Option<i64>,
}

// ---------------------------------------------------------------------------
// Benchmark

/// Result of `bench devices`.
#[derive(Debug, Serialize)]
pub struct BenchDevicesReport {
    /// Database backend.
    pub backend: String,
    /// Devices provisioned.
    pub count: u32,
    /// Seconds to write them (store + keys + JWTs + activations), one transaction.
    pub store_seconds: f64,
    /// Seconds for the relay to push every account and create every stream.
    pub push_seconds: f64,
    /// Of which: creating the streams.
    pub stream_seconds: f64,
    /// Of which: everything else (account pushes, change-stream events, marking the
    /// outbox), i.e. `push_seconds - stream_seconds`.
    pub account_push_seconds: f64,
    /// `store_seconds + account_push_seconds`: provisioned and known to the resolver,
    /// streams not counted.
    pub provisioned_seconds: f64,
    /// Devices per second over `provisioned_seconds`.
    pub provisioned_per_s: f64,
    /// Devices per second over `store_seconds`.
    pub store_per_s: f64,
    /// Total wall time.
    pub total_seconds: f64,
    /// Devices per second, end to end.
    pub devices_per_s: f64,
    /// Accounts pushed by the relay.
    pub accounts_pushed: usize,
    /// Streams created.
    pub streams_created: usize,
    /// Outbox deliveries that failed (e.g. stream stores beyond the server's file limit).
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// nats-server version line.
    pub nats_server: String,
    /// Hub account JWT size with no device revoked, bytes.
    pub hub_jwt_bytes: usize,
    /// Devices revoked afterwards.
    pub revoked: u32,
    /// Hub account JWT size after those revocations, bytes.
    pub hub_jwt_bytes_revoked: usize,
}

/// Runs `warden bench devices`.
pub async fn bench(json: bool, args: DevicesOptions) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("warden-bench-devices-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), args.pg.as_deref(), true).await?;
    let mut server =
        crate::bench::server::BenchServer::start(&w, &args.nats_server, dir.path()).await?;
    let mut cfg = warden_ops::relay::RelayConfig::new(server.url.clone());
    if let Some(batch) = args.batch {
        cfg.batch = batch;
    }
    let conns = warden_ops::relay::Connections::open(&w, &cfg).await?;
    warden_ops::relay::drain_all(&w, &conns, &cfg).await?;

    let devices: Vec<NewDevice> = (0..args.count)
        .map(|i| NewDevice {
            id: format!("dev-{i:06}"),
            meta: BTreeMap::new(),
        })
        .collect();
    let bar = crate::bench::progress(json, devices.len() as u64, "adding devices");
    let t0 = Instant::now();
    let (report, _creds) = w.add_devices_bulk(&devices, |n| bar.inc(n)).await?;
    let store_seconds = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let t1 = Instant::now();
    let drained = warden_ops::relay::drain_all(&w, &conns, &cfg).await?;
    let push_seconds = t1.elapsed().as_secs_f64();
    let total = t0.elapsed().as_secs_f64();
    if drained.accounts_pushed < report.added.len() {
        return Err(anyhow!(
            "only {} of {} accounts pushed: {}",
            drained.accounts_pushed,
            report.added.len(),
            drained.first_error.as_deref().unwrap_or("?")
        ));
    }
    let provisioned_seconds = store_seconds + (push_seconds - drained.stream_seconds).max(0.0);
    let fleet = w.fleet_settings().await?;
    let hub_jwt_bytes = w.account(&fleet.hub_account).await?.jwt.len();
    for d in report.added.iter().take(args.revoke as usize) {
        w.revoke_device(d).await?;
    }
    warden_ops::relay::drain_all(&w, &conns, &cfg).await?;
    let hub_jwt_bytes_revoked = w.account(&fleet.hub_account).await?.jwt.len();
    let out = BenchDevicesReport {
        backend: w.backend_name().to_string(),
        count: args.count,
        store_seconds,
        push_seconds,
        stream_seconds: drained.stream_seconds,
        account_push_seconds: (push_seconds - drained.stream_seconds).max(0.0),
        provisioned_seconds,
        provisioned_per_s: f64::from(args.count) / provisioned_seconds.max(1e-9),
        store_per_s: f64::from(args.count) / store_seconds.max(1e-9),
        total_seconds: total,
        devices_per_s: args.count as f64 / total,
        accounts_pushed: drained.accounts_pushed,
        streams_created: drained.streams_created,
        failed: drained.failed,
        first_error: drained.first_error.clone(),
        nats_server: server.version.clone(),
        hub_jwt_bytes,
        revoked: args.revoke.min(args.count),
        hub_jwt_bytes_revoked,
    };
    server.stop();
    w.close().await;
    if json {
        return print_json(&out);
    }
    println!(
        "{} devices on {} with {}:\n  store + JWTs {:.2}s ({:.0} devices/s), account pushes {:.2}s: provisioned in {:.2}s = {:.0} devices/s\n  streams {:.2}s ({} created, {} failed deliveries); total {:.2}s = {:.0} devices/s\nhub JWT {} bytes; after {} revocations {} bytes",
        out.count,
        out.backend,
        out.nats_server,
        out.store_seconds,
        out.store_per_s,
        out.account_push_seconds,
        out.provisioned_seconds,
        out.provisioned_per_s,
        out.stream_seconds,
        out.streams_created,
        out.failed,
        out.total_seconds,
        out.devices_per_s,
        out.hub_jwt_bytes,
        out.revoked,
        out.hub_jwt_bytes_revoked
    );
    Ok(())
}
