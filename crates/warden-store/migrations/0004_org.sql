-- The organisation model (see warden-core's org.rs). Portable between SQLite and PostgreSQL:
-- TEXT, BIGINT and INTEGER only; the application writes every value.
--
-- The spec last applied, as canonical JSON: one row (id = 1).
CREATE TABLE org_spec (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);

-- Which account each unit became. A unit removed from the spec loses its row (its account
-- is deleted in the same transaction).
CREATE TABLE org_units (
    unit_id     TEXT PRIMARY KEY,
    account_key TEXT NOT NULL UNIQUE,
    updated_at  BIGINT NOT NULL
);

-- Which user each service person became, and whether it is 'active' or 'revoked'
-- (inactive, removed or moved person). A revoked binding is kept, so a person set active
-- again gets a new key in place of the revoked one.
CREATE TABLE org_people (
    person_id  TEXT PRIMARY KEY,
    user_key   TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
