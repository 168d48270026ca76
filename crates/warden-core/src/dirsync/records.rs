//! Provider records: one user or group as the provider wrote it, with its
//! attribute values as text, read from LDIF / LDAP entries or Microsoft Graph
//! JSON objects. The mapping to directory fields happens in [`super::snapshot`].

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::ldif::{LdifRecord, guid_string};
use super::mapping::Mapping;
use crate::directory::SyncSkip;

/// A user or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A person (or service account).
    User,
    /// A group, synced as a role.
    Group,
}

/// One provider object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirRecord {
    /// User or group.
    pub kind: RecordKind,
    /// How other records refer to this one: the DN (LDAP) or the object id (Graph).
    pub key: String,
    /// The entry's DN, when it has one.
    pub dn: Option<String>,
    /// Lowercased attribute name → values as text.
    pub attrs: BTreeMap<String, Vec<String>>,
}

impl DirRecord {
    /// A record with no attributes.
    pub fn new(kind: RecordKind, key: impl Into<String>, dn: Option<String>) -> DirRecord {
        DirRecord {
            kind,
            key: key.into(),
            dn,
            attrs: BTreeMap::new(),
        }
    }

    /// The values of `attr` (any case), empty when absent.
    pub fn get(&self, attr: &str) -> &[String] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first non-empty value of `attr`.
    pub fn first(&self, attr: &str) -> Option<&str> {
        self.get(attr)
            .iter()
            .map(|s| s.as_str())
            .find(|s| !s.trim().is_empty())
    }

    /// Sets `attr` to `values` (removes it when empty).
    pub fn set(&mut self, attr: &str, values: Vec<String>) {
        let key = attr.to_ascii_lowercase();
        if values.is_empty() {
            self.attrs.remove(&key);
        } else {
            self.attrs.insert(key, values);
        }
    }
}

/// Attributes that AD stores as raw GUID bytes.
const GUID_ATTRS: &[&str] = &["objectguid"];

/// Normalises a DN for comparison: lowercase, no spaces around `,` and `=`.
pub fn dn_key(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    for part in dn.split(',') {
        if !out.is_empty() {
            out.push(',');
        }
        let (a, v) = part.split_once('=').unwrap_or((part, ""));
        out.push_str(&a.trim().to_ascii_lowercase());
        out.push('=');
        out.push_str(&v.trim().to_lowercase());
    }
    out
}

/// The value of a DN's first RDN (`Sales Team` in `CN=Sales Team,OU=Groups,…`).
pub fn rdn_value(dn: &str) -> &str {
    let first = dn.split(',').next().unwrap_or(dn);
    first
        .split_once('=')
        .map(|(_, v)| v.trim())
        .unwrap_or(first)
}

/// An LDAP entry's attributes as bytes (from LDIF or a live search) into a
/// record: GUIDs rendered as GUID strings, the kind from `objectClass`. `None`
/// for entries that are neither users nor groups (OUs, the domain, …); a skip
/// for computer accounts and undecodable GUIDs.
pub fn from_ldap_entry(
    dn: &str,
    attrs: &[(String, Vec<u8>)],
    mapping: &Mapping,
) -> Result<Option<DirRecord>, SyncSkip> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, raw) in attrs {
        let name = name.to_ascii_lowercase();
        let text = if GUID_ATTRS.contains(&name.as_str()) {
            guid_text(raw).ok_or_else(|| SyncSkip {
                kind: "entry".into(),
                key: dn.to_string(),
                reason: format!("{name} is neither 16 bytes nor a GUID string"),
            })?
        } else {
            String::from_utf8_lossy(raw).into_owned()
        };
        values.entry(name).or_default().push(text);
    }
    let classes: Vec<String> = values
        .get("objectclass")
        .map(|v| v.iter().map(|c| c.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let has = |list: &[String]| {
        list.iter()
            .any(|c| classes.contains(&c.to_ascii_lowercase()))
    };
    let kind = if classes.iter().any(|c| c == "computer") {
        return Err(SyncSkip {
            kind: "user".into(),
            key: dn.to_string(),
            reason: "computer accounts are not synced".into(),
        });
    } else if has(&mapping.group_classes) {
        RecordKind::Group
    } else if has(&mapping.user_classes) {
        RecordKind::User
    } else {
        return Ok(None);
    };
    Ok(Some(DirRecord {
        kind,
        key: dn.to_string(),
        dn: Some(dn.to_string()),
        attrs: values,
    }))
}

fn guid_text(raw: &[u8]) -> Option<String> {
    if let Some(g) = guid_string(raw) {
        return Some(g);
    }
    // A directory (or a test schema) may hold the GUID as its string form.
    let s = std::str::from_utf8(raw).ok()?.trim();
    let g = s.trim_start_matches('{').trim_end_matches('}');
    (g.len() == 36
        && g.chars().enumerate().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        }))
    .then(|| g.to_ascii_lowercase())
}

