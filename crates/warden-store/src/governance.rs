//! Identity governance rows (tables `dir_users`, `dir_roles`, `dir_tasks`,
//! `dir_relationships`, `dir_proposals`, `dir_nats_users`): the directory, its
//! adjacency list of relationships, proposals, and applying a directory sync plan.
//!
//! Who may do what is decided by `warden_core::governance`; this module stores the
//! facts it reads. Expired relationships (`expires_at` in the past) are invisible to
//! every read here even before `serve` deletes them, so a grant ends on time.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use warden_core::directory::{
    DirectorySnapshot, NextRole, NextUser, SyncPlan, SyncReport, SyncSkip,
};
use warden_core::governance::{
    Address, Change, HeldTask, ObjectType, Proposal, ProposalKind, ProposalStatus, Relationship,
    TaskGrants,
};

use crate::bulk::{AnyQuery, insert_rows, placeholders_for};
use crate::org::STATEMENT_PARAMS;
use crate::rows::column;
use crate::store::now;
use crate::{Backend, Store, StoreError, Tx};

/// The `source` of records made in Warden itself (not imported).
pub const WARDEN_SOURCE: &str = "warden";

/// A directory user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirUserRow {
    /// The record (its `manager` filled from the manager relationship).
    pub user: NextUser,
    /// Where it came from.
    pub source: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: i64,
}

/// A role as stored (members and owners are relationships, filled in on read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirRoleRow {
    /// The record.
    pub role: NextRole,
    /// Admins of the role.
    pub admins: Vec<String>,
    /// Tasks the role holds.
    pub tasks: Vec<String>,
    /// Where it came from.
    pub source: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: i64,
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirTaskRow {
    /// Name.
    pub name: String,
    /// The account its grants apply in.
    pub account: String,
    /// The NATS grants.
    pub grants: TaskGrants,
    /// What it is for.
    pub description: Option<String>,
    /// Where it came from.
    pub source: String,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Last changed, unix seconds.
    pub updated_at: i64,
}

/// One relationship row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationshipRow {
    /// Its address.
    pub address: Address,
    /// Where it came from.
    pub source: String,
    /// When it ends, if it does.
    pub expires_at: Option<i64>,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// A proposal to store (id, status and times are set by the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProposal {
    /// What it changes.
    pub kind: ProposalKind,
    /// Add, remove or update.
    pub change: Change,
    /// The relationship.
    pub address: Address,
    /// Who proposes.
    pub initiator: String,
    /// Why.
    pub reason: Option<String>,
    /// Expiry of the granted relationship.
    pub grant_expires_at: Option<i64>,
    /// When the open proposal expires.
    pub expires_at: Option<i64>,
}

/// Which proposals to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProposalFilter {
    /// Only this status.
    pub status: Option<ProposalStatus>,
    /// Only proposals by this initiator.
    pub initiator: Option<String>,
    /// At most this many (0: no limit).
    pub limit: i64,
}

/// What removing expired grants removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expired {
    /// Relationships removed.
    pub relationships: Vec<Address>,
    /// Open proposals marked expired.
    pub proposals: Vec<String>,
}

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Query {
        context: "decoding a governance row",
        source: sqlx::Error::Decode(what.to_string().into()),
    }
}

fn parse<T: std::str::FromStr>(row: &AnyRow, name: &'static str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text: String = column(row, name)?;
    text.parse::<T>().map_err(bad)
}

const ALIVE: &str = "(expires_at IS NULL OR expires_at > $NOW)";

fn alive(prefix: &str, param: &str) -> String {
    let col = if prefix.is_empty() {
        "expires_at".to_string()
    } else {
        format!("{prefix}.expires_at")
    };
    ALIVE.replace("expires_at", &col).replace("$NOW", param)
}

fn address_from(row: &AnyRow) -> Result<Address, StoreError> {
    Ok(Address {
        object_type: parse(row, "object_type")?,
        object_id: column(row, "object_id")?,
        related_type: parse(row, "related_type")?,
        relationship: parse(row, "relationship")?,
        related_id: column(row, "related_id")?,
    })
}

const PROPOSAL_COLUMNS: &str = "id, kind, change, object_type, object_id, related_type, relationship, related_id, \
     initiator, reason, status, closer, justification, grant_expires_at, expires_at, created_at, closed_at";

fn proposal_from(row: &AnyRow) -> Result<Proposal, StoreError> {
    Ok(Proposal {
        id: column(row, "id")?,
        kind: parse(row, "kind")?,
        change: parse(row, "change")?,
        address: address_from(row)?,
        initiator: column(row, "initiator")?,
        reason: column(row, "reason")?,
        status: parse(row, "status")?,
        closer: column(row, "closer")?,
        justification: column(row, "justification")?,
        grant_expires_at: column(row, "grant_expires_at")?,
        expires_at: column(row, "expires_at")?,
        created_at: column(row, "created_at")?,
        closed_at: column(row, "closed_at")?,
    })
}

/// Free functions on a connection, shared by [`Store`] (reads) and [`Tx`].
mod q {
    use super::*;

