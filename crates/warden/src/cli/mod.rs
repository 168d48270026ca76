//! The command line: clap definitions, flag parsing at the edge (bad input is a
//! usage error, exit code 2, before anything is touched), and printing (tables for
//! people, `--json` for scripts).
//!
//! Flags are named as nsc names them, so nsc users feel at home.

pub mod device;
pub mod dir_keys;
pub mod dirsync;
pub mod governance;
pub mod leaf;
pub mod nsc;
pub mod onboarding;
pub mod org;
pub mod progress;
pub mod streams;
pub mod tenant;
pub mod tenant_lint;
pub mod tokens;
pub mod tool;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use nats_jwt::{ConnectionType, Subject};
use serde::Serialize;
use warden_core::bootstrap::{DEFAULT_SERVICE_PREFIX, default_migrations};
use warden_core::parse::{self, parse_cidr, parse_duration_ns, parse_expiry, parse_size};
use warden_core::spec::{AccountLimitsEdit, PermissionsEdit, UserEdit};
use warden_core::{AccountSpec, JwtMigration, NameCase, NamingPolicy, UserSpec};
use warden_nats::config::ServerConfig;
use warden_store::{MasterKey, Store};

use crate::paths;
use warden_ops::{self, InitOptions, Settings, Warden};

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

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Warden: identity and access control plane for NATS.
#[derive(Parser, Debug)]
#[command(name = "warden", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Global {
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
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Create the operator, its account and user, the system account and user, and apply the JWT migrations (idempotent).
    Init(InitArgs),
    /// Show the database, the operator and counts.
    Status,
    /// The operator.
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Write a user's creds file (JWT + seed).
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
    Describe {
        /// A JWT, or a file holding a JWT or creds.
        token_or_file: String,
    },
    /// Render a nats-server configuration that trusts this operator.
    NatsConfig(NatsConfigArgs),
    /// Apply JWT migrations from a JSON file (each applied once).
    Migrate {
        /// JSON file: a list of {id, description, steps}.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Run the HTTP API, the outbox relay and the NATS service.
    Serve(crate::serve::ServeArgs),
    /// Run the rooms gateway alone (`/rooms`, `/chat`), sharing NATS and the store with others.
    Chat(crate::chat::ChatCmdArgs),
    /// Deliver pending changes to nats-server now (without `serve`), or push accounts.
    Push {
        /// Push this account's current JWT.
        account: Option<String>,
        /// Push every account's current JWT.
        #[arg(long, conflicts_with = "account")]
        all: bool,
        /// Server URL.
        #[arg(long, env = "WARDEN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats: String,
    },
    /// Compare what nats-server holds with Warden (exit 1 on drift), or repair it.
    Sync {
        /// Report drift only.
        #[arg(long, conflicts_with = "fix", required_unless_present = "fix")]
        check: bool,
        /// Push missing and stale accounts, delete unknown ones.
        #[arg(long)]
        fix: bool,
        /// Server URL.
        #[arg(long, env = "WARDEN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats: String,
    },
    /// Admin bearer tokens of the HTTP API.
    #[command(subcommand)]
    Token(crate::cli::tokens::TokenCmd),
    /// The hash-chained ledger of every change.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// A small NATS client to check access with Warden-issued creds.
    #[command(subcommand)]
    Tool(crate::cli::tool::ToolCmd),
    /// Measurements to run on your own hardware.
    #[command(subcommand)]
    Bench(crate::bench::BenchCmd),
    /// Describe an organisation (units, people) once; apply it as accounts and users.
    #[command(subcommand)]
    Org(crate::cli::org::OrgCmd),
    /// Write the operator, accounts, users and keys out (nsc store and keystore, or flat creds).
    Export(crate::cli::nsc::ExportArgs),
    /// Bring an existing nsc operator (store + keystore) into an empty Warden database.
    #[command(subcommand)]
    Import(crate::cli::nsc::ImportCmd),
    /// Device fleet: one account per device behind a shared hub account.
    #[command(subcommand)]
    Device(crate::cli::device::DeviceCmd),
    /// Declared JetStream streams: apply a spec, list an account's streams.
    #[command(subcommand)]
    Streams(crate::cli::streams::StreamsCmd),
    /// Tenants: one account each, prefixed into a shared platform account.
    #[command(subcommand)]
    Tenant(crate::cli::tenant::TenantCmd),
    /// Onboarding packages: creds, client certificate and config for a tenant's collector.
    #[command(subcommand)]
    Onboarding(crate::cli::onboarding::OnboardingCmd),
    /// Identity governance: directory users, expiry of grants.
    #[command(subcommand)]
    Dir(crate::cli::governance::DirCmd),
    /// Governance roles (members, owners, admins, tasks).
    #[command(subcommand)]
    Role(crate::cli::governance::RoleCmd),
    /// Governance tasks: NATS grants in one account.
    #[command(subcommand)]
    Task(crate::cli::governance::TaskCmd),
    /// Propose a change of membership, ownership, administration, role tasks or manager.
    #[command(subcommand)]
    Propose(crate::cli::governance::ProposeCmd),
    /// Governance proposals.
    #[command(subcommand)]
    Proposals(crate::cli::governance::ProposalsCmd),
    /// Confirm proposals (several ids: batch approval, one transaction each).
    Confirm(crate::cli::governance::ConfirmArgs),
    /// Reject a proposal.
    Reject(crate::cli::governance::RejectArgs),
    /// Print a user's JWT (for a user who holds their own seed: `warden creds` cannot).
    Jwt {
        /// Account name.
        account: String,
        /// User name.
        user: String,
    },
}

