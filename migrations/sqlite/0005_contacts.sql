-- Contacts bind only once confirmed, and email addresses compare without regard to case.
--
-- 1. Emails are stored lower-cased (SQLite's lower() folds ASCII letters; addresses with other
--    capitals are listed in accounts_email_fold and folded by vhod itself on its next start).
-- 2. Where several accounts have confirmed the same address (differing only in case), the
--    oldest account keeps it confirmed; the others keep the address unconfirmed (they sign in
--    and recover by SMS as before, and may confirm another address in the profile).
-- 3. Phone numbers and email addresses are unique only among confirmed ones: an unconfirmed
--    registration no longer holds them. SQLite cannot drop a column's UNIQUE constraint, so
--    the accounts table is rebuilt (the copy goes back through INSERT, which satisfies the
--    deferred foreign keys of the rows that refer to accounts).
PRAGMA defer_foreign_keys = ON;

DROP INDEX IF EXISTS accounts_email;
UPDATE accounts SET email = lower(email) WHERE email IS NOT NULL AND email <> lower(email);
UPDATE accounts SET email_verified = 0
WHERE email_verified = 1 AND EXISTS (
    SELECT 1 FROM accounts o
    WHERE o.email = accounts.email AND o.email_verified = 1 AND o.id <> accounts.id
      AND (o.created_at < accounts.created_at OR (o.created_at = accounts.created_at AND o.id < accounts.id))
);

CREATE TABLE accounts_email_fold (id TEXT PRIMARY KEY);
INSERT INTO accounts_email_fold (id) SELECT id FROM accounts WHERE email GLOB '*[^ -~]*';

CREATE TEMP TABLE accounts_0005 AS SELECT * FROM accounts;
DROP TABLE accounts;
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,              -- the public, stable, random `sub`
    username TEXT NOT NULL UNIQUE,    -- lower-cased
    password_hash TEXT,
    phone TEXT,                       -- E.164; unique among confirmed numbers
    phone_verified INTEGER NOT NULL DEFAULT 0,
    email TEXT,                       -- lower-cased; unique among confirmed addresses
    email_verified INTEGER NOT NULL DEFAULT 0,
    given_name TEXT,
    family_name TEXT,
    middle_name TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    org TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    notify_sms INTEGER NOT NULL DEFAULT 1
);
INSERT INTO accounts SELECT * FROM accounts_0005;
DROP TABLE accounts_0005;

CREATE UNIQUE INDEX accounts_phone_confirmed ON accounts(phone) WHERE phone_verified = 1;
CREATE UNIQUE INDEX accounts_email_confirmed ON accounts(email) WHERE email_verified = 1;
CREATE INDEX accounts_phone ON accounts(phone);
CREATE INDEX accounts_email ON accounts(email);
CREATE INDEX accounts_pending ON accounts(status, created_at);
