-- Agents and dev servers (issue 12) are jobs: `kind` says which (job,
-- agent, devserver), `ports` holds a dev server's detected ports as the
-- runner last reported them (a JSON array of {port, addr, source}).
-- Identical in both dialects.

ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'job';
ALTER TABLE jobs ADD COLUMN ports TEXT NOT NULL DEFAULT '[]';

CREATE INDEX jobs_user_kind ON jobs (user_id, kind, created_at);