#[derive(Args, Debug)]
struct InitArgs {
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
}

fn parse_case(s: &str) -> Result<NameCase, String> {
    s.parse().map_err(|e: warden_core::NameError| e.to_string())
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

#[derive(Subcommand, Debug)]
enum OperatorCmd {
    /// Show the operator (public key, JWT, signing key, system account).
    Show,
}

#[derive(Subcommand, Debug)]
enum AccountCmd {
    /// Add an account.
    Add {
        /// Account name.
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List accounts.
    List,
    /// Show an account.
    Show {
        /// Account name.
        name: String,
    },
    /// Change an account's limits.
    Edit {
        /// Account name.
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete an account and all its users.
    Delete {
        /// Account name.
        name: String,
    },
}

/// Account limits, as nsc names them; sizes accept units (1K, 5MB) and -1 for unlimited.
#[derive(Args, Debug, Default)]
struct LimitFlags {
    /// Max client connections.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    conns: Option<i64>,
    /// Max subscriptions per connection.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    subscriptions: Option<i64>,
    /// Max message payload.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    payload: Option<i64>,
    /// Max data.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    data: Option<i64>,
    /// Max leaf node connections.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    leaf_conns: Option<i64>,
    /// Max imports.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    imports: Option<i64>,
    /// Max exports.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    exports: Option<i64>,
    /// Allow wildcard exports (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    wildcard_exports: Option<bool>,
    /// Refuse bearer-token users (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    disallow_bearer: Option<bool>,
    /// JetStream memory storage (0 disables, -1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_mem_storage: Option<i64>,
    /// JetStream disk storage (0 disables, -1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_disk_storage: Option<i64>,
    /// JetStream streams.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_streams: Option<i64>,
    /// JetStream consumers.
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    js_consumer: Option<i64>,
}

fn size(s: &str) -> Result<i64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

impl LimitFlags {
    fn edit(&self) -> AccountLimitsEdit {
        AccountLimitsEdit {
            conns: self.conns,
            subscriptions: self.subscriptions,
            payload: self.payload,
            data: self.data,
            leaf_conns: self.leaf_conns,
            imports: self.imports,
            exports: self.exports,
            wildcard_exports: self.wildcard_exports,
            disallow_bearer: self.disallow_bearer,
            js_mem_storage: self.js_mem_storage,
            js_disk_storage: self.js_disk_storage,
            js_streams: self.js_streams,
            js_consumer: self.js_consumer,
            js_max_ack_pending: None,
        }
    }
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add a user to an account.
    Add {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
        #[command(flatten)]
        perms: UserFlags,
    },
    /// List an account's users.
    List {
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Show a user.
    Show {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Change a user's permissions and limits (re-issues its JWT).
    Edit {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
        #[command(flatten)]
        perms: UserFlags,
        /// Remove these subjects from every allow and deny list.
        #[arg(long = "rm", value_delimiter = ',', value_name = "SUBJECT")]
        remove: Vec<String>,
        /// Remove the response permission.
        #[arg(long)]
        rm_response_perms: bool,
        /// Remove these connection types.
        #[arg(long, value_delimiter = ',', value_name = "TYPE")]
        rm_conn_type: Vec<String>,
        /// Remove these source networks.
        #[arg(long, value_delimiter = ',', value_name = "CIDR")]
        rm_source_network: Vec<String>,
        /// Remove these tags.
        #[arg(long, value_delimiter = ',', value_name = "TAG")]
        rm_tag: Vec<String>,
    },
    /// Revoke a user in its account JWT (the server refuses and disconnects it).
    Revoke {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Delete a user (its key is revoked first).
    Delete {
        /// User name.
        name: String,
        /// Account name.
        #[arg(short, long)]
        account: String,
    },
    /// Say which governance role and task allow or deny a directory user a subject.
    Explain {
        /// Directory user id.
        user: String,
        /// Subject.
        subject: String,
        /// Only this account (default: every account the user has grants in).
        #[arg(long)]
        account: Option<String>,
    },
}

/// User permissions and limits, as nsc names them. Subject lists are repeatable
/// and comma-separated.
#[derive(Args, Debug, Default)]
struct UserFlags {
    /// Allow publishing to these subjects.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT")]
    allow_pub: Vec<String>,
    /// Allow subscribing to these subjects (`subject queue` for a queue group).
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT")]
    allow_sub: Vec<String>,
    /// Allow publishing and subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT")]
    allow_pubsub: Vec<String>,
    /// Deny publishing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT")]
    deny_pub: Vec<String>,
    /// Deny subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT")]
    deny_sub: Vec<String>,
    /// Deny publishing and subscribing.
    #[arg(long, value_delimiter = ',', value_name = "SUBJECT")]
    deny_pubsub: Vec<String>,
    /// Allow publishing to reply subjects of received requests (max N replies, default 1).
    #[arg(long, num_args = 0..=1, default_missing_value = "1", value_name = "N")]
    allow_pub_response: Option<i64>,
    /// How long the response permission lasts (e.g. 1s, 5m).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    response_ttl: Option<i64>,
    /// Bearer token: no nonce signature needed to connect (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    bearer: Option<bool>,
    /// Allowed connection types: STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT, MQTT_WS.
    #[arg(long, value_delimiter = ',', value_name = "TYPE")]
    conn_type: Vec<String>,
    /// Allowed source networks (CIDR or address).
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    source_network: Vec<String>,
    /// Expiry: 0 (never), 30m, 12h, 7d, 2w, 6M, 1y, or a date (2027-01-31).
    #[arg(long, value_name = "WHEN")]
    expiry: Option<String>,
    /// Max subscriptions (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    subs: Option<i64>,
    /// Max data (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    data: Option<i64>,
    /// Max payload (-1 unlimited).
    #[arg(long, value_parser = size, allow_hyphen_values = true)]
    payload: Option<i64>,
    /// Tags (lower-cased).
    #[arg(long = "tag", value_delimiter = ',')]
    tags: Vec<String>,
}

fn duration(s: &str) -> Result<i64, String> {
    parse_duration_ns(s).map_err(|e| e.to_string())
}

fn subjects(list: &[String]) -> Result<Vec<Subject>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| Subject::new(s.trim()).map_err(|e| usage(e.to_string())))
        .collect()
}

impl UserFlags {
    fn edit(&self) -> Result<UserEdit> {
        let mut allow_pub = subjects(&self.allow_pub)?;
        let mut allow_sub = subjects(&self.allow_sub)?;
        let mut deny_pub = subjects(&self.deny_pub)?;
        let mut deny_sub = subjects(&self.deny_sub)?;
        for s in subjects(&self.allow_pubsub)? {
            allow_pub.push(s.clone());
            allow_sub.push(s);
        }
        for s in subjects(&self.deny_pubsub)? {
            deny_pub.push(s.clone());
            deny_sub.push(s);
        }
        if let Some(s) = allow_pub
            .iter()
            .chain(&deny_pub)
            .find(|s| s.queue().is_some())
        {
            bail!(usage(format!(
                "publish permission {s:?} has a queue group; queue groups apply to subscriptions only"
            )));
        }
        if let Some(n) = self.allow_pub_response
            && n < 1
        {
            bail!(usage(format!(
                "--allow-pub-response must be at least 1, got {n}"
            )));
        }
        let expiry = match &self.expiry {
            None => None,
            Some(text) => {
                let now = warden_ops::now();
                let at = parse_expiry(text, now).map_err(|e| usage(e.to_string()))?;
                if let Some(t) = at
                    && t <= now
                {
                    bail!(usage(format!(
                        "expiry {text:?} ({}) is in the past",
                        parse::format_unix(t)
                    )));
                }
                Some(at)
            }
        };
        for (flag, v) in [
            ("--subs", self.subs),
            ("--data", self.data),
            ("--payload", self.payload),
        ] {
            if let Some(n) = v {
                parse::check_limit(n).map_err(|e| usage(format!("{flag}: {e}")))?;
            }
        }
        Ok(UserEdit {
            permissions: PermissionsEdit {
                allow_pub,
                allow_sub,
                deny_pub,
                deny_sub,
                remove: Vec::new(),
                allow_pub_response: self.allow_pub_response,
                response_ttl_ns: self.response_ttl,
                remove_response: false,
            },
            bearer: self.bearer,
            add_conn_types: conn_types(&self.conn_type)?,
            remove_conn_types: Vec::new(),
            add_source_networks: cidrs(&self.source_network)?,
            remove_source_networks: Vec::new(),
            expiry,
            subs: self.subs,
            data: self.data,
            payload: self.payload,
            add_tags: self.tags.clone(),
            remove_tags: Vec::new(),
        })
    }
}

fn conn_types(list: &[String]) -> Result<Vec<ConnectionType>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim().parse::<ConnectionType>().map_err(|_| {
                usage(format!(
                    "unknown connection type {s:?}: use STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT or MQTT_WS"
                ))
            })
        })
        .collect()
}

fn cidrs(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_cidr(s).map_err(|e| usage(e.to_string())))
        .collect()
}

