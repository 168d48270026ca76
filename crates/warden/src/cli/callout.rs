//! `warden callout …`: set up the auth callout (its account, sentinel and curve key),
//! manage its authenticators, and run its responder on its own (`callout run`, for
//! scale-out beside `serve`), with human and `--json` output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use warden_nats::NatsUrls;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use warden_ops::Warden;
use warden_ops::callout::authenticators::MtlsMap;
use warden_ops::callout::responder::{self, CalloutStats, ResponderConfig};
use warden_ops::callout::{AuthenticatorInput, AuthenticatorView, CalloutSetup, CalloutView};

use super::secret_out::SecretOut;
use super::values::duration;
use super::{emit, print_json, table, write_out};

/// `warden callout …`.
#[derive(Subcommand, Debug)]
pub enum CalloutCmd {
    /// Create or update the callout account (auth users, allowed accounts, xkey), its
    /// responder and sentinel users; the account is pushed like any other.
    Setup(SetupArgs),
    /// Show the callout configuration.
    Status,
    /// Write the sentinel creds clients present with their own credentials.
    Sentinel {
        /// Output file (written 0600); stdout when absent.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Answer authorization requests (alone; `serve --callout` runs the same inside serve).
    Run(RunArgs),
    /// What the callout would decide for a login connecting now (the credential itself is
    /// not checked): the directory user, the account, the permissions and the expiry.
    Explain {
        /// The login an authenticator would name (user id, email, user principal name,
        /// certificate name), optionally LOGIN@ACCOUNT.
        login: String,
    },
    /// Authenticators, tried in order.
    #[command(subcommand)]
    Auth(AuthCmd),
}

/// Flags of `warden callout setup`.
#[derive(Args, Debug)]
pub struct SetupArgs {
    /// The callout account (created when missing; default AUTH).
    #[arg(long, short = 'a', value_name = "ACCOUNT")]
    account: Option<String>,
    /// Seal requests and responses with a curve key (xkey).
    #[arg(long, conflicts_with = "no_xkey")]
    xkey: bool,
    /// Stop sealing (the curve key is deleted).
    #[arg(long)]
    no_xkey: bool,
    /// An account users may be placed in (repeatable; none given: keep the list, which
    /// starts as any account).
    #[arg(long = "allowed-account", value_name = "ACCOUNT")]
    allowed_accounts: Vec<String>,
    /// Allow any account again.
    #[arg(long, conflicts_with = "allowed_accounts")]
    any_account: bool,
    /// Lifetime of issued user JWTs (e.g. 1h, 15m; default 1h).
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    ttl: Option<Duration>,
    /// The nats-server version this is for (refused below 2.10, which has no auth callout).
    #[arg(long, value_name = "VERSION")]
    server_version: Option<String>,
    /// Ask this nats-server its version first (refused below 2.10).
    #[arg(long, value_name = "URL[,URL...]")]
    nats: Option<NatsUrls>,
}

/// Flags of `warden callout run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// nats-servers to answer on (several of a cluster: comma-separated).
    #[arg(
        long,
        value_name = "URL[,URL...]",
        env = "WARDEN_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats: NatsUrls,
    /// Requests answered at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How often decisions are summarised in the ledger.
    #[arg(long, default_value = "60s", value_parser = duration)]
    summary_every: Duration,
    /// For a server rendered by `warden nats-config --auth-callout` (no operator mode).
    #[arg(long)]
    config_mode: bool,
    /// CA (PEM) to trust for a tls:// server with a private CA.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for a server that verifies client certificates.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve `GET /metrics` (Prometheus text: decisions and their latency) on this
    /// address; off by default.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
}

/// How a client certificate names the user.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MapArg {
    /// The subject's common name.
    Subject,
    /// The first email or DNS subject alternative name.
    San,
}

/// `warden callout auth …`.
#[derive(Subcommand, Debug)]
pub enum AuthCmd {
    /// Add an authenticator (at the end, or at --position).
    #[command(subcommand)]
    Add(AddCmd),
    /// List the authenticators in the order they are tried.
    #[command(alias = "ls")]
    List,
    /// Remove an authenticator.
    #[command(alias = "remove")]
    Rm {
        /// Its name.
        name: String,
    },
}

