//! Delta sync: change records applied to what Warden holds for a source, giving
//! the new snapshot (which [`super::plan::plan`] then diffs). Two inputs:
//! LDIF change records (`changetype: add|delete|modify|modrdn`) and Microsoft Graph
//! delta responses (objects with only their changed properties, `@removed`
//! for deletions, `members@delta` for membership changes).
//!
//! The current snapshot is turned back into provider records
//! ([`super::snapshot::to_records`]), the changes are applied in the provider's
//! own terms, and the records are mapped again, so a delta and a full export
//! go through the same mapping.

use std::collections::{HashMap, HashSet};

use serde_json::Value as Json;

use super::ldif::{LdifRecord, ModOp};
use super::mapping::{Mapping, Provider, directory_name};
use super::records::{
    DirRecord, RecordKind, dn_key, from_graph_object, from_ldap_entry, rdn_value,
};
use super::snapshot::{Mapped, to_records, to_snapshot};
use crate::directory::{DirectorySnapshot, SyncSkip};

/// Records with lookups by DN, `objectGUID` and group name, kept in step as
/// changes are applied, so a delta of n changes over m records costs n lookups
/// rather than n × m scans.
struct Indexed {
    records: Vec<Option<DirRecord>>,
    by_dn: HashMap<String, usize>,
    by_guid: HashMap<String, usize>,
    by_group_name: HashMap<String, usize>,
}

impl Indexed {
    fn new(records: Vec<DirRecord>) -> Indexed {
        let mut ix = Indexed {
            records: records.into_iter().map(Some).collect(),
            by_dn: HashMap::new(),
            by_guid: HashMap::new(),
            by_group_name: HashMap::new(),
        };
        for i in 0..ix.records.len() {
            ix.index(i);
        }
        ix
    }

    /// The lookup keys of a record: DN keys, GUID, and (groups) names from `cn` / `name`.
    fn keys(rec: &DirRecord) -> (Vec<String>, Option<String>, Vec<String>) {
        let mut dns = vec![dn_key(&rec.key)];
        if let Some(dn) = &rec.dn {
            dns.push(dn_key(dn));
        }
        let guid = rec.first("objectGUID").map(str::to_ascii_lowercase);
        let names = if rec.kind == RecordKind::Group {
            rec.get("cn")
                .iter()
                .take(1)
                .chain(rec.get("name"))
                .filter_map(|n| directory_name(n).ok())
                .collect()
        } else {
            Vec::new()
        };
        (dns, guid, names)
    }

    fn index(&mut self, i: usize) {
        let Some(rec) = &self.records[i] else { return };
        let (dns, guid, names) = Self::keys(rec);
        for d in dns {
            self.by_dn.insert(d, i);
        }
        if let Some(g) = guid {
            self.by_guid.insert(g, i);
        }
        for n in names {
            self.by_group_name.entry(n).or_insert(i);
        }
    }

    fn unindex(&mut self, i: usize) {
        let Some(rec) = &self.records[i] else { return };
        let (dns, guid, names) = Self::keys(rec);
        for d in dns {
            if self.by_dn.get(&d) == Some(&i) {
                self.by_dn.remove(&d);
            }
        }
        if let Some(g) = guid
            && self.by_guid.get(&g) == Some(&i)
        {
            self.by_guid.remove(&g);
        }
        for n in names {
            if self.by_group_name.get(&n) == Some(&i) {
                self.by_group_name.remove(&n);
            }
        }
    }

    /// The record an LDIF change's DN names: AD's `<GUID=…>` form by objectGUID,
    /// else by DN, else (groups, whose DN is not a directory field) by the first RDN's
    /// value as a role name.
    fn find(&self, dn: &str) -> Option<usize> {
        if let Some(g) = dn.strip_prefix("<GUID=").and_then(|g| g.strip_suffix('>')) {
            return self.by_guid.get(&g.to_ascii_lowercase()).copied();
        }
        self.by_dn.get(&dn_key(dn)).copied().or_else(|| {
            let name = directory_name(rdn_value(dn)).ok()?;
            self.by_group_name.get(&name).copied()
        })
    }

