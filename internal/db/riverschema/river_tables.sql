-- For sqlc's type checking only: the columns of River's tables that this
-- project's queries read. River's own migrations (run through
-- migrations/migrations.go) create the real tables; this file is never
-- executed. Keep it in step with migrations.RiverVersion.
CREATE TYPE river_job_state AS ENUM (
    'available', 'cancelled', 'completed', 'discarded', 'pending', 'retryable', 'running', 'scheduled'
);

CREATE TABLE river_job (
    id           bigint          NOT NULL,
    state        river_job_state NOT NULL,
    attempt      smallint        NOT NULL,
    max_attempts smallint        NOT NULL,
    attempted_at timestamptz,
    created_at   timestamptz     NOT NULL,
    finalized_at timestamptz,
    scheduled_at timestamptz     NOT NULL,
    priority     smallint        NOT NULL,
    args         jsonb           NOT NULL,
    errors       jsonb[],
    kind         text            NOT NULL,
    metadata     jsonb           NOT NULL,
    queue        text            NOT NULL
);

CREATE TABLE river_queue (
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    paused_at  timestamptz,
    updated_at timestamptz NOT NULL
);
