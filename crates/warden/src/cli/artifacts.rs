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
    /// Output file; stdout when absent.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Config mode with auth callout (no operator): every client is decided by Warden's
    /// responder (`warden callout run --config-mode`); nats-server ≥ 2.10. The file holds
    /// the responder's password and is written 0600.
    #[arg(long, conflicts_with_all = ["resolver_dir", "websocket", "leafnodes"])]
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
    let op = w.operator().await?;
    let (dir, _, _) = locate(g);
    let resolver_dir = absolute(
        args.resolver_dir
            .unwrap_or_else(|| dir.join("nats").join("resolver")),
    )?;
    let mut cfg = ServerConfig::new(args.listen, op.jwt, op.system_account, resolver_dir);
    cfg.server_name = args.server_name;
    // Never a configuration nats-server would refuse: an account JWT over the bound
    // (stored by an older Warden, or imported) is an error naming it, not a preload.
    cfg.preload = w.preload_account_jwts().await?;
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
        None => write_out(text.as_bytes())?,
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
pub(crate) fn describe(g: &Global, input: &str) -> Result<()> {
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
