-- Named queries of the MySQL/MariaDB backend. `-- name: x` starts query x; parameters are
-- %(name)s; `{db}` becomes the backend's quoted database, `{now}` the server's clock in
-- epoch seconds (UTC_TIMESTAMP: no session time zone, no daylight-saving ambiguity) and
-- `{collation}` the binary collation of the tables (see schema.py). MySQL has no RETURNING
-- for UPDATE: a transition reads the rows it changes locked (FOR UPDATE), decides, then
-- writes; connections.py sends those statements in as few scripts as it can.
--
-- Clocks: a transaction reads `{now}` once (with its first statement) and stamps every time
-- with that value. Fencing: a write from an attempt checks id + attempt + state = 'running'.

-- name: now
SELECT {now} AS now;

-- name: clock
-- The instant of the current transaction (see connections.OPENING).
SELECT @backburner_now AS now;

-- name: claim_meta
-- Read with the claim's first rows: the clock, and when the earliest scheduled job is due.
SELECT @backburner_now AS now,
       (SELECT MIN(run_at) FROM {db}.backburner_jobs WHERE state = 'scheduled') AS next_run_at;

-- name: suspects_waiting
SELECT EXISTS (
    SELECT 1 FROM {db}.backburner_jobs AS s
    WHERE s.queue IN %(queues)s AND s.state = 'pending' AND s.parked = 0 AND s.lost > 0
      AND NOT EXISTS (SELECT 1 FROM {db}.backburner_queues AS p
                      WHERE p.name = s.queue AND p.paused)
) AS suspects;

-- name: due
-- Scheduled jobs whose time has come (every queue, like the other backends). SKIP LOCKED:
-- concurrent stagers split them instead of queueing on each other's row locks.
SELECT seq FROM {db}.backburner_jobs FORCE INDEX (jobs_due)
WHERE state = 'scheduled' AND run_at <= %(now)s
ORDER BY run_at LIMIT 1000
FOR UPDATE SKIP LOCKED;

-- name: stage
UPDATE {db}.backburner_jobs SET state = 'pending', updated_at = %(now)s
WHERE seq IN %(seqs)s AND state = 'scheduled';

-- name: claimable
-- Ready jobs of one queue in claim order (jobs_ready, walked in order, stopped at the
-- LIMIT). SKIP LOCKED: concurrent claimers never wait for each other and never get the same
-- row. A paused queue gives nothing (one primary-key probe, not locked: a locking read
-- locks the rows of its subqueries only when they say so). `lost` > 0: suspects, see claim.
SELECT seq, id, task, queue, priority, args, kwargs, attempt, max_attempts, failures, lost,
       timeout, created_at, run_at, dependents IS NOT NULL AS has_dependents, meta,
       limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period
FROM {db}.backburner_jobs FORCE INDEX (jobs_ready)
WHERE queue = %(queue)s AND state = 'pending' AND parked = 0 AND {lost}
  AND NOT EXISTS (SELECT 1 FROM {db}.backburner_queues AS p
                  WHERE p.name = %(queue)s AND p.paused)
ORDER BY priority DESC, seq
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: fail_invalid
-- A claimed row whose fields are not what Backburner writes (R20: see records.claim_problems)
-- fails here, in the claim's transaction, before a worker or a limit ever sees it.
UPDATE {db}.backburner_jobs
SET state = 'failed', attempt = attempt + 1, failures = failures + 1,
    reason = 'invalid_payload',
    errors = JSON_ARRAY_APPEND(IF(JSON_VALID(errors), errors, '[]'), '$',
                               JSON_EXTRACT(%(error)s, '$')),
    finished_at = %(now)s, updated_at = %(now)s
WHERE seq = %(seq)s;

-- name: start
UPDATE {db}.backburner_jobs
SET state = 'running', attempt = attempt + 1, worker_id = %(worker_id)s,
    lease_until = %(now)s + %(lease)s, started_at = %(now)s, updated_at = %(now)s,
    cancel_requested = 0, progress = NULL
WHERE seq IN %(seqs)s;

-- name: lock_groups
-- The lock rows of concurrency groups and rate windows (hashes, sorted by the caller), made
-- on first use. An INSERT that meets an existing row locks it exclusively until the
-- transaction ends, in the order given: one global order, so no cycle.
INSERT INTO {db}.backburner_limit_locks (name) VALUES {rows}
ON DUPLICATE KEY UPDATE name = name;

