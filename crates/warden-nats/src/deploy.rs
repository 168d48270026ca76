//! A NATS deployment described once — clusters, their nodes and ports, JetStream
//! placement, TLS of routes, gateways and leaf nodes — and rendered as one operator-mode
//! nats-server configuration per node (`warden deploy render`).
//!
//! The topology is a YAML spec ([`DeploySpec`], unknown keys refused). Every node of a
//! cluster routes to every other node of it; with more than one cluster every node has a
//! gateway listing every cluster's gateway URLs (a super-cluster). Each node's
//! `server_name` is its node name, so JetStream can run clustered. Relative paths are
//! taken relative to the spec file's directory and rendered absolute, because nats-server
//! resolves them against its own working directory.
//!
//! The trust material (operator JWT, system account, account JWTs to preload) comes from
//! the caller ([`Trust`]); this module never reads Warden's store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ClusterBlock, GatewayBlock, ServerConfig, TlsFiles, split_host_port};

/// A deployment: every cluster and node, where their data lives, their TLS files.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeploySpec {
    /// Root of every node's data (`<data_root>/<node>/resolver`, `…/jetstream`); relative
    /// to the spec file's directory. Default `data`.
    #[serde(default = "default_data_root")]
    pub data_root: PathBuf,
    /// TLS files shared by every node (a node's own `tls` replaces them block by block).
    #[serde(default)]
    pub tls: TlsSpec,
    /// The clusters (at least one). With two or more, every node needs a `gateway_port`.
    pub clusters: Vec<ClusterSpec>,
}

fn default_data_root() -> PathBuf {
    PathBuf::from("data")
}

/// TLS of the server-to-server connections, and of the leaf node listener.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// Routes between the nodes of a cluster.
    pub routes: Option<TlsFilesSpec>,
    /// Gateway connections between clusters.
    pub gateways: Option<TlsFilesSpec>,
    /// The leaf node listener (only on nodes with a `leafnode_port`).
    pub leafnodes: Option<TlsFilesSpec>,
}

/// A certificate, its key and the CA peers are verified against (`verify: true` when
/// `ca` is set). Files must exist; relative paths are relative to the spec file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFilesSpec {
    /// Certificate (PEM), presented to peers in both directions.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// CA (PEM) the peers' certificates are verified against.
    pub ca: Option<PathBuf>,
}

/// One cluster.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Cluster name (also its gateway name).
    pub name: String,
    /// JetStream of this cluster; absent: none.
    pub jetstream: Option<JetStreamSpec>,
    /// Its nodes (at least one).
    pub nodes: Vec<NodeSpec>,
}

/// JetStream of a cluster: on by default once the block is present.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JetStreamSpec {
    /// On or off (default on).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Memory store limit per node: bytes, or a size such as `1G` (binary units).
    pub max_memory_store: Option<Size>,
    /// File store limit per node: bytes, or a size such as `100G`.
    pub max_file_store: Option<Size>,
    /// JetStream domain (for hubs and leaf nodes with their own JetStream).
    pub domain: Option<String>,
}

fn yes() -> bool {
    true
}

/// A size: a byte count, or text such as `512M`, `1G`, `10GiB`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Size {
    /// Bytes.
    Bytes(u64),
    /// With a unit.
    Text(String),
}

