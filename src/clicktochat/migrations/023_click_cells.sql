-- Issue 11, point 8: clicks written at more than half the speed of a bare INSERT. A raw row and
-- each daily total named its link and every dimension value in text, so a click cost a wide row,
-- a 21-column key in link_dimension_days and a dozen keys in dimension_days. Now what a click
-- says beyond its time and visitor is a `click_cells` row, made once and then named by its id: its
-- link (a `click_links` row: the link, its business, campaign, agent and channel) and its value of
-- each dimension (a `click_facts` row), '' or 0 for none. Raw rows (`click_log`) and the daily
-- totals (`cell_days`, `link_totals_days`, `link_totals_months`) hold ids and numbers, keyed day
-- first: a batch of clicks adds to the last pages of each, where a key led by the cell or the link
-- wrote a page of the file for nearly every click. The old names are views with the old columns,
-- for every reader. dimension_days keeps the business's totals per dimension value (scope 'all');
-- a campaign's, an agent's or a channel's are read from cell_days (stats.read).

CREATE TABLE click_links (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL,        -- 0: no business (a link to a fixed number)
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    campaign TEXT NOT NULL,
    agent_id INTEGER NOT NULL,           -- 0: none
    channel TEXT NOT NULL,
    UNIQUE (link_kind, link_key, business_id, campaign, agent_id, channel)
);
CREATE INDEX click_links_business ON click_links (business_id);

CREATE TABLE click_facts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,            -- cells.fact_key(): every column below joined by U+001F
    source TEXT NOT NULL,                -- each of clicks.DIMENSIONS: '' when the click had none
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
    via TEXT NOT NULL
);

-- A link and a fact: what a click row or a cell_days row names.
CREATE TABLE click_cells (
    id INTEGER PRIMARY KEY,
    link INTEGER NOT NULL REFERENCES click_links (id),
    fact INTEGER NOT NULL REFERENCES click_facts (id),
    UNIQUE (link, fact)
);
CREATE INDEX click_links_campaign ON click_links (business_id, campaign);
CREATE INDEX click_links_agent ON click_links (agent_id);

INSERT INTO click_links (business_id, link_kind, link_key, campaign, agent_id, channel)
SELECT business_id, link_kind, link_key, campaign, agent_id, channel FROM link_days
UNION SELECT business_id, link_kind, link_key, campaign, agent_id, channel FROM link_months
UNION SELECT business_id, link_kind, link_key, campaign, agent_id, channel FROM link_dimension_days
UNION SELECT coalesce(business_id, 0), link_kind, link_key, coalesce(campaign, ''), coalesce(agent_id, 0), channel
FROM clicks;

CREATE TEMPORARY TABLE old_cells AS
SELECT link_kind, link_key, business_id, campaign, agent_id, channel, source, referrer, device, os, browser,
       utm_source, utm_medium, utm_campaign, utm_content, utm_term, page, ad_click, robot, via
FROM link_dimension_days
UNION SELECT link_kind, link_key, coalesce(business_id, 0), coalesce(campaign, ''), coalesce(agent_id, 0), channel,
       coalesce(source, ''), coalesce(referrer_host, ''), coalesce(device_class, ''), coalesce(os_family, ''),
       coalesce(browser_family, ''), coalesce(utm_source, ''), coalesce(utm_medium, ''), coalesce(utm_campaign, ''),
       coalesce(utm_content, ''), coalesce(utm_term, ''), coalesce(page_path, ''), coalesce(ad_click, ''),
       coalesce(robot, ''), coalesce(via, '')
FROM clicks;
INSERT INTO click_facts (key, source, referrer, device, os, browser, utm_source, utm_medium, utm_campaign,
                         utm_content, utm_term, page, ad_click, robot, via)
SELECT DISTINCT c.source || char(31) || c.referrer || char(31)
       || c.device || char(31) || c.os || char(31) || c.browser || char(31) || c.utm_source || char(31)
       || c.utm_medium || char(31) || c.utm_campaign || char(31) || c.utm_content || char(31) || c.utm_term
       || char(31) || c.page || char(31) || c.ad_click || char(31) || c.robot || char(31) || c.via,
       c.source, c.referrer, c.device, c.os, c.browser, c.utm_source, c.utm_medium, c.utm_campaign, c.utm_content,
       c.utm_term, c.page, c.ad_click, c.robot, c.via
FROM old_cells c;
INSERT INTO click_cells (link, fact)
SELECT l.id, f.id
FROM old_cells c JOIN click_links l USING (link_kind, link_key, business_id, campaign, agent_id, channel)
JOIN click_facts f USING (source, referrer, device, os, browser, utm_source, utm_medium, utm_campaign, utm_content,
                          utm_term, page, ad_click, robot, via);
DROP TABLE old_cells;
CREATE TEMPORARY VIEW full_cells AS
SELECT c.id, l.link_kind, l.link_key, l.business_id, l.campaign, l.agent_id, l.channel, f.source, f.referrer,
       f.device, f.os, f.browser, f.utm_source, f.utm_medium, f.utm_campaign, f.utm_content, f.utm_term, f.page,
       f.ad_click, f.robot, f.via
FROM click_cells c JOIN click_links l ON l.id = c.link JOIN click_facts f ON f.id = c.fact;

