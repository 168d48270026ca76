//! The rooms of the chat gateway: rooms, their rules (who may read, write, administer, or
//! is banned), invitations and messages, read and changed on behalf of a chat user — the
//! claims of an HS256 token from the upstream user service ([`ChatUser`]).
//!
//! Who may do what in a room is decided by [`warden_chat::permissions::evaluate`] alone;
//! every operation here asks it before acting. Every change is one transaction with its
//! ledger event, recorded as `chat:<user UUID>`. The [`Warden`] behind [`Rooms`] is the
//! gateway's own (e.g. `Actor::system("chat")`): it needs `read` to read rooms and `write`
//! to change them or store messages.
//!
//! Fan-out of messages and rule changes to other gateways is not done here: the gateway
//! publishes what an operation reports (a stored message, rules changed, a room deleted).
//!
//! Messages from sockets go through a [`RoomWriter`] (group commit): the posts that arrive
//! while the previous batch is being written — from any rooms, any sockets — are checked
//! and stored together in one transaction; the gateway's hook sees the stored messages in
//! id order, and only then is each sender answered. A sender's answer therefore means its
//! message is committed; a refused post in a batch changes nothing and does not affect the
//! others.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use warden_chat::permissions::{Permissions, RoomFacts, RuleFacts, evaluate};
use warden_chat::protocol::MessageOut;
use warden_store::rooms::{MessageQuery, NewMessage, NewRoom, PutRule};
use warden_store::{KeptConnection, MessageRow, NewEvent, RoomRow, RoomRuleRow, StoreError};

pub use warden_chat::permissions::{Caller as ChatUser, Rights};

use crate::{OpsError, Record, Result, Scope, Warden};

/// Default page of room listings and message history.
pub const DEFAULT_PAGE: i64 = 50;
/// Largest page of room listings and message history.
pub const MAX_PAGE: i64 = 500;
/// Largest rule cap a room may ask for.
pub const MAX_RULE_CAP: i64 = 1_000;
/// Most stored messages replayed when a socket resumes in a room (older ones: the
/// history).
pub const RESUME_LIMIT: i64 = 1_000;
/// Longest room name, characters; longest entity UUID in a rule, bytes.
const NAME_MAX: usize = 200;
/// Candidate rooms read per query while listing (each is evaluated: a rule may be a ban).
const SCAN_CHUNK: i64 = 200;

/// The gateway's settings that decide room operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomsPolicy {
    /// Lowest `levelOnEntity` that may create rooms (also a new room's default
    /// administering level).
    pub create_level: i64,
    /// Largest message text, bytes.
    pub max_message_bytes: usize,
}

/// The rooms, for chat users, under a gateway's [`RoomsPolicy`].
#[derive(Clone)]
pub struct Rooms {
    warden: Warden,
    policy: RoomsPolicy,
}

/// A room as its members see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoomView {
    /// Id, never reused.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `group` or `user2user`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `levelOnEntity` from which members of the owning entity administer the room.
    pub level_admin: i64,
    /// The creator's user UUID.
    pub owner_user: String,
    /// The creator's entity UUID.
    pub owner_entity: String,
    /// Most rules the room may have.
    pub rule_cap: i64,
    /// Id of the latest message (0: none yet).
    pub last_message_id: i64,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl From<RoomRow> for RoomView {
    fn from(r: RoomRow) -> Self {
        RoomView {
            id: r.id,
            name: r.name,
            kind: r.kind,
            level_admin: r.level_admin,
            owner_user: r.owner_user,
            owner_entity: r.owner_entity,
            rule_cap: r.rule_cap,
            last_message_id: r.last_message_id,
            created_at: r.created_at,
        }
    }
}

/// One rule of a room: what a user or an entity may do there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleView {
    /// The user or entity UUID the rule is for.
    #[serde(rename = "entity_UUID")]
    pub entity_uuid: String,
    /// Letters of `r` (read), `w` (write), `a` (admin), `b` (banned).
    pub permissions: String,
    /// Lowest `levelOnEntity` the rule applies from (for an entity).
    pub level: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

impl From<RoomRuleRow> for RuleView {
    fn from(r: RoomRuleRow) -> Self {
        RuleView {
            entity_uuid: r.entity_uuid,
            permissions: r.permissions,
            level: r.level,
            updated_at: r.updated_at,
        }
    }
}

/// A room and what the asking user may do in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomAccess {
    /// The room.
    pub room: RoomView,
    /// The user's rights there.
    pub rights: Rights,
}

/// A room with the user's rights, and its rules when the user administers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomDetail {
    /// The room.
    pub room: RoomView,
    /// The user's rights there.
    pub rights: Rights,
    /// The rules (administrators only).
    pub rules: Option<Vec<RuleView>>,
}

/// A pending invitation of the asking user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvitationView {
    /// The room.
    pub room_id: i64,
    /// `pending`.
    pub state: String,
    /// When the rule naming the user was made, Unix seconds.
    pub created_at: i64,
}

/// One page of the rooms a user may read, and their pending invitations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomListing {
    /// Readable rooms, by id.
    pub rooms: Vec<RoomAccess>,
    /// Pending invitations.
    pub invitations: Vec<InvitationView>,
    /// Pass back as `after` for the next page; `None` on the last page.
    pub next_after: Option<i64>,
}

