//! Admin bearer tokens of the HTTP API: `Authorization: Bearer wdn_<base32>`.
//!
//! A token is 32 random bytes, base32-encoded (lowercase, no padding) behind the prefix
//! `wdn_`. Its secret is shown once, when it is created; the store keeps only its SHA-256
//! (hex), so a copy of the database authenticates nothing. Each token carries scopes
//! ([`Scope`]): `read` (GETs), `write` (mutations), `creds` (the creds endpoint) and `admin`
//! (everything). Creating or revoking a token appends a ledger event in the same
//! transaction; the event names the token (id, name, scopes, expiry), never its secret or
//! hash.
//!
//! The CLI side is `warden token create|list|revoke`.

use rand::RngCore as _;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use warden_store::{ApiTokenRow, NewEvent, Store, StoreError};
use zeroize::Zeroizing;

use crate::now;

/// Prefix of every token secret.
pub const TOKEN_PREFIX: &str = "wdn_";
/// Random bytes in a token secret.
const SECRET_BYTES: usize = 32;
/// Length of the base32 text of [`SECRET_BYTES`] bytes (no padding).
const SECRET_CHARS: usize = 52;
/// Longest token name accepted.
const MAX_NAME_LEN: usize = 64;
/// `last_used_at` is written at most once per this many seconds per token.
const TOUCH_INTERVAL_SECS: i64 = 60;
/// Ledger object kind of token events.
const OBJECT_KIND: &str = "api_token";

pub use crate::actor::{Scope, ScopeError};

/// A token as shown to people and scripts: everything but its secret and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Public identifier (`tok_…`), used to revoke it.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// Scopes, sorted, without duplicates.
    pub scopes: Vec<Scope>,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Expires (unix seconds); `None`: never.
    pub expires_at: Option<i64>,
    /// Revoked at (unix seconds), if revoked.
    pub revoked_at: Option<i64>,
    /// Last used (unix seconds, approximately: stamped at most once a minute).
    pub last_used_at: Option<i64>,
    /// The directory user this token acts as; `None`: an operator's token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir_user: Option<String>,
}

impl TokenInfo {
    /// Whether the token grants `needed` (`admin` grants everything).
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&needed)
    }

    fn from_row(row: ApiTokenRow) -> Result<TokenInfo, TokenError> {
        Ok(TokenInfo {
            scopes: parse_scopes(&row.scopes).map_err(|e| {
                TokenError::Corrupt(format!("API token {} has unreadable scopes: {e}", row.id))
            })?,
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
            dir_user: row.dir_user,
        })
    }
}

/// What can go wrong managing tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The input is invalid (a usage error).
    #[error("{0}")]
    Invalid(String),
    /// No token has this id.
    #[error("API token {0} not found")]
    NotFound(String),
    /// The token is already revoked.
    #[error("API token {0} is already revoked")]
    AlreadyRevoked(String),
    /// A stored token row is unreadable.
    #[error("{0}")]
    Corrupt(String),
    /// The directory user a token was to be bound to does not exist.
    #[error("no directory user {0:?}")]
    UnknownDirUser(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The text is not a Warden token at all.
    #[error("malformed bearer token: expected wdn_ followed by 52 base32 characters")]
    Malformed,
    /// No such token.
    #[error("unknown bearer token")]
    Unknown,
    /// The token has expired.
    #[error("bearer token expired")]
    Expired,
    /// The token has been revoked.
    #[error("bearer token revoked")]
    Revoked,
    /// The token's stored row is unreadable.
    #[error("{0}")]
    Corrupt(String),
    /// The store failed (not the caller's fault).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Whether this is a failure of Warden rather than a refused credential.
    pub fn is_internal(&self) -> bool {
        matches!(self, AuthError::Store(_) | AuthError::Corrupt(_))
    }
}

/// Parses a comma list of scopes (sorted, deduplicated; at least one).
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, ScopeError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.push(part.parse::<Scope>()?);
    }
    normalise(&mut out);
    if out.is_empty() {
        return Err(ScopeError(text.to_string()));
    }
    Ok(out)
}

fn normalise(scopes: &mut Vec<Scope>) {
    scopes.sort();
    scopes.dedup();
}

/// Scopes as `read,write`.
pub fn join_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Hex SHA-256 of a token secret: what the store keeps.
fn hash_secret(secret: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(secret.as_bytes()))
}

fn random_base32(bytes: usize) -> String {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    rand::rngs::OsRng.fill_bytes(&mut buf);
    data_encoding::BASE32_NOPAD
        .encode(&buf)
        .to_ascii_lowercase()
}

/// Whether `bearer` has the shape of a token secret (prefix, 52 lowercase base32 chars).
fn well_formed(bearer: &str) -> bool {
    bearer.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == SECRET_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    })
}

