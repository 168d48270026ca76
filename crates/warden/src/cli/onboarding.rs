//! `warden onboarding …`: the flags of the onboarding package commands and their
//! printed packages.

use std::io::Write as _;
use std::path::PathBuf;
use warden_nats::NatsUrls;

use clap::{Args, Subcommand};
use serde_json::json;
use warden_store::Zeroizing;

use crate::cli::print_json;
use crate::cli::secret_out::SecretOut;
use warden_ops::onboarding::*;
use warden_ops::{Warden, now};

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

/// Arguments of `warden onboarding create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Tenant slug.
    pub tenant: String,
    /// Collector component: flowgger, trapd, netflow, otel, poller, agent, checker.
    #[arg(long)]
    pub component: String,
    /// Site name (lowercase letters, digits, dashes).
    #[arg(long)]
    pub site: String,
    /// Life of the download token (30m, 24h, 7d; at most 30d).
    #[arg(
        long = "expiry",
        alias = "expires",
        default_value = "24h",
        value_name = "DURATION"
    )]
    pub expires: String,
    /// NATS URL written into the collector's config.
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "WARDEN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: NatsUrls,
    /// Directory install.sh installs into by default.
    #[arg(long, value_name = "DIR")]
    pub install_dir: Option<String>,
    /// Also write the package here (.tar.gz, mode 0600); the state stays `issued`.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `warden onboarding …`.
