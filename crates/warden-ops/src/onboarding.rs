//! `warden onboarding`: packages that bring a tenant's collector online, and the
//! [`Warden`] methods every surface calls: [`Warden::create_package`],
//! [`Warden::list_packages`], [`Warden::package`], [`Warden::revoke_package`] and
//! [`Warden::download_package`].
//!
//! A package is one `.tar.gz` for one collector component at one site of one tenant: the
//! collector's creds (a new user in the tenant account, publishing only the component's
//! subjects), a client certificate and key from the tenant's own CA (made and sealed on
//! first use), the CA certificate, a TOML config and an `install.sh`. It is handed out
//! once, with a one-time download token whose secret is stored only as a hash; the
//! archive itself is kept sealed until that download (or a revoke) and then dropped.
//! States: `issued` → `delivered` (downloaded) → `activated` (first connection observed by
//! `warden serve`, see [`crate::observe`]); `revoked` cuts the collector off (its user
//! revoked in the tenant account and pushed; the certificate recorded as revoked).
//! Every change is one transaction with its ledger event.
//!
//! Refused downloads come from anyone who can reach the HTTP API, so what they cost is
//! bounded ([`DownloadGuard`]): each refusal naming a package counts on the package
//! (`refused_downloads`), but the ledger gets at most one event as a window (60 s) opens
//! — the first refusal, `onboarding.download_refused` — and one summary when it closes,
//! `onboarding.download_refusals` with the window's count; per package, and per peer
//! address for refusals that name no package. An HTTP peer with too many refusals in its
//! window is throttled (`DownloadError::Throttled`, HTTP `429`) until the window ends,
//! without the database being read.
//!
//! Making a package needs `write` and `creds` (its archive holds a creds file and a
//! private key); listing and reading need `read`, revoking `write`. A download needs no
//! scope: its one-time token is the credential.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::RngCore as _;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use warden_core::onboarding::{
    CollectorConfig, CollectorNames, Component, DEFAULT_INSTALL_ROOT, DownloadToken,
    PACKAGE_ID_CHARS, PACKAGE_ID_PREFIX, PackageState, SECRET_CHARS, SiteName, check_install_dir,
    check_nats_url, files,
};
use warden_core::tenant::{TenantSettings, TenantSlug};
use warden_store::{AccountRow, NewEvent, PackageRow, TenantCaRow, TenantRow, Tx, Zeroizing};

use crate::{Actor, ActorKind, OpsError, Record, Result, Scope, Warden, now};

/// Longest life of a download token (30 days).
pub const MAX_TOKEN_SECS: i64 = 30 * 86_400;
/// Validity of a client certificate (about two years).
pub const CLIENT_CERT_DAYS: i64 = 730;
/// Validity of a tenant CA (about ten years).
pub const CA_DAYS: i64 = 3650;

/// A package's client certificate as shown.
#[derive(Clone, Debug, Serialize)]
pub struct CertView {
    /// Subject common name: `<component>.<site>.<slug>`.
    pub common_name: String,
    /// URI SAN: `warden://tenant/<slug>/<component>/<site>`.
    pub uri: String,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the certificate (DER), hex.
    pub fingerprint: String,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// Whether it is revoked (with its package).
    pub revoked: bool,
}

/// A package as every surface shows it (never its token or archive).
#[derive(Clone, Debug, Serialize)]
pub struct PackageView {
    /// `pkg_…`.
    pub id: String,
    /// Tenant slug.
    pub tenant: String,
    /// Collector component.
    pub component: String,
    /// Site.
    pub site: String,
    /// `issued`, `delivered`, `activated` or `revoked`.
    pub state: String,
    /// Its collector user (in the tenant account).
    pub user: String,
    /// That user's public key.
    pub user_key: String,
    /// Subjects the collector publishes (tenant-local).
    pub subjects: Vec<String>,
    /// The client certificate.
    pub certificate: CertView,
    /// When the download token expires.
    pub token_expires_at: i64,
    /// Whether the token can still be used (issued and unexpired).
    pub token_usable: bool,
    /// Made.
    pub issued_at: i64,
    /// Downloaded.
    pub delivered_at: Option<i64>,
    /// First connection observed.
    pub activated_at: Option<i64>,
    /// Revoked.
    pub revoked_at: Option<i64>,
    /// Refused download attempts (every one; the ledger has them per window).
    pub refused_downloads: i64,
    /// Last refused attempt.
    pub last_refused_at: Option<i64>,
}

