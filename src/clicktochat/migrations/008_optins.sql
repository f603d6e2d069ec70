-- Opt-ins (issue 10, the places people opt in; 007 is the notifications'): the forms that ask for consent, and the
-- double opt-in requests waiting for the customer's "Yes". The consent ledger itself stays
-- `consents` (005): a confirmed request adds its `in` entry there; nothing here replaces it.

-- A form asks for consent in the business's words: one sentence per language, with a version
-- that changes whenever the words do (a consent names the version it was given under).
CREATE TABLE optin_forms (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,                -- /optin/{slug}
    business_id INTEGER NOT NULL REFERENCES businesses(id),
    title TEXT,                               -- shown above the form; NULL: the business's name
    topics TEXT NOT NULL,                     -- JSON list of topic names, e.g. ["orders", "offers"]
    wording TEXT NOT NULL,                    -- JSON {language: consent sentence}
    version INTEGER NOT NULL DEFAULT 1,       -- bumped by every change of the wording
    languages TEXT NOT NULL,                  -- JSON list, the first is the default
    double_optin INTEGER NOT NULL DEFAULT 0,  -- 1: pending until the customer confirms in WhatsApp
    template TEXT,                            -- the confirmation template's name...
    template_language TEXT,                   -- ...and language code (e.g. en_US)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX optin_forms_business ON optin_forms (business_id);

-- Double opt-in: a request is `pending` until the customer taps "Yes" or writes back (then
-- `confirmed`, with its consent entry), or until it lapses. One pending request per (business,
-- number) at a time; a confirmation message at most once a day per number (`confirmation_at`).
CREATE TABLE optin_requests (
    id INTEGER PRIMARY KEY,
    business_id INTEGER NOT NULL,
    form_id INTEGER REFERENCES optin_forms(id),
    phone TEXT NOT NULL,                      -- E.164 digits, as wa_id
    topic TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'lapsed', 'refused')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    wording TEXT NOT NULL,
    version TEXT NOT NULL,
    proof TEXT,                               -- JSON: form, page, visitor hash (never an address)
    confirmation_at INTEGER,                  -- when a confirmation message was queued
    outbox_id INTEGER,
    decided_at INTEGER,
    consent_id INTEGER                        -- the `in` entry a confirmation added
);
CREATE UNIQUE INDEX optin_requests_pending ON optin_requests (business_id, phone) WHERE state = 'pending';
CREATE INDEX optin_requests_phone ON optin_requests (phone, confirmation_at);

-- The dashboard's consent list: newest first, per business.
CREATE INDEX consents_recent ON consents (business_id, at);
