//! `/v1/onboarding…`: the admin routes (bearer token, like the rest of `/v1/`) and the
//! download route, whose credential is the package's one-time download token instead.
//!
//! The token travels in the `X-Warden-Download-Token` header (`GET`) or a JSON body
//! `{"token": "…"}` (`POST`), never in the URL: URLs end up in proxy and access logs, so a
//! request with any query string is refused (`400 token_in_query`) before the token is
//! even read, and nothing is consumed. Refusals are JSON like every other error:
//! `403 invalid_token`, `410 token_used`, `410 token_expired`, `410 package_revoked`, and
//! `429 too_many_attempts` (with `Retry-After`) for an address that made too many refused
//! attempts lately. The download runs as the HTTP peer ([`Actor::http_peer`]), so the
//! ledger names the address a refusal came from; how refusals are counted, summarised
//! and throttled is the operation's ([`warden_ops::onboarding::DownloadGuard`]).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::{ApiPath, ApiQuery, JsonBody, RequestBody};
use super::{ApiError, HttpState};
use warden_ops::onboarding::{DownloadError, NewPackage, PackageView};
use warden_ops::tokens::TokenInfo;
use warden_ops::{Actor, now};

/// Header that carries the download token on `GET /v1/onboarding/download`.
pub const TOKEN_HEADER: &str = "x-warden-download-token";

/// The route the download token opens (no bearer token needed).
pub const DOWNLOAD_PATH: &str = "/v1/onboarding/download";

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A refused download, as JSON.
struct Refused(DownloadError);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let e = match self.0 {
            DownloadError::Ops(e) => return ApiError::from(e).into_response(),
            other => other,
        };
        let (status, code) = match &e {
            DownloadError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            DownloadError::Missing => (StatusCode::BAD_REQUEST, "invalid"),
            DownloadError::Invalid => (StatusCode::FORBIDDEN, "invalid_token"),
            DownloadError::Used(..) => (StatusCode::GONE, "token_used"),
            DownloadError::Expired(..) => (StatusCode::GONE, "token_expired"),
            DownloadError::Revoked(_) => (StatusCode::GONE, "package_revoked"),
            DownloadError::Ops(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let body = json!({"error": {"code": code, "message": e.to_string()}});
        let mut res = no_store((status, Json(body)).into_response());
        if let DownloadError::Throttled(secs) = e {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        res
    }
}

/// The address of the request's peer, when the server was started with it.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn peer_addr(peer: Peer) -> Option<SocketAddr> {
    peer.map(|Extension(ConnectInfo(addr))| addr)
}

fn token_in_query() -> Response {
    let body = json!({"error": {
        "code": "token_in_query",
        "message": "this route takes no query string: send the download token in the X-Warden-Download-Token header or a JSON body {\"token\": \"…\"}; nothing was consumed",
    }});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn deliver(s: &HttpState, peer: Option<SocketAddr>, token: &str) -> Response {
    // No bearer token here: the one-time download token is the credential, checked by
    // the operation itself; the caller is known only by its address.
    let w = s.warden.with_actor(Actor::http_peer(peer));
    match w.download_package(token, "http").await {
        Ok(d) => {
            let disposition = format!("attachment; filename=\"{}\"", d.file_name);
            let mut res = (StatusCode::OK, d.archive.to_vec()).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/gzip"),
            );
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&d.package.id) {
                h.insert("x-warden-package", v);
            }
            no_store(res)
        }
        Err(e) => Refused(e).into_response(),
    }
}

/// `GET /v1/onboarding/download` with `X-Warden-Download-Token`.
pub(crate) async fn download_get(
    State(s): State<HttpState>,
    peer: Peer,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if uri.query().is_some() {
        return token_in_query();
    }
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    deliver(&s, peer_addr(peer), &token).await
}

/// `POST /v1/onboarding/download`.
#[derive(Deserialize)]
pub(crate) struct DownloadBody {
    token: String,
}
impl RequestBody for DownloadBody {}

/// `POST /v1/onboarding/download` with `{"token": "…"}`.
pub(crate) async fn download_post(
    State(s): State<HttpState>,
    peer: Peer,
    uri: Uri,
    body: Result<JsonBody<DownloadBody>, ApiError>,
) -> Response {
    if uri.query().is_some() {
        return token_in_query();
    }
    match body {
        Ok(JsonBody(b)) => deliver(&s, peer_addr(peer), &b.token).await,
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/onboarding`.
#[derive(Deserialize)]
pub(crate) struct CreatePackage {
    tenant: String,
    component: String,
    site: String,
    /// Token life in seconds (default 24 h).
    #[serde(default)]
    expires_in: Option<i64>,
    nats_url: String,
    #[serde(default)]
    install_dir: Option<String>,
}
impl RequestBody for CreatePackage {}

/// The answer of `POST /v1/onboarding`: the package and its one-time download token.
#[derive(Serialize)]
pub(crate) struct Created<'a> {
    package: PackageView,
    token: &'a str,
}

/// `POST /v1/onboarding` (scopes `write` and `creds`): `201 {package, token}`; the token
/// is shown once.
pub(crate) async fn create(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<CreatePackage>,
) -> Result<Response, ApiError> {
    let secs = body.expires_in.unwrap_or(86_400);
    let issued = s
        .warden_for(&token)
        .create_package(&NewPackage {
            tenant: body.tenant,
            component: body.component,
            site: body.site,
            token_expires_at: now().saturating_add(secs),
            nats_url: body.nats_url,
            install_dir: body.install_dir,
        })
        .await?;
    let out = Created {
        package: issued.package,
        token: issued.token.as_str(),
    };
    Ok(no_store((StatusCode::CREATED, Json(out)).into_response()))
}

/// Query of `GET /v1/onboarding`.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    tenant: Option<String>,
}

/// `GET /v1/onboarding[?tenant=]`.
pub(crate) async fn list(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<PackageView>>, ApiError> {
    Ok(Json(
        s.warden_for(&token)
            .list_packages(q.tenant.as_deref())
            .await?,
    ))
}

/// `GET /v1/onboarding/{id}`.
pub(crate) async fn show(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PackageView>, ApiError> {
    Ok(Json(s.warden_for(&token).package(&id).await?))
}

/// `POST /v1/onboarding/{id}/revoke`.
pub(crate) async fn revoke(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<PackageView>, ApiError> {
    Ok(Json(s.warden_for(&token).revoke_package(&id).await?))
}
