//! What the console asks the live nats-server: drift between the server's account resolver
//! and Warden (the same comparison as `warden sync --check`, [`warden_nats::drift`]), pushes
//! and the repair of `warden sync --fix`, and per-account usage from the system account's
//! `$SYS.REQ.ACCOUNT.<key>.CONNZ` service.
//!
//! The console keeps one system-user connection, made on first use and dropped after a
//! connection failure (so the next page tries again). Every request is bounded by
//! [`ASK_TIMEOUT`]: a page never waits longer than that for a silent server, it says
//! "not reported" instead.

use std::collections::BTreeMap;
use std::time::Duration;

use nats_jwt::{AccountPublicKey, KeyPair, Operator, OperatorClaims};
use serde::Deserialize;
use tokio::sync::Mutex;
use warden_nats::{Drift, ResolverClient, ResolverError};

use warden_ops::Warden;

/// Bound on connecting and on each request to the server.
pub(crate) const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Pushes in flight at once during a repair.
const PUSH_CONCURRENCY: usize = 64;

/// The console's link to the nats-server `warden serve` keeps in step.
pub(crate) struct ServerLink {
    url: String,
    client: Mutex<Option<ResolverClient>>,
}

/// Drift as the console shows it: per Warden account, and the server's unknown keys.
pub(crate) struct DriftView {
    /// (name, public key, state) for every account Warden pushes, by name.
    pub accounts: Vec<(String, String, SyncState)>,
    /// Accounts the server holds that Warden does not.
    pub unknown: Vec<String>,
}

/// Where one account stands on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SyncState {
    /// The server holds the same JWT.
    InSync,
    /// The server holds another JWT (and it is not newer than Warden's).
    Stale,
    /// The server holds another JWT with a later issue time than Warden's.
    NewerOnServer,
    /// The server does not hold it.
    Missing,
}

impl SyncState {
    pub(crate) fn label(self) -> &'static str {
        match self {
            SyncState::InSync => "in sync",
            SyncState::Stale => "stale",
            SyncState::NewerOnServer => "stale (newer on server)",
            SyncState::Missing => "missing",
        }
    }

    /// The CSS class of the label.
    pub(crate) fn class(self) -> &'static str {
        match self {
            SyncState::InSync => "ok",
            _ => "bad",
        }
    }
}

/// What a repair did.
pub(crate) struct Repair {
    pub pushed: usize,
    pub deleted: usize,
    pub errors: Vec<String>,
}

/// Current usage of an account as the server reports it (summed over its connections).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Client connections now (`total` of CONNZ).
    pub connections: u64,
    /// How many connections the sums below cover (CONNZ pages at 1024).
    pub listed: u64,
    /// Subscriptions over the listed connections.
    pub subscriptions: u64,
    /// Messages and bytes the clients published (server's `in_*`).
    pub in_msgs: u64,
    pub in_bytes: u64,
    /// Messages and bytes delivered to the clients (server's `out_*`).
    pub out_msgs: u64,
    pub out_bytes: u64,
}

#[derive(Deserialize)]
struct ApiReply<T> {
    data: Option<T>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Connz {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    connections: Option<Vec<ConnInfo>>,
}

#[derive(Deserialize)]
struct ConnInfo {
    #[serde(default)]
    subscriptions: u64,
    #[serde(default)]
    in_msgs: u64,
    #[serde(default)]
    out_msgs: u64,
    #[serde(default)]
    in_bytes: u64,
    #[serde(default)]
    out_bytes: u64,
}

/// Parses a CONNZ reply (`{"server":…,"data":{"total":…,"connections":[…]}}`).
pub(crate) fn parse_connz(payload: &[u8]) -> Result<Usage, String> {
    let reply: ApiReply<Connz> =
        serde_json::from_slice(payload).map_err(|e| format!("unreadable CONNZ reply: {e}"))?;
    if let Some(e) = reply.error {
        return Err(format!("the server answered with an error: {e}"));
    }
    let data = reply.data.ok_or("the CONNZ reply has no data")?;
    let conns = data.connections.unwrap_or_default();
    let mut u = Usage {
        connections: data.total.max(conns.len() as u64),
        listed: conns.len() as u64,
        ..Usage::default()
    };
    for c in &conns {
        u.subscriptions += c.subscriptions;
        u.in_msgs += c.in_msgs;
        u.out_msgs += c.out_msgs;
        u.in_bytes += c.in_bytes;
        u.out_bytes += c.out_bytes;
    }
    Ok(u)
}

fn trouble(e: &ResolverError) -> bool {
    !matches!(
        e,
        ResolverError::Refused { .. } | ResolverError::Untrusted(_)
    )
}

impl ServerLink {
    pub(crate) fn new(url: String) -> ServerLink {
        ServerLink {
            url,
            client: Mutex::new(None),
        }
    }

    /// The server URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The system-user connection, made now if there is none.
    async fn client(&self, w: &Warden) -> Result<ResolverClient, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let creds = w.system_user_creds().await.map_err(|e| e.to_string())?;
        let c = ResolverClient::connect(&self.url, &creds, ASK_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection after a failure that may be the connection's.
    async fn forget(&self) {
        *self.client.lock().await = None;
    }

    async fn operator(w: &Warden) -> Result<(OperatorClaims, KeyPair), String> {
        let op = w.operator().await.map_err(|e| e.to_string())?;
        let claims = nats_jwt::decode::<Operator>(&op.jwt).map_err(|e| e.to_string())?;
        let seed = w
            .store()
            .seed(&op.signing_key)
            .await
            .map_err(|e| e.to_string())?;
        let signer = KeyPair::from_seed(&seed).map_err(|e| e.to_string())?;
        Ok((claims, signer))
    }

    /// Warden's accounts (public key → (name, JWT)) as `warden sync` compares them.
    async fn expected(w: &Warden) -> Result<BTreeMap<String, (String, String)>, String> {
        Ok(w.account_jwts()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(name, key, jwt)| (key, (name, jwt)))
            .collect())
    }

