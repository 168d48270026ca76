//! The command line: clap definitions, flag parsing at the edge (bad input is a
//! usage error, exit code 2, before anything is touched), and printing (tables for
//! people, `--json` for scripts).
//!
//! Flags are named as nsc names them, so nsc users feel at home.

/// `println!` for command output, through [`write_out`]: a reader that closed the pipe
/// is not an error. Evaluates to `anyhow::Result<()>`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

/// `print!` for command output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format!($($arg)*).as_bytes())
    };
}

pub mod account;
pub mod artifacts;
pub mod bench;
mod bulk_file;
pub mod callout;
pub mod chat;
pub mod completions;
pub mod config_file;
pub mod context;
pub mod deploy;
pub mod device;
pub mod dir_keys;
pub mod dirsync;
pub mod doctor;
mod examples;
pub mod exports;
pub mod governance;
pub mod init;
pub mod leaf;
pub mod mappings;
pub mod nsc;
pub mod onboarding;
pub mod operator;
pub mod org;
pub mod progress;
pub mod secret_out;
pub mod serve;
pub mod signing_keys;
pub mod streams;
pub mod sync;
pub mod tenant;
pub mod tenant_lint;
pub mod tls;
pub mod tokens;
pub mod tool;
pub mod user;
mod values;

use std::io::Write;
use std::path::PathBuf;
use warden_nats::NatsUrls;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use warden_core::parse;
use warden_store::{MasterKey, Store};

use crate::paths;
use warden_ops::Warden;

/// A usage error found while reading flags (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code of each kind of operation error: 2 for the caller's mistake, 1 for
/// everything else (the one mapping of the command line).
pub fn exit_code(kind: warden_ops::ErrorKind) -> u8 {
    use warden_ops::ErrorKind;
    match kind {
        ErrorKind::Invalid => 2,
        ErrorKind::NotFound
        | ErrorKind::Conflict
        | ErrorKind::Refused
        | ErrorKind::Unavailable
        | ErrorKind::Internal => 1,
    }
}

/// How a failed command is reported: its exit code (2 for the caller's mistake, 1
/// otherwise), the stable code (an operation's, as the HTTP API and the NATS service
/// give it; `invalid` for a usage error; `failed` for anything else) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Process exit code.
    pub exit: u8,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// The error and its causes on one line.
    pub message: String,
}

impl Failure {
    /// The report of `err`.
    pub fn of(err: &anyhow::Error) -> Failure {
        let ops = err
            .chain()
            .find_map(|e| e.downcast_ref::<warden_ops::OpsError>());
        let usage = err
            .chain()
            .any(|e| e.downcast_ref::<UsageError>().is_some());
        let (exit, code) = match (ops, usage) {
            (Some(e), _) => (exit_code(e.kind()), e.code()),
            (None, true) => (2, warden_ops::ErrorKind::Invalid.code()),
            (None, false) => (1, "failed"),
        };
        Failure {
            exit,
            code,
            message: one_line(err),
        }
    }

    /// What is written on standard error: `error: MESSAGE`, or with `--json` the same
    /// JSON object the HTTP API answers with (`{"error":{"code":…,"message":…}}`).
    pub fn render(&self, json: bool) -> String {
        if json {
            serde_json::json!({"error": {"code": self.code, "message": self.message}}).to_string()
        } else {
            format!("error: {}", self.message)
        }
    }
}

/// The error and its causes on one line, without repeating a cause that the message
/// already contains.
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.replace('\n', " ")
}

