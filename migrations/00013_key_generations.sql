-- +goose Up
-- A conversation may hold several data keys for a while: re-encrypting its
-- content under a fresh key (rotate with reencrypt_content) adds a newer
-- generation, moves every message to it, then deletes the older ones.
-- New messages are always sealed with the newest. messages.key_id names
-- the generation: 'conversation-key-v<generation>'.
ALTER TABLE conversation_keys ADD COLUMN generation integer NOT NULL DEFAULT 1
    CONSTRAINT conversation_keys_generation_positive CHECK (generation >= 1);
ALTER TABLE conversation_keys DROP CONSTRAINT conversation_keys_pkey;
ALTER TABLE conversation_keys ADD PRIMARY KEY (conversation_id, generation);

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM conversation_keys WHERE generation <> 1) THEN
        RAISE EXCEPTION 'conversation keys past generation 1 exist: going down would make re-encrypted content unreadable';
    END IF;
END $$;
-- +goose StatementEnd
ALTER TABLE conversation_keys DROP CONSTRAINT conversation_keys_pkey;
ALTER TABLE conversation_keys DROP COLUMN generation;
ALTER TABLE conversation_keys ADD PRIMARY KEY (conversation_id);