    /// Puts `rec` at `i` (replacing) or at the end.
    fn put(&mut self, i: Option<usize>, rec: DirRecord) -> usize {
        let i = match i {
            Some(i) => {
                self.unindex(i);
                self.records[i] = Some(rec);
                i
            }
            None => {
                self.records.push(Some(rec));
                self.records.len() - 1
            }
        };
        self.index(i);
        i
    }

    fn take(&mut self, i: usize) -> Option<DirRecord> {
        self.unindex(i);
        self.records[i].take()
    }

    fn into_records(self) -> Vec<DirRecord> {
        self.records.into_iter().flatten().collect()
    }
}

/// Applies LDIF change records to `current`.
pub fn apply_ldif(
    current: &DirectorySnapshot,
    mapping: &Mapping,
    changes: &[LdifRecord],
) -> Mapped {
    let mut ix = Indexed::new(to_records(current, mapping));
    let mut gone: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    for change in changes {
        let dn = change.dn();
        match change {
            LdifRecord::Entry { attrs, .. } => match from_ldap_entry(dn, attrs, mapping) {
                Ok(Some(rec)) => {
                    ix.put(ix.find(dn), rec);
                }
                Ok(None) => {}
                Err(s) => skipped.push(s),
            },
            LdifRecord::Delete { .. } => match ix.find(dn).and_then(|i| ix.take(i)) {
                Some(rec) => gone.push(rec.key),
                None => skipped.push(unknown(dn, "delete")),
            },
            LdifRecord::Modify { mods, .. } => {
                let Some(i) = ix.find(dn) else {
                    skipped.push(unknown(dn, "modify"));
                    continue;
                };
                let Some(mut rec) = ix.take(i) else { continue };
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
                ix.put(Some(i), rec);
            }
            LdifRecord::ModRdn {
                new_rdn,
                new_superior,
                delete_old_rdn,
                ..
            } => {
                let Some(i) = ix.find(dn) else {
                    skipped.push(unknown(dn, "modrdn"));
                    continue;
                };
                let Some(rec) = ix.take(i) else { continue };
                let (rec, old_dn, new_dn) =
                    renamed(rec, dn, new_rdn, new_superior.as_deref(), *delete_old_rdn);
                ix.put(Some(i), rec);
                // As the directory does (AD keeps links by object, OpenLDAP's refint by DN):
                // references to the old DN now name the new one.
                rewrite_references(&mut ix.records, mapping, &old_dn, &new_dn);
            }
        }
    }
    let mut records = ix.into_records();
    drop_references(&mut records, mapping, &gone);
    let mut mapped = to_snapshot(&current.source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    mapped
}

/// The first comma not escaped with a backslash: where a DN's parent starts.
fn parent_of(dn: &str) -> &str {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ',' if !escaped => return dn[i + 1..].trim_start(),
            _ => escaped = false,
        }
    }
    ""
}

/// `rec` renamed by a modrdn record addressed as `addressed` (a DN or AD's `<GUID=…>`):
/// its new DN, key and RDN attribute; with the old and new DN.
fn renamed(
    mut rec: DirRecord,
    addressed: &str,
    new_rdn: &str,
    new_superior: Option<&str>,
    delete_old_rdn: bool,
) -> (DirRecord, String, String) {
    let old_dn = rec.dn.clone().unwrap_or_else(|| addressed.to_string());
    let parent = new_superior.unwrap_or_else(|| parent_of(&old_dn)).trim();
    let new_rdn = new_rdn.trim();
    let new_dn = if parent.is_empty() {
        new_rdn.to_string()
    } else {
        format!("{new_rdn},{parent}")
    };
    // A record rebuilt from Warden's copy carries the name Warden derived from the RDN
    // value ("Sales EU" → sales_eu), so the old value is matched that way too.
    let old_value = rdn_value(&old_dn).to_string();
    let was_old = |v: &str| {
        v.to_lowercase() == old_value.to_lowercase()
            || directory_name(v)
                .ok()
                .is_some_and(|n| directory_name(&old_value).ok() == Some(n))
    };
    if let Some((attr, value)) = new_rdn.split_once('=') {
        let mut now = rec.get(attr.trim()).to_vec();
        if delete_old_rdn {
            now.retain(|v| !was_old(v));
        }
        let value = value.trim().to_string();
        if !now.iter().any(|v| v.to_lowercase() == value.to_lowercase()) {
            now.push(value);
        }
        rec.set(attr.trim(), now);
    }
    // AD's `name` is the RDN's value whatever the RDN's attribute: a rename changes it too.
    if let (Some(name), Some((_, value))) = (rec.first("name"), new_rdn.split_once('='))
        && was_old(name)
    {
        let value = value.trim().to_string();
        rec.set("name", vec![value]);
    }
    if !rec.get("distinguishedName").is_empty() {
        rec.set("distinguishedName", vec![new_dn.clone()]);
    }
    if dn_key(&rec.key) == dn_key(&old_dn) || rec.dn.is_none() {
        rec.key = new_dn.clone();
    }
    rec.dn = Some(new_dn.clone());
    (rec, old_dn, new_dn)
}

