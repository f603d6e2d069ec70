-- A number whose access token Meta refused (error 190 or 102: expired, revoked, or otherwise not
-- valid): when, and Meta's refusal in our words (never the token). Its queued messages wait,
-- held, until it is connected again with a new token, which empties both (numberstore.py).
ALTER TABLE whatsapp_numbers ADD COLUMN token_refused_at INTEGER;
ALTER TABLE whatsapp_numbers ADD COLUMN token_error TEXT;
