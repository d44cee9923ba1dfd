-- name: InsertScheduled :one
INSERT INTO scheduled_messages (id, conversation_id, sender_id, recipient_id, content, ciphertext, key_id, priority, send_at)
VALUES (@id, @conversation_id, @sender_id, @recipient_id, sqlc.narg('content'), sqlc.narg('ciphertext'), sqlc.narg('key_id'), @priority, @send_at)
RETURNING *;

-- name: ConversationAdmits :one
-- True when the conversation does not exist yet (it will be created with
-- these two) or both users are its participants.
-- A group admits no direct message.
SELECT NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = @conversation_id::uuid AND c.kind = 'group') AND (
    NOT EXISTS (SELECT 1 FROM conversation_participants p1 WHERE p1.conversation_id = @conversation_id::uuid)
    OR (SELECT count(*) FROM conversation_participants p2
        WHERE p2.conversation_id = @conversation_id::uuid AND p2.user_id IN (@sender_id::uuid, @recipient_id::uuid)) = 2);

-- name: ClaimScheduled :one
-- Takes a pending scheduled message for release, locking it until commit so
-- a concurrent cancel waits and then finds it released.
SELECT * FROM scheduled_messages WHERE id = @id AND status = 'pending' FOR UPDATE;

-- name: MarkScheduledReleased :exec
UPDATE scheduled_messages SET status = 'released', released_at = now(), message_id = @message_id
WHERE id = @id;

-- name: MarkScheduledFailed :exec
UPDATE scheduled_messages SET status = 'failed', failure_reason = @reason WHERE id = @id AND status = 'pending';

-- name: CancelScheduled :one
UPDATE scheduled_messages SET status = 'cancelled', cancelled_at = now()
WHERE id = @id AND sender_id = @sender_id AND status = 'pending'
RETURNING id;

-- name: ListScheduled :many
SELECT * FROM scheduled_messages
WHERE sender_id = @sender_id AND status = 'pending'
ORDER BY send_at, id
LIMIT @max_rows;

-- name: GetScheduled :one
SELECT * FROM scheduled_messages WHERE id = @id;
