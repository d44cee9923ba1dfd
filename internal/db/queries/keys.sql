-- name: InsertConversationKey :exec
INSERT INTO conversation_keys (conversation_id, generation, kek_id, wrapped_key)
VALUES (@conversation_id, @generation, @kek_id, @wrapped_key)
ON CONFLICT (conversation_id, generation) DO NOTHING;

-- name: GetConversationKey :one
-- The conversation's newest data key: the one new messages are sealed with.
SELECT conversation_id, generation, kek_id, wrapped_key, created_at FROM conversation_keys
WHERE conversation_id = @conversation_id
ORDER BY generation DESC
LIMIT 1;

-- name: GetConversationKeyGeneration :one
SELECT conversation_id, generation, kek_id, wrapped_key, created_at FROM conversation_keys
WHERE conversation_id = @conversation_id AND generation = @generation;

-- name: ListConversationKeys :many
SELECT conversation_id, generation, kek_id, wrapped_key, created_at FROM conversation_keys
WHERE conversation_id = @conversation_id
ORDER BY generation;

-- name: LockConversationKeyGeneration :one
-- Held by a transaction storing a message sealed with this generation, so
-- the generation cannot be retired under it (see RetireOlderConversationKeys).
SELECT generation FROM conversation_keys
WHERE conversation_id = @conversation_id AND generation = @generation
FOR SHARE;

-- name: RewrapConversationKey :execrows
UPDATE conversation_keys SET kek_id = @kek_id, wrapped_key = @wrapped_key, rotated_at = now()
WHERE conversation_id = @conversation_id AND generation = @generation AND kek_id = @old_kek_id;

-- name: RetireOlderConversationKeys :execrows
-- Deletes a conversation's keys older than a generation (after its content
-- moved to that generation). Waits for transactions storing messages
-- sealed with them (they hold LockConversationKeyGeneration).
DELETE FROM conversation_keys
WHERE conversation_id = @conversation_id AND generation < @generation;

-- name: ConversationsNotUnderKEK :many
-- Conversations with a data key (any generation) not wrapped by a
-- key-encryption key: what a rotation to it must visit.
SELECT DISTINCT conversation_id FROM conversation_keys WHERE kek_id <> @kek_id ORDER BY conversation_id;

-- name: ShredDeletedConversationKeys :execrows
-- Crypto-shreds the keys of conversations every participant deleted.
DELETE FROM conversation_keys k
USING conversations c
WHERE c.id = k.conversation_id AND c.deleted_at IS NOT NULL;
