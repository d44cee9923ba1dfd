-- +goose Up
-- Hourly rollups of finished jobs per kind and queue, written by the
-- job-history job; recomputing an hour replaces its row. Reports read them
-- for periods River has already pruned.
CREATE TABLE job_stats (
    kind         text        NOT NULL,
    queue        text        NOT NULL,
    hour         timestamptz NOT NULL,
    completed    bigint      NOT NULL,
    discarded    bigint      NOT NULL,
    cancelled    bigint      NOT NULL,
    -- Finished jobs that needed more than one attempt.
    retried      bigint      NOT NULL,
    run_p50_ms   double precision,
    run_p95_ms   double precision,
    run_p99_ms   double precision,
    wait_p50_ms  double precision,
    wait_p95_ms  double precision,
    wait_p99_ms  double precision,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, queue, hour)
);

CREATE INDEX job_stats_hour_idx ON job_stats (hour);

-- Discarded jobs, copied before River's cleaner deletes them (River keeps
-- discarded jobs 7 days by default; this archive keeps them longer).
CREATE TABLE failed_jobs (
    job_id       bigint      PRIMARY KEY,
    kind         text        NOT NULL,
    queue        text        NOT NULL,
    args         jsonb       NOT NULL,
    errors       jsonb[],
    attempt      smallint    NOT NULL,
    max_attempts smallint    NOT NULL,
    created_at   timestamptz NOT NULL,
    attempted_at timestamptz,
    finalized_at timestamptz NOT NULL,
    archived_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX failed_jobs_finalized_at_idx ON failed_jobs (finalized_at);

-- +goose Down
DROP TABLE failed_jobs;
DROP TABLE job_stats;
