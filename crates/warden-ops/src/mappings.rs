//! An account's subject mappings: a subject published in the account is delivered to
//! one or more weighted destinations instead (canary releases, A/B splits, renames).
//!
//! Adding follows nsc's `add mapping`: a destination already listed for the source is
//! updated in place (its weight and cluster replaced), a new one is appended. Weights are
//! percentages; the destinations without a cluster share 100, each cluster has its own
//! 100. Whatever a source's weights leave over, nats-server keeps delivering on the source
//! subject itself.

use nats_jwt::{Subject, WeightedMapping};
use serde::{Deserialize, Serialize};
use serde_json::json;

use warden_core::AccountSpec;

use crate::warden::from_json;
use crate::{OpsError, Record, Result, Scope, Warden};

/// One destination of a mapping as asked for: `--to SUBJECT[:WEIGHT%]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingTarget {
    /// Destination subject (no wildcards).
    pub subject: Subject,
    /// Percentage (1..=100); `None` means 100 (all of it, when alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
}

/// `warden account mapping add`: destinations added to (or updated in) one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingAdd {
    /// Account name.
    pub account: String,
    /// Source subject.
    pub from: Subject,
    /// Destinations (at least one).
    pub to: Vec<MappingTarget>,
    /// Only in this nats-server cluster (`--cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// `warden account mapping rm`: a whole source, or one of its destinations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingRemove {
    /// Account name.
    pub account: String,
    /// Source subject.
    pub from: Subject,
    /// Only this destination; `None` removes the whole source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Subject>,
}

/// One destination as stored, with its effective weight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingDestView {
    /// Destination subject.
    pub subject: Subject,
    /// Percentage of the source's messages delivered here.
    pub weight: u8,
    /// The cluster it applies in, if only one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// One source subject and its destinations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingView {
    /// Source subject.
    pub from: Subject,
    /// Destinations, in the order they were added.
    pub to: Vec<MappingDestView>,
    /// Percentage left over (of the destinations without a cluster): nats-server
    /// delivers it on the source subject itself.
    pub unmapped: u8,
}

/// An account's mappings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MappingsView {
    /// Account name.
    pub account: String,
    /// Account public key.
    pub public_key: String,
    /// Every source, ordered by subject.
    pub mappings: Vec<MappingView>,
}

impl MappingsView {
    /// The view of `spec`'s mappings (for surfaces that already hold the spec).
    pub fn of_spec(account: &str, public_key: &str, spec: &AccountSpec) -> Self {
        let mappings = spec
            .mappings
            .iter()
            .map(|(from, dests)| {
                let to: Vec<MappingDestView> = dests
                    .iter()
                    .map(|d| MappingDestView {
                        subject: d.subject.clone(),
                        weight: u8::try_from(d.effective_weight()).unwrap_or(u8::MAX),
                        cluster: d.cluster.clone().filter(|c| !c.is_empty()),
                    })
                    .collect();
                let used: u32 = to
                    .iter()
                    .filter(|d| d.cluster.is_none())
                    .map(|d| u32::from(d.weight))
                    .sum();
                let unmapped = if to.iter().any(|d| d.cluster.is_none()) {
                    u8::try_from(100u32.saturating_sub(used)).unwrap_or(0)
                } else {
                    100
                };
                MappingView {
                    from: from.clone(),
                    to,
                    unmapped,
                }
            })
            .collect();
        MappingsView {
            account: account.to_string(),
            public_key: public_key.to_string(),
            mappings,
        }
    }
}

impl MappingAdd {
    /// Refuses what no stored mapping could hold, before anything is read.
    fn check(&self) -> Result<()> {
        if self.to.is_empty() {
            return Err(OpsError::Invalid(
                "a mapping needs at least one destination (--to SUBJECT[:WEIGHT%])".into(),
            ));
        }
        if self.from.as_str().contains(' ') {
            return Err(OpsError::Invalid(format!(
                "mapping source {:?} names a queue group; a mapping maps subjects",
                self.from.as_str()
            )));
        }
        for t in &self.to {
            if let Some(w) = t.weight
                && !(1..=100).contains(&w)
            {
                return Err(OpsError::Invalid(format!(
                    "weight {w}% for {}: a destination's weight is 1% to 100%",
                    t.subject
                )));
            }
            if t.subject.has_wildcards() || t.subject.as_str().contains(' ') {
                return Err(OpsError::Invalid(format!(
                    "mapping destination {:?} must be a plain subject (no wildcards, no queue group)",
                    t.subject.as_str()
                )));
            }
            if self.to.iter().filter(|o| o.subject == t.subject).count() > 1 {
                return Err(OpsError::Invalid(format!(
                    "destination {} given twice",
                    t.subject
                )));
            }
        }
        if let Some(c) = &self.cluster
            && (c.trim().is_empty() || c.trim() != c || c.contains(char::is_whitespace))
        {
            return Err(OpsError::Invalid(format!(
                "invalid cluster name {c:?}: give the nats-server cluster name, without spaces"
            )));
        }
        Ok(())
    }
}

