//! `warden tenant`: one NATS account per tenant, prefixed into a shared platform account
//! by the server (see `warden_core::tenant`), and the [`Warden`] methods every surface
//! calls: [`Warden::add_tenant`], [`Warden::list_tenants`], [`Warden::tenant`],
//! [`Warden::edit_tenant`], [`Warden::suspend_tenant`], [`Warden::resume_tenant`],
//! [`Warden::delete_tenant`], [`Warden::add_tenant_user`], [`Warden::tenant_creds`].
//!
//! Each operation is one store transaction: tenant row, account/user rows, sealed seeds,
//! ledger events and `account.update`/`account.delete` outbox rows. The platform account
//! (`PLATFORM`, user `platform`) is created with the first tenant; its exports and imports
//! belong to this module and are recompiled from the tenant list in the same transaction
//! as every add or delete (its limits, description, revocations and signing keys are kept).
//! Settings are the defaults of `TenantSettings` (not yet configurable per store).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use nats_jwt::{AccountPublicKey, KeyKind, KeyPair};
use serde::Serialize;
use serde_json::json;
use warden_core::UserName;
use warden_core::spec::AccountSpec;
use warden_core::tenant::{TenantLimits, TenantLimitsEdit, TenantSettings, TenantSlug};
use warden_store::{AccountRow, OperatorRow, TenantRow, Tx, Zeroizing};

use crate::ops::{
    OpsError, Record, Result, TOPIC_ACCOUNT_DELETE, Warden, from_json, now, parse_key,
};

/// A tenant as every surface shows it.
#[derive(Clone, Debug, Serialize)]
pub struct TenantView {
    /// Slug.
    pub slug: String,
    /// `active` or `suspended`.
    pub state: String,
    /// Its account's name (`TENANT-<slug>`).
    pub account: String,
    /// Its account's public key.
    pub account_key: String,
    /// The platform account, where its traffic arrives as `<slug>.<subject>`.
    pub platform_account: String,
    /// The prefix its subjects get in the platform account.
    pub prefix: String,
    /// Its limits.
    pub limits: TenantLimits,
    /// Names of its users.
    pub users: Vec<String>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Last suspension.
    pub suspended_at: Option<i64>,
}

const ACTIVE: &str = "active";
const SUSPENDED: &str = "suspended";

fn invalid(e: impl std::fmt::Display) -> OpsError {
    OpsError::Invalid(e.to_string())
}

fn limits_of(row: &TenantRow) -> Result<TenantLimits> {
    serde_json::from_str(&row.limits)
        .map_err(|e| OpsError::Conflict(format!("stored tenant limits are unreadable: {e}")))
}

fn limits_text(l: &TenantLimits) -> Result<String> {
    serde_json::to_string(l).map_err(|e| OpsError::Invalid(format!("tenant limits: {e}")))
}

impl Warden {
    /// The tenant settings in force.
    pub fn tenant_settings(&self) -> TenantSettings {
        TenantSettings::default()
    }

