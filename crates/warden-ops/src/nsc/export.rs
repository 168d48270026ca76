//! `warden export`: Warden's operator, accounts, users and seeds written out as an
//! nsc data store plus keystore (`--format nsc`), or as one creds file per user
//! (`--format flat`), each with a `manifest.json` describing the hierarchy.
//!
//! The export is a pure function of one consistent read of the store
//! ([`Snapshot`]): the JWTs are the ones Warden stores, byte for byte, and every
//! list is sorted, so exporting an unchanged store twice gives identical files.
//! The files are planned completely before the first one is written.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use nats_jwt::{Operator, Seed, decode, format_user_creds};
use serde::{Deserialize, Serialize};
use warden_core::UserSpec;
use warden_store::{AccountRow, OperatorRow, UserRow};
use zeroize::Zeroizing;

use super::{NscError, Result};
use crate::{OpsError, Scope, Warden, from_json};

/// Name of the manifest written at the top of every export.
pub const MANIFEST: &str = "manifest.json";
/// Marks a manifest as Warden's (so a re-export may rewrite the directory).
pub const GENERATOR: &str = "warden";
/// nsc's keystore `.gitignore` (nsc writes it unless `NSC_NO_GIT_IGNORE` is set).
pub const KEYSTORE_GITIGNORE: &str =
    "# ignore all nk files \n**/*.nk\n# ignore all creds files\n**/*.creds\n";

/// Mode of every exported file: nsc writes store files, seeds and creds owner-only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every exported directory.
pub const DIR_MODE: u32 = 0o700;

/// The layout of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// nsc data store (`stores/<operator>/…`) and keystore (`keys/…`).
    Nsc,
    /// One creds file per user: `<account>/<user>.creds`.
    Flat,
}

impl ExportFormat {
    /// Every layout, in the order help lists them.
    pub const ALL: [ExportFormat; 2] = [ExportFormat::Nsc, ExportFormat::Flat];

    /// The layout's name (`nsc`, `flat`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Nsc => "nsc",
            ExportFormat::Flat => "flat",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown export format {s:?} (nsc or flat)"))
    }
}

/// A key and, when Warden holds it, its seed.
pub(crate) struct KeySnap {
    pub(crate) public_key: String,
    pub(crate) seed: Option<Seed>,
}

pub(crate) struct UserSnap {
    pub(crate) row: UserRow,
    pub(crate) spec: UserSpec,
    pub(crate) seed: Option<Seed>,
}

pub(crate) struct AccountSnap {
    pub(crate) row: AccountRow,
    pub(crate) system: bool,
    pub(crate) seed: Option<Seed>,
    pub(crate) signing_keys: Vec<KeySnap>,
    pub(crate) users: Vec<UserSnap>,
}

/// Everything an export writes, read in one store transaction.
pub struct Snapshot {
    pub(crate) operator: OperatorRow,
    pub(crate) operator_seed: Option<Seed>,
    pub(crate) operator_signing_keys: Vec<KeySnap>,
    pub(crate) accounts: Vec<AccountSnap>,
}

/// What a planned file holds (also its `kind` in the manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// The operator directory's `.nsc` marker.
    NscMarker,
    /// Operator JWT.
    OperatorJwt,
    /// Account JWT.
    AccountJwt,
    /// User JWT.
    UserJwt,
    /// An nkey seed (`.nk`).
    Seed,
    /// A user creds file.
    Creds,
    /// The keystore's `.gitignore`.
    Gitignore,
    /// `manifest.json`.
    Manifest,
}

/// One file of the manifest's `files` list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path relative to the export directory, `/`-separated.
    pub path: String,
    /// What it holds.
    pub kind: FileKind,
    /// Unix mode, octal text (`0600`).
    pub mode: String,
}

/// A key in the manifest: its public key and the file holding its seed, if exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestKey {
    /// Public key.
    pub public_key: String,
    /// Seed file (`keys/keys/…nk`), when Warden holds the seed and the format has seeds.
    pub seed: Option<String>,
}

