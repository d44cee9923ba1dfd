-- +goose Up
-- Group conversations. A conversation is 'direct' (two users, its id
-- derived from theirs) or 'group' (a title and up to GROUP_MAX_MEMBERS
-- members with roles). Every membership change in a group is a system
-- message of its own (messages.event) with its seq, taken under the
-- conversation's row lock like any message, so a member's window of
-- visibility is the seq range [joined_seq, left_seq] and every member's
-- history and resume show who joined or left and when.
ALTER TABLE conversations
    ADD COLUMN kind text NOT NULL DEFAULT 'direct'
        CONSTRAINT conversations_kind_check CHECK (kind IN ('direct', 'group')),
    ADD COLUMN title text
        CONSTRAINT conversations_title_check CHECK (title IS NULL OR char_length(title) BETWEEN 1 AND 200),
    -- Bumped by every membership change, in its transaction: a cached
    -- member list stamped with an older version is never used for a
    -- message sent after the change.
    ADD COLUMN membership_version bigint NOT NULL DEFAULT 0;

ALTER TABLE conversation_participants
    ADD COLUMN role text NOT NULL DEFAULT 'member'
        CONSTRAINT conversation_participants_role_check CHECK (role IN ('owner', 'admin', 'member')),
    -- The member sees messages with joined_seq <= seq (0 in direct
    -- conversations: everything) ...
    ADD COLUMN joined_seq bigint NOT NULL DEFAULT 0
        CONSTRAINT conversation_participants_joined_seq_check CHECK (joined_seq >= 0),
    -- ... and, once they left or were removed, seq <= left_seq (the seq of
    -- the system message that says so). NULL while a member.
    ADD COLUMN left_seq bigint,
    -- Per-member receipt cursors in groups, moved only forward by acks:
    -- one row per member, not one per member per message.
    ADD COLUMN last_delivered_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_read_seq bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT conversation_participants_window_check CHECK (left_seq IS NULL OR left_seq >= joined_seq);

-- A group message has no recipient: its audience is the conversation's
-- members at its seq.
ALTER TABLE messages ALTER COLUMN recipient_id DROP NOT NULL;
-- A system message (a membership change) carries an event instead of a
-- body: {"type": ..., "user_ids": [...], ...}.
ALTER TABLE messages ADD COLUMN event jsonb;
ALTER TABLE messages DROP CONSTRAINT messages_body_check;
ALTER TABLE messages ADD CONSTRAINT messages_body_check CHECK (
    (content IS NOT NULL AND ciphertext IS NULL AND key_id IS NULL AND event IS NULL)
    OR (content IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL AND event IS NULL)
    OR (content IS NULL AND ciphertext IS NULL AND key_id IS NULL AND event IS NOT NULL)
) NOT VALID;
ALTER TABLE messages VALIDATE CONSTRAINT messages_body_check;

-- Current members of a conversation, for the fan-out and the member list.
CREATE INDEX conversation_participants_current_idx ON conversation_participants (conversation_id)
    INCLUDE (user_id) WHERE left_seq IS NULL;

-- +goose Down
DROP INDEX conversation_participants_current_idx;
DELETE FROM messages WHERE recipient_id IS NULL;
ALTER TABLE messages DROP CONSTRAINT messages_body_check;
ALTER TABLE messages DROP COLUMN event;
ALTER TABLE messages ADD CONSTRAINT messages_body_check CHECK (
    (content IS NOT NULL AND ciphertext IS NULL AND key_id IS NULL)
    OR (content IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL)
);
ALTER TABLE messages ALTER COLUMN recipient_id SET NOT NULL;
ALTER TABLE conversation_participants
    DROP CONSTRAINT conversation_participants_window_check,
    DROP COLUMN last_read_seq,
    DROP COLUMN last_delivered_seq,
    DROP COLUMN left_seq,
    DROP COLUMN joined_seq,
    DROP COLUMN role;
DELETE FROM conversations WHERE kind = 'group';
ALTER TABLE conversations DROP COLUMN membership_version, DROP COLUMN title, DROP COLUMN kind;
