-- Where each message came from, not only each chat: every message of a customer that carries an
-- ad's referral (Click-to-WhatsApp ads, Page buttons) or one of our links' ref code, once (by its
-- wamid: Meta's redelivery adds nothing), written in the transaction that applies the message.
-- A chat's start keeps the first (chat_starts); the conversation shows the latest of these.
CREATE TABLE attributions (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    at INTEGER NOT NULL,                     -- when the customer wrote it (Meta's timestamp)
    wamid TEXT NOT NULL UNIQUE,              -- the message that carried it
    ref TEXT,                                -- the ref code found in it
    link_kind TEXT,                          -- from the click the ref code names
    link_key TEXT,
    campaign TEXT,
    agent_id INTEGER,
    channel TEXT,
    click_at INTEGER,
    referral TEXT                            -- JSON: Meta's referral (ad or Page call-to-action)
);
CREATE INDEX attributions_conversation ON attributions (conversation_id, at);
-- Those whose ref code waits for its click (attributionstore.match_late_attributions).
CREATE INDEX attributions_unmatched ON attributions (at) WHERE ref IS NOT NULL AND link_kind IS NULL;
-- What chats' starts said so far is where their first message came from.
INSERT INTO attributions (conversation_id, at, wamid, ref, link_kind, link_key, campaign, agent_id, channel, click_at,
                          referral)
SELECT conversation_id, at, wamid, ref, link_kind, link_key, campaign, agent_id, channel, click_at, referral
FROM chat_starts WHERE ref IS NOT NULL OR referral IS NOT NULL ORDER BY id;
