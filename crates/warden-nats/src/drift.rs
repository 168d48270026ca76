//! Drift between the accounts Warden holds and the accounts a server holds.
//!
//! [`drift`] reads the server side with `$SYS.REQ.CLAIMS.LIST` and then one
//! `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` per listed account that Warden also holds, taking
//! whichever server answers first. [`cluster_drift`] names each server of a cluster with its
//! own drift; see there for what that can and cannot see.
//!
//! The rule for "stale": the server's JWT for an account **differs at all** from Warden's
//! (byte comparison, surrounding whitespace ignored). Warden is the source of truth, so any
//! difference needs a push, whichever JWT is newer. Those where the server's JWT has a *later*
//! `iat` than Warden's (someone pushed behind Warden's back, or Warden's copy is behind) are
//! also listed in [`Drift::newer_on_server`]: pushing Warden's JWT works on that server (UPDATE
//! overwrites unconditionally), but in a cluster the servers' "save if newer" sync would bring
//! the newer one back, so re-issue the account (fresh `iat`) rather than re-push the old one.

use std::collections::{BTreeMap, BTreeSet};

use nats_jwt::decode_any;

use crate::resolver::{ResolverClient, ResolverError, ServerInfo};

/// How many LOOKUPs [`drift`] keeps in flight.
pub const LOOKUP_CONCURRENCY: usize = 64;

/// Drift between what Warden holds and what the server holds. Every list is sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// In Warden, not on the server (not listed, or listed but the lookup got no JWT).
    pub missing: Vec<String>,
    /// On both, but the server's JWT differs from Warden's.
    pub stale: Vec<String>,
    /// On the server, not in Warden. Nothing is excluded: the caller decides about the system
    /// account (normally it is in Warden's set too).
    pub unknown: Vec<String>,
    /// The part of `stale` whose server JWT has a later `iat` than Warden's (or does not decode,
    /// which counts as "do not just overwrite blindly"). Informational; not counted by
    /// [`Drift::is_empty`] beyond `stale` itself.
    pub newer_on_server: Vec<String>,
}

impl Drift {
    /// Whether server and Warden agree.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty() && self.unknown.is_empty()
    }
}

fn issued_at(jwt: &str) -> Option<i64> {
    decode_any(jwt).ok().map(|c| c.issued_at())
}

/// Compares Warden's accounts (public key → JWT) with the server's (see the module docs for
/// the rule). Fails on the first request that fails; a LOOKUP timeout counts as "no JWT".
pub async fn drift(
    client: &ResolverClient,
    expected: &BTreeMap<String, String>,
) -> Result<Drift, ResolverError> {
    let listed: BTreeSet<String> = client.list().await?.into_iter().collect();
    let mut out = Drift {
        unknown: listed
            .iter()
            .filter(|k| !expected.contains_key(*k))
            .cloned()
            .collect(),
        ..Drift::default()
    };

    let to_look_up: Vec<String> = expected
        .keys()
        .filter(|k| listed.contains(*k))
        .cloned()
        .collect();
    let found = client.lookup_many(&to_look_up, LOOKUP_CONCURRENCY).await;
    let mut on_server: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (key, result) in to_look_up.iter().zip(found) {
        on_server.insert(key.clone(), result?);
    }
    classify(&mut out, expected, &on_server);
    Ok(out)
}

/// Sorts Warden's accounts into missing / stale (and newer on the server) by what the server
/// holds of them (`None`: listed, but no JWT came back).
fn classify(
    out: &mut Drift,
    expected: &BTreeMap<String, String>,
    on_server: &BTreeMap<String, Option<String>>,
) {
    for (key, ours) in expected {
        match on_server.get(key.as_str()) {
            None | Some(None) => out.missing.push(key.clone()),
            Some(Some(theirs)) if theirs.trim() == ours.trim() => {}
            Some(Some(theirs)) => {
                out.stale.push(key.clone());
                let newer = match (issued_at(theirs), issued_at(ours)) {
                    (Some(t), Some(o)) => t > o,
                    _ => true,
                };
                if newer {
                    out.newer_on_server.push(key.clone());
                }
            }
        }
    }
}

