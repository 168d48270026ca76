-- Identity governance (NEXT seed): directory users, roles, tasks, the relationships between
-- them as an adjacency list, proposals, and which NATS users the directory manages.
-- Portable between SQLite and PostgreSQL (TEXT and BIGINT only; unix seconds set by the app).
--
-- `source` names where a record came from: `warden` for records made in Warden, or an
-- upstream directory's name (`ldap:dc=example,dc=org`, `graph:contoso`) for imports, so a
-- sync only ever updates or deletes what its own source brought in.

-- id: Warden's directory id (a valid NATS user name). record: the NextUser as JSON (NEXT
-- field names; its `manager` mirrors the manager relationship).
CREATE TABLE dir_users (
    id         TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    record     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX dir_users_source ON dir_users (source);

-- record: the NextRole as JSON without members and owners (those are relationships).
CREATE TABLE dir_roles (
    name       TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    record     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX dir_roles_source ON dir_roles (source);

-- A task: one unit of permission, NATS grants (JSON: allow_pub, deny_pub, allow_sub,
-- deny_sub) in one account (by name).
CREATE TABLE dir_tasks (
    name        TEXT PRIMARY KEY,
    account     TEXT NOT NULL,
    grants      TEXT NOT NULL,
    description TEXT,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- The seed's address tuple: "related_id is <relationship> of object_id". A fact is the
-- presence of its row: one primary-key lookup. expires_at: when a granted relationship
-- ends (NULL: never); serve removes expired rows.
CREATE TABLE dir_relationships (
    object_type  TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    related_type TEXT NOT NULL,
    relationship TEXT NOT NULL,
    related_id   TEXT NOT NULL,
    source       TEXT NOT NULL,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (object_type, object_id, related_type, relationship, related_id)
);
-- "Which roles is user X in", "who manages whom": lookups from the related side.
CREATE INDEX dir_relationships_related ON dir_relationships (related_type, related_id, relationship);
CREATE INDEX dir_relationships_expiry ON dir_relationships (expires_at);

-- kind: role-member | role-owner | role-admin | role-task | task-owner | task-admin | manager.
-- change: add | remove | update. status: open | confirmed | rejected | expired.
-- grant_expires_at: the expiry the confirmed relationship gets. expires_at: when an open
-- proposal expires unanswered.
CREATE TABLE dir_proposals (
    id               TEXT PRIMARY KEY,
    seq              BIGINT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    change           TEXT NOT NULL,
    object_type      TEXT NOT NULL,
    object_id        TEXT NOT NULL,
    related_type     TEXT NOT NULL,
    relationship     TEXT NOT NULL,
    related_id       TEXT NOT NULL,
    initiator        TEXT NOT NULL,
    reason           TEXT,
    status           TEXT NOT NULL,
    closer           TEXT,
    justification    TEXT,
    grant_expires_at BIGINT,
    expires_at       BIGINT,
    created_at       BIGINT NOT NULL,
    closed_at        BIGINT
);
CREATE INDEX dir_proposals_status ON dir_proposals (status, seq);
CREATE INDEX dir_proposals_initiator ON dir_proposals (initiator, seq);

-- The NATS users the directory manages: directory user `user_id` has a NATS user of the
-- same name in account `account` (public key), re-issued whenever its grants change.
CREATE TABLE dir_nats_users (
    user_id TEXT NOT NULL,
    account TEXT NOT NULL,
    PRIMARY KEY (user_id, account)
);
