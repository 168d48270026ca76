//! `warden bench tenants`: tenants created one by one and then in bulk, and pushed to a
//! real nats-server, timed.

use std::path::PathBuf;

use serde::Serialize;
use warden_core::tenant::TenantLimitsEdit;

use crate::bench::server::BenchServer;

use crate::cli::print_json;

/// Arguments of `warden bench tenants`.
#[derive(Debug, Clone)]
pub struct TenantsOptions {
    /// Tenants to add.
    pub count: u32,
    /// nats-server binary the bench starts.
    pub nats_server: PathBuf,
}

/// Result of `warden bench tenants`.
#[derive(Debug, Serialize)]
pub struct BenchTenantsReport {
    /// Tenants added (one operation each).
    pub count: u32,
    /// nats-server version.
    pub nats_server: String,
    /// Seconds for the adds (store, the tenant's account JWT; the platform is created
    /// with the first and not touched after).
    pub add_seconds: f64,
    /// Seconds to push the outbox afterwards.
    pub push_seconds: f64,
    /// Accounts pushed / failed outbox rows.
    pub accounts_pushed: usize,
    /// Outbox rows that failed.
    pub failed: usize,
    /// First delivery error, if any.
    pub first_error: Option<String>,
    /// Size of the platform account JWT with one tenant.
    pub platform_jwt_bytes_first: usize,
    /// Size of the platform account JWT with `count` tenants.
    pub platform_jwt_bytes: usize,
    /// Milliseconds to add one more tenant at `count` (store only).
    pub one_more_add_ms: f64,
    /// Milliseconds to push it (its account).
    pub one_more_push_ms: f64,
    /// Seconds to add `count` more tenants in one bulk operation (`tenant add --from`:
    /// keys and JWTs on every core, multi-row writes, one transaction).
    pub bulk_add_seconds: f64,
    /// Seconds to push those afterwards.
    pub bulk_push_seconds: f64,
    /// `add_seconds / bulk_add_seconds`: how many times faster the bulk path adds.
    pub bulk_speedup: f64,
}

/// Runs `warden bench tenants`: N tenants added and pushed to a nats-server the bench
/// starts (Warden's rendered config, operator mode, JetStream on).
pub async fn bench(json: bool, args: TenantsOptions) -> anyhow::Result<()> {
    use std::time::Instant;

    let dir = tempfile::Builder::new()
        .prefix("warden-bench-tenants-")
        .tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, true).await?;

    // The server: Warden's config, started and waited for (bounded).
    let mut server = BenchServer::start(&w, &args.nats_server, dir.path()).await?;
    let version = server.version.clone();
    let result = async {
        let rcfg = warden_ops::relay::RelayConfig::new(server.url.clone());
        let conns = warden_ops::relay::Connections::open(&w, &rcfg).await?;
        warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;
        // Small JetStream reservations: the bench measures accounts, not disk.
        let limits = TenantLimitsEdit {
            js_disk: Some(1_000_000),
            js_mem: Some(1_000_000),
            ..Default::default()
        };
        let bar = crate::bench::progress(json, u64::from(args.count), "tenants");
        let platform = w.tenant_settings().await?.platform_account;
        let mut platform_jwt_bytes_first = 0;
        let t0 = Instant::now();
        for i in 0..args.count {
            w.add_tenant(&format!("t{i:06}"), &limits).await?;
            if i == 0 {
                platform_jwt_bytes_first = w.account(&platform).await?.jwt.len();
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let add_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let drained = warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;
        let push_seconds = t1.elapsed().as_secs_f64();
        let platform_jwt_bytes = w.account(&platform).await?.jwt.len();
        let t2 = Instant::now();
        w.add_tenant("one-more", &limits).await?;
        let one_more_add_ms = t2.elapsed().as_secs_f64() * 1000.0;
        let t3 = Instant::now();
        let last = warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;
        let one_more_push_ms = t3.elapsed().as_secs_f64() * 1000.0;
        let more: Vec<warden_ops::tenant::NewTenant> = (0..args.count)
            .map(|i| warden_ops::tenant::NewTenant {
                slug: format!("b{i:06}"),
                limits: limits.clone(),
            })
            .collect();
        let bar = crate::bench::progress(json, u64::from(args.count), "tenants in bulk");
        let t4 = Instant::now();
        let report = w.add_tenants_bulk(&more, |n| bar.inc(n)).await?;
        let bulk_add_seconds = t4.elapsed().as_secs_f64();
        bar.finish_and_clear();
        anyhow::ensure!(
            report.added.len() == more.len(),
            "the bulk add added {} of {} tenants",
            report.added.len(),
            more.len()
        );
        let t5 = Instant::now();
        let bulk = warden_ops::relay::drain_all(&w, &conns, &rcfg).await?;
        let bulk_push_seconds = t5.elapsed().as_secs_f64();
        anyhow::Ok(BenchTenantsReport {
            count: args.count,
            nats_server: version.clone(),
            add_seconds,
            push_seconds,
            accounts_pushed: drained.accounts_pushed,
            failed: drained.failed + last.failed + bulk.failed,
            first_error: drained
                .first_error
                .or(last.first_error)
                .or(bulk.first_error),
            platform_jwt_bytes_first,
            platform_jwt_bytes,
            one_more_add_ms,
            one_more_push_ms,
            bulk_add_seconds,
            bulk_push_seconds,
            bulk_speedup: add_seconds / bulk_add_seconds.max(f64::EPSILON),
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
        "{} tenants with {}: adds {:.2}s, pushes {:.2}s ({} accounts pushed, {} failed{})\nplatform JWT {} bytes with 1 tenant, {} bytes with {}; one more tenant: add {:.1} ms, push {:.1} ms\n{} more in bulk: adds {:.2}s ({:.1}x the one-by-one adds), pushes {:.2}s",
        out.count,
        out.nats_server,
        out.add_seconds,
        out.push_seconds,
        out.accounts_pushed,
        out.failed,
        out.first_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default(),
        out.platform_jwt_bytes_first,
        out.platform_jwt_bytes,
        out.count,
        out.one_more_add_ms,
        out.one_more_push_ms,
        out.count,
        out.bulk_add_seconds,
        out.bulk_speedup,
        out.bulk_push_seconds,
    );
    Ok(())
}