fn view(row: PackageRow) -> PackageView {
    let component = row.component.parse::<Component>().ok();
    let subjects = component
        .map(|c| c.subjects().iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    let t = now();
    PackageView {
        certificate: CertView {
            common_name: format!("{}.{}.{}", row.component, row.site, row.tenant),
            uri: format!(
                "warden://tenant/{}/{}/{}",
                row.tenant, row.component, row.site
            ),
            serial: row.cert_serial,
            fingerprint: row.cert_fingerprint,
            not_after: row.cert_not_after,
            revoked: row.revoked_at.is_some(),
        },
        token_usable: row.state == PackageState::Issued.as_str() && t < row.token_expires_at,
        id: row.id,
        tenant: row.tenant,
        component: row.component,
        site: row.site,
        state: row.state,
        user: row.user_name,
        user_key: row.user_key,
        subjects,
        token_expires_at: row.token_expires_at,
        issued_at: row.issued_at,
        delivered_at: row.delivered_at,
        activated_at: row.activated_at,
        revoked_at: row.revoked_at,
        refused_downloads: row.refused_downloads,
        last_refused_at: row.last_refused_at,
    }
}

/// What a package is made for.
#[derive(Clone, Debug)]
pub struct NewPackage {
    /// Tenant slug.
    pub tenant: String,
    /// Component name.
    pub component: String,
    /// Site name.
    pub site: String,
    /// When the download token expires (unix seconds; must be in the future).
    pub token_expires_at: i64,
    /// The NATS URL the collector is given.
    pub nats_url: String,
    /// Where `install.sh` puts the files by default (absolute; default
    /// `/etc/warden/collectors/<component>-<site>`).
    pub install_dir: Option<String>,
}

/// A package just made: shown once.
pub struct IssuedPackage {
    /// The package.
    pub package: PackageView,
    /// The one-time download token (a secret: shown once, stored as a hash only).
    pub token: Zeroizing<String>,
    /// The archive (holds the creds and client key).
    pub archive: Zeroizing<Vec<u8>>,
    /// A file name for it.
    pub file_name: String,
}

/// A package handed out by [`Warden::download_package`].
pub struct Download {
    /// The package, now `delivered`.
    pub package: PackageView,
    /// The archive.
    pub archive: Zeroizing<Vec<u8>>,
    /// A file name for it.
    pub file_name: String,
}

/// Why a download was refused. Each refusal that names a package counts on it
/// (`refused_downloads`); the ledger records refusals per window (see [`DownloadGuard`]).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No token was given.
    #[error(
        "no download token: send it in the X-Warden-Download-Token header or a JSON body {{\"token\": \"…\"}}"
    )]
    Missing,
    /// Not a token, no such package, or the wrong secret.
    #[error("invalid download token")]
    Invalid,
    /// The token was used already (the package is delivered or activated).
    #[error("this download token was already used: package {0} is {1}")]
    Used(String, String),
    /// The token expired.
    #[error("this download token expired at {1} (package {0}); make a new package")]
    Expired(String, i64),
    /// The package was revoked.
    #[error("package {0} is revoked")]
    Revoked(String),
    /// This address made too many refused attempts in the current window: nothing was
    /// read or consumed; it may try again after this many seconds.
    #[error(
        "too many refused download attempts from this address: try again in {0} s (nothing was read or consumed)"
    )]
    Throttled(i64),
    /// Warden failed.
    #[error(transparent)]
    Ops(#[from] OpsError),
}

impl From<warden_store::StoreError> for DownloadError {
    fn from(e: warden_store::StoreError) -> Self {
        DownloadError::Ops(e.into())
    }
}

fn invalid(e: impl std::fmt::Display) -> OpsError {
    OpsError::Invalid(e.to_string())
}

fn random_base32(bytes: usize) -> String {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    rand::rngs::OsRng.fill_bytes(&mut buf);
    data_encoding::BASE32_NOPAD
        .encode(&buf)
        .to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn tenant_account_of(settings: &TenantSettings, slug: &TenantSlug) -> Result<String> {
    Ok(settings.account_name(slug).map_err(invalid)?.to_string())
}

async fn tenant_row(tx: &mut Tx<'_>, slug: &TenantSlug) -> Result<TenantRow> {
    tx.tenant(slug.as_str())
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("tenant {slug}")))
}

async fn account_of(tx: &mut Tx<'_>, row: &TenantRow) -> Result<AccountRow> {
    tx.account(&row.account_key)
        .await?
        .ok_or_else(|| OpsError::NotFound(format!("account of tenant {}", row.slug)))
}

// ---------------------------------------------------------------------------------------
// Certificates (rcgen)
// ---------------------------------------------------------------------------------------

fn cert_error(e: rcgen::Error) -> OpsError {
    OpsError::Jwt(format!("certificate: {e}"))
}

fn offset(unix: i64) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| OpsError::Jwt(format!("certificate time: {e}")))
}

/// A new tenant CA: self-signed, may sign end-entity certificates only.
fn make_ca(slug: &TenantSlug, at: i64) -> Result<(String, Zeroizing<String>, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().map_err(cert_error)?;
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, format!("Warden tenant CA {slug}"));
    p.distinguished_name
        .push(DnType::OrganizationName, "Warden");
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, format!("tenant {slug}"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = offset(at - 60)?;
    p.not_after = offset(at + CA_DAYS * 86_400)?;
    p.serial_number = Some(random_serial());
    let cert = p.self_signed(&key).map_err(cert_error)?;
    let fingerprint = hex(&Sha256::digest(cert.der()));
    Ok((cert.pem(), Zeroizing::new(key.serialize_pem()), fingerprint))
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // A positive DER integer: top bit clear, and not starting with a zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    rcgen::SerialNumber::from_slice(&bytes)
}

/// A client certificate and key signed by the tenant CA.
struct ClientCert {
    pem: String,
    key_pem: Zeroizing<String>,
    serial: String,
    fingerprint: String,
    not_after: i64,
}

fn make_client_cert(
    names: &CollectorNames,
    slug: &TenantSlug,
    ca_pem: &str,
    ca_key_pem: &str,
    at: i64,
) -> Result<ClientCert> {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(cert_error)?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(cert_error)?;
    let key = KeyPair::generate().map_err(cert_error)?;
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, names.common_name.clone());
    p.distinguished_name
        .push(DnType::OrganizationName, "Warden");
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, format!("tenant {slug}"));
    p.subject_alt_names = vec![
        SanType::URI(names.uri.clone().try_into().map_err(cert_error)?),
        SanType::DnsName(names.common_name.clone().try_into().map_err(cert_error)?),
    ];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    let serial = random_serial();
    let serial_hex = hex(serial.as_ref());
    p.serial_number = Some(serial);
    let not_after = at + CLIENT_CERT_DAYS * 86_400;
    p.not_before = offset(at - 60)?;
    p.not_after = offset(not_after)?;
    let cert = p.signed_by(&key, &issuer).map_err(cert_error)?;
    Ok(ClientCert {
        fingerprint: hex(&Sha256::digest(cert.der())),
        pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
        serial: serial_hex,
        not_after,
    })
}

