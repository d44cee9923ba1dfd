-- name: DeleteOldMessages :execrows
-- Deletes up to @max_rows delivered or read messages created before
-- @before that no live job still refers to. A group message is done once
-- sent (its receipts are its members' cursors).
DELETE FROM messages WHERE id IN (
    SELECT m.id FROM messages m
    WHERE m.created_at < @before::timestamptz
      AND (m.status IN ('delivered', 'read') OR (m.recipient_id IS NULL AND m.status = 'sent'))
      AND NOT EXISTS (
          SELECT 1 FROM river_job j
          WHERE j.args @> jsonb_build_object('message_id', m.id::text)
            AND j.state IN ('available', 'running', 'retryable', 'scheduled', 'pending'))
    ORDER BY m.created_at
    LIMIT @max_rows
    FOR UPDATE SKIP LOCKED
);

-- name: CountOldMessages :one
SELECT count(*)::bigint FROM messages m
WHERE m.created_at < @before::timestamptz
  AND (m.status IN ('delivered', 'read') OR (m.recipient_id IS NULL AND m.status = 'sent'))
  AND NOT EXISTS (
      SELECT 1 FROM river_job j
      WHERE j.args @> jsonb_build_object('message_id', m.id::text)
        AND j.state IN ('available', 'running', 'retryable', 'scheduled', 'pending'));

-- name: MarkConversationDeletedFor :one
-- Marks the conversation deleted for one participant (hiding its messages
-- so far from them), and for everyone once every participant has; returns
-- whether it is now deleted for all.
WITH mine AS (
    UPDATE conversation_participants cp SET deleted_at = coalesce(cp.deleted_at, now()),
        hidden_through_seq = greatest(cp.hidden_through_seq,
            (SELECT c.last_seq FROM conversations c WHERE c.id = @conversation_id::uuid))
    WHERE cp.conversation_id = @conversation_id::uuid AND cp.user_id = @user_id::uuid
    RETURNING cp.conversation_id
), others AS (
    SELECT count(*) AS left_open FROM conversation_participants p
    WHERE p.conversation_id = @conversation_id::uuid AND p.user_id <> @user_id::uuid AND p.deleted_at IS NULL
), conv AS (
    UPDATE conversations c SET deleted_at = coalesce(c.deleted_at, now())
    FROM mine, others
    WHERE c.id = mine.conversation_id AND others.left_open = 0
    RETURNING c.id
)
SELECT (SELECT count(*) FROM mine)::bigint AS marked, (SELECT count(*) FROM conv)::bigint AS deleted_for_all;

-- name: DeleteDeletedConversationMessages :execrows
-- Deletes up to @max_rows messages of conversations every participant
-- deleted (or, for a group, left): delivered, read, failed (final),
-- sender-deleted or sent group messages, never one still on its way or
-- with a live job.
DELETE FROM messages WHERE id IN (
    SELECT m.id FROM messages m
    JOIN conversations c ON c.id = m.conversation_id AND c.deleted_at IS NOT NULL
    WHERE (m.status IN ('delivered', 'read', 'failed') OR m.deleted_at IS NOT NULL OR (m.recipient_id IS NULL AND m.status = 'sent'))
      AND NOT EXISTS (
          SELECT 1 FROM river_job j
          WHERE j.args @> jsonb_build_object('message_id', m.id::text)
            AND j.state IN ('available', 'running', 'retryable', 'scheduled', 'pending'))
    ORDER BY m.conversation_id, m.seq
    LIMIT @max_rows
    FOR UPDATE OF m SKIP LOCKED
);

-- name: DeleteEmptyDeletedConversations :execrows
DELETE FROM conversations c
WHERE c.id IN (
    SELECT c2.id FROM conversations c2
    WHERE c2.deleted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c2.id)
    LIMIT @max_rows
);

-- name: CountDeletedConversationMessages :one
SELECT count(*)::bigint FROM messages m
JOIN conversations c ON c.id = m.conversation_id AND c.deleted_at IS NOT NULL
WHERE (m.status IN ('delivered', 'read', 'failed') OR m.deleted_at IS NOT NULL OR (m.recipient_id IS NULL AND m.status = 'sent'))
  AND NOT EXISTS (
      SELECT 1 FROM river_job j
      WHERE j.args @> jsonb_build_object('message_id', m.id::text)
        AND j.state IN ('available', 'running', 'retryable', 'scheduled', 'pending'));

-- name: ExpiredAttachments :many
SELECT id, storage_key FROM attachments
WHERE expires_at < @now::timestamptz
ORDER BY expires_at
LIMIT @max_rows;

-- name: CountExpiredAttachments :one
SELECT count(*)::bigint FROM attachments WHERE expires_at < @now::timestamptz;

-- name: DeleteAttachments :execrows
DELETE FROM attachments WHERE id = ANY(@ids::uuid[]);

-- name: InsertAttachment :one
INSERT INTO attachments (id, owner_id, content_type, size_bytes, storage_key, expires_at)
VALUES (@id, @owner_id, @content_type, @size_bytes, @storage_key, @expires_at)
RETURNING *;

-- name: GetAttachment :one
SELECT * FROM attachments WHERE id = @id;

-- name: LockAttachmentsForMessage :many
-- The attachments with these ids that @owner_id may attach to message
-- @message_id: theirs, not attached to another message, not expired (one
-- already attached to this very message is a retried send, which then
-- finds the message stored). Locked until the transaction ends, so two
-- messages cannot take the same one.
SELECT id, content_type, size_bytes FROM attachments
WHERE id = ANY(@ids::uuid[]) AND owner_id = @owner_id
  AND (message_id IS NULL OR message_id = @message_id::uuid) AND expires_at > now()
ORDER BY id
FOR UPDATE;

-- name: LinkAttachments :execrows
UPDATE attachments SET message_id = @message_id WHERE id = ANY(@ids::uuid[]);