CREATE TABLE click_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,                 -- Unix seconds
    cell INTEGER NOT NULL,               -- click_cells.id (no foreign key: a check a row, for nothing)
    day TEXT NOT NULL,                   -- YYYY-MM-DD in the business's time zone, else UTC
    visitor TEXT,                        -- visitors.Salts hash: unlinkable once its day's salt is gone
    n INTEGER NOT NULL DEFAULT 1 CHECK (n > 0),       -- identical clicks in the same second
    uniques INTEGER NOT NULL DEFAULT 0 CHECK (uniques <= n)
);
INSERT INTO click_log (id, at, cell, day, visitor, n, uniques)
SELECT k.id, k.at, c.id, k.day, k.visitor, k.n, k.uniques
FROM clicks k JOIN full_cells c ON c.link_kind = k.link_kind AND c.link_key = k.link_key
 AND c.business_id = coalesce(k.business_id, 0) AND c.campaign = coalesce(k.campaign, '')
 AND c.agent_id = coalesce(k.agent_id, 0) AND c.channel = k.channel AND c.source = coalesce(k.source, '')
 AND c.referrer = coalesce(k.referrer_host, '') AND c.device = coalesce(k.device_class, '')
 AND c.os = coalesce(k.os_family, '') AND c.browser = coalesce(k.browser_family, '')
 AND c.utm_source = coalesce(k.utm_source, '') AND c.utm_medium = coalesce(k.utm_medium, '')
 AND c.utm_campaign = coalesce(k.utm_campaign, '') AND c.utm_content = coalesce(k.utm_content, '')
 AND c.utm_term = coalesce(k.utm_term, '') AND c.page = coalesce(k.page_path, '')
 AND c.ad_click = coalesce(k.ad_click, '') AND c.robot = coalesce(k.robot, '') AND c.via = coalesce(k.via, '');
CREATE INDEX click_log_at ON click_log (at);   -- the only index: one by cell cost more than the row

CREATE TABLE cell_days (
    cell INTEGER NOT NULL,
    day TEXT NOT NULL,                   -- YYYY-MM-DD in the business's time zone
    clicks INTEGER NOT NULL DEFAULT 0,   -- people only
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,     -- robots: never in clicks
    PRIMARY KEY (day, cell)
) WITHOUT ROWID;
INSERT INTO cell_days (cell, day, clicks, uniques, bots)
SELECT c.id, d.day, d.clicks, d.uniques, d.bots
FROM link_dimension_days d JOIN full_cells c USING (link_kind, link_key, business_id, campaign, agent_id, channel,
  source, referrer, device, os, browser, utm_source, utm_medium, utm_campaign, utm_content, utm_term, page, ad_click,
  robot, via);

CREATE TABLE link_totals_days (
    link INTEGER NOT NULL,               -- click_links.id
    day TEXT NOT NULL,
    clicks INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, link)
) WITHOUT ROWID;
INSERT INTO link_totals_days (link, day, clicks, uniques, bots)
SELECT l.id, d.day, d.clicks, d.uniques, d.bots
FROM link_days d JOIN click_links l USING (link_kind, link_key, business_id, campaign, agent_id, channel);

CREATE TABLE link_totals_months (
    link INTEGER NOT NULL,
    month TEXT NOT NULL,                 -- YYYY-MM
    clicks INTEGER NOT NULL DEFAULT 0,
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, link)
) WITHOUT ROWID;
INSERT INTO link_totals_months (link, month, clicks, uniques, bots)
SELECT l.id, m.month, m.clicks, m.uniques, m.bots
FROM link_months m JOIN click_links l USING (link_kind, link_key, business_id, campaign, agent_id, channel);

DROP TABLE clicks;
DROP TABLE link_days;
DROP TABLE link_months;
DROP TABLE link_dimension_days;
DELETE FROM dimension_days WHERE scope != 'all';  -- a campaign's, agent's or channel's: from cell_days

-- The old tables' names and columns, for every reader.
CREATE VIEW clicks AS
SELECT k.id, k.at, l.link_kind, l.link_key, l.channel, nullif(l.agent_id, 0) AS agent_id,
       nullif(l.campaign, '') AS campaign, nullif(c.source, '') AS source, nullif(c.utm_source, '') AS utm_source,
       nullif(c.utm_medium, '') AS utm_medium, nullif(c.utm_campaign, '') AS utm_campaign,
       nullif(c.utm_content, '') AS utm_content, nullif(c.utm_term, '') AS utm_term,
       nullif(c.ad_click, '') AS ad_click, nullif(c.referrer, '') AS referrer_host, c.device AS device_class,
       c.os AS os_family, c.browser AS browser_family, nullif(c.page, '') AS page_path,
       nullif(c.robot, '') AS robot, nullif(c.via, '') AS via, nullif(l.business_id, 0) AS business_id, k.day,
       k.visitor, k.n, k.uniques, k.cell
FROM click_log k JOIN click_cells x ON x.id = k.cell JOIN click_links l ON l.id = x.link
JOIN click_facts c ON c.id = x.fact;

CREATE VIEW link_dimension_days AS
SELECT l.link_kind, l.link_key, d.day, l.business_id, l.campaign, l.agent_id, l.channel, f.source, f.referrer,
       f.device, f.os, f.browser, f.utm_source, f.utm_medium, f.utm_campaign, f.utm_content, f.utm_term, f.page,
       f.ad_click, f.robot, f.via, d.clicks, d.uniques, d.bots, d.cell
FROM cell_days d JOIN click_cells c ON c.id = d.cell JOIN click_links l ON l.id = c.link
JOIN click_facts f ON f.id = c.fact;

CREATE VIEW link_days AS
SELECT d.day, l.business_id, l.link_kind, l.link_key, l.campaign, l.agent_id, l.channel, d.clicks, d.uniques,
       d.bots, d.link
FROM link_totals_days d JOIN click_links l ON l.id = d.link;

CREATE VIEW link_months AS
SELECT m.month, l.business_id, l.link_kind, l.link_key, l.campaign, l.agent_id, l.channel, m.clicks, m.uniques,
       m.bots, m.link
FROM link_totals_months m JOIN click_links l ON l.id = m.link;
