-- Chats started a day, by where they came from (the link, campaign, agent and channel of the
-- click that opened them; blanks for a chat no click opened), counted as they start and moved
-- when what is known of a start changes (an earlier first message, a click written late). The
-- stats read these, not chat_starts, so a person's erasure (which deletes their chat starts)
-- leaves the counts as they were: nothing here names anyone, and nothing tells an erased
-- person's chats from the others'.
CREATE TABLE chat_days (
    day TEXT NOT NULL,                   -- YYYY-MM-DD in the business's time zone
    business_id INTEGER NOT NULL,
    link_kind TEXT NOT NULL,             -- '' for a chat no click opened
    link_key TEXT NOT NULL,
    campaign TEXT NOT NULL,
    agent_id INTEGER NOT NULL,           -- 0: none
    channel TEXT NOT NULL,
    chats INTEGER NOT NULL,
    PRIMARY KEY (day, link_kind, link_key, business_id, campaign, agent_id, channel)
) WITHOUT ROWID;

INSERT INTO chat_days (day, business_id, link_kind, link_key, campaign, agent_id, channel, chats)
SELECT day, business_id, coalesce(link_kind, ''), coalesce(link_key, ''), coalesce(campaign, ''),
       coalesce(agent_id, 0), coalesce(channel, ''), count(*)
  FROM chat_starts
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
