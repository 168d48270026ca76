//! Sharing between accounts, in nsc's words: an account's exports (streams and services
//! it offers), the imports other accounts take of them, and the activations an exporter
//! signs for a private export (`token_req`).
//!
//! Warden holds both ends when both accounts are its own, so it keeps them in step: an
//! import is checked against the export it names (exists, same type, subject covered)
//! before it is stored, an import of a private export carries an activation signed here
//! by the exporter's key, and changing or removing an export re-signs, in the same
//! transaction, every Warden account that imports it (each re-signed account is queued
//! for the resolver). For an account Warden does not manage, [`Warden::create_activation`]
//! issues the token to hand over, and [`Warden::revoke_activation`] takes it back through
//! the export's `revocations`.
//!
//! The device fleet and the tenants build their exports and imports the same way (their
//! own modules compile them); the changes here reach their accounts like any other.

use std::collections::BTreeMap;

use nats_jwt::{
    AccountPublicKey, ActivationClaims, Export, ExportType, Import, KeyPair, ResponseType,
    ServiceLatency, Subject,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use warden_core::AccountSpec;
use warden_store::{AccountRow, OperatorRow, Tx};

use crate::{OpsError, Record, Result, Scope, Warden, from_json, now, parse_key};

/// A new export (`warden account export add`; the same fields over the HTTP API and the
/// NATS service).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportOptions {
    /// The exported subject (wildcards only where the account limits allow them).
    pub subject: Subject,
    /// Stream or service (JSON `type`).
    #[serde(rename = "type")]
    pub export_type: ExportType,
    /// Private: importers need an activation (`token_req`).
    #[serde(default)]
    pub private: bool,
    /// Label.
    #[serde(default)]
    pub name: Option<String>,
    /// Services only: how the service answers (`Singleton` when absent).
    #[serde(default)]
    pub response_type: Option<ResponseType>,
    /// Services only: how long a response may take, nanoseconds.
    #[serde(default)]
    pub response_threshold_ns: Option<i64>,
    /// Services only: latency tracking (`{"sampling": 1..100 | "headers", "results": S}`).
    #[serde(default)]
    pub latency: Option<ServiceLatency>,
    /// 1-based token of the subject, a `*`, that must hold the importer's account key.
    #[serde(default)]
    pub account_token_position: Option<u32>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// A URL with more about the export.
    #[serde(default)]
    pub info_url: Option<String>,
    /// Tooling hint: list the export publicly.
    #[serde(default)]
    pub advertise: bool,
    /// Services only: message traces may cross into this account.
    #[serde(default)]
    pub allow_trace: bool,
}

impl ExportOptions {
    /// Options for a public export of `subject`, nothing else set.
    pub fn new(subject: Subject, export_type: ExportType) -> Self {
        ExportOptions {
            subject,
            export_type,
            private: false,
            name: None,
            response_type: None,
            response_threshold_ns: None,
            latency: None,
            account_token_position: None,
            description: None,
            info_url: None,
            advertise: false,
            allow_trace: false,
        }
    }

    fn to_export(&self) -> Result<Export> {
        let mut e = Export::new(self.subject.clone(), self.export_type);
        e.token_req = self.private;
        e.name = text("name", self.name.as_deref())?;
        e.response_type = self.response_type;
        e.response_threshold_ns = self.response_threshold_ns.filter(|t| *t != 0);
        e.service_latency = self.latency.clone();
        e.account_token_position = self.account_token_position.filter(|p| *p != 0);
        e.description = text("description", self.description.as_deref())?;
        e.info_url = text("info URL", self.info_url.as_deref())?;
        e.advertise = self.advertise;
        e.allow_trace = self.allow_trace;
        Ok(e)
    }
}

/// A change to an existing export, chosen by its subject (`warden account export edit`):
/// each field given replaces the export's; the subject and type stay (remove the export
/// and add another to change them).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEdit {
    /// Private (`true`: importers need an activation, Warden's importers get one now) or
    /// public (`false`: the activations of Warden's importers are dropped).
    #[serde(default)]
    pub private: Option<bool>,
    /// Label (empty clears it).
    #[serde(default)]
    pub name: Option<String>,
    /// Services only: response type.
    #[serde(default)]
    pub response_type: Option<ResponseType>,
    /// Services only: response threshold, nanoseconds (0 clears it).
    #[serde(default)]
    pub response_threshold_ns: Option<i64>,
    /// Services only: latency tracking.
    #[serde(default)]
    pub latency: Option<ServiceLatency>,
    /// Drop latency tracking.
    #[serde(default)]
    pub no_latency: bool,
    /// Account token position (0 clears it).
    #[serde(default)]
    pub account_token_position: Option<u32>,
    /// Description (empty clears it).
    #[serde(default)]
    pub description: Option<String>,
    /// Info URL (empty clears it).
    #[serde(default)]
    pub info_url: Option<String>,
    /// Advertise.
    #[serde(default)]
    pub advertise: Option<bool>,
    /// Services only: allow traces.
    #[serde(default)]
    pub allow_trace: Option<bool>,
}

