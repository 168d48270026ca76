//! `warden tenant leaf-config`: a nats-server configuration for a leaf node at a tenant's
//! site, and the creds it connects to the hub with. The rendering is
//! `warden_nats::leaf` (pure); this module owns the tenant's leaf user
//! ([`Warden::tenant_leaf_user`]), the checks of the files named on the command line, and
//! writing the two files.
//!
//! The leaf user is a tenant user (same permissions as a collector: publish the catalogue,
//! subscribe `_INBOX.>`) restricted to leaf node connections, so its creds cannot be used
//! as a plain client. The hub applies its permissions to the whole leaf: the leaf can
//! forward only catalogue subjects, and receives only replies.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use nats_jwt::ConnectionType;
use serde::Serialize;
use serde_json::json;
use warden_core::UserName;
use warden_core::spec::UserSpec;
use warden_nats::config::TlsFiles;
use warden_nats::leaf::{HubUrl, LeafConfig};
use warden_store::Zeroizing;

use crate::cli::UsageError;
use crate::ops::{OpsError, Record, Result, Warden};

/// The default name of a tenant's leaf user.
pub const DEFAULT_LEAF_USER: &str = "leaf";

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

/// What `warden tenant leaf-config` wrote.
#[derive(Debug, Serialize)]
pub struct LeafConfigReport {
    /// The configuration file.
    pub file: PathBuf,
    /// The creds file it references (0600).
    pub creds_file: PathBuf,
    /// Tenant slug.
    pub tenant: String,
    /// The tenant's account, which the leaf's traffic joins on the hub.
    pub account: String,
    /// Its public key.
    pub account_key: String,
    /// The leaf user.
    pub user: String,
    /// Whether the user was created now (else reused).
    pub user_created: bool,
    /// Hub URLs.
    pub hubs: Vec<String>,
    /// Where local clients connect.
    pub listen: String,
    /// Whether the connection to the hub uses TLS.
    pub tls: bool,
}

/// The leaf user's spec: a tenant user (catalogue publishes, inbox subscriptions) allowed
/// only on leaf node connections.
fn leaf_user_spec(tenant_user: UserSpec) -> UserSpec {
    UserSpec {
        allowed_connection_types: vec![ConnectionType::Leafnode, ConnectionType::LeafnodeWs],
        ..tenant_user
    }
}

impl Warden {
    /// The creds of the user a tenant's leaf node connects as: `name` is reused if it
    /// exists (and is not revoked), else created (one transaction: user row, sealed seed,
    /// ledger event) as a tenant user allowed only on leaf node connections. Refused for a
    /// suspended tenant. Returns the tenant, the creds and whether the user was created.
    pub async fn tenant_leaf_user(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(crate::tenant::TenantView, Zeroizing<String>, bool)> {
        let settings = self.tenant_settings().await?;
        let slug = settings
            .parse_slug(slug)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let name = UserName::parse_any_case(name)?;
        let mut tx = self.store.begin().await?;
        self.operator_row(&mut tx).await?;
        let row = tx
            .tenant(slug.as_str())
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("tenant {slug}")))?;
        if row.state != "active" {
            return Err(OpsError::Conflict(format!(
                "tenant {slug} is {}: resume it before connecting a leaf node",
                row.state
            )));
        }
        let acc = tx
            .account(&row.account_key)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("account of tenant {slug}")))?;
        let created = match tx.user_by_name(&acc.public_key, name.as_str()).await? {
            Some(u) if u.revoked_at.is_some() => {
                return Err(OpsError::Conflict(format!(
                    "user {name} of tenant {slug} is revoked: choose another with --user"
                )));
            }
            Some(_) => false,
            None => {
                let spec = settings
                    .tenant_user_spec()
                    .map_err(|e| OpsError::Invalid(e.to_string()))?;
                let user = self
                    .create_user(&mut tx, &acc, &name, leaf_user_spec(spec))
                    .await?;
                tx.record(self.event(
                    "tenant.leaf_user",
                    "tenant",
                    slug.as_str(),
                    json!({"account": acc.name, "user": user.name, "user_key": user.public_key}),
                ))
                .await?;
                true
            }
        };
        tx.commit().await?;
        let view = self.tenant(slug.as_str()).await?;
        let creds = self.creds(&acc.name, name.as_str()).await?;
        Ok((view, creds, created))
    }
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
    crate::paths::write_secret_file(&creds_file, creds.as_bytes())
        .with_context(|| format!("cannot write {}", creds_file.display()))?;
    std::fs::write(&conf, cfg.render())
        .with_context(|| format!("cannot write {}", conf.display()))?;
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
        println!("{}", serde_json::to_string_pretty(&report)?);
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
        println!("nats-server -c {}", report.file.display());
    }
    Ok(())
}