// ---------------------------------------------------------------------------------------
// The archive (tar + gzip)
// ---------------------------------------------------------------------------------------

/// Packs `entries` (name, contents, mode) under `dir/` as a `.tar.gz`; times are `mtime`.
fn pack(dir: &str, entries: &[(&str, &[u8], u32)], mtime: u64) -> std::io::Result<Vec<u8>> {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use tar::{EntryType, Header};
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Directory);
    h.set_mode(0o700);
    h.set_size(0);
    h.set_mtime(mtime);
    h.set_cksum();
    tar.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    for (name, data, mode) in entries {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(mtime);
        h.set_cksum();
        tar.append_data(&mut h, format!("{dir}/{name}"), *data)?;
    }
    tar.into_inner()?.finish()
}

// ---------------------------------------------------------------------------------------
// Refused downloads: counted, summarised per window, throttled per peer
// ---------------------------------------------------------------------------------------

/// How refused downloads are recorded and throttled (see [`DownloadGuard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Length of a window, in seconds (at least 1): per package, and per peer for
    /// refusals that name no package, the ledger gets at most the window's first refusal
    /// and one summary of it.
    pub window_secs: i64,
    /// Refused attempts one HTTP peer may make within its window; after them, its
    /// attempts are throttled until the window ends.
    pub peer_refusals: u64,
}

impl Default for DownloadLimits {
    /// One minute; 30 refusals per peer (someone with the right token fails a handful
    /// of times at most; a whole site behind one address still has room).
    fn default() -> Self {
        DownloadLimits {
            window_secs: 60,
            peer_refusals: 30,
        }
    }
}

/// Most peer addresses followed at once (refusals naming no package, throttle counters):
/// refusals from further peers share one ledger bucket, [`OTHER_PEERS`], and are not
/// throttled, so memory and ledger events stay bounded however many addresses a caller
/// uses.
pub const MAX_PEERS: usize = 1024;

/// The ledger bucket of refusals from peers beyond [`MAX_PEERS`].
pub const OTHER_PEERS: &str = "other-peers";

/// How many distinct peers a window's summary names (the rest are `more_peers`).
const NAMED_PEERS: usize = 16;

/// Most window summaries kept while the database cannot take them.
const MAX_PENDING: usize = 4096;

/// Counts refused onboarding downloads in memory, so that what anyone who can reach the
/// download route makes Warden write stays bounded:
///
/// - per window ([`DownloadLimits::window_secs`], opened by a bucket's first refusal),
///   the ledger gets the first refusal as it happens (`onboarding.download_refused`,
///   actor the HTTP peer) and, once the window has closed, one summary with the count,
///   the reasons and the peers (`onboarding.download_refusals`) if there was more than
///   one; a bucket is the package a refusal names, or the peer address for one naming
///   none (a malformed token, an unknown package);
/// - an HTTP peer that made [`DownloadLimits::peer_refusals`] refused attempts within its
///   window is refused at once ([`DownloadError::Throttled`]) until the window ends,
///   without the database being read; those attempts are summarised per window
///   (`onboarding.download_throttled`). The throttle is per peer, not per package, so a
///   stranger who knows a package's id cannot lock its collector out.
///
/// Closed windows are summarised by the next download attempt, or by
/// [`Warden::flush_download_refusals`] (for a process about to stop). One guard
/// is shared by a [`Warden`] and all its clones; its clock is injectable, so tests move
/// time instead of waiting.
pub struct DownloadGuard {
    limits: DownloadLimits,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
    windows: Mutex<Windows>,
}

impl Default for DownloadGuard {
    fn default() -> Self {
        DownloadGuard::new(DownloadLimits::default())
    }
}

impl DownloadGuard {
    /// A guard with `limits`, on the wall clock.
    pub fn new(limits: DownloadLimits) -> DownloadGuard {
        DownloadGuard::with_clock(limits, now)
    }

