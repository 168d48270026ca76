//! Operations on the organisation, shared by every surface (CLI now; the HTTP API
//! and the NATS service reuse them).
//!
//! Each mutating operation follows the same path: validate the input through
//! `warden-core` (names, specs, the claims they compile to), then, in ONE store
//! transaction, write the new state, its freshly signed JWT, a ledger event and —
//! when NATS must learn about it — an outbox row. Nothing is half-written: an
//! error anywhere rolls the whole transaction back.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Actor, Scope};
use nats_jwt::{
    AccountClaims, AccountPublicKey, KeyKind, KeyPair, OperatorPublicKey, UserPublicKey,
    ValidationIssue,
};
use serde::Serialize;
use serde_json::json;
use warden_core::bootstrap::{DEFAULT_SERVICE_PREFIX, check_migrations};
use warden_core::compile::{
    DEFAULT_MAX_ACCOUNT_JWT, NATS_DEFAULT_MAX_PAYLOAD, OperatorSpec, PolicyError,
    check_account_jwt_size, refuse_blocking, system_account_spec,
};
use warden_core::names::{SYSTEM_ACCOUNT, SYSTEM_USER};
use warden_core::spec::{AccountEdit, AccountLimitsEdit, UserEdit};
use warden_core::{
    AccountName, AccountSpec, JwtMigration, MigrationStep, NameError, NamingPolicy, UserName,
    UserSpec, compile_account, compile_operator, compile_user,
};
use warden_store::{AccountRow, NewEvent, OperatorRow, Store, StoreError, Tx, UserRow};

/// Outbox topic: an account JWT must be pushed to the resolver (payload: its key).
pub const TOPIC_ACCOUNT_UPDATE: &str = "account.update";
/// Outbox topic: an account must be deleted from the resolver (payload: its key).
pub const TOPIC_ACCOUNT_DELETE: &str = "account.delete";

pub(crate) const META_NAMING: &str = "naming_policy";
const META_SERVICE_PREFIX: &str = "service_prefix";
const META_SERVICE_USER: &str = "service_user";

/// What an error means to whoever asked, whatever the surface: each surface maps a kind
/// to its own form (CLI exit code, HTTP status, NATS service code, console page) in one
/// exhaustive `match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong (bad input, claims NATS would refuse).
    Invalid,
    /// Something it names does not exist.
    NotFound,
    /// It conflicts with the state it meets (already exists, not initialised, in use).
    Conflict,
    /// The actor may not do this.
    Refused,
    /// Something Warden depends on (nats-server, the directory) cannot be reached now.
    Unavailable,
    /// Warden itself failed (store, keys): details are logged, not shown.
    Internal,
}

impl ErrorKind {
    /// Every kind, in a stable order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Invalid,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Refused,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The stable machine-readable code every surface shows for this kind.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Refused => "refused",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// What can go wrong in an operation. Its [`ErrorKind`] says what it means; the message
/// says what happened, for the person reading it.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The input is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The database holds no operator yet.
    #[error("Warden is not initialised here: run `warden init` first")]
    NotInitialised,
    /// A named entity does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// The claims would be refused by NATS.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key or JWT could not be made.
    #[error("{0}")]
    Jwt(String),
    /// The actor may not do this (a directory user confirming a proposal they do not
    /// approve, adding a key for someone else): nothing changed.
    #[error("refused: {0}")]
    Refused(String),
    /// The actor lacks the scope the operation needs (`forbidden`): nothing changed.
    #[error("forbidden: {what} needs the {scope} scope, which this caller lacks")]
    MissingScope {
        /// The scope needed.
        scope: crate::Scope,
        /// What was asked for.
        what: String,
    },
    /// An actor bound to a directory user asked for something outside that binding
    /// (another operation than governance, or acting as someone else): `forbidden`,
    /// nothing changed.
    #[error("{0}")]
    Bound(String),
    /// A server Warden depends on (nats-server, the directory) cannot be reached or failed.
    #[error("{0}")]
    Unavailable(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl OpsError {
    /// What this error means (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpsError::Invalid(_) | OpsError::Policy(_) => ErrorKind::Invalid,
            OpsError::NotFound(_) => ErrorKind::NotFound,
            OpsError::Conflict(_) | OpsError::NotInitialised => ErrorKind::Conflict,
            OpsError::Refused(_) | OpsError::MissingScope { .. } | OpsError::Bound(_) => {
                ErrorKind::Refused
            }
            OpsError::Unavailable(_) => ErrorKind::Unavailable,
            OpsError::Store(_) | OpsError::Jwt(_) | OpsError::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The stable code of this error: its kind's, except that a store that was never
    /// initialised says so (`not_initialised`), since the fix is a command to run, and
    /// that a refusal for who the caller is rather than what they asked (a missing
    /// scope, a token bound to a directory user) is `forbidden`.
    pub fn code(&self) -> &'static str {
        match self {
            OpsError::NotInitialised => "not_initialised",
            OpsError::MissingScope { .. } | OpsError::Bound(_) => "forbidden",
            other => other.kind().code(),
        }
    }

    /// Whether this is the caller's mistake (bad input), as opposed to a failure.
    pub fn is_usage(&self) -> bool {
        self.kind() == ErrorKind::Invalid
    }

    /// A file error at `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> OpsError {
        OpsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An invalid-input error.
    pub fn invalid(msg: impl std::fmt::Display) -> OpsError {
        OpsError::Invalid(msg.to_string())
    }

    /// A server that cannot be reached or failed (`what` says which and why).
    pub fn unavailable(msg: impl std::fmt::Display) -> OpsError {
        OpsError::Unavailable(msg.to_string())
    }
}

impl From<warden_core::parse::ParseError> for OpsError {
    fn from(e: warden_core::parse::ParseError) -> Self {
        OpsError::Invalid(e.to_string())
    }
}

impl From<NameError> for OpsError {
    fn from(e: NameError) -> Self {
        OpsError::Invalid(e.to_string())
    }
}

impl From<nats_jwt::JwtError> for OpsError {
    fn from(e: nats_jwt::JwtError) -> Self {
        OpsError::Jwt(e.to_string())
    }
}

impl From<nats_jwt::KeyError> for OpsError {
    fn from(e: nats_jwt::KeyError) -> Self {
        OpsError::Jwt(e.to_string())
    }
}

/// Result of an operation.
pub type Result<T, E = OpsError> = std::result::Result<T, E>;

/// Current unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Settings fixed at `init` and kept in the database.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// Case conventions for names.
    pub naming: NamingPolicy,
    /// Prefix of Warden's NATS request/reply service.
    pub service_prefix: String,
    /// Account of the user Warden's service and change stream connect as.
    pub service_account: String,
    /// That user.
    pub service_user: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            naming: NamingPolicy::default(),
            service_prefix: DEFAULT_SERVICE_PREFIX.to_string(),
            service_account: "BACKEND".to_string(),
            service_user: "warden".to_string(),
        }
    }
}

