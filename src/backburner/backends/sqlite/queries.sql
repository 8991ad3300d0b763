-- Named queries of the SQLite backend. `-- name: x` starts query x; parameters are :named.

-- name: insert_job
INSERT INTO backburner_jobs
    (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
     created_at, updated_at, run_at, meta)
VALUES
    (:id, :task, :queue, :priority,
     CASE WHEN :run_at > :now THEN 'scheduled' ELSE 'pending' END,
     :args, :kwargs, :max_attempts, :timeout, :now, :now, max(:run_at, :now), :meta);

-- name: insert_limited_job
-- insert_job for a job with limits (backburner.limits); unique keys may come with them.
INSERT INTO backburner_jobs
    (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
     created_at, updated_at, run_at, unique_key, unique_scope, unique_until,
     limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period, meta)
VALUES
    (:id, :task, :queue, :priority,
     CASE WHEN :run_at > :now THEN 'scheduled' ELSE 'pending' END,
     :args, :kwargs, :max_attempts, :timeout, :now, :now, max(:run_at, :now),
     :unique_key, :unique_scope, :unique_until,
     :limit_concurrency, :limit_key, :limit_key_concurrency, :rate_count, :rate_period, :meta);

-- name: insert_unique_job
INSERT INTO backburner_jobs
    (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
     created_at, updated_at, run_at, unique_key, unique_scope, unique_until, meta)
VALUES
    (:id, :task, :queue, :priority,
     CASE WHEN :run_at > :now THEN 'scheduled' ELSE 'pending' END,
     :args, :kwargs, :max_attempts, :timeout, :now, :now, max(:run_at, :now),
     :unique_key, :unique_scope, :unique_until, :meta);

-- name: insert_flow_job
-- A job of a chain or group (backburner.flows). One that waits for others is stored
-- scheduled at :waiting_run_at (9999-12-31): past the end of every staging scan, so only
-- the completion of its last dependency (flow_release) makes it pending.
INSERT INTO backburner_jobs
    (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
     created_at, updated_at, run_at, flow_id, depends_on, dependents, waiting_on, receives,
     limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period, meta)
VALUES
    (:id, :task, :queue, :priority,
     CASE WHEN :waiting_on > 0 OR :run_at > :now THEN 'scheduled' ELSE 'pending' END,
     :args, :kwargs, :max_attempts, :timeout, :now, :now,
     CASE WHEN :waiting_on > 0 THEN :waiting_run_at ELSE max(:run_at, :now) END,
     :flow_id, :depends_on, :dependents, :waiting_on, :receives,
     :limit_concurrency, :limit_key, :limit_key_concurrency, :rate_count, :rate_period, :meta);

-- name: release_lapsed_key
-- The period scope ends by the clock, which the unique index cannot see: its holder lets go
-- here, in the insert's transaction, right before the key is looked up. The unique index's
-- predicate is repeated word for word so SQLite seeks that index: without it, this scanned
-- the whole table on every insert with a unique key.
UPDATE backburner_jobs SET unique_until = NULL
WHERE queue = :queue AND task = :task AND unique_key = :unique_key
  AND unique_key IS NOT NULL AND (
        (unique_scope = 'active' AND state IN ('pending', 'scheduled', 'running'))
        OR (unique_scope = 'queued' AND state IN ('pending', 'scheduled') AND attempt = 0)
        OR (unique_scope = 'period' AND unique_until IS NOT NULL))
  AND unique_scope = 'period' AND unique_until <= :now;

-- name: unique_holder
-- The predicate is the unique index's, word for word, so SQLite can use that index.
SELECT id, state FROM backburner_jobs
WHERE queue = :queue AND task = :task AND unique_key = :unique_key
  AND unique_key IS NOT NULL AND (
        (unique_scope = 'active' AND state IN ('pending', 'scheduled', 'running'))
        OR (unique_scope = 'queued' AND state IN ('pending', 'scheduled') AND attempt = 0)
        OR (unique_scope = 'period' AND unique_until IS NOT NULL));

