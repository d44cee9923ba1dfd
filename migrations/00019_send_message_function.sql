-- +goose Up
-- msgrunner.send_message: the transactional outbox for services in any
-- language. Called inside the service's own transaction, it writes what
-- outbox.SendTx writes for a plaintext direct message: the conversation's
-- next seq (the conversation and its two participants on first use), the
-- message row, its search backlog row, a send-message job and a
-- send-notification job at the message's priority, and River's insert
-- notification for their queues. It never commits: the message and its jobs
-- commit with the caller's own writes or not at all.
--
-- It refuses what POST /v1/messages refuses, before writing anything the
-- caller's transaction would keep, with an SQLSTATE per API error code:
--   MR400 invalid_field          (COLUMN names the field)
--   MR403 not_participant
--   MR409 id_taken               (COLUMN is id)
--   MR501 encryption_unavailable (an encrypted conversation: its messages
--                                 are sealed by the gateway or outbox.Send)
-- The message text starts with the API code. Encrypted messages and
-- attachments go through the HTTP API or the Go outbox.
--
-- pgcrypto provides SHA-1 for the direct conversation id (a UUIDv5, as
-- outbox.DirectConversationID computes it). It is a trusted extension: the
-- database owner may create it.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE SCHEMA IF NOT EXISTS msgrunner;

-- What send_message returns: the stored message.
CREATE TYPE msgrunner.sent_message AS (
    id              uuid,
    conversation_id uuid,
    seq             bigint,
    status          text,
    created_at      timestamptz
);

-- +goose StatementBegin
-- The conversation two users share for direct messages: UUIDv5 of the two
-- ids in byte order under the project's namespace.
CREATE FUNCTION msgrunner.direct_conversation_id(a uuid, b uuid) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    h bytea;
BEGIN
    IF a > b THEN
        h := digest(uuid_send('8f2b6f0e-3c1a-4d7e-9b8a-6e5d4c3b2a19'::uuid) || uuid_send(b) || uuid_send(a), 'sha1');
    ELSE
        h := digest(uuid_send('8f2b6f0e-3c1a-4d7e-9b8a-6e5d4c3b2a19'::uuid) || uuid_send(a) || uuid_send(b), 'sha1');
    END IF;
    h := substring(h FROM 1 FOR 16);
    h := set_byte(h, 6, (get_byte(h, 6) & 15) | 80);   -- version 5
    h := set_byte(h, 8, (get_byte(h, 8) & 63) | 128);  -- RFC 4122 variant
    RETURN encode(h, 'hex')::uuid;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- A time-ordered message id (UUIDv7), as the Go outbox gives a message
-- without one: 48 bits of Unix milliseconds, then random bits.
CREATE FUNCTION msgrunner.new_message_id() RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    h bytea := uuid_send(gen_random_uuid());
BEGIN
    h := overlay(h PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6);
    h := set_byte(h, 6, (get_byte(h, 6) & 15) | 112);  -- version 7
    RETURN encode(h, 'hex')::uuid;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION msgrunner.send_message(
    sender_id       uuid,
    recipient_id    uuid,
    content         text,
    priority        text DEFAULT 'normal',
    id              uuid DEFAULT NULL,
    conversation_id uuid DEFAULT NULL
) RETURNS msgrunner.sent_message
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    max_bytes  int := coalesce(nullif(current_setting('msgrunner.max_content_bytes', true), '')::int, 65536);
    prio       smallint;
    conv       uuid;
    msg_id     uuid := send_message.id;
    seq        bigint;
    deleted    boolean;
    encrypted  boolean;
    total      bigint;
    matched    bigint;
    stored     messages%ROWTYPE;
    result     msgrunner.sent_message;
