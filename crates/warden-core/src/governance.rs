//! Identity governance: directory users, roles, tasks and the
//! relationships between them, proposals and the one rule that says who may
//! confirm or reject them, and the compiler that turns a user's roles and tasks
//! into NATS permissions per account.
//!
//! Relationships are an adjacency list addressed like ledger entries:
//! `(object type, object id, related type, relationship, related id)`, which
//! reads as a sentence — `(role, ops, user, member, alice)` is "alice is a
//! member of role ops" — so any such fact is one lookup of one [`Address`].
//!
//! Everything here is pure: the caller loads the facts ([`ApprovalFacts`],
//! [`HeldTask`]) and stores the outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use nats_jwt::{Permission, Permissions, Subject};
use serde::{Deserialize, Serialize};

use crate::permcheck::{self, Direction};

/// The id of the one system administrator role (object type [`ObjectType::SysAdmin`]).
pub const SYSADMIN: &str = "sysadmin";

/// The longest management chain walked when looking for an approver's managers
/// (a guard against cycles a directory import could bring in).
pub const MAX_CHAIN: usize = 64;

/// What a governance input got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// A value is malformed (a usage error).
    #[error("{0}")]
    Invalid(String),
    /// The acting user may not do this.
    #[error("{0}")]
    Refused(String),
}

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($(#[$vm])* $variant),* }

        // JSON uses the same spelling as the CLI and the database.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The stored and printed spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = GovernanceError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| GovernanceError::Invalid(format!(
                        "unknown {} {s:?} (expected one of: {})",
                        stringify!($name),
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    )))
            }
        }
    };
}

str_enum!(
    /// The domain objects that take part in relationships.
    ObjectType {
        /// The system administrator role.
        SysAdmin = "sysadmin",
        /// A directory user.
        User = "user",
        /// A role.
        Role = "role",
        /// A task (a unit of permission).
        Task = "task",
        /// A public key of a user.
        Key = "key",
    }
);

str_enum!(
    /// The relationship types.
    Relationship {
        /// Member of a role (a user), or a task held by a role (related type task).
        Member = "member",
        /// Owner: implies member; approves membership.
        Owner = "owner",
        /// Admin: implies owner; approves owners and admins.
        Admin = "admin",
        /// `(user, U, user, manager, M)`: M is U's manager.
        Manager = "manager",
    }
);

/// One relationship's address: "related `related_id` is `relationship` of object `object_id`".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    /// The object's type.
    pub object_type: ObjectType,
    /// The object's id (role or task name, user id, `sysadmin`).
    pub object_id: String,
    /// The related object's type.
    pub related_type: ObjectType,
    /// How they relate.
    pub relationship: Relationship,
    /// The related object's id.
    pub related_id: String,
}

