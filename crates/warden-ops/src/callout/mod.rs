//! Auth callout: Warden deciding, at connect time, who may connect to NATS and with
//! which permissions (nats-server ≥ 2.10, `$SYS.REQ.USER.AUTH`).
//!
//! Set-up ([`Warden::callout_setup`]) makes a callout account whose JWT carries an
//! `authorization` block: Warden's responder user as its only auth user (it bypasses
//! the callout), the accounts users may be placed in, and optionally the curve key
//! requests are sealed to. Clients connect with the account's sentinel user (which may
//! do nothing by itself) plus what they already have: a directory password, an OIDC ID
//! token or a client certificate. Each request is checked by the configured
//! [`authenticators`] in order, mapped to a directory user, and answered with a user
//! JWT for the request's fresh user key, signed by the target account, carrying the
//! union of the user's task grants there (the compiler governance uses) and an expiry
//! no later than the policy TTL, the token's expiry and any grant's expiry.
//!
//! Decisions are counted in memory and summarised in the ledger per window
//! ([`DecisionLog`]), never one row per attempt. Nothing here logs a password or token.

pub mod authenticators;
pub mod responder;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use nats_jwt::{
    ANY_ACCOUNT, AUTH_CALLOUT_SUBJECT, AuthorizationRequest, AuthorizationResponseClaims,
    CurveKeyPair, ExternalAuthorization, KeyKind, KeyPair, Permission, Permissions, Subject,
    UserClaims, UserPublicKey, decode, is_blocking_with_time,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::governance::{self as gov, HeldTask};
use warden_core::{AccountSpec, UserSpec};
use zeroize::Zeroizing;

use self::authenticators::{Authenticated, AuthenticatorSpec, Outcome};
use crate::{OpsError, Record, Result, Scope, Warden, now};

/// Where the callout configuration is kept (table `meta`, JSON).
const META_CALLOUT: &str = "callout";
/// Default name of the callout account.
pub const DEFAULT_ACCOUNT: &str = "AUTH";
/// The responder's user in the callout account (an auth user: bypasses the callout).
pub const RESPONDER_USER: &str = "callout";
/// The sentinel user clients present with their credentials.
pub const SENTINEL_USER: &str = "sentinel";
/// Default lifetime of an issued user JWT.
pub const DEFAULT_TTL_SECS: i64 = 3600;
/// The queue group every responder joins, so that one answers each request.
pub const QUEUE_GROUP: &str = "warden-callout";
/// The oldest nats-server with auth callout (2.10.0; 2.10.4 fixed an advisory).
pub const MIN_SERVER: (u64, u64, u64) = (2, 10, 0);

/// The stored callout configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalloutConfig {
    /// The callout account's name.
    pub account: String,
    /// Accounts users may be placed in, by name; empty = any account (`"*"`).
    #[serde(default)]
    pub allowed_accounts: Vec<String>,
    /// The public curve key requests are sealed to (its seed is stored sealed).
    #[serde(default)]
    pub xkey: Option<String>,
    /// Lifetime of an issued user JWT, seconds.
    pub ttl_secs: i64,
    /// Authenticators, tried in this order.
    #[serde(default)]
    pub authenticators: Vec<AuthenticatorSpec>,
    /// Config mode (servers without operator mode): the public account key user JWTs
    /// are signed with (its seed is stored sealed), once rendered.
    #[serde(default)]
    pub config_mode_issuer: Option<String>,
}

/// What `warden callout setup` changes; `None` keeps what is set.
#[derive(Clone, Debug, Default)]
pub struct CalloutSetup {
    /// The callout account (created when missing); default [`DEFAULT_ACCOUNT`] or the
    /// one set up before.
    pub account: Option<String>,
    /// Seal requests and responses with a curve key (on/off).
    pub xkey: Option<bool>,
    /// Accounts users may be placed in (replaces the list; empty list = any).
    pub allowed_accounts: Option<Vec<String>>,
    /// Lifetime of issued user JWTs, seconds.
    pub ttl_secs: Option<i64>,
    /// The nats-server version it is set up for, when known (refused below 2.10).
    pub server_version: Option<String>,
    /// A nats-server to ask for its version (as the system user) before anything changes.
    pub nats: Option<String>,
}

/// The callout as configured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalloutView {
    /// The callout account's name.
    pub account: String,
    /// Its public key (the `sub` of authorization requests).
    pub account_key: String,
    /// The responder user's public key (the account's auth user).
    pub responder_key: String,
    /// The sentinel user's public key.
    pub sentinel_key: String,
    /// Allowed accounts by name (`["*"]` for any).
    pub allowed_accounts: Vec<String>,
    /// The public curve key, when requests are sealed.
    pub xkey: Option<String>,
    /// Lifetime of issued user JWTs, seconds.
    pub ttl_secs: i64,
    /// Authenticators in order.
    pub authenticators: Vec<AuthenticatorView>,
}

/// An authenticator as listed (no secret).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuthenticatorView {
    /// Position, from 1.
    pub position: usize,
    /// Name.
    pub name: String,
    /// `ldap`, `oidc` or `mtls`.
    pub kind: &'static str,
    /// What it checks against, in a line (URL, issuer, CA subject…).
    pub detail: String,
    /// Whether a secret (LDAP bind password) is stored for it.
    pub has_secret: bool,
}

/// Whether `version` (`2.15.1`, `v2.9.10`, `2.11.0-beta.1`) has auth callout.
pub fn server_has_callout(version: &str) -> Result<bool> {
    let v = version.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| OpsError::Invalid(format!("{version:?} is not a nats-server version")))?;
    let [a, b, c] = parts[..] else {
        return Err(OpsError::Invalid(format!(
            "{version:?} is not a nats-server version (major.minor.patch)"
        )));
    };
    Ok((a, b, c) >= MIN_SERVER)
}

/// The refusal for a server without auth callout.
pub fn no_callout_error(version: &str) -> OpsError {
    OpsError::Invalid(format!(
        "nats-server {version} has no auth callout: it arrived in 2.10.0 (use 2.10.4 or \
         later); upgrade the server, or keep issuing creds in advance (`warden user add`)"
    ))
}

fn secret_key(name: &str) -> String {
    format!("callout-authenticator:{name}")
}

fn check_authenticator_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "authenticator name {name:?} must be 1-64 letters, digits, '-' or '_'"
        )))
    }
}

