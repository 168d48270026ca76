//! Account signing keys and the users they issue: plain keys and roles (scoped keys
//! whose permission template the server applies to every user they sign), users issued
//! by a role, rotation of a signing key (its users re-issued by the new one) and of a
//! user's own key, and what a user may really do once the template is expanded.
//!
//! A user row's `signing_key` names the key that signed its JWT (`None`: the account's
//! identity key). Every re-issue of a user goes through [`sign_user_as`], so a user
//! keeps its signer (and, for a role, stays empty as nats-server requires).

use nats_jwt::{
    AccountPublicKey, KeyKind, KeyPair, SigningKey, Subject, UserClaims, UserPermissionLimits,
    UserPublicKey, UserScope,
};
use serde::Serialize;
use serde_json::json;
use warden_core::compile::refuse_blocking;
use warden_core::permcheck::{self, Direction};
use warden_core::template::{self, Context, Dropped, ServerLine};
use warden_core::{AccountSpec, UserName, UserSpec, compile_user};
use warden_store::{AccountRow, Tx, UserRow};

use crate::{
    OpsError, Record, Result, Scope, UserView, Warden, from_json, now, parse_key, put_seed,
    user_view,
};

/// Longest role name accepted.
const MAX_ROLE_LEN: usize = 100;

/// A signing key to add to an account.
#[derive(Clone, Debug, Default)]
pub struct NewSigningKey {
    /// The role: `Some` makes a scoped key whose `template` the server applies to every
    /// user it signs; `None` a plain key (users carry their own permissions).
    pub role: Option<String>,
    /// Permissions and limits of a role's users (subjects may use template functions,
    /// see `warden_core::template`). Must be empty for a plain key.
    pub template: UserPermissionLimits,
}

/// Which signing key of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// By its public key (`A…`).
    Key(String),
    /// By the role of a scoped key.
    Role(String),
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Key(k) => write!(f, "signing key {k}"),
            KeyRef::Role(r) => write!(f, "role {r:?}"),
        }
    }
}

/// A signing key of an account.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeyView {
    /// The account.
    pub account: String,
    /// The key (`A…`).
    pub key: String,
    /// `plain` or `user_scope`.
    pub kind: &'static str,
    /// The role of a scoped key.
    pub role: Option<String>,
    /// The template of a scoped key.
    pub template: Option<UserPermissionLimits>,
    /// Users whose current JWT it signed (revoked ones left out).
    pub users: usize,
    /// Whether Warden holds its seed (false for a key imported without it: Warden
    /// cannot issue users with it).
    pub seed_held: bool,
}

/// What adding a signing key did.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeyAdded {
    /// The new key.
    pub signing_key: SigningKeyView,
    /// What a person should know (templates inside a token, which 2.9 does not expand).
    pub warnings: Vec<String>,
}

/// What rotating a signing key did.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeyRotated {
    /// The key removed from the account.
    pub old_key: String,
    /// The key that replaces it (same role and template).
    pub signing_key: SigningKeyView,
    /// Users re-issued by the new key (same user keys, new JWTs).
    pub reissued: Vec<String>,
}

/// What removing a signing key did.
#[derive(Clone, Debug, Serialize)]
pub struct SigningKeyRemoved {
    /// The account.
    pub account: String,
    /// The removed key.
    pub key: String,
    /// Its role, if it was scoped.
    pub role: Option<String>,
}

/// A user issued by a role's key.
#[derive(Clone, Debug, Serialize)]
pub struct RoleUserAdded {
    /// The user.
    pub user: UserView,
    /// The role.
    pub role: String,
    /// The role's key that signed it.
    pub signing_key: String,
    /// What a person should know (a template subject this user never gets, a connect
    /// the server will refuse).
    pub warnings: Vec<String>,
}

