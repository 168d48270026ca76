//! The artifacts derived from stored state, as files or text: `warden creds`,
//! `warden nats-config` (a server configuration trusting this operator) and
//! `warden describe` (any NATS JWT or creds, decoded and checked; never a seed).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use warden_nats::config::ServerConfig;
use warden_ops::Warden;

use super::{Global, emit, locate, print_json, usage, write_out};
use crate::cli::secret_out::SecretOut;

/// Runs `warden creds ACCOUNT USER [-o FILE]` (`-o -`: stdout, as without `-o`).
pub async fn creds(
    json: bool,
    w: &Warden,
    account: &str,
    user: &str,
    output: Option<PathBuf>,
) -> Result<()> {
    let output = SecretOut::prepare(output.as_deref())?;
    let creds = w.creds(account, user).await?;
    match output {
        Some(SecretOut::File(file)) => {
            let path = file.path().to_path_buf();
            SecretOut::File(file).write(creds.as_bytes(), "nothing was changed")?;
            if json {
                print_json(&serde_json::json!({"account": account, "user": user, "file": path}))
            } else {
                eprintln!(
                    "creds for {account}/{user} written to {} (mode 0600)",
                    path.display()
                );
                Ok(())
            }
        }
        Some(SecretOut::Stdout) | None => write_out(creds.as_bytes()),
    }
}

/// Flags of `warden nats-config`.
#[derive(Args, Debug)]
pub struct NatsConfigArgs {
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
    /// JetStream memory store limit (bytes, or 512M, 1G…); needs --jetstream.
    #[arg(long, value_name = "SIZE", requires = "jetstream")]
    jetstream_max_memory: Option<String>,
    /// JetStream file store limit (bytes, or 10G…); needs --jetstream.
    #[arg(long, value_name = "SIZE", requires = "jetstream")]
    jetstream_max_file: Option<String>,
    /// JetStream domain; needs --jetstream.
    #[arg(long, value_name = "NAME", requires = "jetstream")]
    jetstream_domain: Option<String>,
    /// Cluster name: this server routes to the others of the cluster (needs
    /// --cluster-listen; with --jetstream also --server-name).
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// Where this server accepts routes, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    cluster_listen: Option<String>,
    /// Route URLs (nats-route://HOST:PORT) of the cluster's other servers; repeat or
    /// separate with commas. This server's own URL may be among them (it is ignored).
    #[arg(long, value_name = "URL", value_delimiter = ',', num_args = 1..)]
    routes: Vec<String>,
    /// TLS certificate (PEM) of the routes, presented to the other servers both ways.
    #[arg(long, value_name = "FILE")]
    cluster_tls_cert: Option<PathBuf>,
    /// Key (PEM) of the routes' certificate.
    #[arg(long, value_name = "FILE")]
    cluster_tls_key: Option<PathBuf>,
    /// CA (PEM) the other servers' route certificates are verified against (`verify: true`).
    #[arg(long, value_name = "FILE")]
    cluster_tls_ca: Option<PathBuf>,
    /// Gateway name (the cluster name, which must then be the same): this cluster joins a
    /// super-cluster.
    #[arg(long, value_name = "NAME")]
    gateway: Option<String>,
    /// Where this server accepts gateway connections, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    gateway_listen: Option<String>,
    /// A gateway to connect to: NAME=URL[,URL…] (nats://HOST:PORT); repeat per cluster.
    /// This cluster's own entry may be among them (it is ignored).
    #[arg(long = "gateways", value_name = "NAME=URL[,URL]")]
    gateways: Vec<String>,
    /// TLS certificate (PEM) of the gateway connections.
    #[arg(long, value_name = "FILE")]
    gateway_tls_cert: Option<PathBuf>,
    /// Key (PEM) of the gateway certificate.
    #[arg(long, value_name = "FILE")]
    gateway_tls_key: Option<PathBuf>,
    /// CA (PEM) other gateways' certificates are verified against (`verify: true`).
    #[arg(long, value_name = "FILE")]
    gateway_tls_ca: Option<PathBuf>,
    /// Output file; stdout when absent.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Config mode with auth callout (no operator): every client is decided by Warden's
    /// responder (`warden callout run --config-mode`); nats-server ≥ 2.10. The file holds
    /// the responder's password and is written 0600.
    #[arg(long, conflicts_with_all = ["resolver_dir", "websocket", "leafnodes", "cluster", "gateway"])]
    auth_callout: bool,
}