fn responder_spec() -> Result<UserSpec> {
    let subject = |s: &str| Subject::new(s).map_err(|e| OpsError::Invalid(e.to_string()));
    Ok(UserSpec {
        permissions: Permissions {
            // Replies go to the server's internal inbox in the callout account.
            publish: Permission {
                allow: vec![subject("$SYS._INBOX.>")?],
                deny: Vec::new(),
            },
            subscribe: Permission {
                allow: vec![subject(AUTH_CALLOUT_SUBJECT)?],
                deny: Vec::new(),
            },
            response: None,
        },
        tags: vec!["warden:callout-responder".into()],
        ..UserSpec::default()
    })
}

fn sentinel_spec() -> UserSpec {
    UserSpec {
        permissions: gov::deny_all(),
        tags: vec!["warden:callout-sentinel".into()],
        ..UserSpec::default()
    }
}

impl Warden {
    async fn callout_config(&self) -> Result<Option<CalloutConfig>> {
        match self.store().meta(META_CALLOUT).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                OpsError::Conflict(format!("stored callout configuration is unreadable: {e}"))
            }),
        }
    }

    /// The version of the nats-server at `url`, asked as the system user (bounded wait).
    pub async fn server_version(&self, url: &str) -> Result<String> {
        let creds = self.system_user_creds().await?;
        let opts = async_nats::ConnectOptions::with_credentials(&creds)
            .map_err(|e| OpsError::Jwt(format!("system user creds: {e}")))?
            .name("warden-version-check");
        let client = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            opts.retain_servers_order()
                .connect(warden_nats::servers(url)),
        )
        .await
        .map_err(|_| OpsError::unavailable(format!("{url}: no answer within 5 s")))?
        .map_err(|e| OpsError::unavailable(format!("cannot connect to {url}: {e}")))?;
        let version = client.server_info().version;
        drop(client);
        Ok(version)
    }

    async fn configured(&self) -> Result<CalloutConfig> {
        self.callout_config().await?.ok_or_else(|| {
            OpsError::NotFound(
                "auth callout configuration (run `warden callout setup` first)".into(),
            )
        })
    }

    /// Creates or updates the callout account (its `authorization` block, the responder
    /// and sentinel users, the curve key) and the callout settings, in one transaction;
    /// the account JWT is queued for a push like any other. Running it again with the
    /// same options changes nothing but the JWT's issue time.
    pub async fn callout_setup(&self, opts: CalloutSetup) -> Result<CalloutView> {
        self.need(Scope::Admin, "setting up the auth callout")?;
        if let Some(url) = &opts.nats {
            let version = self.server_version(url).await?;
            if !server_has_callout(&version)? {
                return Err(no_callout_error(&version));
            }
        }
        if let Some(v) = &opts.server_version
            && !server_has_callout(v)?
        {
            return Err(no_callout_error(v));
        }
        if let Some(ttl) = opts.ttl_secs
            && !(60..=30 * 86_400).contains(&ttl)
        {
            return Err(OpsError::Invalid(format!(
                "--ttl must be between 1 minute and 30 days (got {ttl} s)"
            )));
        }
        let before = self.callout_config().await?;
        let account_name = match (&opts.account, &before) {
            (Some(a), _) => self.settings().naming.account(a)?.to_string(),
            (None, Some(b)) => b.account.clone(),
            (None, None) => DEFAULT_ACCOUNT.to_string(),
        };
        if let Some(b) = &before
            && b.account != account_name
        {
            return Err(OpsError::Conflict(format!(
                "the auth callout is set up on account {} already; run `warden callout setup \
                 --account {}` to change it there",
                b.account, b.account
            )));
        }
        let mut config = before.clone().unwrap_or(CalloutConfig {
            account: account_name.clone(),
            allowed_accounts: Vec::new(),
            xkey: None,
            ttl_secs: DEFAULT_TTL_SECS,
            authenticators: Vec::new(),
            config_mode_issuer: None,
        });
        if let Some(ttl) = opts.ttl_secs {
            config.ttl_secs = ttl;
        }

        let mut tx = self.store().begin().await?;
        let op = self.operator_row(&mut tx).await?;
        if account_name == warden_core::names::SYSTEM_ACCOUNT
            || account_name == self.settings().service_account
        {
            return Err(OpsError::Invalid(format!(
                "account {account_name} cannot be the callout account: every user of a \
                 callout account but its auth users goes through the callout"
            )));
        }
        let mut allowed_keys = Vec::new();
        if let Some(list) = &opts.allowed_accounts {
            let mut names = Vec::new();
            for a in list {
                if a == ANY_ACCOUNT {
                    continue;
                }
                let row = self.account_row(&mut tx, &op, a).await?;
                if row.name == account_name {
                    return Err(OpsError::Invalid(format!(
                        "the callout account {account_name} cannot be one of its allowed accounts"
                    )));
                }
                if !names.contains(&row.name) {
                    names.push(row.name.clone());
                }
            }
            config.allowed_accounts = names;
        }
        for a in &config.allowed_accounts {
            allowed_keys.push(self.account_row(&mut tx, &op, a).await?.public_key);
        }

        let mut account = match tx.account_by_name(&op.public_key, &account_name).await? {
            Some(row) => row,
            None => {
                let name = self.settings().naming.account(&account_name)?;
                self.create_account(
                    &mut tx,
                    &op,
                    KeyPair::generate(KeyKind::Account),
                    &name,
                    AccountSpec::default(),
                )
                .await?
            }
        };
        let mut keys = Vec::new();
        for (user, spec) in [
            (RESPONDER_USER, responder_spec()?),
            (SENTINEL_USER, sentinel_spec()),
        ] {
            let name = self.settings().naming.user(user)?;
            let row = match tx.user_by_name(&account.public_key, name.as_str()).await? {
                Some(row) if row.revoked_at.is_none() => row,
                Some(_) => {
                    return Err(OpsError::Conflict(format!(
                        "user {user} of account {account_name} is revoked; delete it \
                         (`warden user delete {account_name} {user}`) and run setup again"
                    )));
                }
                None => self.create_user(&mut tx, &account, &name, spec).await?,
            };
            keys.push(row.public_key);
        }

        match opts.xkey {
            Some(true) if config.xkey.is_none() => {
                let kp = CurveKeyPair::generate();
                let seed = kp.seed()?;
                tx.put_seed(&kp.public_key(), "curve", &seed).await?;
                config.xkey = Some(kp.public_key());
            }
            Some(false) => {
                if let Some(old) = config.xkey.take() {
                    tx.delete_seed(&old).await?;
                }
            }
            _ => {}
        }

        let mut spec: AccountSpec = crate::from_json(&account.spec)?;
        spec.authorization = ExternalAuthorization {
            auth_users: vec![keys[0].clone()],
            allowed_accounts: if allowed_keys.is_empty() {
                vec![ANY_ACCOUNT.to_string()]
            } else {
                allowed_keys
            },
            xkey: config.xkey.clone(),
        };
        self.resign_account(&mut tx, &op, &mut account, spec)
            .await?;
        tx.set_meta(META_CALLOUT, &config_json(&config)?).await?;
        tx.record(self.event(
            "callout.setup",
            "account",
            &account.public_key,
            json!({
                "account": account_name,
                "allowed_accounts": config.allowed_accounts,
                "xkey": config.xkey,
                "ttl_secs": config.ttl_secs,
                "created": before.is_none(),
            }),
        ))
        .await?;
        tx.commit().await?;
        self.callout_view(config).await
    }

    /// The operator and the callout account's row.
    async fn callout_account(
        &self,
        config: &CalloutConfig,
    ) -> Result<(warden_store::OperatorRow, warden_store::AccountRow)> {
        let op = self
            .store()
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        let account = self
            .store()
            .account_by_name(&op.public_key, &config.account)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("callout account {}", config.account)))?;
        Ok((op, account))
    }

    async fn callout_view(&self, config: CalloutConfig) -> Result<CalloutView> {
        let (_, account) = self.callout_account(&config).await?;
        let user_key = |name: &'static str| {
            let account = account.public_key.clone();
            async move {
                self.store()
                    .user_by_name(&account, name)
                    .await?
                    .map(|u| u.public_key)
                    .ok_or_else(|| {
                        OpsError::NotFound(format!("user {name} of the callout account"))
                    })
            }
        };
        let responder_key = user_key(RESPONDER_USER).await?;
        let sentinel_key = user_key(SENTINEL_USER).await?;
        let mut authenticators = Vec::new();
        for (i, a) in config.authenticators.iter().enumerate() {
            authenticators.push(AuthenticatorView {
                position: i + 1,
                name: a.name().to_string(),
                kind: a.kind(),
                detail: describe(a),
                has_secret: self.store().has_seed(&secret_key(a.name())).await?,
            });
        }
        Ok(CalloutView {
            account: config.account,
            account_key: account.public_key,
            responder_key,
            sentinel_key,
            allowed_accounts: if config.allowed_accounts.is_empty() {
                vec![ANY_ACCOUNT.to_string()]
            } else {
                config.allowed_accounts
            },
            xkey: config.xkey,
            ttl_secs: config.ttl_secs,
            authenticators,
        })
    }

    /// The callout as configured.
    pub async fn callout_status(&self) -> Result<CalloutView> {
        self.need(Scope::Read, "reading the auth callout configuration")?;
        let config = self.configured().await?;
        self.callout_view(config).await
    }

    /// The creds of the callout account's sentinel user, which clients present together
    /// with their own credentials.
    pub async fn callout_sentinel_creds(&self) -> Result<Zeroizing<String>> {
        self.need(Scope::Creds, "reading the callout sentinel's creds")?;
        let config = self.configured().await?;
        self.creds(&config.account, SENTINEL_USER).await
    }

    /// The creds of Warden's responder user (an auth user of the callout account).
    pub async fn callout_responder_creds(&self) -> Result<Zeroizing<String>> {
        self.need(Scope::Creds, "reading the callout responder's creds")?;
        let config = self.configured().await?;
        self.creds(&config.account, RESPONDER_USER).await
    }

    /// Adds an authenticator at the end of the list (or at `position`, from 1), with its
    /// secret (an LDAP bind password) sealed at rest.
    pub async fn callout_auth_add(
        &self,
        spec: AuthenticatorSpec,
        secret: Option<Zeroizing<String>>,
        position: Option<usize>,
    ) -> Result<AuthenticatorView> {
        self.need(Scope::Admin, "adding an auth callout authenticator")?;
        check_authenticator_name(spec.name())?;
        authenticators::check(&spec)?;
        // A secret is the bind password of an LDAP bind DN: one goes with the other.
        match (&spec, secret.as_deref()) {
            (AuthenticatorSpec::Ldap(l), Some(pw)) if l.bind_dn.is_some() && pw.is_empty() => {
                return Err(OpsError::Invalid("the bind password is empty".into()));
            }
            (AuthenticatorSpec::Ldap(l), None) if l.bind_dn.is_some() => {
                return Err(OpsError::Invalid(format!(
                    "bind DN {} needs its password (--password-file, or `password` in the body)",
                    l.bind_dn.as_deref().unwrap_or_default()
                )));
            }
            (AuthenticatorSpec::Ldap(l), Some(_)) if l.bind_dn.is_none() => {
                return Err(OpsError::Invalid(
                    "a bind password needs a bind DN (--bind-dn, or `bind_dn` in the body)".into(),
                ));
            }
            (AuthenticatorSpec::Oidc(_) | AuthenticatorSpec::Mtls(_), Some(_)) => {
                return Err(OpsError::Invalid(format!(
                    "a {} authenticator takes no secret",
                    spec.kind()
                )));
            }
            _ => {}
        }
        let mut config = self.configured().await?;
        if config
            .authenticators
            .iter()
            .any(|a| a.name() == spec.name())
        {
            return Err(OpsError::Conflict(format!(
                "authenticator {} exists already (remove it first with `warden callout auth rm {}`)",
                spec.name(),
                spec.name()
            )));
        }
        let at = match position {
            None => config.authenticators.len(),
            Some(p) if (1..=config.authenticators.len() + 1).contains(&p) => p - 1,
            Some(p) => {
                return Err(OpsError::Invalid(format!(
                    "--position {p} is out of range 1..={}",
                    config.authenticators.len() + 1
                )));
            }
        };
        let name = spec.name().to_string();
        let kind = spec.kind();
        config.authenticators.insert(at, spec);
        let mut tx = self.store().begin().await?;
        if let Some(secret) = &secret {
            if tx.has_seed(&secret_key(&name)).await? {
                tx.delete_seed(&secret_key(&name)).await?;
            }
            tx.put_seed(&secret_key(&name), "secret", secret).await?;
        }
        tx.set_meta(META_CALLOUT, &config_json(&config)?).await?;
        tx.record(self.event(
            "callout.auth.add",
            "callout",
            &name,
            json!({"name": name, "kind": kind, "position": at + 1, "secret": secret.is_some()}),
        ))
        .await?;
        tx.commit().await?;
        let view = self.callout_view(config).await?;
        view.authenticators
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| OpsError::Conflict("authenticator vanished".into()))
    }

    /// The authenticators in the order they are tried.
    pub async fn callout_auth_list(&self) -> Result<Vec<AuthenticatorView>> {
        Ok(self.callout_status().await?.authenticators)
    }

    /// Removes an authenticator and its secret.
    pub async fn callout_auth_remove(&self, name: &str) -> Result<AuthenticatorView> {
        self.need(Scope::Admin, "removing an auth callout authenticator")?;
        let mut config = self.configured().await?;
        let view = self
            .callout_view(config.clone())
            .await?
            .authenticators
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| OpsError::NotFound(format!("authenticator {name}")))?;
        config.authenticators.retain(|a| a.name() != name);
        let mut tx = self.store().begin().await?;
        if tx.has_seed(&secret_key(name)).await? {
            tx.delete_seed(&secret_key(name)).await?;
        }
        tx.set_meta(META_CALLOUT, &config_json(&config)?).await?;
        tx.record(self.event(
            "callout.auth.remove",
            "callout",
            name,
            json!({"name": name, "kind": view.kind}),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Loads what the responder needs to answer requests: the configuration, the
    /// callout account's key, the curve key and the authenticators' secrets. The
    /// responder reloads it periodically, so changes apply without a restart.
    pub async fn callout_context(&self) -> Result<CalloutContext> {
        self.callout_context_for(false).await
    }

    /// [`Warden::callout_context`] for operator mode (`false`) or config mode (`true`:
    /// requests name the config-mode issuer, which signs users and responses).
    pub async fn callout_context_for(&self, config_mode: bool) -> Result<CalloutContext> {
        self.need(Scope::Admin, "running the auth callout responder")?;
        let config = self.configured().await?;
        let (op, account) = self.callout_account(&config).await?;
        let (account_key, signer) = if config_mode {
            let issuer = config.config_mode_issuer.clone().ok_or_else(|| {
                OpsError::NotFound(
                    "the auth callout's config-mode issuer (render the server configuration \
                     first: `warden nats-config --auth-callout`)"
                        .into(),
                )
            })?;
            let kp = KeyPair::from_seed(&self.store().seed(&issuer).await?)?;
            (issuer, kp)
        } else {
            let kp = KeyPair::from_seed(&self.store().seed(&account.public_key).await?)?;
            (account.public_key.clone(), kp)
        };
        let xkey = match &config.xkey {
            Some(x) => Some(CurveKeyPair::from_seed(&self.store().seed(x).await?)?),
            None => None,
        };
        let mut secrets = HashMap::new();
        for a in &config.authenticators {
            let key = secret_key(a.name());
            if self.store().has_seed(&key).await? {
                secrets.insert(a.name().to_string(), self.store().seed(&key).await?);
            }
        }
        Ok(CalloutContext {
            operator: op.public_key,
            account_key,
            config_mode,
            signer,
            xkey,
            secrets,
            signers: Mutex::new(HashMap::new()),
            config,
        })
    }

    /// Answers one authorization request (the message payload and its
    /// `Nats-Server-Xkey` header): the reply to send, and what was decided. An `Err` is
    /// a request that cannot be answered at all (not sealed to our key, not signed by a
    /// server, expired): nothing is sent and the server times the client out.
    pub async fn callout_authorize(
        &self,
        ctx: &CalloutContext,
        payload: &[u8],
        server_xkey: Option<&str>,
    ) -> Result<Decision> {
        let t = now();
        let token = match (server_xkey.filter(|x| !x.is_empty()), &ctx.xkey) {
            (Some(server), Some(ours)) => ours.open(payload, server).map_err(|e| {
                OpsError::Invalid(format!("sealed authorization request does not open: {e}"))
            })?,
            (Some(_), None) => {
                return Err(OpsError::Invalid(
                    "authorization request is sealed but no curve key is set up (`warden \
                     callout setup --xkey`)"
                        .into(),
                ));
            }
            (None, _) => payload.to_vec(),
        };
        let token = std::str::from_utf8(&token)
            .map_err(|_| OpsError::Invalid("authorization request is not text".into()))?;
        let request = decode::<AuthorizationRequest>(token)
            .map_err(|e| OpsError::Invalid(format!("authorization request: {e}")))?;
        let issues = request.validate(t);
        if is_blocking_with_time(&issues) {
            let list: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
            return Err(OpsError::Invalid(format!(
                "authorization request refused: {}",
                list.join("; ")
            )));
        }
        let user_nkey = request.nats.user_nkey.clone();
        let server_id = request.nats.server_id.id.clone();
        let decided = if request.sub != ctx.account_key {
            Err(Refusal::new(
                "wrong_account",
                format!(
                    "request is for {}, not this callout ({})",
                    request.sub, ctx.account_key
                ),
            ))
        } else {
            self.decide(ctx, &request.nats, t).await
        };
        let (outcome, decision) = match decided {
            Ok(issued) => (
                Ok(issued.jwt),
                Decision {
                    allowed: true,
                    code: "allowed",
                    reason: None,
                    user: Some(issued.user),
                    account: Some(issued.account),
                    expires_at: Some(issued.expires_at),
                    reply: Vec::new(),
                },
            ),
            Err(r) => (
                Err(r.reason.clone()),
                Decision {
                    allowed: false,
                    code: r.code,
                    reason: Some(r.reason),
                    user: r.login,
                    account: None,
                    expires_at: None,
                    reply: Vec::new(),
                },
            ),
        };
        let mut response = AuthorizationResponseClaims::new(&user_nkey, &server_id, outcome);
        let signed = response.encode(&ctx.signer)?;
        let reply = match (server_xkey.filter(|x| !x.is_empty()), &ctx.xkey) {
            (Some(server), Some(ours)) => ours.seal(signed.as_bytes(), server)?,
            _ => signed.into_bytes(),
        };
        Ok(Decision { reply, ..decision })
    }

    async fn decide(
        &self,
        ctx: &CalloutContext,
        request: &AuthorizationRequest,
        t: i64,
    ) -> std::result::Result<Issued, Refusal> {
        // `user@ACCOUNT` names the target account when the suffix is one of Warden's
        // accounts; otherwise the whole name is the login (it may be an email).
        let mut request = request.clone();
        let (login, named_account) = self
            .split_account(&ctx.operator, &request.connect_opts.username)
            .await
            .map_err(Refusal::internal)?;
        request.connect_opts.username = login;

        let mut refusals = Vec::new();
        let mut accepted: Option<Authenticated> = None;
        for a in &ctx.config.authenticators {
            let secret = ctx.secrets.get(a.name()).map(|s| s.as_str());
            match authenticators::authenticate(a, secret, &request, t).await {
                Outcome::NotApplicable => {}
                Outcome::Accepted(who) => {
                    accepted = Some(who);
                    break;
                }
                Outcome::Refused(why) => refusals.push(format!("{}: {why}", a.name())),
            }
        }
        let Some(who) = accepted else {
            return Err(if refusals.is_empty() {
                Refusal::new(
                    "no_credentials",
                    "no authenticator accepts what the client presented (a password, an ID \
                     token or a client certificate)"
                        .into(),
                )
            } else {
                Refusal::new("bad_credentials", refusals.join("; "))
            }
            .login(login_hint(&request)));
        };

        let Placement {
            user: id,
            account,
            permissions,
            expires_at,
            ..
        } = self.place(&ctx.config, &who, named_account, t).await?;
        // Operator mode: the target account signs. Config mode: the issuer signs and
        // `aud` names the account.
        let signer = if ctx.config_mode {
            None
        } else {
            Some(
                self.account_signer(ctx, &account)
                    .await
                    .map_err(Refusal::internal)?
                    .1,
            )
        };
        let user_key = UserPublicKey::new(&request.user_nkey)
            .map_err(|e| Refusal::new("invalid_request", e.to_string()))?;
        let mut claims = UserClaims::new(&user_key, &id);
        claims.nats.limits.permissions = permissions;
        claims.nats.tags = vec![
            "warden:callout".into(),
            format!("via:{}", who.authenticator),
        ];
        claims.exp = Some(expires_at);
        if ctx.config_mode {
            claims.aud = Some(account.clone());
        }
        let jwt = claims
            .encode(signer.as_ref().unwrap_or(&ctx.signer))
            .map_err(|e| Refusal::internal(OpsError::Jwt(e.to_string())))?;
        Ok(Issued {
            jwt,
            user: id,
            account,
            expires_at,
        })
    }

    /// Who an accepted login is and where the callout places them: the directory user,
    /// the target account (`named_account`, or the only one they hold tasks in), the
    /// union of their grants there and when it ends.
    async fn place(
        &self,
        config: &CalloutConfig,
        who: &Authenticated,
        named_account: Option<String>,
        t: i64,
    ) -> std::result::Result<Placement, Refusal> {
        let user = self
            .directory_user_for(&who.login)
            .await
            .map_err(Refusal::internal)?
            .ok_or_else(|| {
                Refusal::new(
                    "unknown_user",
                    format!(
                        "{} (via {}) is not a directory user",
                        who.login, who.authenticator
                    ),
                )
                .login(Some(who.login.clone()))
            })?;
        if user.user.account_enabled == Some(false) || user.user.deleted_date.is_some() {
            return Err(Refusal::new(
                "disabled_user",
                format!("directory user {} is disabled", user.user.id),
            )
            .login(Some(user.user.id.clone())));
        }
        let id = user.user.id.clone();
        let held = self
            .store()
            .held_tasks(&id)
            .await
            .map_err(Refusal::internal)?;
        let mut by_account: BTreeMap<String, Vec<HeldTask>> = BTreeMap::new();
        for h in held {
            by_account.entry(h.account.clone()).or_default().push(h);
        }
        let account = match named_account {
            Some(a) => {
                if !by_account.contains_key(&a) {
                    return Err(Refusal::new(
                        "no_grants",
                        format!("directory user {id} holds no task in account {a}"),
                    )
                    .login(Some(id)));
                }
                a
            }
            None => match by_account.len() {
                0 => {
                    return Err(Refusal::new(
                        "no_grants",
                        format!("directory user {id} holds no task in any account"),
                    )
                    .login(Some(id)));
                }
                1 => by_account.keys().next().cloned().unwrap_or_default(),
                _ => {
                    let names: Vec<&str> = by_account.keys().map(String::as_str).collect();
                    return Err(Refusal::new(
                        "ambiguous_account",
                        format!(
                            "directory user {id} holds tasks in several accounts ({}): connect \
                             as {id}@ACCOUNT",
                            names.join(", ")
                        ),
                    )
                    .login(Some(id)));
                }
            },
        };
        if !config.allowed_accounts.is_empty() && !config.allowed_accounts.contains(&account) {
            return Err(Refusal::new(
                "account_not_allowed",
                format!(
                    "account {account} is not one the callout may place users in (allowed: {})",
                    config.allowed_accounts.join(", ")
                ),
            )
            .login(Some(id)));
        }
        if account == config.account {
            return Err(Refusal::new(
                "account_not_allowed",
                format!("users cannot be placed in the callout account {account} itself"),
            )
            .login(Some(id)));
        }
        let tasks = by_account.remove(&account).unwrap_or_default();
        let permissions = gov::compile(&tasks)
            .remove(&account)
            .unwrap_or_else(gov::deny_all);
        let expires_at = earliest_expiry(t, config.ttl_secs, who.expires_at, &tasks);
        Ok(Placement {
            user: id,
            account,
            permissions,
            expires_at,
            tasks: tasks
                .into_iter()
                .map(|h| format!("{}/{}", h.role, h.task))
                .collect(),
        })
    }

    /// `user@ACCOUNT` names the target account when the suffix is one of Warden's
    /// accounts; otherwise the whole name is the login (it may be an email address).
    async fn split_account(&self, operator: &str, name: &str) -> Result<(String, Option<String>)> {
        if let Some((login, suffix)) = name.rsplit_once('@')
            && let Ok(account) = self.settings().naming.account(suffix)
            && self
                .store()
                .account_by_name(operator, account.as_str())
                .await?
                .is_some()
        {
            return Ok((login.to_string(), Some(account.to_string())));
        }
        Ok((name.to_string(), None))
    }

    /// What the callout would decide for `login` (as an authenticator would name it,
    /// or `login@ACCOUNT` as a client would send it) connecting now: the user JWT's
    /// permissions and expiry, or the refusal with its code. The credential is not
    /// checked: this explains the directory and policy side of a decision.
    pub async fn callout_explain(&self, login: &str) -> Result<Explained> {
        self.need(Scope::Read, "explaining an auth callout decision")?;
        let config = self.configured().await?;
        let op = self
            .store()
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        let (login, named) = self.split_account(&op.public_key, login).await?;
        let who = Authenticated {
            authenticator: "explain".into(),
            login,
            expires_at: None,
        };
        Ok(match self.place(&config, &who, named, now()).await {
            Ok(p) => Explained {
                allowed: true,
                code: "allowed",
                reason: None,
                user: Some(p.user),
                account: Some(p.account),
                permissions: Some(p.permissions),
                expires_at: Some(p.expires_at),
                tasks: p.tasks,
            },
            Err(r) => Explained {
                allowed: false,
                code: r.code,
                reason: Some(r.reason),
                user: r.login,
                account: None,
                permissions: None,
                expires_at: None,
                tasks: Vec::new(),
            },
        })
    }

    /// The account's identity key pair, cached in the context.
    async fn account_signer(
        &self,
        ctx: &CalloutContext,
        account: &str,
    ) -> Result<(String, KeyPair)> {
        if let Some(hit) = ctx
            .signers
            .lock()
            .map_err(|_| OpsError::Conflict("callout signer cache poisoned".into()))?
            .get(account)
        {
            return Ok(hit.clone());
        }
        let row = self
            .store()
            .account_by_name(&ctx.operator, account)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("account {account}")))?;
        let kp = KeyPair::from_seed(&self.store().seed(&row.public_key).await?)?;
        let entry = (row.public_key, kp);
        ctx.signers
            .lock()
            .map_err(|_| OpsError::Conflict("callout signer cache poisoned".into()))?
            .insert(account.to_string(), entry.clone());
        Ok(entry)
    }

    /// The directory user a login names: by id, then by user id, user principal name
    /// or email (case-insensitive).
    async fn directory_user_for(
        &self,
        login: &str,
    ) -> Result<Option<warden_store::governance::DirUserRow>> {
        if let Some(u) = self.store().dir_user(login).await? {
            return Ok(Some(u));
        }
        let wanted = login.to_lowercase();
        let matches = |v: &Option<String>| v.as_deref().is_some_and(|s| s.to_lowercase() == wanted);
        Ok(self.store().dir_users().await?.into_iter().find(|u| {
            matches(&u.user.user_id)
                || matches(&u.user.user_principal_name)
                || matches(&u.user.email)
        }))
    }
}