impl Size {
    fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(0) => Err("0 bytes".into()),
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => match warden_core::parse::parse_size(t) {
                Ok(n) if n > 0 => Ok(n as u64),
                Ok(_) => Err(format!("{t:?} is not a positive size")),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

/// One nats-server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Node name: its `server_name` and its file `<name>.conf`; unique in the deployment.
    pub name: String,
    /// Where the other nodes reach it (routes and gateway URLs): an IP or DNS name.
    pub host: String,
    /// Where it binds its listeners (default: `host`; `0.0.0.0` for every interface).
    pub listen_host: Option<String>,
    /// Client port.
    pub client_port: u16,
    /// Route port; needed in a cluster of more than one node.
    pub cluster_port: Option<u16>,
    /// Gateway port; needed with more than one cluster.
    pub gateway_port: Option<u16>,
    /// HTTP monitoring port (`/varz`, `/routez`, `/jsz` …).
    pub monitoring_port: Option<u16>,
    /// Leaf node hub port: leaf nodes (tenant sites) connect here.
    pub leafnode_port: Option<u16>,
    /// Websocket port (no TLS: terminate TLS in front of it).
    pub websocket_port: Option<u16>,
    /// Whether this node runs JetStream (default: its cluster's `jetstream.enabled`).
    pub jetstream: Option<bool>,
    /// This node's data directory (default `<data_root>/<name>`); relative to the spec file.
    pub data_dir: Option<PathBuf>,
    /// TLS files of this node, replacing the shared ones block by block.
    #[serde(default)]
    pub tls: TlsSpec,
}

/// What every node trusts: Warden's operator and its accounts.
#[derive(Clone, Debug)]
pub struct Trust {
    /// The operator JWT.
    pub operator_jwt: String,
    /// The system account's public key.
    pub system_account: String,
    /// Accounts to preload: (name, public key, JWT).
    pub preload: Vec<(String, String, String)>,
}

/// One rendered node.
#[derive(Clone, Debug, Serialize)]
pub struct RenderedNode {
    /// Node name (its `server_name`).
    pub node: String,
    /// Its cluster.
    pub cluster: String,
    /// The file name to write: `<node>.conf`.
    pub file_name: String,
    /// Where clients connect: `nats://host:client_port`.
    pub client_url: String,
    /// Its route URL, if in a cluster.
    pub route_url: Option<String>,
    /// Its gateway URL, if in a super-cluster.
    pub gateway_url: Option<String>,
    /// Its monitoring URL, if any.
    pub monitoring_url: Option<String>,
    /// Whether it runs JetStream.
    pub jetstream: bool,
    /// The configuration text.
    #[serde(skip)]
    pub text: String,
}

/// Why a spec cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    /// The YAML is not a deployment spec (syntax, an unknown key, a wrong type).
    #[error("the deploy spec is not valid YAML for Warden's format: {0}")]
    Parse(String),
    /// The spec parses but describes a deployment that would not run; every problem.
    #[error("the deploy spec has {} problem(s): {}", .0.len(), .0.join("; "))]
    Invalid(Vec<String>),
}

impl DeploySpec {
    /// Parses a spec (unknown keys refused).
    pub fn parse(yaml: &str) -> Result<DeploySpec, DeployError> {
        serde_yaml_ng::from_str(yaml).map_err(|e| DeployError::Parse(e.to_string()))
    }

    /// Every node with its cluster, in spec order.
    pub fn nodes(&self) -> impl Iterator<Item = (&ClusterSpec, &NodeSpec)> {
        self.clusters
            .iter()
            .flat_map(|c| c.nodes.iter().map(move |n| (c, n)))
    }

    fn super_cluster(&self) -> bool {
        self.clusters.len() > 1
    }

