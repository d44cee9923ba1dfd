-- +goose Up
-- The attachments a message carries, as its frames show them: a JSON
-- array of {id, content_type, size}, written with the message (NULL when
-- it has none). The attachments' own rows point back at the message
-- (attachments.message_id), which is what grants its recipient access.
ALTER TABLE messages ADD COLUMN attachments jsonb;

-- +goose Down
ALTER TABLE messages DROP COLUMN attachments;
