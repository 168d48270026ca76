//! Rooms of the chat gateway (tables `rooms`, `room_rules`, `room_invitations`,
//! `room_messages`, `room_counters`): rows only. Who may do what is decided by
//! `warden-chat`'s permission evaluation; this module stores the facts it reads.
//!
//! Writes go through [`crate::Tx`], so a room change and its ledger event commit together.
//! Rule changes first lock the room's row ([`crate::Tx::lock_room`]), which makes the rule
//! cap exact under concurrent writers on PostgreSQL (SQLite's write transactions are
//! already serial).

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::bulk::{placeholders_for, values_for};
use crate::rows::column;
use crate::{Store, StoreError, Tx};

/// One room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRow {
    /// Id, never reused.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `group` or `user2user`.
    pub kind: String,
    /// The creator's user UUID.
    pub owner_user: String,
    /// The creator's entity UUID.
    pub owner_entity: String,
    /// Level in the owner entity that administers the room.
    pub level_admin: i64,
    /// Most rules the room may have.
    pub rule_cap: i64,
    /// Id of the newest message (0 before the first).
    pub last_message_id: i64,
    /// Created, unix seconds.
    pub created_at: i64,
}

/// What a new room is made of (the id is allocated by the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRoom {
    /// Display name.
    pub name: String,
    /// `group` or `user2user`.
    pub kind: String,
    /// The creator's user UUID.
    pub owner_user: String,
    /// The creator's entity UUID.
    pub owner_entity: String,
    /// Level in the owner entity that administers the room.
    pub level_admin: i64,
    /// Most rules the room may have.
    pub rule_cap: i64,
}

/// One permission rule of a room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRuleRow {
    /// The room.
    pub room_id: i64,
    /// The user or entity UUID it is for.
    pub entity_uuid: String,
    /// Letters of `r`, `w`, `a`, `b` (validated by the caller).
    pub permissions: String,
    /// For an entity rule, the lowest level it grants to.
    pub level: i64,
    /// Last change, unix seconds.
    pub updated_at: i64,
}

/// What [`Tx::put_room_rule`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutRule {
    /// A new rule was added.
    Added,
    /// The rule for that UUID was replaced.
    Replaced,
    /// Nothing: the room already has `cap` rules.
    CapReached {
        /// The room's cap.
        cap: i64,
    },
}

/// An invitation to a room (made when a rule names a UUID).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRow {
    /// The room.
    pub room_id: i64,
    /// The invited UUID.
    pub invitee: String,
    /// `pending`, `accepted` or `declined`.
    pub state: String,
    /// Made, unix seconds.
    pub created_at: i64,
    /// Answered, unix seconds.
    pub answered_at: Option<i64>,
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    /// The room.
    pub room_id: i64,
    /// Increasing within the room.
    pub id: i64,
    /// Sender's user UUID.
    pub sender_user: String,
    /// Sender's entity UUID.
    pub sender_entity: String,
    /// The text.
    pub body: String,
    /// Stored, unix milliseconds.
    pub sent_at_ms: i64,
}

/// Which messages of a room to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageQuery {
    /// Only ids below this (the history cursor, newest first).
    pub before: Option<i64>,
    /// Only ids above this (resuming, oldest first).
    pub after: Option<i64>,
    /// Only messages stored at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Only messages stored before this time (unix ms).
    pub until_ms: Option<i64>,
    /// At most this many.
    pub limit: i64,
    /// Newest first (history) or oldest first (resume).
    pub newest_first: bool,
}

const ROOM_COLUMNS: &str =
    "id, name, kind, owner_user, owner_entity, level_admin, rule_cap, last_message_id, created_at";
const RULE_COLUMNS: &str = "room_id, entity_uuid, permissions, level, updated_at";
const INVITATION_COLUMNS: &str = "room_id, invitee, state, created_at, answered_at";
const MESSAGE_COLUMNS: &str = "room_id, id, sender_user, sender_entity, body, sent_at_ms";

impl RoomRow {
    fn from_row(row: &AnyRow) -> Result<RoomRow, StoreError> {
        Ok(RoomRow {
            id: column(row, "id")?,
            name: column(row, "name")?,
            kind: column(row, "kind")?,
            owner_user: column(row, "owner_user")?,
            owner_entity: column(row, "owner_entity")?,
            level_admin: column(row, "level_admin")?,
            rule_cap: column(row, "rule_cap")?,
            last_message_id: column(row, "last_message_id")?,
            created_at: column(row, "created_at")?,
        })
    }
}