    /// Checks the topology alone (names, ports, placement, TLS files existing relative
    /// to `base`); every problem, in spec order.
    pub fn problems(&self, base: &Path) -> Vec<String> {
        let mut p = Vec::new();
        if self.clusters.is_empty() {
            p.push("no clusters: list at least one under `clusters`".to_string());
        }
        let mut clusters = BTreeSet::new();
        let mut nodes = BTreeSet::new();
        // host → port → the first listener using it.
        let mut ports: BTreeMap<&str, BTreeMap<u16, String>> = BTreeMap::new();
        let mut data_dirs: BTreeMap<PathBuf, &str> = BTreeMap::new();
        for c in &self.clusters {
            let cl = format!("cluster {:?}", c.name);
            if let Some(reason) = name_problem(&c.name) {
                p.push(format!("{cl}: the name {reason}"));
            }
            if !clusters.insert(c.name.as_str()) {
                p.push(format!("{cl} is listed twice"));
            }
            if c.nodes.is_empty() {
                p.push(format!("{cl} has no nodes"));
            }
            let js = c.jetstream.as_ref().is_some_and(|j| j.enabled);
            if let Some(j) = &c.jetstream {
                for (what, size) in [
                    ("max_memory_store", &j.max_memory_store),
                    ("max_file_store", &j.max_file_store),
                ] {
                    if let Some(Err(e)) = size.as_ref().map(Size::bytes) {
                        p.push(format!("{cl}: jetstream.{what}: {e}"));
                    }
                }
                if let Some(d) = &j.domain
                    && let Some(reason) = name_problem(d).or(d.contains('.').then_some("has a '.'"))
                {
                    p.push(format!("{cl}: jetstream.domain {d:?} {reason}"));
                }
            }
            if js && !c.nodes.iter().any(|n| n.jetstream.unwrap_or(true)) {
                p.push(format!(
                    "{cl} has JetStream enabled but no node runs it (set `jetstream: true` on at least one node)"
                ));
            }
            for n in &c.nodes {
                let nd = format!("node {:?}", n.name);
                if let Some(reason) = name_problem(&n.name) {
                    p.push(format!("{nd}: the name (its server_name) {reason}"));
                }
                let first = nodes.insert(n.name.as_str());
                if !first {
                    p.push(format!(
                        "{nd} is listed twice (node names are server names: unique)"
                    ));
                }
                for (what, host) in [
                    ("host", Some(&n.host)),
                    ("listen_host", n.listen_host.as_ref()),
                ] {
                    if let Some(h) = host
                        && let Err(e) = split_host_port(&format!("{}:1", bracket(h)))
                    {
                        p.push(format!("{nd}: {what} {h:?} is not a host ({e})"));
                    }
                }
                if n.jetstream == Some(true) && !js {
                    p.push(format!("{nd} asks for JetStream but {cl} has none (add `jetstream: {{}}` to the cluster)"));
                }
                if c.nodes.len() > 1 && n.cluster_port.is_none() {
                    p.push(format!(
                        "{nd}: cluster_port is needed, {cl} has {} nodes",
                        c.nodes.len()
                    ));
                }
                if self.super_cluster() && n.gateway_port.is_none() {
                    p.push(format!(
                        "{nd}: gateway_port is needed, the deployment has {} clusters",
                        self.clusters.len()
                    ));
                }
                if !self.super_cluster() && n.gateway_port.is_some() {
                    p.push(format!(
                        "{nd}: gateway_port needs a second cluster to connect to"
                    ));
                }
                let by_host = ports.entry(n.host.as_str()).or_default();
                for (what, port) in [
                    ("client_port", Some(n.client_port)),
                    ("cluster_port", n.cluster_port),
                    ("gateway_port", n.gateway_port),
                    ("monitoring_port", n.monitoring_port),
                    ("leafnode_port", n.leafnode_port),
                    ("websocket_port", n.websocket_port),
                ] {
                    let Some(port) = port else { continue };
                    let this = format!("{} of node {:?}", what, n.name);
                    if port == 0 {
                        p.push(format!("{nd}: {what} is 0"));
                    } else if let Some(first) = by_host.get(&port) {
                        p.push(format!(
                            "port {port} on host {} is both the {first} and the {this}",
                            n.host
                        ));
                    } else {
                        by_host.insert(port, this);
                    }
                }
                // (A node listed twice shares its directory with itself: said once above.)
                let dir = self.data_dir(base, n);
                if let Some(other) = data_dirs.insert(dir.clone(), n.name.as_str())
                    && first
                {
                    p.push(format!(
                        "{nd} and node {other:?} share the data directory {}",
                        dir.display()
                    ));
                }
                // The node's own files; the shared ones are checked once, below.
                check_tls_files(&mut p, &format!("{nd}: tls"), &n.tls, base);
            }
        }
        check_tls_files(&mut p, "tls", &self.tls, base);
        p
    }

