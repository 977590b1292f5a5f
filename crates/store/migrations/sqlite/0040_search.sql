-- Full-text search over what terminals printed (issue 11). The relay's
-- indexer (crates/relay/src/search) reads stored frames after
-- search_progress.indexed_seq, turns their output into lines and inserts
-- them here with the progress, in one transaction, off the hot path.
-- SQLite indexes with FTS5 (an external-content table kept in step by
-- triggers); the PostgreSQL twin (migrations/postgres/0040_search.sql) has
-- the same tables with a generated tsvector and a GIN index instead.

CREATE TABLE search_lines (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES terminal_sessions (id) ON DELETE CASCADE,
    pane       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    line       TEXT    NOT NULL
);

CREATE INDEX search_lines_session ON search_lines (session_id, pane, id);

CREATE VIRTUAL TABLE search_fts USING fts5(
    line,
    content = 'search_lines',
    content_rowid = 'id',
    tokenize = 'unicode61'
);

CREATE TRIGGER search_lines_insert AFTER INSERT ON search_lines BEGIN
    INSERT INTO search_fts (rowid, line) VALUES (new.id, new.line);
END;

CREATE TRIGGER search_lines_delete AFTER DELETE ON search_lines BEGIN
    INSERT INTO search_fts (search_fts, rowid, line) VALUES ('delete', old.id, old.line);
END;

-- How far each session is indexed, and the unfinished line of each pane
-- (JSON object pane -> text) so a line printed across frames is one line.
CREATE TABLE search_progress (
    session_id  INTEGER PRIMARY KEY REFERENCES terminal_sessions (id) ON DELETE CASCADE,
    indexed_seq INTEGER NOT NULL DEFAULT 0 CHECK (indexed_seq >= 0),
    pending     TEXT    NOT NULL DEFAULT '{}'
);
