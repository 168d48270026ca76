//! `warden dir sync` and `warden dir export`: their flags, and the plans, reports and
//! exports printed for people or as JSON. Reading the directory and planning is
//! `warden_ops::dirsync`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use warden_core::directory::SyncPlan;
use warden_ops::Warden;
use warden_ops::dirsync::{
    DirectoryExport, ExportOptions, SyncOptions, SyncOutcome, dry_run_report, export_changes,
    plan_sync,
};

use crate::cli::UsageError;
use crate::cli::print_json;

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// `warden dir sync|export`. (The `dir` group also holds the governance
/// commands; this enum is flattened into it.)
#[derive(Subcommand, Debug)]
pub enum DirSyncCmd {
    /// Import a directory (AD LDIF or live LDAP, Azure AD Graph JSON) and plan or apply the changes.
    Sync(SyncArgs),
    /// Write changes confirmed in Warden in the provider's form (LDIF modify records or a Graph $batch body).
    Export(ExportArgs),
}

/// Where `dir sync` reads from.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["ldif", "ldap", "graph_users"])))]
pub struct SyncArgs {
    /// An LDIF file: a full export (ldifde, ldapsearch -LLL), or change records with --delta.
    #[arg(long, value_name = "FILE")]
    pub ldif: Option<PathBuf>,
    /// A live LDAP directory: ldaps://dc1.corp.example:636, or ldap://…:389 (with
    /// --ldap-starttls to encrypt it).
    #[arg(long, value_name = "URL", requires = "base")]
    pub ldap: Option<String>,
    /// Upgrade an ldap:// connection with StartTLS before binding.
    #[arg(long, requires = "ldap")]
    pub ldap_starttls: bool,
    /// PEM file of the CA certificate(s) that signed the directory's certificate
    /// (default: the system's trusted roots). The server's name is always verified.
    #[arg(long, value_name = "FILE", requires = "ldap")]
    pub ldap_ca: Option<PathBuf>,
    /// Search base for --ldap.
    #[arg(long, value_name = "DN")]
    pub base: Option<String>,
    /// Bind DN for --ldap (anonymous when absent).
    #[arg(long, value_name = "DN", requires = "password_file")]
    pub bind_dn: Option<String>,
    /// File holding the bind password (first line).
    #[arg(long, value_name = "FILE", requires = "bind_dn")]
    pub password_file: Option<PathBuf>,
    /// Graph `GET /users` pages (repeat for @odata.nextLink pages).
    #[arg(long, value_name = "FILE", requires = "graph_groups")]
    pub graph_users: Vec<PathBuf>,
    /// Graph `GET /groups` pages with members and owners (repeat for pages).
    #[arg(long, value_name = "FILE")]
    pub graph_groups: Vec<PathBuf>,
    /// The input is a delta (LDIF change records, Graph delta pages) applied to the current snapshot.
    #[arg(long, conflicts_with = "ldap")]
    pub delta: bool,
    /// The source's name in Warden (default: `ad` for LDIF and LDAP, `aad` for Graph).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// A mapping file (TOML, JSON or YAML) overriding the default field mapping.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Plan against this snapshot JSON instead of what Warden holds for the source.
    #[arg(long, value_name = "FILE")]
    pub current: Option<PathBuf>,
    /// Also write the incoming snapshot (JSON) here, e.g. to pass as --current next time.
    #[arg(long, value_name = "FILE")]
    pub snapshot_out: Option<PathBuf>,
    /// Plan only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// LDAP connect and search timeout, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

impl SyncArgs {
    /// The parsed flags, as the operation takes them.
    pub fn options(&self) -> SyncOptions {
        SyncOptions {
            ldif: self.ldif.clone(),
            ldap: self.ldap.clone(),
            ldap_starttls: self.ldap_starttls,
            ldap_ca: self.ldap_ca.clone(),
            base: self.base.clone(),
            bind_dn: self.bind_dn.clone(),
            password_file: self.password_file.clone(),
            graph_users: self.graph_users.clone(),
            graph_groups: self.graph_groups.clone(),
            delta: self.delta,
            source: self.source.clone(),
            mapping: self.mapping.clone(),
            current: self.current.clone(),
            timeout: self.timeout,
        }
    }
}

/// `dir export`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("format").required(true).args(["ldif", "graph"])))]
pub struct ExportArgs {
    /// LDIF modify records (Active Directory).
    #[arg(long)]
    pub ldif: bool,
    /// Microsoft Graph $batch bodies (Azure AD).
    #[arg(long)]
    pub graph: bool,
    /// The changes as a JSON list of {"change": "user_field"|"add_member"|"remove_member", …};
    /// default: the proposals confirmed in Warden (role memberships, managers) on the source's records.
    #[arg(long, value_name = "FILE")]
    pub changes: Option<PathBuf>,
    /// Only proposals closed at or after this time (RFC 3339 or unix seconds); default: all.
    #[arg(long, value_name = "TIME", conflicts_with = "changes")]
    pub since: Option<String>,
    /// The source's name in Warden (default: `ad` with --ldif, `aad` with --graph).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Use this snapshot JSON (ids → DNs / object ids) instead of what Warden holds for the source.
    #[arg(long, value_name = "FILE")]
    pub current: Option<PathBuf>,
    /// A mapping file (TOML, JSON or YAML).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Output file (stdout when absent).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `--since`: RFC 3339 or unix seconds.
fn parse_since(raw: &str) -> Result<i64> {
    if let Ok(n) = raw.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            usage(format!(
                "--since {raw:?}: not RFC 3339 or unix seconds: {e}"
            ))
        })
}

