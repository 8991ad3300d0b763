-- The current schema in full, for readers. tests/stores/test_postgres_schema.py checks that
-- applying every migration gives exactly this schema (catalog against catalog): change both
-- together. The migrations ledger ({schema}.migrations) is created by schema.py, not here.
-- Jobs: one row per job for its whole life. `{schema}` is replaced by the quoted schema
-- name of the backend's URL (default "backburner"), so several apps can share a database.
-- Times are timestamptz, always from the server's clock (now()), never a worker's.
CREATE TABLE {schema}.jobs (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- FIFO tiebreak, cursor
    id               text        NOT NULL UNIQUE,
    task             text        NOT NULL,
    queue            text        NOT NULL,
    priority         integer     NOT NULL DEFAULT 0,    -- higher runs first
    state            text        NOT NULL CHECK (state IN
                       ('pending','scheduled','running','completed','failed','cancelled')),
    args             text        NOT NULL,              -- JSON array, kept byte for byte
    kwargs           text        NOT NULL,              -- JSON object, kept byte for byte
    attempt          integer     NOT NULL DEFAULT 0,    -- claim counter = fencing token
    max_attempts     integer     NOT NULL,
    failures         integer     NOT NULL DEFAULT 0,
    lost             integer     NOT NULL DEFAULT 0,
    timeout          double precision,
    errors           jsonb       NOT NULL DEFAULT '[]', -- one object per bad attempt
    result           text,                              -- JSON
    reason           text,
    progress         text,                              -- JSON {current,total,message}
    worker_id        text,
    lease_until      timestamptz,
    cancel_requested boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    run_at           timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    unique_key       text,          -- backburner.unique (migration 2): the key, its scope,
    unique_scope     text,          -- and for the period scope when the key lapses
    unique_until     timestamptz,
    limit_concurrency     integer,  -- backburner.limits (migration 5): the job's own limits,
    limit_key             text,     -- judged by the claim
    limit_key_concurrency integer,
    rate_count            integer,
    rate_period           double precision,
    parked                smallint NOT NULL DEFAULT 0, -- 1/2: waits for a task/key slot
    flow_id          text,          -- backburner.flows (migration 6): the flow (its first
    depends_on       text[],        -- job's id), the jobs this one waits for and the jobs
    dependents       text[],        -- waiting for it, how many of the former have not
    waiting_on       integer     NOT NULL DEFAULT 0, -- completed, and what it receives
    receives         text,          -- when released ('result' / 'results')
    meta             text           -- migration 8: JSON object beside the arguments, or NULL
)
-- Heartbeats and progress rewrite a running job's row often without touching an indexed
-- column; free room on the page lets them be HOT updates (no index writes, no bloat).
WITH (fillfactor = 80);

-- Every index is written on every state change (a state change is never a HOT update), so
-- there are few, and partial where they can be. The claim walks this one in order and
-- stops after LIMIT rows: no sort, no scan.
-- Parked jobs (over a concurrency limit) are not ready.
CREATE INDEX jobs_ready ON {schema}.jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost = 0 AND parked = 0;
-- Ready jobs that lost a worker: claimed one at a time by an idle worker.
CREATE INDEX jobs_suspects ON {schema}.jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost > 0 AND parked = 0;
CREATE INDEX jobs_scheduled ON {schema}.jobs (run_at) WHERE state = 'scheduled';
-- Heartbeats seek by worker; the rescue scans this small index (running jobs are bounded
-- by the workers' total concurrency). lease_until is not indexed, so a heartbeat or a
-- progress write can be a HOT update.
CREATE INDEX jobs_running ON {schema}.jobs (worker_id) WHERE state = 'running';
-- Operator listings of failed and cancelled jobs, newest first, paged by seq, without walking
-- every completed job (migration 7). Partial: a job that never fails costs no index write.
-- Listings are planned for their actual filter values (plan_cache_mode), so they use these.
CREATE INDEX jobs_failed ON {schema}.jobs (seq) WHERE state = 'failed';
CREATE INDEX jobs_cancelled ON {schema}.jobs (seq) WHERE state = 'cancelled';

-- At most one live holder per (queue, task, key); insert_unique_jobs names this predicate
-- in ON CONFLICT. A state change moves a job in or out of the index by itself, so no
-- transition has to release a key: a holder that completes, fails or is cancelled (active),
-- is claimed (queued: attempt > 0 from then on, and attempt never decreases), or is deleted
-- stops holding it. The index cannot judge a clock: insert clears a lapsed unique_until.
CREATE UNIQUE INDEX jobs_unique ON {schema}.jobs (queue, task, unique_key)
    WHERE unique_key IS NOT NULL AND (
        (unique_scope = 'active' AND state IN ('pending', 'scheduled', 'running'))
        OR (unique_scope = 'queued' AND state IN ('pending', 'scheduled') AND attempt = 0)
        OR (unique_scope = 'period' AND unique_until IS NOT NULL));

-- Parked jobs in the order a freed slot hands them out: per task, and per key. Only pending
-- jobs are ever parked (cancel clears the mark), so the predicates need not name `state`
-- and the transitions of ordinary jobs never evaluate them. Running limited jobs are
-- counted through jobs_running (bounded by the workers' total concurrency).
CREATE INDEX jobs_parked_task ON {schema}.jobs (queue, task, priority DESC, seq)
    WHERE parked = 1;
CREATE INDEX jobs_parked_key ON {schema}.jobs (queue, task, limit_key, priority DESC, seq)
    WHERE parked = 2;

CREATE TABLE {schema}.workers (
    id           text        PRIMARY KEY,
    hostname     text        NOT NULL,
    pid          integer     NOT NULL,
    queues       text[]      NOT NULL,
    concurrency  integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    extra        jsonb       NOT NULL DEFAULT '{}'
);

-- The one worker that runs housekeeping; `until` (server clock) is renewed while it lives.
-- A row and not an advisory lock: a session lock lives on one connection, so it would need
-- a connection per worker held open for it, and it vanishes silently whenever that
-- connection drops (every restart or pg_terminate_backend would make the worker believe it
-- still leads until it next checks). A row with an expiry works through the pool, survives
-- reconnects, and means exactly what Backend.lead promises: leadership for `ttl` seconds.
CREATE TABLE {schema}.leader (
    name   text        PRIMARY KEY,
    holder text        NOT NULL,
    until  timestamptz NOT NULL
);

-- Periodic schedules: only what every scheduler must share (pause state); definitions live
-- in code. changed_at: when last paused or resumed (server clock).
CREATE TABLE {schema}.schedules (
    name       text        PRIMARY KEY,
    paused     boolean     NOT NULL,
    changed_at timestamptz NOT NULL
);

-- Queue controls: a row per queue that was ever paused or resumed (most queues have none).
-- The claim reads it by primary key in the same statement that takes jobs, so a pause
-- holds from the next claim of every worker. changed_at: server clock.
CREATE TABLE {schema}.queues (
    name       text        PRIMARY KEY,
    paused     boolean     NOT NULL,
    changed_at timestamptz NOT NULL
);

-- Retention: the pruner walks finished jobs of one state oldest first and stops at its
-- batch size. Partial: a job enters it once, when it ends, and leaves it when pruned.
CREATE INDEX jobs_finished ON {schema}.jobs (state, finished_at)
    WHERE state IN ('completed', 'failed', 'cancelled');
-- Rate limits: the start times of a (queue, task)'s jobs within its last period, a sliding
-- log trimmed by every claim that consults it (under the group's advisory lock).
CREATE TABLE {schema}.rate_starts (
    queue text        NOT NULL,
    task  text        NOT NULL,
    at    timestamptz NOT NULL
);
CREATE INDEX rate_starts_window ON {schema}.rate_starts (queue, task, at);

-- Jobs per (queue, state) (migration 9): statement-level triggers on jobs append what each
-- statement changed to job_count_deltas (insert-only: no hot counter rows for the workers
-- to queue on); counts() sums job_counts and the log in one snapshot, and readers and the
-- housekeeping leader fold the log into job_counts, one at a time.
CREATE TABLE {schema}.job_counts (
    queue text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (queue, state)
);
CREATE TABLE {schema}.job_count_deltas (
    queue text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL
);


CREATE FUNCTION {schema}.jobs_count_inserted() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.job_count_deltas (queue, state, n)
        SELECT queue, state, count(*) FROM new_rows GROUP BY queue, state;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_count_updated() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Heartbeats and progress writes move nothing: the sums are 0 and nothing is added.
    INSERT INTO {schema}.job_count_deltas (queue, state, n)
        SELECT queue, state, sum(n) FROM (
            SELECT queue, state, 1 AS n FROM new_rows
            UNION ALL SELECT queue, state, -1 FROM old_rows
        ) moved GROUP BY queue, state HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.job_count_deltas (queue, state, n)
        SELECT queue, state, -count(*) FROM old_rows GROUP BY queue, state;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM {schema}.job_count_deltas;
    DELETE FROM {schema}.job_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON {schema}.jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_inserted();
CREATE TRIGGER jobs_count_update AFTER UPDATE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_updated();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_deleted();
CREATE TRIGGER jobs_count_truncate AFTER TRUNCATE ON {schema}.jobs
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_truncated();