/// A user in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestUser {
    /// Name.
    pub name: String,
    /// Public key (`U…`).
    pub public_key: String,
    /// Key that signed its JWT (the account or one of its signing keys).
    pub issuer: String,
    /// JWT file (nsc format).
    pub jwt: Option<String>,
    /// Creds file, when Warden holds the seed.
    pub creds: Option<String>,
    /// Seed file (nsc format), when Warden holds the seed.
    pub seed: Option<String>,
    /// Revoked at (unix seconds): the user's key is in the account's revocations.
    pub revoked_at: Option<i64>,
    /// Publish/subscribe/response permissions (wire names).
    pub permissions: nats_jwt::Permissions,
    /// Max subscriptions (-1 unlimited).
    pub subs: i64,
    /// Max payload in bytes (-1 unlimited).
    pub payload: i64,
}

/// An account in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestAccount {
    /// Name.
    pub name: String,
    /// Identity key and its seed file.
    pub key: ManifestKey,
    /// Whether this is the operator's system account.
    pub system: bool,
    /// JWT file (nsc format).
    pub jwt: Option<String>,
    /// Account signing keys.
    pub signing_keys: Vec<ManifestKey>,
    /// Users, by name.
    pub users: Vec<ManifestUser>,
}

/// The operator in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestOperator {
    /// Name.
    pub name: String,
    /// Identity key and its seed file.
    pub key: ManifestKey,
    /// JWT file (nsc format).
    pub jwt: Option<String>,
    /// System account public key.
    pub system_account: String,
    /// Operator signing keys (the one Warden signs accounts with first).
    pub signing_keys: Vec<ManifestKey>,
}

/// `manifest.json`: the hierarchy, keys, files and permissions of an export.
/// Deterministic: sorted, no timestamps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `warden`.
    pub generator: String,
    /// Manifest format version.
    pub version: u32,
    /// Layout.
    pub format: ExportFormat,
    /// nsc data store of the operator (nsc format): `stores/<operator>`.
    pub store: Option<String>,
    /// nsc keystore (nsc format): `keys`.
    pub keystore: Option<String>,
    /// The operator.
    pub operator: ManifestOperator,
    /// Accounts, by name.
    pub accounts: Vec<ManifestAccount>,
    /// Every file written (the manifest excepted), by path.
    pub files: Vec<ManifestFile>,
}

/// What `warden export` did.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// Layout.
    pub format: ExportFormat,
    /// Export directory.
    pub out: PathBuf,
    /// Operator name.
    pub operator: String,
    /// Accounts exported.
    pub accounts: usize,
    /// Users exported.
    pub users: usize,
    /// Seeds (`.nk`) written.
    pub seeds: usize,
    /// Creds files written.
    pub creds: usize,
    /// Files written, the manifest included.
    pub files: usize,
    /// Files of a previous export removed because they are no longer part of it.
    pub removed: usize,
    /// Whether a previous Warden export was rewritten.
    pub replaced_previous: bool,
    /// Users whose creds could not be written (no seed in Warden): `account/user`.
    pub users_without_seed: Vec<String>,
}

/// A file to write.
pub struct Planned {
    pub(crate) path: String,
    pub(crate) kind: FileKind,
    pub(crate) contents: Zeroizing<Vec<u8>>,
}

fn key_path(public_key: &str) -> String {
    // nsc: keys/<first char>/<second and third chars>/<public key>.nk
    let kind = &public_key[..1];
    let xy = &public_key[1..3];
    format!("keys/keys/{kind}/{xy}/{public_key}.nk")
}

/// A name used as a path component must be one (no separators, not `.`/`..`).
fn component(name: &str) -> Result<&str> {
    let p = Path::new(name);
    let ok = !name.is_empty()
        && p.components().count() == 1
        && matches!(p.components().next(), Some(Component::Normal(_)));
    if ok && !name.contains('/') && !name.contains('\\') {
        Ok(name)
    } else {
        Err(NscError::Invalid(format!(
            "name {name:?} cannot be used as a file name"
        )))
    }
}

