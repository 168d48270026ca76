//! Warden's request/reply API on NATS (`warden serve`), following the NATS
//! services conventions (ADR-32) through async-nats's `service` module: a service
//! named `warden` answers `$SRV.PING|INFO|STATS` discovery, and one endpoint per
//! operation under `<prefix>.` (default `WARDEN`, from
//! [`Settings::service_prefix`](warden_ops::Settings::service_prefix)):
//!
//! | subject | request (JSON) | reply |
//! |---|---|---|
//! | `<prefix>.status` | — | `StatusView` |
//! | `<prefix>.operator.get` | — | `OperatorView` |
//! | `<prefix>.account.list` | — | `[AccountView]` |
//! | `<prefix>.account.get` | `{name}` | `AccountView` |
//! | `<prefix>.account.create` | `{name, spec?: AccountSpec}` | `AccountView` |
//! | `<prefix>.account.edit` | `{name, …AccountEdit}` (limits, JetStream tiers, default permissions, tags, info URL, description) | `AccountView` |
//! | `<prefix>.account.delete` | `{name}` | `AccountView` |
//! | `<prefix>.user.list` | `{account}` | `[UserView]` |
//! | `<prefix>.user.get` | `{account, name}` | `UserView` |
//! | `<prefix>.user.create` | `{account, name, spec?: UserSpec}` | `UserView` + `creds` |
//! | `<prefix>.user.edit` | `{account, name, edit: UserEdit}` | `UserView` |
//! | `<prefix>.user.revoke` | `{account, name}` | `UserView` |
//! | `<prefix>.user.delete` | `{account, name}` | `UserView` |
//! | `<prefix>.user.creds` | `{account, name}` | `{creds}` |
//! | `<prefix>.device.list` | `{state?}` (`provisioned`, `active`, `revoked`) | `[DeviceView]` |
//! | `<prefix>.device.get` | `{id}` | `DeviceView` |
//! | `<prefix>.device.create` | `{id, meta?}` | `{device: DeviceView, creds}` |
//! | `<prefix>.device.rotate` | `{id}` | `{device: DeviceView, creds}` (the new creds) |
//! | `<prefix>.device.revoke` | `{id}` | `DeviceView` |
//! | `<prefix>.device.restore` | `{id}` | `DeviceView` |
//! | `<prefix>.device.creds` | `{id}` | `{creds}` |
//! | `<prefix>.tenant.list` | — | `[TenantView]` |
//! | `<prefix>.tenant.get` | `{slug}` | `TenantView` |
//! | `<prefix>.tenant.create` | `{slug, limits?: TenantLimitsEdit}` | `TenantView` |
//! | `<prefix>.tenant.edit` | `{slug, limits: TenantLimitsEdit}` | `TenantView` |
//! | `<prefix>.tenant.suspend` | `{slug}` | `TenantView` |
//! | `<prefix>.tenant.resume` | `{slug}` | `TenantView` |
//! | `<prefix>.tenant.delete` | `{slug}` | `TenantView` |
//! | `<prefix>.tenant.user.add` | `{slug, name}` | `{tenant: TenantView, user, creds}` |
//! | `<prefix>.tenant.creds` | `{slug, name}` | `{creds}` |
//! | `<prefix>.tenant.lint` | — | `[Finding]` (`warden tenant lint` without streams) |
//! | `<prefix>.account.mapping.list` | `{account}` | `MappingsView` |
//! | `<prefix>.account.mapping.add` | `{account, from, to: [{subject, weight?}], cluster?}` | `MappingsView` |
//! | `<prefix>.account.mapping.remove` | `{account, from, to?}` | `MappingsView` |
//! | `<prefix>.account.export.list` | `{account}` | `[ExportView]` |
//! | `<prefix>.account.export.add` | `{account, export: ExportOptions}` | `ExportChange` |
//! | `<prefix>.account.export.edit` | `{account, subject, edit: ExportEdit}` | `ExportChange` |
//! | `<prefix>.account.export.remove` | `{account, subject}` | `ExportChange` |
//! | `<prefix>.account.import.list` | `{account}` | `[ImportView]` |
//! | `<prefix>.account.import.add` | `{account, import: ImportOptions}` | `ImportView` |
//! | `<prefix>.account.import.remove` | `{account, subject, from?}` | `ImportView` |
//! | `<prefix>.account.activation.create` | `{account, activation: {subject, target, expires_at?}}` | `ActivationView` |
//! | `<prefix>.account.activation.revoke` | `{account, subject, target}` | `RevocationView` |
//! | `<prefix>.account.signing_key.list` | `{account}` | `[SigningKeyView]` |
//! | `<prefix>.account.signing_key.add` | `{account, role?, template?}` (template: the JWT's form; subs, data, payload default -1) | `SigningKeyAdded` |
//! | `<prefix>.account.signing_key.rotate` | `{account, key}` or `{account, role}` | `SigningKeyRotated` |
//! | `<prefix>.account.signing_key.remove` | `{account, key}` or `{account, role}` | `SigningKeyRemoved` |
//! | `<prefix>.user.rotate` | `{account, name}` | `{user: UserView, old_key, creds}` (needs `creds`) |
//! | `<prefix>.user.permissions` | `{account, name, server?}` (`2.9`/`2.15`) | `EffectivePermissions` |
//! | `<prefix>.user.explain` | `{account, name, direction, subject, server?}` | `UserExplanation` |
//! | `<prefix>.operator.signing_key.list` | — | `SigningKeysView` |
//! | `<prefix>.operator.signing_key.add` | — | `SigningKeyChange` (needs `admin`) |
//! | `<prefix>.operator.signing_key.rotate` | `{servers?, timeout_ms?}` | `RotateReport` (needs `admin`; the servers are not asked: it starts a rotation or says what it waits for) |
//! | `<prefix>.operator.signing_key.remove` | `{key}` | `SigningKeyChange` (needs `admin`) |
//! | `<prefix>.callout.status` | — | `CalloutView` |
//! | `<prefix>.callout.setup` | `{account?, xkey?, allowed_accounts?, ttl_secs?, server_version?}` | `CalloutView` (needs `admin`) |
//! | `<prefix>.callout.sentinel` | — | `{creds}` (the sentinel's; needs `creds`) |
//! | `<prefix>.callout.auth.list` | — | `[AuthenticatorView]` |
//! | `<prefix>.callout.auth.add` | `{kind, name, …, password?, position?}` (kind `ldap`, `oidc` or `mtls`: the body of `POST /v1/callout/authenticators`) | `AuthenticatorView` (needs `admin`) |
//! | `<prefix>.callout.auth.remove` | `{name}` | `AuthenticatorView` (needs `admin`) |
//! | `<prefix>.callout.explain` | `{login}` | `Explained`: what the callout would decide |
//!
//! `user.create` also takes `role` (a user issued by that role's scoped key; `spec` may
//! then hold only `tags`): its reply is `RoleUserAdded`, without creds (fetch them with
//! `user.creds`).
//!
//! Bodies are decoded as strictly as the HTTP API decodes them (a JSON object;
//! an unknown field at any depth is refused; `user.edit` takes any subset of
//! `UserEdit`, `"expiry": null` clearing the expiry). Failures are replied with
//! an empty body and the `Nats-Service-Error` and `Nats-Service-Error-Code` headers:
//! the code is the HTTP API's status for the error ([`status_of`]: 400 bad input,
//! including malformed JSON, 404 not found, 409 conflict or an uninitialised database,
//! 403 refused, 503 unavailable, 500 internal, details only in the log) and the message
//! is the one the CLI and the HTTP API give; a 403's starts with the HTTP API's stable
//! code: `forbidden: …` for a missing scope, `refused: …` for what the rules refuse. No
//! message ever carries a seed.
//!
//! Who may reach the service is decided by nats-server: the service connects as its
//! own user (`BACKEND`/`warden` from the built-in migrations: subscribe
//! `<prefix>.>` and `$SRV.>`, publish only as replies), and callers are users
//! allowed to publish on `<prefix>.>` (e.g. `BACKEND`/`backend`). What a caller may do
//! is decided by the operations: every request runs as
//! [`Actor::nats_service`](warden_ops::Actor::nats_service) with the scopes `warden serve`
//! was given (`--service-scopes`, default [`DEFAULT_SERVICE_SCOPES`]). Without `creds`,
//! `user.creds`, `device.creds`, `tenant.creds`, `callout.sentinel`, and `user.create`,
//! `device.create`, `device.rotate`, `tenant.user.add` (whose replies carry creds) are
//! refused with nothing written, and a bearer user's JWT is withheld (`"jwt": null,
//! "jwt_withheld": true`). A message without a reply subject is ignored: nothing changes
//! that nobody hears about.