/// `warden callout auth add …`.
#[derive(Subcommand, Debug)]
pub enum AddCmd {
    /// The client's user and password, checked by a bind against an LDAP directory.
    Ldap {
        /// Name of the authenticator.
        name: String,
        /// ldap:// or ldaps:// URL.
        #[arg(long)]
        url: String,
        /// Base DN searched for the user's entry.
        #[arg(long, value_name = "DN")]
        base: String,
        /// DN to bind as for the search (default: anonymous).
        #[arg(long, value_name = "DN", requires = "password_file")]
        bind_dn: Option<String>,
        /// File whose first line is the bind DN's password (stored sealed).
        #[arg(long, value_name = "FILE", requires = "bind_dn")]
        password_file: Option<PathBuf>,
        /// Search filter; {user} is the login (default `(uid={user})`).
        #[arg(long, value_name = "FILTER")]
        user_filter: Option<String>,
        /// CA (PEM) of the directory's certificate, for ldaps://.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Position in the list (from 1).
        #[arg(long)]
        position: Option<usize>,
    },
    /// An OIDC ID token (the client's auth token), verified against a JWKS.
    Oidc {
        /// Name of the authenticator.
        name: String,
        /// JWKS file (RS256, ES256 or EdDSA keys).
        #[arg(long, value_name = "FILE")]
        jwks: PathBuf,
        /// Required issuer (`iss`).
        #[arg(long)]
        issuer: String,
        /// Required audience (`aud`).
        #[arg(long)]
        audience: String,
        /// The claim naming the directory user (default `sub`).
        #[arg(long, value_name = "CLAIM")]
        user_claim: Option<String>,
        /// Position in the list (from 1).
        #[arg(long)]
        position: Option<usize>,
    },
    /// The client certificate of a TLS connection, checked against a CA.
    Mtls {
        /// Name of the authenticator.
        name: String,
        /// CA (PEM) client certificates must chain to.
        #[arg(long, value_name = "FILE")]
        ca: PathBuf,
        /// What names the user.
        #[arg(long, value_enum, default_value = "subject")]
        map: MapArg,
        /// Position in the list (from 1).
        #[arg(long)]
        position: Option<usize>,
    },
}

/// Runs `warden callout …`.
pub async fn run(json: bool, w: &Warden, cmd: CalloutCmd) -> Result<()> {
    match cmd {
        CalloutCmd::Setup(a) => {
            let v = w
                .callout_setup(CalloutSetup {
                    account: a.account,
                    xkey: if a.xkey {
                        Some(true)
                    } else if a.no_xkey {
                        Some(false)
                    } else {
                        None
                    },
                    allowed_accounts: if a.any_account {
                        Some(Vec::new())
                    } else if a.allowed_accounts.is_empty() {
                        None
                    } else {
                        Some(a.allowed_accounts)
                    },
                    ttl_secs: a.ttl.map(|d| d.as_secs() as i64),
                    server_version: a.server_version,
                    nats: a.nats.map(|n| n.to_string()),
                })
                .await?;
            emit(json, &v, || {
                format!(
                    "{}\nnext: `warden callout auth add …`, `warden push --all`, then run the \
                     responder (`warden serve --callout` or `warden callout run`)\n",
                    status_text(&v)
                )
            })
        }
        CalloutCmd::Status => {
            let v = w.callout_status().await?;
            emit(json, &v, || status_text(&v))
        }
        CalloutCmd::Sentinel { output } => {
            let output = SecretOut::prepare(output.as_deref())?;
            let creds = w.callout_sentinel_creds().await?;
            match output {
                Some(SecretOut::File(file)) => {
                    let path = file.path().to_path_buf();
                    SecretOut::File(file).write(creds.as_bytes(), "nothing was changed")?;
                    if json {
                        print_json(&serde_json::json!({"file": path}))
                    } else {
                        eprintln!("sentinel creds written to {} (mode 0600)", path.display());
                        Ok(())
                    }
                }
                Some(SecretOut::Stdout) | None => write_out(creds.as_bytes()),
            }
        }
        CalloutCmd::Run(a) => run_responder(w, a).await,
        CalloutCmd::Explain { login } => {
            let v = w.callout_explain(&login).await?;
            emit(json, &v, || explain_text(&v))?;
            if v.allowed {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "refused ({}): {}",
                    v.code,
                    v.reason.as_deref().unwrap_or("")
                ))
            }
        }
        CalloutCmd::Auth(AuthCmd::List) => {
            let list = w.callout_auth_list().await?;
            emit(json, &list, || auth_table(&list))
        }
        CalloutCmd::Auth(AuthCmd::Rm { name }) => {
            let v = w.callout_auth_remove(&name).await?;
            emit(json, &v, || {
                format!("removed authenticator {} ({})\n", v.name, v.kind)
            })
        }
        CalloutCmd::Auth(AuthCmd::Add(add)) => {
            let (input, position) = match add {
                AddCmd::Ldap {
                    name,
                    url,
                    base,
                    bind_dn,
                    password_file,
                    user_filter,
                    ca,
                    position,
                } => (
                    AuthenticatorInput::Ldap {
                        name,
                        url,
                        base,
                        bind_dn,
                        password_file,
                        user_filter,
                        ca_file: ca,
                    },
                    position,
                ),
                AddCmd::Oidc {
                    name,
                    jwks,
                    issuer,
                    audience,
                    user_claim,
                    position,
                } => (
                    AuthenticatorInput::Oidc {
                        name,
                        jwks_file: jwks,
                        issuer,
                        audience,
                        user_claim,
                    },
                    position,
                ),
                AddCmd::Mtls {
                    name,
                    ca,
                    map,
                    position,
                } => (
                    AuthenticatorInput::Mtls {
                        name,
                        ca_file: ca,
                        map: match map {
                            MapArg::Subject => MtlsMap::Subject,
                            MapArg::San => MtlsMap::San,
                        },
                    },
                    position,
                ),
            };
            let (spec, secret) = input.load()?;
            let v = w.callout_auth_add(spec, secret, position).await?;
            emit(json, &v, || {
                format!(
                    "added authenticator {} ({}) at position {}: {}\n",
                    v.name, v.kind, v.position, v.detail
                )
            })
        }
    }
}

