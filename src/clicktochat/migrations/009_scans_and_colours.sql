-- Issue 12: posters in the business's colour, QR scans told from clicks, and a fixed number
-- that still belongs to its business.

-- The business's colour (#rrggbb), for its posters; NULL: our own.
ALTER TABLE businesses ADD COLUMN colour TEXT;

-- How the click came: 'qr' when the visitor scanned a code we drew (its URL carries the `qr`
-- marker, qr.scan_url); NULL for a tap on the link itself. Read by the writer from the query
-- string it already keeps, so the click path does nothing more.
ALTER TABLE clicks ADD COLUMN via TEXT;

-- link_dimension_days (006) gains `via`, a column of its primary key: made again, the old rows
-- copied as taps ('') since no scan was told apart before.
CREATE TABLE link_dimension_days_new (
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    day TEXT NOT NULL,
    business_id INTEGER NOT NULL,
    campaign TEXT NOT NULL,
    agent_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    referrer TEXT NOT NULL,
    device TEXT NOT NULL,
    os TEXT NOT NULL,
    browser TEXT NOT NULL,
    utm_source TEXT NOT NULL,
    utm_medium TEXT NOT NULL,
    utm_campaign TEXT NOT NULL,
    utm_content TEXT NOT NULL,
    utm_term TEXT NOT NULL,
    page TEXT NOT NULL,
    ad_click TEXT NOT NULL,
    robot TEXT NOT NULL,
    via TEXT NOT NULL,                   -- 'qr' or ''
    clicks INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (link_kind, link_key, day, business_id, campaign, agent_id, channel, source, referrer, device, os,
                 browser, utm_source, utm_medium, utm_campaign, utm_content, utm_term, page, ad_click, robot, via)
) WITHOUT ROWID;
INSERT INTO link_dimension_days_new
SELECT link_kind, link_key, day, business_id, campaign, agent_id, channel, source, referrer, device, os, browser,
       utm_source, utm_medium, utm_campaign, utm_content, utm_term, page, ad_click, robot, '', clicks, uniques, bots
FROM link_dimension_days;
DROP TABLE link_dimension_days;
ALTER TABLE link_dimension_days_new RENAME TO link_dimension_days;

-- A short link to a fixed number may still belong to a business (its landing page and posters
-- keep the name, logo and colour): `link edit --to` no longer detaches it. SQLite cannot change
-- a CHECK, so the table is made again (nothing references links; its triggers come back below).
CREATE TABLE links_new (
    slug TEXT PRIMARY KEY,
    channel TEXT,                    -- with address: a fixed destination
    address TEXT,
    agent_id INTEGER REFERENCES agents(id),
    business_id INTEGER REFERENCES businesses(id),  -- with address: whose number it is
    text TEXT NOT NULL DEFAULT '',
    campaign TEXT,
    source TEXT,
    mode TEXT NOT NULL DEFAULT 'auto' CHECK (mode IN ('auto', 'redirect', 'landing')),
    disabled INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ref_code INTEGER,
    CHECK ((address IS NOT NULL) + (agent_id IS NOT NULL) + (business_id IS NOT NULL AND address IS NULL) = 1)
);
INSERT INTO links_new (slug, channel, address, agent_id, business_id, text, campaign, source, mode, disabled,
                       expires_at, created_at, updated_at, ref_code)
SELECT slug, channel, address, agent_id, business_id, text, campaign, source, mode, disabled, expires_at, created_at,
       updated_at, ref_code
FROM links;
DROP TABLE links;
ALTER TABLE links_new RENAME TO links;
CREATE INDEX links_agent ON links (agent_id);
CREATE INDEX links_business ON links (business_id);
CREATE TRIGGER links_insert AFTER INSERT ON links
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER links_update AFTER UPDATE ON links
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER links_delete AFTER DELETE ON links
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
