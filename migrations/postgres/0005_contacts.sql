-- Contacts bind only once confirmed, and email addresses compare without regard to case.
--
-- 1. Emails are stored lower-cased (lower() here folds ASCII letters, and others as far as the
--    database's locale knows them; addresses with non-ASCII letters are listed in
--    accounts_email_fold and folded by vhod itself on its next start, as Rust folds them).
-- 2. Where several accounts have confirmed the same address (differing only in case), the
--    oldest account keeps it confirmed; the others keep the address unconfirmed (they sign in
--    and recover by SMS as before, and may confirm another address in the profile).
-- 3. Phone numbers and email addresses are unique only among confirmed ones: an unconfirmed
--    registration no longer holds them.
DROP INDEX IF EXISTS accounts_email;
ALTER TABLE accounts DROP CONSTRAINT IF EXISTS accounts_phone_key;

UPDATE accounts SET email = lower(email) WHERE email IS NOT NULL AND email <> lower(email);
UPDATE accounts SET email_verified = 0
WHERE email_verified = 1 AND EXISTS (
    SELECT 1 FROM accounts o
    WHERE o.email = accounts.email AND o.email_verified = 1 AND o.id <> accounts.id
      AND (o.created_at < accounts.created_at OR (o.created_at = accounts.created_at AND o.id < accounts.id))
);

CREATE TABLE accounts_email_fold (id TEXT PRIMARY KEY);
INSERT INTO accounts_email_fold (id) SELECT id FROM accounts WHERE email ~ '[^ -~]';

CREATE UNIQUE INDEX accounts_phone_confirmed ON accounts(phone) WHERE phone_verified = 1;
CREATE UNIQUE INDEX accounts_email_confirmed ON accounts(email) WHERE email_verified = 1;
CREATE INDEX accounts_phone ON accounts(phone);
CREATE INDEX accounts_email ON accounts(email);
CREATE INDEX accounts_pending ON accounts(status, created_at);
