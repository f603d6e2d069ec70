-- Who may do what in the dashboard: an owner everything; an agent the conversations only (of
-- one business when business_id is set), to answer customers without seeing keys, links or
-- anyone's consents. Everyone made before this release is an owner.
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'agent'));
ALTER TABLE admins ADD COLUMN business_id INTEGER;