fn explain_text(v: &warden_ops::callout::Explained) -> String {
    if !v.allowed {
        return String::new();
    }
    let list = |l: &[nats_jwt::Subject]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        }
    };
    let mut out = format!(
        "allowed          {} in account {}\n",
        v.user.as_deref().unwrap_or(""),
        v.account.as_deref().unwrap_or("")
    );
    if let Some(p) = &v.permissions {
        out += &format!(
            "publish          allow {}; deny {}\nsubscribe        allow {}; deny {}\n",
            list(&p.publish.allow),
            list(&p.publish.deny),
            list(&p.subscribe.allow),
            list(&p.subscribe.deny)
        );
    }
    out += &format!(
        "expires          {} (or the token's expiry, if earlier)\nfrom             {}\n",
        super::time_or(v.expires_at, "never"),
        v.tasks.join(", ")
    );
    out
}

fn status_text(v: &CalloutView) -> String {
    let mut out = format!(
        "callout account  {} {}\nresponder        {}\nsentinel         {}\nallowed accounts {}\nxkey             {}\nuser JWT ttl     {} s\n",
        v.account,
        v.account_key,
        v.responder_key,
        v.sentinel_key,
        v.allowed_accounts.join(", "),
        v.xkey.as_deref().unwrap_or("off"),
        v.ttl_secs
    );
    if v.authenticators.is_empty() {
        out += "authenticators   none (add one: `warden callout auth add ldap|oidc|mtls …`)\n";
    } else {
        out += &auth_table(&v.authenticators);
    }
    out
}

fn auth_table(list: &[AuthenticatorView]) -> String {
    let mut t = table(vec!["#", "NAME", "KIND", "CHECKS", "SECRET"]);
    for a in list {
        t.add_row(vec![
            a.position.to_string(),
            a.name.clone(),
            a.kind.to_string(),
            a.detail.clone(),
            if a.has_secret { "sealed" } else { "-" }.to_string(),
        ]);
    }
    format!("{t}\n")
}

async fn run_responder(w: &Warden, a: RunArgs) -> Result<()> {
    use anyhow::Context as _;
    let shutdown = crate::serve::Shutdown::on_signals()?;
    let mut cfg = ResponderConfig::new(a.nats.to_string());
    cfg.concurrency = a.concurrency;
    cfg.summary_every = a.summary_every;
    cfg.config_mode = a.config_mode;
    for f in a.tls_ca.iter().chain(&a.tls_cert).chain(&a.tls_key) {
        if !f.is_file() {
            return Err(super::usage(format!("{} does not exist", f.display())));
        }
    }
    cfg.tls_ca = a.tls_ca;
    cfg.tls_client = a.tls_cert.zip(a.tls_key);
    let stats = Arc::new(CalloutStats::default());
    // Bound before the responder says it answers, so a scraper may come at once.
    let metrics = match &a.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            Some(tokio::spawn(crate::http::metrics::serve(
                listener,
                stats.clone(),
                shutdown.triggered(),
            )))
        }
        None => None,
    };
    let nats = a.nats.clone();
    let answered = responder::run(w.clone(), cfg, stats, shutdown.receiver(), move || {
        // A reader that has gone away is no reason to stop answering.
        let _ = write_out(format!("warden callout: answering on {nats}\n").as_bytes());
    })
    .await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    answered?;
    Ok(())
}
