-- +goose Up
-- Conversations hold the per-conversation sequence counter: the outbox
-- increments last_seq under the row lock, so concurrent senders get unique,
-- gap-free seq values.
CREATE TABLE conversations (
    id          uuid        PRIMARY KEY,
    last_seq    bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    encrypted   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

CREATE TABLE conversation_participants (
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    -- Set when this participant deletes the conversation on their side.
    deleted_at      timestamptz,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE INDEX conversation_participants_user_idx ON conversation_participants (user_id);

CREATE TYPE message_status AS ENUM ('pending', 'sent', 'delivered', 'read', 'failed');

CREATE TABLE messages (
    id              uuid           PRIMARY KEY,
    conversation_id uuid           NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id       uuid           NOT NULL,
    recipient_id    uuid           NOT NULL,
    seq             bigint         NOT NULL CHECK (seq > 0),
    priority        smallint       NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    -- Exactly one of content (plaintext) or ciphertext (AES-256-GCM, with the
    -- id of the conversation data key that sealed it) is set.
    content         text,
    ciphertext      bytea,
    key_id          text,
    status          message_status NOT NULL DEFAULT 'pending',
    failure_reason  text,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    delivered_at    timestamptz,
    read_at         timestamptz,
    failed_at       timestamptz,
    edited_at       timestamptz,
    deleted_at      timestamptz,
    CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq),
    CONSTRAINT messages_body_check CHECK (
        (content IS NOT NULL AND ciphertext IS NULL AND key_id IS NULL)
        OR (content IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL)
    ),
    CONSTRAINT messages_sender_recipient_check CHECK (sender_id <> recipient_id)
);

-- Catch-up ("resume") reads a recipient's messages after a seq per conversation.
CREATE INDEX messages_recipient_conversation_seq_idx ON messages (recipient_id, conversation_id, seq);
-- Retention cleanup scans by age.
CREATE INDEX messages_created_at_idx ON messages (created_at);
-- Reports and stuck-delivery checks look at messages not yet delivered.
CREATE INDEX messages_undelivered_idx ON messages (status, created_at) WHERE status IN ('pending', 'sent', 'failed');

-- +goose Down
DROP TABLE messages;
DROP TYPE message_status;
DROP TABLE conversation_participants;
DROP TABLE conversations;
