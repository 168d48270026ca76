//! `warden tenant lint`: the flags and the printed findings.

use std::path::PathBuf;
use warden_nats::NatsUrls;

use clap::Args;

use crate::cli::UsageError;
use warden_ops::Warden;
use warden_ops::streams::parse_spec;
use warden_ops::tenant_lint::*;

/// Flags of `warden tenant lint`.
#[derive(Args, Debug, Default, Clone)]
pub struct LintArgs {
    /// Also lint the streams declared in this spec (as for `warden streams apply`).
    #[arg(long, value_name = "FILE")]
    pub streams: Option<PathBuf>,
    /// Also lint the platform account's streams as this server reports them.
    #[arg(long, value_name = "URL[,URL...]")]
    pub nats: Option<NatsUrls>,
    /// Exit with code 1 when there is any finding.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `warden tenant lint`.
pub async fn run(json_out: bool, args: LintArgs, w: &Warden) -> anyhow::Result<()> {
    // Read the spec first: a bad file is a usage error before anything else is read.
    let declared = match &args.streams {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            let spec = parse_spec(path, &text).map_err(UsageError)?;
            match spec_streams(&spec) {
                Ok(s) => Some(s),
                Err(e) => return Err(super::streams::failure(json_out, e)),
            }
        }
    };
    let mut findings = w.lint_tenants().await?;
    if let Some(streams) = &declared {
        findings.extend(w.lint_streams(streams, "spec").await?);
    }
    if let Some(url) = &args.nats {
        let streams = w
            .platform_streams(&url.to_string())
            .await
            .map_err(super::streams::usage_or_failure)?;
        findings.extend(w.lint_streams(&streams, "server").await?);
    }
    if json_out {
        outln!("{}", serde_json::to_string_pretty(&findings)?)?;
    } else if findings.is_empty() {
        outln!("no findings")?;
    } else {
        for f in &findings {
            outln!("{f}")?;
        }
    }
    if args.strict && !findings.is_empty() {
        anyhow::bail!(
            "{} finding{} (--strict)",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
