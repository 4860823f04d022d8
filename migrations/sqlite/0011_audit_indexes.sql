-- The officers' indexes on the columns most events leave empty (the login typed, the delegator,
-- the organisation) hold only the rows that have one: every event paid for three index entries
-- it could never be found by, and ingestion is mostly index upkeep. A query `column = $1`
-- implies `column IS NOT NULL`, so the partial index still serves it.
DROP INDEX audit_events_login_seq;
DROP INDEX audit_events_delegator_seq;
DROP INDEX audit_events_org_seq;
CREATE INDEX audit_events_login_seq ON audit_events(login_key, seq) WHERE login_key IS NOT NULL;
CREATE INDEX audit_events_delegator_seq ON audit_events(delegator, seq) WHERE delegator IS NOT NULL;
CREATE INDEX audit_events_org_seq ON audit_events(org_id, seq) WHERE org_id IS NOT NULL;
