-- Limits counted across relays (issue 15, cluster mode only; a single
-- relay counts in memory and never touches these tables). The SQLite twin
-- is migrations/sqlite/0070_shared_limits.sql: keep the two in step.
--
-- rate_limit_logs: one row per (limiter, key): the events of its sliding
-- window as opaque bytes the relay encodes, replaced by compare-and-swap
-- on `version`. `key_hash` is a keyed hash (the relays' signing secret):
-- no address or account name is stored. `expires_at` (ms) is when every
-- event in it has left the window; the row may be deleted after.
CREATE TABLE rate_limit_logs (
    limiter    TEXT   NOT NULL,
    key_hash   TEXT   NOT NULL,
    events     BYTEA  NOT NULL,
    version    BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (limiter, key_hash)
);

CREATE INDEX rate_limit_logs_expires ON rate_limit_logs (expires_at);

-- socket_leases: the WebSockets each relay holds per key (a keyed hash of
-- an account or an address), under a lease: the relay renews `expires_at`
-- (ms) while it lives, so the counts of a relay that died stop counting
-- when it passes.
CREATE TABLE socket_leases (
    key_hash   TEXT   NOT NULL,
    relay      TEXT   NOT NULL,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (key_hash, relay)
);

CREATE INDEX socket_leases_relay ON socket_leases (relay);
CREATE INDEX socket_leases_expires ON socket_leases (expires_at);
