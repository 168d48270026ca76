//! The API's one error type and its JSON form `{"error":{"code":…,"message":…}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use warden_ops::tokens::AuthError;
use warden_ops::{ErrorKind, OpsError};

/// What a request can fail with. Each variant has a stable `code` (see [`ApiError::code`])
/// and an HTTP status; internal failures are logged and answered without details.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An operation failed (mapped by its kind: invalid, not found, conflict, refused …;
    /// a refusal for a missing scope or a token bound to a directory user is
    /// `403 forbidden`, see [`OpsError::code`]).
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// No `Authorization: Bearer …` header: `401 unauthorized`.
    #[error("missing bearer token: send Authorization: Bearer wdn_…")]
    MissingToken,
    /// A bearer token that is malformed, unknown, expired or revoked: `401 unauthorized`.
    #[error("{0}")]
    Unauthorized(String),
    /// The body is not JSON, or does not fit the route's schema: `400 invalid_json`.
    #[error("{0}")]
    InvalidJson(String),
    /// A body without `Content-Type: application/json`: `415 unsupported_media_type`.
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// The body exceeds [`super::MAX_BODY_BYTES`]: `413 payload_too_large`.
    #[error("request body larger than {} bytes", super::MAX_BODY_BYTES)]
    PayloadTooLarge,
    /// A bad path or query parameter: `400 invalid`.
    #[error("{0}")]
    Invalid(String),
    /// No route has this path: `404 no_route`.
    #[error("no route for {0}")]
    NoRoute(String),
    /// The route exists but not for this method: `405 method_not_allowed`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// Warden failed (details logged, not returned): `500 internal`.
    #[error("{0}")]
    Internal(String),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_internal() {
            ApiError::Internal(e.to_string())
        } else {
            ApiError::Unauthorized(e.to_string())
        }
    }
}

/// The HTTP status of each kind of operation error (the one mapping of the API).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Refused => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Ops(e) => status_of(e.kind()),
            ApiError::MissingToken | ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::InvalidJson(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Ops(e) => e.code(),
            ApiError::MissingToken | ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Invalid(_) => "invalid",
            ApiError::NoRoute(_) => "no_route",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The message returned to the client: the error itself, except for internal
    /// failures, whose details stay in the server log.
    pub fn public_message(&self) -> String {
        if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error; the details are in the server log".to_string()
        } else {
            self.to_string()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Store and JWT errors carry no secrets (see warden_store::StoreError).
            tracing::error!(error = %self, "request failed");
        }
        let body = json!({"error": {"code": self.code(), "message": self.public_message()}});
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match &self {
                ApiError::MissingToken => "Bearer realm=\"warden\"",
                _ => "Bearer realm=\"warden\", error=\"invalid_token\"",
            };
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
