-- Organisations, roles and delegation.
--
-- State bodies and organisations form a tree (`parent_id`; NULL at the top). `id` is stable
-- and chosen by the operator (it is what tokens carry); names change, ids do not. `version`
-- moves on every change (the administration API's ETag).
CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES organisations(id),
    name TEXT NOT NULL,
    name_be TEXT,
    unp TEXT,
    kind TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX organisations_parent ON organisations(parent_id);

-- An employee's membership of one organisation with the organisation roles they hold there
-- (JSON list of role ids of the catalogue in policies/roles.toml).
CREATE TABLE memberships (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    org_id TEXT NOT NULL REFERENCES organisations(id),
    roles TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, org_id)
);
CREATE INDEX memberships_org ON memberships(org_id);

-- Administrators: the main administrator (`org_id` NULL: the whole system) or an external
-- administrator of one organisation and its subtree.
CREATE TABLE administrators (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    org_id TEXT REFERENCES organisations(id),
    granted_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX administrators_scope ON administrators(account_id, COALESCE(org_id, ''));
CREATE INDEX administrators_org ON administrators(org_id);

-- A temporary transfer of some of the delegator's organisation roles to the delegate
-- («временная передача полномочий»). `not_after` is mandatory; a revoked one keeps its row.
CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    delegator_id TEXT NOT NULL REFERENCES accounts(id),
    delegate_id TEXT NOT NULL REFERENCES accounts(id),
    org_id TEXT NOT NULL REFERENCES organisations(id),
    roles TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    reason TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT
);
CREATE INDEX delegations_delegate ON delegations(delegate_id);
CREATE INDEX delegations_delegator ON delegations(delegator_id);
CREATE INDEX delegations_org ON delegations(org_id);

-- The organisation that manages an account (the one whose administrator made it): its
-- administrators block, unblock and end the sessions of the account. NULL: the system's.
ALTER TABLE accounts ADD COLUMN home_org TEXT REFERENCES organisations(id);
ALTER TABLE accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Who may sign in to a client (JSON list of system roles; empty: anyone the policies allow),
-- which restricted claims it may receive (JSON list: personal_number), and whether it is
-- disabled (no sign-in, no tokens).
ALTER TABLE clients ADD COLUMN allowed_roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN allowed_claims TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
-- An automation client of the administration API (client credentials, scope vhod:admin) acts
-- with this scope: 'system', or the id of the organisation whose subtree it administers.
ALTER TABLE clients ADD COLUMN admin_scope TEXT;
ALTER TABLE clients ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Serialises changes to the organisation tree (a move takes this row first, so two moves at
-- once cannot make a cycle between them).
INSERT INTO generation (id, value) VALUES (2, 1);
