-- Analytics: robots recorded apart from people, unique visitors, the business's own day,
-- and the daily totals that stats read. Raw rows are deleted after the retention
-- (CLICKTOCHAT_RETENTION_DAYS); the totals stay. clicks.ClickRecorder writes both in one
-- transaction, so they always agree.

CREATE TABLE clicks_new (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,                 -- Unix seconds
    link_kind TEXT NOT NULL CHECK (link_kind IN ('short', 'signed', 'widget')),
    link_key TEXT NOT NULL,              -- slug, tokens.token_key() of a signed link, or widget id
    channel TEXT NOT NULL,
    agent_id INTEGER,
    campaign TEXT,
    source TEXT,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_content TEXT,
    utm_term TEXT,
    ad_click TEXT,                       -- ctwa_clid, fbclid or gclid: which one came, never its value
    referrer_host TEXT,                  -- the host only: full referrers can carry personal data
    device_class TEXT,
    os_family TEXT,
    browser_family TEXT,
    page_path TEXT,                      -- widget clicks: the path of the page the button was on
    robot TEXT,                          -- what kind of robot; NULL for a person
    business_id INTEGER,                 -- the business of the agent reached, if any
    day TEXT NOT NULL,                   -- YYYY-MM-DD in that business's time zone, else UTC
    visitor TEXT,                        -- visitors.Salts hash: unlinkable once its day's salt is gone
    n INTEGER NOT NULL DEFAULT 1 CHECK (n > 0),       -- identical clicks in the same second
    uniques INTEGER NOT NULL DEFAULT 0 CHECK (uniques <= n)
);
INSERT INTO clicks_new (
    id, at, link_kind, link_key, channel, agent_id, campaign, source, utm_source, utm_medium, utm_campaign,
    utm_content, utm_term, ad_click, referrer_host, device_class, os_family, browser_family, page_path,
    business_id, day, n
) SELECT
    c.id, c.at, c.link_kind, c.link_key, c.channel, c.agent_id, c.campaign, c.source, c.utm_source, c.utm_medium,
    c.utm_campaign, c.utm_content, c.utm_term,
    CASE WHEN c.has_fbclid THEN 'fbclid' WHEN c.has_gclid THEN 'gclid' END,
    c.referrer_host, c.device_class, c.os_family, c.browser_family, c.page_path,
    (SELECT a.business_id FROM agents a WHERE a.id = c.agent_id), date(c.at, 'unixepoch'), c.n
FROM clicks c;
DROP TABLE clicks;
ALTER TABLE clicks_new RENAME TO clicks;
CREATE INDEX clicks_link ON clicks (link_kind, link_key, at);
CREATE INDEX clicks_at ON clicks (at);

-- The daily totals stats read, in two tables. Per link, a row a day. Per dimension value,
-- a row a day for each scope: every link of the business together, and each campaign, each
-- agent and each channel apart. (Per link and dimension value would be more rows than clicks:
-- stats read the raw rows for that, within the retention.)
CREATE TABLE link_days (
    day TEXT NOT NULL,                   -- YYYY-MM-DD in the business's time zone
    business_id INTEGER NOT NULL,        -- 0: no business (a link to a fixed number)
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    campaign TEXT NOT NULL,
    agent_id INTEGER NOT NULL,           -- 0: none
    channel TEXT NOT NULL,
    clicks INTEGER NOT NULL DEFAULT 0,   -- people only
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,     -- robots: never in clicks
    PRIMARY KEY (day, link_kind, link_key, business_id, campaign, agent_id, channel)
) WITHOUT ROWID;
CREATE INDEX link_days_link ON link_days (link_kind, link_key, day);

-- The same a month (YYYY-MM): a year of a thousand links is 12,000 rows, not 365,000.
CREATE TABLE link_months (
    month TEXT NOT NULL,
    business_id INTEGER NOT NULL,
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    campaign TEXT NOT NULL,
    agent_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    clicks INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, link_kind, link_key, business_id, campaign, agent_id, channel)
) WITHOUT ROWID;

CREATE TABLE dimension_days (
    scope TEXT NOT NULL CHECK (scope IN ('all', 'campaign', 'agent', 'channel')),
    scope_value TEXT NOT NULL,           -- '' for all; else the campaign, agent id or channel
    dimension TEXT NOT NULL,             -- '' for the day's total; else one of clicks.DIMENSIONS
    day TEXT NOT NULL,
    business_id INTEGER NOT NULL,
    value TEXT NOT NULL,                 -- '' when the click had none (no referrer, no UTM, ...)
    clicks INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_value, dimension, day, business_id, value)
) WITHOUT ROWID;

-- The totals of clicks recorded before this migration: people (robots were not recorded
-- then), on UTC days, their uniques unknown.
INSERT INTO link_days (day, business_id, link_kind, link_key, campaign, agent_id, channel, clicks)
SELECT day, coalesce(business_id, 0), link_kind, link_key, coalesce(campaign, ''), coalesce(agent_id, 0), channel,
       sum(n)
FROM clicks GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO link_months (month, business_id, link_kind, link_key, campaign, agent_id, channel, clicks)
SELECT substr(day, 1, 7), business_id, link_kind, link_key, campaign, agent_id, channel, sum(clicks)
FROM link_days GROUP BY 1, 2, 3, 4, 5, 6, 7;
INSERT INTO dimension_days (scope, scope_value, dimension, value, day, business_id, clicks)
SELECT s.value ->> 0, s.value ->> 1, d.value ->> 0, d.value ->> 1, c.day, coalesce(c.business_id, 0), sum(c.n)
FROM clicks c,
     json_each(json_array(
         json_array('', ''), json_array('source', coalesce(c.source, '')),
         json_array('referrer', coalesce(c.referrer_host, '')), json_array('device', coalesce(c.device_class, '')),
         json_array('os', coalesce(c.os_family, '')), json_array('browser', coalesce(c.browser_family, '')),
         json_array('utm_source', coalesce(c.utm_source, '')), json_array('utm_medium', coalesce(c.utm_medium, '')),
         json_array('utm_campaign', coalesce(c.utm_campaign, '')),
         json_array('utm_content', coalesce(c.utm_content, '')), json_array('utm_term', coalesce(c.utm_term, '')),
         json_array('page', coalesce(c.page_path, '')), json_array('ad_click', coalesce(c.ad_click, '')),
         json_array('robot', '')
     )) d,
     json_each(json_array(
         json_array('all', ''), json_array('campaign', c.campaign), json_array('agent', CAST(c.agent_id AS TEXT)),
         json_array('channel', c.channel)
     )) s
WHERE s.value ->> 1 IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;
