//! Route handlers: decode the request, call [`warden_ops`], encode the answer. Nothing here
//! decides anything the CLI would decide differently.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use warden_core::spec::{AccountEdit, UserEdit};
use warden_core::{AccountSpec, UserSpec};
use warden_store::{LedgerEvent, LedgerReport};

use super::extract::{ApiPath, ApiQuery, JsonBody, RequestBody};
use super::{ApiError, HttpState, openapi};
use warden_core::device::{DeviceMeta, DeviceState};
use warden_core::lint::Finding;
use warden_core::tenant::TenantLimitsEdit;
use warden_ops::device::{BulkReport, DeviceView, NewDevice};
use warden_ops::tenant::TenantView;
use warden_ops::tokens::TokenInfo;
use warden_ops::{AccountView, OperatorView, StatusView, UserView};

/// The ledger actor of a change made through the API: the token's name and id.
type ApiResult<T> = Result<T, ApiError>;

/// Largest `limit` of `GET /v1/ledger`.
pub(crate) const LEDGER_MAX_LIMIT: i64 = 1000;
/// `limit` of `GET /v1/ledger` when none is given.
pub(crate) const LEDGER_DEFAULT_LIMIT: i64 = 100;

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

/// `POST /v1/accounts`.
#[derive(Deserialize)]
pub(crate) struct CreateAccount {
    name: String,
    #[serde(default)]
    spec: AccountSpec,
}
impl RequestBody for CreateAccount {}

/// `PATCH /v1/accounts/{name}`: `warden account edit`'s changes (limits, JetStream
/// tiers, default permissions, tags, info URL, description), every field optional.
impl RequestBody for AccountEdit {}

/// `POST /v1/accounts/{account}/users`; with `role`, a user issued by that role's
/// scoped key (its spec may carry only `tags`, for the template's `{{tag(…)}}`).
#[derive(Deserialize)]
pub(crate) struct CreateUser {
    name: String,
    #[serde(default)]
    spec: UserSpec,
    #[serde(default)]
    role: Option<String>,
}
impl RequestBody for CreateUser {}

/// `POST /v1/devices`.
#[derive(Deserialize)]
pub(crate) struct CreateDevice {
    id: String,
    #[serde(default)]
    meta: DeviceMeta,
}
impl RequestBody for CreateDevice {}

/// `POST /v1/devices/bulk`.
#[derive(Deserialize)]
pub(crate) struct BulkDevices {
    devices: Vec<NewDevice>,
}
impl RequestBody for BulkDevices {}

/// `objects` merged over `base`, recursively (so an edit may give only what it changes).
fn merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (_, over) => over,
    }
}

/// `PATCH /v1/accounts/{account}/users/{user}`: the CLI's edit, every field optional;
/// `"expiry": null` clears the expiry.
impl RequestBody for UserEdit {
    fn prepare(value: Value) -> ApiResult<Value> {
        let defaults = serde_json::to_value(UserEdit::default())
            .map_err(|e| ApiError::Internal(format!("cannot encode the default edit: {e}")))?;
        Ok(merge(defaults, value))
    }

    fn finish(mut self, original: &Value) -> Self {
        if original.get("expiry").is_some_and(Value::is_null) {
            self.expiry = Some(None);
        }
        self
    }
}

