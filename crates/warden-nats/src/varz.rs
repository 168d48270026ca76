//! Which operator keys the running servers trust, asked over the system account.
//!
//! nats-server reads its trusted operators only at start (a config reload that changes the
//! operator JWT is refused), so after Warden changes the operator's signing keys it must not
//! assume the servers know: it asks each one. `$SYS.REQ.SERVER.PING.VARZ` is answered by every
//! server of the cluster the connection reaches; the reply's `data.trusted_operators_claim` lists
//! the operator claims each server loaded (2.9.10 and 2.15.1 alike), with their `signing_keys`.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::resolver::{ResolverError, ServerInfo};

/// The subject every server of a cluster answers with its `varz`.
pub const VARZ_PING_SUBJECT: &str = "$SYS.REQ.SERVER.PING.VARZ";

/// How long to keep listening for more answers once the expected number arrived.
pub const QUIET: Duration = Duration::from_millis(500);

/// An operator one server trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedOperator {
    /// The operator's identity key (`sub`).
    pub public_key: String,
    /// Its signing keys as the server loaded them.
    pub signing_keys: Vec<String>,
}

/// What one server trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerTrust {
    /// `server_name` (the id when unnamed).
    pub name: String,
    /// Server id (`N…`).
    pub id: String,
    /// Version, e.g. `2.15.1`.
    pub version: String,
    /// The operators it trusts.
    pub operators: Vec<TrustedOperator>,
    /// Its system account's public key (empty when it has none).
    pub system_account: String,
    /// Its clock when it answered (`now`, RFC 3339), for comparing clocks.
    pub now: String,
}

impl ServerTrust {
    /// Whether this server accepts accounts issued by `key` for `operator` (the identity key
    /// itself or one of the signing keys it loaded).
    pub fn trusts(&self, operator: &str, key: &str) -> bool {
        self.operators.iter().any(|o| {
            o.public_key == operator && (key == operator || o.signing_keys.iter().any(|k| k == key))
        })
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    server: Option<ServerInfo>,
    #[serde(default)]
    data: Option<VarzPart>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct VarzPart {
    #[serde(default)]
    server_id: String,
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    trusted_operators_claim: Option<Vec<ClaimPart>>,
    #[serde(default)]
    system_account: String,
    #[serde(default)]
    now: String,
}

#[derive(Deserialize)]
struct ClaimPart {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    nats: Option<OperatorPart>,
}

#[derive(Deserialize)]
struct OperatorPart {
    #[serde(default)]
    signing_keys: Option<Vec<String>>,
}

/// Parses one server's answer to [`VARZ_PING_SUBJECT`].
pub fn parse_varz_trust(payload: &[u8]) -> Result<ServerTrust, String> {
    let reply: Reply =
        serde_json::from_slice(payload).map_err(|e| format!("not varz JSON: {e}"))?;
    if let Some(err) = reply.error {
        return Err(format!("the server answered an error: {err}"));
    }
    let data = reply.data.ok_or("the reply has no data")?;
    let info = reply.server.unwrap_or_default();
    Ok(ServerTrust {
        name: if info.name.is_empty() {
            data.server_name
        } else {
            info.name
        },
        id: if info.id.is_empty() {
            data.server_id
        } else {
            info.id
        },
        version: if info.version.is_empty() {
            data.version
        } else {
            info.version
        },
        operators: data
            .trusted_operators_claim
            .unwrap_or_default()
            .into_iter()
            .map(|c| TrustedOperator {
                public_key: c.sub,
                signing_keys: c.nats.and_then(|n| n.signing_keys).unwrap_or_default(),
            })
            .collect(),
        system_account: data.system_account,
        now: data.now,
    })
}

/// Publishes an empty request on a server-ping `subject` (every server the connection
/// reaches answers on the reply inbox) and returns the subscription the answers arrive
/// on; the caller reads them for as long as it waits.
pub(crate) async fn scatter(
    client: &async_nats::Client,
    subject: &str,
) -> Result<async_nats::Subscriber, ResolverError> {
    let failed = |reason: String| ResolverError::Nats {
        subject: subject.to_string(),
        reason,
    };
    let inbox = client.new_inbox();
    let sub = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| failed(e.to_string()))?;
    client
        .publish_with_reply(subject.to_string(), inbox, "{}".into())
        .await
        .map_err(|e| failed(e.to_string()))?;
    client.flush().await.map_err(|e| failed(e.to_string()))?;
    Ok(sub)
}

/// Asks every server the system-account connection `client` reaches what it trusts: collects
/// answers for at most `wait`; once `expect` servers have answered, it stops at the first
/// [`QUIET`] without a new answer (the servers of a cluster answer within milliseconds of each
/// other, and a server beyond the expected count must be heard too). Servers that are down or
/// restarting simply do not answer: the caller compares the count with what it expects.
pub async fn servers_trust(
    client: &async_nats::Client,
    wait: Duration,
    expect: usize,
) -> Result<Vec<ServerTrust>, ResolverError> {
    let mut sub = scatter(client, VARZ_PING_SUBJECT).await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut out: Vec<ServerTrust> = Vec::new();
    loop {
        let until = if out.len() >= expect.max(1) {
            deadline.min(tokio::time::Instant::now() + QUIET)
        } else {
            deadline
        };
        match tokio::time::timeout_at(until, sub.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(msg)) => {
                let t =
                    parse_varz_trust(&msg.payload).map_err(|reason| ResolverError::BadReply {
                        subject: VARZ_PING_SUBJECT.to_string(),
                        reason,
                    })?;
                if !out.iter().any(|s| s.id == t.id) {
                    out.push(t);
                }
            }
        }
    }
    let _ = sub.unsubscribe().await;
    out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signing_keys_of_trusted_operators() {
        let reply = br#"{"server":{"name":"n1","id":"NID","ver":"2.9.10"},"data":{"server_id":"NID",
            "trusted_operators_claim":[{"sub":"OP","nats":{"signing_keys":["OK1","OK2"],"type":"operator"}}]}}"#;
        let t = parse_varz_trust(reply).unwrap();
        assert_eq!(t.name, "n1");
        assert_eq!(t.version, "2.9.10");
        assert!(t.trusts("OP", "OK2"));
        assert!(t.trusts("OP", "OP"));
        assert!(!t.trusts("OP", "OK3"));
        assert!(!t.trusts("OTHER", "OK1"));
        let none = br#"{"data":{"server_id":"X","server_name":"x","version":"2.15.1"}}"#;
        let t = parse_varz_trust(none).unwrap();
        assert_eq!((t.name.as_str(), t.id.as_str()), ("x", "X"));
        assert!(t.operators.is_empty());
        assert!(parse_varz_trust(br#"{"error":{"code":500}}"#).is_err());
        assert!(parse_varz_trust(b"nope").is_err());
    }
}
