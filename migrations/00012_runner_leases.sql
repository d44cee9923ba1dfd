-- +goose Up
-- One row per runner process: a lease it renews every few seconds while
-- it works jobs. A runner whose lease has expired (or that marked itself
-- stopped) holds no job any more; the jobs River still shows as running
-- under its id are handed back by any live runner (see internal/runner).
CREATE TABLE runner_leases (
    -- River's client id, as recorded in river_job.attempted_by.
    runner_id   text        PRIMARY KEY,
    hostname    text        NOT NULL,
    pid         integer     NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    renewed_at  timestamptz NOT NULL DEFAULT now(),
    -- How long the lease lasts from renewed_at; the runner stops working
    -- its jobs before that if it cannot renew.
    ttl         interval    NOT NULL,
    -- Set by a runner that stopped cleanly: its lease ends at once.
    stopped_at  timestamptz,
    CONSTRAINT runner_leases_ttl_positive CHECK (ttl > interval '0')
);

-- The rescuer looks for running jobs by state; River's own indexes on
-- river_job (state, queue, priority, scheduled_at, id) already serve it.

-- +goose Down
DROP TABLE runner_leases;