fn check_name(name: &str) -> Result<String, TokenError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(TokenError::Invalid("a token needs a name".into()));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(TokenError::Invalid(format!(
            "token name longer than {MAX_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(
            "token name contains control characters".into(),
        ));
    }
    Ok(name.to_string())
}

fn event(actor: &str, action: &str, info: &TokenInfo) -> NewEvent {
    NewEvent {
        actor: actor.to_string(),
        action: action.to_string(),
        object_kind: OBJECT_KIND.to_string(),
        object_key: info.id.clone(),
        summary: json!({
            "name": info.name,
            "scopes": info.scopes,
            "expires_at": info.expires_at,
            "revoked_at": info.revoked_at,
            "dir_user": info.dir_user,
        }),
    }
}

/// Creates a token; returns it and its secret (shown once: only its hash is stored). The
/// ledger event (`token.create`, by `actor`) commits in the same transaction.
pub async fn create_token(
    store: &Store,
    actor: &str,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<i64>,
) -> Result<(TokenInfo, Zeroizing<String>), TokenError> {
    insert_token(store, actor, name, scopes, expires_at, None).await
}

/// Scopes of a token bound to a directory user: `read` and `write` of the governance
/// operations, and `creds` so that the user can register their own NATS key (the
/// operations allow nothing else to such a token, and keys for themself only).
pub const DIR_USER_SCOPES: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Creds];

/// Creates a token bound to directory user `dir_user` (who must exist): it acts as that user
/// only, on the governance routes only (`/v1/dir…`, `/v1/proposals…`), with the
/// [`DIR_USER_SCOPES`]. The approval rules then hold against the token's holder, not only
/// against whoever names themselves in `as`.
pub async fn create_dir_user_token(
    store: &Store,
    actor: &str,
    name: &str,
    dir_user: &str,
    expires_at: Option<i64>,
) -> Result<(TokenInfo, Zeroizing<String>), TokenError> {
    insert_token(
        store,
        actor,
        name,
        &DIR_USER_SCOPES,
        expires_at,
        Some(dir_user),
    )
    .await
}

async fn insert_token(
    store: &Store,
    actor: &str,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<i64>,
    dir_user: Option<&str>,
) -> Result<(TokenInfo, Zeroizing<String>), TokenError> {
    let name = check_name(name)?;
    let mut scopes = scopes.to_vec();
    normalise(&mut scopes);
    if scopes.is_empty() {
        return Err(TokenError::Invalid(
            "a token needs at least one scope (read, write, creds, admin)".into(),
        ));
    }
    let t = now();
    if let Some(exp) = expires_at
        && exp <= t
    {
        return Err(TokenError::Invalid(format!(
            "expiry {exp} is not in the future"
        )));
    }
    let secret = Zeroizing::new(format!("{TOKEN_PREFIX}{}", random_base32(SECRET_BYTES)));
    let row = ApiTokenRow {
        id: format!("tok_{}", random_base32(10)),
        name,
        hash: hash_secret(&secret),
        scopes: join_scopes(&scopes),
        created_at: t,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        dir_user: dir_user.map(str::to_string),
    };
    let mut tx = store.begin().await?;
    if let Some(user) = dir_user
        && tx.dir_user(user).await?.is_none()
    {
        return Err(TokenError::UnknownDirUser(user.to_string()));
    }
    tx.insert_api_token(&row).await?;
    let info = TokenInfo::from_row(row)?;
    tx.append_event(&event(actor, "token.create", &info))
        .await?;
    tx.commit().await?;
    Ok((info, secret))
}

/// Every token, oldest first (revoked and expired ones included).
pub async fn list_tokens(store: &Store) -> Result<Vec<TokenInfo>, TokenError> {
    store
        .api_tokens()
        .await?
        .into_iter()
        .map(TokenInfo::from_row)
        .collect()
}

/// Revokes a token (from now on it authenticates nothing); the ledger event
/// (`token.revoke`, by `actor`) commits in the same transaction.
pub async fn revoke_token(store: &Store, actor: &str, id: &str) -> Result<TokenInfo, TokenError> {
    let mut tx = store.begin().await?;
    let row = tx
        .api_token(id)
        .await?
        .ok_or_else(|| TokenError::NotFound(id.to_string()))?;
    if row.revoked_at.is_some() {
        return Err(TokenError::AlreadyRevoked(id.to_string()));
    }
    let at = now();
    tx.revoke_api_token(id, at).await?;
    let mut info = TokenInfo::from_row(row)?;
    info.revoked_at = Some(at);
    tx.append_event(&event(actor, "token.revoke", &info))
        .await?;
    tx.commit().await?;
    Ok(info)
}

impl crate::Warden {
    /// Who a bearer token is (see [`authenticate`]): the surfaces that take a token with
    /// every request (the HTTP API) ask this, then run the operations as
    /// [`crate::Actor::token`] of the answer, and the operations decide what it may do.
    pub async fn authenticate_bearer(&self, bearer: &str) -> Result<TokenInfo, AuthError> {
        authenticate(&self.store, bearer).await
    }

