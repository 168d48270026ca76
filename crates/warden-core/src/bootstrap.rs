//! The bootstrap plan of an empty database and the "JWT migrations" applied on top.
//!
//! Bootstrap (in one transaction, in this order): the system account key; the
//! operator, naming that key as `system_account`, with a signing key that issues
//! every account; the operator's own account and user; the system account `SYS`
//! and its user `sys`; then every [`JwtMigration`] not yet recorded. A migration
//! is a versioned, declarative list of accounts and users that must exist; each
//! is applied once, and an entity that already exists is left as it is.

use std::collections::BTreeSet;

use nats_jwt::{ResponsePermission, Subject};
use serde::{Deserialize, Serialize};

use crate::names::{NameError, NamingPolicy};
use crate::spec::{AccountSpec, UserSpec};

/// Default prefix of Warden's request/reply service on NATS.
pub const DEFAULT_SERVICE_PREFIX: &str = "WARDEN";

/// One required account or user.
// A handful per migration, read once: the spec stays inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MigrationStep {
    /// An account that must exist.
    Account {
        /// Its name.
        name: String,
        /// Its spec when created.
        #[serde(default)]
        spec: AccountSpec,
    },
    /// A user that must exist in an account.
    User {
        /// The account's name.
        account: String,
        /// The user's name.
        name: String,
        /// Its spec when created.
        #[serde(default)]
        spec: UserSpec,
    },
}

/// A versioned set of required accounts and users, applied once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JwtMigration {
    /// Stable identifier, ordered lexically (e.g. `0001_backend`).
    pub id: String,
    /// What it is for.
    pub description: String,
    /// What must exist.
    pub steps: Vec<MigrationStep>,
}

/// A migration list that cannot be applied; every problem is listed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid JWT migrations: {}", .problems.join("; "))]
pub struct MigrationListError {
    /// Every problem found.
    pub problems: Vec<String>,
}

/// Checks a migration list: ids non-empty, unique and ascending; names valid under
/// `naming`. Lists every problem and applies nothing.
pub fn check_migrations(
    list: &[JwtMigration],
    naming: &NamingPolicy,
) -> Result<(), MigrationListError> {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut last: Option<&str> = None;
    for m in list {
        if m.id.trim().is_empty() {
            problems.push("a migration has an empty id".to_string());
        } else if !seen.insert(m.id.as_str()) {
            problems.push(format!("migration id {:?} appears twice", m.id));
        } else if last.is_some_and(|l| l > m.id.as_str()) {
            problems.push(format!(
                "migration {:?} comes after {:?} but sorts before it",
                m.id,
                last.unwrap_or_default()
            ));
        }
        last = Some(m.id.as_str());
        for step in &m.steps {
            let r: Result<(), NameError> = match step {
                MigrationStep::Account { name, .. } => naming.account(name).map(|_| ()),
                MigrationStep::User { account, name, .. } => naming
                    .account(account)
                    .and_then(|_| naming.user(name))
                    .map(|_| ()),
            };
            if let Err(e) = r {
                problems.push(format!("migration {:?}: {e}", m.id));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MigrationListError { problems })
    }
}

/// The built-in migrations: a `BACKEND` account (JetStream enabled) with
/// - `backend`: may call Warden's service (`<prefix>.>`), receive replies and
///   follow the change stream (`<prefix>.events.>`);
/// - `superuser`: unrestricted, for administering JetStream;
/// - `warden`: the service user, limited to serving requests under `<prefix>.>`,
///   answering them, service discovery (`$SRV.>`) and publishing the change stream
///   (`<prefix>.events.>`).
pub fn default_migrations(service_prefix: &str) -> Vec<JwtMigration> {
    let all = subject(&format!("{service_prefix}.>"));
    let inbox = subject("_INBOX.>");

    let events = subject(&format!("{service_prefix}.events.>"));

    let mut backend = UserSpec::default();
    backend.permissions.publish.allow = vec![all.clone()];
    backend.permissions.subscribe.allow = vec![inbox, events.clone()];

    let mut service = UserSpec::default();
    service.permissions.subscribe.allow = vec![all];
    service.permissions.publish.allow = vec![subject("$SRV.>"), events];
    service.permissions.subscribe.allow.push(subject("$SRV.>"));
    service.permissions.response = Some(ResponsePermission { max: 1, ttl_ns: 0 });

    vec![JwtMigration {
        id: "0001_backend".into(),
        description: "backend account with its backend, superuser and service users".into(),
        steps: vec![
            MigrationStep::Account {
                name: "BACKEND".into(),
                spec: AccountSpec::with_unlimited_jetstream(),
            },
            MigrationStep::User {
                account: "BACKEND".into(),
                name: "backend".into(),
                spec: backend,
            },
            MigrationStep::User {
                account: "BACKEND".into(),
                name: "superuser".into(),
                spec: UserSpec::default(),
            },
            MigrationStep::User {
                account: "BACKEND".into(),
                name: "warden".into(),
                spec: service,
            },
        ],
    }]
}

fn subject(s: &str) -> Subject {
    Subject::new(s).unwrap_or_else(|e| panic!("built-in subject {s:?} is invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_migrations_are_valid_and_round_trip() {
        let list = default_migrations(DEFAULT_SERVICE_PREFIX);
        check_migrations(&list, &NamingPolicy::default()).unwrap();
        let json = serde_json::to_string(&list).unwrap();
        let back: Vec<JwtMigration> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
    }

    #[test]
    fn service_user_is_confined_to_its_prefix() {
        let list = default_migrations("NATS-MANAGER");
        let MigrationStep::User { spec, .. } = &list[0].steps[3] else {
            panic!("expected the service user")
        };
        let subs: Vec<&str> = spec
            .permissions
            .subscribe
            .allow
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(subs, ["NATS-MANAGER.>", "$SRV.>"]);
        assert!(spec.permissions.response.is_some());
    }

    #[test]
    fn every_problem_is_listed() {
        let mut list = default_migrations("W");
        list.push(JwtMigration {
            id: "0000_early".into(),
            description: String::new(),
            steps: vec![MigrationStep::Account {
                name: "lower".into(),
                spec: AccountSpec::default(),
            }],
        });
        list.push(list[0].clone());
        let err = check_migrations(&list, &NamingPolicy::default()).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
    }
}
