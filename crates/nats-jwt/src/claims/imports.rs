//! Imports: streams and services an account takes from other accounts.

use serde::{Deserialize, Serialize};

use super::exports::ExportType;
use super::limits::OperatorLimits;
use super::ser;
use crate::keys::AccountPublicKey;
use crate::subject::Subject;
use crate::validation::{IssueKind, ValidationIssue};

/// One import of an account (Go order of fields kept on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// Label.
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub name: Option<String>,
    /// The subject as exported by the exporting account.
    pub subject: Subject,
    /// The exporting account.
    pub account: AccountPublicKey,
    /// Activation JWT for a private export (raw compact token).
    #[serde(default, skip_serializing_if = "ser::opt_str_empty")]
    pub token: Option<String>,
    /// Deprecated remapping (use `local_subject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Subject>,
    /// Importer-side subject; may reference `*` tokens of `subject` as `$1`…`$n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_subject: Option<Subject>,
    /// Stream or service.
    #[serde(rename = "type")]
    pub import_type: ExportType,
    /// Services only: share importer info for latency tracking.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub share: bool,
    /// Streams only: message traces of the exporter may continue into the importer.
    #[serde(default, skip_serializing_if = "ser::is_false")]
    pub allow_trace: bool,
}

impl Import {
    /// A plain import of `subject` from `account`.
    pub fn new(subject: Subject, account: AccountPublicKey, import_type: ExportType) -> Self {
        Import {
            name: None,
            subject,
            account,
            token: None,
            to: None,
            local_subject: None,
            import_type,
            share: false,
            allow_trace: false,
        }
    }

    /// The subject in the importer's own namespace.
    pub fn local_namespace(&self) -> &Subject {
        if let Some(l) = &self.local_subject {
            return l;
        }
        match (&self.to, self.import_type) {
            (Some(to), ExportType::Stream) => to,
            _ => &self.subject,
        }
    }

    fn validate(&self, importer: &str, issues: &mut Vec<ValidationIssue>) {
        let subject = self.subject.to_string();
        if self.share && self.import_type != ExportType::Service {
            issues.push(ValidationIssue::error(IssueKind::ShareOnStreamImport {
                subject: subject.clone(),
            }));
        }
        if self.allow_trace && self.import_type != ExportType::Stream {
            issues.push(ValidationIssue::error(
                IssueKind::AllowTraceOnServiceImport {
                    subject: subject.clone(),
                },
            ));
        }
        if self.to.is_some() {
            issues.push(ValidationIssue::warning(IssueKind::DeprecatedImportTo {
                subject: subject.clone(),
            }));
            if self.local_subject.is_some() {
                issues.push(ValidationIssue::error(IssueKind::ImportToAndLocalSubject {
                    subject: subject.clone(),
                }));
            }
        }
        if let Some(local) = &self.local_subject
            && let Err(reason) = check_local_subject(&self.subject, local)
        {
            issues.push(ValidationIssue::error(IssueKind::InvalidLocalSubject {
                subject: subject.clone(),
                local_subject: local.to_string(),
                reason,
            }));
        }
        if let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) {
            self.validate_token(importer, token, issues);
        }
    }

    fn validate_token(&self, importer: &str, token: &str, issues: &mut Vec<ValidationIssue>) {
        let subject = self.subject.to_string();
        let act = match crate::jwt::decode_embedded::<super::Activation>(token) {
            Ok(a) => a,
            Err(e) => {
                issues.push(ValidationIssue::error(IssueKind::InvalidImportToken {
                    subject,
                    reason: e.to_string(),
                }));
                return;
            }
        };
        let mut mismatch = |reason: String| {
            issues.push(ValidationIssue::error(IssueKind::ImportTokenMismatch {
                subject: subject.clone(),
                reason,
            }));
        };
        let exporter = self.account.as_str();
        let by_exporter = act.iss == exporter
            || act
                .nats
                .issuer_account
                .as_ref()
                .is_some_and(|a| a.as_str() == exporter);
        if !by_exporter {
            mismatch(format!(
                "activation is not issued by the exporting account {exporter}"
            ));
        }
        if act.sub != importer {
            mismatch(format!(
                "activation is for account {:?}, not for the importing account {importer}",
                act.sub
            ));
        }
        if act.nats.kind != self.import_type {
            mismatch(format!(
                "activation kind {} does not match import type {}",
                act.nats.kind, self.import_type
            ));
        }
        // The token's own body must hold, as nats-server checks it (times aside: an
        // expired activation is the server's to refuse when it is used).
        let mut body = Vec::new();
        <super::Activation as crate::jwt::ClaimBody>::validate_body(&act, &mut body);
        for issue in body.iter().filter(|i| i.blocking) {
            mismatch(format!("activation is invalid: {}", issue.kind));
        }
        let checked = match (&self.to, self.import_type) {
            (Some(to), ExportType::Service) => to,
            _ => &self.subject,
        };
        if !checked.is_subset_of(&act.nats.subject) {
            mismatch(format!(
                "subject {checked} is not contained in the activation subject {}",
                act.nats.subject
            ));
        }
    }
}