-- name: running_in_task
-- Running jobs of a task's group (a walk of the running jobs, bounded by the workers'
-- total concurrency).
SELECT COUNT(*) AS n FROM {db}.backburner_jobs
WHERE state = 'running' AND queue = %(queue)s AND task = %(task)s
  AND limit_concurrency IS NOT NULL;

-- name: running_in_key
SELECT COUNT(*) AS n FROM {db}.backburner_jobs
WHERE state = 'running' AND queue = %(queue)s AND task = %(task)s AND limit_key = %(key)s
  AND limit_key_concurrency IS NOT NULL;

-- name: trim_rate_window
DELETE FROM {db}.backburner_rate_starts
WHERE queue = %(queue)s AND task = %(task)s AND at <= %(since)s;

-- name: rate_starts
SELECT at FROM {db}.backburner_rate_starts
WHERE queue = %(queue)s AND task = %(task)s ORDER BY at;

-- name: record_start
INSERT INTO {db}.backburner_rate_starts (queue, task, at)
VALUES (%(queue)s, %(task)s, %(now)s);

-- name: park
-- A job over its concurrency limit is left pending, out of the claim's way, until a freed
-- slot of its group unparks it (it was never started: nothing else changes).
UPDATE {db}.backburner_jobs SET parked = %(parked)s WHERE seq = %(seq)s;

-- name: delay_for_rate
UPDATE {db}.backburner_jobs SET state = 'scheduled', run_at = %(run_at)s WHERE seq = %(seq)s;

-- name: parked_in_task
-- A slot of a task's group freed: the next parked jobs (priority, then FIFO).
SELECT seq, queue FROM {db}.backburner_jobs FORCE INDEX (jobs_ready)
WHERE queue = %(queue)s AND state = 'pending' AND parked = 1 AND task = %(task)s
ORDER BY priority DESC, seq LIMIT %(n)s
FOR UPDATE;

-- name: parked_in_key
SELECT seq, queue FROM {db}.backburner_jobs FORCE INDEX (jobs_ready)
WHERE queue = %(queue)s AND state = 'pending' AND parked = 2 AND task = %(task)s
  AND limit_key = %(key)s
ORDER BY priority DESC, seq LIMIT %(n)s
FOR UPDATE;

-- name: unpark
UPDATE {db}.backburner_jobs SET parked = 0 WHERE seq IN %(seqs)s;

-- name: parked_groups
-- Groups with parked jobs, with their limits: the rescue hands on slots whose hand-over a
-- dying process missed (unparking one too many is harmless: the claim parks it again).
SELECT 'task' AS kind, queue, task, NULL AS `key`, MAX(limit_concurrency) AS allowed
FROM {db}.backburner_jobs WHERE parked = 1 GROUP BY queue, task
UNION ALL
SELECT 'key', queue, task, limit_key, MAX(limit_key_concurrency)
FROM {db}.backburner_jobs WHERE parked = 2 GROUP BY queue, task, limit_key;

-- name: release_lapsed_keys
-- The period scope ends by the clock, which the unique index cannot see: holders whose
-- period is over let go of their keys here, right before the insert looks keys up.
UPDATE {db}.backburner_jobs SET unique_until = NULL
WHERE unique_live IN %(hashes)s AND unique_scope = 'period' AND unique_until <= %(now)s;

-- name: unique_holders
SELECT unique_live, id, state FROM {db}.backburner_jobs WHERE unique_live IN %(hashes)s;

-- name: lock_running
-- The running attempts a batch acknowledges, locked in id order (the unique index is walked
-- in order), so two batches never lock the same rows in opposite orders.
SELECT id, attempt, queue, task, dependents IS NOT NULL AS has_dependents,
       limit_concurrency, limit_key, limit_key_concurrency
FROM {db}.backburner_jobs FORCE INDEX (jobs_id)
WHERE id IN %(ids)s AND state = 'running'
ORDER BY id
FOR UPDATE;

-- Acknowledgements: sent in the script that locks them (lock_running), before their
-- acceptance is known, so each is fenced by its WHERE and stamped with @backburner_now.

-- name: complete
UPDATE {db}.backburner_jobs
SET state = 'completed', result = %(result)s, finished_at = @backburner_now,
    updated_at = @backburner_now, lease_until = NULL
WHERE id = %(id)s AND attempt = %(attempt)s AND state = 'running';

