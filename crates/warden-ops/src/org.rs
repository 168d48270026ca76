//! `warden org`: an organisation described once (units, people) applied as accounts and
//! users, and shown back.
//!
//! The pure part — validation, compilation, the plan — is `warden_core::org`. This
//! module reads spec files (YAML or JSON), loads what the store holds into plain data,
//! and executes a plan in ONE transaction with the same building blocks as every other
//! operation (`create_account`, `create_user`, `resign_account`, `revoke_in_account`),
//! so the ledger and the outbox see an organisation change like any other. A plan that
//! is empty (and a spec identical to the one stored) writes nothing at all.
//!
//! A unit's shares (exports, imports, roles) are the account's exports, imports and
//! scoped signing keys: a private export imported by another unit gets an activation
//! token signed by the exporting account's identity key, a role gets a scoped signing
//! key (its seed sealed like any other), and a person with a role becomes a user issued
//! by that key with an empty spec (the role's template applies).
//!
//! Public entry points for the CLI, HTTP and NATS layers: [`Warden::org_check`],
//! [`Warden::org_apply`], [`Warden::org_show`], and [`parse_spec`] for file contents.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use nats_jwt::{
    AccountPublicKey, Export, ExportType, Import, KeyKind, KeyPair, Seed, SigningKey,
    UserPermissionLimits, UserPublicKey, UserScope,
};
use serde::Serialize;
use serde_json::json;
use warden_core::compile::{compile_user, refuse_blocking};
use warden_core::org::{
    Action, Change, CurrentAccount, CurrentOrg, CurrentUser, DesiredOrg, Kind, OrgError, OrgSpec,
    Organization, PersonSpec, Role, ShareImport, ShareRole, Shares, UnitType, compile, plan,
};
use warden_core::{AccountSpec, UserName, UserSpec};
use warden_store::org::{OrgPersonRow, OrgSpecRow, OrgUnitRow, PERSON_ACTIVE, PERSON_REVOKED};
use warden_store::{AccountRow, OperatorRow, StoreError, Tx, UserRow, Zeroizing};

use crate::device::make_on_cores;
use crate::{
    OpsError, Record, Result, Scope, TOPIC_ACCOUNT_DELETE, Warden, from_json, new_user_row, now,
    parse_key, put_seed, to_json,
};

/// One line of a plan, as shown to people and scripts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrgPlanStep {
    /// `create`, `update`, `delete` or `revoke`.
    pub action: Action,
    /// `account`, `user` or `permissions`.
    pub kind: Kind,
    /// `ACCOUNT` or `ACCOUNT/user`.
    pub name: String,
    /// Why.
    pub detail: String,
}

/// What `org apply` decided (and, unless a dry run, did).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrgPlan {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether anything was written.
    pub applied: bool,
    /// The steps, in the order they run.
    pub steps: Vec<OrgPlanStep>,
}

/// A unit and its account.
#[derive(Clone, Debug, Serialize)]
pub struct OrgUnitView {
    /// Unit id.
    pub id: String,
    /// Unit name.
    pub name: String,
    /// Unit type.
    #[serde(rename = "type")]
    pub unit_type: UnitType,
    /// Parent unit id.
    pub parent: Option<String>,
    /// Account name (None if not applied yet).
    pub account: Option<String>,
    /// Account public key.
    pub public_key: Option<String>,
    /// Users in the account.
    pub users: usize,
}

/// A person and its user.
#[derive(Clone, Debug, Serialize)]
pub struct OrgPersonView {
    /// Person id.
    pub id: String,
    /// Name (None for a person no longer in the spec).
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Unit ids.
    pub units: Vec<String>,
    /// Active in the spec.
    pub active: bool,
    /// Whether the person is in the spec last applied.
    pub in_spec: bool,
    /// Account of its user.
    pub account: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// User public key.
    pub public_key: Option<String>,
    /// `active`, `revoked`, or `-` (no user: not a Service person).
    pub status: String,
}

/// `warden org show`.
#[derive(Clone, Debug, Serialize)]
pub struct OrgView {
    /// The organisation, if a spec has been applied.
    pub organization: Option<Organization>,
    /// When it was applied (unix seconds).
    pub applied_at: Option<i64>,
    /// Units.
    pub units: Vec<OrgUnitView>,
    /// People.
    pub people: Vec<OrgPersonView>,
}

/// Parses a spec file's text: JSON when `path` ends in `.json` (or, with another
/// extension, when the text starts with `{`), YAML otherwise.
pub fn parse_spec(path: &Path, text: &str) -> std::result::Result<OrgSpec, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let json = match ext.as_deref() {
        Some("json") => true,
        Some("yaml" | "yml") => false,
        _ => text.trim_start().starts_with('{'),
    };
    if json {
        serde_json::from_str(text).map_err(|e| format!("{} (JSON): {e}", path.display()))
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| format!("{} (YAML): {e}", path.display()))
    }
}