#[derive(Args, Debug)]
struct NatsConfigArgs {
    /// Client listen address.
    #[arg(long, default_value = "127.0.0.1:4222", value_name = "HOST:PORT")]
    listen: String,
    /// Directory of the full account resolver (default: <data-dir>/nats/resolver).
    #[arg(long, value_name = "DIR")]
    resolver_dir: Option<PathBuf>,
    /// Enable JetStream, storing in DIR.
    #[arg(long, value_name = "DIR")]
    jetstream: Option<PathBuf>,
    /// server_name.
    #[arg(long)]
    server_name: Option<String>,
    /// Websocket listener (no TLS), HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    websocket: Option<String>,
    /// Leaf node listener, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    leafnodes: Option<String>,
    /// TLS certificate (PEM) of the leaf node listener.
    #[arg(long, value_name = "FILE", requires_all = ["leafnodes", "leafnodes_tls_key"])]
    leafnodes_tls_cert: Option<PathBuf>,
    /// Key (PEM) of the leaf node listener's certificate.
    #[arg(long, value_name = "FILE", requires = "leafnodes_tls_cert")]
    leafnodes_tls_key: Option<PathBuf>,
    /// CA (PEM) that leaf nodes' client certificates are verified against (`verify: true`).
    #[arg(long, value_name = "FILE", requires = "leafnodes_tls_cert")]
    leafnodes_tls_verify_ca: Option<PathBuf>,
    /// HTTP monitoring listener, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    monitoring: Option<String>,
    /// Output file; stdout when absent.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<()> {
    let g = cli.global.clone();
    match cli.command {
        Command::Init(args) => init(&g, args).await,
        Command::Describe { token_or_file } => describe(&g, &token_or_file),
        Command::Tool(cmd) => crate::cli::tool::run(&g.json, cmd, || open(&g)).await,
        Command::Bench(cmd) => crate::bench::run(g.json, cmd).await,
        Command::Import(cmd) => {
            crate::cli::nsc::check_import_dirs(&cmd)?;
            let (dir, url, _) = locate(&g);
            paths::ensure_data_dir(&dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
            let key = MasterKey::from_env_or_file(&dir, true)?;
            let store = Store::open(&url, key).await?;
            let w = Warden::open(store, actor()).await?;
            crate::cli::nsc::run_import(g.json, cmd, w).await
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
            emit(g, &s, || {
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
                out
            })
        }
        Command::Operator(OperatorCmd::Show) => {
            let op = w.operator().await?;
            emit(g, &op, || {
                format!(
                    "name            {}\npublic key      {}\nsigning key     {}\nsystem account  {}\njwt             {}\n",
                    op.name, op.public_key, op.signing_key, op.system_account, op.jwt
                )
            })
        }
        Command::Account(cmd) => account(g, w, cmd).await,
        Command::User(cmd) => user(g, w, cmd).await,
        Command::Creds {
            account,
            user,
            output,
        } => {
            let creds = w.creds(&account, &user).await?;
            match output {
                Some(path) => {
                    paths::write_secret_file(&path, creds.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if g.json {
                        print_json(
                            &serde_json::json!({"account": account, "user": user, "file": path}),
                        )?;
                    } else {
                        eprintln!(
                            "creds for {account}/{user} written to {} (mode 0600)",
                            path.display()
                        );
                    }
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(creds.as_bytes())?;
                }
            }
            Ok(())
        }
        Command::NatsConfig(args) => nats_config(g, w, args).await,
        Command::Migrate { file } => {
            let list = read_migrations(&file)?;
            let applied = w.migrate(&list).await?;
            emit(g, &serde_json::json!({"applied": applied}), || {
                if applied.is_empty() {
                    "no pending migrations\n".to_string()
                } else {
                    format!("applied {}\n", applied.join(", "))
                }
            })
        }
        Command::Serve(args) => crate::serve::run(w.clone(), args).await,
        Command::Chat(args) => crate::chat::run_standalone(w.clone(), args).await,
        Command::Push { account, all, nats } => push(g, w, account, all, &nats).await,
        Command::Sync {
            check: _,
            fix,
            nats,
        } => sync(g, w, fix, &nats).await,
        Command::Audit(cmd) => audit(g, w, cmd).await,
        Command::Token(cmd) => crate::cli::tokens::run(g.json, cmd, w).await,
        Command::Org(cmd) => crate::cli::org::run(g.json, cmd, w).await,
        Command::Streams(cmd) => crate::cli::streams::run(g.json, cmd, w).await,
        Command::Export(args) => crate::cli::nsc::run_export(g.json, args, w).await,
        Command::Device(cmd) => crate::cli::device::run(g.json, cmd, w).await,
        Command::Tenant(cmd) => crate::cli::tenant::run(g.json, cmd, w).await,
        Command::Onboarding(cmd) => crate::cli::onboarding::run(g.json, cmd, w).await,
        Command::Dir(cmd) => crate::cli::governance::run_dir(g.json, cmd, w).await,
        Command::Role(cmd) => crate::cli::governance::run_role(g.json, cmd, w).await,
        Command::Task(cmd) => crate::cli::governance::run_task(g.json, cmd, w).await,
        Command::Propose(cmd) => crate::cli::governance::run_propose(g.json, cmd, w).await,
        Command::Proposals(cmd) => crate::cli::governance::run_proposals(g.json, cmd, w).await,
        Command::Confirm(args) => crate::cli::governance::run_confirm(g.json, args, w).await,
        Command::Reject(args) => crate::cli::governance::run_reject(g.json, args, w).await,
        Command::Jwt { account, user } => {
            crate::cli::dir_keys::run_jwt(g.json, &account, &user, w).await
        }
        Command::Init(_)
        | Command::Describe { .. }
        | Command::Tool(_)
        | Command::Bench(_)
        | Command::Import(_) => {
            unreachable!("handled before opening the store")
        }
    }
}

async fn push(
    g: &Global,
    w: &Warden,
    account: Option<String>,
    all: bool,
    nats: &str,
) -> Result<()> {
    if account.is_none() && !all {
        let report = w.push_outbox(nats).await?;
        emit(g, &report, || {
            format!(
                "delivered {} pending changes ({} accounts pushed, {} deleted, {} events), {} failed\n",
                report.delivered,
                report.accounts_pushed,
                report.accounts_deleted,
                report.events_published,
                report.failed
            )
        })?;
        if let Some(e) = report.first_error {
            bail!(
                "{} deliveries failed (they stay queued): {e}",
                report.failed
            );
        }
        return Ok(());
    }
    let link = warden_ops::drift::ResolverLink::bulk(nats);
    let rows = w.push_accounts(&link, account.as_deref()).await?;
    emit(g, &rows, || {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {}: {}\n",
                    r.account,
                    if r.ok { "pushed" } else { "FAILED" },
                    r.reply
                )
            })
            .collect()
    })?;
    let failures = rows.iter().filter(|r| !r.ok).count();
    if failures > 0 {
        bail!("{failures} of {} pushes failed", rows.len());
    }
    Ok(())
}