    async fn raw_drift(
        &self,
        w: &Warden,
    ) -> Result<(Drift, BTreeMap<String, (String, String)>), String> {
        let expected = Self::expected(w).await?;
        let jwts: BTreeMap<String, String> = expected
            .iter()
            .map(|(k, (_, j))| (k.clone(), j.clone()))
            .collect();
        let client = self.client(w).await?;
        match warden_nats::drift(&client, &jwts).await {
            Ok(d) => Ok((d, expected)),
            Err(e) => {
                if trouble(&e) {
                    self.forget().await;
                }
                Err(e.to_string())
            }
        }
    }

    /// Compares the server's resolver with Warden.
    pub(crate) async fn drift(&self, w: &Warden) -> Result<DriftView, String> {
        let (d, expected) = self.raw_drift(w).await?;
        let mut accounts: Vec<(String, String, SyncState)> = expected
            .iter()
            .map(|(key, (name, _))| {
                let state = if d.missing.contains(key) {
                    SyncState::Missing
                } else if d.newer_on_server.contains(key) {
                    SyncState::NewerOnServer
                } else if d.stale.contains(key) {
                    SyncState::Stale
                } else {
                    SyncState::InSync
                };
                (name.clone(), key.clone(), state)
            })
            .collect();
        accounts.sort();
        Ok(DriftView {
            accounts,
            unknown: d.unknown,
        })
    }

    /// Pushes one account's current JWT (checked for operator trust first).
    pub(crate) async fn push(&self, w: &Warden, jwt: &str) -> Result<String, String> {
        let (operator, _) = Self::operator(w).await?;
        let client = self.client(w).await?;
        match client.push(&operator, jwt).await {
            Ok(reply) => Ok(format!("{} {}", reply.code, reply.message)),
            Err(e) => {
                if trouble(&e) {
                    self.forget().await;
                }
                Err(e.to_string())
            }
        }
    }

    /// `warden sync --fix`: pushes the missing and stale accounts, deletes the unknown ones.
    pub(crate) async fn repair(&self, w: &Warden) -> Result<Repair, String> {
        let (d, expected) = self.raw_drift(w).await?;
        let (operator, signer) = Self::operator(w).await?;
        let client = self.client(w).await?;
        let to_push: Vec<String> = d
            .missing
            .iter()
            .chain(&d.stale)
            .filter_map(|k| expected.get(k).map(|(_, j)| j.clone()))
            .collect();
        let mut errors = Vec::new();
        for r in client
            .push_many(&operator, &to_push, PUSH_CONCURRENCY)
            .await
        {
            if let Err(e) = r {
                errors.push(e.to_string());
            }
        }
        let keys: Vec<AccountPublicKey> = d.unknown.iter().filter_map(|k| k.parse().ok()).collect();
        if !keys.is_empty() {
            match warden_nats::delete_request(&signer, &keys) {
                Ok(req) => {
                    if let Err(e) = client.delete(&req).await {
                        errors.push(e.to_string());
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        Ok(Repair {
            pushed: to_push.len(),
            deleted: keys.len(),
            errors,
        })
    }

    /// The account's current usage, or `None` when the server does not answer within
    /// [`ASK_TIMEOUT`] (an error when it answers something unreadable). In a cluster each
    /// server answers for its own connections; this takes the first answer.
    pub(crate) async fn usage(&self, w: &Warden, account: &str) -> Result<Option<Usage>, String> {
        let key = AccountPublicKey::new(account).map_err(|e| e.to_string())?;
        let client = self.client(w).await?;
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CONNZ", key.as_str());
        let ask = client.client().request(subject, "{}".into());
        match tokio::time::timeout(ASK_TIMEOUT, ask).await {
            Err(_) => Ok(None),
            Ok(Err(e)) => {
                use async_nats::RequestErrorKind as K;
                match e.kind() {
                    K::TimedOut | K::NoResponders => Ok(None),
                    _ => {
                        self.forget().await;
                        Err(e.to_string())
                    }
                }
            }
            Ok(Ok(msg)) => parse_connz(&msg.payload).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connz_sums_connections() {
        let reply = br#"{"server":{"name":"n"},"data":{"server_id":"x","num_connections":2,"total":2,
            "connections":[{"cid":1,"subscriptions":3,"in_msgs":5,"out_msgs":1,"in_bytes":50,"out_bytes":10},
                           {"cid":2,"subscriptions":1,"in_msgs":0,"out_msgs":4,"in_bytes":0,"out_bytes":40}]}}"#;
        let u = parse_connz(reply).unwrap();
        assert_eq!(
            u,
            Usage {
                connections: 2,
                listed: 2,
                subscriptions: 4,
                in_msgs: 5,
                in_bytes: 50,
                out_msgs: 5,
                out_bytes: 50,
            }
        );
        let none = br#"{"data":{"total":0,"connections":null}}"#;
        assert_eq!(parse_connz(none).unwrap(), Usage::default());
        assert!(parse_connz(br#"{"error":{"code":500,"description":"x"}}"#).is_err());
        assert!(parse_connz(b"nope").is_err());
    }
}
