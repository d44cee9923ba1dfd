-- name: RollupJobStats :execrows
-- Recomputes job_stats for every (kind, queue, hour) with jobs finalized in
-- [from_hour, to_hour), replacing existing rows. Hours are UTC.
INSERT INTO job_stats AS s (kind, queue, hour, completed, discarded, cancelled, retried,
    run_p50_ms, run_p95_ms, run_p99_ms, wait_p50_ms, wait_p95_ms, wait_p99_ms, computed_at)
SELECT j.kind, j.queue, date_trunc('hour', j.finalized_at, 'UTC') AS hour,
       count(*) FILTER (WHERE j.state = 'completed'),
       count(*) FILTER (WHERE j.state = 'discarded'),
       count(*) FILTER (WHERE j.state = 'cancelled'),
       count(*) FILTER (WHERE j.attempt > 1),
       percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM j.finalized_at - j.attempted_at) * 1000) FILTER (WHERE j.state = 'completed'),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM j.finalized_at - j.attempted_at) * 1000) FILTER (WHERE j.state = 'completed'),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM j.finalized_at - j.attempted_at) * 1000) FILTER (WHERE j.state = 'completed'),
       percentile_cont(0.50) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM j.attempted_at - j.scheduled_at), 0) * 1000) FILTER (WHERE j.state = 'completed'),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM j.attempted_at - j.scheduled_at), 0) * 1000) FILTER (WHERE j.state = 'completed'),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY greatest(extract(epoch FROM j.attempted_at - j.scheduled_at), 0) * 1000) FILTER (WHERE j.state = 'completed'),
       now()
FROM river_job j
WHERE j.finalized_at >= @from_hour::timestamptz AND j.finalized_at < @to_hour::timestamptz
  AND j.state IN ('completed', 'discarded', 'cancelled')
GROUP BY 1, 2, 3
ON CONFLICT (kind, queue, hour) DO UPDATE SET
    completed = excluded.completed, discarded = excluded.discarded, cancelled = excluded.cancelled,
    retried = excluded.retried, run_p50_ms = excluded.run_p50_ms, run_p95_ms = excluded.run_p95_ms,
    run_p99_ms = excluded.run_p99_ms, wait_p50_ms = excluded.wait_p50_ms, wait_p95_ms = excluded.wait_p95_ms,
    wait_p99_ms = excluded.wait_p99_ms, computed_at = excluded.computed_at;

-- name: ArchiveDiscardedJobs :execrows
-- Copies discarded jobs into failed_jobs (a job discarded again after a
-- retry replaces its earlier copy).
INSERT INTO failed_jobs AS f (job_id, kind, queue, args, errors, attempt, max_attempts, created_at, attempted_at, finalized_at)
SELECT j.id, j.kind, j.queue, j.args, j.errors, j.attempt, j.max_attempts, j.created_at, j.attempted_at, j.finalized_at
FROM river_job j
WHERE j.state = 'discarded' AND j.finalized_at >= @since::timestamptz
ON CONFLICT (job_id) DO UPDATE SET
    errors = excluded.errors, attempt = excluded.attempt, attempted_at = excluded.attempted_at,
    finalized_at = excluded.finalized_at, archived_at = now()
WHERE f.finalized_at IS DISTINCT FROM excluded.finalized_at;

-- name: PruneFailedJobs :execrows
DELETE FROM failed_jobs WHERE finalized_at < @before::timestamptz;
