-- Issue 10: what each topic is called on an opt-in form, per language
-- ({"it": {"orders": "Ordini"}}); a topic without one is shown by its name.
ALTER TABLE optin_forms ADD COLUMN topic_labels TEXT NOT NULL DEFAULT '{}';
