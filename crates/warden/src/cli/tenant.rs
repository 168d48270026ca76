//! `warden tenant …`: the flags of the tenant commands and their printed views and creds.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;
use warden_core::tenant::TenantLimitsEdit;

use crate::cli::print_json;
use crate::cli::secret_out::SecretOut;
use crate::cli::values::size_judged_later;
use warden_core::units;
use warden_ops::Warden;
use warden_ops::tenant::*;

/// Limits given on the command line.
#[derive(Args, Debug, Default, Clone)]
pub struct LimitArgs {
    /// Client connections.
    #[arg(long, allow_negative_numbers = true)]
    pub conns: Option<i64>,
    /// Subscriptions.
    #[arg(long, allow_negative_numbers = true)]
    pub subscriptions: Option<i64>,
    /// Max message payload: bytes or a size such as 64K.
    #[arg(long, value_parser = size_judged_later, allow_hyphen_values = true)]
    pub payload: Option<i64>,
    /// Data: bytes or a size (not enforced by nats-server 2.9.10).
    #[arg(long, value_parser = size_judged_later, allow_hyphen_values = true)]
    pub data: Option<i64>,
    /// Leaf node connections.
    #[arg(long, allow_negative_numbers = true)]
    pub leaf_conns: Option<i64>,
    /// Imports (at least one per catalogue subject).
    #[arg(long, allow_negative_numbers = true)]
    pub imports: Option<i64>,
    /// JetStream memory storage: bytes or a size such as 512M (0 with
    /// --js-disk-storage 0 disables JetStream).
    #[arg(long = "js-mem-storage", alias = "js-mem", value_parser = size_judged_later, allow_hyphen_values = true)]
    pub js_mem: Option<i64>,
    /// JetStream disk storage: bytes or a size such as 10G.
    #[arg(long = "js-disk-storage", alias = "js-disk", value_parser = size_judged_later, allow_hyphen_values = true)]
    pub js_disk: Option<i64>,
    /// JetStream streams.
    #[arg(long, allow_negative_numbers = true)]
    pub js_streams: Option<i64>,
    /// JetStream consumers.
    #[arg(
        long = "js-consumer",
        alias = "js-consumers",
        allow_negative_numbers = true
    )]
    pub js_consumers: Option<i64>,
    /// Replicas of the tenant's JetStream streams, 1 to 5 (default 1). Above 1 the
    /// JetStream limits become the account's tier R<N>: its streams must then have N
    /// replicas, on a JetStream cluster of at least N servers.
    #[arg(long, value_name = "N")]
    pub js_replicas: Option<u8>,
}

impl LimitArgs {
    fn edit(&self) -> TenantLimitsEdit {
        TenantLimitsEdit {
            conns: self.conns,
            subscriptions: self.subscriptions,
            payload: self.payload,
            data: self.data,
            leaf_conns: self.leaf_conns,
            imports: self.imports,
            exports: None,
            js_mem: self.js_mem,
            js_disk: self.js_disk,
            js_streams: self.js_streams,
            js_consumers: self.js_consumers,
            js_replicas: self.js_replicas,
        }
    }
}

