-- Issue 13: what several `clicktochat serve` processes on one PostgreSQL database share, which
-- one process kept in memory. SQLite (one process) has the same tables, unused, so that both
-- schemas stay one (tests/test_migrations_pg.py).

-- Agent rotation: the agent a business's last click went to, taken by every instance in turn
-- (sharedstore.SharedStore.take_turn: one atomic upsert).
CREATE TABLE rotations (
    business_id INTEGER PRIMARY KEY,
    last_agent_id INTEGER NOT NULL
);

-- Failed dashboard sign-ins of the last window, by key (accounts.LoginThrottle.keys).
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

-- Unique visitors across instances: each visitor key's last click and the one before it, set
-- by one upsert (a repeat when the one before is within the unique window). Pruned hourly.
CREATE TABLE seen_visitors (
    visitor TEXT PRIMARY KEY,
    last_at INTEGER NOT NULL,
    prev_at INTEGER
);
CREATE INDEX seen_visitors_last_at ON seen_visitors (last_at);

-- Scheduled jobs (pruning, template sync): when each is next due; the instance that moves it
-- forward runs the job, the others skip it.
CREATE TABLE job_runs (
    name TEXT PRIMARY KEY,
    next_at INTEGER NOT NULL
);

-- A WhatsApp number connected or disconnected (by the CLI, or by another instance) changes the
-- keys webhooks are checked with and the numbers links carry ref codes for: servers reload them.
CREATE TRIGGER whatsapp_numbers_insert AFTER INSERT ON whatsapp_numbers
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER whatsapp_numbers_update AFTER UPDATE ON whatsapp_numbers
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER whatsapp_numbers_delete AFTER DELETE ON whatsapp_numbers
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