    /// A guard with `limits` whose time (unix seconds) is `clock`'s.
    pub fn with_clock(
        limits: DownloadLimits,
        clock: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> DownloadGuard {
        DownloadGuard {
            limits: DownloadLimits {
                window_secs: limits.window_secs.max(1),
                ..limits
            },
            clock: Box::new(clock),
            windows: Mutex::new(Windows::default()),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> DownloadLimits {
        self.limits
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    fn windows(&self) -> MutexGuard<'_, Windows> {
        // The counters stay usable after a panic elsewhere: they are only counters.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who a refusal is counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Peer {
    /// The bucket and throttle key: the IP address (an IPv6 one by its /64, which one
    /// holder usually has whole), or the actor's name for a caller that is no HTTP peer.
    key: String,
    /// Whether it is an HTTP peer: only those are throttled (the command line acts for
    /// the operator, who holds the database anyway).
    http: bool,
}

fn peer_of(actor: &Actor) -> Peer {
    match actor.kind() {
        ActorKind::HttpPeer { addr: Some(a) } => Peer {
            key: ip_key(a.ip()),
            http: true,
        },
        ActorKind::HttpPeer { addr: None } => Peer {
            key: "unknown-peer".to_string(),
            http: true,
        },
        _ => Peer {
            key: actor.name().to_string(),
            http: false,
        },
    }
}

fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// What refusals are summarised by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Bucket {
    /// The package a refusal names.
    Package(String),
    /// The peer of a refusal that names no package.
    Peer(String),
}

impl Bucket {
    fn object(&self) -> (&'static str, &str) {
        match self {
            Bucket::Package(id) => ("onboarding_package", id),
            Bucket::Peer(p) => ("download_peer", p),
        }
    }
}

/// The refusals of one bucket in its open window.
struct Window {
    opened: i64,
    last: i64,
    refusals: u64,
    reasons: BTreeMap<&'static str, u64>,
    peers: BTreeSet<String>,
    more_peers: bool,
    /// The ledger name of the first refusal's actor (the summary's actor).
    actor: String,
}

/// One HTTP peer's refusals and throttled attempts in its open window.
struct Throttle {
    opened: i64,
    last: i64,
    refusals: u64,
    throttled: u64,
    actor: String,
}

/// The guard's state.
#[derive(Default)]
struct Windows {
    refusals: HashMap<Bucket, Window>,
    peers: HashMap<String, Throttle>,
    /// Summaries of closed windows not yet in the ledger.
    pending: Vec<NewEvent>,
}

impl Windows {
    /// Moves the windows closed at `at` (all of them when `all`) to the summaries to
    /// write: a window with one refusal needs none (its refusal is in the ledger).
    fn close(&mut self, at: i64, limits: DownloadLimits, all: bool) {
        let closed = |opened: i64| all || at >= opened.saturating_add(limits.window_secs);
        let keys: Vec<Bucket> = self
            .refusals
            .iter()
            .filter(|(_, w)| closed(w.opened))
            .map(|(b, _)| b.clone())
            .collect();
        let mut done: Vec<(Bucket, Window)> = keys
            .into_iter()
            .filter_map(|b| self.refusals.remove(&b).map(|w| (b, w)))
            .collect();
        done.sort_by(|a, b| (a.1.opened, &a.0).cmp(&(b.1.opened, &b.0)));
        for (bucket, w) in done.into_iter().filter(|(_, w)| w.refusals > 1) {
            let (kind, key) = bucket.object();
            self.pending.push(NewEvent {
                actor: w.actor,
                action: "onboarding.download_refusals".to_string(),
                object_kind: kind.to_string(),
                object_key: key.to_string(),
                summary: json!({
                    "refusals": w.refusals, "reasons": w.reasons, "from": w.opened,
                    "to": w.last, "window_secs": limits.window_secs, "peers": w.peers,
                    "more_peers": w.more_peers,
                }),
            });
        }
        let keys: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, t)| closed(t.opened))
            .map(|(k, _)| k.clone())
            .collect();
        let mut done: Vec<(String, Throttle)> = keys
            .into_iter()
            .filter_map(|k| self.peers.remove(&k).map(|t| (k, t)))
            .collect();
        done.sort_by(|a, b| (a.1.opened, &a.0).cmp(&(b.1.opened, &b.0)));
        for (peer, t) in done.into_iter().filter(|(_, t)| t.throttled > 0) {
            self.pending.push(NewEvent {
                actor: t.actor,
                action: "onboarding.download_throttled".to_string(),
                object_kind: "download_peer".to_string(),
                object_key: peer,
                summary: json!({
                    "throttled": t.throttled, "refusals": t.refusals, "from": t.opened,
                    "to": t.last, "window_secs": limits.window_secs,
                    "limit": limits.peer_refusals,
                }),
            });
        }
        if self.pending.len() > MAX_PENDING {
            let dropped = self.pending.len() - MAX_PENDING;
            self.pending.drain(..dropped);
            tracing::warn!(
                dropped,
                "summaries of refused onboarding downloads dropped: the ledger could not take them"
            );
        }
    }

    /// Whether `peer` is throttled at `at`: the seconds until its window ends if so (the
    /// attempt is counted), `None` otherwise.
    fn throttled(&mut self, peer: &Peer, at: i64, limits: DownloadLimits) -> Option<i64> {
        if !peer.http {
            return None;
        }
        let t = self.peers.get_mut(&peer.key)?;
        let ends = t.opened.saturating_add(limits.window_secs);
        if at >= ends || t.refusals < limits.peer_refusals {
            return None;
        }
        t.throttled += 1;
        t.last = at;
        Some((ends - at).max(1))
    }

    /// Counts a refusal of `bucket` (for a peer's bucket, [`OTHER_PEERS`]'s once
    /// [`MAX_PEERS`] are followed) by `actor` from `peer`, and against the peer's
    /// throttle. Returns the bucket when this refusal opened its window: the one the
    /// ledger records as it happens.
    fn refused(
        &mut self,
        bucket: Bucket,
        reason: &'static str,
        peer: &Peer,
        actor: &str,
        at: i64,
    ) -> Option<Bucket> {
        if peer.http {
            if let Some(t) = self.peers.get_mut(&peer.key) {
                t.refusals += 1;
                t.last = at;
            } else if self.peers.len() < MAX_PEERS {
                self.peers.insert(
                    peer.key.clone(),
                    Throttle {
                        opened: at,
                        last: at,
                        refusals: 1,
                        throttled: 0,
                        actor: actor.to_string(),
                    },
                );
            }
        }
        let bucket = match bucket {
            Bucket::Peer(p)
                if !self.refusals.contains_key(&Bucket::Peer(p.clone()))
                    && self
                        .refusals
                        .keys()
                        .filter(|b| matches!(b, Bucket::Peer(_)))
                        .count()
                        >= MAX_PEERS =>
            {
                Bucket::Peer(OTHER_PEERS.to_string())
            }
            b => b,
        };
        if let Some(w) = self.refusals.get_mut(&bucket) {
            w.refusals += 1;
            w.last = at;
            *w.reasons.entry(reason).or_default() += 1;
            if !w.peers.contains(&peer.key) {
                if w.peers.len() < NAMED_PEERS {
                    w.peers.insert(peer.key.clone());
                } else {
                    w.more_peers = true;
                }
            }
            return None;
        }
        self.refusals.insert(
            bucket.clone(),
            Window {
                opened: at,
                last: at,
                refusals: 1,
                reasons: BTreeMap::from([(reason, 1)]),
                peers: BTreeSet::from([peer.key.clone()]),
                more_peers: false,
                actor: actor.to_string(),
            },
        );
        Some(bucket)
    }
}

impl Warden {
    /// Makes a package: the collector user in the tenant account, the tenant CA (first
    /// time), a client certificate, config, install script and archive; one transaction
    /// with the ledger events. Returns it with its one-time download token.
    pub async fn create_package(&self, req: &NewPackage) -> Result<IssuedPackage> {
        self.need(Scope::Write, "making an onboarding package")?;
        self.need(
            Scope::Creds,
            "making an onboarding package (it holds creds and a private key)",
        )?;
        let settings = self.trusted().tenant_settings().await?;
        let slug = settings.parse_slug(&req.tenant).map_err(invalid)?;
        let component: Component = req.component.parse().map_err(invalid)?;
        let site = SiteName::parse(&req.site).map_err(invalid)?;
        let names = CollectorNames::new(&slug, component, &site).map_err(invalid)?;
        let subjects = component
            .subjects_in(&settings.catalogue)
            .map_err(invalid)?;
        let nats_url = check_nats_url(&req.nats_url).map_err(invalid)?;
        let install_dir = match &req.install_dir {
            Some(d) => check_install_dir(d).map_err(invalid)?,
            None => format!("{DEFAULT_INSTALL_ROOT}/{}", names.dir),
        };
        let at = now();
        if req.token_expires_at <= at {
            return Err(OpsError::Invalid(
                "the download token must expire in the future".into(),
            ));
        }
        if req.token_expires_at > at + MAX_TOKEN_SECS {
            return Err(OpsError::Invalid(format!(
                "the download token may live at most {} days",
                MAX_TOKEN_SECS / 86_400
            )));
        }

        let mut tx = self.store.begin().await?;
        self.operator_row(&mut tx).await?;
        let trow = tenant_row(&mut tx, &slug).await?;
        if trow.state != "active" {
            return Err(OpsError::Conflict(format!(
                "tenant {slug} is {}: resume it first",
                trow.state
            )));
        }
        let acc = account_of(&mut tx, &trow).await?;

        // The collector publishes only its component's subjects (and may send the
        // catalogue's requests); it sees only its inbox.
        let mut spec = settings.tenant_user_spec().map_err(invalid)?;
        let mut allow = Vec::new();
        for s in subjects.iter().chain(&settings.catalogue.requests) {
            allow.push(nats_jwt::Subject::new(s).map_err(invalid)?);
        }
        spec.permissions.publish.allow = allow;
        let user = self.create_user(&mut tx, &acc, &names.user, spec).await?;
        let seed = nats_jwt::Seed::parse(&tx.seed(&user.public_key).await?)?;
        let creds = Zeroizing::new(
            nats_jwt::format_user_creds(&user.jwt, &seed)
                .map_err(|e| OpsError::Jwt(e.to_string()))?,
        );

        let ca = self.ensure_tenant_ca(&mut tx, &slug, at).await?;
        let ca_key = tx.tenant_ca_key(slug.as_str()).await?;
        let cert = make_client_cert(&names, &slug, &ca.cert_pem, &ca_key, at)?;

        let id = format!("{PACKAGE_ID_PREFIX}{}", random_base32(10));
        debug_assert_eq!(id.len(), PACKAGE_ID_PREFIX.len() + PACKAGE_ID_CHARS);
        let secret = Zeroizing::new(random_base32(32));
        debug_assert_eq!(secret.len(), SECRET_CHARS);
        let token = DownloadToken::new(&id, &secret)
            .ok_or_else(|| OpsError::Jwt("generated token has the wrong shape".into()))?;

        let config = CollectorConfig {
            package_id: id.clone(),
            tenant_slug: slug.to_string(),
            component,
            site: site.to_string(),
            nats_url,
            nats_user: names.user.to_string(),
            subjects: subjects.clone(),
            install_dir,
        };
        let toml = config.to_toml();
        let install = config.install_script();
        let archive = Zeroizing::new(
            pack(
                &names.dir,
                &[
                    (files::CONFIG, toml.as_bytes(), 0o600),
                    (files::CREDS, creds.as_bytes(), 0o600),
                    (files::KEY, cert.key_pem.as_bytes(), 0o600),
                    (files::CERT, cert.pem.as_bytes(), 0o644),
                    (files::CA, ca.cert_pem.as_bytes(), 0o644),
                    (files::INSTALL, install.as_bytes(), 0o700),
                ],
                at.max(0) as u64,
            )
            .map_err(|e| OpsError::Jwt(format!("cannot pack the archive: {e}")))?,
        );

        let row = PackageRow {
            id: id.clone(),
            tenant: slug.to_string(),
            component: component.to_string(),
            site: site.to_string(),
            user_name: names.user.to_string(),
            user_key: user.public_key.clone(),
            cert_serial: cert.serial.clone(),
            cert_fingerprint: cert.fingerprint.clone(),
            cert_not_after: cert.not_after,
            state: PackageState::Issued.to_string(),
            token_hash: token.hash(),
            token_expires_at: req.token_expires_at,
            issued_at: at,
            delivered_at: None,
            activated_at: None,
            revoked_at: None,
            refused_downloads: 0,
            last_refused_at: None,
            updated_at: at,
        };
        tx.insert_package(&row, &archive).await?;
        tx.record(self.event(
            "onboarding.create",
            "onboarding_package",
            &id,
            json!({
                "tenant": row.tenant, "component": row.component, "site": row.site,
                "account": acc.name, "user": row.user_name, "user_key": row.user_key,
                "cert_serial": row.cert_serial, "cert_fingerprint": row.cert_fingerprint,
                "token_expires_at": row.token_expires_at,
            }),
        ))
        .await?;
        tx.commit().await?;
        let file_name = format!("{}-{}.tar.gz", row.tenant, names.dir);
        Ok(IssuedPackage {
            package: view(row),
            token: Zeroizing::new(token.expose()),
            archive,
            file_name,
        })
    }