mod account_model;
mod callout;

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use async_nats::service::{self, ServiceExt};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;
use warden_core::spec::UserEdit;
use warden_core::{AccountSpec, UserSpec};

use warden_core::device::{DeviceMeta, DeviceState};

use warden_core::tenant::TenantLimitsEdit;
use warden_ops::device::DeviceView;
use warden_ops::tenant::TenantView;
use warden_ops::{Actor, ErrorKind, OpsError, Scope, UserView, Warden};

/// The service's name in `$SRV` discovery.
pub const SERVICE_NAME: &str = "warden";

/// The scopes of the service's callers unless `warden serve --service-scopes` says
/// otherwise (parse with [`warden_ops::tokens::parse_scopes`]): what the service has
/// always allowed.
pub const DEFAULT_SERVICE_SCOPES: &str = "read,write,creds";

/// [`DEFAULT_SERVICE_SCOPES`], parsed.
pub fn default_service_scopes() -> Vec<Scope> {
    vec![Scope::Read, Scope::Write, Scope::Creds]
}

/// How long, after shutdown, requests already delivered to this connection may
/// still be picked up. With NATS up the endpoints' streams end sooner (once the
/// unsubscriptions are sent); with NATS gone they never end, so this bounds it.
const DRAIN: Duration = Duration::from_millis(300);

/// How long, after shutdown, the requests being handled may take to finish before
/// they are abandoned (their callers time out, as if the process had crashed).
const HANDLERS: Duration = Duration::from_millis(500);

/// How long, after shutdown, the last replies may take to reach the server (they
/// cannot while NATS is gone).
const LAST_FLUSH: Duration = Duration::from_millis(250);

/// What a caller is told about an internal failure (as the HTTP API says it).
const INTERNAL: &str = "internal error; the details are in the server log";

/// Longest error message sent in a header.
const MAX_ERROR_LEN: usize = 1024;

