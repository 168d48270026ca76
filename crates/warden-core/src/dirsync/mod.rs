//! Directory sync with Active Directory and Azure AD: provider exports (LDIF,
//! Microsoft Graph JSON) and live LDAP entries mapped to directory fields by a
//! declarative [`Mapping`], a [`SyncPlan`] against what Warden holds, deltas,
//! and outbound exports of changes confirmed in Warden. Pure: the caller reads
//! files and directories and applies plans.
//!
//! - [`mapping`]: the default field tables per provider, mapping files, name rules.
//! - [`ldif`]: RFC 2849 reading and writing.
//! - [`records`]: provider objects (LDAP entries, Graph objects) as records.
//! - [`snapshot`]: records → [`DirectorySnapshot`], and back.
//! - [`plan`]: snapshot diff → [`SyncPlan`].
//! - [`delta`]: LDIF change records and Graph delta pages applied to a snapshot.
//! - [`export`]: [`export::DirectoryChange`]s as LDIF modify records or Graph `$batch` bodies.

pub mod delta;
pub mod export;
pub mod ldif;
pub mod mapping;
pub mod plan;
pub mod records;
pub mod snapshot;

use serde_json::Value as Json;

pub use export::DirectoryChange;
pub use mapping::{Mapping, MappingFile, Provider};
pub use plan::plan;
pub use snapshot::Mapped;

use crate::directory::{DirectorySnapshot, SyncPlan};
use records::RecordKind;

/// Why an input could not be read at all (a single bad record is a skip instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirSyncError {
    /// Malformed LDIF.
    #[error(transparent)]
    Ldif(#[from] ldif::LdifError),
    /// An LDIF full export holding change records, or the other way round.
    #[error("{0}")]
    WrongInput(String),
    /// A Graph document of the wrong shape.
    #[error("Graph {which}: {message}")]
    Graph {
        /// `users` or `groups`.
        which: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Maps an LDIF full export (content records) of `source`.
pub fn from_ldif(source: &str, mapping: &Mapping, text: &str) -> Result<Mapped, DirSyncError> {
    let recs = ldif::parse(text)?;
    let (records, mut skipped) =
        records::from_ldif(&recs, mapping).map_err(DirSyncError::WrongInput)?;
    let mut mapped = snapshot::to_snapshot(source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    Ok(mapped)
}

/// One LDAP entry: its DN and (attribute, value bytes) pairs.
pub type LdapEntry = (String, Vec<(String, Vec<u8>)>);

/// Maps LDAP entries (e.g. from a live search).
pub fn from_ldap_entries(source: &str, mapping: &Mapping, entries: &[LdapEntry]) -> Mapped {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (dn, attrs) in entries {
        match records::from_ldap_entry(dn, attrs, mapping) {
            Ok(Some(r)) => records.push(r),
            Ok(None) => {}
            Err(s) => skipped.push(s),
        }
    }
    let mut mapped = snapshot::to_snapshot(source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    mapped
}

fn graph_objects(
    which: &'static str,
    docs: &[Json],
) -> Result<Vec<serde_json::Map<String, Json>>, DirSyncError> {
    records::graph_objects(docs).map_err(|message| DirSyncError::Graph { which, message })
}

/// Maps Microsoft Graph exports: the pages of `GET /users` and of `GET /groups`
/// (with `members` and `owners` expanded or added as arrays of objects with `id`).
pub fn from_graph(
    source: &str,
    mapping: &Mapping,
    users: &[Json],
    groups: &[Json],
) -> Result<Mapped, DirSyncError> {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (kind, which, docs) in [
        (RecordKind::User, "users", users),
        (RecordKind::Group, "groups", groups),
    ] {
        for obj in graph_objects(which, docs)? {
            if obj.contains_key("@removed") {
                return Err(DirSyncError::WrongInput(format!(
                    "Graph {which}: an object marked \"@removed\" is a delta: pass the files as a delta (--delta)"
                )));
            }
            match records::from_graph_object(kind, &obj) {
                Ok(r) => records.push(r),
                Err(s) => skipped.push(s),
            }
        }
    }
    let mut mapped = snapshot::to_snapshot(source, mapping, &records);
    skipped.append(&mut mapped.skipped);
    mapped.skipped = skipped;
    Ok(mapped)
}

/// Applies an LDIF delta (change records) to `current`.
pub fn ldif_delta(
    current: &DirectorySnapshot,
    mapping: &Mapping,
    text: &str,
) -> Result<Mapped, DirSyncError> {
    let recs = ldif::parse(text)?;
    Ok(delta::apply_ldif(current, mapping, &recs))
}

/// Applies Graph delta pages to `current`.
pub fn graph_delta(
    current: &DirectorySnapshot,
    mapping: &Mapping,
    users: &[Json],
    groups: &[Json],
) -> Result<Mapped, DirSyncError> {
    let users = graph_objects("users", users)?;
    let groups = graph_objects("groups", groups)?;
    Ok(delta::apply_graph(current, mapping, &users, &groups))
}

/// The plan from `current` to a mapped input, with the mapping's skips included.
pub fn plan_mapped(current: &DirectorySnapshot, incoming: &Mapped) -> SyncPlan {
    let mut p = plan(current, &incoming.snapshot);
    let mut skipped = incoming.skipped.clone();
    skipped.append(&mut p.skipped);
    p.skipped = skipped;
    p
}

#[cfg(test)]
mod tests;