/// Checks the `local_subject` rules against the exported `subject`.
fn check_local_subject(subject: &Subject, local: &Subject) -> Result<(), String> {
    let stars = subject.tokens().filter(|t| *t == "*").count();
    let mut used = 0;
    for t in local.tokens() {
        if t == "*" {
            used += 1;
        } else if let Some(n) = t.strip_prefix('$') {
            match n.parse::<usize>() {
                Ok(n) if n >= 1 && n <= stars => used += 1,
                _ => {
                    return Err(format!(
                        "reference {t} does not name a `*` token of the subject"
                    ));
                }
            }
        }
    }
    if used != stars {
        return Err(format!(
            "uses {used} wildcard tokens/references but the subject has {stars} `*` tokens"
        ));
    }
    let full = |s: &Subject| s.tokens().last() == Some(">");
    if full(subject) != full(local) {
        return Err("must end in `>` exactly when the subject does".into());
    }
    Ok(())
}

/// Validates the import list of the account `importer` against its limits.
pub(crate) fn validate_imports(
    imports: &[Import],
    importer: &str,
    limits: &OperatorLimits,
    issues: &mut Vec<ValidationIssue>,
) {
    let max = limits.account.imports;
    if max >= 0 && imports.len() as i64 > max {
        issues.push(ValidationIssue::error(IssueKind::TooManyImports {
            count: imports.len(),
            max,
        }));
    }
    for i in imports {
        i.validate(importer, issues);
    }
    let services: Vec<&Import> = imports
        .iter()
        .filter(|i| i.import_type == ExportType::Service)
        .collect();
    for (n, a) in services.iter().enumerate() {
        for b in &services[n + 1..] {
            let (x, y) = (a.local_namespace(), b.local_namespace());
            if x.is_subset_of(y) || y.is_subset_of(x) {
                issues.push(ValidationIssue::error(
                    IssueKind::OverlappingServiceImports {
                        first: x.to_string(),
                        second: y.to_string(),
                    },
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subject {
        Subject::new(x).unwrap()
    }

    #[test]
    fn local_subject_rules() {
        assert!(check_local_subject(&s("a.*.b.*"), &s("x.$2.$1")).is_ok());
        assert!(check_local_subject(&s("a.*"), &s("x.*")).is_ok());
        assert!(check_local_subject(&s("a.>"), &s("x.>")).is_ok());
        assert!(check_local_subject(&s("a.>"), &s("x.y")).is_err());
        assert!(check_local_subject(&s("a.*"), &s("x.y")).is_err());
        assert!(check_local_subject(&s("a.*"), &s("x.$2")).is_err());
    }
}

#[cfg(test)]
mod flag_and_token_tests {
    use super::*;
    use crate::claims::ActivationClaims;
    use crate::keys::{KeyKind, KeyPair};

    fn s(x: &str) -> Subject {
        Subject::new(x).unwrap()
    }

    fn key() -> (KeyPair, AccountPublicKey) {
        let kp = KeyPair::generate(KeyKind::Account);
        let pk = kp.account_public_key().unwrap();
        (kp, pk)
    }

    fn issues_of(i: &Import, importer: &str) -> Vec<IssueKind> {
        let mut issues = Vec::new();
        validate_imports(
            std::slice::from_ref(i),
            importer,
            &OperatorLimits::default(),
            &mut issues,
        );
        issues
            .into_iter()
            .filter(|i| i.blocking)
            .map(|i| i.kind)
            .collect()
    }

    #[test]
    fn share_is_for_services_and_allow_trace_for_streams() {
        let (_, exporter) = key();
        let (_, importer) = key();
        let mut i = Import::new(s("a.b"), exporter, ExportType::Stream);
        i.share = true;
        assert!(
            issues_of(&i, importer.as_str())
                .iter()
                .any(|k| matches!(k, IssueKind::ShareOnStreamImport { .. }))
        );
        i.share = false;
        i.allow_trace = true;
        assert!(issues_of(&i, importer.as_str()).is_empty());
        i.import_type = ExportType::Service;
        assert!(
            issues_of(&i, importer.as_str())
                .iter()
                .any(|k| matches!(k, IssueKind::AllowTraceOnServiceImport { .. }))
        );
        i.allow_trace = false;
        i.share = true;
        assert!(issues_of(&i, importer.as_str()).is_empty());
    }

    #[test]
    fn token_must_fit_issuer_target_kind_and_subject() {
        let (exp_kp, exporter) = key();
        let (_, importer) = key();
        let (_, stranger) = key();
        let mut i = Import::new(s("svc.a"), exporter.clone(), ExportType::Service);
        let mut act = ActivationClaims::new(&importer, s("svc.*"), ExportType::Service);
        i.token = Some(act.encode(&exp_kp).unwrap());
        assert!(issues_of(&i, importer.as_str()).is_empty());
        // another importer's token
        assert!(
            issues_of(&i, stranger.as_str())
                .iter()
                .any(|k| matches!(k, IssueKind::ImportTokenMismatch { .. }))
        );
        // a stream token for a service import
        let mut act = ActivationClaims::new(&importer, s("svc.*"), ExportType::Stream);
        i.token = Some(act.encode(&exp_kp).unwrap());
        assert!(!issues_of(&i, importer.as_str()).is_empty());
        // a token for another subject
        let mut act = ActivationClaims::new(&importer, s("other.*"), ExportType::Service);
        i.token = Some(act.encode(&exp_kp).unwrap());
        assert!(!issues_of(&i, importer.as_str()).is_empty());
        // signed by someone else
        let (other_kp, _) = key();
        let mut act = ActivationClaims::new(&importer, s("svc.*"), ExportType::Service);
        i.token = Some(act.encode(&other_kp).unwrap());
        assert!(!issues_of(&i, importer.as_str()).is_empty());
        // a token whose own body is invalid (queue group in its subject)
        let mut act = ActivationClaims::new(&importer, s("svc.* q"), ExportType::Service);
        i.token = Some(act.encode(&exp_kp).unwrap());
        let found = issues_of(&i, importer.as_str());
        assert!(
            found.iter().any(|k| matches!(k, IssueKind::ImportTokenMismatch { reason, .. } if reason.contains("invalid"))),
            "{found:?}"
        );
    }

    #[test]
    fn a_token_signed_here_skips_only_its_own_signature_check() {
        let (exp_kp, exporter) = key();
        let (_, importer) = key();
        let mut i = Import::new(s("svc.a"), exporter.clone(), ExportType::Service);
        let mut act = ActivationClaims::new(&importer, s("svc.*"), ExportType::Service);
        let token = act.encode(&exp_kp).unwrap();
        assert!(crate::jwt::signed_here(&token));
        i.token = Some(token.clone());
        assert!(issues_of(&i, importer.as_str()).is_empty());
        // The same token with another signature was not signed here: it is verified, and
        // refused.
        let (body, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let forged = format!("{body}.{flipped}{}", &sig[1..]);
        assert!(!crate::jwt::signed_here(&forged));
        i.token = Some(forged);
        let found = issues_of(&i, importer.as_str());
        assert!(
            found
                .iter()
                .any(|k| matches!(k, IssueKind::InvalidImportToken { .. })),
            "{found:?}"
        );
        // Claims from the caller's own store: the forged token's contents are checked, its
        // signature left to the server; and only while validate_own runs.
        let mut account = crate::claims::AccountClaims::new(&importer, "IMPORTER");
        account.nats.imports.push(i.clone());
        let blocking = |issues: Vec<crate::validation::ValidationIssue>| {
            issues.into_iter().filter(|i| i.blocking).count()
        };
        assert_eq!(blocking(account.validate_own(0)), 0);
        assert_eq!(blocking(account.validate(0)), 1);
        // Signed on another thread (other claims: Ed25519 is deterministic, so the same
        // claims in the same second make the same token): verified here, and valid.
        let mut act = ActivationClaims::new(&importer, s("svc.a"), ExportType::Service);
        let elsewhere = std::thread::spawn(move || act.encode(&exp_kp).unwrap())
            .join()
            .unwrap();
        assert!(!crate::jwt::signed_here(&elsewhere));
        i.token = Some(elsewhere);
        let found = issues_of(&i, importer.as_str());
        assert!(found.is_empty(), "{found:?}");
    }
}
