//! The `/rooms` REST routes. Every route takes `Authorization: Bearer <HS256 token>`;
//! errors are JSON `{"error":{"code":…,"message":…}}` like the rest of Warden's API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use warden_chat::permissions::{Caller, Permissions, Rights, RoomFacts, RuleFacts, evaluate};
use warden_chat::protocol::MessageOut;
use warden_store::rooms::{MessageQuery, NewRoom, PutRule, RoomRow, RoomRuleRow};
use warden_store::{NewEvent, StoreError};

use super::ChatState;
use super::hub::Control;
use warden_ops::Record;

/// Default and largest page of `GET /rooms` and `GET /rooms/{id}/messages`.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Largest rule cap a room may ask for.
const MAX_RULE_CAP: i64 = 1_000;

/// What a chat request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No or bad token: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// Not allowed: 403.
    #[error("{0}")]
    Forbidden(String),
    /// Bad input: 400.
    #[error("{0}")]
    Invalid(String),
    /// No such room (or rule, or invitation): 404.
    #[error("{0}")]
    NotFound(String),
    /// The room has its cap of rules: 409.
    #[error("{0}")]
    RuleCap(String),
    /// No route: 404.
    #[error("no such route")]
    NoRoute,
    /// A body over the limit: 413.
    #[error("request body too large: {0}")]
    TooLarge(String),
    /// A route served with other methods: 405.
    #[error("this method is not served on this path")]
    MethodNotAllowed,
    /// A failure (logged; not detailed to the client): 500.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ChatError::NotFound(format!("{what} not found")),
            other => ChatError::Internal(other.to_string()),
        }
    }
}

impl From<warden_ops::OpsError> for ChatError {
    fn from(e: warden_ops::OpsError) -> Self {
        ChatError::Internal(e.to_string())
    }
}

impl ChatError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ChatError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ChatError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ChatError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
            ChatError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ChatError::RuleCap(_) => (StatusCode::CONFLICT, "rule_cap"),
            ChatError::NoRoute => (StatusCode::NOT_FOUND, "no_route"),
            ChatError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ChatError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ChatError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
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

/// A number, or a string of digits (the PoC sends `"level_admin":"9999"`).
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

pub(super) fn facts(room: &RoomRow) -> RoomFacts {
    RoomFacts {
        owner_user: room.owner_user.clone(),
        owner_entity: room.owner_entity.clone(),
        level_admin: room.level_admin,
    }
}

pub(super) fn rule_facts(rules: &[RoomRuleRow]) -> Vec<RuleFacts> {
    rules
        .iter()
        .map(|r| RuleFacts {
            entity_uuid: r.entity_uuid.clone(),
            // Stored rules were validated on the way in; a damaged one grants nothing.
            permissions: r.permissions.parse().unwrap_or(Permissions {
                banned: true,
                ..Permissions::default()
            }),
            level: r.level,
        })
        .collect()
}

/// The room and the caller's rights in it, read from the store.
pub(super) async fn rights(
    state: &ChatState,
    room_id: i64,
    caller: &Caller,
) -> Result<(RoomRow, Rights)> {
    let room = state
        .store
        .room(room_id)
        .await?
        .ok_or_else(|| ChatError::NotFound(format!("room {room_id} not found")))?;
    let rules = state.store.room_rules(room_id).await?;
    let rights = evaluate(&facts(&room), caller, &rule_facts(&rules));
    Ok((room, rights))
}

/// The room, if the caller administers it (a room the caller cannot see at all is "not
/// found", so room ids do not leak).
async fn admin_room(state: &ChatState, room_id: i64, caller: &Caller) -> Result<RoomRow> {
    let (room, rights) = rights(state, room_id, caller).await?;
    if !rights.any() && !rights.banned {
        return Err(ChatError::NotFound(format!("room {room_id} not found")));
    }
    if !rights.admin {
        return Err(ChatError::Forbidden(format!(
            "administering room {room_id} needs the a permission, ownership, or level {} in its entity",
            room.level_admin
        )));
    }
    Ok(room)
}

fn room_json(room: &RoomRow, rights: Option<&Rights>) -> serde_json::Value {
    let mut v = json!({
        "id": room.id,
        "name": room.name,
        "type": room.kind,
        "level_admin": room.level_admin,
        "owner_user": room.owner_user,
        "owner_entity": room.owner_entity,
        "rule_cap": room.rule_cap,
        "last_message_id": room.last_message_id,
        "created_at": room.created_at,
    });
    if let Some(r) = rights {
        v["rights"] = json!(r);
    }
    v
}

