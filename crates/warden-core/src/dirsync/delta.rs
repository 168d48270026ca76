//! Delta sync: change records applied to what Warden holds for a source, giving
//! the new snapshot (which [`super::plan::plan`] then diffs). Two inputs:
//! LDIF change records (`changetype: add|delete|modify`) and Microsoft Graph
//! delta responses (objects with only their changed properties, `@removed`
//! for deletions, `members@delta` for membership changes).
//!
//! The current snapshot is turned back into provider records
//! ([`super::snapshot::to_records`]), the changes are applied in the provider's
//! own terms, and the records are mapped again, so a delta and a full export
//! go through the same mapping.

use serde_json::Value as Json;

use super::ldif::{LdifRecord, ModOp};
use super::mapping::{Mapping, Provider, directory_name};
use super::records::{
    DirRecord, RecordKind, dn_key, from_graph_object, from_ldap_entry, rdn_value,
};
use super::snapshot::{Mapped, to_records, to_snapshot};
use crate::directory::{DirectorySnapshot, SyncSkip};

/// Finds the record an LDIF change's DN names: by DN, or (groups, whose DN is
/// not a NEXT field) by the first RDN's value as a role name.
fn find_by_dn(records: &[DirRecord], dn: &str) -> Option<usize> {
    // AD's `<GUID=…>` form names the object by its objectGUID.
    if let Some(g) = dn.strip_prefix("<GUID=").and_then(|g| g.strip_suffix('>')) {
        return records.iter().position(|r| {
            r.first("objectGUID")
                .is_some_and(|o| o.eq_ignore_ascii_case(g))
        });
    }
    let key = dn_key(dn);
    records
        .iter()
        .position(|r| {
            r.dn.as_deref().map(dn_key).as_deref() == Some(key.as_str()) || dn_key(&r.key) == key
        })
        .or_else(|| {
            let name = directory_name(rdn_value(dn)).ok()?;
            records.iter().position(|r| {
                r.kind == RecordKind::Group
                    && (r.first("cn").map(directory_name) == Some(Ok(name.clone()))
                        || r.get("name")
                            .iter()
                            .any(|n| directory_name(n).as_ref() == Ok(&name)))
            })
        })
}

