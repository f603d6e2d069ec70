-- As migrations/018: who asked for each message the business sent.
ALTER TABLE outbox ADD COLUMN sent_by TEXT;
