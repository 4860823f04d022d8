-- Browser session records of earlier versions held their own id (the cookie's value) in clear;
-- the new code refuses them anyway, and a copy of the store must not hold them either.
DELETE FROM web_sessions;