impl ExportEdit {
    fn is_empty(&self) -> bool {
        *self == ExportEdit::default()
    }

    fn apply(&self, e: &mut Export) -> Result<()> {
        if let Some(p) = self.private {
            e.token_req = p;
        }
        if let Some(n) = &self.name {
            e.name = text("name", Some(n))?;
        }
        if let Some(r) = self.response_type {
            e.response_type = Some(r);
        }
        if let Some(t) = self.response_threshold_ns {
            e.response_threshold_ns = Some(t).filter(|t| *t != 0);
        }
        if self.no_latency {
            e.service_latency = None;
        }
        if let Some(l) = &self.latency {
            e.service_latency = Some(l.clone());
        }
        if let Some(p) = self.account_token_position {
            e.account_token_position = Some(p).filter(|p| *p != 0);
        }
        if let Some(d) = &self.description {
            e.description = text("description", Some(d))?;
        }
        if let Some(u) = &self.info_url {
            e.info_url = text("info URL", Some(u))?;
        }
        if let Some(a) = self.advertise {
            e.advertise = a;
        }
        if let Some(a) = self.allow_trace {
            e.allow_trace = a;
        }
        Ok(())
    }
}

/// A new import (`warden account import add`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    /// The exporting account (a Warden account, by name or public key).
    pub from: String,
    /// The subject as the exporter exports it (equal to or narrower than the export's).
    pub subject: Subject,
    /// The importer's own subject for it (`$1`… name the `*` tokens of `subject`).
    #[serde(default)]
    pub local_subject: Option<Subject>,
    /// Stream or service; when absent, the export's. A mismatch is refused.
    #[serde(default, rename = "type")]
    pub import_type: Option<ExportType>,
    /// Label.
    #[serde(default)]
    pub name: Option<String>,
    /// Services only: share the importer's information for latency tracking.
    #[serde(default)]
    pub share: bool,
    /// Streams only: let message traces continue into the importer.
    #[serde(default)]
    pub allow_trace: bool,
}

impl ImportOptions {
    /// Options for an import of `subject` from `from`, nothing else set.
    pub fn new(from: impl Into<String>, subject: Subject) -> Self {
        ImportOptions {
            from: from.into(),
            subject,
            local_subject: None,
            import_type: None,
            name: None,
            share: false,
            allow_trace: false,
        }
    }
}

/// An activation for an account Warden does not manage (`warden activation create`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationOptions {
    /// The subject granted: the export's, or one it covers. With an account token
    /// position, a `*` there is filled with the target's key.
    pub subject: Subject,
    /// The importing account: a public key (`A…`) or the name of a Warden account.
    pub target: String,
    /// Expiry (unix seconds); none when absent.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A Warden account that imports an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Importer {
    /// Account name.
    pub account: String,
    /// Its public key.
    pub public_key: String,
    /// The subject it imports (the exporter's side).
    pub subject: String,
    /// Whether its import carries an activation.
    pub activation: bool,
}

/// One export with the Warden accounts that import it.
#[derive(Clone, Debug, Serialize)]
pub struct ExportView {
    /// The exporting account.
    pub account: String,
    /// Its public key.
    pub account_public_key: String,
    /// The export as it stands in the account JWT.
    pub export: Export,
    /// The Warden accounts importing it.
    pub importers: Vec<Importer>,
}

/// What a change of an export did.
#[derive(Clone, Debug, Serialize)]
pub struct ExportChange {
    /// The exporting account.
    pub account: String,
    /// Its public key.
    pub account_public_key: String,
    /// The export after the change (before it, for a removal).
    pub export: Export,
    /// Importing accounts re-signed and queued for the resolver, by name.
    pub importers_resigned: Vec<String>,
    /// Imports removed from importing accounts (removal of the export), as `ACCOUNT: subject`.
    pub imports_removed: Vec<String>,
    /// Activations issued to importing accounts (the export became private), by account.
    pub activations_issued: Vec<String>,
    /// Activations dropped from importing accounts (the export became public), by account.
    pub activations_dropped: Vec<String>,
}

/// One import of an account.
#[derive(Clone, Debug, Serialize)]
pub struct ImportView {
    /// The importing account.
    pub account: String,
    /// Its public key.
    pub account_public_key: String,
    /// The exporting account's name, when Warden manages it.
    pub from: Option<String>,
    /// The import as it stands in the account JWT (the activation in `token`).
    pub import: Import,
    /// The activation's expiry (unix seconds), if it has one.
    pub activation_expires_at: Option<i64>,
}

/// An activation issued for an account.
#[derive(Clone, Debug, Serialize)]
pub struct ActivationView {
    /// The exporting account.
    pub exporter: String,
    /// Its public key (the activation's issuer).
    pub exporter_public_key: String,
    /// The importing account's public key (the activation's subject).
    pub target: String,
    /// The importing account's name, when Warden manages it.
    pub target_account: Option<String>,
    /// The subject granted.
    pub subject: String,
    /// Stream or service.
    pub kind: ExportType,
    /// Issued at (unix seconds).
    pub issued_at: i64,
    /// Expiry (unix seconds), if any.
    pub expires_at: Option<i64>,
    /// The activation JWT (not a secret: it names one importer, who also needs its own
    /// account trusted by the operator).
    pub jwt: String,
}

