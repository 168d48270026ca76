-- Warden's first schema. Portable between SQLite and PostgreSQL: TEXT, BIGINT and INTEGER
-- only, no BLOB, no generated ids (the application generates every key and sequence).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every private NKey seed, sealed with the master key (see seal.rs). `kind` is
-- 'operator', 'account', 'user', 'signing', ...; the public key is the AAD of the seal.
CREATE TABLE nkeys (
    public_key  TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    sealed_seed TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE operators (
    public_key     TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    signing_key    TEXT NOT NULL,
    system_account TEXT NOT NULL,
    jwt            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE accounts (
    public_key TEXT PRIMARY KEY,
    operator   TEXT NOT NULL REFERENCES operators(public_key),
    name       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    jwt        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (operator, name)
);

-- Lookups of an operator's accounts and of an account's users use the UNIQUE indexes
-- (operator, name) and (account, name), whose first column is the parent key.

-- signing_key NULL: the user JWT is signed by the account identity key.
CREATE TABLE users (
    public_key  TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts(public_key),
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    jwt         TEXT NOT NULL,
    signing_key TEXT,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (account, name)
);

-- Idempotent "JWT migrations" (required accounts and users) that have been applied.
CREATE TABLE jwt_migrations (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  BIGINT NOT NULL
);

-- Append-only, hash-chained record of every mutation (see ledger.rs).
CREATE TABLE ledger (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    summary     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE INDEX ledger_object ON ledger (object_kind, object_key);

-- What NATS must learn of, drained by the relay (see outbox.rs).
CREATE TABLE outbox (
    id              BIGINT PRIMARY KEY,
    created_at      BIGINT NOT NULL,
    topic           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);

CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at, id);