    pub async fn dir_user(
        c: &mut AnyConnection,
        id: &str,
    ) -> Result<Option<DirUserRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, source, record, created_at, updated_at FROM dir_users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(StoreError::query("reading a directory user"))?;
        let Some(row) = row else { return Ok(None) };
        let mut u = user_from(&row)?;
        u.user.manager = manager_of(c, id).await?;
        Ok(Some(u))
    }

    fn user_from(row: &AnyRow) -> Result<DirUserRow, StoreError> {
        let record: String = column(row, "record")?;
        let mut user: NextUser = serde_json::from_str(&record)?;
        user.id = column(row, "id")?;
        Ok(DirUserRow {
            user,
            source: column(row, "source")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    pub async fn dir_users(
        c: &mut AnyConnection,
        source: Option<&str>,
    ) -> Result<Vec<DirUserRow>, StoreError> {
        let rows = match source {
            Some(s) => sqlx::query("SELECT id, source, record, created_at, updated_at FROM dir_users WHERE source = $1 ORDER BY id")
                .bind(s)
                .fetch_all(&mut *c)
                .await,
            None => sqlx::query("SELECT id, source, record, created_at, updated_at FROM dir_users ORDER BY id")
                .fetch_all(&mut *c)
                .await,
        }
        .map_err(StoreError::query("listing directory users"))?;
        let managers = all_managers(c).await?;
        rows.iter()
            .map(|r| {
                let mut u = user_from(r)?;
                u.user.manager = managers.get(&u.user.id).cloned();
                Ok(u)
            })
            .collect()
    }

    pub async fn all_managers(
        c: &mut AnyConnection,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let sql = format!(
            "SELECT object_id, related_id FROM dir_relationships WHERE object_type = 'user' \
             AND related_type = 'user' AND relationship = 'manager' AND {}",
            alive("", "$1")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now())
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading managers"))?;
        rows.iter()
            .map(|r| Ok((column(r, "object_id")?, column(r, "related_id")?)))
            .collect()
    }

    pub async fn manager_of(
        c: &mut AnyConnection,
        user: &str,
    ) -> Result<Option<String>, StoreError> {
        let ids = related(
            c,
            ObjectType::User,
            user,
            ObjectType::User,
            &[Relationship::Manager],
        )
        .await?;
        Ok(ids.into_iter().next())
    }

    /// Ids related to an object by any of `rels`, alive, sorted.
    pub async fn related(
        c: &mut AnyConnection,
        object_type: ObjectType,
        object_id: &str,
        related_type: ObjectType,
        rels: &[Relationship],
    ) -> Result<Vec<String>, StoreError> {
        let list = rels
            .iter()
            .map(|r| format!("'{}'", r.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT DISTINCT related_id FROM dir_relationships WHERE object_type = $1 AND object_id = $2 \
             AND related_type = $3 AND relationship IN ({list}) AND {} ORDER BY related_id",
            alive("", "$4")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(object_type.as_str())
            .bind(object_id)
            .bind(related_type.as_str())
            .bind(now())
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading relationships"))?;
        rows.iter().map(|r| column(r, "related_id")).collect()
    }

    pub async fn relationship(
        c: &mut AnyConnection,
        a: &Address,
    ) -> Result<Option<RelationshipRow>, StoreError> {
        let sql = format!(
            "SELECT object_type, object_id, related_type, relationship, related_id, source, expires_at, created_at \
             FROM dir_relationships WHERE object_type = $1 AND object_id = $2 AND related_type = $3 \
             AND relationship = $4 AND related_id = $5 AND {}",
            alive("", "$6")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(a.object_type.as_str())
            .bind(&a.object_id)
            .bind(a.related_type.as_str())
            .bind(a.relationship.as_str())
            .bind(&a.related_id)
            .bind(now())
            .fetch_optional(&mut *c)
            .await
            .map_err(StoreError::query("reading a relationship"))?;
        row.map(|r| {
            Ok(RelationshipRow {
                address: address_from(&r)?,
                source: column(&r, "source")?,
                expires_at: column(&r, "expires_at")?,
                created_at: column(&r, "created_at")?,
            })
        })
        .transpose()
    }

    pub async fn relationships_of_user(
        c: &mut AnyConnection,
        user: &str,
    ) -> Result<Vec<RelationshipRow>, StoreError> {
        let sql = format!(
            "SELECT object_type, object_id, related_type, relationship, related_id, source, expires_at, created_at \
             FROM dir_relationships WHERE ((related_type = 'user' AND related_id = $1) \
             OR (object_type = 'user' AND object_id = $1)) AND {} \
             ORDER BY object_type, object_id, relationship",
            alive("", "$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(now())
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading a user's relationships"))?;
        rows.iter()
            .map(|r| {
                Ok(RelationshipRow {
                    address: address_from(r)?,
                    source: column(r, "source")?,
                    expires_at: column(r, "expires_at")?,
                    created_at: column(r, "created_at")?,
                })
            })
            .collect()
    }

    fn task_from(row: &AnyRow) -> Result<DirTaskRow, StoreError> {
        let grants: String = column(row, "grants")?;
        Ok(DirTaskRow {
            name: column(row, "name")?,
            account: column(row, "account")?,
            grants: serde_json::from_str(&grants)?,
            description: column(row, "description")?,
            source: column(row, "source")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    const TASK_COLUMNS: &str = "name, account, grants, description, source, created_at, updated_at";

    pub async fn dir_task(
        c: &mut AnyConnection,
        name: &str,
    ) -> Result<Option<DirTaskRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM dir_tasks WHERE name = $1"
        )))
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(StoreError::query("reading a task"))?
        .as_ref()
        .map(task_from)
        .transpose()
    }

    pub async fn dir_tasks(c: &mut AnyConnection) -> Result<Vec<DirTaskRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM dir_tasks ORDER BY name"
        )))
        .fetch_all(&mut *c)
        .await
        .map_err(StoreError::query("listing tasks"))?
        .iter()
        .map(task_from)
        .collect()
    }

    fn role_from(row: &AnyRow) -> Result<DirRoleRow, StoreError> {
        let record: String = column(row, "record")?;
        let mut role: NextRole = serde_json::from_str(&record)?;
        role.name = column(row, "name")?;
        Ok(DirRoleRow {
            role,
            admins: Vec::new(),
            tasks: Vec::new(),
            source: column(row, "source")?,
            created_at: column(row, "created_at")?,
            updated_at: column(row, "updated_at")?,
        })
    }

    pub async fn dir_role(
        c: &mut AnyConnection,
        name: &str,
    ) -> Result<Option<DirRoleRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, source, record, created_at, updated_at FROM dir_roles WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(StoreError::query("reading a role"))?;
        let Some(row) = row else { return Ok(None) };
        let mut r = role_from(&row)?;
        fill_role(c, &mut r, None).await?;
        Ok(Some(r))
    }

    /// Members, owners (only of `source` when given: what a sync compares), admins, tasks.
    pub async fn fill_role(
        c: &mut AnyConnection,
        r: &mut DirRoleRow,
        source: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT related_type, relationship, related_id, source FROM dir_relationships \
             WHERE object_type = 'role' AND object_id = $1 AND {} ORDER BY related_id",
            alive("", "$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&r.role.name)
            .bind(now())
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading a role's relationships"))?;
        r.role.members.clear();
        r.role.owners.clear();
        for row in &rows {
            let related_type: String = column(row, "related_type")?;
            let rel: String = column(row, "relationship")?;
            let id: String = column(row, "related_id")?;
            let src: String = column(row, "source")?;
            let counted = source.is_none_or(|s| s == src);
            match (related_type.as_str(), rel.as_str()) {
                ("user", "member") if counted => r.role.members.push(id),
                ("user", "owner") if counted => r.role.owners.push(id),
                ("user", "admin") => r.admins.push(id),
                ("task", "member") => r.tasks.push(id),
                _ => {}
            }
        }
        Ok(())
    }

    pub async fn dir_roles(
        c: &mut AnyConnection,
        source: Option<&str>,
    ) -> Result<Vec<DirRoleRow>, StoreError> {
        let rows = match source {
            Some(s) => sqlx::query("SELECT name, source, record, created_at, updated_at FROM dir_roles WHERE source = $1 ORDER BY name")
                .bind(s)
                .fetch_all(&mut *c)
                .await,
            None => sqlx::query("SELECT name, source, record, created_at, updated_at FROM dir_roles ORDER BY name")
                .fetch_all(&mut *c)
                .await,
        }
        .map_err(StoreError::query("listing roles"))?;
        let mut out: Vec<DirRoleRow> = rows.iter().map(role_from).collect::<Result<_, _>>()?;
        // One pass over the role relationships instead of one query per role.
        let sql = format!(
            "SELECT object_id, related_type, relationship, related_id, source FROM dir_relationships \
             WHERE object_type = 'role' AND {} ORDER BY related_id",
            alive("", "$1")
        );
        let rels = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now())
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading role relationships"))?;
        let index: BTreeMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, r)| (r.role.name.clone(), i))
            .collect();
        for row in &rels {
            let role: String = column(row, "object_id")?;
            let Some(&i) = index.get(&role) else { continue };
            let related_type: String = column(row, "related_type")?;
            let rel: String = column(row, "relationship")?;
            let id: String = column(row, "related_id")?;
            let src: String = column(row, "source")?;
            let counted = source.is_none_or(|s| s == src);
            let r = &mut out[i];
            match (related_type.as_str(), rel.as_str()) {
                ("user", "member") if counted => r.role.members.push(id),
                ("user", "owner") if counted => r.role.owners.push(id),
                ("user", "admin") => r.admins.push(id),
                ("task", "member") => r.tasks.push(id),
                _ => {}
            }
        }
        Ok(out)
    }

    pub async fn held_tasks(
        c: &mut AnyConnection,
        user: &str,
    ) -> Result<Vec<HeldTask>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT m.object_id AS role, t.name AS task, t.account AS account, t.grants AS grants, \
                    m.expires_at AS member_expires, rt.expires_at AS task_expires \
             FROM dir_relationships m \
             JOIN dir_relationships rt ON rt.object_type = 'role' AND rt.object_id = m.object_id \
                  AND rt.related_type = 'task' AND rt.relationship = 'member' \
             JOIN dir_tasks t ON t.name = rt.related_id \
             WHERE m.object_type = 'role' AND m.related_type = 'user' AND m.related_id = $1 \
               AND m.relationship IN ('member', 'owner', 'admin') AND {} AND {} \
             ORDER BY role, task",
            alive("m", "$2"),
            alive("rt", "$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(now())
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading a user's tasks"))?;
        rows.iter()
            .map(|r| {
                let grants: String = column(r, "grants")?;
                let member: Option<i64> = column(r, "member_expires")?;
                let task: Option<i64> = column(r, "task_expires")?;
                Ok(HeldTask {
                    expires_at: member.into_iter().chain(task).min(),
                    role: column(r, "role")?,
                    task: column(r, "task")?,
                    account: column(r, "account")?,
                    grants: serde_json::from_str(&grants)?,
                })
            })
            .collect()
    }

    pub async fn proposal(c: &mut AnyConnection, id: &str) -> Result<Option<Proposal>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PROPOSAL_COLUMNS} FROM dir_proposals WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(StoreError::query("reading a proposal"))?
        .as_ref()
        .map(proposal_from)
        .transpose()
    }

    pub async fn proposals(
        c: &mut AnyConnection,
        f: &ProposalFilter,
    ) -> Result<Vec<Proposal>, StoreError> {
        let limit = if f.limit > 0 { f.limit } else { i64::MAX };
        let sql = format!(
            "SELECT {PROPOSAL_COLUMNS} FROM dir_proposals WHERE ($1 = '' OR status = $1) \
             AND ($2 = '' OR initiator = $2) ORDER BY seq LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(f.status.map(|s| s.as_str()).unwrap_or(""))
            .bind(f.initiator.as_deref().unwrap_or(""))
            .bind(limit)
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("listing proposals"))?
            .iter()
            .map(proposal_from)
            .collect()
    }

    pub async fn snapshot(
        c: &mut AnyConnection,
        source: &str,
    ) -> Result<DirectorySnapshot, StoreError> {
        let users = dir_users(c, Some(source))
            .await?
            .into_iter()
            .map(|u| u.user)
            .collect();
        let roles = dir_roles(c, Some(source))
            .await?
            .into_iter()
            .map(|r| r.role)
            .collect();
        Ok(DirectorySnapshot {
            source: source.to_string(),
            users,
            roles,
        })
    }

    pub async fn nats_accounts(
        c: &mut AnyConnection,
        user: &str,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query("SELECT account FROM dir_nats_users WHERE user_id = $1 ORDER BY account")
            .bind(user)
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("reading a user's NATS accounts"))?
            .iter()
            .map(|r| column(r, "account"))
            .collect()
    }
}