-- name: stage_due
-- Scheduled jobs whose time has come become claimable. Walks the scheduled index only.
UPDATE backburner_jobs SET state = 'pending', updated_at = :now
WHERE state = 'scheduled' AND run_at <= :now;

-- name: claim_from_queue
-- The subquery walks backburner_jobs_ready in order and stops at :limit. Jobs that lost a
-- worker (lost > 0) are left to claim_suspect, parked ones to a freed slot. The last column
-- says whether the job has limits: the claim reads and checks those of such jobs only.
UPDATE backburner_jobs
SET state = 'running', attempt = attempt + 1, worker_id = :worker_id,
    lease_until = :now + :lease, started_at = :now, updated_at = :now,
    cancel_requested = 0, progress = NULL
WHERE seq IN (
    SELECT seq FROM backburner_jobs
    WHERE state = 'pending' AND lost = 0 AND parked = 0 AND queue = :queue
      -- A paused queue gives nothing. Not correlated with the row: evaluated once, one
      -- primary-key probe of a table that holds only queues ever paused.
      AND NOT EXISTS (SELECT 1 FROM backburner_queues WHERE name = :queue AND paused)
    ORDER BY priority DESC, seq
    LIMIT :limit
)
RETURNING id, task, queue, priority, args, kwargs, attempt, max_attempts, failures, lost,
          timeout, created_at, run_at, started_at, seq,
          dependents IS NOT NULL AS has_dependents,
          limit_concurrency IS NOT NULL OR limit_key_concurrency IS NOT NULL
          OR rate_count IS NOT NULL AS has_limits, meta;

-- name: claim_suspect
-- One job that lost a worker, for a worker that runs nothing else: if it is a poison job it
-- takes only itself down next time.
UPDATE backburner_jobs
SET state = 'running', attempt = attempt + 1, worker_id = :worker_id,
    lease_until = :now + :lease, started_at = :now, updated_at = :now,
    cancel_requested = 0, progress = NULL
WHERE seq = (
    SELECT seq FROM backburner_jobs
    WHERE state = 'pending' AND lost > 0 AND parked = 0 AND queue = :queue
      AND NOT EXISTS (SELECT 1 FROM backburner_queues WHERE name = :queue AND paused)
    ORDER BY priority DESC, seq
    LIMIT 1
)
RETURNING id, task, queue, priority, args, kwargs, attempt, max_attempts, failures, lost,
          timeout, created_at, run_at, started_at, seq,
          dependents IS NOT NULL AS has_dependents,
          limit_concurrency IS NOT NULL OR limit_key_concurrency IS NOT NULL
          OR rate_count IS NOT NULL AS has_limits, meta;

-- name: suspect_waiting
SELECT 1 FROM backburner_jobs WHERE state = 'pending' AND lost > 0 AND parked = 0
  AND queue = :queue
  AND NOT EXISTS (SELECT 1 FROM backburner_queues WHERE name = :queue AND paused)
LIMIT 1;

-- name: limits_of_claimed
-- The limits of a claimed job that has some (has_limits): the claim returns only whether it
-- does, so ordinary jobs carry five columns fewer through it.
SELECT limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period
FROM backburner_jobs WHERE seq = :seq;
-- name: running_in_task
-- Running jobs of a task's concurrency group: a walk of backburner_jobs_running, whose size
-- is bounded by the workers' total concurrency (read only when a claim took limited jobs).
SELECT count(*) FROM backburner_jobs INDEXED BY backburner_jobs_running
WHERE state = 'running' AND queue = :queue AND task = :task AND limit_concurrency IS NOT NULL;

-- name: running_in_key
SELECT count(*) FROM backburner_jobs INDEXED BY backburner_jobs_running
WHERE state = 'running' AND queue = :queue AND task = :task AND limit_key = :key
  AND limit_key_concurrency IS NOT NULL;

