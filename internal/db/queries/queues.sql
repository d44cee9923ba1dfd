-- name: JobCountsByQueueAndState :many
SELECT queue, state::text AS state, count(*)::bigint AS jobs
FROM river_job
GROUP BY queue, state;

-- name: KnownQueues :many
SELECT name, (paused_at IS NOT NULL)::bool AS paused FROM river_queue;

-- name: QueueHealthStats :many
-- Per queue: jobs finalized since @since as completed or discarded, jobs
-- waiting, and how long the oldest waiting job has been due.
SELECT q.queue::text AS queue,
       count(*) FILTER (WHERE j.state = 'completed' AND j.finalized_at >= @since::timestamptz)::bigint AS completed,
       count(*) FILTER (WHERE j.state = 'discarded' AND j.finalized_at >= @since::timestamptz)::bigint AS discarded,
       count(*) FILTER (WHERE j.state = 'available')::bigint AS waiting,
       greatest(coalesce(extract(epoch FROM now() - min(j.scheduled_at) FILTER (WHERE j.state = 'available')), 0), 0)::float8 AS oldest_waiting_seconds
FROM (SELECT unnest(@queues::text[]) AS queue) q
LEFT JOIN river_job j ON j.queue = q.queue
GROUP BY q.queue;

-- name: QueueHasJobs :one
-- Whether any job is in the queue (in any state): one index descent per
-- state on River's (state, queue, ...) index.
SELECT EXISTS (
    SELECT 1 FROM river_job
    WHERE state = ANY('{available,cancelled,completed,discarded,pending,retryable,running,scheduled}'::river_job_state[])
      AND queue = @queue::text
);
