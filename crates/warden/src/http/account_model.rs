//! Routes of the NATS account model beyond limits: subject mappings, exports, imports and
//! activations, account signing keys (plain and roles), users issued by a role, user key
//! rotation, what a role's template grants a user, and the operator's signing keys.
//!
//! Each handler decodes the path, query and body into the option types of
//! [`warden_ops`] (bodies refuse unknown fields), runs ONE operation as the request's
//! token and renders its answer. An export, an import or a mapping source is chosen by
//! its subject in the query string (`?subject=`, `?from=`): subjects hold `>` and `*`,
//! which a query carries percent-encoded (`%3E`) without clashing with the path.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use nats_jwt::{AccountPublicKey, Subject, UserPermissionLimits};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_core::permcheck::Direction;
use warden_core::template::ServerLine;

use super::extract::{ApiPath, ApiQuery, JsonBody, RequestBody};
use super::{ApiError, HttpState};
use warden_ops::exports::{
    ActivationOptions, ActivationView, ExportChange, ExportEdit, ExportOptions, ExportView,
    ImportOptions, ImportView, RevocationView,
};
use warden_ops::mappings::{MappingAdd, MappingRemove, MappingTarget, MappingsView};
use warden_ops::operator_keys::{RotateOptions, RotateReport, SigningKeyChange, SigningKeysView};
use warden_ops::signing_keys::{
    EffectivePermissions, KeyRef, NewSigningKey, SigningKeyAdded, SigningKeyRemoved,
    SigningKeyRotated, SigningKeyView as AccountSigningKeyView, UserExplanation, UserRotated,
};
use warden_ops::tokens::TokenInfo;

type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------------------------------
// Subject mappings
// ---------------------------------------------------------------------------------------

/// `POST /v1/accounts/{account}/mappings`: `warden account mapping add` (a destination
/// already listed for the source is updated, a new one appended).
#[derive(Deserialize)]
pub(crate) struct AddMapping {
    from: Subject,
    to: Vec<MappingTarget>,
    #[serde(default)]
    cluster: Option<String>,
}
impl RequestBody for AddMapping {}

/// Query of `DELETE /v1/accounts/{account}/mappings`.
#[derive(Deserialize)]
pub(crate) struct MappingQuery {
    from: Subject,
    #[serde(default)]
    to: Option<Subject>,
}

/// `GET /v1/accounts/{account}/mappings`.
pub(crate) async fn list_mappings(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
) -> ApiResult<Json<MappingsView>> {
    Ok(Json(s.warden_for(&token).mappings(&account).await?))
}

/// `POST /v1/accounts/{account}/mappings`.
pub(crate) async fn add_mapping(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<AddMapping>,
) -> ApiResult<Json<MappingsView>> {
    let req = MappingAdd {
        account,
        from: body.from,
        to: body.to,
        cluster: body.cluster,
    };
    Ok(Json(s.warden_for(&token).add_mapping(&req).await?))
}

/// `DELETE /v1/accounts/{account}/mappings?from=S[&to=T]`: a whole source, or one of
/// its destinations.
pub(crate) async fn remove_mapping(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(q): ApiQuery<MappingQuery>,
) -> ApiResult<Json<MappingsView>> {
    let req = MappingRemove {
        account,
        from: q.from,
        to: q.to,
    };
    Ok(Json(s.warden_for(&token).remove_mapping(&req).await?))
}

// ---------------------------------------------------------------------------------------
// Exports, imports, activations
// ---------------------------------------------------------------------------------------

impl RequestBody for ExportOptions {}
impl RequestBody for ExportEdit {}
impl RequestBody for ImportOptions {}
impl RequestBody for ActivationOptions {}

/// `?subject=S`: which export (or import) of the account.
#[derive(Deserialize)]
pub(crate) struct SubjectQuery {
    subject: Subject,
}

/// Query of `DELETE /v1/accounts/{account}/imports`.
#[derive(Deserialize)]
pub(crate) struct ImportQuery {
    subject: Subject,
    #[serde(default)]
    from: Option<String>,
}