/// `warden nats-config --auth-callout`: a config-mode server decided by the callout.
async fn callout_config(g: &Global, w: &Warden, args: NatsConfigArgs) -> Result<()> {
    let setup = w.callout_config_mode().await?;
    let cfg = warden_nats::config::CalloutServerConfig {
        server_name: args.server_name,
        listen: args.listen,
        monitoring: args.monitoring,
        jetstream_dir: args.jetstream.map(absolute).transpose()?,
        accounts: setup.accounts,
        callout_account: setup.account,
        responder: (setup.responder_user, setup.responder_password.to_string()),
        issuer: setup.issuer,
        xkey: setup.xkey,
    };
    let text = zeroize::Zeroizing::new(cfg.render());
    drop(cfg);
    match SecretOut::prepare(args.output.as_deref())? {
        Some(SecretOut::File(file)) => {
            let path = file.path().to_path_buf();
            SecretOut::File(file).write(text.as_bytes(), "nothing was written")?;
            if g.json {
                print_json(&serde_json::json!({"file": path}))
            } else {
                eprintln!(
                    "nats-server configuration (config mode, auth callout) written to {} (mode 0600)",
                    path.display()
                );
                Ok(())
            }
        }
        Some(SecretOut::Stdout) | None => write_out(text.as_bytes()),
    }
}

/// Runs `warden nats-config`.
pub(crate) async fn nats_config(g: &Global, w: &Warden, args: NatsConfigArgs) -> Result<()> {
    if args.auth_callout {
        return callout_config(g, w, args).await;
    }
    // Every flag is checked before anything is read or written: a usage error names each
    // problem, and no file appears.
    let (topology, mut problems) = ClusterFlags::check(&args);
    let (dir, _, _) = locate(g);
    let resolver_dir = absolute(
        args.resolver_dir
            .unwrap_or_else(|| dir.join("nats").join("resolver")),
    )?;
    // The trust material is filled in once the flags are known to be good.
    let mut cfg = ServerConfig::new(args.listen, "", "", resolver_dir);
    cfg.server_name = args.server_name;
    cfg.jetstream_dir = args.jetstream.map(absolute).transpose()?;
    cfg.websocket = args.websocket;
    cfg.leafnodes = args.leafnodes;
    if let Some(cert) = args.leafnodes_tls_cert {
        cfg.leafnodes_tls = Some(warden_nats::config::TlsFiles {
            cert_file: Some(existing_file("leaf node TLS certificate", cert)?),
            key_file: args
                .leafnodes_tls_key
                .map(|k| existing_file("leaf node TLS key", k))
                .transpose()?,
            verify: args.leafnodes_tls_verify_ca.is_some(),
            ca_file: args
                .leafnodes_tls_verify_ca
                .map(|c| existing_file("leaf node TLS CA", c))
                .transpose()?,
        });
    }
    cfg.monitoring = args.monitoring;
    cfg.cluster = topology.cluster;
    cfg.gateway = topology.gateway;
    cfg.max_memory_store = topology.max_memory_store;
    cfg.max_file_store = topology.max_file_store;
    cfg.jetstream_domain = args.jetstream_domain;
    if let Err(e) = cfg.validate() {
        problems.extend(e.problems.iter().map(ToString::to_string));
    }
    if !problems.is_empty() {
        return Err(usage(problems.join("; ")));
    }
    let op = w.operator().await?;
    cfg.operator_jwt = op.jwt;
    cfg.system_account = op.system_account;
    // Never a configuration nats-server would refuse: an account JWT over the bound
    // (stored by an older Warden, or imported) is an error naming it, not a preload.
    cfg.preload = w.preload_account_jwts().await?;
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
        None => write_out(text.as_bytes())?,
    }
    Ok(())
}