/// Whether `--json` is on the command line or in the environment's defaults, read
/// before parsing so that even a parse failure can be reported as JSON.
pub fn json_requested(args: &[std::ffi::OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}

/// An error of an operation's own error type (one that is not an `OpsError` yet), as the
/// command line reports it: a usage error (exit code 2) when `usage`, else a failure
/// (exit code 1) with its causes kept.
pub(crate) fn usage_if<E>(usage: bool, e: E) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    if usage {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Warden: identity and access control plane for NATS.
#[derive(Parser, Debug)]
#[command(name = "warden", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("WARDEN_GIT_COMMIT"), ")"), about, long_about = None)]
#[command(after_help = LOG_HELP)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// What `warden --help` says about logs.
const LOG_HELP: &str = "Logs go to stderr. WARDEN_LOG chooses what is logged (tracing's env-filter \
syntax, e.g. `info` or `warn,warden_ops::relay=debug`; default `warn`); --log-format or \
WARDEN_LOG_FORMAT chooses text (coloured only on a terminal) or json (one object per line).";

/// How log lines are written (`--log-format`, `WARDEN_LOG_FORMAT`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (ANSI colours only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The log format asked for.
    pub fn log_format(&self) -> LogFormat {
        self.global.log_format
    }

    /// Whether this runs the standalone rooms gateway (`warden chat`), or the bare
    /// fan-out its bench compares it with (which must run as the gateway does).
    pub fn is_chat_gateway(&self) -> bool {
        matches!(
            self.command,
            Command::Chat(_) | Command::Bench(bench::BenchCmd::ChatFloor { .. })
        )
    }
}

#[derive(Args, Debug, Clone)]
pub(crate) struct Global {
    /// Data directory (SQLite database, master key, rendered files).
    #[arg(long, global = true, env = "WARDEN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://USER@HOST/DB (default: SQLite in the data directory).
    #[arg(
        long,
        global = true,
        env = "WARDEN_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// Log lines on stderr: text or json (what is logged: WARDEN_LOG).
    #[arg(long, global = true, env = "WARDEN_LOG_FORMAT", value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Configuration file (read before the flags: see `config_file`); default /etc/warden/warden.toml for serve, chat, callout run and doctor.
    #[arg(long, global = true, env = "WARDEN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Create the operator, its account and user, the system account and user, and apply the JWT migrations (idempotent).
    #[command(after_help = examples::INIT)]
    Init(init::InitArgs),
    /// Show the database, the operator and counts.
    Status,
    /// The operator.
    #[command(subcommand)]
    Operator(operator::OperatorCmd),
    /// Accounts.
    #[command(subcommand, after_help = examples::ACCOUNT)]
    Account(account::AccountCmd),
    /// Users.
    #[command(subcommand, after_help = examples::USER)]
    User(user::UserCmd),
    /// Write a user's creds file (JWT + seed).
    #[command(after_help = examples::CREDS)]
    Creds {
        /// Account name.
        account: String,
        /// User name.
        user: String,
        /// Output file (written 0600); stdout when absent.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Decode any NATS JWT or creds file and check its signature.
    #[command(after_help = examples::DESCRIBE)]
    Describe {
        /// A JWT, or a file holding a JWT or creds.
        token_or_file: String,
    },
    /// Render a nats-server configuration that trusts this operator.
    #[command(after_help = examples::NATS_CONFIG)]
    NatsConfig(artifacts::NatsConfigArgs),
    /// A whole deployment (clusters, gateways, JetStream): one server configuration per node.
    #[command(subcommand, after_help = examples::DEPLOY)]
    Deploy(deploy::DeployCmd),
    /// Apply JWT migrations from a JSON file (each applied once).
    Migrate {
        /// JSON file: a list of {id, description, steps}.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Run the HTTP API, the outbox relay and the NATS service.
    #[command(after_help = examples::SERVE)]
    Serve(serve::ServeArgs),
    /// Run the rooms gateway alone (`/rooms`, `/chat`), sharing NATS and the store with others.
    Chat(chat::ChatCmdArgs),
    /// Deliver pending changes to nats-server now (without `serve`), or push accounts.
    #[command(after_help = examples::PUSH)]
    Push {
        /// Push this account's current JWT.
        account: Option<String>,
        /// Push every account's current JWT.
        #[arg(long, conflicts_with = "account")]
        all: bool,
        /// Server URL (several servers of a cluster: comma-separated); by default the
        /// servers the running (or last) `warden serve` was given.
        #[arg(long, value_name = "URL[,URL...]", env = "WARDEN_NATS_URL")]
        nats: Option<NatsUrls>,
    },
    /// Compare what nats-server holds with Warden (exit 1 on drift), or repair it.
    #[command(after_help = examples::SYNC)]
    Sync {
        /// Report drift only.
        #[arg(long, conflicts_with = "fix", required_unless_present = "fix")]
        check: bool,
        /// Push missing and stale accounts, delete unknown ones.
        #[arg(long)]
        fix: bool,
        /// Server URL (several servers of a cluster: comma-separated); by default the
        /// servers the running (or last) `warden serve` was given.
        #[arg(long, value_name = "URL[,URL...]", env = "WARDEN_NATS_URL")]
        nats: Option<NatsUrls>,
    },
    /// The account commands use when `-a` is left out (as `nsc env -a`).
    #[command(subcommand, after_help = examples::CONTEXT)]
    Context(context::ContextCmd),
    /// Admin bearer tokens of the HTTP API.
    #[command(subcommand)]
    Token(tokens::TokenCmd),
    /// The hash-chained ledger of every change.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// A small NATS client to check access with Warden-issued creds.
    #[command(subcommand)]
    Tool(tool::ToolCmd),
    /// Measurements to run on your own hardware.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Describe an organisation (units, people) once; apply it as accounts and users.
    #[command(subcommand)]
    Org(org::OrgCmd),
    /// Write the operator, accounts, users and keys out (nsc store and keystore, or flat creds).
    Export(nsc::ExportArgs),
    /// Bring an existing nsc operator (store + keystore) into an empty Warden database.
    #[command(subcommand)]
    Import(nsc::ImportCmd),
    /// Device fleet: one account per device behind a shared hub account.
    #[command(subcommand)]
    Device(device::DeviceCmd),
    /// Declared JetStream streams: apply a spec, list an account's streams.
    #[command(subcommand)]
    Streams(streams::StreamsCmd),
    /// Tenants: one account each, prefixed into a shared platform account.
    #[command(subcommand)]
    Tenant(tenant::TenantCmd),
    /// Onboarding packages: creds, client certificate and config for a tenant's collector.
    #[command(subcommand)]
    Onboarding(onboarding::OnboardingCmd),
    /// Identity governance: directory users, expiry of grants.
    #[command(subcommand)]
    Dir(governance::DirCmd),
    /// Governance roles (members, owners, admins, tasks).
    #[command(subcommand)]
    Role(governance::RoleCmd),
    /// Governance tasks: NATS grants in one account.
    #[command(subcommand)]
    Task(governance::TaskCmd),
    /// Propose a change of membership, ownership, administration, role tasks or manager.
    #[command(subcommand)]
    Propose(governance::ProposeCmd),
    /// Governance proposals.
    #[command(subcommand)]
    Proposals(governance::ProposalsCmd),
    /// Confirm proposals (several ids: batch approval, one transaction each).
    Confirm(governance::ConfirmArgs),
    /// Reject a proposal.
    Reject(governance::RejectArgs),
    /// Activations of private exports, for accounts Warden does not manage.
    #[command(subcommand)]
    Activation(exports::ActivationCmd),
    /// Auth callout: Warden decides at connect time who connects (nats-server ≥ 2.10).
    #[command(subcommand)]
    Callout(callout::CalloutCmd),
    /// Check the database, master key, nats-server, outbox and clock; one line each (exit 1 if any fails).
    Doctor(doctor::DoctorArgs),
    /// Print the shell completion script (bash, zsh, fish).
    Completions(completions::CompletionsArgs),
    /// Print a user's JWT (for a user who holds their own seed: `warden creds` cannot).
    Jwt {
        /// Account name.
        account: String,
        /// User name.
        user: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// List ledger events.
    List {
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Keep printing new events as they are recorded.
        #[arg(long)]
        follow: bool,
    },
    /// Check the hash chain; names the first edited, inserted or removed row.
    Verify,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<()> {
    let g = cli.global.clone();
    match cli.command {
        Command::Init(args) => init::init(&g, args).await,
        Command::Describe { token_or_file } => {
            // Names the issuer when this data directory's Warden holds its key; a JWT
            // from elsewhere is described all the same.
            let warden = open(&g).await.ok();
            artifacts::describe(&g, &token_or_file, warden.as_ref()).await
        }
        Command::Tool(cmd) => {
            let cmd = cmd.with_context_account(&context::Context::load(&locate(&g).0));
            tool::run(&g.json, cmd, || open(&g)).await
        }
        Command::Bench(cmd) => bench::run(g.json, cmd).await,
        Command::Doctor(args) => doctor::run(&g, args).await,
        Command::Completions(args) => completions::run(args),
        Command::Import(cmd) => {
            nsc::check_import_dirs(&cmd)?;
            nsc::run_import(g.json, cmd, open_or_create(&g).await?).await
        }
        other => {
            let warden = open(&g).await?;
            dispatch(&g, &warden, other).await
        }
    }
}

async fn dispatch(g: &Global, w: &Warden, command: Command) -> Result<()> {
    match command {
        Command::Status => {
            let s = w.status().await?;
            let ctx = context::Context::load(&locate(g).0);
            let mut value = serde_json::to_value(&s)?;
            value["context_account"] = serde_json::json!(ctx.account);
            emit(g, &value, || {
                let mut out = format!("database     {} ({})\n", s.database, s.backend);
                match &s.operator {
                    Some(op) => {
                        out += &format!("operator     {} {}\n", op.name, op.public_key);
                        out += &format!("system acct  {}\n", op.system_account);
                    }
                    None => out += "operator     (none: run `warden init`)\n",
                }
                out += &format!(
                    "accounts     {}\nusers        {}\nledger       {} events\noutbox       {} pending\nmigrations   {}\n",
                    s.accounts,
                    s.users,
                    s.ledger_events,
                    s.outbox_pending,
                    if s.migrations.is_empty() {
                        "-".to_string()
                    } else {
                        s.migrations.join(", ")
                    }
                );
                out += &format!(
                    "context      {}\n",
                    match &ctx.account {
                        Some(a) => format!("account {a} (used when -a is left out)"),
                        None => "-".to_string(),
                    }
                );
                out
            })
        }
        Command::Operator(cmd) => operator::run(g.json, cmd, w).await,
        Command::Account(cmd) => account::run(g.json, w, cmd).await,
        Command::User(cmd) => {
            let ctx = context::Context::load(&locate(g).0);
            user::run(g.json, w, cmd, &ctx).await
        }
        Command::Creds {
            account,
            user,
            output,
        } => artifacts::creds(g.json, w, &account, &user, output).await,
        Command::NatsConfig(args) => artifacts::nats_config(g, w, args).await,
        Command::Deploy(cmd) => deploy::run(g.json, cmd, w).await,
        Command::Migrate { file } => init::migrate(g.json, w, &file).await,
        Command::Serve(args) => serve::run(w, args).await,
        Command::Callout(cmd) => callout::run(g.json, w, cmd).await,
        Command::Chat(args) => chat::run(w, args).await,
        Command::Push { account, all, nats } => {
            let nats = sync::servers(w, nats).await?;
            sync::push(g, w, account, all, &nats).await
        }
        Command::Sync {
            check: _,
            fix,
            nats,
        } => {
            let nats = sync::servers(w, nats).await?;
            sync::run(g, w, fix, &nats).await
        }
        Command::Audit(cmd) => audit(g, w, cmd).await,
        Command::Context(cmd) => context::run(g.json, w, &locate(g).0, cmd).await,
        Command::Token(cmd) => tokens::run(g.json, cmd, w).await,
        Command::Org(cmd) => org::run(g.json, cmd, w).await,
        Command::Streams(cmd) => {
            let ctx = context::Context::load(&locate(g).0);
            streams::run(g.json, cmd, w, &ctx).await
        }
        Command::Export(args) => nsc::run_export(g.json, args, w).await,
        Command::Device(cmd) => device::run(g.json, cmd, w).await,
        Command::Tenant(cmd) => tenant::run(g.json, cmd, w).await,
        Command::Onboarding(cmd) => onboarding::run(g.json, cmd, w).await,
        Command::Dir(cmd) => governance::run_dir(g.json, cmd, w).await,
        Command::Role(cmd) => governance::run_role(g.json, cmd, w).await,
        Command::Task(cmd) => governance::run_task(g.json, cmd, w).await,
        Command::Propose(cmd) => governance::run_propose(g.json, cmd, w).await,
        Command::Proposals(cmd) => governance::run_proposals(g.json, cmd, w).await,
        Command::Confirm(args) => governance::run_confirm(g.json, args, w).await,
        Command::Reject(args) => governance::run_reject(g.json, args, w).await,
        Command::Activation(cmd) => exports::run_activation(g.json, w, cmd).await,
        Command::Jwt { account, user } => dir_keys::run_jwt(g.json, &account, &user, w).await,
        Command::Init(_)
        | Command::Describe { .. }
        | Command::Tool(_)
        | Command::Bench(_)
        | Command::Doctor(_)
        | Command::Completions(_)
        | Command::Import(_) => {
            unreachable!("handled before opening the store")
        }
    }
}

async fn audit(g: &Global, w: &Warden, cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::List {
            after,
            limit,
            follow,
        } => {
            let mut after = after;
            loop {
                let events = w.ledger_events(after, limit.max(1)).await?;
                for e in &events {
                    if g.json {
                        outln!("{}", serde_json::to_string(e)?)?;
                    } else {
                        outln!(
                            "{:>6}  {}  {:<18} {:<10} {}  {}",
                            e.seq,
                            parse::format_unix(e.at),
                            e.action,
                            e.actor,
                            e.object_key,
                            e.summary
                        )?;
                    }
                    after = e.seq;
                }
                if !follow || stdout_closed() {
                    return Ok(());
                }
                if events.is_empty() {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                    }
                }
            }
        }
        AuditCmd::Verify => {
            let report = w.verify_ledger().await?;
            emit(g, &report, || match &report.first_break {
                None => format!("ledger intact: {} events\n", report.events),
                Some(b) => format!("ledger BROKEN at seq {}: {}\n", b.seq, b.problem),
            })?;
            if let Some(b) = &report.first_break {
                bail!("ledger broken at seq {}: {}", b.seq, b.problem);
            }
            Ok(())
        }
    }
}

/// The one table style of human output.
pub fn table(header: impl Into<comfy_table::Row>) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header);
    t
}

/// A time in human output: RFC 3339 (UTC), or `none` when there is none.
pub fn time_or(at: Option<i64>, none: &str) -> String {
    at.map(parse::format_unix)
        .unwrap_or_else(|| none.to_string())
}

/// `--json` as the output functions take it: the global flags, or the flag itself.
impl From<&Global> for bool {
    fn from(g: &Global) -> bool {
        g.json
    }
}

/// Prints `value` as JSON with `--json`, else the human text `human` makes.
pub fn emit<T: Serialize>(
    json: impl Into<bool>,
    value: &T,
    human: impl FnOnce() -> String,
) -> Result<()> {
    if json.into() {
        print_json(value)
    } else {
        write_out(human().as_bytes())
    }
}

/// Prints `value` as pretty JSON on stdout (the `--json` output of every command).
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_out(text.as_bytes())
}

