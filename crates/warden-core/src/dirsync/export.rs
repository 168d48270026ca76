//! Outbound: changes confirmed in Warden, written in the provider's form so an
//! operator (or a job with write access upstream) can apply them: LDIF modify
//! records for Active Directory, and a Microsoft Graph `$batch` body for Azure
//! AD. Fields are translated back through the same [`Mapping`] the import used;
//! fields the mapping does not carry to the provider are reported, not written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::ldif::line;
use super::mapping::{FieldShape, Mapping, Provider, user_field_shape};
use crate::directory::{DirectorySnapshot, NextRole, NextUser, SyncSkip};

/// One change confirmed in Warden, in Warden's terms (directory ids, role
/// names, directory field names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum DirectoryChange {
    /// A user field changed (`manager` holds directory ids).
    UserField {
        /// The user's directory id.
        user: String,
        /// The directory field.
        field: String,
        /// The values before (empty: unset).
        #[serde(default)]
        old: Vec<String>,
        /// The values after (empty: unset).
        #[serde(default)]
        new: Vec<String>,
    },
    /// A user was added to a role.
    AddMember {
        /// The role's name.
        role: String,
        /// The user's directory id.
        user: String,
    },
    /// A user was removed from a role.
    RemoveMember {
        /// The role's name.
        role: String,
        /// The user's directory id.
        user: String,
    },
}

/// Rendered changes, and what could not be rendered.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rendered<T> {
    /// The LDIF text, or the `$batch` bodies.
    pub output: T,
    /// Changes left out, with why.
    pub skipped: Vec<SyncSkip>,
}

/// Graph's limit of requests in one `$batch`.
pub const GRAPH_BATCH_LIMIT: usize = 20;
const GRAPH_OBJECTS: &str = "https://graph.microsoft.com/v1.0/directoryObjects/";

struct Lookup<'a> {
    users: BTreeMap<&'a str, &'a NextUser>,
    roles: BTreeMap<&'a str, &'a NextRole>,
}

impl<'a> Lookup<'a> {
    fn new(s: &'a DirectorySnapshot) -> Self {
        Lookup {
            users: s.users.iter().map(|u| (u.id.as_str(), u)).collect(),
            roles: s.roles.iter().map(|r| (r.name.as_str(), r)).collect(),
        }
    }
}

fn skipped(kind: &str, key: &str, reason: impl Into<String>) -> SyncSkip {
    SyncSkip {
        kind: kind.into(),
        key: key.into(),
        reason: reason.into(),
    }
}

/// The DN to write for a user: its DN, or AD's `<GUID=…>` form when only the
/// object id is known.
fn user_dn(u: &NextUser) -> Option<String> {
    u.distinguished_name
        .clone()
        .or_else(|| u.user_id.as_ref().map(|g| format!("<GUID={g}>")))
}