    /// The node's TLS files for routes, gateways and leaf nodes: its own, else the shared.
    fn tls_of<'a>(&'a self, n: &'a NodeSpec) -> [(&'static str, Option<&'a TlsFilesSpec>); 3] {
        [
            ("routes", n.tls.routes.as_ref().or(self.tls.routes.as_ref())),
            (
                "gateways",
                n.tls.gateways.as_ref().or(self.tls.gateways.as_ref()),
            ),
            (
                "leafnodes",
                n.tls.leafnodes.as_ref().or(self.tls.leafnodes.as_ref()),
            ),
        ]
    }

    fn data_dir(&self, base: &Path, n: &NodeSpec) -> PathBuf {
        match &n.data_dir {
            Some(d) => absolute(base, d),
            None => absolute(base, &self.data_root).join(&n.name),
        }
    }

    /// Renders every node, after checking the topology and then each node's
    /// configuration ([`ServerConfig::validate`]); every problem when any. `base` is the
    /// spec file's directory (absolute).
    pub fn render(&self, base: &Path, trust: &Trust) -> Result<Vec<RenderedNode>, DeployError> {
        let mut problems = self.problems(base);
        if !problems.is_empty() {
            return Err(DeployError::Invalid(problems));
        }
        let gateways: Vec<(String, Vec<String>)> = if self.super_cluster() {
            self.clusters
                .iter()
                .map(|c| {
                    let urls = c
                        .nodes
                        .iter()
                        .filter_map(|n| {
                            n.gateway_port
                                .map(|p| format!("nats://{}:{p}", bracket(&n.host)))
                        })
                        .collect();
                    (c.name.clone(), urls)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut out = Vec::new();
        for (c, n) in self.nodes() {
            let bind = bracket(n.listen_host.as_deref().unwrap_or(&n.host));
            let at = |port: u16| format!("{bind}:{port}");
            let dir = self.data_dir(base, n);
            let mut cfg = ServerConfig::new(
                at(n.client_port),
                trust.operator_jwt.clone(),
                trust.system_account.clone(),
                dir.join("resolver"),
            );
            cfg.server_name = Some(n.name.clone());
            cfg.preload = trust.preload.clone();
            cfg.monitoring = n.monitoring_port.map(at);
            cfg.websocket = n.websocket_port.map(at);
            cfg.leafnodes = n.leafnode_port.map(at);
            let [routes_tls, gateways_tls, leaf_tls] = self.tls_of(n);
            cfg.leafnodes_tls = leaf_tls.1.map(|t| tls_files(base, t));
            let js = c.jetstream.as_ref().filter(|j| j.enabled);
            if let Some(j) = js.filter(|_| n.jetstream.unwrap_or(true)) {
                cfg.jetstream_dir = Some(dir.join("jetstream"));
                cfg.max_memory_store = j.max_memory_store.as_ref().and_then(|s| s.bytes().ok());
                cfg.max_file_store = j.max_file_store.as_ref().and_then(|s| s.bytes().ok());
                cfg.jetstream_domain = j.domain.clone();
            }
            if let Some(port) = n.cluster_port {
                cfg.cluster = Some(ClusterBlock {
                    name: c.name.clone(),
                    listen: at(port),
                    routes: c
                        .nodes
                        .iter()
                        .filter(|o| o.name != n.name)
                        .filter_map(|o| {
                            o.cluster_port
                                .map(|p| format!("nats-route://{}:{p}", bracket(&o.host)))
                        })
                        .collect(),
                    tls: routes_tls.1.map(|t| tls_files(base, t)),
                });
            }
            if let Some(port) = n.gateway_port {
                cfg.gateway = Some(GatewayBlock {
                    name: c.name.clone(),
                    listen: at(port),
                    gateways: gateways.clone(),
                    tls: gateways_tls.1.map(|t| tls_files(base, t)),
                });
            }
            if let Err(e) = cfg.validate() {
                problems.extend(e.problems.iter().map(|e| format!("node {:?}: {e}", n.name)));
                continue;
            }
            let host = bracket(&n.host);
            out.push(RenderedNode {
                node: n.name.clone(),
                cluster: c.name.clone(),
                file_name: format!("{}.conf", n.name),
                client_url: format!("nats://{host}:{}", n.client_port),
                route_url: n.cluster_port.map(|p| format!("nats-route://{host}:{p}")),
                gateway_url: n.gateway_port.map(|p| format!("nats://{host}:{p}")),
                monitoring_url: n.monitoring_port.map(|p| format!("http://{host}:{p}")),
                jetstream: cfg.jetstream_dir.is_some(),
                text: cfg.render(),
            });
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(DeployError::Invalid(problems))
        }
    }
}

/// Every file of `tls` that does not exist (relative to `base`), each as `<what>.<block>.<part>`.
fn check_tls_files(p: &mut Vec<String>, what: &str, tls: &TlsSpec, base: &Path) {
    for (block, files) in [
        ("routes", &tls.routes),
        ("gateways", &tls.gateways),
        ("leafnodes", &tls.leafnodes),
    ] {
        let Some(f) = files else { continue };
        for (part, path) in [
            ("cert", Some(&f.cert)),
            ("key", Some(&f.key)),
            ("ca", f.ca.as_ref()),
        ] {
            if let Some(path) = path {
                let abs = absolute(base, path);
                if !abs.is_file() {
                    p.push(format!(
                        "{what}.{block}.{part} {} does not exist",
                        abs.display()
                    ));
                }
            }
        }
    }
}

/// An IPv6 address in brackets, for `host:port` and URLs.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn tls_files(base: &Path, t: &TlsFilesSpec) -> TlsFiles {
    TlsFiles {
        cert_file: Some(absolute(base, &t.cert)),
        key_file: Some(absolute(base, &t.key)),
        verify: t.ca.is_some(),
        ca_file: t.ca.as_ref().map(|c| absolute(base, c)),
    }
}

/// Why a server, cluster or domain name would be refused, if it would: nats-server
/// refuses spaces in names; `.`-free, path-safe names also make good file names.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Some("may only hold letters, digits, '-', '_' and '.'")
    } else if name.starts_with('.') {
        Some("may not start with '.'")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
data_root: state
clusters:
  - name: east
    jetstream: { max_memory_store: 256M, max_file_store: 1073741824 }
    nodes:
      - { name: e1, host: 127.0.0.1, client_port: 4222, cluster_port: 6222, gateway_port: 7222, monitoring_port: 8222, leafnode_port: 7422 }
      - { name: e2, host: 127.0.0.1, client_port: 4223, cluster_port: 6223, gateway_port: 7223 }
      - { name: e3, host: 127.0.0.1, client_port: 4224, cluster_port: 6224, gateway_port: 7224, jetstream: false }
  - name: west
    nodes:
      - { name: w1, host: 10.0.0.2, listen_host: 0.0.0.0, client_port: 4222, gateway_port: 7222, websocket_port: 8080 }
"#;

    fn trust() -> Trust {
        Trust {
            operator_jwt: "eyJop".into(),
            system_account: "ASYS".into(),
            preload: vec![("SYS".into(), "ASYS".into(), "eyJsys".into())],
        }
    }

    #[test]
    fn renders_routes_gateways_and_placement() {
        let spec = DeploySpec::parse(SPEC).expect("spec");
        let nodes = spec
            .render(Path::new("/srv/nats"), &trust())
            .expect("render");
        let names: Vec<&str> = nodes.iter().map(|n| n.node.as_str()).collect();
        assert_eq!(names, ["e1", "e2", "e3", "w1"]);
        let e1 = &nodes[0].text;
        assert!(e1.contains("server_name: \"e1\""), "{e1}");
        assert!(e1.contains("  routes: [\n    \"nats-route://127.0.0.1:6223\"\n    \"nats-route://127.0.0.1:6224\"\n  ]"), "{e1}");
        assert!(
            !e1.contains("nats-route://127.0.0.1:6222"),
            "no route to itself"
        );
        assert!(e1.contains("{ name: \"east\", urls: [ \"nats://127.0.0.1:7222\", \"nats://127.0.0.1:7223\", \"nats://127.0.0.1:7224\" ] }"), "{e1}");
        assert!(
            e1.contains("{ name: \"west\", urls: [ \"nats://10.0.0.2:7222\" ] }"),
            "{e1}"
        );
        assert!(
            e1.contains("store_dir: \"/srv/nats/state/e1/jetstream\""),
            "{e1}"
        );
        assert!(e1.contains("dir: \"/srv/nats/state/e1/resolver\""), "{e1}");
        assert!(
            e1.contains("max_memory_store: 268435456\n  max_file_store: 1073741824"),
            "{e1}"
        );
        assert!(
            e1.contains("leafnodes: {\n  listen: \"127.0.0.1:7422\""),
            "{e1}"
        );
        assert!(!nodes[2].text.contains("jetstream"), "e3 opted out");
        assert!(!nodes[2].jetstream);
        let w1 = &nodes[3].text;
        assert!(
            !w1.contains("cluster: {"),
            "a single node without cluster_port: no cluster block"
        );
        assert!(
            w1.contains("gateway: {\n  name: \"west\"\n  listen: \"0.0.0.0:7222\""),
            "{w1}"
        );
        assert!(
            w1.contains("websocket: {\n  listen: \"0.0.0.0:8080\""),
            "{w1}"
        );
        assert_eq!(nodes[3].client_url, "nats://10.0.0.2:4222");
        assert_eq!(
            nodes[3].gateway_url.as_deref(),
            Some("nats://10.0.0.2:7222")
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = DeploySpec::parse(&SPEC.replace("leafnode_port", "leaf_port"))
            .expect_err("unknown key");
        assert!(e.to_string().contains("unknown field `leaf_port`"), "{e}");
        let e = DeploySpec::parse("clusters: []\nextra: 1\n").expect_err("unknown key");
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn every_problem_is_listed() {
        let bad = SPEC
            .replace("name: e2", "name: e1")
            .replace("client_port: 4224", "client_port: 6222")
            .replace(", gateway_port: 7222, websocket_port", ", websocket_port")
            .replace("max_file_store: 1073741824", "max_file_store: lots");
        let spec = DeploySpec::parse(&bad).expect("parses");
        let Err(DeployError::Invalid(problems)) = spec.render(Path::new("/srv"), &trust()) else {
            panic!("invalid spec rendered");
        };
        let text = problems.join("\n");
        for needle in [
            "node \"e1\" is listed twice",
            "port 6222 on host 127.0.0.1 is both the cluster_port of node \"e1\" and the client_port of node \"e3\"",
            "node \"w1\": gateway_port is needed, the deployment has 2 clusters",
            "cluster \"east\": jetstream.max_file_store",
            "node \"w1\": gateway_port is needed",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }

    #[test]
    fn jetstream_and_cluster_rules() {
        let spec = DeploySpec::parse(
            r#"
clusters:
  - name: solo
    jetstream: { domain: "a.b" }
    nodes:
      - { name: s1, host: 127.0.0.1, client_port: 4222, jetstream: false, gateway_port: 7222 }
      - { name: "s 2", host: 127.0.0.1, client_port: 4223, cluster_port: 6223, jetstream: false }
"#,
        )
        .expect("parses");
        let text = spec.problems(Path::new("/srv")).join("\n");
        for needle in [
            "jetstream.domain \"a.b\" has a '.'",
            "has JetStream enabled but no node runs it",
            "node \"s1\": cluster_port is needed, cluster \"solo\" has 2 nodes",
            "node \"s1\": gateway_port needs a second cluster",
            "node \"s 2\": the name (its server_name) may only hold",
        ] {
            assert!(text.contains(needle), "{needle:?} not in:\n{text}");
        }
    }

    #[test]
    fn tls_files_must_exist_and_render_absolute() {
        let dir = tempfile::tempdir().expect("dir");
        for f in ["route.pem", "route-key.pem", "ca.pem"] {
            std::fs::write(dir.path().join(f), "x").expect("write");
        }
        let yaml = format!(
            "tls:\n  routes: {{ cert: route.pem, key: route-key.pem, ca: ca.pem }}\n  gateways: {{ cert: gw.pem, key: {}/route-key.pem }}\n{}",
            dir.path().display(),
            SPEC
        );
        let spec = DeploySpec::parse(&yaml).expect("parses");
        let text = spec.problems(dir.path()).join("\n");
        assert!(
            text.contains(&format!(
                "tls.gateways.cert {}/gw.pem does not exist",
                dir.path().display()
            )),
            "{text}"
        );
        assert!(!text.contains("route.pem"), "{text}");
        assert_eq!(
            text.matches("gw.pem").count(),
            1,
            "shared files are checked once: {text}"
        );
        // A node's own file is named with the node.
        let own = DeploySpec::parse(&SPEC.replace(
            "name: e2, host: 127.0.0.1,",
            "name: e2, tls: { routes: { cert: e2.pem, key: route-key.pem } }, host: 127.0.0.1,",
        ))
        .expect("parses");
        let text = own.problems(dir.path()).join("\n");
        assert!(
            text.contains(&format!(
                "node \"e2\": tls.routes.cert {}/e2.pem does not exist",
                dir.path().display()
            )),
            "{text}"
        );
        let spec = DeploySpec::parse(
            &yaml.replace("gateways: { cert: gw.pem", "gateways: { cert: route.pem"),
        )
        .expect("parses");
        let nodes = spec.render(dir.path(), &trust()).expect("render");
        assert!(
            nodes[0].text.contains(&format!(
                "    ca_file: \"{}/ca.pem\"\n    verify: true",
                dir.path().display()
            )),
            "{}",
            nodes[0].text
        );
    }
}
