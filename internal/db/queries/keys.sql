-- name: InsertConversationKey :exec
INSERT INTO conversation_keys (conversation_id, kek_id, wrapped_key)
VALUES (@conversation_id, @kek_id, @wrapped_key)
ON CONFLICT (conversation_id) DO NOTHING;

-- name: GetConversationKey :one
SELECT conversation_id, kek_id, wrapped_key FROM conversation_keys WHERE conversation_id = @conversation_id;

-- name: RewrapConversationKey :execrows
UPDATE conversation_keys SET kek_id = @kek_id, wrapped_key = @wrapped_key, rotated_at = now()
WHERE conversation_id = @conversation_id AND kek_id = @old_kek_id;

-- name: ShredDeletedConversationKeys :execrows
-- Crypto-shreds the keys of conversations every participant deleted.
DELETE FROM conversation_keys k
USING conversations c
WHERE c.id = k.conversation_id AND c.deleted_at IS NOT NULL;
