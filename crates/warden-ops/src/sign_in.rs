//! Signing in with an API token where the token is kept by a session rather than sent
//! with every request (the web console): the token's check at sign-in, and the re-check
//! on each later request that it is still live (not revoked, not expired).

use crate::tokens::{self, AuthError, TokenInfo};
use crate::{Actor, OpsError, Result, Scope, Warden, now};

impl Warden {
    /// Checks a bearer token's secret: it must exist, be unexpired and unrevoked (its use
    /// is stamped). Unknown, revoked, expired and malformed tokens are refused alike
    /// ([`OpsError::Refused`], the same message for each); a failure to check is Warden's.
    pub async fn authenticate_token(&self, bearer: &str) -> Result<TokenInfo> {
        match tokens::authenticate(&self.store, bearer).await {
            Ok(info) => Ok(info),
            Err(AuthError::Store(e)) => Err(OpsError::Store(e)),
            Err(AuthError::Corrupt(m)) => Err(OpsError::Conflict(m)),
            Err(
                AuthError::Malformed | AuthError::Unknown | AuthError::Expired | AuthError::Revoked,
            ) => Err(OpsError::Refused(
                "that token was refused (unknown, revoked or expired)".to_string(),
            )),
        }
    }

    /// Whether the token with id `token_id` is still live (exists, not revoked, not
    /// expired), for a session that signed in with it earlier.
    pub async fn token_is_live(&self, token_id: &str) -> Result<bool> {
        let t = now();
        Ok(self
            .store
            .api_token(token_id)
            .await?
            .is_some_and(|r| r.revoked_at.is_none() && r.expires_at.is_none_or(|e| e > t)))
    }

    /// Whether `token` may open a console session: it needs `read` or `write`, and must be
    /// an operator's token (a token bound to a directory user may use the governance
    /// operations only, as that user; the console acts on everything).
    pub fn console_sign_in(&self, token: &TokenInfo) -> Result<()> {
        if let Some(user) = &token.dir_user {
            return Err(OpsError::Invalid(format!(
                "that token acts as directory user {user} and may use the governance API only; \
                 the console needs an operator's token"
            )));
        }
        let actor = Actor::token(token);
        if actor.has(Scope::Write) {
            return Ok(());
        }
        actor.require(Scope::Read, "signing in to the console")
    }
}
