-- As migrations/014: the chats whose ref code waits for its click (chatstore.match_late_clicks).
CREATE INDEX IF NOT EXISTS chat_starts_unmatched ON chat_starts (at) WHERE ref IS NOT NULL AND link_kind IS NULL;
