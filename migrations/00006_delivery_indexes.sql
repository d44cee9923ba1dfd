-- +goose Up
-- Unread counts per recipient and conversation (read_at IS NULL = unread).
CREATE INDEX messages_unread_idx ON messages (recipient_id, conversation_id) WHERE read_at IS NULL;

-- +goose Down
DROP INDEX messages_unread_idx;
