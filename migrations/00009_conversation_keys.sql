-- +goose Up
-- Each encrypted conversation's data key, wrapped by a key-encryption key
-- (named by kek_id) that lives only in configuration. Deleting the row
-- crypto-shreds the conversation: its ciphertext can no longer be opened.
CREATE TABLE conversation_keys (
    conversation_id uuid        PRIMARY KEY,
    kek_id          text        NOT NULL,
    wrapped_key     bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz
);

-- +goose Down
DROP TABLE conversation_keys;