-- name: park
-- A job just claimed over its concurrency limit goes back, untouched (its attempt number
-- too: no worker ever saw this claim), to wait out of the claim's way for a free slot.
UPDATE backburner_jobs
SET state = 'pending', parked = :parked, attempt = attempt - 1, worker_id = NULL,
    lease_until = NULL, started_at = CASE WHEN attempt = 1 THEN NULL ELSE started_at END
WHERE seq = :seq;

-- name: unpark_task
-- A slot of a task's group freed: the next parked jobs become ready (priority, then FIFO).
UPDATE backburner_jobs SET parked = 0
WHERE seq IN (
    SELECT seq FROM backburner_jobs
    WHERE parked = 1 AND queue = :queue AND task = :task AND state = 'pending'
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING queue;

-- name: unpark_key
UPDATE backburner_jobs SET parked = 0
WHERE seq IN (
    SELECT seq FROM backburner_jobs
    WHERE parked = 2 AND queue = :queue AND task = :task AND limit_key = :key
      AND state = 'pending'
    ORDER BY priority DESC, seq
    LIMIT :n
)
RETURNING queue;

-- name: trim_rate_window
DELETE FROM backburner_rate_starts WHERE queue = :queue AND task = :task AND at <= :since;

-- name: rate_starts
-- The starts of the window, oldest first: how many there are, and when the oldest that
-- must leave for a new start to fit does.
SELECT at FROM backburner_rate_starts WHERE queue = :queue AND task = :task ORDER BY at;

-- name: record_start
INSERT INTO backburner_rate_starts (queue, task, at) VALUES (:queue, :task, :now);

-- name: delay_for_rate
-- A job just claimed over its task's rate goes back, untouched, to start when there is room.
UPDATE backburner_jobs
SET state = 'scheduled', run_at = :run_at, attempt = attempt - 1, worker_id = NULL,
    lease_until = NULL, started_at = CASE WHEN attempt = 1 THEN NULL ELSE started_at END
WHERE seq = :seq;

-- name: next_run_at
SELECT min(run_at) FROM backburner_jobs WHERE state = 'scheduled';

-- name: heartbeat
UPDATE backburner_jobs SET lease_until = :now + :lease
WHERE worker_id = :worker_id AND state = 'running'
RETURNING id, attempt, cancel_requested;

-- name: heartbeat_worker
UPDATE backburner_workers SET heartbeat_at = :now WHERE id = :worker_id;

-- name: update_progress
UPDATE backburner_jobs SET progress = :progress, updated_at = :now
WHERE id = :id AND attempt = :attempt AND state = 'running';

-- name: limited_of
-- Of the jobs whose attempts just ended, those with concurrency limits and what freeing their
-- slots needs (backends/limit_rules.py slots_freed): one read per acknowledged batch, through
-- the partial index of limited jobs, so a batch of ordinary jobs finds nothing at once.
SELECT id, queue, task, limit_concurrency, limit_key, limit_key_concurrency
FROM backburner_jobs INDEXED BY backburner_jobs_limited
WHERE id IN (SELECT value FROM json_each(:ids))
  AND (limit_concurrency IS NOT NULL OR limit_key_concurrency IS NOT NULL);
-- name: complete
UPDATE backburner_jobs
SET state = 'completed', result = :result, finished_at = :now, updated_at = :now,
    lease_until = NULL
WHERE id = :id AND attempt = :attempt AND state = 'running';

-- name: fail
-- One failed attempt. Retried (scheduled after :retry_in) or ended (failed/cancelled).
UPDATE backburner_jobs
SET state = CASE WHEN :retry_in IS NOT NULL THEN 'scheduled' ELSE :final_state END,
    run_at = CASE WHEN :retry_in IS NOT NULL THEN :now + :retry_in ELSE run_at END,
    failures = failures + :counts,
    reason = CASE WHEN :retry_in IS NOT NULL THEN NULL ELSE :reason END,
    errors = json_insert(CASE WHEN json_valid(errors) THEN errors ELSE '[]' END, '$[#]', json(:error)),
    finished_at = CASE WHEN :retry_in IS NOT NULL THEN NULL ELSE :now END,
    worker_id = CASE WHEN :retry_in IS NOT NULL THEN NULL ELSE worker_id END,
    lease_until = NULL, updated_at = :now
WHERE id = :id AND attempt = :attempt AND state = 'running';

-- name: release
UPDATE backburner_jobs
SET state = 'pending', worker_id = NULL, lease_until = NULL, updated_at = :now
WHERE id = :id AND attempt = :attempt AND state = 'running';

-- name: cancel_waiting
-- A parked job leaves the parked indexes (only pending jobs are parked: see schema.sql).
UPDATE backburner_jobs
SET state = 'cancelled', reason = 'cancelled', finished_at = :now, updated_at = :now,
    parked = 0
WHERE id = :id AND state IN ('pending', 'scheduled')
RETURNING task, queue, attempt, dependents;

-- name: request_cancel
UPDATE backburner_jobs SET cancel_requested = 1, updated_at = :now
WHERE id = :id AND state = 'running';

-- name: state_of
SELECT state FROM backburner_jobs WHERE id = :id;

-- name: retry
UPDATE backburner_jobs
SET state = 'pending', failures = 0, lost = 0, reason = NULL, result = NULL,
    finished_at = NULL, cancel_requested = 0, run_at = :now, updated_at = :now,
    worker_id = NULL, parked = 0,
    -- Back in its scope, the job holds its unique key again, unless another live job took
    -- it meanwhile (then it runs without one; the unique index allows one holder).
    unique_key = CASE WHEN unique_scope IN ('active', 'queued') AND EXISTS (
        SELECT 1 FROM backburner_jobs AS o
        WHERE o.queue = backburner_jobs.queue AND o.task = backburner_jobs.task
          AND o.unique_key = backburner_jobs.unique_key AND o.id != backburner_jobs.id
          AND o.unique_key IS NOT NULL AND (
                (o.unique_scope = 'active' AND o.state IN ('pending', 'scheduled', 'running'))
                OR (o.unique_scope = 'queued' AND o.state IN ('pending', 'scheduled')
                    AND o.attempt = 0)
                OR (o.unique_scope = 'period' AND o.unique_until IS NOT NULL)))
        THEN NULL ELSE unique_key END
-- A job of a flow cancelled while it still waited never got its input: not retried.
WHERE id = :id AND state IN ('failed', 'cancelled') AND waiting_on = 0
RETURNING task, queue, attempt, dependents;

-- name: delete
DELETE FROM backburner_jobs WHERE id = :id AND state != 'running'
RETURNING state, dependents;

-- name: seq_bounds
SELECT min(seq), max(seq) FROM backburner_jobs;

-- name: job_at_or_after
SELECT seq, created_at FROM backburner_jobs WHERE seq >= :seq ORDER BY seq LIMIT 1;

-- name: prune_window_end
-- The retention pruner's next window: at most :window rows from :start, in rowid order,
-- below :upto (the first job created after the pruner's cutoff: nothing from there on can
-- have finished before it). Bounds the rows one prune statement looks at.
SELECT max(seq) FROM (
    SELECT seq FROM backburner_jobs WHERE seq >= :start AND seq < :upto
    ORDER BY seq LIMIT :window
);

-- name: prune
-- One window of the retention pruner: finished jobs past their state's cutoff (NULL: kept
-- forever), oldest first. No index of finished jobs is kept (each completion would write
-- it): the window walks the rowid. A job whose period-scoped unique key is still held (a
-- periodic tick) stays: deleting it would free the key for a second enqueue of that tick.
DELETE FROM backburner_jobs WHERE seq IN (
    SELECT seq FROM backburner_jobs
    WHERE seq >= :start AND seq <= :end
      AND ((state = 'completed' AND finished_at < :before_completed)
           OR (state = 'failed' AND finished_at < :before_failed)
           OR (state = 'cancelled' AND finished_at < :before_cancelled))
      AND (unique_scope IS NOT 'period' OR unique_until IS NULL OR unique_until <= :now)
      -- A job of a chain or group that still waits for this one will read its result (or
      -- re-arm on its retry): kept until nothing waits for it.
      AND (dependents IS NULL OR NOT EXISTS (
            SELECT 1 FROM json_each(backburner_jobs.dependents) AS d
            JOIN backburner_jobs AS w ON w.id = d.value
            WHERE w.state = 'scheduled' AND w.waiting_on > 0))
    ORDER BY seq
    LIMIT :limit
)
RETURNING seq;

