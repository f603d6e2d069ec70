-- As migrations/021: a number whose access token Meta refused, and why.
ALTER TABLE whatsapp_numbers ADD COLUMN token_refused_at BIGINT;
ALTER TABLE whatsapp_numbers ADD COLUMN token_error TEXT;
