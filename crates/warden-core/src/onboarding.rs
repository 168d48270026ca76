//! Onboarding packages, the pure half: which collector components exist and what each
//! publishes, the names a package gives its collector (NATS user, certificate CN and SAN),
//! the collector's TOML config and `install.sh`, the package states, and the one-time
//! download token (its shape and its hash; generating one needs randomness and happens in
//! the `warden` binary).
//!
//! A package is for one collector `component` at one `site` of one tenant. Its collector
//! user `<component>-<site>` lives in the tenant account and may publish only the
//! component's subjects (which must be in the tenant catalogue) and the catalogue's
//! request subjects; its client certificate says `CN=<component>.<site>.<slug>` with the
//! SAN URI `warden://tenant/<slug>/<component>/<site>`, so both the NATS identity and the
//! TLS identity carry the tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::tenant::{SubjectCatalogue, TenantSlug};
use crate::{NameError, UserName};

/// Longest site name, in bytes (it is a DNS label inside the certificate's names).
pub const MAX_SITE_LEN: usize = 32;

/// Prefix of every download token.
pub const TOKEN_PREFIX: &str = "wdl_";
/// Prefix of every package id.
pub const PACKAGE_ID_PREFIX: &str = "pkg_";
/// Characters of a package id after its prefix (10 random bytes, base32).
pub const PACKAGE_ID_CHARS: usize = 16;
/// Characters of a token's secret (32 random bytes, base32).
pub const SECRET_CHARS: usize = 52;

/// Where `install.sh` puts a collector's files unless told otherwise.
pub const DEFAULT_INSTALL_ROOT: &str = "/etc/warden/collectors";

/// Something about a package's inputs that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnboardingError {
    /// Not one of the known components.
    #[error(
        "unknown component {0:?}: use one of flowgger, trapd, netflow, otel, poller, agent, checker"
    )]
    Component(String),
    /// A bad site name.
    #[error(
        "invalid site name {0:?}: use 1 to {MAX_SITE_LEN} lowercase letters, digits and dashes, starting with a letter or digit and not ending with a dash"
    )]
    Site(String),
    /// The component's subjects are not in the tenant catalogue.
    #[error("component {component} publishes {subject}, which the tenant catalogue does not allow")]
    NotInCatalogue {
        /// The component.
        component: Component,
        /// Its subject outside the catalogue.
        subject: String,
    },
    /// A NATS URL collectors cannot use.
    #[error("invalid NATS URL {0:?}: use nats://, tls://, ws:// or wss:// with a host")]
    NatsUrl(String),
    /// An install directory `install.sh` cannot take.
    #[error(
        "invalid install directory {0:?}: use an absolute path without quotes, `|`, `\\` or `$`"
    )]
    InstallDir(String),
    /// The collector user name is not a valid NATS name.
    #[error(transparent)]
    Name(#[from] NameError),
}

/// A collector component a package can be made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Syslog collector.
    Flowgger,
    /// SNMP trap receiver.
    Trapd,
    /// NetFlow / IPFIX collector.
    Netflow,
    /// OpenTelemetry collector.
    Otel,
    /// SNMP poller.
    Poller,
    /// Host agent.
    Agent,
    /// Service checker.
    Checker,
}

impl Component {
    /// Every component.
    pub const ALL: [Component; 7] = [
        Component::Flowgger,
        Component::Trapd,
        Component::Netflow,
        Component::Otel,
        Component::Poller,
        Component::Agent,
        Component::Checker,
    ];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Flowgger => "flowgger",
            Component::Trapd => "trapd",
            Component::Netflow => "netflow",
            Component::Otel => "otel",
            Component::Poller => "poller",
            Component::Agent => "agent",
            Component::Checker => "checker",
        }
    }

    /// The tenant-local subjects it publishes (the platform receives `<slug>.<subject>`).
    pub fn subjects(self) -> &'static [&'static str] {
        match self {
            Component::Flowgger => &["events.syslog"],
            Component::Trapd => &["snmp.traps"],
            Component::Netflow => &["netflow.flows"],
            Component::Otel => &["otel.metrics", "otel.traces", "otel.logs"],
            Component::Poller => &["otel.metrics.snmp"],
            Component::Agent => &["events.agent"],
            Component::Checker => &["events.checks"],
        }
    }

    /// Its subjects, each checked to be covered by a catalogue `publish` entry.
    pub fn subjects_in(self, catalogue: &SubjectCatalogue) -> Result<Vec<String>, OnboardingError> {
        let allowed: Vec<nats_jwt::Subject> = catalogue
            .publish
            .iter()
            .filter_map(|s| nats_jwt::Subject::new(s).ok())
            .collect();
        self.subjects()
            .iter()
            .map(|s| {
                if allowed.iter().any(|a| a.matches(s)) {
                    Ok((*s).to_string())
                } else {
                    Err(OnboardingError::NotInCatalogue {
                        component: self,
                        subject: (*s).to_string(),
                    })
                }
            })
            .collect()
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Component {
    type Err = OnboardingError;

    fn from_str(s: &str) -> Result<Component, OnboardingError> {
        Component::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| OnboardingError::Component(s.to_string()))
    }
}