/// The cluster, gateway and JetStream-limit flags of `warden nats-config`, read into the
/// configuration's blocks; every problem of them at once.
struct ClusterFlags {
    cluster: Option<warden_nats::config::ClusterBlock>,
    gateway: Option<warden_nats::config::GatewayBlock>,
    max_memory_store: Option<u64>,
    max_file_store: Option<u64>,
}

impl ClusterFlags {
    fn check(args: &NatsConfigArgs) -> (ClusterFlags, Vec<String>) {
        use warden_nats::config::{ClusterBlock, GatewayBlock};
        let mut problems: Vec<String> = Vec::new();
        let mut tls = |what: &str,
                       cert: &Option<PathBuf>,
                       key: &Option<PathBuf>,
                       ca: &Option<PathBuf>,
                       block: bool| {
            if !block {
                if cert.is_some() || key.is_some() || ca.is_some() {
                    problems.push(format!("--{what}-tls-* need --{what}"));
                }
                return None;
            }
            if cert.is_none() && key.is_none() && ca.is_none() {
                return None;
            }
            if cert.is_none() || key.is_none() {
                problems.push(format!(
                    "--{what}-tls-cert and --{what}-tls-key go together"
                ));
            }
            let mut file = |flag: &str, p: &Option<PathBuf>| -> Option<PathBuf> {
                let p = p.as_ref()?;
                if !p.is_file() {
                    problems.push(format!(
                        "--{what}-tls-{flag} {} does not exist",
                        p.display()
                    ));
                }
                // Kept when missing too, so the block's own check does not report it again.
                Some(absolute(p.clone()).unwrap_or_else(|_| p.clone()))
            };
            Some(warden_nats::config::TlsFiles {
                cert_file: file("cert", cert),
                key_file: file("key", key),
                ca_file: file("ca", ca),
                verify: ca.is_some(),
            })
        };
        let cluster_tls = tls(
            "cluster",
            &args.cluster_tls_cert,
            &args.cluster_tls_key,
            &args.cluster_tls_ca,
            args.cluster.is_some(),
        );
        let gateway_tls = tls(
            "gateway",
            &args.gateway_tls_cert,
            &args.gateway_tls_key,
            &args.gateway_tls_ca,
            args.gateway.is_some(),
        );
        let cluster = match &args.cluster {
            Some(name) => {
                if args.cluster_listen.is_none() {
                    problems.push(format!(
                        "--cluster {name} needs --cluster-listen HOST:PORT (where this server accepts routes)"
                    ));
                }
                Some(ClusterBlock {
                    name: name.clone(),
                    listen: args.cluster_listen.clone().unwrap_or_default(),
                    routes: args.routes.iter().map(|r| r.trim().to_string()).collect(),
                    tls: cluster_tls,
                })
            }
            None => {
                if args.cluster_listen.is_some() || !args.routes.is_empty() {
                    problems.push("--cluster-listen and --routes need --cluster NAME".into());
                }
                None
            }
        };
        let gateway = match &args.gateway {
            Some(name) => {
                if args.gateway_listen.is_none() {
                    problems.push(format!(
                        "--gateway {name} needs --gateway-listen HOST:PORT (where this server accepts gateway connections)"
                    ));
                }
                let mut gateways = Vec::new();
                for g in &args.gateways {
                    match g.split_once('=') {
                        Some((n, urls)) if !n.trim().is_empty() => gateways.push((
                            n.trim().to_string(),
                            urls.split(',')
                                .map(str::trim)
                                .filter(|u| !u.is_empty())
                                .map(String::from)
                                .collect(),
                        )),
                        _ => problems.push(format!(
                            "--gateways {g:?} is not NAME=URL[,URL] (nats://HOST:PORT)"
                        )),
                    }
                }
                Some(GatewayBlock {
                    name: name.clone(),
                    listen: args.gateway_listen.clone().unwrap_or_default(),
                    gateways,
                    tls: gateway_tls,
                })
            }
            None => {
                if args.gateway_listen.is_some() || !args.gateways.is_empty() {
                    problems.push("--gateway-listen and --gateways need --gateway NAME".into());
                }
                None
            }
        };
        let mut size = |flag: &str, v: &Option<String>| -> Option<u64> {
            let v = v.as_ref()?;
            match warden_core::parse::parse_size(v) {
                Ok(n) if n > 0 => Some(n as u64),
                Ok(_) => {
                    problems.push(format!("--{flag} {v}: a positive size is needed"));
                    None
                }
                Err(e) => {
                    problems.push(format!("--{flag}: {e}"));
                    None
                }
            }
        };
        let max_memory_store = size("jetstream-max-memory", &args.jetstream_max_memory);
        let max_file_store = size("jetstream-max-file", &args.jetstream_max_file);
        (
            ClusterFlags {
                cluster,
                gateway,
                max_memory_store,
                max_file_store,
            },
            problems,
        )
    }
}

