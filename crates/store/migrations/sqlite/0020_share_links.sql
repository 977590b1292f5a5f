-- Read-only share links (issue 14): the owner of a terminal session gives
-- out a link anyone can watch the session with, until it expires or is
-- revoked. The link's secret is stored only as a keyed SHA-256 hex digest.
-- Timestamps are milliseconds since the Unix epoch, given by the caller.
-- The PostgreSQL twin is migrations/postgres/0020_share_links.sql: keep the two
-- in step (same tables, columns and constraints).

CREATE TABLE share_links (
    id          TEXT    PRIMARY KEY,
    secret_hash TEXT    NOT NULL UNIQUE,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id  INTEGER NOT NULL REFERENCES terminal_sessions (id) ON DELETE CASCADE,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX share_links_session ON share_links (session_id);