/// What the store holds about the organisation, in the plain data the planner reads.
struct Loaded {
    current: CurrentOrg,
    people: BTreeMap<String, OrgPersonRow>,
}

impl Warden {
    /// Validates `spec` under this database's naming policy (every problem at once).
    pub fn org_check(&self, spec: &OrgSpec) -> std::result::Result<DesiredOrg, OrgError> {
        compile(spec, &self.settings.naming)
    }

    /// Plans the changes that make Warden match `spec` and, unless `dry_run`, applies
    /// them in one transaction (accounts, users, revocations, ledger events, outbox rows
    /// and the bindings). An invalid spec is [`OpsError::Invalid`] listing every problem;
    /// a plan that would take over an unmanaged account, or delete an account holding
    /// users the organisation does not manage, is [`OpsError::Conflict`]. Nothing is
    /// written in either case, nor when the plan is empty and the spec unchanged.
    pub async fn org_apply(&self, spec: &OrgSpec, dry_run: bool) -> Result<OrgPlan> {
        self.need(Scope::Write, "applying an organisation")?;
        self.org_apply_with_progress(spec, dry_run, &crate::progress::Quiet)
            .await
    }

    /// [`Warden::org_apply`], advancing `progress` by one per step applied (its length
    /// is set to the number of steps).
    pub async fn org_apply_with_progress(
        &self,
        spec: &OrgSpec,
        dry_run: bool,
        progress: &dyn crate::progress::Progress,
    ) -> Result<OrgPlan> {
        self.need(Scope::Write, "applying an organisation")?;
        let desired = self
            .org_check(spec)
            .map_err(|e| OpsError::Invalid(e.to_string()))?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let loaded = load(&mut tx, &op).await?;
        let steps =
            plan(&desired, &loaded.current).map_err(|e| OpsError::Conflict(e.to_string()))?;
        let spec_json = to_json(spec)?;
        let spec_changed = tx.org_spec().await?.map(|s| s.spec) != Some(spec_json.clone());
        let view = OrgPlan {
            dry_run,
            applied: !dry_run && (!steps.is_empty() || spec_changed),
            steps: steps
                .iter()
                .map(|s| OrgPlanStep {
                    action: s.action,
                    kind: s.kind,
                    name: s.name.clone(),
                    detail: s.detail.clone(),
                })
                .collect(),
        };
        if !view.applied {
            tx.rollback().await?;
            return Ok(view);
        }
        progress.start(steps.len() as u64, "apply");
        let mut i = 0;
        while i < steps.len() {
            // A run of user creations (the plan lists them together) is issued as one
            // batch: keys made and JWTs signed on every core, rows written a few
            // statements per thousand. Runs are never merged across other steps, so
            // the plan's order (a rename freeing a name before a creation takes it)
            // holds.
            let run = steps[i..]
                .iter()
                .take_while(|s| matches!(s.change, Change::CreateUser { .. }))
                .count();
            // Likewise a run of revocations: each account is re-signed once for all
            // the keys it revokes, not once per key.
            let revocations = steps[i..]
                .iter()
                .take_while(|s| matches!(s.change, Change::RevokeUser { .. }))
                .count();
            if run > 0 {
                let changes: Vec<&Change> = steps[i..i + run].iter().map(|s| &s.change).collect();
                self.org_create_users(&mut tx, &changes).await?;
                progress.advance(run as u64);
                i += run;
            } else if revocations > 1 {
                let changes: Vec<&Change> = steps[i..i + revocations]
                    .iter()
                    .map(|s| &s.change)
                    .collect();
                self.org_revoke_users(&mut tx, &op, &changes).await?;
                progress.advance(revocations as u64);
                i += revocations;
            } else {
                self.org_step(&mut tx, &op, &loaded, &steps[i].change)
                    .await?;
                progress.advance(1);
                i += 1;
            }
        }
        progress.finish();
        let t = now();
        tx.set_org_spec(&OrgSpecRow {
            name: spec.organization.name.trim().to_string(),
            spec: spec_json,
            applied_at: t,
        })
        .await?;
        let count = |a: Action| steps.iter().filter(|s| s.action == a).count();
        tx.record(
            self.event(
                "org.apply",
                "organization",
                spec.organization
                    .id
                    .as_deref()
                    .unwrap_or(spec.organization.name.trim()),
                json!({
                    "name": spec.organization.name.trim(),
                    "created": count(Action::Create),
                    "updated": count(Action::Update),
                    "deleted": count(Action::Delete),
                    "revoked": count(Action::Revoke),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    async fn org_step(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        loaded: &Loaded,
        change: &Change,
    ) -> Result<()> {
        let t = now();
        match change {
            Change::CreateAccount {
                unit_id,
                name,
                description,
            } => {
                let spec = AccountSpec {
                    description: Some(description.clone()),
                    ..AccountSpec::default()
                };
                let row = self
                    .create_account(tx, op, KeyPair::generate(KeyKind::Account), name, spec)
                    .await?;
                tx.put_org_unit(&OrgUnitRow {
                    unit_id: unit_id.clone(),
                    account_key: row.public_key,
                    updated_at: t,
                })
                .await?;
            }
            Change::UpdateAccount {
                public_key,
                name,
                description,
                ..
            } => {
                let mut row = account(tx, public_key).await?;
                let before = json!({"name": row.name, "spec": row.spec});
                let mut spec: AccountSpec = from_json(&row.spec)?;
                spec.description = Some(description.clone());
                row.name = name.to_string();
                self.resign_account(tx, op, &mut row, spec).await?;
                tx.record(self.event(
                    "account.edit",
                    "account",
                    &row.public_key,
                    json!({"name": row.name, "before": before, "after": row.spec}),
                ))
                .await?;
            }
            Change::SetShares {
                unit_id, shares, ..
            } => {
                let units: BTreeMap<String, String> = tx
                    .org_units()
                    .await?
                    .into_iter()
                    .map(|u| (u.unit_id, u.account_key))
                    .collect();
                let key = units
                    .get(unit_id)
                    .ok_or_else(|| OpsError::Conflict(format!("unit {unit_id} has no account")))?;
                let mut row = account(tx, key).await?;
                let before = json!({"name": row.name, "spec": row.spec});
                let mut spec: AccountSpec = from_json(&row.spec)?;
                let importer: AccountPublicKey = parse_key(&row.public_key)?;
                spec.exports = shares.exports.clone();
                let mut imports = Vec::with_capacity(shares.imports.len());
                for i in &shares.imports {
                    let from = units.get(&i.unit_id).ok_or_else(|| {
                        OpsError::Conflict(format!("unit {} has no account", i.unit_id))
                    })?;
                    let kind = if i.service {
                        ExportType::Service
                    } else {
                        ExportType::Stream
                    };
                    let mut imp = Import::new(i.subject.clone(), parse_key(from)?, kind);
                    imp.name = Some(i.name.clone());
                    imp.local_subject = i.local_subject.clone();
                    if i.private {
                        // The organisation's exports carry no revocations: the
                        // activation is issued now.
                        let export = Export::new(i.subject.clone(), kind);
                        let (token, _) = crate::exports::sign_activation(
                            tx,
                            from,
                            &export,
                            &importer,
                            i.subject.clone(),
                            None,
                        )
                        .await?;
                        imp.token = Some(token);
                    }
                    imports.push(imp);
                }
                spec.imports = imports;
                // Plain signing keys are not the organisation's; scoped ones are its
                // roles: kept (same key, the template of the spec), added or removed.
                let old = std::mem::take(&mut spec.signing_keys);
                let mut kept_scoped = BTreeMap::new();
                for k in old {
                    match k {
                        SigningKey::Scoped(s) => {
                            kept_scoped.insert(s.role.clone(), s.key);
                        }
                        plain => spec.signing_keys.push(plain),
                    }
                }
                for r in &shares.roles {
                    let key = match kept_scoped.remove(&r.name) {
                        Some(k) => k,
                        None => {
                            let kp = KeyPair::generate(KeyKind::Account);
                            put_seed(tx, &kp, "account").await?;
                            kp.account_public_key()?
                        }
                    };
                    spec.signing_keys.push(SigningKey::Scoped(UserScope {
                        key,
                        role: r.name.clone(),
                        template: r.template.clone(),
                    }));
                }
                for gone in kept_scoped.values() {
                    if tx.has_seed(gone.as_str()).await? {
                        tx.delete_seed(gone.as_str()).await?;
                    }
                }
                self.resign_account(tx, op, &mut row, spec).await?;
                tx.record(self.event(
                    "account.edit",
                    "account",
                    &row.public_key,
                    json!({"name": row.name, "before": before, "after": row.spec}),
                ))
                .await?;
            }
            Change::DeleteAccount {
                unit_id,
                public_key,
            } => {
                let row = account(tx, public_key).await?;
                let users = tx.users(public_key).await?;
                for u in &users {
                    tx.delete_seed(&u.public_key).await?;
                }
                tx.delete_account(public_key).await?;
                tx.delete_seed(public_key).await?;
                tx.record(self.event(
                    "account.delete",
                    "account",
                    public_key,
                    json!({"name": row.name, "users": users.iter().map(|u| &u.name).collect::<Vec<_>>()}),
                ))
                .await?;
                tx.enqueue(TOPIC_ACCOUNT_DELETE, public_key).await?;
                tx.delete_org_unit(unit_id).await?;
                let gone: BTreeSet<&str> = users.iter().map(|u| u.public_key.as_str()).collect();
                for p in loaded.people.values() {
                    if gone.contains(p.user_key.as_str()) {
                        tx.delete_org_person(&p.person_id).await?;
                    }
                }
            }
            Change::CreateUser { .. } => self.org_create_users(tx, &[change]).await?,
            Change::UpdateUser {
                public_key,
                name,
                spec,
                role,
                ..
            } => {
                let mut row = tx
                    .user(public_key)
                    .await?
                    .ok_or_else(|| OpsError::NotFound(format!("user {public_key}")))?;
                let acc = account(tx, &row.account).await?;
                let before = json!({"name": row.name, "spec": row.spec});
                let pk: UserPublicKey = parse_key(public_key)?;
                let (jwt, signer) =
                    sign_org_user(tx, &acc, &pk, name, spec, role.as_deref()).await?;
                row.jwt = jwt;
                row.signing_key = signer;
                row.name = name.to_string();
                row.spec = to_json(spec)?;
                row.updated_at = t;
                tx.update_user(&row).await?;
                tx.record(self.event(
                    "user.edit",
                    "user",
                    public_key,
                    json!({"name": row.name, "account": acc.name, "before": before, "after": row.spec}),
                ))
                .await?;
            }
            Change::RevokeUser { .. } => {
                self.org_revoke_users(tx, op, &[change]).await?;
            }
        }
        Ok(())
    }

    /// Revokes the users of `revokes` (every one a [`Change::RevokeUser`]) as one batch:
    /// the keys of each account are added to its revocations together and the account
    /// re-signed (and queued for the push) once; each user gets its `user.revoke` event,
    /// and each person still bound to the revoked key is marked revoked. A single
    /// revocation ([`Self::org_step`]) is a batch of one.
    async fn org_revoke_users(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        revokes: &[&Change],
    ) -> Result<()> {
        let t = now();
        // Users to revoke, grouped by account in the order their first one comes.
        let mut by_account: Vec<(String, Vec<(UserRow, &str)>)> = Vec::new();
        for change in revokes {
            let Change::RevokeUser {
                person_id,
                public_key,
            } = change
            else {
                continue;
            };
            let row = tx
                .user(public_key)
                .await?
                .ok_or_else(|| OpsError::NotFound(format!("user {public_key}")))?;
            if row.revoked_at.is_some() {
                continue;
            }
            match by_account.iter_mut().find(|(k, _)| *k == row.account) {
                Some((_, users)) => users.push((row, person_id.as_str())),
                None => by_account.push((row.account.clone(), vec![(row, person_id.as_str())])),
            }
        }
        for (key, users) in by_account {
            let mut acc = account(tx, &key).await?;
            let mut spec: AccountSpec = from_json(&acc.spec)?;
            let at = now();
            for (row, _) in &users {
                let entry = spec.revocations.entry(row.public_key.clone()).or_insert(at);
                *entry = (*entry).max(at);
            }
            self.resign_account(tx, op, &mut acc, spec).await?;
            for (mut row, person_id) in users {
                row.revoked_at = Some(at);
                row.updated_at = at;
                tx.update_user(&row).await?;
                tx.record(self.event(
                    "user.revoke",
                    "user",
                    &row.public_key,
                    json!({"name": row.name, "account": acc.name, "revoked_at": at, "person": person_id}),
                ))
                .await?;
            }
        }
        // A moved person is already bound to its new user: leave that binding.
        let people = tx.org_people().await?;
        for change in revokes {
            let Change::RevokeUser {
                person_id,
                public_key,
            } = change
            else {
                continue;
            };
            if let Some(b) = people
                .iter()
                .find(|p| &p.person_id == person_id && &p.user_key == public_key)
            {
                let mut b = b.clone();
                b.status = PERSON_REVOKED.into();
                b.updated_at = t;
                tx.put_org_person(&b).await?;
            }
        }
        Ok(())
    }

    /// Creates the users of `creates` (every one a [`Change::CreateUser`]) as one batch:
    /// the signer of each account and role read once, keys generated and JWTs signed on
    /// the pool ([`issue_on_cores`], results in plan order), then the sealed seeds, the
    /// users and the person bindings written with multi-row statements
    /// ([`Tx::insert_org_users`], [`Tx::put_org_people`]), and one ledger
    /// event per account and [`BATCH_EVENT_USERS`] users (`org.users.create`, naming
    /// each person, user, key and role — never a seed). A revoked user a reactivated
    /// person replaces is deleted first (its key stays in the account's revocations).
    /// Any failure fails the caller's transaction: nothing of the batch remains.
    async fn org_create_users(&self, tx: &mut Tx<'_>, creates: &[&Change]) -> Result<()> {
        let units: BTreeMap<String, String> = tx
            .org_units()
            .await?
            .into_iter()
            .map(|u| (u.unit_id, u.account_key))
            .collect();
        let mut accounts: BTreeMap<String, AccountRow> = BTreeMap::new();
        let mut signers: BTreeMap<(String, Option<String>), Arc<OrgSigner>> = BTreeMap::new();
        let mut jobs = Vec::with_capacity(creates.len());
        let mut replaced = Vec::with_capacity(creates.len());
        for change in creates {
            let Change::CreateUser {
                person_id,
                unit_id,
                name,
                spec,
                role,
                replaces,
                ..
            } = change
            else {
                return Err(OpsError::Conflict(
                    "internal: a user batch holds another change".into(),
                ));
            };
            let key = units
                .get(unit_id)
                .ok_or_else(|| OpsError::Conflict(format!("unit {unit_id} has no account")))?;
            if !accounts.contains_key(key) {
                let row = account(tx, key).await?;
                accounts.insert(key.clone(), row);
            }
            let acc = &accounts[key];
            let mut old = None;
            if let Some(o) = replaces
                && let Some(row) = tx.user(o).await?
                && row.revoked_at.is_some()
            {
                // The revoked user gives its name to the new key; its revocation stays
                // in the account JWT.
                tx.delete_user(o).await?;
                tx.delete_seed(o).await?;
                old = Some(o.clone());
            }
            replaced.push(old);
            let slot = (key.clone(), role.clone());
            let signer = match signers.get(&slot) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(OrgSigner::load(tx, acc, role.as_deref()).await?);
                    signers.insert(slot, s.clone());
                    s
                }
            };
            let mut spec = spec.clone();
            if role.is_none() {
                // As every user created by the account key: text fields checked here.
                spec.normalize()?;
            } else if !spec_is_plain(&spec) {
                return Err(OpsError::invalid(format!(
                    "user {name} is issued by role {:?}: its permissions and limits come from the role's template",
                    role.as_deref().unwrap_or_default()
                )));
            }
            jobs.push(OrgUserJob {
                person_id: person_id.clone(),
                name: name.clone(),
                spec,
                signer,
            });
        }
        let at = now();
        let jobs = Arc::new(jobs);
        let issued = issue_on_cores(jobs.clone(), at).await?;
        let (seeds, rows): (Vec<Seed>, Vec<UserRow>) = issued.into_iter().unzip();
        // Per account, in the order the plan first names it; plan order within.
        let mut order: Vec<&str> = Vec::new();
        for row in &rows {
            if !order.contains(&row.account.as_str()) {
                order.push(&row.account);
            }
        }
        for key in &order {
            let (mine, keys): (Vec<UserRow>, Vec<(&str, &str)>) = rows
                .iter()
                .zip(&seeds)
                .filter(|(row, _)| row.account == *key)
                .map(|(row, seed)| (row.clone(), (row.public_key.as_str(), seed.expose())))
                .unzip();
            tx.insert_org_users(key, &mine, &keys)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { what } => OpsError::Conflict(format!(
                        "{what} already exists (a user the organisation does not manage?); nothing was applied"
                    )),
                    other => OpsError::Store(other),
                })?;
        }
        drop(seeds);
        let people: Vec<OrgPersonRow> = jobs
            .iter()
            .zip(&rows)
            .map(|(j, row)| OrgPersonRow {
                person_id: j.person_id.clone(),
                user_key: row.public_key.clone(),
                status: PERSON_ACTIVE.into(),
                updated_at: at,
            })
            .collect();
        tx.put_org_people(&people).await?;
        // The ledger: per account, in plan order, in events small enough for the change
        // stream (a NATS message).
        let mut by_account: Vec<(&str, Vec<serde_json::Value>)> = Vec::new();
        for ((job, row), old) in jobs.iter().zip(&rows).zip(&replaced) {
            let mut item = json!({
                "person": job.person_id,
                "name": row.name,
                "key": row.public_key,
            });
            if let Some(r) = &job.signer.role {
                item["role"] = json!(r);
            }
            if let Some(o) = old {
                item["replaces"] = json!(o);
            }
            match by_account.iter_mut().find(|(k, _)| *k == row.account) {
                Some((_, items)) => items.push(item),
                None => by_account.push((&row.account, vec![item])),
            }
        }
        for (key, items) in by_account {
            let name = &accounts[key].name;
            let parts = items.len().div_ceil(BATCH_EVENT_USERS);
            for (part, chunk) in items.chunks(BATCH_EVENT_USERS).enumerate() {
                tx.record(self.event(
                    "org.users.create",
                    "account",
                    key,
                    json!({
                        "account": name,
                        "part": part + 1,
                        "parts": parts,
                        "count": chunk.len(),
                        "users": chunk,
                    }),
                ))
                .await?;
            }
        }
        Ok(())
    }

    /// The organisation last applied, its units with their accounts and its people with
    /// their users.
    pub async fn org_show(&self) -> Result<OrgView> {
        self.need(Scope::Read, "reading the organisation")?;
        let store = &self.store;
        let stored = store.org_spec().await?;
        let spec: Option<OrgSpec> = stored.as_ref().map(|s| from_json(&s.spec)).transpose()?;
        let units: BTreeMap<String, String> = store
            .org_units()
            .await?
            .into_iter()
            .map(|u| (u.unit_id, u.account_key))
            .collect();
        let people: BTreeMap<String, OrgPersonRow> = store
            .org_people()
            .await?
            .into_iter()
            .map(|p| (p.person_id.clone(), p))
            .collect();
        let mut unit_views = Vec::new();
        let mut person_views = Vec::new();
        if let Some(spec) = &spec {
            for u in &spec.units {
                let acc = match units.get(u.id.trim()) {
                    Some(k) => store.account(k).await?,
                    None => None,
                };
                let users = match &acc {
                    Some(a) => store.users(&a.public_key).await?.len(),
                    None => 0,
                };
                unit_views.push(OrgUnitView {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    unit_type: u.unit_type,
                    parent: u.parent.clone(),
                    account: acc.as_ref().map(|a| a.name.clone()),
                    public_key: acc.map(|a| a.public_key),
                    users,
                });
            }
        }
        let in_spec: BTreeSet<&str> = spec
            .iter()
            .flat_map(|s| s.people.iter().map(|p| p.id.trim()))
            .collect();
        if let Some(spec) = &spec {
            for p in &spec.people {
                person_views.push(person_view(store, &people, p.id.trim(), Some(p)).await?);
            }
        }
        for id in people.keys() {
            if !in_spec.contains(id.as_str()) {
                person_views.push(person_view(store, &people, id, None).await?);
            }
        }
        Ok(OrgView {
            organization: spec.map(|s| s.organization),
            applied_at: stored.map(|s| s.applied_at),
            units: unit_views,
            people: person_views,
        })
    }
}

async fn person_view(
    store: &warden_store::Store,
    people: &BTreeMap<String, OrgPersonRow>,
    id: &str,
    p: Option<&PersonSpec>,
) -> Result<OrgPersonView> {
    let binding = people.get(id);
    let (mut account, mut user, mut key) = (None, None, None);
    if let Some(b) = binding
        && let Some(row) = store.user(&b.user_key).await?
    {
        account = store.account(&row.account).await?.map(|a| a.name);
        user = Some(row.name);
        key = Some(row.public_key);
    }
    Ok(OrgPersonView {
        id: id.to_string(),
        name: p.map(|p| p.name.clone()),
        email: p.and_then(|p| p.email.clone()),
        roles: p.map(|p| p.roles.clone()).unwrap_or_default(),
        units: p.map(|p| p.units.clone()).unwrap_or_default(),
        active: p.is_some_and(|p| p.active),
        in_spec: p.is_some(),
        account,
        user,
        public_key: key,
        status: binding.map_or_else(|| "-".to_string(), |b| b.status.clone()),
    })
}

/// A user JWT signed by the account's identity key (`role` None) or by the scoped
/// signing key of `role`, through the same signing as every other user
/// ([`crate::signing_keys::sign_user_as`]: a role's user signed empty, with
/// `issuer_account`). Returns the JWT and the signing key used, if not the identity key.
async fn sign_org_user(
    tx: &mut Tx<'_>,
    acc: &AccountRow,
    pk: &UserPublicKey,
    name: &UserName,
    spec: &UserSpec,
    role: Option<&str>,
) -> Result<(String, Option<String>)> {
    let key = match role {
        None => None,
        Some(role) => Some(role_key(acc, &from_json(&acc.spec)?, role)?),
    };
    crate::signing_keys::sign_user_as(tx, acc, pk, name, spec, key.as_deref()).await
}

/// The public key of `role`'s scoped signing key in account `acc` (whose spec is
/// `acc_spec`); a conflict when the account has no such role.
fn role_key(acc: &AccountRow, acc_spec: &AccountSpec, role: &str) -> Result<String> {
    acc_spec
        .signing_keys
        .iter()
        .find_map(|k| match k {
            SigningKey::Scoped(s) if s.role == role => Some(s.key.to_string()),
            _ => None,
        })
        .ok_or_else(|| OpsError::Conflict(format!("account {} has no role {role}", acc.name)))
}

/// Users named in one `org.users.create` ledger event: about 150 bytes each, so an
/// event stays far below the 1 MiB a NATS message (the change stream) may carry.
pub const BATCH_EVENT_USERS: usize = 1_000;

/// What signs the users of one account (its identity key) or of one of its roles (the
/// role's scoped key, with `issuer_account`), read from the store once per batch so the
/// pool signs without it. The same rules as [`crate::signing_keys::sign_user_as`].
struct OrgSigner {
    account_key: String,
    /// The account, for `issuer_account` when a role's key signs.
    issuer_account: Option<AccountPublicKey>,
    /// The role's key (stored in the user row), None for the identity key.
    signing_key: Option<String>,
    role: Option<String>,
    key_pair: KeyPair,
    revocations: BTreeMap<String, i64>,
}

impl OrgSigner {
    async fn load(tx: &mut Tx<'_>, acc: &AccountRow, role: Option<&str>) -> Result<OrgSigner> {
        let acc_spec: AccountSpec = from_json(&acc.spec)?;
        let (issuer_account, signing_key) = match role {
            None => (None, None),
            Some(role) => {
                let key = role_key(acc, &acc_spec, role)?;
                if !tx.has_seed(&key).await? {
                    return Err(OpsError::Conflict(format!(
                        "the seed of role {role:?}'s key {key} is not held by Warden: rotate the key \
                         (`warden account signing-key rotate {} --role {role}`) to issue its users",
                        acc.name
                    )));
                }
                (Some(parse_key(&acc.public_key)?), Some(key))
            }
        };
        let seed_of = signing_key.as_deref().unwrap_or(&acc.public_key);
        let key_pair = KeyPair::from_seed(&tx.seed(seed_of).await?)?;
        Ok(OrgSigner {
            account_key: acc.public_key.clone(),
            issuer_account,
            signing_key,
            role: role.map(str::to_string),
            key_pair,
            revocations: acc_spec.revocations,
        })
    }
}

/// One user of a batch, before its key exists.
struct OrgUserJob {
    person_id: String,
    name: UserName,
    spec: UserSpec,
    signer: Arc<OrgSigner>,
}

/// Whether a user spec says nothing a role's template would have to say (the only
/// specs a role's user may have).
fn spec_is_plain(spec: &UserSpec) -> bool {
    let l = spec.to_claims();
    l == UserPermissionLimits::default() || l == UserPermissionLimits::unlimited()
}

/// A new user key: its public key and seed. The key signs nothing here, so nkeys makes
/// it directly, with one scalar multiplication ([`KeyPair::generate`] derives the public
/// key three times, which tripled the cost of a batch's keys).
fn new_user_key() -> Result<(UserPublicKey, Seed)> {
    let kp = nkeys::KeyPair::new(nkeys::KeyPairType::User);
    let text = Zeroizing::new(
        kp.seed()
            .map_err(|e| OpsError::Jwt(format!("encoding a new user seed: {e}")))?,
    );
    Ok((parse_key(&kp.public_key())?, Seed::parse(&text)?))
}

/// A new key for `job` (its seed) and its user row, the JWT signed by the job's signer.
fn issue_org_user(job: &OrgUserJob, at: i64) -> Result<(Seed, UserRow)> {
    let (pk, seed) = new_user_key()?;
    let s = &job.signer;
    let mut claims = compile_user(&pk, &job.name, &job.spec, s.issuer_account.as_ref());
    if s.role.is_some() {
        // A role's user is signed empty: the role's template is its permissions.
        claims.nats.limits = UserPermissionLimits::default();
    }
    refuse_blocking(claims.validate(at))?;
    // After any revocation of the key (never, for a fresh one), so the JWT is accepted.
    let iat = s.revocations.get(pk.as_str()).map_or(at, |t| at.max(t + 1));
    let jwt = claims.encode_at(&s.key_pair, iat)?;
    let mut row = new_user_row(
        &s.account_key,
        pk.as_str(),
        job.name.as_str(),
        &job.spec,
        jwt,
    )?;
    row.signing_key = s.signing_key.clone();
    Ok((seed, row))
}

/// Issues every job on every core ([`make_on_cores`]); the results in the jobs' order.
async fn issue_on_cores(jobs: Arc<Vec<OrgUserJob>>, at: i64) -> Result<Vec<(Seed, UserRow)>> {
    let count = jobs.len();
    make_on_cores(0..count, "issuing users", move |i| {
        issue_org_user(&jobs[i], at)
    })
    .await
}

/// How the organisation sees an account's exports, imports and scoped signing keys;
/// `units` maps account keys to the units bound to them.
fn shares_of(spec: &AccountSpec, units: &BTreeMap<String, String>) -> Shares {
    let mut exports = spec.exports.clone();
    exports.sort_by(|a, b| a.subject.as_str().cmp(b.subject.as_str()));
    let mut imports: Vec<ShareImport> = spec
        .imports
        .iter()
        .map(|i| ShareImport {
            unit_id: units.get(i.account.as_str()).cloned().unwrap_or_default(),
            name: i.name.clone().unwrap_or_default(),
            subject: i.subject.clone(),
            local_subject: i.local_subject.clone(),
            service: i.import_type == ExportType::Service,
            private: i.token.as_deref().is_some_and(|t| !t.is_empty()),
        })
        .collect();
    imports.sort();
    let mut roles: Vec<ShareRole> = spec
        .signing_keys
        .iter()
        .filter_map(|k| match k {
            SigningKey::Scoped(s) => Some(ShareRole {
                name: s.role.clone(),
                template: s.template.clone(),
            }),
            SigningKey::Plain(_) => None,
        })
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Shares {
        exports,
        imports,
        roles,
    }
}

async fn account(tx: &mut Tx<'_>, key: &str) -> Result<AccountRow> {
    tx.account(key)
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("account {key}")))
}

