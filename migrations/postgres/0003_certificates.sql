-- Certificate sign-in: which account a certificate identity belongs to. `identity` is
-- "pn:<personal identification number>" or, for a representative whose certificate names
-- none, "dn:<SHA-256 of issuer and subject names>".
CREATE TABLE certificate_identities (
    identity TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX certificate_identities_account ON certificate_identities(account_id);

-- The legal entity a representative signed in for (JSON {"unp", "name"}), per session and grant.
ALTER TABLE sso_sessions ADD COLUMN legal_entity TEXT;
ALTER TABLE grants ADD COLUMN legal_entity TEXT;

-- The assurance a client requires of every sign-in (NULL: what the request asks).
ALTER TABLE clients ADD COLUMN min_acr TEXT;
