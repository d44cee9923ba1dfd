-- name: AllocateSeq :one
-- Creates the conversation on first use and takes the next seq under the
-- conversation's row lock: concurrent senders queue here, so seq values are
-- unique and, because a rolled-back increment rolls back too, gap-free.
INSERT INTO conversations AS c (id, last_seq)
VALUES (@conversation_id, 1)
ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1
RETURNING c.last_seq;

-- name: InsertMessage :one
-- Runs after AllocateSeq in the same transaction, as a statement of its own
-- (pipelined with it: one round trip), so its snapshot sees the
-- participants committed by whoever created the conversation while
-- AllocateSeq waited for its row lock; the seq is the one AllocateSeq just
-- took (the conversation's row, locked by this transaction). A conversation
-- without participants (just created by AllocateSeq) gets the sender and the
-- recipient as its two; otherwise the message is written only when both are
-- participants, and no row is returned when they are not, or when every
-- participant deleted the conversation.
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
), inserted AS (
    INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, priority, content, ciphertext, key_id, attachments)
    SELECT @id::uuid, @conversation_id::uuid, @sender_id::uuid, @recipient_id::uuid,
           (SELECT c.last_seq FROM conversations c WHERE c.id = @conversation_id::uuid), @priority::smallint,
           sqlc.narg('content')::text, sqlc.narg('ciphertext')::bytea, sqlc.narg('key_id')::text, sqlc.narg('attachments')::jsonb
    FROM existing
    WHERE (existing.total = 0 OR existing.matched = 2)
      -- A direct message never enters a group (nor a conversation every
      -- participant deleted).
      AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = @conversation_id::uuid AND (c.deleted_at IS NOT NULL OR c.kind = 'group'))
    RETURNING id, conversation_id, seq, status, created_at, content IS NOT NULL AS plaintext
), backlog AS (
    -- A plaintext message waits for the index-pending sweep.
    INSERT INTO search_backlog (message_id) SELECT id FROM inserted WHERE plaintext
)
SELECT id, conversation_id, seq, status, created_at FROM inserted;

-- name: GetMessage :one
SELECT * FROM messages WHERE id = @id;

-- name: GetMessages :many
-- The messages with these ids that exist, in no particular order.
SELECT * FROM messages WHERE id = ANY(@ids::uuid[]);

-- name: ListParticipants :many
SELECT user_id FROM conversation_participants
WHERE conversation_id = @conversation_id
ORDER BY user_id;

-- name: ApplyReceipt :one
-- Records a delivered or read receipt from the message's recipient. State
-- only moves forward (read implies delivered); a receipt that would not
-- advance it returns no row.
UPDATE messages SET
    status       = CASE WHEN @status::text = 'read' THEN 'read'::message_status ELSE 'delivered'::message_status END,
    sent_at      = coalesce(sent_at, @at::timestamptz),
    delivered_at = coalesce(delivered_at, @at::timestamptz),
    read_at      = CASE WHEN @status::text = 'read' THEN coalesce(read_at, @at::timestamptz) ELSE read_at END
WHERE id = @id AND recipient_id = @recipient_id
  AND (status IN ('pending', 'sent', 'failed') OR (status = 'delivered' AND @status::text = 'read'))
RETURNING sender_id, conversation_id, status, delivered_at, read_at;

-- name: GetMessageForRecipient :one
SELECT id, sender_id, status FROM messages WHERE id = @id AND recipient_id = @recipient_id;

-- name: ListConversationMessages :many
SELECT * FROM messages
WHERE conversation_id = @conversation_id AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows;

-- name: ResumeMessages :many
-- Every message of the user's conversations after the given seq per
-- conversation (0 for conversations not listed), after what the user hid
-- by deleting the conversation on their side and within their membership
-- window of a group, ordered by conversation and seq, from the
-- (cursor_conversation, cursor_seq) position on.
WITH req AS (
    SELECT unnest(@conversation_ids::uuid[]) AS conversation_id,
           unnest(@after_seqs::bigint[])    AS after_seq
)
SELECT m.* FROM conversation_participants p
JOIN messages m ON m.conversation_id = p.conversation_id
LEFT JOIN req ON req.conversation_id = p.conversation_id
WHERE p.user_id = @user_id
  AND m.seq > greatest(coalesce(req.after_seq, 0), p.hidden_through_seq, p.joined_seq - 1)
  AND (p.left_seq IS NULL OR m.seq <= p.left_seq)
  AND (m.conversation_id, m.seq) > (@cursor_conversation::uuid, @cursor_seq::bigint)
ORDER BY m.conversation_id, m.seq
LIMIT @max_rows;