impl Warden {
    /// Reads everything an export needs in one store transaction (a consistent view).
    /// The first step of an export: everything it writes, read in one store transaction
    /// (public so that `warden bench export` can time each step). Needs `creds`: an
    /// export holds every seed.
    pub async fn export_snapshot(&self) -> Result<Snapshot> {
        self.need(Scope::Creds, "an export (it holds every seed)")?;
        let mut tx = self.store.begin().await.map_err(OpsError::from)?;
        let operator = tx
            .operator()
            .await
            .map_err(OpsError::from)?
            .ok_or(OpsError::NotInitialised)?;
        let op_claims = decode::<Operator>(&operator.jwt).map_err(OpsError::from)?;
        let operator_seed = seed_of(&mut tx, &operator.public_key).await?;
        let mut operator_signing_keys = Vec::new();
        // Warden's signing key first, then the others as the operator JWT lists them.
        let mut op_keys: Vec<String> = vec![operator.signing_key.clone()];
        for k in &op_claims.nats.signing_keys {
            if !op_keys.iter().any(|x| x == k.as_str()) {
                op_keys.push(k.to_string());
            }
        }
        op_keys.retain(|k| k != &operator.public_key);
        for k in op_keys {
            let seed = seed_of(&mut tx, &k).await?;
            operator_signing_keys.push(KeySnap {
                public_key: k,
                seed,
            });
        }
        let mut rows = tx
            .accounts(&operator.public_key)
            .await
            .map_err(OpsError::from)?;
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let mut accounts = Vec::with_capacity(rows.len());
        for row in rows {
            let claims = decode::<nats_jwt::Account>(&row.jwt).map_err(OpsError::from)?;
            let seed = seed_of(&mut tx, &row.public_key).await?;
            let mut keys: Vec<String> = claims
                .nats
                .signing_keys
                .iter()
                .map(|k| k.key().to_string())
                .collect();
            keys.sort();
            keys.dedup();
            let mut signing_keys = Vec::new();
            for k in keys {
                let seed = seed_of(&mut tx, &k).await?;
                signing_keys.push(KeySnap {
                    public_key: k,
                    seed,
                });
            }
            let mut user_rows = tx.users(&row.public_key).await.map_err(OpsError::from)?;
            user_rows.sort_by(|a, b| a.name.cmp(&b.name));
            let mut users = Vec::with_capacity(user_rows.len());
            for u in user_rows {
                let seed = seed_of(&mut tx, &u.public_key).await?;
                let spec: UserSpec = from_json(&u.spec)?;
                users.push(UserSnap { row: u, spec, seed });
            }
            accounts.push(AccountSnap {
                system: row.public_key == operator.system_account,
                row,
                seed,
                signing_keys,
                users,
            });
        }
        tx.rollback().await.map_err(OpsError::from)?;
        Ok(Snapshot {
            operator,
            operator_seed,
            operator_signing_keys,
            accounts,
        })
    }

    /// Exports the store into `out` (see the module docs). `out` must be missing,
    /// empty, or a previous Warden export (which is then rewritten in place).
    pub async fn export(&self, format: ExportFormat, out: &Path) -> Result<ExportReport> {
        self.export_with_progress(format, out, &crate::progress::Quiet)
            .await
    }

    /// [`Warden::export`], reporting each file written to `progress`.
    pub async fn export_with_progress(
        &self,
        format: ExportFormat,
        out: &Path,
        progress: &dyn crate::progress::Progress,
    ) -> Result<ExportReport> {
        self.need(Scope::Creds, "an export (it holds every seed)")?;
        let previous = check_target(out)?;
        let snap = self.trusted().export_snapshot().await?;
        let (files, manifest) = plan(&snap, format)?;
        progress.start(files.len() as u64, "export");
        let report = write_export(out, format, &snap, files, &manifest, previous, progress);
        progress.finish();
        report
    }
}

async fn seed_of(tx: &mut warden_store::Tx<'_>, public_key: &str) -> Result<Option<Seed>> {
    if !tx.has_seed(public_key).await.map_err(OpsError::from)? {
        return Ok(None);
    }
    let text = tx.seed(public_key).await.map_err(OpsError::from)?;
    Ok(Some(Seed::parse(&text).map_err(OpsError::from)?))
}

struct Files {
    nsc: bool,
    list: Vec<Planned>,
    seeds: BTreeSet<String>,
}