/// LDIF modify records for `changes` against `snapshot` (Warden's copy of the
/// source), under an AD `mapping`. Groups are addressed by their DN, or as
/// `<GUID=objectGUID>` (which AD accepts in place of a DN) when it is unknown.
pub fn to_ldif(
    changes: &[DirectoryChange],
    snapshot: &DirectorySnapshot,
    mapping: &Mapping,
) -> Rendered<String> {
    let look = Lookup::new(snapshot);
    let mut out = String::from("version: 1\n");
    let mut skips = Vec::new();
    for c in changes {
        match c {
            DirectoryChange::UserField {
                user,
                field,
                old,
                new,
            } => {
                let Some(u) = look.users.get(user.as_str()) else {
                    skips.push(skipped("user", user, "not a user of this source"));
                    continue;
                };
                let Some(dn) = user_dn(u) else {
                    skips.push(skipped("user", user, "has neither a DN nor an objectGUID"));
                    continue;
                };
                let (attr, values) = match user_values(mapping, &look, field, new) {
                    Ok(v) => v,
                    Err(e) => {
                        skips.push(skipped("user", user, e));
                        continue;
                    }
                };
                out.push('\n');
                out.push_str(&comment(&format!(
                    "{user}: {field} {} -> {}",
                    old.join("|"),
                    new.join("|")
                )));
                out.push_str(&line("dn", dn.as_bytes()));
                out.push_str("changetype: modify\n");
                out.push_str(&format!("replace: {attr}\n"));
                for v in &values {
                    out.push_str(&line(&attr, v.as_bytes()));
                }
                out.push_str("-\n");
            }
            DirectoryChange::AddMember { role, user }
            | DirectoryChange::RemoveMember { role, user } => {
                let add = matches!(c, DirectoryChange::AddMember { .. });
                let Some(attr) = mapping.role_attr("members") else {
                    skips.push(skipped("role", role, "the mapping does not sync members"));
                    continue;
                };
                let (Some(r), Some(u)) =
                    (look.roles.get(role.as_str()), look.users.get(user.as_str()))
                else {
                    skips.push(skipped(
                        "role",
                        role,
                        format!("role {role} or user {user} is not of this source"),
                    ));
                    continue;
                };
                let group_dn = r
                    .distinguished_name
                    .clone()
                    .or_else(|| r.role_id.as_ref().map(|g| format!("<GUID={g}>")));
                let (Some(group_dn), Some(member)) = (group_dn, user_dn(u)) else {
                    skips.push(skipped(
                        "role",
                        role,
                        "no DN or objectGUID for the group, or no DN for the user",
                    ));
                    continue;
                };
                out.push('\n');
                out.push_str(&line("dn", group_dn.as_bytes()));
                out.push_str("changetype: modify\n");
                out.push_str(&format!("{}: {attr}\n", if add { "add" } else { "delete" }));
                out.push_str(&line(attr, member.as_bytes()));
                out.push_str("-\n");
            }
        }
    }
    Rendered {
        output: out,
        skipped: skips,
    }
}

/// An LDIF comment line; control characters (a newline would end the comment
/// and start a record) become spaces.
fn comment(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("# {clean}\n")
}

/// The provider attribute and values for a user field change.
fn user_values(
    mapping: &Mapping,
    look: &Lookup<'_>,
    field: &str,
    new: &[String],
) -> Result<(String, Vec<String>), String> {
    let shape =
        user_field_shape(field).ok_or_else(|| format!("{field} is not a NEXT user field"))?;
    if matches!(
        field,
        "user_id" | "member_of" | "distinguished_name" | "created_date"
    ) {
        return Err(format!("{field} is set by the provider, not written back"));
    }
    let attr = mapping.user_attr(field).ok_or_else(|| {
        format!(
            "{field} has no {} attribute in the mapping",
            mapping.provider
        )
    })?;
    let values = match shape {
        FieldShape::Reference => new
            .iter()
            .map(|m| {
                let u = look
                    .users
                    .get(m.as_str())
                    .ok_or_else(|| format!("{field}: {m} is not a user of this source"))?;
                match mapping.provider {
                    Provider::Ad => user_dn(u),
                    Provider::Aad => u.user_id.clone(),
                }
                .ok_or_else(|| format!("{field}: {m} has no provider id"))
            })
            .collect::<Result<Vec<_>, String>>()?,
        _ => new.to_vec(),
    };
    Ok((attr.to_string(), values))
}

