//! `warden bench export`: an organisation exported as an nsc store, timed.

use std::path::Path;
use std::time::Instant;

use nats_jwt::Subject;
use serde::Serialize;
use warden_core::{AccountSpec, UserSpec};
use warden_store::{MasterKey, Store};

use warden_ops::Warden;
use warden_ops::nsc::export;
use warden_ops::nsc::*;

/// Arguments of `warden bench export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Units (accounts).
    pub units: u32,
    /// Users in all.
    pub users: u32,
}

/// Result of `warden bench export`.
#[derive(Debug, Serialize)]
pub struct ExportBenchReport {
    /// Units (accounts) besides the operator's own and the system account.
    pub units: u32,
    /// Users in those units.
    pub users: u32,
    /// Time to build the organisation in a fresh SQLite store, seconds.
    pub build_seconds: f64,
    /// Wall time of the nsc export, seconds (read + plan + write).
    pub export_seconds: f64,
    /// Of which: reading the store in one transaction (rows, unsealed seeds).
    pub read_seconds: f64,
    /// Of which: planning the files (creds formatting, manifest).
    pub plan_seconds: f64,
    /// Of which: writing the files.
    pub write_seconds: f64,
    /// Wall time of importing the export into an empty store (`warden import nsc`).
    pub import_seconds: f64,
    /// Files the export wrote.
    pub files: usize,
    /// Files written per second.
    pub files_per_s: f64,
    /// Users exported per second.
    pub users_per_s: f64,
    /// Bytes written.
    pub bytes: u64,
}

fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += tree_bytes(&p);
            } else if let Ok(m) = p.metadata() {
                total += m.len();
            }
        }
    }
    total
}

/// Builds an organisation of `units` accounts and `users` users (spread evenly,
/// each publishing to its own domain) in a temporary SQLite store through the
/// operations layer (one transaction per unit), then times its nsc export.
pub async fn measure_export(
    units: u32,
    users: u32,
    json: bool,
) -> anyhow::Result<ExportBenchReport> {
    let units = units.max(1);
    let dir = tempfile::tempdir()?;
    let w = crate::bench::fresh_warden(dir.path(), None, false).await?;
    let bar = crate::bench::progress(json, u64::from(users), "build");
    let start = Instant::now();
    for u in 0..units {
        let per = users / units + u32::from(u < users % units);
        let own = Subject::new(&format!("bench.org.unit{u}.>"))?;
        let mut list = Vec::with_capacity(per as usize);
        for i in 0..per {
            let mut spec = UserSpec::default();
            spec.permissions.publish.allow = vec![own.clone()];
            spec.permissions.subscribe.allow = vec![own.clone(), Subject::new("_INBOX.>")?];
            spec.payload = 1 << 20;
            list.push((format!("service_{u}_{i}"), spec));
        }
        w.add_account_with_users(&format!("UNIT_{u:03}"), AccountSpec::default(), list, &bar)
            .await?;
    }
    bar.finish_and_clear();
    let build_seconds = start.elapsed().as_secs_f64();
    let out = dir.path().join("export");
    // The same steps as `Warden::export`, timed one by one.
    let start = Instant::now();
    let previous = export::check_target(&out)?;
    let snap = w.export_snapshot().await?;
    let read_seconds = start.elapsed().as_secs_f64();
    let (files, manifest) = export::plan(&snap, ExportFormat::Nsc)?;
    let plan_seconds = start.elapsed().as_secs_f64() - read_seconds;
    let bar = crate::bench::progress(json, files.len() as u64, "export");
    let report = export::write_export(
        &out,
        ExportFormat::Nsc,
        &snap,
        files,
        &manifest,
        previous,
        &bar,
    )?;
    bar.finish_and_clear();
    let export_seconds = start.elapsed().as_secs_f64();
    let write_seconds = export_seconds - read_seconds - plan_seconds;
    // And back: the exported store imported into a second, empty store.
    let url2 = format!("sqlite://{}/import.db", dir.path().display());
    let store2 = Store::open(&url2, MasterKey::from_bytes(rand::random())).await?;
    let mut w2 = Warden::open(store2, warden_ops::Actor::operator("bench")).await?;
    let start = Instant::now();
    let imported = w2
        .import_nsc_with_progress(
            &out.join("stores"),
            &out.join("keys"),
            &crate::bench::progress(json, 0, "import"),
        )
        .await?;
    let import_seconds = start.elapsed().as_secs_f64();
    if imported.users != report.users {
        anyhow::bail!(
            "import brought back {} users of {}",
            imported.users,
            report.users
        );
    }
    let secs = export_seconds.max(1e-9);
    Ok(ExportBenchReport {
        units,
        users,
        build_seconds,
        export_seconds,
        read_seconds,
        plan_seconds,
        write_seconds,
        import_seconds,
        files: report.files,
        files_per_s: report.files as f64 / secs,
        users_per_s: report.users as f64 / secs,
        bytes: tree_bytes(&out),
    })
}

/// Runs `warden bench export`.
pub async fn bench_export(json: bool, args: ExportOptions) -> anyhow::Result<()> {
    let r = measure_export(args.units, args.users, json).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "organisation of {} units and {} users built in {:.2} s\nnsc export: {} files ({:.1} MB) in {:.2} s ({:.0} files/s, {:.0} users/s)\n  read {:.2} s, plan {:.2} s, write {:.2} s\nimport of that export into an empty store: {:.2} s",
            r.units,
            r.users,
            r.build_seconds,
            r.files,
            r.bytes as f64 / 1e6,
            r.export_seconds,
            r.files_per_s,
            r.users_per_s,
            r.read_seconds,
            r.plan_seconds,
            r.write_seconds,
            r.import_seconds
        );
    }
    Ok(())
}