    /// The tenant's CA, made (and its key sealed) on first use.
    async fn ensure_tenant_ca(
        &self,
        tx: &mut Tx<'_>,
        slug: &TenantSlug,
        at: i64,
    ) -> Result<TenantCaRow> {
        if let Some(ca) = tx.tenant_ca(slug.as_str()).await? {
            return Ok(ca);
        }
        let (cert_pem, key_pem, fingerprint) = make_ca(slug, at)?;
        let row = TenantCaRow {
            slug: slug.to_string(),
            cert_pem,
            fingerprint,
            created_at: at,
        };
        tx.insert_tenant_ca(&row, &key_pem).await?;
        tx.record(self.event(
            "tenant.ca.create",
            "tenant",
            slug.as_str(),
            json!({"fingerprint": row.fingerprint}),
        ))
        .await?;
        Ok(row)
    }

    /// The tenant's CA certificate (PEM), if it has one.
    pub async fn tenant_ca_pem(&self, slug: &str) -> Result<Option<String>> {
        self.need(Scope::Read, "reading a tenant CA")?;
        let slug = self
            .tenant_settings()
            .await?
            .parse_slug(slug)
            .map_err(invalid)?;
        let mut tx = self.store.begin().await?;
        Ok(tx.tenant_ca(slug.as_str()).await?.map(|c| c.cert_pem))
    }

