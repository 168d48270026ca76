-- Tenants: one row per tenant, whose NATS account and users live in `accounts` and
-- `users` like any other. Portable between SQLite and PostgreSQL (TEXT and BIGINT only;
-- timestamps are unix seconds set by the application).
--
-- state: active | suspended (account disabled: no connections, every user revoked).
-- limits: the tenant's limits as a JSON object (warden-core TenantLimits).
CREATE TABLE tenants (
    slug         TEXT PRIMARY KEY,
    account_key  TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL,
    limits       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    suspended_at BIGINT
);
CREATE INDEX tenants_state ON tenants (state);