/// Applies LDIF change records to `current`.
pub fn apply_ldif(
    current: &DirectorySnapshot,
    mapping: &Mapping,
    changes: &[LdifRecord],
) -> Mapped {
    let mut records = to_records(current, mapping);
    let mut skipped = Vec::new();
    for change in changes {
        let dn = change.dn();
        match change {
            LdifRecord::Entry { attrs, .. } => match from_ldap_entry(dn, attrs, mapping) {
                Ok(Some(rec)) => match find_by_dn(&records, dn) {
                    Some(i) => records[i] = rec,
                    None => records.push(rec),
                },
                Ok(None) => {}
                Err(s) => skipped.push(s),
            },
            LdifRecord::Delete { .. } => match find_by_dn(&records, dn) {
                Some(i) => {
                    let gone = records.remove(i);
                    drop_references(&mut records, mapping, &gone.key);
                }
                None => skipped.push(unknown(dn, "delete")),
            },
            LdifRecord::Modify { mods, .. } => {
                let Some(i) = find_by_dn(&records, dn) else {
                    skipped.push(unknown(dn, "modify"));
                    continue;
                };
                let rec = &mut records[i];
                // Give the record its real DN, so later references by DN resolve.
                if rec.dn.is_none() && rec.kind == RecordKind::Group {
                    rec.dn = Some(dn.to_string());
                    rec.key = dn.to_string();
                }
                let is_dn_valued = |attr: &str| {
                    ["member", "managedby", "manager", "memberof"]
                        .contains(&attr.to_ascii_lowercase().as_str())
                };
                for m in mods {
                    let values: Vec<String> = m
                        .values
                        .iter()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .collect();
                    let same = |a: &String, b: &String| {
                        if is_dn_valued(&m.attr) {
                            dn_key(a) == dn_key(b)
                        } else {
                            a == b
                        }
                    };
                    let mut now = rec.get(&m.attr).to_vec();
                    match m.op {
                        ModOp::Replace => now = values,
                        ModOp::Add => {
                            for v in values {
                                if !now.iter().any(|n| same(n, &v)) {
                                    now.push(v);
                                }
                            }
                        }
                        ModOp::Delete if values.is_empty() => now.clear(),
                        ModOp::Delete => now.retain(|n| !values.iter().any(|v| same(n, v))),
                    }
                    rec.set(&m.attr, now);
                }
            }
            LdifRecord::ModRdn { .. } => skipped.push(SyncSkip {
                kind: "entry".into(),
                key: dn.to_string(),
                reason: "modrdn/moddn changes are not applied as a delta; run a full sync".into(),
            }),
        }
    }
    let mut mapped = to_snapshot(&current.source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    mapped
}

/// Removes references to a deleted object (as the directory itself does: a
/// deleted AD user leaves its groups), so they do not linger as unresolved.
fn drop_references(records: &mut [DirRecord], mapping: &Mapping, key: &str) {
    let attrs: Vec<&str> = [
        mapping.role_attr("members"),
        mapping.role_attr("owners"),
        mapping.user_attr("manager"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let gone = match mapping.provider {
        Provider::Ad => dn_key(key),
        Provider::Aad => key.to_string(),
    };
    for rec in records.iter_mut() {
        for attr in &attrs {
            let now: Vec<String> = rec
                .get(attr)
                .iter()
                .filter(|v| match mapping.provider {
                    Provider::Ad => dn_key(v) != gone,
                    Provider::Aad => **v != gone,
                })
                .cloned()
                .collect();
            if now.len() != rec.get(attr).len() {
                rec.set(attr, now);
            }
        }
    }
}

fn unknown(dn: &str, op: &str) -> SyncSkip {
    SyncSkip {
        kind: "entry".into(),
        key: dn.to_string(),
        reason: format!("{op} of an entry Warden does not hold for this source"),
    }
}

/// Applies Graph delta responses (users and groups, each as one or more pages)
/// to `current`.
pub fn apply_graph(
    current: &DirectorySnapshot,
    mapping: &Mapping,
    users: &[serde_json::Map<String, Json>],
    groups: &[serde_json::Map<String, Json>],
) -> Mapped {
    debug_assert_eq!(mapping.provider, Provider::Aad);
    let mut records = to_records(current, mapping);
    let mut skipped = Vec::new();
    for (kind, objects) in [(RecordKind::User, users), (RecordKind::Group, groups)] {
        for obj in objects {
            let Some(id) = obj.get("id").and_then(Json::as_str) else {
                skipped.push(SyncSkip {
                    kind: super::records::kind_name(kind).into(),
                    key: "(no id)".into(),
                    reason: "a delta object without \"id\"".into(),
                });
                continue;
            };
            let pos = records.iter().position(|r| r.kind == kind && r.key == id);
            if obj.contains_key("@removed") {
                if let Some(i) = pos {
                    let gone = records.remove(i);
                    drop_references(&mut records, mapping, &gone.key);
                }
                continue;
            }
            let partial = match from_graph_object(kind, obj) {
                Ok(r) => r,
                Err(s) => {
                    skipped.push(s);
                    continue;
                }
            };
            let i = match pos {
                Some(i) => i,
                None => {
                    records.push(DirRecord::new(kind, id, None));
                    records.len() - 1
                }
            };
            let rec = &mut records[i];
            for (attr, values) in partial.attrs {
                rec.attrs.insert(attr, values);
            }
            // `members@delta` / `owners@delta`: additions, and `@removed` entries.
            for (prop, attr) in [("members@delta", "members"), ("owners@delta", "owners")] {
                let Some(Json::Array(items)) = obj.get(prop) else {
                    continue;
                };
                let mut now = rec.get(attr).to_vec();
                for item in items {
                    let Some(mid) = item.get("id").and_then(Json::as_str) else {
                        continue;
                    };
                    if item.get("@removed").is_some() {
                        now.retain(|m| m != mid);
                    } else if !now.iter().any(|m| m == mid) {
                        now.push(mid.to_string());
                    }
                }
                rec.set(attr, now);
            }
        }
    }
    let mut mapped = to_snapshot(&current.source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    mapped
}