/// What a revocation of an activation did.
#[derive(Clone, Debug, Serialize)]
pub struct RevocationView {
    /// The exporting account.
    pub exporter: String,
    /// The export's subject.
    pub subject: String,
    /// The importing account's public key.
    pub target: String,
    /// Its name, when Warden manages it.
    pub target_account: Option<String>,
    /// Activations issued at or before this time (unix seconds) no longer work.
    pub revoked_at: i64,
    /// Importing accounts re-signed and queued for the resolver, by name.
    pub importers_resigned: Vec<String>,
}

/// Trims an optional text; blank means "none", a control character is refused.
fn text(what: &str, v: Option<&str>) -> Result<Option<String>> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().any(char::is_control) {
        return Err(OpsError::invalid(format!(
            "the {what} may not contain control characters"
        )));
    }
    Ok(Some(v.to_string()))
}

fn no_queue(what: &str, s: &Subject) -> Result<()> {
    if s.queue().is_some() {
        return Err(OpsError::invalid(format!(
            "{what} {s:?} carries a queue group; give a plain subject"
        )));
    }
    Ok(())
}

/// The one export of `spec` whose subject is `subject` exactly (of `kind` when given).
fn find_export<'a>(
    spec: &'a AccountSpec,
    account: &str,
    subject: &Subject,
) -> Result<(usize, &'a Export)> {
    spec.exports
        .iter()
        .enumerate()
        .find(|(_, e)| e.subject == *subject)
        .ok_or_else(|| {
            OpsError::NotFound(format!(
                "export {subject} of account {account} (see `warden account export list {account}`)"
            ))
        })
}

/// Whether `import` (of the account holding it) takes from `export` of `exporter`.
fn imports_from(import: &Import, exporter: &str, export: &Export) -> bool {
    import.account.as_str() == exporter
        && import.import_type == export.export_type
        && import.subject.is_subset_of(&export.subject)
}

/// The subject an importer `target` may take of `export`, from the `requested` one: it
/// must be the export's subject or one it covers; with an account token position the
/// token there is the target's key (a `*` is filled with it).
fn granted_subject(export: &Export, requested: &Subject, target: &str) -> Result<Subject> {
    no_queue("subject", requested)?;
    let mut subject = requested.clone();
    if let Some(pos) = export.account_token_position.filter(|p| *p != 0) {
        let mut tokens: Vec<String> = requested.tokens().map(str::to_string).collect();
        let slot = tokens.get_mut(pos as usize - 1).ok_or_else(|| {
            OpsError::invalid(format!(
                "subject {requested} has no token {pos}, where export {} wants the importing account's key",
                export.subject
            ))
        })?;
        if slot == "*" {
            *slot = target.to_string();
        } else if slot != target {
            return Err(OpsError::invalid(format!(
                "token {pos} of {requested} must be the importing account's key {target} (export {} sets account_token_position {pos})",
                export.subject
            )));
        }
        subject = Subject::new(&tokens.join(".")).map_err(OpsError::invalid)?;
    }
    if !subject.is_subset_of(&export.subject) {
        return Err(OpsError::invalid(format!(
            "subject {subject} is not covered by the {} export {}",
            export.export_type, export.subject
        )));
    }
    Ok(subject)
}

/// Refuses what the account's limits forbid, with the limit named (claims validation
/// would refuse it too, less plainly).
fn check_export_limits(spec: &AccountSpec, account: &str) -> Result<()> {
    let l = &spec.limits;
    if l.exports >= 0 && spec.exports.len() as i64 > l.exports {
        return Err(OpsError::invalid(format!(
            "account {account} may have at most {} exports (its `exports` limit); nothing was changed",
            l.exports
        )));
    }
    if !l.wildcards
        && let Some(e) = spec.exports.iter().find(|e| e.subject.has_wildcards())
    {
        return Err(OpsError::invalid(format!(
            "account {account} may not export wildcard subjects such as {} (its limits set \
             wildcard exports off: `warden account edit {account} --wildcard-exports`); nothing was changed",
            e.subject
        )));
    }
    Ok(())
}

fn check_import_limits(spec: &AccountSpec, account: &str) -> Result<()> {
    let l = &spec.limits;
    if l.imports >= 0 && spec.imports.len() as i64 > l.imports {
        return Err(OpsError::invalid(format!(
            "account {account} may have at most {} imports (its `imports` limit); nothing was changed",
            l.imports
        )));
    }
    Ok(())
}