/// `POST /v1/accounts/{account}/activations/revoke`.
#[derive(Deserialize)]
pub(crate) struct RevokeActivation {
    subject: Subject,
    target: String,
}
impl RequestBody for RevokeActivation {}

/// `GET /v1/accounts/{account}/exports`.
pub(crate) async fn list_exports(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
) -> ApiResult<Json<Vec<ExportView>>> {
    Ok(Json(s.warden_for(&token).list_exports(&account).await?))
}

/// `POST /v1/accounts/{account}/exports`.
pub(crate) async fn add_export(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<ExportOptions>,
) -> ApiResult<(StatusCode, Json<ExportChange>)> {
    let change = s.warden_for(&token).add_export(&account, &body).await?;
    Ok((StatusCode::CREATED, Json(change)))
}

/// `PATCH /v1/accounts/{account}/exports?subject=S`.
pub(crate) async fn edit_export(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(q): ApiQuery<SubjectQuery>,
    JsonBody(edit): JsonBody<ExportEdit>,
) -> ApiResult<Json<ExportChange>> {
    Ok(Json(
        s.warden_for(&token)
            .edit_export(&account, &q.subject, &edit)
            .await?,
    ))
}

/// `DELETE /v1/accounts/{account}/exports?subject=S`.
pub(crate) async fn remove_export(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(q): ApiQuery<SubjectQuery>,
) -> ApiResult<Json<ExportChange>> {
    Ok(Json(
        s.warden_for(&token)
            .remove_export(&account, &q.subject)
            .await?,
    ))
}

/// `GET /v1/accounts/{account}/imports`.
pub(crate) async fn list_imports(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
) -> ApiResult<Json<Vec<ImportView>>> {
    Ok(Json(s.warden_for(&token).list_imports(&account).await?))
}