/// Options of `warden init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Operator name.
    pub operator: String,
    /// The operator's own account (default: the operator's name).
    pub account: Option<String>,
    /// The operator's own user (default: the operator's name in the user case).
    pub user: Option<String>,
    /// Naming policy and service prefix.
    pub settings: Settings,
    /// `operator_service_urls` of the operator JWT.
    pub service_urls: Vec<String>,
    /// JWT migrations to apply (default: the built-in list).
    pub migrations: Vec<JwtMigration>,
}

impl InitOptions {
    /// `warden init --name operator` with every other option at its default.
    pub fn named(operator: impl Into<String>) -> InitOptions {
        InitOptions {
            operator: operator.into(),
            account: None,
            user: None,
            settings: Settings::default(),
            service_urls: Vec::new(),
            migrations: Vec::new(),
        }
    }
}

/// What `init` did.
#[derive(Clone, Debug, Serialize)]
pub struct InitReport {
    /// Whether the database was empty and has been bootstrapped now.
    pub created: bool,
    /// The operator.
    pub operator: String,
    /// Its public key.
    pub operator_public_key: String,
    /// The system account's public key.
    pub system_account: String,
    /// Migrations applied by this run.
    pub migrations_applied: Vec<String>,
}

/// An account with its stored spec.
#[derive(Clone, Debug, Serialize)]
pub struct AccountView {
    /// Name.
    pub name: String,
    /// Public key (`A…`).
    pub public_key: String,
    /// Current JWT.
    pub jwt: String,
    /// Spec.
    pub spec: AccountSpec,
    /// Number of users.
    pub users: usize,
    /// Whether this is the system account.
    pub system: bool,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last changed (unix seconds).
    pub updated_at: i64,
}

/// A user with its stored spec.
#[derive(Clone, Debug, Serialize)]
pub struct UserView {
    /// Name.
    pub name: String,
    /// Account name.
    pub account: String,
    /// Public key (`U…`).
    pub public_key: String,
    /// Current JWT; `None` (JSON `null`) when withheld: see `jwt_withheld`.
    pub jwt: Option<String>,
    /// Whether the JWT is withheld: a bearer user's JWT alone lets its holder connect, so
    /// only a caller with the `creds` scope sees it (other users' JWTs are shown: without
    /// the seed they connect nobody).
    pub jwt_withheld: bool,
    /// Spec.
    pub spec: UserSpec,
    /// Revoked at (unix seconds), if revoked.
    pub revoked_at: Option<i64>,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last changed (unix seconds).
    pub updated_at: i64,
}

/// The operator.
#[derive(Clone, Debug, Serialize)]
pub struct OperatorView {
    /// Name.
    pub name: String,
    /// Public key (`O…`).
    pub public_key: String,
    /// Current JWT.
    pub jwt: String,
    /// The signing key that issues accounts.
    pub signing_key: String,
    /// System account public key.
    pub system_account: String,
}

/// Everything about the database at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    /// Database URL (password redacted).
    pub database: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The operator, if initialised.
    pub operator: Option<OperatorView>,
    /// Settings.
    pub settings: Settings,
    /// Accounts (including SYS).
    pub accounts: i64,
    /// Users.
    pub users: i64,
    /// Ledger events.
    pub ledger_events: i64,
    /// Outbox rows not yet delivered to NATS.
    pub outbox_pending: i64,
    /// JWT migrations applied, in order.
    pub migrations: Vec<String>,
}

/// The engine: a store plus the settings read from it.
#[derive(Clone)]
pub struct Warden {
    /// The largest account JWT this engine signs, in bytes (see [`Warden::max_account_jwt`]).
    pub(crate) max_account_jwt: usize,
    pub(crate) store: Store,
    pub(crate) settings: Settings,
    pub(crate) actor: Actor,
    /// Refused onboarding downloads of this process: counted, throttled and summarised
    /// in the ledger per window (shared by every clone, whatever its actor).
    pub(crate) downloads: std::sync::Arc<crate::onboarding::DownloadGuard>,
}

impl Warden {
    /// Wraps a store, reading the settings kept in it; operations run as `actor`.
    pub async fn open(store: Store, actor: Actor) -> Result<Warden> {
        let mut settings = Settings::default();
        if let Some(v) = store.meta(META_NAMING).await? {
            settings.naming = serde_json::from_str(&v).map_err(|e| {
                OpsError::Conflict(format!("stored naming policy is unreadable: {e}"))
            })?;
        }
        if let Some(v) = store.meta(META_SERVICE_PREFIX).await? {
            settings.service_prefix = v;
        }
        if let Some((a, u)) = store
            .meta(META_SERVICE_USER)
            .await?
            .as_deref()
            .and_then(|v| v.split_once('/'))
        {
            settings.service_account = a.to_string();
            settings.service_user = u.to_string();
        }
        Ok(Warden {
            max_account_jwt: DEFAULT_MAX_ACCOUNT_JWT,
            store,
            settings,
            actor,
            downloads: Default::default(),
        })
    }

