-- Agents and idle watching (issue 12). An agent is a job of kind 'agent'
-- plus its agent kind and arguments, its idle time, whether its pane is
-- idle as the runner last said, and its derived state with every
-- transition and its time (the newest 500 per agent are kept). Any pane
-- can be watched for idleness too (pane_watches, one row per session and
-- pane). account_settings holds small per-account settings (the default
-- idle time). Times are ms since the Unix epoch, given by the caller. The
-- other dialect's twin is migrations/postgres/0061_agents.sql.

CREATE TABLE agents (
    job_id      TEXT    PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- claude-code, codex, cursor, custom
    agent_kind  TEXT    NOT NULL,
    -- JSON array of strings.
    args        TEXT    NOT NULL DEFAULT '[]',
    -- NULL: the account's setting, else the default.
    idle_ms     INTEGER,
    idle        INTEGER NOT NULL DEFAULT 0,
    -- starting, running, idle, stopped, errored
    state       TEXT    NOT NULL,
    state_at    INTEGER NOT NULL
);

CREATE INDEX agents_user ON agents (user_id);

CREATE TABLE agent_transitions (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    state   TEXT    NOT NULL,
    at      INTEGER NOT NULL
);

CREATE INDEX agent_transitions_job ON agent_transitions (job_id, id);

CREATE TABLE pane_watches (
    session_id  INTEGER NOT NULL REFERENCES terminal_sessions (id) ON DELETE CASCADE,
    pane        TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idle_ms     INTEGER NOT NULL,
    idle        INTEGER NOT NULL DEFAULT 0,
    changed_at  INTEGER NOT NULL,
    PRIMARY KEY (session_id, pane)
);

CREATE TABLE account_settings (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    agent_idle_ms  INTEGER
);
