-- Backburner's tables in the URL's database ({db}), prefixed backburner_ so they can share a
-- database with the application's own (whose transactions may then enqueue jobs, see
-- external.py). Text is utf8mb4 (4-byte UTF-8; NUL characters kept) in {collation}, a
-- binary collation without padding: names, ids and keys compare exactly, as on every other
-- store ('a' and 'A' and 'a ' are three queues). Times are epoch seconds (DOUBLE) by the
-- server's clock, never a worker's.
CREATE TABLE {db}.backburner_jobs (
    seq              BIGINT       NOT NULL AUTO_INCREMENT, -- FIFO tiebreak, listing cursor
    id               VARCHAR(255) NOT NULL,
    task             VARCHAR(1000) NOT NULL,
    queue            VARCHAR(200) NOT NULL,
    priority         INT          NOT NULL DEFAULT 0,     -- higher runs first
    state            VARCHAR(16)  NOT NULL,
    args             LONGTEXT     NOT NULL,               -- JSON array, kept byte for byte
    kwargs           LONGTEXT     NOT NULL,               -- JSON object, kept byte for byte
    attempt          INT          NOT NULL DEFAULT 0,     -- claim counter = fencing token
    max_attempts     INT          NOT NULL,
    failures         INT          NOT NULL DEFAULT 0,
    lost             INT          NOT NULL DEFAULT 0,
    timeout          DOUBLE       NULL,
    errors           LONGTEXT     NOT NULL,               -- JSON array, one per bad attempt
    result           LONGTEXT     NULL,                   -- JSON
    reason           VARCHAR(32)  NULL,
    progress         LONGTEXT     NULL,                   -- JSON {current,total,message}
    worker_id        VARCHAR(255) NULL,
    lease_until      DOUBLE       NULL,
    cancel_requested TINYINT      NOT NULL DEFAULT 0,
    created_at       DOUBLE       NOT NULL,
    updated_at       DOUBLE       NOT NULL,
    run_at           DOUBLE       NOT NULL,
    started_at       DOUBLE       NULL,
    finished_at      DOUBLE       NULL,
    -- backburner.unique: the key, its scope, when a period-scoped hold ends, and a hash of
    -- (queue, task, key) that `unique_live` shows only while the job holds the key.
    unique_key       VARCHAR(500) NULL,
    unique_scope     VARCHAR(16)  NULL,
    unique_until     DOUBLE       NULL,
    unique_hash      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    -- MySQL has no partial unique index: a unique index on a column that is NULL whenever
    -- the job does not hold its key says the same (a unique index admits many NULLs). A
    -- state change moves a job in or out by itself, so no transition releases a key: a
    -- holder that ends (active), is claimed (queued: attempt > 0 from then on) or is deleted
    -- stops holding it; insert clears a lapsed unique_until (the index cannot read a clock).
    unique_live      VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin AS (CASE WHEN unique_hash IS NOT NULL AND (
        (unique_scope = 'active' AND state IN ('pending', 'scheduled', 'running'))
        OR (unique_scope = 'queued' AND state IN ('pending', 'scheduled') AND attempt = 0)
        OR (unique_scope = 'period' AND unique_until IS NOT NULL))
        THEN unique_hash END) STORED,
    -- backburner.limits: the job's own limits, judged by the claim; parked 1/2: it waits for
    -- a slot of its task's / its key's group.
    limit_concurrency     INT           NULL,
    limit_key             VARCHAR(1000) NULL,
    limit_key_concurrency INT           NULL,
    rate_count            INT           NULL,
    rate_period           DOUBLE        NULL,
    parked                TINYINT       NOT NULL DEFAULT 0,
    -- backburner.flows: the flow (its first job's id), the ids (JSON arrays) this job waits
    -- for and that wait for it, how many of the former have not completed, and what it
    -- receives when released ('result' / 'results').
    flow_id          VARCHAR(255) NULL,
    depends_on       LONGTEXT     NULL,
    dependents       LONGTEXT     NULL,
    waiting_on       INT          NOT NULL DEFAULT 0,
    receives         VARCHAR(16)  NULL,
    -- What travels with the job but is no argument of its task (its enqueue span's trace
    -- context): a JSON object, NULL for none.
    meta             LONGTEXT     NULL,
    PRIMARY KEY (seq),
    UNIQUE KEY jobs_id (id),
    UNIQUE KEY jobs_unique (unique_live),
    -- The claim walks this one in order and stops at its LIMIT (suspects: lost > 0); a
    -- freed slot walks its parked jobs (parked 1/2) here too. Every locking read names its
    -- index (FORCE INDEX): a plan that walked another index would lock, if only for a
    -- moment, rows it does not want (running jobs the rescue must take, say).
    KEY jobs_ready (queue, state, parked, lost, priority DESC, seq),
    -- Staging of due scheduled jobs, the next due time; the rescue's walk of running jobs.
    KEY jobs_due (state, run_at),
    KEY jobs_worker (worker_id, state),
    -- Listings by state, newest first; the retention pruner, oldest finished first.
    KEY jobs_listing (state, seq),
    KEY jobs_finished (state, finished_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

CREATE TABLE {db}.backburner_workers (
    id           VARCHAR(255) NOT NULL PRIMARY KEY,
    hostname     VARCHAR(255) NOT NULL,
    pid          INT          NOT NULL,
    queues       LONGTEXT     NOT NULL,  -- JSON array
    concurrency  INT          NOT NULL,
    started_at   DOUBLE       NOT NULL,
    heartbeat_at DOUBLE       NOT NULL,
    extra        LONGTEXT     NOT NULL   -- JSON object
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

-- The one worker that runs housekeeping; `lease_until` (server clock) is renewed while it lives.
-- A row with an expiry, not GET_LOCK: a named lock lives on one connection of the pool and
-- vanishes silently with it.
CREATE TABLE {db}.backburner_leader (
    name        VARCHAR(64)  NOT NULL PRIMARY KEY,
    holder      VARCHAR(255) NOT NULL,
    lease_until DOUBLE       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

-- Pause states of periodic schedules and queues (a row per name ever paused or resumed).
CREATE TABLE {db}.backburner_schedules (
    name       VARCHAR(255) NOT NULL PRIMARY KEY,
    paused     TINYINT      NOT NULL,
    changed_at DOUBLE       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

CREATE TABLE {db}.backburner_queues (
    name       VARCHAR(200) NOT NULL PRIMARY KEY,
    paused     TINYINT      NOT NULL,
    changed_at DOUBLE       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

-- Rate limits: the start times of a (queue, task)'s jobs within its last period, a sliding
-- log trimmed by every claim that consults it (under the group's lock row).
CREATE TABLE {db}.backburner_rate_starts (
    seq   BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    queue VARCHAR(200)  NOT NULL,
    task  VARCHAR(1000) NOT NULL,
    at    DOUBLE        NOT NULL,
    KEY rate_starts_window (queue, task(200), at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

-- One row per concurrency group or rate window (a hash of its name): a transaction that
-- judges or frees a group's slots locks its rows first, in hash order, so claims and
-- acknowledgements serialize per group (the PostgreSQL backend takes advisory locks).
CREATE TABLE {db}.backburner_limit_locks (
    name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
