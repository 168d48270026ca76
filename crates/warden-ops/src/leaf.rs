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

use std::path::PathBuf;

use nats_jwt::ConnectionType;
use serde::Serialize;
use serde_json::json;
use warden_core::UserName;
use warden_core::spec::UserSpec;
use warden_store::Zeroizing;

use crate::{OpsError, Record, Result, Scope, Warden};

/// The default name of a tenant's leaf user.
pub const DEFAULT_LEAF_USER: &str = "leaf";

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
    /// Needs `write` and `creds` (the answer lets its holder connect).
    pub async fn tenant_leaf_user(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(crate::tenant::TenantView, Zeroizing<String>, bool)> {
        self.need(Scope::Write, "a leaf node user")?;
        self.need(Scope::Creds, "a leaf node user's creds")?;
        let settings = self.trusted().tenant_settings().await?;
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
        let view = self.trusted().tenant(slug.as_str()).await?;
        let creds = self.creds_of(&acc.name, name.as_str()).await?;
        Ok((view, creds, created))
    }
}
