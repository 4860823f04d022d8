-- Federated login: which account an identity at an upstream provider (НПЭС, ЕС ИФЮЛ) belongs
-- to. The key is (upstream name, upstream issuer, upstream `sub`) and nothing else: never an
-- email, a phone or a name. `personal_number` is kept only when the upstream vouches for it
-- (`personal_number_verified` in its settings), so that a later login through another way
-- that vouches for the same number finds this account.
CREATE TABLE upstream_identities (
    upstream TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    personal_number TEXT,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (upstream, issuer, subject)
);
CREATE INDEX upstream_identities_account ON upstream_identities(account_id);
CREATE INDEX upstream_identities_personal_number ON upstream_identities(personal_number);

-- The upstream login a single sign-on session was made through (its `sid` there, when the
-- upstream gave one): an upstream back-channel logout ends the sessions it made.
CREATE TABLE upstream_sessions (
    sid TEXT PRIMARY KEY REFERENCES sso_sessions(sid),
    upstream TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    upstream_sid TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX upstream_sessions_subject ON upstream_sessions(upstream, issuer, subject);
