//! Identity governance operations: directory users, roles
//! and tasks; proposals that the right people confirm or reject; and compiling a
//! directory user's roles into a NATS user per account.
//!
//! Every operation is one store transaction: the directory change, its ledger event
//! (which also reaches the change stream, so approvers see open proposals), and — when
//! a user's grants change — the re-issued NATS user, the previous key revoked in its
//! account and the account queued for a push. The approval rule itself is
//! [`warden_core::governance::may_close`]; this module only loads its facts.
//!
//! The acting user (`--as`) is a directory user. `None` is the local operator (the CLI
//! run by whoever holds the database and master key): it may create directory users,
//! roles and tasks, but proposals, confirmations and rejections always need a
//! directory user. The first directory user created becomes a system administrator.

use std::collections::{BTreeMap, BTreeSet};

use nats_jwt::{Permissions, Subject};
use serde::Serialize;
use serde_json::json;
use warden_core::directory::{DirectorySnapshot, NextUser, SyncPlan, SyncReport, SyncSkip};
use warden_core::governance::{
    self as gov, Address, ApprovalFacts, Change, Explanation, GovernanceError, HeldTask,
    ObjectType, Proposal, ProposalKind, ProposalStatus, Relationship, Step, TaskGrants,
};
use warden_core::{UserName, UserSpec};
use warden_store::governance::{
    DirRoleRow, DirTaskRow, DirUserRow, NewProposal, ProposalFilter, RelationshipRow, WARDEN_SOURCE,
};
use warden_store::{OperatorRow, Tx};

use crate::dir_keys::OWN_KEY_TAG;
use crate::{OpsError, Record, Result, Scope, Warden, from_json, now};

/// Longest role or task name.
const MAX_NAME: usize = 64;

impl From<GovernanceError> for OpsError {
    fn from(e: GovernanceError) -> Self {
        match e {
            GovernanceError::Invalid(m) => OpsError::Invalid(m),
            GovernanceError::Refused(m) => OpsError::Refused(m),
        }
    }
}

/// A directory user with what they take part in.
#[derive(Clone, Debug, Serialize)]
pub struct DirUserView {
    /// The directory id (also `id` of the record).
    pub id: String,
    /// The record in Warden's directory field names.
    pub user: NextUser,
    /// Where it came from.
    pub source: String,
    /// Whether the user is a system administrator.
    pub sysadmin: bool,
    /// Relationships the user takes part in.
    pub relationships: Vec<RelationshipRow>,
    /// Accounts (names) where the user has a NATS user.
    pub nats_accounts: Vec<String>,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// A role.
#[derive(Clone, Debug, Serialize)]
pub struct RoleView {
    /// Its name (also `role.name`).
    pub id: String,
    /// Record, members and owners.
    #[serde(flatten)]
    pub row: DirRoleRow,
}

/// A task.
#[derive(Clone, Debug, Serialize)]
pub struct TaskView {
    /// Its name.
    pub id: String,
    /// The task.
    #[serde(flatten)]
    pub row: DirTaskRow,
    /// Owners.
    pub owners: Vec<String>,
    /// Admins.
    pub admins: Vec<String>,
}

/// A proposal with its governance message name and who may close it.
#[derive(Clone, Debug, Serialize)]
pub struct ProposalView {
    /// Id.
    pub id: String,
    /// `PROPOSE_ADD_ROLE_MEMBER`, … (the message of its latest step).
    pub message: String,
    /// The proposal.
    #[serde(flatten)]
    pub proposal: Proposal,
    /// The users the rule names (their managers and system administrators also may).
    pub approvers: BTreeSet<String>,
    /// NATS users re-issued by closing it (confirm only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reissued: Vec<Reissued>,
}

/// One NATS user re-issued because a directory user's grants changed.
#[derive(Clone, Debug, Serialize)]
pub struct Reissued {
    /// The directory user (= NATS user name).
    pub user: String,
    /// The account name.
    pub account: String,
    /// The new public key (`None`: the user was removed).
    pub public_key: Option<String>,
    /// The revoked previous key.
    pub revoked: Option<String>,
    /// The compiled permissions.
    pub permissions: Permissions,
}

/// One id's outcome in a batch approval.
#[derive(Clone, Debug, Serialize)]
pub struct BatchResult {
    /// The proposal id.
    pub id: String,
    /// Whether it was confirmed.
    pub ok: bool,
    /// The proposal afterwards, when confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ProposalView>,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an expiry tick did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExpireReport {
    /// Relationships removed.
    pub relationships: Vec<Address>,
    /// Proposals expired.
    pub proposals: Vec<String>,
    /// NATS users re-issued.
    pub reissued: Vec<Reissued>,
}

/// What a new proposal says.
#[derive(Clone, Debug)]
pub struct ProposalInput {
    /// What it changes.
    pub kind: ProposalKind,
    /// Add, remove or update.
    pub change: Change,
    /// The role, task, or (for a manager) user.
    pub object: String,
    /// The user or task it relates.
    pub related: String,
    /// Why.
    pub reason: Option<String>,
    /// Expiry of the granted relationship (unix seconds).
    pub grant_expires_at: Option<i64>,
    /// When the open proposal expires (unix seconds).
    pub expires_at: Option<i64>,
}

/// A role or task name: 1–64 of ASCII letters, digits, `_`, `-`, `.`.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "invalid {kind} name {name:?}: use 1-{MAX_NAME} ASCII letters, digits, '_', '-' or '.', starting with a letter or digit"
        )))
    }
}

