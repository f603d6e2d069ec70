-- A chat whose first message carries a ref code that no click has yet keeps the code
-- (chat_starts.ref), and the webhook processor ties it to its click once the click writer has
-- written it (chatstore.match_late_clicks): this index finds those chats, few and recent.
CREATE INDEX IF NOT EXISTS chat_starts_unmatched ON chat_starts (at) WHERE ref IS NOT NULL AND link_kind IS NULL;
