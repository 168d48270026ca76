//! The `/rooms` REST routes: each parses its request, calls one rooms operation
//! ([`warden_ops::rooms`]) for the token's user and renders the result. Every route takes
//! `Authorization: Bearer <HS256 token>`; errors are JSON `{"error":{"code":…,"message":…}}`
//! with the same codes and statuses as the rest of Warden's API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use warden_chat::permissions::Caller;
use warden_ops::OpsError;
use warden_ops::rooms::{
    HistoryPage, HistoryQuery, NewRoomRequest, RoomAccess, RoomView, RuleRequest,
};

use super::ChatState;
use super::hub::Control;

/// What a chat request can fail with: an operation's error (mapped by its kind, like the
/// HTTP API), or what the gateway finds before any operation runs.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A rooms operation failed: its kind gives the status and code.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// No or bad token: `401 unauthorized`.
    #[error("{0}")]
    Unauthorized(String),
    /// A bad path, query or body: `400 invalid`.
    #[error("{0}")]
    Invalid(String),
    /// No route: `404 no_route`.
    #[error("no such route")]
    NoRoute,
    /// A body over the limit: `413 payload_too_large`.
    #[error("request body too large: {0}")]
    TooLarge(String),
    /// A route served with other methods: `405 method_not_allowed`.
    #[error("this method is not served on this path")]
    MethodNotAllowed,
}

impl ChatError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ChatError::Ops(e) => (crate::http::status_of(e.kind()), e.code()),
            ChatError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ChatError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ChatError::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            ChatError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ChatError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }

    /// The JSON response.
    pub fn into_response_json(self) -> Response {
        let (status, code) = self.status_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "chat request failed");
            "internal error; the details are in the server log".to_string()
        } else {
            self.to_string()
        };
        let mut r = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Bearer realm=\"warden-chat\"".parse()
        {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        self.into_response_json()
    }
}

type Result<T> = std::result::Result<T, ChatError>;

/// Path parameters whose rejection is a JSON `invalid` error (axum's own is plain text,
/// and every reply of the gateway is JSON).
pub(super) struct RoomPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for RoomPath<T> {
    type Rejection = ChatError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| RoomPath(v))
            .map_err(|e| ChatError::Invalid(format!("bad path: {}", e.body_text())))
    }
}

/// Any other method on a gateway route: a JSON 405.
pub(super) async fn method_not_allowed() -> Response {
    ChatError::MethodNotAllowed.into_response_json()
}

/// The caller of a request, from its bearer token.
fn caller(state: &ChatState, headers: &HeaderMap) -> Result<Caller> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ChatError::Unauthorized("missing token: send Authorization: Bearer <token>".into())
        })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ChatError::Unauthorized("Authorization must be Bearer <token>".into()))?;
    state
        .cfg
        .validator
        .validate(token)
        .map(|v| v.caller)
        .map_err(|e| ChatError::Unauthorized(e.to_string()))
}

/// The JSON body; a body over the limit (or unreadable) is a JSON error too.
fn body<T: serde::de::DeserializeOwned>(
    bytes: &std::result::Result<Bytes, BytesRejection>,
) -> Result<T> {
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ChatError::TooLarge(e.body_text()));
        }
        Err(e) => return Err(ChatError::Invalid(e.body_text())),
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ChatError::Invalid(format!("request body does not fit: {e}")))
}

