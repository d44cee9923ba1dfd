-- name: SyncSearchEntry :execrows
-- Brings a message's search entry in line with the message: written (or
-- rewritten) for a live plaintext message, removed for a deleted,
-- encrypted or missing one. Every index operation is this same sync, so
-- jobs arriving in any order converge.
WITH m AS (
    SELECT id, conversation_id, content FROM messages
    WHERE id = @message_id AND deleted_at IS NULL AND content IS NOT NULL
), gone AS (
    DELETE FROM message_search s WHERE s.message_id = @message_id AND NOT EXISTS (SELECT 1 FROM m)
)
INSERT INTO message_search (message_id, conversation_id, language, document, indexed_at)
SELECT m.id, m.conversation_id, (@language::text)::regconfig, to_tsvector((@language::text)::regconfig, m.content), now()
FROM m
ON CONFLICT (message_id) DO UPDATE SET
    language = excluded.language, document = excluded.document, indexed_at = excluded.indexed_at;

-- name: IndexBacklog :one
-- The index-pending sweep's step: takes up to @batch_size messages from
-- search_backlog (skipping rows another sweep holds), writes the search
-- entries of those still live and plaintext, removes the entries of the
-- others, and deletes the backlog rows, all in one statement, so a failure
-- leaves the backlog as it was. Returns the rows taken and the entries
-- written.
WITH batch AS (
    DELETE FROM search_backlog b
    -- ARRAY(...) runs the locking subquery once, whatever the plan.
    WHERE b.message_id = ANY(ARRAY(SELECT message_id FROM search_backlog LIMIT @batch_size::int FOR UPDATE SKIP LOCKED))
    RETURNING b.message_id
), live AS (
    SELECT m.id, m.conversation_id, m.content FROM messages m
    JOIN batch ON batch.message_id = m.id
    WHERE m.deleted_at IS NULL AND m.content IS NOT NULL
), gone AS (
    DELETE FROM message_search s USING batch
    WHERE s.message_id = batch.message_id AND NOT EXISTS (SELECT 1 FROM live WHERE live.id = s.message_id)
), written AS (
    INSERT INTO message_search (message_id, conversation_id, language, document, indexed_at)
    SELECT live.id, live.conversation_id, (@language::text)::regconfig, to_tsvector((@language::text)::regconfig, live.content), now()
    FROM live
    ON CONFLICT (message_id) DO UPDATE SET
        language = excluded.language, document = excluded.document, indexed_at = excluded.indexed_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch)::int AS taken, (SELECT count(*) FROM written)::int AS indexed;

-- name: SearchMessages :many
-- Ranked matches of a web-search style query among the caller's
-- conversations. The snippet is HTML: content escaped, matches in <mark>.
SELECT m.id, m.conversation_id, m.seq, m.sender_id, m.created_at,
       ts_headline(s.language,
           replace(replace(replace(m.content, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
           q.query, 'StartSel=<mark>, StopSel=</mark>, MaxFragments=2, MaxWords=18, MinWords=6')::text AS snippet,
       ts_rank(s.document, q.query)::float4 AS rank
FROM (SELECT websearch_to_tsquery((@language::text)::regconfig, @query::text) AS query) q
JOIN message_search s ON s.document @@ q.query
JOIN messages m ON m.id = s.message_id AND m.deleted_at IS NULL
JOIN conversation_participants p ON p.conversation_id = s.conversation_id AND p.user_id = @user_id AND m.seq > p.hidden_through_seq
    AND m.seq >= p.joined_seq AND (p.left_seq IS NULL OR m.seq <= p.left_seq)
WHERE (sqlc.narg('conversation_id')::uuid IS NULL OR s.conversation_id = sqlc.narg('conversation_id')::uuid)
  AND (NOT @after::bool OR (ts_rank(s.document, q.query)::float4, m.id) < (@after_rank::float4, @after_id::uuid))
ORDER BY rank DESC, m.id DESC
LIMIT @max_rows;

-- name: EditMessage :one
-- Replaces the content of a live plaintext message sent by sender_id.
UPDATE messages SET content = @content, edited_at = now()
WHERE id = @id AND sender_id = @sender_id AND deleted_at IS NULL AND content IS NOT NULL
RETURNING conversation_id, seq;

-- name: SoftDeleteMessage :one
UPDATE messages SET deleted_at = now()
WHERE id = @id AND sender_id = @sender_id AND deleted_at IS NULL
RETURNING conversation_id, seq;
