-- As migrations/017: an admin's role (owner or agent) and the one business an agent answers for.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'agent'));
ALTER TABLE admins ADD COLUMN business_id BIGINT;
