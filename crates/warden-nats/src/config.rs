//! Renders a nats-server configuration in operator mode: the operator JWT, the
//! system account, a `full` account resolver with `allow_delete` (so Warden can
//! push and delete accounts at run time), every account's current JWT preloaded,
//! and optionally JetStream (clustered when the server is in a cluster), websocket
//! and leaf node listeners, a cluster (routes) and a gateway (super-cluster) block.
//!
//! [`ServerConfig::validate`] lists every problem nats-server would refuse at start
//! (several of them `nats-server -t` does not catch: a cluster name other than the
//! gateway name, JetStream in a cluster without `server_name`), so nothing is written
//! for a server that would not start.
//!
//! The output is accepted by every server Warden supports (2.9.10 to 2.15.x).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything a rendered server configuration depends on.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `server_name`, if any.
    pub server_name: Option<String>,
    /// Client listen address, `host:port`.
    pub listen: String,
    /// The operator JWT (inlined).
    pub operator_jwt: String,
    /// The system account's public key.
    pub system_account: String,
    /// Directory of the full resolver.
    pub resolver_dir: PathBuf,
    /// Accounts to preload: (name, public key, JWT).
    pub preload: Vec<(String, String, String)>,
    /// JetStream store directory, if JetStream is wanted.
    pub jetstream_dir: Option<PathBuf>,
    /// Websocket listen address (`host:port`, no TLS), if wanted.
    pub websocket: Option<String>,
    /// Leaf node listen address (`host:port`), if wanted.
    pub leafnodes: Option<String>,
    /// TLS of the leaf node listener (only rendered with `leafnodes`).
    pub leafnodes_tls: Option<TlsFiles>,
    /// HTTP monitoring listen address (`host:port`), if wanted.
    pub monitoring: Option<String>,
    /// The cluster this server routes to, if any.
    pub cluster: Option<ClusterBlock>,
    /// The gateway to other clusters (super-cluster), if any.
    pub gateway: Option<GatewayBlock>,
    /// JetStream memory store limit in bytes (only with `jetstream_dir`).
    pub max_memory_store: Option<u64>,
    /// JetStream file store limit in bytes (only with `jetstream_dir`).
    pub max_file_store: Option<u64>,
    /// JetStream domain (only with `jetstream_dir`): separates this JetStream from the one
    /// of a hub or leaf node it is connected to.
    pub jetstream_domain: Option<String>,
}

/// The `cluster { … }` block: the routes between the servers of one cluster. Every server
/// of a cluster carries the same `name`; routes are the other servers' cluster listeners.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterBlock {
    /// Cluster name (equal to the gateway name when a gateway is set).
    pub name: String,
    /// Where this server accepts routes, `host:port`.
    pub listen: String,
    /// Route URLs (`nats-route://host:port`). A URL of this server itself is rendered as
    /// given (nats-server ignores a route to itself), but callers that know which one it
    /// is leave it out.
    pub routes: Vec<String>,
    /// TLS of the routes: the certificate is presented both ways, `ca_file` checks the peer.
    pub tls: Option<TlsFiles>,
}

/// The `gateway { … }` block: this cluster's connections to the other clusters of a
/// super-cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayBlock {
    /// This cluster's gateway name (equal to the cluster name).
    pub name: String,
    /// Where this server accepts gateway connections, `host:port`.
    pub listen: String,
    /// Every gateway to connect to: name → URLs (`nats://host:port`). This cluster's own
    /// entry may be among them: nats-server ignores a gateway to itself.
    pub gateways: Vec<(String, Vec<String>)>,
    /// TLS of the gateway connections (nats-server always verifies gateway peers).
    pub tls: Option<TlsFiles>,
}