/// An existing file, made absolute (nats-server resolves relative paths against its own
/// working directory, not ours).
fn existing_file(what: &str, p: PathBuf) -> Result<PathBuf> {
    if !p.is_file() {
        return Err(usage(format!("{what} {} does not exist", p.display())));
    }
    absolute(p)
}

/// Whether `describe`'s argument names a file rather than being a JWT or creds text:
/// a JWT is three base64url segments and creds text has its armour lines.
fn looks_like_path(input: &str) -> bool {
    let jwt_like = input.split('.').count() == 3
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    !jwt_like && !input.contains("-----BEGIN")
}

/// A public key with what kind of key it is (`operator`, `account`, `user` …), from
/// its prefix, so the issuer line says who signed.
fn key_kind(key: &str) -> String {
    let kind = match key.chars().next() {
        Some('O') => "operator",
        Some('A') => "account",
        Some('U') => "user",
        Some('N') => "server",
        Some('C') => "cluster",
        _ => return key.to_string(),
    };
    format!("{key} ({kind} key)")
}

fn absolute(p: PathBuf) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p)
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// `warden describe`: decodes, verifies the signature, validates, and never prints a seed.
pub(crate) async fn describe(g: &Global, input: &str, warden: Option<&Warden>) -> Result<()> {
    let text = if Path::new(input).is_file() {
        std::fs::read_to_string(input).with_context(|| format!("cannot read {input}"))?
    } else if looks_like_path(input) {
        return Err(anyhow!("{input}: no such file"));
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
    let issuer_name = match warden {
        Some(w) => w.key_holder(claims.issuer()).await.ok().flatten(),
        None => None,
    };
    let report = serde_json::json!({
        "kind": claims.kind_name(),
        "name": claims.name(),
        "subject": claims.subject(),
        "issuer": claims.issuer(),
        "issuer_name": issuer_name,
        "issued_at": warden_core::parse::format_unix(claims.issued_at()),
        "expires_at": claims.expires_at().map(warden_core::parse::format_unix),
        "signature": "valid",
        "issues": issues,
        "seed_matches_subject": seed,
        "claims": claims.to_json(),
    });
    emit(g, &report, || {
        let mut out = format!(
            "{} JWT {:?}\nsubject    {}\nissuer     {}\nissued     {}\nexpires    {}\nsignature  valid\n",
            claims.kind_name(),
            claims.name(),
            claims.subject(),
            match &issuer_name {
                Some(name) => format!("{} ({name})", claims.issuer()),
                None => key_kind(claims.issuer()),
            },
            super::time_or(Some(claims.issued_at()), "unknown"),
            super::time_or(claims.expires_at(), "never"),
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