impl Address {
    /// `(role, role, user, rel, user)`.
    pub fn role_user(role: &str, rel: Relationship, user: &str) -> Address {
        Address::new(ObjectType::Role, role, ObjectType::User, rel, user)
    }
    /// `(task, task, user, rel, user)`.
    pub fn task_user(task: &str, rel: Relationship, user: &str) -> Address {
        Address::new(ObjectType::Task, task, ObjectType::User, rel, user)
    }
    /// `(role, role, task, member, task)`: the role holds the task.
    pub fn role_task(role: &str, task: &str) -> Address {
        Address::new(
            ObjectType::Role,
            role,
            ObjectType::Task,
            Relationship::Member,
            task,
        )
    }
    /// `(user, user, user, manager, manager)`.
    pub fn manager(user: &str, manager: &str) -> Address {
        Address::new(
            ObjectType::User,
            user,
            ObjectType::User,
            Relationship::Manager,
            manager,
        )
    }
    /// `(sysadmin, sysadmin, user, member, user)`.
    pub fn sysadmin(user: &str) -> Address {
        Address::new(
            ObjectType::SysAdmin,
            SYSADMIN,
            ObjectType::User,
            Relationship::Member,
            user,
        )
    }
    /// Any address.
    pub fn new(
        object_type: ObjectType,
        object_id: &str,
        related_type: ObjectType,
        relationship: Relationship,
        related_id: &str,
    ) -> Address {
        Address {
            object_type,
            object_id: object_id.to_string(),
            related_type,
            relationship,
            related_id: related_id.to_string(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({}, {}, {}, {}, {})",
            self.object_type, self.object_id, self.related_type, self.relationship, self.related_id
        )
    }
}

str_enum!(
    /// What a proposal changes (the `<ObjectType>_<RelationshipType>` part of its message name).
    ProposalKind {
        /// A user's membership of a role.
        RoleMember = "role-member",
        /// A user's ownership of a role.
        RoleOwner = "role-owner",
        /// A user's administration of a role.
        RoleAdmin = "role-admin",
        /// A task held by a role.
        RoleTask = "role-task",
        /// A user's ownership of a task.
        TaskOwner = "task-owner",
        /// A user's administration of a task.
        TaskAdmin = "task-admin",
        /// A user's manager.
        UserManager = "manager",
    }
);

impl ProposalKind {
    /// The message suffix, e.g. `ROLE_MEMBER`.
    pub fn message_suffix(self) -> &'static str {
        match self {
            ProposalKind::RoleMember => "ROLE_MEMBER",
            ProposalKind::RoleOwner => "ROLE_OWNER",
            ProposalKind::RoleAdmin => "ROLE_ADMIN",
            ProposalKind::RoleTask => "ROLE_TASK",
            ProposalKind::TaskOwner => "TASK_OWNER",
            ProposalKind::TaskAdmin => "TASK_ADMIN",
            ProposalKind::UserManager => "USER_MANAGER",
        }
    }

    /// The relationship address this kind adds or removes, for `object` (role, task or
    /// user) and `related` (user or task).
    pub fn address(self, object: &str, related: &str) -> Address {
        match self {
            ProposalKind::RoleMember => Address::role_user(object, Relationship::Member, related),
            ProposalKind::RoleOwner => Address::role_user(object, Relationship::Owner, related),
            ProposalKind::RoleAdmin => Address::role_user(object, Relationship::Admin, related),
            ProposalKind::RoleTask => Address::role_task(object, related),
            ProposalKind::TaskOwner => Address::task_user(object, Relationship::Owner, related),
            ProposalKind::TaskAdmin => Address::task_user(object, Relationship::Admin, related),
            ProposalKind::UserManager => Address::manager(object, related),
        }
    }
}

str_enum!(
    /// Add, remove, or (for a manager) update.
    Change {
        /// Add the relationship.
        Add = "add",
        /// Remove it.
        Remove = "remove",
        /// Replace the user's manager.
        Update = "update",
    }
);

str_enum!(
    /// Where a proposal stands.
    ProposalStatus {
        /// Waiting for an approver.
        Open = "open",
        /// Confirmed and applied.
        Confirmed = "confirmed",
        /// Rejected.
        Rejected = "rejected",
        /// Not closed before its deadline.
        Expired = "expired",
    }
);

str_enum!(
    /// The step of a proposal a message records.
    Step {
        /// `PROPOSE_…`.
        Propose = "PROPOSE",
        /// `CONFIRM_…`.
        Confirm = "CONFIRM",
        /// `REJECT_…`.
        Reject = "REJECT",
    }
);

/// The governance message name, e.g. `CONFIRM_ADD_ROLE_MEMBER`, `PROPOSE_UPDATE_USER_MANAGER`.
pub fn message(step: Step, change: Change, kind: ProposalKind) -> String {
    let change = match change {
        Change::Add => "ADD",
        Change::Remove => "REMOVE",
        Change::Update => "UPDATE",
    };
    format!("{}_{change}_{}", step.as_str(), kind.message_suffix())
}

/// The direct (non-proposal) governance messages.
pub const CREATE_USER: &str = "CREATE_USER";
/// A role is created (its creator names its first owner).
pub const CREATE_ROLE: &str = "CREATE_ROLE";
/// A task is created.
pub const CREATE_TASK: &str = "CREATE_TASK";
/// A public key is added to a user.
pub const ADD_KEY: &str = "ADD_KEY";

