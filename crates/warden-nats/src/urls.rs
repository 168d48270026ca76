//! The servers Warden talks to: one URL or several, comma-separated as `nats --server`
//! takes them (`nats://a:4222,nats://b:4222`). Every connection Warden opens gets the
//! whole list, so when its server dies the client moves to another one of the list (or
//! one the cluster announced) and the work it carries — pushes, the change stream, the
//! NATS service, the chat fan-out — goes on there. The servers are tried in the order
//! given (nats.go's `DontRandomize`): list the nearest first, and give each `serve` its
//! own order to spread their connections.

use std::fmt;
use std::io;
use std::str::FromStr;

use async_nats::{ServerAddr, ToServerAddrs};

/// A non-empty list of NATS server URLs (`nats://`, `tls://`, `ws://`, `wss://`, or
/// `host:port` meaning `nats://host:port`), in the order given.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrls {
    urls: Vec<String>,
    addrs: Vec<ServerAddr>,
}

/// A server list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid NATS server URL {input:?}: {reason}")]
pub struct NatsUrlError {
    /// The entry refused.
    pub input: String,
    /// Why.
    pub reason: String,
}

impl NatsUrls {
    /// Parses a comma-separated list (blanks around entries are ignored; an empty entry
    /// is refused, so a typo like `a,,b` is noticed).
    pub fn parse(text: &str) -> Result<NatsUrls, NatsUrlError> {
        let mut urls = Vec::new();
        let mut addrs = Vec::new();
        for entry in text.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(NatsUrlError {
                    input: text.to_string(),
                    reason:
                        "an empty server URL; give nats://HOST:PORT, several separated by commas"
                            .into(),
                });
            }
            let addr = ServerAddr::from_str(entry).map_err(|e| NatsUrlError {
                input: entry.to_string(),
                reason: e.to_string(),
            })?;
            if addr.host().is_empty() {
                return Err(NatsUrlError {
                    input: entry.to_string(),
                    reason: "no host".into(),
                });
            }
            urls.push(entry.to_string());
            addrs.push(addr);
        }
        Ok(NatsUrls { urls, addrs })
    }

    /// The URLs as given.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Each server alone (to ask every server of a cluster, not whichever answers first).
    pub fn each(&self) -> impl Iterator<Item = NatsUrls> + '_ {
        self.urls.iter().zip(&self.addrs).map(|(u, a)| NatsUrls {
            urls: vec![u.clone()],
            addrs: vec![a.clone()],
        })
    }

    /// How many servers are listed.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never true: a list has at least one server.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }
}

impl FromStr for NatsUrls {
    type Err = NatsUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NatsUrls::parse(s)
    }
}

impl fmt::Display for NatsUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.urls.join(","))
    }
}

impl fmt::Debug for NatsUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsUrls({self})")
    }
}

impl ToServerAddrs for NatsUrls {
    type Iter = std::vec::IntoIter<ServerAddr>;
    fn to_server_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.addrs.clone().into_iter())
    }
}

/// The server list in `text` for a connect call, as an I/O error when it cannot be used
/// (connect calls report it like any other connect failure, naming the URL).
pub fn server_addrs(text: &str) -> io::Result<NatsUrls> {
    NatsUrls::parse(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

/// `text` (one URL or several, comma-separated) as what `ConnectOptions::connect` takes:
/// `.connect(servers(url))`. A list that cannot be parsed fails the connect call.
pub fn servers(text: &str) -> ServerList<'_> {
    ServerList(text)
}

/// A comma-separated server list not parsed yet; see [`servers`].
#[derive(Clone, Copy, Debug)]
pub struct ServerList<'a>(&'a str);

impl ToServerAddrs for ServerList<'_> {
    type Iter = std::vec::IntoIter<ServerAddr>;
    fn to_server_addrs(&self) -> io::Result<Self::Iter> {
        server_addrs(self.0)?.to_server_addrs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_several_servers() {
        let one = NatsUrls::parse("nats://127.0.0.1:4222").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.to_string(), "nats://127.0.0.1:4222");
        let many = NatsUrls::parse(" nats://127.0.0.1:1 , 127.0.0.1:2,tls://h:3").unwrap();
        assert_eq!(
            many.urls(),
            ["nats://127.0.0.1:1", "127.0.0.1:2", "tls://h:3"]
        );
        assert_eq!(many.to_string(), "nats://127.0.0.1:1,127.0.0.1:2,tls://h:3");
        let each: Vec<String> = many.each().map(|u| u.to_string()).collect();
        assert_eq!(each, ["nats://127.0.0.1:1", "127.0.0.1:2", "tls://h:3"]);
        assert_eq!(many.to_server_addrs().unwrap().count(), 3);
    }

    #[test]
    fn refuses_blank_and_bad_entries() {
        for bad in [
            "",
            " ",
            "nats://a:1,,nats://b:2",
            "nats://a:1,",
            "http://a:1",
            "nats://:4222",
        ] {
            let e = NatsUrls::parse(bad).expect_err(bad);
            assert!(
                e.to_string().contains("invalid NATS server URL"),
                "{bad}: {e}"
            );
        }
    }
}