fn config_json(config: &CalloutConfig) -> Result<String> {
    serde_json::to_string(config)
        .map_err(|e| OpsError::Jwt(format!("cannot serialise the callout configuration: {e}")))
}

/// One line saying what an authenticator checks against.
fn describe(a: &AuthenticatorSpec) -> String {
    match a {
        AuthenticatorSpec::Ldap(l) => format!("{} base {} filter {}", l.url, l.base, l.user_filter),
        AuthenticatorSpec::Oidc(o) => format!(
            "issuer {} audience {} user claim {}",
            o.issuer, o.audience, o.user_claim
        ),
        AuthenticatorSpec::Mtls(m) => format!(
            "client certificate, user from {}",
            match m.map {
                authenticators::MtlsMap::Subject => "subject CN",
                authenticators::MtlsMap::San => "subject alternative name",
            }
        ),
    }
}

/// When an issued user JWT expires: the earliest of the policy TTL from `now`, the
/// credential's own expiry (an ID token's `exp`) and the expiry of any grant it carries.
fn earliest_expiry(now: i64, ttl: i64, credential: Option<i64>, tasks: &[HeldTask]) -> i64 {
    [Some(now + ttl), credential]
        .into_iter()
        .chain(tasks.iter().map(|h| h.expires_at))
        .flatten()
        .min()
        .unwrap_or(now + ttl)
}