impl Warden {
    /// Finds an account by name or, for a string that is an account public key, by key.
    async fn account_by_ref(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        r: &str,
    ) -> Result<AccountRow> {
        let r = r.trim();
        if r.is_empty() {
            return Err(OpsError::invalid("an account name is required"));
        }
        if let Ok(pk) = r.parse::<AccountPublicKey>() {
            return match tx.account(pk.as_str()).await? {
                Some(a) if a.operator == op.public_key => Ok(a),
                _ => Err(OpsError::NotFound(format!(
                    "account {pk} (Warden manages no account with this key)"
                ))),
            };
        }
        self.account_row(tx, op, r).await
    }

    /// Every Warden account (but `skip`) that imports `export` of `exporter`.
    async fn importers_of(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        exporter: &str,
        export: &Export,
    ) -> Result<Vec<(AccountRow, AccountSpec)>> {
        let mut out = Vec::new();
        for row in tx.accounts(&op.public_key).await? {
            if row.public_key == exporter {
                continue;
            }
            let spec: AccountSpec = from_json(&row.spec)?;
            if spec
                .imports
                .iter()
                .any(|i| imports_from(i, exporter, export))
            {
                out.push((row, spec));
            }
        }
        Ok(out)
    }

    /// An account's exports, each with the Warden accounts importing it.
    pub async fn list_exports(&self, account: &str) -> Result<Vec<ExportView>> {
        self.need(Scope::Read, "listing exports")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_by_ref(&mut tx, &op, account).await?;
        let spec: AccountSpec = from_json(&acc.spec)?;
        if spec.exports.is_empty() {
            return Ok(Vec::new());
        }
        // Only accounts that import something can import from this one: the others'
        // specs are not decoded (thousands of device accounts import nothing).
        let others: Vec<(AccountRow, AccountSpec)> = {
            let mut v = Vec::new();
            for row in tx.accounts(&op.public_key).await? {
                let imports = row
                    .spec
                    .get("imports")
                    .and_then(|i| i.as_array())
                    .is_some_and(|i| !i.is_empty());
                if row.public_key != acc.public_key && imports {
                    let s: AccountSpec = from_json(&row.spec)?;
                    v.push((row, s));
                }
            }
            v
        };
        Ok(spec
            .exports
            .iter()
            .map(|e| ExportView {
                account: acc.name.clone(),
                account_public_key: acc.public_key.clone(),
                export: e.clone(),
                importers: others
                    .iter()
                    .flat_map(|(row, s)| {
                        s.imports
                            .iter()
                            .filter(|i| imports_from(i, &acc.public_key, e))
                            .map(|i| Importer {
                                account: row.name.clone(),
                                public_key: row.public_key.clone(),
                                subject: i.subject.to_string(),
                                activation: i.token.is_some(),
                            })
                    })
                    .collect(),
            })
            .collect())
    }

