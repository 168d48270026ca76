//! `warden export` and `warden import nsc`: the flags, progress bars and printed reports.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use warden_ops::Warden;
use warden_ops::nsc::*;

use crate::cli::progress::Bar;

/// `warden export …`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Layout: `nsc` (data store + keystore) or `flat` (one creds file per user).
    #[arg(long, default_value = "nsc", value_parser = |s: &str| s.parse::<ExportFormat>())]
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

/// Runs `warden export`.
pub async fn run_export(json: bool, args: ExportArgs, w: &Warden) -> anyhow::Result<()> {
    let report = w
        .export_with_progress(args.format, &args.out, &Bar::for_output(json, 0, "export"))
        .await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        outln!(
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
        )?;
    }
    Ok(())
}

/// Checks the directories named by `warden import …` before any database is opened,
/// so that a mistyped path leaves no new, empty database behind.
pub fn check_import_dirs(cmd: &ImportCmd) -> anyhow::Result<()> {
    let ImportCmd::Nsc { store, keys } = cmd;
    warden_ops::nsc::import::operator_dir(store)?;
    warden_ops::nsc::import::keystore_dir(keys)?;
    Ok(())
}

/// Runs `warden import …` on a database that may be empty.
pub async fn run_import(json: bool, cmd: ImportCmd, mut w: Warden) -> anyhow::Result<()> {
    let ImportCmd::Nsc { store, keys } = cmd;
    let report = w
        .import_nsc_with_progress(&store, &keys, &Bar::for_output(json, 0, "import"))
        .await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    outln!(
        "imported operator {} ({}) from {}\nsigning key {}  system account {}  naming policy: any\n",
        report.operator,
        report.operator_public_key,
        report.store.display(),
        report.signing_key,
        report.system_account
    )?;
    let mut t = crate::cli::table([
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
    outln!("{t}")?;
    outln!("{} users, {} seeds sealed", report.users, report.seeds)?;
    if report.not_carried.is_empty() {
        outln!("everything was carried")?;
    } else {
        outln!("\nnot carried ({}):", report.not_carried.len())?;
        for p in &report.not_carried {
            outln!("  {}: {}", p.entity, p.issue)?;
        }
    }
    Ok(())
}