    /// The largest account JWT this engine signs, in bytes: by default
    /// [`DEFAULT_MAX_ACCOUNT_JWT`] (nats-server's default `max_payload` less room for the
    /// resolver push). A change that would sign a larger one is refused, and
    /// [`Warden::preload_account_jwts`] refuses stored ones over it.
    pub fn max_account_jwt(&self) -> usize {
        self.max_account_jwt
    }

    /// The same engine with another bound on account JWTs (for servers whose
    /// `max_payload` is lower than the default). Refused above 1 MiB, which nats-server
    /// 2.15 refuses as a JWT whatever its `max_payload`, and below 1 KiB, which not
    /// even the system account fits in.
    pub fn with_max_account_jwt(&self, bytes: usize) -> Result<Warden> {
        if !(1024..=NATS_DEFAULT_MAX_PAYLOAD).contains(&bytes) {
            return Err(OpsError::Invalid(format!(
                "the bound on account JWTs must be between 1024 and {NATS_DEFAULT_MAX_PAYLOAD} bytes, not {bytes}"
            )));
        }
        Ok(Warden {
            max_account_jwt: bytes,
            ..self.clone()
        })
    }

    /// The same engine, its operations run as `actor` (decided and recorded as theirs).
    pub fn with_actor(&self, actor: Actor) -> Warden {
        Warden {
            actor,
            ..self.clone()
        }
    }

    /// Who the operations run as.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Refuses unless the actor may run an operation that needs `scope` (`what` names
    /// it in the refusal). Every public operation outside governance calls it first: an
    /// actor bound to a directory user is refused here too.
    pub(crate) fn need(&self, scope: Scope, what: &str) -> Result<()> {
        self.actor.require(scope, what)
    }

    /// [`Self::need`] for the governance operations (directory, roles, tasks, proposals,
    /// keys), which an actor bound to a directory user may use, as that user.
    pub(crate) fn need_gov(&self, scope: Scope, what: &str) -> Result<()> {
        self.actor.require_governance(scope, what)
    }

    /// Whether the actor may see what lets its holder connect to NATS (creds, a bearer
    /// user's JWT).
    pub(crate) fn sees_creds(&self) -> bool {
        self.actor.has(Scope::Creds)
    }

    /// This engine for the inner steps of an operation that has authorized its actor
    /// already: the same ledger name, no second decision.
    pub(crate) fn trusted(&self) -> Warden {
        Warden {
            actor: self.actor.authorized(),
            ..self.clone()
        }
    }