fn login_hint(request: &AuthorizationRequest) -> Option<String> {
    Some(request.connect_opts.username.clone()).filter(|u| !u.is_empty())
}

/// What the responder holds while it answers: configuration, keys and secrets.
pub struct CalloutContext {
    operator: String,
    account_key: String,
    config_mode: bool,
    signer: KeyPair,
    xkey: Option<CurveKeyPair>,
    secrets: HashMap<String, Zeroizing<String>>,
    signers: Mutex<HashMap<String, (String, KeyPair)>>,
    /// The configuration it was loaded from.
    pub config: CalloutConfig,
}

impl std::fmt::Debug for CalloutContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalloutContext")
            .field("account", &self.config.account)
            .field("account_key", &self.account_key)
            .finish_non_exhaustive()
    }
}

/// One decision, and the reply that carries it.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Whether the client was let in.
    pub allowed: bool,
    /// A short stable code (`allowed`, `bad_credentials`, `unknown_user`, `no_grants`…).
    pub code: &'static str,
    /// Why it was refused (no secret in it).
    pub reason: Option<String>,
    /// The directory user (or, refused before mapping, the login given).
    pub user: Option<String>,
    /// The account the user was placed in.
    pub account: Option<String>,
    /// When the issued user JWT expires.
    pub expires_at: Option<i64>,
    /// The reply payload (the response JWT, sealed when the request was).
    pub reply: Vec<u8>,
}

