-- As migrations/019: a short link's idempotency key and the hash of what was asked.
ALTER TABLE links ADD COLUMN request_key TEXT;
ALTER TABLE links ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX links_request_key ON links (request_key) WHERE request_key IS NOT NULL;