/// Runs `warden dir sync|export`.
pub async fn run(json: bool, cmd: DirSyncCmd, w: &Warden) -> Result<()> {
    match cmd {
        DirSyncCmd::Sync(args) => {
            let (mapped, plan) = plan_sync(&args.options(), w).await?;
            if let Some(out) = &args.snapshot_out {
                let text = serde_json::to_string_pretty(&mapped.snapshot)?;
                std::fs::write(out, text + "\n")
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            let report = if args.dry_run {
                dry_run_report(&plan)
            } else {
                w.apply_sync_plan(&plan).await?
            };
            if json {
                print_json(&SyncOutcome { plan, report })
            } else {
                out!("{}", human_plan(&plan, args.current.is_none()))?;
                if !report.dry_run {
                    outln!(
                        "applied to {}: users {} created, {} updated, {} deleted; roles {} created, {} updated, {} deleted",
                        report.source,
                        report.users_created,
                        report.users_updated,
                        report.users_deleted,
                        report.roles_created,
                        report.roles_updated,
                        report.roles_deleted
                    )?;
                }
                Ok(())
            }
        }
        DirSyncCmd::Export(args) => {
            let since = match &args.since {
                Some(t) => parse_since(t)?,
                None => 0,
            };
            let opts = ExportOptions {
                ldif: args.ldif,
                changes: args.changes.clone(),
                since,
                source: args.source.clone(),
                current: args.current.clone(),
                mapping: args.mapping.clone(),
            };
            let DirectoryExport {
                format,
                body,
                skipped,
            } = export_changes(&opts, w).await?;
            match &args.output {
                Some(p) => std::fs::write(p, &body)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None if !json => out!("{body}")?,
                None => {}
            }
            if json {
                print_json(&serde_json::json!({
                    "format": format,
                    "output": args.output,
                    "body": if args.output.is_none() { Some(&body) } else { None },
                    "skipped": skipped,
                }))?;
            } else {
                for s in &skipped {
                    eprintln!("skipped {} {}: {}", s.kind, s.key, s.reason);
                }
            }
            Ok(())
        }
    }
}

fn human_plan(plan: &SyncPlan, against_empty: bool) -> String {
    let mut out = format!("directory sync plan for source {} (dry run)\n", plan.source);
    if against_empty {
        out += "  compared with: nothing (no --current snapshot given)\n";
    }
    let ids = |v: &mut dyn Iterator<Item = &str>| v.collect::<Vec<_>>().join(", ");
    let rows = [
        (
            "users to create",
            plan.create_users.len(),
            ids(&mut plan.create_users.iter().map(|u| u.id.as_str())),
        ),
        (
            "users to update",
            plan.update_users.len(),
            ids(&mut plan.update_users.iter().map(|u| u.id.as_str())),
        ),
        (
            "users to delete",
            plan.delete_users.len(),
            plan.delete_users.join(", "),
        ),
        (
            "roles to create",
            plan.create_roles.len(),
            ids(&mut plan.create_roles.iter().map(|r| r.name.as_str())),
        ),
        (
            "roles to update",
            plan.update_roles.len(),
            ids(&mut plan.update_roles.iter().map(|r| r.name.as_str())),
        ),
        (
            "roles to delete",
            plan.delete_roles.len(),
            plan.delete_roles.join(", "),
        ),
    ];
    for (what, n, list) in rows {
        out += &format!("  {what:<16} {n:>5}  {list}\n");
    }
    out += &format!("  {:<16} {:>5}\n", "unchanged", plan.unchanged);
    out += &format!("  {:<16} {:>5}\n", "skipped", plan.skipped.len());
    for s in &plan.skipped {
        out += &format!("    {} {}: {}\n", s.kind, s.key, s.reason);
    }
    out
}