    pub(crate) fn event(
        &self,
        action: &str,
        kind: &str,
        key: &str,
        summary: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            actor: self.actor.name().to_string(),
            action: action.to_string(),
            object_kind: kind.to_string(),
            object_key: key.to_string(),
            summary,
        }
    }

    /// Bootstraps an empty database (one transaction), or — when already
    /// initialised — applies only the migrations not yet recorded. Running it twice
    /// changes nothing.
    pub async fn init(&mut self, opts: InitOptions) -> Result<InitReport> {
        self.need(Scope::Admin, "initialising Warden")?;
        check_migrations(&opts.migrations, &opts.settings.naming)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let mut tx = self.store.begin().await?;
        if let Some(op) = tx.operator().await? {
            if op.name != opts.operator.trim() {
                return Err(OpsError::Conflict(format!(
                    "already initialised with operator {:?}; this database holds one operator",
                    op.name
                )));
            }
            let applied = self
                .apply_migrations(&mut tx, &op, &opts.migrations)
                .await?;
            tx.commit().await?;
            return Ok(InitReport {
                created: false,
                operator: op.name,
                operator_public_key: op.public_key,
                system_account: op.system_account,
                migrations_applied: applied,
            });
        }

        let settings = opts.settings.clone();
        let naming = settings.naming;
        let op_name = naming.operator(&opts.operator)?;
        let own_account = naming.account(opts.account.as_deref().unwrap_or(op_name.as_str()))?;
        let own_user = match &opts.user {
            Some(u) => naming.user(u)?,
            None => naming.user(&naming.user.suggest(op_name.as_str()))?,
        };
        if own_account.as_str() == SYSTEM_ACCOUNT {
            return Err(OpsError::Invalid(format!(
                "the operator's own account may not be called {SYSTEM_ACCOUNT}: that name is the system account's"
            )));
        }
        self.settings = settings.clone();

        // 1. the system account key, 2. the operator naming it, with a signing key.
        let sys_kp = KeyPair::generate(KeyKind::Account);
        let sys_pk = sys_kp.account_public_key()?;
        let op_kp = KeyPair::generate(KeyKind::Operator);
        let op_pk: OperatorPublicKey = op_kp.operator_public_key()?;
        let op_sk = KeyPair::generate(KeyKind::Operator);
        let op_spec = OperatorSpec {
            signing_keys: vec![op_sk.operator_public_key()?],
            system_account: sys_pk.clone(),
            service_urls: opts.service_urls.clone(),
            account_server_url: None,
        };
        let mut claims = compile_operator(&op_pk, &op_name, &op_spec);
        refuse_blocking(claims.validate(now()))?;
        let jwt = claims.encode(&op_kp)?;
        put_seed(&mut tx, &op_kp, "operator").await?;
        put_seed(&mut tx, &op_sk, "operator").await?;
        let t = now();
        let op = OperatorRow {
            public_key: op_pk.to_string(),
            name: op_name.to_string(),
            signing_key: op_sk.public_key().to_string(),
            system_account: sys_pk.to_string(),
            jwt,
            created_at: t,
            updated_at: t,
        };
        tx.insert_operator(&op).await?;
        tx.set_meta(META_NAMING, &json!(settings.naming).to_string())
            .await?;
        tx.set_meta(META_SERVICE_PREFIX, &settings.service_prefix)
            .await?;
        tx.set_meta(
            META_SERVICE_USER,
            &format!("{}/{}", settings.service_account, settings.service_user),
        )
        .await?;
        tx.record(self.event(
            "operator.create",
            "operator",
            &op.public_key,
            json!({"name": op.name, "system_account": op.system_account, "signing_key": op.signing_key}),
        ))
        .await?;

        // 3. the operator's own account and user.
        let own = self
            .create_account(
                &mut tx,
                &op,
                KeyPair::generate(KeyKind::Account),
                &own_account,
                AccountSpec::default(),
            )
            .await?;
        self.create_user(&mut tx, &own, &own_user, UserSpec::default())
            .await?;
        // 4. the system account and its user.
        let sys_name = AccountName::parse_any_case(SYSTEM_ACCOUNT)?;
        let sys = self
            .create_account(&mut tx, &op, sys_kp, &sys_name, system_account_spec())
            .await?;
        let sys_user = UserName::parse_any_case(SYSTEM_USER)?;
        self.create_user(&mut tx, &sys, &sys_user, UserSpec::default())
            .await?;
        // 5. JWT migrations.
        let applied = self
            .apply_migrations(&mut tx, &op, &opts.migrations)
            .await?;
        tx.commit().await?;
        Ok(InitReport {
            created: true,
            operator: op.name,
            operator_public_key: op.public_key,
            system_account: op.system_account,
            migrations_applied: applied,
        })
    }

    /// Applies the migrations of `list` not yet recorded, in order, each once.
    pub async fn migrate(&self, list: &[JwtMigration]) -> Result<Vec<String>> {
        self.need(Scope::Admin, "applying JWT migrations")?;
        check_migrations(list, &self.settings.naming)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let mut tx = self.store.begin().await?;
        let op = tx.operator().await?.ok_or(OpsError::NotInitialised)?;
        let applied = self.apply_migrations(&mut tx, &op, list).await?;
        tx.commit().await?;
        Ok(applied)
    }

    pub(crate) async fn apply_migrations(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        list: &[JwtMigration],
    ) -> Result<Vec<String>> {
        let naming = self.settings.naming;
        let mut applied = Vec::new();
        for m in list {
            if tx.migration_applied(&m.id).await? {
                continue;
            }
            for step in &m.steps {
                match step {
                    MigrationStep::Account { name, spec } => {
                        let name = naming.account(name)?;
                        if tx
                            .account_by_name(&op.public_key, name.as_str())
                            .await?
                            .is_none()
                        {
                            self.create_account(
                                tx,
                                op,
                                KeyPair::generate(KeyKind::Account),
                                &name,
                                spec.clone(),
                            )
                            .await?;
                        }
                    }
                    MigrationStep::User {
                        account,
                        name,
                        spec,
                    } => {
                        let account = naming.account(account)?;
                        let name = naming.user(name)?;
                        let acc = tx
                            .account_by_name(&op.public_key, account.as_str())
                            .await?
                            .ok_or_else(|| {
                                OpsError::Invalid(format!(
                                    "migration {:?}: account {account} does not exist (add an account step before its users)",
                                    m.id
                                ))
                            })?;
                        if tx
                            .user_by_name(&acc.public_key, name.as_str())
                            .await?
                            .is_none()
                        {
                            self.create_user(tx, &acc, &name, spec.clone()).await?;
                        }
                    }
                }
            }
            tx.record_migration(&m.id, &m.description).await?;
            tx.record(self.event(
                "migration.apply",
                "migration",
                &m.id,
                json!({"description": m.description}),
            ))
            .await?;
            applied.push(m.id.clone());
        }
        Ok(applied)
    }

    pub(crate) async fn create_account(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        kp: KeyPair,
        name: &AccountName,
        mut spec: AccountSpec,
    ) -> Result<AccountRow> {
        spec.normalize()?;
        let pk = kp.account_public_key()?;
        let jwt = self.sign_account(tx, op, &pk, name, &spec).await?;
        let row = insert_account_row(tx, op, &kp, name.as_str(), &spec, jwt).await?;
        tx.record(self.event(
            "account.create",
            "account",
            &row.public_key,
            json!({"name": row.name, "spec": row.spec}),
        ))
        .await?;
        tx.enqueue(TOPIC_ACCOUNT_UPDATE, &row.public_key).await?;
        Ok(row)
    }

    /// Compiles, checks and signs an account JWT with the operator's signing key.
    pub(crate) async fn sign_account(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        pk: &AccountPublicKey,
        name: &AccountName,
        spec: &AccountSpec,
    ) -> Result<String> {
        let mut claims = compile_account(pk, name, spec);
        let signer = KeyPair::from_seed(&tx.seed(&op.signing_key).await?)?;
        self.encode_account(name, &mut claims, &signer)
    }

    /// Checks and signs account claims: every account JWT Warden issues passes here, so
    /// none is stored that nats-server would refuse — neither claims it rejects nor a
    /// JWT over [`Warden::max_account_jwt`] (the push would fail forever, and nats-server
    /// 2.15 refuses to start with it preloaded). The caller's transaction is dropped with
    /// the error, so nothing changes.
    pub(crate) fn encode_account(
        &self,
        name: &AccountName,
        claims: &mut AccountClaims,
        signer: &KeyPair,
    ) -> Result<String> {
        refuse_blocking(claims.validate(now()))?;
        let jwt = claims.encode(signer)?;
        check_account_jwt_size(name.as_str(), &jwt, self.max_account_jwt)
            .map_err(|e| OpsError::Invalid(format!("{e}; nothing was changed")))?;
        Ok(jwt)
    }

    /// The account JWTs a nats-server configuration preloads (as
    /// [`Warden::account_jwts`]), refused when a stored one is over
    /// [`Warden::max_account_jwt`] (signed by an older Warden, or imported): nats-server
    /// would refuse the whole configuration, or fail every push of it. A conflict with
    /// the stored state, naming every such account.
    pub async fn preload_account_jwts(&self) -> Result<Vec<(String, String, String)>> {
        let jwts = self.account_jwts().await?;
        let over: Vec<String> = jwts
            .iter()
            .filter_map(|(name, _, jwt)| {
                check_account_jwt_size(name, jwt, self.max_account_jwt)
                    .err()
                    .map(|e| format!("account {} ({} bytes)", e.account, e.size))
            })
            .collect();
        if over.is_empty() {
            Ok(jwts)
        } else {
            Err(OpsError::Conflict(format!(
                "no nats-server configuration rendered: {} over the bound of {} bytes on an \
                 account JWT, which nats-server would refuse (as a preload or a resolver push); \
                 delete it (`warden account delete NAME`) or re-create it with fewer or shorter \
                 exports, imports, revocations or descriptions, then render again",
                over.join(", "),
                self.max_account_jwt
            )))
        }
    }

    pub(crate) async fn create_user(
        &self,
        tx: &mut Tx<'_>,
        account: &AccountRow,
        name: &UserName,
        mut spec: UserSpec,
    ) -> Result<UserRow> {
        // Every way a user is created checks its text fields here, once: a blank or
        // malformed source network or tag is refused, never dropped.
        spec.normalize()?;
        let kp = KeyPair::generate(KeyKind::User);
        let pk = kp.user_public_key()?;
        let jwt = sign_user(tx, account, &pk, name, &spec).await?;
        put_seed(tx, &kp, "user").await?;
        let row = new_user_row(
            &account.public_key,
            &pk.to_string(),
            name.as_str(),
            &spec,
            jwt,
        )?;
        tx.insert_user(&row).await.map_err(|e| {
            conflict(e, || {
                format!("user {name} already exists in account {}", account.name)
            })
        })?;
        tx.record(self.event(
            "user.create",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": account.name, "spec": row.spec}),
        ))
        .await?;
        Ok(row)
    }

    pub(crate) async fn operator_row(&self, tx: &mut Tx<'_>) -> Result<OperatorRow> {
        tx.operator().await?.ok_or(OpsError::NotInitialised)
    }

    pub(crate) async fn account_row(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        name: &str,
    ) -> Result<AccountRow> {
        let name = AccountName::parse_any_case(name)?;
        tx.account_by_name(&op.public_key, name.as_str())
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("account {name}")))
    }

    pub(crate) async fn user_row(
        &self,
        tx: &mut Tx<'_>,
        account: &AccountRow,
        name: &str,
    ) -> Result<UserRow> {
        let name = UserName::parse_any_case(name)?;
        tx.user_by_name(&account.public_key, name.as_str())
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("user {name} in account {}", account.name)))
    }

    /// The operator.
    pub async fn operator(&self) -> Result<OperatorView> {
        self.need(Scope::Read, "reading the operator")?;
        let op = self
            .store
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        Ok(operator_view(op))
    }

    /// Status of the database.
    pub async fn status(&self) -> Result<StatusView> {
        self.need(Scope::Read, "reading the status")?;
        let counts = self.store.counts().await?;
        Ok(StatusView {
            database: self.store.url_redacted().to_string(),
            backend: format!("{:?}", self.store.backend()).to_lowercase(),
            operator: self.store.operator().await?.map(operator_view),
            settings: self.settings.clone(),
            accounts: counts.accounts,
            users: counts.users,
            ledger_events: counts.ledger_events,
            outbox_pending: counts.outbox_pending,
            migrations: self
                .store
                .migrations_applied()
                .await?
                .into_iter()
                .map(|m| m.id)
                .collect(),
        })
    }

    /// Adds an account.
    pub async fn add_account(&self, name: &str, spec: AccountSpec) -> Result<AccountView> {
        self.add_account_with_users(name, spec, Vec::new(), &crate::progress::Quiet)
            .await
    }

    /// Lists accounts, ordered by name.
    pub async fn list_accounts(&self) -> Result<Vec<AccountView>> {
        self.need(Scope::Read, "listing accounts")?;
        let op = self
            .store
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        // One query for every account's user count, not one per account.
        let counts = self.store.user_counts().await?;
        let mut out = Vec::new();
        for row in self.store.accounts(&op.public_key).await? {
            let users = counts.get(&row.public_key).copied().unwrap_or(0);
            out.push(account_view(row, &op, users)?);
        }
        Ok(out)
    }

    /// One account.
    pub async fn account(&self, name: &str) -> Result<AccountView> {
        self.need(Scope::Read, "reading an account")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let row = self.account_row(&mut tx, &op, name).await?;
        let users = tx.users(&row.public_key).await?.len();
        account_view(row, &op, users)
    }

    /// Changes an account's limits (and description); re-signs its JWT. The same as
    /// [`Warden::change_account`] with only those two parts.
    pub async fn edit_account(
        &self,
        name: &str,
        limits: &AccountLimitsEdit,
        description: Option<String>,
    ) -> Result<AccountView> {
        let edit = AccountEdit {
            limits: limits.clone(),
            description,
            ..AccountEdit::default()
        };
        self.change_account(name, edit).await
    }

    /// Changes an account: limits (flat or one JetStream tier), tiers removed, default
    /// permissions, tags, info URL, description; re-signs its JWT. An edit nats-server
    /// would refuse (flat and tiered JetStream limits together, mapping weights over 100
    /// …) changes nothing.
    pub async fn change_account(&self, name: &str, mut edit: AccountEdit) -> Result<AccountView> {
        self.need(Scope::Write, "editing an account")?;
        if edit.is_empty() {
            return Err(OpsError::Invalid(
                "nothing to change: give at least one flag (see --help)".into(),
            ));
        }
        edit.normalize()?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut row = self.account_row(&mut tx, &op, name).await?;
        let before = row.spec.clone();
        let mut spec: AccountSpec = from_json(&row.spec)?;
        edit.apply(&mut spec)
            .map_err(|e| OpsError::Invalid(format!("account {}: {e}", row.name)))?;
        self.resign_account(&mut tx, &op, &mut row, spec).await?;
        tx.record(self.event(
            "account.edit",
            "account",
            &row.public_key,
            json!({"name": row.name, "before": before, "after": row.spec}),
        ))
        .await?;
        let users = tx.users(&row.public_key).await?.len();
        tx.commit().await?;
        account_view(row, &op, users)
    }

    pub(crate) async fn resign_account(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        row: &mut AccountRow,
        spec: AccountSpec,
    ) -> Result<()> {
        let pk: AccountPublicKey = parse_key(&row.public_key)?;
        let name = AccountName::parse_any_case(&row.name)?;
        row.jwt = self.sign_account(tx, op, &pk, &name, &spec).await?;
        row.spec = to_json(&spec)?;
        row.updated_at = now();
        tx.update_account(row).await?;
        tx.enqueue(TOPIC_ACCOUNT_UPDATE, &row.public_key).await?;
        Ok(())
    }

    /// Deletes an account and its users (the system account and the operator's
    /// own account cannot be deleted).
    pub async fn delete_account(&self, name: &str) -> Result<AccountView> {
        self.need(Scope::Write, "deleting an account")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let row = self.account_row(&mut tx, &op, name).await?;
        if row.public_key == op.system_account {
            return Err(OpsError::Invalid(
                "the system account cannot be deleted".into(),
            ));
        }
        let users = tx.users(&row.public_key).await?;
        for u in &users {
            tx.delete_seed(&u.public_key).await?;
        }
        tx.delete_account(&row.public_key).await?;
        tx.delete_seed(&row.public_key).await?;
        tx.record(self.event(
            "account.delete",
            "account",
            &row.public_key,
            json!({"name": row.name, "users": users.iter().map(|u| &u.name).collect::<Vec<_>>()}),
        ))
        .await?;
        tx.enqueue(TOPIC_ACCOUNT_DELETE, &row.public_key).await?;
        tx.commit().await?;
        account_view(row, &op, users.len())
    }

    /// Adds a user to an account.
    pub async fn add_user(&self, account: &str, name: &str, spec: UserSpec) -> Result<UserView> {
        self.need(Scope::Write, "adding a user")?;
        let name = self.settings.naming.user(name)?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let row = self.create_user(&mut tx, &acc, &name, spec).await?;
        tx.commit().await?;
        user_view(row, &acc, self.sees_creds())
    }

    /// [`Self::add_user`] for a caller whose answer carries the new user's creds: refused
    /// before anything is written unless the actor holds `write` and `creds`.
    pub async fn add_user_with_creds(
        &self,
        account: &str,
        name: &str,
        spec: UserSpec,
    ) -> Result<(UserView, zeroize::Zeroizing<String>)> {
        self.need(Scope::Write, "adding a user")?;
        self.need(Scope::Creds, "a new user's creds")?;
        let user = self.add_user(account, name, spec).await?;
        let creds = self.creds_of(account, &user.name).await?;
        Ok((user, creds))
    }

    /// Creates an account and its users in one transaction (a unit of an organisation
    /// built at once, e.g. by `warden bench export`); `progress` advances per user.
    pub async fn add_account_with_users(
        &self,
        name: &str,
        spec: AccountSpec,
        users: Vec<(String, UserSpec)>,
        progress: &dyn crate::progress::Progress,
    ) -> Result<AccountView> {
        self.need(Scope::Write, "adding an account")?;
        let name = self.settings.naming.account(name)?;
        let users = users
            .into_iter()
            .map(|(n, spec)| Ok((self.settings.naming.user(&n)?, spec)))
            .collect::<Result<Vec<_>>>()?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self
            .create_account(
                &mut tx,
                &op,
                KeyPair::generate(KeyKind::Account),
                &name,
                spec,
            )
            .await?;
        let count = users.len();
        for (uname, spec) in users {
            self.create_user(&mut tx, &acc, &uname, spec).await?;
            progress.advance(1);
        }
        tx.commit().await?;
        account_view(acc, &op, count)
    }

    /// Lists an account's users, ordered by name.
    pub async fn list_users(&self, account: &str) -> Result<Vec<UserView>> {
        self.need(Scope::Read, "listing users")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        tx.users(&acc.public_key)
            .await?
            .into_iter()
            .map(|u| user_view(u, &acc, self.sees_creds()))
            .collect()
    }

    /// One user.
    pub async fn user(&self, account: &str, name: &str) -> Result<UserView> {
        self.need(Scope::Read, "reading a user")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let row = self.user_row(&mut tx, &acc, name).await?;
        user_view(row, &acc, self.sees_creds())
    }

    /// Changes a user; re-issues its JWT.
    pub async fn edit_user(&self, account: &str, name: &str, edit: &UserEdit) -> Result<UserView> {
        self.need(Scope::Write, "editing a user")?;
        let mut edit = edit.clone();
        edit.normalize()?;
        let edit = &edit;
        if edit.is_empty() {
            return Err(OpsError::Invalid(
                "nothing to change: give at least one permission or limit flag (see --help)".into(),
            ));
        }
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let mut row = self.user_row(&mut tx, &acc, name).await?;
        if row.revoked_at.is_some() {
            return Err(OpsError::Conflict(format!(
                "user {} is revoked; delete it and add a new one",
                row.name
            )));
        }
        let before = row.spec.clone();
        let mut spec: UserSpec = from_json(&row.spec)?;
        edit.apply(&mut spec);
        let pk: UserPublicKey = parse_key(&row.public_key)?;
        let uname = UserName::parse_any_case(&row.name)?;
        // The user keeps its signer (a role's user stays empty, as the server requires).
        let (jwt, signer) = crate::signing_keys::sign_user_as(
            &mut tx,
            &acc,
            &pk,
            &uname,
            &spec,
            row.signing_key.as_deref(),
        )
        .await?;
        row.jwt = jwt;
        row.signing_key = signer;
        row.spec = to_json(&spec)?;
        row.updated_at = now();
        tx.update_user(&row).await?;
        tx.record(self.event(
            "user.edit",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name, "before": before, "after": row.spec}),
        ))
        .await?;
        tx.commit().await?;
        user_view(row, &acc, self.sees_creds())
    }

    /// Revokes a user: its key goes into the account JWT's revocations (so the
    /// server refuses it and disconnects it once the account JWT is loaded).
    pub async fn revoke_user(&self, account: &str, name: &str) -> Result<UserView> {
        self.need(Scope::Write, "revoking a user")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, account).await?;
        let mut row = self.user_row(&mut tx, &acc, name).await?;
        if row.revoked_at.is_some() {
            return Err(OpsError::Conflict(format!(
                "user {} is already revoked",
                row.name
            )));
        }
        // Not before the JWT's iat: one issued for a user's own key may carry T + 1.
        let at = self.revoke_issued(&mut tx, &op, &mut acc, &row).await?;
        row.revoked_at = Some(at);
        row.updated_at = at;
        tx.update_user(&row).await?;
        tx.record(self.event(
            "user.revoke",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name, "revoked_at": at}),
        ))
        .await?;
        tx.commit().await?;
        user_view(row, &acc, self.sees_creds())
    }

    pub(crate) async fn revoke_in_account(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        acc: &mut AccountRow,
        user_key: &str,
    ) -> Result<i64> {
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let at = now();
        let entry = spec.revocations.entry(user_key.to_string()).or_insert(at);
        *entry = (*entry).max(at);
        self.resign_account(tx, op, acc, spec).await?;
        Ok(at)
    }

    /// Deletes a user; its key is revoked in the account first, so a copy of its
    /// creds kept elsewhere stops working too.
    pub async fn delete_user(&self, account: &str, name: &str) -> Result<UserView> {
        self.need(Scope::Write, "deleting a user")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, account).await?;
        let row = self.user_row(&mut tx, &acc, name).await?;
        if row.revoked_at.is_none() {
            self.revoke_issued(&mut tx, &op, &mut acc, &row).await?;
        }
        tx.delete_user(&row.public_key).await?;
        // A user issued for a directory user's own key has no seed here.
        if tx.has_seed(&row.public_key).await? {
            tx.delete_seed(&row.public_key).await?;
        }
        tx.record(self.event(
            "user.delete",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name}),
        ))
        .await?;
        tx.commit().await?;
        user_view(row, &acc, self.sees_creds())
    }

    /// The creds file text of a user (JWT + seed). The caller decides where it goes.
    pub async fn creds(&self, account: &str, name: &str) -> Result<zeroize::Zeroizing<String>> {
        self.need(Scope::Creds, "a user's creds")?;
        self.creds_of(account, name).await
    }

    /// [`Self::creds`] for an operation that has authorized its actor already.
    pub(crate) async fn creds_of(
        &self,
        account: &str,
        name: &str,
    ) -> Result<zeroize::Zeroizing<String>> {
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let row = self.user_row(&mut tx, &acc, name).await?;
        self.refuse_own_key_creds(&mut tx, &acc.name, &row).await?;
        let seed = nats_jwt::Seed::parse(&tx.seed(&row.public_key).await?)?;
        let text = nats_jwt::format_user_creds(&row.jwt, &seed)
            .map_err(|e| OpsError::Jwt(e.to_string()))?;
        Ok(zeroize::Zeroizing::new(text))
    }

    /// Creds of the system account's user (`SYS`/`sys`), which pushes to the resolver.
    pub async fn system_user_creds(&self) -> Result<zeroize::Zeroizing<String>> {
        self.creds(SYSTEM_ACCOUNT, SYSTEM_USER).await
    }

    /// Creds of Warden's service user (default `BACKEND`/`warden`), which serves the
    /// NATS API and publishes the change stream.
    pub async fn service_user_creds(&self) -> Result<zeroize::Zeroizing<String>> {
        let s = &self.settings;
        self.creds(&s.service_account, &s.service_user)
            .await
            .map_err(|e| match e {
                OpsError::NotFound(what) => OpsError::NotFound(format!(
                    "{what} (Warden's service user; choose another with `warden init --service-user ACCOUNT/USER`)"
                )),
                other => other,
            })
    }

    /// Every account's current JWT, keyed by public key (for server configs and pushes).
    /// Accounts of revoked devices are left out: they must stay off the resolver.
    pub async fn account_jwts(&self) -> Result<Vec<(String, String, String)>> {
        self.need(Scope::Read, "reading the account JWTs")?;
        let op = self
            .store
            .operator()
            .await?
            .ok_or(OpsError::NotInitialised)?;
        let revoked: std::collections::BTreeSet<String> = self
            .store
            .revoked_device_accounts()
            .await?
            .into_iter()
            .collect();
        Ok(self
            .store
            .accounts(&op.public_key)
            .await?
            .into_iter()
            .filter(|a| !revoked.contains(&a.public_key))
            .map(|a| (a.name, a.public_key, a.jwt))
            .collect())
    }
}

