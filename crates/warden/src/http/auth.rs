//! Bearer-token authentication and scope checks for `/v1/…`.
//!
//! The scope a route needs follows from its method and path ([`required_scope`]), so the
//! router and the OpenAPI document cannot disagree. The token (never logged) is checked
//! against the store on every request; the authenticated [`TokenInfo`] is put in the
//! request's extensions.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, HttpState};
use warden_ops::tokens::{self, Scope, TokenInfo};

/// The scope a route needs (`None`: no token needed). `path` is the route template
/// (`/v1/accounts/{name}`), `method` its HTTP method.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if !path.starts_with("/v1/") || path == super::onboarding::DOWNLOAD_PATH {
        None
    } else if path.ends_with("/creds") {
        Some(Scope::Creds)
    } else if method == Method::GET || method == Method::HEAD {
        Some(Scope::Read)
    } else {
        Some(Scope::Write)
    }
}

/// Whether a route template is one of the governance routes, the only ones a token bound to
/// a directory user may use.
pub fn governance_route(path: &str) -> bool {
    ["/v1/dir/", "/v1/proposals"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// The acting directory user of a governance request: for a token bound to a directory user,
/// that user (`as` may be absent or name them, nobody else); for an operator's token, `as` as
/// given (the operator speaks for whoever they name).
pub(crate) fn acting(token: &TokenInfo, given: Option<String>) -> Result<Option<String>, ApiError> {
    let given = given.filter(|a| !a.is_empty());
    match (&token.dir_user, given) {
        (None, given) => Ok(given),
        (Some(bound), None) => Ok(Some(bound.clone())),
        (Some(bound), Some(named)) if &named == bound => Ok(Some(named)),
        (Some(bound), Some(named)) => Err(ApiError::BoundToken(format!(
            "this token acts as directory user {bound} only, not as {named:?}"
        ))),
    }
}

/// The bearer token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(req: &Request) -> Result<&str, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::MissingToken);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(ApiError::Unauthorized(
            "Authorization header must be: Bearer wdn_…".into(),
        )),
    }
}

/// Middleware: authenticates the token and checks the matched route's scope.
pub(crate) async fn require_token(
    State(state): State<HttpState>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("/v1/", |m| m.as_str());
    let Some(needed) = required_scope(req.method(), path) else {
        return next.run(req).await;
    };
    let info: TokenInfo = match bearer(&req) {
        Ok(token) => match tokens::authenticate(state.warden.store(), token).await {
            Ok(info) => info,
            Err(e) => return ApiError::from(e).into_response(),
        },
        Err(e) => return e.into_response(),
    };
    if !info.allows(needed) {
        tracing::info!(token_id = %info.id, scope = %needed, "token lacks the scope");
        return ApiError::Forbidden(needed).into_response();
    }
    if let Some(user) = &info.dir_user
        && !governance_route(path)
    {
        tracing::info!(token_id = %info.id, path, "directory user token outside governance");
        return ApiError::BoundToken(format!(
            "this token acts as directory user {user}: it may use /v1/dir… and /v1/proposals… only"
        ))
        .into_response();
    }
    tracing::debug!(token_id = %info.id, "authenticated");
    req.extensions_mut().insert(info);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(dir_user: Option<&str>) -> TokenInfo {
        TokenInfo {
            id: "tok_x".into(),
            name: "x".into(),
            scopes: vec![Scope::Read, Scope::Write],
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            dir_user: dir_user.map(str::to_string),
        }
    }

    #[test]
    fn governance_routes_are_dir_and_proposals_only() {
        for p in [
            "/v1/dir/users",
            "/v1/dir/users/{id}/keys/{key}",
            "/v1/dir/expire",
            "/v1/proposals",
            "/v1/proposals/{id}/confirm",
        ] {
            assert!(governance_route(p), "{p}");
        }
        for p in [
            "/v1/accounts",
            "/v1/directory",
            "/v1/ledger",
            "/v1/accounts/{name}/users/{user}/creds",
        ] {
            assert!(!governance_route(p), "{p}");
        }
    }

    #[test]
    fn a_bound_token_acts_as_its_user_only() {
        let op = token(None);
        assert_eq!(acting(&op, None).unwrap(), None);
        assert_eq!(acting(&op, Some("".into())).unwrap(), None);
        assert_eq!(
            acting(&op, Some("olivia".into())).unwrap().as_deref(),
            Some("olivia")
        );
        let bound = token(Some("mallory"));
        assert_eq!(acting(&bound, None).unwrap().as_deref(), Some("mallory"));
        assert_eq!(
            acting(&bound, Some("mallory".into())).unwrap().as_deref(),
            Some("mallory")
        );
        let e = acting(&bound, Some("olivia".into())).unwrap_err();
        assert_eq!(e.code(), "forbidden");
        assert!(e.to_string().contains("not as \"olivia\""), "{e}");
    }
}
