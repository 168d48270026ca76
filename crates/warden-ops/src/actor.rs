//! Who asks for an operation, and what they may do: every operation runs on a
//! [`crate::Warden`] bound to an [`Actor`], and decides inside itself whether that
//! actor may do it, so every surface gets the same answer.
//!
//! Scopes are the API tokens' (`read`, `write`, `creds`, `admin`; `admin` grants every
//! other). The local command line acts as the operator, with every scope: whoever can
//! run `warden` here can read the database and its master key anyway. Anything whose
//! result lets its holder connect to NATS — a seed, a creds file, an onboarding package,
//! a bearer user's JWT, a key registered for a directory user — needs `creds`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::OpsError;
use crate::tokens::TokenInfo;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read-only requests (GET).
    Read,
    /// Mutations (POST, PATCH, DELETE).
    Write,
    /// Creds files (JWT + seed) of users.
    Creds,
    /// Everything.
    Admin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Creds, Scope::Admin];

    /// The scope's name (`read`, `write`, `creds`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Creds => "creds",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of `read`, `write`, `creds`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: expected read, write, creds or admin")]
pub struct ScopeError(pub String);

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Scope, ScopeError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "creds" => Ok(Scope::Creds),
            "admin" => Ok(Scope::Admin),
            _ => Err(ScopeError(s.to_string())),
        }
    }
}

/// Where a request came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActorKind {
    /// The local command line: the operator, with every scope.
    Operator,
    /// An HTTP API request with a bearer token.
    Token {
        /// The token's id (`tok_…`).
        id: String,
    },
    /// A console session, signed in with a token.
    Console {
        /// The token's id (`tok_…`).
        id: String,
    },
    /// A caller of the NATS request/reply service (reaching it is what NATS permissions
    /// on the service prefix allow; its scopes are what `warden serve` was told).
    NatsService,
    /// Warden's own background work in `serve` (relay, expiry of grants, observers).
    System,
    /// An HTTP request without a bearer token (an onboarding download, whose one-time
    /// token is checked by the operation): known only by the address it came from.
    HttpPeer {
        /// The peer's address, when the server was started with it.
        addr: Option<SocketAddr>,
    },
}

/// Who asks for an operation, with the scopes they hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The name written to the ledger (`cli:root`, `http:<token name>`, …).
    name: String,
    kind: ActorKind,
    scopes: Vec<Scope>,
    /// The directory user this actor is bound to act as (a token bound to a directory
    /// user): governance requests act as them and nobody else.
    dir_user: Option<String>,
}

