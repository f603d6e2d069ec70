-- Applied once, in one transaction, by store.migrate(); PRAGMA user_version records it.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('routing_version', '0');

-- Keys that sign links. The newest signs; all verify. Never deleted by the application:
-- a printed link lives as long as its key.
CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,            -- first characters, to recognise a key in lists
    hash TEXT NOT NULL UNIQUE,       -- SHA-256 of the whole key; the key itself is never stored
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);

CREATE TABLE businesses (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    fallback_agent_id INTEGER REFERENCES agents(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- A business's logo, re-encoded as a small PNG by logos.check_logo (never stored as uploaded).
CREATE TABLE logos (
    business_id INTEGER PRIMARY KEY REFERENCES businesses(id) ON DELETE CASCADE,
    png BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    hours TEXT,                      -- JSON {"mon": ["09:00-13:00"], ...}; NULL: always available
    timezone TEXT,                   -- NULL: the business's
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX agents_business ON agents (business_id);

-- Short links: printed, so the slug never changes while the destination may.
CREATE TABLE links (
    slug TEXT PRIMARY KEY,
    channel TEXT,                    -- with address: a fixed destination
    address TEXT,
    agent_id INTEGER REFERENCES agents(id),
    business_id INTEGER REFERENCES businesses(id),
    text TEXT NOT NULL DEFAULT '',
    campaign TEXT,
    source TEXT,
    mode TEXT NOT NULL DEFAULT 'auto' CHECK (mode IN ('auto', 'redirect', 'landing')),
    disabled INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((address IS NOT NULL) + (agent_id IS NOT NULL) + (business_id IS NOT NULL) = 1)
);
CREATE INDEX links_agent ON links (agent_id);
CREATE INDEX links_business ON links (business_id);

-- One row counts `n` identical clicks in the same second: a burst (an ad going live, a bot)
-- costs one row, not thousands, and the writer keeps up on one core.
CREATE TABLE clicks (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,             -- Unix seconds
    n INTEGER NOT NULL DEFAULT 1 CHECK (n > 0),
    link_kind TEXT NOT NULL CHECK (link_kind IN ('short', 'signed')),
    link_key TEXT NOT NULL,          -- the slug, or tokens.token_key() of a signed link
    channel TEXT NOT NULL,
    agent_id INTEGER,
    campaign TEXT,
    source TEXT,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_content TEXT,
    utm_term TEXT,
    has_fbclid INTEGER NOT NULL DEFAULT 0,
    has_gclid INTEGER NOT NULL DEFAULT 0,
    referrer_host TEXT,
    device_class TEXT,
    os_family TEXT,
    browser_family TEXT
);
CREATE INDEX clicks_link ON clicks (link_kind, link_key, at);

-- Any change to what a link resolves to bumps routing_version, which every server process
-- polls to drop its cache and reload keys: an edit made by the CLI reaches a running server.
CREATE TRIGGER links_insert AFTER INSERT ON links
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER links_update AFTER UPDATE ON links
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER links_delete AFTER DELETE ON links
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER agents_insert AFTER INSERT ON agents
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER agents_update AFTER UPDATE ON agents
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER agents_delete AFTER DELETE ON agents
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER businesses_update AFTER UPDATE ON businesses
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER businesses_delete AFTER DELETE ON businesses
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
-- A key added by `clicktochat keys rotate` must reach running servers before links signed with it do.
CREATE TRIGGER signing_keys_insert AFTER INSERT ON signing_keys
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