impl Warden {
    fn gov_event(
        &self,
        actor: Option<&str>,
        action: &str,
        kind: &str,
        key: &str,
        summary: serde_json::Value,
    ) -> warden_store::NewEvent {
        let mut e = self.event(action, kind, key, summary);
        if let Some(a) = actor {
            e.actor = format!("dir:{a}");
        }
        e
    }

    /// Checks that `id` is a directory user (the acting user or one named in input).
    async fn need_dir_user(&self, tx: &mut Tx<'_>, id: &str, what: &str) -> Result<DirUserRow> {
        tx.dir_user(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("{what} {id} (a directory user)")))
    }

    async fn is_sysadmin(&self, tx: &mut Tx<'_>, id: &str) -> Result<bool> {
        Ok(tx.relationship(&Address::sysadmin(id)).await?.is_some())
    }

    /// The acting directory user of a request that needs one: `given` (empty: absent),
    /// held against an actor bound to a directory user (who acts as themself only, and
    /// by default).
    fn acting_user(&self, given: &str) -> Result<String> {
        self.actor
            .acting_as(Some(given))?
            .ok_or_else(|| OpsError::Invalid("`as` (the acting directory user) is required".into()))
    }

    /// The acting user must be a system administrator (or the local operator).
    async fn need_sysadmin(&self, tx: &mut Tx<'_>, actor: Option<&str>, doing: &str) -> Result<()> {
        let Some(a) = actor else { return Ok(()) };
        self.need_dir_user(tx, a, "acting user").await?;
        if !self.is_sysadmin(tx, a).await? {
            return Err(OpsError::Refused(format!(
                "{a} may not {doing}: that takes a system administrator"
            )));
        }
        Ok(())
    }

    /// `warden dir user add`: adds a directory user (CREATE_USER). The first directory
    /// user, and any with `sysadmin`, becomes a system administrator.
    pub async fn dir_user_add(
        &self,
        actor: Option<&str>,
        mut user: NextUser,
        sysadmin: bool,
    ) -> Result<DirUserView> {
        self.need_gov(Scope::Write, "adding a directory user")?;
        let actor = self.actor.acting_as(actor)?;
        let actor = actor.as_deref();
        let name = self.settings.naming.user(&user.id)?;
        user.id = name.to_string();
        let mut tx = self.store.begin().await?;
        self.need_sysadmin(&mut tx, actor, "add directory users")
            .await?;
        if let Some(m) = &user.manager {
            self.need_dir_user(&mut tx, m, "manager").await?;
        }
        let first = tx.dir_is_empty().await?;
        tx.insert_dir_user(&user, WARDEN_SOURCE)
            .await
            .map_err(|e| {
                crate::conflict(e, || format!("directory user {} already exists", user.id))
            })?;
        let make_admin = sysadmin || first;
        if make_admin {
            tx.put_relationship(&Address::sysadmin(&user.id), WARDEN_SOURCE, None)
                .await?;
        }
        tx.record(self.gov_event(
            actor,
            "dir.user.create",
            "dir_user",
            &user.id,
            json!({"message": gov::CREATE_USER, "user": user, "sysadmin": make_admin, "first": first}),
        ))
        .await?;
        tx.commit().await?;
        self.trusted().dir_user(&user.id).await
    }

    /// One directory user.
    pub async fn dir_user(&self, id: &str) -> Result<DirUserView> {
        self.need_gov(Scope::Read, "reading a directory user")?;
        let row = self
            .store
            .dir_user(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("directory user {id}")))?;
        let relationships = self.store.relationships_of_user(id).await?;
        let sysadmin = relationships
            .iter()
            .any(|r| r.address == Address::sysadmin(id));
        let mut nats_accounts = Vec::new();
        for pk in self.store.dir_nats_accounts(id).await? {
            if let Some(a) = self.store.account(&pk).await? {
                nats_accounts.push(a.name);
            }
        }
        Ok(DirUserView {
            id: row.user.id.clone(),
            user: row.user,
            source: row.source,
            sysadmin,
            relationships,
            nats_accounts,
            created_at: row.created_at,
        })
    }

    /// Every directory user.
    pub async fn dir_users(&self) -> Result<Vec<DirUserRow>> {
        self.need_gov(Scope::Read, "listing directory users")?;
        Ok(self.store.dir_users().await?)
    }

    /// `warden role create`: a role with its first owners (CREATE_ROLE). Any directory
    /// user (or the operator) may create one; the owners then govern its membership.
    pub async fn role_create(
        &self,
        actor: Option<&str>,
        name: &str,
        owners: &[String],
        description: Option<String>,
    ) -> Result<RoleView> {
        self.need_gov(Scope::Write, "creating a role")?;
        let actor = self.actor.acting_as(actor)?;
        let actor = actor.as_deref();
        check_name("role", name)?;
        if owners.is_empty() {
            return Err(OpsError::Invalid(
                "a role needs at least one owner (--owner ID)".into(),
            ));
        }
        let mut tx = self.store.begin().await?;
        if let Some(a) = actor {
            self.need_dir_user(&mut tx, a, "acting user").await?;
        }
        for o in owners {
            self.need_dir_user(&mut tx, o, "owner").await?;
        }
        let role = warden_core::directory::NextRole {
            name: name.to_string(),
            display_name: Some(name.to_string()),
            description,
            ..Default::default()
        };
        tx.insert_dir_role(&role, WARDEN_SOURCE)
            .await
            .map_err(|e| crate::conflict(e, || format!("role {name} already exists")))?;
        for o in owners {
            tx.put_relationship(
                &Address::role_user(name, Relationship::Owner, o),
                WARDEN_SOURCE,
                None,
            )
            .await?;
        }
        tx.record(self.gov_event(
            actor,
            "dir.role.create",
            "dir_role",
            name,
            json!({"message": gov::CREATE_ROLE, "owners": owners, "description": role.description}),
        ))
        .await?;
        // A new owner holds the role (owner implies member) but it has no tasks yet:
        // nothing to re-issue.
        tx.commit().await?;
        self.trusted().role(name).await
    }

    /// One role.
    pub async fn role(&self, name: &str) -> Result<RoleView> {
        self.need_gov(Scope::Read, "reading a role")?;
        let row = self
            .store
            .dir_role(name)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("role {name}")))?;
        Ok(RoleView {
            id: row.role.name.clone(),
            row,
        })
    }

    /// Every role.
    pub async fn roles(&self) -> Result<Vec<RoleView>> {
        self.need_gov(Scope::Read, "listing roles")?;
        Ok(self
            .store
            .dir_roles()
            .await?
            .into_iter()
            .map(|row| RoleView {
                id: row.role.name.clone(),
                row,
            })
            .collect())
    }

    /// `warden task create`: a unit of NATS permission in one account (CREATE_TASK).
    /// Tasks grant NATS access, so creating one takes a system administrator (or the
    /// operator); its owners then decide which roles get it.
    pub async fn task_create(
        &self,
        actor: Option<&str>,
        name: &str,
        account: &str,
        grants: TaskGrants,
        owners: &[String],
        description: Option<String>,
    ) -> Result<TaskView> {
        self.need_gov(Scope::Write, "creating a task")?;
        let actor = self.actor.acting_as(actor)?;
        let actor = actor.as_deref();
        check_name("task", name)?;
        grants.check()?;
        if grants.allow_pub.is_empty() && grants.allow_sub.is_empty() {
            return Err(OpsError::Invalid(
                "a task must allow something: give --allow-pub or --allow-sub".into(),
            ));
        }
        if owners.is_empty() {
            return Err(OpsError::Invalid(
                "a task needs at least one owner (--owner ID)".into(),
            ));
        }
        let mut tx = self.store.begin().await?;
        self.need_sysadmin(&mut tx, actor, "create tasks").await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_row(&mut tx, &op, account).await?;
        if acc.public_key == op.system_account {
            return Err(OpsError::Invalid(
                "tasks cannot grant access in the system account".into(),
            ));
        }
        for o in owners {
            self.need_dir_user(&mut tx, o, "owner").await?;
        }
        let row = DirTaskRow {
            name: name.to_string(),
            account: acc.name.clone(),
            grants,
            description,
            source: WARDEN_SOURCE.to_string(),
            created_at: now(),
            updated_at: now(),
        };
        tx.insert_dir_task(&row)
            .await
            .map_err(|e| crate::conflict(e, || format!("task {name} already exists")))?;
        for o in owners {
            tx.put_relationship(
                &Address::task_user(name, Relationship::Owner, o),
                WARDEN_SOURCE,
                None,
            )
            .await?;
        }
        tx.record(self.gov_event(
            actor,
            "dir.task.create",
            "dir_task",
            name,
            json!({"message": gov::CREATE_TASK, "account": acc.name, "grants": row.grants, "owners": owners}),
        ))
        .await?;
        tx.commit().await?;
        self.trusted().task(name).await
    }

    /// One task.
    pub async fn task(&self, name: &str) -> Result<TaskView> {
        self.need_gov(Scope::Read, "reading a task")?;
        let row = self
            .store
            .dir_task(name)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("task {name}")))?;
        let owners = self
            .store
            .related(
                ObjectType::Task,
                name,
                ObjectType::User,
                &[Relationship::Owner],
            )
            .await?;
        let admins = self
            .store
            .related(
                ObjectType::Task,
                name,
                ObjectType::User,
                &[Relationship::Admin],
            )
            .await?;
        Ok(TaskView {
            id: row.name.clone(),
            row,
            owners,
            admins,
        })
    }

    /// Every task.
    pub async fn tasks(&self) -> Result<Vec<TaskView>> {
        self.need_gov(Scope::Read, "listing tasks")?;
        let mut out = Vec::new();
        for t in self.store.dir_tasks().await? {
            out.push(self.trusted().task(&t.name).await?);
        }
        Ok(out)
    }

    /// The facts the approval rule reads for a proposal.
    async fn approval_facts(&self, tx: &mut Tx<'_>, p: &Proposal) -> Result<ApprovalFacts> {
        let mut f = ApprovalFacts {
            sysadmins: tx
                .related(
                    ObjectType::SysAdmin,
                    gov::SYSADMIN,
                    ObjectType::User,
                    &[Relationship::Member],
                )
                .await?
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let a = &p.address;
        if a.object_type == ObjectType::Role {
            f.role_owners = tx
                .related(
                    ObjectType::Role,
                    &a.object_id,
                    ObjectType::User,
                    &[Relationship::Owner],
                )
                .await?
                .into_iter()
                .collect();
            f.role_admins = tx
                .related(
                    ObjectType::Role,
                    &a.object_id,
                    ObjectType::User,
                    &[Relationship::Admin],
                )
                .await?
                .into_iter()
                .collect();
        }
        let task = match (a.object_type, a.related_type) {
            (ObjectType::Task, _) => Some(a.object_id.clone()),
            (ObjectType::Role, ObjectType::Task) => Some(a.related_id.clone()),
            _ => None,
        };
        if let Some(t) = task {
            f.task_owners = tx
                .related(
                    ObjectType::Task,
                    &t,
                    ObjectType::User,
                    &[Relationship::Owner],
                )
                .await?
                .into_iter()
                .collect();
            f.task_admins = tx
                .related(
                    ObjectType::Task,
                    &t,
                    ObjectType::User,
                    &[Relationship::Admin],
                )
                .await?
                .into_iter()
                .collect();
        }
        // The management chains above the directly named approvers.
        let direct = gov::approvers(p.kind, a, &f).direct;
        let mut todo: Vec<String> = direct.into_iter().collect();
        let mut seen = BTreeSet::new();
        while let Some(u) = todo.pop() {
            if !seen.insert(u.clone()) || seen.len() > 10 * gov::MAX_CHAIN {
                continue;
            }
            if let Some(m) = tx.manager_of(&u).await? {
                f.managers.insert(u, m.clone());
                todo.push(m);
            }
        }
        Ok(f)
    }

    /// `warden propose …`: records an open proposal (PROPOSE_…) and announces it on the
    /// change stream with its approvers.
    pub async fn propose(&self, actor: &str, input: ProposalInput) -> Result<ProposalView> {
        self.need_gov(Scope::Write, "proposing a change")?;
        let actor = &self.acting_user(actor)?;
        let address = input.kind.address(&input.object, &input.related);
        gov::check_proposal(input.kind, input.change, &address)?;
        if let Some(e) = input.grant_expires_at
            && e <= now()
        {
            return Err(OpsError::Invalid("--expires is in the past".into()));
        }
        if input.grant_expires_at.is_some() && input.change != Change::Add {
            return Err(OpsError::Invalid(
                "--expires applies to additions only".into(),
            ));
        }
        let mut tx = self.store.begin().await?;
        self.need_dir_user(&mut tx, actor, "acting user").await?;
        match address.object_type {
            ObjectType::Role => {
                if tx.dir_role(&address.object_id).await?.is_none() {
                    return Err(OpsError::NotFound(format!("role {}", address.object_id)));
                }
            }
            ObjectType::Task => {
                if tx.dir_task(&address.object_id).await?.is_none() {
                    return Err(OpsError::NotFound(format!("task {}", address.object_id)));
                }
            }
            _ => {
                self.need_dir_user(&mut tx, &address.object_id, "user")
                    .await?;
            }
        }
        match address.related_type {
            ObjectType::Task => {
                if tx.dir_task(&address.related_id).await?.is_none() {
                    return Err(OpsError::NotFound(format!("task {}", address.related_id)));
                }
            }
            _ => {
                self.need_dir_user(&mut tx, &address.related_id, "user")
                    .await?;
            }
        }
        let exists = tx.relationship(&address).await?.is_some();
        match input.change {
            Change::Add if exists => {
                return Err(OpsError::Conflict(format!("{address} already holds")));
            }
            Change::Remove if !exists => {
                return Err(OpsError::Conflict(format!(
                    "{address} does not hold: nothing to remove"
                )));
            }
            Change::Update if exists => {
                return Err(OpsError::Conflict(format!(
                    "{} is already {}'s manager",
                    address.related_id, address.object_id
                )));
            }
            _ => {}
        }
        if let Some(open) = tx.open_proposals_on(&address, input.change).await?.first() {
            return Err(OpsError::Conflict(format!(
                "proposal {open} already proposes this; confirm or reject it"
            )));
        }
        let p = tx
            .insert_proposal(&NewProposal {
                kind: input.kind,
                change: input.change,
                address,
                initiator: actor.to_string(),
                reason: input.reason,
                grant_expires_at: input.grant_expires_at,
                expires_at: input.expires_at,
            })
            .await?;
        let facts = self.approval_facts(&mut tx, &p).await?;
        let approvers = gov::approvers(p.kind, &p.address, &facts).direct;
        tx.record(self.gov_event(
            Some(actor),
            "proposal.open",
            "proposal",
            &p.id,
            json!({
                "message": p.message(Step::Propose),
                "proposal": p,
                "approvers": approvers,
                "sysadmins": facts.sysadmins,
            }),
        ))
        .await?;
        tx.commit().await?;
        Ok(ProposalView {
            id: p.id.clone(),
            message: p.message(Step::Propose),
            proposal: p,
            approvers,
            reissued: Vec::new(),
        })
    }

    /// Loads an open proposal and checks the approval rule for `actor`.
    async fn closable(&self, tx: &mut Tx<'_>, actor: &str, id: &str) -> Result<(Proposal, String)> {
        self.need_dir_user(tx, actor, "acting user").await?;
        let p = tx
            .proposal(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("proposal {id}")))?;
        if p.status != ProposalStatus::Open {
            return Err(OpsError::Conflict(format!(
                "proposal {id} is {}, not open",
                p.status
            )));
        }
        if let Some(e) = p.expires_at
            && e <= now()
        {
            return Err(OpsError::Conflict(format!("proposal {id} has expired")));
        }
        let facts = self.approval_facts(tx, &p).await?;
        let why = gov::may_close(actor, p.kind, &p.address, &facts)?;
        Ok((p, why))
    }

    /// `warden confirm ID`: applies the proposal (CONFIRM_…) if `actor` may approve it,
    /// re-issuing the NATS users whose grants change, all in one transaction.
    pub async fn confirm(
        &self,
        actor: &str,
        id: &str,
        justification: Option<&str>,
    ) -> Result<ProposalView> {
        self.need_gov(Scope::Write, "confirming a proposal")?;
        let actor = &self.acting_user(actor)?;
        let mut tx = self.store.begin().await?;
        let (p, why) = self.closable(&mut tx, actor, id).await?;
        let a = &p.address;
        match p.change {
            Change::Add => {
                tx.put_relationship(a, WARDEN_SOURCE, p.grant_expires_at)
                    .await?;
            }
            Change::Remove => {
                tx.delete_relationship(a).await?;
            }
            Change::Update => {
                tx.set_manager(&a.object_id, Some(&a.related_id), WARDEN_SOURCE)
                    .await?;
            }
        }
        let closed = tx
            .close_proposal(id, ProposalStatus::Confirmed, actor, justification)
            .await?;
        let affected = affected_by(&mut tx, a).await?;
        let op = self.operator_row(&mut tx).await?;
        let mut reissued = Vec::new();
        for u in &affected {
            reissued.extend(self.reissue_dir_user(&mut tx, &op, u, Some(actor)).await?);
        }
        tx.record(self.gov_event(
            Some(actor),
            "proposal.confirm",
            "proposal",
            id,
            json!({
                "message": closed.message(Step::Confirm),
                "address": a,
                "justification": justification,
                "why": why,
                "reissued": reissued.iter().map(|r| json!({"user": r.user, "account": r.account, "public_key": r.public_key, "revoked": r.revoked})).collect::<Vec<_>>(),
            }),
        ))
        .await?;
        let facts = self.approval_facts(&mut tx, &closed).await?;
        tx.commit().await?;
        Ok(ProposalView {
            id: closed.id.clone(),
            message: closed.message(Step::Confirm),
            approvers: gov::approvers(closed.kind, &closed.address, &facts).direct,
            proposal: closed,
            reissued,
        })
    }

    /// Batch approval: each id confirmed in its own transaction, with a result per id.
    pub async fn confirm_many(
        &self,
        actor: &str,
        ids: &[String],
        justification: Option<&str>,
    ) -> Vec<BatchResult> {
        let mut out = Vec::new();
        for id in ids {
            match self.confirm(actor, id, justification).await {
                Ok(v) => out.push(BatchResult {
                    id: id.clone(),
                    ok: true,
                    proposal: Some(v),
                    error: None,
                }),
                Err(e) => out.push(BatchResult {
                    id: id.clone(),
                    ok: false,
                    proposal: None,
                    error: Some(e.to_string()),
                }),
            }
        }
        out
    }

    /// `warden reject ID --reason …` (REJECT_…).
    pub async fn reject(&self, actor: &str, id: &str, reason: &str) -> Result<ProposalView> {
        self.need_gov(Scope::Write, "rejecting a proposal")?;
        let actor = &self.acting_user(actor)?;
        if reason.trim().is_empty() {
            return Err(OpsError::Invalid("a rejection needs a --reason".into()));
        }
        let mut tx = self.store.begin().await?;
        let (p, why) = self.closable(&mut tx, actor, id).await?;
        let closed = tx
            .close_proposal(id, ProposalStatus::Rejected, actor, Some(reason))
            .await?;
        tx.record(self.gov_event(
            Some(actor),
            "proposal.reject",
            "proposal",
            id,
            json!({"message": closed.message(Step::Reject), "address": p.address, "reason": reason, "why": why}),
        ))
        .await?;
        let facts = self.approval_facts(&mut tx, &closed).await?;
        tx.commit().await?;
        Ok(ProposalView {
            id: closed.id.clone(),
            message: closed.message(Step::Reject),
            approvers: gov::approvers(closed.kind, &closed.address, &facts).direct,
            proposal: closed,
            reissued: Vec::new(),
        })
    }

    /// One proposal.
    pub async fn proposal(&self, id: &str) -> Result<ProposalView> {
        self.need_gov(Scope::Read, "reading a proposal")?;
        let mut tx = self.store.begin().await?;
        let p = tx
            .proposal(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("proposal {id}")))?;
        let facts = self.approval_facts(&mut tx, &p).await?;
        Ok(view(p, &facts))
    }

    /// Every confirmed proposal, for the outbound directory export.
    pub async fn confirmed_proposals(&self) -> Result<Vec<warden_core::governance::Proposal>> {
        self.need(Scope::Read, "reading the confirmed proposals")?;
        let filter = ProposalFilter {
            status: Some(ProposalStatus::Confirmed),
            initiator: None,
            limit: 0,
        };
        Ok(self.store.proposals(&filter).await?)
    }

    /// `warden proposals list`: all, `mine` (initiated by `actor`), or `to_approve` (open
    /// ones `actor` may close).
    pub async fn proposals(
        &self,
        actor: Option<&str>,
        mine: bool,
        to_approve: bool,
        status: Option<ProposalStatus>,
    ) -> Result<Vec<ProposalView>> {
        self.need_gov(Scope::Read, "listing proposals")?;
        let actor = self.actor.acting_as(actor)?;
        let actor = actor.as_deref();
        if (mine || to_approve) && actor.is_none() {
            return Err(OpsError::Invalid(
                "--mine and --to-approve need --as USER".into(),
            ));
        }
        let filter = ProposalFilter {
            status: if to_approve {
                Some(ProposalStatus::Open)
            } else {
                status
            },
            initiator: if mine {
                actor.map(str::to_string)
            } else {
                None
            },
            limit: 0,
        };
        let list = self.store.proposals(&filter).await?;
        let mut tx = self.store.begin().await?;
        let mut out = Vec::new();
        for p in list {
            let facts = self.approval_facts(&mut tx, &p).await?;
            if to_approve
                && let Some(a) = actor
                && gov::may_close(a, p.kind, &p.address, &facts).is_err()
            {
                continue;
            }
            out.push(view(p, &facts));
        }
        Ok(out)
    }

    /// `warden user explain USER SUBJECT`: which role and task allow or deny it.
    pub async fn explain(
        &self,
        user: &str,
        subject: &Subject,
        account: Option<&str>,
    ) -> Result<Vec<Explanation>> {
        self.need_gov(Scope::Read, "explaining a user's permissions")?;
        if self.store.dir_user(user).await?.is_none() {
            return Err(OpsError::NotFound(format!("directory user {user}")));
        }
        let held = self.store.held_tasks(user).await?;
        let account = match account {
            Some(a) => Some(
                self.settings
                    .naming
                    .account(a)
                    .map_err(|e| OpsError::Invalid(e.to_string()))?
                    .to_string(),
            ),
            None => None,
        };
        Ok(gov::explain(&held, account.as_deref(), subject))
    }

    /// The tasks `user` holds through their roles.
    pub async fn held_tasks(&self, user: &str) -> Result<Vec<HeldTask>> {
        self.need_gov(Scope::Read, "reading a user's tasks")?;
        Ok(self.store.held_tasks(user).await?)
    }

    /// Removes expired grants and expires overdue proposals, re-issuing the NATS users
    /// whose grants shrank: one transaction. `serve` runs it periodically and on start;
    /// `warden dir expire` runs it once.
    pub async fn expire_governance(&self) -> Result<ExpireReport> {
        self.need_gov(Scope::Write, "expiring grants and proposals")?;
        let mut tx = self.store.begin().await?;
        let expired = tx.expire_governance(now()).await?;
        if expired.relationships.is_empty() && expired.proposals.is_empty() {
            tx.rollback().await?;
            return Ok(ExpireReport::default());
        }
        let op = self.operator_row(&mut tx).await?;
        let mut affected = BTreeSet::new();
        for a in &expired.relationships {
            affected.extend(affected_by(&mut tx, a).await?);
        }
        let mut reissued = Vec::new();
        for u in &affected {
            reissued.extend(self.reissue_dir_user(&mut tx, &op, u, None).await?);
        }
        tx.record(self.event(
            "dir.expire",
            "directory",
            "expiry",
            json!({
                "relationships": expired.relationships,
                "proposals": expired.proposals,
                "reissued": reissued.iter().map(|r| json!({"user": r.user, "account": r.account, "public_key": r.public_key, "revoked": r.revoked})).collect::<Vec<_>>(),
            }),
        ))
        .await?;
        tx.commit().await?;
        Ok(ExpireReport {
            relationships: expired.relationships,
            proposals: expired.proposals,
            reissued,
        })
    }

    /// Applies a directory sync plan in one transaction (ledger: `dir.sync`): users and
    /// roles of the plan's source created, updated and deleted, imported roles' members
    /// and owners set directly, and the NATS users whose grants changed re-issued.
    /// Users whose id is not a valid NATS user name are skipped with why.
    pub async fn apply_sync_plan(&self, plan: &SyncPlan) -> Result<SyncReport> {
        self.need(Scope::Write, "applying a directory sync")?;
        if plan.source.trim().is_empty() || plan.source == WARDEN_SOURCE {
            return Err(OpsError::Invalid(format!(
                "a sync plan needs a source other than {WARDEN_SOURCE:?}"
            )));
        }
        let mut plan = plan.clone();
        let mut invalid = Vec::new();
        let naming = self.settings.naming;
        for list in [&mut plan.create_users, &mut plan.update_users] {
            list.retain(|u| match naming.user(&u.id) {
                Ok(n) if n.as_str() == u.id => true,
                Ok(_) | Err(_) => {
                    invalid.push(SyncSkip {
                        kind: "user".into(),
                        key: u.id.clone(),
                        reason: format!(
                            "{:?} is not a valid NATS user name ({})",
                            u.id,
                            naming.user.as_str()
                        ),
                    });
                    false
                }
            });
        }
        for list in [&mut plan.create_roles, &mut plan.update_roles] {
            list.retain(|r| match check_name("role", &r.name) {
                Ok(()) => true,
                Err(e) => {
                    invalid.push(SyncSkip {
                        kind: "role".into(),
                        key: r.name.clone(),
                        reason: e.to_string(),
                    });
                    false
                }
            });
        }
        let mut tx = self.store.begin().await?;
        let (mut report, affected) = tx.apply_sync_plan(&plan).await?;
        report.skipped.extend(invalid);
        let mut reissued = 0usize;
        if !affected.is_empty() {
            let op = self.operator_row(&mut tx).await?;
            for u in &affected {
                reissued += self.reissue_dir_user(&mut tx, &op, u, None).await?.len();
            }
        }
        tx.record(self.event(
            "dir.sync",
            "directory",
            &plan.source,
            json!({
                "users_created": report.users_created,
                "users_updated": report.users_updated,
                "users_deleted": report.users_deleted,
                "roles_created": report.roles_created,
                "roles_updated": report.roles_updated,
                "roles_deleted": report.roles_deleted,
                "skipped": report.skipped.len(),
                "unchanged": report.unchanged,
                "nats_users_reissued": reissued,
            }),
        ))
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Warden's current copy of directory `source`, for a sync to plan against.
    pub async fn directory_snapshot(&self, source: &str) -> Result<DirectorySnapshot> {
        self.need(Scope::Read, "reading the directory")?;
        Ok(self.store.directory_snapshot(source).await?)
    }

    /// Brings `user`'s NATS users in line with their grants: per account, a NATS user
    /// named like the directory user with the compiled permissions (deny-all where no
    /// grant is left). A changed user gets a new key and JWT; the previous key is revoked
    /// in the account and the account queued for a push. A deleted directory user's NATS
    /// users are revoked and removed.
    pub(crate) async fn reissue_dir_user(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        user: &str,
        actor: Option<&str>,
    ) -> Result<Vec<Reissued>> {
        let exists = tx.dir_user(user).await?.is_some();
        let held = if exists {
            tx.held_tasks(user).await?
        } else {
            Vec::new()
        };
        let compiled = gov::compile(&held);
        let tracked: BTreeSet<String> = tx.dir_nats_accounts(user).await?.into_iter().collect();
        let mut targets: BTreeMap<String, (warden_store::AccountRow, Option<Permissions>)> =
            BTreeMap::new();
        for (name, perms) in compiled {
            let acc = self.account_row(tx, op, &name).await.map_err(|e| match e {
                OpsError::NotFound(_) => OpsError::Conflict(format!(
                    "a task of {user} grants access in account {name}, which no longer exists"
                )),
                other => other,
            })?;
            targets.insert(acc.public_key.clone(), (acc, Some(perms)));
        }
        for pk in &tracked {
            if targets.contains_key(pk) {
                continue;
            }
            match tx.account(pk).await? {
                Some(acc) => {
                    targets.insert(pk.clone(), (acc, None));
                }
                None => tx.remove_dir_nats_user(user, pk).await?,
            }
        }
        let uname = UserName::parse_any_case(user)?;
        // ADD_KEY: with a registered key, the NATS users are issued for it (no seed here).
        let own = if exists {
            self.own_key(tx, user).await?
        } else {
            None
        };
        let mut out = Vec::new();
        for (pk, (mut acc, perms)) in targets {
            let existing = tx.user_by_name(&acc.public_key, user).await?;
            if existing.is_some() && !tracked.contains(&pk) {
                return Err(OpsError::Conflict(format!(
                    "account {} already has a NATS user {user} that the directory does not manage",
                    acc.name
                )));
            }
            if !exists {
                let mut revoked = None;
                if let Some(row) = existing {
                    if row.revoked_at.is_none() {
                        self.revoke_issued(tx, op, &mut acc, &row).await?;
                    }
                    tx.delete_user(&row.public_key).await?;
                    if tx.has_seed(&row.public_key).await? {
                        tx.delete_seed(&row.public_key).await?;
                    }
                    revoked = Some(row.public_key);
                }
                tx.remove_dir_nats_user(user, &pk).await?;
                out.push(Reissued {
                    user: user.to_string(),
                    account: acc.name.clone(),
                    public_key: None,
                    revoked,
                    permissions: gov::deny_all(),
                });
                continue;
            }
            let perms = perms.unwrap_or_else(gov::deny_all);
            if let Some(row) = &existing {
                let spec: UserSpec = from_json(&row.spec)?;
                let own_tagged = spec.tags.iter().any(|t| t == OWN_KEY_TAG);
                let key_ok = match &own {
                    Some(k) => row.public_key == k.as_str(),
                    None => !own_tagged,
                };
                if row.revoked_at.is_none() && spec.permissions == perms && key_ok {
                    continue;
                }
            }
            let mut revoked = None;
            if let Some(row) = existing {
                if row.revoked_at.is_none() {
                    // Never before the old JWT's iat: for an own key it may be T + 1.
                    self.revoke_issued(tx, op, &mut acc, &row).await?;
                }
                tx.delete_user(&row.public_key).await?;
                if tx.has_seed(&row.public_key).await? {
                    tx.delete_seed(&row.public_key).await?;
                }
                revoked = Some(row.public_key);
            }
            let mut tags = vec!["warden:directory".to_string()];
            if own.is_some() {
                tags.push(OWN_KEY_TAG.to_string());
            }
            let spec = UserSpec {
                permissions: perms.clone(),
                tags,
                ..UserSpec::default()
            };
            let row = match &own {
                Some(k) => self.create_user_for_key(tx, &acc, &uname, spec, k).await?,
                None => self.create_user(tx, &acc, &uname, spec).await?,
            };
            tx.add_dir_nats_user(user, &pk).await?;
            let r = Reissued {
                user: user.to_string(),
                account: acc.name.clone(),
                public_key: Some(row.public_key.clone()),
                revoked,
                permissions: perms,
            };
            tx.record(self.gov_event(
                actor,
                "dir.user.reissue",
                "dir_user",
                user,
                json!({"account": r.account, "public_key": r.public_key, "revoked": r.revoked, "permissions": r.permissions}),
            ))
            .await?;
            out.push(r);
        }
        Ok(out)
    }
}