// ---------------------------------------------------------------------------------------
// Unauthenticated
// ---------------------------------------------------------------------------------------

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`, in this order: `503 unavailable` while starting or stopping (the ready
/// flag is off) or when the database does not answer; `200 degraded` when NATS is
/// unreachable (the API keeps working and changes wait in the outbox, so a load balancer
/// keeps sending traffic); `200 ready` otherwise. NATS's state is the relay's connection
/// or the NATS service's client ([`super::metrics::Observed::nats_state`]). A change of
/// state is logged once, not every probe.
pub(crate) async fn readyz(State(state): State<HttpState>) -> Response {
    use super::metrics::{NatsState, observed};
    if !state.ready.load(Ordering::SeqCst) {
        readiness_changed("starting", "starting or shutting down");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "starting or shutting down"})),
        )
            .into_response();
    }
    if let Err(e) = state.warden.status().await {
        readiness_changed("store", &format!("the database does not answer: {e}"));
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "the database does not answer"})),
        )
            .into_response();
    }
    match observed().nats_state() {
        NatsState::Unreachable(reason) => {
            readiness_changed("degraded", &reason);
            Json(json!({"status": "degraded", "reason": reason, "nats": "unreachable"}))
                .into_response()
        }
        NatsState::Connected => {
            readiness_changed("ready", "");
            Json(json!({"status": "ready", "nats": "connected"})).into_response()
        }
        NatsState::Unknown => {
            readiness_changed("ready", "");
            Json(json!({"status": "ready"})).into_response()
        }
    }
}

/// Logs a readiness probe's outcome when it differs from the previous probe's: a warning
/// when it turns bad, a note when it is ready again.
fn readiness_changed(state: &'static str, reason: &str) {
    static LAST: std::sync::Mutex<&str> = std::sync::Mutex::new("ready");
    let Ok(mut last) = LAST.lock() else { return };
    if *last == state {
        return;
    }
    *last = state;
    drop(last);
    if state == "ready" {
        tracing::info!("readiness: ready");
    } else {
        tracing::warn!(state, "readiness: {reason}");
    }
}

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> Response {
    let mut res = Json(openapi::document()).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// Fallback: no route has this path.
pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute(format!("{method} {}", uri.path()))
}

/// Fallback: the path exists, the method does not.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

// ---------------------------------------------------------------------------------------
// Operator and status
// ---------------------------------------------------------------------------------------

/// `GET /v1/operator`.
pub(crate) async fn operator(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<OperatorView>> {
    Ok(Json(s.warden_for(&token).operator().await?))
}

/// `GET /v1/status`.
pub(crate) async fn status(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<StatusView>> {
    Ok(Json(s.warden_for(&token).status().await?))
}

// ---------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------

/// `GET /v1/accounts`.
pub(crate) async fn list_accounts(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<AccountView>>> {
    Ok(Json(s.warden_for(&token).list_accounts().await?))
}

/// `POST /v1/accounts`.
pub(crate) async fn add_account(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<CreateAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let view = s
        .warden_for(&token)
        .add_account(&body.name, body.spec)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/accounts/{name}`.
pub(crate) async fn account(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(s.warden_for(&token).account(&name).await?))
}

/// `PATCH /v1/accounts/{name}`.
pub(crate) async fn edit_account(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(name): ApiPath<String>,
    JsonBody(edit): JsonBody<AccountEdit>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(
        s.warden_for(&token).change_account(&name, edit).await?,
    ))
}

/// `DELETE /v1/accounts/{name}`.
pub(crate) async fn delete_account(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(s.warden_for(&token).delete_account(&name).await?))
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

/// `GET /v1/accounts/{account}/users`.
pub(crate) async fn list_users(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
) -> ApiResult<Json<Vec<UserView>>> {
    Ok(Json(s.warden_for(&token).list_users(&account).await?))
}