/// A number, or a string of digits (nano-messaging clients send `"level_admin":"9999"`).
fn int_or_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum V {
        N(i64),
        S(String),
    }
    match Option::<V>::deserialize(d)? {
        None => Ok(None),
        Some(V::N(n)) => Ok(Some(n)),
        Some(V::S(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer"))),
    }
}

fn room_json(room: &RoomView, rights: &warden_ops::rooms::Rights) -> serde_json::Value {
    json!({
        "id": room.id,
        "name": room.name,
        "type": room.kind,
        "level_admin": room.level_admin,
        "owner_user": room.owner_user,
        "owner_entity": room.owner_entity,
        "rule_cap": room.rule_cap,
        "last_message_id": room.last_message_id,
        "created_at": room.created_at,
        "rights": rights,
    })
}

fn access_json(a: &RoomAccess) -> serde_json::Value {
    room_json(&a.room, &a.rights)
}

/// Tells every gateway to re-check its sockets in the room. The change is committed
/// already; a failure here is logged (sockets still re-check on their next command that
/// needs rights, e.g. joining).
async fn announce(state: &ChatState, room_id: i64, c: Control) {
    if let Err(e) = state.hub.publish_control(room_id, c).await {
        tracing::warn!(room_id, error = %e, "cannot publish a room control event");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRoom {
    name: String,
    #[serde(default, deserialize_with = "int_or_text")]
    level_admin: Option<i64>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default, deserialize_with = "int_or_text")]
    rule_cap: Option<i64>,
}

/// `POST /rooms`
pub(super) async fn create_room(
    State(state): State<ChatState>,
    headers: HeaderMap,
    bytes: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let caller = caller(&state, &headers)?;
    let req: CreateRoom = body(&bytes)?;
    let created = state
        .rooms
        .create(
            &caller,
            NewRoomRequest {
                name: req.name,
                kind: req.kind,
                level_admin: req.level_admin,
                rule_cap: req.rule_cap,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(access_json(&created))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /rooms?after=&limit=`: the rooms the caller may read, by id, and their pending
/// invitations.
pub(super) async fn list_rooms(
    State(state): State<ChatState>,
    headers: HeaderMap,
    query: std::result::Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>> {
    let caller = caller(&state, &headers)?;
    let Query(page) = query.map_err(|e| ChatError::Invalid(e.body_text()))?;
    let listing = state.rooms.list(&caller, page.after, page.limit).await?;
    Ok(Json(json!({
        "rooms": listing.rooms.iter().map(access_json).collect::<Vec<_>>(),
        "invitations": listing.invitations,
        "next_after": listing.next_after,
    })))
}

/// `GET /rooms/{id}`: the room and the caller's rights; admins also see its rules.
pub(super) async fn room(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath(id): RoomPath<i64>,
) -> Result<Json<serde_json::Value>> {
    let caller = caller(&state, &headers)?;
    let detail = state.rooms.get(&caller, id).await?;
    let mut v = room_json(&detail.room, &detail.rights);
    if let Some(rules) = &detail.rules {
        v["rules"] = json!(
            rules
                .iter()
                .map(|r| json!({"entity_UUID": r.entity_uuid, "permissions": r.permissions, "level": r.level}))
                .collect::<Vec<_>>()
        );
    }
    Ok(Json(v))
}

/// `DELETE /rooms/{id}` (admin).
pub(super) async fn delete_room(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath(id): RoomPath<i64>,
) -> Result<Json<serde_json::Value>> {
    let caller = caller(&state, &headers)?;
    state.rooms.delete(&caller, id).await?;
    announce(&state, id, Control::Deleted).await;
    Ok(Json(json!({"deleted": id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutMember {
    #[serde(rename = "entity_UUID")]
    entity_uuid: String,
    permissions: serde_json::Value,
    #[serde(default, deserialize_with = "int_or_text")]
    level: Option<i64>,
}

/// `PUT /rooms/{id}/members` (admin): adds or replaces the rule for `entity_UUID`.
pub(super) async fn put_member(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath(id): RoomPath<i64>,
    bytes: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let caller = caller(&state, &headers)?;
    let req: PutMember = body(&bytes)?;
    let Some(text) = req.permissions.as_str() else {
        return Err(ChatError::Invalid(
            "permissions must be a string of r (read), w (write), a (admin), b (banned), e.g. \"rw\"".into(),
        ));
    };
    let change = state
        .rooms
        .put_rule(
            &caller,
            id,
            RuleRequest {
                entity_uuid: req.entity_uuid,
                permissions: text.to_string(),
                level: req.level,
            },
        )
        .await?;
    announce(&state, id, Control::RulesChanged).await;
    Ok((
        if change.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(
            json!({"room_id": change.room_id, "entity_UUID": change.rule.entity_uuid,
                    "permissions": change.rule.permissions, "level": change.rule.level,
                    "created": change.created}),
        ),
    )
        .into_response())
}

/// `DELETE /rooms/{id}/members/{entity}` (admin).
pub(super) async fn delete_member(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath((id, entity)): RoomPath<(i64, String)>,
) -> Result<Json<serde_json::Value>> {
    let caller = caller(&state, &headers)?;
    state.rooms.delete_rule(&caller, id, &entity).await?;
    announce(&state, id, Control::RulesChanged).await;
    Ok(Json(json!({"room_id": id, "removed": entity})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Answer {
    accept: bool,
}

/// `PUT /rooms/{id}/invitation` `{"accept": true|false}`: the caller answers their
/// invitation. Declining also removes the caller's own rule (unless it is a ban, which the
/// invitee cannot lift).
pub(super) async fn answer_invitation(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath(id): RoomPath<i64>,
    bytes: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>> {
    let caller = caller(&state, &headers)?;
    let req: Answer = body(&bytes)?;
    let answer = state
        .rooms
        .answer_invitation(&caller, id, req.accept)
        .await?;
    if answer.rules_changed {
        announce(&state, id, Control::RulesChanged).await;
    }
    Ok(Json(
        json!({"room_id": answer.room_id, "state": answer.state}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct History {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    since_ms: Option<i64>,
    #[serde(default)]
    until_ms: Option<i64>,
}

/// `GET /rooms/{id}/messages?before=&limit=&since_ms=&until_ms=` (read): newest first;
/// pass `next_before` back as `before` for the next page.
pub(super) async fn messages(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath(id): RoomPath<i64>,
    query: std::result::Result<Query<History>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HistoryPage>> {
    let caller = caller(&state, &headers)?;
    let Query(q) = query.map_err(|e| ChatError::Invalid(e.body_text()))?;
    let page = state
        .rooms
        .history(
            &caller,
            id,
            HistoryQuery {
                before: q.before,
                since_ms: q.since_ms,
                until_ms: q.until_ms,
                limit: q.limit,
            },
        )
        .await?;
    Ok(Json(page))
}
