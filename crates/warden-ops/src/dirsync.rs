//! `warden dir sync` and `warden dir export`: the I/O around
//! [`warden_core::dirsync`]: reading LDIF and Microsoft Graph files, searching
//! a live LDAP directory (the `ldap3` crate), reading mapping files, and
//! printing plans and exports.
//!
//! Plans are made against Warden's own copy of the source and applied through
//! the governance store ([`Warden::apply_sync_plan`]); exports are made from the
//! proposals confirmed in Warden.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use serde::Serialize;
use serde_json::Value as Json;
use warden_core::directory::{DirectorySnapshot, SyncPlan, SyncReport};
use warden_core::dirsync::{self, DirectoryChange, Mapped, Mapping, MappingFile, Provider};

use crate::{OpsError, Warden};
fn usage(msg: impl Into<String>) -> OpsError {
    OpsError::Invalid(msg.into())
}

/// Result of a directory-sync step.
pub type Result<T, E = OpsError> = std::result::Result<T, E>;

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

fn read_json(path: &Path) -> Result<Json> {
    serde_json::from_str(&read_text(path)?)
        .map_err(|e| usage(format!("{} is not JSON: {e}", path.display())))
}

/// Reads a mapping file (TOML when it ends in `.toml`, JSON when it ends in
/// `.json` or starts with `{`, YAML otherwise) and applies it to `provider`'s
/// default.
pub fn load_mapping(provider: Provider, path: Option<&Path>) -> Result<Mapping> {
    let Some(path) = path else {
        return Ok(Mapping::default_for(provider));
    };
    let text = read_text(path)?;
    let ext = |x: &str| path.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    let bad =
        |kind: &str, e: &dyn std::fmt::Display| usage(format!("{} ({kind}): {e}", path.display()));
    let file: MappingFile = if ext("toml") {
        toml_edit::de::from_str(&text).map_err(|e| bad("TOML", &e))?
    } else if ext("json") || text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| bad("JSON", &e))?
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| bad("YAML", &e))?
    };
    Mapping::with_overrides(provider, &file).map_err(|e| usage(format!("{}: {e}", path.display())))
}

async fn load_snapshot(path: Option<&Path>, source: &str, w: &Warden) -> Result<DirectorySnapshot> {
    match path {
        Some(p) => {
            let s: DirectorySnapshot = serde_json::from_str(&read_text(p)?)
                .map_err(|e| usage(format!("{} is not a directory snapshot: {e}", p.display())))?;
            if s.source != source {
                return Err(usage(format!(
                    "{} holds source {:?}, not {source:?}",
                    p.display(),
                    s.source
                )));
            }
            Ok(s)
        }
        None => w.directory_snapshot(source).await,
    }
}

/// Connection details for a live LDAP read.
#[derive(Debug, Clone)]
pub struct LdapSource {
    /// `ldap://host:port`.
    pub url: String,
    /// Search base.
    pub base: String,
    /// Bind DN and password (anonymous when `None`).
    pub bind: Option<(String, String)>,
    /// Connect / operation timeout.
    pub timeout: Duration,
    /// TLS: `ldaps://` URLs always; `ldap://` with StartTLS when set.
    pub starttls: bool,
    /// CA certificates to trust (PEM file); the system's roots when `None`.
    pub ca: Option<PathBuf>,
}

impl LdapSource {
    /// A plain `ldap://`, `ldaps://` or `ldapi://` source with no StartTLS and the system's roots.
    pub fn new(url: &str, base: &str, bind: Option<(String, String)>, timeout: Duration) -> Self {
        LdapSource {
            url: url.to_string(),
            base: base.to_string(),
            bind,
            timeout,
            starttls: false,
            ca: None,
        }
    }

    fn uses_tls(&self) -> bool {
        self.url.starts_with("ldaps://") || self.starttls
    }
}