/// `POST /v1/accounts/{account}/imports`.
pub(crate) async fn add_import(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<ImportOptions>,
) -> ApiResult<(StatusCode, Json<ImportView>)> {
    let view = s.warden_for(&token).add_import(&account, &body).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /v1/accounts/{account}/imports?subject=S[&from=ACCOUNT]`.
pub(crate) async fn remove_import(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportQuery>,
) -> ApiResult<Json<ImportView>> {
    Ok(Json(
        s.warden_for(&token)
            .remove_import(&account, &q.subject, q.from.as_deref())
            .await?,
    ))
}

/// `POST /v1/accounts/{account}/activations`: an activation of the account's private
/// export for another account.
pub(crate) async fn create_activation(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<ActivationOptions>,
) -> ApiResult<(StatusCode, Json<ActivationView>)> {
    let view = s
        .warden_for(&token)
        .create_activation(&account, &body)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `POST /v1/accounts/{account}/activations/revoke`.
pub(crate) async fn revoke_activation(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<RevokeActivation>,
) -> ApiResult<Json<RevocationView>> {
    Ok(Json(
        s.warden_for(&token)
            .revoke_activation(&account, &body.subject, &body.target)
            .await?,
    ))
}

// ---------------------------------------------------------------------------------------
// Account signing keys, users by role, user key rotation
// ---------------------------------------------------------------------------------------

/// `POST /v1/accounts/{account}/signing-keys`: `{}` for a plain key, `{role, template?}`
/// for a role's scoped key. The template is the JWT's form (`pub`, `sub`, `resp`,
/// `subs`, `data`, `payload`, `bearer_token`, `allowed_connection_types`, `src`,
/// `times`, `times_location`); subs, data and payload not given are unlimited (-1), as
/// `warden account signing-key add` makes them.
#[derive(Deserialize)]
pub(crate) struct AddSigningKey {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    template: Option<UserPermissionLimits>,
}

/// The fields a template may have (its permissions are flattened into it, which hides
/// unknown fields from the strict decoder: they are checked here by name instead).
pub(crate) const TEMPLATE_FIELDS: &[&str] = &[
    "pub",
    "sub",
    "resp",
    "src",
    "times",
    "times_location",
    "subs",
    "data",
    "payload",
    "bearer_token",
    "allowed_connection_types",
];

impl RequestBody for AddSigningKey {
    fn prepare(mut value: Value) -> ApiResult<Value> {
        if let Some(t) = value.get_mut("template") {
            let Value::Object(given) = t else {
                return Err(ApiError::InvalidJson(
                    "request body does not fit: template must be an object".into(),
                ));
            };
            let unknown: Vec<String> = given
                .keys()
                .filter(|k| !TEMPLATE_FIELDS.contains(&k.as_str()))
                .map(|k| format!("template.{k}"))
                .collect();
            if !unknown.is_empty() {
                return Err(ApiError::InvalidJson(format!(
                    "unknown field{} in request body: {}",
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.join(", ")
                )));
            }
            let mut base = serde_json::to_value(UserPermissionLimits::unlimited())
                .map_err(|e| ApiError::Internal(format!("cannot encode a template: {e}")))?;
            if let Value::Object(b) = &mut base {
                for (k, v) in std::mem::take(given) {
                    b.insert(k, v);
                }
            }
            *t = base;
        }
        Ok(value)
    }
}

/// Which signing key a path names: a valid account public key (`A…`) is that key,
/// anything else a role.
fn key_ref(key: &str) -> KeyRef {
    if key.parse::<AccountPublicKey>().is_ok() {
        KeyRef::Key(key.to_string())
    } else {
        KeyRef::Role(key.to_string())
    }
}

/// `GET /v1/accounts/{account}/signing-keys`.
pub(crate) async fn list_signing_keys(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
) -> ApiResult<Json<Vec<AccountSigningKeyView>>> {
    Ok(Json(s.warden_for(&token).signing_keys(&account).await?))
}

/// `POST /v1/accounts/{account}/signing-keys`.
pub(crate) async fn add_signing_key(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<AddSigningKey>,
) -> ApiResult<(StatusCode, Json<SigningKeyAdded>)> {
    if body.role.is_none() && body.template.is_some() {
        return Err(ApiError::Invalid(
            "a template makes a role's key: give role too (a plain signing key has no template)"
                .into(),
        ));
    }
    let new = NewSigningKey {
        role: body.role,
        template: body
            .template
            .unwrap_or_else(UserPermissionLimits::unlimited),
    };
    let added = s.warden_for(&token).add_signing_key(&account, new).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// `POST /v1/accounts/{account}/signing-keys/{key}/rotate` (`{key}`: `A…` or a role).
pub(crate) async fn rotate_signing_key(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<SigningKeyRotated>> {
    Ok(Json(
        s.warden_for(&token)
            .rotate_signing_key(&account, &key_ref(&key))
            .await?,
    ))
}

/// `DELETE /v1/accounts/{account}/signing-keys/{key}` (`{key}`: `A…` or a role).
pub(crate) async fn remove_signing_key(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<SigningKeyRemoved>> {
    Ok(Json(
        s.warden_for(&token)
            .remove_signing_key(&account, &key_ref(&key))
            .await?,
    ))
}

/// `POST /v1/accounts/{account}/users/{user}/rotate`: `{user, old_key, creds}`, never
/// cached; needs `creds` (and `write`).
#[derive(Serialize)]
pub(crate) struct UserRotatedWithCreds<'a> {
    #[serde(flatten)]
    rotated: UserRotated,
    creds: &'a str,
}

/// `POST /v1/accounts/{account}/users/{user}/rotate`.
pub(crate) async fn rotate_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let (rotated, creds) = s.warden_for(&token).rotate_user(&account, &user).await?;
    let mut res = Json(UserRotatedWithCreds {
        rotated,
        creds: creds.as_str(),
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `?server=2.9|2.15` (any version: 2.15 and later use the 2.15 rules; default 2.15).
fn server_line(server: Option<&str>) -> ApiResult<ServerLine> {
    match server {
        None => Ok(ServerLine::default()),
        Some(v) => ServerLine::parse(v).map_err(|e| ApiError::Invalid(e.to_string())),
    }
}

/// Query of `GET /v1/accounts/{account}/users/{user}/permissions`.
#[derive(Deserialize)]
pub(crate) struct PermissionsQuery {
    #[serde(default)]
    server: Option<String>,
}

/// `GET /v1/accounts/{account}/users/{user}/permissions?server=V`: what the user may do
/// (a role's template expanded for it), as `warden user show` shows it.
pub(crate) async fn user_permissions(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PermissionsQuery>,
) -> ApiResult<Json<EffectivePermissions>> {
    let line = server_line(q.server.as_deref())?;
    Ok(Json(
        s.warden_for(&token)
            .user_permissions(&account, &user, line)
            .await?,
    ))
}

/// Query of `GET /v1/accounts/{account}/users/{user}/explain`.
#[derive(Deserialize)]
pub(crate) struct ExplainQuery {
    direction: String,
    subject: Subject,
    #[serde(default)]
    server: Option<String>,
}

/// `publish`/`pub` or `subscribe`/`sub`.
fn direction(raw: &str) -> ApiResult<Direction> {
    match raw {
        "publish" | "pub" => Ok(Direction::Publish),
        "subscribe" | "sub" => Ok(Direction::Subscribe),
        other => Err(ApiError::Invalid(format!(
            "direction must be publish or subscribe, not {other:?}"
        ))),
    }
}

/// `GET /v1/accounts/{account}/users/{user}/explain?direction=publish&subject=S&server=V`.
pub(crate) async fn explain_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ExplainQuery>,
) -> ApiResult<Json<UserExplanation>> {
    let dir = direction(&q.direction)?;
    let line = server_line(q.server.as_deref())?;
    Ok(Json(
        s.warden_for(&token)
            .explain_user(&account, &user, dir, &q.subject, line)
            .await?,
    ))
}

// ---------------------------------------------------------------------------------------
// Operator signing keys
// ---------------------------------------------------------------------------------------

/// The nats-server `warden serve` talks to (`--nats`), for the operator key rotation's
/// checks; a request cannot name another server (it would be handed the system user).
#[derive(Clone)]
pub(crate) struct ServeNats(pub Option<String>);

/// Longest wait a rotation request may ask for.
const MAX_ROTATE_TIMEOUT_MS: u64 = 60_000;

/// `POST /v1/operator/signing-keys/rotate`: `{servers?, timeout_ms?}`.
#[derive(Deserialize, Default)]
pub(crate) struct RotateOperatorKey {
    #[serde(default)]
    servers: Option<usize>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}
impl RequestBody for RotateOperatorKey {}

/// `GET /v1/operator/signing-keys`.
pub(crate) async fn operator_signing_keys(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<SigningKeysView>> {
    Ok(Json(s.warden_for(&token).operator_signing_keys().await?))
}

/// `POST /v1/operator/signing-keys`: a new key in the operator JWT (not issuing yet).
pub(crate) async fn add_operator_signing_key(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<(StatusCode, Json<SigningKeyChange>)> {
    let change = s.warden_for(&token).add_operator_signing_key().await?;
    Ok((StatusCode::CREATED, Json(change)))
}

/// `DELETE /v1/operator/signing-keys/{key}`.
pub(crate) async fn remove_operator_signing_key(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<SigningKeyChange>> {
    Ok(Json(
        s.warden_for(&token)
            .remove_operator_signing_key(&key)
            .await?,
    ))
}

/// `POST /v1/operator/signing-keys/rotate`: the next step of the rotation, checked
/// against the server `warden serve` talks to (without one, it only starts a rotation
/// or says what it waits for).
pub(crate) async fn rotate_operator_signing_key(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    Extension(nats): Extension<ServeNats>,
    JsonBody(body): JsonBody<RotateOperatorKey>,
) -> ApiResult<Json<RotateReport>> {
    let mut opts = RotateOptions {
        nats: nats.0,
        ..RotateOptions::default()
    };
    if let Some(n) = body.servers {
        opts.servers = n;
    }
    if let Some(ms) = body.timeout_ms {
        if ms == 0 || ms > MAX_ROTATE_TIMEOUT_MS {
            return Err(ApiError::Invalid(format!(
                "timeout_ms must be between 1 and {MAX_ROTATE_TIMEOUT_MS}"
            )));
        }
        opts.timeout = std::time::Duration::from_millis(ms);
    }
    Ok(Json(
        s.warden_for(&token)
            .rotate_operator_signing_key(&opts)
            .await?,
    ))
}
