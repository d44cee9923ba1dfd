-- name: DeliveryReport :many
-- Messages created per interval in [from, to), how far each got, and the
-- latency percentiles (milliseconds) of created->sent and sent->delivered;
-- -1 where there is nothing to measure. A group's system messages are left
-- out; its messages count as created and sent, and their receipts (each
-- member's cursors, not the message's status) apart: how many group
-- messages every member who could see them has delivered, and read.
SELECT date_bin(@bucket::interval, m.created_at, @origin::timestamptz)::timestamptz AS bucket,
       count(*)::bigint AS created,
       count(m.sent_at)::bigint AS sent,
       count(m.delivered_at)::bigint AS delivered,
       count(m.read_at)::bigint AS read,
       count(*) FILTER (WHERE m.status = 'failed')::bigint AS failed,
       coalesce(percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM m.sent_at - m.created_at) * 1000) FILTER (WHERE m.sent_at IS NOT NULL), -1)::float8 AS sent_p50_ms,
       coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM m.sent_at - m.created_at) * 1000) FILTER (WHERE m.sent_at IS NOT NULL), -1)::float8 AS sent_p95_ms,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM m.sent_at - m.created_at) * 1000) FILTER (WHERE m.sent_at IS NOT NULL), -1)::float8 AS sent_p99_ms,
       coalesce(percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM m.delivered_at - m.sent_at) * 1000) FILTER (WHERE m.delivered_at IS NOT NULL AND m.sent_at IS NOT NULL), -1)::float8 AS delivered_p50_ms,
       coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM m.delivered_at - m.sent_at) * 1000) FILTER (WHERE m.delivered_at IS NOT NULL AND m.sent_at IS NOT NULL), -1)::float8 AS delivered_p95_ms,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM m.delivered_at - m.sent_at) * 1000) FILTER (WHERE m.delivered_at IS NOT NULL AND m.sent_at IS NOT NULL), -1)::float8 AS delivered_p99_ms,
       count(*) FILTER (WHERE m.recipient_id IS NULL)::bigint AS group_messages,
       count(*) FILTER (WHERE m.recipient_id IS NULL AND NOT EXISTS (
           SELECT 1 FROM conversation_participants p
           WHERE p.conversation_id = m.conversation_id AND p.user_id <> m.sender_id
             AND p.joined_seq <= m.seq AND (p.left_seq IS NULL OR p.left_seq >= m.seq)
             AND p.last_delivered_seq < m.seq))::bigint AS group_delivered_all,
       count(*) FILTER (WHERE m.recipient_id IS NULL AND NOT EXISTS (
           SELECT 1 FROM conversation_participants p
           WHERE p.conversation_id = m.conversation_id AND p.user_id <> m.sender_id
             AND p.joined_seq <= m.seq AND (p.left_seq IS NULL OR p.left_seq >= m.seq)
             AND p.last_read_seq < m.seq))::bigint AS group_read_all
FROM messages m
WHERE m.created_at >= @from_time::timestamptz AND m.created_at < @to_time::timestamptz AND m.event IS NULL
GROUP BY 1
ORDER BY 1;

-- name: JobsReport :many
-- Per kind, the jobs River still holds that finished in [from, to):
-- outcomes, and percentiles (milliseconds) of run time and queue wait of
-- the completed ones (-1 where there are none).
SELECT j.kind,
       count(*) FILTER (WHERE j.state = 'completed')::bigint AS completed,
       count(*) FILTER (WHERE j.state = 'discarded')::bigint AS discarded,
       count(*) FILTER (WHERE j.state = 'cancelled')::bigint AS cancelled,
       coalesce(percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM j.finalized_at - j.attempted_at) * 1000) FILTER (WHERE j.state = 'completed'), -1)::float8 AS run_p50_ms,
       coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM j.finalized_at - j.attempted_at) * 1000) FILTER (WHERE j.state = 'completed'), -1)::float8 AS run_p95_ms,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM j.finalized_at - j.attempted_at) * 1000) FILTER (WHERE j.state = 'completed'), -1)::float8 AS run_p99_ms,
       coalesce(percentile_cont(0.50) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM j.attempted_at - j.scheduled_at), 0) * 1000) FILTER (WHERE j.state = 'completed'), -1)::float8 AS wait_p50_ms,
       coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM j.attempted_at - j.scheduled_at), 0) * 1000) FILTER (WHERE j.state = 'completed'), -1)::float8 AS wait_p95_ms,
       coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM j.attempted_at - j.scheduled_at), 0) * 1000) FILTER (WHERE j.state = 'completed'), -1)::float8 AS wait_p99_ms
