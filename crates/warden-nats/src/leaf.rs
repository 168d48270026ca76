//! Renders the nats-server configuration of a leaf node: a server at a customer site whose
//! local clients (collectors) connect to it without credentials, and which carries their
//! traffic to the hub over one leaf node connection authenticated by a user's creds.
//!
//! The leaf runs without operator mode: its local clients land in its default account
//! (`$G`), and the remote binds that account to the hub. The hub authenticates the leaf
//! connection like a client (user JWT + nonce signature) and places it in the user's
//! account, so the leaf's traffic is that account's traffic, under that user's permissions:
//! what the user may publish is what the leaf may send to the hub, what it may subscribe to
//! is what the hub sends back (replies on `_INBOX.>`).
//!
//! Input is validated here (hub URLs, listen address, absolute paths), so a rendered
//! configuration is one nats-server 2.9.10 to 2.15.x starts with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{TlsFiles, quote};

/// URL schemes nats-server accepts for a leaf node remote.
pub const HUB_SCHEMES: &[&str] = &["nats-leaf", "nats", "tls", "ws", "wss"];

/// A leaf configuration that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafError {
    /// A hub URL nats-server would not accept.
    #[error("invalid hub URL {url:?}: {reason}")]
    BadHubUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// No hub URL at all.
    #[error("at least one hub URL is needed (e.g. nats-leaf://hub.example.com:7422)")]
    NoHub,
    /// A listen address that is not `HOST:PORT`.
    #[error("invalid listen address {0:?}: use HOST:PORT, e.g. 127.0.0.1:4222")]
    BadListen(String),
    /// A path the leaf server would resolve against its own working directory.
    #[error("{what} must be an absolute path, not {path:?}")]
    RelativePath {
        /// Which file.
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// A client certificate without its key, or the reverse.
    #[error("a TLS client certificate needs its key, and a key its certificate")]
    CertWithoutKey,
    /// A name or comment that would break the configuration.
    #[error("invalid {what} {value:?}: {reason}")]
    BadValue {
        /// Which value.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why.
        reason: &'static str,
    },
}

/// A validated hub URL for a leaf node remote: a scheme of [`HUB_SCHEMES`], a host and an
/// explicit port (ws:// and wss:// may use their default ports), no user info (the creds file identifies the leaf), no query or fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubUrl(String);

impl HubUrl {
    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<HubUrl, LeafError> {
        let bad = |reason: &str| LeafError::BadHubUrl {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let u = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
        if !HUB_SCHEMES.contains(&u.scheme()) {
            return Err(bad(
                "the scheme must be nats-leaf://, nats://, tls://, ws:// or wss://",
            ));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        // ws:// and wss:// have well-known ports; the others need the hub's leaf port.
        if u.port_or_known_default().is_none() {
            return Err(bad(
                "give the hub's leaf node port explicitly (nats-server's default is 7422)",
            ));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad(
                "no user or password in the URL: the leaf authenticates with the creds file",
            ));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(bad("no query or fragment"));
        }
        let websocket = matches!(u.scheme(), "ws" | "wss");
        if !websocket && !matches!(u.path(), "" | "/") {
            return Err(bad("only websocket URLs (ws://, wss://) may have a path"));
        }
        let mut text = u.to_string();
        if !websocket && text.ends_with('/') {
            text.pop();
        }
        Ok(HubUrl(text))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the scheme itself asks for TLS (`tls://`, `wss://`).
    pub fn is_tls(&self) -> bool {
        self.0.starts_with("tls://") || self.0.starts_with("wss://")
    }
}

impl std::fmt::Display for HubUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a `HOST:PORT` listen address (a bracketed IPv6 host is accepted).
pub fn check_listen(listen: &str) -> Result<(), LeafError> {
    let bad = || LeafError::BadListen(listen.to_string());
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

fn absolute(what: &'static str, path: &Path) -> Result<(), LeafError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(LeafError::RelativePath {
            what,
            path: path.to_path_buf(),
        })
    }
}

