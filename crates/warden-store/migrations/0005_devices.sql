-- Device fleets: one row per device, whose account and user live in `accounts` and
-- `users` like any other. Portable between SQLite and PostgreSQL (TEXT and BIGINT only;
-- timestamps are unix seconds set by the application).
--
-- state: provisioned (account exists, never seen) | active (first connection observed)
-- | revoked (account deleted from the resolver, activations revoked in the hub).
-- meta: a JSON object of free key/value pairs.
CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    account_key  TEXT NOT NULL UNIQUE,
    user_key     TEXT NOT NULL,
    state        TEXT NOT NULL,
    meta         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT,
    rotated_at   BIGINT,
    revoked_at   BIGINT,
    restored_at  BIGINT,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX devices_state ON devices (state);
