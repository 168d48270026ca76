-- Admin bearer tokens of the HTTP API. Portable between SQLite and PostgreSQL (TEXT and
-- BIGINT only; the application generates ids and timestamps, unix seconds).
--
-- Only the SHA-256 (hex) of a token is stored, never the token itself. `scopes` is a comma
-- list (read, write, creds, admin). A token is usable while revoked_at IS NULL and
-- expires_at IS NULL or in the future.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