impl Files {
    fn add(&mut self, path: String, kind: FileKind, contents: Vec<u8>) -> String {
        self.list.push(Planned {
            path: path.clone(),
            kind,
            contents: Zeroizing::new(contents),
        });
        path
    }

    /// The seed's `.nk` file, in the nsc format when Warden holds the seed. A key
    /// used in two roles (say, one account's signing key is another's identity)
    /// is written once.
    fn seed(&mut self, key: &str, seed: &Option<Seed>) -> Option<String> {
        match seed {
            Some(s) if self.nsc => {
                let path = key_path(key);
                if !self.seeds.insert(path.clone()) {
                    return Some(path);
                }
                Some(self.add(path, FileKind::Seed, s.expose().as_bytes().to_vec()))
            }
            _ => None,
        }
    }
}

/// Plans every file of an export and its manifest. Pure.
/// The second step of an export: the files to write and the manifest.
pub fn plan(snap: &Snapshot, format: ExportFormat) -> Result<(Vec<Planned>, Manifest)> {
    let nsc = format == ExportFormat::Nsc;
    let op = &snap.operator;
    let op_name = component(&op.name)?;
    let store = format!("stores/{op_name}");
    let mut files = Files {
        nsc,
        list: Vec::new(),
        seeds: BTreeSet::new(),
    };
    let operator_jwt = if nsc {
        // nsc writes the marker as compact JSON with keys in this order.
        let name = serde_json::Value::String(op.name.clone());
        let text = format!(
            "{{\"managed\":false,\"name\":{name},\"kind\":\"operator\",\"version\":\"1\"}}"
        );
        files.add(
            format!("{store}/.nsc"),
            FileKind::NscMarker,
            text.into_bytes(),
        );
        files.add(
            "keys/.gitignore".into(),
            FileKind::Gitignore,
            KEYSTORE_GITIGNORE.as_bytes().to_vec(),
        );
        Some(files.add(
            format!("{store}/{op_name}.jwt"),
            FileKind::OperatorJwt,
            op.jwt.as_bytes().to_vec(),
        ))
    } else {
        None
    };
    let op_key = ManifestKey {
        public_key: op.public_key.clone(),
        seed: files.seed(&op.public_key, &snap.operator_seed),
    };
    let op_signing: Vec<ManifestKey> = snap
        .operator_signing_keys
        .iter()
        .map(|k| ManifestKey {
            public_key: k.public_key.clone(),
            seed: files.seed(&k.public_key, &k.seed),
        })
        .collect();

    let mut accounts = Vec::with_capacity(snap.accounts.len());
    for a in &snap.accounts {
        let acc_name = component(&a.row.name)?;
        let acc_dir = format!("{store}/accounts/{acc_name}");
        let jwt = nsc.then(|| {
            files.add(
                format!("{acc_dir}/{acc_name}.jwt"),
                FileKind::AccountJwt,
                a.row.jwt.as_bytes().to_vec(),
            )
        });
        let key = ManifestKey {
            public_key: a.row.public_key.clone(),
            seed: files.seed(&a.row.public_key, &a.seed),
        };
        let signing_keys: Vec<ManifestKey> = a
            .signing_keys
            .iter()
            .map(|k| ManifestKey {
                public_key: k.public_key.clone(),
                seed: files.seed(&k.public_key, &k.seed),
            })
            .collect();
        let mut users = Vec::with_capacity(a.users.len());
        for u in &a.users {
            let user_name = component(&u.row.name)?;
            let jwt = nsc.then(|| {
                files.add(
                    format!("{acc_dir}/users/{user_name}.jwt"),
                    FileKind::UserJwt,
                    u.row.jwt.as_bytes().to_vec(),
                )
            });
            let seed = files.seed(&u.row.public_key, &u.seed);
            // nsc keeps a revoked user's JWT and creds (the revocation lives in the
            // account JWT); the flat export is for tools that connect, so it leaves
            // revoked users out.
            let creds = match &u.seed {
                Some(s) if nsc || u.row.revoked_at.is_none() => {
                    let text = format_user_creds(&u.row.jwt, s)
                        .map_err(|e| OpsError::Jwt(format!("user {}: {e}", u.row.name)))?;
                    let path = if nsc {
                        format!("keys/creds/{op_name}/{acc_name}/{user_name}.creds")
                    } else {
                        format!("{acc_name}/{user_name}.creds")
                    };
                    Some(files.add(path, FileKind::Creds, text.into_bytes()))
                }
                _ => None,
            };
            let issuer = nats_jwt::decode::<nats_jwt::User>(&u.row.jwt)
                .map(|c| c.iss)
                .map_err(OpsError::from)?;
            users.push(ManifestUser {
                name: u.row.name.clone(),
                public_key: u.row.public_key.clone(),
                issuer,
                jwt,
                creds,
                seed,
                revoked_at: u.row.revoked_at,
                permissions: u.spec.permissions.clone(),
                subs: u.spec.subs,
                payload: u.spec.payload,
            });
        }
        accounts.push(ManifestAccount {
            name: a.row.name.clone(),
            key,
            system: a.system,
            jwt,
            signing_keys,
            users,
        });
    }
    let mut files = files.list;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut seen = BTreeSet::new();
    for f in &files {
        if !seen.insert(f.path.as_str()) {
            return Err(NscError::Invalid(format!(
                "two exported files would share the path {} (names differing only in a way the file system does not keep?)",
                f.path
            )));
        }
    }
    let manifest = Manifest {
        generator: GENERATOR.into(),
        version: 1,
        format,
        store: nsc.then(|| store.clone()),
        keystore: nsc.then(|| "keys".to_string()),
        operator: ManifestOperator {
            name: op.name.clone(),
            key: op_key,
            jwt: operator_jwt,
            system_account: op.system_account.clone(),
            signing_keys: op_signing,
        },
        accounts,
        files: files
            .iter()
            .map(|f| ManifestFile {
                path: f.path.clone(),
                kind: f.kind,
                mode: format!("{FILE_MODE:04o}"),
            })
            .collect(),
    };
    Ok((files, manifest))
}