/// One reason a [`ServerConfig`] would not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    /// A listen address is not `host:port`.
    #[error("{what} {value:?} is not HOST:PORT ({reason})")]
    BadAddress {
        /// Which address (`client listen`, `cluster listen`, …).
        what: String,
        /// As given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A name nats-server refuses (empty, spaces, …).
    #[error("{what} {value:?} is invalid ({reason})")]
    BadName {
        /// Which name (`server_name`, `cluster name`, …).
        what: String,
        /// As given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A route or gateway URL that is not `scheme://host:port`.
    #[error("{what} {value:?} is not a valid URL ({reason})")]
    BadUrl {
        /// Which URL (`route`, `gateway B URL`).
        what: String,
        /// As given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A cluster block without its listen address.
    #[error("cluster {0:?} has no listen address (HOST:PORT for routes)")]
    ClusterWithoutListen(String),
    /// A gateway block without its listen address.
    #[error("gateway {0:?} has no listen address (HOST:PORT for gateway connections)")]
    GatewayWithoutListen(String),
    /// JetStream in a cluster (or super-cluster) needs every server named.
    #[error(
        "JetStream in a cluster needs a server_name (each server's own, unique in the cluster)"
    )]
    JetStreamClusterWithoutServerName,
    /// nats-server refuses a cluster name other than the gateway name.
    #[error(
        "cluster name {cluster:?} differs from gateway name {gateway:?}: nats-server requires them equal"
    )]
    ClusterGatewayMismatch {
        /// Cluster name.
        cluster: String,
        /// Gateway name.
        gateway: String,
    },
    /// The same gateway named twice.
    #[error("gateway {0:?} is listed twice")]
    DuplicateGateway(String),
    /// A gateway without URLs.
    #[error("gateway {0:?} has no URL")]
    GatewayWithoutUrls(String),
    /// JetStream limits or domain without JetStream.
    #[error("{0} is set but JetStream is not enabled")]
    JetStreamOptionWithoutJetStream(String),
    /// Two listeners of this server on one address.
    #[error("{first} and {second} both listen on {address}")]
    ListenClash {
        /// The address.
        address: String,
        /// One listener.
        first: String,
        /// The other.
        second: String,
    },
    /// A TLS block nats-server would refuse.
    #[error("{what} TLS: {reason}")]
    Tls {
        /// Which listener.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Every problem of a [`ServerConfig`] (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    /// What is wrong, in the order found.
    pub problems: Vec<ConfigProblem>,
}

impl ServerConfig {
    /// A configuration with only the required parts set.
    pub fn new(
        listen: impl Into<String>,
        operator_jwt: impl Into<String>,
        system_account: impl Into<String>,
        resolver_dir: impl Into<PathBuf>,
    ) -> Self {
        ServerConfig {
            server_name: None,
            listen: listen.into(),
            operator_jwt: operator_jwt.into(),
            system_account: system_account.into(),
            resolver_dir: resolver_dir.into(),
            preload: Vec::new(),
            jetstream_dir: None,
            websocket: None,
            leafnodes: None,
            leafnodes_tls: None,
            monitoring: None,
            cluster: None,
            gateway: None,
            max_memory_store: None,
            max_file_store: None,
            jetstream_domain: None,
        }
    }

