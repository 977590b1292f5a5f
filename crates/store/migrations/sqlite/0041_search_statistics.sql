-- Search statistics (issue 11's benchmark): the PostgreSQL twin
-- (migrations/postgres/0041_search_statistics.sql) raises the statistics
-- target of the tsvector column so that rare words take the GIN index.
-- SQLite answers from FTS5, which has no such choice: nothing changes here.

SELECT 1;
