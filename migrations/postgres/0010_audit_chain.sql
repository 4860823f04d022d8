-- The audit trail as a hash chain (src/audit/chain.rs documents the encoding).
--
-- `seq` is the event's place in the chain: dense, from 1, assigned by the one append that holds
-- the head (`audit_chain`, locked for the length of the append, so replicas never fork it).
-- `hash` is the digest of the event's canonical encoding, which includes `prev_hash`, the
-- digest of the event before it. `enc` is the encoding's version and `hash_alg` its digest.
-- Rows stored before this migration are chained once, in `id` order, by the first writer that
-- starts (`audit_chain.legacy_until`); after that, a row without `seq` was inserted behind
-- vhod's back.
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_events ADD COLUMN hash TEXT;
ALTER TABLE audit_events ADD COLUMN enc BIGINT;
ALTER TABLE audit_events ADD COLUMN hash_alg TEXT;
-- HMAC-SHA256 of `hash` under the chain key (`keys/audit/chain.key`, outside the database):
-- what someone with only the database cannot compute, so a row they append, links and all,
-- is told from vhod's own.
ALTER TABLE audit_events ADD COLUMN mac TEXT;
-- What the officers search by, as columns of their own (and chained like every other column):
-- the organisation acted for, the assurance level reached, the upstream provider, the login's
-- keyed digest (never the login itself), the delegator of an action under a delegation, and the
-- address as 32 hex digits of its IPv6 form (IPv4 mapped) so a CIDR is one range.
ALTER TABLE audit_events ADD COLUMN org_id TEXT;
ALTER TABLE audit_events ADD COLUMN acr TEXT;
ALTER TABLE audit_events ADD COLUMN upstream TEXT;
ALTER TABLE audit_events ADD COLUMN login_key TEXT;
ALTER TABLE audit_events ADD COLUMN delegator TEXT;
ALTER TABLE audit_events ADD COLUMN ip_key TEXT;
CREATE UNIQUE INDEX audit_events_seq ON audit_events(seq);
CREATE INDEX audit_events_subject_seq ON audit_events(subject, seq);
CREATE INDEX audit_events_ip_seq ON audit_events(ip_key, seq);
CREATE INDEX audit_events_client_seq ON audit_events(client_id, seq);
CREATE INDEX audit_events_login_seq ON audit_events(login_key, seq);
CREATE INDEX audit_events_delegator_seq ON audit_events(delegator, seq);
CREATE INDEX audit_events_org_seq ON audit_events(org_id, seq);
CREATE INDEX audit_events_kind_seq ON audit_events(kind, seq);
DROP INDEX audit_events_subject;

-- The chain's head: one row. `seq` 0 and a hash of zeros before the first event.
CREATE TABLE audit_chain (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    checkpoint_seq BIGINT NOT NULL,
    checkpoint_at_ms BIGINT NOT NULL,
    legacy_until BIGINT
);
INSERT INTO audit_chain (id, seq, hash, checkpoint_seq, checkpoint_at_ms, legacy_until)
SELECT 1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, 0,
       (SELECT MAX(id) FROM audit_events);

-- Signed checkpoints: the head at a moment (`kind` head), or the head when older events were
-- cut off by retention (`kind` cut: `cut_before` is the first kept seq and `cut_prev_hash` the
-- hash the first kept event links to). `jws` is what counts; the other columns repeat it for
-- queries. `exported_at`: when it reached the external append-only copy (NULL: not yet).
CREATE TABLE audit_checkpoints (
    id BIGSERIAL PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    cut_before BIGINT,
    cut_prev_hash TEXT,
    kid TEXT NOT NULL,
    jws TEXT NOT NULL,
    exported_at BIGINT
);
CREATE INDEX audit_checkpoints_seq ON audit_checkpoints(seq);
