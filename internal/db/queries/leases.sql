-- name: RenewLease :one
-- Creates or renews a runner's lease, by Postgres's clock. A lease that has
-- already expired or was stopped is not revived: the runner must stop
-- working (its jobs may have been handed to others) and come back under a
-- new id.
INSERT INTO runner_leases AS l (runner_id, hostname, pid, ttl)
VALUES (@runner_id, @hostname, @pid, make_interval(secs => sqlc.arg(ttl_ms)::float8 / 1000))
ON CONFLICT (runner_id) DO UPDATE SET renewed_at = now(), ttl = excluded.ttl
WHERE l.stopped_at IS NULL AND l.renewed_at + l.ttl > now()
RETURNING renewed_at;

-- name: StopLease :exec
-- Ends a lease at once (clean shutdown).
UPDATE runner_leases SET stopped_at = now() WHERE runner_id = @runner_id AND stopped_at IS NULL;

-- name: RescueOrphanedJobs :many
-- Hands back jobs shown as running under a runner whose lease has ended
-- (expired, or stopped) for at least the grace period: available again at once when
-- attempts remain, discarded otherwise. A job held by a runner with a live
-- lease, or by a runner with no lease row, is never touched here. Each job
-- gets an error entry naming the runner.
WITH orphaned AS (
    SELECT j.id
    FROM river_job j
    JOIN runner_leases l ON l.runner_id = j.attempted_by[array_upper(j.attempted_by, 1)]
    WHERE j.state = 'running'
      AND coalesce(l.stopped_at, l.renewed_at + l.ttl) < now() - make_interval(secs => sqlc.arg(grace_ms)::float8 / 1000)
    ORDER BY j.id
    LIMIT @max_jobs::int
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE river_job j SET
    state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded'::river_job_state ELSE 'available'::river_job_state END,
    scheduled_at = CASE WHEN j.attempt >= j.max_attempts THEN j.scheduled_at ELSE now() END,
    finalized_at = CASE WHEN j.attempt >= j.max_attempts THEN now() ELSE NULL END,
    errors = array_append(j.errors, jsonb_build_object(
        'at', now(), 'attempt', j.attempt, 'trace', '',
        'error', 'runner ' || j.attempted_by[array_upper(j.attempted_by, 1)] || ' lost its lease while working this job; handed back by the lease rescuer'))
FROM orphaned o
WHERE j.id = o.id AND j.state = 'running'
RETURNING j.id, j.kind, j.state::text AS new_state;

-- name: RescueLostJobs :many
-- Hands back jobs shown as running under a live runner (runner_id) that
-- it is not working: attempted more than grace ago and not among the ids
-- it still works or has just finished. A fetch whose answer, or a
-- completion whose commit, was lost with a database connection (a
-- failover, say) leaves such a job. Available again at once when attempts
-- remain, discarded otherwise; each gets an error entry.
WITH lost AS (
    SELECT j.id
    FROM river_job j
    WHERE j.state = 'running'
      AND j.attempted_by[array_upper(j.attempted_by, 1)] = @runner_id::text
      AND j.attempted_at < now() - make_interval(secs => sqlc.arg(grace_ms)::float8 / 1000)
      AND NOT (j.id = ANY(@working::bigint[]))
    ORDER BY j.id
    LIMIT @max_jobs::int
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE river_job j SET
    state = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded'::river_job_state ELSE 'available'::river_job_state END,
    scheduled_at = CASE WHEN j.attempt >= j.max_attempts THEN j.scheduled_at ELSE now() END,
    finalized_at = CASE WHEN j.attempt >= j.max_attempts THEN now() ELSE NULL END,
    errors = array_append(j.errors, jsonb_build_object(
        'at', now(), 'attempt', j.attempt, 'trace', '',
        'error', 'runner ' || @runner_id::text || ' lost track of this job (a database connection was lost while it was fetched or completed); handed back'))
FROM lost o
WHERE j.id = o.id AND j.state = 'running'
RETURNING j.id, j.kind, j.state::text AS new_state;

-- name: PruneLeases :execrows
-- Forgets leases that ended long ago and hold no running job.
DELETE FROM runner_leases l
WHERE coalesce(l.stopped_at, l.renewed_at + l.ttl) < now() - make_interval(secs => sqlc.arg(older_than_ms)::float8 / 1000)
  AND NOT EXISTS (
    SELECT 1 FROM river_job j
    WHERE j.state = 'running' AND j.attempted_by[array_upper(j.attempted_by, 1)] = l.runner_id);
