//! `/v1/dir/users/{id}/keys…`: ADD_KEY over HTTP, doing what `warden dir user key
//! add|list|remove` do. The acting directory user is `as` in the body (POST) or the
//! query (`DELETE …?as=U`). The operation decides who may: registering a key needs
//! `creds`, and a token bound to a directory user registers keys for that user only,
//! any other token only with `admin`; removing one is for the user themself or a system
//! administrator. A seed or a non-user key is `400 invalid` and is never echoed.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::Deserialize;
use warden_store::dir_keys::DirUserKeyRow;

use super::extract::{ApiPath, ApiQuery, JsonBody, RequestBody};
use super::{ApiError, HttpState};
use warden_ops::dir_keys::DirKeyChange;
use warden_ops::tokens::TokenInfo;

type ApiResult<T> = Result<T, ApiError>;

/// `POST /v1/dir/users/{id}/keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddDirKey {
    #[serde(rename = "as", default)]
    acting: Option<String>,
    public_key: String,
}
impl RequestBody for AddDirKey {}

/// `DELETE /v1/dir/users/{id}/keys/{key}` query.
#[derive(Deserialize)]
pub(crate) struct ActingQuery {
    #[serde(rename = "as", default)]
    acting: Option<String>,
}

/// `GET /v1/dir/users/{id}/keys`.
pub(crate) async fn list(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<DirUserKeyRow>>> {
    Ok(Json(s.warden_for(&token).dir_keys(&id).await?))
}

/// `POST /v1/dir/users/{id}/keys`.
pub(crate) async fn add(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
    JsonBody(b): JsonBody<AddDirKey>,
) -> ApiResult<(StatusCode, Json<DirKeyChange>)> {
    let v = s
        .warden_for(&token)
        .dir_key_add(b.acting.as_deref(), &id, &b.public_key)
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `DELETE /v1/dir/users/{id}/keys/{key}`.
pub(crate) async fn remove(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ActingQuery>,
) -> ApiResult<Json<DirKeyChange>> {
    let v = s
        .warden_for(&token)
        .dir_key_remove(q.acting.as_deref(), &id, &key)
        .await?;
    Ok(Json(v))
}
