-- Search statistics (issue 11's benchmark). The planner chooses between
-- walking search_lines newest first (fast when the words are common) and
-- the GIN index (fast when they are rare) from its estimate of how many
-- lines contain the words. With the default statistics (about 800 most
-- common lexemes of 30,000 sampled lines) every word outside that list was
-- estimated at thousands of lines in a gigabyte of output, so a rare or
-- absent word walked all 15 million lines: 1 to 10 s. A thousand-fold
-- target keeps about 8,500 lexemes from 300,000 sampled lines; rare words
-- then take the index (a few ms) and ANALYZE of 15 million lines takes
-- about 5 s. The SQLite twin (migrations/sqlite/0041_search_statistics.sql)
-- changes nothing: FTS5 has no such choice.

ALTER TABLE search_lines ALTER COLUMN tsv SET STATISTICS 1000;
ANALYZE search_lines;
