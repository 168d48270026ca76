//! Activation claims: a token an exporting account gives an importer for a private export.

use serde::{Deserialize, Serialize};

use super::exports::ExportType;
use super::{ActivationClaims, Claims};
use crate::jwt::ClaimBody;
use crate::keys::{AccountPublicKey, KeyKind};
use crate::subject::Subject;
use crate::validation::{IssueKind, ValidationIssue};

/// The `nats` body of an activation JWT (`sub` is the importing account).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// The exported subject being granted (may be narrower than the export).
    pub subject: Subject,
    /// Stream or service (wire `kind`, because `type` is `"activation"`).
    pub kind: ExportType,
    /// The exporting account, when signed by one of its signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_account: Option<AccountPublicKey>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl ActivationClaims {
    /// New activation granting `importer` access to `subject` of the given kind.
    pub fn new(importer: &AccountPublicKey, subject: Subject, kind: ExportType) -> Self {
        Claims::with_body(
            importer.as_str(),
            "",
            Activation {
                subject,
                kind,
                issuer_account: None,
                tags: Vec::new(),
            },
        )
    }
}

impl ClaimBody for Activation {
    const TYPE: Option<&'static str> = Some("activation");
    const EMBEDDED: bool = true;

    fn allowed_issuers() -> &'static [KeyKind] {
        &[KeyKind::Operator, KeyKind::Account]
    }

    fn subject_kind() -> Option<KeyKind> {
        Some(KeyKind::Account)
    }

    fn name_expected() -> bool {
        false
    }

    fn validate_body(claims: &Claims<Self>, issues: &mut Vec<ValidationIssue>) {
        if claims.nats.subject.queue().is_some() {
            issues.push(ValidationIssue::error(IssueKind::QueueInExport {
                subject: claims.nats.subject.to_string(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    #[test]
    fn activations_validate_and_round_trip() {
        let exporter = KeyPair::generate(KeyKind::Account);
        let importer = KeyPair::generate(KeyKind::Account)
            .account_public_key()
            .unwrap();
        let mut c = ActivationClaims::new(
            &importer,
            Subject::new("svc.>").unwrap(),
            ExportType::Service,
        );
        c.exp = Some(4_000_000_000);
        let jwt = c.encode(&exporter).unwrap();
        let back = crate::jwt::decode::<Activation>(&jwt).unwrap();
        assert_eq!(back.sub, importer.as_str());
        assert_eq!(back.iss, exporter.public_key().as_str());
        assert!(!crate::is_blocking(&back.validate(0)));
        // a user key may not sign one
        let user = KeyPair::generate(KeyKind::User);
        let mut c = ActivationClaims::new(
            &importer,
            Subject::new("svc.>").unwrap(),
            ExportType::Service,
        );
        assert!(c.encode(&user).is_err() || crate::is_blocking(&c.validate(0)));
    }
}
