-- Jobs (issue 11): a command run in a tmux window of an idea's session on
-- one of the account's runners, and its log (everything its pane printed,
-- byte for byte, in compressed chunks by offset). Timestamps are
-- milliseconds since the Unix epoch, given by the caller. The PostgreSQL
-- twin is migrations/postgres/0050_jobs.sql: keep the two in step.

CREATE TABLE jobs (
    id               TEXT    PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idea             TEXT    NOT NULL,
    slot             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    command          TEXT    NOT NULL,
    cwd              TEXT,
    -- JSON object of the environment variables it sets.
    env              TEXT    NOT NULL DEFAULT '{}',
    -- The runner asked for (NULL: any), and the one it runs on.
    want_runner_id   TEXT,
    runner_id        TEXT,
    -- queued, starting, running, succeeded, failed, cancelled, lost
    state            TEXT    NOT NULL,
    exit_code        INTEGER,
    signal           INTEGER,
    error            TEXT,
    session_id       INTEGER,
    pane             TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    log_bytes        INTEGER NOT NULL DEFAULT 0 CHECK (log_bytes >= 0),
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER
);

CREATE INDEX jobs_user_idea ON jobs (user_id, idea, created_at);
CREATE INDEX jobs_runner_state ON jobs (runner_id, state);
CREATE INDEX jobs_user_state ON jobs (user_id, state);

CREATE TABLE job_logs (
    job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- Byte offset of the chunk in the log; chunks tile the log without
    -- gaps or overlaps.
    start_byte INTEGER NOT NULL CHECK (start_byte >= 0),
    len     INTEGER NOT NULL CHECK (len > 0),
    -- One zstd frame.
    data    BLOB    NOT NULL,
    PRIMARY KEY (job_id, start_byte)
);

-- Lines other tools sent (`POST /api/logs/ingest`, a runner's token): kept
-- per account, shown with the idea's jobs and sessions.
CREATE TABLE ingested_logs (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    runner_id TEXT    NOT NULL,
    idea      TEXT,
    source    TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    line      TEXT    NOT NULL
);

CREATE INDEX ingested_logs_user_idea ON ingested_logs (user_id, idea, at);
