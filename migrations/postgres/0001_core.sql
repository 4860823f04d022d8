-- Core schema (PostgreSQL). Times are Unix seconds; JSON lists are TEXT.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,              -- the public, stable, random `sub`
    username TEXT NOT NULL UNIQUE,    -- lower-cased
    password_hash TEXT,
    phone TEXT UNIQUE,
    phone_verified BIGINT NOT NULL DEFAULT 0,
    email TEXT,
    email_verified BIGINT NOT NULL DEFAULT 0,
    given_name TEXT,
    family_name TEXT,
    middle_name TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    org TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT,
    public BIGINT NOT NULL DEFAULT 0,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types TEXT NOT NULL DEFAULT '[]',
    scope TEXT NOT NULL DEFAULT '',
    token_signing_alg TEXT NOT NULL DEFAULT 'ES256',
    backchannel_logout_uri TEXT,
    jwks TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Bumped whenever cached data (clients) changes, so every running instance reloads its snapshot.
CREATE TABLE generation (
    id BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 1);

CREATE TABLE sso_sessions (
    sid TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    method TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX sso_sessions_account ON sso_sessions(account_id);

-- A grant is one authorization (code redemption or its refresh family).
CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    client_id TEXT NOT NULL,
    sid TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT
);
CREATE INDEX grants_sid ON grants(sid);
CREATE INDEX grants_account ON grants(account_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    subject TEXT,
    client_id TEXT,
    method TEXT,
    ip TEXT,
    user_agent TEXT,
    details TEXT
);
CREATE INDEX audit_events_at ON audit_events(at_ms);
CREATE INDEX audit_events_subject ON audit_events(subject);

CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Access tokens revoked individually (RFC 7009); kept until they would have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