BEGIN
    -- The checks POST /v1/messages makes, in its order.
    IF send_message.sender_id IS NULL OR send_message.sender_id = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'invalid_field: sender_id is required (a non-nil UUID)' USING ERRCODE = 'MR400', COLUMN = 'sender_id';
    END IF;
    IF send_message.recipient_id IS NULL OR send_message.recipient_id = '00000000-0000-0000-0000-000000000000' THEN
        RAISE EXCEPTION 'invalid_field: recipient_id is required (a non-nil UUID)' USING ERRCODE = 'MR400', COLUMN = 'recipient_id';
    END IF;
    IF send_message.recipient_id = send_message.sender_id THEN
        RAISE EXCEPTION 'invalid_field: recipient_id must differ from sender_id' USING ERRCODE = 'MR400', COLUMN = 'recipient_id';
    END IF;
    conv := msgrunner.direct_conversation_id(send_message.sender_id, send_message.recipient_id);
    IF send_message.conversation_id IS NOT NULL AND send_message.conversation_id <> conv THEN
        RAISE EXCEPTION 'not_participant: this is not the conversation of the sender and the recipient (msgrunner.direct_conversation_id gives it)'
            USING ERRCODE = 'MR403', COLUMN = 'conversation_id';
    END IF;
    prio := CASE lower(coalesce(send_message.priority, 'normal'))
        WHEN 'critical' THEN 1 WHEN 'high' THEN 2 WHEN 'normal' THEN 3 WHEN 'low' THEN 4 END;
    IF prio IS NULL THEN
        RAISE EXCEPTION 'invalid_field: priority must be one of critical, high, normal or low'
            USING ERRCODE = 'MR400', COLUMN = 'priority';
    END IF;
    -- Blank is what Go's strings.TrimSpace leaves empty: Unicode white space.
    IF send_message.content IS NULL
       OR send_message.content ~ '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$' THEN
        RAISE EXCEPTION 'invalid_field: content must not be empty' USING ERRCODE = 'MR400', COLUMN = 'content';
    END IF;
    IF octet_length(send_message.content) > max_bytes THEN
        RAISE EXCEPTION 'invalid_field: content is % bytes, over the limit of %', octet_length(send_message.content), max_bytes
            USING ERRCODE = 'MR400', COLUMN = 'content';
    END IF;

    IF msg_id IS NULL OR msg_id = '00000000-0000-0000-0000-000000000000' THEN
        msg_id := msgrunner.new_message_id();
    ELSE
        -- A retry with the same id answers from the stored message.
        SELECT * INTO stored FROM messages m WHERE m.id = msg_id;
        IF FOUND THEN
            IF stored.sender_id <> send_message.sender_id OR stored.conversation_id <> conv THEN
                RAISE EXCEPTION 'id_taken: this message id is already used by another message'
                    USING ERRCODE = 'MR409', COLUMN = 'id';
            END IF;
            result := (stored.id, stored.conversation_id, stored.seq, stored.status::text, stored.created_at);
            RETURN result;
        END IF;
    END IF;

    -- The conversation's next seq under its row lock (created on first use);
    -- a refusal below rolls the increment back with the caller's transaction.
    INSERT INTO conversations AS c (id, last_seq) VALUES (conv, 1)
    ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1
    RETURNING c.last_seq, c.deleted_at IS NOT NULL, c.encrypted INTO seq, deleted, encrypted;

    -- A statement of its own, so it sees the participants committed by
    -- whoever created the conversation while this one waited for the lock.
    SELECT count(*), count(*) FILTER (WHERE p.user_id IN (send_message.sender_id, send_message.recipient_id))
    INTO total, matched
    FROM conversation_participants p WHERE p.conversation_id = conv;
    IF deleted OR (total > 0 AND matched < 2) THEN
        RAISE EXCEPTION 'not_participant: the sender or the recipient is not a participant of the conversation, or every participant deleted it'
            USING ERRCODE = 'MR403', COLUMN = 'conversation_id';
    END IF;
    IF encrypted THEN
        RAISE EXCEPTION 'encryption_unavailable: the conversation is encrypted; send through the gateway or outbox.Send, which seal the message'
            USING ERRCODE = 'MR501';
    END IF;
    IF total = 0 THEN
        INSERT INTO conversation_participants (conversation_id, user_id)
        VALUES (conv, send_message.sender_id), (conv, send_message.recipient_id);
    END IF;

    -- ON CONFLICT waits for a concurrent send of the same id to commit or
    -- roll back (no subtransaction, so a service may send many messages in
    -- one transaction).
    INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, priority, content)
    VALUES (msg_id, conv, send_message.sender_id, send_message.recipient_id, seq, prio, send_message.content)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, conversation_id, seq, status::text, created_at INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'id_taken: a message with this id was stored by another transaction meanwhile; a retry of the whole transaction answers from it'
            USING ERRCODE = 'MR409', COLUMN = 'id';
    END IF;

    INSERT INTO search_backlog (message_id) VALUES (msg_id);

    -- The jobs outbox.SendTx inserts through River (jobs.SendMessageArgs,
    -- jobs.SendNotificationArgs), at the message's priority; the parity test
    -- compares their rows.
    INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
    VALUES (jsonb_build_object('message_id', msg_id), 'send-message', 5, prio, 'message-delivery', 'available', now()),
           (jsonb_build_object('message_id', msg_id, 'recipient_id', send_message.recipient_id),
            'send-notification', 3, prio, 'message-notification', 'available', now());
    -- River's insert notification, so runners listening fetch at once
    -- (Postgres sends one per distinct payload at commit).
    PERFORM pg_notify(current_schema() || '.river_insert', '{"queue": "message-delivery"}');
    PERFORM pg_notify(current_schema() || '.river_insert', '{"queue": "message-notification"}');

    RETURN result;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION msgrunner.send_message(uuid, uuid, text, text, uuid, uuid);
DROP FUNCTION msgrunner.new_message_id();
DROP FUNCTION msgrunner.direct_conversation_id(uuid, uuid);
DROP TYPE msgrunner.sent_message;
DROP SCHEMA msgrunner;