    /// Adds an export to an account and re-signs it. An export with the same subject and
    /// type, or one overlapping it, is refused, as are exports the account limits forbid.
    pub async fn add_export(&self, account: &str, opts: &ExportOptions) -> Result<ExportChange> {
        self.need(Scope::Write, "adding an export")?;
        no_queue("export subject", &opts.subject)?;
        let export = opts.to_export()?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_by_ref(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        if let Some(same) = spec.exports.iter().find(|e| e.subject == export.subject) {
            return Err(OpsError::Conflict(format!(
                "account {} already exports {} (as a {}); edit or remove it first",
                acc.name, same.subject, same.export_type
            )));
        }
        if let Some(o) = spec.exports.iter().find(|e| {
            e.export_type == export.export_type
                && (e.subject.is_subset_of(&export.subject)
                    || export.subject.is_subset_of(&e.subject))
        }) {
            return Err(OpsError::Conflict(format!(
                "{} export {} overlaps the existing {} export {} of account {}; nothing was changed",
                export.export_type, export.subject, o.export_type, o.subject, acc.name
            )));
        }
        spec.exports.push(export.clone());
        check_export_limits(&spec, &acc.name)?;
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        tx.record(self.event(
            "account.export.add",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "export": export}),
        ))
        .await?;
        tx.commit().await?;
        Ok(ExportChange {
            account: acc.name,
            account_public_key: acc.public_key,
            export,
            importers_resigned: Vec::new(),
            imports_removed: Vec::new(),
            activations_issued: Vec::new(),
            activations_dropped: Vec::new(),
        })
    }

    /// Changes an export (chosen by its subject). Made private, every Warden importer gets
    /// an activation (but one whose activations are revoked); made public, their
    /// activations are dropped. Each importer changed is re-signed in the same transaction.
    pub async fn edit_export(
        &self,
        account: &str,
        subject: &Subject,
        edit: &ExportEdit,
    ) -> Result<ExportChange> {
        self.need(Scope::Write, "editing an export")?;
        if edit.is_empty() {
            return Err(OpsError::invalid(
                "nothing to change: give at least one export flag (see --help)",
            ));
        }
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_by_ref(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let (idx, before) = find_export(&spec, &acc.name, subject)?;
        let before = before.clone();
        let mut export = before.clone();
        edit.apply(&mut export)?;
        spec.exports[idx] = export.clone();
        let mut change = ExportChange {
            account: acc.name.clone(),
            account_public_key: acc.public_key.clone(),
            export: export.clone(),
            importers_resigned: Vec::new(),
            imports_removed: Vec::new(),
            activations_issued: Vec::new(),
            activations_dropped: Vec::new(),
        };
        // Importers gaining an activation are queued before the exporter turning
        // private, so nats-server never holds the private export with an importer
        // still lacking its token (it would drop that import in between); otherwise
        // the exporter goes first.
        let importers_first = export.token_req && !before.token_req;
        if !importers_first {
            self.resign_account(&mut tx, &op, &mut acc, spec.clone())
                .await?;
        }
        for (mut row, mut ispec) in self
            .importers_of(&mut tx, &op, &acc.public_key, &before)
            .await?
        {
            let key: AccountPublicKey = parse_key(&row.public_key)?;
            let mut changed = false;
            for i in ispec
                .imports
                .iter_mut()
                .filter(|i| imports_from(i, &acc.public_key, &before))
            {
                // The import must still fit the export as changed (an account token
                // position set now, say): refused, naming the importer, rather than
                // leaving an import nats-server would ignore.
                let subject = granted_subject(&export, &i.subject, key.as_str()).map_err(|e| {
                    OpsError::invalid(format!(
                        "account {} imports {} from this export, which would no longer fit it: {e}; nothing was changed",
                        row.name, i.subject
                    ))
                })?;
                if export.token_req && i.token.is_none() {
                    // An importer whose activations were revoked is not silently
                    // re-granted: its import stays without a token (cut off).
                    if export.revocations.contains_key(key.as_str())
                        || export.revocations.contains_key("*")
                    {
                        continue;
                    }
                    let (jwt, _) =
                        sign_activation(&mut tx, &acc.public_key, &export, &key, subject, None)
                            .await?;
                    i.token = Some(jwt);
                    change.activations_issued.push(row.name.clone());
                    changed = true;
                } else if !export.token_req && i.token.is_some() {
                    i.token = None;
                    change.activations_dropped.push(row.name.clone());
                    changed = true;
                }
            }
            if changed {
                self.resign_account(&mut tx, &op, &mut row, ispec).await?;
                change.importers_resigned.push(row.name.clone());
            }
        }
        if importers_first {
            self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        }
        tx.record(self.event(
            "account.export.edit",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "before": before, "after": export,
                   "importers_resigned": change.importers_resigned}),
        ))
        .await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Removes an export (chosen by its subject); in the same transaction every Warden
    /// account importing it loses that import and is re-signed.
    pub async fn remove_export(&self, account: &str, subject: &Subject) -> Result<ExportChange> {
        self.need(Scope::Write, "removing an export")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_by_ref(&mut tx, &op, account).await?;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let (idx, _) = find_export(&spec, &acc.name, subject)?;
        let export = spec.exports.remove(idx);
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        let mut change = ExportChange {
            account: acc.name.clone(),
            account_public_key: acc.public_key.clone(),
            export: export.clone(),
            importers_resigned: Vec::new(),
            imports_removed: Vec::new(),
            activations_issued: Vec::new(),
            activations_dropped: Vec::new(),
        };
        for (mut row, mut ispec) in self
            .importers_of(&mut tx, &op, &acc.public_key, &export)
            .await?
        {
            ispec.imports.retain(|i| {
                let gone = imports_from(i, &acc.public_key, &export);
                if gone {
                    change
                        .imports_removed
                        .push(format!("{}: {}", row.name, i.subject));
                }
                !gone
            });
            self.resign_account(&mut tx, &op, &mut row, ispec).await?;
            change.importers_resigned.push(row.name.clone());
        }
        tx.record(self.event(
            "account.export.remove",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "export": export, "imports_removed": change.imports_removed}),
        ))
        .await?;
        tx.commit().await?;
        Ok(change)
    }

    /// An account's imports.
    pub async fn list_imports(&self, account: &str) -> Result<Vec<ImportView>> {
        self.need(Scope::Read, "listing imports")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_by_ref(&mut tx, &op, account).await?;
        let spec: AccountSpec = from_json(&acc.spec)?;
        // Only the exporters its imports name are read (a few), not every account.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for i in &spec.imports {
            let key = i.account.as_str();
            if names.contains_key(key) {
                continue;
            }
            if let Some(from) = tx.account(key).await?
                && from.operator == op.public_key
            {
                names.insert(from.public_key, from.name);
            }
        }
        Ok(spec
            .imports
            .into_iter()
            .map(|i| ImportView {
                account: acc.name.clone(),
                account_public_key: acc.public_key.clone(),
                from: names.get(i.account.as_str()).cloned(),
                activation_expires_at: i
                    .token
                    .as_deref()
                    .and_then(|t| nats_jwt::decode::<nats_jwt::Activation>(t).ok())
                    .and_then(|c| c.exp),
                import: i,
            })
            .collect())
    }

    /// Adds an import of another Warden account's export and re-signs the importer. The
    /// export must exist, be of the import's type and cover its subject; a private
    /// export's activation is issued here and carried in the import.
    pub async fn add_import(&self, account: &str, opts: &ImportOptions) -> Result<ImportView> {
        self.need(Scope::Write, "adding an import")?;
        no_queue("import subject", &opts.subject)?;
        if let Some(l) = &opts.local_subject {
            no_queue("local subject", l)?;
        }
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_by_ref(&mut tx, &op, account).await?;
        let exporter = self.account_by_ref(&mut tx, &op, &opts.from).await?;
        if exporter.public_key == acc.public_key {
            return Err(OpsError::invalid(format!(
                "account {} cannot import from itself",
                acc.name
            )));
        }
        let espec: AccountSpec = from_json(&exporter.spec)?;
        let matching: Vec<&Export> = espec
            .exports
            .iter()
            .filter(|e| opts.import_type.is_none_or(|t| t == e.export_type))
            .filter(|e| {
                granted_subject(e, &opts.subject, &acc.public_key).is_ok()
                    || opts.subject.is_subset_of(&e.subject)
            })
            .collect();
        let export = match matching.as_slice() {
            [one] => (*one).clone(),
            [] => {
                let other = espec.exports.iter().find(|e| {
                    opts.subject.is_subset_of(&e.subject)
                        && opts.import_type.is_some_and(|t| t != e.export_type)
                });
                return Err(OpsError::invalid(match other {
                    Some(e) => format!(
                        "account {} exports {} as a {}, not a {}; nothing was changed",
                        exporter.name,
                        e.subject,
                        e.export_type,
                        opts.import_type.map(|t| t.to_string()).unwrap_or_default()
                    ),
                    None => format!(
                        "account {} has no export covering {} (see `warden account export list {}`); nothing was changed",
                        exporter.name, opts.subject, exporter.name
                    ),
                }));
            }
            _ => {
                return Err(OpsError::invalid(format!(
                    "{} is exported by account {} both as a stream and as a service: say which with --service or --stream",
                    opts.subject, exporter.name
                )));
            }
        };
        let subject = granted_subject(&export, &opts.subject, &acc.public_key)?;
        let exporter_key: AccountPublicKey = parse_key(&exporter.public_key)?;
        let mut import = Import::new(subject.clone(), exporter_key, export.export_type);
        import.name = text("name", opts.name.as_deref())?;
        import.local_subject = opts.local_subject.clone();
        import.share = opts.share;
        import.allow_trace = opts.allow_trace;
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        if let Some(dup) = spec.imports.iter().find(|i| {
            i.account.as_str() == exporter.public_key
                && i.subject == import.subject
                && i.import_type == import.import_type
        }) {
            return Err(OpsError::Conflict(format!(
                "account {} already imports {} from {}; remove it first",
                acc.name, dup.subject, exporter.name
            )));
        }
        if export.token_req {
            let key: AccountPublicKey = parse_key(&acc.public_key)?;
            let (jwt, _) =
                sign_activation(&mut tx, &exporter.public_key, &export, &key, subject, None)
                    .await?;
            import.token = Some(jwt);
        }
        spec.imports.push(import.clone());
        check_import_limits(&spec, &acc.name)?;
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        tx.record(self.event(
            "account.import.add",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "from": exporter.name, "subject": import.subject,
                   "local_subject": import.local_subject, "type": import.import_type,
                   "activation": import.token.is_some()}),
        ))
        .await?;
        tx.commit().await?;
        Ok(ImportView {
            account: acc.name,
            account_public_key: acc.public_key,
            from: Some(exporter.name),
            import,
            activation_expires_at: None,
        })
    }

    /// Removes an import and re-signs the importer. `subject` is the exporter's subject
    /// (as nsc's `delete import --subject` and the JWT name it) or, failing that, the
    /// import's local subject; `from` (a Warden account name or any account key)
    /// chooses among imports of the same subject from several accounts.
    pub async fn remove_import(
        &self,
        account: &str,
        subject: &Subject,
        from: Option<&str>,
    ) -> Result<ImportView> {
        self.need(Scope::Write, "removing an import")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_by_ref(&mut tx, &op, account).await?;
        let from_key = match from {
            None => None,
            Some(f) => match f.trim().parse::<AccountPublicKey>() {
                Ok(k) => Some(k.to_string()),
                Err(_) => Some(self.account_by_ref(&mut tx, &op, f).await?.public_key),
            },
        };
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let by_from = |i: &Import| from_key.as_deref().is_none_or(|k| i.account.as_str() == k);
        let mut found: Vec<usize> = spec
            .imports
            .iter()
            .enumerate()
            .filter(|(_, i)| i.subject == *subject && by_from(i))
            .map(|(n, _)| n)
            .collect();
        if found.is_empty() {
            found = spec
                .imports
                .iter()
                .enumerate()
                .filter(|(_, i)| i.local_namespace() == subject && by_from(i))
                .map(|(n, _)| n)
                .collect();
        }
        let idx = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(OpsError::NotFound(format!(
                    "import {subject} of account {} (see `warden account import list {}`)",
                    acc.name, acc.name
                )));
            }
            _ => {
                return Err(OpsError::invalid(format!(
                    "account {} imports {subject} from several accounts: say which with --from",
                    acc.name
                )));
            }
        };
        let import = spec.imports.remove(idx);
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        let from_name = tx.account(import.account.as_str()).await?.map(|a| a.name);
        tx.record(self.event(
            "account.import.remove",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "from": import.account.as_str(), "subject": import.subject,
                   "type": import.import_type}),
        ))
        .await?;
        tx.commit().await?;
        Ok(ImportView {
            account: acc.name,
            account_public_key: acc.public_key,
            from: from_name,
            import,
            activation_expires_at: None,
        })
    }

    /// Issues an activation of `exporter`'s private export for an account (typically one
    /// Warden does not manage: Warden's own importers get theirs with `add_import`).
    /// Nothing is stored; the ledger records who was granted what.
    pub async fn create_activation(
        &self,
        exporter: &str,
        opts: &ActivationOptions,
    ) -> Result<ActivationView> {
        self.need(Scope::Write, "issuing an activation")?;
        if let Some(exp) = opts.expires_at
            && exp <= now()
        {
            return Err(OpsError::invalid(
                "the activation's expiry is in the past; give a later --expiry",
            ));
        }
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let acc = self.account_by_ref(&mut tx, &op, exporter).await?;
        let (target, target_account) = self.target_key(&mut tx, &op, &opts.target).await?;
        if target.as_str() == acc.public_key {
            return Err(OpsError::invalid(format!(
                "account {} needs no activation for its own export",
                acc.name
            )));
        }
        let spec: AccountSpec = from_json(&acc.spec)?;
        let export = self.covering_export(&spec, &acc.name, &opts.subject, target.as_str())?;
        if !export.token_req {
            return Err(OpsError::invalid(format!(
                "export {} of account {} is public: importers need no activation (make it private with `warden account export edit {} --subject {} --private`)",
                export.subject, acc.name, acc.name, export.subject
            )));
        }
        let subject = granted_subject(&export, &opts.subject, target.as_str())?;
        let (jwt, iat) = sign_activation(
            &mut tx,
            &acc.public_key,
            &export,
            &target,
            subject.clone(),
            opts.expires_at,
        )
        .await?;
        tx.record(self.event(
            "account.activation.create",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "subject": subject, "kind": export.export_type,
                   "target": target.as_str(), "expires_at": opts.expires_at}),
        ))
        .await?;
        tx.commit().await?;
        Ok(ActivationView {
            exporter: acc.name,
            exporter_public_key: acc.public_key,
            target: target.to_string(),
            target_account,
            subject: subject.to_string(),
            kind: export.export_type,
            issued_at: iat,
            expires_at: opts.expires_at,
            jwt,
        })
    }

    /// Revokes the activations of an export (chosen by its subject) issued to `target` (an
    /// account key, a Warden account's name, or `*` for every importer) up to now: the
    /// export's `revocations` gain the entry and the exporter is re-signed and queued.
    /// A Warden importer is re-signed too (its JWT changes), so nats-server re-checks its
    /// import when the push arrives.
    pub async fn revoke_activation(
        &self,
        exporter: &str,
        subject: &Subject,
        target: &str,
    ) -> Result<RevocationView> {
        self.need(Scope::Write, "revoking an activation")?;
        let mut tx = self.store.begin().await?;
        let op = self.operator_row(&mut tx).await?;
        let mut acc = self.account_by_ref(&mut tx, &op, exporter).await?;
        let (target_key, target_account) = if target.trim() == "*" {
            ("*".to_string(), None)
        } else {
            let (k, n) = self.target_key(&mut tx, &op, target).await?;
            (k.to_string(), n)
        };
        let mut spec: AccountSpec = from_json(&acc.spec)?;
        let (idx, export) = find_export(&spec, &acc.name, subject)?;
        if !export.token_req {
            return Err(OpsError::invalid(format!(
                "export {} of account {} is public: it has no activations to revoke (remove the import, or make the export private)",
                export.subject, acc.name
            )));
        }
        let export_before = export.clone();
        let at = now();
        let entry = spec.exports[idx]
            .revocations
            .entry(target_key.clone())
            .or_insert(at);
        *entry = (*entry).max(at);
        let revoked_at = *entry;
        self.resign_account(&mut tx, &op, &mut acc, spec).await?;
        let mut resigned = Vec::new();
        for (mut row, ispec) in self
            .importers_of(&mut tx, &op, &acc.public_key, &export_before)
            .await?
        {
            if target_key == "*" || row.public_key == target_key {
                self.resign_account(&mut tx, &op, &mut row, ispec).await?;
                resigned.push(row.name.clone());
            }
        }
        tx.record(self.event(
            "account.activation.revoke",
            "account",
            &acc.public_key,
            json!({"name": acc.name, "subject": export_before.subject, "target": target_key,
                   "revoked_at": revoked_at}),
        ))
        .await?;
        tx.commit().await?;
        Ok(RevocationView {
            exporter: acc.name,
            subject: export_before.subject.to_string(),
            target: target_key,
            target_account,
            revoked_at,
            importers_resigned: resigned,
        })
    }

    /// The account key an activation names: a public key (any account, Warden's or not)
    /// or the name of a Warden account.
    async fn target_key(
        &self,
        tx: &mut Tx<'_>,
        op: &OperatorRow,
        target: &str,
    ) -> Result<(AccountPublicKey, Option<String>)> {
        let t = target.trim();
        if t.is_empty() {
            return Err(OpsError::invalid(
                "a target account (public key or Warden account name) is required",
            ));
        }
        if let Ok(k) = t.parse::<AccountPublicKey>() {
            let name = tx
                .account(k.as_str())
                .await?
                .filter(|a| a.operator == op.public_key)
                .map(|a| a.name);
            return Ok((k, name));
        }
        if t.len() == 56 && t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(OpsError::invalid(format!(
                "{t} is not an account public key (those start with A)"
            )));
        }
        let row = self.account_row(tx, op, t).await?;
        Ok((parse_key(&row.public_key)?, Some(row.name)))
    }

    /// The export of `spec` that grants `subject` (to `target`).
    fn covering_export(
        &self,
        spec: &AccountSpec,
        account: &str,
        subject: &Subject,
        target: &str,
    ) -> Result<Export> {
        spec.exports
            .iter()
            .find(|e| e.subject == *subject)
            .or_else(|| {
                spec.exports
                    .iter()
                    .find(|e| granted_subject(e, subject, target).is_ok())
            })
            .cloned()
            .ok_or_else(|| {
                OpsError::NotFound(format!(
                    "export covering {subject} in account {account} (see `warden account export list {account}`)"
                ))
            })
    }
}