    /// Every package, or a tenant's.
    pub async fn list_packages(&self, tenant: Option<&str>) -> Result<Vec<PackageView>> {
        self.need(Scope::Read, "listing onboarding packages")?;
        let tenant = match tenant {
            Some(t) => Some(
                self.trusted()
                    .tenant_settings()
                    .await?
                    .parse_slug(t)
                    .map_err(invalid)?
                    .to_string(),
            ),
            None => None,
        };
        Ok(self
            .store
            .packages(tenant.as_deref())
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// One package.
    pub async fn package(&self, id: &str) -> Result<PackageView> {
        self.need(Scope::Read, "reading an onboarding package")?;
        self.store
            .package(id.trim())
            .await?
            .map(view)
            .ok_or_else(|| OpsError::NotFound(format!("onboarding package {id}")))
    }

    /// Revokes a package: its collector user is revoked in the tenant account (re-signed
    /// and queued for the push, which closes its connections), its certificate recorded
    /// as revoked, its archive (if still held) dropped.
    pub async fn revoke_package(&self, id: &str) -> Result<PackageView> {
        self.need(Scope::Write, "revoking an onboarding package")?;
        let settings = self.trusted().tenant_settings().await?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut row = tx
            .package(id.trim())
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("onboarding package {id}")))?;
        if row.state == PackageState::Revoked.as_str() {
            return Err(OpsError::Conflict(format!(
                "onboarding package {} is already revoked",
                row.id
            )));
        }
        let slug = TenantSlug::parse(&row.tenant).map_err(invalid)?;
        let account = tenant_account_of(&settings, &slug)?;
        let mut acc = self.account_row(&mut tx, &op, &account).await?;
        let at = self
            .revoke_in_account(&mut tx, &op, &mut acc, &row.user_key)
            .await?;
        if let Some(mut user) = tx.user(&row.user_key).await?
            && user.revoked_at.is_none()
        {
            user.revoked_at = Some(at);
            user.updated_at = at;
            tx.update_user(&user).await?;
        }
        let from = row.state.clone();
        row.state = PackageState::Revoked.to_string();
        row.revoked_at = Some(at);
        row.updated_at = at;
        if !tx.update_package(&row, &from, true).await? {
            return Err(OpsError::Conflict(format!(
                "onboarding package {} changed meanwhile; try again",
                row.id
            )));
        }
        tx.record(self.event(
            "onboarding.revoke",
            "onboarding_package",
            &row.id,
            json!({
                "tenant": row.tenant, "account": acc.name, "user": row.user_name,
                "user_key": row.user_key, "cert_serial": row.cert_serial,
                "cert_fingerprint": row.cert_fingerprint, "revoked_at": at, "was": from,
            }),
        ))
        .await?;
        tx.commit().await?;
        Ok(view(row))
    }

    /// The same engine with its own [`DownloadGuard`] (other limits, another clock),
    /// shared by its clones.
    pub fn with_download_guard(&self, guard: DownloadGuard) -> Warden {
        Warden {
            downloads: Arc::new(guard),
            ..self.clone()
        }
    }