/// Everything a rendered leaf node configuration depends on.
#[derive(Clone, Debug)]
pub struct LeafConfig {
    /// `server_name`, if any.
    pub server_name: Option<String>,
    /// Where local clients connect, `HOST:PORT`.
    pub listen: String,
    /// The hub's leaf node URLs (several: tried in turn).
    pub hubs: Vec<HubUrl>,
    /// The creds file the leaf connects with (absolute path).
    pub credentials: PathBuf,
    /// TLS of the connection to the hub: `ca_file` checks the hub, `cert_file`/`key_file`
    /// are the leaf's client certificate (when the hub verifies clients).
    pub tls: Option<TlsFiles>,
    /// Lines of the header comment (what the leaf is for).
    pub comment: Vec<String>,
}

impl LeafConfig {
    /// A configuration after checking its parts: at least one hub, a `HOST:PORT` listen
    /// address, an absolute creds path.
    pub fn new(
        listen: impl Into<String>,
        hubs: Vec<HubUrl>,
        credentials: impl Into<PathBuf>,
    ) -> Result<LeafConfig, LeafError> {
        let listen = listen.into();
        let credentials = credentials.into();
        check_listen(&listen)?;
        if hubs.is_empty() {
            return Err(LeafError::NoHub);
        }
        absolute("the creds file", &credentials)?;
        Ok(LeafConfig {
            server_name: None,
            listen,
            hubs,
            credentials,
            tls: None,
            comment: Vec::new(),
        })
    }