FROM river_job j
WHERE j.finalized_at >= @from_time::timestamptz AND j.finalized_at < @to_time::timestamptz
GROUP BY j.kind
ORDER BY j.kind;

-- name: FailuresReport :many
-- The most frequent error messages per kind among attempts made in
-- [from, to): from the jobs River still holds, plus archived failures of
-- jobs River has pruned.
WITH errs AS (
    SELECT j.kind, e
    FROM river_job j, unnest(j.errors) AS e
    WHERE j.errors IS NOT NULL
    UNION ALL
    SELECT f.kind, e
    FROM failed_jobs f, unnest(f.errors) AS e
    WHERE f.errors IS NOT NULL AND NOT EXISTS (SELECT 1 FROM river_job j2 WHERE j2.id = f.job_id)
)
SELECT errs.kind,
       left(split_part(errs.e->>'error', E'\n', 1), 200)::text AS error,
       count(*)::bigint AS occurrences,
       max((errs.e->>'at')::timestamptz)::timestamptz AS last_seen
FROM errs
WHERE (errs.e->>'at')::timestamptz >= @from_time::timestamptz AND (errs.e->>'at')::timestamptz < @to_time::timestamptz
GROUP BY 1, 2
ORDER BY 3 DESC, 1, 2
LIMIT @max_rows;

-- name: NotificationsReport :many
SELECT n.channel::text AS channel, n.status::text AS status, count(*)::bigint AS notifications
FROM notifications n
WHERE n.created_at >= @from_time::timestamptz AND n.created_at < @to_time::timestamptz
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: BroadcastsReport :many
SELECT b.id, b.status::text AS status, b.total, b.processed, b.failed, b.created_at,
       b.started_at, b.finished_at
FROM batches b
WHERE b.created_at >= @from_time::timestamptz AND b.created_at < @to_time::timestamptz
ORDER BY b.created_at DESC
LIMIT @max_rows;

-- name: OldestLiveFinishedJob :one
-- When the oldest finished job River still holds finished (now for none).
SELECT coalesce(min(finalized_at), now())::timestamptz AS oldest FROM river_job
WHERE state IN ('completed', 'discarded', 'cancelled');

-- name: JobsReportFromStats :many
-- The jobs report from the hourly rollups in [from, to): counts summed,
-- percentiles averaged over hours weighted by completed jobs (an
-- approximation; -1 where there are none).
SELECT s.kind,
       sum(s.completed)::bigint AS completed,
       sum(s.discarded)::bigint AS discarded,
       sum(s.cancelled)::bigint AS cancelled,
       coalesce(sum(s.run_p50_ms * s.completed) / nullif(sum(s.completed) FILTER (WHERE s.run_p50_ms IS NOT NULL), 0), -1)::float8 AS run_p50_ms,
       coalesce(sum(s.run_p95_ms * s.completed) / nullif(sum(s.completed) FILTER (WHERE s.run_p95_ms IS NOT NULL), 0), -1)::float8 AS run_p95_ms,
       coalesce(sum(s.run_p99_ms * s.completed) / nullif(sum(s.completed) FILTER (WHERE s.run_p99_ms IS NOT NULL), 0), -1)::float8 AS run_p99_ms,
       coalesce(sum(s.wait_p50_ms * s.completed) / nullif(sum(s.completed) FILTER (WHERE s.wait_p50_ms IS NOT NULL), 0), -1)::float8 AS wait_p50_ms,
       coalesce(sum(s.wait_p95_ms * s.completed) / nullif(sum(s.completed) FILTER (WHERE s.wait_p95_ms IS NOT NULL), 0), -1)::float8 AS wait_p95_ms,
       coalesce(sum(s.wait_p99_ms * s.completed) / nullif(sum(s.completed) FILTER (WHERE s.wait_p99_ms IS NOT NULL), 0), -1)::float8 AS wait_p99_ms
FROM job_stats s
WHERE s.hour >= @from_time::timestamptz AND s.hour < @to_time::timestamptz
GROUP BY s.kind
ORDER BY s.kind;

-- name: StatsExistBefore :one
-- Whether job_stats holds hours in [from, before): finished jobs River has
-- since pruned.
SELECT EXISTS (SELECT 1 FROM job_stats WHERE hour >= @from_time::timestamptz AND hour < @before::timestamptz);
