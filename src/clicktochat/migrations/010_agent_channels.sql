-- Issue 14: an agent may have several channels (WhatsApp and Telegram, say), one address on each.
-- agents.channel and agents.address stay, meaning the agent's first channel (position 0): the
-- store writes both in the same transaction, so older readers and the stats keep working.

CREATE TABLE agent_channels (
    agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,           -- a name of channels.CHANNELS
    address TEXT NOT NULL,           -- as that channel's normalize() gave it
    position INTEGER NOT NULL,       -- 0: the agent's first channel, the one agents.channel names
    PRIMARY KEY (agent_id, channel),
    UNIQUE (agent_id, position)
) WITHOUT ROWID;

-- Every agent so far had exactly one channel.
INSERT INTO agent_channels (agent_id, channel, address, position) SELECT id, channel, address, 0 FROM agents;

-- Which channels a business offers moves with these rows: running servers must drop their cache.
CREATE TRIGGER agent_channels_insert AFTER INSERT ON agent_channels
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER agent_channels_update AFTER UPDATE ON agent_channels
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
CREATE TRIGGER agent_channels_delete AFTER DELETE ON agent_channels
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'routing_version'; END;
