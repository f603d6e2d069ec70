-- Updates a business starts (issue 10): the approved templates of each number, as Meta last
-- listed them, and one row per notification asked for, tied to its outbox row.

-- A number's message templates, synced from the Graph API (`whatsapp templates sync`). Only
-- APPROVED ones may be queued; the parameter counts are checked before queueing.
CREATE TABLE message_templates (
    number_id INTEGER NOT NULL REFERENCES whatsapp_numbers(id),
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL,                    -- APPROVED, PENDING, REJECTED, PAUSED, DISABLED...
    category TEXT NOT NULL,                  -- MARKETING, UTILITY, AUTHENTICATION
    body_parameters INTEGER NOT NULL,        -- how many {{n}} the body holds
    body TEXT,
    components TEXT NOT NULL,                -- JSON, as Meta gave them
    synced_at INTEGER NOT NULL,
    PRIMARY KEY (number_id, name, language)
) WITHOUT ROWID;

-- A notification: who, about what topic, which template, and the outbox row that sends it.
-- The idempotency key is the caller's: the same key is the same notification, for ever.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL REFERENCES businesses(id),
    number_id INTEGER NOT NULL REFERENCES whatsapp_numbers(id),
    phone TEXT NOT NULL,                     -- E.164 digits, as wa_id
    topic TEXT NOT NULL,
    template TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT NOT NULL,
    parameters TEXT NOT NULL,                -- JSON list of strings
    idempotency_key TEXT NOT NULL,
    outbox_id INTEGER NOT NULL UNIQUE REFERENCES outbox(id),
    source TEXT NOT NULL,                    -- api, cli, dashboard
    created_at INTEGER NOT NULL,
    UNIQUE (business_id, idempotency_key)
);
CREATE INDEX notifications_phone ON notifications (business_id, phone, created_at);
CREATE INDEX notifications_created ON notifications (created_at);
