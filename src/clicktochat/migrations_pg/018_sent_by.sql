-- As migrations/018: who wrote each reply.
ALTER TABLE outbox ADD COLUMN sent_by TEXT;
