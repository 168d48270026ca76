//! `warden export` and `warden import nsc`: the nsc store and keystore layout, both
//! ways, and `warden bench export`.
//!
//! - [`export`]: the store written out as an nsc data store + keystore, or as flat
//!   creds, with a deterministic `manifest.json`.
//! - [`import`]: an existing nsc operator adopted into an empty Warden store.
//!
//! The layout facts (file names, contents, modes) are nsc 2.7's; see `docs/nsc.md`.

pub mod export;
pub mod import;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nats_jwt::{KeyKind, KeyPair, Subject};
use serde::Serialize;
use warden_core::{AccountSpec, UserName, UserSpec};
use warden_store::{MasterKey, Store};

pub use export::{ExportFormat, ExportReport, Manifest};
pub use import::{ImportReport, NotCarried};

use crate::ops::{InitOptions, OpsError, Settings, Warden};

/// What can go wrong in an export or an import.
#[derive(Debug, thiserror::Error)]
pub enum NscError {
    /// Bad input: a directory that is not what it must be (exit code 2).
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The operation failed in the operations layer or the store.
    #[error(transparent)]
    Ops(#[from] OpsError),
}

impl NscError {
    /// Whether this is the caller's mistake (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            NscError::Invalid(_) => true,
            NscError::Ops(e) => e.is_usage(),
            NscError::Io { .. } => false,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> NscError {
        NscError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<warden_store::StoreError> for NscError {
    fn from(e: warden_store::StoreError) -> Self {
        NscError::Ops(OpsError::from(e))
    }
}

/// Result of an export or import.
pub type Result<T, E = NscError> = std::result::Result<T, E>;

/// Maps an error to the CLI's: usage errors exit 2, the rest 1.
fn cli_error(e: NscError) -> anyhow::Error {
    if e.is_usage() {
        crate::cli::UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// `warden export …`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Layout: `nsc` (data store + keystore) or `flat` (one creds file per user).
    #[arg(long, value_enum, default_value_t = ExportFormat::Nsc)]
    pub format: ExportFormat,
    /// Output directory: missing, empty, or a previous Warden export (rewritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `warden import …`
#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Import an nsc operator into an empty Warden store.
    Nsc {
        /// The nsc data store: the operator directory, or a `stores` root holding one.
        #[arg(long, value_name = "DIR")]
        store: PathBuf,
        /// The nsc keystore (the directory holding `keys/` and `creds/`).
        #[arg(long, value_name = "DIR")]
        keys: PathBuf,
    },
}

/// Arguments of `warden bench export`.
#[derive(Args, Debug)]
pub struct BenchExportArgs {
    /// Units (accounts).
    #[arg(long, default_value_t = 100)]
    pub units: u32,
    /// Users in all.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
}

fn progress(show: bool, len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if show {
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Runs `warden export`.
pub async fn run_export(json: bool, args: ExportArgs, w: &Warden) -> anyhow::Result<()> {
    let report = w
        .export_with_progress(args.format, &args.out, crate::cli::show_progress(json))
        .await
        .map_err(cli_error)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "exported operator {} ({}) to {}: {} accounts, {} users, {} seeds, {} creds, {} files{}{}",
            report.operator,
            match report.format {
                ExportFormat::Nsc => "nsc",
                ExportFormat::Flat => "flat",
            },
            report.out.display(),
            report.accounts,
            report.users,
            report.seeds,
            report.creds,
            report.files,
            if report.replaced_previous {
                format!(
                    " (previous export rewritten, {} stale files removed)",
                    report.removed
                )
            } else {
                String::new()
            },
            if report.users_without_seed.is_empty() {
                String::new()
            } else {
                format!(
                    "\nno seed in Warden, so no creds for: {}",
                    report.users_without_seed.join(", ")
                )
            }
        );
    }
    Ok(())
}

/// Checks the directories named by `warden import …` before any database is opened,
/// so that a mistyped path leaves no new, empty database behind.
pub fn check_import_dirs(cmd: &ImportCmd) -> anyhow::Result<()> {
    let ImportCmd::Nsc { store, keys } = cmd;
    import::operator_dir(store).map_err(cli_error)?;
    import::keystore_dir(keys).map_err(cli_error)?;
    Ok(())
}

/// Runs `warden import …` on a database that may be empty.
pub async fn run_import(json: bool, cmd: ImportCmd, mut w: Warden) -> anyhow::Result<()> {
    let ImportCmd::Nsc { store, keys } = cmd;
    let report = w
        .import_nsc_with_progress(&store, &keys, crate::cli::show_progress(json))
        .await
        .map_err(cli_error)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "imported operator {} ({}) from {}\nsigning key {}  system account {}  naming policy: any\n",
        report.operator,
        report.operator_public_key,
        report.store.display(),
        report.signing_key,
        report.system_account
    );
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "account",
        "public key",
        "seed",
        "signing keys (seeds)",
        "users (seeds)",
        "revoked",
    ]);
    for a in &report.accounts {
        t.add_row(vec![
            format!("{}{}", a.name, if a.system { " (system)" } else { "" }),
            a.public_key.clone(),
            if a.seed { "yes" } else { "MISSING" }.to_string(),
            format!("{} ({})", a.signing_keys, a.signing_key_seeds),
            format!("{} ({})", a.users, a.user_seeds),
            a.revoked_users.to_string(),
        ]);
    }
    println!("{t}");
    println!("{} users, {} seeds sealed", report.users, report.seeds);
    if report.not_carried.is_empty() {
        println!("everything was carried");
    } else {
        println!("\nnot carried ({}):", report.not_carried.len());
        for p in &report.not_carried {
            println!("  {}: {}", p.entity, p.issue);
        }
    }
    Ok(())
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
    let url = format!("sqlite://{}/warden.db", dir.path().display());
    let store = Store::open(&url, MasterKey::from_bytes(rand::random())).await?;
    let mut w = Warden::open(store, "bench").await?;
    w.init(InitOptions {
        operator: "BENCH".into(),
        account: None,
        user: None,
        settings: Settings::default(),
        service_urls: Vec::new(),
        migrations: Vec::new(),
    })
    .await?;
    let show = crate::cli::show_progress(json);
    let bar = progress(show, u64::from(users), "build");
    let start = Instant::now();
    let naming = w.settings().naming;
    for u in 0..units {
        let per = users / units + u32::from(u < users % units);
        let mut tx = w.store().begin().await?;
        let op = w.operator_row(&mut tx).await?;
        let name = naming.account(&format!("UNIT_{u:03}"))?;
        let acc = w
            .create_account(
                &mut tx,
                &op,
                KeyPair::generate(KeyKind::Account),
                &name,
                AccountSpec::default(),
            )
            .await?;
        for i in 0..per {
            let mut spec = UserSpec::default();
            let own = Subject::new(&format!("bench.org.unit{u}.>"))?;
            spec.permissions.publish.allow = vec![own.clone()];
            spec.permissions.subscribe.allow = vec![own, Subject::new("_INBOX.>")?];
            spec.payload = 1 << 20;
            let uname = UserName::parse_any_case(&format!("service_{u}_{i}"))?;
            w.create_user(&mut tx, &acc, &uname, spec).await?;
            bar.inc(1);
        }
        tx.commit().await?;
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
    let bar = progress(show, files.len() as u64, "export");
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
    let mut w2 = Warden::open(store2, "bench").await?;
    let start = Instant::now();
    let imported = w2
        .import_nsc_with_progress(&out.join("stores"), &out.join("keys"), show)
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
pub async fn bench_export(json: bool, args: BenchExportArgs) -> anyhow::Result<()> {
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
