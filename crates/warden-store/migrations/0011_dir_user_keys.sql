-- ADD_KEY (NEXT seed): NATS user public keys a directory user brought themselves. While a
-- user has one, their directory-managed NATS users are issued for that key and Warden holds
-- no seed for them. A key belongs to at most one directory user (primary key).
CREATE TABLE dir_user_keys (
    public_key TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX dir_user_keys_user ON dir_user_keys (user_id, created_at);
