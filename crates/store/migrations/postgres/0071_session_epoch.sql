-- Issue 16: the runner's numbering epoch of a terminal session. A runner
-- that starts numbering over (a restart, or unacked frames it had to drop)
-- says `rebase`; the relay stores a new random epoch here. A browser that
-- resumes with another epoch's last_seq is served from scratch (protocol.md
-- §5): since the relay fans a Batch out before its commit, such a browser
-- may hold records the store never got.
ALTER TABLE terminal_sessions ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