fn is_alive(expires_at: Option<i64>, at: i64) -> bool {
    expires_at.is_none_or(|e| e > at)
}

/// Relationship rows a sync plan writes, kept back so that they go out as a few
/// multi-row statements: which rows are in the database (read up front), which of them
/// to delete, which rows to insert. Putting a row removes any row at its address first,
/// as [`Tx::put_relationship`] does, so no insert meets an existing row (a failed INSERT
/// would abort a PostgreSQL transaction).
#[derive(Default)]
struct RelWrites {
    in_db: HashSet<Address>,
    delete: Vec<Address>,
    insert: BTreeSet<Address>,
}

impl RelWrites {
    /// What [`Tx::delete_relationship`] does.
    fn remove(&mut self, a: &Address) {
        if !self.insert.remove(a) && self.in_db.remove(a) {
            self.delete.push(a.clone());
        }
    }

    /// What [`Tx::put_relationship`] does (no expiry).
    fn put(&mut self, a: Address) {
        self.remove(&a);
        self.insert.insert(a);
    }
}

/// A `dir_users` or `dir_roles` row a sync inserts.
struct RecordRow<'a> {
    key: &'a str,
    source: &'a str,
    record: &'a str,
    at: i64,
}

fn bind_record<'q>(q: AnyQuery<'q>, r: &'q RecordRow<'_>) -> AnyQuery<'q> {
    q.bind(r.key)
        .bind(r.source)
        .bind(r.record)
        .bind(r.at)
        .bind(r.at)
}

/// A `dir_relationships` row a sync inserts (never expiring).
struct RelRow<'a> {
    address: &'a Address,
    source: &'a str,
    at: i64,
}

fn bind_rel<'q>(q: AnyQuery<'q>, r: &'q RelRow<'_>) -> AnyQuery<'q> {
    let a = r.address;
    q.bind(a.object_type.as_str())
        .bind(a.object_id.as_str())
        .bind(a.related_type.as_str())
        .bind(a.relationship.as_str())
        .bind(a.related_id.as_str())
        .bind(r.source)
        .bind(None::<i64>)
        .bind(r.at)
}

/// The roles a sync plan names, as it finds them: records (name → source, record JSON),
/// each role's user members and owners of any source or expiry (→ whether the row counts
/// as the plan source's: alive and from it), and the roles that hold a task.
#[derive(Default)]
struct SyncRoles {
    records: HashMap<String, (String, String)>,
    users: HashMap<String, BTreeMap<(Relationship, String), bool>>,
    with_tasks: HashSet<String>,
}

/// Reads for [`Tx::apply_sync_plan`]: whole tables or `IN (…)` lists, never a row at a time.
mod sync_reads {
    use super::*;

