-- What erasing a customer keeps, with nothing that names them (found by a new user: an erasure
-- lowered last month's cost estimate and the chats counted by link and campaign): the chats
-- they started, as the stats count them (no time finer than the day, no message, no visitor),
-- and the messages sent to them, as the cost estimate prices them (the country, not the number).
CREATE TABLE erased_chat_starts (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL,
    day TEXT NOT NULL,                       -- YYYY-MM-DD in the business's time zone
    link_kind TEXT,
    link_key TEXT,
    campaign TEXT,
    agent_id INTEGER,
    channel TEXT
);
CREATE INDEX erased_chat_starts_day ON erased_chat_starts (day);

CREATE TABLE erased_sends (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL,
    number_id INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    outbox_id INTEGER NOT NULL,              -- the order it went out in, within a second (the free allowance)
    category TEXT NOT NULL,                  -- marketing, utility, authentication or service
    topic TEXT,
    region TEXT NOT NULL,                    -- the number's country (ISO 3166), or * when unknown
    pricing TEXT                             -- JSON: Meta's pricing object, when it had come
);
CREATE INDEX erased_sends_sent ON erased_sends (sent_at);