/// Where the callout places an accepted login.
struct Placement {
    user: String,
    account: String,
    permissions: Permissions,
    expires_at: i64,
    tasks: Vec<String>,
}

/// What the callout would decide for a login ([`Warden::callout_explain`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explained {
    /// Whether it would be let in.
    pub allowed: bool,
    /// The decision's code (`allowed`, `unknown_user`, `no_grants`…).
    pub code: &'static str,
    /// Why not, when refused.
    pub reason: Option<String>,
    /// The directory user.
    pub user: Option<String>,
    /// The account it would be placed in.
    pub account: Option<String>,
    /// The user JWT's permissions.
    pub permissions: Option<Permissions>,
    /// When the user JWT would expire (before any token's own expiry), unix seconds.
    pub expires_at: Option<i64>,
    /// The role/task pairs the permissions come from.
    pub tasks: Vec<String>,
}

struct Issued {
    jwt: String,
    user: String,
    account: String,
    expires_at: i64,
}

struct Refusal {
    code: &'static str,
    reason: String,
    login: Option<String>,
}

impl Refusal {
    fn new(code: &'static str, reason: String) -> Refusal {
        Refusal {
            code,
            reason,
            login: None,
        }
    }

    fn login(mut self, login: Option<String>) -> Refusal {
        self.login = login;
        self
    }