/// What a user may do on a server line: its own permissions, or the role's template
/// expanded for it.
#[derive(Clone, Debug, Serialize)]
pub struct EffectivePermissions {
    /// The user.
    pub user: String,
    /// The account.
    pub account: String,
    /// The key that signed its JWT (`None`: the account identity key).
    pub signing_key: Option<String>,
    /// The role, when a scoped key signed it.
    pub role: Option<String>,
    /// The server line the answer holds for.
    pub server_line: ServerLine,
    /// The permissions and limits the server enforces (`None` when it refuses the
    /// connect).
    pub limits: Option<UserPermissionLimits>,
    /// Whether these come from the account's default permissions (the user's own are
    /// empty).
    pub account_defaults: bool,
    /// Template allow subjects the user does not get, and why.
    pub dropped: Vec<Dropped>,
    /// Why the server refuses the user's connect, if it does.
    pub connect_refused: Option<String>,
}

/// "May this user publish/subscribe to SUBJECT?", as the server answers it.
#[derive(Clone, Debug, Serialize)]
pub struct UserExplanation {
    /// The user.
    pub user: String,
    /// The account.
    pub account: String,
    /// `publish` or `subscribe`.
    pub direction: &'static str,
    /// The subject asked about.
    pub subject: String,
    /// The answer.
    pub allowed: bool,
    /// The rule that decided it.
    pub reason: String,
    /// The role, when a scoped key signed the user.
    pub role: Option<String>,
    /// The server line the answer holds for.
    pub server_line: ServerLine,
}

/// What rotating a user's key did; the new creds go to the caller only.
#[derive(Clone, Debug, Serialize)]
pub struct UserRotated {
    /// The user with its new key.
    pub user: UserView,
    /// The key revoked in the account.
    pub old_key: String,
}

fn check_role(role: &str) -> Result<String> {
    let r = role.trim();
    if r.is_empty() {
        return Err(OpsError::invalid("a role name may not be blank"));
    }
    if r.len() > MAX_ROLE_LEN || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OpsError::invalid(format!(
            "role {role:?}: a role name is at most {MAX_ROLE_LEN} characters, without spaces"
        )));
    }
    Ok(r.to_string())
}