/// Writes output to stdout. A reader that closed the pipe (`warden … | head -1`) is
/// not an error: the command still exits 0.
pub fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        other => Ok(other?),
    }
}

/// Set once a write found standard output closed by its reader.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether standard output's reader has gone (a command that follows, like
/// `audit list --follow`, stops then instead of writing into nothing).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Database URL and data directory from the global flags.
fn locate(g: &Global) -> (PathBuf, String, bool) {
    let dir = paths::data_dir(g.data_dir.as_deref());
    match &g.database_url {
        Some(url) => (dir, url.clone(), false),
        None => {
            let url = paths::default_database_url(&dir);
            (dir, url, true)
        }
    }
}

/// Opens the database of the global flags, creating the data directory and master key
/// if needed (`warden init`, `warden import`).
async fn open_or_create(g: &Global) -> Result<Warden> {
    let (dir, url, _) = locate(g);
    paths::ensure_data_dir(&dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let key = MasterKey::from_env_or_file(&dir, true)?;
    let store = Store::open(&url, key).await?;
    Ok(Warden::open(store, actor()).await?)
}

/// Opens the existing database of the global flags.
async fn open(g: &Global) -> Result<Warden> {
    let (dir, url, default_sqlite) = locate(g);
    if default_sqlite && !dir.join("warden.db").exists() {
        bail!(
            "no Warden database at {url}: run `warden init` first (or pass --data-dir / --database-url)"
        );
    }
    let key = MasterKey::from_env_or_file(&dir, false)?;
    let store = Store::open(&url, key).await?;
    Ok(Warden::open(store, actor()).await?)
}

/// The local operator: whoever runs `warden` here, with every scope.
pub(crate) fn actor() -> warden_ops::Actor {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    warden_ops::Actor::operator(format!("cli:{who}"))
}

pub use progress::show_progress;
