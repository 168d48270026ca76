//! `/v1/dir/…` and `/v1/proposals…`: identity governance over HTTP, doing what the
//! `warden dir|role|task|propose|proposals|confirm|reject` commands do. The acting
//! directory user travels in the body (`as`) or the query (`?as=`) and goes to the
//! operation as given: there, an operator's token (write scope for changes) may name
//! anyone, a token bound to a directory user acts as that user only
//! ([`warden_ops::Actor::acting_as`]), and the approval rules decide what the acting user
//! may do.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde::Deserialize;
use warden_core::directory::NextUser;
use warden_core::governance::{Change, Explanation, ProposalKind, ProposalStatus, TaskGrants};

use super::extract::{ApiPath, ApiQuery, JsonBody, RequestBody};
use super::{ApiError, HttpState};
use warden_ops::governance::{
    BatchResult, DirUserView, ExpireReport, ProposalInput, ProposalView, RoleView, TaskView,
};
use warden_ops::tokens::TokenInfo;
use warden_store::governance::DirUserRow;

type ApiResult<T> = Result<T, ApiError>;

/// `POST /v1/dir/users`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateDirUser {
    #[serde(rename = "as", default)]
    acting: Option<String>,
    #[serde(default)]
    sysadmin: bool,
    user: NextUser,
}
impl RequestBody for CreateDirUser {}

/// `POST /v1/dir/roles`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRole {
    #[serde(rename = "as", default)]
    acting: Option<String>,
    name: String,
    owners: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}
impl RequestBody for CreateRole {}

/// `POST /v1/dir/tasks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTask {
    #[serde(rename = "as", default)]
    acting: Option<String>,
    name: String,
    account: String,
    grants: TaskGrants,
    owners: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}
impl RequestBody for CreateTask {}

/// `POST /v1/proposals`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProposal {
    #[serde(rename = "as")]
    acting: Option<String>,
    kind: ProposalKind,
    change: Change,
    object: String,
    related: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    grant_expires_at: Option<i64>,
    #[serde(default)]
    expires_at: Option<i64>,
}
impl RequestBody for CreateProposal {}

/// `POST /v1/proposals/{id}/confirm` and `/reject`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseProposal {
    #[serde(rename = "as")]
    acting: Option<String>,
    #[serde(default)]
    justification: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}
impl RequestBody for CloseProposal {}

/// `POST /v1/proposals/confirm`: batch approval.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmMany {
    #[serde(rename = "as")]
    acting: Option<String>,
    ids: Vec<String>,
    #[serde(default)]
    justification: Option<String>,
}
impl RequestBody for ConfirmMany {}

/// `GET /v1/proposals` query.
#[derive(Deserialize)]
pub(crate) struct ProposalQuery {
    #[serde(rename = "as", default)]
    acting: Option<String>,
    #[serde(default)]
    mine: bool,
    #[serde(default)]
    to_approve: bool,
    #[serde(default)]
    status: Option<ProposalStatus>,
}

/// `GET /v1/dir/users/{id}/explain` query.
#[derive(Deserialize)]
pub(crate) struct ExplainQuery {
    subject: String,
    #[serde(default)]
    account: Option<String>,
}