/// The directory users whose grants a change of `a` touches: the user of a role
/// relationship, or every holder of a role that gains or loses a task.
async fn affected_by(tx: &mut Tx<'_>, a: &Address) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    match (a.object_type, a.related_type) {
        (ObjectType::Role, ObjectType::User) => {
            out.insert(a.related_id.clone());
        }
        (ObjectType::Role, ObjectType::Task) => {
            out.extend(tx.role_holders(&a.object_id).await?);
        }
        _ => {}
    }
    Ok(out)
}

fn view(p: Proposal, facts: &ApprovalFacts) -> ProposalView {
    let step = match p.status {
        ProposalStatus::Open | ProposalStatus::Expired => Step::Propose,
        ProposalStatus::Confirmed => Step::Confirm,
        ProposalStatus::Rejected => Step::Reject,
    };
    ProposalView {
        id: p.id.clone(),
        message: p.message(step),
        approvers: gov::approvers(p.kind, &p.address, facts).direct,
        proposal: p,
        reissued: Vec::new(),
    }
}

/// `serve`'s expiry loop: removes expired grants on start and then every `every`, until
/// `stop` turns true. A failed tick is logged and retried on the next one.
pub async fn run_expiry(
    warden: Warden,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = every.max(std::time::Duration::from_millis(100));
    loop {
        match warden.expire_governance().await {
            Ok(r) if !r.relationships.is_empty() || !r.proposals.is_empty() => tracing::info!(
                grants = r.relationships.len(),
                proposals = r.proposals.len(),
                reissued = r.reissued.len(),
                "governance expiry"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "governance expiry failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