-- name: rescue_expired
-- A lost attempt is not the task's fault, so it does not count against max_attempts;
-- `lost` counts them instead, and ends a job that keeps killing its workers.
UPDATE backburner_jobs
SET state = CASE
        WHEN cancel_requested THEN 'cancelled'
        WHEN lost + 1 >= :max_lost THEN 'failed'
        ELSE 'pending' END,
    reason = CASE
        WHEN cancel_requested THEN 'cancelled'
        WHEN lost + 1 >= :max_lost THEN 'worker_lost'
        ELSE reason END,
    finished_at = CASE
        WHEN cancel_requested OR lost + 1 >= :max_lost THEN :now ELSE NULL END,
    lost = lost + 1,
    errors = json_insert(CASE WHEN json_valid(errors) THEN errors ELSE '[]' END, '$[#]', json_object(
        'attempt', attempt, 'type', 'WorkerLost',
        'message', CASE WHEN lost + 1 >= :max_lost AND NOT cancel_requested
            THEN 'stopped as a poison job after ' || (lost + 1) || ' worker deaths (the '
                 || 'max_lost limit, whatever its retries): '
                 || 'the worker holding this attempt stopped renewing its lease'
            ELSE 'the worker holding this attempt stopped renewing its lease' END,
        'traceback', NULL, 'reason', 'worker_lost', 'at', :now)),
    worker_id = NULL, lease_until = NULL, updated_at = :now