    /// Every problem nats-server would refuse, at parse or at start; `Ok` when none.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        if let Some(name) = &self.server_name {
            check_name(&mut p, "server_name", name);
        }
        // (what, address) of every listener, to find two on one address.
        let mut listeners: Vec<(String, String)> = Vec::new();
        let mut listener = |p: &mut Vec<ConfigProblem>, what: &str, addr: &str| {
            if check_address(p, what, addr) {
                listeners.push((what.to_string(), addr.to_string()));
            }
        };
        listener(&mut p, "client listen", &self.listen);
        if let Some(m) = &self.monitoring {
            listener(&mut p, "monitoring listen", m);
        }
        if let Some(ws) = &self.websocket {
            listener(&mut p, "websocket listen", ws);
        }
        if let Some(leaf) = &self.leafnodes {
            listener(&mut p, "leaf node listen", leaf);
            if let Some(tls) = &self.leafnodes_tls {
                check_tls(&mut p, "leaf node", tls);
            }
        }
        if let Some(c) = &self.cluster {
            check_name(&mut p, "cluster name", &c.name);
            if c.listen.trim().is_empty() {
                p.push(ConfigProblem::ClusterWithoutListen(c.name.clone()));
            } else {
                listener(&mut p, "cluster listen", &c.listen);
            }
            for r in &c.routes {
                check_url(&mut p, "route", r, &["nats-route", "nats", "tls"]);
            }
            if let Some(tls) = &c.tls {
                check_tls(&mut p, "cluster", tls);
            }
        }
        if let Some(g) = &self.gateway {
            check_name(&mut p, "gateway name", &g.name);
            if g.listen.trim().is_empty() {
                p.push(ConfigProblem::GatewayWithoutListen(g.name.clone()));
            } else {
                listener(&mut p, "gateway listen", &g.listen);
            }
            let mut seen = std::collections::BTreeSet::new();
            for (name, urls) in &g.gateways {
                check_name(&mut p, "gateway name", name);
                if !seen.insert(name.as_str()) {
                    p.push(ConfigProblem::DuplicateGateway(name.clone()));
                }
                if urls.is_empty() {
                    p.push(ConfigProblem::GatewayWithoutUrls(name.clone()));
                }
                for u in urls {
                    check_url(&mut p, &format!("gateway {name} URL"), u, &["nats", "tls"]);
                }
            }
            if let Some(tls) = &g.tls {
                check_tls(&mut p, "gateway", tls);
            }
        }
        if let (Some(c), Some(g)) = (&self.cluster, &self.gateway)
            && c.name != g.name
        {
            p.push(ConfigProblem::ClusterGatewayMismatch {
                cluster: c.name.clone(),
                gateway: g.name.clone(),
            });
        }
        if self.jetstream_dir.is_some() {
            if (self.cluster.is_some() || self.gateway.is_some()) && self.server_name.is_none() {
                p.push(ConfigProblem::JetStreamClusterWithoutServerName);
            }
            if let Some(d) = &self.jetstream_domain {
                check_name(&mut p, "JetStream domain", d);
                if d.contains('.') {
                    p.push(ConfigProblem::BadName {
                        what: "JetStream domain".into(),
                        value: d.clone(),
                        reason: "it may not contain '.'".into(),
                    });
                }
            }
        } else {
            for (set, what) in [
                (self.max_memory_store.is_some(), "max_memory_store"),
                (self.max_file_store.is_some(), "max_file_store"),
                (self.jetstream_domain.is_some(), "the JetStream domain"),
            ] {
                if set {
                    p.push(ConfigProblem::JetStreamOptionWithoutJetStream(what.into()));
                }
            }
        }
        // Two listeners on one port clash unless both name distinct specific hosts.
        let mut by_port: BTreeMap<u16, Vec<(&str, &str, &str)>> = BTreeMap::new();
        for (what, addr) in &listeners {
            if let Ok((host, port)) = split_host_port(addr) {
                by_port.entry(port).or_default().push((what, addr, host));
            }
        }
        for list in by_port.values() {
            for (i, (what_a, addr_a, host_a)) in list.iter().enumerate() {
                if let Some((what_b, _, _)) = list[..i]
                    .iter()
                    .find(|(_, _, host_b)| hosts_overlap(host_a, host_b))
                {
                    p.push(ConfigProblem::ListenClash {
                        address: addr_a.to_string(),
                        first: what_b.to_string(),
                        second: what_a.to_string(),
                    });
                }
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: p })
        }
    }

    /// The configuration text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# nats-server configuration rendered by Warden.");
        let _ = writeln!(
            out,
            "# Operator mode: accounts are trusted through the operator JWT below and kept"
        );
        let _ = writeln!(
            out,
            "# in step by Warden through the resolver (`warden push`, `warden serve`)."
        );
        if let Some(name) = &self.server_name {
            let _ = writeln!(out, "server_name: {}", quote(name));
        }
        let _ = writeln!(out, "listen: {}", quote(&self.listen));
        if let Some(m) = &self.monitoring {
            let _ = writeln!(out, "http: {}", quote(m));
        }
        let _ = writeln!(out, "\noperator: {}", quote(&self.operator_jwt));
        let _ = writeln!(out, "system_account: {}", self.system_account);
        let _ = writeln!(out, "\nresolver: {{");
        let _ = writeln!(out, "  type: full");
        let _ = writeln!(
            out,
            "  dir: {}",
            quote(&self.resolver_dir.display().to_string())
        );
        let _ = writeln!(out, "  allow_delete: true");
        let _ = writeln!(out, "  interval: \"2m\"");
        let _ = writeln!(out, "  timeout: \"1.9s\"");
        let _ = writeln!(out, "}}");
        let _ = writeln!(out, "\nresolver_preload: {{");
        for (name, key, jwt) in &self.preload {
            let _ = writeln!(out, "  # {}", name.replace('\n', " "));
            let _ = writeln!(out, "  {key}: {}", quote(jwt));
        }
        let _ = writeln!(out, "}}");
        if let Some(dir) = &self.jetstream_dir {
            let _ = writeln!(out, "\njetstream: {{");
            let _ = writeln!(out, "  store_dir: {}", quote(&dir.display().to_string()));
            if let Some(n) = self.max_memory_store {
                let _ = writeln!(out, "  max_memory_store: {n}");
            }
            if let Some(n) = self.max_file_store {
                let _ = writeln!(out, "  max_file_store: {n}");
            }
            if let Some(d) = &self.jetstream_domain {
                let _ = writeln!(out, "  domain: {}", quote(d));
            }
            let _ = writeln!(out, "}}");
        }
        if let Some(ws) = &self.websocket {
            let _ = writeln!(out, "\nwebsocket: {{");
            let _ = writeln!(out, "  listen: {}", quote(ws));
            let _ = writeln!(out, "  no_tls: true");
            let _ = writeln!(out, "}}");
        }
        if let Some(leaf) = &self.leafnodes {
            let _ = writeln!(out, "\nleafnodes: {{");
            let _ = writeln!(out, "  listen: {}", quote(leaf));
            if let Some(tls) = &self.leafnodes_tls {
                tls.render_block(&mut out, "  ");
            }
            let _ = writeln!(out, "}}");
        }
        if let Some(c) = &self.cluster {
            let _ = writeln!(out, "\ncluster: {{");
            let _ = writeln!(out, "  name: {}", quote(&c.name));
            let _ = writeln!(out, "  listen: {}", quote(&c.listen));
            let _ = writeln!(out, "  routes: [");
            for r in &c.routes {
                let _ = writeln!(out, "    {}", quote(r));
            }
            let _ = writeln!(out, "  ]");
            if let Some(tls) = &c.tls {
                tls.render_block(&mut out, "  ");
            }
            let _ = writeln!(out, "}}");
        }
        if let Some(g) = &self.gateway {
            let _ = writeln!(out, "\ngateway: {{");
            let _ = writeln!(out, "  name: {}", quote(&g.name));
            let _ = writeln!(out, "  listen: {}", quote(&g.listen));
            let _ = writeln!(out, "  gateways: [");
            for (name, urls) in &g.gateways {
                let urls: Vec<String> = urls.iter().map(|u| quote(u)).collect();
                let _ = writeln!(
                    out,
                    "    {{ name: {}, urls: [ {} ] }}",
                    quote(name),
                    urls.join(", ")
                );
            }
            let _ = writeln!(out, "  ]");
            if let Some(tls) = &g.tls {
                tls.render_block(&mut out, "  ");
            }
            let _ = writeln!(out, "}}");
        }
        out
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6) into host and a port in 1..=65535.
pub fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let addr = addr.trim();
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed '[' of an IPv6 host".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "no :PORT after the IPv6 host".to_string())?;
        (h, port)
    } else {
        addr.rsplit_once(':')
            .ok_or_else(|| "no :PORT".to_string())?
    };
    if host.is_empty() {
        return Err("no host (use 0.0.0.0 for every interface)".into());
    }
    if host.contains(':') && !addr.starts_with('[') {
        return Err("an IPv6 host must be in brackets, [::1]:4222".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '"')
    {
        return Err("the host has spaces, '/' or quotes".into());
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0".into()),
        Ok(p) => Ok((host, p)),
        Err(_) => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

/// Whether two listen hosts can bind the same port only once: the same host, or either
/// being every interface.
fn hosts_overlap(a: &str, b: &str) -> bool {
    let any = |h: &str| matches!(h, "0.0.0.0" | "::" | "*" | "");
    a.eq_ignore_ascii_case(b) || any(a) || any(b)
}

fn check_address(p: &mut Vec<ConfigProblem>, what: &str, value: &str) -> bool {
    match split_host_port(value) {
        Ok(_) => true,
        Err(reason) => {
            p.push(ConfigProblem::BadAddress {
                what: what.into(),
                value: value.into(),
                reason,
            });
            false
        }
    }
}

/// Names (server, cluster, gateway, domain) nats-server accepts: non-empty, no white
/// space (it refuses spaces in server and cluster names), no quotes or braces that would
/// end the value early.
fn check_name(p: &mut Vec<ConfigProblem>, what: &str, value: &str) {
    let reason = if value.is_empty() {
        Some("empty")
    } else if value.chars().any(char::is_whitespace) {
        Some("it may not contain spaces")
    } else if value
        .chars()
        .any(|c| c.is_control() || "\"'{}[],;#".contains(c))
    {
        Some("it may not contain quotes, braces, brackets, ',', ';' or '#'")
    } else {
        None
    };
    if let Some(reason) = reason {
        p.push(ConfigProblem::BadName {
            what: what.into(),
            value: value.into(),
            reason: reason.into(),
        });
    }
}

fn check_url(p: &mut Vec<ConfigProblem>, what: &str, value: &str, schemes: &[&str]) {
    let bad = |reason: String| ConfigProblem::BadUrl {
        what: what.into(),
        value: value.into(),
        reason,
    };
    match url::Url::parse(value) {
        Err(e) => p.push(bad(e.to_string())),
        Ok(u) => {
            if !schemes.contains(&u.scheme()) {
                p.push(bad(format!(
                    "scheme {}:// (use {}://)",
                    u.scheme(),
                    schemes[0]
                )));
            } else if u.host_str().is_none_or(str::is_empty) {
                p.push(bad("no host".into()));
            } else if u.port().is_none() {
                p.push(bad("no port".into()));
            } else if !matches!(u.path(), "" | "/") || u.query().is_some() {
                p.push(bad("a path or query".into()));
            }
        }
    }
}

fn check_tls(p: &mut Vec<ConfigProblem>, what: &str, tls: &TlsFiles) {
    let mut bad = |reason: &str| {
        p.push(ConfigProblem::Tls {
            what: what.into(),
            reason: reason.into(),
        })
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => bad("a certificate without its key"),
        (None, Some(_)) => bad("a key without its certificate"),
        (None, None) => bad("no certificate and key"),
        (Some(_), Some(_)) => {}
    }
    if tls.verify && tls.ca_file.is_none() {
        bad("verify without a CA to verify against");
    }
}

/// Files of a nats-server `tls { … }` block. On a listener, `verify` requires and checks
/// client certificates against `ca_file`; on a leaf node remote, `ca_file` checks the hub's
/// certificate and `cert_file`/`key_file` are the leaf's client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate (PEM).
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Certificate authority (PEM) that peers are checked against.
    pub ca_file: Option<PathBuf>,
    /// Require and verify the peer's certificate (listeners only).
    pub verify: bool,
}

impl TlsFiles {
    /// Appends `tls { … }` at `indent`.
    pub fn render_block(&self, out: &mut String, indent: &str) {
        let _ = writeln!(out, "{indent}tls: {{");
        for (key, file) in [
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(f) = file {
                let _ = writeln!(out, "{indent}  {key}: {}", quote(&f.display().to_string()));
            }
        }
        if self.verify {
            let _ = writeln!(out, "{indent}  verify: true");
        }
        let _ = writeln!(out, "{indent}}}");
    }
}

/// A double-quoted config string (backslashes and quotes escaped).
pub(crate) fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_required_blocks() {
        let mut c = ServerConfig::new("127.0.0.1:4222", "eyJop", "ASYS", "/tmp/r");
        c.preload
            .push(("SYS".into(), "ASYS".into(), "eyJsys".into()));
        c.jetstream_dir = Some("/tmp/js".into());
        let text = c.render();
        assert!(text.contains("listen: \"127.0.0.1:4222\""));
        assert!(text.contains("operator: \"eyJop\""));
        assert!(text.contains("system_account: ASYS"));
        assert!(text.contains("type: full"));
        assert!(text.contains("allow_delete: true"));
        assert!(text.contains("  ASYS: \"eyJsys\""));
        assert!(text.contains("store_dir: \"/tmp/js\""));
        assert!(!text.contains("websocket"));
    }

    #[test]
    fn renders_leafnode_tls() {
        let mut c = ServerConfig::new("127.0.0.1:4222", "eyJop", "ASYS", "/tmp/r");
        c.leafnodes_tls = Some(TlsFiles {
            cert_file: Some("/pki/hub.pem".into()),
            ..TlsFiles::default()
        });
        assert!(!c.render().contains("tls"), "no TLS without a listener");
        c.leafnodes = Some("127.0.0.1:7422".into());
        c.leafnodes_tls = Some(TlsFiles {
            cert_file: Some("/pki/hub.pem".into()),
            key_file: Some("/pki/hub-key.pem".into()),
            ca_file: Some("/pki/ca.pem".into()),
            verify: true,
        });
        let text = c.render();
        assert!(
            text.contains(
                "leafnodes: {\n  listen: \"127.0.0.1:7422\"\n  tls: {\n    cert_file: \"/pki/hub.pem\"\n    key_file: \"/pki/hub-key.pem\"\n    ca_file: \"/pki/ca.pem\"\n    verify: true\n  }\n}"
            ),
            "{text}"
        );
    }

    fn clustered() -> ServerConfig {
        let mut c = ServerConfig::new("127.0.0.1:4222", "eyJop", "ASYS", "/tmp/r");
        c.server_name = Some("east-1".into());
        c.jetstream_dir = Some("/tmp/js".into());
        c.max_memory_store = Some(1 << 30);
        c.max_file_store = Some(10 << 30);
        c.cluster = Some(ClusterBlock {
            name: "east".into(),
            listen: "127.0.0.1:6222".into(),
            routes: vec![
                "nats-route://127.0.0.1:6223".into(),
                "nats-route://127.0.0.1:6224".into(),
            ],
            tls: None,
        });
        c.gateway = Some(GatewayBlock {
            name: "east".into(),
            listen: "127.0.0.1:7222".into(),
            gateways: vec![
                ("east".into(), vec!["nats://127.0.0.1:7222".into()]),
                ("west".into(), vec!["nats://127.0.0.1:7322".into()]),
            ],
            tls: None,
        });
        c
    }

    #[test]
    fn renders_cluster_gateway_and_clustered_jetstream() {
        let c = clustered();
        assert_eq!(c.validate(), Ok(()));
        let text = c.render();
        assert!(
            text.contains(
                "cluster: {\n  name: \"east\"\n  listen: \"127.0.0.1:6222\"\n  routes: [\n    \"nats-route://127.0.0.1:6223\"\n    \"nats-route://127.0.0.1:6224\"\n  ]\n}"
            ),
            "{text}"
        );
        assert!(
            text.contains("    { name: \"west\", urls: [ \"nats://127.0.0.1:7322\" ] }"),
            "{text}"
        );
        assert!(text.contains("  max_memory_store: 1073741824\n  max_file_store: 10737418240\n"));
        assert!(text.contains("server_name: \"east-1\""));
    }

    #[test]
    fn renders_route_tls() {
        let mut c = clustered();
        c.cluster.as_mut().expect("cluster").tls = Some(TlsFiles {
            cert_file: Some("/pki/route.pem".into()),
            key_file: Some("/pki/route-key.pem".into()),
            ca_file: Some("/pki/ca.pem".into()),
            verify: true,
        });
        assert_eq!(c.validate(), Ok(()));
        assert!(c.render().contains("  ]\n  tls: {\n    cert_file: \"/pki/route.pem\"\n    key_file: \"/pki/route-key.pem\"\n    ca_file: \"/pki/ca.pem\"\n    verify: true\n  }\n}"));
    }

    #[test]
    fn validate_lists_every_problem() {
        let mut c = clustered();
        c.server_name = None;
        c.listen = "127.0.0.1".into();
        c.monitoring = Some("0.0.0.0:6222".into());
        let cluster = c.cluster.as_mut().expect("cluster");
        cluster.routes.push("http://127.0.0.1:1".into());
        cluster.routes.push("nats-route://127.0.0.1".into());
        cluster.tls = Some(TlsFiles {
            cert_file: Some("/c.pem".into()),
            verify: true,
            ..TlsFiles::default()
        });
        let gateway = c.gateway.as_mut().expect("gateway");
        gateway.name = "west".into();
        gateway.gateways.push(("west".into(), vec![]));
        let problems = c.validate().expect_err("invalid").problems;
        let expect = [
            ConfigProblem::BadAddress {
                what: "client listen".into(),
                value: "127.0.0.1".into(),
                reason: "no :PORT".into(),
            },
            ConfigProblem::ClusterGatewayMismatch {
                cluster: "east".into(),
                gateway: "west".into(),
            },
            ConfigProblem::DuplicateGateway("west".into()),
            ConfigProblem::GatewayWithoutUrls("west".into()),
            ConfigProblem::JetStreamClusterWithoutServerName,
            ConfigProblem::ListenClash {
                address: "127.0.0.1:6222".into(),
                first: "monitoring listen".into(),
                second: "cluster listen".into(),
            },
        ];
        for e in &expect {
            assert!(problems.contains(e), "{e:?} missing from {problems:?}");
        }
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let text = text.join("\n");
        assert!(
            text.contains("route \"http://127.0.0.1:1\" is not a valid URL (scheme http://"),
            "{text}"
        );
        assert!(
            text.contains("route \"nats-route://127.0.0.1\" is not a valid URL (no port)"),
            "{text}"
        );
        assert!(
            text.contains("cluster TLS: a certificate without its key"),
            "{text}"
        );
        assert!(text.contains("cluster TLS: verify without a CA"), "{text}");
    }

    #[test]
    fn cluster_needs_listen_and_names_without_spaces() {
        let mut c = ServerConfig::new("127.0.0.1:4222", "eyJop", "ASYS", "/tmp/r");
        c.server_name = Some("east 1".into());
        c.cluster = Some(ClusterBlock {
            name: "east".into(),
            ..ClusterBlock::default()
        });
        c.max_file_store = Some(1);
        let problems = c.validate().expect_err("invalid").problems;
        assert!(problems.contains(&ConfigProblem::ClusterWithoutListen("east".into())));
        assert!(
            problems.contains(&ConfigProblem::JetStreamOptionWithoutJetStream(
                "max_file_store".into()
            ))
        );
        assert!(
            matches!(&problems[0], ConfigProblem::BadName { what, .. } if what == "server_name")
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("127.0.0.1:4222"), Ok(("127.0.0.1", 4222)));
        assert_eq!(split_host_port("[::1]:4222"), Ok(("::1", 4222)));
        assert_eq!(
            split_host_port("nats.example.com:6222"),
            Ok(("nats.example.com", 6222))
        );
        for bad in [
            "",
            ":4222",
            "host",
            "host:0",
            "host:70000",
            "::1:4222",
            "a b:1",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
        // Distinct specific hosts may share a port; every interface overlaps with all.
        let mut c = ServerConfig::new("127.0.0.1:4222", "eyJop", "ASYS", "/tmp/r");
        c.monitoring = Some("127.0.0.2:4222".into());
        assert_eq!(c.validate(), Ok(()));
        c.websocket = Some("0.0.0.0:4222".into());
        assert_eq!(c.validate().expect_err("clash").problems.len(), 1);
    }

    #[test]
    fn quotes_paths() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}

/// A nats-server configuration without operator mode whose clients are all decided by
/// an auth callout (`authorization { auth_callout { … } }`, nats-server ≥ 2.10): the
/// accounts by name, the callout account with its responder's user and password, and
/// the issuer key user JWTs are signed with (their `aud` names the account).
#[derive(Clone, Debug)]
pub struct CalloutServerConfig {
    /// `server_name`, if any.
    pub server_name: Option<String>,
    /// Client listen address, `host:port`.
    pub listen: String,
    /// HTTP monitoring listen address, if wanted.
    pub monitoring: Option<String>,
    /// JetStream store directory, if wanted.
    pub jetstream_dir: Option<PathBuf>,
    /// Accounts users may be placed in, by name.
    pub accounts: Vec<String>,
    /// The account the callout's own users live in.
    pub callout_account: String,
    /// The responder's user name and password (it bypasses the callout).
    pub responder: (String, String),
    /// The public account key user JWTs and responses are signed with.
    pub issuer: String,
    /// The public curve key requests are sealed to, when set.
    pub xkey: Option<String>,
}

impl CalloutServerConfig {
    /// The configuration text (it holds the responder's password: write it 0600).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# nats-server configuration rendered by Warden.");
        let _ = writeln!(
            out,
            "# Auth callout in config mode: every client but Warden's responder is decided"
        );
        let _ = writeln!(
            out,
            "# by Warden at connect time (`warden callout run --config-mode`)."
        );
        if let Some(name) = &self.server_name {
            let _ = writeln!(out, "server_name: {}", quote(name));
        }
        let _ = writeln!(out, "listen: {}", quote(&self.listen));
        if let Some(m) = &self.monitoring {
            let _ = writeln!(out, "http: {}", quote(m));
        }
        let _ = writeln!(out, "\naccounts: {{");
        let _ = writeln!(out, "  {}: {{", quote(&self.callout_account));
        let _ = writeln!(
            out,
            "    users: [ {{ user: {}, password: {} }} ]",
            quote(&self.responder.0),
            quote(&self.responder.1)
        );
        let _ = writeln!(out, "  }}");
        for a in &self.accounts {
            let _ = writeln!(out, "  {}: {{}}", quote(a));
        }
        let _ = writeln!(out, "}}");
        let _ = writeln!(out, "\nauthorization: {{");
        let _ = writeln!(out, "  auth_callout: {{");
        let _ = writeln!(out, "    issuer: {}", self.issuer);
        let _ = writeln!(out, "    account: {}", quote(&self.callout_account));
        let _ = writeln!(out, "    auth_users: [ {} ]", quote(&self.responder.0));
        if let Some(x) = &self.xkey {
            let _ = writeln!(out, "    xkey: {x}");
        }
        let _ = writeln!(out, "  }}");
        let _ = writeln!(out, "}}");
        if let Some(dir) = &self.jetstream_dir {
            let _ = writeln!(out, "\njetstream: {{");
            let _ = writeln!(out, "  store_dir: {}", quote(&dir.display().to_string()));
            let _ = writeln!(out, "}}");
        }
        out
    }
}