    /// Every directory user, by id: (id, source, record).
    pub async fn users(c: &mut AnyConnection) -> Result<Vec<(String, String, String)>, StoreError> {
        sqlx::query("SELECT id, source, record FROM dir_users ORDER BY id")
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("listing directory users"))?
            .iter()
            .map(|r| Ok((column(r, "id")?, column(r, "source")?, column(r, "record")?)))
            .collect()
    }

    /// Every manager row, expired or not, ordered per user as [`q::manager_of`] orders
    /// them: (user, manager, expires_at).
    pub async fn managers(
        c: &mut AnyConnection,
    ) -> Result<Vec<(String, String, Option<i64>)>, StoreError> {
        sqlx::query(
            "SELECT object_id, related_id, expires_at FROM dir_relationships \
             WHERE object_type = 'user' AND related_type = 'user' AND relationship = 'manager' \
             ORDER BY object_id, related_id",
        )
        .fetch_all(&mut *c)
        .await
        .map_err(StoreError::query("reading managers"))?
        .iter()
        .map(|r| {
            Ok((
                column(r, "object_id")?,
                column(r, "related_id")?,
                column(r, "expires_at")?,
            ))
        })
        .collect()
    }

    /// The roles of `source`, by name: (name, record).
    pub async fn source_roles(
        c: &mut AnyConnection,
        source: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query("SELECT name, record FROM dir_roles WHERE source = $1 ORDER BY name")
            .bind(source)
            .fetch_all(&mut *c)
            .await
            .map_err(StoreError::query("listing roles"))?
            .iter()
            .map(|r| Ok((column(r, "name")?, column(r, "record")?)))
            .collect()
    }

    /// The roles named `names` (a record each if it exists) and their relationships,
    /// as [`SyncRoles`] keeps them for a plan of `source`.
    pub async fn roles(
        c: &mut AnyConnection,
        backend: Backend,
        names: &[&str],
        source: &str,
        at: i64,
    ) -> Result<SyncRoles, StoreError> {
        let mut out = SyncRoles::default();
        for chunk in names.chunks(STATEMENT_PARAMS) {
            let list = placeholders_for(backend, 1, chunk.len());
            let sql = format!("SELECT name, source, record FROM dir_roles WHERE name IN ({list})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for n in chunk {
                query = query.bind(*n);
            }
            for r in query
                .fetch_all(&mut *c)
                .await
                .map_err(StoreError::query("reading roles"))?
            {
                out.records.insert(
                    column(&r, "name")?,
                    (column(&r, "source")?, column(&r, "record")?),
                );
            }
            let sql = format!(
                "SELECT object_id, related_type, relationship, related_id, source, expires_at \
                 FROM dir_relationships WHERE object_type = 'role' AND object_id IN ({list})"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for n in chunk {
                query = query.bind(*n);
            }
            for r in query
                .fetch_all(&mut *c)
                .await
                .map_err(StoreError::query("reading role relationships"))?
            {
                let role: String = column(&r, "object_id")?;
                let related_type: String = column(&r, "related_type")?;
                let rel: Relationship = parse(&r, "relationship")?;
                let expires_at: Option<i64> = column(&r, "expires_at")?;
                match (related_type.as_str(), rel) {
                    ("user", Relationship::Member | Relationship::Owner) => {
                        let src: String = column(&r, "source")?;
                        let counted = src == source && is_alive(expires_at, at);
                        out.users
                            .entry(role)
                            .or_default()
                            .insert((rel, column(&r, "related_id")?), counted);
                    }
                    ("task", Relationship::Member) if is_alive(expires_at, at) => {
                        out.with_tasks.insert(role);
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

impl Store {
    /// The directory user `id`.
    pub async fn dir_user(&self, id: &str) -> Result<Option<DirUserRow>, StoreError> {
        q::dir_user(&mut *self.pooled().await?, id).await
    }

    /// Every directory user, by id.
    pub async fn dir_users(&self) -> Result<Vec<DirUserRow>, StoreError> {
        q::dir_users(&mut *self.pooled().await?, None).await
    }

    /// The role `name` with its members, owners, admins and tasks.
    pub async fn dir_role(&self, name: &str) -> Result<Option<DirRoleRow>, StoreError> {
        q::dir_role(&mut *self.pooled().await?, name).await
    }

    /// Every role, by name.
    pub async fn dir_roles(&self) -> Result<Vec<DirRoleRow>, StoreError> {
        q::dir_roles(&mut *self.pooled().await?, None).await
    }

    /// The task `name`.
    pub async fn dir_task(&self, name: &str) -> Result<Option<DirTaskRow>, StoreError> {
        q::dir_task(&mut *self.pooled().await?, name).await
    }

    /// Every task, by name.
    pub async fn dir_tasks(&self) -> Result<Vec<DirTaskRow>, StoreError> {
        q::dir_tasks(&mut *self.pooled().await?).await
    }

    /// The live relationship at `address`, if any: one primary-key lookup.
    pub async fn relationship(
        &self,
        address: &Address,
    ) -> Result<Option<RelationshipRow>, StoreError> {
        q::relationship(&mut *self.pooled().await?, address).await
    }

    /// The live relationships a user takes part in (either side).
    pub async fn relationships_of_user(
        &self,
        user: &str,
    ) -> Result<Vec<RelationshipRow>, StoreError> {
        q::relationships_of_user(&mut *self.pooled().await?, user).await
    }

    /// Ids related to an object by any of `rels` (alive), sorted.
    pub async fn related(
        &self,
        object_type: ObjectType,
        object_id: &str,
        related_type: ObjectType,
        rels: &[Relationship],
    ) -> Result<Vec<String>, StoreError> {
        q::related(
            &mut *self.pooled().await?,
            object_type,
            object_id,
            related_type,
            rels,
        )
        .await
    }

    /// `user → manager` for every user with a manager.
    pub async fn managers(&self) -> Result<BTreeMap<String, String>, StoreError> {
        q::all_managers(&mut *self.pooled().await?).await
    }

    /// The tasks a user holds through their roles (member, owner or admin), alive.
    pub async fn held_tasks(&self, user: &str) -> Result<Vec<HeldTask>, StoreError> {
        q::held_tasks(&mut *self.pooled().await?, user).await
    }

    /// The proposal `id`.
    pub async fn proposal(&self, id: &str) -> Result<Option<Proposal>, StoreError> {
        q::proposal(&mut *self.pooled().await?, id).await
    }

    /// Proposals matching `filter`, oldest first.
    pub async fn proposals(&self, filter: &ProposalFilter) -> Result<Vec<Proposal>, StoreError> {
        q::proposals(&mut *self.pooled().await?, filter).await
    }

    /// Warden's current copy of the directory `source` (users and roles it brought in;
    /// role members and owners only as that source set them), for a sync to diff against.
    pub async fn directory_snapshot(&self, source: &str) -> Result<DirectorySnapshot, StoreError> {
        q::snapshot(&mut *self.pooled().await?, source).await
    }

    /// Accounts (public keys) where the directory manages a NATS user for `user`.
    pub async fn dir_nats_accounts(&self, user: &str) -> Result<Vec<String>, StoreError> {
        q::nats_accounts(&mut *self.pooled().await?, user).await
    }
}

fn user_record(u: &NextUser) -> Result<String, StoreError> {
    // The manager lives in the relationship table only.
    let mut copy = u.clone();
    copy.manager = None;
    Ok(serde_json::to_string(&copy)?)
}

fn role_record(r: &NextRole) -> Result<String, StoreError> {
    let mut copy = r.clone();
    copy.members.clear();
    copy.owners.clear();
    Ok(serde_json::to_string(&copy)?)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Tx<'_> {
    /// The directory user `id`.
    pub async fn dir_user(&mut self, id: &str) -> Result<Option<DirUserRow>, StoreError> {
        q::dir_user(self.conn(), id).await
    }

    /// Whether the directory has no users at all.
    pub async fn dir_is_empty(&mut self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM dir_users LIMIT 1")
            .fetch_optional(self.conn())
            .await
            .map_err(StoreError::query("reading directory users"))?;
        Ok(row.is_none())
    }

    /// Inserts a directory user (its `manager`, if any, as a relationship).
    /// [`StoreError::Conflict`] if the id is taken.
    pub async fn insert_dir_user(
        &mut self,
        user: &NextUser,
        source: &str,
    ) -> Result<(), StoreError> {
        // Checked first: a failed INSERT would abort the whole transaction on PostgreSQL.
        if q::dir_user(self.conn(), &user.id).await?.is_some() {
            return Err(StoreError::Conflict {
                what: format!("directory user {}", user.id),
            });
        }
        let t = now();
        sqlx::query("INSERT INTO dir_users (id, source, record, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(&user.id)
            .bind(source)
            .bind(user_record(user)?)
            .bind(t)
            .execute(self.conn())
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: format!("directory user {}", user.id),
                    }
                } else {
                    StoreError::Query {
                        context: "inserting a directory user",
                        source: e,
                    }
                }
            })?;
        if let Some(m) = &user.manager {
            self.put_relationship(&Address::manager(&user.id, m), source, None)
                .await?;
        }
        Ok(())
    }

    /// Replaces a directory user's record (and its manager relationship).
    /// [`StoreError::NotFound`] if absent.
    pub async fn update_dir_user(
        &mut self,
        user: &NextUser,
        source: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE dir_users SET source = $2, record = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(&user.id)
        .bind(source)
        .bind(user_record(user)?)
        .bind(now())
        .execute(self.conn())
        .await
        .map_err(StoreError::query("updating a directory user"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("directory user {}", user.id),
            });
        }
        self.set_manager(&user.id, user.manager.as_deref(), source)
            .await
    }

    /// Sets (or clears) a user's manager relationship.
    pub async fn set_manager(
        &mut self,
        user: &str,
        manager: Option<&str>,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM dir_relationships WHERE object_type = 'user' AND object_id = $1 \
             AND related_type = 'user' AND relationship = 'manager'",
        )
        .bind(user)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("clearing a manager"))?;
        if let Some(m) = manager {
            self.put_relationship(&Address::manager(user, m), source, None)
                .await?;
        }
        Ok(())
    }

    /// Deletes a directory user and every relationship they take part in.
    /// [`StoreError::NotFound`] if absent.
    pub async fn delete_dir_user(&mut self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM dir_relationships WHERE (related_type = 'user' AND related_id = $1) \
             OR (object_type = 'user' AND object_id = $1)",
        )
        .bind(id)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("deleting a user's relationships"))?;
        self.delete_dir_user_keys(id).await?;
        let done = sqlx::query("DELETE FROM dir_users WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting a directory user"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("directory user {id}"),
            });
        }
        Ok(())
    }

    /// The role `name` with its members, owners, admins and tasks.
    pub async fn dir_role(&mut self, name: &str) -> Result<Option<DirRoleRow>, StoreError> {
        q::dir_role(self.conn(), name).await
    }

    /// Inserts or replaces a role's record (members and owners are not touched).
    pub async fn upsert_dir_role(
        &mut self,
        role: &NextRole,
        source: &str,
    ) -> Result<bool, StoreError> {
        let t = now();
        let done = sqlx::query(
            "UPDATE dir_roles SET source = $2, record = $3, updated_at = $4 WHERE name = $1",
        )
        .bind(&role.name)
        .bind(source)
        .bind(role_record(role)?)
        .bind(t)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("updating a role"))?;
        if done.rows_affected() > 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO dir_roles (name, source, record, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(&role.name)
            .bind(source)
            .bind(role_record(role)?)
            .bind(t)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("inserting a role"))?;
        Ok(true)
    }

    /// Inserts a role. [`StoreError::Conflict`] if the name is taken.
    pub async fn insert_dir_role(
        &mut self,
        role: &NextRole,
        source: &str,
    ) -> Result<(), StoreError> {
        if q::dir_role(self.conn(), &role.name).await?.is_some() {
            return Err(StoreError::Conflict {
                what: format!("role {}", role.name),
            });
        }
        self.upsert_dir_role(role, source).await.map(|_| ())
    }

    /// Deletes a role and its relationships. [`StoreError::NotFound`] if absent.
    pub async fn delete_dir_role(&mut self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dir_relationships WHERE object_type = 'role' AND object_id = $1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting a role's relationships"))?;
        let done = sqlx::query("DELETE FROM dir_roles WHERE name = $1")
            .bind(name)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting a role"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("role {name}"),
            });
        }
        Ok(())
    }

    /// The task `name`.
    pub async fn dir_task(&mut self, name: &str) -> Result<Option<DirTaskRow>, StoreError> {
        q::dir_task(self.conn(), name).await
    }

    /// Inserts a task. [`StoreError::Conflict`] if the name is taken.
    pub async fn insert_dir_task(&mut self, task: &DirTaskRow) -> Result<(), StoreError> {
        // Checked first: a failed INSERT would abort the whole transaction on PostgreSQL.
        if q::dir_task(self.conn(), &task.name).await?.is_some() {
            return Err(StoreError::Conflict {
                what: format!("task {}", task.name),
            });
        }
        sqlx::query(
            "INSERT INTO dir_tasks (name, account, grants, description, source, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&task.name)
        .bind(&task.account)
        .bind(serde_json::to_string(&task.grants)?)
        .bind(&task.description)
        .bind(&task.source)
        .bind(now())
        .execute(self.conn())
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict {
                    what: format!("task {}", task.name),
                }
            } else {
                StoreError::Query {
                    context: "inserting a task",
                    source: e,
                }
            }
        })?;
        Ok(())
    }

    /// The live relationship at `address`, if any.
    pub async fn relationship(
        &mut self,
        address: &Address,
    ) -> Result<Option<RelationshipRow>, StoreError> {
        q::relationship(self.conn(), address).await
    }

    /// Ids related to an object by any of `rels` (alive), sorted.
    pub async fn related(
        &mut self,
        object_type: ObjectType,
        object_id: &str,
        related_type: ObjectType,
        rels: &[Relationship],
    ) -> Result<Vec<String>, StoreError> {
        q::related(self.conn(), object_type, object_id, related_type, rels).await
    }

    /// The user's manager, if any.
    pub async fn manager_of(&mut self, user: &str) -> Result<Option<String>, StoreError> {
        q::manager_of(self.conn(), user).await
    }

    /// Adds (or replaces the expiry and source of) the relationship at `address`.
    pub async fn put_relationship(
        &mut self,
        address: &Address,
        source: &str,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        self.delete_relationship(address).await?;
        sqlx::query(
            "INSERT INTO dir_relationships (object_type, object_id, related_type, relationship, related_id, \
             source, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(address.object_type.as_str())
        .bind(&address.object_id)
        .bind(address.related_type.as_str())
        .bind(address.relationship.as_str())
        .bind(&address.related_id)
        .bind(source)
        .bind(expires_at)
        .bind(now())
        .execute(self.conn())
        .await
        .map_err(StoreError::query("inserting a relationship"))?;
        Ok(())
    }

    /// Removes the relationship at `address` (expired or not); whether a row was there.
    pub async fn delete_relationship(&mut self, address: &Address) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM dir_relationships WHERE object_type = $1 AND object_id = $2 \
             AND related_type = $3 AND relationship = $4 AND related_id = $5",
        )
        .bind(address.object_type.as_str())
        .bind(&address.object_id)
        .bind(address.related_type.as_str())
        .bind(address.relationship.as_str())
        .bind(&address.related_id)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("deleting a relationship"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The tasks a user holds through their roles, alive.
    pub async fn held_tasks(&mut self, user: &str) -> Result<Vec<HeldTask>, StoreError> {
        q::held_tasks(self.conn(), user).await
    }

    /// Users who hold role `role` (member, owner or admin), alive.
    pub async fn role_holders(&mut self, role: &str) -> Result<Vec<String>, StoreError> {
        q::related(
            self.conn(),
            ObjectType::Role,
            role,
            ObjectType::User,
            &[
                Relationship::Member,
                Relationship::Owner,
                Relationship::Admin,
            ],
        )
        .await
    }

    /// Stores a new open proposal with the next id (`p1`, `p2`, …).
    pub async fn insert_proposal(&mut self, new: &NewProposal) -> Result<Proposal, StoreError> {
        // The ledger lock serialises id allocation on PostgreSQL; SQLite writers are serial.
        self.lock_sequences().await?;
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM dir_proposals")
            .fetch_one(self.conn())
            .await
            .map_err(StoreError::query("numbering a proposal"))?;
        let seq: i64 = column(&row, "seq")?;
        let seq = seq + 1;
        let p = Proposal {
            id: format!("p{seq}"),
            kind: new.kind,
            change: new.change,
            address: new.address.clone(),
            initiator: new.initiator.clone(),
            reason: new.reason.clone(),
            status: ProposalStatus::Open,
            closer: None,
            justification: None,
            grant_expires_at: new.grant_expires_at,
            expires_at: new.expires_at,
            created_at: now(),
            closed_at: None,
        };
        let a = &p.address;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO dir_proposals (seq, {PROPOSAL_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )))
        .bind(seq)
        .bind(&p.id)
        .bind(p.kind.as_str())
        .bind(p.change.as_str())
        .bind(a.object_type.as_str())
        .bind(&a.object_id)
        .bind(a.related_type.as_str())
        .bind(a.relationship.as_str())
        .bind(&a.related_id)
        .bind(&p.initiator)
        .bind(&p.reason)
        .bind(p.status.as_str())
        .bind(&p.closer)
        .bind(&p.justification)
        .bind(p.grant_expires_at)
        .bind(p.expires_at)
        .bind(p.created_at)
        .bind(p.closed_at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("inserting a proposal"))?;
        Ok(p)
    }

    /// The proposal `id`.
    pub async fn proposal(&mut self, id: &str) -> Result<Option<Proposal>, StoreError> {
        q::proposal(self.conn(), id).await
    }

    /// Open proposals on the same relationship and change (to refuse duplicates).
    pub async fn open_proposals_on(
        &mut self,
        address: &Address,
        change: Change,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query(
            "SELECT id FROM dir_proposals WHERE status = 'open' AND change = $1 AND object_type = $2 \
             AND object_id = $3 AND related_type = $4 AND relationship = $5 AND related_id = $6 ORDER BY seq",
        )
        .bind(change.as_str())
        .bind(address.object_type.as_str())
        .bind(&address.object_id)
        .bind(address.related_type.as_str())
        .bind(address.relationship.as_str())
        .bind(&address.related_id)
        .fetch_all(self.conn())
        .await
        .map_err(StoreError::query("reading open proposals"))?
        .iter()
        .map(|r| column(r, "id"))
        .collect()
    }

    /// Closes an open proposal. [`StoreError::NotFound`] if absent,
    /// [`StoreError::Conflict`] if it is no longer open (someone closed it first).
    pub async fn close_proposal(
        &mut self,
        id: &str,
        status: ProposalStatus,
        closer: &str,
        justification: Option<&str>,
    ) -> Result<Proposal, StoreError> {
        let done = sqlx::query(
            "UPDATE dir_proposals SET status = $2, closer = $3, justification = $4, closed_at = $5 \
             WHERE id = $1 AND status = 'open'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(closer)
        .bind(justification)
        .bind(now())
        .execute(self.conn())
        .await
        .map_err(StoreError::query("closing a proposal"))?;
        let p = q::proposal(self.conn(), id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("proposal {id}"),
            })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                what: format!("proposal {id} is {}; a closed proposal", p.status),
            });
        }
        Ok(p)
    }

    /// Deletes relationships whose expiry is at or before `at` and marks open proposals
    /// past their deadline expired.
    pub async fn expire_governance(&mut self, at: i64) -> Result<Expired, StoreError> {
        let rows = sqlx::query(
            "SELECT object_type, object_id, related_type, relationship, related_id FROM dir_relationships \
             WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY object_type, object_id, related_id",
        )
        .bind(at)
        .fetch_all(self.conn())
        .await
        .map_err(StoreError::query("reading expired relationships"))?;
        let relationships = rows
            .iter()
            .map(address_from)
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(
            "DELETE FROM dir_relationships WHERE expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("deleting expired relationships"))?;
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM dir_proposals WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY seq",
        )
        .bind(at)
        .fetch_all(self.conn())
        .await
        .map_err(StoreError::query("reading expired proposals"))?
        .iter()
        .map(|r| column(r, "id"))
        .collect::<Result<_, _>>()?;
        sqlx::query(
            "UPDATE dir_proposals SET status = 'expired', closed_at = $1 \
             WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("expiring proposals"))?;
        Ok(Expired {
            relationships,
            proposals: ids,
        })
    }

    /// Accounts (public keys) where the directory manages a NATS user for `user`.
    pub async fn dir_nats_accounts(&mut self, user: &str) -> Result<Vec<String>, StoreError> {
        q::nats_accounts(self.conn(), user).await
    }

    /// Records that the directory manages `user`'s NATS user in `account` (idempotent).
    pub async fn add_dir_nats_user(&mut self, user: &str, account: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dir_nats_users WHERE user_id = $1 AND account = $2")
            .bind(user)
            .bind(account)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("recording a directory NATS user"))?;
        sqlx::query("INSERT INTO dir_nats_users (user_id, account) VALUES ($1, $2)")
            .bind(user)
            .bind(account)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("recording a directory NATS user"))?;
        Ok(())
    }

    /// Forgets that the directory manages `user`'s NATS user in `account`.
    pub async fn remove_dir_nats_user(
        &mut self,
        user: &str,
        account: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dir_nats_users WHERE user_id = $1 AND account = $2")
            .bind(user)
            .bind(account)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("forgetting a directory NATS user"))?;
        Ok(())
    }

    /// Warden's current copy of the directory `source`.
    pub async fn directory_snapshot(
        &mut self,
        source: &str,
    ) -> Result<DirectorySnapshot, StoreError> {
        q::snapshot(self.conn(), source).await
    }

    /// Applies a sync plan: users and roles created, updated and deleted, imported roles'
    /// members and owners set directly as relationships of the plan's source. Records of
    /// another source are left alone (skipped, with why); applying the same plan twice
    /// changes nothing the second time. Returns the report and the directory users whose
    /// NATS permissions may have changed (members of changed roles that hold tasks, and
    /// deleted users with NATS users), for the caller to re-issue in the same transaction.
    ///
    /// What the plan is compared with is read up front (every directory user, the
    /// managers, the plan's roles with their relationships) and kept up to date in memory
    /// as the plan goes, record by record, so that a user created earlier in the plan
    /// counts for a later manager or member. New users, roles and relationships are then
    /// written in multi-row statements; record updates (rare in a sync), renamed users
    /// and deletions are written one by one.
    pub async fn apply_sync_plan(
        &mut self,
        plan: &SyncPlan,
    ) -> Result<(SyncReport, BTreeSet<String>), StoreError> {
        let source = plan.source.as_str();
        let backend = self.store.backend();
        let at = now();
        let mut report = SyncReport {
            source: plan.source.clone(),
            skipped: plan.skipped.clone(),
            unchanged: plan.unchanged,
            ..SyncReport::default()
        };
        let mut affected = BTreeSet::new();
        let skip = |report: &mut SyncReport, kind: &str, key: &str, reason: String| {
            report.skipped.push(SyncSkip {
                kind: kind.into(),
                key: key.into(),
                reason,
            })
        };

        // The plan matches records by the provider's object id, so an upstream rename
        // arrives as an update under the new id. Warden ids are NATS user names and
        // role names carry tasks and proposals, so: a renamed user replaces the old
        // one (its NATS users revoked, the source's memberships re-set by this plan's
        // role updates); a renamed role is left under its old name, with why.
        let renames = !plan.update_users.is_empty() || !plan.update_roles.is_empty();
        // Every directory user, any source: id → (source, record). A manager or member
        // must be a directory user of any source; a plan's user may exist from another.
        let mut users: HashMap<String, (String, String)> = HashMap::new();
        let mut users_by_object: BTreeMap<String, String> = BTreeMap::new();
        for (id, src, record) in sync_reads::users(self.conn()).await? {
            if renames && src == source {
                let u: NextUser = serde_json::from_str(&record)?;
                if let Some(object) = u.user_id {
                    users_by_object.insert(object, id.clone());
                }
            }
            users.insert(id, (src, record));
        }
        let mut roles_by_object: BTreeMap<String, String> = BTreeMap::new();
        if renames {
            for (name, record) in sync_reads::source_roles(self.conn(), source).await? {
                let r: NextRole = serde_json::from_str(&record)?;
                if let Some(object) = r.role_id {
                    roles_by_object.insert(object, name);
                }
            }
        }
        let renamed_user = |u: &NextUser| -> Option<String> {
            let old = users_by_object.get(u.user_id.as_ref()?)?;
            (*old != u.id).then(|| old.clone())
        };
        let renamed_role = |r: &NextRole| -> Option<String> {
            let old = roles_by_object.get(r.role_id.as_ref()?)?;
            (*old != r.name).then(|| old.clone())
        };

        // Manager rows per user (expired ones too: setting a manager deletes them all);
        // the first alive one is the user's manager, as `q::manager_of` reads it.
        let mut rels = RelWrites::default();
        let mut managers: HashMap<String, Vec<(String, Option<i64>)>> = HashMap::new();
        for (user, manager, expires_at) in sync_reads::managers(self.conn()).await? {
            rels.in_db.insert(Address::manager(&user, &manager));
            managers
                .entry(user)
                .or_default()
                .push((manager, expires_at));
        }
        let manager_of = |managers: &HashMap<String, Vec<(String, Option<i64>)>>, id: &str| {
            managers
                .get(id)?
                .iter()
                .find(|(_, expires_at)| is_alive(*expires_at, at))
                .map(|(m, _)| m.clone())
        };

        // Users first (without managers: a manager may come later in the same plan).
        // New users wait in `new_users` (id, record) to be inserted together.
        let mut new_users: Vec<(String, String)> = Vec::new();
        let mut new_user_at: HashMap<String, usize> = HashMap::new();
        let mut wanted_managers: Vec<(String, Option<String>)> = Vec::new();
        for u in plan.create_users.iter().chain(&plan.update_users) {
            if let Some(old) = renamed_user(u)
                && !users.contains_key(&u.id)
            {
                if !q::nats_accounts(self.conn(), &old).await?.is_empty() {
                    affected.insert(old.clone());
                }
                if new_user_at.contains_key(&old) {
                    // Deleted from the database right below: it must be there first.
                    self.insert_sync_records("dir_users", "id", &new_users, source, at)
                        .await?;
                    new_users.clear();
                    new_user_at.clear();
                }
                self.delete_dir_user(&old).await?;
                users.remove(&old);
                // Its relationships went with it, managers included.
                for (m, _) in managers.remove(&old).unwrap_or_default() {
                    rels.in_db.remove(&Address::manager(&old, &m));
                }
                for (id, rows) in managers.iter_mut() {
                    rows.retain(|(m, _)| {
                        let gone = *m == old;
                        if gone {
                            rels.in_db.remove(&Address::manager(id, m));
                        }
                        !gone
                    });
                }
                let record = user_record(u)?;
                new_user_at.insert(u.id.clone(), new_users.len());
                new_users.push((u.id.clone(), record.clone()));
                users.insert(u.id.clone(), (source.to_owned(), record));
                report.users_updated += 1;
                wanted_managers.push((u.id.clone(), u.manager.clone()));
                continue;
            }
            match users.get(&u.id) {
                Some((src, _)) if src != source => {
                    let reason = format!("exists from source {src}");
                    skip(&mut report, "user", &u.id, reason);
                    continue;
                }
                Some((_, record)) => {
                    let mut old: NextUser = serde_json::from_str(record)?;
                    old.id = u.id.clone();
                    old.manager = None;
                    let mut plain = u.clone();
                    plain.manager = None;
                    if plain != old {
                        let record = user_record(&plain)?;
                        match new_user_at.get(&u.id) {
                            Some(&i) => new_users[i].1 = record.clone(),
                            None => self.update_dir_user_record(&plain, source).await?,
                        }
                        users.insert(u.id.clone(), (source.to_owned(), record));
                        report.users_updated += 1;
                    } else if manager_of(&managers, &u.id) != u.manager {
                        report.users_updated += 1;
                    } else {
                        report.unchanged += 1;
                    }
                }
                None => {
                    let record = user_record(u)?;
                    new_user_at.insert(u.id.clone(), new_users.len());
                    new_users.push((u.id.clone(), record.clone()));
                    users.insert(u.id.clone(), (source.to_owned(), record));
                    report.users_created += 1;
                }
            }
            wanted_managers.push((u.id.clone(), u.manager.clone()));
        }
        for (id, manager) in wanted_managers {
            let manager = match manager {
                Some(m) if !users.contains_key(&m) => {
                    let reason = format!("manager {m} is not a directory user");
                    skip(&mut report, "user", &id, reason);
                    None
                }
                other => other,
            };
            if manager_of(&managers, &id) != manager {
                // What `set_manager` does: every manager row of the user goes.
                let rows = managers.entry(id.clone()).or_default();
                for (m, _) in rows.drain(..) {
                    rels.remove(&Address::manager(&id, &m));
                }
                if let Some(m) = manager {
                    rels.put(Address::manager(&id, &m));
                    rows.push((m, None));
                }
            }
        }

        // Roles: the plan's, with their relationships, read after the users (a renamed
        // user's memberships went with it).
        let names: BTreeSet<&str> = plan
            .create_roles
            .iter()
            .chain(&plan.update_roles)
            .map(|r| r.name.as_str())
            .chain(plan.delete_roles.iter().map(String::as_str))
            .collect();
        let names: Vec<&str> = names.into_iter().collect();
        let SyncRoles {
            records: mut roles,
            users: mut role_users,
            with_tasks,
        } = sync_reads::roles(self.conn(), backend, &names, source, at).await?;
        for (role, rows) in &role_users {
            for (rel, id) in rows.keys() {
                rels.in_db.insert(Address::role_user(role, *rel, id));
            }
        }
        let mut new_roles: Vec<(String, String)> = Vec::new();
        let mut new_role_at: HashMap<String, usize> = HashMap::new();
        for r in plan.create_roles.iter().chain(&plan.update_roles) {
            if let Some(old) = renamed_role(r) {
                skip(
                    &mut report,
                    "role",
                    &r.name,
                    format!(
                        "renamed upstream from {old} (same object id); Warden keeps the role under its old name, with its tasks"
                    ),
                );
                continue;
            }
            let record_changed = match roles.get(&r.name) {
                Some((src, _)) if src != source => {
                    let reason = format!("exists from source {src}");
                    skip(&mut report, "role", &r.name, reason);
                    continue;
                }
                Some((_, record)) => {
                    let mut a: NextRole = serde_json::from_str(record)?;
                    a.name = r.name.clone();
                    a.members.clear();
                    a.owners.clear();
                    let mut b = r.clone();
                    b.members.clear();
                    b.owners.clear();
                    a != b
                }
                None => true,
            };
            let existed = roles.contains_key(&r.name);
            if record_changed {
                let record = role_record(r)?;
                if let Some(&i) = new_role_at.get(&r.name) {
                    new_roles[i].1 = record.clone();
                } else if existed {
                    self.upsert_dir_role(r, source).await?;
                } else {
                    new_role_at.insert(r.name.clone(), new_roles.len());
                    new_roles.push((r.name.clone(), record.clone()));
                }
                roles.insert(r.name.clone(), (source.to_owned(), record));
            }
            let mut changed = record_changed;
            let holds_tasks = existed && with_tasks.contains(&r.name);
            let rows = role_users.entry(r.name.clone()).or_default();
            for (rel, wanted) in [
                (Relationship::Member, &r.members),
                (Relationship::Owner, &r.owners),
            ] {
                // A new role starts from nothing of the source's.
                let current: BTreeSet<String> = if existed {
                    rows.iter()
                        .filter(|((l, _), counted)| *l == rel && **counted)
                        .map(|((_, id), _)| id.clone())
                        .collect()
                } else {
                    BTreeSet::new()
                };
                let mut want = BTreeSet::new();
                for id in wanted {
                    if current.contains(id) || users.contains_key(id) {
                        want.insert(id.clone());
                    } else {
                        let reason = format!("{rel} {id} is not a directory user");
                        skip(&mut report, "role", &r.name, reason);
                    }
                }
                for id in current.difference(&want) {
                    rels.remove(&Address::role_user(&r.name, rel, id));
                    rows.remove(&(rel, id.clone()));
                    changed = true;
                    if holds_tasks {
                        affected.insert(id.clone());
                    }
                }
                for id in want.difference(&current) {
                    rels.put(Address::role_user(&r.name, rel, id));
                    rows.insert((rel, id.clone()), true);
                    changed = true;
                    if holds_tasks {
                        affected.insert(id.clone());
                    }
                }
            }
            match (existed, changed) {
                (false, _) => report.roles_created += 1,
                (true, true) => report.roles_updated += 1,
                (true, false) => report.unchanged += 1,
            }
        }

        self.insert_sync_records("dir_users", "id", &new_users, source, at)
            .await?;
        self.insert_sync_records("dir_roles", "name", &new_roles, source, at)
            .await?;
        self.delete_relationships_at(&rels.delete).await?;
        self.insert_sync_relationships(&rels.insert, source, at)
            .await?;

        // Deletions last, one by one, against what the plan has made of the directory.
        for name in &plan.delete_roles {
            match roles.get(name) {
                Some((src, _)) if src == source => {
                    if with_tasks.contains(name) {
                        let holders = self.role_holders(name).await?;
                        affected.extend(holders);
                    }
                    self.delete_dir_role(name).await?;
                    roles.remove(name);
                    report.roles_deleted += 1;
                }
                Some((src, _)) => {
                    let reason = format!("belongs to source {src}");
                    skip(&mut report, "role", name, reason);
                }
                None => skip(&mut report, "role", name, "not in Warden".into()),
            }
        }
        for id in &plan.delete_users {
            match users.get(id) {
                Some((src, _)) if src == source => {
                    if !q::nats_accounts(self.conn(), id).await?.is_empty() {
                        affected.insert(id.clone());
                    }
                    self.delete_dir_user(id).await?;
                    users.remove(id);
                    report.users_deleted += 1;
                }
                Some((src, _)) => {
                    let reason = format!("belongs to source {src}");
                    skip(&mut report, "user", id, reason);
                }
                None => skip(&mut report, "user", id, "not in Warden".into()),
            }
        }
        Ok((report, affected))
    }

    /// Inserts the users (`dir_users`, keyed by `id`) or roles (`dir_roles`, by `name`) a
    /// sync plan creates, `(key, record)`, in multi-row statements.
    async fn insert_sync_records(
        &mut self,
        table: &'static str,
        key: &'static str,
        records: &[(String, String)],
        source: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let backend = self.store.backend();
        let rows: Vec<RecordRow<'_>> = records
            .iter()
            .map(|(key, record)| RecordRow {
                key,
                source,
                record,
                at,
            })
            .collect();
        insert_rows(
            self.conn(),
            backend,
            table,
            &[key, "source", "record", "created_at", "updated_at"],
            "inserting directory records",
            &rows,
            bind_record,
        )
        .await
    }

    /// Inserts relationships that never expire, in multi-row statements.
    async fn insert_sync_relationships(
        &mut self,
        addresses: &BTreeSet<Address>,
        source: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let backend = self.store.backend();
        let rows: Vec<RelRow<'_>> = addresses
            .iter()
            .map(|address| RelRow {
                address,
                source,
                at,
            })
            .collect();
        insert_rows(
            self.conn(),
            backend,
            "dir_relationships",
            &[
                "object_type",
                "object_id",
                "related_type",
                "relationship",
                "related_id",
                "source",
                "expires_at",
                "created_at",
            ],
            "inserting relationships",
            &rows,
            bind_rel,
        )
        .await
    }

    /// Deletes the relationships at `addresses` (expired or not), a hundred per statement.
    async fn delete_relationships_at(&mut self, addresses: &[Address]) -> Result<(), StoreError> {
        // One `(… AND …) OR (… AND …)` term per address: both backends look each up
        // in the primary key (SQLite scans the table for a row-value `IN (VALUES …)`),
        // and a hundred terms stay far below SQLite's expression depth limit (1,000).
        const DELETE_ROWS: usize = 100;
        let backend = self.store.backend();
        for chunk in addresses.chunks(DELETE_ROWS) {
            let terms: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = |k: usize| placeholders_for(backend, i * 5 + k, 1);
                    format!(
                        "(object_type = {} AND object_id = {} AND related_type = {} \
                         AND relationship = {} AND related_id = {})",
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5)
                    )
                })
                .collect();
            let sql = format!("DELETE FROM dir_relationships WHERE {}", terms.join(" OR "));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in chunk {
                query = query
                    .bind(a.object_type.as_str())
                    .bind(a.object_id.as_str())
                    .bind(a.related_type.as_str())
                    .bind(a.relationship.as_str())
                    .bind(a.related_id.as_str());
            }
            query
                .execute(self.conn())
                .await
                .map_err(StoreError::query("deleting relationships"))?;
        }
        Ok(())
    }

    async fn update_dir_user_record(
        &mut self,
        user: &NextUser,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE dir_users SET source = $2, record = $3, updated_at = $4 WHERE id = $1")
            .bind(&user.id)
            .bind(source)
            .bind(user_record(user)?)
            .bind(now())
            .execute(self.conn())
            .await
            .map_err(StoreError::query("updating a directory user"))?;
        Ok(())
    }
}