impl RoomRuleRow {
    fn from_row(row: &AnyRow) -> Result<RoomRuleRow, StoreError> {
        Ok(RoomRuleRow {
            room_id: column(row, "room_id")?,
            entity_uuid: column(row, "entity_uuid")?,
            permissions: column(row, "permissions")?,
            level: column(row, "level")?,
            updated_at: column(row, "updated_at")?,
        })
    }
}

impl InvitationRow {
    fn from_row(row: &AnyRow) -> Result<InvitationRow, StoreError> {
        Ok(InvitationRow {
            room_id: column(row, "room_id")?,
            invitee: column(row, "invitee")?,
            state: column(row, "state")?,
            created_at: column(row, "created_at")?,
            answered_at: column(row, "answered_at")?,
        })
    }
}

impl MessageRow {
    fn from_row(row: &AnyRow) -> Result<MessageRow, StoreError> {
        Ok(MessageRow {
            room_id: column(row, "room_id")?,
            id: column(row, "id")?,
            sender_user: column(row, "sender_user")?,
            sender_entity: column(row, "sender_entity")?,
            body: column(row, "body")?,
            sent_at_ms: column(row, "sent_at_ms")?,
        })
    }
}

async fn room(conn: &mut AnyConnection, id: i64) -> Result<Option<RoomRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::query("reading a room"))?
    .as_ref()
    .map(RoomRow::from_row)
    .transpose()
}

async fn rules(conn: &mut AnyConnection, room_id: i64) -> Result<Vec<RoomRuleRow>, StoreError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM room_rules WHERE room_id = $1 ORDER BY entity_uuid"
    )))
    .bind(room_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::query("reading room rules"))?
    .iter()
    .map(RoomRuleRow::from_row)
    .collect()
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: format!("room {id}"),
    }
}

impl Store {
    /// The room with this id.
    pub async fn room(&self, id: i64) -> Result<Option<RoomRow>, StoreError> {
        room(&mut *self.pooled().await?, id).await
    }

    /// Every rule of a room, by UUID.
    pub async fn room_rules(&self, room_id: i64) -> Result<Vec<RoomRuleRow>, StoreError> {
        rules(&mut *self.pooled().await?, room_id).await
    }

