-- +goose Up
-- A scheduled message may be held sealed: ciphertext and the label of the
-- key it was sealed with, instead of content (exactly one of the two).
-- Re-encryption moves these to a new key generation as it does messages,
-- and retires no generation a scheduled message still uses.
ALTER TABLE scheduled_messages
    ALTER COLUMN content DROP NOT NULL,
    ADD COLUMN ciphertext bytea,
    ADD COLUMN key_id text,
    ADD CONSTRAINT scheduled_messages_content_check CHECK ((content IS NULL) <> (ciphertext IS NULL)),
    ADD CONSTRAINT scheduled_messages_key_check CHECK ((ciphertext IS NULL) = (key_id IS NULL));

CREATE INDEX scheduled_messages_sealed_idx ON scheduled_messages (conversation_id) WHERE ciphertext IS NOT NULL;

-- +goose Down
DELETE FROM scheduled_messages WHERE ciphertext IS NOT NULL;
DROP INDEX scheduled_messages_sealed_idx;
ALTER TABLE scheduled_messages
    DROP CONSTRAINT scheduled_messages_key_check,
    DROP CONSTRAINT scheduled_messages_content_check,
    DROP COLUMN key_id,
    DROP COLUMN ciphertext,
    ALTER COLUMN content SET NOT NULL;
