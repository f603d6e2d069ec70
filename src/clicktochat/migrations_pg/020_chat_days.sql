-- As migrations/020: chats started a day, by where they came from, counted as they start and
-- moved when what is known of a start changes; an erasure leaves them as they were.
CREATE TABLE chat_days (
    day TEXT NOT NULL,
    business_id BIGINT NOT NULL,
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    campaign TEXT NOT NULL,
    agent_id BIGINT NOT NULL,
    channel TEXT NOT NULL,
    chats BIGINT NOT NULL,
    PRIMARY KEY (day, link_kind, link_key, business_id, campaign, agent_id, channel)
);

INSERT INTO chat_days (day, business_id, link_kind, link_key, campaign, agent_id, channel, chats)
SELECT day, business_id, coalesce(link_kind, ''), coalesce(link_key, ''), coalesce(campaign, ''),
       coalesce(agent_id, 0), coalesce(channel, ''), count(*)
  FROM chat_starts
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