/// The records of an LDIF content export (change records are refused: they are
/// a delta, see [`super::delta`]).
pub fn from_ldif(
    records: &[LdifRecord],
    mapping: &Mapping,
) -> Result<(Vec<DirRecord>, Vec<SyncSkip>), String> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for r in records {
        match r {
            LdifRecord::Entry { dn, attrs, .. } => match from_ldap_entry(dn, attrs, mapping) {
                Ok(Some(rec)) => out.push(rec),
                Ok(None) => {}
                Err(skip) => skipped.push(skip),
            },
            other => {
                return Err(format!(
                    "{} is a change record: pass it as a delta (--delta), not as a full export",
                    other.dn()
                ));
            }
        }
    }
    Ok((out, skipped))
}

/// The objects of Microsoft Graph responses: each document is either a page as
/// Graph returns it (`{"value": [...], "@odata.nextLink": ...}`) or a bare array;
/// pages given as several documents are concatenated.
pub fn graph_objects(documents: &[Json]) -> Result<Vec<serde_json::Map<String, Json>>, String> {
    let mut out = Vec::new();
    for (i, doc) in documents.iter().enumerate() {
        let list = match doc {
            Json::Object(o) => match o.get("value") {
                Some(Json::Array(a)) => a,
                _ => {
                    return Err(format!(
                        "document {}: expected a Graph page with a \"value\" array",
                        i + 1
                    ));
                }
            },
            Json::Array(a) => a,
            _ => {
                return Err(format!(
                    "document {}: expected an object or an array",
                    i + 1
                ));
            }
        };
        for (j, item) in list.iter().enumerate() {
            match item {
                Json::Object(o) => out.push(o.clone()),
                _ => {
                    return Err(format!(
                        "document {}, item {}: expected an object",
                        i + 1,
                        j + 1
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// A Graph property value as text values: strings as-is, booleans and numbers
/// printed, arrays flattened, objects (a `manager`, `members`/`owners` entries)
/// by their `id`.
pub fn graph_values(v: &Json) -> Vec<String> {
    match v {
        Json::Null => Vec::new(),
        Json::String(s) => vec![s.clone()],
        Json::Bool(b) => vec![b.to_string()],
        Json::Number(n) => vec![n.to_string()],
        Json::Array(items) => items.iter().flat_map(graph_values).collect(),
        Json::Object(o) => match o.get("id") {
            Some(Json::String(id)) => vec![id.clone()],
            _ => Vec::new(),
        },
    }
}

/// One Graph object as a record of `kind`, keyed by its `id`. Annotations
/// (`@odata.*`, `…@delta`) are left out.
pub fn from_graph_object(
    kind: RecordKind,
    obj: &serde_json::Map<String, Json>,
) -> Result<DirRecord, SyncSkip> {
    let id = match obj.get("id") {
        Some(Json::String(id)) if !id.trim().is_empty() => id.clone(),
        _ => {
            let name = obj
                .get("displayName")
                .and_then(Json::as_str)
                .unwrap_or("(no displayName)");
            return Err(SyncSkip {
                kind: kind_name(kind).into(),
                key: name.to_string(),
                reason: "the object has no \"id\"".into(),
            });
        }
    };
    let mut rec = DirRecord::new(kind, id, None);
    for (k, v) in obj {
        if k.contains('@') {
            continue;
        }
        rec.set(k, graph_values(v));
    }
    Ok(rec)
}

/// `user` or `role`, as [`SyncSkip::kind`] spells it.
pub fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::User => "user",
        RecordKind::Group => "role",
    }
}