/// One server's own resolver compared with Warden ([`cluster_drift`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerDrift {
    /// The server (from the INFO of a connection to it alone; its LIST reply named the same id).
    pub server: ServerInfo,
    /// Its resolver against Warden's accounts.
    pub drift: Drift,
    /// The part of `drift.stale` that could not be pinned on this server: its cluster holds
    /// copies of the account that differ from Warden's, but not on every server holding it,
    /// and LOOKUP replies do not say who sent them. Listed as stale on every server that
    /// holds the account.
    pub unattributed: Vec<String>,
    /// Every server that answered its LIST (itself, its routed peers, and whatever else its
    /// cluster reaches), in the order they answered.
    pub cluster: Vec<ServerInfo>,
    /// The client URLs it announces for its cluster (`HOST:PORT`).
    pub announced: Vec<String>,
}

/// Compares the resolver of each server with Warden's accounts, one result per client, in
/// order. Each client must be connected to its server alone
/// ([`ResolverClient::connect_alone`]).
///
/// In a cluster every full resolver answers LIST and LOOKUP, so [`drift`] reads whichever
/// answers first and a server that missed an update hides behind its peers. Here:
/// * a server is named by the INFO of the connection to it;
/// * one LIST over that connection is answered by every server that hears it, **each reply
///   naming its server**: the accounts each of them holds, exactly (missing and unknown are
///   per server). Replies are awaited until as many servers answered as the server announces
///   for its cluster, or until none came within the timeout;
/// * one LOOKUP per account is answered by every server holding it, but **the JWT replies do
///   not name their server** (nor does PACK, whose queue group nats-server 2.9.10 and 2.15
///   hand to any member of the cluster, not the one the asker is connected to — tested). So a
///   copy that differs from Warden's is pinned on a server only when that server is the only
///   one holding the account, or every holder's copy differs; otherwise the account is stale
///   on every holder and listed in [`ServerDrift::unattributed`]. Servers of one cluster are
///   read together, once.
///
/// What it can see: the JWT files of each server's `full` resolver now. What it cannot:
/// accounts a server would fetch from its peers the next time a client of the account
/// connects (a full resolver asks the others for an account it lacks and stores the answer;
/// LIST and LOOKUP fetch nothing), nor what the resolvers' periodic sync (`interval`) would
/// bring it next. So a routed server reported missing an account may heal on its own; one
/// outside the cluster (or whose peers lack it too) will not. A holder that answered no LOOKUP
/// in time counts as missing the account when it is the only holder, else as unattributed.
pub async fn cluster_drift(
    clients: &[ResolverClient],
    expected: &BTreeMap<String, String>,
) -> Vec<Result<ServerDrift, ResolverError>> {
    let me: Vec<ServerInfo> = clients.iter().map(|c| c.connected_server()).collect();
    let mut results: Vec<Option<Result<ServerDrift, ResolverError>>> =
        (0..clients.len()).map(|_| None).collect();
    for i in 0..clients.len() {
        if results[i].is_some() {
            continue;
        }
        let client = &clients[i];
        let lists = match client.list_each(client.announced_urls().len()).await {
            Ok(lists) => lists,
            Err(e) => {
                results[i] = Some(Err(e));
                continue;
            }
        };
        if !lists.iter().any(|(s, _)| s.id == me[i].id) {
            results[i] = Some(Err(ResolverError::BadReply {
                subject: crate::resolver::LIST_SUBJECT.to_string(),
                reason: format!(
                    "{} ({}) did not answer its own LIST within {:?}",
                    me[i].name,
                    me[i].id,
                    client.timeout()
                ),
            }));
            continue;
        }
        let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, keys) in &lists {
            for k in keys {
                if let Some((key, _)) = expected.get_key_value(k) {
                    *holders.entry(key.as_str()).or_default() += 1;
                }
            }
        }
        let wanted: Vec<(String, usize)> =
            holders.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        let copies = match client.lookup_each(&wanted, LOOKUP_CONCURRENCY).await {
            Ok(c) => c,
            Err(e) => {
                results[i] = Some(Err(e));
                continue;
            }
        };
        let cluster: Vec<ServerInfo> = lists.iter().map(|(s, _)| s.clone()).collect();
        for j in 0..clients.len() {
            if results[j].is_some() {
                continue;
            }
            let Some((_, listed)) = lists.iter().find(|(s, _)| s.id == me[j].id) else {
                continue;
            };
            let (drift, unattributed) = judge(listed, expected, &holders, &copies);
            results[j] = Some(Ok(ServerDrift {
                server: me[j].clone(),
                drift,
                unattributed,
                cluster: cluster.clone(),
                announced: clients[j].announced_urls(),
            }));
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every server was judged or failed"))
        .collect()
}

/// One server's drift from its own key list and the cluster's LOOKUP copies (see
/// [`cluster_drift`] for when a differing copy is pinned on it).
fn judge(
    listed: &[String],
    expected: &BTreeMap<String, String>,
    holders: &BTreeMap<&str, usize>,
    copies: &BTreeMap<String, Vec<String>>,
) -> (Drift, Vec<String>) {
    let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    let mut out = Drift {
        unknown: listed
            .iter()
            .filter(|k| !expected.contains_key(**k))
            .map(|k| k.to_string())
            .collect(),
        ..Drift::default()
    };
    let mut unattributed = Vec::new();
    let none = Vec::new();
    for (key, ours) in expected {
        if !listed.contains(key.as_str()) {
            out.missing.push(key.clone());
            continue;
        }
        let held = holders.get(key.as_str()).copied().unwrap_or(1);
        let got = copies.get(key).unwrap_or(&none);
        let differing: Vec<&String> = got.iter().filter(|c| c.trim() != ours.trim()).collect();
        let silent = held.saturating_sub(got.len());
        if differing.is_empty() && silent == 0 {
            continue;
        }
        if held == 1 && differing.is_empty() {
            // The only holder listed it but sent no JWT.
            out.missing.push(key.clone());
            continue;
        }
        out.stale.push(key.clone());
        let newer = differing
            .iter()
            .any(|theirs| match (issued_at(theirs), issued_at(ours)) {
                (Some(t), Some(o)) => t > o,
                _ => true,
            });
        if newer {
            out.newer_on_server.push(key.clone());
        }
        if !(held == 1 || (differing.len() == held && silent == 0)) {
            unattributed.push(key.clone());
        }
    }
    (out, unattributed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_differing_copy_is_pinned_only_when_the_replies_allow() {
        let expected: BTreeMap<String, String> = [
            ("A1", "ours-1"),
            ("A2", "ours-2"),
            ("A3", "ours-3"),
            ("A4", "ours-4"),
        ]
        .iter()
        .map(|(k, j)| (k.to_string(), j.to_string()))
        .collect();
        // A1: held by three, one copy differs (whose? unknown). A2: held only here,
        // differs. A3: held by two, both differ. A4: not held here.
        let holders: BTreeMap<&str, usize> = [("A1", 3), ("A2", 1), ("A3", 2), ("A4", 2)].into();
        let copies: BTreeMap<String, Vec<String>> = [
            ("A1", vec!["ours-1", "old-1", "ours-1"]),
            ("A2", vec!["old-2"]),
            ("A3", vec!["old-3", "old-3"]),
            ("A4", vec!["ours-4", "ours-4"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        let (d, unattributed) = judge(
            &keys(&["A1", "A2", "A3", "STRANGER"]),
            &expected,
            &holders,
            &copies,
        );
        assert_eq!(d.missing, keys(&["A4"]));
        assert_eq!(d.stale, keys(&["A1", "A2", "A3"]));
        assert_eq!(d.unknown, keys(&["STRANGER"]));
        assert_eq!(unattributed, keys(&["A1"]));

        // Every holder answered Warden's copy: in sync. The only holder silent: missing.
        let copies: BTreeMap<String, Vec<String>> = [
            ("A1".to_string(), keys(&["ours-1", "ours-1", "ours-1"])),
            ("A2".to_string(), vec![]),
        ]
        .into();
        let (d, unattributed) = judge(&keys(&["A1", "A2"]), &expected, &holders, &copies);
        assert_eq!(d.missing, keys(&["A2", "A3", "A4"]));
        assert!(d.stale.is_empty() && unattributed.is_empty(), "{d:?}");
    }
}
