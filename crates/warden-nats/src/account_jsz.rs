//! What one account uses of JetStream, asked over the system account:
//! `$SYS.REQ.ACCOUNT.<account key>.JSZ` with `{"streams":true}`.
//!
//! The reply is the server API envelope `{"server":{…},"data":{…},"error":{…}}`; `data`
//! is the account's detail: `memory` and `storage` in bytes, and with `streams` asked,
//! `stream_detail`, one entry per stream with its `state.consumer_count` (nats-server
//! `JszAccount`; the same shape on 2.9.10 and 2.15.1). Where the account has no JetStream
//! (or the server none) the reply holds an `error` (`code` and `description`) instead of
//! `data`; that, silence and a failed request are told apart in [`AccountJszError`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The JetStream an account uses on the server that answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountJetStream {
    /// Bytes of memory storage its streams hold.
    pub memory: u64,
    /// Bytes of file storage its streams hold.
    pub storage: u64,
    /// Its streams.
    pub streams: u64,
    /// The consumers of those streams.
    pub consumers: u64,
}

/// Why an account's JetStream use could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountJszError {
    /// Nothing answered within the bound (no server that answers the subject is reached).
    #[error("no server answered within {0:?} (JetStream off, or the server is busy)")]
    NoAnswer(Duration),
    /// The server answered with an error (no JetStream for the account there).
    #[error("the server says: {0}")]
    Refused(String),
    /// The request could not be sent, or the reply was not the expected shape.
    #[error("{0}")]
    Failed(String),
}

/// The subject that asks the servers for account `key`'s JetStream use.
pub fn account_jsz_subject(key: &str) -> String {
    format!("$SYS.REQ.ACCOUNT.{key}.JSZ")
}

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    data: Option<Detail>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default)]
    memory: u64,
    #[serde(default)]
    storage: u64,
    #[serde(default)]
    stream_detail: Option<Vec<StreamDetail>>,
}

#[derive(Deserialize)]
struct StreamDetail {
    #[serde(default)]
    state: Option<StreamState>,
}

#[derive(Deserialize)]
struct StreamState {
    #[serde(default)]
    consumer_count: u64,
}

/// Reads a `$SYS.REQ.ACCOUNT.<key>.JSZ` reply.
pub fn parse_account_jsz(payload: &[u8]) -> Result<AccountJetStream, AccountJszError> {
    let reply: Reply = serde_json::from_slice(payload)
        .map_err(|e| AccountJszError::Failed(format!("unreadable JSZ reply: {e}")))?;
    if let Some(e) = reply.error {
        return Err(AccountJszError::Refused(format!(
            "{} ({})",
            e.description, e.code
        )));
    }
    let d = reply
        .data
        .ok_or_else(|| AccountJszError::Failed("the JSZ reply has no data".into()))?;
    let streams = d.stream_detail.unwrap_or_default();
    Ok(AccountJetStream {
        memory: d.memory,
        storage: d.storage,
        streams: streams.len() as u64,
        consumers: streams
            .iter()
            .filter_map(|s| s.state.as_ref())
            .map(|s| s.consumer_count)
            .sum(),
    })
}

/// Asks for account `key`'s JetStream use on `client` (a system-account connection),
/// waiting at most `wait`; the first server to answer is read.
pub async fn account_jsz(
    client: &async_nats::Client,
    key: &str,
    wait: Duration,
) -> Result<AccountJetStream, AccountJszError> {
    let ask = client.request(account_jsz_subject(key), r#"{"streams":true}"#.into());
    match tokio::time::timeout(wait, ask).await {
        Err(_) => Err(AccountJszError::NoAnswer(wait)),
        Ok(Err(e)) => {
            use async_nats::RequestErrorKind as K;
            match e.kind() {
                K::TimedOut | K::NoResponders => Err(AccountJszError::NoAnswer(wait)),
                _ => Err(AccountJszError::Failed(e.to_string())),
            }
        }
        Ok(Ok(msg)) => parse_account_jsz(&msg.payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_storage_streams_and_consumers() {
        let reply = br#"{"server":{"name":"n"},"data":{"name":"A","id":"A","memory":0,"storage":2048,
            "reserved_memory":0,"reserved_storage":0,"accounts":1,"ha_assets":0,"api":{"total":3,"errors":0},
            "stream_detail":[{"name":"S1","state":{"messages":2,"bytes":2048,"consumer_count":2}},
                             {"name":"S2","state":{"messages":0,"bytes":0,"consumer_count":1}}]}}"#;
        assert_eq!(
            parse_account_jsz(reply).unwrap(),
            AccountJetStream {
                memory: 0,
                storage: 2048,
                streams: 2,
                consumers: 3,
            }
        );
        let none = br#"{"data":{"memory":0,"storage":0}}"#;
        assert_eq!(
            parse_account_jsz(none).unwrap(),
            AccountJetStream::default()
        );
        let refused =
            br#"{"server":{},"error":{"code":500,"description":"account not jetstream enabled"}}"#;
        assert!(matches!(
            parse_account_jsz(refused),
            Err(AccountJszError::Refused(t)) if t.contains("not jetstream enabled")
        ));
        assert!(matches!(
            parse_account_jsz(b"nope"),
            Err(AccountJszError::Failed(_))
        ));
    }
}