/// Outbox topic: a ledger event for the change stream (payload: the event as JSON).
pub const TOPIC_EVENT: &str = "event";

/// Appends a ledger event and, in the same transaction, queues it for the change
/// stream on NATS (`<prefix>.events.<action>`).
#[allow(async_fn_in_trait)] // implemented only for the store's transaction, awaited in place
pub trait Record {
    /// Appends `event` to the ledger and queues it for the change stream.
    async fn record(&mut self, event: NewEvent) -> Result<i64>;
}

impl Record for Tx<'_> {
    async fn record(&mut self, event: NewEvent) -> Result<i64> {
        let seq = self.append_event(&event).await?;
        let payload = json!({
            "seq": seq,
            "at": now(),
            "actor": event.actor,
            "action": event.action,
            "object_kind": event.object_kind,
            "object_key": event.object_key,
            "summary": event.summary,
        });
        self.enqueue(TOPIC_EVENT, &payload.to_string()).await?;
        Ok(seq)
    }
}

/// Stores a new account whose JWT is already signed: its sealed seed and its row
/// (a name already taken is a conflict). The caller records the event and queues
/// The row of a user issued now: in `account` (its public key), with `spec`, the JWT
/// signed by the account's identity key, not revoked. Every way Warden creates a user
/// builds its row here.
pub(crate) fn new_user_row(
    account: &str,
    public_key: &str,
    name: &str,
    spec: &UserSpec,
    jwt: String,
) -> Result<UserRow> {
    let t = now();
    Ok(UserRow {
        public_key: public_key.to_string(),
        account: account.to_string(),
        name: name.to_string(),
        spec: to_json(spec)?,
        jwt,
        signing_key: None,
        revoked_at: None,
        created_at: t,
        updated_at: t,
    })
}