/// `warden tenant …`.
#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Add a tenant (its account, importing its slice of the platform's subjects), or many
    /// with --from.
    Add {
        /// Slug: lowercase letters, digits, dashes.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        slug: Option<String>,
        /// Limits (defaults for the ones not given; with --from, for every tenant whose
        /// line does not give its own).
        #[command(flatten)]
        limits: LimitArgs,
        /// Add many, in one transaction (slugs that exist are skipped): a CSV file with a
        /// `slug` column and optional limit columns named like the flags (`conns`,
        /// `js-disk-storage`, …), or a JSON array of slugs or of {"slug", "limits"}
        /// objects.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
    /// List tenants.
    List,
    /// Show one tenant.
    Show {
        /// Slug.
        slug: String,
    },
    /// Change a tenant's limits (pushed through the outbox).
    Edit {
        /// Slug.
        slug: String,
        /// Limits (defaults for the ones not given).
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Cut a tenant off (no connections; every user revoked).
    Suspend {
        /// Slug.
        slug: String,
    },
    /// Re-admit a suspended tenant.
    Resume {
        /// Slug.
        slug: String,
    },
    /// Delete a tenant, its account and users.
    Delete {
        /// Slug.
        slug: String,
    },
    /// Check tenants: unlimited limits, tenant subjects in shared accounts, and streams
    /// (`--streams FILE`, `--nats URL`): unbounded, off the tenant wildcard, one tenant's.
    Lint(crate::cli::tenant_lint::LintArgs),
    /// Users of a tenant.
    #[command(subcommand)]
    User(TenantUserCmd),
    /// Tenant settings: names, subject catalogue, default limits.
    #[command(subcommand)]
    Settings(TenantSettingsCmd),
    /// Print (or write, 0600) the creds of a tenant's user.
    Creds {
        /// Slug.
        slug: String,
        /// User name.
        name: String,
        /// Write the creds here (a new 0600 file; `-` is stdout).
        #[arg(short, long, value_name = "CREDS_FILE")]
        output: Option<PathBuf>,
    },
    /// Render a nats-server config for a leaf node at the tenant's site (and its creds).
    LeafConfig(crate::cli::leaf::LeafConfigArgs),
}

/// `warden tenant settings …`.
#[derive(Subcommand, Debug)]
pub enum TenantSettingsCmd {
    /// Print the settings in force (YAML; JSON with --json).
    Show,
    /// Replace settings from a YAML or JSON file; keys it leaves out keep their values.
    /// A catalogue change recompiles the platform and every tenant account and user.
    Set {
        /// YAML or JSON file (`.json`, or text starting with `{`, is JSON).
        file: PathBuf,
        /// Report what would change; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `warden tenant user …`.
#[derive(Subcommand, Debug)]
pub enum TenantUserCmd {
    /// Add a user (a collector) to a tenant.
    Add {
        /// Slug.
        slug: String,
        /// User name.
        name: String,
        /// Write its creds here (a new 0600 file; `-` is stdout).
        #[arg(short, long, value_name = "CREDS_FILE")]
        output: Option<PathBuf>,
    },
}

fn human(t: &TenantView) -> String {
    let l = &t.limits;
    format!(
        "slug         {}\nstate        {}\naccount      {} {}\nplatform     {} (subjects arrive as {}<subject>)\nusers        {}\nlimits       conns {} subs {} payload {} data {} leaf {} js mem {} disk {} streams {} consumers {} replicas {}\ncreated      {}\nsuspended    {}\n",
        t.slug,
        t.state,
        t.account,
        t.account_key,
        t.platform_account,
        t.prefix,
        t.users.join(", "),
        units::limit(l.conns),
        units::limit(l.subscriptions),
        units::size(l.payload),
        units::size(l.data),
        units::limit(l.leaf_conns),
        units::js_storage(l.js_mem),
        units::js_storage(l.js_disk),
        units::js_limit(l.js_streams),
        units::js_limit(l.js_consumers),
        l.js_replicas,
        super::time_or(Some(t.created_at), "-"),
        super::time_or(t.suspended_at, "-"),
    )
}

fn emit(json: bool, t: &TenantView, what: &str) -> anyhow::Result<()> {
    if json {
        return print_json(t);
    }
    eprintln!("tenant {} {what}", t.slug);
    out!("{}", human(t))?;
    Ok(())
}

/// Prints or writes the creds of a tenant's user. `done` says, should the file fail to be
/// written, what was already done and how to fetch the creds again.
fn emit_creds(
    json: bool,
    t: &TenantView,
    name: &str,
    creds: &str,
    output: Option<SecretOut>,
    done: &str,
) -> anyhow::Result<()> {
    match output {
        Some(SecretOut::File(file)) => {
            let path = file.path().to_path_buf();
            SecretOut::File(file).write(creds.as_bytes(), done)?;
            if json {
                print_json(&json!({"tenant": t.slug, "user": name, "creds_file": path}))
            } else {
                eprintln!("creds of {name} written to {} (mode 0600)", path.display());
                Ok(())
            }
        }
        Some(SecretOut::Stdout) => SecretOut::Stdout.write(creds.as_bytes(), done),
        None if json => print_json(&json!({"tenant": t.slug, "user": name, "creds": creds})),
        None => {
            out!("{creds}")?;
            Ok(())
        }
    }
}

/// Runs `warden tenant …`.
pub async fn run(json: bool, cmd: TenantCmd, w: &Warden) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Add { slug, limits, from } => match from {
            Some(file) => add_bulk(json, w, &file, &limits.edit()).await,
            None => {
                let slug = slug.ok_or_else(|| usage("give a tenant slug or --from FILE"))?;
                let t = w.add_tenant(&slug, &limits.edit()).await?;
                emit(json, &t, "added")
            }
        },
        TenantCmd::List => {
            let list = w.list_tenants().await?;
            if json {
                return print_json(&list);
            }
            let mut table =
                crate::cli::table(["SLUG", "STATE", "ACCOUNT", "ACCOUNT KEY", "USERS", "CONNS"]);
            for t in &list {
                table.add_row([
                    t.slug.clone(),
                    t.state.clone(),
                    t.account.clone(),
                    t.account_key.clone(),
                    t.users.len().to_string(),
                    t.limits.conns.to_string(),
                ]);
            }
            outln!("{table}")?;
            Ok(())
        }
        TenantCmd::Show { slug } => {
            let t = w.tenant(&slug).await?;
            if json {
                return print_json(&t);
            }
            out!("{}", human(&t))?;
            Ok(())
        }
        TenantCmd::Edit { slug, limits } => {
            let t = w.edit_tenant(&slug, &limits.edit()).await?;
            emit(json, &t, "edited")
        }
        TenantCmd::Suspend { slug } => {
            let t = w.suspend_tenant(&slug).await?;
            emit(json, &t, "suspended")
        }
        TenantCmd::Resume { slug } => {
            let t = w.resume_tenant(&slug).await?;
            emit(json, &t, "resumed")
        }
        TenantCmd::Delete { slug } => {
            let t = w.delete_tenant(&slug).await?;
            emit(json, &t, "deleted")
        }
        TenantCmd::Lint(args) => crate::cli::tenant_lint::run(json, args, w).await,
        TenantCmd::Settings(TenantSettingsCmd::Show) => {
            let s = w.tenant_settings().await?;
            if json {
                return print_json(&s);
            }
            out!("{}", serde_yaml_ng::to_string(&s)?)?;
            Ok(())
        }
        TenantCmd::Settings(TenantSettingsCmd::Set { file, dry_run }) => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                crate::cli::UsageError(format!("cannot read {}: {e}", file.display()))
            })?;
            let current = w.tenant_settings().await?;
            let new = settings_from_file(&current, &file, &text).map_err(crate::cli::UsageError)?;
            let r = w.set_tenant_settings(&new, dry_run).await?;
            if json {
                return print_json(&r);
            }
            let (dry, done) = if r.dry_run {
                (" (dry run: nothing stored)", "would be")
            } else {
                ("", "were")
            };
            if r.changed {
                eprintln!(
                    "tenant settings changed{dry}: {} accounts and {} users {done} re-signed",
                    r.accounts.len(),
                    r.users
                );
                if r.users > 0 && !r.dry_run {
                    eprintln!("users need new creds (`warden tenant creds`) to use new subjects");
                }
            } else {
                eprintln!("tenant settings unchanged");
            }
            out!("{}", serde_yaml_ng::to_string(&r.settings)?)?;
            Ok(())
        }
        TenantCmd::User(TenantUserCmd::Add { slug, name, output }) => {
            // The output is made ready first: one that cannot be written fails before the
            // user exists.
            let output = SecretOut::prepare(output.as_deref())?;
            let (t, creds) = w.add_tenant_user_with_creds(&slug, &name).await?;
            let done = format!(
                "user {name} of tenant {slug} was created: fetch its creds with `warden tenant creds {slug} {name} -o FILE`"
            );
            emit_creds(json, &t, &name, &creds, output, &done)
        }
        TenantCmd::Creds { slug, name, output } => {
            let output = SecretOut::prepare(output.as_deref())?;
            let t = w.tenant(&slug).await?;
            let creds = w.tenant_creds(&slug, &name).await?;
            emit_creds(json, &t, &name, &creds, output, "nothing was changed")
        }
        TenantCmd::LeafConfig(args) => crate::cli::leaf::run(json, args, w).await,
    }
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    crate::cli::UsageError(msg.into()).into()
}

