-- The WhatsApp Business Platform side: connected numbers, webhook events stored before they
-- are acknowledged, conversations with their messages and statuses, where each chat came
-- from, the consent ledger, and the outbox of messages waiting to be sent.

-- A business's number on the Cloud API. Secrets are stored because they are used (the token
-- to send, the app secret to check signatures); the API and the dashboard never show them.
-- A disconnected number keeps its row (and its conversations) with the secrets wiped.
CREATE TABLE whatsapp_numbers (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses(id),
    phone_number_id TEXT NOT NULL UNIQUE,
    waba_id TEXT NOT NULL,
    display_phone_number TEXT NOT NULL,      -- digits with country code, as wa.me wants them
    verified_name TEXT,
    access_token TEXT,
    app_secret TEXT,
    verify_token_hash TEXT,                  -- SHA-256: compared, never shown
    connected_at INTEGER NOT NULL,
    disconnected_at INTEGER
);
CREATE INDEX whatsapp_numbers_display ON whatsapp_numbers (display_phone_number);

-- Every signed POST to /webhooks/whatsapp, written before the 200. The same bytes delivered
-- again are one row. `numbers`: the phone number ids whose app secret signed it; only
-- changes for those numbers are applied.
CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    body_hash TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    numbers TEXT NOT NULL,                   -- JSON list of phone_number_id
    processed_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX webhook_events_pending ON webhook_events (next_try_at, id) WHERE processed_at IS NULL;

-- One conversation per (business number, customer). A customer is known by the business-scoped
-- user id, the phone number (wa_id), or both: either may be withheld.
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    number_id INTEGER NOT NULL REFERENCES whatsapp_numbers(id),
    business_id INTEGER NOT NULL,
    wa_id TEXT,
    user_id TEXT,
    name TEXT,
    created_at INTEGER NOT NULL,
    last_inbound_at INTEGER,                 -- the customer-service window runs 24 h from here
    last_message_at INTEGER NOT NULL,
    last_outbound_at INTEGER,
    entry_point_until INTEGER,               -- the free entry point (a chat from an ad or a Page button)
    start_id INTEGER                         -- the latest chat_starts row: where the chat came from
);
CREATE UNIQUE INDEX conversations_wa_id ON conversations (number_id, wa_id) WHERE wa_id IS NOT NULL;
CREATE UNIQUE INDEX conversations_user_id ON conversations (number_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX conversations_recent ON conversations (last_message_at);

-- Each time a customer writes with the window closed (or for the first time) a chat starts;
-- it is tied to the click that led to it (a ref code in the text) or to the ad (referral).
CREATE TABLE chat_starts (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    business_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    day TEXT NOT NULL,                       -- YYYY-MM-DD in the business's time zone
    wamid TEXT NOT NULL UNIQUE,              -- the message that started it
    ref TEXT,                                -- the ref code found in that message
    link_kind TEXT,                          -- from the click the ref code names
    link_key TEXT,
    campaign TEXT,
    agent_id INTEGER,
    channel TEXT,
    click_at INTEGER,
    visitor TEXT,
    referral TEXT                            -- JSON: Meta's referral (ad or Page call-to-action)
);
CREATE INDEX chat_starts_day ON chat_starts (day);
CREATE INDEX chat_starts_conversation ON chat_starts (conversation_id, at);

CREATE TABLE wa_messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    wamid TEXT UNIQUE,                       -- NULL while an outbound message waits in the outbox
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    at INTEGER NOT NULL,
    type TEXT NOT NULL,                      -- text, image, button, interactive, template...
    text TEXT,                               -- text body, button title, or template name
    caption TEXT,
    mime_type TEXT,
    outbox_id INTEGER UNIQUE
);
CREATE INDEX wa_messages_conversation ON wa_messages (conversation_id, at);

-- Statuses of outbound messages, as Meta reports them: each (message, status) once, whatever
-- the order they arrive in; a message's status is the furthest one reached.
CREATE TABLE wa_statuses (
    wamid TEXT NOT NULL,
    number_id INTEGER NOT NULL,              -- the number whose app secret signed it: read only for its messages
    status TEXT NOT NULL,
    at INTEGER NOT NULL,
    recipient TEXT,
    pricing TEXT,                            -- JSON, Meta's pricing object
    error_code INTEGER,
    error_title TEXT,
    callback TEXT,                           -- biz_opaque_callback_data: our outbox id
    PRIMARY KEY (wamid, status)
) WITHOUT ROWID;

-- The consent ledger: entries are only added, never changed. The latest entry for a topic (or
-- for '*', every topic) decides. Customers are keyed by phone number and/or user id.
CREATE TABLE consents (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL,
    phone TEXT,
    user_id TEXT,
    topic TEXT NOT NULL,                     -- '*': marketing and updates, all topics
    state TEXT NOT NULL CHECK (state IN ('in', 'out')),
    at INTEGER NOT NULL,
    source TEXT NOT NULL,                    -- chat (a STOP keyword), meta (131050, user_preferences), api...
    wording TEXT,
    version TEXT,
    proof TEXT                               -- JSON: the message id, the form, the page...
);
CREATE INDEX consents_phone ON consents (business_id, phone, at);
CREATE INDEX consents_user ON consents (business_id, user_id, at);

-- Messages waiting to be sent. One row per intended message: the idempotency key makes a
-- repeated request the same row. The sender claims due rows with a lease.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    number_id INTEGER NOT NULL REFERENCES whatsapp_numbers(id),
    conversation_id INTEGER REFERENCES conversations(id),
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,                   -- the JSON body for the Graph API
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    wamid TEXT,
    error_code INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Chat links carry a ref code in their text: NULL follows the number (on when it is connected).
ALTER TABLE links ADD COLUMN ref_code INTEGER;

-- The ref code a click put in the pre-filled message, and what the chat that follows is tied to.
CREATE TABLE click_refs (
    ref TEXT NOT NULL,
    at INTEGER NOT NULL,
    link_kind TEXT NOT NULL,
    link_key TEXT NOT NULL,
    campaign TEXT,
    agent_id INTEGER,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,                   -- the number the chat was opened with (digits)
    visitor TEXT,
    used_by INTEGER                          -- the chat it started: one click starts one chat
);
CREATE INDEX click_refs_ref ON click_refs (ref, at);
