//! `warden import nsc`: adopts an existing nsc operator (data store + keystore)
//! into an EMPTY Warden store, in one transaction.
//!
//! JWTs are stored verbatim (the server keeps seeing exactly what nsc issued);
//! specs are decompiled from their claims (`warden_core::decompile`) so Warden
//! can re-issue them later; seeds found in the keystore are sealed like any other.
//! Everything that cannot be carried (missing seeds, claim fields a spec cannot
//! express, unknown fields, JWTs that do not verify, users signed by keys without
//! seeds) is reported, never dropped silently. Each account's users are read, verified
//! and decompiled on every core; their findings are merged in file order, so the report
//! is the same whichever core finished first.
//!
//! The store is input from elsewhere, so it is read through [`super::confined`]: nothing
//! outside `--store` and `--keys`, no symbolic link followed, no name from the store
//! that is not a single path component, no file larger than 1 MiB. A store that breaks
//! one of these rules is refused whole, before anything is written.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use nats_jwt::{Account, AccountClaims, KeyPair, Operator, User, decode};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::decompile::{decompile_account, decompile_operator, decompile_user};
use warden_core::{AccountName, NameCase, NamingPolicy, OperatorName, UserName};
use warden_store::{AccountRow, NewSeed, OperatorRow, UserRow};

use super::confined::{Entries, Tree, component};
use super::{NscError, Result};
use crate::device::on_all_cores;
use crate::{META_NAMING, OpsError, Record, Scope, TOPIC_ACCOUNT_UPDATE, Warden, now, to_json};

/// Something the import could not carry, and where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NotCarried {
    /// The entity or file concerned (`operator OP`, `account CORE`, `user CORE/alice`, a path).
    pub entity: String,
    /// What was not carried, and what that means.
    pub issue: String,
}

/// One imported account.
#[derive(Clone, Debug, Serialize)]
pub struct ImportedAccount {
    /// Name.
    pub name: String,
    /// Public key.
    pub public_key: String,
    /// Whether it is the system account.
    pub system: bool,
    /// Whether its seed was found.
    pub seed: bool,
    /// Its signing keys, and how many of their seeds were found.
    pub signing_keys: usize,
    /// Signing key seeds found.
    pub signing_key_seeds: usize,
    /// Users imported.
    pub users: usize,
    /// Users imported with their seed.
    pub user_seeds: usize,
    /// Users revoked in the account JWT.
    pub revoked_users: usize,
}

/// What `warden import nsc` did.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// The operator directory read.
    pub store: PathBuf,
    /// The keystore read.
    pub keystore: PathBuf,
    /// Operator name.
    pub operator: String,
    /// Operator public key.
    pub operator_public_key: String,
    /// The key Warden signs accounts with (first operator signing key with a seed,
    /// else the identity key).
    pub signing_key: String,
    /// System account public key.
    pub system_account: String,
    /// Accounts imported, by name.
    pub accounts: Vec<ImportedAccount>,
    /// Users imported in all.
    pub users: usize,
    /// Seeds sealed into the store.
    pub seeds: usize,
    /// The naming policy recorded (`any`: nsc names need not follow Warden's cases).
    pub naming: NamingPolicy,
    /// Everything that could not be carried.
    pub not_carried: Vec<NotCarried>,
}

#[derive(Deserialize)]
struct NscMarker {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
}