    fn internal(e: impl std::fmt::Display) -> Refusal {
        Refusal::new("internal", format!("Warden could not decide: {e}"))
    }
}

/// Decisions counted in memory and summarised in the ledger once per window: one
/// `callout.decisions` event with the number allowed and the refusals by code (with a
/// few example logins and reasons), never a row per attempt.
#[derive(Debug, Default)]
pub struct DecisionLog {
    inner: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    opened_at: Option<i64>,
    allowed: u64,
    refused: BTreeMap<&'static str, RefusedBucket>,
}

#[derive(Debug, Default, Serialize)]
struct RefusedBucket {
    count: u64,
    examples: Vec<serde_json::Value>,
}

/// Examples kept per refusal code and window.
const EXAMPLES: usize = 5;

impl DecisionLog {
    /// Counts one decision.
    pub fn count(&self, d: &Decision) {
        let Ok(mut w) = self.inner.lock() else { return };
        w.opened_at.get_or_insert_with(now);
        if d.allowed {
            w.allowed += 1;
            return;
        }
        let b = w.refused.entry(d.code).or_default();
        b.count += 1;
        if b.examples.len() < EXAMPLES {
            b.examples.push(json!({"user": d.user, "reason": d.reason}));
        }
    }

    /// Writes the window's summary to the ledger (if anything was decided) and starts a
    /// new window: the number of decisions summarised.
    pub async fn flush(&self, warden: &Warden) -> Result<u64> {
        let w = match self.inner.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return Err(OpsError::Conflict("callout decision log poisoned".into())),
        };
        let refused: u64 = w.refused.values().map(|b| b.count).sum();
        if w.allowed + refused == 0 {
            return Ok(0);
        }
        warden
            .record_callout_decisions(w.opened_at.unwrap_or_else(now), w.allowed, &w.refused)
            .await?;
        Ok(w.allowed + refused)
    }
}