async fn sync(g: &Global, w: &Warden, fix: bool, nats: &str) -> Result<()> {
    let link = warden_ops::drift::ResolverLink::bulk(nats);
    if !fix {
        let drift = w.drift_check(&link).await?;
        let in_step = drift.in_step();
        emit(
            g,
            &serde_json::json!({"in_step": in_step, "missing": drift.missing, "stale": drift.stale, "unknown": drift.unknown}),
            || {
                if in_step {
                    "nats-server is in step with Warden\n".to_string()
                } else {
                    let mut out = String::new();
                    for (what, list) in [
                        ("missing", &drift.missing),
                        ("stale", &drift.stale),
                        ("unknown", &drift.unknown),
                    ] {
                        for k in list {
                            out += &format!("{what:8} {k}\n");
                        }
                    }
                    out
                }
            },
        )?;
        if !in_step {
            bail!(
                "drift: {} missing, {} stale, {} unknown (repair with `warden sync --fix`)",
                drift.missing.len(),
                drift.stale.len(),
                drift.unknown.len()
            );
        }
        return Ok(());
    }
    let repair = w.drift_fix(&link).await?;
    emit(
        g,
        &serde_json::json!({"pushed": repair.pushed, "deleted": repair.deleted, "in_step": repair.in_step, "errors": repair.errors}),
        || {
            format!(
                "pushed {} accounts, deleted {} unknown; {}\n",
                repair.pushed,
                repair.deleted,
                if repair.in_step {
                    "now in step"
                } else {
                    "still drifting"
                }
            )
        },
    )?;
    if !repair.in_step || !repair.errors.is_empty() {
        bail!("sync did not converge: {}", repair.errors.join("; "));
    }
    Ok(())
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
                        println!("{}", serde_json::to_string(e)?);
                    } else {
                        println!(
                            "{:>6}  {}  {:<18} {:<10} {}  {}",
                            e.seq,
                            parse::format_unix(e.at),
                            e.action,
                            e.actor,
                            e.object_key,
                            e.summary
                        );
                    }
                    after = e.seq;
                }
                if !follow {
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

async fn account(g: &Global, w: &Warden, cmd: AccountCmd) -> Result<()> {
    match cmd {
        AccountCmd::Add {
            name,
            limits,
            description,
        } => {
            let mut spec = AccountSpec::default();
            limits.edit().apply(&mut spec.limits);
            spec.description = description.filter(|d| !d.is_empty());
            let v = w.add_account(&name, spec).await?;
            emit(g, &v, || {
                format!("account {} added: {}\n", v.name, v.public_key)
            })
        }
        AccountCmd::List => {
            let list = w.list_accounts().await?;
            emit(g, &list, || {
                let mut t = table(["name", "public key", "users", "conns", "jetstream"]);
                for a in &list {
                    t.add_row(vec![
                        if a.system {
                            format!("{} (system)", a.name)
                        } else {
                            a.name.clone()
                        },
                        a.public_key.clone(),
                        a.users.to_string(),
                        limit(a.spec.limits.conn),
                        if a.spec.limits.jetstream.enabled() {
                            "on".into()
                        } else {
                            "off".into()
                        },
                    ]);
                }
                format!("{t}\n")
            })
        }
        AccountCmd::Show { name } => {
            let v = w.account(&name).await?;
            emit(g, &v, || account_text(&v))
        }
        AccountCmd::Edit {
            name,
            limits,
            description,
        } => {
            let v = w.edit_account(&name, &limits.edit(), description).await?;
            emit(g, &v, || {
                format!("account {} updated\n{}", v.name, account_text(&v))
            })
        }
        AccountCmd::Delete { name } => {
            let v = w.delete_account(&name).await?;
            emit(g, &v, || {
                format!("account {} deleted ({} users)\n", v.name, v.users)
            })
        }
    }
}

async fn user(g: &Global, w: &Warden, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            account,
            perms,
        } => {
            let mut spec = UserSpec::default();
            perms.edit()?.apply(&mut spec);
            let v = w.add_user(&account, &name, spec).await?;
            emit(g, &v, || {
                format!("user {} added to {}: {}\n", v.name, v.account, v.public_key)
            })
        }
        UserCmd::List { account } => {
            let list = w.list_users(&account).await?;
            emit(g, &list, || {
                let mut t = table([
                    "name",
                    "public key",
                    "pub allow",
                    "sub allow",
                    "expires",
                    "revoked",
                ]);
                for u in &list {
                    let p = &u.spec.permissions;
                    t.add_row(vec![
                        u.name.clone(),
                        u.public_key.clone(),
                        join_subjects(&p.publish.allow),
                        join_subjects(&p.subscribe.allow),
                        u.spec
                            .expires_at
                            .map(parse::format_unix)
                            .unwrap_or_else(|| "never".into()),
                        u.revoked_at
                            .map(parse::format_unix)
                            .unwrap_or_else(|| "-".into()),
                    ]);
                }
                format!("{t}\n")
            })
        }
        UserCmd::Show { name, account } => {
            let v = w.user(&account, &name).await?;
            emit(g, &v, || user_text(&v))
        }
        UserCmd::Edit {
            name,
            account,
            perms,
            remove,
            rm_response_perms,
            rm_conn_type,
            rm_source_network,
            rm_tag,
        } => {
            let mut edit = perms.edit()?;
            edit.remove_tags = rm_tag
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            edit.permissions.remove = subjects(&remove)?;
            edit.permissions.remove_response = rm_response_perms;
            edit.remove_conn_types = conn_types(&rm_conn_type)?;
            edit.remove_source_networks = cidrs(&rm_source_network)?;
            let v = w.edit_user(&account, &name, &edit).await?;
            emit(g, &v, || {
                format!("user {} updated\n{}", v.name, user_text(&v))
            })
        }
        UserCmd::Revoke { name, account } => {
            let v = w.revoke_user(&account, &name).await?;
            emit(g, &v, || {
                format!(
                    "user {} revoked in account {}; push the account JWT (or restart nats-server with a fresh config) for the server to learn it\n",
                    v.name, v.account
                )
            })
        }
        UserCmd::Delete { name, account } => {
            let v = w.delete_user(&account, &name).await?;
            emit(g, &v, || {
                format!(
                    "user {} deleted from {} (its key is revoked)\n",
                    v.name, v.account
                )
            })
        }
        UserCmd::Explain {
            user,
            subject,
            account,
        } => {
            crate::cli::governance::run_explain(g.json, w, &user, &subject, account.as_deref())
                .await
        }
    }
}