/// A room to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRoomRequest {
    /// Name, 1 to 200 characters (trimmed).
    pub name: String,
    /// `group` (the default) or `user2user`.
    pub kind: Option<String>,
    /// Administering level (default: the policy's creation level).
    pub level_admin: Option<i64>,
    /// Most rules (default 10 for a group, 1 for a user2user room).
    pub rule_cap: Option<i64>,
}

/// A rule to add or replace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleRequest {
    /// The user or entity UUID, 1 to 200 bytes (trimmed).
    pub entity_uuid: String,
    /// Letters of `r`, `w`, `a`, `b`.
    pub permissions: String,
    /// Lowest `levelOnEntity` the rule applies from (default 0).
    pub level: Option<i64>,
}

/// What putting a rule did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleChange {
    /// The room.
    pub room_id: i64,
    /// The rule as stored.
    pub rule: RuleView,
    /// Whether it was added (rather than replacing one for the same UUID).
    pub created: bool,
}

/// The answer to an invitation, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationAnswer {
    /// The room.
    pub room_id: i64,
    /// `accepted` or `declined`.
    pub state: &'static str,
    /// Whether declining removed the user's own rule (the room's rules changed).
    pub rules_changed: bool,
}

/// Which messages of a room's history to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only ids below this (the previous page's `next_before`).
    pub before: Option<i64>,
    /// Only messages sent at or after this time, Unix milliseconds.
    pub since_ms: Option<i64>,
    /// Only messages sent at or before this time, Unix milliseconds.
    pub until_ms: Option<i64>,
    /// Page size, 1 to [`MAX_PAGE`] (default [`DEFAULT_PAGE`]).
    pub limit: Option<i64>,
}

/// One page of a room's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    /// The messages.
    pub messages: Vec<MessageOut>,
    /// Pass back as `before` for the next page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// Whether a user may be in a room (a socket selecting it, or re-checking after the rules
/// changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The user may read the room; the rights say what else.
    Admitted(Rights),
    /// A rule bans the user.
    Banned,
    /// The user may not read the room.
    NotReadable,
}

/// What became of a message sent to a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Posting {
    /// Stored under the room's next id.
    Stored(MessageOut),
    /// The user may not write in the room (nothing stored).
    NotWritable,
    /// Longer than the policy allows (nothing stored).
    TooLarge {
        /// The message's size.
        bytes: usize,
        /// The largest allowed.
        limit: usize,
    },
    /// Empty or only white space (nothing stored).
    Empty,
}

/// A store error where "not found" means the named room, rule or invitation is absent.
fn found(e: StoreError) -> OpsError {
    match e {
        StoreError::NotFound { what } => OpsError::NotFound(what),
        other => OpsError::Store(other),
    }
}

fn room_facts(room: &RoomRow) -> RoomFacts {
    RoomFacts {
        owner_user: room.owner_user.clone(),
        owner_entity: room.owner_entity.clone(),
        level_admin: room.level_admin,
    }
}

fn rule_facts(rules: &[RoomRuleRow]) -> Vec<RuleFacts> {
    rules
        .iter()
        .map(|r| RuleFacts {
            entity_uuid: r.entity_uuid.clone(),
            // Stored rules were checked on the way in; a damaged one grants nothing.
            permissions: r.permissions.parse().unwrap_or(Permissions {
                banned: true,
                ..Permissions::default()
            }),
            level: r.level,
        })
        .collect()
}

fn rights_in(room: &RoomRow, user: &ChatUser, rules: &[RoomRuleRow]) -> Rights {
    evaluate(&room_facts(room), user, &rule_facts(rules))
}

fn event(user: &ChatUser, action: &str, room_id: i64, summary: serde_json::Value) -> NewEvent {
    NewEvent {
        actor: format!("chat:{}", user.user_uuid),
        action: action.to_string(),
        object_kind: "room".into(),
        object_key: room_id.to_string(),
        summary,
    }
}

fn room_not_found(id: i64) -> OpsError {
    OpsError::NotFound(format!("room {id}"))
}

