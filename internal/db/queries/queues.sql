-- name: JobCountsByQueueAndState :many
SELECT queue, state::text AS state, count(*)::bigint AS jobs
FROM river_job
GROUP BY queue, state;

-- name: KnownQueues :many
SELECT name, (paused_at IS NOT NULL)::bool AS paused FROM river_queue;

-- name: QueueKindHealthStats :many
-- Per queue and job kind: jobs finalized since @since as completed or
-- discarded, jobs waiting, how long the oldest waiting job has been due,
-- and how long ago a job of the kind last completed (-1 when none is
-- recorded). A queue without jobs has one row with an empty kind.
SELECT q.queue::text AS queue,
       coalesce(j.kind, '')::text AS kind,
       count(*) FILTER (WHERE j.state = 'completed' AND j.finalized_at >= @since::timestamptz)::bigint AS completed,
       count(*) FILTER (WHERE j.state = 'discarded' AND j.finalized_at >= @since::timestamptz)::bigint AS discarded,
       count(*) FILTER (WHERE j.state = 'available')::bigint AS waiting,
       greatest(coalesce(extract(epoch FROM now() - min(j.scheduled_at) FILTER (WHERE j.state = 'available')), 0), 0)::float8 AS oldest_waiting_seconds,
       coalesce(extract(epoch FROM now() - max(j.finalized_at) FILTER (WHERE j.state = 'completed')), -1)::float8 AS last_completed_seconds
FROM (SELECT unnest(@queues::text[]) AS queue) q
LEFT JOIN river_job j ON j.queue = q.queue
GROUP BY q.queue, j.kind
ORDER BY 1, 2;

-- name: QueueHasJobs :one
-- Whether any job is in the queue (in any state): one index descent per
-- state on River's (state, queue, ...) index.
SELECT EXISTS (
    SELECT 1 FROM river_job
    WHERE state = ANY('{available,cancelled,completed,discarded,pending,retryable,running,scheduled}'::river_job_state[])
      AND queue = @queue::text
);

-- name: OldestWaitingByQueue :many
-- Per queue holding available jobs: how long the oldest has been due.
SELECT queue, greatest(extract(epoch FROM now() - min(scheduled_at)), 0)::float8 AS seconds
FROM river_job WHERE state = 'available'
GROUP BY queue;

-- name: RecordJobProgress :execrows
-- Sets a running job's progress record (metadata.progress), for River UI,
-- GET /jobs/:id and the CLI to show while it runs. River merges its own
-- metadata updates into the column when the job ends, so the last record
-- stays.
UPDATE river_job SET metadata = jsonb_set(metadata, '{progress}', @progress::jsonb)
WHERE id = @id AND state = 'running';

-- name: QueueActivity :many
-- Jobs finished per queue and minute since @since (apart from the
-- every-second sweeps @skip_kinds): completed and discarded.
SELECT queue, date_trunc('minute', finalized_at)::timestamptz AS minute,
       count(*) FILTER (WHERE state = 'completed')::bigint AS completed,
       count(*) FILTER (WHERE state = 'discarded')::bigint AS discarded
FROM river_job
WHERE finalized_at >= @since::timestamptz AND state IN ('completed', 'discarded') AND NOT (kind = ANY(@skip_kinds::text[]))
GROUP BY 1, 2;

-- name: RunningJobsWithProgress :many
-- Running jobs that keep a progress record, longest running first.
SELECT id, kind, queue, attempted_at, (metadata->'progress')::jsonb AS progress
FROM river_job
WHERE state = 'running' AND metadata ? 'progress'
ORDER BY attempted_at NULLS LAST, id
LIMIT @max_rows;