    /// Writes the summaries of every refused-download window, closed or still open (for
    /// a process about to stop, so no count is left only in memory). Returns how many
    /// ledger events it wrote.
    pub async fn flush_download_refusals(&self) -> Result<usize> {
        self.need(Scope::Write, "summarising refused onboarding downloads")?;
        let at = self.downloads.now();
        self.downloads
            .windows()
            .close(at, self.downloads.limits, true);
        self.write_download_summaries().await
    }

    /// Writes the summaries of closed windows (one transaction); when that fails they
    /// are kept for the next attempt.
    async fn write_download_summaries(&self) -> Result<usize> {
        let events = std::mem::take(&mut self.downloads.windows().pending);
        if events.is_empty() {
            return Ok(0);
        }
        let written = async {
            let mut tx = self.store.begin().await?;
            for e in &events {
                tx.record(e.clone()).await?;
            }
            tx.commit().await?;
            Ok::<_, OpsError>(events.len())
        }
        .await;
        if written.is_err() {
            let mut w = self.downloads.windows();
            let newer = std::mem::replace(&mut w.pending, events);
            w.pending.extend(newer);
        }
        written
    }

    /// A refusal that names no package: counted against the peer's bucket, the ledger
    /// event written only when it opens the bucket's window.
    async fn refused_unknown(
        &self,
        peer: &Peer,
        reason: &'static str,
        source: &str,
        at: i64,
    ) -> DownloadError {
        let opened = self.downloads.windows().refused(
            Bucket::Peer(peer.key.clone()),
            reason,
            peer,
            self.actor.name(),
            at,
        );
        let Some(bucket) = opened else {
            tracing::debug!(peer = %peer.key, reason, source, "onboarding download refused");
            return DownloadError::Invalid;
        };
        tracing::info!(peer = %peer.key, reason, source, "onboarding download refused");
        let (kind, key) = bucket.object();
        let event = self.event(
            "onboarding.download_refused",
            kind,
            key,
            json!({
                "reason": reason, "source": source, "peer": peer.key,
                "window_secs": self.downloads.limits.window_secs,
            }),
        );
        let written = async {
            let mut tx = self.store.begin().await?;
            tx.record(event).await?;
            tx.commit().await?;
            Ok::<_, OpsError>(())
        }
        .await;
        match written {
            Ok(()) => DownloadError::Invalid,
            Err(e) => DownloadError::Ops(e),
        }
    }