/// One operation of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `status`
    Status,
    /// `operator.get`
    OperatorGet,
    /// `account.list`
    AccountList,
    /// `account.get`
    AccountGet,
    /// `account.create`
    AccountCreate,
    /// `account.edit`
    AccountEdit,
    /// `account.delete`
    AccountDelete,
    /// `user.list`
    UserList,
    /// `user.get`
    UserGet,
    /// `user.create`
    UserCreate,
    /// `user.edit`
    UserEdit,
    /// `user.revoke`
    UserRevoke,
    /// `user.delete`
    UserDelete,
    /// `user.creds`
    UserCreds,
    /// `device.list`
    DeviceList,
    /// `device.get`
    DeviceGet,
    /// `device.create`
    DeviceCreate,
    /// `device.rotate`
    DeviceRotate,
    /// `device.revoke`
    DeviceRevoke,
    /// `device.restore`
    DeviceRestore,
    /// `device.creds`
    DeviceCreds,
    /// `tenant.list`
    TenantList,
    /// `tenant.get`
    TenantGet,
    /// `tenant.create`
    TenantCreate,
    /// `tenant.edit`
    TenantEdit,
    /// `tenant.suspend`
    TenantSuspend,
    /// `tenant.resume`
    TenantResume,
    /// `tenant.delete`
    TenantDelete,
    /// `tenant.user.add`
    TenantUserAdd,
    /// `tenant.creds`
    TenantCreds,
    /// `tenant.lint`
    TenantLint,
    /// `account.mapping.list`
    MappingList,
    /// `account.mapping.add`
    MappingAdd,
    /// `account.mapping.remove`
    MappingRemove,
    /// `account.export.list`
    ExportList,
    /// `account.export.add`
    ExportAdd,
    /// `account.export.edit`
    ExportEdit,
    /// `account.export.remove`
    ExportRemove,
    /// `account.import.list`
    ImportList,
    /// `account.import.add`
    ImportAdd,
    /// `account.import.remove`
    ImportRemove,
    /// `account.activation.create`
    ActivationCreate,
    /// `account.activation.revoke`
    ActivationRevoke,
    /// `account.signing_key.list`
    SigningKeyList,
    /// `account.signing_key.add`
    SigningKeyAdd,
    /// `account.signing_key.rotate`
    SigningKeyRotate,
    /// `account.signing_key.remove`
    SigningKeyRemove,
    /// `user.rotate`
    UserRotate,
    /// `user.permissions`
    UserPermissions,
    /// `user.explain`
    UserExplain,
    /// `operator.signing_key.list`
    OperatorSigningKeyList,
    /// `operator.signing_key.add`
    OperatorSigningKeyAdd,
    /// `operator.signing_key.rotate`
    OperatorSigningKeyRotate,
    /// `operator.signing_key.remove`
    OperatorSigningKeyRemove,
    /// `callout.status`
    CalloutStatus,
    /// `callout.setup`
    CalloutSetup,
    /// `callout.sentinel`
    CalloutSentinel,
    /// `callout.auth.list`
    CalloutAuthList,
    /// `callout.auth.add`
    CalloutAuthAdd,
    /// `callout.auth.remove`
    CalloutAuthRemove,
    /// `callout.explain`
    CalloutExplain,
}

impl Op {
    /// Every operation, in the order the endpoints are registered.
    pub const ALL: [Op; 61] = [
        Op::Status,
        Op::OperatorGet,
        Op::AccountList,
        Op::AccountGet,
        Op::AccountCreate,
        Op::AccountEdit,
        Op::AccountDelete,
        Op::UserList,
        Op::UserGet,
        Op::UserCreate,
        Op::UserEdit,
        Op::UserRevoke,
        Op::UserDelete,
        Op::UserCreds,
        Op::DeviceList,
        Op::DeviceGet,
        Op::DeviceCreate,
        Op::DeviceRotate,
        Op::DeviceRevoke,
        Op::DeviceRestore,
        Op::DeviceCreds,
        Op::TenantList,
        Op::TenantGet,
        Op::TenantCreate,
        Op::TenantEdit,
        Op::TenantSuspend,
        Op::TenantResume,
        Op::TenantDelete,
        Op::TenantUserAdd,
        Op::TenantCreds,
        Op::TenantLint,
        Op::MappingList,
        Op::MappingAdd,
        Op::MappingRemove,
        Op::ExportList,
        Op::ExportAdd,
        Op::ExportEdit,
        Op::ExportRemove,
        Op::ImportList,
        Op::ImportAdd,
        Op::ImportRemove,
        Op::ActivationCreate,
        Op::ActivationRevoke,
        Op::SigningKeyList,
        Op::SigningKeyAdd,
        Op::SigningKeyRotate,
        Op::SigningKeyRemove,
        Op::UserRotate,
        Op::UserPermissions,
        Op::UserExplain,
        Op::OperatorSigningKeyList,
        Op::OperatorSigningKeyAdd,
        Op::OperatorSigningKeyRotate,
        Op::OperatorSigningKeyRemove,
        Op::CalloutStatus,
        Op::CalloutSetup,
        Op::CalloutSentinel,
        Op::CalloutAuthList,
        Op::CalloutAuthAdd,
        Op::CalloutAuthRemove,
        Op::CalloutExplain,
    ];

