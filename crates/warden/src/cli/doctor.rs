//! `warden doctor`: the installation's health, one line per check (ok, warn or fail) with
//! what to fix, or the report as JSON; exit code 1 when a check fails. The checks are the
//! `doctor` operation's.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use warden_nats::NatsUrls;
use warden_ops::doctor::{CheckStatus, DoctorOptions, DoctorReport, doctor};

use super::values::duration;
use super::{Global, emit, locate};

/// Flags of `warden doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The nats-server(s) Warden keeps in step (several of a cluster: comma-separated).
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "WARDEN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats: NatsUrls,
    /// Bound of the connection to the nats-server and of each request.
    #[arg(long, default_value = "5s", value_parser = duration)]
    timeout: Duration,
    /// A clock further than this from the nats-server's is a warning.
    #[arg(long, default_value = "3s", value_parser = duration)]
    clock_tolerance: Duration,
    /// A change waiting in the outbox longer than this is a warning.
    #[arg(long, default_value = "60s", value_parser = duration)]
    outbox_max_age: Duration,
}

/// Runs `warden doctor`.
pub(crate) async fn run(g: &Global, args: DoctorArgs) -> Result<()> {
    let (data_dir, database_url, _) = locate(g);
    let opts = DoctorOptions {
        data_dir,
        database_url,
        nats: args.nats.to_string(),
        timeout: args.timeout,
        clock_tolerance: args.clock_tolerance,
        outbox_max_age: args.outbox_max_age,
    };
    let report = doctor(&opts, super::actor()).await;
    emit(g, &report, || text(&report))?;
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .map(|c| c.name)
        .collect();
    if !failed.is_empty() {
        bail!("doctor: failed: {}", failed.join(", "));
    }
    Ok(())
}

/// One line per check: status, name, what was found and, when not ok, what to do.
fn text(report: &DoctorReport) -> String {
    let mut out = String::new();
    for c in &report.checks {
        out += &format!("{:<4}  {:<10}  {}", c.status.as_str(), c.name, c.detail);
        if let Some(fix) = &c.fix {
            out += &format!(" (fix: {fix})");
        }
        out.push('\n');
    }
    out
}