/// A proposal, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Id (`p1`, `p2`, …).
    pub id: String,
    /// What it changes.
    pub kind: ProposalKind,
    /// Add, remove or update.
    pub change: Change,
    /// The relationship it adds or removes.
    pub address: Address,
    /// Who proposed it (a directory user id).
    pub initiator: String,
    /// Why.
    pub reason: Option<String>,
    /// Open, confirmed, rejected or expired.
    pub status: ProposalStatus,
    /// Who confirmed or rejected it.
    pub closer: Option<String>,
    /// The closer's justification (confirm) or reason (reject).
    pub justification: Option<String>,
    /// When the granted relationship ends (unix seconds), if it does.
    pub grant_expires_at: Option<i64>,
    /// When the proposal itself expires if nobody closes it (unix seconds).
    pub expires_at: Option<i64>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Closed, unix seconds.
    pub closed_at: Option<i64>,
}

impl Proposal {
    /// The governance message name for `step` of this proposal.
    pub fn message(&self, step: Step) -> String {
        message(step, self.change, self.kind)
    }
}

/// Checks a proposal's shape before it is stored: the kind matches the change (a
/// manager is updated, everything else added or removed) and nobody proposes a user
/// as their own manager.
pub fn check_proposal(
    kind: ProposalKind,
    change: Change,
    address: &Address,
) -> Result<(), GovernanceError> {
    match (kind, change) {
        (ProposalKind::UserManager, Change::Update) if address.object_id == address.related_id => {
            return Err(GovernanceError::Invalid(format!(
                "{} cannot be their own manager",
                address.object_id
            )));
        }
        (ProposalKind::UserManager, Change::Update) => {}
        (ProposalKind::UserManager, _) => {
            return Err(GovernanceError::Invalid(
                "a manager change is an update (`warden propose manager`)".into(),
            ));
        }
        (_, Change::Update) => {
            return Err(GovernanceError::Invalid(format!(
                "{kind} proposals add or remove, they do not update"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// What the approval rule needs to know, loaded by the caller for one proposal.
///
/// Sets hold directory user ids. For a `role-task` proposal, `task_owners` and
/// `task_admins` are those of the task being added to (or removed from) the role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApprovalFacts {
    /// Members of the system administrator role.
    pub sysadmins: BTreeSet<String>,
    /// Owners of the proposal's role.
    pub role_owners: BTreeSet<String>,
    /// Admins of the proposal's role.
    pub role_admins: BTreeSet<String>,
    /// Owners of the proposal's task.
    pub task_owners: BTreeSet<String>,
    /// Admins of the proposal's task.
    pub task_admins: BTreeSet<String>,
    /// `user → manager` for (at least) every user on the management chain above an
    /// authorised approver.
    pub managers: BTreeMap<String, String>,
}

/// Who may approve, and why (for messages and the change stream).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Approvers {
    /// The users the rule names directly (before management chains and sysadmins).
    pub direct: BTreeSet<String>,
    /// The rule in words.
    pub rule: &'static str,
}

/// The users the rule names for a proposal of `kind` on `address` (admins count as
/// owners: admin implies owner).
pub fn approvers(kind: ProposalKind, address: &Address, facts: &ApprovalFacts) -> Approvers {
    let union = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.union(b).cloned().collect();
    match kind {
        ProposalKind::RoleMember => Approvers {
            direct: union(&facts.role_owners, &facts.role_admins),
            rule: "an owner of the role",
        },
        ProposalKind::RoleOwner | ProposalKind::RoleAdmin => Approvers {
            direct: facts.role_admins.clone(),
            rule: "an admin of the role",
        },
        ProposalKind::RoleTask => Approvers {
            direct: union(&facts.task_owners, &facts.task_admins),
            rule: "an owner of the task",
        },
        ProposalKind::TaskOwner | ProposalKind::TaskAdmin => Approvers {
            direct: facts.task_admins.clone(),
            rule: "an admin of the task",
        },
        ProposalKind::UserManager => Approvers {
            direct: BTreeSet::from([address.related_id.clone()]),
            rule: "the proposed manager",
        },
    }
}

/// Whether `manager` is on the management chain above `user` (its manager, the
/// manager's manager, …), within [`MAX_CHAIN`] steps.
pub fn manages(managers: &BTreeMap<String, String>, manager: &str, user: &str) -> bool {
    let mut current = user;
    let mut seen = BTreeSet::new();
    for _ in 0..MAX_CHAIN {
        let Some(next) = managers.get(current) else {
            return false;
        };
        if next == manager {
            return true;
        }
        if !seen.insert(next.as_str()) {
            return false;
        }
        current = next;
    }
    false
}

/// THE approval rule: may `actor` confirm or reject a proposal of `kind` on `address`?
///
/// - role owners (and admins) for role members; role admins for role owners and admins;
/// - task owners (and admins) for adding a task to a role; task admins for task owners
///   and admins;
/// - the proposed manager for a manager change;
/// - anyone on the management chain above one of those;
/// - a system administrator, always.
///
/// `Ok` names why the actor may; `Err` is a [`GovernanceError::Refused`] saying who may.
pub fn may_close(
    actor: &str,
    kind: ProposalKind,
    address: &Address,
    facts: &ApprovalFacts,
) -> Result<String, GovernanceError> {
    if facts.sysadmins.contains(actor) {
        return Ok(format!("{actor} is a system administrator"));
    }
    let who = approvers(kind, address, facts);
    if who.direct.contains(actor) {
        return Ok(format!("{actor} is {}", who.rule));
    }
    if let Some(approver) = who
        .direct
        .iter()
        .find(|a| manages(&facts.managers, actor, a))
    {
        return Ok(format!("{actor} manages {approver}, who is {}", who.rule));
    }
    Err(GovernanceError::Refused(format!(
        "{actor} may not close this {kind} proposal on {}: it takes {} (now: {}), someone above them in the management chain, or a system administrator",
        address.object_id,
        who.rule,
        if who.direct.is_empty() {
            "nobody".to_string()
        } else {
            who.direct.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    )))
}

/// The NATS grants of a task: publish/subscribe allow and deny subjects in one account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskGrants {
    /// Subjects the task allows publishing to.
    pub allow_pub: Vec<Subject>,
    /// Subjects the task denies publishing to.
    pub deny_pub: Vec<Subject>,
    /// Subjects the task allows subscribing to.
    pub allow_sub: Vec<Subject>,
    /// Subjects the task denies subscribing to.
    pub deny_sub: Vec<Subject>,
}

impl TaskGrants {
    /// Whether the task grants nothing at all.
    pub fn is_empty(&self) -> bool {
        self.allow_pub.is_empty()
            && self.deny_pub.is_empty()
            && self.allow_sub.is_empty()
            && self.deny_sub.is_empty()
    }

    /// Refuses grants NATS would not enforce as meant: publish entries with a queue group.
    pub fn check(&self) -> Result<(), GovernanceError> {
        if let Some(s) = self
            .allow_pub
            .iter()
            .chain(&self.deny_pub)
            .find(|s| s.queue().is_some())
        {
            return Err(GovernanceError::Invalid(format!(
                "publish subject {:?} has a queue group, which only subscriptions have",
                s.as_str()
            )));
        }
        Ok(())
    }
}

/// A task held through a role: what the compiler and `explain` read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTask {
    /// The role the user is a member (or owner, or admin) of.
    pub role: String,
    /// The task that role holds.
    pub task: String,
    /// The account the task's grants apply in.
    pub account: String,
    /// The grants.
    pub grants: TaskGrants,
    /// When the user stops holding it (the earlier expiry of their role membership and
    /// of the role's hold on the task), unix seconds; `None` = no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// The permissions of a NATS user that may do nothing: deny everything both ways.
/// (Empty lists would allow everything.)
pub fn deny_all() -> Permissions {
    let all = || Permission {
        allow: Vec::new(),
        deny: vec![Subject::new(">").expect("> is a valid subject")],
    };
    Permissions {
        publish: all(),
        subscribe: all(),
        response: None,
    }
}

fn merge(into: &mut Vec<Subject>, from: &[Subject]) {
    for s in from {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

/// One direction of a compiled permission: the union of allows and of denies (deny
/// wins in NATS); nothing allowed means deny everything, since an empty allow list
/// would allow all.
fn finish(allow: Vec<Subject>, mut deny: Vec<Subject>) -> Permission {
    if allow.is_empty() {
        return Permission {
            allow,
            deny: vec![Subject::new(">").expect("> is a valid subject")],
        };
    }
    deny.sort();
    let mut allow = allow;
    allow.sort();
    Permission { allow, deny }
}

/// A directory user's NATS permissions per account: the union of the grants of the
/// tasks of their roles, deny winning (NATS applies deny before allow). A direction
/// with no allow at all is denied entirely.
pub fn compile(held: &[HeldTask]) -> BTreeMap<String, Permissions> {
    let mut acc: BTreeMap<String, [Vec<Subject>; 4]> = BTreeMap::new();
    for h in held {
        let e = acc.entry(h.account.clone()).or_default();
        merge(&mut e[0], &h.grants.allow_pub);
        merge(&mut e[1], &h.grants.deny_pub);
        merge(&mut e[2], &h.grants.allow_sub);
        merge(&mut e[3], &h.grants.deny_sub);
    }
    acc.into_iter()
        .map(|(account, [ap, dp, asub, ds])| {
            (
                account,
                Permissions {
                    publish: finish(ap, dp),
                    subscribe: finish(asub, ds),
                    response: None,
                },
            )
        })
        .collect()
}

/// Which role and task a rule came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The role.
    pub role: String,
    /// The task.
    pub task: String,
    /// The subject rule of the task.
    pub rule: String,
}

/// The answer to "may this user publish/subscribe to SUBJECT in ACCOUNT, and why".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The account.
    pub account: String,
    /// `publish` or `subscribe`.
    pub direction: String,
    /// The subject asked about.
    pub subject: String,
    /// What the server will do.
    pub allowed: bool,
    /// The compiled permission's verdict, in words.
    pub reason: String,
    /// The tasks (through their roles) whose allow rules cover the subject.
    pub allowed_by: Vec<Source>,
    /// The tasks whose deny rules cover it (deny wins).
    pub denied_by: Vec<Source>,
}

fn covers(rule: &Subject, query: &Subject) -> bool {
    query.is_subset_of(rule) && rule.queue().is_none_or(|q| query.queue() == Some(q))
}

/// Explains `subject` for a user holding `held`, in `account` (every account the user
/// has grants in when `None`), both for publishing and subscribing.
pub fn explain(held: &[HeldTask], account: Option<&str>, subject: &Subject) -> Vec<Explanation> {
    let compiled = compile(held);
    let mut out = Vec::new();
    let accounts: Vec<String> = match account {
        Some(a) => vec![a.to_string()],
        None => compiled.keys().cloned().collect(),
    };
    for acc in accounts {
        let perms = compiled.get(&acc).cloned().unwrap_or_else(deny_all);
        for direction in [Direction::Publish, Direction::Subscribe] {
            let verdict = permcheck::check(&perms, direction, subject);
            let mut allowed_by = Vec::new();
            let mut denied_by = Vec::new();
            for h in held.iter().filter(|h| h.account == acc) {
                let (allow, deny) = match direction {
                    Direction::Publish => (&h.grants.allow_pub, &h.grants.deny_pub),
                    Direction::Subscribe => (&h.grants.allow_sub, &h.grants.deny_sub),
                };
                let source = |rule: &Subject| Source {
                    role: h.role.clone(),
                    task: h.task.clone(),
                    rule: rule.to_string(),
                };
                allowed_by.extend(allow.iter().filter(|r| covers(r, subject)).map(source));
                denied_by.extend(deny.iter().filter(|r| covers(r, subject)).map(source));
            }
            let reason = if !verdict.allowed && allowed_by.is_empty() && denied_by.is_empty() {
                format!(
                    "no task of the user's roles allows {} to {subject} in {acc}",
                    direction.as_str()
                )
            } else {
                verdict.reason
            };
            out.push(Explanation {
                account: acc.clone(),
                direction: direction.as_str().to_string(),
                subject: subject.to_string(),
                allowed: verdict.allowed,
                reason,
                allowed_by,
                denied_by,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn s(x: &str) -> Subject {
        Subject::new(x).unwrap()
    }

    fn facts() -> ApprovalFacts {
        ApprovalFacts {
            sysadmins: set(&["root"]),
            role_owners: set(&["ro"]),
            role_admins: set(&["ra"]),
            task_owners: set(&["to"]),
            task_admins: set(&["ta"]),
            // boss manages ro; bigboss manages boss; ta2 is managed by nobody.
            managers: BTreeMap::from([
                ("ro".to_string(), "boss".to_string()),
                ("boss".to_string(), "bigboss".to_string()),
                ("ra".to_string(), "raboss".to_string()),
                ("to".to_string(), "toboss".to_string()),
                ("ta".to_string(), "taboss".to_string()),
                ("m".to_string(), "mboss".to_string()),
                // A cycle must not loop forever.
                ("x".to_string(), "y".to_string()),
                ("y".to_string(), "x".to_string()),
            ]),
        }
    }

    #[test]
    fn approval_rule_table() {
        use ProposalKind::*;
        let f = facts();
        // (kind, actor, may?)
        let table: &[(ProposalKind, &str, bool)] = &[
            (RoleMember, "ro", true),
            (RoleMember, "ra", true), // admin implies owner
            (RoleMember, "boss", true),
            (RoleMember, "bigboss", true), // the whole chain above
            (RoleMember, "raboss", true),
            (RoleMember, "to", false),
            (RoleMember, "ta", false),
            (RoleMember, "u", false), // the proposed member themself
            (RoleMember, "root", true),
            (RoleOwner, "ro", false), // owners do not approve owners
            (RoleOwner, "ra", true),
            (RoleOwner, "boss", false),
            (RoleOwner, "raboss", true),
            (RoleAdmin, "ra", true),
            (RoleAdmin, "ro", false),
            (RoleAdmin, "root", true),
            (RoleTask, "to", true),
            (RoleTask, "ta", true),
            (RoleTask, "toboss", true),
            (RoleTask, "ro", false), // role owners do not grant tasks
            (RoleTask, "ra", false),
            (TaskOwner, "ta", true),
            (TaskOwner, "to", false),
            (TaskOwner, "taboss", true),
            (TaskAdmin, "ta", true),
            (TaskAdmin, "toboss", false),
            (UserManager, "m", true), // the proposed manager
            (UserManager, "mboss", true),
            (UserManager, "u", false), // the user themself
            (UserManager, "ro", false),
            (UserManager, "root", true),
        ];
        for (kind, actor, expected) in table {
            let address = match kind {
                UserManager => kind.address("u", "m"),
                RoleTask => kind.address("r", "t"),
                _ => kind.address("r", "u"),
            };
            let got = may_close(actor, *kind, &address, &f);
            assert_eq!(got.is_ok(), *expected, "{kind} by {actor}: {got:?}");
            if let Err(GovernanceError::Refused(msg)) = &got {
                assert!(msg.contains(actor), "{msg}");
                assert!(msg.contains("system administrator"), "{msg}");
            }
        }
    }

    #[test]
    fn chain_walk_ends_on_cycles_and_depth() {
        let f = facts();
        assert!(!manages(&f.managers, "z", "x"));
        assert!(manages(&f.managers, "y", "x"));
        let long: BTreeMap<String, String> = (0..200)
            .map(|i| (format!("u{i}"), format!("u{}", i + 1)))
            .collect();
        assert!(manages(&long, "u10", "u0"));
        assert!(!manages(&long, "u150", "u0"), "beyond MAX_CHAIN");
    }

    #[test]
    fn refusal_names_the_approvers() {
        let f = facts();
        let a = ProposalKind::RoleMember.address("r", "u");
        let e = may_close("u", ProposalKind::RoleMember, &a, &f).unwrap_err();
        assert!(e.to_string().contains("ra, ro"), "{e}");
    }

    #[test]
    fn messages_follow_the_seed() {
        assert_eq!(
            message(Step::Confirm, Change::Add, ProposalKind::RoleMember),
            "CONFIRM_ADD_ROLE_MEMBER"
        );
        assert_eq!(
            message(Step::Propose, Change::Update, ProposalKind::UserManager),
            "PROPOSE_UPDATE_USER_MANAGER"
        );
        assert_eq!(
            message(Step::Reject, Change::Remove, ProposalKind::TaskAdmin),
            "REJECT_REMOVE_TASK_ADMIN"
        );
        assert!(
            check_proposal(
                ProposalKind::UserManager,
                Change::Add,
                &Address::manager("a", "b")
            )
            .is_err()
        );
        assert!(
            check_proposal(
                ProposalKind::UserManager,
                Change::Update,
                &Address::manager("a", "a")
            )
            .is_err()
        );
        assert!(
            check_proposal(
                ProposalKind::RoleMember,
                Change::Update,
                &Address::role_user("r", Relationship::Member, "a")
            )
            .is_err()
        );
        assert_eq!(
            "role-task".parse::<ProposalKind>().unwrap(),
            ProposalKind::RoleTask
        );
        assert!("role-task-x".parse::<ProposalKind>().is_err());
    }

    fn held(role: &str, task: &str, account: &str, g: TaskGrants) -> HeldTask {
        HeldTask {
            expires_at: None,
            role: role.into(),
            task: task.into(),
            account: account.into(),
            grants: g,
        }
    }

    #[test]
    fn compile_unions_grants_and_deny_wins() {
        let t1 = TaskGrants {
            allow_pub: vec![s("orders.>")],
            deny_pub: vec![s("orders.secret")],
            allow_sub: vec![s("orders.>")],
            ..Default::default()
        };
        let t2 = TaskGrants {
            allow_pub: vec![s("billing.*"), s("orders.>")],
            ..Default::default()
        };
        let t3 = TaskGrants {
            allow_sub: vec![s("audit.>")],
            ..Default::default()
        };
        let h = vec![
            held("sales", "orders", "A", t1),
            held("finance", "billing", "A", t2),
            held("ops", "audit", "B", t3),
        ];
        let c = compile(&h);
        assert_eq!(c.len(), 2);
        let a = &c["A"];
        assert_eq!(a.publish.allow, vec![s("billing.*"), s("orders.>")]);
        assert_eq!(a.publish.deny, vec![s("orders.secret")]);
        let ok = |p: &Permissions, d, x: &str| permcheck::check(p, d, &s(x)).allowed;
        assert!(ok(a, Direction::Publish, "orders.new"));
        assert!(ok(a, Direction::Publish, "billing.x"));
        // Deny from one task wins over another task's allow.
        assert!(!ok(a, Direction::Publish, "orders.secret"));
        assert!(!ok(a, Direction::Publish, "other"));
        // B grants only subscribe: publishing there is denied entirely.
        let b = &c["B"];
        assert_eq!(b.publish.deny, vec![s(">")]);
        assert!(!ok(b, Direction::Publish, "audit.x"));
        assert!(ok(b, Direction::Subscribe, "audit.x"));
        assert!(!ok(b, Direction::Subscribe, "orders.x"));
        // No tasks: nothing compiled; deny_all denies everything.
        assert!(compile(&[]).is_empty());
        assert!(!ok(&deny_all(), Direction::Publish, "x"));
        assert!(!ok(&deny_all(), Direction::Subscribe, "x"));
    }

    #[test]
    fn explain_names_role_and_task() {
        let h = vec![
            held(
                "sales",
                "orders",
                "A",
                TaskGrants {
                    allow_pub: vec![s("orders.>")],
                    ..Default::default()
                },
            ),
            held(
                "compliance",
                "no-secrets",
                "A",
                TaskGrants {
                    allow_sub: vec![s("x")],
                    deny_pub: vec![s("orders.secret")],
                    ..Default::default()
                },
            ),
        ];
        let e = explain(&h, Some("A"), &s("orders.new"));
        let publish = &e[0];
        assert!(publish.allowed, "{publish:?}");
        assert_eq!(publish.allowed_by[0].role, "sales");
        assert_eq!(publish.allowed_by[0].task, "orders");
        let e = explain(&h, Some("A"), &s("orders.secret"));
        assert!(!e[0].allowed);
        assert_eq!(e[0].denied_by[0].task, "no-secrets");
        assert_eq!(e[0].allowed_by[0].task, "orders");
        // Subscribe to orders.new: nobody allows it.
        assert!(!e[1].allowed);
        let e = explain(&h, Some("B"), &s("orders.new"));
        assert!(!e[0].allowed && e[0].reason.contains("no task"), "{e:?}");
        assert_eq!(explain(&h, None, &s("x")).len(), 2);
    }
}
