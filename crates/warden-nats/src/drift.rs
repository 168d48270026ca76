//! Drift between the accounts Warden holds and the accounts a server holds.
//!
//! The server side is read with `$SYS.REQ.CLAIMS.LIST` and then one
//! `$SYS.REQ.ACCOUNT.<key>.CLAIMS.LOOKUP` per listed account that Warden also holds.
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

use crate::resolver::{ResolverClient, ResolverError};

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
    let mut on_server: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for (key, result) in to_look_up.iter().zip(found) {
        on_server.insert(key, result?);
    }

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
    Ok(out)
}