-- name: fail
-- One failed attempt: retried (scheduled `retry_in` seconds from now) or ended in `final`;
-- its error appended with the time (a row whose errors are not JSON, written by something
-- else, starts a new list).
UPDATE {db}.backburner_jobs
SET state = IF(%(retry_in)s IS NULL, %(final)s, 'scheduled'),
    run_at = IF(%(retry_in)s IS NULL, run_at, @backburner_now + %(retry_in)s),
    failures = failures + %(counts)s,
    reason = IF(%(retry_in)s IS NULL, %(reason)s, NULL),
    errors = JSON_ARRAY_APPEND(IF(JSON_VALID(errors), errors, '[]'), '$',
                               JSON_SET(JSON_EXTRACT(%(error)s, '$'), '$.at', @backburner_now)),
    finished_at = IF(%(retry_in)s IS NULL, @backburner_now, NULL),
    worker_id = IF(%(retry_in)s IS NULL, worker_id, NULL),
    lease_until = NULL, updated_at = @backburner_now
WHERE id = %(id)s AND attempt = %(attempt)s AND state = 'running';

-- name: release
UPDATE {db}.backburner_jobs
SET state = 'pending', worker_id = NULL, lease_until = NULL, updated_at = @backburner_now
WHERE id = %(id)s AND attempt = %(attempt)s AND state = 'running';

-- name: renew_leases
UPDATE {db}.backburner_jobs FORCE INDEX (jobs_worker) SET lease_until = {now} + %(lease)s
WHERE worker_id = %(worker_id)s AND state = 'running';

-- name: held
SELECT id, attempt, cancel_requested FROM {db}.backburner_jobs
WHERE worker_id = %(worker_id)s AND state = 'running';

-- name: heartbeat_worker
UPDATE {db}.backburner_workers SET heartbeat_at = {now} WHERE id = %(worker_id)s;

-- name: update_progress
UPDATE {db}.backburner_jobs SET progress = %(progress)s, updated_at = {now}
WHERE id = %(id)s AND attempt = %(attempt)s AND state = 'running';

-- name: lock_job
SELECT id, state, queue, task, attempt, waiting_on, dependents, unique_hash, unique_scope
FROM {db}.backburner_jobs FORCE INDEX (jobs_id) WHERE id = %(id)s FOR UPDATE;

-- name: cancel_waiting
-- A parked job leaves the parked walk (only pending jobs are parked).
UPDATE {db}.backburner_jobs
SET state = 'cancelled', reason = 'cancelled', finished_at = %(now)s, updated_at = %(now)s,
    parked = 0
WHERE id = %(id)s;

-- name: request_cancel
UPDATE {db}.backburner_jobs SET cancel_requested = 1, updated_at = %(now)s WHERE id = %(id)s;

-- name: other_holder
-- Whether another job holds this key now (a retried job then runs without it).
SELECT id FROM {db}.backburner_jobs WHERE unique_live = %(hash)s AND id <> %(id)s;

-- name: retry
UPDATE {db}.backburner_jobs
SET state = 'pending', failures = 0, lost = 0, reason = NULL, result = NULL,
    finished_at = NULL, cancel_requested = 0, run_at = %(now)s, updated_at = %(now)s,
    worker_id = NULL, parked = 0,
    unique_key = IF(%(keep_key)s, unique_key, NULL),
    unique_hash = IF(%(keep_key)s, unique_hash, NULL)
WHERE id = %(id)s;

-- name: delete
DELETE FROM {db}.backburner_jobs WHERE id = %(id)s;

-- name: expired
-- Running jobs whose lease ran out by the server's clock: read without locks (a walk of the
-- running jobs), so a rescue that finds none takes no lock at all.
SELECT seq FROM {db}.backburner_jobs WHERE state = 'running' AND lease_until < {now};

-- name: lock_expired
-- Those of them still expired, locked by primary key (no other row). SKIP LOCKED:
-- concurrent rescuers split them, and a heartbeat holding a row at that moment wins.
SELECT seq, id, task, queue, attempt, lost, cancel_requested, dependents,
       limit_concurrency, limit_key, limit_key_concurrency
FROM {db}.backburner_jobs FORCE INDEX (PRIMARY)
WHERE seq IN %(seqs)s AND state = 'running' AND lease_until < @backburner_now
FOR UPDATE SKIP LOCKED;

-- name: rescue
-- A lost attempt is not the task's fault: it counts in `lost`, not `failures`.
UPDATE {db}.backburner_jobs
SET state = %(state)s, reason = COALESCE(%(reason)s, reason), finished_at = %(finished_at)s,
    lost = lost + 1,
    errors = JSON_ARRAY_APPEND(IF(JSON_VALID(errors), errors, '[]'), '$',
                               JSON_EXTRACT(%(error)s, '$')),
    worker_id = NULL, lease_until = NULL, updated_at = %(now)s
