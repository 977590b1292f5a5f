-- Transcript storage (issue 3): terminal sessions, frames and snapshots.
-- Timestamps are milliseconds since the Unix epoch (INTEGER), given by the
-- caller except the created_at defaults. Sequence numbers fit in i64.
-- The PostgreSQL twin is migrations/postgres/0001_transcript.sql: keep the
-- two in step (same tables, columns and constraints).

CREATE TABLE terminal_sessions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    runner_id         TEXT    NOT NULL,
    user_id           TEXT    NOT NULL,
    idea              TEXT    NOT NULL,
    slot              TEXT    NOT NULL,
    tmux_session      TEXT    NOT NULL,
    created_at        INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)),
    last_connected_at INTEGER,
    last_detached_at  INTEGER,
    last_seq          INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    UNIQUE (runner_id, idea, slot)
);

CREATE INDEX terminal_sessions_user ON terminal_sessions (user_id);

-- One row per Batch frame, bytes stored verbatim (already zstd-compressed).
-- Stored frames of a session always form a gap-free range ending at
-- terminal_sessions.last_seq; pruning removes a prefix.
CREATE TABLE frames (
    session_id INTEGER NOT NULL REFERENCES terminal_sessions (id) ON DELETE CASCADE,
    first_seq  INTEGER NOT NULL CHECK (first_seq >= 1),
    last_seq   INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    bytes      BLOB    NOT NULL,
    PRIMARY KEY (session_id, first_seq),
    UNIQUE (session_id, last_seq),
    CHECK (last_seq >= first_seq)
);

CREATE TABLE snapshots (
    session_id INTEGER NOT NULL REFERENCES terminal_sessions (id) ON DELETE CASCADE,
    at_seq     INTEGER NOT NULL CHECK (at_seq >= 0),
    size       INTEGER NOT NULL,
    bytes      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
        DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)),
    PRIMARY KEY (session_id, at_seq)
);