-- name: UnreadCounts :many
-- Messages the user deleted with their conversation do not count. In a
-- group, unread is what others wrote after the user's read cursor, within
-- their membership window (system messages do not count).
SELECT m.conversation_id, count(*)::bigint AS unread
FROM messages m
JOIN conversation_participants p ON p.conversation_id = m.conversation_id AND p.user_id = m.recipient_id
WHERE m.recipient_id = @recipient_id AND m.read_at IS NULL AND m.seq > p.hidden_through_seq
GROUP BY m.conversation_id
UNION ALL
SELECT m.conversation_id, count(*)::bigint AS unread
FROM conversation_participants p
JOIN messages m ON m.conversation_id = p.conversation_id
WHERE p.user_id = @recipient_id AND p.left_seq IS NULL AND m.recipient_id IS NULL
  AND m.seq > greatest(p.hidden_through_seq, p.last_read_seq, p.joined_seq - 1)
  AND m.sender_id <> @recipient_id AND m.event IS NULL AND m.deleted_at IS NULL
GROUP BY m.conversation_id;

-- name: AllocateSeqs :many
-- AllocateSeq for many distinct conversations in one statement.
INSERT INTO conversations AS c (id, last_seq)
SELECT unnest(@conversation_ids::uuid[]), 1
ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1
RETURNING c.id, c.last_seq;

-- name: InsertMessages :many
-- InsertMessage for many messages (distinct conversations) in one
-- statement; rows whose sender or recipient is not a participant, or whose
-- conversation every participant deleted, are not written, and the caller
-- compares the ids returned with those sent.
WITH input AS (
    -- Set-returning functions in one select list advance together: row i
    -- takes element i of every array.
    SELECT unnest(@ids::uuid[]) AS id, unnest(@conversation_ids::uuid[]) AS conversation_id,
           unnest(@sender_ids::uuid[]) AS sender_id, unnest(@recipient_ids::uuid[]) AS recipient_id,
           unnest(@seqs::bigint[]) AS seq, unnest(@priorities::smallint[]) AS priority,
           unnest(@contents::text[]) AS content
), counts AS (
    SELECT i.id,
           count(p.user_id) AS total,
           count(p.user_id) FILTER (WHERE p.user_id IN (i.sender_id, i.recipient_id)) AS matched
    FROM input i
    LEFT JOIN conversation_participants p ON p.conversation_id = i.conversation_id
    GROUP BY i.id
), members AS (
    INSERT INTO conversation_participants (conversation_id, user_id)
    SELECT i.conversation_id, u
    FROM input i JOIN counts c ON c.id = i.id, unnest(ARRAY[i.sender_id, i.recipient_id]) AS u
    WHERE c.total = 0
), inserted AS (
    INSERT INTO messages (id, conversation_id, sender_id, recipient_id, seq, priority, content)
    SELECT i.id, i.conversation_id, i.sender_id, i.recipient_id, i.seq, i.priority, i.content
    FROM input i JOIN counts c ON c.id = i.id
    WHERE (c.total = 0 OR c.matched = 2)
      AND NOT EXISTS (SELECT 1 FROM conversations cv WHERE cv.id = i.conversation_id AND (cv.deleted_at IS NOT NULL OR cv.kind = 'group'))
    RETURNING id, created_at
), backlog AS (
    -- Every message here is plaintext: each waits for the index-pending sweep.
    INSERT INTO search_backlog (message_id) SELECT id FROM inserted
)
SELECT id, created_at FROM inserted;

-- name: PendingMessagesBefore :many
-- The oldest messages still pending that were written before @before and
-- come after the cursor (@after_created_at, @after_id), for the
-- deliver-pending sweep (messages_undelivered_idx serves it).
SELECT * FROM messages
WHERE status = 'pending' AND created_at < @before
  AND (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @max_rows;

-- name: DatabaseNow :one
-- Postgres's clock, for cutoffs compared with columns it stamped.
SELECT now()::timestamptz AS now;

-- name: AllocateGroupSeq :one
-- AllocateSeq for a group: the group must exist (groups are created by
-- CreateGroup, never by a first message). Returns the membership version
-- under the same row lock, so the audience of the message is the
-- membership at that version.
UPDATE conversations SET last_seq = last_seq + 1
WHERE id = @id AND kind = 'group' AND deleted_at IS NULL
RETURNING last_seq, membership_version;

-- name: InsertGroupMessage :one
-- InsertMessage for a group: written, with the seq AllocateGroupSeq just
-- took, only when the sender is a current member; no row otherwise.
WITH inserted AS (
    INSERT INTO messages (id, conversation_id, sender_id, seq, priority, content, ciphertext, key_id, attachments)
    SELECT @id::uuid, c.id, p.user_id, c.last_seq, @priority::smallint,
           sqlc.narg('content')::text, sqlc.narg('ciphertext')::bytea, sqlc.narg('key_id')::text, sqlc.narg('attachments')::jsonb
    FROM conversations c
    JOIN conversation_participants p ON p.conversation_id = c.id AND p.user_id = @sender_id::uuid AND p.left_seq IS NULL
    WHERE c.id = @conversation_id::uuid AND c.kind = 'group' AND c.deleted_at IS NULL
    RETURNING id, conversation_id, seq, status, created_at, content IS NOT NULL AS plaintext
), backlog AS (
    INSERT INTO search_backlog (message_id) SELECT id FROM inserted WHERE plaintext
)
SELECT id, conversation_id, seq, status, created_at FROM inserted;