    /// Rooms with an id above `after` that `user` or `entity` may have a say in (owned by
    /// either, or with a rule for either), by id, at most `limit`. The caller evaluates
    /// the rights (a rule may be a ban).
    pub async fn rooms_touching(
        &self,
        user: &str,
        entity: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RoomRow>, StoreError> {
        let cols = ROOM_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {cols} FROM rooms r WHERE r.id > $1 AND (r.owner_user = $2 OR r.owner_entity = $3 \
             OR EXISTS (SELECT 1 FROM room_rules x WHERE x.room_id = r.id \
                        AND (x.entity_uuid = $2 OR x.entity_uuid = $3))) \
             ORDER BY r.id LIMIT $4"
        )))
        .bind(after)
        .bind(user)
        .bind(entity)
        .bind(limit)
        .fetch_all(&mut *self.pooled().await?)
        .await
        .map_err(StoreError::query("listing rooms"))?
        .iter()
        .map(RoomRow::from_row)
        .collect()
    }

    /// The invitations of `invitee` in `state`, by room.
    pub async fn room_invitations(
        &self,
        invitee: &str,
        state: &str,
    ) -> Result<Vec<InvitationRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INVITATION_COLUMNS} FROM room_invitations WHERE invitee = $1 AND state = $2 \
             ORDER BY room_id"
        )))
        .bind(invitee)
        .bind(state)
        .fetch_all(&mut *self.pooled().await?)
        .await
        .map_err(StoreError::query("listing invitations"))?
        .iter()
        .map(InvitationRow::from_row)
        .collect()
    }

    /// Messages of a room per `q`.
    pub async fn room_messages(
        &self,
        room_id: i64,
        q: &MessageQuery,
    ) -> Result<Vec<MessageRow>, StoreError> {
        let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM room_messages WHERE room_id = $1");
        let mut binds: Vec<i64> = vec![room_id];
        let mut cond = |sql: &mut String, text: &str, value: Option<i64>| {
            if let Some(v) = value {
                binds.push(v);
                sql.push_str(&format!(" AND {text} ${}", binds.len()));
            }
        };
        cond(&mut sql, "id <", q.before);
        cond(&mut sql, "id >", q.after);
        cond(&mut sql, "sent_at_ms >=", q.since_ms);
        cond(&mut sql, "sent_at_ms <", q.until_ms);
        binds.push(q.limit.max(0));
        sql.push_str(&format!(
            " ORDER BY id {} LIMIT ${}",
            if q.newest_first { "DESC" } else { "ASC" },
            binds.len()
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        query
            .fetch_all(&mut *self.pooled().await?)
            .await
            .map_err(StoreError::query("reading messages"))?
            .iter()
            .map(MessageRow::from_row)
            .collect()
    }
}

impl Tx<'_> {
    /// Inserts a room under a fresh id.
    pub async fn insert_room(&mut self, new: &NewRoom) -> Result<RoomRow, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "UPDATE room_counters SET value = value + 1 WHERE name = 'rooms' RETURNING value",
        )
        .fetch_one(self.conn())
        .await
        .map_err(StoreError::query("allocating a room id"))?;
        let row = RoomRow {
            id,
            name: new.name.clone(),
            kind: new.kind.clone(),
            owner_user: new.owner_user.clone(),
            owner_entity: new.owner_entity.clone(),
            level_admin: new.level_admin,
            rule_cap: new.rule_cap,
            last_message_id: 0,
            created_at: crate::store::now(),
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO rooms ({ROOM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(row.id)
        .bind(&row.name)
        .bind(&row.kind)
        .bind(&row.owner_user)
        .bind(&row.owner_entity)
        .bind(row.level_admin)
        .bind(row.rule_cap)
        .bind(row.last_message_id)
        .bind(row.created_at)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("inserting a room"))?;
        Ok(row)
    }

    /// The room, with its row locked until the transaction ends (rule changes and deletes
    /// of one room are serialised by this).
    pub async fn lock_room(&mut self, id: i64) -> Result<Option<RoomRow>, StoreError> {
        let touched = sqlx::query("UPDATE rooms SET rule_cap = rule_cap WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("locking a room"))?;
        if touched.rows_affected() == 0 {
            return Ok(None);
        }
        room(self.conn(), id).await
    }

    /// The rules of a room.
    pub async fn room_rules(&mut self, room_id: i64) -> Result<Vec<RoomRuleRow>, StoreError> {
        rules(self.conn(), room_id).await
    }

    /// Deletes a room with its rules, invitations and messages.
    /// [`StoreError::NotFound`] if absent.
    pub async fn delete_room(&mut self, id: i64) -> Result<(), StoreError> {
        for table in ["room_messages", "room_invitations", "room_rules"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE room_id = $1"
            )))
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting a room"))?;
        }
        let done = sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting a room"))?;
        if done.rows_affected() == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// Adds or replaces the rule for `rule.entity_uuid`, unless that would exceed the
    /// room's cap. Locks the room first, so the cap holds exactly under concurrency.
    pub async fn put_room_rule(&mut self, rule: &RoomRuleRow) -> Result<PutRule, StoreError> {
        let room = self
            .lock_room(rule.room_id)
            .await?
            .ok_or_else(|| not_found(rule.room_id))?;
        let existing = rules(self.conn(), rule.room_id).await?;
        let replacing = existing.iter().any(|r| r.entity_uuid == rule.entity_uuid);
        if !replacing && existing.len() as i64 >= room.rule_cap {
            return Ok(PutRule::CapReached { cap: room.rule_cap });
        }
        let sql = if replacing {
            "UPDATE room_rules SET permissions = $3, level = $4, updated_at = $5 \
             WHERE room_id = $1 AND entity_uuid = $2"
        } else {
            "INSERT INTO room_rules (room_id, entity_uuid, permissions, level, updated_at) \
             VALUES ($1, $2, $3, $4, $5)"
        };
        sqlx::query(sql)
            .bind(rule.room_id)
            .bind(&rule.entity_uuid)
            .bind(&rule.permissions)
            .bind(rule.level)
            .bind(rule.updated_at)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("writing a room rule"))?;
        Ok(if replacing {
            PutRule::Replaced
        } else {
            PutRule::Added
        })
    }

    /// Removes the rule for `entity_uuid` (and its invitation). [`StoreError::NotFound`] if
    /// the room has no such rule.
    pub async fn delete_room_rule(
        &mut self,
        room_id: i64,
        entity_uuid: &str,
    ) -> Result<(), StoreError> {
        self.lock_room(room_id)
            .await?
            .ok_or_else(|| not_found(room_id))?;
        let done = sqlx::query("DELETE FROM room_rules WHERE room_id = $1 AND entity_uuid = $2")
            .bind(room_id)
            .bind(entity_uuid)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting a room rule"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("rule for {entity_uuid} in room {room_id}"),
            });
        }
        sqlx::query("DELETE FROM room_invitations WHERE room_id = $1 AND invitee = $2")
            .bind(room_id)
            .bind(entity_uuid)
            .execute(self.conn())
            .await
            .map_err(StoreError::query("deleting an invitation"))?;
        Ok(())
    }

    /// Makes a pending invitation for `invitee` unless it already has one (answered ones
    /// are kept as answered).
    pub async fn invite_to_room(&mut self, room_id: i64, invitee: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO room_invitations (room_id, invitee, state, created_at, answered_at) \
             VALUES ($1, $2, 'pending', $3, NULL) ON CONFLICT (room_id, invitee) DO NOTHING",
        )
        .bind(room_id)
        .bind(invitee)
        .bind(crate::store::now())
        .execute(self.conn())
        .await
        .map_err(StoreError::query("inviting to a room"))?;
        Ok(())
    }

    /// Records the answer (`accepted` or `declined`) to an invitation.
    /// [`StoreError::NotFound`] if there is none.
    pub async fn answer_room_invitation(
        &mut self,
        room_id: i64,
        invitee: &str,
        state: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE room_invitations SET state = $3, answered_at = $4 \
             WHERE room_id = $1 AND invitee = $2",
        )
        .bind(room_id)
        .bind(invitee)
        .bind(state)
        .bind(crate::store::now())
        .execute(self.conn())
        .await
        .map_err(StoreError::query("answering an invitation"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("invitation of {invitee} to room {room_id}"),
            });
        }
        Ok(())
    }

    /// Stores a message under the room's next id. [`StoreError::NotFound`] if the room is
    /// gone.
    pub async fn append_room_message(
        &mut self,
        room_id: i64,
        sender_user: &str,
        sender_entity: &str,
        body: &str,
        sent_at_ms: i64,
    ) -> Result<MessageRow, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE rooms SET last_message_id = last_message_id + 1 WHERE id = $1 \
             RETURNING last_message_id",
        )
        .bind(room_id)
        .fetch_optional(self.conn())
        .await
        .map_err(StoreError::query("allocating a message id"))?;
        let id = id.ok_or_else(|| not_found(room_id))?;
        let row = MessageRow {
            room_id,
            id,
            sender_user: sender_user.to_string(),
            sender_entity: sender_entity.to_string(),
            body: body.to_string(),
            sent_at_ms,
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO room_messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        )))
        .bind(row.room_id)
        .bind(row.id)
        .bind(&row.sender_user)
        .bind(&row.sender_entity)
        .bind(&row.body)
        .bind(row.sent_at_ms)
        .execute(self.conn())
        .await
        .map_err(StoreError::query("storing a message"))?;
        Ok(row)
    }
}