/// The TLS client configuration for an LDAP connection: the CA certificates of `ca` (PEM),
/// or the system's roots; ring as the crypto provider; the server's name always verified.
fn tls_config(ca: Option<&std::path::Path>) -> Result<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| usage(format!("--ldap-ca {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(usage(format!(
                    "--ldap-ca {}: no PEM certificate in it",
                    path.display()
                )));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| usage(format!("--ldap-ca {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for c in native.certs {
                // Unusable system certificates are skipped, as browsers do.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(usage(
                    "no trusted CA certificates on this system: give the directory's CA with --ldap-ca FILE",
                ));
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OpsError::Jwt(format!("TLS protocol versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

/// Searches `src` for the users and groups `mapping` knows (paged, so AD's
/// 1000-entry limit does not cut the result short) and maps them.
pub async fn read_ldap(src: &LdapSource, source: &str, mapping: &Mapping) -> Result<Mapped> {
    let mut settings = LdapConnSettings::new().set_conn_timeout(src.timeout);
    if src.uses_tls() {
        settings = settings
            .set_starttls(src.starttls && !src.url.starts_with("ldaps://"))
            .set_config(tls_config(src.ca.as_deref())?);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &src.url)
        .await
        .map_err(|e| OpsError::unavailable(format!("cannot connect to {}: {e}", src.url)))?;
    let driver = tokio::spawn(async move { conn.drive().await });
    if let Some((dn, pw)) = &src.bind {
        ldap.with_timeout(src.timeout);
        ldap.simple_bind(dn, pw)
            .await
            .and_then(|r| r.success())
            .map_err(|e| {
                OpsError::unavailable(format!("bind as {dn} to {} failed: {e}", src.url))
            })?;
    }
    let classes: Vec<String> = mapping
        .user_classes
        .iter()
        .chain(&mapping.group_classes)
        .map(|c| format!("(objectClass={})", ldap_escape(c)))
        .collect();
    let filter = format!("(|{})", classes.join(""));
    // ldap3's timeout covers the next operation only: set it again for the search.
    ldap.with_timeout(src.timeout);
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(500)),
    ];
    let mut search = ldap
        .streaming_search_with(adapters, &src.base, Scope::Subtree, &filter, vec!["*"])
        .await
        .map_err(|e| OpsError::unavailable(format!("search of {} failed: {e}", src.base)))?;
    let mut entries = Vec::new();
    while let Some(raw) = search
        .next()
        .await
        .map_err(|e| OpsError::unavailable(format!("search of {} failed: {e}", src.base)))?
    {
        // SearchEntry::construct panics on a malformed entry; a broken server must not crash us.
        let entry =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(raw)))
                .map_err(|_| {
                    OpsError::unavailable(format!(
                        "{} sent an entry that cannot be decoded",
                        src.url
                    ))
                })?;
        let mut attrs: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, values) in entry.attrs {
            attrs.extend(values.into_iter().map(|v| (name.clone(), v.into_bytes())));
        }
        for (name, values) in entry.bin_attrs {
            attrs.extend(values.into_iter().map(|v| (name.clone(), v)));
        }
        entries.push((entry.dn, attrs));
    }
    search
        .finish()
        .await
        .success()
        .map_err(|e| OpsError::unavailable(format!("search of {} failed: {e}", src.base)))?;
    let _ = ldap.unbind().await;
    driver.abort();
    Ok(dirsync::from_ldap_entries(source, mapping, &entries))
}

/// RFC 4515 escaping of a filter value.
fn ldap_escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// What `dir sync` prints with `--json`.
#[derive(Debug, Serialize)]
pub struct SyncOutcome {
    /// The plan.
    pub plan: SyncPlan,
    /// The counts (`dry_run` true: nothing was written).
    pub report: SyncReport,
}

/// The counts of a plan, as the report of a dry run.
pub fn dry_run_report(plan: &SyncPlan) -> SyncReport {
    SyncReport {
        source: plan.source.clone(),
        users_created: plan.create_users.len(),
        users_updated: plan.update_users.len(),
        users_deleted: plan.delete_users.len(),
        roles_created: plan.create_roles.len(),
        roles_updated: plan.update_roles.len(),
        roles_deleted: plan.delete_roles.len(),
        skipped: plan.skipped.clone(),
        unchanged: plan.unchanged,
        dry_run: true,
    }
}

/// Where a directory sync reads from, and how (the flags of `warden dir sync`).
#[derive(Clone, Debug, Default)]
pub struct SyncOptions {
    /// An LDIF file: a full export, or change records with `delta`.
    pub ldif: Option<PathBuf>,
    /// A live LDAP directory URL (`ldap://`, `ldaps://`, `ldapi://`).
    pub ldap: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub ldap_starttls: bool,
    /// PEM file of the CA certificate(s) to trust for LDAP over TLS.
    pub ldap_ca: Option<PathBuf>,
    /// Search base for `ldap`.
    pub base: Option<String>,
    /// Bind DN for `ldap` (anonymous when absent).
    pub bind_dn: Option<String>,
    /// File holding the bind password (first line).
    pub password_file: Option<PathBuf>,
    /// Graph `GET /users` pages.
    pub graph_users: Vec<PathBuf>,
    /// Graph `GET /groups` pages.
    pub graph_groups: Vec<PathBuf>,
    /// The input is a delta applied to the current snapshot.
    pub delta: bool,
    /// The source's name in Warden (default: `ad` for LDIF and LDAP, `aad` for Graph).
    pub source: Option<String>,
    /// A mapping file overriding the default field mapping.
    pub mapping: Option<PathBuf>,
    /// Plan against this snapshot JSON instead of what Warden holds for the source.
    pub current: Option<PathBuf>,
    /// LDAP connect and search timeout, in seconds.
    pub timeout: u64,
}

