//! Provider records → [`DirectorySnapshot`] under a [`Mapping`]: Warden ids and
//! role names by the mapping's rules, directory fields by the field map, and
//! references (manager, members, owners) resolved to Warden ids. What cannot be
//! used is reported as a [`SyncSkip`], never dropped silently.
//!
//! Also the way back ([`to_records`]): a snapshot as provider records, which is
//! how a delta is applied to what Warden holds.

use std::collections::{BTreeMap, BTreeSet};

use super::mapping::{
    FieldShape, Mapping, Provider, directory_name, role_field_shape, user_field_shape,
};
use super::records::{DirRecord, RecordKind, dn_key, kind_name};
use crate::directory::{DirectorySnapshot, NextRole, NextUser, SyncSkip};

/// A snapshot with the records that could not be mapped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    /// What the source holds, in directory fields.
    pub snapshot: DirectorySnapshot,
    /// Records (or references) left out, with why.
    pub skipped: Vec<SyncSkip>,
}

fn skip(kind: &str, key: &str, reason: impl Into<String>) -> SyncSkip {
    SyncSkip {
        kind: kind.to_string(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// How references are looked up: DNs compare normalised, ids exactly.
fn ref_key(provider: Provider, r: &str) -> String {
    match provider {
        Provider::Ad => dn_key(r),
        Provider::Aad => r.to_string(),
    }
}

/// Maps `records` into the snapshot of `source`.
pub fn to_snapshot(source: &str, mapping: &Mapping, records: &[DirRecord]) -> Mapped {
    let mut skipped = Vec::new();
    // Pass 1: names, and the index that resolves references.
    let mut users: Vec<(&DirRecord, String)> = Vec::new();
    let mut groups: Vec<(&DirRecord, String)> = Vec::new();
    let mut index: BTreeMap<String, (RecordKind, String)> = BTreeMap::new();
    let mut taken: BTreeMap<(bool, String), String> = BTreeMap::new();
    for rec in records {
        let (rules, is_user) = match rec.kind {
            RecordKind::User => (&mapping.user_id_from, true),
            RecordKind::Group => (&mapping.role_name_from, false),
        };
        let kind = kind_name(rec.kind);
        let Some(raw) = rules.iter().find_map(|a| rec.first(a)) else {
            skipped.push(skip(
                kind,
                &rec.key,
                format!(
                    "none of {} is set, so it has no Warden name",
                    rules.join(", ")
                ),
            ));
            continue;
        };
        let name = match directory_name(raw) {
            Ok(n) => n,
            Err(e) => {
                skipped.push(skip(kind, &rec.key, format!("no valid Warden name: {e}")));
                continue;
            }
        };
        if let Some(other) = taken.get(&(is_user, name.clone())) {
            skipped.push(skip(
                kind,
                &rec.key,
                format!("its Warden name {name:?} is already taken by {other}"),
            ));
            continue;
        }
        taken.insert((is_user, name.clone()), rec.key.clone());
        index.insert(
            ref_key(mapping.provider, &rec.key),
            (rec.kind, name.clone()),
        );
        if is_user {
            users.push((rec, name));
        } else {
            groups.push((rec, name));
        }
    }

    // Pass 2: roles (their members give users' member_of).
    let mut member_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut roles = Vec::new();
    for (rec, name) in &groups {
        let mut role = NextRole {
            name: name.clone(),
            ..NextRole::default()
        };
        for (field, attr) in &mapping.roles {
            let values = rec.get(attr);
            let Some(shape) = role_field_shape(field) else {
                continue;
            };
            if shape == FieldShape::References {
                let mut ids = BTreeSet::new();
                for r in values {
                    match index.get(&ref_key(mapping.provider, r)) {
                        Some((RecordKind::User, id)) => {
                            ids.insert(id.clone());
                        }
                        Some((RecordKind::Group, g)) => skipped.push(skip(
                            "role",
                            name,
                            format!(
                                "{field}: {r} is the group {g}; nested groups are not expanded"
                            ),
                        )),
                        None => skipped.push(skip(
                            "role",
                            name,
                            format!("{field}: {r} is not a user of this source; left out"),
                        )),
                    }
                }
                let ids: Vec<String> = ids.into_iter().collect();
                if field == "members" {
                    for id in &ids {
                        member_of
                            .entry(id.clone())
                            .or_default()
                            .insert(name.clone());
                    }
                    role.members = ids;
                } else {
                    role.owners = ids;
                }
            } else if let Err(e) = set_role_field(&mut role, field, values.to_vec()) {
                skipped.push(skip("role", name, format!("{field}: {e}; left empty")));
            }
        }
        if role.distinguished_name.is_none() && mapping.roles.contains_key("distinguished_name") {
            role.distinguished_name = rec.dn.clone();
        }
        roles.push(role);
    }

    // Pass 3: users.
    let mut out_users = Vec::new();
    for (rec, id) in &users {
        let mut user = NextUser {
            id: id.clone(),
            ..NextUser::default()
        };
        let mut groups_of: BTreeSet<String> = member_of.remove(id).unwrap_or_default();
        for (field, attr) in &mapping.users {
            let values = rec.get(attr);
            match field.as_str() {
                "manager" => {
                    let Some(r) = values.first() else { continue };
                    match index.get(&ref_key(mapping.provider, r)) {
                        Some((RecordKind::User, m)) => user.manager = Some(m.clone()),
                        _ => skipped.push(skip(
                            "user",
                            id,
                            format!("manager: {r} is not a user of this source; left empty"),
                        )),
                    }
                }
                "member_of" => {
                    // Groups of this source by their role name; others as the provider gave them.
                    for r in values {
                        match index.get(&ref_key(mapping.provider, r)) {
                            Some((RecordKind::Group, g)) => groups_of.insert(g.clone()),
                            _ => groups_of.insert(r.clone()),
                        };
                    }
                }
                _ => {
                    if let Err(e) = set_user_field(&mut user, field, values.to_vec()) {
                        skipped.push(skip("user", id, format!("{field}: {e}; left empty")));
                    }
                }
            }
        }
        if user.distinguished_name.is_none() && mapping.users.contains_key("distinguished_name") {
            user.distinguished_name = rec.dn.clone();
        }
        user.member_of = groups_of.into_iter().collect();
        out_users.push(user);
    }
    out_users.sort_by(|a, b| a.id.cmp(&b.id));
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    Mapped {
        snapshot: DirectorySnapshot {
            source: source.to_string(),
            users: out_users,
            roles,
        },
        skipped,
    }
}

fn single(values: Vec<String>) -> Option<String> {
    values.into_iter().find(|v| !v.trim().is_empty())
}

fn boolean(values: Vec<String>) -> Result<Option<bool>, String> {
    match single(values) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(format!("{v:?} is not true or false")),
    }
}

/// Sets one directory user field from provider values (shape by [`user_field_shape`]).
pub fn set_user_field(u: &mut NextUser, field: &str, values: Vec<String>) -> Result<(), String> {
    let s = match field {
        "account_enabled" => {
            u.account_enabled = boolean(values)?;
            return Ok(());
        }
        "business_phones" => {
            u.business_phones = values;
            return Ok(());
        }
        "member_of" => {
            u.member_of = values;
            return Ok(());
        }
        _ => single(values),
    };
    let slot = match field {
        "user_id" => &mut u.user_id,
        "created_date" => &mut u.created_date,
        "deleted_date" => &mut u.deleted_date,
        "company_name" => &mut u.company_name,
        "country" => &mut u.country,
        "city" => &mut u.city,
        "office_location" => &mut u.office_location,
        "postal_code" => &mut u.postal_code,
        "state" => &mut u.state,
        "department" => &mut u.department,
        "name" => &mut u.name,
        "employee_id" => &mut u.employee_id,
        "given_name" => &mut u.given_name,
        "job_title" => &mut u.job_title,
        "email" => &mut u.email,
        "user_nickname" => &mut u.user_nickname,
        "manager" => &mut u.manager,
        "mobile_phone" => &mut u.mobile_phone,
        "distinguished_name" => &mut u.distinguished_name,
        "preferred_language" => &mut u.preferred_language,
        "street_address" => &mut u.street_address,
        "surname" => &mut u.surname,
        "usage_location" => &mut u.usage_location,
        "user_principal_name" => &mut u.user_principal_name,
        "user_type" => &mut u.user_type,
        other => return Err(format!("unknown user field {other}")),
    };
    *slot = s;
    Ok(())
}

/// One directory user field as text values (empty when unset).
pub fn user_field(u: &NextUser, field: &str) -> Vec<String> {
    let opt = |o: &Option<String>| o.iter().cloned().collect::<Vec<_>>();
    match field {
        "id" => vec![u.id.clone()],
        "account_enabled" => u.account_enabled.iter().map(|b| b.to_string()).collect(),
        "business_phones" => u.business_phones.clone(),
        "member_of" => u.member_of.clone(),
        "user_id" => opt(&u.user_id),
        "created_date" => opt(&u.created_date),
        "deleted_date" => opt(&u.deleted_date),
        "company_name" => opt(&u.company_name),
        "country" => opt(&u.country),
        "city" => opt(&u.city),
        "office_location" => opt(&u.office_location),
        "postal_code" => opt(&u.postal_code),
        "state" => opt(&u.state),
        "department" => opt(&u.department),
        "name" => opt(&u.name),
        "employee_id" => opt(&u.employee_id),
        "given_name" => opt(&u.given_name),
        "job_title" => opt(&u.job_title),
        "email" => opt(&u.email),
        "user_nickname" => opt(&u.user_nickname),
        "manager" => opt(&u.manager),
        "mobile_phone" => opt(&u.mobile_phone),
        "distinguished_name" => opt(&u.distinguished_name),
        "preferred_language" => opt(&u.preferred_language),
        "street_address" => opt(&u.street_address),
        "surname" => opt(&u.surname),
        "usage_location" => opt(&u.usage_location),
        "user_principal_name" => opt(&u.user_principal_name),
        "user_type" => opt(&u.user_type),
        _ => Vec::new(),
    }
}

/// Sets one directory role field from provider values.
pub fn set_role_field(r: &mut NextRole, field: &str, values: Vec<String>) -> Result<(), String> {
    match field {
        "mail_enabled" => r.mail_enabled = boolean(values)?,
        "security_enabled" => r.security_enabled = boolean(values)?,
        "group_types" => r.group_types = values,
        "members" => r.members = values,
        "owners" => r.owners = values,
        "role_id" => r.role_id = single(values),
        "created_date" => r.created_date = single(values),
        "deleted_date" => r.deleted_date = single(values),
        "classification" => r.classification = single(values),
        "description" => r.description = single(values),
        "display_name" => r.display_name = single(values),
        "group_nickname" => r.group_nickname = single(values),
        "visibility" => r.visibility = single(values),
        "distinguished_name" => r.distinguished_name = single(values),
        other => return Err(format!("unknown role field {other}")),
    }
    Ok(())
}

/// One directory role field as text values.
pub fn role_field(r: &NextRole, field: &str) -> Vec<String> {
    let opt = |o: &Option<String>| o.iter().cloned().collect::<Vec<_>>();
    let b = |o: &Option<bool>| o.iter().map(|b| b.to_string()).collect::<Vec<_>>();
    match field {
        "name" => vec![r.name.clone()],
        "mail_enabled" => b(&r.mail_enabled),
        "security_enabled" => b(&r.security_enabled),
        "group_types" => r.group_types.clone(),
        "members" => r.members.clone(),
        "owners" => r.owners.clone(),
        "role_id" => opt(&r.role_id),
        "created_date" => opt(&r.created_date),
        "deleted_date" => opt(&r.deleted_date),
        "classification" => opt(&r.classification),
        "description" => opt(&r.description),
        "display_name" => opt(&r.display_name),
        "group_nickname" => opt(&r.group_nickname),
        "visibility" => opt(&r.visibility),
        "distinguished_name" => opt(&r.distinguished_name),
        _ => Vec::new(),
    }
}

/// How a snapshot user is referred to in the provider's terms: its DN (AD) or
/// object id (Graph), else a Warden placeholder that only this module reads.
pub fn user_key(provider: Provider, u: &NextUser) -> String {
    match provider {
        Provider::Ad => u
            .distinguished_name
            .clone()
            .unwrap_or_else(|| format!("warden-user={}", u.id)),
        Provider::Aad => u
            .user_id
            .clone()
            .unwrap_or_else(|| format!("warden-user:{}", u.id)),
    }
}

/// How a snapshot role is referred to: its object id, else a placeholder. (AD
/// groups' DNs are not among the directory user fields; deltas find groups by RDN.)
pub fn role_key(provider: Provider, r: &NextRole) -> String {
    match (provider, &r.role_id) {
        (Provider::Ad, Some(g)) => format!("<GUID={g}>"),
        (Provider::Ad, None) => format!("warden-role={}", r.name),
        (Provider::Aad, Some(g)) => g.clone(),
        (Provider::Aad, None) => format!("warden-role:{}", r.name),
    }
}

/// A snapshot as provider records under `mapping`, such that [`to_snapshot`]
/// gives the same snapshot back (the first id / name attribute carries the
/// Warden id, so ids stay stable unless a delta changes that attribute).
pub fn to_records(snapshot: &DirectorySnapshot, mapping: &Mapping) -> Vec<DirRecord> {
    let p = mapping.provider;
    let role_names: BTreeSet<&str> = snapshot.roles.iter().map(|r| r.name.as_str()).collect();
    let keys: BTreeMap<&str, String> = snapshot
        .users
        .iter()
        .map(|u| (u.id.as_str(), user_key(p, u)))
        .collect();
    let key_of = |id: &String| keys.get(id.as_str()).cloned().unwrap_or_else(|| id.clone());
    let mut out = Vec::new();
    for u in &snapshot.users {
        let key = user_key(p, u);
        let dn = (p == Provider::Ad && u.distinguished_name.is_some()).then(|| key.clone());
        let mut rec = DirRecord::new(RecordKind::User, key, dn);
        for (field, attr) in &mapping.users {
            let values = match field.as_str() {
                "manager" => u.manager.iter().map(&key_of).collect(),
                // Memberships of this source's roles come back from the roles.
                "member_of" => u
                    .member_of
                    .iter()
                    .filter(|g| !role_names.contains(g.as_str()))
                    .cloned()
                    .collect(),
                f => user_field(u, f),
            };
            rec.set(attr, values);
        }
        if let Some(first) = mapping.user_id_from.first()
            && !mapping
                .users
                .values()
                .any(|a| a.eq_ignore_ascii_case(first))
        {
            rec.set(first, vec![u.id.clone()]);
        }
        if p == Provider::Ad {
            rec.set(
                "objectClass",
                mapping.user_classes.iter().take(1).cloned().collect(),
            );
        }
        out.push(rec);
    }
    for r in &snapshot.roles {
        let mut rec = DirRecord::new(RecordKind::Group, role_key(p, r), None);
        for (field, attr) in &mapping.roles {
            let values = match field.as_str() {
                "members" => r.members.iter().map(&key_of).collect(),
                "owners" => r.owners.iter().map(&key_of).collect(),
                f => role_field(r, f),
            };
            rec.set(attr, values);
        }
        if let Some(first) = mapping.role_name_from.first()
            && !mapping
                .roles
                .values()
                .any(|a| a.eq_ignore_ascii_case(first))
        {
            rec.set(first, vec![r.name.clone()]);
        }
        out.push(rec);
    }
    out
}

/// The shape of `field` for users or roles (for callers that validate field names).
pub fn field_shape(user: bool, field: &str) -> Option<FieldShape> {
    if user {
        user_field_shape(field)
    } else {
        role_field_shape(field)
    }
}