/// A message to append with [`Tx::append_room_messages`] (the id is allocated there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewMessage<'a> {
    /// Sender's user UUID.
    pub sender_user: &'a str,
    /// Sender's entity UUID.
    pub sender_entity: &'a str,
    /// The text.
    pub body: &'a str,
    /// Stored, unix milliseconds.
    pub sent_at_ms: i64,
}

/// Rows per `INSERT` of [`Tx::append_messages`] (6 parameters each: far below either
/// database's limit on parameters per statement).
const APPEND_CHUNK: usize = 200;

/// `$first, $first+1, …` for `n` parameters.
impl Tx<'_> {
    /// The rooms with these ids (absent ones left out), by id, locked until the
    /// transaction ends: on PostgreSQL their rows (`FOR UPDATE`, taken in id order so
    /// concurrent batches cannot deadlock); a SQLite transaction already holds the write
    /// lock. One statement for a whole batch of a group commit.
    pub async fn lock_rooms(&mut self, ids: &[i64]) -> Result<Vec<RoomRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.store.backend();
        let lock = match backend {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE id IN ({}) ORDER BY id{lock}",
            placeholders_for(backend, 1, ids.len())
        )));
        for id in ids {
            query = query.bind(*id);
        }
        query
            .fetch_all(self.conn())
            .await
            .map_err(StoreError::query("locking rooms"))?
            .iter()
            .map(RoomRow::from_row)
            .collect()
    }

    /// Every rule of these rooms, by room and UUID, in one statement.
    pub async fn rules_of_rooms(&mut self, ids: &[i64]) -> Result<Vec<RoomRuleRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RULE_COLUMNS} FROM room_rules WHERE room_id IN ({}) \
             ORDER BY room_id, entity_uuid",
            placeholders_for(self.store.backend(), 1, ids.len())
        )));
        for id in ids {
            query = query.bind(*id);
        }
        query
            .fetch_all(self.conn())
            .await
            .map_err(StoreError::query("reading room rules"))?
            .iter()
            .map(RoomRuleRow::from_row)
            .collect()
    }

    /// Stores `messages` (room, message) under their rooms' next ids, each room's in the
    /// order given: one statement allocates the ids of every room, one multi-row insert
    /// per [`APPEND_CHUNK`] stores them (a batch of a group commit). The rows, in the
    /// order given. [`StoreError::NotFound`] if a room is gone (lock the rooms first).
    pub async fn append_messages(
        &mut self,
        messages: &[(i64, NewMessage<'_>)],
    ) -> Result<Vec<MessageRow>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut counts: std::collections::BTreeMap<i64, i64> = Default::default();
        for (room, _) in messages {
            *counts.entry(*room).or_default() += 1;
        }
        // Parameters are bound in the order they appear, so SQLite's anonymous `?`
        // serves (see `bulk::values_for`: no name looked up per bind).
        let backend = self.store.backend();
        let mut cases = String::new();
        for i in 0..counts.len() {
            match backend {
                crate::Backend::Postgres => {
                    cases.push_str(&format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
                }
                crate::Backend::Sqlite => cases.push_str(" WHEN ? THEN ?"),
            }
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE rooms SET last_message_id = last_message_id + CASE id{cases} ELSE 0 END \
             WHERE id IN ({}) RETURNING id, last_message_id",
            placeholders_for(backend, 2 * counts.len() + 1, counts.len())
        )));
        for (room, n) in &counts {
            query = query.bind(*room).bind(*n);
        }
        for room in counts.keys() {
            query = query.bind(*room);
        }
        let rows = query
            .fetch_all(self.conn())
            .await
            .map_err(StoreError::query("allocating message ids"))?;
        // The next id of each room: its new last id minus its count, plus one.
        let mut next: std::collections::BTreeMap<i64, i64> = Default::default();
        for row in &rows {
            let id: i64 = column(row, "id")?;
            let last: i64 = column(row, "last_message_id")?;
            next.insert(id, last - counts.get(&id).copied().unwrap_or(0) + 1);
        }
        let mut out = Vec::with_capacity(messages.len());
        for (room, m) in messages {
            let id = next.get_mut(room).ok_or_else(|| not_found(*room))?;
            out.push(MessageRow {
                room_id: *room,
                id: *id,
                sender_user: m.sender_user.to_string(),
                sender_entity: m.sender_entity.to_string(),
                body: m.body.to_string(),
                sent_at_ms: m.sent_at_ms,
            });
            *id += 1;
        }
        for chunk in out.chunks(APPEND_CHUNK) {
            let values = values_for(backend, chunk.len(), 6);
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO room_messages ({MESSAGE_COLUMNS}) VALUES {values}"
            )));
            for row in chunk {
                query = query
                    .bind(row.room_id)
                    .bind(row.id)
                    .bind(row.sender_user.as_str())
                    .bind(row.sender_entity.as_str())
                    .bind(row.body.as_str())
                    .bind(row.sent_at_ms);
            }
            query
                .execute(self.conn())
                .await
                .map_err(StoreError::query("storing messages"))?;
        }
        Ok(out)
    }
}

impl Store {
    /// Every room with an id above `after`, by id, at most `limit` (for the console's
    /// read-only list; the gateway lists rooms per user with [`Store::rooms_touching`]).
    pub async fn rooms_by_id(&self, after: i64, limit: i64) -> Result<Vec<RoomRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after)
        .bind(limit.max(0))
        .fetch_all(&mut *self.pooled().await?)
        .await
        .map_err(StoreError::query("listing rooms"))?
        .iter()
        .map(RoomRow::from_row)
        .collect()
    }
}
