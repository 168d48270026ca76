//! The sync plan: what turns Warden's copy of one source into the incoming
//! snapshot. Records are matched by the provider's object id (`user_id`,
//! `role_id`) when both sides have one, so a rename upstream is an update of the
//! same record; otherwise by Warden id / role name. Applying the plan and
//! planning again against the result gives an empty plan.

use std::collections::{BTreeMap, BTreeSet};

use crate::directory::{DirectorySnapshot, NextRole, NextUser, SyncPlan, SyncSkip};

/// One side's records, indexed for matching.
trait Keyed: Clone + PartialEq {
    fn name(&self) -> &str;
    fn object_id(&self) -> Option<&str>;
    fn normalised(&self) -> Self;
    const KIND: &'static str;
}

impl Keyed for NextUser {
    fn name(&self) -> &str {
        &self.id
    }
    fn object_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
    fn normalised(&self) -> Self {
        let mut u = self.clone();
        u.member_of.sort();
        u.member_of.dedup();
        u
    }
    const KIND: &'static str = "user";
}

impl Keyed for NextRole {
    fn name(&self) -> &str {
        &self.name
    }
    fn object_id(&self) -> Option<&str> {
        self.role_id.as_deref()
    }
    fn normalised(&self) -> Self {
        let mut r = self.clone();
        for list in [&mut r.members, &mut r.owners] {
            list.sort();
            list.dedup();
        }
        r
    }
    const KIND: &'static str = "role";
}

struct Diff<T> {
    create: Vec<T>,
    update: Vec<T>,
    delete: Vec<String>,
    unchanged: usize,
}

fn diff<T: Keyed>(current: &[T], incoming: &[T], skipped: &mut Vec<SyncSkip>) -> Diff<T> {
    let by_oid: BTreeMap<&str, usize> = current
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.object_id().map(|o| (o, i)))
        .collect();
    let by_name: BTreeMap<&str, usize> = current
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name(), i))
        .collect();
    let mut matched: BTreeSet<usize> = BTreeSet::new();
    let mut seen_names: BTreeSet<&str> = BTreeSet::new();
    let mut seen_oids: BTreeSet<&str> = BTreeSet::new();
    let mut out = Diff {
        create: Vec::new(),
        update: Vec::new(),
        delete: Vec::new(),
        unchanged: 0,
    };
    let mut skip = |key: &str, reason: String| {
        skipped.push(SyncSkip {
            kind: T::KIND.into(),
            key: key.to_string(),
            reason,
        })
    };
    for rec in incoming {
        if !seen_names.insert(rec.name()) {
            skip(
                rec.name(),
                "appears twice in the snapshot; the first one is used".into(),
            );
            continue;
        }
        if let Some(o) = rec.object_id()
            && !seen_oids.insert(o)
        {
            skip(
                rec.name(),
                format!("object id {o} appears twice in the snapshot; the first one is used"),
            );
            continue;
        }
        let by_id = rec.object_id().and_then(|o| by_oid.get(o)).copied();
        let target = match by_id {
            Some(i) => Some(i),
            None => match by_name.get(rec.name()).copied() {
                // Same name, but Warden's record is another object: refuse to merge two people.
                Some(i) => match (current[i].object_id(), rec.object_id()) {
                    (Some(a), Some(b)) if a != b => {
                        skip(
                            rec.name(),
                            format!(
                                "Warden's {} {} is object {a}, the source's is {b}; resolve the clash by hand",
                                T::KIND,
                                rec.name()
                            ),
                        );
                        matched.insert(i);
                        continue;
                    }
                    _ => Some(i),
                },
                None => None,
            },
        };
        // A rename onto a name that another (unmatched) record still holds.
        if let Some(i) = target
            && current[i].name() != rec.name()
            && let Some(&j) = by_name.get(rec.name())
            && j != i
        {
            skip(
                rec.name(),
                format!(
                    "renamed from {} to a name Warden's {} {} still holds",
                    current[i].name(),
                    T::KIND,
                    current[j].name()
                ),
            );
            matched.insert(i);
            matched.insert(j);
            continue;
        }
        match target {
            Some(i) => {
                matched.insert(i);
                if current[i].normalised() == rec.normalised() {
                    out.unchanged += 1;
                } else {
                    out.update.push(rec.normalised());
                }
            }
            None => out.create.push(rec.normalised()),
        }
    }
    for (i, c) in current.iter().enumerate() {
        if !matched.contains(&i) {
            out.delete.push(c.name().to_string());
        }
    }
    out.delete.sort();
    out
}

/// The plan that turns `current` (what Warden holds for the source) into `incoming`.
pub fn plan(current: &DirectorySnapshot, incoming: &DirectorySnapshot) -> SyncPlan {
    let mut skipped = Vec::new();
    let users = diff(&current.users, &incoming.users, &mut skipped);
    let roles = diff(&current.roles, &incoming.roles, &mut skipped);
    SyncPlan {
        source: incoming.source.clone(),
        create_users: users.create,
        update_users: users.update,
        delete_users: users.delete,
        create_roles: roles.create,
        update_roles: roles.update,
        delete_roles: roles.delete,
        skipped,
        unchanged: users.unchanged + roles.unchanged,
    }
}

/// What applying `plan` to `current` gives (the way the governance store applies
/// it, as a pure function: used to check idempotency and to chain deltas).
pub fn apply(current: &DirectorySnapshot, plan: &SyncPlan) -> DirectorySnapshot {
    fn merge<T: Keyed>(current: &[T], create: &[T], update: &[T], delete: &[String]) -> Vec<T> {
        let mut out: Vec<T> = current
            .iter()
            .filter(|c| !delete.iter().any(|d| d == c.name()))
            .cloned()
            .collect();
        for u in update {
            let pos = out.iter().position(|c| {
                (u.object_id().is_some() && c.object_id() == u.object_id()) || c.name() == u.name()
            });
            match pos {
                Some(p) => out[p] = u.clone(),
                None => out.push(u.clone()),
            }
        }
        out.extend(create.iter().cloned());
        out.sort_by(|a, b| a.name().cmp(b.name()));
        out
    }
    DirectorySnapshot {
        source: plan.source.clone(),
        users: merge(
            &current.users,
            &plan.create_users,
            &plan.update_users,
            &plan.delete_users,
        ),
        roles: merge(
            &current.roles,
            &plan.create_roles,
            &plan.update_roles,
            &plan.delete_roles,
        ),
    }
}
