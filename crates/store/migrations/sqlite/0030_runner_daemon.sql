-- The runner daemon, protocol 2 (issue 9): a terminal session is identified
-- by (runner, idea, slot, instance), so a session recreated after its tmux
-- server died is a new row and the old one stays readable, closed. Sessions
-- keep what the page shows after a relay restart (attach command, host,
-- last activity, closed time) and the pane ids of their current topology
-- (the relay refuses input naming any other pane). Runners keep the
-- versions they report. `events` is the account's activity feed.
-- Timestamps are milliseconds since the Unix epoch, given by the caller.
-- The PostgreSQL twin is migrations/postgres/0030_runner_daemon.sql: keep
-- the two in step (same tables, columns and constraints).
--
-- SQLite cannot drop a UNIQUE table constraint: the table is rebuilt (the
-- store runs migrations with foreign key enforcement off, so dropping the
-- old table neither cascades into frames nor breaks their references).

CREATE TABLE terminal_sessions_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    runner_id         TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    idea              TEXT    NOT NULL,
    slot              TEXT    NOT NULL,
    -- '' for sessions of protocol 1 (adopted by the first instance opened).
    instance          TEXT    NOT NULL DEFAULT '',
    tmux_session      TEXT    NOT NULL,
    attach            TEXT    NOT NULL DEFAULT '',
    host              TEXT    NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)),
    last_connected_at INTEGER,
    last_detached_at  INTEGER,
    last_activity_at  INTEGER,
    closed_at         INTEGER,
    -- Pane ids of the current topology, comma-separated ("%0,%3").
    panes             TEXT    NOT NULL DEFAULT '',
    last_seq          INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    UNIQUE (runner_id, idea, slot, instance)
);

INSERT INTO terminal_sessions_new
    (id, runner_id, user_id, idea, slot, tmux_session, created_at,
     last_connected_at, last_detached_at, last_seq)
SELECT id, runner_id, user_id, idea, slot, tmux_session, created_at,
       last_connected_at, last_detached_at, last_seq
FROM terminal_sessions;

DROP TABLE terminal_sessions;
ALTER TABLE terminal_sessions_new RENAME TO terminal_sessions;
CREATE INDEX terminal_sessions_user ON terminal_sessions (user_id);

ALTER TABLE runners ADD COLUMN version TEXT NOT NULL DEFAULT '';
ALTER TABLE runners ADD COLUMN tmux_version TEXT NOT NULL DEFAULT '';

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    -- runner_paired, runner_connected, runner_disconnected, runner_revoked,
    -- session_created, session_closed
    kind        TEXT    NOT NULL,
    runner_id   TEXT    NOT NULL,
    runner_name TEXT    NOT NULL DEFAULT '',
    session_id  INTEGER,
    idea        TEXT,
    slot        TEXT,
    detail      TEXT
);
CREATE INDEX events_user ON events (user_id, id);
