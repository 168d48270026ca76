//! `warden init` and `warden migrate`: the bootstrap flags (names, cases, the
//! service prefix and user, JWT migrations), checked before the data directory or
//! database is touched.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use nats_jwt::Subject;
use warden_core::bootstrap::{DEFAULT_SERVICE_PREFIX, default_migrations};
use warden_core::{JwtMigration, NameCase, NamingPolicy};
use warden_ops::{InitOptions, Settings, Warden};

use super::{Global, emit, open_or_create, usage};

/// Flags of `warden init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Operator name.
    #[arg(long, short = 'n', default_value = "WARDEN")]
    name: String,
    /// The operator's own account (default: the operator's name).
    #[arg(long)]
    account: Option<String>,
    /// The operator's own user (default: the operator's name in the user case).
    #[arg(long)]
    user: Option<String>,
    /// Case of operator names: screaming-snake, snake, kebab, screaming-kebab, any.
    #[arg(long, default_value = "screaming-snake", value_parser = parse_case)]
    operator_case: NameCase,
    /// Case of account names.
    #[arg(long, default_value = "screaming-snake", value_parser = parse_case)]
    account_case: NameCase,
    /// Case of user names.
    #[arg(long, default_value = "snake", value_parser = parse_case)]
    user_case: NameCase,
    /// Subject prefix of Warden's NATS service.
    #[arg(long, default_value = DEFAULT_SERVICE_PREFIX)]
    service_prefix: String,
    /// The user Warden's NATS service and change stream connect as, ACCOUNT/USER.
    #[arg(long, default_value = "BACKEND/warden", value_name = "ACCOUNT/USER")]
    service_user: String,
    /// operator_service_urls of the operator JWT (nats:// or tls://).
    #[arg(long = "service-url", value_name = "URL")]
    service_urls: Vec<String>,
    /// JWT migrations (JSON) to apply instead of the built-in ones.
    #[arg(long, value_name = "FILE")]
    migrations: Option<PathBuf>,
    /// Change nothing and exit 0 when the database already has an operator (a service's
    /// every start runs it; only the first one initialises).
    #[arg(long)]
    if_missing: bool,
}

fn parse_case(s: &str) -> Result<NameCase, String> {
    s.parse().map_err(|e: warden_core::NameError| e.to_string())
}

/// Runs `warden init`.
pub(crate) async fn init(g: &Global, args: InitArgs) -> Result<()> {
    let naming = NamingPolicy {
        operator: args.operator_case,
        account: args.account_case,
        user: args.user_case,
    };
    // Everything is checked before the data directory or database is touched.
    fn named<T>(r: Result<T, warden_core::NameError>) -> Result<T> {
        r.map_err(|e| usage(e.to_string()))
    }
    named(naming.operator(&args.name))?;
    if let Some(a) = &args.account {
        named(naming.account(a))?;
    }
    if let Some(u) = &args.user {
        named(naming.user(u))?;
    }
    let prefix = args.service_prefix.trim().to_string();
    if prefix.is_empty()
        || prefix.contains(['*', '>'])
        || Subject::new(&format!("{prefix}.>")).is_err()
    {
        bail!(usage(format!(
            "invalid --service-prefix {prefix:?}: use a literal subject prefix such as WARDEN or NATS-MANAGER"
        )));
    }
    for u in &args.service_urls {
        if !(u.starts_with("nats://") || u.starts_with("tls://")) {
            bail!(usage(format!(
                "invalid --service-url {u:?}: use nats://HOST:PORT or tls://HOST:PORT"
            )));
        }
    }
    let Some((service_account, service_user)) = args.service_user.split_once('/') else {
        bail!(usage(format!(
            "invalid --service-user {:?}: use ACCOUNT/USER",
            args.service_user
        )));
    };
    named(naming.account(service_account))?;
    named(naming.user(service_user))?;
    let (service_account, service_user) = (service_account.to_string(), service_user.to_string());
    let migrations = match &args.migrations {
        Some(file) => read_migrations(file)?,
        None => default_migrations(&prefix),
    };
    let mut w = open_or_create(g).await?;
    if let Some(op) = w.status().await?.operator.filter(|_| args.if_missing) {
        let report = serde_json::json!({"created": false, "operator": op.name});
        return emit(g, &report, || {
            format!("already initialised: operator {}\n", op.name)
        });
    }
    let report = w
        .init(InitOptions {
            operator: args.name,
            account: args.account,
            user: args.user,
            settings: Settings {
                naming,
                service_prefix: prefix,
                service_account,
                service_user,
            },
            service_urls: args.service_urls,
            migrations,
        })
        .await?;
    emit(g, &report, || {
        let mut out = if report.created {
            format!(
                "initialised operator {} ({})\nsystem account SYS {}\n",
                report.operator, report.operator_public_key, report.system_account
            )
        } else {
            format!("already initialised: operator {}\n", report.operator)
        };
        if report.migrations_applied.is_empty() {
            out += "no JWT migrations to apply\n";
        } else {
            out += &format!(
                "applied JWT migrations: {}\n",
                report.migrations_applied.join(", ")
            );
        }
        out
    })
}

/// Runs `warden migrate --file FILE`.
pub async fn migrate(json: bool, w: &Warden, file: &Path) -> Result<()> {
    let list = read_migrations(file)?;
    let applied = w.migrate(&list).await?;
    emit(json, &serde_json::json!({"applied": applied}), || {
        if applied.is_empty() {
            "no pending migrations\n".to_string()
        } else {
            format!("applied {}\n", applied.join(", "))
        }
    })
}

fn read_migrations(file: &Path) -> Result<Vec<JwtMigration>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| usage(format!("{}: not a JWT migration list: {e}", file.display())))
}
