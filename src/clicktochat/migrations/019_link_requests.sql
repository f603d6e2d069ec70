-- A short link made with an idempotency key (API `Idempotency-Key`, the dashboard's form): the
-- key and a hash of what was asked, so a retry after a lost answer, or a form sent twice, gets
-- the first link back instead of making a second one.
ALTER TABLE links ADD COLUMN request_key TEXT;
ALTER TABLE links ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX links_request_key ON links (request_key) WHERE request_key IS NOT NULL;