    /// The subject below the prefix, e.g. `account.create`.
    pub fn subject(self) -> &'static str {
        match self {
            Op::Status => "status",
            Op::OperatorGet => "operator.get",
            Op::AccountList => "account.list",
            Op::AccountGet => "account.get",
            Op::AccountCreate => "account.create",
            Op::AccountEdit => "account.edit",
            Op::AccountDelete => "account.delete",
            Op::UserList => "user.list",
            Op::UserGet => "user.get",
            Op::UserCreate => "user.create",
            Op::UserEdit => "user.edit",
            Op::UserRevoke => "user.revoke",
            Op::UserDelete => "user.delete",
            Op::UserCreds => "user.creds",
            Op::DeviceList => "device.list",
            Op::DeviceGet => "device.get",
            Op::DeviceCreate => "device.create",
            Op::DeviceRotate => "device.rotate",
            Op::DeviceRevoke => "device.revoke",
            Op::DeviceRestore => "device.restore",
            Op::DeviceCreds => "device.creds",
            Op::TenantList => "tenant.list",
            Op::TenantGet => "tenant.get",
            Op::TenantCreate => "tenant.create",
            Op::TenantEdit => "tenant.edit",
            Op::TenantSuspend => "tenant.suspend",
            Op::TenantResume => "tenant.resume",
            Op::TenantDelete => "tenant.delete",
            Op::TenantUserAdd => "tenant.user.add",
            Op::TenantCreds => "tenant.creds",
            Op::TenantLint => "tenant.lint",
            Op::MappingList => "account.mapping.list",
            Op::MappingAdd => "account.mapping.add",
            Op::MappingRemove => "account.mapping.remove",
            Op::ExportList => "account.export.list",
            Op::ExportAdd => "account.export.add",
            Op::ExportEdit => "account.export.edit",
            Op::ExportRemove => "account.export.remove",
            Op::ImportList => "account.import.list",
            Op::ImportAdd => "account.import.add",
            Op::ImportRemove => "account.import.remove",
            Op::ActivationCreate => "account.activation.create",
            Op::ActivationRevoke => "account.activation.revoke",
            Op::SigningKeyList => "account.signing_key.list",
            Op::SigningKeyAdd => "account.signing_key.add",
            Op::SigningKeyRotate => "account.signing_key.rotate",
            Op::SigningKeyRemove => "account.signing_key.remove",
            Op::UserRotate => "user.rotate",
            Op::UserPermissions => "user.permissions",
            Op::UserExplain => "user.explain",
            Op::OperatorSigningKeyList => "operator.signing_key.list",
            Op::OperatorSigningKeyAdd => "operator.signing_key.add",
            Op::OperatorSigningKeyRotate => "operator.signing_key.rotate",
            Op::OperatorSigningKeyRemove => "operator.signing_key.remove",
            Op::CalloutStatus => "callout.status",
            Op::CalloutSetup => "callout.setup",
            Op::CalloutSentinel => "callout.sentinel",
            Op::CalloutAuthList => "callout.auth.list",
            Op::CalloutAuthAdd => "callout.auth.add",
            Op::CalloutAuthRemove => "callout.auth.remove",
            Op::CalloutExplain => "callout.explain",
        }
    }

    /// The endpoint's name in `$SRV.INFO` / `$SRV.STATS`, e.g. `account-create`.
    pub fn endpoint_name(self) -> String {
        self.subject().replace('.', "-")
    }
}

/// The full subject of an operation under a prefix.
pub fn subject(prefix: &str, op: Op) -> String {
    format!("{prefix}.{}", op.subject())
}

/// Checks a service prefix: a literal subject (no wildcards, no empty tokens,
/// no whitespace), as the endpoints are `<prefix>.<op>`.
pub fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    if prefix.is_empty() {
        bail!("the service prefix is empty");
    }
    for token in prefix.split('.') {
        if token.is_empty() {
            bail!("the service prefix {prefix:?} has an empty token");
        }
        if token == "*" || token == ">" {
            bail!("the service prefix {prefix:?} contains a wildcard");
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("the service prefix {prefix:?} contains whitespace");
        }
    }
    if prefix.starts_with('$') {
        bail!("the service prefix {prefix:?} may not start with '$' (reserved by NATS)");
    }
    Ok(())
}