fn join_subjects(list: &[Subject]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn limit(n: i64) -> String {
    if n < 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn account_text(v: &warden_ops::AccountView) -> String {
    let l = &v.spec.limits;
    let mut out = format!(
        "name          {}{}\npublic key    {}\nusers         {}\n",
        v.name,
        if v.system { " (system account)" } else { "" },
        v.public_key,
        v.users
    );
    out += &format!(
        "limits        conns {}, leaf {}, subs {}, payload {}, data {}, imports {}, exports {}, wildcard exports {}\n",
        limit(l.conn),
        limit(l.leaf),
        limit(l.subs),
        limit(l.payload),
        limit(l.data),
        limit(l.imports),
        limit(l.exports),
        l.wildcards
    );
    let js = &l.jetstream;
    out += &format!(
        "jetstream     mem {}, disk {}, streams {}, consumers {}\n",
        limit(js.mem_storage),
        limit(js.disk_storage),
        limit(js.streams),
        limit(js.consumer)
    );
    if !v.spec.revocations.is_empty() {
        out += &format!("revocations   {}\n", v.spec.revocations.len());
    }
    out += &format!("jwt           {}\n", v.jwt);
    out
}

fn user_text(v: &warden_ops::UserView) -> String {
    let l = &v.spec;
    let p = &l.permissions;
    let mut out = format!(
        "name          {}\naccount       {}\npublic key    {}\n",
        v.name, v.account, v.public_key
    );
    out += &format!(
        "pub allow     {}\npub deny      {}\n",
        join_subjects(&p.publish.allow),
        join_subjects(&p.publish.deny)
    );
    out += &format!(
        "sub allow     {}\nsub deny      {}\n",
        join_subjects(&p.subscribe.allow),
        join_subjects(&p.subscribe.deny)
    );
    if let Some(r) = &p.response {
        out += &format!(
            "responses     max {}, ttl {} ms\n",
            r.max,
            r.ttl_ns / 1_000_000
        );
    }
    if !l.src.is_empty() {
        out += &format!("source nets   {}\n", l.src.join(", "));
    }
    if !l.allowed_connection_types.is_empty() {
        let types: Vec<String> = l
            .allowed_connection_types
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        out += &format!("conn types    {}\n", types.join(", "));
    }
    out += &format!("bearer        {}\n", l.bearer_token);
    out += &format!(
        "expires       {}\n",
        v.spec
            .expires_at
            .map(parse::format_unix)
            .unwrap_or_else(|| "never".into())
    );
    if let Some(r) = v.revoked_at {
        out += &format!("revoked       {}\n", parse::format_unix(r));
    }
    out += &format!("jwt           {}\n", v.jwt);
    out
}

fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    t
}

fn emit<T: Serialize>(g: &Global, value: &T, human: impl FnOnce() -> String) -> Result<()> {
    if g.json {
        print_json(value)
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(human().as_bytes())?;
        Ok(())
    }
}

/// Prints `value` as pretty JSON on stdout (the `--json` output of every command).
/// A reader that closed the pipe (`warden … --json | head`) is not an error.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(value)?;
    match out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
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

async fn init(g: &Global, args: InitArgs) -> Result<()> {
    let naming = NamingPolicy {
        operator: args.operator_case,
        account: args.account_case,
        user: args.user_case,
    };
    // Everything is checked before the data directory or database is touched.
    naming
        .operator(&args.name)
        .map_err(|e| usage(e.to_string()))?;
    if let Some(a) = &args.account {
        naming.account(a).map_err(|e| usage(e.to_string()))?;
    }
    if let Some(u) = &args.user {
        naming.user(u).map_err(|e| usage(e.to_string()))?;
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
    naming
        .account(service_account)
        .map_err(|e| usage(e.to_string()))?;
    naming
        .user(service_user)
        .map_err(|e| usage(e.to_string()))?;
    let (service_account, service_user) = (service_account.to_string(), service_user.to_string());
    let migrations = match &args.migrations {
        Some(file) => read_migrations(file)?,
        None => default_migrations(&prefix),
    };
    let (dir, url, _) = locate(g);
    paths::ensure_data_dir(&dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let key = MasterKey::from_env_or_file(&dir, true)?;
    let store = Store::open(&url, key).await?;
    let mut w = Warden::open(store, actor()).await?;
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

fn read_migrations(file: &Path) -> Result<Vec<JwtMigration>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| usage(format!("{}: not a JWT migration list: {e}", file.display())))
}

async fn nats_config(g: &Global, w: &Warden, args: NatsConfigArgs) -> Result<()> {
    let op = w.operator().await?;
    let (dir, _, _) = locate(g);
    let resolver_dir = absolute(
        args.resolver_dir
            .unwrap_or_else(|| dir.join("nats").join("resolver")),
    )?;
    let mut cfg = ServerConfig::new(args.listen, op.jwt, op.system_account, resolver_dir);
    cfg.server_name = args.server_name;
    cfg.preload = w.account_jwts().await?;
    cfg.jetstream_dir = args.jetstream.map(absolute).transpose()?;
    cfg.websocket = args.websocket;
    cfg.leafnodes = args.leafnodes;
    if let Some(cert) = args.leafnodes_tls_cert {
        let file = |what: &str, p: PathBuf| -> Result<PathBuf> {
            if !p.is_file() {
                return Err(usage(format!("{what} {} does not exist", p.display())));
            }
            absolute(p)
        };
        cfg.leafnodes_tls = Some(warden_nats::config::TlsFiles {
            cert_file: Some(file("leaf node TLS certificate", cert)?),
            key_file: args
                .leafnodes_tls_key
                .map(|k| file("leaf node TLS key", k))
                .transpose()?,
            verify: args.leafnodes_tls_verify_ca.is_some(),
            ca_file: args
                .leafnodes_tls_verify_ca
                .map(|c| file("leaf node TLS CA", c))
                .transpose()?,
        });
    }
    cfg.monitoring = args.monitoring;
    let text = cfg.render();
    match args.output {
        Some(path) => {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if g.json {
                print_json(&serde_json::json!({"file": path}))?;
            } else {
                eprintln!("nats-server configuration written to {}", path.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p)
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// `warden describe`: decodes, verifies the signature, validates, and never prints a seed.
fn describe(g: &Global, input: &str) -> Result<()> {
    let text = if Path::new(input).is_file() {
        std::fs::read_to_string(input).with_context(|| format!("cannot read {input}"))?
    } else {
        input.to_string()
    };
    let creds =
        nats_jwt::parse_creds(&text).map_err(|e| anyhow!("not a NATS JWT or creds file: {e}"))?;
    let claims =
        nats_jwt::decode_any(creds.jwt.trim()).map_err(|e| anyhow!("invalid NATS JWT: {e}"))?;
    let issues: Vec<String> = claims
        .validate(warden_ops::now())
        .iter()
        .map(|i| i.to_string())
        .collect();
    let seed = match &creds.seed {
        None => None,
        Some(seed) => {
            let kp = nats_jwt::KeyPair::from_seed(seed.expose())
                .map_err(|e| anyhow!("the creds seed is invalid: {e}"))?;
            Some(kp.public_key().as_str() == claims.subject())
        }
    };
    let report = serde_json::json!({
        "kind": claims.kind_name(),
        "name": claims.name(),
        "subject": claims.subject(),
        "issuer": claims.issuer(),
        "signature": "valid",
        "issues": issues,
        "seed_matches_subject": seed,
        "claims": claims.to_json(),
    });
    emit(g, &report, || {
        let mut out = format!(
            "{} JWT {:?}\nsubject    {}\nissuer     {}\nsignature  valid\n",
            claims.kind_name(),
            claims.name(),
            claims.subject(),
            claims.issuer()
        );
        match seed {
            Some(true) => out += "seed       present, matches the subject (not shown)\n",
            Some(false) => out += "seed       present, DOES NOT match the subject\n",
            None => {}
        }
        for i in &issues {
            out += &format!("issue      {i}\n");
        }
        out += &format!(
            "claims\n{}\n",
            serde_json::to_string_pretty(&claims.to_json()).unwrap_or_default()
        );
        out
    })?;
    if seed == Some(false) {
        bail!("the seed in the creds does not belong to the JWT's subject");
    }
    Ok(())
}

pub use progress::show_progress;
