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
use crate::tokens::{self, Scope, TokenInfo};

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
    tracing::debug!(token_id = %info.id, "authenticated");
    req.extensions_mut().insert(info);
    next.run(req).await
}