/// Runs the service on `client` until `shutdown` resolves, its requests run as
/// [`Actor::nats_service`] holding `scopes`. Every request is
/// handled in its own task; after shutdown the endpoints unsubscribe, requests
/// already delivered are still handled, and those in flight finish before this
/// returns — each of these waits bounded (`DRAIN`, `HANDLERS`, `LAST_FLUSH`), so
/// it returns within about a second of `shutdown` whatever the state of NATS (a
/// shutdown before NATS took the subscriptions returns at once). Returns an error if the service cannot start or the connection's
/// subscriptions end without a shutdown.
pub async fn run(
    client: async_nats::Client,
    warden: Warden,
    prefix: &str,
    scopes: &[Scope],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    check_prefix(prefix)?;
    let warden = warden.with_actor(Actor::nats_service(scopes));
    let mut shutdown = std::pin::pin!(shutdown);
    // Starting waits on NATS (the subscriptions are flushed), which may be down: a
    // shutdown meanwhile stops here.
    let started = tokio::select! {
        started = start(&client, prefix) => started?,
        () = &mut shutdown => {
            tracing::info!("NATS service {SERVICE_NAME} stopped before NATS took its subscriptions");
            return Ok(());
        }
    };
    let (svc, endpoints) = started;
    tracing::info!(prefix, "NATS service {SERVICE_NAME} started");

    let mut requests = futures::stream::select_all(
        endpoints
            .into_iter()
            .map(|(op, endpoint)| endpoint.map(move |req| (op, req))),
    );
    let mut tasks = JoinSet::new();
    let stopped = loop {
        tokio::select! {
            () = &mut shutdown => break true,
            next = requests.next() => match next {
                Some((op, req)) => spawn(&mut tasks, &warden, op, req),
                None => break false,
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => report(done),
        }
    };

    // Stop: the endpoints unsubscribe; what was already delivered is handled. Every
    // wait below is bounded: with NATS gone, neither the unsubscriptions nor the
    // replies reach the server, and the process must stop all the same.
    svc.stop()
        .await
        .map_err(|e| anyhow!("cannot stop the NATS service: {e}"))?;
    if stopped {
        let drain = async {
            while let Some((op, req)) = requests.next().await {
                spawn(&mut tasks, &warden, op, req);
            }
        };
        if tokio::time::timeout(DRAIN, drain).await.is_err() {
            tracing::warn!("NATS service: endpoints did not close within {DRAIN:?}");
        }
    }
    drop(requests);
    let handlers = async {
        while let Some(done) = tasks.join_next().await {
            report(done);
        }
    };
    if tokio::time::timeout(HANDLERS, handlers).await.is_err() {
        tracing::warn!(
            abandoned = tasks.len(),
            "NATS service: requests still being handled {HANDLERS:?} after the stop are abandoned"
        );
        tasks.abort_all();
    }
    let flushed = match tokio::time::timeout(LAST_FLUSH, client.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("not flushed within {LAST_FLUSH:?}")),
    };
    if stopped {
        if let Err(e) = flushed {
            tracing::warn!("NATS service: the last replies may be lost: {e}");
        }
        tracing::info!("NATS service {SERVICE_NAME} stopped");
        Ok(())
    } else {
        flushed.map_err(|e| anyhow!("cannot flush the last replies: {e}"))?;
        Err(anyhow!(
            "the NATS connection closed the service's subscriptions"
        ))
    }
}

/// Starts the service on `client` with one endpoint per operation, and waits until the
/// server has the subscriptions.
async fn start(
    client: &async_nats::Client,
    prefix: &str,
) -> anyhow::Result<(service::Service, Vec<(Op, service::endpoint::Endpoint)>)> {
    let svc = client
        .service_builder()
        .description("Warden: identity and access control plane for NATS")
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow!("cannot start the NATS service: {e}"))?;
    let root = svc.group(prefix);
    let mut endpoints = Vec::with_capacity(Op::ALL.len());
    for op in Op::ALL {
        let endpoint = root
            .endpoint_builder()
            .name(op.endpoint_name())
            .add(op.subject())
            .await
            .map_err(|e| anyhow!("cannot subscribe to {}: {e}", subject(prefix, op)))?;
        endpoints.push((op, endpoint));
    }
    // Subscriptions are in place once the server has seen them.
    client
        .flush()
        .await
        .context("cannot flush the service's subscriptions")?;
    Ok((svc, endpoints))
}

fn spawn(tasks: &mut JoinSet<()>, warden: &Warden, op: Op, req: service::Request) {
    if req.message.reply.is_none() {
        tracing::warn!(
            subject = %req.message.subject,
            "ignoring a message without a reply subject (send a request)"
        );
        return;
    }
    let warden = warden.clone();
    tasks.spawn(async move { handle(&warden, op, req).await });
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!("a NATS service request handler failed: {e}");
    }
}

async fn handle(warden: &Warden, op: Op, req: service::Request) {
    let reply = match dispatch(warden, op, &req.message.payload).await {
        Ok(body) => Ok(body.into()),
        Err(e) => {
            tracing::debug!(subject = %req.message.subject, code = e.code, "{}", e.message);
            Err(service::error::Error {
                status: e.text(),
                code: e.code as usize,
            })
        }
    };
    if let Err(e) = req.respond(reply).await {
        tracing::warn!(subject = %req.message.subject, "cannot send the reply: {e}");
    }
}

/// The status code of each kind of operation error: the service's one mapping, the
/// same codes as the HTTP API's statuses.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Invalid => 400,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::Refused => 403,
        ErrorKind::Unavailable => 503,
        ErrorKind::Internal => 500,
    }
}

/// An error reply: a status code, the stable code and a message safe to show the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    /// The HTTP API's status for the error ([`status_of`]).
    pub code: u16,
    /// The HTTP API's stable code (`invalid`, `forbidden`, …).
    pub error: &'static str,
    /// One line, no seed.
    pub message: String,
}

impl ServiceError {
    /// A 400 `invalid` with the given message.
    pub fn bad_request(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Invalid, ErrorKind::Invalid.code(), message)
    }

    /// A failure of the service itself (details logged, not sent).
    fn internal(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorKind::Internal, ErrorKind::Internal.code(), message)
    }

    fn new(kind: ErrorKind, error: &'static str, message: impl Into<String>) -> ServiceError {
        let code = status_of(kind);
        let message = clean(&message.into());
        if kind == ErrorKind::Internal {
            tracing::error!("NATS service: {message}");
            return ServiceError {
                code,
                error,
                message: INTERNAL.to_string(),
            };
        }
        ServiceError {
            code,
            error,
            message,
        }
    }

    /// The `Nats-Service-Error` header: the message, as every surface words it (a
    /// refusal's starts with its stable code: `refused: …`, `forbidden: …`).
    pub fn text(&self) -> String {
        self.message.clone()
    }
}