/// `GET /v1/dir/users`.
pub(crate) async fn list_users(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<DirUserRow>>> {
    Ok(Json(s.warden_for(&token).dir_users().await?))
}

/// `POST /v1/dir/users`.
pub(crate) async fn add_user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(b): JsonBody<CreateDirUser>,
) -> ApiResult<(StatusCode, Json<DirUserView>)> {
    let v = s
        .warden_for(&token)
        .dir_user_add(b.acting.as_deref(), b.user, b.sysadmin)
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/dir/users/{id}`.
pub(crate) async fn user(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DirUserView>> {
    Ok(Json(s.warden_for(&token).dir_user(&id).await?))
}

/// `GET /v1/dir/users/{id}/explain?subject=S[&account=A]`.
pub(crate) async fn explain(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ExplainQuery>,
) -> ApiResult<Json<Vec<Explanation>>> {
    let subject = nats_jwt::Subject::new(q.subject.trim())
        .map_err(|e| ApiError::Invalid(format!("subject {:?}: {e}", q.subject)))?;
    Ok(Json(
        s.warden_for(&token)
            .explain(&id, &subject, q.account.as_deref())
            .await?,
    ))
}

/// `GET /v1/dir/roles`.
pub(crate) async fn list_roles(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<RoleView>>> {
    Ok(Json(s.warden_for(&token).roles().await?))
}

/// `POST /v1/dir/roles`.
pub(crate) async fn add_role(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(b): JsonBody<CreateRole>,
) -> ApiResult<(StatusCode, Json<RoleView>)> {
    let v = s
        .warden_for(&token)
        .role_create(b.acting.as_deref(), &b.name, &b.owners, b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/dir/roles/{name}`.
pub(crate) async fn role(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<RoleView>> {
    Ok(Json(s.warden_for(&token).role(&name).await?))
}

/// `GET /v1/dir/tasks`.
pub(crate) async fn list_tasks(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<Vec<TaskView>>> {
    Ok(Json(s.warden_for(&token).tasks().await?))
}

/// `POST /v1/dir/tasks`.
pub(crate) async fn add_task(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(b): JsonBody<CreateTask>,
) -> ApiResult<(StatusCode, Json<TaskView>)> {
    let v = s
        .warden_for(&token)
        .task_create(
            b.acting.as_deref(),
            &b.name,
            &b.account,
            b.grants,
            &b.owners,
            b.description,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/dir/tasks/{name}`.
pub(crate) async fn task(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<TaskView>> {
    Ok(Json(s.warden_for(&token).task(&name).await?))
}

/// `POST /v1/dir/expire`.
pub(crate) async fn expire(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
) -> ApiResult<Json<ExpireReport>> {
    Ok(Json(s.warden_for(&token).expire_governance().await?))
}

/// `GET /v1/proposals`.
pub(crate) async fn list_proposals(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiQuery(q): ApiQuery<ProposalQuery>,
) -> ApiResult<Json<Vec<ProposalView>>> {
    Ok(Json(
        s.warden_for(&token)
            .proposals(q.acting.as_deref(), q.mine, q.to_approve, q.status)
            .await?,
    ))
}

/// `POST /v1/proposals`.
pub(crate) async fn propose(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(b): JsonBody<CreateProposal>,
) -> ApiResult<(StatusCode, Json<ProposalView>)> {
    let v = s
        .warden_for(&token)
        .propose(
            b.acting.as_deref().unwrap_or_default(),
            ProposalInput {
                kind: b.kind,
                change: b.change,
                object: b.object,
                related: b.related,
                reason: b.reason,
                grant_expires_at: b.grant_expires_at,
                expires_at: b.expires_at,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `GET /v1/proposals/{id}`.
pub(crate) async fn proposal(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ProposalView>> {
    Ok(Json(s.warden_for(&token).proposal(&id).await?))
}

/// `POST /v1/proposals/{id}/confirm`.
pub(crate) async fn confirm(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
    JsonBody(b): JsonBody<CloseProposal>,
) -> ApiResult<Json<ProposalView>> {
    Ok(Json(
        s.warden_for(&token)
            .confirm(
                b.acting.as_deref().unwrap_or_default(),
                &id,
                b.justification.as_deref(),
            )
            .await?,
    ))
}

/// `POST /v1/proposals/{id}/reject`.
pub(crate) async fn reject(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    ApiPath(id): ApiPath<String>,
    JsonBody(b): JsonBody<CloseProposal>,
) -> ApiResult<Json<ProposalView>> {
    let reason = b.reason.unwrap_or_default();
    Ok(Json(
        s.warden_for(&token)
            .reject(b.acting.as_deref().unwrap_or_default(), &id, &reason)
            .await?,
    ))
}

/// `POST /v1/proposals/confirm`: batch approval, a result per id.
pub(crate) async fn confirm_many(
    State(s): State<HttpState>,
    Extension(token): Extension<TokenInfo>,
    JsonBody(b): JsonBody<ConfirmMany>,
) -> ApiResult<Json<Vec<BatchResult>>> {
    if b.ids.is_empty() {
        return Err(ApiError::Invalid("`ids` is empty".into()));
    }
    Ok(Json(
        s.warden_for(&token)
            .confirm_many(
                b.acting.as_deref().unwrap_or_default(),
                &b.ids,
                b.justification.as_deref(),
            )
            .await,
    ))
}