/// Microsoft Graph `$batch` bodies (at most [`GRAPH_BATCH_LIMIT`] requests each)
/// for `changes`: one `PATCH /users/{id}` per user with every changed field,
/// `PUT|DELETE /users/{id}/manager/$ref` for the manager, `POST
/// /groups/{id}/members/$ref` and `DELETE /groups/{id}/members/{user}/$ref` for
/// memberships.
pub fn to_graph_batches(
    changes: &[DirectoryChange],
    snapshot: &DirectorySnapshot,
    mapping: &Mapping,
) -> Rendered<Vec<Json>> {
    let look = Lookup::new(snapshot);
    let mut skips = Vec::new();
    let mut patches: BTreeMap<String, serde_json::Map<String, Json>> = BTreeMap::new();
    let mut requests: Vec<Json> = Vec::new();
    for c in changes {
        match c {
            DirectoryChange::UserField {
                user, field, new, ..
            } => {
                let Some(uid) = look
                    .users
                    .get(user.as_str())
                    .and_then(|u| u.user_id.clone())
                else {
                    skips.push(skipped(
                        "user",
                        user,
                        "not a user of this source (no Graph id)",
                    ));
                    continue;
                };
                let (attr, values) = match user_values(mapping, &look, field, new) {
                    Ok(v) => v,
                    Err(e) => {
                        skips.push(skipped("user", user, e));
                        continue;
                    }
                };
                let shape = user_field_shape(field);
                if shape == Some(FieldShape::Reference) {
                    requests.push(match values.first() {
                        Some(m) => {
                            json!({"method": "PUT", "url": format!("/users/{uid}/{attr}/$ref"),
                            "headers": {"Content-Type": "application/json"},
                            "body": {"@odata.id": format!("{GRAPH_OBJECTS}{m}")}})
                        }
                        None => {
                            json!({"method": "DELETE", "url": format!("/users/{uid}/{attr}/$ref")})
                        }
                    });
                    continue;
                }
                let value = match shape {
                    Some(FieldShape::Multi) => json!(values),
                    Some(FieldShape::Bool) => {
                        match values.first().map(|v| v.to_ascii_lowercase()) {
                            Some(v) if v == "true" => json!(true),
                            Some(v) if v == "false" => json!(false),
                            None => Json::Null,
                            Some(v) => {
                                skips.push(skipped(
                                    "user",
                                    user,
                                    format!("{field}: {v:?} is not true or false"),
                                ));
                                continue;
                            }
                        }
                    }
                    _ => values.first().map(|v| json!(v)).unwrap_or(Json::Null),
                };
                patches.entry(uid).or_default().insert(attr, value);
            }
            DirectoryChange::AddMember { role, user }
            | DirectoryChange::RemoveMember { role, user } => {
                let gid = look
                    .roles
                    .get(role.as_str())
                    .and_then(|r| r.role_id.clone());
                let uid = look
                    .users
                    .get(user.as_str())
                    .and_then(|u| u.user_id.clone());
                let (Some(gid), Some(uid)) = (gid, uid) else {
                    skips.push(skipped(
                        "role",
                        role,
                        format!("role {role} or user {user} has no Graph id"),
                    ));
                    continue;
                };
                requests.push(if matches!(c, DirectoryChange::AddMember { .. }) {
                    json!({"method": "POST", "url": format!("/groups/{gid}/members/$ref"),
                        "headers": {"Content-Type": "application/json"},
                        "body": {"@odata.id": format!("{GRAPH_OBJECTS}{uid}")}})
                } else {
                    json!({"method": "DELETE", "url": format!("/groups/{gid}/members/{uid}/$ref")})
                });
            }
        }
    }
    let mut all: Vec<Json> = patches
        .into_iter()
        .map(|(uid, body)| {
            json!({"method": "PATCH", "url": format!("/users/{uid}"),
                "headers": {"Content-Type": "application/json"}, "body": body})
        })
        .collect();
    all.extend(requests);
    let batches = all
        .chunks(GRAPH_BATCH_LIMIT)
        .map(|chunk| {
            let reqs: Vec<Json> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut r = r.clone();
                    if let Some(o) = r.as_object_mut() {
                        o.insert("id".into(), json!((i + 1).to_string()));
                    }
                    r
                })
                .collect();
            json!({ "requests": reqs })
        })
        .collect();
    Rendered {
        output: batches,
        skipped: skips,
    }
}