/// the push, so bulk paths can batch them.
pub(crate) async fn insert_account_row(
    tx: &mut Tx<'_>,
    op: &OperatorRow,
    kp: &KeyPair,
    name: &str,
    spec: &AccountSpec,
    jwt: String,
) -> Result<AccountRow> {
    put_seed(tx, kp, "account").await?;
    let t = now();
    let row = AccountRow {
        public_key: kp.account_public_key()?.to_string(),
        operator: op.public_key.clone(),
        name: name.to_string(),
        spec: to_json(spec)?,
        jwt,
        created_at: t,
        updated_at: t,
    };
    tx.insert_account(&row)
        .await
        .map_err(|e| conflict(e, || format!("account {name} already exists")))?;
    Ok(row)
}

pub(crate) async fn put_seed(tx: &mut Tx<'_>, kp: &KeyPair, kind: &str) -> Result<()> {
    let seed = kp.seed();
    tx.put_seed(kp.public_key().as_str(), kind, seed.expose())
        .await?;
    Ok(())
}

/// Compiles, checks and signs a user JWT with the account's identity key.
pub(crate) async fn sign_user(
    tx: &mut Tx<'_>,
    account: &AccountRow,
    pk: &UserPublicKey,
    name: &UserName,
    spec: &UserSpec,
) -> Result<String> {
    let mut claims = compile_user(pk, name, spec, None);
    refuse_blocking(claims.validate(now()))?;
    let signer = KeyPair::from_seed(&tx.seed(&account.public_key).await?)?;
    Ok(claims.encode(&signer)?)
}