WHERE state = 'running' AND lease_until < :now
RETURNING id, task, queue, state, attempt, reason, dependents,
          limit_concurrency, limit_key, limit_key_concurrency;

-- Chains and groups (backburner.flows). These run only for jobs with dependents, in the
-- transaction of the transition that completed, ended or retried the job they follow.

-- name: flow_nodes
-- What the flow rules (backburner.backends.flow_rules) read of the jobs they ask for.
SELECT id, state, reason, waiting_on, depends_on, dependents, receives, args, result
FROM backburner_jobs WHERE id IN (SELECT value FROM json_each(:ids));
-- name: flow_wait
-- One of the job's dependencies completed; it still waits for others.
UPDATE backburner_jobs SET waiting_on = :waiting_on, updated_at = :now
WHERE id = :id AND state = 'scheduled';
-- name: flow_ready
-- Its last dependency completed: ready now, with what it receives first in its arguments.
UPDATE backburner_jobs
SET state = 'pending', waiting_on = 0, run_at = :now, args = :args, updated_at = :now
WHERE id = :id AND state = 'scheduled';
-- name: flow_cancel
-- A job it waits for failed or was cancelled: it never runs.
UPDATE backburner_jobs
SET state = 'cancelled', reason = 'dependency_failed', finished_at = :now, updated_at = :now,
    errors = json_insert(CASE WHEN json_valid(errors) THEN errors ELSE '[]' END, '$[#]', json(:error))
WHERE id = :id AND state = 'scheduled';
-- name: flow_rearm
-- The job it waited for is retried: it waits again, for what has not completed.
UPDATE backburner_jobs
SET state = 'scheduled', run_at = :waiting_run_at, waiting_on = :waiting_on, reason = NULL,
    finished_at = NULL, updated_at = :now
