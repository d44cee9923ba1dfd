-- +goose Up
-- Deleting a conversation on one's side hides its messages up to that
-- moment from one's history, resume, search and unread counts: everything
-- with seq at or below hidden_through_seq. Messages that arrive later show
-- as usual (the other side may still write); deleting again hides them too.
ALTER TABLE conversation_participants ADD COLUMN hidden_through_seq bigint NOT NULL DEFAULT 0
    CONSTRAINT conversation_participants_hidden_through_seq_check CHECK (hidden_through_seq >= 0);
UPDATE conversation_participants p SET hidden_through_seq = c.last_seq
FROM conversations c
WHERE c.id = p.conversation_id AND p.deleted_at IS NOT NULL;

-- +goose Down
ALTER TABLE conversation_participants DROP COLUMN hidden_through_seq;
