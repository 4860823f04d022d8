-- Browser session records of earlier versions held their own id (the cookie's value) in clear;
-- the new code refuses them anyway, and a copy of the store must not hold them either.
DELETE FROM web_sessions;

-- A resource server: the audiences (client ids) whose access tokens the client may introspect.
ALTER TABLE clients ADD COLUMN introspection_audiences TEXT NOT NULL DEFAULT '[]';
