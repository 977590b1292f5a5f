-- Dev server events (issue 12): what the relay derived from a dev server's
-- consecutive reports, kept so a page lists them after a reload:
-- `port-detected` (port, addr, source), `port-closed` (port) and
-- `process-exited` (exit_code, signal). A job row of kind `devserver` owns
-- them; they go when it goes. Times are milliseconds since the Unix epoch,
-- given by the caller. The PostgreSQL twin is
-- migrations/postgres/0062_devserver_events.sql: keep the two in step.

CREATE TABLE devserver_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    port      INTEGER,
    addr      TEXT,
    source    TEXT,
    exit_code INTEGER,
    signal    INTEGER
);

CREATE INDEX devserver_events_job ON devserver_events (job_id, id);
