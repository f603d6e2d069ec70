-- Who asked for each message the business sent: a dashboard user ("admin:ana"), an API key
-- ("api:shop"), the command line ("cli"); NULL for what the app sends itself (a double opt-in's
-- confirmation). A team answering together sees who wrote what.
ALTER TABLE outbox ADD COLUMN sent_by TEXT;