    /// Hands out a package for its one-time token: the first valid use returns the
    /// archive and marks the package `delivered` (the archive is then dropped); a used,
    /// expired, revoked or wrong token is refused, counted on the package it names, and
    /// recorded in the ledger per window; an HTTP peer with too many refusals is
    /// throttled first (see [`DownloadGuard`]).
    pub async fn download_package(
        &self,
        token: &str,
        source: &str,
    ) -> Result<Download, DownloadError> {
        if token.trim().is_empty() {
            return Err(DownloadError::Missing);
        }
        let guard = &self.downloads;
        let at = guard.now();
        let peer = peer_of(&self.actor);
        let throttled = {
            let mut w = guard.windows();
            w.close(at, guard.limits, false);
            w.throttled(&peer, at, guard.limits)
        };
        if let Some(retry_after) = throttled {
            tracing::debug!(peer = %peer.key, source, "onboarding download throttled");
            return Err(DownloadError::Throttled(retry_after));
        }
        if let Err(e) = self.write_download_summaries().await {
            // Kept for the next attempt; this download goes on.
            tracing::warn!(error = %e, "summaries of refused onboarding downloads not written");
        }
        let Some(token) = DownloadToken::parse(token) else {
            return Err(self
                .refused_unknown(&peer, "malformed token", source, at)
                .await);
        };
        let mut tx = self.store.begin().await?;
        let Some(mut row) = tx.package(token.package_id()).await? else {
            // Ended before the refusal's own transaction begins (SQLite has one writer).
            tx.rollback().await?;
            return Err(self
                .refused_unknown(&peer, "unknown package", source, at)
                .await);
        };
        let wall = now();
        let refusal = if !token.matches(&row.token_hash) {
            Some(("wrong token", DownloadError::Invalid))
        } else if row.state == PackageState::Revoked.as_str() {
            Some(("revoked", DownloadError::Revoked(row.id.clone())))
        } else if row.state != PackageState::Issued.as_str() {
            Some((
                "already used",
                DownloadError::Used(row.id.clone(), row.state.clone()),
            ))
        } else if wall >= row.token_expires_at {
            Some((
                "expired",
                DownloadError::Expired(row.id.clone(), row.token_expires_at),
            ))
        } else {
            None
        };
        let state = row.state.clone();
        if let Some((reason, err)) = refusal {
            let opened = guard.windows().refused(
                Bucket::Package(row.id.clone()),
                reason,
                &peer,
                self.actor.name(),
                at,
            );
            let attempt = tx
                .count_refused_download(&row.id, wall)
                .await?
                .unwrap_or(row.refused_downloads + 1);
            if opened.is_some() {
                tracing::info!(package = %row.id, peer = %peer.key, reason, source, "onboarding download refused");
                tx.record(self.event(
                    "onboarding.download_refused",
                    "onboarding_package",
                    &row.id,
                    json!({
                        "reason": reason, "state": state, "source": source, "peer": peer.key,
                        "attempt": attempt, "window_secs": guard.limits.window_secs,
                    }),
                ))
                .await
                .map_err(DownloadError::Ops)?;
            } else {
                tracing::debug!(package = %row.id, peer = %peer.key, reason, source, "onboarding download refused");
            }
            tx.commit().await?;
            return Err(err);
        }
        let archive = tx
            .package_archive(&row.id)
            .await?
            .ok_or_else(|| DownloadError::Used(row.id.clone(), row.state.clone()))?;
        row.state = PackageState::Delivered.to_string();
        row.delivered_at = Some(wall);
        row.updated_at = wall;
        if !tx.update_package(&row, &state, true).await? {
            // Someone else used it in the meantime.
            return Err(DownloadError::Used(row.id.clone(), "delivered".into()));
        }
        tx.record(self.event(
            "onboarding.deliver",
            "onboarding_package",
            &row.id,
            json!({"tenant": row.tenant, "source": source, "delivered_at": wall}),
        ))
        .await
        .map_err(DownloadError::Ops)?;
        tx.commit().await?;
        let file_name = format!("{}-{}-{}.tar.gz", row.tenant, row.component, row.site);
        Ok(Download {
            package: view(row),
            archive,
            file_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(key: &str) -> Peer {
        Peer {
            key: key.to_string(),
            http: true,
        }
    }

    const LIMITS: DownloadLimits = DownloadLimits {
        window_secs: 60,
        peer_refusals: 3,
    };

    #[test]
    fn a_peer_is_its_address_an_ipv6_one_by_its_64() {
        let v6: std::net::SocketAddr = "[2001:db8:1:2:3:4:5:6]:443".parse().unwrap();
        let mapped: std::net::SocketAddr = "[::ffff:10.0.0.7]:443".parse().unwrap();
        assert_eq!(
            peer_of(&Actor::http_peer(Some(v6))),
            http("2001:db8:1:2::/64")
        );
        assert_eq!(peer_of(&Actor::http_peer(Some(mapped))), http("10.0.0.7"));
        assert_eq!(peer_of(&Actor::http_peer(None)), http("unknown-peer"));
        let cli = peer_of(&Actor::operator("cli:root"));
        assert_eq!((cli.key.as_str(), cli.http), ("cli:root", false));
    }

    #[test]
    fn a_window_is_recorded_once_and_summarised_when_it_closes() {
        let mut w = Windows::default();
        let p = http("192.0.2.1");
        let pkg = || Bucket::Package("pkg_x".into());
        assert_eq!(
            w.refused(pkg(), "wrong token", &p, "http:a", 100),
            Some(pkg())
        );
        assert_eq!(w.refused(pkg(), "already used", &p, "http:b", 130), None);
        w.close(159, LIMITS, false);
        assert!(w.pending.is_empty(), "still open at 159");
        w.close(160, LIMITS, false);
        assert_eq!(w.pending.len(), 1);
        let e = &w.pending[0];
        assert_eq!(
            (e.actor.as_str(), e.action.as_str(), e.object_key.as_str()),
            ("http:a", "onboarding.download_refusals", "pkg_x")
        );
        assert_eq!(e.summary["refusals"], 2);
        assert_eq!(
            e.summary["reasons"],
            json!({"wrong token": 1, "already used": 1})
        );
        assert_eq!(
            (e.summary["from"].as_i64(), e.summary["to"].as_i64()),
            (Some(100), Some(130))
        );
        // The next refusal opens a new window; one alone needs no summary.
        assert_eq!(
            w.refused(pkg(), "wrong token", &p, "http:a", 161),
            Some(pkg())
        );
        w.close(0, LIMITS, true);
        assert_eq!(w.pending.len(), 1, "one refusal: its own event says it all");
    }

    #[test]
    fn a_peer_is_throttled_after_its_limit_until_its_window_ends() {
        let mut w = Windows::default();
        let p = http("192.0.2.1");
        let cli = Peer {
            key: "cli:root".into(),
            http: false,
        };
        for at in [100, 101, 102] {
            assert_eq!(w.throttled(&p, at, LIMITS), None);
            w.refused(
                Bucket::Peer(p.key.clone()),
                "unknown package",
                &p,
                "http:a",
                at,
            );
            w.refused(
                Bucket::Peer(cli.key.clone()),
                "unknown package",
                &cli,
                "cli",
                at,
            );
        }
        assert_eq!(w.throttled(&p, 102, LIMITS), Some(58));
        assert_eq!(w.throttled(&p, 159, LIMITS), Some(1));
        assert_eq!(
            w.throttled(&cli, 110, LIMITS),
            None,
            "the command line is not throttled"
        );
        assert_eq!(w.throttled(&p, 160, LIMITS), None, "the window ended");
        w.close(160, LIMITS, false);
        let throttled: Vec<_> = w
            .pending
            .iter()
            .filter(|e| e.action == "onboarding.download_throttled")
            .collect();
        assert_eq!(throttled.len(), 1);
        assert_eq!(throttled[0].summary["throttled"], 2);
        assert_eq!(throttled[0].summary["refusals"], 3);
        assert_eq!(
            w.throttled(&p, 161, LIMITS),
            None,
            "a new window starts afresh"
        );
    }

    #[test]
    fn peers_beyond_the_cap_share_one_bucket() {
        let mut w = Windows::default();
        let mut opened = 0;
        for i in 0..MAX_PEERS + 20 {
            let p = http(&format!("peer-{i}"));
            if w.refused(
                Bucket::Peer(p.key.clone()),
                "malformed token",
                &p,
                "http:x",
                100,
            )
            .is_some()
            {
                opened += 1;
            }
        }
        assert_eq!(opened, MAX_PEERS + 1, "the cap, plus one for the rest");
        assert_eq!(w.peers.len(), MAX_PEERS, "throttle counters bounded too");
        let rest = &w.refusals[&Bucket::Peer(OTHER_PEERS.into())];
        assert_eq!(rest.refusals, 20);
        assert!(rest.more_peers && rest.peers.len() == NAMED_PEERS);
    }
}
