-- name: SwitchConversationToEncrypted :one
-- Marks a live conversation encrypted; from then on the messages table
-- refuses its plaintext (see migration 00011). No row for an unknown or
-- deleted conversation.
UPDATE conversations SET encrypted = true
WHERE id = @id AND deleted_at IS NULL
RETURNING id;

-- name: LockPlaintextMessages :many
-- The next chunk of a conversation's plaintext messages after a seq,
-- locked until the sealing transaction commits (an edit waits for it).
SELECT id, seq, content::text AS content FROM messages
WHERE conversation_id = @conversation_id AND seq > @after_seq AND content IS NOT NULL
ORDER BY seq
LIMIT @max_rows
FOR UPDATE;

-- name: SealMessages :execrows
-- Replaces plaintext with ciphertext in place: the same UPDATE drops the
-- content, so no row ever holds both.
UPDATE messages m SET content = NULL, ciphertext = u.ciphertext, key_id = @key_id::text
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@ciphertexts::bytea[]) AS ciphertext) u
WHERE m.id = u.id AND m.content IS NOT NULL;

-- name: DeleteSearchBacklog :execrows
-- Takes messages out of the search backlog. A sweep holding their rows
-- (indexing them at this moment) is waited for, so a search entry it
-- writes is there for DeleteSearchEntries, the next statement, to remove.
DELETE FROM search_backlog WHERE message_id = ANY(@ids::uuid[]);

-- name: DeleteSearchEntries :execrows
DELETE FROM message_search WHERE message_id = ANY(@ids::uuid[]);

-- name: ExportMessages :many
-- A conversation's messages after a seq, in seq order, deleted ones
-- included (an export is the whole record).
SELECT * FROM messages
WHERE conversation_id = @conversation_id AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows;

-- name: LockMessagesNotUnderKey :many
-- The next chunk of a conversation's sealed messages whose key label is
-- not the given one, locked until the re-sealing transaction commits.
SELECT id, seq, ciphertext, key_id::text AS key_id FROM messages
WHERE conversation_id = @conversation_id AND ciphertext IS NOT NULL AND key_id IS DISTINCT FROM @key_id::text
ORDER BY seq
LIMIT @max_rows
FOR UPDATE;

-- name: CountMessagesNotUnderKey :one
SELECT count(*) FROM messages
WHERE conversation_id = @conversation_id AND ciphertext IS NOT NULL AND key_id IS DISTINCT FROM @key_id::text;

-- name: ResealMessages :execrows
-- Replaces ciphertext (and its key label) in place.
UPDATE messages m SET ciphertext = u.ciphertext, key_id = @key_id::text
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@ciphertexts::bytea[]) AS ciphertext) u
WHERE m.id = u.id AND m.ciphertext IS NOT NULL;

-- name: ConversationExists :one
SELECT EXISTS (SELECT 1 FROM conversations WHERE id = @id);

-- name: LockScheduledNotUnderKey :many
-- LockMessagesNotUnderKey for the conversation's sealed scheduled messages
-- (of any status).
SELECT id, ciphertext, key_id::text AS key_id FROM scheduled_messages
WHERE conversation_id = @conversation_id AND ciphertext IS NOT NULL AND key_id IS DISTINCT FROM @key_id::text
ORDER BY id
LIMIT @max_rows
FOR UPDATE;

-- name: CountScheduledNotUnderKey :one
SELECT count(*) FROM scheduled_messages
WHERE conversation_id = @conversation_id AND ciphertext IS NOT NULL AND key_id IS DISTINCT FROM @key_id::text;

-- name: ResealScheduled :execrows
UPDATE scheduled_messages s SET ciphertext = u.ciphertext, key_id = @key_id::text
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@ciphertexts::bytea[]) AS ciphertext) u
WHERE s.id = u.id AND s.ciphertext IS NOT NULL;

-- name: LockPlaintextScheduled :many
-- A chunk of a conversation's scheduled messages still in plaintext,
-- whatever their status (a released one's text is in the message too),
-- locked until the sealing transaction commits (a release waits for it).
SELECT id, content::text AS content FROM scheduled_messages
WHERE conversation_id = @conversation_id AND content IS NOT NULL
ORDER BY id
LIMIT @max_rows
FOR UPDATE;

-- name: SealScheduled :execrows
UPDATE scheduled_messages s SET content = NULL, ciphertext = u.ciphertext, key_id = @key_id::text
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@ciphertexts::bytea[]) AS ciphertext) u
WHERE s.id = u.id AND s.content IS NOT NULL;

-- name: CountPlaintextMessages :one
-- The conversation's messages still stored in plaintext after seq @after_seq.
SELECT count(*)::bigint FROM messages
WHERE conversation_id = @conversation_id AND seq > @after_seq AND content IS NOT NULL;
