-- Accounts, browser logins, runners, revocations and pairing (issue 6).
-- Timestamps are milliseconds since the Unix epoch, given by the caller.
-- Secrets (cookie values, login codes, pairing codes) are stored only as
-- keyed SHA-256 hex digests, never as given out.
-- The PostgreSQL twin is migrations/postgres/0002_accounts.sql: keep the two
-- in step (same tables, columns and constraints).

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string; NULL for the local default user (no password).
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);

-- Browser cookie sessions.
CREATE TABLE browser_logins (
    token_hash TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX browser_logins_user ON browser_logins (user_id);

-- One-time login codes (`tmux-bridge up` prints /login/once?code=...).
CREATE TABLE login_codes (
    code_hash  TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);

CREATE TABLE runners (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    -- 1 for the runner embedded in `tmux-bridge up`.
    embedded     INTEGER NOT NULL DEFAULT 0,
    -- jti of the runner's current token.
    token_jti    TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX runners_user ON runners (user_id);

-- Revoked token ids, checked on every runner connect; kept until the
-- token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Pending pairings (inverted device-code flow). poll_hash is the hash of
-- the secret the runner polls with; code_hash of the code a person types.
CREATE TABLE pair_requests (
    code_hash     TEXT    PRIMARY KEY,
    poll_hash     TEXT    NOT NULL,
    runner_name   TEXT    NOT NULL,
    host          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    interval_secs INTEGER NOT NULL,
    last_poll_at  INTEGER,
    approved_by   TEXT    REFERENCES users (id) ON DELETE CASCADE,
    approved_at   INTEGER,
    runner_id     TEXT,
    consumed_at   INTEGER
);
CREATE INDEX pair_requests_expires ON pair_requests (expires_at);
