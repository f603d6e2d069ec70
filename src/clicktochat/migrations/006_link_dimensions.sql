-- One link's clicks by a dimension (referrer, device, UTM, ...) from totals instead of the raw
-- rows (issue 11, point 8): a row per link, day and combination of dimension values, with
-- the link_days columns so the same filters apply. One upsert per distinct click row of a
-- batch (not one per dimension), and never more rows than raw rows: far fewer for a busy link,
-- whose clicks share a few referrers, devices and tags. clicks.ClickRecorder writes it in the
-- transaction of the raw rows and the other totals. Kept past the retention, like them.
CREATE TABLE link_dimension_days (
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    day TEXT NOT NULL,                   -- YYYY-MM-DD in the business's time zone
    business_id INTEGER NOT NULL,        -- 0: no business
    campaign TEXT NOT NULL,
    agent_id INTEGER NOT NULL,           -- 0: none
    channel TEXT NOT NULL,
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
    clicks INTEGER NOT NULL DEFAULT 0,   -- people only
    uniques INTEGER NOT NULL DEFAULT 0,
    bots INTEGER NOT NULL DEFAULT 0,     -- robots: never in clicks
    PRIMARY KEY (link_kind, link_key, day, business_id, campaign, agent_id, channel, source, referrer, device, os,
                 browser, utm_source, utm_medium, utm_campaign, utm_content, utm_term, page, ad_click, robot)
) WITHOUT ROWID;

-- Clicks already recorded: from the raw rows still kept (those within the retention).
INSERT INTO link_dimension_days
SELECT link_kind, link_key, day, coalesce(business_id, 0), coalesce(campaign, ''), coalesce(agent_id, 0), channel,
       coalesce(source, ''), coalesce(referrer_host, ''), coalesce(device_class, ''), coalesce(os_family, ''),
       coalesce(browser_family, ''), coalesce(utm_source, ''), coalesce(utm_medium, ''), coalesce(utm_campaign, ''),
       coalesce(utm_content, ''), coalesce(utm_term, ''), coalesce(page_path, ''), coalesce(ad_click, ''),
       coalesce(robot, ''),
       coalesce(sum(n) FILTER (WHERE robot IS NULL), 0), sum(uniques), coalesce(sum(n) FILTER (WHERE robot IS NOT NULL), 0)
FROM clicks
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20;
