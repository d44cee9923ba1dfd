-- +goose Up
CREATE TABLE attachments (
    id           uuid        PRIMARY KEY,
    owner_id     uuid        NOT NULL,
    message_id   uuid        REFERENCES messages (id) ON DELETE SET NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL CHECK (size_bytes >= 0),
    -- Key of the stored object in the attachment store (a relative path for
    -- the local directory store).
    storage_key  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    CONSTRAINT attachments_storage_key_key UNIQUE (storage_key)
);

CREATE INDEX attachments_expires_at_idx ON attachments (expires_at);
CREATE INDEX attachments_message_idx ON attachments (message_id) WHERE message_id IS NOT NULL;

CREATE TYPE batch_status AS ENUM ('pending', 'running', 'completed', 'cancelled', 'failed');

-- A broadcast. Recipients live in batch_recipients, never in job args; the
-- worker advances cursor (the last processed position) in the same
-- transaction as the chunk of messages it creates.
CREATE TABLE batches (
    id             uuid         PRIMARY KEY,
    sender_id      uuid         NOT NULL,
    content        text,
    template       text,
    priority       smallint     NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    chunk_size     integer      NOT NULL DEFAULT 50 CHECK (chunk_size BETWEEN 1 AND 1000),
    chunk_delay_ms integer      NOT NULL DEFAULT 0 CHECK (chunk_delay_ms >= 0),
    status         batch_status NOT NULL DEFAULT 'pending',
    total          integer      NOT NULL DEFAULT 0,
    processed      integer      NOT NULL DEFAULT 0,
    failed         integer      NOT NULL DEFAULT 0,
    cursor         integer      NOT NULL DEFAULT 0,
    current_chunk  integer      NOT NULL DEFAULT 0,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    cancel_requested_at timestamptz,
    CONSTRAINT batches_body_check CHECK (content IS NOT NULL OR template IS NOT NULL)
);

CREATE TABLE batch_recipients (
    batch_id     uuid    NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    position     integer NOT NULL CHECK (position > 0),
    recipient_id uuid    NOT NULL,
    variables    jsonb   NOT NULL DEFAULT '{}',
    message_id   uuid,
    error        text,
    PRIMARY KEY (batch_id, position),
    CONSTRAINT batch_recipients_batch_recipient_key UNIQUE (batch_id, recipient_id)
);

-- +goose Down
DROP TABLE batch_recipients;
DROP TABLE batches;
DROP TYPE batch_status;
DROP TABLE attachments;