/// Signs an activation of `export` (of the account whose identity key is `exporter`) for
/// `target` to import `subject`: every activation Warden issues, for an import, an outside
/// account or an organisation's units, is made here, with the exporter's identity key (so
/// nats-server needs no `issuer_account`). Issued no earlier than a second after any
/// revocation of `target` (or `*`) on that export, so a new grant is never born revoked.
pub(crate) async fn sign_activation(
    tx: &mut Tx<'_>,
    exporter: &str,
    export: &Export,
    target: &AccountPublicKey,
    subject: Subject,
    expires_at: Option<i64>,
) -> Result<(String, i64)> {
    let mut claims = ActivationClaims::new(target, subject, export.export_type);
    claims.exp = expires_at;
    let t = now();
    let iat = [target.as_str(), "*"]
        .iter()
        .filter_map(|k| export.revocations.get(*k))
        .map(|r| r + 1)
        .fold(t, i64::max);
    let issues = claims.validate(iat);
    if let Some(i) = issues.iter().find(|i| i.blocking) {
        return Err(OpsError::invalid(format!(
            "the activation would be invalid: {}",
            i.kind
        )));
    }
    let signer = KeyPair::from_seed(&tx.seed(exporter).await?)?;
    let jwt = claims.encode_at(&signer, iat)?;
    Ok((jwt, iat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_jwt::KeyKind;

    fn s(x: &str) -> Subject {
        Subject::new(x).unwrap()
    }

    #[test]
    fn granted_subject_fills_and_checks_the_account_token() {
        let k = KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .unwrap();
        let mut e = Export::new(s("svc.*.req"), ExportType::Service);
        e.account_token_position = Some(2);
        let want = format!("svc.{k}.req");
        assert_eq!(
            granted_subject(&e, &s("svc.*.req"), k.as_str()).unwrap(),
            s(&want)
        );
        assert_eq!(
            granted_subject(&e, &s(&want), k.as_str()).unwrap(),
            s(&want)
        );
        assert!(granted_subject(&e, &s("svc.other.req"), k.as_str()).is_err());
        assert!(granted_subject(&e, &s("svc"), k.as_str()).is_err());
        let plain = Export::new(s("a.>"), ExportType::Stream);
        assert!(granted_subject(&plain, &s("a.b"), k.as_str()).is_ok());
        assert!(granted_subject(&plain, &s("b.a"), k.as_str()).is_err());
    }

    #[test]
    fn imports_from_needs_key_type_and_cover() {
        let k = KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .unwrap();
        let e = Export::new(s("a.>"), ExportType::Service);
        let i = Import::new(s("a.b"), k.clone(), ExportType::Service);
        assert!(imports_from(&i, k.as_str(), &e));
        let i = Import::new(s("a.b"), k.clone(), ExportType::Stream);
        assert!(!imports_from(&i, k.as_str(), &e));
        let i = Import::new(s("x.b"), k.clone(), ExportType::Service);
        assert!(!imports_from(&i, k.as_str(), &e));
    }
}