fn page_limit(limit: Option<i64>) -> Result<i64> {
    let l = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&l) {
        return Err(OpsError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(l)
}

fn message_out(m: MessageRow) -> MessageOut {
    MessageOut {
        room_id: m.room_id,
        id: m.id,
        user_uuid: m.sender_user,
        entity_uuid: m.sender_entity,
        content: m.body,
        time_ms: m.sent_at_ms,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Rooms {
    /// The rooms of `warden`'s store under `policy`.
    pub fn new(warden: Warden, policy: RoomsPolicy) -> Rooms {
        Rooms { warden, policy }
    }

    /// The gateway's settings.
    pub fn policy(&self) -> &RoomsPolicy {
        &self.policy
    }

    /// The room and `user`'s rights in it ([`OpsError::NotFound`] if there is no such
    /// room).
    async fn rights(&self, room_id: i64, user: &ChatUser) -> Result<(RoomRow, Rights)> {
        let store = self.warden.store();
        let room = store
            .room(room_id)
            .await?
            .ok_or_else(|| room_not_found(room_id))?;
        let rules = store.room_rules(room_id).await?;
        let rights = rights_in(&room, user, &rules);
        Ok((room, rights))
    }

    /// The room, if `user` administers it. A room the user cannot see at all is "not
    /// found", so room ids do not leak.
    async fn admin_room(&self, room_id: i64, user: &ChatUser) -> Result<RoomRow> {
        let (room, rights) = self.rights(room_id, user).await?;
        if !rights.any() && !rights.banned {
            return Err(room_not_found(room_id));
        }
        if !rights.admin {
            return Err(OpsError::Refused(format!(
                "administering room {room_id} needs the a permission, ownership, or level {} in its entity",
                room.level_admin
            )));
        }
        Ok(room)
    }

    /// Creates a room owned by `user` (who needs the policy's creation level). The owner
    /// administers it.
    pub async fn create(&self, user: &ChatUser, req: NewRoomRequest) -> Result<RoomAccess> {
        self.warden.need(Scope::Write, "creating rooms")?;
        if user.level_on_entity < self.policy.create_level {
            return Err(OpsError::Refused(format!(
                "creating rooms needs levelOnEntity {} or more (the token has {})",
                self.policy.create_level, user.level_on_entity
            )));
        }
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX {
            return Err(OpsError::Invalid(format!(
                "name must have 1 to {NAME_MAX} characters"
            )));
        }
        let kind = req.kind.as_deref().unwrap_or("group");
        // A user2user room is for two people: its owner and the one its single rule names.
        let (default_cap, max_cap) = match kind {
            "group" => (10, MAX_RULE_CAP),
            "user2user" => (1, 1),
            other => {
                return Err(OpsError::Invalid(format!(
                    "type {other:?} must be group or user2user"
                )));
            }
        };
        let rule_cap = req.rule_cap.unwrap_or(default_cap);
        if !(1..=max_cap).contains(&rule_cap) {
            return Err(OpsError::Invalid(format!(
                "rule_cap of a {kind} room must be between 1 and {max_cap}"
            )));
        }
        let level_admin = req.level_admin.unwrap_or(self.policy.create_level);
        let mut tx = self.warden.store().begin().await?;
        let room = tx
            .insert_room(&NewRoom {
                name: name.to_string(),
                kind: kind.to_string(),
                owner_user: user.user_uuid.clone(),
                owner_entity: user.entity_uuid.clone(),
                level_admin,
                rule_cap,
            })
            .await?;
        tx.record(event(
            user,
            "room.create",
            room.id,
            json!({"name": room.name, "type": room.kind, "owner_user": room.owner_user,
                   "owner_entity": room.owner_entity, "level_admin": level_admin,
                   "rule_cap": rule_cap}),
        ))
        .await?;
        tx.commit().await?;
        Ok(RoomAccess {
            room: room.into(),
            rights: Rights {
                read: true,
                write: true,
                admin: true,
                banned: false,
            },
        })
    }

    /// The rooms `user` may read with an id above `after`, by id, at most `limit`, and
    /// the user's pending invitations.
    pub async fn list(
        &self,
        user: &ChatUser,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<RoomListing> {
        self.warden.need(Scope::Read, "listing rooms")?;
        let limit = page_limit(limit)?;
        let store = self.warden.store();
        let mut after = after.unwrap_or(0);
        let mut rooms = Vec::new();
        let mut more = false;
        'scan: loop {
            let chunk = store
                .rooms_touching(&user.user_uuid, &user.entity_uuid, after, SCAN_CHUNK)
                .await?;
            let done = (chunk.len() as i64) < SCAN_CHUNK;
            for room in chunk {
                after = room.id;
                let rules = store.room_rules(room.id).await?;
                let rights = rights_in(&room, user, &rules);
                if rights.read {
                    if rooms.len() as i64 == limit {
                        more = true;
                        break 'scan;
                    }
                    rooms.push(RoomAccess {
                        room: room.into(),
                        rights,
                    });
                }
            }
            if done {
                break;
            }
        }
        let next_after = if more {
            rooms.last().map(|r: &RoomAccess| r.room.id)
        } else {
            None
        };
        let invitations = store
            .room_invitations(&user.user_uuid, "pending")
            .await?
            .into_iter()
            .map(|i| InvitationView {
                room_id: i.room_id,
                state: i.state,
                created_at: i.created_at,
            })
            .collect();
        Ok(RoomListing {
            rooms,
            invitations,
            next_after,
        })
    }

    /// The room and `user`'s rights in it; administrators also get its rules. A room the
    /// user has no access to is "not found" (a ban is refused as such).
    pub async fn get(&self, user: &ChatUser, room_id: i64) -> Result<RoomDetail> {
        self.warden.need(Scope::Read, "reading rooms")?;
        let (room, rights) = self.rights(room_id, user).await?;
        if !rights.any() {
            return Err(if rights.banned {
                OpsError::Refused(format!("banned from room {room_id}"))
            } else {
                room_not_found(room_id)
            });
        }
        let rules = if rights.admin {
            let rules = self.warden.store().room_rules(room_id).await?;
            Some(rules.into_iter().map(RuleView::from).collect())
        } else {
            None
        };
        Ok(RoomDetail {
            room: room.into(),
            rights,
            rules,
        })
    }

    /// Deletes the room with its rules, invitations and messages (administrators only).
    pub async fn delete(&self, user: &ChatUser, room_id: i64) -> Result<()> {
        self.warden.need(Scope::Write, "deleting rooms")?;
        let room = self.admin_room(room_id, user).await?;
        let mut tx = self.warden.store().begin().await?;
        tx.delete_room(room_id).await.map_err(found)?;
        tx.record(event(
            user,
            "room.delete",
            room_id,
            json!({"name": room.name}),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds or replaces the rule for `req.entity_uuid` (administrators only). A new rule
    /// past the room's cap is a conflict; a rule that is not a ban invites its UUID.
    pub async fn put_rule(
        &self,
        user: &ChatUser,
        room_id: i64,
        req: RuleRequest,
    ) -> Result<RuleChange> {
        self.warden.need(Scope::Write, "changing room rules")?;
        let who = req.entity_uuid.trim();
        if who.is_empty() || who.len() > NAME_MAX {
            return Err(OpsError::Invalid(format!(
                "entity_UUID must have 1 to {NAME_MAX} characters"
            )));
        }
        let perms: Permissions =
            req.permissions
                .parse()
                .map_err(|e: warden_chat::permissions::PermissionsError| {
                    OpsError::Invalid(e.to_string())
                })?;
        self.admin_room(room_id, user).await?;
        let rule = RoomRuleRow {
            room_id,
            entity_uuid: who.to_string(),
            permissions: perms.to_string(),
            level: req.level.unwrap_or(0),
            updated_at: crate::now(),
        };
        let mut tx = self.warden.store().begin().await?;
        let outcome = tx.put_room_rule(&rule).await.map_err(found)?;
        if let PutRule::CapReached { cap } = outcome {
            return Err(OpsError::Conflict(format!(
                "room {room_id} already has its cap of {cap} rules; remove one or replace an existing rule"
            )));
        }
        if !perms.banned {
            tx.invite_to_room(room_id, who).await?;
        }
        tx.record(event(
            user,
            "room.rule.put",
            room_id,
            json!({"entity_UUID": who, "permissions": rule.permissions, "level": rule.level}),
        ))
        .await?;
        tx.commit().await?;
        Ok(RuleChange {
            room_id,
            rule: rule.into(),
            created: outcome == PutRule::Added,
        })
    }

    /// Removes the rule for `entity` and its invitation (administrators only).
    pub async fn delete_rule(&self, user: &ChatUser, room_id: i64, entity: &str) -> Result<()> {
        self.warden.need(Scope::Write, "changing room rules")?;
        self.admin_room(room_id, user).await?;
        let mut tx = self.warden.store().begin().await?;
        tx.delete_room_rule(room_id, entity).await.map_err(found)?;
        tx.record(event(
            user,
            "room.rule.delete",
            room_id,
            json!({"entity_UUID": entity}),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records `user`'s answer to their invitation to the room. Declining also removes
    /// the user's own rule, unless it is a ban (which the invitee cannot lift).
    pub async fn answer_invitation(
        &self,
        user: &ChatUser,
        room_id: i64,
        accept: bool,
    ) -> Result<InvitationAnswer> {
        self.warden
            .need(Scope::Write, "answering room invitations")?;
        let state = if accept { "accepted" } else { "declined" };
        let mut tx = self.warden.store().begin().await?;
        tx.answer_room_invitation(room_id, &user.user_uuid, state)
            .await
            .map_err(found)?;
        let mut rules_changed = false;
        if !accept {
            let own = tx
                .room_rules(room_id)
                .await?
                .into_iter()
                .find(|r| r.entity_uuid == user.user_uuid);
            if let Some(rule) = own
                && !rule.permissions.contains('b')
            {
                tx.delete_room_rule(room_id, &user.user_uuid)
                    .await
                    .map_err(found)?;
                // Keep the answer on record (deleting the rule dropped the invitation).
                tx.invite_to_room(room_id, &user.user_uuid).await?;
                tx.answer_room_invitation(room_id, &user.user_uuid, state)
                    .await
                    .map_err(found)?;
                rules_changed = true;
            }
        }
        tx.record(event(
            user,
            if accept {
                "room.invitation.accept"
            } else {
                "room.invitation.decline"
            },
            room_id,
            json!({"invitee": user.user_uuid}),
        ))
        .await?;
        tx.commit().await?;
        Ok(InvitationAnswer {
            room_id,
            state,
            rules_changed,
        })
    }

    /// A page of the room's history, newest first (readers only).
    pub async fn history(
        &self,
        user: &ChatUser,
        room_id: i64,
        q: HistoryQuery,
    ) -> Result<HistoryPage> {
        self.warden.need(Scope::Read, "reading room history")?;
        let limit = page_limit(q.limit)?;
        let (_, rights) = self.rights(room_id, user).await?;
        if !rights.read {
            return Err(if rights.banned {
                OpsError::Refused(format!("banned from room {room_id}"))
            } else if rights.any() {
                OpsError::Refused(format!("reading room {room_id} needs the r permission"))
            } else {
                room_not_found(room_id)
            });
        }
        let rows = self
            .warden
            .store()
            .room_messages(
                room_id,
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
        Ok(HistoryPage {
            messages,
            next_before,
        })
    }

    /// Whether `user` may be in the room now ([`OpsError::NotFound`] if there is no such
    /// room).
    pub async fn admission(&self, user: &ChatUser, room_id: i64) -> Result<Admission> {
        self.warden.need(Scope::Read, "joining rooms")?;
        let (_, rights) = self.rights(room_id, user).await?;
        Ok(if rights.banned {
            Admission::Banned
        } else if rights.read {
            Admission::Admitted(rights)
        } else {
            Admission::NotReadable
        })
    }

    /// The room's messages with an id above `after`, oldest first, at most
    /// [`RESUME_LIMIT`] (readers only): what a socket resuming in the room missed.
    pub async fn messages_after(
        &self,
        user: &ChatUser,
        room_id: i64,
        after: i64,
    ) -> Result<Vec<MessageOut>> {
        self.warden.need(Scope::Read, "reading room history")?;
        let (_, rights) = self.rights(room_id, user).await?;
        if !rights.read {
            return Err(OpsError::Refused(format!(
                "reading room {room_id} needs the r permission"
            )));
        }
        let rows = self
            .warden
            .store()
            .room_messages(
                room_id,
                &MessageQuery {
                    before: None,
                    after: Some(after),
                    since_ms: None,
                    until_ms: None,
                    limit: RESUME_LIMIT,
                    newest_first: false,
                },
            )
            .await?;
        Ok(rows.into_iter().map(message_out).collect())
    }

    /// Stores `content` from `user` under the room's next id, if the user may write
    /// there and the text fits the policy ([`OpsError::NotFound`] if the room is gone).
    /// The rights are read in the same transaction as the message is stored. (Sockets post
    /// through a [`RoomWriter`], which does the same for many posts in one transaction.)
    pub async fn post(&self, user: &ChatUser, room_id: i64, content: &str) -> Result<Posting> {
        let post = PostRef {
            user,
            room_id,
            content,
        };
        self.store_posts(std::slice::from_ref(&post), None)
            .await
            .pop()
            .unwrap_or_else(|| Err(undecided()))
    }

    /// A group-commit writer of messages on these rooms (spawned on the current runtime;
    /// it stops when the last clone of the writer is dropped). `hook` gets every committed
    /// batch's stored messages — by room id, each room's in id order — before their
    /// senders are answered: the gateway publishes them there, so one gateway's messages
    /// of a room go out in id order.
    pub fn writer(&self, hook: StoredHook) -> RoomWriter {
        let (queue, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(self.clone().write_batches(rx, hook));
        RoomWriter { queue }
    }

    /// The writer's loop: takes whatever is queued (at least one post, at most
    /// [`MAX_BATCH`]), stores it in one transaction, hands the stored messages to the hook,
    /// answers every sender; meanwhile the next batch queues up.
    async fn write_batches(self, mut rx: mpsc::Receiver<PendingPost>, hook: StoredHook) {
        let mut batch = Vec::with_capacity(64);
        // Its own connection, whose page cache stays warm from one batch to the next.
        let mut kept = KeptConnection::new();
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let refs: Vec<PostRef<'_>> = batch
                .iter()
                .map(|p| PostRef {
                    user: &p.user,
                    room_id: p.room_id,
                    content: &p.content,
                })
                .collect();
            let mut outcomes = self.store_posts(&refs, Some(&mut kept)).await;
            drop(refs);
            let stored: Vec<MessageOut> = outcomes
                .iter()
                .filter_map(|o| match o {
                    Ok(Posting::Stored(m)) => Some(m.clone()),
                    _ => None,
                })
                .collect();
            let mut by_room_and_id: Vec<&MessageOut> = stored.iter().collect();
            by_room_and_id.sort_by_key(|m| (m.room_id, m.id));
            let in_order: Vec<MessageOut> = by_room_and_id.into_iter().cloned().collect();
            if !in_order.is_empty()
                && let Err(e) = hook(in_order).await
            {
                // Stored (the history and a resume have it) but not handed on: the sender
                // must not wait for an echo that will not come.
                for o in &mut outcomes {
                    if let Ok(Posting::Stored(m)) = o {
                        *o = Err(OpsError::Unavailable(format!(
                            "message {} of room {} was stored but not delivered: {e}",
                            m.id, m.room_id
                        )));
                    }
                }
            }
            for (post, outcome) in batch.drain(..).zip(outcomes) {
                // A sender that went away meanwhile needs no answer.
                let _ = post.reply.send(outcome);
            }
        }
    }

    /// Stores `posts` in one transaction (on `kept`, the writer's own connection, when
    /// given); if that transaction fails as a whole (not a refusal: those are per post and
    /// change nothing), each post is tried alone, so one post cannot fail its batch
    /// neighbours. A failed transaction discards `kept`: the next one reconnects.
    async fn store_posts(
        &self,
        posts: &[PostRef<'_>],
        mut kept: Option<&mut KeptConnection>,
    ) -> Vec<Result<Posting>> {
        let result = self.store_batch(posts, kept.as_deref_mut()).await;
        if result.is_err()
            && let Some(k) = kept
        {
            k.discard();
        }
        match result {
            Ok(outcomes) => outcomes,
            Err(e) if posts.len() == 1 => vec![Err(e)],
            Err(e) => {
                tracing::warn!(error = %e, posts = posts.len(), "a batch of room messages failed; storing them one at a time");
                let mut outcomes = Vec::with_capacity(posts.len());
                for post in posts {
                    outcomes.push(
                        match self.store_batch(std::slice::from_ref(post), None).await {
                            Ok(mut one) => one.pop().unwrap_or_else(|| Err(undecided())),
                            Err(e) => Err(e),
                        },
                    );
                }
                outcomes
            }
        }
    }

    /// One transaction for `posts`: per room (ascending ids, so concurrent writers lock
    /// rooms in one order), lock the room, read its rules once, decide each post in
    /// arrival order, append the accepted ones; commit. The outcome of each post, in order.
    async fn store_batch(
        &self,
        posts: &[PostRef<'_>],
        kept: Option<&mut KeptConnection>,
    ) -> Result<Vec<Result<Posting>>> {
        self.warden.need(Scope::Write, "sending messages")?;
        let mut by_room: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
        for (i, p) in posts.iter().enumerate() {
            by_room.entry(p.room_id).or_default().push(i);
        }
        let mut outcomes: Vec<Option<Result<Posting>>> = posts.iter().map(|_| None).collect();
        let limit = self.policy.max_message_bytes;
        let sent_at_ms = now_ms();
        let room_ids: Vec<i64> = by_room.keys().copied().collect();
        let store = self.warden.store();
        let mut tx = match kept {
            Some(kept) => store.begin_on(kept).await?,
            None => store.begin().await?,
        };
        // A few statements for the whole batch, whatever the number of rooms.
        let locked = tx.lock_rooms(&room_ids).await?;
        let all_rules = tx.rules_of_rooms(&room_ids).await?;
        let mut accepted = Vec::with_capacity(posts.len());
        let mut new = Vec::with_capacity(posts.len());
        for (&room_id, indexes) in &by_room {
            let Some(room) = locked.iter().find(|r| r.id == room_id) else {
                for &i in indexes {
                    outcomes[i] = Some(Err(room_not_found(room_id)));
                }
                continue;
            };
            let rules: Vec<RoomRuleRow> = all_rules
                .iter()
                .filter(|r| r.room_id == room_id)
                .cloned()
                .collect();
            let rules = rule_facts(&rules);
            let facts = room_facts(room);
            for &i in indexes {
                let p = &posts[i];
                let refused = if !evaluate(&facts, p.user, &rules).write {
                    Posting::NotWritable
                } else if p.content.len() > limit {
                    Posting::TooLarge {
                        bytes: p.content.len(),
                        limit,
                    }
                } else if p.content.trim().is_empty() {
                    Posting::Empty
                } else {
                    accepted.push(i);
                    new.push((
                        room_id,
                        NewMessage {
                            sender_user: &p.user.user_uuid,
                            sender_entity: &p.user.entity_uuid,
                            body: p.content,
                            sent_at_ms,
                        },
                    ));
                    continue;
                };
                outcomes[i] = Some(Ok(refused));
            }
        }
        let rows = tx.append_messages(&new).await.map_err(found)?;
        for (i, row) in accepted.into_iter().zip(rows) {
            outcomes[i] = Some(Ok(Posting::Stored(message_out(row))));
        }
        tx.commit().await?;
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(undecided())))
            .collect())
    }
}

/// Most posts a [`RoomWriter`] stores in one transaction.
pub const MAX_BATCH: usize = 512;
/// Posts queued for a [`RoomWriter`] at most; beyond, senders wait to queue.
const WRITER_QUEUE: usize = 4096;

/// What a [`RoomWriter`] does with the messages of each committed batch before their
/// senders are answered (the gateway publishes them); an error is reported to those
/// senders.
pub type StoredHook = Arc<
    dyn Fn(Vec<MessageOut>) -> Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// A post borrowed for deciding and storing.
struct PostRef<'a> {
    user: &'a ChatUser,
    room_id: i64,
    content: &'a str,
}

/// A post queued for the writer, with where its outcome goes.
struct PendingPost {
    user: ChatUser,
    room_id: i64,
    content: String,
    reply: oneshot::Sender<Result<Posting>>,
}

/// The group-commit writer of a gateway's messages ([`Rooms::writer`]): cheap to clone,
/// one per gateway.
#[derive(Clone)]
pub struct RoomWriter {
    queue: mpsc::Sender<PendingPost>,
}

impl std::fmt::Debug for RoomWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomWriter").finish_non_exhaustive()
    }
}

impl RoomWriter {
    /// [`Rooms::post`] in the writer's next batch: answers once the batch is committed and
    /// its messages handed to the hook (or refused: then nothing of this post was stored).
    pub async fn post(&self, user: &ChatUser, room_id: i64, content: String) -> Result<Posting> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(PendingPost {
                user: user.clone(),
                room_id,
                content,
                reply,
            })
            .await
            .map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())?
    }
}

fn writer_stopped() -> OpsError {
    OpsError::Unavailable("the room writer has stopped".into())
}

/// A post the batch left without an outcome (cannot happen: every index is decided).
fn undecided() -> OpsError {
    OpsError::Unavailable("the message was not decided".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, ErrorKind};
    use warden_store::{MasterKey, Store};

    const POLICY: RoomsPolicy = RoomsPolicy {
        create_level: 100,
        max_message_bytes: 16,
    };

    fn user(uuid: &str, entity: &str, level: i64) -> ChatUser {
        ChatUser {
            user_uuid: uuid.into(),
            entity_uuid: entity.into(),
            level_on_entity: level,
        }
    }

    async fn room_events(w: &Warden) -> Vec<(String, String)> {
        w.store()
            .ledger(0, 10_000)
            .await
            .expect("ledger")
            .into_iter()
            .filter(|e| e.object_kind == "room")
            .map(|e| (e.actor, e.action))
            .collect()
    }

    fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
        r.expect_err("an error").kind()
    }

    /// Rooms decided in one place: who may create, administer, read and write, what a
    /// refusal means, and that a refused or invalid request changes nothing.
    async fn rooms_on(url: &str) {
        let store = Store::open(url, MasterKey::generate())
            .await
            .expect("open store");
        let w = Warden::open(store, Actor::system("chat"))
            .await
            .expect("open warden");
        let rooms = Rooms::new(w.clone(), POLICY);
        let owner = user("u-owner", "e-acme", 100);
        let reader = user("u-reader", "e-other", 1);
        let writer = user("u-writer", "e-other", 1);
        let banned = user("u-banned", "e-other", 1);
        let stranger = user("u-stranger", "e-else", 500);

        let low = user("u-low", "e-acme", 99);
        let req = |name: &str| NewRoomRequest {
            name: name.into(),
            ..NewRoomRequest::default()
        };
        assert_eq!(kind(rooms.create(&low, req("x")).await), ErrorKind::Refused);
        assert_eq!(
            kind(rooms.create(&owner, req(" ")).await),
            ErrorKind::Invalid
        );
        let room = rooms.create(&owner, req("ops")).await.expect("create");
        assert!(room.rights.admin && room.rights.write && room.rights.read);
        assert_eq!((room.room.kind.as_str(), room.room.rule_cap), ("group", 10));
        let id = room.room.id;
        let rule = |who: &str, perms: &str| RuleRequest {
            entity_uuid: who.into(),
            permissions: perms.into(),
            level: None,
        };
        for (who, perms) in [("u-reader", "r"), ("u-writer", "rw"), ("u-banned", "b")] {
            let change = rooms.put_rule(&owner, id, rule(who, perms)).await.unwrap();
            assert!(change.created, "{change:?}");
        }
        let events = room_events(&w).await;
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(events.iter().all(|(actor, _)| actor == "chat:u-owner"));

        // Refusals and bad input: their kinds, and nothing written.
        assert_eq!(
            kind(rooms.put_rule(&reader, id, rule("u-x", "r")).await),
            ErrorKind::Refused
        );
        assert_eq!(
            kind(rooms.put_rule(&stranger, id, rule("u-x", "r")).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(rooms.put_rule(&owner, id, rule("u-x", "rwx")).await),
            ErrorKind::Invalid
        );
        assert_eq!(kind(rooms.delete(&writer, id).await), ErrorKind::Refused);
        assert_eq!(
            kind(rooms.delete(&owner, id + 99).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(rooms.delete_rule(&owner, id, "u-nobody").await),
            ErrorKind::NotFound
        );
        assert_eq!(kind(rooms.get(&banned, id).await), ErrorKind::Refused);
        assert_eq!(kind(rooms.get(&stranger, id).await), ErrorKind::NotFound);
        assert_eq!(
            kind(rooms.list(&reader, None, Some(0)).await),
            ErrorKind::Invalid
        );
        assert_eq!(
            kind(rooms.answer_invitation(&stranger, id, true).await),
            ErrorKind::NotFound
        );
        assert_eq!(room_events(&w).await.len(), 4);

        // Who may be in the room, and who may write there.
        assert_eq!(
            rooms.admission(&reader, id).await.unwrap(),
            Admission::Admitted(Rights {
                read: true,
                ..Rights::default()
            })
        );
        assert_eq!(
            rooms.admission(&banned, id).await.unwrap(),
            Admission::Banned
        );
        assert_eq!(
            rooms.admission(&stranger, id).await.unwrap(),
            Admission::NotReadable
        );
        assert_eq!(
            kind(rooms.admission(&reader, id + 99).await),
            ErrorKind::NotFound
        );
        assert_eq!(
            rooms.post(&reader, id, "hello").await.unwrap(),
            Posting::NotWritable
        );
        assert_eq!(
            rooms.post(&writer, id, &"x".repeat(17)).await.unwrap(),
            Posting::TooLarge {
                bytes: 17,
                limit: 16
            }
        );
        assert_eq!(rooms.post(&writer, id, "  ").await.unwrap(), Posting::Empty);
        assert_eq!(
            kind(rooms.post(&writer, id + 99, "hello").await),
            ErrorKind::NotFound
        );
        let mut ids = Vec::new();
        for i in 0..5 {
            match rooms.post(&writer, id, &format!("m{i}")).await.unwrap() {
                Posting::Stored(m) => {
                    assert_eq!((m.room_id, m.user_uuid.as_str()), (id, "u-writer"));
                    ids.push(m.id);
                }
                other => panic!("not stored: {other:?}"),
            }
        }
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);

        // History: readers only, newest first, paged.
        assert_eq!(
            kind(rooms.history(&banned, id, HistoryQuery::default()).await),
            ErrorKind::Refused
        );
        let q = HistoryQuery {
            limit: Some(2),
            ..HistoryQuery::default()
        };
        let page = rooms.history(&reader, id, q).await.unwrap();
        let got: Vec<i64> = page.messages.iter().map(|m| m.id).collect();
        assert_eq!((got, page.next_before), (vec![5, 4], Some(4)));
        let page = rooms
            .history(
                &reader,
                id,
                HistoryQuery {
                    before: Some(2),
                    ..q
                },
            )
            .await
            .unwrap();
        let got: Vec<i64> = page.messages.iter().map(|m| m.id).collect();
        assert_eq!((got, page.next_before), (vec![1], None));
        let resumed: Vec<i64> = rooms
            .messages_after(&reader, id, 3)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(resumed, vec![4, 5]);
        assert_eq!(
            kind(rooms.messages_after(&stranger, id, 0).await),
            ErrorKind::Refused
        );

        // Listing, declining, and deleting.
        let listing = rooms.list(&reader, None, None).await.unwrap();
        assert_eq!(listing.rooms.len(), 1);
        assert_eq!(listing.invitations.len(), 1);
        let answer = rooms.answer_invitation(&reader, id, false).await.unwrap();
        assert_eq!((answer.state, answer.rules_changed), ("declined", true));
        assert_eq!(
            rooms.admission(&reader, id).await.unwrap(),
            Admission::NotReadable
        );
        rooms.delete(&owner, id).await.unwrap();
        assert_eq!(kind(rooms.get(&owner, id).await), ErrorKind::NotFound);
        let actions: Vec<String> = room_events(&w).await.into_iter().map(|(_, a)| a).collect();
        assert_eq!(
            actions[4..],
            ["room.invitation.decline", "room.delete"],
            "{actions:?}"
        );
    }

    /// The group-commit writer: posts of several rooms and users queued together are one
    /// transaction; each gets its own outcome (refusals store nothing and do not disturb
    /// their neighbours), ids of a room follow the order of arrival, and the hook gets the
    /// batch in id order before any sender is answered.
    async fn writer_batches_on(url: &str) {
        let store = Store::open(url, MasterKey::generate())
            .await
            .expect("open store");
        let w = Warden::open(store, Actor::system("chat"))
            .await
            .expect("open warden");
        let rooms = Rooms::new(w.clone(), POLICY);
        let owner = user("u-owner", "e-acme", 100);
        let mut ids = Vec::new();
        for name in ["a", "b"] {
            let req = NewRoomRequest {
                name: name.into(),
                ..NewRoomRequest::default()
            };
            let id = rooms.create(&owner, req).await.expect("create").room.id;
            for (who, perms) in [("e-w", "rw"), ("u-reader", "r")] {
                let rule = RuleRequest {
                    entity_uuid: who.into(),
                    permissions: perms.into(),
                    level: None,
                };
                rooms.put_rule(&owner, id, rule).await.expect("rule");
            }
            ids.push(id);
        }
        let (a, b) = (ids[0], ids[1]);
        let batches = Arc::new(std::sync::Mutex::new(Vec::<Vec<(i64, i64)>>::new()));
        let seen = batches.clone();
        let hook: StoredHook = Arc::new(move |messages| {
            let ids = messages.iter().map(|m| (m.room_id, m.id)).collect();
            seen.lock().expect("hook log").push(ids);
            Box::pin(async { Ok(()) })
        });
        let writer = rooms.writer(hook);
        let (w1, w2) = (user("u-w1", "e-w", 1), user("u-w2", "e-w", 1));
        let reader = user("u-reader", "e-r", 1);
        let long = "x".repeat(17);
        let posts = [
            (&w1, a, "a1"),
            (&reader, a, "refused"),
            (&w2, b, "b1"),
            (&w1, a, " "),
            (&w1, a, long.as_str()),
            (&w2, b + 99, "nowhere"),
            (&w1, a, "a2"),
            (&w2, b, "b2"),
            (&w2, a, "a3"),
        ];
        // Queued together before the writer runs (one thread): one batch.
        let outcomes = futures::future::join_all(
            posts
                .iter()
                .map(|(u, room, text)| writer.post(u, *room, text.to_string())),
        )
        .await;
        let stored = |o: &Result<Posting>| match o {
            Ok(Posting::Stored(m)) => Some((m.room_id, m.id, m.content.clone())),
            _ => None,
        };
        assert_eq!(stored(&outcomes[0]), Some((a, 1, "a1".into())));
        assert_eq!(outcomes[1].as_ref().ok(), Some(&Posting::NotWritable));
        assert_eq!(stored(&outcomes[2]), Some((b, 1, "b1".into())));
        assert_eq!(outcomes[3].as_ref().ok(), Some(&Posting::Empty));
        assert_eq!(
            outcomes[4].as_ref().ok(),
            Some(&Posting::TooLarge {
                bytes: 17,
                limit: 16
            })
        );
        assert_eq!(
            outcomes[5].as_ref().map_err(OpsError::kind).err(),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(stored(&outcomes[6]), Some((a, 2, "a2".into())));
        assert_eq!(stored(&outcomes[7]), Some((b, 2, "b2".into())));
        assert_eq!(stored(&outcomes[8]), Some((a, 3, "a3".into())));
        assert_eq!(
            *batches.lock().expect("hook log"),
            vec![vec![(a, 1), (a, 2), (a, 3), (b, 1), (b, 2)]]
        );
        let history: Vec<String> = rooms
            .messages_after(&owner, a, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(history, ["a1", "a2", "a3"]);

        // A hook that fails: the sender hears that, not a bare success.
        let failing: StoredHook = Arc::new(|_| Box::pin(async { Err("no NATS".to_string()) }));
        let writer = rooms.writer(failing);
        let e = writer.post(&w1, a, "a4".into()).await.expect_err("failed");
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        // The plain post (one transaction) still works alongside.
        let one = rooms.post(&w1, a, "a5").await.unwrap();
        assert!(matches!(one, Posting::Stored(m) if m.id == 5));
    }

    #[tokio::test]
    async fn writer_batches_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        writer_batches_on(&format!("sqlite://{}/warden.db", dir.path().display())).await;
    }

    #[tokio::test]
    async fn writer_batches_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        writer_batches_on(db.url()).await;
    }

    #[tokio::test]
    async fn rooms_on_sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        rooms_on(&format!("sqlite://{}/warden.db", dir.path().display())).await;
    }

    #[tokio::test]
    async fn rooms_on_postgres() {
        let db = warden_testkit::PgDatabase::create().await;
        rooms_on(db.url()).await;
    }
}