impl From<OpsError> for ServiceError {
    fn from(e: OpsError) -> Self {
        ServiceError::new(e.kind(), e.code(), e.to_string())
    }
}

/// Makes a message fit for a header: one line, bounded, with anything that looks
/// like an NKey seed (`S` + 55 or more base32 characters) redacted.
fn clean(message: &str) -> String {
    let one_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = String::with_capacity(one_line.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 56 && run.starts_with('S') {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in one_line.chars() {
        if c.is_ascii_uppercase() || ('2'..='7').contains(&c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    if out.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out.trim().to_string()
}

/// `{}` (or an empty body) for operations without arguments.
#[derive(Deserialize)]
struct NoArgs {}

#[derive(Deserialize)]
struct AccountRef {
    name: String,
}

#[derive(Deserialize)]
struct AccountCreate {
    name: String,
    #[serde(default)]
    spec: AccountSpec,
}

#[derive(Deserialize)]
struct UserList {
    account: String,
}

#[derive(Deserialize)]
struct UserRef {
    account: String,
    name: String,
}

#[derive(Deserialize)]
struct UserCreate {
    account: String,
    name: String,
    #[serde(default)]
    spec: UserSpec,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize)]
struct UserEditRequest {
    account: String,
    name: String,
    /// Parsed by [`user_edit`]: any subset of `UserEdit`'s fields.
    edit: Value,
}

#[derive(Deserialize)]
struct DeviceList {
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct DeviceRef {
    id: String,
}

#[derive(Deserialize)]
struct DeviceCreate {
    id: String,
    #[serde(default)]
    meta: DeviceMeta,
}

#[derive(Deserialize)]
struct TenantRef {
    slug: String,
}

#[derive(Deserialize)]
struct TenantCreate {
    slug: String,
    #[serde(default)]
    limits: TenantLimitsEdit,
}

#[derive(Deserialize)]
struct TenantEdit {
    slug: String,
    limits: TenantLimitsEdit,
}

#[derive(Deserialize)]
struct TenantUserRef {
    slug: String,
    name: String,
}

/// A tenant and the user just added to it, with its creds.
#[derive(Serialize)]
struct TenantUserAdded<'a> {
    tenant: &'a TenantView,
    user: &'a str,
    creds: &'a str,
}

/// A device and the creds just issued to it (create, rotate).
#[derive(Serialize)]
struct DeviceWithCreds<'a> {
    device: &'a DeviceView,
    creds: &'a str,
}

#[derive(Serialize)]
struct CreatedUser<'a> {
    #[serde(flatten)]
    user: &'a UserView,
    creds: &'a str,
}

#[derive(Serialize)]
struct Creds<'a> {
    creds: &'a str,
}

/// The request body as a JSON object (an empty body is `{}`).
fn body(op: Op, payload: &[u8]) -> Result<Value, ServiceError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        ServiceError::bad_request(format!(
            "malformed JSON request to {}: not valid JSON: {e}",
            op.subject()
        ))
    })?;
    if !value.is_object() {
        return Err(ServiceError::bad_request(format!(
            "malformed JSON request to {}: the body must be a JSON object",
            op.subject()
        )));
    }
    Ok(value)
}

/// Decodes strictly, as the HTTP API does: a field `T` does not know, at any
/// depth, is refused (`at` prefixes the reported path).
fn decode<T: DeserializeOwned>(op: Op, at: &str, value: Value) -> Result<T, ServiceError> {
    let mut unknown = Vec::new();
    let decoded: T = serde_ignored::deserialize(value, |path| {
        unknown.push(format!("{at}{path}"));
    })
    .map_err(|e| {
        ServiceError::bad_request(format!(
            "malformed JSON request to {}: {at}{e}",
            op.subject()
        ))
    })?;
    if !unknown.is_empty() {
        return Err(ServiceError::bad_request(format!(
            "malformed JSON request to {}: unknown field{} {}",
            op.subject(),
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )));
    }
    Ok(decoded)
}

fn parse<T: DeserializeOwned>(op: Op, payload: &[u8]) -> Result<T, ServiceError> {
    decode(op, "", body(op, payload)?)
}

/// A `UserEdit` from any subset of its fields (the type itself wants them all):
/// the given object is laid over the empty edit. `"expiry": null` clears the
/// expiry (plain serde would read it as "leave it").
fn user_edit(value: Value) -> Result<UserEdit, ServiceError> {
    let Value::Object(given) = value else {
        return Err(ServiceError::bad_request(
            "malformed JSON request to user.edit: `edit` must be an object",
        ));
    };
    let clears_expiry = matches!(given.get("expiry"), Some(Value::Null));
    let mut merged = serde_json::to_value(UserEdit::default())
        .map_err(|e| ServiceError::internal(format!("cannot build an empty edit: {e}")))?;
    merge(&mut merged, Value::Object(given));
    let mut edit: UserEdit = decode(Op::UserEdit, "edit.", merged)?;
    if clears_expiry {
        edit.expiry = Some(None);
    }
    Ok(edit)
}

/// Lays `over` on `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value)
        .map_err(|e| ServiceError::internal(format!("cannot serialise the reply: {e}")))
}

/// An operation's answer as the service's reply: its JSON, or its error.
fn reply<T: Serialize>(r: warden_ops::Result<T>) -> Result<Vec<u8>, ServiceError> {
    json(&r?)
}

