-- +goose Up
-- A conversation switched to encrypted (conversations.encrypted, set by an
-- operator together with the encrypt job that seals its history) takes no
-- new plaintext: every insert path (single sends, broadcasts, released
-- scheduled messages, raw SQL) is refused here, under the same
-- transaction that allocated the seq, so no plaintext message can slip in
-- behind the encrypt job. Callers recognise the constraint name.
-- +goose StatementBegin
CREATE FUNCTION messages_refuse_plaintext_when_encrypted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM conversations c WHERE c.id = NEW.conversation_id AND c.encrypted) THEN
        RAISE EXCEPTION 'conversation % is encrypted: plaintext messages are refused', NEW.conversation_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'messages_encrypted_conversation_check';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER messages_encrypted_conversation_check
    BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.content IS NOT NULL)
    EXECUTE FUNCTION messages_refuse_plaintext_when_encrypted();

-- +goose Down
DROP TRIGGER messages_encrypted_conversation_check ON messages;
DROP FUNCTION messages_refuse_plaintext_when_encrypted();
