-- name: InsertBatch :one
INSERT INTO batches (id, sender_id, content, template, priority, chunk_size, chunk_delay_ms, total)
VALUES (@id, @sender_id, sqlc.narg('content'), sqlc.narg('template'), @priority, @chunk_size, @chunk_delay_ms, @total)
RETURNING *;

-- name: InsertBatchRecipients :copyfrom
INSERT INTO batch_recipients (batch_id, position, recipient_id, variables) VALUES (@batch_id, @position, @recipient_id, @variables);

-- name: GetBatch :one
SELECT * FROM batches WHERE id = @id;

-- name: GetBatchForUpdate :one
SELECT * FROM batches WHERE id = @id FOR UPDATE;

-- name: BatchChunk :many
-- The next chunk of recipients after the cursor.
SELECT position, recipient_id, variables FROM batch_recipients
WHERE batch_id = @batch_id AND position > @after_position
ORDER BY position
LIMIT @max_rows;

-- name: MarkBatchRecipients :exec
UPDATE batch_recipients r
SET message_id = nullif(t.message_id, '00000000-0000-0000-0000-000000000000'::uuid), error = nullif(t.error, '')
FROM (SELECT unnest(@positions::int[]) AS position, unnest(@message_ids::uuid[]) AS message_id,
             unnest(@errors::text[]) AS error) t
WHERE r.batch_id = @batch_id AND r.position = t.position;

-- name: AdvanceBatch :exec
UPDATE batches SET cursor = @cursor, processed = processed + @processed, failed = failed + @failed,
    current_chunk = current_chunk + 1, status = 'running', started_at = coalesce(started_at, now())
WHERE id = @id;

-- name: FinishBatch :exec
UPDATE batches SET status = @status::batch_status, finished_at = now() WHERE id = @id AND status IN ('pending', 'running');

-- name: RequestBatchCancel :one
UPDATE batches SET cancel_requested_at = coalesce(cancel_requested_at, now())
WHERE id = @id AND sender_id = @sender_id
RETURNING status::text AS status;
