//! `warden tenant lint` (and `GET /v1/tenants/lint`, `<prefix>.tenant.lint`): reads what
//! the checks of `warden_core::lint` need — tenant limits, the subjects of shared accounts,
//! and JetStream streams declared in a spec or reported by the server for the platform
//! account — and returns their findings. Reading only: nothing is written to the store or
//! the server.

use async_nats::jetstream;
use futures::TryStreamExt;
use warden_core::lint::{self, Finding};
use warden_core::spec::AccountSpec;
use warden_core::streams::{StreamConfig, StreamsSpec};

use crate::streams::{StreamsError, from_server};
use crate::{OpsError, Result, Scope, Warden, from_json};

/// A stream to lint: its account, its name and its configuration.
#[derive(Clone, Debug)]
pub struct LintStream {
    /// Account holding the stream.
    pub account: String,
    /// Stream name.
    pub name: String,
    /// Its configuration (declared or reported).
    pub config: StreamConfig,
}

fn limits_of(row: &warden_store::TenantRow) -> Result<warden_core::tenant::TenantLimits> {
    serde_json::from_str(&row.limits)
        .map_err(|e| OpsError::Conflict(format!("stored tenant limits are unreadable: {e}")))
}

impl Warden {
    /// Findings about the stored layout: tenants with unlimited limits, and tenant-first
    /// subjects (`<slug>.…`) in the exports, imports or user permissions of shared
    /// accounts (anything but a tenant's own account and the platform's generated
    /// imports), where one tenant's traffic could be read or forged outside its prefix.
    pub async fn lint_tenants(&self) -> Result<Vec<Finding>> {
        self.need(Scope::Read, "linting tenants")?;
        let settings = self.trusted().tenant_settings().await?;
        let mut tx = self.store().begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let tenants = tx.tenants(None).await?;
        let mut out = Vec::new();
        for t in &tenants {
            out.extend(lint::tenant_limits(&t.slug, &limits_of(t)?));
        }
        let slugs: Vec<String> = tenants.iter().map(|t| t.slug.clone()).collect();
        let tenant_keys: Vec<&str> = tenants.iter().map(|t| t.account_key.as_str()).collect();
        for acc in tx.accounts(&op.public_key).await? {
            if tenant_keys.contains(&acc.public_key.as_str()) {
                continue;
            }
            let spec: AccountSpec = from_json(&acc.spec)?;
            let platform = acc.name == settings.platform_account;
            let mut subjects: Vec<(String, String)> = spec
                .exports
                .iter()
                .map(|e| ("export".to_string(), e.subject.to_string()))
                .collect();
            // The platform's imports are Warden's own prefixed imports.
            if !platform {
                for i in &spec.imports {
                    subjects.push(("import".into(), i.subject.to_string()));
                    if let Some(l) = &i.local_subject {
                        subjects.push(("import".into(), l.to_string()));
                    }
                }
            }
            for u in tx.users(&acc.public_key).await? {
                let us: warden_core::UserSpec = from_json(&u.spec)?;
                for s in us
                    .permissions
                    .publish
                    .allow
                    .iter()
                    .chain(&us.permissions.subscribe.allow)
                {
                    subjects.push((format!("user {}", u.name), s.to_string()));
                }
            }
            for (what, s) in subjects {
                out.extend(lint::shared_subject(&acc.name, &what, &s, &slugs));
            }
        }
        Ok(out)
    }

    /// Findings about streams (`origin`: where they were read, `spec` or `server`):
    /// unbounded streams, platform streams off the tenant wildcard, one tenant's
    /// subjects captured in a shared account.
    pub async fn lint_streams(&self, streams: &[LintStream], origin: &str) -> Result<Vec<Finding>> {
        self.need(Scope::Read, "linting streams")?;
        let settings = self.trusted().tenant_settings().await?;
        let mut tx = self.store().begin().await?;
        self.operator_row(&mut tx).await?;
        let mut slugs = Vec::new();
        let mut tenant_accounts = Vec::new();
        for t in tx.tenants(None).await? {
            if let Some(acc) = tx.account(&t.account_key).await? {
                tenant_accounts.push(acc.name);
            }
            slugs.push(t.slug);
        }
        Ok(streams
            .iter()
            .flat_map(|s| {
                lint::stream(
                    &s.account,
                    &s.name,
                    &s.config,
                    &settings,
                    &slugs,
                    &tenant_accounts,
                    origin,
                )
            })
            .collect())
    }

    /// The platform account's streams as the server at `nats_url` reports them, read as
    /// the platform user (which may call the JetStream API; nothing is created).
    pub async fn platform_streams(
        &self,
        nats_url: &str,
    ) -> std::result::Result<Vec<LintStream>, StreamsError> {
        self.need(Scope::Read, "reading the platform's streams")?;
        let account = self.trusted().tenant_settings().await?.platform_account;
        let creds = match self.trusted().platform_creds().await {
            Ok(c) => c,
            Err(OpsError::NotFound(_)) => {
                return Err(StreamsError::Ops(OpsError::Invalid(format!(
                    "no platform account {account} yet (it is created with the first tenant)"
                ))));
            }
            Err(e) => return Err(e.into()),
        };
        let server = |e: String| StreamsError::Server(e);
        let client = async_nats::ConnectOptions::with_credentials(&creds)
            .map_err(|e| server(format!("platform creds: {e}")))?
            .name("warden-tenant-lint")
            .connection_timeout(std::time::Duration::from_secs(10))
            .request_timeout(Some(std::time::Duration::from_secs(10)))
            .max_reconnects(Some(1))
            .retain_servers_order()
            .connect(warden_nats::servers(nats_url))
            .await
            .map_err(|e| server(format!("cannot connect to {nats_url} as {account}: {e}")))?;
        let js = jetstream::new(client);
        let list: Vec<jetstream::stream::Info> = js.streams().try_collect().await.map_err(|e| {
            let text = e.to_string();
            if text.contains("not enabled") {
                StreamsError::NoJetStream(account.clone())
            } else {
                server(format!("listing the streams of {account}: {text}"))
            }
        })?;
        let mut out: Vec<LintStream> = list
            .iter()
            .map(|i| LintStream {
                account: account.clone(),
                name: i.config.name.clone(),
                config: from_server(&i.config),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// The streams declared in a spec, validated as `warden streams apply` validates them.
pub fn spec_streams(spec: &StreamsSpec) -> std::result::Result<Vec<LintStream>, StreamsError> {
    let decls = warden_core::streams::validate(spec).map_err(StreamsError::Invalid)?;
    Ok(decls
        .into_iter()
        .map(|d| LintStream {
            account: d.account,
            name: d.name,
            config: d.config,
        })
        .collect())
}