/// Checks the export directory: missing or empty is fine; a previous Warden export
/// (its manifest present and readable) is returned so it can be rewritten; anything
/// else is refused.
/// Checks an export's target directory: missing, empty, or a previous Warden export (whose
/// manifest is returned).
pub fn check_target(out: &Path) -> Result<Option<Manifest>> {
    if !out.exists() {
        return Ok(None);
    }
    if !out.is_dir() {
        return Err(NscError::Invalid(format!(
            "{} exists and is not a directory",
            out.display()
        )));
    }
    let empty = std::fs::read_dir(out)
        .map_err(|e| NscError::io(out, e))?
        .next()
        .is_none();
    if empty {
        return Ok(None);
    }
    let manifest_path = out.join(MANIFEST);
    let refuse = || {
        NscError::Invalid(format!(
            "{} is not empty and is not a previous Warden export (no readable {MANIFEST} from Warden); choose an empty or new directory",
            out.display()
        ))
    };
    let text = std::fs::read_to_string(&manifest_path).map_err(|_| refuse())?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|_| refuse())?;
    if manifest.generator != GENERATOR {
        return Err(refuse());
    }
    Ok(Some(manifest))
}

fn safe_relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn make_dirs(root: &Path, rel: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mut dir = root.to_path_buf();
    for c in rel.components() {
        dir.push(c);
        if dir.is_dir() {
            continue;
        }
        std::fs::DirBuilder::new()
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(|e| NscError::io(&dir, e))?;
        // The umask may have narrowed the mode; make it exactly 0700.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(|e| NscError::io(&dir, e))?;
    }
    Ok(())
}

/// Writes an exported file: owner-only, through [`crate::secret_file::write`] (a new
/// file renamed into place, never through a symlink), without an fsync per file: an
/// export of 10,000 users is 30,000 files, and a crash mid-export is repaired by
/// exporting again.
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    crate::secret_file::write(path, contents, false)
}