/// `tenant add --from FILE`: every tenant of the file, the flags' limits under each
/// line's own.
async fn add_bulk(
    json: bool,
    w: &Warden,
    file: &std::path::Path,
    flags: &TenantLimitsEdit,
) -> anyhow::Result<()> {
    let tenants = read_tenant_file(file, flags)?;
    let bar = crate::cli::progress::Bar::for_output(json, tenants.len() as u64, "adding tenants");
    let report = w.add_tenants_bulk(&tenants, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    if json {
        return print_json(&json!({"added": report.added, "skipped": report.skipped}));
    }
    outln!(
        "{} tenants added, {} already present (skipped)",
        report.added.len(),
        report.skipped.len()
    )?;
    if !report.skipped.is_empty() && report.skipped.len() <= 20 {
        outln!("skipped: {}", report.skipped.join(", "))?;
    }
    Ok(())
}

/// A limit of [`TenantLimitsEdit`], as a column of a tenant CSV can set it.
type LimitField = fn(&mut TenantLimitsEdit) -> &mut Option<i64>;

/// The limit columns a tenant CSV may have: the flag names (`js-disk-storage`; the hidden
/// aliases and `_` spellings too) and whether the value is a size.
fn limit_column(name: &str) -> Option<(LimitField, bool)> {
    let name = name.replace('_', "-");
    Some(match name.as_str() {
        "conns" => (|l| &mut l.conns, false),
        "subscriptions" => (|l| &mut l.subscriptions, false),
        "payload" => (|l| &mut l.payload, true),
        "data" => (|l| &mut l.data, true),
        "leaf-conns" => (|l| &mut l.leaf_conns, false),
        "imports" => (|l| &mut l.imports, false),
        "js-mem-storage" | "js-mem" => (|l| &mut l.js_mem, true),
        "js-disk-storage" | "js-disk" => (|l| &mut l.js_disk, true),
        "js-streams" => (|l| &mut l.js_streams, false),
        "js-consumer" | "js-consumers" => (|l| &mut l.js_consumers, false),
        _ => return None,
    })
}

/// Reads `tenant add --from FILE`: a JSON array (of slugs, or of {"slug", "limits"}) or a
/// CSV with a `slug` column and limit columns. A limit a line leaves out (or leaves
/// empty) is the flag's, when given. Unknown columns and unreadable values are usage
/// errors naming the line.
fn read_tenant_file(
    path: &std::path::Path,
    flags: &TenantLimitsEdit,
) -> anyhow::Result<Vec<NewTenant>> {
    use crate::cli::bulk_file;
    let (text, is_json) = bulk_file::read(path)?;
    let under_flags = |own: TenantLimitsEdit| merge_limits(flags, own);
    if is_json {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Slug(String),
            Full(NewTenant),
        }
        let list: Vec<Entry> =
            bulk_file::json_list(path, &text, "slugs or {\"slug\", \"limits\"} objects")?;
        return Ok(list
            .into_iter()
            .map(|e| match e {
                Entry::Slug(slug) => NewTenant {
                    slug,
                    limits: flags.clone(),
                },
                Entry::Full(t) => NewTenant {
                    slug: t.slug,
                    limits: under_flags(t.limits),
                },
            })
            .collect());
    }
    let csv = bulk_file::csv(path, &text, "slug")?;
    let mut columns = Vec::new();
    for (j, h) in csv.headers.iter().enumerate() {
        if j == csv.key {
            continue;
        }
        let column = limit_column(h).ok_or_else(|| {
            usage(format!(
                "{}: unknown column `{h}` (limit columns: conns, subscriptions, payload, data, leaf-conns, imports, js-mem-storage, js-disk-storage, js-streams, js-consumer)",
                path.display()
            ))
        })?;
        columns.push((j, h.to_string(), column));
    }
    let mut out = Vec::new();
    for (line, rec) in &csv.records {
        let mut own = TenantLimitsEdit::default();
        for (j, name, (field, sized)) in &columns {
            let value = rec.get(*j).unwrap_or_default();
            if value.is_empty() {
                continue;
            }
            let parsed = if *sized {
                size_judged_later(value)
            } else {
                value.parse::<i64>().map_err(|e| e.to_string())
            }
            .map_err(|e| {
                usage(format!(
                    "{}: line {line}: {name} {value:?}: {e}",
                    path.display()
                ))
            })?;
            *field(&mut own) = Some(parsed);
        }
        out.push(NewTenant {
            slug: rec.get(csv.key).unwrap_or_default().to_string(),
            limits: under_flags(own),
        });
    }
    Ok(out)
}

/// `own` with every limit it leaves out taken from `flags`.
fn merge_limits(flags: &TenantLimitsEdit, own: TenantLimitsEdit) -> TenantLimitsEdit {
    TenantLimitsEdit {
        conns: own.conns.or(flags.conns),
        subscriptions: own.subscriptions.or(flags.subscriptions),
        payload: own.payload.or(flags.payload),
        data: own.data.or(flags.data),
        leaf_conns: own.leaf_conns.or(flags.leaf_conns),
        imports: own.imports.or(flags.imports),
        exports: own.exports.or(flags.exports),
        js_mem: own.js_mem.or(flags.js_mem),
        js_disk: own.js_disk.or(flags.js_disk),
        js_streams: own.js_streams.or(flags.js_streams),
        js_consumers: own.js_consumers.or(flags.js_consumers),
        js_replicas: own.js_replicas.or(flags.js_replicas),
    }
}