    /// Sets the TLS files of the remote after checking them: absolute paths, a client
    /// certificate only with its key. (Whether the files exist is the caller's check: this
    /// crate does no file I/O for rendering.)
    pub fn with_tls(mut self, tls: TlsFiles) -> Result<LeafConfig, LeafError> {
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            return Err(LeafError::CertWithoutKey);
        }
        for (what, file) in [
            ("the TLS CA file", &tls.ca_file),
            ("the TLS certificate", &tls.cert_file),
            ("the TLS key", &tls.key_file),
        ] {
            if let Some(f) = file {
                absolute(what, f)?;
            }
        }
        // `verify` is a listener setting; a remote always verifies the hub (with `ca_file`
        // or the system roots).
        self.tls = Some(TlsFiles {
            verify: false,
            ..tls
        });
        Ok(self)
    }

    /// Sets `server_name` (one token of letters, digits, `-`, `_`, `.`).
    pub fn with_server_name(mut self, name: &str) -> Result<LeafConfig, LeafError> {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(LeafError::BadValue {
                what: "server name",
                value: name.to_string(),
                reason: "use letters, digits, '-', '_' and '.'",
            });
        }
        self.server_name = Some(name.to_string());
        Ok(self)
    }

    /// The configuration text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# nats-server leaf node configuration rendered by Warden."
        );
        for line in &self.comment {
            let _ = writeln!(out, "# {}", line.replace(['\n', '\r'], " "));
        }
        let _ = writeln!(
            out,
            "# Local clients connect to `listen` without credentials, in this server's default"
        );
        let _ = writeln!(
            out,
            "# account; the remote below carries that account to the hub with the creds file's"
        );
        let _ = writeln!(
            out,
            "# user, whose permissions the hub applies to everything this leaf sends and receives."
        );
        if let Some(name) = &self.server_name {
            let _ = writeln!(out, "server_name: {}", quote(name));
        }
        let _ = writeln!(out, "listen: {}", quote(&self.listen));
        let _ = writeln!(out, "\nleafnodes: {{");
        let _ = writeln!(out, "  remotes: [");
        let _ = writeln!(out, "    {{");
        let urls: Vec<String> = self.hubs.iter().map(|h| quote(h.as_str())).collect();
        let _ = writeln!(out, "      urls: [{}]", urls.join(", "));
        let _ = writeln!(
            out,
            "      credentials: {}",
            quote(&self.credentials.display().to_string())
        );
        if let Some(tls) = &self.tls {
            tls.render_block(&mut out, "      ");
        }
        let _ = writeln!(out, "    }}");
        let _ = writeln!(out, "  ]");
        let _ = writeln!(out, "}}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(s: &str) -> HubUrl {
        HubUrl::parse(s).unwrap()
    }

    #[test]
    fn hub_urls() {
        assert_eq!(
            hub("nats-leaf://hub.example.com:7422").as_str(),
            "nats-leaf://hub.example.com:7422"
        );
        assert_eq!(
            hub("tls://127.0.0.1:7422/").as_str(),
            "tls://127.0.0.1:7422"
        );
        assert!(hub("tls://127.0.0.1:7422").is_tls());
        assert!(!hub("nats-leaf://127.0.0.1:7422").is_tls());
        assert_eq!(
            hub("wss://hub.example.com:443/leaf").as_str(),
            "wss://hub.example.com/leaf"
        );
        assert_eq!(hub("ws://127.0.0.1:8080").as_str(), "ws://127.0.0.1:8080/");
        assert_eq!(hub("nats://[::1]:7422").as_str(), "nats://[::1]:7422");
        for bad in [
            "",
            "hub:7422",
            "http://hub:7422",
            "nats-leaf://hub",
            "nats-leaf://:7422",
            "nats-leaf://user:pw@hub:7422",
            "nats-leaf://hub:7422?x=1",
            "nats-leaf://hub:7422/path",
            "nats-leaf://hub:99999",
            "not a url",
        ] {
            assert!(
                matches!(HubUrl::parse(bad), Err(LeafError::BadHubUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn listen_addresses() {
        for ok in [
            "127.0.0.1:4222",
            "0.0.0.0:1",
            "localhost:4222",
            "[::1]:4222",
        ] {
            check_listen(ok).unwrap();
        }
        for bad in [
            "4222",
            "127.0.0.1",
            ":4222",
            "127.0.0.1:0",
            "a b:1",
            "h:x",
            "\"h\":1",
        ] {
            assert!(check_listen(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renders_remote_with_creds_and_tls() {
        let cfg = LeafConfig::new(
            "127.0.0.1:4333",
            vec![hub("tls://127.0.0.1:7422"), hub("tls://127.0.0.2:7422")],
            "/site/leaf-acme.creds",
        )
        .unwrap()
        .with_tls(TlsFiles {
            ca_file: Some("/site/ca.pem".into()),
            cert_file: Some("/site/leaf.pem".into()),
            key_file: Some("/site/leaf-key.pem".into()),
            verify: true,
        })
        .unwrap()
        .with_server_name("acme-site1")
        .unwrap();
        let mut cfg = cfg;
        cfg.comment = vec!["tenant acme\n(account TENANT-acme)".into()];
        let text = cfg.render();
        assert!(
            text.contains("# tenant acme (account TENANT-acme)\n"),
            "{text}"
        );
        assert!(text.contains("server_name: \"acme-site1\"\n"), "{text}");
        assert!(text.contains("listen: \"127.0.0.1:4333\"\n"), "{text}");
        assert!(
            text.contains(
                "leafnodes: {\n  remotes: [\n    {\n      urls: [\"tls://127.0.0.1:7422\", \"tls://127.0.0.2:7422\"]\n      credentials: \"/site/leaf-acme.creds\"\n      tls: {\n        cert_file: \"/site/leaf.pem\"\n        key_file: \"/site/leaf-key.pem\"\n        ca_file: \"/site/ca.pem\"\n      }\n    }\n  ]\n}\n"
            ),
            "{text}"
        );
        assert!(!text.contains("verify"), "verify is a listener setting");
        // No operator, no accounts: the leaf's clients are in its default account.
        assert!(!text.contains("operator") && !text.contains("accounts"));
    }

    #[test]
    fn refuses_what_the_server_would_misread() {
        let h = vec![hub("nats-leaf://127.0.0.1:7422")];
        assert_eq!(
            LeafConfig::new("127.0.0.1:4222", vec![], "/x.creds").unwrap_err(),
            LeafError::NoHub
        );
        assert!(matches!(
            LeafConfig::new("127.0.0.1:4222", h.clone(), "x.creds"),
            Err(LeafError::RelativePath { .. })
        ));
        assert!(matches!(
            LeafConfig::new("4222", h.clone(), "/x.creds"),
            Err(LeafError::BadListen(_))
        ));
        let ok = LeafConfig::new("127.0.0.1:4222", h, "/x.creds").unwrap();
        assert_eq!(
            ok.clone()
                .with_tls(TlsFiles {
                    cert_file: Some("/c.pem".into()),
                    ..TlsFiles::default()
                })
                .unwrap_err(),
            LeafError::CertWithoutKey
        );
        assert!(matches!(
            ok.clone().with_tls(TlsFiles {
                ca_file: Some("ca.pem".into()),
                ..TlsFiles::default()
            }),
            Err(LeafError::RelativePath { .. })
        ));
        assert!(ok.clone().with_server_name("a b").is_err());
        assert!(ok.with_server_name("x\"y").is_err());
    }
}