    /// Adds a tenant: its account (limits = defaults with `limits` applied), and the
    /// platform account's imports of its catalogue under `<slug>.`; the platform account
    /// (and its `platform` user) is created with the first tenant.
    pub async fn add_tenant(&self, slug: &str, limits: &TenantLimitsEdit) -> Result<TenantView> {
        let settings = self.tenant_settings();
        settings.check().map_err(invalid)?;
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let limits = settings.default_limits.apply(limits);
        limits.check(&settings.catalogue).map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        if tx.tenant(slug.as_str()).await?.is_some() {
            return Err(OpsError::Conflict(format!("tenant {slug} already exists")));
        }
        let platform = self.ensure_platform(&mut tx, &op, &settings).await?;
        let platform_key: AccountPublicKey = parse_key(&platform.public_key)?;
        let spec = settings
            .tenant_spec(&slug, &limits, &platform_key)
            .map_err(invalid)?;
        let name = settings.account_name(&slug).map_err(invalid)?;
        let acc = self
            .create_account(
                &mut tx,
                &op,
                KeyPair::generate(KeyKind::Account),
                &name,
                spec,
            )
            .await?;
        let row = TenantRow {
            slug: slug.to_string(),
            account_key: acc.public_key.clone(),
            state: ACTIVE.into(),
            limits: limits_text(&limits)?,
            created_at: acc.created_at,
            updated_at: acc.created_at,
            suspended_at: None,
        };
        tx.insert_tenant(&row)
            .await
            .map_err(|e| crate::ops::conflict(e, || format!("tenant {slug} already exists")))?;
        self.refresh_platform(&mut tx, &op, &settings).await?;
        tx.record(self.event(
            "tenant.add",
            "tenant",
            slug.as_str(),
            json!({"account": acc.name, "account_key": acc.public_key, "limits": limits}),
        ))
        .await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Every tenant, ordered by slug.
    pub async fn list_tenants(&self) -> Result<Vec<TenantView>> {
        let settings = self.tenant_settings();
        let mut tx = self.store.begin().await?;
        let mut out = Vec::new();
        for row in tx.tenants(None).await? {
            out.push(self.tenant_view(&mut tx, &settings, row).await?);
        }
        Ok(out)
    }

    /// One tenant.
    pub async fn tenant(&self, slug: &str) -> Result<TenantView> {
        let settings = self.tenant_settings();
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        let row = tenant_row(&mut tx, &slug).await?;
        self.tenant_view(&mut tx, &settings, row).await
    }

    /// Changes a tenant's limits; its account is re-signed and queued for the push (a
    /// suspended tenant keeps no connections until resumed with the new limits).
    pub async fn edit_tenant(&self, slug: &str, edit: &TenantLimitsEdit) -> Result<TenantView> {
        let settings = self.tenant_settings();
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        if edit.is_empty() {
            return Err(OpsError::Invalid("nothing to change: give a limit".into()));
        }
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut row = tenant_row(&mut tx, &slug).await?;
        let before = limits_of(&row)?;
        let limits = before.apply(edit);
        limits.check(&settings.catalogue).map_err(invalid)?;
        let mut acc = account_of(&mut tx, &row).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        spec.limits = limits.to_account_limits();
        if row.state == SUSPENDED {
            spec.limits.conn = 0;
            spec.limits.leaf = 0;
        }
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        row.limits = limits_text(&limits)?;
        row.updated_at = now();
        tx.update_tenant(&row).await?;
        tx.record(self.event(
            "tenant.edit",
            "tenant",
            slug.as_str(),
            json!({"before": before, "after": limits}),
        ))
        .await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Suspends a tenant: no connections or leaf nodes, every user issued so far revoked
    /// (which closes its connections once pushed). Keys and users are kept.
    pub async fn suspend_tenant(&self, slug: &str) -> Result<TenantView> {
        self.set_tenant_state(slug, true).await
    }

    /// Resumes a suspended tenant: its limits back, the `*` revocation lifted.
    pub async fn resume_tenant(&self, slug: &str) -> Result<TenantView> {
        self.set_tenant_state(slug, false).await
    }

    async fn set_tenant_state(&self, slug: &str, suspend: bool) -> Result<TenantView> {
        let settings = self.tenant_settings();
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut row = tenant_row(&mut tx, &slug).await?;
        let (want, already) = if suspend {
            (SUSPENDED, "already suspended")
        } else {
            (ACTIVE, "not suspended")
        };
        if row.state == want {
            return Err(OpsError::Conflict(format!("tenant {slug} is {already}")));
        }
        let limits = limits_of(&row)?;
        let mut acc = account_of(&mut tx, &row).await?;
        let spec: AccountSpec = from_json(&acc.spec)?;
        let at = now();
        let spec = if suspend {
            TenantSettings::suspended(&spec, at)
        } else {
            TenantSettings::resumed(&spec, &limits)
        };
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        row.state = want.into();
        row.updated_at = at;
        if suspend {
            row.suspended_at = Some(at);
        }
        tx.update_tenant(&row).await?;
        tx.record(self.event(
            if suspend {
                "tenant.suspend"
            } else {
                "tenant.resume"
            },
            "tenant",
            slug.as_str(),
            json!({"account": acc.name, "at": at}),
        ))
        .await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Deletes a tenant: its account and users (deleted from the resolver on the next
    /// push) and the platform's imports of it.
    pub async fn delete_tenant(&self, slug: &str) -> Result<TenantView> {
        let settings = self.tenant_settings();
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let row = tenant_row(&mut tx, &slug).await?;
        let view = self.tenant_view(&mut tx, &settings, row.clone()).await?;
        let users = tx.users(&row.account_key).await?;
        for u in &users {
            tx.delete_seed(&u.public_key).await?;
        }
        tx.delete_tenant(slug.as_str()).await?;
        tx.delete_account(&row.account_key).await?;
        tx.delete_seed(&row.account_key).await?;
        tx.enqueue(TOPIC_ACCOUNT_DELETE, &row.account_key).await?;
        self.refresh_platform(&mut tx, &op, &settings).await?;
        tx.record(self.event(
            "tenant.delete",
            "tenant",
            slug.as_str(),
            json!({"account_key": row.account_key, "users": view.users}),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Adds a user (a collector) to a tenant: publishes only catalogue subjects,
    /// subscribes only to its inbox. Returns its creds.
    pub async fn add_tenant_user(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(TenantView, Zeroizing<String>)> {
        let settings = self.tenant_settings();
        let slug = settings.parse_slug(slug).map_err(invalid)?;
        let name = UserName::parse_any_case(name)?;
        let mut tx = self.store.begin().await?;
        self.operator_row(&mut tx).await?;
        let row = tenant_row(&mut tx, &slug).await?;
        let acc = account_of(&mut tx, &row).await?;
        let spec = settings.tenant_user_spec().map_err(invalid)?;
        self.create_user(&mut tx, &acc, &name, spec).await?;
        let view = self.tenant_view(&mut tx, &settings, row).await?;
        tx.commit().await?;
        let creds = self.creds(&acc.name, name.as_str()).await?;
        Ok((view, creds))
    }

    /// The creds of a tenant's user.
    pub async fn tenant_creds(&self, slug: &str, name: &str) -> Result<Zeroizing<String>> {
        let view = self.tenant(slug).await?;
        self.creds(&view.account, name).await
    }

    /// The creds of the platform account's user.
    pub async fn platform_creds(&self) -> Result<Zeroizing<String>> {
        let s = self.tenant_settings();
        self.creds(&s.platform_account, &s.platform_user).await
    }

    async fn ensure_platform(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        settings: &TenantSettings,
    ) -> Result<AccountRow> {
        let name = settings.platform_name().map_err(invalid)?;
        if let Some(row) = tx.account_by_name(&op.public_key, name.as_str()).await? {
            return Ok(row);
        }
        let spec = settings.platform_spec(&[]).map_err(invalid)?;
        let row = self
            .create_account(tx, op, KeyPair::generate(KeyKind::Account), &name, spec)
            .await?;
        let user = UserName::parse_any_case(&settings.platform_user)?;
        self.create_user(
            tx,
            &row,
            &user,
            settings.platform_user_spec().map_err(invalid)?,
        )
        .await?;
        Ok(row)
    }

    /// Recompiles the platform account's exports and imports from the tenant rows.
    async fn refresh_platform(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        settings: &TenantSettings,
    ) -> Result<()> {
        let mut platform = self.ensure_platform(tx, op, settings).await?;
        let mut tenants = Vec::new();
        for t in tx.tenants(None).await? {
            let slug = TenantSlug::parse(&t.slug).map_err(invalid)?;
            tenants.push((slug, parse_key::<AccountPublicKey>(&t.account_key)?));
        }
        let fresh = settings.platform_spec(&tenants).map_err(invalid)?;
        let mut spec: AccountSpec = from_json(&platform.spec)?;
        spec.exports = fresh.exports;
        spec.imports = fresh.imports;
        self.resign_account(tx, op, &mut platform, spec).await
    }

    async fn tenant_view(
        &self,
        tx: &mut Tx<'_>,
        settings: &TenantSettings,
        row: TenantRow,
    ) -> Result<TenantView> {
        let acc = account_of(tx, &row).await?;
        let users = tx
            .users(&row.account_key)
            .await?
            .into_iter()
            .map(|u| u.name)
            .collect();
        Ok(TenantView {
            prefix: format!("{}.", row.slug),
            limits: limits_of(&row)?,
            slug: row.slug,
            state: row.state,
            account: acc.name,
            account_key: row.account_key,
            platform_account: settings.platform_account.clone(),
            users,
            created_at: row.created_at,
            updated_at: row.updated_at,
            suspended_at: row.suspended_at,
        })
    }
}

async fn tenant_row(tx: &mut Tx<'_>, slug: &TenantSlug) -> Result<TenantRow> {
    tx.tenant(slug.as_str())
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("tenant {slug}")))
}

async fn account_of(tx: &mut Tx<'_>, row: &TenantRow) -> Result<AccountRow> {
    tx.account(&row.account_key)
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("account of tenant {}", row.slug)))
}

/// Limits given on the command line.
#[derive(Args, Debug, Default, Clone)]
pub struct LimitArgs {
    /// Client connections.
    #[arg(long, allow_negative_numbers = true)]
    pub conns: Option<i64>,
    /// Subscriptions.
    #[arg(long, allow_negative_numbers = true)]
    pub subscriptions: Option<i64>,
    /// Max message payload, bytes.
    #[arg(long, allow_negative_numbers = true)]
    pub payload: Option<i64>,
    /// Data, bytes (not enforced by nats-server 2.9.10).
    #[arg(long, allow_negative_numbers = true)]
    pub data: Option<i64>,
    /// Leaf node connections.
    #[arg(long, allow_negative_numbers = true)]
    pub leaf_conns: Option<i64>,
    /// JetStream memory, bytes (0 with --js-disk 0 disables JetStream).
    #[arg(long, allow_negative_numbers = true)]
    pub js_mem: Option<i64>,
    /// JetStream disk, bytes.
    #[arg(long, allow_negative_numbers = true)]
    pub js_disk: Option<i64>,
    /// JetStream streams.
    #[arg(long, allow_negative_numbers = true)]
    pub js_streams: Option<i64>,
    /// JetStream consumers.
    #[arg(long, allow_negative_numbers = true)]
    pub js_consumers: Option<i64>,
}

impl LimitArgs {
    fn edit(&self) -> TenantLimitsEdit {
        TenantLimitsEdit {
            conns: self.conns,
            subscriptions: self.subscriptions,
            payload: self.payload,
            data: self.data,
            leaf_conns: self.leaf_conns,
            imports: None,
            exports: None,
            js_mem: self.js_mem,
            js_disk: self.js_disk,
            js_streams: self.js_streams,
            js_consumers: self.js_consumers,
        }
    }
}

/// `warden tenant …`.
#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Add a tenant (its account, and the platform's imports of its subjects).
    Add {
        /// Slug: lowercase letters, digits, dashes.
        slug: String,
        /// Limits (defaults for the ones not given).
        #[command(flatten)]
        limits: LimitArgs,
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
    Lint(crate::tenant_lint::LintArgs),
    /// Users of a tenant.
    #[command(subcommand)]
    User(TenantUserCmd),
    /// Print (or write, 0600) the creds of a tenant's user.
    Creds {
        /// Slug.
        slug: String,
        /// User name.
        name: String,
        /// Write the creds here (0600) instead of stdout.
        #[arg(short, long, value_name = "CREDS_FILE")]
        output: Option<PathBuf>,
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
        /// Write its creds here (0600) instead of stdout.
        #[arg(short, long, value_name = "CREDS_FILE")]
        output: Option<PathBuf>,
    },
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn human(t: &TenantView) -> String {
    let l = &t.limits;
    format!(
        "slug         {}\nstate        {}\naccount      {} {}\nplatform     {} (subjects arrive as {}<subject>)\nusers        {}\nlimits       conns {} subs {} payload {} data {} leaf {} js mem {} disk {} streams {} consumers {}\ncreated      {}\nsuspended    {}\n",
        t.slug,
        t.state,
        t.account,
        t.account_key,
        t.platform_account,
        t.prefix,
        t.users.join(", "),
        l.conns,
        l.subscriptions,
        l.payload,
        l.data,
        l.leaf_conns,
        l.js_mem,
        l.js_disk,
        l.js_streams,
        l.js_consumers,
        t.created_at,
        t.suspended_at
            .map(|x| x.to_string())
            .unwrap_or_else(|| "-".into()),
    )
}

fn emit(json: bool, t: &TenantView, what: &str) -> anyhow::Result<()> {
    if json {
        return print_json(t);
    }
    eprintln!("tenant {} {what}", t.slug);
    print!("{}", human(t));
    Ok(())
}

fn emit_creds(
    json: bool,
    t: &TenantView,
    name: &str,
    creds: &str,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            crate::paths::write_secret_file(&path, creds.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            if json {
                print_json(&json!({"tenant": t.slug, "user": name, "creds_file": path}))
            } else {
                eprintln!("creds of {name} written to {} (mode 0600)", path.display());
                Ok(())
            }
        }
        None if json => print_json(&json!({"tenant": t.slug, "user": name, "creds": creds})),
        None => {
            print!("{creds}");
            Ok(())
        }
    }
}

/// Runs `warden tenant …`.
pub async fn run(json: bool, cmd: TenantCmd, w: &Warden) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Add { slug, limits } => {
            let t = w.add_tenant(&slug, &limits.edit()).await?;
            emit(json, &t, "added")
        }
        TenantCmd::List => {
            let list = w.list_tenants().await?;
            if json {
                return print_json(&list);
            }
            let mut table = comfy_table::Table::new();
            table.set_header(["SLUG", "STATE", "ACCOUNT", "ACCOUNT KEY", "USERS", "CONNS"]);
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
            println!("{table}");
            Ok(())
        }
        TenantCmd::Show { slug } => {
            let t = w.tenant(&slug).await?;
            if json {
                return print_json(&t);
            }
            print!("{}", human(&t));
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
        TenantCmd::Lint(args) => crate::tenant_lint::run(json, args, w).await,
        TenantCmd::User(TenantUserCmd::Add { slug, name, output }) => {
            let (t, creds) = w.add_tenant_user(&slug, &name).await?;
            emit_creds(json, &t, &name, &creds, output)
        }
        TenantCmd::Creds { slug, name, output } => {
            let t = w.tenant(&slug).await?;
            let creds = w.tenant_creds(&slug, &name).await?;
            emit_creds(json, &t, &name, &creds, output)
        }
    }
}

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
    /// Seconds for the adds (store, JWTs, platform recompiled each time).
    pub add_seconds: f64,
    /// Seconds to push the outbox afterwards.
    pub push_seconds: f64,
    /// Accounts pushed / failed outbox rows.
    pub accounts_pushed: usize,
    /// Outbox rows that failed.
    pub failed: usize,
    /// First delivery error, if any.
    pub first_error: Option<String>,
    /// Size of the platform account JWT with `count` tenants.
    pub platform_jwt_bytes: usize,
    /// Milliseconds to add one more tenant at `count` (store only).
    pub one_more_add_ms: f64,
    /// Milliseconds to push it (its account and the platform).
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
    let mut w = Warden::open(store, "bench").await?;
    w.init(crate::ops::InitOptions {
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
        let rcfg = crate::relay::RelayConfig::new(format!("nats://127.0.0.1:{port}"));
        let conns = crate::relay::Connections::open(&w, &rcfg).await?;
        crate::relay::drain_all(&w, &conns, &rcfg).await?;
        // Small JetStream reservations: the bench measures accounts, not disk.
        let limits = TenantLimitsEdit {
            js_disk: Some(1_000_000),
            js_mem: Some(1_000_000),
            ..Default::default()
        };
        let bar = indicatif::ProgressBar::new(u64::from(args.count));
        if !crate::cli::show_progress(json) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let t0 = Instant::now();
        for i in 0..args.count {
            w.add_tenant(&format!("t{i:06}"), &limits).await?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let add_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let drained = crate::relay::drain_all(&w, &conns, &rcfg).await?;
        let push_seconds = t1.elapsed().as_secs_f64();
        let platform = w.tenant_settings().platform_account;
        let platform_jwt_bytes = w.account(&platform).await?.jwt.len();
        let t2 = Instant::now();
        w.add_tenant("one-more", &limits).await?;
        let one_more_add_ms = t2.elapsed().as_secs_f64() * 1000.0;
        let t3 = Instant::now();
        let last = crate::relay::drain_all(&w, &conns, &rcfg).await?;
        let one_more_push_ms = t3.elapsed().as_secs_f64() * 1000.0;
        anyhow::Ok(BenchTenantsReport {
            count: args.count,
            nats_server: version.clone(),
            add_seconds,
            push_seconds,
            accounts_pushed: drained.accounts_pushed,
            failed: drained.failed + last.failed,
            first_error: drained.first_error.or(last.first_error),
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
        "{} tenants with {}: adds {:.2}s, pushes {:.2}s ({} accounts pushed, {} failed{})\nplatform JWT {} bytes; one more tenant: add {:.1} ms, push {:.1} ms",
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
        out.platform_jwt_bytes,
        out.one_more_add_ms,
        out.one_more_push_ms,
    );
    Ok(())
}