WHERE seq = %(seq)s;

-- name: forget_dead_workers
-- Workers that stopped heartbeating an hour ago are gone; keep the table small.
DELETE FROM {db}.backburner_workers WHERE heartbeat_at < %(now)s - 3600;

-- Chains and groups (backburner.flows): what the flow rules read, and their changes.

-- name: flow_nodes
SELECT id, state, reason, waiting_on, depends_on, dependents, receives, args, result
FROM {db}.backburner_jobs WHERE id IN %(ids)s;

-- name: flow_nodes_to_change
-- The jobs a flow rule may change, locked in id order until the transaction ends.
SELECT id, state, reason, waiting_on, depends_on, dependents, receives, args, result
FROM {db}.backburner_jobs FORCE INDEX (jobs_id) WHERE id IN %(ids)s ORDER BY id FOR UPDATE;

-- name: flow_wait
UPDATE {db}.backburner_jobs SET waiting_on = %(waiting_on)s, updated_at = %(now)s
WHERE id = %(id)s AND state = 'scheduled';

-- name: flow_ready
UPDATE {db}.backburner_jobs
SET state = 'pending', waiting_on = 0, run_at = %(now)s, args = %(args)s, updated_at = %(now)s
WHERE id = %(id)s AND state = 'scheduled';

-- name: flow_cancel
UPDATE {db}.backburner_jobs
SET state = 'cancelled', reason = 'dependency_failed', finished_at = %(now)s,
    updated_at = %(now)s,
    errors = JSON_ARRAY_APPEND(IF(JSON_VALID(errors), errors, '[]'), '$',
                               JSON_EXTRACT(%(error)s, '$'))
WHERE id = %(id)s AND state = 'scheduled';

-- name: flow_rearm
UPDATE {db}.backburner_jobs
SET state = 'scheduled', run_at = %(run_at)s, waiting_on = %(waiting_on)s, reason = NULL,
    finished_at = NULL, updated_at = %(now)s
WHERE id = %(id)s AND state = 'cancelled' AND reason = 'dependency_failed';

-- name: prunable
-- One state's batch of the retention pruner, oldest finished first. Kept: a job whose
-- period-scoped key is still held (deleting it would let a late scheduler enqueue the tick
-- again) and one a job of its flow still waits for (that one reads its result, or re-arms on
-- its retry). SKIP LOCKED: a job some transition holds now is left for the next batch.
SELECT seq FROM {db}.backburner_jobs AS f FORCE INDEX (jobs_finished)
WHERE f.state = %(state)s AND f.finished_at < %(before)s
  AND (f.unique_scope IS NULL OR f.unique_scope <> 'period' OR f.unique_until IS NULL
       OR f.unique_until <= %(now)s)
  AND (f.dependents IS NULL OR NOT EXISTS (
        SELECT 1 FROM JSON_TABLE(IF(JSON_VALID(f.dependents), f.dependents, '[]'), '$[*]'
                                 COLUMNS (dep VARCHAR(255) PATH '$')) AS d
        JOIN {db}.backburner_jobs AS w ON w.id = d.dep COLLATE {collation}
        WHERE w.state = 'scheduled' AND w.waiting_on > 0))
ORDER BY f.finished_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: prune
DELETE FROM {db}.backburner_jobs
WHERE seq IN %(seqs)s AND state IN ('completed', 'failed', 'cancelled');

-- name: search
-- The search condition of a listing or count (a fragment): the folded needle in the stored
-- JSON of args, kwargs or result, or in an error's type or message. Compared in the binary
-- collation: LOWER() folds case beyond ASCII, and no accent is taken for another letter.
(INSTR(LOWER(w.args), %(search)s) > 0
 OR INSTR(LOWER(w.kwargs), %(search)s) > 0
 OR INSTR(LOWER(COALESCE(w.result, '')), %(search)s) > 0
 OR EXISTS (SELECT 1 FROM JSON_TABLE(IF(JSON_VALID(w.errors), w.errors, '[]'), '$[*]'
                                     COLUMNS (type LONGTEXT PATH '$.type',
                                              message LONGTEXT PATH '$.message')) AS e
            WHERE INSTR(LOWER(e.type) COLLATE {collation}, %(search)s) > 0
               OR INSTR(LOWER(e.message) COLLATE {collation}, %(search)s) > 0))

-- name: get
SELECT * FROM {db}.backburner_jobs WHERE id = %(id)s;

