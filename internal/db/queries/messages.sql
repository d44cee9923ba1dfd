-- name: AllocateSeq :one
-- Creates the conversation on first use and takes the next seq under the
-- conversation's row lock: concurrent senders queue here, so seq values are
-- unique and, because a rolled-back increment rolls back too, gap-free.
INSERT INTO conversations AS c (id, last_seq)
VALUES (@conversation_id, 1)
ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1
RETURNING c.last_seq;

-- name: InsertMessage :one
-- Runs after AllocateSeq in the same transaction, so its snapshot sees the
-- participants committed by whoever created the conversation. A conversation
-- without participants (just created by AllocateSeq) gets the sender and the
-- recipient as its two; otherwise the message is written only when both are
-- participants, and no row is returned when they are not.
WITH existing AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE p.user_id IN (@sender_id::uuid, @recipient_id::uuid)) AS matched
    FROM conversation_participants p
    WHERE p.conversation_id = @conversation_id::uuid
), members AS (
    INSERT INTO conversation_participants (conversation_id, user_id)
    SELECT @conversation_id::uuid, u
    FROM existing, unnest(ARRAY[@sender_id::uuid, @recipient_id::uuid]) AS u
    WHERE existing.total = 0
)
INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, priority, content, ciphertext, key_id)
SELECT @id::uuid, @conversation_id::uuid, @sender_id::uuid, @recipient_id::uuid, @seq::bigint, @priority::smallint,
       sqlc.narg('content')::text, sqlc.narg('ciphertext')::bytea, sqlc.narg('key_id')::text
FROM existing
WHERE existing.total = 0 OR existing.matched = 2
RETURNING id, conversation_id, seq, status, created_at;

-- name: GetMessage :one
SELECT * FROM messages WHERE id = @id;

-- name: ListParticipants :many
SELECT user_id FROM conversation_participants
WHERE conversation_id = @conversation_id
ORDER BY user_id;
