-- Issue 10: browser tokens bound to the login that minted them and usable
-- once; pairing polls looked up by their secret.
-- The PostgreSQL twin is migrations/postgres/0010_login_ids_used_tokens.sql.

-- A login's public id: browser tokens name it (claim `login`), and ending
-- the login (logout, log out everywhere, password change) invalidates them.
-- Not a secret: it opens nothing without the cookie.
ALTER TABLE browser_logins ADD COLUMN login_id TEXT;
UPDATE browser_logins SET login_id = lower(hex(randomblob(16))) WHERE login_id IS NULL;
CREATE UNIQUE INDEX browser_logins_login_id ON browser_logins (login_id);

-- Browser token ids consumed by opening a WebSocket; a token whose jti is
-- here opens nothing more. Kept until the token expires, shared by every
-- relay process on the database.
CREATE TABLE used_browser_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX used_browser_tokens_expires ON used_browser_tokens (expires_at);

-- `GET /api/pair/check` finds the pairing by the hash of the poll secret
-- first, so its answer never depends on whether a code exists.
CREATE INDEX pair_requests_poll ON pair_requests (poll_hash);
