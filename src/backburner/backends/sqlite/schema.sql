-- The current schema in full, for readers. tests/unit/test_sqlite_schema.py checks that
-- applying every migration gives exactly this schema: change both together.
-- Jobs: one row per job for its whole life. The columns after finished_at were added by
-- migrations (which is why they sit on one line: SQLite appends added columns so).
-- Migration 2: a job's unique key, its scope and, for the period scope, when the key lapses
-- (backburner.unique). Migration 5: its limits and whether it is parked (backburner.limits).
-- Migration 6: the links of chains and groups (backburner.flows): the flow's id, the ids
-- (JSON arrays) a job waits for and that wait for it, how many it still waits for, and what
-- it receives when released. Migration 8: its meta (JSON object, NULL: none), what travels
-- with it but is no argument of its task (backburner.tracing's context). Times are epoch
-- seconds (REAL) by the clock of the machine that holds the file, which every process
-- sharing the file reads.
CREATE TABLE backburner_jobs (
    seq              INTEGER PRIMARY KEY,          -- rowid: insertion order, FIFO tiebreak
    id               TEXT    NOT NULL UNIQUE,
    task             TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,   -- higher runs first
    state            TEXT    NOT NULL CHECK (state IN
                       ('pending','scheduled','running','completed','failed','cancelled')),
    args             TEXT    NOT NULL,             -- JSON array
    kwargs           TEXT    NOT NULL,             -- JSON object
    attempt          INTEGER NOT NULL DEFAULT 0,   -- claim counter = fencing token
    max_attempts     INTEGER NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    lost             INTEGER NOT NULL DEFAULT 0,
    timeout          REAL,
    errors           TEXT    NOT NULL DEFAULT '[]',-- JSON array, one object per bad attempt
    result           TEXT,                         -- JSON
    reason           TEXT,
    progress         TEXT,                         -- JSON {current,total,message}
    worker_id        TEXT,
    lease_until      REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    run_at           REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL
, unique_key TEXT, unique_scope TEXT, unique_until REAL, limit_concurrency INTEGER, limit_key TEXT, limit_key_concurrency INTEGER, rate_count INTEGER, rate_period REAL, parked INTEGER NOT NULL DEFAULT 0, flow_id TEXT, depends_on TEXT, dependents TEXT, waiting_on INTEGER NOT NULL DEFAULT 0, receives TEXT, meta TEXT);

-- Every index is written on every state change, so there are few, and partial where they
-- can be. The claim walks this one in order and stops after LIMIT rows: no sort, no scan.
-- Parked jobs (over a concurrency limit) are not ready.
CREATE INDEX backburner_jobs_ready
    ON backburner_jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost = 0 AND parked = 0;
-- Ready jobs that lost a worker: claimed one at a time by an idle worker (see claim_suspect).
CREATE INDEX backburner_jobs_suspects
    ON backburner_jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost > 0 AND parked = 0;
CREATE INDEX backburner_jobs_scheduled
    ON backburner_jobs (run_at) WHERE state = 'scheduled';
-- Heartbeats seek by worker; the rescue scans this small index (running jobs are bounded
-- by the workers' total concurrency) instead of needing one of its own.
CREATE INDEX backburner_jobs_running
    ON backburner_jobs (worker_id) WHERE state = 'running';
-- Operator listings of failed and cancelled jobs, newest first, paged by seq, without walking
-- every completed job (migration 7). Partial: a job that never fails costs no write in them.
CREATE INDEX backburner_jobs_failed ON backburner_jobs (seq) WHERE state = 'failed';
CREATE INDEX backburner_jobs_cancelled ON backburner_jobs (seq) WHERE state = 'cancelled';

-- At most one live holder per (queue, task, key). A state change moves a job in or out of
-- this index by itself, so no transition has to release a key: a holder that completes,
-- fails or is cancelled (active), or is claimed (queued: attempt > 0 from then on, and
-- attempt never decreases), or is deleted, stops holding it. The period scope cannot be
-- judged by the clock in an index; insert clears unique_until once it has passed.
CREATE UNIQUE INDEX backburner_jobs_unique ON backburner_jobs (queue, task, unique_key)
    WHERE unique_key IS NOT NULL AND (
        (unique_scope = 'active' AND state IN ('pending', 'scheduled', 'running'))
        OR (unique_scope = 'queued' AND state IN ('pending', 'scheduled') AND attempt = 0)
        OR (unique_scope = 'period' AND unique_until IS NOT NULL));

-- Parked jobs in the order a freed slot hands them out: per task, and per key. Only pending
-- jobs are ever parked (cancel clears the mark), so the predicates need not name `state`:
-- the transitions of ordinary jobs, which change `state` and never `parked`, leave these
-- indexes alone (a predicate on `state` would be evaluated on every one of them). Running
-- limited jobs are counted through backburner_jobs_running, for the same reason.
CREATE INDEX backburner_jobs_parked_task
    ON backburner_jobs (queue, task, priority DESC, seq) WHERE parked = 1;
CREATE INDEX backburner_jobs_parked_key
    ON backburner_jobs (queue, task, limit_key, priority DESC, seq) WHERE parked = 2;
-- The jobs with concurrency limits, by id: what an acknowledgement reads to hand their slots
-- on (limited_of); the columns never change after the insert.
CREATE INDEX backburner_jobs_limited ON backburner_jobs (id)
    WHERE limit_concurrency IS NOT NULL OR limit_key_concurrency IS NOT NULL;

CREATE TABLE backburner_workers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT NOT NULL,                    -- JSON array
    concurrency  INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    extra        TEXT NOT NULL DEFAULT '{}'
);

-- The one worker that runs housekeeping; `until` is renewed while it lives.
CREATE TABLE backburner_leader (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  REAL NOT NULL
);

-- Periodic schedules: only what must be shared by every scheduler (pause state); the
-- definitions live in code. changed_at: when last paused or resumed (epoch seconds).
CREATE TABLE backburner_schedules (
    name       TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL,
    changed_at REAL    NOT NULL
);

-- Queue controls: a row per queue that was ever paused or resumed (most queues have none).
-- The claim reads it by primary key in the same statement that takes jobs, so a pause
-- holds from the next claim of every process. changed_at: epoch seconds.
CREATE TABLE backburner_queues (
    name       TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL,
    changed_at REAL    NOT NULL
);

-- Retention keeps no index of its own: every completion would write it (measured: +60% on
-- an acknowledgement batch). The pruner walks the rowid instead, oldest first, over the
-- jobs created before its cutoff only (see the prune queries).
-- Rate limits: the start times (epoch seconds) of a (queue, task)'s jobs within its last
-- period, a sliding log trimmed by every claim that consults it.
CREATE TABLE backburner_rate_starts (
    queue TEXT NOT NULL,
    task  TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX backburner_rate_starts_window ON backburner_rate_starts (queue, task, at);

-- Jobs per (queue, state), kept by triggers on backburner_jobs as jobs move (migration 10):
-- counts() reads these few rows instead of counting the table. Rows that fall to 0 stay.
CREATE TABLE backburner_job_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

CREATE TRIGGER backburner_jobs_count_insert AFTER INSERT ON backburner_jobs
BEGIN
    INSERT INTO backburner_job_counts (queue, state, n) VALUES (new.queue, new.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER backburner_jobs_count_delete AFTER DELETE ON backburner_jobs
BEGIN
    UPDATE backburner_job_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
END;

CREATE TRIGGER backburner_jobs_count_update AFTER UPDATE OF queue, state ON backburner_jobs
    WHEN old.state IS NOT new.state OR old.queue IS NOT new.queue
BEGIN
    -- One statement for both rows: half the trigger steps of an UPDATE then an INSERT.
    INSERT INTO backburner_job_counts (queue, state, n)
        VALUES (old.queue, old.state, -1), (new.queue, new.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n;
END;
