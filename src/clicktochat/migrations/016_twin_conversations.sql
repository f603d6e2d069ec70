-- Migration 015 left a conversation kept in Meta's form of a number (521..., a Brazilian mobile
-- without its ninth digit) beside its E.164 twin when both existed: one person, two
-- conversations in the dashboard. Each such pair becomes one, the E.164 one: the twin's
-- messages, chat starts and outbox rows move to it, and it keeps the earliest start of the
-- chat, the latest message, window and entry point, the user id either held, the name last
-- given. A pair holding two different user ids is left apart (two accounts, not one).
CREATE TEMP TABLE twins AS
SELECT t.id AS twin, e.id AS keep
  FROM conversations t JOIN conversations e ON e.number_id = t.number_id AND e.id <> t.id
 WHERE ((length(t.wa_id) = 13 AND substr(t.wa_id, 1, 3) = '521' AND e.wa_id = '52' || substr(t.wa_id, 4))
     OR (length(t.wa_id) = 12 AND substr(t.wa_id, 1, 2) = '55' AND substr(t.wa_id, 5, 1) IN ('6', '8', '9')
         AND e.wa_id = substr(t.wa_id, 1, 4) || '9' || substr(t.wa_id, 5)))
   AND (t.user_id IS NULL OR e.user_id IS NULL OR t.user_id = e.user_id);

UPDATE wa_messages SET conversation_id = (SELECT keep FROM twins WHERE twin = wa_messages.conversation_id)
 WHERE conversation_id IN (SELECT twin FROM twins);
UPDATE chat_starts SET conversation_id = (SELECT keep FROM twins WHERE twin = chat_starts.conversation_id)
 WHERE conversation_id IN (SELECT twin FROM twins);
UPDATE outbox SET conversation_id = (SELECT keep FROM twins WHERE twin = outbox.conversation_id)
 WHERE conversation_id IN (SELECT twin FROM twins);

CREATE TEMP TABLE merged AS
SELECT k.id AS id,
       coalesce(k.user_id, t.user_id) AS user_id,
       CASE WHEN coalesce(t.last_inbound_at, 0) > coalesce(k.last_inbound_at, 0)
            THEN coalesce(t.name, k.name) ELSE coalesce(k.name, t.name) END AS name,
       CASE WHEN t.created_at < k.created_at THEN t.created_at ELSE k.created_at END AS created_at,
       CASE WHEN k.last_inbound_at IS NULL OR t.last_inbound_at > k.last_inbound_at
            THEN t.last_inbound_at ELSE k.last_inbound_at END AS last_inbound_at,
       CASE WHEN t.last_message_at > k.last_message_at THEN t.last_message_at ELSE k.last_message_at END
         AS last_message_at,
       CASE WHEN k.last_outbound_at IS NULL OR t.last_outbound_at > k.last_outbound_at
            THEN t.last_outbound_at ELSE k.last_outbound_at END AS last_outbound_at,
       CASE WHEN k.entry_point_until IS NULL OR t.entry_point_until > k.entry_point_until
            THEN t.entry_point_until ELSE k.entry_point_until END AS entry_point_until,
       (SELECT s.id FROM chat_starts s WHERE s.id = k.start_id OR s.id = t.start_id
         ORDER BY s.at DESC, s.id DESC LIMIT 1) AS start_id
  FROM twins w JOIN conversations k ON k.id = w.keep JOIN conversations t ON t.id = w.twin;

DELETE FROM conversations WHERE id IN (SELECT twin FROM twins);
UPDATE conversations
   SET (user_id, name, created_at, last_inbound_at, last_message_at, last_outbound_at, entry_point_until, start_id)
     = (SELECT user_id, name, created_at, last_inbound_at, last_message_at, last_outbound_at, entry_point_until,
               start_id FROM merged WHERE merged.id = conversations.id)
 WHERE id IN (SELECT id FROM merged);

DROP TABLE merged;
DROP TABLE twins;