impl Actor {
    /// The local operator (the command line), with every scope.
    pub fn operator(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            kind: ActorKind::Operator,
            scopes: vec![Scope::Admin],
            dir_user: None,
        }
    }

    /// Warden's own background work, with every scope.
    pub fn system(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            kind: ActorKind::System,
            scopes: vec![Scope::Admin],
            dir_user: None,
        }
    }

    /// An HTTP API request authenticated with `token`.
    pub fn token(token: &TokenInfo) -> Actor {
        Actor {
            name: format!("http:{}:{}", token.name, token.id),
            kind: ActorKind::Token {
                id: token.id.clone(),
            },
            scopes: token.scopes.clone(),
            dir_user: token.dir_user.clone(),
        }
    }

    /// A console session signed in with the token `id` named `name`, holding `scopes`
    /// (a token bound to a directory user cannot sign in to the console).
    pub fn console(id: &str, name: &str, scopes: &[Scope]) -> Actor {
        Actor {
            name: format!("console:{name}:{id}"),
            kind: ActorKind::Console { id: id.to_string() },
            scopes: scopes.to_vec(),
            dir_user: None,
        }
    }

    /// A caller of the NATS request/reply service, holding `scopes`.
    pub fn nats_service(scopes: &[Scope]) -> Actor {
        Actor {
            name: "nats-service".to_string(),
            kind: ActorKind::NatsService,
            scopes: scopes.to_vec(),
            dir_user: None,
        }
    }

    /// An unauthenticated HTTP request from `addr` (`None` when the server was not given
    /// peer addresses), with no scope: named `http:<ip>:<port>` in the ledger, so a
    /// refused download says where it came from.
    pub fn http_peer(addr: Option<SocketAddr>) -> Actor {
        Actor {
            name: match addr {
                Some(a) => format!("http:{a}"),
                None => "http:unknown-peer".to_string(),
            },
            kind: ActorKind::HttpPeer { addr },
            scopes: Vec::new(),
            dir_user: None,
        }
    }

    /// The name written to the ledger.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the request came from.
    pub fn kind(&self) -> &ActorKind {
        &self.kind
    }

    /// The scopes held.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// The directory user this actor is bound to, if any.
    pub fn dir_user(&self) -> Option<&str> {
        self.dir_user.as_deref()
    }

    /// Whether the actor holds `scope` (`admin` holds every scope).
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// Refuses unless the actor may run an operation that needs `scope`: an actor bound
    /// to a directory user is refused ([`OpsError::Bound`], see [`Self::require_unbound`]),
    /// one without the scope too ([`OpsError::MissingScope`]); `what` names what was
    /// asked for. The governance operations, which a bound actor may use, call
    /// [`Self::require_governance`] instead.
    pub fn require(&self, scope: Scope, what: &str) -> Result<(), OpsError> {
        self.require_unbound(what)?;
        self.require_governance(scope, what)
    }

    /// [`Self::require`] for the governance operations (directory, roles, tasks,
    /// proposals, keys): the scope alone, so an actor bound to a directory user may use
    /// them (as that user: see [`Self::acting_as`]).
    pub fn require_governance(&self, scope: Scope, what: &str) -> Result<(), OpsError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(OpsError::MissingScope {
                scope,
                what: what.to_string(),
            })
        }
    }

    /// Refuses an actor bound to a directory user: such an actor may use the governance
    /// operations (directory, proposals, their own keys) and nothing else.
    pub fn require_unbound(&self, what: &str) -> Result<(), OpsError> {
        match &self.dir_user {
            None => Ok(()),
            Some(user) => Err(OpsError::Bound(format!(
                "this token acts as directory user {user}: it may use the governance \
                 operations (/v1/dir…, /v1/proposals…) only, not {what}"
            ))),
        }
    }

    /// The same actor, for the parts of an operation that the operation has already
    /// authorized (so an inner step never asks again for a scope the caller was not
    /// asked for). Crate-private: no surface can make one.
    pub(crate) fn authorized(&self) -> Actor {
        Actor {
            name: self.name.clone(),
            kind: self.kind.clone(),
            scopes: vec![Scope::Admin],
            dir_user: None,
        }
    }

    /// The directory user a governance request acts as: for an actor bound to a directory
    /// user, that user (`given` may be absent or name them, nobody else); for any other
    /// actor, `given` as it is (an operator speaks for whoever they name).
    pub fn acting_as(&self, given: Option<&str>) -> Result<Option<String>, OpsError> {
        let given = given.filter(|a| !a.is_empty());
        match (&self.dir_user, given) {
            (None, given) => Ok(given.map(str::to_string)),
            (Some(bound), None) => Ok(Some(bound.clone())),
            (Some(bound), Some(named)) if named == bound => Ok(Some(named.to_string())),
            (Some(bound), Some(named)) => Err(OpsError::Bound(format!(
                "this token acts as directory user {bound} only, not as {named:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn token(scopes: &[Scope], dir_user: Option<&str>) -> TokenInfo {
        TokenInfo {
            id: "tok_x".into(),
            name: "x".into(),
            scopes: scopes.to_vec(),
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            dir_user: dir_user.map(str::to_string),
        }
    }

    #[test]
    fn a_missing_scope_is_forbidden_and_admin_holds_all() {
        let read = Actor::token(&token(&[Scope::Read], None));
        assert!(read.require(Scope::Read, "reading").is_ok());
        let e = read.require(Scope::Creds, "a user's creds").unwrap_err();
        assert_eq!((e.kind(), e.code()), (ErrorKind::Refused, "forbidden"));
        assert!(e.to_string().contains("creds scope"), "{e}");
        let admin = Actor::token(&token(&[Scope::Admin], None));
        assert!(Scope::ALL.iter().all(|s| admin.has(*s)));
        assert!(Actor::operator("cli:root").has(Scope::Creds));
        assert!(
            Actor::nats_service(&[Scope::Read, Scope::Write])
                .require(Scope::Creds, "x")
                .is_err()
        );
    }

    #[test]
    fn an_http_peer_is_named_by_its_address_and_holds_no_scope() {
        let addr: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        let peer = Actor::http_peer(Some(addr));
        assert_eq!(peer.name(), "http:127.0.0.1:54321");
        assert_eq!(peer.kind(), &ActorKind::HttpPeer { addr: Some(addr) });
        assert!(Scope::ALL.iter().all(|s| !peer.has(*s)));
        assert_eq!(
            peer.require(Scope::Read, "reading").unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(Actor::http_peer(None).name(), "http:unknown-peer");
    }

    #[test]
    fn a_bound_actor_acts_as_its_user_only() {
        let op = Actor::token(&token(&[Scope::Read, Scope::Write], None));
        assert_eq!(op.acting_as(None).unwrap(), None);
        assert_eq!(op.acting_as(Some("")).unwrap(), None);
        assert_eq!(
            op.acting_as(Some("olivia")).unwrap().as_deref(),
            Some("olivia")
        );
        assert!(op.require_unbound("accounts").is_ok());
        assert!(op.require(Scope::Read, "accounts").is_ok());
        let bound = Actor::token(&token(&[Scope::Read, Scope::Write], Some("mallory")));
        assert_eq!(bound.acting_as(None).unwrap().as_deref(), Some("mallory"));
        assert_eq!(
            bound.acting_as(Some("mallory")).unwrap().as_deref(),
            Some("mallory")
        );
        let e = bound.acting_as(Some("olivia")).unwrap_err();
        assert_eq!(e.code(), "forbidden");
        assert!(e.to_string().contains("not as \"olivia\""), "{e}");
        assert_eq!(
            bound.require_unbound("accounts").unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(
            bound.require(Scope::Read, "accounts").unwrap_err().code(),
            "forbidden"
        );
        assert!(bound.require_governance(Scope::Read, "proposals").is_ok());
        let inner = bound.authorized();
        assert_eq!(inner.name(), bound.name());
        assert!(inner.dir_user().is_none() && inner.has(Scope::Creds));
    }
}
