//! `warden tenant leaf-config`: the flags, the checks of the files they name, and
//! writing the leaf node's configuration and creds.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use warden_core::UserName;
use warden_nats::config::TlsFiles;
use warden_nats::leaf::{HubUrl, LeafConfig};

use crate::cli::UsageError;
use warden_ops::Warden;
use warden_ops::leaf::*;
use warden_ops::secret_file::Prepared;

/// Arguments of `warden tenant leaf-config`.
#[derive(Args, Debug)]
pub struct LeafConfigArgs {
    /// Tenant slug.
    pub slug: String,
    /// The hub's leaf node URL (nats-leaf://, tls://, nats://, ws://, wss://; with its
    /// port); repeat for several hub servers.
    #[arg(long = "hub", value_name = "URL", required = true)]
    pub hubs: Vec<String>,
    /// The tenant user the leaf connects as: reused if it exists, else created for leaf
    /// node connections only.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_LEAF_USER)]
    pub user: String,
    /// Where the leaf's local clients connect.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:4222")]
    pub listen: String,
    /// CA certificate (PEM) the hub's certificate is checked against.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) of the leaf, for a hub that verifies clients.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Key (PEM) of the client certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// server_name of the leaf.
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Configuration file to write (default `leaf-<slug>.conf`); the creds are written
    /// next to it as `<name>.creds` (0600).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    UsageError(msg.to_string()).into()
}

/// An existing file, made absolute (the leaf server resolves relative paths against its
/// own working directory, not ours).
fn existing_file(what: &str, path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        return Err(usage(format!("{what} {} does not exist", path.display())));
    }
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// A file of the leaf's made ready (see [`Prepared`]); a target that can never be a file
/// is a usage error.
fn prepare_output(path: &Path) -> anyhow::Result<Prepared> {
    Prepared::at(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => usage(format!("cannot write {}: {e}", path.display())),
        _ => anyhow::anyhow!("cannot write {}: {e}", path.display()),
    })
}

/// `leaf-acme.conf` → `leaf-acme.creds`, in the same directory.
fn creds_path_for(conf: &Path) -> PathBuf {
    conf.with_extension("creds")
}

/// Runs `warden tenant leaf-config`: every input checked before anything is created.
pub async fn run(json: bool, args: LeafConfigArgs, w: &Warden) -> anyhow::Result<()> {
    let hubs = args
        .hubs
        .iter()
        .map(|h| HubUrl::parse(h).map_err(usage))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let conf = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("leaf-{}.conf", args.slug.trim())));
    let conf =
        std::path::absolute(&conf).with_context(|| format!("cannot resolve {}", conf.display()))?;
    if conf.extension().is_some_and(|e| e == "creds") {
        return Err(usage(format!(
            "{} would be overwritten by the creds file: name the configuration *.conf",
            conf.display()
        )));
    }
    let creds_file = creds_path_for(&conf);
    let tls = TlsFiles {
        ca_file: args
            .tls_ca
            .as_deref()
            .map(|p| existing_file("TLS CA file", p))
            .transpose()?,
        cert_file: args
            .tls_cert
            .as_deref()
            .map(|p| existing_file("TLS certificate", p))
            .transpose()?,
        key_file: args
            .tls_key
            .as_deref()
            .map(|p| existing_file("TLS key", p))
            .transpose()?,
        verify: false,
    };
    let mut cfg =
        LeafConfig::new(args.listen.clone(), hubs.clone(), creds_file.clone()).map_err(usage)?;
    let with_tls = tls != TlsFiles::default();
    if with_tls {
        cfg = cfg.with_tls(tls).map_err(usage)?;
    }
    if let Some(name) = &args.server_name {
        cfg = cfg.with_server_name(name).map_err(usage)?;
    }
    UserName::parse_any_case(&args.user).map_err(usage)?;
    // Both files are made ready before the user may be created: an output that cannot be
    // written fails with nothing changed.
    let conf_out = prepare_output(&conf)?;
    let creds_out = prepare_output(&creds_file)?;
    // Slug, tenant state and user: checked (and the user created) by the store operation.
    let (tenant, creds, user_created) = w.tenant_leaf_user(&args.slug, &args.user).await?;
    cfg.comment = vec![
        format!(
            "Leaf node of tenant {} (account {} {}), connecting as its user {:?}.",
            tenant.slug, tenant.account, tenant.account_key, args.user
        ),
        format!(
            "Its collectors publish plain subjects (events.syslog, ...); the platform receives them as {}<subject>.",
            tenant.prefix
        ),
    ];
    let again = format!(
        "run the same command again to write them (the user {:?} is reused)",
        args.user
    );
    creds_out
        .write(creds.as_bytes(), true)
        .with_context(|| format!("cannot write {}; {again}", creds_file.display()))?;
    conf_out
        .write(cfg.render().as_bytes(), true)
        .with_context(|| format!("cannot write {}; {again}", conf.display()))?;
    let report = LeafConfigReport {
        file: conf,
        creds_file,
        tenant: tenant.slug,
        account: tenant.account,
        account_key: tenant.account_key,
        user: args.user,
        user_created,
        hubs: hubs.iter().map(|h| h.to_string()).collect(),
        listen: args.listen,
        tls: with_tls || hubs.iter().any(HubUrl::is_tls),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        eprintln!(
            "leaf node configuration of tenant {} written to {} (creds of {} {}: {}, mode 0600)",
            report.tenant,
            report.file.display(),
            report.user,
            if report.user_created {
                "created"
            } else {
                "reused"
            },
            report.creds_file.display()
        );
        outln!("nats-server -c {}", report.file.display())?;
    }
    Ok(())
}