    /// `warden token create`: a token with `scopes` (see [`create_token`]), recorded as
    /// this actor's. Needs `admin`: a token hands out scopes.
    pub async fn create_api_token(
        &self,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<i64>,
    ) -> crate::Result<(TokenInfo, Zeroizing<String>)> {
        self.need(Scope::Admin, "creating an API token")?;
        Ok(create_token(&self.store, self.actor.name(), name, scopes, expires_at).await?)
    }

    /// `warden token create --dir-user`: a token bound to `dir_user` (see
    /// [`create_dir_user_token`]). Needs `admin`.
    pub async fn create_dir_user_api_token(
        &self,
        name: &str,
        dir_user: &str,
        expires_at: Option<i64>,
    ) -> crate::Result<(TokenInfo, Zeroizing<String>)> {
        self.need(Scope::Admin, "creating an API token")?;
        Ok(
            create_dir_user_token(&self.store, self.actor.name(), name, dir_user, expires_at)
                .await?,
        )
    }

    /// `warden token list`: every token, without secrets. Needs `admin`.
    pub async fn api_tokens(&self) -> crate::Result<Vec<TokenInfo>> {
        self.need(Scope::Admin, "listing API tokens")?;
        Ok(list_tokens(&self.store).await?)
    }

    /// `warden token revoke`: revokes token `id`, recorded as this actor's. Needs `admin`.
    pub async fn revoke_api_token(&self, id: &str) -> crate::Result<TokenInfo> {
        self.need(Scope::Admin, "revoking an API token")?;
        Ok(revoke_token(&self.store, self.actor.name(), id).await?)
    }
}

impl From<TokenError> for crate::OpsError {
    fn from(e: TokenError) -> Self {
        use crate::OpsError;
        match e {
            TokenError::Invalid(m) => OpsError::Invalid(m),
            TokenError::NotFound(id) => OpsError::NotFound(format!("API token {id}")),
            TokenError::AlreadyRevoked(_) => OpsError::Conflict(e.to_string()),
            TokenError::Corrupt(m) => OpsError::Conflict(m),
            TokenError::UnknownDirUser(u) => OpsError::NotFound(format!("directory user {u:?}")),
            TokenError::Store(s) => OpsError::Store(s),
        }
    }
}

/// Checks a bearer token (the text after `Bearer `): it must exist, be unexpired and
/// unrevoked. Stamps its last use (at most once a minute; a failure to stamp is logged,
/// not fatal).
pub async fn authenticate(store: &Store, bearer: &str) -> Result<TokenInfo, AuthError> {
    let bearer = bearer.trim();
    if !well_formed(bearer) {
        return Err(AuthError::Malformed);
    }
    let row = store
        .api_token_by_hash(&hash_secret(bearer))
        .await?
        .ok_or(AuthError::Unknown)?;
    if row.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    let t = now();
    if row.expires_at.is_some_and(|exp| exp <= t) {
        return Err(AuthError::Expired);
    }
    let id = row.id.clone();
    let info = TokenInfo::from_row(row).map_err(|e| AuthError::Corrupt(e.to_string()))?;
    if let Err(e) = store.touch_api_token(&id, t, t - TOUCH_INTERVAL_SECS).await {
        tracing::warn!(token_id = %id, error = %e, "cannot record the use of an API token");
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        for s in Scope::ALL {
            assert_eq!(s.to_string().parse::<Scope>(), Ok(s));
        }
        assert_eq!(" Admin ".parse::<Scope>(), Ok(Scope::Admin));
        assert!("root".parse::<Scope>().is_err());
        assert_eq!(
            parse_scopes("write,read, read").unwrap(),
            vec![Scope::Read, Scope::Write]
        );
        assert!(parse_scopes(" , ").is_err());
        assert!(parse_scopes("read,bogus").is_err());
    }

    #[test]
    fn secrets_are_well_formed_and_distinct() {
        let a = format!("{TOKEN_PREFIX}{}", random_base32(SECRET_BYTES));
        let b = format!("{TOKEN_PREFIX}{}", random_base32(SECRET_BYTES));
        assert!(well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert!(!well_formed("wdn_short"));
        assert!(!well_formed(&a.to_uppercase()));
        assert!(!well_formed(&a[TOKEN_PREFIX.len()..]));
    }

    #[test]
    fn admin_allows_everything() {
        let info = |scopes: Vec<Scope>| TokenInfo {
            id: "tok_x".into(),
            name: "x".into(),
            scopes,
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            dir_user: None,
        };
        assert!(
            Scope::ALL
                .iter()
                .all(|s| info(vec![Scope::Admin]).allows(*s))
        );
        let r = info(vec![Scope::Read]);
        assert!(r.allows(Scope::Read) && !r.allows(Scope::Write) && !r.allows(Scope::Creds));
    }
}
