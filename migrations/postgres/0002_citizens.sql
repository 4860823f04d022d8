-- Citizen accounts: notification channels; one account per email address.
ALTER TABLE accounts ADD COLUMN notify_sms BIGINT NOT NULL DEFAULT 1;
CREATE UNIQUE INDEX accounts_email ON accounts(email);
