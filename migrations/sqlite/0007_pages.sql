-- The name people see for a relying party ("Вход в сервис: …"), per language: JSON
-- {"ru": "…", "be": "…", "en": "…"}; NULL shows the client_id.
ALTER TABLE clients ADD COLUMN display_name TEXT;