impl Warden {
    /// The account's subject mappings.
    pub async fn mappings(&self, account: &str) -> Result<MappingsView> {
        self.need(Scope::Read, "reading an account's mappings")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let row = self.account_row(&mut tx, &op, account).await?;
        let spec: AccountSpec = from_json(&row.spec)?;
        Ok(MappingsView::of_spec(&row.name, &row.public_key, &spec))
    }

    /// Adds destinations to a source subject (nsc's `add mapping`: a destination already
    /// listed is updated, a new one appended); re-signs the account. Weights over 100 for
    /// the source change nothing.
    pub async fn add_mapping(&self, req: &MappingAdd) -> Result<MappingsView> {
        self.need(Scope::Write, "adding a subject mapping")?;
        req.check()?;
        self.change_mappings(&req.account, "account.mapping.add", json!(req), |spec| {
            let dests = spec.mappings.entry(req.from.clone()).or_default();
            for t in &req.to {
                let new = WeightedMapping {
                    subject: t.subject.clone(),
                    weight: t.weight,
                    cluster: req.cluster.clone(),
                };
                match dests.iter_mut().find(|d| d.subject == t.subject) {
                    Some(d) => *d = new,
                    None => dests.push(new),
                }
            }
            check_weights(&req.from, dests)
        })
        .await
    }

    /// Removes a source subject's mapping, or one of its destinations (the source goes
    /// when its last destination does); re-signs the account.
    pub async fn remove_mapping(&self, req: &MappingRemove) -> Result<MappingsView> {
        self.need(Scope::Write, "removing a subject mapping")?;
        self.change_mappings(&req.account, "account.mapping.remove", json!(req), |spec| {
            let Some(dests) = spec.mappings.get_mut(&req.from) else {
                return Err(OpsError::NotFound(format!(
                    "no mapping from {} in account {}",
                    req.from, req.account
                )));
            };
            if let Some(to) = &req.to {
                let len = dests.len();
                dests.retain(|d| &d.subject != to);
                if dests.len() == len {
                    return Err(OpsError::NotFound(format!(
                        "the mapping from {} has no destination {to}",
                        req.from
                    )));
                }
            }
            if req.to.is_none() || dests.is_empty() {
                spec.mappings.remove(&req.from);
            }
            Ok(())
        })
        .await
    }

    /// One transaction: read the spec, change its mappings, re-sign, record, enqueue.
    async fn change_mappings(
        &self,
        account: &str,
        event: &str,
        detail: serde_json::Value,
        change: impl FnOnce(&mut AccountSpec) -> Result<()>,
    ) -> Result<MappingsView> {
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut row = self.account_row(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&row.spec)?;
        let before = spec.mappings.clone();
        change(&mut spec)?;
        let view = MappingsView::of_spec(&row.name, &row.public_key, &spec);
        self.resign_account(&mut tx, &op, &mut row, spec).await?;
        tx.record(self.event(
            event,
            "account",
            &row.public_key,
            json!({"name": row.name, "request": detail, "before": before, "after": view.mappings}),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }
}

/// Weights per cluster (no cluster = one budget) must stay within 100; said here in
/// the words of the flags rather than as a claims issue.
fn check_weights(from: &Subject, dests: &[WeightedMapping]) -> Result<()> {
    let mut totals: std::collections::BTreeMap<Option<&str>, u32> = Default::default();
    for d in dests {
        *totals.entry(d.cluster.as_deref()).or_default() += d.effective_weight();
    }
    for (cluster, total) in totals {
        if total > 100 {
            let listed: Vec<String> = dests
                .iter()
                .filter(|d| d.cluster.as_deref() == cluster)
                .map(|d| format!("{}:{}%", d.subject, d.effective_weight()))
                .collect();
            let place = cluster
                .map(|c| format!(" in cluster {c}"))
                .unwrap_or_default();
            return Err(OpsError::Invalid(format!(
                "the mapping from {from}{place} would send {total}% ({}); weights may add up to \
                 100% at most (a destination without a weight counts 100%); nothing was changed",
                listed.join(", ")
            )));
        }
    }
    Ok(())
}