WHERE id = :id AND state = 'cancelled' AND reason = 'dependency_failed';

-- name: get
SELECT * FROM backburner_jobs WHERE id = :id;

-- name: counts
-- Kept by triggers as jobs move (migration 10): a few rows, whatever the table's size.
SELECT queue, state, n FROM backburner_job_counts WHERE n > 0;

-- name: oldest_ready
-- The run_at of the longest-waiting ready job of a queue, looked for at the head of each
-- priority level of the claim's index (one seek per level, 64 levels at most) rather than
-- over every ready job: within a level jobs are in insertion order, so a younger job made
-- ready late (a retry) may hide an older one behind it; good enough for an age alert.
WITH RECURSIVE levels(priority, depth) AS (
    SELECT (SELECT max(priority) FROM backburner_jobs INDEXED BY backburner_jobs_ready
            WHERE queue = :queue AND state = 'pending' AND lost = 0 AND parked = 0), 0
    UNION ALL
    SELECT (SELECT max(priority) FROM backburner_jobs INDEXED BY backburner_jobs_ready
            WHERE queue = :queue AND state = 'pending' AND lost = 0 AND parked = 0
              AND priority < levels.priority), depth + 1
    FROM levels WHERE levels.priority IS NOT NULL AND depth < 64
)
SELECT min((SELECT run_at FROM backburner_jobs INDEXED BY backburner_jobs_ready
            WHERE queue = :queue AND state = 'pending' AND lost = 0 AND parked = 0
              AND priority = levels.priority ORDER BY priority DESC, seq LIMIT 1)) AS run_at
FROM levels WHERE priority IS NOT NULL;

-- name: register_worker
INSERT OR REPLACE INTO backburner_workers
    (id, hostname, pid, queues, concurrency, started_at, heartbeat_at, extra)
VALUES (:id, :hostname, :pid, :queues, :concurrency, :now, :now, :extra);

-- name: deregister_worker
DELETE FROM backburner_workers WHERE id = :id;

-- name: forget_dead_workers
DELETE FROM backburner_workers WHERE heartbeat_at < :before;

-- name: list_workers
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at, extra
FROM backburner_workers ORDER BY started_at;

-- name: lead
-- Take the lead if nobody holds it, it lapsed, or we hold it already; then say who holds it.
INSERT INTO backburner_leader (name, holder, until) VALUES ('housekeeping', :worker_id, :until)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE backburner_leader.holder = excluded.holder OR backburner_leader.until < :now;

-- name: leader
SELECT holder FROM backburner_leader WHERE name = 'housekeeping';

-- name: resign
DELETE FROM backburner_leader WHERE name = 'housekeeping' AND holder = :worker_id;

-- name: schedule_states
SELECT name, paused, changed_at FROM backburner_schedules;

-- name: set_schedule_paused
INSERT INTO backburner_schedules (name, paused, changed_at) VALUES (:name, :paused, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at;

-- name: search
-- The search condition of a listing or count (a fragment): the folded needle :search in
-- the stored JSON of args, kwargs or result, or in an error's type or message.
-- backburner_fold is Python's str.lower (registered on every connection): SQLite's lower()
-- folds ASCII only, and every store must find the same jobs.
(instr(backburner_fold(args), :search) > 0
 OR instr(backburner_fold(kwargs), :search) > 0
 OR instr(backburner_fold(coalesce(result, '')), :search) > 0
 OR (json_valid(errors) AND EXISTS (SELECT 1 FROM json_each(errors) AS e
            WHERE instr(backburner_fold(coalesce(json_extract(e.value, '$.type'), '')), :search) > 0
               OR instr(backburner_fold(coalesce(json_extract(e.value, '$.message'), '')), :search) > 0)))

-- name: queue_states
SELECT name, paused, changed_at FROM backburner_queues;

-- name: set_queue_paused
INSERT INTO backburner_queues (name, paused, changed_at) VALUES (:name, :paused, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at;
