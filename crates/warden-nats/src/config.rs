//! Renders a nats-server configuration in operator mode: the operator JWT, the
//! system account, a `full` account resolver with `allow_delete` (so Warden can
//! push and delete accounts at run time), every account's current JWT preloaded,
//! and optionally JetStream, websocket and leaf node listeners.
//!
//! The output is accepted by every server Warden supports (2.9.10 to 2.15.x).

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
        out
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
