-- As migrations/015: WhatsApp's ids for Mexico (521...) and old Brazilian mobiles as E.164 digits.
UPDATE conversations SET wa_id = '52' || substr(wa_id, 4)
 WHERE length(wa_id) = 13 AND substr(wa_id, 1, 3) = '521' AND NOT EXISTS (
   SELECT 1 FROM conversations o WHERE o.number_id = conversations.number_id AND o.wa_id = '52' || substr(conversations.wa_id, 4));
UPDATE conversations SET wa_id = substr(wa_id, 1, 4) || '9' || substr(wa_id, 5)
 WHERE length(wa_id) = 12 AND substr(wa_id, 1, 2) = '55' AND substr(wa_id, 5, 1) IN ('6', '8', '9') AND NOT EXISTS (
   SELECT 1 FROM conversations o
    WHERE o.number_id = conversations.number_id AND o.wa_id = substr(conversations.wa_id, 1, 4) || '9' || substr(conversations.wa_id, 5));
UPDATE consents SET phone = '52' || substr(phone, 4) WHERE length(phone) = 13 AND substr(phone, 1, 3) = '521';
UPDATE consents SET phone = substr(phone, 1, 4) || '9' || substr(phone, 5)
 WHERE length(phone) = 12 AND substr(phone, 1, 2) = '55' AND substr(phone, 5, 1) IN ('6', '8', '9');
UPDATE wa_statuses SET recipient = '52' || substr(recipient, 4) WHERE length(recipient) = 13 AND substr(recipient, 1, 3) = '521';
UPDATE wa_statuses SET recipient = substr(recipient, 1, 4) || '9' || substr(recipient, 5)
 WHERE length(recipient) = 12 AND substr(recipient, 1, 2) = '55' AND substr(recipient, 5, 1) IN ('6', '8', '9');

-- The erasures' opt-out markers, found by number or user id among a batch's status recipients
-- (chatstore._erased_among): a status of an erased message is dropped, not kept under them.
CREATE INDEX IF NOT EXISTS consents_erased_phone ON consents (phone) WHERE source = 'erase';
CREATE INDEX IF NOT EXISTS consents_erased_user ON consents (user_id) WHERE source = 'erase';
