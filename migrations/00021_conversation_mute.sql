-- +goose Up
-- A participant may mute a conversation until a time: push, email and SMS
-- notifications of its messages are suppressed for them meanwhile, in-app
-- ones are not.
ALTER TABLE conversation_participants ADD COLUMN muted_until timestamptz;

-- +goose Down
ALTER TABLE conversation_participants DROP COLUMN muted_until;
