//! Extractors whose rejections are [`ApiError`]s (JSON), not axum's plain-text defaults.
//!
//! [`JsonBody`] reads the body (within the size limit), requires a JSON content type,
//! parses it, lets the target type fill in defaults ([`RequestBody::prepare`]) and then
//! decodes it, refusing unknown fields anywhere (a misspelt field would otherwise be
//! silently ignored and the request would do something else than meant).

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

use super::ApiError;

/// A request body type.
pub(crate) trait RequestBody: DeserializeOwned {
    /// Adjusts the parsed JSON before decoding (e.g. fills in defaults the type's own
    /// `Deserialize` does not); the default leaves it as it is.
    fn prepare(value: serde_json::Value) -> Result<serde_json::Value, ApiError> {
        Ok(value)
    }

    /// Adjusts the decoded value using the JSON it came from (the default: nothing).
    fn finish(self, _original: &serde_json::Value) -> Self {
        self
    }
}

/// A JSON request body decoded strictly into `T`.
pub(crate) struct JsonBody<T>(pub T);

fn is_json(req: &Request) -> bool {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Decodes `value` into `T`, refusing fields `T` does not know.
pub(crate) fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    let mut unknown = Vec::new();
    let decoded: T = serde_ignored::deserialize(value, |path| unknown.push(path.to_string()))
        .map_err(|e| ApiError::InvalidJson(format!("request body does not fit: {e}")))?;
    if !unknown.is_empty() {
        return Err(ApiError::InvalidJson(format!(
            "unknown field{} in request body: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", ")
        )));
    }
    Ok(decoded)
}

impl<S: Send + Sync, T: RequestBody> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(&req) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Invalid(format!("cannot read the request body: {e}"))
            }
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::InvalidJson(format!("request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::InvalidJson(
                "request body must be a JSON object".into(),
            ));
        }
        let prepared = T::prepare(value.clone())?;
        Ok(JsonBody(decode::<T>(prepared)?.finish(&value)))
    }
}

/// Path parameters; a bad one is `400 invalid`.
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e: PathRejection| ApiError::Invalid(format!("bad path: {}", e.body_text())))
    }
}

/// Query parameters; a bad one is `400 invalid`.
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| {
                ApiError::Invalid(format!("bad query string: {}", e.body_text()))
            })
    }
}
