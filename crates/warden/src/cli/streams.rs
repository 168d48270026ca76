//! `warden streams apply|list`: the flags and the printed plans.

use std::path::PathBuf;
use warden_nats::NatsUrls;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::UsageError;
use warden_ops::Warden;
use warden_ops::streams::*;

/// `warden streams …`
#[derive(Subcommand, Debug)]
pub enum StreamsCmd {
    /// Create or update the streams declared in FILE (YAML or JSON), idempotently.
    Apply(ApplyArgs),
    /// List an account's streams as the server reports them.
    List {
        /// Account whose JetStream to read (default: the context's account).
        #[arg(long, short)]
        account: Option<String>,
        /// Server URL (several servers of a cluster: comma-separated).
        #[arg(
            long,
            value_name = "URL[,URL...]",
            env = "WARDEN_NATS_URL",
            default_value = "nats://127.0.0.1:4222"
        )]
        nats: NatsUrls,
    },
}

/// Arguments of `warden streams apply`.
#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Streams spec (`streams: [{name, account, subjects, …}]`).
    pub file: PathBuf,
    /// Server URL (several servers of a cluster: comma-separated).
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "WARDEN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats: NatsUrls,
    /// Show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete and create again the streams whose storage or retention changed
    /// (their messages are lost).
    #[arg(long)]
    pub recreate: bool,
}

/// Runs `warden streams …`.
pub async fn run(
    json_out: bool,
    cmd: StreamsCmd,
    w: &Warden,
    ctx: &super::context::Context,
) -> anyhow::Result<()> {
    match cmd {
        StreamsCmd::Apply(a) => {
            let text = std::fs::read_to_string(&a.file)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", a.file.display())))?;
            let spec = parse_spec(&a.file, &text).map_err(UsageError)?;
            let report = match w
                .apply_streams(&spec, &a.nats.to_string(), a.dry_run, a.recreate)
                .await
            {
                Ok(r) => r,
                Err(e) => return Err(failure(json_out, e)),
            };
            if json_out {
                outln!("{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                let mut t = crate::cli::table(["account", "stream", "action", "changes"]);
                for p in &report.streams {
                    let changes: Vec<String> = p
                        .changes
                        .iter()
                        .map(|c| format!("{}: {} -> {}", c.field, c.from, c.to))
                        .collect();
                    t.add_row([
                        p.account.clone(),
                        p.stream.clone(),
                        serde_json::to_value(p.action)?
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        changes.join("; "),
                    ]);
                }
                outln!("{t}")?;
                if report.dry_run {
                    outln!("dry run: nothing changed")?;
                }
            }
            Ok(())
        }
        StreamsCmd::List { account, nats } => {
            let account = ctx.account(account)?;
            let js = w
                .jetstream_admin(&account, &nats.to_string())
                .await
                .map_err(usage_or_failure)?;
            let list = w
                .server_streams(&js, &account)
                .await
                .map_err(usage_or_failure)?;
            if json_out {
                let out: Vec<_> = list
                    .iter()
                    .map(|i| {
                        json!({
                            "name": i.config.name,
                            "config": from_server(&i.config),
                            "messages": i.state.messages,
                            "bytes": i.state.bytes,
                        })
                    })
                    .collect();
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"account": account, "streams": out}))?
                )?;
            } else {
                let mut t = crate::cli::table([
                    "stream",
                    "subjects",
                    "storage",
                    "retention",
                    "messages",
                    "bytes",
                ]);
                for i in &list {
                    let c = from_server(&i.config);
                    t.add_row([
                        i.config.name.clone(),
                        c.subjects.join(","),
                        format!("{:?}", c.storage).to_lowercase(),
                        format!("{:?}", c.retention).to_lowercase(),
                        i.state.messages.to_string(),
                        i.state.bytes.to_string(),
                    ]);
                }
                outln!("{t}")?;
            }
            Ok(())
        }
    }
}

pub(crate) fn usage_or_failure(e: StreamsError) -> anyhow::Error {
    crate::cli::usage_if(e.is_usage(), e)
}

/// A streams error as the command line reports it, the problems of a refused spec
/// listed first (on stdout as JSON with `--json`, on stderr otherwise).
pub(crate) fn failure(json_out: bool, e: StreamsError) -> anyhow::Error {
    if let StreamsError::Invalid(problems) = &e {
        if json_out && let Err(print) = crate::cli::print_json(&json!({"problems": problems})) {
            return print;
        }
        for p in problems {
            eprintln!("  {p}");
        }
    }
    usage_or_failure(e)
}