/// Runs one operation on a request body; the reply body or the error to send.
pub async fn dispatch(warden: &Warden, op: Op, payload: &[u8]) -> Result<Vec<u8>, ServiceError> {
    match op {
        Op::Status => {
            parse::<NoArgs>(op, payload)?;
            json(&warden.status().await?)
        }
        Op::OperatorGet => {
            parse::<NoArgs>(op, payload)?;
            json(&warden.operator().await?)
        }
        Op::AccountList => {
            parse::<NoArgs>(op, payload)?;
            json(&warden.list_accounts().await?)
        }
        Op::AccountGet => {
            let r: AccountRef = parse(op, payload)?;
            json(&warden.account(&r.name).await?)
        }
        Op::AccountCreate => {
            let r: AccountCreate = parse(op, payload)?;
            json(&warden.add_account(&r.name, r.spec).await?)
        }
        Op::AccountEdit => account_model::account_edit(warden, payload).await,
        Op::AccountDelete => {
            let r: AccountRef = parse(op, payload)?;
            json(&warden.delete_account(&r.name).await?)
        }
        Op::UserList => {
            let r: UserList = parse(op, payload)?;
            json(&warden.list_users(&r.account).await?)
        }
        Op::UserGet => {
            let r: UserRef = parse(op, payload)?;
            json(&warden.user(&r.account, &r.name).await?)
        }
        Op::UserCreate => {
            let r: UserCreate = parse(op, payload)?;
            if let Some(role) = r.role {
                return account_model::user_by_role(warden, r.account, r.name, role, r.spec).await;
            }
            let spec = r.spec;
            let (user, creds) = warden
                .add_user_with_creds(&r.account, &r.name, spec)
                .await?;
            json(&CreatedUser {
                user: &user,
                creds: &creds,
            })
        }
        Op::UserEdit => {
            let r: UserEditRequest = parse(op, payload)?;
            let edit = user_edit(r.edit)?;
            json(&warden.edit_user(&r.account, &r.name, &edit).await?)
        }
        Op::UserRevoke => {
            let r: UserRef = parse(op, payload)?;
            json(&warden.revoke_user(&r.account, &r.name).await?)
        }
        Op::UserDelete => {
            let r: UserRef = parse(op, payload)?;
            json(&warden.delete_user(&r.account, &r.name).await?)
        }
        Op::UserCreds => {
            let r: UserRef = parse(op, payload)?;
            let creds = warden.creds(&r.account, &r.name).await?;
            json(&Creds { creds: &creds })
        }
        Op::DeviceList => {
            let r: DeviceList = parse(op, payload)?;
            let state = match r.state.as_deref() {
                None => None,
                Some(raw) => Some(DeviceState::parse(raw).ok_or_else(|| {
                    ServiceError::bad_request(format!(
                        "state must be provisioned, active or revoked, not {raw:?}"
                    ))
                })?),
            };
            json(&warden.list_devices(state).await?)
        }
        Op::DeviceGet => {
            let r: DeviceRef = parse(op, payload)?;
            json(&warden.device(&r.id).await?)
        }
        Op::DeviceCreate => {
            let r: DeviceCreate = parse(op, payload)?;
            let (device, creds) = warden.add_device_with_creds(&r.id, r.meta).await?;
            json(&DeviceWithCreds {
                device: &device,
                creds: &creds,
            })
        }
        Op::DeviceRotate => {
            let r: DeviceRef = parse(op, payload)?;
            let (device, creds) = warden.rotate_device_with_creds(&r.id).await?;
            json(&DeviceWithCreds {
                device: &device,
                creds: &creds,
            })
        }
        Op::DeviceRevoke => {
            let r: DeviceRef = parse(op, payload)?;
            json(&warden.revoke_device(&r.id).await?)
        }
        Op::DeviceRestore => {
            let r: DeviceRef = parse(op, payload)?;
            json(&warden.restore_device(&r.id).await?)
        }
        Op::DeviceCreds => {
            let r: DeviceRef = parse(op, payload)?;
            let creds = warden.device_creds(&r.id).await?;
            json(&Creds { creds: &creds })
        }
        Op::TenantList => {
            parse::<NoArgs>(op, payload)?;
            json(&warden.list_tenants().await?)
        }
        Op::TenantGet => {
            let r: TenantRef = parse(op, payload)?;
            json(&warden.tenant(&r.slug).await?)
        }
        Op::TenantCreate => {
            let r: TenantCreate = parse(op, payload)?;
            json(&warden.add_tenant(&r.slug, &r.limits).await?)
        }
        Op::TenantEdit => {
            let r: TenantEdit = parse(op, payload)?;
            json(&warden.edit_tenant(&r.slug, &r.limits).await?)
        }
        Op::TenantSuspend => {
            let r: TenantRef = parse(op, payload)?;
            json(&warden.suspend_tenant(&r.slug).await?)
        }
        Op::TenantResume => {
            let r: TenantRef = parse(op, payload)?;
            json(&warden.resume_tenant(&r.slug).await?)
        }
        Op::TenantDelete => {
            let r: TenantRef = parse(op, payload)?;
            json(&warden.delete_tenant(&r.slug).await?)
        }
        Op::TenantUserAdd => {
            let r: TenantUserRef = parse(op, payload)?;
            let (tenant, creds) = warden.add_tenant_user_with_creds(&r.slug, &r.name).await?;
            json(&TenantUserAdded {
                tenant: &tenant,
                user: &r.name,
                creds: &creds,
            })
        }
        Op::TenantCreds => {
            let r: TenantUserRef = parse(op, payload)?;
            let creds = warden.tenant_creds(&r.slug, &r.name).await?;
            json(&Creds { creds: &creds })
        }
        Op::TenantLint => {
            parse::<NoArgs>(op, payload)?;
            json(&warden.lint_tenants().await?)
        }
        _ => {
            if let Some(reply) = account_model::dispatch(warden, op, payload).await {
                return reply;
            }
            match callout::dispatch(warden, op, payload).await {
                Some(reply) => reply,
                None => Err(ServiceError::internal(format!(
                    "no handler for {}",
                    op.subject()
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_never_leave_in_a_message() {
        let seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU";
        let m = clean(&format!("bad key {seed}\nnext line"));
        assert!(!m.contains(seed), "{m}");
        assert!(m.contains("[redacted]") && !m.contains('\n'), "{m}");
        // Public keys and ordinary words stay.
        let pk = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";
        assert_eq!(clean(&format!("user {pk} SHOP")), format!("user {pk} SHOP"));
    }

    #[test]
    fn prefixes_are_literal_subjects() {
        assert!(check_prefix("WARDEN").is_ok());
        assert!(check_prefix("NATS-MANAGER").is_ok());
        assert!(check_prefix("a.b").is_ok());
        for bad in ["", "a..b", "a.>", "*", "a b", "$SRV"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_partial_user_edit_is_accepted() {
        let e =
            user_edit(serde_json::json!({"permissions": {"allow_pub": ["a.>"]}, "expiry": null}))
                .expect("edit");
        assert_eq!(e.permissions.allow_pub.len(), 1);
        assert_eq!(e.expiry, Some(None));
        assert!(user_edit(serde_json::json!({"permissions": {"allow_pub": ["a..b"]}})).is_err());
        assert!(user_edit(serde_json::json!([])).is_err());
    }

    #[test]
    fn bodies_are_strict_objects() {
        let unknown = parse::<UserCreate>(
            Op::UserCreate,
            br#"{"account":"A","name":"b","spec":{"permissions":{"pub":{"allow":[]}},"bogus":1}}"#,
        )
        .err()
        .expect("nested unknown field refused");
        assert_eq!(unknown.code, 400);
        assert!(
            unknown.message.contains("spec.bogus"),
            "{}",
            unknown.message
        );
        let not_object = parse::<NoArgs>(Op::Status, b"[1]")
            .err()
            .expect("array refused");
        assert!(
            not_object.message.contains("JSON object"),
            "{}",
            not_object.message
        );
        assert!(parse::<NoArgs>(Op::Status, b"  ").is_ok());
        let mut e =
            user_edit(serde_json::json!({"add_source_networks": ["10.0.0.1"]})).expect("edit");
        // The operation canonicalises the networks (the same check for every surface).
        e.normalize().expect("a valid network");
        assert_eq!(e.add_source_networks, ["10.0.0.1/32"]);
    }

    #[test]
    fn internal_failures_carry_no_details() {
        let e = ServiceError::from(OpsError::Jwt("key SX… broke".into()));
        assert_eq!((e.code, e.message.as_str()), (500, INTERNAL));
        assert_eq!(e.text(), INTERNAL);
        let e = ServiceError::from(OpsError::NotFound("account X".into()));
        assert_eq!((e.code, e.message.as_str()), (404, "account X not found"));
        assert_eq!(
            (e.error, e.text().as_str()),
            ("not_found", "account X not found")
        );
    }

    #[test]
    fn error_codes_are_the_http_apis() {
        for kind in ErrorKind::ALL {
            assert_eq!(
                status_of(kind),
                crate::http::status_of(kind).as_u16(),
                "{kind:?}"
            );
        }
        let e = ServiceError::from(OpsError::MissingScope {
            scope: Scope::Creds,
            what: "a user's creds".into(),
        });
        assert_eq!((e.code, e.error), (403, "forbidden"));
        assert!(
            e.text()
                .starts_with("forbidden: a user's creds needs the creds scope"),
            "{}",
            e.text()
        );
        let e = ServiceError::from(OpsError::Refused("mallory may not".into()));
        assert_eq!((e.code, e.error), (403, "refused"));
        assert_eq!(e.text(), "refused: mallory may not");
        let e = ServiceError::from(OpsError::Unavailable("nats down".into()));
        assert_eq!(
            (e.code, e.error, e.text().as_str()),
            (503, "unavailable", "nats down")
        );
        let e = ServiceError::from(OpsError::NotInitialised);
        assert_eq!((e.code, e.error), (409, "not_initialised"));
        let e = ServiceError::bad_request("x");
        assert_eq!((e.code, e.error, e.text().as_str()), (400, "invalid", "x"));
    }

    #[test]
    fn endpoint_names() {
        assert_eq!(Op::AccountCreate.endpoint_name(), "account-create");
        assert_eq!(subject("WARDEN", Op::UserCreds), "WARDEN.user.creds");
        assert_eq!(Op::DeviceRestore.endpoint_name(), "device-restore");
        assert_eq!(Op::TenantUserAdd.endpoint_name(), "tenant-user-add");
        assert_eq!(subject("WARDEN", Op::TenantLint), "WARDEN.tenant.lint");
        let subjects: std::collections::BTreeSet<_> = Op::ALL.iter().map(|o| o.subject()).collect();
        assert_eq!(
            subjects.len(),
            Op::ALL.len(),
            "every operation has its own subject"
        );
    }
}