fn event(caller: &Caller, action: &str, room_id: i64, summary: serde_json::Value) -> NewEvent {
    NewEvent {
        actor: format!("chat:{}", caller.user_uuid),
        action: action.to_string(),
        object_kind: "room".into(),
        object_key: room_id.to_string(),
        summary,
    }
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
    if caller.level_on_entity < state.cfg.create_level {
        return Err(ChatError::Forbidden(format!(
            "creating rooms needs levelOnEntity {} or more (the token has {})",
            state.cfg.create_level, caller.level_on_entity
        )));
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ChatError::Invalid(
            "name must have 1 to 200 characters".into(),
        ));
    }
    let kind = req.kind.as_deref().unwrap_or("group");
    // A user2user room is for two people: its owner and the one its single rule names.
    let (default_cap, max_cap) = match kind {
        "group" => (10, MAX_RULE_CAP),
        "user2user" => (1, 1),
        other => {
            return Err(ChatError::Invalid(format!(
                "type {other:?} must be group or user2user"
            )));
        }
    };
    let rule_cap = req.rule_cap.unwrap_or(default_cap);
    if !(1..=max_cap).contains(&rule_cap) {
        return Err(ChatError::Invalid(format!(
            "rule_cap of a {kind} room must be between 1 and {max_cap}"
        )));
    }
    let level_admin = req.level_admin.unwrap_or(state.cfg.create_level);
    let mut tx = state.store.begin().await?;
    let room = tx
        .insert_room(&NewRoom {
            name: name.to_string(),
            kind: kind.to_string(),
            owner_user: caller.user_uuid.clone(),
            owner_entity: caller.entity_uuid.clone(),
            level_admin,
            rule_cap,
        })
        .await?;
    tx.record(event(
        &caller,
        "room.create",
        room.id,
        json!({"name": room.name, "type": room.kind, "owner_user": room.owner_user,
               "owner_entity": room.owner_entity, "level_admin": level_admin, "rule_cap": rule_cap}),
    ))
    .await?;
    tx.commit().await.map_err(ChatError::from)?;
    let rights = Rights {
        read: true,
        write: true,
        admin: true,
        banned: false,
    };
    Ok((StatusCode::CREATED, Json(room_json(&room, Some(&rights)))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Page {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

fn page_limit(limit: Option<i64>) -> Result<i64> {
    let l = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&l) {
        return Err(ChatError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(l)
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
    let limit = page_limit(page.limit)?;
    let mut after = page.after.unwrap_or(0);
    let mut out = Vec::new();
    let mut more = false;
    // Candidates are read in chunks and filtered by the evaluation (a rule may be a ban).
    'scan: loop {
        let chunk = state
            .store
            .rooms_touching(&caller.user_uuid, &caller.entity_uuid, after, 200)
            .await?;
        let done = chunk.len() < 200;
        for room in chunk {
            after = room.id;
            let rules = state.store.room_rules(room.id).await?;
            let r = evaluate(&facts(&room), &caller, &rule_facts(&rules));
            if r.read {
                if out.len() as i64 == limit {
                    more = true;
                    break 'scan;
                }
                out.push(room_json(&room, Some(&r)));
            }
        }
        if done {
            break;
        }
    }
    let next_after = if more {
        out.last().and_then(|r| r["id"].as_i64())
    } else {
        None
    };
    let invitations: Vec<serde_json::Value> = state
        .store
        .room_invitations(&caller.user_uuid, "pending")
        .await?
        .into_iter()
        .map(|i| json!({"room_id": i.room_id, "state": i.state, "created_at": i.created_at}))
        .collect();
    Ok(Json(json!({
        "rooms": out,
        "invitations": invitations,
        "next_after": next_after,
    })))
}

/// `GET /rooms/{id}`: the room and the caller's rights; admins also see its rules.
pub(super) async fn room(
    State(state): State<ChatState>,
    headers: HeaderMap,
    RoomPath(id): RoomPath<i64>,
) -> Result<Json<serde_json::Value>> {
    let caller = caller(&state, &headers)?;
    let (room, rights) = rights(&state, id, &caller).await?;
    if !rights.any() {
        return Err(if rights.banned {
            ChatError::Forbidden(format!("banned from room {id}"))
        } else {
            ChatError::NotFound(format!("room {id} not found"))
        });
    }
    let mut v = room_json(&room, Some(&rights));
    if rights.admin {
        let rules = state.store.room_rules(id).await?;
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
    let room = admin_room(&state, id, &caller).await?;
    let mut tx = state.store.begin().await?;
    tx.delete_room(id).await?;
    tx.record(event(
        &caller,
        "room.delete",
        id,
        json!({"name": room.name}),
    ))
    .await?;
    tx.commit().await.map_err(ChatError::from)?;
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
    let who = req.entity_uuid.trim();
    if who.is_empty() || who.len() > 200 {
        return Err(ChatError::Invalid(
            "entity_UUID must have 1 to 200 characters".into(),
        ));
    }
    let Some(text) = req.permissions.as_str() else {
        return Err(ChatError::Invalid(
            "permissions must be a string of r (read), w (write), a (admin), b (banned), e.g. \"rw\"".into(),
        ));
    };
    let perms: Permissions =
        text.parse()
            .map_err(|e: warden_chat::permissions::PermissionsError| {
                ChatError::Invalid(e.to_string())
            })?;
    admin_room(&state, id, &caller).await?;
    let rule = RoomRuleRow {
        room_id: id,
        entity_uuid: who.to_string(),
        permissions: perms.to_string(),
        level: req.level.unwrap_or(0),
        updated_at: now_secs(),
    };
    let mut tx = state.store.begin().await?;
    let outcome = tx.put_room_rule(&rule).await?;
    if let PutRule::CapReached { cap } = outcome {
        return Err(ChatError::RuleCap(format!(
            "room {id} already has its cap of {cap} rules; remove one or replace an existing rule"
        )));
    }
    if !perms.banned {
        tx.invite_to_room(id, who).await?;
    }
    tx.record(event(
        &caller,
        "room.rule.put",
        id,
        json!({"entity_UUID": who, "permissions": rule.permissions, "level": rule.level}),
    ))
    .await?;
    tx.commit().await.map_err(ChatError::from)?;
    announce(&state, id, Control::RulesChanged).await;
    let created = outcome == PutRule::Added;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(
            json!({"room_id": id, "entity_UUID": who, "permissions": rule.permissions,
                    "level": rule.level, "created": created}),
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
    admin_room(&state, id, &caller).await?;
    let mut tx = state.store.begin().await?;
    tx.delete_room_rule(id, &entity).await?;
    tx.record(event(
        &caller,
        "room.rule.delete",
        id,
        json!({"entity_UUID": entity}),
    ))
    .await?;
    tx.commit().await.map_err(ChatError::from)?;
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
    let state_text = if req.accept { "accepted" } else { "declined" };
    let mut tx = state.store.begin().await?;
    tx.answer_room_invitation(id, &caller.user_uuid, state_text)
        .await?;
    let mut removed_rule = false;
    if !req.accept {
        let own = tx
            .room_rules(id)
            .await?
            .into_iter()
            .find(|r| r.entity_uuid == caller.user_uuid);
        if let Some(rule) = own
            && !rule.permissions.contains('b')
        {
            tx.delete_room_rule(id, &caller.user_uuid).await?;
            // Keep the answer on record (deleting the rule dropped the invitation row).
            tx.invite_to_room(id, &caller.user_uuid).await?;
            tx.answer_room_invitation(id, &caller.user_uuid, state_text)
                .await?;
            removed_rule = true;
        }
    }
    tx.record(event(
        &caller,
        if req.accept {
            "room.invitation.accept"
        } else {
            "room.invitation.decline"
        },
        id,
        json!({"invitee": caller.user_uuid}),
    ))
    .await?;
    tx.commit().await.map_err(ChatError::from)?;
    if removed_rule {
        announce(&state, id, Control::RulesChanged).await;
    }
    Ok(Json(json!({"room_id": id, "state": state_text})))
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

#[derive(Serialize)]
pub(super) struct HistoryPage {
    messages: Vec<MessageOut>,
    next_before: Option<i64>,
}

pub(super) fn message_out(m: warden_store::MessageRow) -> MessageOut {
    MessageOut {
        room_id: m.room_id,
        id: m.id,
        user_uuid: m.sender_user,
        entity_uuid: m.sender_entity,
        content: m.body,
        time_ms: m.sent_at_ms,
    }
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
    let limit = page_limit(q.limit)?;
    let (_, rights) = rights(&state, id, &caller).await?;
    if !rights.read {
        return Err(if rights.banned {
            ChatError::Forbidden(format!("banned from room {id}"))
        } else if rights.any() {
            ChatError::Forbidden(format!("reading room {id} needs the r permission"))
        } else {
            ChatError::NotFound(format!("room {id} not found"))
        });
    }
    let rows = state
        .store
        .room_messages(
            id,
            &MessageQuery {
                before: q.before,
                after: None,
                since_ms: q.since_ms,
                until_ms: q.until_ms,
                limit: limit + 1,
                newest_first: true,
            },
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let messages: Vec<MessageOut> = rows
        .into_iter()
        .take(limit as usize)
        .map(message_out)
        .collect();
    let next_before = if more {
        messages.last().map(|m| m.id)
    } else {
        None
    };
    Ok(Json(HistoryPage {
        messages,
        next_before,
    }))
}

pub(super) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
