-- +goose Up
-- Full-text index of plaintext messages, maintained by index-message jobs
-- (encrypted messages are never indexed). Kept apart from messages so the
-- hot write path does not pay for tsvector computation.
CREATE TABLE message_search (
    message_id      uuid        PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL,
    language        regconfig   NOT NULL DEFAULT 'simple',
    document        tsvector    NOT NULL,
    indexed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX message_search_document_idx ON message_search USING gin (document);
CREATE INDEX message_search_conversation_idx ON message_search (conversation_id);

-- +goose Down
DROP TABLE message_search;