/// A validated site name: a DNS label (`[a-z0-9][a-z0-9-]*`, no trailing dash), at most
/// [`MAX_SITE_LEN`] bytes, so it fits subject tokens, user names and certificate names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteName(String);

impl SiteName {
    /// Validates `raw` (surrounding whitespace trimmed).
    pub fn parse(raw: &str) -> Result<SiteName, OnboardingError> {
        let s = raw.trim();
        let ok = !s.is_empty()
            && s.len() <= MAX_SITE_LEN
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.ends_with('-');
        if ok {
            Ok(SiteName(s.to_string()))
        } else {
            Err(OnboardingError::Site(raw.to_string()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The names one package gives its collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorNames {
    /// NATS user in the tenant account: `<component>-<site>`.
    pub user: UserName,
    /// Certificate common name and DNS SAN: `<component>.<site>.<slug>`.
    pub common_name: String,
    /// Certificate URI SAN: `warden://tenant/<slug>/<component>/<site>`.
    pub uri: String,
    /// Directory name of the package: `<component>-<site>`.
    pub dir: String,
}

impl CollectorNames {
    /// The names for `component` at `site` of tenant `slug`.
    pub fn new(
        slug: &TenantSlug,
        component: Component,
        site: &SiteName,
    ) -> Result<CollectorNames, OnboardingError> {
        let dir = format!("{component}-{site}");
        Ok(CollectorNames {
            user: UserName::parse_any_case(&dir)?,
            common_name: format!("{component}.{site}.{slug}"),
            uri: format!("warden://tenant/{slug}/{component}/{site}"),
            dir,
        })
    }
}

/// The state of a package: `issued` (made, token unused) → `delivered` (downloaded once)
/// → `activated` (its collector connected); `revoked` from any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    /// Made; the download token has not been used.
    Issued,
    /// Downloaded (the token is spent).
    Delivered,
    /// Its collector user connected to NATS (observed from the server's events).
    Activated,
    /// Its collector user and certificate are revoked.
    Revoked,
}

impl PackageState {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageState::Issued => "issued",
            PackageState::Delivered => "delivered",
            PackageState::Activated => "activated",
            PackageState::Revoked => "revoked",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<PackageState> {
        [
            PackageState::Issued,
            PackageState::Delivered,
            PackageState::Activated,
            PackageState::Revoked,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for PackageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A download token as presented: `wdl_<package id part>_<secret>`. The id part names the
/// package (not secret), so the stored hash is found without using the secret, and the
/// secret is then checked in constant time ([`DownloadToken::matches`]).
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadToken {
    package_id: String,
    secret: String,
}

impl fmt::Debug for DownloadToken {
    /// The package id only, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadToken")
            .field("package_id", &self.package_id)
            .finish_non_exhaustive()
    }
}

fn is_base32_lower(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

impl DownloadToken {
    /// The token for package `package_id` (`pkg_…`) with `secret` (52 base32 chars).
    pub fn new(package_id: &str, secret: &str) -> Option<DownloadToken> {
        let id = package_id.strip_prefix(PACKAGE_ID_PREFIX)?;
        (is_base32_lower(id, PACKAGE_ID_CHARS) && is_base32_lower(secret, SECRET_CHARS)).then(
            || DownloadToken {
                package_id: package_id.to_string(),
                secret: secret.to_string(),
            },
        )
    }

    /// Parses a presented token; `None` if it does not have the shape of one.
    pub fn parse(text: &str) -> Option<DownloadToken> {
        let rest = text.trim().strip_prefix(TOKEN_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        DownloadToken::new(&format!("{PACKAGE_ID_PREFIX}{id}"), secret)
    }

    /// The package it opens.
    pub fn package_id(&self) -> &str {
        &self.package_id
    }

    /// The token as handed out (a secret: show it once).
    pub fn expose(&self) -> String {
        let id = self
            .package_id
            .strip_prefix(PACKAGE_ID_PREFIX)
            .unwrap_or(&self.package_id);
        format!("{TOKEN_PREFIX}{id}_{}", self.secret)
    }

    /// What the store keeps: the hex SHA-256 of the secret.
    pub fn hash(&self) -> String {
        hash_secret(&self.secret)
    }

    /// Whether the secret's hash equals `stored` (compared in constant time).
    pub fn matches(&self, stored: &str) -> bool {
        let mine = self.hash();
        mine.len() == stored.len() && bool::from(mine.as_bytes().ct_eq(stored.as_bytes()))
    }
}

/// Hex SHA-256 of a token secret.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a NATS URL collectors will be given: `nats://`, `tls://`, `ws://` or `wss://`
/// and a host, with no whitespace or quotes (it goes into TOML and a shell script).
pub fn check_nats_url(url: &str) -> Result<String, OnboardingError> {
    let u = url.trim();
    let bad = || OnboardingError::NatsUrl(url.to_string());
    let rest = ["nats://", "tls://", "ws://", "wss://"]
        .iter()
        .find_map(|p| u.strip_prefix(p))
        .ok_or_else(bad)?;
    let safe = u
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '`' | '$'));
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with(':') || !safe {
        return Err(bad());
    }
    Ok(u.to_string())
}

/// Checks an install directory: absolute, and free of what would break the script's
/// quoting or its `sed` substitution.
pub fn check_install_dir(dir: &str) -> Result<String, OnboardingError> {
    let ok = dir.starts_with('/')
        && !dir.is_empty()
        && dir
            .chars()
            .all(|c| !c.is_control() && !matches!(c, '"' | '\'' | '\\' | '`' | '$' | '|'));
    if ok {
        Ok(dir.to_string())
    } else {
        Err(OnboardingError::InstallDir(dir.to_string()))
    }
}

/// File names inside a package (all in one directory named [`CollectorNames::dir`]).
pub mod files {
    /// The collector config.
    pub const CONFIG: &str = "collector.toml";
    /// The NATS creds (a seed: 0600).
    pub const CREDS: &str = "collector.creds";
    /// The client certificate.
    pub const CERT: &str = "client.pem";
    /// The client certificate's private key (0600).
    pub const KEY: &str = "client.key";
    /// The tenant CA certificate.
    pub const CA: &str = "ca.pem";
    /// The install script.
    pub const INSTALL: &str = "install.sh";
}

/// What a collector's config says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CollectorConfig {
    /// The package id.
    pub package_id: String,
    /// The tenant.
    pub tenant_slug: String,
    /// The component.
    pub component: Component,
    /// The site.
    pub site: String,
    /// Where to connect.
    pub nats_url: String,
    /// The NATS user name (in the tenant account).
    pub nats_user: String,
    /// Subjects it publishes, tenant-local (the platform sees `<slug>.<subject>`).
    pub subjects: Vec<String>,
    /// Directory the files are installed in.
    pub install_dir: String,
}

/// A TOML basic string: quoted, with `\`, `"` and control characters escaped.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl CollectorConfig {
    /// The config as TOML: top-level identity, `[nats]` and `[tls]` with file paths in
    /// [`Self::install_dir`].
    pub fn to_toml(&self) -> String {
        let q = toml_string;
        let path = |f: &str| q(&format!("{}/{f}", self.install_dir));
        let subjects: Vec<String> = self.subjects.iter().map(|s| q(s)).collect();
        let first = self
            .subjects
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        format!(
            "# Collector config from Warden onboarding package {id}.\n\
             # The collector publishes tenant-local subjects; the platform receives them\n\
             # as <tenant_slug>.<subject>, prefixed by the NATS server, not by the collector.\n\
             package_id = {id_q}\n\
             tenant_slug = {slug}\n\
             component = {component}\n\
             site = {site}\n\
             \n\
             [nats]\n\
             url = {url}\n\
             user = {user}\n\
             subject = {first}\n\
             subjects = [{subjects}]\n\
             creds = {creds}\n\
             \n\
             [tls]\n\
             ca = {ca}\n\
             cert = {cert}\n\
             key = {key}\n",
            id = self.package_id,
            id_q = q(&self.package_id),
            slug = q(&self.tenant_slug),
            component = q(self.component.as_str()),
            site = q(&self.site),
            url = q(&self.nats_url),
            user = q(&self.nats_user),
            first = q(first),
            subjects = subjects.join(", "),
            creds = path(files::CREDS),
            ca = path(files::CA),
            cert = path(files::CERT),
            key = path(files::KEY),
        )
    }

    /// `install.sh`: copies the package's files into `$1` (default
    /// [`Self::install_dir`]), the directory 0700, secrets 0600, the rest 0644, and
    /// rewrites the config's paths when another directory is given.
    pub fn install_script(&self) -> String {
        format!(
            r#"#!/bin/sh
# Installs Warden onboarding package {id} ({component} at site {site}, tenant {slug}).
# Usage: sh install.sh [DIRECTORY]    (default {dir})
set -eu
DEFAULT_DIR='{dir}'
DEST="${{1:-$DEFAULT_DIR}}"
case "$DEST" in
  /*) ;;
  *) echo "install.sh: the directory must be an absolute path" >&2; exit 2 ;;
esac
case "$DEST" in
  *"|"*|*"'"*|*'"'*|*'\'*) echo "install.sh: the directory must not contain | quotes or backslashes" >&2; exit 2 ;;
esac
SRC=$(cd "$(dirname "$0")" && pwd)
umask 077
mkdir -p "$DEST"
chmod 0700 "$DEST"
for f in {creds} {key}; do
  cp "$SRC/$f" "$DEST/$f"
  chmod 0600 "$DEST/$f"
done
for f in {cert} {ca}; do
  cp "$SRC/$f" "$DEST/$f"
  chmod 0644 "$DEST/$f"
done
sed "s|$DEFAULT_DIR/|$DEST/|g" "$SRC/{config}" > "$DEST/{config}"
chmod 0600 "$DEST/{config}"
echo "installed {component} collector for tenant {slug} in $DEST"
"#,
            id = self.package_id,
            component = self.component,
            site = self.site,
            slug = self.tenant_slug,
            dir = self.install_dir,
            creds = files::CREDS,
            key = files::KEY,
            cert = files::CERT,
            ca = files::CA,
            config = files::CONFIG,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> TenantSlug {
        TenantSlug::parse(s).unwrap()
    }

    fn config() -> CollectorConfig {
        CollectorConfig {
            package_id: "pkg_abcdefghijklmnop".into(),
            tenant_slug: "a".into(),
            component: Component::Flowgger,
            site: "paris".into(),
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_user: "flowgger-paris".into(),
            subjects: vec!["events.syslog".into()],
            install_dir: "/etc/warden/collectors/flowgger-paris".into(),
        }
    }

    #[test]
    fn components_parse_and_stay_in_the_default_catalogue() {
        let cat = SubjectCatalogue::default();
        for c in Component::ALL {
            assert_eq!(c.as_str().parse::<Component>().unwrap(), c);
            assert!(!c.subjects_in(&cat).unwrap().is_empty(), "{c}");
        }
        assert!(matches!(
            "syslog".parse::<Component>(),
            Err(OnboardingError::Component(_))
        ));
        let narrow = SubjectCatalogue {
            publish: vec!["events.>".into()],
            requests: vec![],
        };
        assert_eq!(
            Component::Flowgger.subjects_in(&narrow).unwrap(),
            ["events.syslog"]
        );
        assert!(matches!(
            Component::Trapd.subjects_in(&narrow),
            Err(OnboardingError::NotInCatalogue { .. })
        ));
    }

    #[test]
    fn site_names_are_dns_labels() {
        for ok in ["paris", "dc-1", "1st", "a"] {
            assert_eq!(SiteName::parse(ok).unwrap().as_str(), ok);
        }
        let long = "x".repeat(MAX_SITE_LEN + 1);
        for bad in [
            "",
            "Paris",
            "dc_1",
            "-x",
            "x-",
            "a.b",
            "a b",
            "a*",
            "a>",
            long.as_str(),
        ] {
            assert!(SiteName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_carry_the_tenant() {
        let n = CollectorNames::new(
            &slug("acme"),
            Component::Trapd,
            &SiteName::parse("dc-1").unwrap(),
        )
        .unwrap();
        assert_eq!(n.user.as_str(), "trapd-dc-1");
        assert_eq!(n.common_name, "trapd.dc-1.acme");
        assert_eq!(n.uri, "warden://tenant/acme/trapd/dc-1");
        assert_eq!(n.dir, "trapd-dc-1");
    }

    #[test]
    fn tokens_round_trip_hash_and_compare_in_constant_time() {
        let secret = "a".repeat(SECRET_CHARS);
        let t = DownloadToken::new("pkg_abcdefghijklmnop", &secret).unwrap();
        let text = t.expose();
        assert_eq!(text, format!("wdl_abcdefghijklmnop_{secret}"));
        let back = DownloadToken::parse(&text).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.package_id(), "pkg_abcdefghijklmnop");
        // SHA-256("aaa…a" × 52), hex.
        assert_eq!(t.hash(), hash_secret(&secret));
        assert_eq!(t.hash().len(), 64);
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(t.matches(&t.hash()));
        let other = DownloadToken::new("pkg_abcdefghijklmnop", &"b".repeat(SECRET_CHARS)).unwrap();
        assert!(!other.matches(&t.hash()));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains(&secret));
        for bad in [
            "",
            "wdl_",
            "wdn_abcdefghijklmnop_aaaa",
            &format!("wdl_abcdefghijklmno_{secret}"),
            &format!("wdl_abcdefghijklmnop_{}", "A".repeat(SECRET_CHARS)),
            &format!("wdl_abcdefghijklmnop{secret}"),
            &format!("wdl_abcdefghijklmnop_{secret}x"),
        ] {
            assert!(DownloadToken::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn config_is_toml_with_the_tenant() {
        let c = config();
        let text = c.to_toml();
        let doc: toml_edit::DocumentMut = text.parse().expect("valid TOML");
        assert_eq!(doc["tenant_slug"].as_str(), Some("a"));
        assert_eq!(doc["component"].as_str(), Some("flowgger"));
        assert_eq!(doc["site"].as_str(), Some("paris"));
        assert_eq!(doc["nats"]["url"].as_str(), Some("nats://127.0.0.1:4222"));
        assert_eq!(doc["nats"]["subject"].as_str(), Some("events.syslog"));
        assert_eq!(
            doc["nats"]["creds"].as_str(),
            Some("/etc/warden/collectors/flowgger-paris/collector.creds")
        );
        assert_eq!(
            doc["tls"]["key"].as_str(),
            Some("/etc/warden/collectors/flowgger-paris/client.key")
        );
        assert!(text.contains("tenant_slug = \"a\"\n"));
    }

    #[test]
    fn toml_strings_escape_what_would_break_them() {
        let s = toml_string("a\"b\\c\nd\u{1}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
        let doc: toml_edit::DocumentMut = format!("x = {s}\n").parse().unwrap();
        assert_eq!(doc["x"].as_str(), Some("a\"b\\c\nd\u{1}"));
    }

    #[test]
    fn urls_and_install_dirs_are_checked() {
        for ok in [
            "nats://h:4222",
            "tls://h",
            "wss://h/x",
            "nats://127.0.0.1:1",
        ] {
            assert!(check_nats_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://h",
            "nats://",
            "h:4222",
            "nats://h\"x",
            "nats://a b",
            "nats://$X",
        ] {
            assert!(check_nats_url(bad).is_err(), "{bad}");
        }
        assert!(check_install_dir("/opt/c").is_ok());
        for bad in ["rel/dir", "", "/a|b", "/a'b", "/a$b", "/a\nb"] {
            assert!(check_install_dir(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn install_script_sets_modes_and_keeps_the_default_dir() {
        let s = config().install_script();
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("DEFAULT_DIR='/etc/warden/collectors/flowgger-paris'"));
        assert!(s.contains("chmod 0700 \"$DEST\""));
        assert!(s.contains("chmod 0600 \"$DEST/$f\""));
        assert!(s.contains("for f in collector.creds client.key; do"));
    }

    #[test]
    fn states_parse() {
        for s in ["issued", "delivered", "activated", "revoked"] {
            assert_eq!(PackageState::parse(s).unwrap().as_str(), s);
        }
        assert!(PackageState::parse("active").is_none());
    }
}