/// Builds the incoming snapshot and the plan for `args`.
pub async fn plan_sync(args: &SyncOptions, w: &Warden) -> Result<(Mapped, SyncPlan)> {
    let provider = if args.graph_users.is_empty() {
        Provider::Ad
    } else {
        Provider::Aad
    };
    let source = args.source.clone().unwrap_or_else(|| provider.to_string());
    if source.trim().is_empty() {
        return Err(usage("--source must not be empty"));
    }
    let mapping = load_mapping(provider, args.mapping.as_deref())?;
    let current = load_snapshot(args.current.as_deref(), &source, w).await?;
    let mapped = if let Some(file) = &args.ldif {
        let text = read_text(file)?;
        let r = if args.delta {
            dirsync::ldif_delta(&current, &mapping, &text)
        } else {
            dirsync::from_ldif(&source, &mapping, &text)
        };
        r.map_err(|e| usage(format!("{}: {e}", file.display())))?
    } else if let Some(url) = &args.ldap {
        let url = url.trim();
        if !(url.starts_with("ldap://")
            || url.starts_with("ldaps://")
            || url.starts_with("ldapi://"))
        {
            return Err(usage(format!(
                "--ldap {url}: use an ldap://, ldaps:// or ldapi:// URL"
            )));
        }
        if args.ldap_starttls && !url.starts_with("ldap://") {
            return Err(usage(format!(
                "--ldap-starttls upgrades an ldap:// connection; {url} is not one"
            )));
        }
        if args.ldap_ca.is_some() && !(url.starts_with("ldaps://") || args.ldap_starttls) {
            return Err(usage(
                "--ldap-ca is for TLS: use an ldaps:// URL or --ldap-starttls".to_string(),
            ));
        }
        let bind = match (&args.bind_dn, &args.password_file) {
            (Some(dn), Some(f)) => {
                let pw = read_text(f)?;
                let pw = pw.lines().next().unwrap_or("").to_string();
                if pw.is_empty() {
                    return Err(usage(format!("{} holds no password", f.display())));
                }
                Some((dn.clone(), pw))
            }
            _ => None,
        };
        let src = LdapSource {
            starttls: args.ldap_starttls,
            ca: args.ldap_ca.clone(),
            ..LdapSource::new(
                url,
                &args.base.clone().unwrap_or_default(),
                bind,
                Duration::from_secs(args.timeout.max(1)),
            )
        };
        read_ldap(&src, &source, &mapping).await?
    } else {
        let users = args
            .graph_users
            .iter()
            .map(|p| read_json(p))
            .collect::<Result<Vec<_>>>()?;
        let groups = args
            .graph_groups
            .iter()
            .map(|p| read_json(p))
            .collect::<Result<Vec<_>>>()?;
        let r = if args.delta {
            dirsync::graph_delta(&current, &mapping, &users, &groups)
        } else {
            dirsync::from_graph(&source, &mapping, &users, &groups)
        };
        r.map_err(|e| usage(e.to_string()))?
    };
    let plan = dirsync::plan_mapped(&current, &mapped);
    Ok((mapped, plan))
}

/// What `warden dir export` renders (the flags of the command, parsed).
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// LDIF modify records (Active Directory) when set, else Microsoft Graph `$batch` bodies.
    pub ldif: bool,
    /// The changes as a JSON list; default: the proposals confirmed in Warden.
    pub changes: Option<PathBuf>,
    /// Only proposals closed at or after this time (unix seconds).
    pub since: i64,
    /// The source's name in Warden (default: `ad` with LDIF, `aad` with Graph).
    pub source: Option<String>,
    /// Use this snapshot JSON instead of what Warden holds for the source.
    pub current: Option<PathBuf>,
    /// A mapping file (TOML, JSON or YAML).
    pub mapping: Option<PathBuf>,
}

/// The rendered changes of a directory export.
#[derive(Clone, Debug, Serialize)]
pub struct DirectoryExport {
    /// `ldif` or `graph`.
    pub format: &'static str,
    /// LDIF text, or the Graph batches as pretty JSON.
    pub body: String,
    /// Changes that could not be rendered, with why.
    pub skipped: Vec<warden_core::directory::SyncSkip>,
}

/// Renders the changes confirmed in Warden (or those of `opts.changes`) in the
/// provider's form.
pub async fn export_changes(opts: &ExportOptions, w: &Warden) -> Result<DirectoryExport> {
    let provider = if opts.ldif {
        Provider::Ad
    } else {
        Provider::Aad
    };
    let mapping = load_mapping(provider, opts.mapping.as_deref())?;
    let source = opts.source.clone().unwrap_or_else(|| provider.to_string());
    let current = load_snapshot(opts.current.as_deref(), &source, w).await?;
    let changes: Vec<DirectoryChange> = match &opts.changes {
        Some(path) => serde_json::from_str(&read_text(path)?)
            .map_err(|e| usage(format!("{}: not a list of changes: {e}", path.display())))?,
        None => {
            let proposals = w.confirmed_proposals().await?;
            dirsync::export::changes_from_proposals(&proposals, &current, opts.since)
        }
    };
    if opts.ldif {
        let r = dirsync::export::to_ldif(&changes, &current, &mapping);
        Ok(DirectoryExport {
            format: "ldif",
            body: r.output,
            skipped: r.skipped,
        })
    } else {
        let r = dirsync::export::to_graph_batches(&changes, &current, &mapping);
        let body = serde_json::to_string_pretty(&r.output)
            .map_err(|e| OpsError::Jwt(format!("Graph batch: {e}")))?
            + "\n";
        Ok(DirectoryExport {
            format: "graph",
            body,
            skipped: r.skipped,
        })
    }
}
