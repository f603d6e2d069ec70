-- The embeddable widget (issue 4): widgets, and clicks that come from them.

-- A widget's id is public: it is in the embed snippet. Its settings are one JSON object,
-- validated by widget.check_settings (the options grow; their rules live in one place).
CREATE TABLE widgets (
    id TEXT PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses(id),
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX widgets_business ON widgets (business_id);

CREATE TRIGGER widgets_insert AFTER INSERT ON widgets
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER widgets_update AFTER UPDATE ON widgets
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER widgets_delete AFTER DELETE ON widgets
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;

-- Clicks may now come from a widget (link_key: its id), from a page whose path is kept
-- (never its query string or fragment, which can carry personal data). SQLite cannot
-- change a CHECK constraint in place, so the table is copied.
CREATE TABLE clicks_new (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    n INTEGER NOT NULL DEFAULT 1 CHECK (n > 0),
    link_kind TEXT NOT NULL CHECK (link_kind IN ('short', 'signed', 'widget')),
    link_key TEXT NOT NULL,
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
    browser_family TEXT,
    page_path TEXT                   -- widget clicks: the path of the page the button was on
);
INSERT INTO clicks_new (
    id, at, n, link_kind, link_key, channel, agent_id, campaign, source, utm_source, utm_medium, utm_campaign,
    utm_content, utm_term, has_fbclid, has_gclid, referrer_host, device_class, os_family, browser_family
) SELECT
    id, at, n, link_kind, link_key, channel, agent_id, campaign, source, utm_source, utm_medium, utm_campaign,
    utm_content, utm_term, has_fbclid, has_gclid, referrer_host, device_class, os_family, browser_family
FROM clicks;
DROP TABLE clicks;
ALTER TABLE clicks_new RENAME TO clicks;
CREATE INDEX clicks_link ON clicks (link_kind, link_key, at);