/// `POST /v1/accounts/{account}/users`.
pub(crate) async fn add_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(account): ApiPath<String>,
    JsonBody(body): JsonBody<CreateUser>,
) -> ApiResult<Response> {
    if let Some(role) = &body.role {
        let tags = body.spec.tags.clone();
        if body.spec
            != (UserSpec {
                tags: tags.clone(),
                ..UserSpec::default()
            })
        {
            return Err(ApiError::Invalid(
                "a role's user gets its permissions and limits from the role's template \
                 (nats-server refuses a scoped user that sets its own): give only spec.tags with role"
                    .into(),
            ));
        }
        let added = s
            .warden_for(&token)
            .add_user_by_role(&account, &body.name, role, tags)
            .await?;
        return Ok((StatusCode::CREATED, Json(added)).into_response());
    }
    let view = s
        .warden_for(&token)
        .add_user(&account, &body.name, body.spec)
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /v1/accounts/{account}/users/{user}`.
pub(crate) async fn user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(s.warden_for(&token).user(&account, &user).await?))
}

/// `PATCH /v1/accounts/{account}/users/{user}`.
pub(crate) async fn edit_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
    JsonBody(edit): JsonBody<UserEdit>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        s.warden_for(&token)
            .edit_user(&account, &user, &edit)
            .await?,
    ))
}

/// `DELETE /v1/accounts/{account}/users/{user}`.
pub(crate) async fn delete_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        s.warden_for(&token).delete_user(&account, &user).await?,
    ))
}

/// `POST /v1/accounts/{account}/users/{user}/revoke`.
pub(crate) async fn revoke_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        s.warden_for(&token).revoke_user(&account, &user).await?,
    ))
}

/// `GET /v1/accounts/{account}/users/{user}/creds`: `{"creds": "<creds file text>"}`,
/// never cached.
pub(crate) async fn creds(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((account, user)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let creds = s.warden_for(&token).creds(&account, &user).await?;
    let mut res = Json(json!({"creds": creds.as_str()})).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

/// A device with the creds just issued to it: `creds` only when the operation handed
/// them out (to a token with the `creds` scope; a `write`-only token changes the fleet but
/// never sees a seed; the creds can be fetched later with `GET /v1/devices/{id}/creds`).
#[derive(Serialize)]
pub(crate) struct DeviceWithCreds<'a> {
    device: DeviceView,
    #[serde(skip_serializing_if = "Option::is_none")]
    creds: Option<&'a str>,
}

/// `POST /v1/devices/bulk`'s answer: `creds` (id → creds of each device added now) only
/// when the operation handed them out (to a token with the `creds` scope).
#[derive(Serialize)]
pub(crate) struct BulkAdded<'a> {
    #[serde(flatten)]
    report: BulkReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    creds: Option<BTreeMap<&'a str, &'a str>>,
}

/// A response that carries creds: never cached.
fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn with_creds(device: DeviceView, creds: Option<&str>) -> DeviceWithCreds<'_> {
    DeviceWithCreds { device, creds }
}

/// Query of `GET /v1/devices`.
#[derive(Deserialize)]
pub(crate) struct DeviceQuery {
    state: Option<String>,
}

/// `GET /v1/devices?state=provisioned|active|revoked`: devices ordered by id.
pub(crate) async fn list_devices(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiQuery(q): ApiQuery<DeviceQuery>,
) -> ApiResult<Json<Vec<DeviceView>>> {
    let state = match q.state.as_deref() {
        None => None,
        Some(raw) => Some(DeviceState::parse(raw).ok_or_else(|| {
            ApiError::Invalid(format!(
                "state must be provisioned, active or revoked, not {raw:?}"
            ))
        })?),
    };
    Ok(Json(s.warden_for(&token).list_devices(state).await?))
}

/// `POST /v1/devices`: `{"device": DeviceView, "creds"?: "<creds file text>"}`.
pub(crate) async fn add_device(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<CreateDevice>,
) -> ApiResult<Response> {
    let (view, creds) = s.warden_for(&token).add_device(&body.id, body.meta).await?;
    let out = with_creds(view, creds.as_deref().map(String::as_str));
    Ok(no_store((StatusCode::CREATED, Json(out)).into_response()))
}

/// `POST /v1/devices/bulk`: one transaction; existing ids are skipped, one bad id
/// changes nothing.
pub(crate) async fn add_devices_bulk(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<BulkDevices>,
) -> ApiResult<Response> {
    let (report, creds) = s
        .warden_for(&token)
        .add_devices_bulk(&body.devices, |_| {})
        .await?;
    let creds = creds.as_ref().map(|list| {
        list.iter()
            .map(|(id, c)| (id.as_str(), c.as_str()))
            .collect()
    });
    Ok(no_store(Json(BulkAdded { report, creds }).into_response()))
}

/// `GET /v1/devices/{id}`.
pub(crate) async fn device(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeviceView>> {
    Ok(Json(s.warden_for(&token).device(&id).await?))
}

/// `GET /v1/devices/{id}/creds`: the creds of the device's current user, never cached.
pub(crate) async fn device_creds(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let creds = s.warden_for(&token).device_creds(&id).await?;
    Ok(no_store(
        Json(json!({"creds": creds.as_str()})).into_response(),
    ))
}

/// `POST /v1/devices/{id}/rotate`: a new user key (the old one revoked).
pub(crate) async fn rotate_device(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let (view, creds) = s.warden_for(&token).rotate_device(&id).await?;
    Ok(no_store(
        Json(with_creds(view, creds.as_deref().map(String::as_str))).into_response(),
    ))
}

/// `POST /v1/devices/{id}/revoke`.
pub(crate) async fn revoke_device(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeviceView>> {
    Ok(Json(s.warden_for(&token).revoke_device(&id).await?))
}

/// `POST /v1/devices/{id}/restore`.
pub(crate) async fn restore_device(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeviceView>> {
    Ok(Json(s.warden_for(&token).restore_device(&id).await?))
}

// ---------------------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------------------

/// `POST /v1/tenants`.
#[derive(Deserialize)]
pub(crate) struct CreateTenant {
    slug: String,
    #[serde(default)]
    limits: TenantLimitsEdit,
}
impl RequestBody for CreateTenant {}

/// `POST /v1/tenants/bulk`.
#[derive(Deserialize)]
pub(crate) struct BulkTenants {
    tenants: Vec<warden_ops::tenant::NewTenant>,
}
impl RequestBody for BulkTenants {}

/// `PATCH /v1/tenants/{slug}`.
#[derive(Deserialize)]
pub(crate) struct EditTenant {
    #[serde(default)]
    limits: TenantLimitsEdit,
}
impl RequestBody for EditTenant {}

/// `POST /v1/tenants/{slug}/users`.
#[derive(Deserialize)]
pub(crate) struct CreateTenantUser {
    name: String,
}
impl RequestBody for CreateTenantUser {}

/// A tenant with the user just added: `creds` only when the operation handed them out (to
/// a token with the `creds` scope, as for devices; fetch them later with
/// `GET /v1/tenants/{slug}/users/{user}/creds`).
#[derive(Serialize)]
pub(crate) struct TenantUserAdded<'a> {
    tenant: TenantView,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    creds: Option<&'a str>,
}

/// `GET /v1/tenants`: every tenant, ordered by slug.
pub(crate) async fn list_tenants(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<TenantView>>> {
    Ok(Json(s.warden_for(&token).list_tenants().await?))
}

/// `POST /v1/tenants`: `{slug, limits?}` (limits not given take the defaults).
pub(crate) async fn add_tenant(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<CreateTenant>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    let view = s
        .warden_for(&token)
        .add_tenant(&body.slug, &body.limits)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `POST /v1/tenants/bulk`: many tenants in one transaction (what `tenant add --from`
/// runs); existing slugs are skipped, one bad entry adds nothing.
pub(crate) async fn add_tenants_bulk(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(body): JsonBody<BulkTenants>,
) -> ApiResult<Json<BulkReport>> {
    Ok(Json(
        s.warden_for(&token)
            .add_tenants_bulk(&body.tenants, |_| {})
            .await?,
    ))
}

/// `GET /v1/tenants/{slug}`.
pub(crate) async fn tenant(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(s.warden_for(&token).tenant(&slug).await?))
}

/// `PATCH /v1/tenants/{slug}`: `{limits}`, only the limits that change.
pub(crate) async fn edit_tenant(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(slug): ApiPath<String>,
    JsonBody(body): JsonBody<EditTenant>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(
        s.warden_for(&token)
            .edit_tenant(&slug, &body.limits)
            .await?,
    ))
}

/// `POST /v1/tenants/{slug}/suspend`.
pub(crate) async fn suspend_tenant(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(s.warden_for(&token).suspend_tenant(&slug).await?))
}

/// `POST /v1/tenants/{slug}/resume`.
pub(crate) async fn resume_tenant(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(s.warden_for(&token).resume_tenant(&slug).await?))
}

/// `DELETE /v1/tenants/{slug}`.
pub(crate) async fn delete_tenant(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(s.warden_for(&token).delete_tenant(&slug).await?))
}

/// `POST /v1/tenants/{slug}/users`: `{name}`.
pub(crate) async fn add_tenant_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(slug): ApiPath<String>,
    JsonBody(body): JsonBody<CreateTenantUser>,
) -> ApiResult<Response> {
    let (tenant, creds) = s
        .warden_for(&token)
        .add_tenant_user(&slug, &body.name)
        .await?;
    let out = TenantUserAdded {
        tenant,
        user: &body.name,
        creds: creds.as_deref().map(String::as_str),
    };
    Ok(no_store((StatusCode::CREATED, Json(out)).into_response()))
}

/// `GET /v1/tenants/{slug}/users/{user}/creds`, never cached.
pub(crate) async fn tenant_creds(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath((slug, user)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let creds = s.warden_for(&token).tenant_creds(&slug, &user).await?;
    Ok(no_store(
        Json(json!({"creds": creds.as_str()})).into_response(),
    ))
}

/// `GET /v1/tenants/lint`: the findings of `warden tenant lint` about the stored layout
/// (streams are linted by the CLI, which reads the spec or the server).
pub(crate) async fn lint_tenants(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<Finding>>> {
    Ok(Json(s.warden_for(&token).lint_tenants().await?))
}

// ---------------------------------------------------------------------------------------
// Ledger
// ---------------------------------------------------------------------------------------

/// Query of `GET /v1/ledger`.
#[derive(Deserialize)]
pub(crate) struct LedgerQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/ledger?after=<seq>&limit=<n>`: events with `seq > after`, oldest first.
pub(crate) async fn ledger(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> ApiResult<Json<Vec<LedgerEvent>>> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::Invalid("after must be 0 or more".into()));
    }
    let limit = q.limit.unwrap_or(LEDGER_DEFAULT_LIMIT);
    if !(1..=LEDGER_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Invalid(format!(
            "limit must be between 1 and {LEDGER_MAX_LIMIT}"
        )));
    }
    Ok(Json(
        s.warden_for(&token).ledger_events(after, limit).await?,
    ))
}

/// `GET /v1/ledger/verify`.
pub(crate) async fn verify_ledger(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<LedgerReport>> {
    Ok(Json(s.warden_for(&token).verify_ledger().await?))
}