/// The upstream changes that proposals confirmed in Warden make to the directory
/// `current` (one source): role memberships added or removed on roles of that
/// source, and manager changes of its users, closed at or after `since` (unix
/// seconds), oldest first. Ownership, administration and task grants have no
/// field in the default mapping and stay Warden's own; proposals about records of
/// another source are left out, because that upstream is not this export's.
pub fn changes_from_proposals(
    proposals: &[crate::governance::Proposal],
    current: &DirectorySnapshot,
    since: i64,
) -> Vec<DirectoryChange> {
    use crate::governance::{Change, ProposalKind, ProposalStatus};
    let roles: std::collections::BTreeSet<&str> =
        current.roles.iter().map(|r| r.name.as_str()).collect();
    let users: std::collections::BTreeSet<&str> =
        current.users.iter().map(|u| u.id.as_str()).collect();
    let mut confirmed: Vec<&crate::governance::Proposal> = proposals
        .iter()
        .filter(|p| p.status == ProposalStatus::Confirmed)
        .filter(|p| p.closed_at.is_some_and(|t| t >= since))
        .collect();
    confirmed.sort_by_key(|p| (p.closed_at, p.created_at));
    let mut out = Vec::new();
    for p in confirmed {
        let a = &p.address;
        match (p.kind, p.change) {
            (ProposalKind::RoleMember, Change::Add | Change::Remove)
                if roles.contains(a.object_id.as_str())
                    && users.contains(a.related_id.as_str()) =>
            {
                let (role, user) = (a.object_id.clone(), a.related_id.clone());
                out.push(if p.change == Change::Add {
                    DirectoryChange::AddMember { role, user }
                } else {
                    DirectoryChange::RemoveMember { role, user }
                });
            }
            (ProposalKind::UserManager, _)
                if users.contains(a.object_id.as_str())
                    && users.contains(a.related_id.as_str()) =>
            {
                out.push(DirectoryChange::UserField {
                    user: a.object_id.clone(),
                    field: "manager".into(),
                    old: Vec::new(),
                    new: vec![a.related_id.clone()],
                });
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod from_proposals {
    use super::*;
    use crate::governance::{Change, Proposal, ProposalKind, ProposalStatus};

    fn proposal(
        id: &str,
        kind: ProposalKind,
        change: Change,
        object: &str,
        related: &str,
        status: ProposalStatus,
        closed_at: Option<i64>,
    ) -> Proposal {
        Proposal {
            id: id.into(),
            kind,
            change,
            address: kind.address(object, related),
            initiator: "admin".into(),
            reason: None,
            status,
            closer: None,
            justification: None,
            grant_expires_at: None,
            expires_at: None,
            created_at: 1,
            closed_at,
        }
    }

    #[test]
    fn confirmed_memberships_and_managers_of_the_source_only() {
        let current = DirectorySnapshot {
            source: "ad".into(),
            users: ["ann", "bob"]
                .iter()
                .map(|id| NextUser {
                    id: (*id).into(),
                    ..NextUser::default()
                })
                .collect(),
            roles: vec![NextRole {
                name: "ops".into(),
                ..NextRole::default()
            }],
        };
        use ProposalKind as K;
        use ProposalStatus as S;
        let list = vec![
            proposal(
                "p1",
                K::RoleMember,
                Change::Add,
                "ops",
                "ann",
                S::Confirmed,
                Some(20),
            ),
            proposal(
                "p2",
                K::RoleMember,
                Change::Remove,
                "ops",
                "bob",
                S::Confirmed,
                Some(10),
            ),
            proposal(
                "p3",
                K::RoleMember,
                Change::Add,
                "ops",
                "bob",
                S::Rejected,
                Some(30),
            ),
            proposal(
                "p4",
                K::RoleMember,
                Change::Add,
                "ops",
                "bob",
                S::Open,
                None,
            ),
            proposal(
                "p5",
                K::RoleMember,
                Change::Add,
                "local",
                "ann",
                S::Confirmed,
                Some(40),
            ),
            proposal(
                "p6",
                K::RoleOwner,
                Change::Add,
                "ops",
                "ann",
                S::Confirmed,
                Some(50),
            ),
            proposal(
                "p7",
                K::UserManager,
                Change::Update,
                "bob",
                "ann",
                S::Confirmed,
                Some(60),
            ),
            proposal(
                "p8",
                K::RoleMember,
                Change::Add,
                "ops",
                "ann",
                S::Confirmed,
                Some(5),
            ),
        ];
        let got = changes_from_proposals(&list, &current, 10);
        assert_eq!(
            got,
            vec![
                DirectoryChange::RemoveMember {
                    role: "ops".into(),
                    user: "bob".into()
                },
                DirectoryChange::AddMember {
                    role: "ops".into(),
                    user: "ann".into()
                },
                DirectoryChange::UserField {
                    user: "bob".into(),
                    field: "manager".into(),
                    old: vec![],
                    new: vec!["ann".into()]
                },
            ]
        );
    }
}