impl Warden {
    async fn record_callout_decisions(
        &self,
        from: i64,
        allowed: u64,
        refused: &BTreeMap<&'static str, RefusedBucket>,
    ) -> Result<()> {
        let mut tx = self.store().begin().await?;
        tx.record(self.event(
            "callout.decisions",
            "callout",
            "callout",
            json!({"from": from, "to": now(), "allowed": allowed, "refused": refused}),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A new authenticator as the surfaces give it: files by path, read here (each at most
/// [`MAX_INPUT_FILE`] bytes).
#[derive(Clone, Debug)]
pub enum AuthenticatorInput {
    /// `ldap`.
    Ldap {
        /// Name.
        name: String,
        /// `ldap://` or `ldaps://` URL.
        url: String,
        /// Base DN of the search.
        base: String,
        /// DN to bind as for the search.
        bind_dn: Option<String>,
        /// File whose first line is that DN's password (sealed at rest).
        password_file: Option<std::path::PathBuf>,
        /// Search filter with `{user}` (default `(uid={user})`).
        user_filter: Option<String>,
        /// CA (PEM) for `ldaps://`.
        ca_file: Option<std::path::PathBuf>,
    },
    /// `oidc`.
    Oidc {
        /// Name.
        name: String,
        /// JWKS file (JSON).
        jwks_file: std::path::PathBuf,
        /// Required issuer.
        issuer: String,
        /// Required audience.
        audience: String,
        /// The claim naming the user (default `sub`).
        user_claim: Option<String>,
    },
    /// `mtls`.
    Mtls {
        /// Name.
        name: String,
        /// CA (PEM) client certificates must chain to.
        ca_file: std::path::PathBuf,
        /// What names the user.
        map: authenticators::MtlsMap,
    },
}

/// The largest file an authenticator is read from.
pub const MAX_INPUT_FILE: u64 = 1024 * 1024;

fn read_input(path: &std::path::Path, what: &str) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| OpsError::Invalid(format!("cannot read {what} {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_INPUT_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| OpsError::Invalid(format!("cannot read {what} {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_INPUT_FILE {
        return Err(OpsError::Invalid(format!(
            "{what} {} is over {MAX_INPUT_FILE} bytes",
            path.display()
        )));
    }
    Ok(text)
}

impl AuthenticatorInput {
    /// The spec and secret it describes, files read and checked.
    pub fn load(self) -> Result<(AuthenticatorSpec, Option<Zeroizing<String>>)> {
        match self {
            AuthenticatorInput::Ldap {
                name,
                url,
                base,
                bind_dn,
                password_file,
                user_filter,
                ca_file,
            } => {
                // Whether it goes with a bind DN is checked by `callout_auth_add`.
                let secret = match password_file {
                    Some(f) => {
                        let text = Zeroizing::new(read_input(&f, "password file")?);
                        let first = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
                        if first.is_empty() {
                            return Err(OpsError::Invalid(format!(
                                "{} holds no password",
                                f.display()
                            )));
                        }
                        Some(first)
                    }
                    None => None,
                };
                let ca_pem = match ca_file {
                    Some(f) => Some(read_input(&f, "CA file")?),
                    None => None,
                };
                let spec = authenticators::LdapAuth::new(
                    &name,
                    &url,
                    &base,
                    bind_dn.as_deref(),
                    user_filter.as_deref(),
                    ca_pem.as_deref(),
                )?;
                Ok((AuthenticatorSpec::Ldap(spec), secret))
            }
            AuthenticatorInput::Oidc {
                name,
                jwks_file,
                issuer,
                audience,
                user_claim,
            } => {
                let text = read_input(&jwks_file, "JWKS file")?;
                let spec = authenticators::OidcAuth::from_jwks_text(
                    &name,
                    &text,
                    &issuer,
                    &audience,
                    user_claim.as_deref(),
                )
                .map_err(|e| OpsError::Invalid(format!("{}: {e}", jwks_file.display())))?;
                Ok((AuthenticatorSpec::Oidc(spec), None))
            }
            AuthenticatorInput::Mtls { name, ca_file, map } => Ok((
                AuthenticatorSpec::Mtls(authenticators::MtlsAuth::new(
                    &name,
                    &read_input(&ca_file, "CA file")?,
                    map,
                )?),
                None,
            )),
        }
    }
}

/// Where the config-mode responder's password is stored (sealed).
const RESPONDER_PASSWORD: &str = "callout-responder-password";

/// What a config-mode server configuration needs (`warden nats-config --auth-callout`).
#[derive(Clone, Debug)]
pub struct ConfigModeSetup {
    /// The public account key user JWTs and responses are signed with.
    pub issuer: String,
    /// The callout account (the responder's, on the server).
    pub account: String,
    /// Accounts users may be placed in, by name.
    pub accounts: Vec<String>,
    /// The responder's user name.
    pub responder_user: String,
    /// The responder's password.
    pub responder_password: Zeroizing<String>,
    /// The public curve key requests are sealed to, when set.
    pub xkey: Option<String>,
}

impl Warden {
    /// The auth callout in config mode (a nats-server without operator mode): the
    /// issuer key and the responder's password are made on first use (sealed at rest,
    /// one transaction with a `callout.config_mode` event) and returned with the
    /// accounts to render. Needs the callout set up first (`warden callout setup`).
    pub async fn callout_config_mode(&self) -> Result<ConfigModeSetup> {
        self.need(Scope::Admin, "setting up the auth callout in config mode")?;
        self.need(
            Scope::Creds,
            "reading the auth callout responder's password",
        )?;
        let mut config = self.configured().await?;
        if config.config_mode_issuer.is_none() {
            let issuer = KeyPair::generate(KeyKind::Account);
            let password = {
                use rand::RngCore;
                let mut raw = Zeroizing::new([0u8; 24]);
                rand::rngs::OsRng.fill_bytes(raw.as_mut());
                Zeroizing::new(data_encoding::BASE32_NOPAD.encode(raw.as_ref()))
            };
            let mut tx = self.store().begin().await?;
            crate::warden::put_seed(&mut tx, &issuer, "callout-issuer").await?;
            if tx.has_seed(RESPONDER_PASSWORD).await? {
                tx.delete_seed(RESPONDER_PASSWORD).await?;
            }
            tx.put_seed(RESPONDER_PASSWORD, "secret", &password).await?;
            config.config_mode_issuer = Some(issuer.public_key().to_string());
            tx.set_meta(META_CALLOUT, &config_json(&config)?).await?;
            tx.record(self.event(
                "callout.config_mode",
                "callout",
                issuer.public_key().as_str(),
                json!({"issuer": issuer.public_key().as_str(), "account": config.account}),
            ))
            .await?;
            tx.commit().await?;
        }
        let issuer = config
            .config_mode_issuer
            .clone()
            .ok_or_else(|| OpsError::Conflict("config-mode issuer missing".into()))?;
        let accounts = if config.allowed_accounts.is_empty() {
            let system = self
                .store()
                .operator()
                .await?
                .ok_or(OpsError::NotInitialised)?
                .system_account;
            self.list_accounts()
                .await?
                .into_iter()
                .filter(|a| a.public_key != system && a.name != config.account)
                .map(|a| a.name)
                .collect()
        } else {
            config.allowed_accounts.clone()
        };
        Ok(ConfigModeSetup {
            issuer,
            account: config.account.clone(),
            accounts,
            responder_user: RESPONDER_USER.to_string(),
            responder_password: self.store().seed(RESPONDER_PASSWORD).await?,
            xkey: config.xkey.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_servers_from_2_10_have_auth_callout() {
        for (v, has) in [
            ("2.9.10", false),
            ("v2.9.25", false),
            ("2.10.0", true),
            ("2.10.0-beta.3", true),
            ("2.11.4+build", true),
            ("2.15.1", true),
            ("3.0.0", true),
            ("1.4.1", false),
        ] {
            assert_eq!(server_has_callout(v).unwrap(), has, "{v}");
        }
        for bad in ["", "2.10", "banana", "2.x.1", "2.10.0.1"] {
            assert!(server_has_callout(bad).is_err(), "{bad:?}");
        }
        let e = no_callout_error("2.9.10").to_string();
        assert!(e.contains("2.9.10") && e.contains("2.10"), "{e}");
    }

    fn held(expires_at: Option<i64>) -> HeldTask {
        HeldTask {
            role: "r".into(),
            task: "t".into(),
            account: "APP".into(),
            grants: Default::default(),
            expires_at,
        }
    }

    #[test]
    fn expiry_is_the_earliest_of_ttl_token_and_grants() {
        let now = 1_000;
        assert_eq!(earliest_expiry(now, 3600, None, &[]), 4600);
        assert_eq!(earliest_expiry(now, 3600, Some(2000), &[]), 2000);
        assert_eq!(earliest_expiry(now, 3600, Some(9000), &[]), 4600);
        assert_eq!(
            earliest_expiry(now, 3600, Some(3000), &[held(None), held(Some(1500))]),
            1500
        );
        assert_eq!(earliest_expiry(now, 60, None, &[held(Some(9999))]), 1060);
    }

    fn decision(allowed: bool, code: &'static str, user: &str) -> Decision {
        Decision {
            allowed,
            code,
            reason: (!allowed).then(|| format!("because {user}")),
            user: Some(user.into()),
            account: None,
            expires_at: None,
            reply: Vec::new(),
        }
    }

    #[test]
    fn decisions_are_counted_per_code_with_a_few_examples() {
        let log = DecisionLog::default();
        for i in 0..20 {
            log.count(&decision(false, "bad_credentials", &format!("u{i}")));
        }
        log.count(&decision(false, "unknown_user", "zed"));
        log.count(&decision(true, "allowed", "ada"));
        log.count(&decision(true, "allowed", "ada"));
        let w = log.inner.lock().unwrap();
        assert_eq!(w.allowed, 2);
        assert_eq!(w.refused["bad_credentials"].count, 20);
        assert_eq!(w.refused["bad_credentials"].examples.len(), EXAMPLES);
        assert_eq!(w.refused["unknown_user"].count, 1);
        assert!(w.opened_at.is_some());
    }
}