fn find_key<'a>(
    spec: &'a AccountSpec,
    account: &str,
    which: &KeyRef,
) -> Result<(usize, &'a SigningKey)> {
    let found = spec
        .signing_keys
        .iter()
        .enumerate()
        .find(|(_, k)| match which {
            KeyRef::Key(key) => k.key().as_str() == key.trim(),
            KeyRef::Role(role) => matches!(k, SigningKey::Scoped(s) if s.role == role.trim()),
        });
    found.ok_or_else(|| {
        let known: Vec<String> = spec
            .signing_keys
            .iter()
            .map(|k| match k {
                SigningKey::Plain(p) => p.to_string(),
                SigningKey::Scoped(s) => format!("{} (role {})", s.key, s.role),
            })
            .collect();
        OpsError::NotFound(format!(
            "{which} in account {account} (its signing keys: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn role_of(spec: &AccountSpec, key: Option<&str>) -> Option<UserScope> {
    let key = key?;
    spec.signing_keys.iter().find_map(|k| match k {
        SigningKey::Scoped(s) if s.key.as_str() == key => Some(s.clone()),
        _ => None,
    })
}

/// Whether a stored user spec says nothing a role's template would have to say: the
/// only specs a role's user may have (tags and expiry apart).
fn spec_is_plain(spec: &UserSpec) -> bool {
    let l = spec.to_claims();
    l == UserPermissionLimits::default() || l == UserPermissionLimits::unlimited()
}

/// Compiles, checks and signs a user JWT with `signing_key` (`None`: the account
/// identity key). A role's user is signed empty, with `issuer_account`, as the server
/// requires; a spec with permissions or limits of its own is refused for it. A plain
/// key whose seed Warden does not hold (imported) gives way to the identity key. `iat`
/// is after any revocation of the user's key, so the new JWT is accepted. Returns the
/// JWT and the key that signed it.
pub(crate) async fn sign_user_as(
    tx: &mut Tx<'_>,
    account: &AccountRow,
    pk: &UserPublicKey,
    name: &UserName,
    spec: &UserSpec,
    signing_key: Option<&str>,
) -> Result<(String, Option<String>)> {
    let acc_spec: AccountSpec = from_json(&account.spec)?;
    let acc_pk: AccountPublicKey = parse_key(&account.public_key)?;
    let iat = acc_spec
        .revocations
        .get(pk.as_str())
        .map_or(now(), |t| now().max(t + 1));
    let known =
        signing_key.and_then(|k| acc_spec.signing_keys.iter().find(|s| s.key().as_str() == k));
    let (mut claims, signer_key) = match known {
        Some(SigningKey::Scoped(scope)) => {
            if !spec_is_plain(spec) {
                return Err(OpsError::invalid(format!(
                    "user {name} is issued by role {:?}: its permissions and limits come from the role's template \
                     (`warden account signing-key list {}`), so it may not set its own; only tags and expiry can change",
                    scope.role, account.name
                )));
            }
            let mut c = compile_user(pk, name, spec, Some(&acc_pk));
            c.nats.limits = UserPermissionLimits::default();
            if !tx.has_seed(scope.key.as_str()).await? {
                return Err(OpsError::Conflict(format!(
                    "the seed of role {:?}'s key {} is not held by Warden: rotate the key \
                     (`warden account signing-key rotate {} --role {}`) to issue its users",
                    scope.role, scope.key, account.name, scope.role
                )));
            }
            (c, Some(scope.key.to_string()))
        }
        Some(SigningKey::Plain(k)) if tx.has_seed(k.as_str()).await? => (
            compile_user(pk, name, spec, Some(&acc_pk)),
            Some(k.to_string()),
        ),
        _ => (compile_user(pk, name, spec, None), None),
    };
    refuse_blocking(claims.validate(now()))?;
    let seed_of = signer_key.as_deref().unwrap_or(&account.public_key);
    let signer = KeyPair::from_seed(&tx.seed(seed_of).await?)?;
    Ok((claims.encode_at(&signer, iat)?, signer_key))
}

async fn key_view(
    tx: &mut Tx<'_>,
    account: &AccountRow,
    users: &[UserRow],
    key: &SigningKey,
) -> Result<SigningKeyView> {
    let (kind, role, template) = match key {
        SigningKey::Plain(_) => ("plain", None, None),
        SigningKey::Scoped(s) => ("user_scope", Some(s.role.clone()), Some(s.template.clone())),
    };
    Ok(SigningKeyView {
        account: account.name.clone(),
        key: key.key().to_string(),
        kind,
        role,
        template,
        users: users
            .iter()
            .filter(|u| {
                u.revoked_at.is_none() && u.signing_key.as_deref() == Some(key.key().as_str())
            })
            .count(),
        seed_held: tx.has_seed(key.key().as_str()).await?,
    })
}

fn template_warnings(template: &UserPermissionLimits) -> Result<Vec<String>> {
    // What the claims model accepts but no server can use, refused here so every surface
    // (CLI, HTTP, NATS service, console) gives the same answer.
    let p = &template.permissions;
    if let Some(s) = p
        .publish
        .allow
        .iter()
        .chain(&p.publish.deny)
        .find(|s| s.queue().is_some())
    {
        return Err(OpsError::invalid(format!(
            "publish permission {:?} has a queue group; queue groups apply to subscriptions only",
            s.as_str()
        )));
    }
    if let Some(r) = &p.response
        && r.max < 1
    {
        return Err(OpsError::invalid(format!(
            "the response permission's max messages must be at least 1, got {}",
            r.max
        )));
    }
    for (what, n) in [
        ("subs", template.subs),
        ("data", template.data),
        ("payload", template.payload),
    ] {
        warden_core::parse::check_limit(n)
            .map_err(|e| OpsError::invalid(format!("template {what}: {e}")))?;
    }
    let usage = template::check_template(template).map_err(OpsError::invalid)?;
    let mut out = Vec::new();
    if usage.inside_token {
        out.push(
            "a template function sits inside a token (e.g. a.x{{name()}}): nats-server 2.15 expands it, \
             2.9 takes the subject literally (see docs/signing-keys.md)"
                .to_string(),
        );
    }
    Ok(out)
}

impl Warden {
    /// Adds a signing key to an account: a role's scoped key when `new.role` is set,
    /// else a plain one. The account is re-signed and pushed.
    pub async fn add_signing_key(
        &self,
        account: &str,
        new: NewSigningKey,
    ) -> Result<SigningKeyAdded> {
        self.need(Scope::Write, "adding an account signing key")?;
        let role = new.role.as_deref().map(check_role).transpose()?;
        let warnings = match &role {
            Some(_) => template_warnings(&new.template)?,
            None => {
                if new.template != UserPermissionLimits::default()
                    && new.template != UserPermissionLimits::unlimited()
                {
                    return Err(OpsError::invalid(
                        "permissions and limits make a role's template: give --role ROLE, or drop them for a plain signing key",
                    ));
                }
                Vec::new()
            }
        };
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        if let Some(r) = &role
            && spec
                .signing_keys
                .iter()
                .any(|k| matches!(k, SigningKey::Scoped(s) if s.role == *r))
        {
            return Err(OpsError::Conflict(format!(
                "account {} already has role {r:?}: rotate its key or remove it first",
                acc.name
            )));
        }
        let kp = KeyPair::generate(KeyKind::Account);
        let pk = kp.account_public_key()?;
        let key = match &role {
            Some(r) => SigningKey::Scoped(UserScope {
                key: pk.clone(),
                role: r.clone(),
                template: new.template.clone(),
            }),
            None => SigningKey::Plain(pk.clone()),
        };
        spec.signing_keys.push(key.clone());
        put_seed(&mut tx, &kp, "signing").await?;
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        tx.record(self.event(
            "account.signing_key.add",
            "account",
            &acc.public_key,
            json!({"account": acc.name, "key": pk.to_string(), "role": role, "template": role.as_ref().map(|_| &new.template)}),
        ))
        .await?;
        let users = tx.users(&acc.public_key).await?;
        let view = key_view(&mut tx, &acc, &users, &key).await?;
        tx.commit().await?;
        Ok(SigningKeyAdded {
            signing_key: view,
            warnings,
        })
    }

    /// An account's signing keys, in the account JWT's order.
    pub async fn signing_keys(&self, account: &str) -> Result<Vec<SigningKeyView>> {
        self.need(Scope::Read, "listing account signing keys")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let spec: AccountSpec = from_json(&acc.spec)?;
        let users = tx.users(&acc.public_key).await?;
        let mut out = Vec::new();
        for k in &spec.signing_keys {
            out.push(key_view(&mut tx, &acc, &users, k).await?);
        }
        Ok(out)
    }

    /// Replaces a signing key by a new one (same role and template) and re-issues every
    /// user the old key signed (same user key, new JWT), in one transaction: once the
    /// account is pushed, the old key and every JWT it signed are refused.
    pub async fn rotate_signing_key(
        &self,
        account: &str,
        which: &KeyRef,
    ) -> Result<SigningKeyRotated> {
        self.need(Scope::Write, "rotating an account signing key")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let (at, old) = find_key(&spec, &acc.name, which)?;
        let old = old.clone();
        let kp = KeyPair::generate(KeyKind::Account);
        let pk = kp.account_public_key()?;
        let new = match &old {
            SigningKey::Plain(_) => SigningKey::Plain(pk.clone()),
            SigningKey::Scoped(s) => SigningKey::Scoped(UserScope {
                key: pk.clone(),
                ..s.clone()
            }),
        };
        spec.signing_keys[at] = new.clone();
        put_seed(&mut tx, &kp, "signing").await?;
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        let old_key = old.key().to_string();
        let mut reissued = Vec::new();
        for mut row in tx.users(&acc.public_key).await? {
            if row.signing_key.as_deref() != Some(old_key.as_str()) || row.revoked_at.is_some() {
                continue;
            }
            let spec: UserSpec = from_json(&row.spec)?;
            let upk: UserPublicKey = parse_key(&row.public_key)?;
            let uname = UserName::parse_any_case(&row.name)?;
            let (jwt, signer) =
                sign_user_as(&mut tx, &acc, &upk, &uname, &spec, Some(pk.as_str())).await?;
            row.jwt = jwt;
            row.signing_key = signer;
            row.updated_at = now();
            tx.update_user(&row).await?;
            reissued.push(row.name.clone());
        }
        if tx.has_seed(&old_key).await? {
            tx.delete_seed(&old_key).await?;
        }
        tx.record(self.event(
            "account.signing_key.rotate",
            "account",
            &acc.public_key,
            json!({"account": acc.name, "old_key": old_key, "new_key": pk.to_string(), "reissued": reissued}),
        ))
        .await?;
        let users = tx.users(&acc.public_key).await?;
        let view = key_view(&mut tx, &acc, &users, &new).await?;
        tx.commit().await?;
        Ok(SigningKeyRotated {
            old_key,
            signing_key: view,
            reissued,
        })
    }

    /// Removes a signing key from an account. Refused while users it signed are live:
    /// their JWTs would all be refused at once; rotate the key, or delete them first.
    pub async fn remove_signing_key(
        &self,
        account: &str,
        which: &KeyRef,
    ) -> Result<SigningKeyRemoved> {
        self.need(Scope::Write, "removing an account signing key")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let (at, key) = find_key(&spec, &acc.name, which)?;
        let key = key.clone();
        let signed: Vec<String> = tx
            .users(&acc.public_key)
            .await?
            .into_iter()
            .filter(|u| {
                u.revoked_at.is_none() && u.signing_key.as_deref() == Some(key.key().as_str())
            })
            .map(|u| u.name)
            .collect();
        if !signed.is_empty() {
            return Err(OpsError::Conflict(format!(
                "{which} of account {} signed {} live user(s) ({}): removing it would lock them out; \
                 rotate it (`warden account signing-key rotate {} {}`) to re-issue them, or delete them first",
                acc.name,
                signed.len(),
                signed.join(", "),
                acc.name,
                match which {
                    KeyRef::Key(k) => k.clone(),
                    KeyRef::Role(r) => format!("--role {r}"),
                }
            )));
        }
        spec.signing_keys.remove(at);
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        if tx.has_seed(key.key().as_str()).await? {
            tx.delete_seed(key.key().as_str()).await?;
        }
        let role = match &key {
            SigningKey::Scoped(s) => Some(s.role.clone()),
            SigningKey::Plain(_) => None,
        };
        tx.record(self.event(
            "account.signing_key.remove",
            "account",
            &acc.public_key,
            json!({"account": acc.name, "key": key.key().to_string(), "role": role}),
        ))
        .await?;
        tx.commit().await?;
        Ok(SigningKeyRemoved {
            account: acc.name,
            key: key.key().to_string(),
            role,
        })
    }

    /// Adds a user issued by `role`'s scoped key: no permissions of its own (the server
    /// applies the role's template), `tags` for the template's `{{tag(…)}}`.
    pub async fn add_user_by_role(
        &self,
        account: &str,
        name: &str,
        role: &str,
        tags: Vec<String>,
    ) -> Result<RoleUserAdded> {
        self.need(Scope::Write, "adding a user")?;
        let name = self.settings.naming.user(name)?;
        let role = check_role(role)?;
        let mut spec = UserSpec {
            tags,
            ..UserSpec::default()
        };
        spec.normalize()?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let acc_spec: AccountSpec = from_json(&acc.spec)?;
        let (_, key) = find_key(&acc_spec, &acc.name, &KeyRef::Role(role.clone()))?;
        let scope = match key {
            SigningKey::Scoped(s) => s.clone(),
            SigningKey::Plain(_) => {
                return Err(OpsError::Jwt("role lookup found a plain key".into()));
            }
        };
        let kp = KeyPair::generate(KeyKind::User);
        let pk = kp.user_public_key()?;
        let (jwt, signer) =
            sign_user_as(&mut tx, &acc, &pk, &name, &spec, Some(scope.key.as_str())).await?;
        put_seed(&mut tx, &kp, "user").await?;
        let row = UserRow {
            signing_key: signer,
            ..crate::new_user_row(&acc.public_key, pk.as_str(), name.as_str(), &spec, jwt)?
        };
        tx.insert_user(&row).await.map_err(|e| {
            crate::conflict(e, || {
                format!("user {name} already exists in account {}", acc.name)
            })
        })?;
        tx.record(self.event(
            "user.create",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name, "spec": row.spec, "role": role, "signing_key": scope.key.to_string()}),
        ))
        .await?;
        let mut warnings = Vec::new();
        for line in [ServerLine::V2_9, ServerLine::V2_15] {
            let ctx = Context {
                user_name: name.as_str(),
                user_key: pk.as_str(),
                account_name: &acc.name,
                account_key: &acc.public_key,
                user_tags: &spec.tags,
                account_tags: &acc_spec.tags,
            };
            match template::expand(&scope.template, &ctx, line) {
                Err(e) => warnings.push(format!("nats-server {}: {e}", line.as_str())),
                Ok(x) => warnings.extend(x.dropped.iter().map(|d| {
                    format!(
                        "nats-server {}: {} {} is not granted ({})",
                        line.as_str(),
                        d.list,
                        d.subject,
                        d.why
                    )
                })),
            }
        }
        tx.commit().await?;
        Ok(RoleUserAdded {
            user: user_view(row, &acc, self.sees_creds())?,
            role,
            signing_key: scope.key.to_string(),
            warnings,
        })
    }

    /// What `name` may do on `line`: its own permissions, or its role's template
    /// expanded for it (the account's default permissions when either is empty).
    pub async fn user_permissions(
        &self,
        account: &str,
        name: &str,
        line: ServerLine,
    ) -> Result<EffectivePermissions> {
        self.need(Scope::Read, "reading a user's permissions")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        let row = self.user_row(&mut tx, &acc, name).await?;
        tx.rollback().await?;
        let acc_spec: AccountSpec = from_json(&acc.spec)?;
        let claims: UserClaims = nats_jwt::decode::<nats_jwt::User>(&row.jwt)
            .map_err(|e| OpsError::Jwt(format!("stored JWT of {} unreadable: {e}", row.name)))?;
        let scope = role_of(&acc_spec, row.signing_key.as_deref());
        let (mut limits, dropped, refused) = match &scope {
            None => (Some(claims.nats.limits.clone()), Vec::new(), None),
            Some(s) => {
                let ctx = Context {
                    user_name: &claims.name,
                    user_key: &claims.sub,
                    account_name: &acc.name,
                    account_key: &acc.public_key,
                    user_tags: &claims.nats.tags,
                    account_tags: &acc_spec.tags,
                };
                match template::expand(&s.template, &ctx, line) {
                    Ok(x) => (Some(x.limits), x.dropped, None),
                    Err(e) => (None, Vec::new(), Some(e.to_string())),
                }
            }
        };
        let mut account_defaults = false;
        if let Some(l) = limits.as_mut()
            && l.permissions.is_empty()
            && !acc_spec.default_permissions.is_empty()
        {
            l.permissions = acc_spec.default_permissions.clone();
            account_defaults = true;
        }
        Ok(EffectivePermissions {
            user: row.name,
            account: acc.name,
            signing_key: row.signing_key,
            role: scope.map(|s| s.role),
            server_line: line,
            limits,
            account_defaults,
            dropped,
            connect_refused: refused,
        })
    }

    /// Whether NATS user `name` may publish (or subscribe) to `subject` on `line`, as
    /// the server decides it (a role's template expanded for the user).
    pub async fn explain_user(
        &self,
        account: &str,
        name: &str,
        direction: Direction,
        subject: &Subject,
        line: ServerLine,
    ) -> Result<UserExplanation> {
        let eff = self.user_permissions(account, name, line).await?;
        let (allowed, reason) = match (&eff.limits, &eff.connect_refused) {
            (Some(l), _) => {
                let v = permcheck::check(&l.permissions, direction, subject);
                let why = match (&eff.role, eff.account_defaults) {
                    (_, true) => format!("{} (the account's default permissions)", v.reason),
                    (Some(r), _) => format!("{} (role {r}'s template for this user)", v.reason),
                    (None, _) => v.reason,
                };
                (v.allowed, why)
            }
            (None, Some(why)) => (
                false,
                format!("the server refuses this user's connect: {why}"),
            ),
            (None, None) => (false, "the server refuses this user's connect".to_string()),
        };
        Ok(UserExplanation {
            user: eff.user,
            account: eff.account,
            direction: direction.as_str(),
            subject: subject.to_string(),
            allowed,
            reason,
            role: eff.role,
            server_line: line,
        })
    }

    /// Gives a user a new key: the old one is revoked in the account (its JWTs are
    /// refused once the account is pushed), the user re-issued for the new one by the
    /// same signer. One transaction; the new creds go to the caller.
    pub async fn rotate_user(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(UserRotated, zeroize::Zeroizing<String>)> {
        self.need(Scope::Write, "rotating a user's key")?;
        self.need(Scope::Creds, "a rotated user's new creds")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_row(&mut tx, &op, account).await?;
        let old = self.user_row(&mut tx, &acc, name).await?;
        if old.revoked_at.is_some() {
            return Err(OpsError::Conflict(format!(
                "user {} is revoked; delete it and add a new one",
                old.name
            )));
        }
        if !tx.has_seed(&old.public_key).await? {
            return Err(OpsError::Conflict(format!(
                "user {} is issued for a key whose seed Warden does not hold (the user's own key): \
                 its holder rotates it by registering a new key",
                old.name
            )));
        }
        // The old key's JWTs are refused from now on (never before their iat).
        self.revoke_issued(&mut tx, &op, &mut acc, &old).await?;
        let spec: UserSpec = from_json(&old.spec)?;
        let uname = UserName::parse_any_case(&old.name)?;
        let kp = KeyPair::generate(KeyKind::User);
        let pk = kp.user_public_key()?;
        let (jwt, signer) = sign_user_as(
            &mut tx,
            &acc,
            &pk,
            &uname,
            &spec,
            old.signing_key.as_deref(),
        )
        .await?;
        tx.delete_user(&old.public_key).await?;
        tx.delete_seed(&old.public_key).await?;
        put_seed(&mut tx, &kp, "user").await?;
        let row = UserRow {
            public_key: pk.to_string(),
            jwt,
            signing_key: signer,
            updated_at: now(),
            ..old.clone()
        };
        tx.insert_user(&row).await?;
        tx.record(self.event(
            "user.rotate",
            "user",
            &row.public_key,
            json!({"name": row.name, "account": acc.name, "old_key": old.public_key, "new_key": row.public_key}),
        ))
        .await?;
        let seed = kp.seed();
        let creds = nats_jwt::format_user_creds(&row.jwt, &seed)
            .map_err(|e| OpsError::Jwt(e.to_string()))?;
        tx.commit().await?;
        Ok((
            UserRotated {
                user: user_view(row, &acc, true)?,
                old_key: old.public_key,
            },
            zeroize::Zeroizing::new(creds),
        ))
    }
}