/// Points DN-valued references (members, owners, managers) at `old_dn` to `new_dn`.
fn rewrite_references(
    records: &mut [Option<DirRecord>],
    mapping: &Mapping,
    old_dn: &str,
    new_dn: &str,
) {
    let old = dn_key(old_dn);
    let attrs: Vec<&str> = [
        mapping.role_attr("members"),
        mapping.role_attr("owners"),
        mapping.user_attr("manager"),
    ]
    .into_iter()
    .flatten()
    .collect();
    for rec in records.iter_mut().flatten() {
        for attr in &attrs {
            if rec.get(attr).iter().any(|v| dn_key(v) == old) {
                let now = rec
                    .get(attr)
                    .iter()
                    .map(|v| {
                        if dn_key(v) == old {
                            new_dn.to_string()
                        } else {
                            v.clone()
                        }
                    })
                    .collect();
                rec.set(attr, now);
            }
        }
    }
}

/// Removes references to a deleted object (as the directory itself does: a
/// deleted AD user leaves its groups), so they do not linger as unresolved.
fn drop_references(records: &mut [DirRecord], mapping: &Mapping, gone: &[String]) {
    if gone.is_empty() {
        return;
    }
    let attrs: Vec<&str> = [
        mapping.role_attr("members"),
        mapping.role_attr("owners"),
        mapping.user_attr("manager"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let norm = |k: &str| match mapping.provider {
        Provider::Ad => dn_key(k),
        Provider::Aad => k.to_string(),
    };
    // A record re-added after its deletion keeps its references.
    let present: HashSet<String> = records.iter().map(|r| norm(&r.key)).collect();
    let gone: HashSet<String> = gone
        .iter()
        .map(|k| norm(k))
        .filter(|k| !present.contains(k))
        .collect();
    for rec in records.iter_mut() {
        for attr in &attrs {
            let now: Vec<String> = rec
                .get(attr)
                .iter()
                .filter(|v| !gone.contains(&norm(v)))
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
    // Slots (None once removed) and an index by (kind, object id).
    let mut records: Vec<Option<DirRecord>> =
        to_records(current, mapping).into_iter().map(Some).collect();
    let mut by_id: HashMap<(bool, String), usize> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref()
                .map(|r| ((r.kind == RecordKind::User, r.key.clone()), i))
        })
        .collect();
    let mut gone: Vec<String> = Vec::new();
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
            let slot = (kind == RecordKind::User, id.to_string());
            let pos = by_id.get(&slot).copied();
            if obj.contains_key("@removed") {
                if let Some(rec) = pos.and_then(|i| records[i].take()) {
                    by_id.remove(&slot);
                    gone.push(rec.key);
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
                    records.push(Some(DirRecord::new(kind, id, None)));
                    by_id.insert(slot, records.len() - 1);
                    records.len() - 1
                }
            };
            let Some(rec) = records[i].as_mut() else {
                continue;
            };
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
    let mut records: Vec<DirRecord> = records.into_iter().flatten().collect();
    drop_references(&mut records, mapping, &gone);
    let mut mapped = to_snapshot(&current.source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    mapped
}
