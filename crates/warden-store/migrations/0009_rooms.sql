-- Rooms of the chat gateway (warden-chat): rooms, their permission rules, invitations and
-- messages. Portable between SQLite and PostgreSQL (TEXT and BIGINT only; times are set by
-- the application: unix seconds, and unix milliseconds for messages).
--
-- Ids are numbers, as the PoC's clients send them (`"room_id": 99999`): room ids come from
-- the `room_counters` row (never reused, so a deleted room's id cannot be confused with a
-- new room), message ids from their room's `last_message_id` (increasing per room: the
-- resume and history cursor).
CREATE TABLE room_counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO room_counters (name, value) VALUES ('rooms', 0);

-- kind: group | user2user. owner_user / owner_entity: the creator's userUUID / entityUUID.
-- level_admin: the levelOnEntity a member of owner_entity needs to administer the room.
-- rule_cap: most rules the room may have.
CREATE TABLE rooms (
    id              BIGINT PRIMARY KEY,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    owner_user      TEXT NOT NULL,
    owner_entity    TEXT NOT NULL,
    level_admin     BIGINT NOT NULL,
    rule_cap        BIGINT NOT NULL DEFAULT 10,
    last_message_id BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX rooms_owner_user ON rooms (owner_user);
CREATE INDEX rooms_owner_entity ON rooms (owner_entity);

-- entity_uuid names a user or an entity; permissions: letters of r, w, a, b.
CREATE TABLE room_rules (
    room_id     BIGINT NOT NULL REFERENCES rooms (id),
    entity_uuid TEXT NOT NULL,
    permissions TEXT NOT NULL,
    level       BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, entity_uuid)
);
CREATE INDEX room_rules_entity ON room_rules (entity_uuid);

-- state: pending | accepted | declined.
CREATE TABLE room_invitations (
    room_id     BIGINT NOT NULL REFERENCES rooms (id),
    invitee     TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    answered_at BIGINT,
    PRIMARY KEY (room_id, invitee)
);
CREATE INDEX room_invitations_invitee ON room_invitations (invitee, state);

-- The primary key (room_id, id) is the cursor index: newest first is a backward scan.
CREATE TABLE room_messages (
    room_id       BIGINT NOT NULL REFERENCES rooms (id),
    id            BIGINT NOT NULL,
    sender_user   TEXT NOT NULL,
    sender_entity TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (room_id, id)
);
CREATE INDEX room_messages_time ON room_messages (room_id, sent_at_ms);