/// The last step of an export: the planned files written to `out`.
pub fn write_export(
    out: &Path,
    format: ExportFormat,
    snap: &Snapshot,
    files: Vec<Planned>,
    manifest: &Manifest,
    previous: Option<Manifest>,
    bar: &dyn crate::progress::Progress,
) -> Result<ExportReport> {
    use std::os::unix::fs::PermissionsExt;
    if !out.exists() {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| NscError::io(parent, e))?;
        }
        std::fs::create_dir(out).map_err(|e| NscError::io(out, e))?;
    }
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(|e| NscError::io(out, e))?;
    let mut text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| NscError::Invalid(format!("cannot serialise the manifest: {e}")))?;
    text.push(b'\n');
    let mut written = BTreeSet::new();
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let (mut seeds, mut creds) = (0, 0);
    for f in &files {
        let rel = Path::new(&f.path);
        if let Some(parent) = rel.parent()
            && !made.contains(parent)
        {
            make_dirs(out, parent)?;
            made.insert(parent.to_path_buf());
        }
        let path = out.join(rel);
        write_owner_only(&path, &f.contents).map_err(|e| NscError::io(&path, e))?;
        written.insert(f.path.clone());
        bar.advance(1);
        match f.kind {
            FileKind::Seed => seeds += 1,
            FileKind::Creds => creds += 1,
            _ => {}
        }
    }
    let manifest_path = out.join(MANIFEST);
    write_owner_only(&manifest_path, &text).map_err(|e| NscError::io(&manifest_path, e))?;

    // Files of the previous export that are no longer part of this one.
    let mut removed = 0;
    let replaced_previous = previous.is_some();
    if let Some(prev) = previous {
        let mut dirs = BTreeSet::new();
        for f in prev.files {
            if written.contains(&f.path) || !safe_relative(&f.path) {
                continue;
            }
            let path = out.join(&f.path);
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(NscError::io(&path, e)),
            }
            let mut p = Path::new(&f.path).parent();
            while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
                dirs.insert(d.to_path_buf());
                p = d.parent();
            }
        }
        // Deepest first; a directory still holding something stays.
        let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(out.join(d));
        }
    }
    let users_without_seed = snap
        .accounts
        .iter()
        .flat_map(|a| {
            a.users
                .iter()
                .filter(|u| u.seed.is_none())
                .map(move |u| format!("{}/{}", a.row.name, u.row.name))
        })
        .collect();
    Ok(ExportReport {
        format,
        out: out.to_path_buf(),
        operator: snap.operator.name.clone(),
        accounts: snap.accounts.len(),
        users: snap.accounts.iter().map(|a| a.users.len()).sum(),
        seeds,
        creds,
        files: files.len() + 1,
        removed,
        replaced_previous,
        users_without_seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_go_where_nsc_puts_them() {
        assert_eq!(
            key_path("UDU5HHAMWRNSAGKAPDKMESWC2ZQADUCJYHJ5M6X5J6OCVNIOWXEYSIXH"),
            "keys/keys/U/DU/UDU5HHAMWRNSAGKAPDKMESWC2ZQADUCJYHJ5M6X5J6OCVNIOWXEYSIXH.nk"
        );
    }

    #[test]
    fn names_that_are_not_one_path_component_are_refused() {
        for bad in ["", ".", "..", "a/b", "/abs", "a\\b"] {
            assert!(component(bad).is_err(), "{bad:?}");
        }
        assert_eq!(component("person-service").unwrap(), "person-service");
    }

    #[test]
    fn only_plain_relative_paths_of_an_old_manifest_are_removed() {
        assert!(safe_relative("stores/OP/accounts/A/A.jwt"));
        for bad in ["", "../x", "/etc/passwd", "a/../../b", "./a"] {
            assert!(!safe_relative(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_directory_with_foreign_files_is_refused_and_a_warden_export_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_target(&dir.path().join("new")).unwrap().is_none());
        assert!(check_target(dir.path()).unwrap().is_none(), "empty is fine");
        std::fs::write(dir.path().join(MANIFEST), r#"{"generator":"someone"}"#).unwrap();
        assert!(matches!(
            check_target(dir.path()),
            Err(NscError::Invalid(_))
        ));
        let file = dir.path().join(MANIFEST);
        assert!(matches!(check_target(&file), Err(NscError::Invalid(_))));
    }
}