/// Whether something (a file, or anything else but a link: [`super::confined`] refuses
/// links when it reads) is at `path`, without following a link there.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The nsc operator directory at `dir` (an operator directory, or a `stores` root holding
/// exactly one), checked. `dir` itself may be a link (the user named it); an entry of a
/// `stores` root that is a link is refused, as every link below `--store` is.
pub fn operator_dir(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(NscError::Invalid(format!(
            "nsc store {} does not exist or is not a directory",
            dir.display()
        )));
    }
    if present(&dir.join(".nsc")) {
        return Ok(dir.to_path_buf());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| NscError::io(dir, e))? {
        let entry = entry.map_err(|e| NscError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| NscError::io(&path, e))?;
        if kind.is_symlink() {
            return Err(NscError::Invalid(format!(
                "{}: is a symbolic link, and import nsc follows no links below --store (it reads nothing outside the directories it is given); point --store at the operator directory itself; nothing was imported",
                path.display()
            )));
        }
        if kind.is_dir() && present(&path.join(".nsc")) {
            found.push(path);
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(NscError::Invalid(format!(
            "{} is not an nsc store: neither it nor a directory inside it holds a .nsc file",
            dir.display()
        ))),
        _ => Err(NscError::Invalid(format!(
            "{} holds {} operators ({}); point --store at one of them",
            dir.display(),
            found.len(),
            found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The nsc keystore at `dir` (the directory holding `keys/`), checked. `dir` itself may
/// be a link (the user named it); `keys/` may not.
pub fn keystore_dir(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(NscError::Invalid(format!(
            "nsc keystore {} does not exist or is not a directory",
            dir.display()
        )));
    }
    let keys = dir.join("keys");
    match std::fs::symlink_metadata(&keys) {
        Ok(m) if m.file_type().is_symlink() => Err(NscError::Invalid(format!(
            "{}: is a symbolic link, and import nsc follows no links below --keys (it reads nothing outside the directories it is given); nothing was imported",
            keys.display()
        ))),
        Ok(m) if m.is_dir() => Ok(dir.to_path_buf()),
        _ => Err(NscError::Invalid(format!(
            "{} is not an nsc keystore: it has no keys/ directory",
            dir.display()
        ))),
    }
}

/// The seeds of a keystore, looked up by public key. Read-only, so the workers reading
/// users share it: what a lookup finds wrong with a key file goes to the `problems`
/// its caller passes, and the caller merges those in input order.
struct Keystore {
    tree: Tree,
}

impl Keystore {
    /// The key pair of `public_key` from `keys/<K>/<XY>/<key>.nk`, else from the creds
    /// file `creds` (components below the keystore) given as a fallback (nsc writes
    /// creds from the same seed). A `public_key` that is not one (a claim can say
    /// anything) has no seed, and no path is built from it. Refused (an error, not a
    /// missing seed): a link, a file too large, anything [`Tree::read`] refuses. A file
    /// holding no seed, or another key's, is ignored and said so in `problems`.
    fn get(
        &self,
        public_key: &str,
        creds: Option<&[&str]>,
        problems: &mut Vec<NotCarried>,
    ) -> Result<Option<KeyPair>> {
        if nats_jwt::PublicKey::new(public_key).is_err() {
            return Ok(None);
        }
        // A valid public key is base32 ASCII, so these byte ranges are characters.
        let nk = format!("{public_key}.nk");
        let rel = ["keys", &public_key[..1], &public_key[1..3], &nk];
        if let Some(text) = self.tree.read(&rel)? {
            let path = self.tree.root().join(rel.join("/"));
            return Ok(check_seed(public_key, text.trim(), &path, problems));
        }
        let Some(creds) = creds else {
            return Ok(None);
        };
        let Some(text) = self.tree.read(creds)? else {
            return Ok(None);
        };
        let Some(seed) = nats_jwt::parse_creds(&text).ok().and_then(|c| c.seed) else {
            return Ok(None);
        };
        let path = self.tree.root().join(creds.join("/"));
        Ok(check_seed(public_key, seed.expose(), &path, problems))
    }
}

/// The key pair of `seed` read from `file`, if it is the seed of `public_key`.
fn check_seed(
    public_key: &str,
    seed: &str,
    file: &Path,
    problems: &mut Vec<NotCarried>,
) -> Option<KeyPair> {
    match KeyPair::from_seed(seed) {
        Ok(kp) if kp.public_key().as_str() == public_key => Some(kp),
        Ok(kp) => {
            problems.push(NotCarried {
                entity: file.display().to_string(),
                issue: format!(
                    "holds the seed of {}, not of {public_key}: ignored",
                    kp.public_key()
                ),
            });
            None
        }
        Err(e) => {
            problems.push(NotCarried {
                entity: file.display().to_string(),
                issue: format!("not a valid seed ({e}): ignored"),
            });
            None
        }
    }
}

/// Claim fields present in a token's payload that the typed claims did not keep
/// (fields newer than the claim types Warden knows). Empty values are not reported.
fn unknown_fields<T: Serialize>(token: &str, typed: &T) -> Vec<String> {
    let Some(payload) = token.split('.').nth(1) else {
        return Vec::new();
    };
    let raw: serde_json::Value = match data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(v) => v,
        None => return Vec::new(),
    };
    let Ok(kept) = serde_json::to_value(typed) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    diff(&raw, &kept, "", &mut out);
    out
}

fn is_empty_value(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty_value),
    }
}

fn diff(raw: &serde_json::Value, kept: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match (raw, kept) {
        (Value::Object(r), Value::Object(k)) => {
            for (key, v) in r {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => diff(v, kv, &p, out),
                    None if !is_empty_value(v) => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(r), Value::Array(k)) if r.len() == k.len() => {
            for (i, (rv, kv)) in r.iter().zip(k).enumerate() {
                diff(rv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Rows handed to one bulk write of the store (at most 900 values a statement).
const BULK_ROWS: usize = 100;

/// Seals a seed unless the store has it already (a key used twice); 1 if stored.
async fn put_new(tx: &mut warden_store::Tx<'_>, kp: &KeyPair, kind: &str) -> Result<usize> {
    if tx
        .has_seed(kp.public_key().as_str())
        .await
        .map_err(OpsError::from)?
    {
        return Ok(0);
    }
    crate::put_seed(tx, kp, kind).await?;
    Ok(1)
}

struct UserIn {
    row: UserRow,
    seed: Option<KeyPair>,
}

/// Users of one account read at a time: what every worker reading one of them shares
/// (read-only: the store and keystore are read through their [`Tree`]s as everywhere).
struct UsersOf<'a> {
    store: &'a Tree,
    ks: &'a Keystore,
    /// The operator's directory name, which the creds directory repeats.
    op_name: &'a str,
    dir_name: &'a str,
    name: &'a AccountName,
    claims: &'a AccountClaims,
    signing_seeds: &'a [KeyPair],
}

/// What reading one user file found: the user to import (none when it is skipped), what
/// cannot be carried of it, and what the keystore found wrong on the way, each in the
/// order the sequential reading found them.
#[derive(Default)]
struct UserRead {
    user: Option<UserIn>,
    problems: Vec<NotCarried>,
    keystore: Vec<NotCarried>,
}

/// User files read per chunk: each chunk fans out on every core, and an error stops the
/// import before the next chunk, so little is read past it.
const USER_CHUNK: usize = 256;

impl UsersOf<'_> {
    /// Reads `users/<file>.jwt`: verified, checked against the account, decompiled,
    /// with its seed from the keystore. An error (a refused path, an unreadable file)
    /// stops the import; anything else wrong is in the result.
    fn read(&self, file: &str) -> Result<UserRead> {
        let (name, claims, signing_seeds) = (self.name, self.claims, self.signing_seeds);
        let mut read = UserRead::default();
        let entity = format!("user {name}/{file}");
        let user_file = format!("{file}.jwt");
        // Listed a moment ago; gone now, it is as if it never was.
        let Some(text) = self
            .store
            .read(&["accounts", self.dir_name, "users", &user_file])?
        else {
            return Ok(read);
        };
        let jwt = text.trim().to_string();
        let uc = match decode::<User>(&jwt) {
            Ok(c) => c,
            Err(e) => {
                read.problems.push(NotCarried {
                    entity,
                    issue: format!("not a valid user JWT ({e}): skipped"),
                });
                return Ok(read);
            }
        };
        let issues = claims.check_user(&uc);
        if !issues.is_empty() {
            let list: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
            read.problems.push(NotCarried {
                entity,
                issue: format!("not valid for this account ({}): skipped", list.join("; ")),
            });
            return Ok(read);
        }
        let uname = match UserName::parse(&uc.name, NameCase::Any) {
            Ok(n) => n,
            Err(e) => {
                read.problems.push(NotCarried {
                    entity,
                    issue: format!("name {:?} cannot be used ({e}): skipped", uc.name),
                });
                return Ok(read);
            }
        };
        let entity = format!("user {name}/{uname}");
        let uspec = decompile_user(&uc);
        for issue in uspec.not_carried {
            read.problems.push(NotCarried {
                entity: entity.clone(),
                issue: format!("{issue}: kept in the stored JWT, lost when Warden re-signs it"),
            });
        }
        for field in unknown_fields(&jwt, &uc) {
            read.problems.push(NotCarried {
                entity: entity.clone(),
                issue: format!("unknown claim field {field}: lost when Warden re-signs it"),
            });
        }
        let creds_file = format!("{file}.creds");
        let creds = ["creds", self.op_name, self.dir_name, &creds_file];
        let useed = self.ks.get(&uc.sub, Some(&creds), &mut read.keystore)?;
        if useed.is_none() {
            read.problems.push(NotCarried {
                entity: entity.clone(),
                issue: "user seed not in the keystore: no creds can be made for it".into(),
            });
        }
        // A user signed by a scoped key carries no limits of its own (checked
        // above): its permissions are the scope's template, which the account
        // spec holds. Its spec is that empty one and its row names the key, so
        // Warden re-issues it the same way; nothing is lost.
        let signed_by_key = uc.iss != claims.sub;
        if signed_by_key
            && !signing_seeds
                .iter()
                .any(|k| k.public_key().as_str() == uc.iss)
        {
            read.problems.push(NotCarried {
                entity: entity.clone(),
                issue: format!(
                    "signed by account signing key {} whose seed is not in the keystore (the JWT is kept; Warden re-issues with the account key)",
                    uc.iss
                ),
            });
        }
        let upk: nats_jwt::UserPublicKey = uc.sub.parse().map_err(OpsError::from)?;
        let revoked_at = ["*", uc.sub.as_str()]
            .iter()
            .filter_map(|k| claims.nats.revocations.get(*k))
            .copied()
            .filter(|_| claims.nats.is_revoked(&upk, uc.iat))
            .max();
        read.user = Some(UserIn {
            row: UserRow {
                signing_key: signed_by_key.then(|| uc.iss.clone()),
                revoked_at,
                ..crate::new_user_row(&claims.sub, &uc.sub, uname.as_str(), &uspec.spec, jwt)?
            },
            seed: useed,
        });
        Ok(read)
    }
}

struct AccountIn {
    name: AccountName,
    claims: AccountClaims,
    row: AccountRow,
    seed: Option<KeyPair>,
    signing_seeds: Vec<KeyPair>,
    signing_keys: usize,
    users: Vec<UserIn>,
}

impl Warden {
    /// Imports the nsc operator at `store` (an operator directory or an nsc
    /// `stores` root holding one) with the seeds of the keystore `keys` into this
    /// EMPTY store, in one transaction. See the module docs.
    pub async fn import_nsc(&mut self, store: &Path, keys: &Path) -> Result<ImportReport> {
        self.import_nsc_with_progress(store, keys, &crate::progress::Quiet)
            .await
    }

    /// [`Warden::import_nsc`], reporting each account and user imported to `progress`.
    pub async fn import_nsc_with_progress(
        &mut self,
        store: &Path,
        keys: &Path,
        progress: &dyn crate::progress::Progress,
    ) -> Result<ImportReport> {
        self.need(Scope::Admin, "importing an nsc store")?;
        let op_dir = operator_dir(store)?;
        let keys_dir = keystore_dir(keys)?;
        let mut problems: Vec<NotCarried> = Vec::new();
        // Everything below is read through these two: see `confined`.
        let store_tree = Tree::new(op_dir.clone(), "--store");
        let ks = Keystore {
            tree: Tree::new(keys_dir.clone(), "--keys"),
        };
        // What the keystore found wrong with its files, after everything else (then
        // the whole list is sorted).
        let mut ks_problems: Vec<NotCarried> = Vec::new();

        // The operator.
        let marker_path = op_dir.join(".nsc");
        let marker_text = store_tree
            .read(&[".nsc"])?
            .ok_or_else(|| NscError::Invalid(format!("{} is missing", marker_path.display())))?;
        let marker: NscMarker = serde_json::from_str(&marker_text).map_err(|e| {
            NscError::Invalid(format!(
                "{} is not an nsc marker ({e})",
                marker_path.display()
            ))
        })?;
        if marker.kind != "operator" || marker.name.trim().is_empty() {
            return Err(NscError::Invalid(format!(
                "{} does not describe an operator (kind {:?}, name {:?})",
                marker_path.display(),
                marker.kind,
                marker.name
            )));
        }
        let op_name_raw = marker.name.trim().to_string();
        // The name builds the operator JWT's path and the creds directory's.
        component(
            &op_name_raw,
            &format!("the operator name in {}", marker_path.display()),
        )?;
        let op_jwt_file = format!("{op_name_raw}.jwt");
        let op_jwt_path = op_dir.join(&op_jwt_file);
        let op_jwt = store_tree
            .read(&[&op_jwt_file])?
            .ok_or_else(|| {
                NscError::Invalid(format!(
                    "{} is missing: the operator JWT named by .nsc",
                    op_jwt_path.display()
                ))
            })?
            .trim()
            .to_string();
        let op_claims = decode::<Operator>(&op_jwt).map_err(|e| {
            NscError::Invalid(format!(
                "{}: not a valid operator JWT ({e})",
                op_jwt_path.display()
            ))
        })?;
        if !op_claims.did_sign(&op_claims.iss, &op_claims.sub) {
            return Err(NscError::Invalid(format!(
                "{}: the operator JWT is not signed by the operator or one of its signing keys",
                op_jwt_path.display()
            )));
        }
        let op_name = OperatorName::parse(&op_claims.name, NameCase::Any).map_err(|e| {
            NscError::Invalid(format!(
                "operator name {:?} cannot be used: {e}",
                op_claims.name
            ))
        })?;
        let op_spec =
            decompile_operator(&op_claims).map_err(|e| NscError::Invalid(e.to_string()))?;
        let op_entity = format!("operator {op_name}");
        for issue in op_spec.not_carried {
            problems.push(NotCarried {
                entity: op_entity.clone(),
                issue: format!("{issue}: kept in the stored JWT, not in Warden's spec"),
            });
        }
        for field in unknown_fields(&op_jwt, &op_claims) {
            problems.push(NotCarried {
                entity: op_entity.clone(),
                issue: format!("unknown claim field {field}: kept in the stored JWT only"),
            });
        }
        let op_pk = op_claims.sub.clone();
        let op_seed = ks.get(&op_pk, None, &mut ks_problems)?;
        let mut op_signing_seeds = Vec::new();
        for k in &op_spec.spec.signing_keys {
            match ks.get(k.as_str(), None, &mut ks_problems)? {
                Some(kp) => op_signing_seeds.push(kp),
                None => problems.push(NotCarried {
                    entity: op_entity.clone(),
                    issue: format!("seed of operator signing key {k} not in the keystore"),
                }),
            }
        }
        if op_seed.is_none() {
            problems.push(NotCarried {
                entity: op_entity.clone(),
                issue: "operator identity seed not in the keystore".into(),
            });
        }
        let signing_key = match (op_signing_seeds.first(), &op_seed) {
            (Some(kp), _) => kp.public_key().to_string(),
            (None, Some(kp)) => kp.public_key().to_string(),
            (None, None) => {
                problems.push(NotCarried {
                    entity: op_entity.clone(),
                    issue: "no operator seed at all: Warden can hold the accounts but cannot re-sign any of them".into(),
                });
                op_pk.clone()
            }
        };
        let system_account = op_spec.spec.system_account.to_string();

        // Accounts and their users.
        let t = now();
        let mut accounts: Vec<AccountIn> = Vec::new();
        for dir_name in store_tree.list(&["accounts"], Entries::Dirs)? {
            let acc_dir = op_dir.join("accounts").join(&dir_name);
            let jwt_file = format!("{dir_name}.jwt");
            let entity = format!("account {dir_name}");
            let Some(text) = store_tree.read(&["accounts", &dir_name, &jwt_file])? else {
                problems.push(NotCarried {
                    entity,
                    issue: format!("no {jwt_file} in {}: skipped", acc_dir.display()),
                });
                continue;
            };
            let jwt = text.trim().to_string();
            // An account JWT nats-server would refuse (see `Warden::max_account_jwt`)
            // stops the import: Warden would store what it can never push or preload.
            warden_core::compile::check_account_jwt_size(&dir_name, &jwt, self.max_account_jwt())
                .map_err(|e| OpsError::Invalid(format!("{}: {e}", acc_dir.display())))?;
            let claims = match decode::<Account>(&jwt) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(NotCarried {
                        entity,
                        issue: format!("not a valid account JWT ({e}): skipped"),
                    });
                    continue;
                }
            };
            if !op_claims.did_sign(&claims.iss, &claims.sub) {
                problems.push(NotCarried {
                    entity,
                    issue: format!(
                        "signed by {}, which the operator does not trust: skipped",
                        claims.iss
                    ),
                });
                continue;
            }
            let name = match AccountName::parse(&claims.name, NameCase::Any) {
                Ok(n) => n,
                Err(e) => {
                    problems.push(NotCarried {
                        entity,
                        issue: format!("name {:?} cannot be used ({e}): skipped", claims.name),
                    });
                    continue;
                }
            };
            if name.as_str() != dir_name {
                problems.push(NotCarried {
                    entity: entity.clone(),
                    issue: format!(
                        "directory name differs from the JWT's name {name:?}; imported as {name}"
                    ),
                });
            }
            let entity = format!("account {name}");
            let spec = decompile_account(&claims);
            for issue in spec.not_carried {
                problems.push(NotCarried {
                    entity: entity.clone(),
                    issue: format!("{issue}: kept in the stored JWT, lost when Warden re-signs it"),
                });
            }
            for field in unknown_fields(&jwt, &claims) {
                problems.push(NotCarried {
                    entity: entity.clone(),
                    issue: format!("unknown claim field {field}: lost when Warden re-signs it"),
                });
            }
            let seed = ks.get(&claims.sub, None, &mut ks_problems)?;
            if seed.is_none() {
                problems.push(NotCarried {
                    entity: entity.clone(),
                    issue: "account seed not in the keystore: Warden cannot issue or re-issue its users".into(),
                });
            }
            let mut signing_seeds = Vec::new();
            for k in &claims.nats.signing_keys {
                match ks.get(k.key().as_str(), None, &mut ks_problems)? {
                    Some(kp) => signing_seeds.push(kp),
                    None => problems.push(NotCarried {
                        entity: entity.clone(),
                        issue: format!(
                            "seed of account signing key {} not in the keystore",
                            k.key()
                        ),
                    }),
                }
            }
            let signing_keys = claims.nats.signing_keys.len();
            // The users are read, verified and decompiled on every core, a chunk at a
            // time; each chunk's results come back in file order and are merged in that
            // order, so the report is the same as reading them one by one, and the first
            // error in file order (a refused path, an unreadable file) stops the import.
            let users_of = UsersOf {
                store: &store_tree,
                ks: &ks,
                op_name: &op_name_raw,
                dir_name: &dir_name,
                name: &name,
                claims: &claims,
                signing_seeds: &signing_seeds,
            };
            let files = store_tree.list(&["accounts", &dir_name, "users"], Entries::JwtFiles)?;
            let mut users = Vec::with_capacity(files.len());
            for chunk in files.chunks(USER_CHUNK) {
                let read = on_all_cores(|| {
                    chunk
                        .par_iter()
                        .map(|file| users_of.read(file))
                        .collect::<Vec<_>>()
                });
                for one in read {
                    let one = one?;
                    problems.extend(one.problems);
                    ks_problems.extend(one.keystore);
                    users.extend(one.user);
                }
            }
            accounts.push(AccountIn {
                row: AccountRow {
                    public_key: claims.sub.clone(),
                    operator: op_pk.clone(),
                    name: name.to_string(),
                    spec: to_json(&spec.spec)?,
                    jwt,
                    created_at: t,
                    updated_at: t,
                },
                name,
                claims,
                seed,
                signing_seeds,
                signing_keys,
                users,
            });
        }
        if !accounts.iter().any(|a| a.claims.sub == system_account) {
            return Err(NscError::Invalid(format!(
                "the operator's system account {system_account} is not in the store (accounts/<name>/<name>.jwt); Warden needs it"
            )));
        }
        let mut seen = BTreeSet::new();
        for a in &accounts {
            if !seen.insert(a.name.as_str().to_string()) {
                return Err(NscError::Invalid(format!(
                    "two accounts are named {}; names must be unique",
                    a.name
                )));
            }
        }
        let sys_named = accounts
            .iter()
            .find(|a| a.claims.sub == system_account)
            .map(|a| a.name.to_string())
            .unwrap_or_default();
        if sys_named != warden_core::names::SYSTEM_ACCOUNT {
            problems.push(NotCarried {
                entity: format!("account {sys_named}"),
                issue: format!(
                    "the system account is not named {}: `warden push` and `serve` look for {}/{}",
                    warden_core::names::SYSTEM_ACCOUNT,
                    warden_core::names::SYSTEM_ACCOUNT,
                    warden_core::names::SYSTEM_USER
                ),
            });
        }
        problems.append(&mut ks_problems);
        problems.sort();
        problems.dedup();

        // One transaction: refuse a store that holds anything, then write it all.
        let naming = NamingPolicy {
            operator: NameCase::Any,
            account: NameCase::Any,
            user: NameCase::Any,
        };
        let counts = self.store.counts().await.map_err(OpsError::from)?;
        let mut tx = self.store.begin().await.map_err(OpsError::from)?;
        if tx.operator().await.map_err(OpsError::from)?.is_some()
            || counts.accounts > 0
            || counts.users > 0
            || counts.nkeys > 0
        {
            return Err(OpsError::Conflict(format!(
                "the Warden store {} is not empty; import nsc only into an empty store (use another --data-dir or --database-url)",
                self.store.url_redacted()
            )));
        }
        let mut seeds = 0usize;
        if let Some(kp) = &op_seed {
            seeds += put_new(&mut tx, kp, "operator").await?;
        }
        for kp in &op_signing_seeds {
            seeds += put_new(&mut tx, kp, "operator").await?;
        }
        let op_row = OperatorRow {
            public_key: op_pk.clone(),
            name: op_name.to_string(),
            signing_key: signing_key.clone(),
            system_account: system_account.clone(),
            jwt: op_jwt,
            created_at: t,
            updated_at: t,
        };
        tx.insert_operator(&op_row).await.map_err(OpsError::from)?;
        tx.set_meta(META_NAMING, &json!(naming).to_string())
            .await
            .map_err(OpsError::from)?;
        let mut imported = Vec::new();
        let mut user_total = 0;
        let total: usize = accounts.iter().map(|a| 1 + a.users.len()).sum();
        let bar = progress;
        bar.start(total as u64, "import");
        // The accounts and users go in with multi-row statements: every seed once (a key
        // used twice is stored once, as above), then the accounts, their pushes, and the
        // users. The store is empty, so only the batch itself can repeat a key or name.
        let mut stored: HashSet<String> = HashSet::new();
        if let Some(kp) = &op_seed {
            stored.insert(kp.public_key().to_string());
        }
        stored.extend(
            op_signing_seeds
                .iter()
                .map(|kp| kp.public_key().to_string()),
        );
        let mut batch_seeds: Vec<(String, &'static str, nats_jwt::Seed)> = Vec::new();
        let mut add_seed = |kp: &KeyPair, kind: &'static str| {
            let pk = kp.public_key().to_string();
            if stored.insert(pk.clone()) {
                batch_seeds.push((pk, kind, kp.seed()));
            }
        };
        for a in &accounts {
            if let Some(kp) = &a.seed {
                add_seed(kp, "account");
            }
            for kp in &a.signing_seeds {
                add_seed(kp, "account");
            }
            for u in &a.users {
                if let Some(kp) = &u.seed {
                    add_seed(kp, "user");
                }
            }
        }
        seeds += batch_seeds.len();
        let new_seeds: Vec<NewSeed<'_>> = batch_seeds
            .iter()
            .map(|(pk, kind, seed)| NewSeed {
                public_key: pk,
                kind,
                seed: seed.expose(),
            })
            .collect();
        // In slices: SQLite parses a statement in time that grows with the square of
        // its values, so a few hundred rows per call stay fast.
        for chunk in new_seeds.chunks(BULK_ROWS) {
            tx.put_seeds(chunk).await.map_err(OpsError::from)?;
        }
        drop(new_seeds);
        drop(batch_seeds);
        let account_rows: Vec<AccountRow> = accounts.iter().map(|a| a.row.clone()).collect();
        for chunk in account_rows.chunks(BULK_ROWS) {
            tx.insert_accounts(chunk).await.map_err(OpsError::from)?;
            bar.advance(chunk.len() as u64);
        }
        let pushes: Vec<(&str, &str)> = accounts
            .iter()
            .map(|a| (TOPIC_ACCOUNT_UPDATE, a.row.public_key.as_str()))
            .collect();
        for chunk in pushes.chunks(BULK_ROWS) {
            tx.enqueue_many(chunk).await.map_err(OpsError::from)?;
        }
        let user_rows: Vec<UserRow> = accounts
            .iter()
            .flat_map(|a| a.users.iter().map(|u| u.row.clone()))
            .collect();
        for chunk in user_rows.chunks(BULK_ROWS) {
            tx.insert_users(chunk).await.map_err(|e| match e {
                warden_store::StoreError::Conflict { what } => OpsError::Conflict(format!(
                    "{what}: the nsc store holds a user twice in one account"
                )),
                other => OpsError::from(other),
            })?;
            bar.advance(chunk.len() as u64);
        }
        for a in &accounts {
            user_total += a.users.len();
            imported.push(ImportedAccount {
                name: a.row.name.clone(),
                public_key: a.row.public_key.clone(),
                system: a.row.public_key == system_account,
                seed: a.seed.is_some(),
                signing_keys: a.signing_keys,
                signing_key_seeds: a.signing_seeds.len(),
                users: a.users.len(),
                user_seeds: a.users.iter().filter(|u| u.seed.is_some()).count(),
                revoked_users: a
                    .users
                    .iter()
                    .filter(|u| u.row.revoked_at.is_some())
                    .count(),
            });
        }
        let summary: BTreeMap<&str, serde_json::Value> = BTreeMap::from([
            ("store", json!(op_dir.display().to_string())),
            ("operator", json!(op_row.name)),
            ("signing_key", json!(signing_key)),
            ("system_account", json!(system_account)),
            (
                "accounts",
                json!(imported.iter().map(|a| &a.name).collect::<Vec<_>>()),
            ),
            ("users", json!(user_total)),
            ("seeds", json!(seeds)),
            ("naming", json!(naming)),
            ("not_carried", json!(problems.len())),
        ]);
        tx.record(self.event("nsc.import", "operator", &op_pk, json!(summary)))
            .await?;
        tx.commit().await.map_err(OpsError::from)?;
        bar.finish();
        self.settings.naming = naming;
        Ok(ImportReport {
            store: op_dir,
            keystore: keys_dir,
            operator: op_row.name,
            operator_public_key: op_pk,
            signing_key,
            system_account,
            accounts: imported,
            users: user_total,
            seeds,
            naming,
            not_carried: problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_found_and_empty_ones_ignored() {
        let raw = json!({"iss": "A", "nats": {"pub": {"allow": []}, "trace": {"dest": "t"},
            "exports": [{"subject": "a", "allow_trace": true}], "zero": 0}});
        let kept = json!({"iss": "A", "nats": {"pub": {}, "exports": [{"subject": "a"}]}});
        let mut out = Vec::new();
        diff(&raw, &kept, "", &mut out);
        assert_eq!(out, vec!["nats.exports[0].allow_trace", "nats.trace"]);
    }

    #[test]
    fn a_stores_root_with_two_operators_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for op in ["A", "B"] {
            std::fs::create_dir_all(dir.path().join(op)).unwrap();
            std::fs::write(dir.path().join(op).join(".nsc"), "{}").unwrap();
        }
        let err = operator_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("2 operators"), "{err}");
        assert_eq!(
            operator_dir(&dir.path().join("A")).unwrap(),
            dir.path().join("A")
        );
    }

    /// An nsc store as nsc lays it out, made with nats-jwt: the system account and
    /// three accounts of 100, 100 and 300 users (the last spans two chunks of
    /// [`USER_CHUNK`]), some of them broken. Returns the store, the keystore and what
    /// the report must say, in its order: the keystore's findings (paths sort first),
    /// then the users, accounts in directory order and users in file order.
    fn many_users(root: &Path) -> (PathBuf, PathBuf, Vec<(String, String)>) {
        use nats_jwt::{KeyKind, OperatorClaims, UserClaims};
        let store = root.join("stores/OP");
        let keys = root.join("keys");
        let write = |path: &Path, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let nk = |pk: &str| {
            keys.join("keys")
                .join(&pk[..1])
                .join(&pk[1..3])
                .join(format!("{pk}.nk"))
        };
        let seed = |kp: &KeyPair| write(&nk(kp.public_key().as_str()), kp.seed().expose());
        let op = KeyPair::generate(KeyKind::Operator);
        let sys = KeyPair::generate(KeyKind::Account);
        let mut oc = OperatorClaims::new(&op.operator_public_key().unwrap(), "OP");
        oc.nats.system_account = Some(sys.account_public_key().unwrap());
        write(
            &store.join(".nsc"),
            r#"{"managed":false,"name":"OP","kind":"operator","version":"1"}"#,
        );
        write(&store.join("OP.jwt"), &oc.encode(&op).unwrap());
        seed(&op);
        let mut expected = Vec::new();
        let mut keystore = Vec::new();
        for (name, kp, users) in [
            ("SYS", &sys, 1),
            ("A_ONE", &KeyPair::generate(KeyKind::Account), 100),
            ("B_TWO", &KeyPair::generate(KeyKind::Account), 100),
            ("C_THREE", &KeyPair::generate(KeyKind::Account), 300),
        ] {
            let apk = kp.account_public_key().unwrap();
            let dir = store.join("accounts").join(name);
            let jwt = AccountClaims::new(&apk, name).encode(&op).unwrap();
            write(&dir.join(format!("{name}.jwt")), &jwt);
            seed(kp);
            for i in 0..users {
                let file = format!("u{i:03}");
                let entity = format!("user {name}/{file}");
                let ukp = KeyPair::generate(KeyKind::User);
                let mut uc = UserClaims::new(&ukp.user_public_key().unwrap(), &file);
                let mut signer = kp;
                let stranger = KeyPair::generate(KeyKind::Account);
                let mut text = None;
                match (name, i) {
                    ("A_ONE", 13) | ("C_THREE", 42) => {
                        text = Some("not a JWT".to_string());
                        expected.push((entity, "not a valid user JWT".into()));
                    }
                    ("A_ONE", 57) | ("C_THREE", 280) => {
                        expected.push((entity, "user seed not in the keystore".into()));
                    }
                    ("B_TWO", 21) | ("C_THREE", 299) => {
                        uc.nats.issuer_account = Some(apk.clone());
                        signer = &stranger;
                        expected.push((entity, "not valid for this account".into()));
                    }
                    ("B_TWO", 88) | ("C_THREE", 0) => {
                        uc.name = "bad name!".into();
                        expected.push((entity, "name \"bad name!\" cannot be used".into()));
                    }
                    ("C_THREE", 5) => {
                        // Its seed file holds another key's seed.
                        let other = KeyPair::generate(KeyKind::User);
                        let path = nk(ukp.public_key().as_str());
                        write(&path, other.seed().expose());
                        keystore.push((path.display().to_string(), "holds the seed of".into()));
                        expected.push((entity, "user seed not in the keystore".into()));
                    }
                    _ => seed(&ukp),
                }
                let text = text.unwrap_or_else(|| uc.encode(signer).unwrap());
                write(&dir.join("users").join(format!("{file}.jwt")), &text);
            }
        }
        keystore.append(&mut expected);
        (root.join("stores"), keys, keystore)
    }

    async fn import_into(url: &str, store: &Path, keys: &Path) -> ImportReport {
        let db = warden_store::Store::open(url, warden_store::MasterKey::from_bytes([7; 32]))
            .await
            .expect("store");
        let mut w = Warden::open(db, crate::Actor::operator("test"))
            .await
            .expect("open");
        w.import_nsc(store, keys).await.expect("import")
    }

    /// Users are read on every core; the report is still in file order and the same
    /// from one run to the next (here: into SQLite, then into PostgreSQL).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_read_on_every_core_are_reported_in_file_order_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let (store, keys, expected) = many_users(&dir.path().join("nsc"));
        let sqlite = format!("sqlite://{}/warden.db", dir.path().display());
        let first = import_into(&sqlite, &store, &keys).await;
        let found: Vec<(&str, &str)> = first
            .not_carried
            .iter()
            .map(|p| (p.entity.as_str(), p.issue.as_str()))
            .collect();
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for ((entity, issue), (want_entity, want_issue)) in found.iter().zip(&expected) {
            assert_eq!(entity, want_entity, "{found:#?}");
            assert!(issue.contains(want_issue.as_str()), "{entity}: {issue}");
        }
        let users: Vec<(&str, usize, usize)> = first
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.users, a.user_seeds))
            .collect();
        assert_eq!(
            users,
            [
                ("A_ONE", 99, 98),
                ("B_TWO", 98, 98),
                ("C_THREE", 297, 295),
                ("SYS", 1, 1)
            ]
        );
        assert_eq!(first.users, 99 + 98 + 297 + 1);

        let pg = warden_testkit::PgDatabase::create().await;
        let second = import_into(pg.url(), &store, &keys).await;
        assert_eq!(second.not_carried, first.not_carried);
        assert_eq!(
            serde_json::to_value(&second.accounts).unwrap(),
            serde_json::to_value(&first.accounts).unwrap()
        );
        assert_eq!((second.users, second.seeds), (first.users, first.seeds));
    }

    /// An error while reading users stops the import at the first one in file order,
    /// whichever core met it first: here three user files of one chunk cannot be read
    /// (one too large, two not UTF-8), and the refusal names the first of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_first_unreadable_user_file_in_file_order_stops_the_import() {
        let dir = tempfile::tempdir().unwrap();
        let (store, keys, _) = many_users(&dir.path().join("nsc"));
        let users = store.join("OP/accounts/C_THREE/users");
        for file in ["u130.jwt", "u131.jwt"] {
            std::fs::write(users.join(file), b"\xff\xfe not text").unwrap();
        }
        // A sparse file: larger than the bound, at no cost.
        std::fs::File::create(users.join("u030.jwt"))
            .unwrap()
            .set_len(2 << 20)
            .unwrap();
        let db = warden_store::Store::open(
            &format!("sqlite://{}/warden.db", dir.path().display()),
            warden_store::MasterKey::from_bytes([7; 32]),
        )
        .await
        .expect("store");
        let mut w = Warden::open(db.clone(), crate::Actor::operator("test"))
            .await
            .expect("open");
        let err = w.import_nsc(&store, &keys).await.unwrap_err().to_string();
        assert!(
            err.contains(&users.join("u030.jwt").display().to_string())
                && err.contains("larger than"),
            "{err}"
        );
        let counts = db.counts().await.expect("counts");
        assert_eq!((counts.accounts, counts.users, counts.nkeys), (0, 0, 0));
    }
}
