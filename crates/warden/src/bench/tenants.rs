//! `warden bench tenants`: tenants created and pushed to a real nats-server, timed.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use warden_core::tenant::TenantLimitsEdit;

use warden_ops::Warden;

use crate::cli::print_json;

/// Arguments of `warden bench tenants`.
#[derive(Args, Debug)]
pub struct BenchTenantsArgs {
    /// Tenants to add.
    #[arg(long, default_value_t = 1_000)]
    pub count: u32,
    /// nats-server binary the bench starts.
    #[arg(long, default_value = "nats-server")]
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
}

/// Runs `warden bench tenants`: N tenants added and pushed to a nats-server the bench
/// starts (Warden's rendered config, operator mode, JetStream on).
pub async fn bench(json: bool, args: BenchTenantsArgs) -> anyhow::Result<()> {
    use anyhow::anyhow;
    use std::time::{Duration, Instant};

    let dir = tempfile::Builder::new()
        .prefix("warden-bench-tenants-")
        .tempdir()?;
    let url = format!("sqlite://{}/warden.db", dir.path().display());
    let store = warden_store::Store::open(&url, warden_store::MasterKey::generate()).await?;
    let mut w = Warden::open(store, warden_ops::Actor::operator("bench")).await?;
    w.init(warden_ops::InitOptions {
        operator: "BENCH".into(),
        account: None,
        user: None,
        settings: Default::default(),
        service_urls: vec![],
        migrations: warden_core::default_migrations(warden_core::bootstrap::DEFAULT_SERVICE_PREFIX),
    })
    .await?;

    // The server: Warden's config, started and waited for (bounded).
    let version = std::process::Command::new(&args.nats_server)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", args.nats_server.display()))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let op = w.operator().await?;
    let mut cfg = warden_nats::config::ServerConfig::new(
        format!("127.0.0.1:{port}"),
        op.jwt,
        op.system_account,
        dir.path().join("resolver"),
    );
    cfg.preload = w.account_jwts().await?;
    cfg.jetstream_dir = Some(dir.path().join("js"));
    let conf = dir.path().join("nats.conf");
    std::fs::write(&conf, cfg.render())?;
    let log = std::fs::File::create(dir.path().join("nats.log"))?;
    let mut child = std::process::Command::new(&args.nats_server)
        .arg("-c")
        .arg(&conf)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", args.nats_server.display()))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!("nats-server did not start"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = async {
        let rcfg = warden_ops::relay::RelayConfig::new(format!("nats://127.0.0.1:{port}"));
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
        anyhow::Ok(BenchTenantsReport {
            count: args.count,
            nats_server: version.clone(),
            add_seconds,
            push_seconds,
            accounts_pushed: drained.accounts_pushed,
            failed: drained.failed + last.failed,
            first_error: drained.first_error.or(last.first_error),
            platform_jwt_bytes_first,
            platform_jwt_bytes,
            one_more_add_ms,
            one_more_push_ms,
        })
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    w.store().close().await;
    let out = result?;
    if json {
        return print_json(&out);
    }
    println!(
        "{} tenants with {}: adds {:.2}s, pushes {:.2}s ({} accounts pushed, {} failed{})\nplatform JWT {} bytes with 1 tenant, {} bytes with {}; one more tenant: add {:.1} ms, push {:.1} ms",
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
    );
    Ok(())
}