/// Reads the bindings and what they point at. A binding whose account or user was
/// deleted by hand counts as absent (the plan creates it again). The users of the bound
/// accounts are read one account at a time and each account spec decoded once, so
/// loading an organisation of thousands of people costs a few queries, not several per
/// person.
async fn load(tx: &mut Tx<'_>, op: &OperatorRow) -> Result<Loaded> {
    let mut current = CurrentOrg::default();
    let people: BTreeMap<String, OrgPersonRow> = tx
        .org_people()
        .await?
        .into_iter()
        .map(|p| (p.person_id.clone(), p))
        .collect();
    let bound_users: BTreeSet<&str> = people.values().map(|p| p.user_key.as_str()).collect();
    let mut bound_accounts = BTreeSet::new();
    let unit_rows = tx.org_units().await?;
    let unit_of: BTreeMap<String, String> = unit_rows
        .iter()
        .map(|u| (u.account_key.clone(), u.unit_id.clone()))
        .collect();
    // Accounts read so far (with their specs), and the users of the bound ones.
    let mut accounts: BTreeMap<String, (AccountRow, AccountSpec)> = BTreeMap::new();
    let mut users: BTreeMap<String, UserRow> = BTreeMap::new();
    for u in unit_rows {
        let Some(acc) = tx.account(&u.account_key).await? else {
            continue;
        };
        let spec: AccountSpec = from_json(&acc.spec)?;
        let mut unmanaged = Vec::new();
        for r in tx.users(&acc.public_key).await? {
            if r.revoked_at.is_none() && !bound_users.contains(r.public_key.as_str()) {
                unmanaged.push(r.name.clone());
            }
            users.insert(r.public_key.clone(), r);
        }
        bound_accounts.insert(acc.public_key.clone());
        current.accounts.push(CurrentAccount {
            unit_id: u.unit_id,
            public_key: acc.public_key.clone(),
            name: acc.name.clone(),
            shares: shares_of(&spec, &unit_of),
            description: spec.description.clone(),
            unmanaged_users: unmanaged,
        });
        accounts.insert(acc.public_key.clone(), (acc, spec));
    }
    for p in people.values() {
        // A user outside the bound accounts (moved there by hand) is read on its own.
        let row = match users.remove(&p.user_key) {
            Some(r) => r,
            None => match tx.user(&p.user_key).await? {
                Some(r) => r,
                None => continue,
            },
        };
        if !accounts.contains_key(&row.account) {
            let Some(acc) = tx.account(&row.account).await? else {
                continue;
            };
            let spec: AccountSpec = from_json(&acc.spec)?;
            accounts.insert(acc.public_key.clone(), (acc, spec));
        }
        let (acc, acc_spec) = &accounts[&row.account];
        let role = row.signing_key.as_deref().and_then(|k| {
            acc_spec.signing_keys.iter().find_map(|s| match s {
                SigningKey::Scoped(s) if s.key.as_str() == k => Some(s.role.clone()),
                _ => None,
            })
        });
        current.users.push(CurrentUser {
            role,
            person_id: p.person_id.clone(),
            public_key: row.public_key,
            account_key: acc.public_key.clone(),
            account: acc.name.clone(),
            name: row.name,
            spec: from_json::<UserSpec>(&row.spec)?,
            revoked: p.status == PERSON_REVOKED || row.revoked_at.is_some(),
        });
    }
    current.other_accounts = tx
        .accounts(&op.public_key)
        .await?
        .into_iter()
        .filter(|a| !bound_accounts.contains(&a.public_key))
        .map(|a| a.name)
        .collect();
    Ok(Loaded { current, people })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_parse_by_extension_or_content() {
        let yaml = "organization:\n  name: acme\nunits:\n  - id: a\n    name: A\n";
        let json = r#"{"organization":{"name":"acme"},"units":[{"id":"a","name":"A"}]}"#;
        let a = parse_spec(Path::new("x.yaml"), yaml).unwrap();
        let b = parse_spec(Path::new("x.json"), json).unwrap();
        let c = parse_spec(Path::new("x.spec"), json).unwrap();
        let d = parse_spec(Path::new("x"), yaml).unwrap();
        assert_eq!(a, b);
        assert_eq!(c, d);
        let err = parse_spec(Path::new("x.json"), yaml).unwrap_err();
        assert!(err.contains("x.json (JSON)"), "{err}");
        let err =
            parse_spec(Path::new("x.yml"), "organization: {name: a}\nunitz: []\n").unwrap_err();
        assert!(err.contains("unitz"), "{err}");
    }
}
