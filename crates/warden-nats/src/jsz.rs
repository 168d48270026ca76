//! How many servers a JetStream cluster has, asked over the system account, so that a
//! stream declared with more replicas than that is refused before anything is created.
//!
//! `$SYS.REQ.SERVER.PING.JSZ` is answered by every server the system-account connection
//! reaches. A server of a JetStream cluster puts the cluster's metadata group in
//! `data.meta_cluster` (`name`, `leader`, `cluster_size`); a server without a cluster
//! leaves it out, and one without JetStream says `disabled` (measured on nats-server
//! 2.9.10 and 2.15.1). A stream's replicas are placed on distinct servers of the cluster,
//! so its replica count can be at most `cluster_size`, or 1 on a server without cluster.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::resolver::ResolverError;
use crate::varz::QUIET;

/// The subject every server answers with its `jsz`.
pub const JSZ_PING_SUBJECT: &str = "$SYS.REQ.SERVER.PING.JSZ";

/// The JetStream of the servers that answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JetStreamPlacement {
    /// Servers that answered with JetStream enabled.
    pub servers: usize,
    /// The meta group's name (the cluster's), when clustered.
    pub cluster: Option<String>,
    /// Servers of the JetStream meta group (`cluster_size`); 1 without a cluster, 0 when
    /// no server has JetStream.
    pub cluster_size: usize,
    /// The meta leader's name, when one is elected.
    pub leader: Option<String>,
}

impl JetStreamPlacement {
    /// The most replicas a stream can have here.
    pub fn max_replicas(&self) -> usize {
        self.cluster_size
    }

    /// How the cluster reads to a person: `a JetStream cluster of 3 servers (C3)`, `one
    /// JetStream server without a cluster`, `no JetStream`.
    pub fn describe(&self) -> String {
        match (self.cluster_size, &self.cluster) {
            (0, _) => "no server with JetStream".into(),
            (n, Some(name)) => format!(
                "a JetStream cluster of {n} server{} ({name})",
                if n == 1 { "" } else { "s" }
            ),
            (_, None) => "a JetStream server without a cluster".into(),
        }
    }
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    data: Option<JszPart>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct JszPart {
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    meta_cluster: Option<MetaPart>,
}

#[derive(Deserialize)]
struct MetaPart {
    #[serde(default)]
    name: String,
    #[serde(default)]
    leader: String,
    #[serde(default)]
    cluster_size: usize,
}

/// One server's view, from its answer to [`JSZ_PING_SUBJECT`]: `None` when it has no
/// JetStream.
pub fn parse_jsz(payload: &[u8]) -> Result<Option<JetStreamPlacement>, String> {
    let reply: Reply = serde_json::from_slice(payload).map_err(|e| format!("not jsz JSON: {e}"))?;
    if let Some(err) = reply.error {
        return Err(format!("the server answered an error: {err}"));
    }
    let data = reply.data.ok_or("the reply has no data")?;
    if data.disabled {
        return Ok(None);
    }
    let nonempty = |s: String| Some(s).filter(|s| !s.is_empty());
    Ok(Some(match data.meta_cluster {
        Some(m) => JetStreamPlacement {
            servers: 1,
            cluster: nonempty(m.name),
            cluster_size: m.cluster_size.max(1),
            leader: nonempty(m.leader),
        },
        None => JetStreamPlacement {
            servers: 1,
            cluster: None,
            cluster_size: 1,
            leader: None,
        },
    }))
}

/// Asks every server the system-account connection `client` reaches about its JetStream,
/// for at most `wait` (and [`QUIET`] after the last answer): the largest cluster heard.
pub async fn jetstream_placement(
    client: &async_nats::Client,
    wait: Duration,
) -> Result<JetStreamPlacement, ResolverError> {
    let mut sub = crate::varz::scatter(client, JSZ_PING_SUBJECT).await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut heard = 0;
    let mut best = JetStreamPlacement::default();
    loop {
        let until = if heard > 0 {
            deadline.min(tokio::time::Instant::now() + QUIET)
        } else {
            deadline
        };
        match tokio::time::timeout_at(until, sub.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(msg)) => {
                heard += 1;
                let one = parse_jsz(&msg.payload).map_err(|reason| ResolverError::BadReply {
                    subject: JSZ_PING_SUBJECT.to_string(),
                    reason,
                })?;
                if let Some(one) = one {
                    let servers = best.servers + 1;
                    if one.cluster_size > best.cluster_size
                        || (best.leader.is_none() && one.cluster_size == best.cluster_size)
                    {
                        best = one;
                    }
                    best.servers = servers;
                }
            }
        }
    }
    let _ = sub.unsubscribe().await;
    if heard == 0 {
        return Err(ResolverError::Timeout {
            subject: JSZ_PING_SUBJECT.to_string(),
            timeout: wait,
        });
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_meta_cluster_or_its_absence() {
        let clustered = br#"{"server":{"name":"n1"},"data":{"server_id":"N1","meta_cluster":{"name":"C3","leader":"n2","peer":"x","cluster_size":3}}}"#;
        let p = parse_jsz(clustered).unwrap().unwrap();
        assert_eq!(p.max_replicas(), 3);
        assert_eq!(p.cluster.as_deref(), Some("C3"));
        assert_eq!(p.leader.as_deref(), Some("n2"));
        assert_eq!(p.describe(), "a JetStream cluster of 3 servers (C3)");
        let single = br#"{"data":{"server_id":"N1","config":{"max_memory":1}}}"#;
        let p = parse_jsz(single).unwrap().unwrap();
        assert_eq!((p.max_replicas(), p.cluster.clone()), (1, None));
        assert_eq!(p.describe(), "a JetStream server without a cluster");
        assert_eq!(parse_jsz(br#"{"data":{"disabled":true}}"#).unwrap(), None);
        assert!(parse_jsz(br#"{"error":{"code":500}}"#).is_err());
        assert!(parse_jsz(b"nope").is_err());
        assert_eq!(
            JetStreamPlacement::default().describe(),
            "no server with JetStream"
        );
    }
}
