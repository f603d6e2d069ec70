-- An earlier message of a chat that arrives late moves its start back (chatstore._inbound):
-- without this index that UPDATE read every chat start ever made, once per such message.
CREATE INDEX chat_starts_conversation ON chat_starts (conversation_id, at);
