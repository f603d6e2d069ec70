-- Who wrote each reply: a dashboard user ("admin:ana"), an API key ("api:shop #3"), the command
-- line ("cli"); NULL for replies from before this, and for updates and confirmations. A team
-- answering together sees who wrote what.
ALTER TABLE outbox ADD COLUMN sent_by TEXT;