#[derive(Subcommand, Debug)]
pub enum OnboardingCmd {
    /// Make a package for a tenant's collector; prints its id and one-time download token.
    Create(CreateArgs),
    /// List packages (of one tenant).
    List {
        /// Tenant slug.
        tenant: Option<String>,
    },
    /// Show one package.
    Show {
        /// Package id (pkg_…).
        id: String,
    },
    /// Revoke a package: its collector user (pushed by the relay) and certificate.
    Revoke {
        /// Package id (pkg_…).
        id: String,
    },
    /// Use a download token here (air-gapped installs): writes the package (0600).
    Download {
        /// The one-time download token (wdl_…).
        #[arg(long, env = "WARDEN_DOWNLOAD_TOKEN", hide_env_values = true)]
        token: String,
        /// Where to write the .tar.gz (a new 0600 file; `-` is stdout).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

fn when(t: Option<i64>) -> String {
    super::time_or(t, "-")
}

fn human(p: &PackageView) -> String {
    format!(
        "id           {}\ntenant       {}\ncomponent    {} at site {}\nstate        {}\nuser         {} {}\nsubjects     {}\ncertificate  CN={} {} serial {} sha256 {}{}\ntoken        expires {}{}\nissued       {}\ndelivered    {}\nactivated    {}\nrevoked      {}\nrefused      {} download attempt(s), last {}\n",
        p.id,
        p.tenant,
        p.component,
        p.site,
        p.state,
        p.user,
        p.user_key,
        p.subjects.join(", "),
        p.certificate.common_name,
        p.certificate.uri,
        p.certificate.serial,
        p.certificate.fingerprint,
        if p.certificate.revoked {
            " (revoked)"
        } else {
            ""
        },
        when(Some(p.token_expires_at)),
        if p.token_usable { "" } else { " (not usable)" },
        when(Some(p.issued_at)),
        when(p.delivered_at),
        when(p.activated_at),
        when(p.revoked_at),
        p.refused_downloads,
        when(p.last_refused_at),
    )
}

fn download_cli_error(e: DownloadError) -> anyhow::Error {
    match e {
        DownloadError::Ops(o) => o.into(),
        other => {
            let usage = matches!(other, DownloadError::Missing | DownloadError::Invalid);
            crate::cli::usage_if(usage, other)
        }
    }
}

/// Runs `warden onboarding …`.
pub async fn run(json: bool, cmd: OnboardingCmd, w: &Warden) -> anyhow::Result<()> {
    match cmd {
        OnboardingCmd::Create(a) => {
            let ns = warden_core::parse::parse_duration_ns(&a.expires)
                .map_err(|e| crate::cli::UsageError(e.to_string()))?;
            let secs = ns / 1_000_000_000;
            if secs <= 0 {
                return Err(crate::cli::UsageError(format!(
                    "--expiry {}: the token must live at least one second",
                    a.expires
                ))
                .into());
            }
            // The archive's file is made ready first: one that cannot be written fails
            // before the package (its user and certificate) exists.
            let file = match a.output.as_deref() {
                Some(p) if p.as_os_str() == "-" => {
                    return Err(crate::cli::UsageError(
                        "-o -: standard output carries the download token; name a file for the package".into(),
                    )
                    .into());
                }
                other => SecretOut::prepare(other)?,
            };
            let issued = w
                .create_package(&NewPackage {
                    tenant: a.tenant,
                    component: a.component,
                    site: a.site,
                    token_expires_at: now().saturating_add(secs),
                    nats_url: a.nats_url.to_string(),
                    install_dir: a.install_dir,
                })
                .await?;
            if let Some(file) = file {
                let done = format!(
                    "package {} was created (download token: {}): fetch it with `warden onboarding download TOKEN -o FILE`",
                    issued.package.id,
                    issued.token.as_str()
                );
                file.write(&issued.archive, &done)?;
            }
            let mut out = std::io::stdout().lock();
            if json {
                let doc = Zeroizing::new(serde_json::to_string_pretty(&json!({
                    "package": issued.package,
                    "token": issued.token.as_str(),
                    "file": a.output,
                }))?);
                writeln!(out, "{}", doc.as_str())?;
            } else {
                writeln!(out, "{}", issued.token.as_str())?;
                eprint!("{}", human(&issued.package));
                eprintln!(
                    "package {} issued; the download token above is shown only once (POST /v1/onboarding/download or `warden onboarding download`){}",
                    issued.package.id,
                    a.output
                        .as_ref()
                        .map(|p| format!("; written to {} (mode 0600)", p.display()))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        OnboardingCmd::List { tenant } => {
            let list = w.list_packages(tenant.as_deref()).await?;
            if json {
                return print_json(&list);
            }
            let mut table = crate::cli::table([
                "ID",
                "TENANT",
                "COMPONENT",
                "SITE",
                "STATE",
                "USER",
                "REFUSED",
            ]);
            for p in &list {
                table.add_row([
                    p.id.clone(),
                    p.tenant.clone(),
                    p.component.clone(),
                    p.site.clone(),
                    p.state.clone(),
                    p.user.clone(),
                    p.refused_downloads.to_string(),
                ]);
            }
            outln!("{table}")?;
            Ok(())
        }
        OnboardingCmd::Show { id } => {
            let p = w.package(&id).await?;
            if json {
                return print_json(&p);
            }
            out!("{}", human(&p))?;
            Ok(())
        }
        OnboardingCmd::Revoke { id } => {
            let p = w.revoke_package(&id).await?;
            if json {
                return print_json(&p);
            }
            eprintln!(
                "package {} revoked: user {} revoked in the tenant account (pushed by the relay), certificate {} revoked",
                p.id, p.user, p.certificate.serial
            );
            out!("{}", human(&p))?;
            Ok(())
        }
        OnboardingCmd::Download { token, output } => {
            // The file is made ready (0600) before the token is spent, so an unwritable
            // path does not lose the one download.
            let file = SecretOut::to(&output)?;
            let d = w
                .download_package(&token, "cli")
                .await
                .map_err(download_cli_error)?;
            let to_stdout = matches!(file, SecretOut::Stdout);
            file.write(
                &d.archive,
                "the download token is spent: ask for a new package (`warden onboarding create`)",
            )?;
            if to_stdout {
                eprintln!("package {} delivered", d.package.id);
                return Ok(());
            }
            if json {
                return print_json(&json!({"package": d.package, "file": output}));
            }
            eprintln!(
                "package {} delivered: written to {} (mode 0600)",
                d.package.id,
                output.display()
            );
            Ok(())
        }
    }
}