-- name: counts
-- The folded counts and the log not folded yet, in one snapshot: exact (migration 2).
SELECT queue, state, SUM(n) AS n FROM (
    SELECT queue, state, n FROM {db}.backburner_job_counts
    UNION ALL SELECT queue, state, n FROM {db}.backburner_job_count_deltas
) kept GROUP BY queue, state HAVING SUM(n) > 0;

-- name: count_deltas
-- A fold's share of the log: rows an open transaction still holds (its own inserts) are
-- skipped and wait for the next fold, as do rows another folder took.
SELECT id, queue, state, n FROM {db}.backburner_job_count_deltas
ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED;

-- name: add_counts
-- VALUES: one (queue, state, n) per counter, in key order (fold_counts writes them).
INSERT INTO {db}.backburner_job_counts (queue, state, n) VALUES {values}
ON DUPLICATE KEY UPDATE n = n + VALUES(n);

-- name: forget_deltas
DELETE FROM {db}.backburner_job_count_deltas WHERE id IN %(ids)s;

-- name: oldest_ready
-- When the longest-waiting ready job of a queue became ready, looked for at the head of
-- each priority level of jobs_ready (one seek per level, 64 levels at most) rather than
-- over every ready job: within a level jobs are in insertion order, so a younger job made
-- ready late (a retry) may hide an older one behind it; good enough for an age alert.
WITH RECURSIVE levels (priority, depth) AS (
    SELECT (SELECT MAX(priority) FROM {db}.backburner_jobs FORCE INDEX (jobs_ready)
            WHERE queue = %(queue)s AND state = 'pending' AND parked = 0 AND lost = 0), 0
    UNION ALL
    SELECT (SELECT MAX(j.priority) FROM {db}.backburner_jobs j FORCE INDEX (jobs_ready)
            WHERE j.queue = %(queue)s AND j.state = 'pending' AND j.parked = 0
              AND j.lost = 0 AND j.priority < levels.priority), depth + 1
    FROM levels WHERE levels.priority IS NOT NULL AND depth < 64
)
SELECT {now} - MIN((
    SELECT j.run_at FROM {db}.backburner_jobs j FORCE INDEX (jobs_ready)
    WHERE j.queue = %(queue)s AND j.state = 'pending' AND j.parked = 0 AND j.lost = 0
      AND j.priority = levels.priority ORDER BY j.priority DESC, j.seq LIMIT 1)) AS age
FROM levels WHERE levels.priority IS NOT NULL;

-- name: lead
-- Take the lead if nobody holds it, it lapsed, or we hold it already (renewal). `holder` is
-- assigned first (assignments run left to right, each seeing the one before): the lease is
-- renewed only when the row is then ours.
INSERT INTO {db}.backburner_leader (name, holder, lease_until)
VALUES ('housekeeping', %(worker_id)s, {now} + %(ttl)s)
ON DUPLICATE KEY UPDATE
    holder = IF(holder = %(worker_id)s OR lease_until < {now}, %(worker_id)s, holder),
    lease_until = IF(holder = %(worker_id)s, {now} + %(ttl)s, lease_until);

-- name: leader
SELECT holder FROM {db}.backburner_leader WHERE name = 'housekeeping';

-- name: resign
DELETE FROM {db}.backburner_leader WHERE name = 'housekeeping' AND holder = %(worker_id)s;

-- name: schedule_states
SELECT name, paused, changed_at FROM {db}.backburner_schedules;

-- name: set_schedule_paused
INSERT INTO {db}.backburner_schedules (name, paused, changed_at)
VALUES (%(name)s, %(paused)s, {now})
ON DUPLICATE KEY UPDATE paused = %(paused)s, changed_at = {now};

-- name: queue_states
SELECT name, paused, changed_at FROM {db}.backburner_queues;

-- name: set_queue_paused
INSERT INTO {db}.backburner_queues (name, paused, changed_at)
VALUES (%(name)s, %(paused)s, {now})
ON DUPLICATE KEY UPDATE paused = %(paused)s, changed_at = {now};

-- name: register_worker
INSERT INTO {db}.backburner_workers
    (id, hostname, pid, queues, concurrency, started_at, heartbeat_at, extra)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s, {now}, {now}, %(extra)s)
ON DUPLICATE KEY UPDATE hostname = %(hostname)s, pid = %(pid)s, queues = %(queues)s,
    concurrency = %(concurrency)s, started_at = {now}, heartbeat_at = {now},
    extra = %(extra)s;

-- name: deregister_worker
DELETE FROM {db}.backburner_workers WHERE id = %(id)s;

-- name: list_workers
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at, extra
FROM {db}.backburner_workers ORDER BY started_at, id;
