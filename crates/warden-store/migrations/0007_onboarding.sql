-- Onboarding packages of tenant collectors, and the per-tenant CA that signs their client
-- certificates. Portable between SQLite and PostgreSQL (TEXT and BIGINT only; ids and
-- timestamps, unix seconds, are set by the application).
--
-- tenant_cas: one CA per tenant, made on first use. sealed_key is the CA's private key
-- (PKCS#8 PEM) sealed with the master key like every seed (AAD "tenant-ca:<slug>").
CREATE TABLE tenant_cas (
    slug        TEXT PRIMARY KEY,
    cert_pem    TEXT NOT NULL,
    sealed_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- onboarding_packages: state issued -> delivered -> activated, or revoked.
-- token_hash: hex SHA-256 of the one-time download token's secret (never the token).
-- sealed_archive: the .tar.gz (it holds the creds and the client key), sealed with the
-- master key (AAD "onboarding-package:<id>"); emptied when the package is delivered or
-- revoked, so the server keeps no copy of the client key after the one download.
-- refused_downloads counts refused attempts (each one is also a ledger event).
CREATE TABLE onboarding_packages (
    id                TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    component         TEXT NOT NULL,
    site              TEXT NOT NULL,
    user_name         TEXT NOT NULL,
    user_key          TEXT NOT NULL UNIQUE,
    cert_serial       TEXT NOT NULL,
    cert_fingerprint  TEXT NOT NULL,
    cert_not_after    BIGINT NOT NULL,
    state             TEXT NOT NULL,
    token_hash        TEXT NOT NULL,
    token_expires_at  BIGINT NOT NULL,
    sealed_archive    TEXT,
    issued_at         BIGINT NOT NULL,
    delivered_at      BIGINT,
    activated_at      BIGINT,
    revoked_at        BIGINT,
    refused_downloads BIGINT NOT NULL,
    last_refused_at   BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX onboarding_packages_tenant ON onboarding_packages (tenant);