pub(crate) fn conflict(e: StoreError, what: impl FnOnce() -> String) -> OpsError {
    match e {
        StoreError::Conflict { .. } => OpsError::Conflict(what()),
        other => OpsError::Store(other),
    }
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| OpsError::Jwt(format!("cannot serialise spec: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T> {
    serde_json::from_value(v.clone())
        .map_err(|e| OpsError::Conflict(format!("stored spec is unreadable: {e}")))
}

pub(crate) fn parse_key<K: std::str::FromStr<Err = nats_jwt::KeyError>>(s: &str) -> Result<K> {
    s.parse::<K>()
        .map_err(|e| OpsError::Jwt(format!("stored key {s}: {e}")))
}

pub(crate) fn operator_view(op: OperatorRow) -> OperatorView {
    OperatorView {
        name: op.name,
        public_key: op.public_key,
        jwt: op.jwt,
        signing_key: op.signing_key,
        system_account: op.system_account,
    }
}

pub(crate) fn account_view(row: AccountRow, op: &OperatorRow, users: usize) -> Result<AccountView> {
    Ok(AccountView {
        system: row.public_key == op.system_account,
        spec: from_json(&row.spec)?,
        name: row.name,
        public_key: row.public_key,
        jwt: row.jwt,
        users,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A user as `reveal` allows: a bearer user's JWT only when `reveal` (the caller holds
/// `creds`).
pub(crate) fn user_view(row: UserRow, account: &AccountRow, reveal: bool) -> Result<UserView> {
    let spec: UserSpec = from_json(&row.spec)?;
    let withheld = spec.bearer_token && !reveal;
    Ok(UserView {
        spec,
        name: row.name,
        account: account.name.clone(),
        public_key: row.public_key,
        jwt: (!withheld).then_some(row.jwt),
        jwt_withheld: withheld,
        revoked_at: row.revoked_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Issues that do not block but that a person should see (e.g. an expiry in the past).
pub fn warnings(issues: &[ValidationIssue]) -> Vec<String> {
    issues.iter().map(|i| i.to_string()).collect()
}
