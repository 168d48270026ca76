//! Bearer-token authentication for `/v1/…`: who the token is, never what it may do.
//!
//! Every route under `/v1/` except the onboarding download ([`needs_token`]) takes
//! `Authorization: Bearer wdn_…`. The token (never logged) is checked against the store
//! on every request through [`warden_ops::Warden::authenticate_bearer`]; a missing or
//! refused one is `401 unauthorized`. The authenticated [`TokenInfo`] goes into the
//! request's extensions and the handler runs the operation as
//! [`warden_ops::Actor::token`] of it: the operation decides whether its scopes (and a
//! binding to a directory user) allow it, so the API, the console, the CLI and the NATS
//! service give the same answer.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, HttpState};
use warden_ops::tokens::TokenInfo;

/// Whether a route (its template, e.g. `/v1/accounts/{name}`) takes a bearer token: every
/// `/v1/` route but the onboarding download, whose one-time token is its credential.
pub fn needs_token(path: &str) -> bool {
    path.starts_with("/v1/") && path != super::onboarding::DOWNLOAD_PATH
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

/// Middleware: authenticates the token of a route that takes one.
pub(crate) async fn require_token(
    State(state): State<HttpState>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map_or("/v1/", |m| m.as_str());
    if !needs_token(path) {
        return next.run(req).await;
    }
    let info: TokenInfo = match bearer(&req) {
        Ok(token) => match state.warden.authenticate_bearer(token).await {
            Ok(info) => info,
            Err(e) => return ApiError::from(e).into_response(),
        },
        Err(e) => return e.into_response(),
    };
    tracing::debug!(token_id = %info.id, "authenticated");
    req.extensions_mut().insert(info);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v1_route_but_the_download_takes_a_token() {
        for p in [
            "/v1/accounts",
            "/v1/accounts/{account}/users/{user}/creds",
            "/v1/dir/users/{id}/keys/{key}",
            "/v1/proposals",
            "/v1/ledger",
        ] {
            assert!(needs_token(p), "{p}");
        }
        for p in [
            "/healthz",
            "/readyz",
            "/openapi.json",
            super::super::onboarding::DOWNLOAD_PATH,
        ] {
            assert!(!needs_token(p), "{p}");
        }
    }
}
