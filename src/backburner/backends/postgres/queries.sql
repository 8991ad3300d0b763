-- Named queries of the PostgreSQL backend. `-- name: x` starts query x; parameters are $n;
-- `{schema}` becomes the backend's quoted schema. Each query is one statement: one round
-- trip, one transaction, prepared once per pooled connection.
--
-- Clocks: every time is the server's `now()` (the start of the statement's transaction, so
-- one statement sees one instant; each statement here is its own transaction, except an
-- insert in the application's transaction, see insert_jobs); workers only pass durations.
--
-- Fencing: a write from an attempt checks id + attempt + state = 'running', so an attempt
-- whose lease was lost (and maybe re-claimed, attempt + 1) changes nothing.
--
-- Wake-ups: a statement that makes work ready (insert, release, retry, a retry scheduled,
-- a rescue) also calls pg_notify() on the schema's wake-up channel. A notification is sent
-- when its transaction commits and dropped if it rolls back, so a listener never wakes to
-- find nothing, and an enqueue inside the application's own transaction wakes workers
-- exactly when that transaction commits. `o` names the sending process, whose own listener
-- skips the message (it has delivered the event in-process already). The insert statements
-- send their jobs' `job` events the same way, on the job channel.

-- name: insert_jobs
-- Any number of jobs in one statement: all or none. Rows are inserted in the order given,
-- so seq (the FIFO tiebreak) follows it. statement_timestamp(), not now(): this statement
-- may run inside the application's own transaction (transactional enqueue), and now() would
-- date the job, and start its delay, at that transaction's BEGIN. $18: each job's meta
-- (JSON text, NULL for none). $19-$21: the jobs' `job` events, sent here too (see
-- `announced` below).
WITH new AS (
    SELECT n.*,
           greatest(coalesce(to_timestamp(n.at), statement_timestamp()),
                    statement_timestamp() + make_interval(secs => n.delay)) AS run_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
                $7::int[], $8::float8[], $9::float8[], $10::float8[], $13::int[], $14::text[],
                $15::int[], $16::int[], $17::float8[], $18::text[]) WITH ORDINALITY
         AS n(id, task, queue, priority, args, kwargs, max_attempts, timeout, delay, at,
              limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period,
              meta, ord)
),
inserted AS (
    INSERT INTO {schema}.jobs
        (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
         created_at, updated_at, run_at, limit_concurrency, limit_key, limit_key_concurrency,
         rate_count, rate_period, meta)
    SELECT id, task, queue, priority,
           CASE WHEN run_at > statement_timestamp() THEN 'scheduled' ELSE 'pending' END,
           args, kwargs, max_attempts, timeout, statement_timestamp(), statement_timestamp(),
           run_at, limit_concurrency, limit_key, limit_key_concurrency, rate_count,
           rate_period, meta
    FROM new
    ORDER BY ord
    RETURNING seq, id, task, queue, state
),
woken AS MATERIALIZED (
    SELECT pg_notify($11, json_build_object(
               'o', $12::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM inserted) AS q
    HAVING count(*) > 0
),
-- Each job's `job` event (notifier.py's format, without its progress) on channel $19,
-- in the name of the sender $20: delivered at commit like the wake-up, so no second
-- statement publishes it afterwards (that one would notify, and queue for the commit
-- lock, again). A payload must stay under 8000 bytes: one takes the jobs of a span of $21
-- seqs, $21 sized by the caller from the longest event (PostgresNotifier.statement_events).
-- The seqs of the rows are distinct, so a span holds at most $21 of them (other inserts
-- taking seqs in between make more payloads than needed, never a bigger one); no window
-- or sort, so one job costs little more than the wake-up. NULL $19: no events here (the
-- caller publishes them).
announced AS MATERIALIZED (
    SELECT pg_notify($19, json_build_object(
               'o', $20::text,
               'e', json_agg(json_build_array('job', queue, id, task, state, 0)))::text)
    FROM inserted
    WHERE $19::text IS NOT NULL
    GROUP BY seq / $21::int
)
SELECT (SELECT count(*) FROM woken) + (SELECT count(*) FROM announced);

-- name: insert_flow_jobs
-- The jobs of a chain or group (backburner.flows), all or none: insert_jobs plus their
-- links ($11 flow ids; $12, $13 JSON arrays of ids or NULL; $14 waiting_on; $15 receives;
-- $24 the jobs' meta; $25-$27 their events, as in insert_jobs).
-- One that waits for others is scheduled at $16 (9999-12-31): past the end of every staging
-- scan, so only the completion of its last dependency (flow_ready) makes it pending.
WITH new AS (
    SELECT n.*,
           greatest(coalesce(to_timestamp(n.at), statement_timestamp()),
                    statement_timestamp() + make_interval(secs => n.delay)) AS due
    FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
                $7::int[], $8::float8[], $9::float8[], $10::float8[], $11::text[],
                $12::text[], $13::text[], $14::int[], $15::text[], $19::int[], $20::text[],
                $21::int[], $22::int[], $23::float8[], $24::text[]) WITH ORDINALITY
         AS n(id, task, queue, priority, args, kwargs, max_attempts, timeout, delay, at,
              flow_id, depends_on, dependents, waiting_on, receives, limit_concurrency,
              limit_key, limit_key_concurrency, rate_count, rate_period, meta, ord)
),
inserted AS (
    INSERT INTO {schema}.jobs
        (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
         created_at, updated_at, run_at, flow_id, depends_on, dependents, waiting_on,
         receives, limit_concurrency, limit_key, limit_key_concurrency, rate_count,
         rate_period, meta)
    SELECT id, task, queue, priority,
           CASE WHEN waiting_on > 0 OR due > statement_timestamp() THEN 'scheduled'
                ELSE 'pending' END,
           args, kwargs, max_attempts, timeout, statement_timestamp(), statement_timestamp(),
           CASE WHEN waiting_on > 0 THEN to_timestamp($16) ELSE due END,
           flow_id,
           CASE WHEN depends_on IS NULL THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(depends_on::jsonb)) END,
           CASE WHEN dependents IS NULL THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(dependents::jsonb)) END,
           waiting_on, receives, limit_concurrency, limit_key, limit_key_concurrency,
           rate_count, rate_period, meta
    FROM new
    ORDER BY ord
    RETURNING seq, id, task, queue, state
),
woken AS MATERIALIZED (
    SELECT pg_notify($17, json_build_object(
               'o', $18::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM inserted) AS q
    HAVING count(*) > 0
),
-- The jobs' events, as in insert_jobs.
announced AS MATERIALIZED (
    SELECT pg_notify($25, json_build_object(
               'o', $26::text,
               'e', json_agg(json_build_array('job', queue, id, task, state, 0)))::text)
    FROM inserted
    WHERE $25::text IS NOT NULL
    GROUP BY seq / $27::int
)
SELECT (SELECT count(*) FROM woken) + (SELECT count(*) FROM announced);

-- name: lock_unique_keys
-- Transaction-level advisory locks on the batch's keys, taken in one global order (sorted
-- hashes) before anything else: concurrent batches sharing keys in different orders would
-- otherwise wait on each other's index entries (ON CONFLICT) and row locks
-- (release_lapsed_keys) in a cycle, and PostgreSQL would abort one as a deadlock. A hash
-- collision only makes two unrelated keys wait for each other.
SELECT count(pg_advisory_xact_lock(h)) FROM (
    SELECT DISTINCT hashtextextended(concat_ws('/', 'backburner.unique', $4::text, queue,
                                               task, unique_key), 0) AS h
    FROM unnest($1::text[], $2::text[], $3::text[]) AS k(queue, task, unique_key)
    ORDER BY h
) AS sorted;

-- name: release_lapsed_keys
-- The period scope ends by the clock, which the unique index cannot see: holders whose
-- period is over let go of their keys here, right before insert_unique_jobs. A concurrent
-- release of the same row waits for this one's lock, then finds nothing left to do.
UPDATE {schema}.jobs SET unique_until = NULL
WHERE (queue, task, unique_key) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
  AND unique_scope = 'period' AND unique_until <= statement_timestamp();

-- name: insert_unique_jobs
-- insert_jobs for jobs with unique keys: a job whose key a live job holds is skipped
-- (ON CONFLICT on jobs_unique, whose predicate this repeats so PostgreSQL infers that
-- index). A concurrent insert of the same key makes this one wait for it to commit or roll
-- back, then skip or insert: exactly one holder. Returns the ids inserted; the caller looks
-- up the holders of the others (unique_holders) in a statement of its own, whose snapshot
-- sees a holder that committed while this one waited. $22-$24: as $19-$21 of insert_jobs.
WITH new AS (
    SELECT n.*,
           greatest(coalesce(to_timestamp(n.at), statement_timestamp()),
                    statement_timestamp() + make_interval(secs => n.delay)) AS run_at
    FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
                $7::int[], $8::float8[], $9::float8[], $10::float8[], $11::text[],
                $12::text[], $13::float8[], $16::int[], $17::text[], $18::int[], $19::int[],
                $20::float8[], $21::text[]) WITH ORDINALITY
         AS n(id, task, queue, priority, args, kwargs, max_attempts, timeout, delay, at,
              unique_key, unique_scope, unique_for, limit_concurrency, limit_key,
              limit_key_concurrency, rate_count, rate_period, meta, ord)
),
inserted AS (
    INSERT INTO {schema}.jobs
        (id, task, queue, priority, state, args, kwargs, max_attempts, timeout,
         created_at, updated_at, run_at, unique_key, unique_scope, unique_until,
         limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period, meta)
    SELECT id, task, queue, priority,
           CASE WHEN run_at > statement_timestamp() THEN 'scheduled' ELSE 'pending' END,
           args, kwargs, max_attempts, timeout, statement_timestamp(), statement_timestamp(),
           run_at, unique_key, unique_scope,
           statement_timestamp() + make_interval(secs => unique_for),
           limit_concurrency, limit_key, limit_key_concurrency, rate_count, rate_period, meta
    FROM new
    ORDER BY ord
    ON CONFLICT (queue, task, unique_key) WHERE unique_key IS NOT NULL AND (
        (unique_scope = 'active' AND state IN ('pending', 'scheduled', 'running'))
        OR (unique_scope = 'queued' AND state IN ('pending', 'scheduled') AND attempt = 0)
        OR (unique_scope = 'period' AND unique_until IS NOT NULL))
    DO NOTHING
    RETURNING seq, id, task, queue, state
),
woken AS MATERIALIZED (
    SELECT pg_notify($14, json_build_object(
               'o', $15::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM inserted) AS q
    HAVING count(*) > 0
),
-- The events of the jobs inserted (not of those skipped), as in insert_jobs.
announced AS MATERIALIZED (
    SELECT pg_notify($22, json_build_object(
               'o', $23::text,
               'e', json_agg(json_build_array('job', queue, id, task, state, 0)))::text)
    FROM inserted
    WHERE $22::text IS NOT NULL
    GROUP BY seq / $24::int
)
SELECT id, (SELECT count(*) FROM woken) + (SELECT count(*) FROM announced) AS told
FROM inserted;

-- name: unique_holders
-- The live holder of each (queue, task, key) asked for, if any.
SELECT k.queue, k.task, k.unique_key, j.id, j.state
FROM unnest($1::text[], $2::text[], $3::text[]) AS k(queue, task, unique_key)
JOIN {schema}.jobs AS j
  ON j.queue = k.queue AND j.task = k.task AND j.unique_key = k.unique_key
 AND j.unique_key IS NOT NULL AND (
        (j.unique_scope = 'active' AND j.state IN ('pending', 'scheduled', 'running'))
        OR (j.unique_scope = 'queued' AND j.state IN ('pending', 'scheduled') AND j.attempt = 0)
        OR (j.unique_scope = 'period' AND j.unique_until IS NOT NULL));

-- name: claim
-- Up to $3 ready jobs from the queues $2, taken in the order given, and within a queue
-- higher priority first, then oldest. One statement for the whole batch.
--
-- FOR UPDATE SKIP LOCKED: concurrent claimers never wait for each other and never get the
-- same row. A row another claimer changed after our snapshot is locked in its newest
-- version and its WHERE re-checked, so a job claimed meanwhile is skipped, not taken twice.
--
-- The candidates are chosen in MATERIALIZED CTEs: the planner may otherwise fold the
-- subquery into the UPDATE's join and run it (and its LIMIT) more than once, claiming more
-- rows than asked. Per queue, a LATERAL subquery walks jobs_ready in order and stops at the
-- limit; the outer LIMIT stops pulling rows, so a later queue is only read (and locked)
-- when the earlier ones did not fill the batch.
--
-- Suspects (lost > 0: a worker died holding them) are never claimed with other jobs. With
-- $5 (the worker runs nothing else) the first suspect in queue order is claimed alone.
-- The last SELECT always yields one row (now, next_run_at, suspects_waiting) even when
-- nothing was claimed; claimed jobs come as its remaining columns.
WITH suspect AS MATERIALIZED (
    SELECT j.id, q.pos
    FROM unnest($2::text[]) WITH ORDINALITY AS q(name, pos)
    CROSS JOIN LATERAL (
        SELECT id FROM {schema}.jobs
        WHERE state = 'pending' AND lost > 0 AND parked = 0 AND queue = q.name
        ORDER BY priority DESC, seq
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE $5::boolean
      AND NOT EXISTS (SELECT 1 FROM {schema}.queues AS p WHERE p.name = q.name AND p.paused)
    LIMIT 1
),
ready AS MATERIALIZED (
    SELECT j.id, q.pos
    FROM unnest($2::text[]) WITH ORDINALITY AS q(name, pos)
    CROSS JOIN LATERAL (
        SELECT id FROM {schema}.jobs
        WHERE state = 'pending' AND lost = 0 AND parked = 0 AND queue = q.name
        ORDER BY priority DESC, seq
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) AS j
    WHERE NOT EXISTS (SELECT 1 FROM suspect)
      -- A paused queue gives nothing: one primary-key probe per queue of a table that holds
      -- only queues ever paused, judged before the queue's jobs are walked or locked.
      AND NOT EXISTS (SELECT 1 FROM {schema}.queues AS p WHERE p.name = q.name AND p.paused)
    LIMIT $3
),
chosen AS (
    SELECT id, pos FROM suspect
    UNION ALL
    SELECT id, pos FROM ready
),
claimed AS (
    UPDATE {schema}.jobs AS j
    SET state = 'running', attempt = j.attempt + 1, worker_id = $1,
        lease_until = now() + make_interval(secs => $4), started_at = now(),
        updated_at = now(), cancel_requested = false, progress = NULL
    FROM chosen AS c
    WHERE j.id = c.id
    RETURNING c.pos, j.seq, j.id, j.task, j.queue, j.priority, j.args, j.kwargs, j.attempt,
              j.max_attempts, j.failures, j.lost, j.timeout, j.created_at, j.run_at,
              j.started_at, j.dependents IS NOT NULL AS has_dependents, j.limit_concurrency,
              j.limit_key, j.limit_key_concurrency, j.rate_count, j.rate_period, j.meta
),
summary AS (
    SELECT now() AS now,
           (SELECT min(run_at) FROM {schema}.jobs WHERE state = 'scheduled') AS next_run_at,
           EXISTS (SELECT 1 FROM {schema}.jobs AS s
                   WHERE state = 'pending' AND lost > 0 AND parked = 0
                     AND queue = ANY($2::text[])
                     AND NOT EXISTS (SELECT 1 FROM {schema}.queues AS p
                                     WHERE p.name = s.queue AND p.paused))
               AS suspects_waiting
)
SELECT m.now, m.next_run_at, m.suspects_waiting, c.*
FROM summary AS m LEFT JOIN claimed AS c ON true;

-- name: stage_due
-- Scheduled jobs whose time has come become claimable (every queue, like the other
-- backends). Run by a claimer whose claim saw one due. SKIP LOCKED: concurrent stagers split
-- the due rows between them instead of queueing on each other's row locks.
UPDATE {schema}.jobs SET state = 'pending', updated_at = now()
WHERE id IN (
    SELECT id FROM {schema}.jobs
    WHERE state = 'scheduled' AND run_at <= now()
    FOR UPDATE SKIP LOCKED
);

-- name: heartbeat
-- The worker's rows are locked in id order first, the order in which batched
-- acknowledgements lock them (see complete), so a heartbeat and an acknowledgement of the
-- same worker never deadlock. A row completed meanwhile fails the re-checked WHERE and is
-- simply not renewed.
WITH mine AS MATERIALIZED (
    SELECT id FROM {schema}.jobs
    WHERE worker_id = $1 AND state = 'running'
    ORDER BY id
    FOR UPDATE
),
held AS (
    UPDATE {schema}.jobs AS j SET lease_until = now() + make_interval(secs => $2)
    FROM mine
    WHERE j.id = mine.id
    RETURNING j.id, j.attempt, j.cancel_requested
),
beat AS (
    UPDATE {schema}.workers SET heartbeat_at = now() WHERE id = $1
)
SELECT id, attempt, cancel_requested FROM held;

-- name: update_progress
UPDATE {schema}.jobs SET progress = $3, updated_at = now()
WHERE id = $1 AND attempt = $2 AND state = 'running'
RETURNING true;

-- name: complete
-- A batch of completions; returns the (id, attempt) pairs accepted.
--
-- Lock order: `locked` takes the rows in id order before anything changes, the order the
-- heartbeat takes a worker's rows in (fail and release do the same). Left to the plan, a
-- batch would lock in hash-join or index order, and a heartbeat running at that moment
-- could deadlock with it (PostgreSQL would break the tie after deadlock_timeout by failing
-- one of them).
WITH i AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::int[], $3::text[]) AS i(id, attempt, result)
),
locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.jobs AS j JOIN i ON j.id = i.id AND j.attempt = i.attempt
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
)
UPDATE {schema}.jobs AS j
SET state = 'completed', result = i.result, finished_at = now(), updated_at = now(),
    lease_until = NULL
FROM i JOIN locked AS l ON l.id = i.id
WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running'
RETURNING j.id, j.attempt, j.queue, j.task, j.limit_concurrency, j.limit_key,
          j.limit_key_concurrency;

-- name: fail
-- A batch of failed attempts, each retried ($3 seconds from now) or ended ($4). The error
-- object comes from the worker; its time is stamped here, by the server's clock. Rows are
-- locked in id order first (see complete).
WITH i AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::int[], $3::float8[], $4::text[], $5::text[],
                         $6::int[], $7::text[])
           AS i(id, attempt, retry_in, final_state, reason, counts, error)
),
locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.jobs AS j JOIN i ON j.id = i.id AND j.attempt = i.attempt
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.jobs AS j
    SET state = CASE WHEN i.retry_in IS NOT NULL THEN 'scheduled' ELSE i.final_state END,
        run_at = CASE WHEN i.retry_in IS NOT NULL
                      THEN now() + make_interval(secs => i.retry_in) ELSE j.run_at END,
        failures = j.failures + i.counts,
        reason = CASE WHEN i.retry_in IS NOT NULL THEN NULL ELSE i.reason END,
        errors = j.errors || jsonb_build_array(
            i.error::jsonb || jsonb_build_object('at', date_part('epoch', now()))),
        finished_at = CASE WHEN i.retry_in IS NOT NULL THEN NULL ELSE now() END,
        worker_id = CASE WHEN i.retry_in IS NOT NULL THEN NULL ELSE j.worker_id END,
        lease_until = NULL, updated_at = now()
    FROM i JOIN locked AS l ON l.id = i.id
    WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running'
    RETURNING j.id, j.attempt, j.queue, j.state, j.task, j.limit_concurrency, j.limit_key,
              j.limit_key_concurrency
),
woken AS MATERIALIZED (
    SELECT pg_notify($8, json_build_object(
               'o', $9::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM done WHERE state = 'scheduled') AS q
    HAVING count(*) > 0
)
-- Reading `woken` is what runs it: a plain SELECT in WITH runs only when referenced.
SELECT id, attempt, queue, task, limit_concurrency, limit_key, limit_key_concurrency
FROM done WHERE (SELECT count(*) FROM woken) >= 0;

-- name: release
-- Rows are locked in id order first (see complete).
WITH i AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::int[]) AS i(id, attempt)
),
locked AS MATERIALIZED (
    SELECT j.id FROM {schema}.jobs AS j JOIN i ON j.id = i.id AND j.attempt = i.attempt
    WHERE j.state = 'running'
    ORDER BY j.id
    FOR UPDATE OF j
),
done AS (
    UPDATE {schema}.jobs AS j
    SET state = 'pending', worker_id = NULL, lease_until = NULL, updated_at = now()
    FROM i JOIN locked AS l ON l.id = i.id
    WHERE j.id = i.id AND j.attempt = i.attempt AND j.state = 'running'
    RETURNING j.id, j.attempt, j.queue, j.task, j.limit_concurrency, j.limit_key,
              j.limit_key_concurrency
),
woken AS MATERIALIZED (
    SELECT pg_notify($3, json_build_object(
               'o', $4::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM done) AS q
    HAVING count(*) > 0
)
SELECT id, attempt, queue, task, limit_concurrency, limit_key, limit_key_concurrency
FROM done WHERE (SELECT count(*) FROM woken) >= 0;

-- name: cancel
-- A waiting job is cancelled now; a running one gets a request its worker acts on. Returns
-- the state after the call (NULL: no such job).
WITH changed AS (
    UPDATE {schema}.jobs
    SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
        reason = CASE WHEN state = 'running' THEN reason ELSE 'cancelled' END,
        finished_at = CASE WHEN state = 'running' THEN finished_at ELSE now() END,
        cancel_requested = cancel_requested OR state = 'running',
        -- A parked job leaves the parked indexes (only pending jobs are parked).
        parked = 0, updated_at = now()
    WHERE id = $1 AND state IN ('pending', 'scheduled', 'running')
    RETURNING state, dependents
)
SELECT coalesce((SELECT state FROM changed),
                (SELECT state FROM {schema}.jobs WHERE id = $1)) AS state,
       (SELECT dependents FROM changed WHERE state = 'cancelled') AS dependents;

-- name: retry
-- A failed or cancelled job, pending again with a fresh set of attempts (its errors stay).
WITH revived AS (
    UPDATE {schema}.jobs
    SET state = 'pending', failures = 0, lost = 0, reason = NULL, result = NULL,
        finished_at = NULL, cancel_requested = false, run_at = now(), updated_at = now(),
        worker_id = NULL, parked = 0,
        -- Back in its scope, the job holds its unique key again, unless another live job
        -- took it meanwhile (then it runs without one: jobs_unique allows one holder).
        unique_key = CASE WHEN unique_scope IN ('active', 'queued') AND EXISTS (
            SELECT 1 FROM {schema}.jobs AS o
            WHERE o.queue = jobs.queue AND o.task = jobs.task
              AND o.unique_key = jobs.unique_key AND o.id <> jobs.id
              AND o.unique_key IS NOT NULL AND (
                  (o.unique_scope = 'active' AND o.state IN ('pending', 'scheduled', 'running'))
                  OR (o.unique_scope = 'queued' AND o.state IN ('pending', 'scheduled') AND o.attempt = 0)
                  OR (o.unique_scope = 'period' AND o.unique_until IS NOT NULL)))
            THEN NULL ELSE unique_key END
    -- A job of a flow cancelled while it still waited never got its input: not retried.
    WHERE id = $1 AND state IN ('failed', 'cancelled') AND waiting_on = 0
    RETURNING state, queue, dependents
),
woken AS MATERIALIZED (
    SELECT pg_notify($2, json_build_object(
               'o', $3::text, 'e', json_agg(json_build_array('wakeup', queue)))::text)
    FROM revived
    HAVING count(*) > 0
)
SELECT coalesce((SELECT state FROM revived),
                (SELECT state FROM {schema}.jobs WHERE id = $1)) AS state,
       (SELECT dependents FROM revived) AS dependents,
       (SELECT count(*) FROM woken) AS woken;

-- name: delete
DELETE FROM {schema}.jobs WHERE id = $1 AND state <> 'running' RETURNING state, dependents;

-- name: prune
-- One batch of the retention pruner: up to $4 terminal jobs, of the states in $1 each older
-- than its cutoff ($2: seconds since finished_at, by the server's clock). Per state, the
-- LATERAL walks jobs_finished oldest first and stops at the limit. A job whose
-- period-scoped unique key is still held (a periodic tick) stays: deleting it would free
-- the key for a second enqueue of the same tick. SKIP LOCKED: a job some statement holds
-- (a retry at that moment) is left for the next batch. Returns how many went.
WITH doomed AS MATERIALIZED (
    SELECT j.seq
    FROM unnest($1::text[], $2::float8[]) AS c(state, age)
    CROSS JOIN LATERAL (
        SELECT f.seq FROM {schema}.jobs AS f
        WHERE f.state IN ('completed', 'failed', 'cancelled')
          AND f.state = c.state AND f.finished_at < now() - make_interval(secs => c.age)
          AND (f.unique_scope IS DISTINCT FROM 'period' OR f.unique_until IS NULL
               OR f.unique_until <= now())
          -- A job of a chain or group that still waits for this one will read its result
          -- (or re-arm on its retry): kept until nothing waits for it.
          AND (f.dependents IS NULL OR NOT EXISTS (
                SELECT 1 FROM {schema}.jobs AS w
                WHERE w.id = ANY(f.dependents) AND w.state = 'scheduled' AND w.waiting_on > 0))
        ORDER BY f.finished_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) AS j
    LIMIT $3
),
gone AS (
    DELETE FROM {schema}.jobs AS j USING doomed AS d WHERE j.seq = d.seq
    -- Re-checked on the locked row: still terminal.
      AND j.state IN ('completed', 'failed', 'cancelled')
    RETURNING 1
)
SELECT count(*) AS n FROM gone;

-- name: rescue_expired
-- Jobs whose lease ran out by the server's clock: pending again, or failed `worker_lost`
-- after $1 lost workers (cancelled if a cancel was requested). A lost attempt is not the
-- task's fault, so it counts in `lost`, not `failures`.
--
-- Safe when every worker runs it at once: SKIP LOCKED splits the expired rows between
-- concurrent rescuers, and a row rescued (or heartbeated) meanwhile fails the re-checked
-- WHERE. A heartbeat that locked the row first wins: the worker is alive.
WITH expired AS MATERIALIZED (
    SELECT id FROM {schema}.jobs
    WHERE state = 'running' AND lease_until < now()
    FOR UPDATE SKIP LOCKED
),
moved AS (
    UPDATE {schema}.jobs AS j
    SET state = CASE WHEN j.cancel_requested THEN 'cancelled'
                     WHEN j.lost + 1 >= $1 THEN 'failed'
                     ELSE 'pending' END,
        reason = CASE WHEN j.cancel_requested THEN 'cancelled'
                      WHEN j.lost + 1 >= $1 THEN 'worker_lost'
                      ELSE j.reason END,
        finished_at = CASE WHEN j.cancel_requested OR j.lost + 1 >= $1
                           THEN now() ELSE NULL END,
        lost = j.lost + 1,
        errors = j.errors || jsonb_build_array(jsonb_build_object(
            'attempt', j.attempt, 'type', 'WorkerLost',
            'message', CASE WHEN j.lost + 1 >= $1 AND NOT j.cancel_requested
                THEN 'stopped as a poison job after ' || (j.lost + 1) || ' worker deaths '
                     || '(the max_lost limit, whatever its retries): '
                     || 'the worker holding this attempt stopped renewing its lease'
                ELSE 'the worker holding this attempt stopped renewing its lease' END,
            'traceback', NULL, 'reason', 'worker_lost', 'at', date_part('epoch', now()))),
        worker_id = NULL, lease_until = NULL, updated_at = now()
    FROM expired AS e
    WHERE j.id = e.id
    RETURNING j.id, j.task, j.queue, j.state, j.attempt, j.reason, j.dependents,
              j.limit_concurrency, j.limit_key, j.limit_key_concurrency
),
-- Workers that stopped heartbeating an hour ago are gone; keep the table small.
forgotten AS (
    DELETE FROM {schema}.workers
    WHERE id IN (SELECT id FROM {schema}.workers
                 WHERE heartbeat_at < now() - interval '1 hour'
                 FOR UPDATE SKIP LOCKED)
),
woken AS MATERIALIZED (
    SELECT pg_notify($2, json_build_object(
               'o', $3::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM moved WHERE state = 'pending') AS q
    HAVING count(*) > 0
)
SELECT id, task, queue, state, attempt, reason, dependents, limit_concurrency, limit_key,
       limit_key_concurrency
FROM moved WHERE (SELECT count(*) FROM woken) >= 0;

-- Chains and groups (backburner.flows). These run only for jobs with dependents, in the
-- transaction of the transition that completed, ended or retried the job they follow. Rows
-- are changed one statement at a time, so concurrent completions of a group's members
-- queue on the callback's row lock, and each sees the count the previous one left.

-- name: flow_nodes
-- What the flow rules (backburner.backends.flow_rules) look at: a statement of its own, so
-- (read committed) it sees every job of the flow that committed before.
SELECT id, state, reason, waiting_on, depends_on, dependents, receives, args, result
FROM {schema}.jobs WHERE id = ANY($1::text[]);
-- name: flow_nodes_to_change
-- The jobs a flow rule may change, locked until the transaction ends: concurrent transitions
-- of one flow (two members of a group completing) take turns on the job they both change.
SELECT id, state, reason, waiting_on, depends_on, dependents, receives, args, result
FROM {schema}.jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE;
-- name: flow_wait
-- One of their dependencies completed; they still wait for others.
UPDATE {schema}.jobs j SET waiting_on = c.waiting_on, updated_at = now()
FROM unnest($1::text[], $2::int[]) AS c(id, waiting_on)
WHERE j.id = c.id AND j.state = 'scheduled';
-- name: flow_ready
-- Their last dependency completed: ready now, with what they receive first in their arguments.
WITH ready AS (
    UPDATE {schema}.jobs j
    SET state = 'pending', waiting_on = 0, run_at = now(), args = c.args, updated_at = now()
    FROM unnest($1::text[], $2::text[]) AS c(id, args)
    WHERE j.id = c.id AND j.state = 'scheduled'
    RETURNING j.queue
)
SELECT pg_notify($3, json_build_object(
           'o', $4::text, 'e', json_agg(DISTINCT jsonb_build_array('wakeup', queue)))::text)
FROM ready HAVING count(*) > 0;
-- name: flow_cancel
-- A job they wait for failed or was cancelled: they never run.
UPDATE {schema}.jobs j
SET state = 'cancelled', reason = 'dependency_failed', finished_at = now(), updated_at = now(),
    errors = j.errors || jsonb_build_array(
        c.error::jsonb || jsonb_build_object('at', date_part('epoch', now())))
FROM unnest($1::text[], $2::text[]) AS c(id, error)
WHERE j.id = c.id AND j.state = 'scheduled';
-- name: flow_rearm
-- The job they waited for is retried: they wait again, for what has not completed.
UPDATE {schema}.jobs j
SET state = 'scheduled', run_at = to_timestamp($3), waiting_on = c.waiting_on, reason = NULL,
    finished_at = NULL, updated_at = now()
FROM unnest($1::text[], $2::int[]) AS c(id, waiting_on)
WHERE j.id = c.id AND j.state = 'cancelled' AND j.reason = 'dependency_failed';

-- name: get
SELECT * FROM {schema}.jobs WHERE id = $1;

-- name: list_jobs
-- Newest first; the cursor is the seq of the last job of the previous page. A NULL
-- parameter means "any".
SELECT * FROM {schema}.jobs
WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))
  AND ($2::text IS NULL OR task = $2::text)
  AND ($3::text IS NULL OR queue = $3::text)
  AND ($4::bigint IS NULL OR seq < $4::bigint)
ORDER BY seq DESC
LIMIT $5;

-- name: custom_plans
-- Listings and counts run in a transaction that plans each of their statements for its
-- actual parameters: a generic plan of "($1 IS NULL OR state = ANY($1))" cannot use the
-- partial indexes jobs_failed/jobs_cancelled, a custom one simplifies it and can.
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: list_jobs_scan
-- A listing whose filter `scans` (records.SCAN_WINDOW): the search and creation-time
-- predicates ($7 needle, already lowercased; $8, $9 epoch seconds; NULL: any) are checked on
-- a window of at most $6 rows that match the walked ones ($1-$4, as in list_jobs).
SELECT * FROM (
    SELECT * FROM {schema}.jobs
    WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))
      AND ($2::text IS NULL OR task = $2::text)
      AND ($3::text IS NULL OR queue = $3::text)
      AND ($4::bigint IS NULL OR seq < $4::bigint)
    ORDER BY seq DESC
    LIMIT $6
) AS w
WHERE ($8::float8 IS NULL OR created_at >= to_timestamp($8::float8))
  AND ($9::float8 IS NULL OR created_at < to_timestamp($9::float8))
  AND ($7::text IS NULL
       OR strpos(lower(args), $7::text) > 0
       OR strpos(lower(kwargs), $7::text) > 0
       OR strpos(lower(coalesce(result, '')), $7::text) > 0
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(
                      CASE WHEN jsonb_typeof(w.errors) = 'array' THEN w.errors
                           ELSE '[]'::jsonb END) AS e
                  WHERE strpos(lower(coalesce(e->>'type', '')), $7::text) > 0
                     OR strpos(lower(coalesce(e->>'message', '')), $7::text) > 0))
ORDER BY seq DESC
LIMIT $5;

-- name: list_jobs_window
-- How many rows the window of list_jobs_scan read, and where it ended.
SELECT count(*) AS n, min(seq) AS last FROM (
    SELECT seq FROM {schema}.jobs
    WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))
      AND ($2::text IS NULL OR task = $2::text)
      AND ($3::text IS NULL OR queue = $3::text)
      AND ($4::bigint IS NULL OR seq < $4::bigint)
    ORDER BY seq DESC
    LIMIT $5
) AS w;

-- name: count_jobs
-- Parameters as list_jobs_scan ($1-$3, $7-$9 there are $1-$6 here), over every row.
SELECT count(*) FROM {schema}.jobs AS w
WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))
  AND ($2::text IS NULL OR task = $2::text)
  AND ($3::text IS NULL OR queue = $3::text)
  AND ($5::float8 IS NULL OR created_at >= to_timestamp($5::float8))
  AND ($6::float8 IS NULL OR created_at < to_timestamp($6::float8))
  AND ($4::text IS NULL
       OR strpos(lower(args), $4::text) > 0
       OR strpos(lower(kwargs), $4::text) > 0
       OR strpos(lower(coalesce(result, '')), $4::text) > 0
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(
                      CASE WHEN jsonb_typeof(w.errors) = 'array' THEN w.errors
                           ELSE '[]'::jsonb END) AS e
                  WHERE strpos(lower(coalesce(e->>'type', '')), $4::text) > 0
                     OR strpos(lower(coalesce(e->>'message', '')), $4::text) > 0));

-- name: counts
-- The folded counts and the log not folded yet, in one snapshot: exact (migration 9).
SELECT queue, state, sum(n)::bigint AS n FROM (
    SELECT queue, state, n FROM {schema}.job_counts
    UNION ALL SELECT queue, state, n FROM {schema}.job_count_deltas
) kept GROUP BY queue, state HAVING sum(n) > 0;

-- name: fold_counts
-- Move the log into job_counts, when no one else is folding (the advisory lock, taken once
-- for the statement, is held to its commit): two folders could update the same counters in
-- opposite orders and deadlock. Rows logged meanwhile wait for the next fold.
WITH folder AS (
    SELECT pg_try_advisory_xact_lock(hashtextextended('backburner.fold_counts:' || $1, 0))
        AS alone
), folded AS (
    DELETE FROM {schema}.job_count_deltas WHERE (SELECT alone FROM folder)
    RETURNING queue, state, n
)
INSERT INTO {schema}.job_counts AS c (queue, state, n)
SELECT queue, state, sum(n) FROM folded GROUP BY queue, state
ON CONFLICT (queue, state) DO UPDATE SET n = c.n + excluded.n;

-- name: oldest_ready
-- When the longest-waiting ready job of a queue became ready, looked for at the head of
-- each priority level of jobs_ready (one index seek per level, 64 levels at most) rather
-- than over every ready job: within a level jobs are in insertion order, so a younger job
-- made ready late (a retry) may hide an older one behind it; good enough for an age alert.
WITH RECURSIVE levels(priority, depth) AS (
    SELECT (SELECT max(priority) FROM {schema}.jobs
            WHERE queue = $1 AND state = 'pending' AND lost = 0 AND parked = 0), 0
    UNION ALL
    SELECT (SELECT max(priority) FROM {schema}.jobs
            WHERE queue = $1 AND state = 'pending' AND lost = 0 AND parked = 0
              AND priority < levels.priority), depth + 1
    FROM levels WHERE levels.priority IS NOT NULL AND depth < 64
)
SELECT extract(epoch FROM clock_timestamp() - min((
    SELECT run_at FROM {schema}.jobs
    WHERE queue = $1 AND state = 'pending' AND lost = 0 AND parked = 0
      AND priority = levels.priority ORDER BY priority DESC, seq LIMIT 1)))::float8 AS age
FROM levels WHERE priority IS NOT NULL;

-- name: now
SELECT clock_timestamp() AS now;

-- name: schedule_states
SELECT name, paused, changed_at FROM {schema}.schedules;

-- name: set_schedule_paused
INSERT INTO {schema}.schedules (name, paused, changed_at) VALUES ($1, $2, clock_timestamp())
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at;

-- name: register_worker
INSERT INTO {schema}.workers
    (id, hostname, pid, queues, concurrency, started_at, heartbeat_at, extra)
VALUES ($1, $2, $3, $4, $5, now(), now(), $6::jsonb)
ON CONFLICT (id) DO UPDATE
SET hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    concurrency = excluded.concurrency, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, extra = excluded.extra;

-- name: deregister_worker
DELETE FROM {schema}.workers WHERE id = $1;

-- name: list_workers
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at, extra::text AS extra
FROM {schema}.workers ORDER BY started_at, id;

-- name: notify
-- Job and cancel events, sent by the notifier after the change they report committed.
-- Notifications are not data: this transaction commits without waiting for the WAL flush.
SELECT set_config('synchronous_commit', 'off', true), pg_notify(t.channel, t.payload)
FROM unnest($1::text[], $2::text[]) AS t(channel, payload);

-- name: lead
-- Take the lead if nobody holds it, it lapsed, or we hold it already (renewal). The row
-- comes back only when this worker holds it after the statement. ON CONFLICT makes two
-- workers racing for an empty table safe: one inserts, the other's update is judged by
-- the WHERE against the winner's row.
INSERT INTO {schema}.leader AS l (name, holder, until)
VALUES ('housekeeping', $1, now() + make_interval(secs => $2))
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
WHERE l.holder = excluded.holder OR l.until < now()
RETURNING l.holder;

-- name: resign
DELETE FROM {schema}.leader WHERE name = 'housekeeping' AND holder = $1;

-- name: queue_states
SELECT name, paused, changed_at FROM {schema}.queues;

-- name: set_queue_paused
INSERT INTO {schema}.queues (name, paused, changed_at) VALUES ($1, $2, clock_timestamp())
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at;
-- name: lock_limits
-- Limits (backburner.limits) are judged under transaction-level advisory locks on their
-- groups, taken in one global order (sorted hashes) so that two transactions never wait on
-- each other in a cycle: a claim that took limited jobs (counts, parks, delays) and a
-- transition that freed slots (unparks) serialize per group, and each reads the other's
-- committed work in its next statement (READ COMMITTED: a fresh snapshot per statement).
-- That is what keeps a count from being exceeded and a parked job from missing its slot.
SELECT count(pg_advisory_xact_lock(h)) FROM (
    SELECT DISTINCT hashtextextended(concat_ws('/', 'backburner.limit', $4::text, kind, queue,
                                               task, key), 0) AS h
    FROM unnest($1::text[], $2::text[], $3::text[], $5::text[]) AS g(kind, queue, task, key)
    ORDER BY h
) AS sorted;

-- name: limit_counts
-- Running jobs per concurrency group (a walk of jobs_running): kind 'task' counts the task's jobs
-- that have a task limit, kind 'key' those of one key that have a key limit.
SELECT g.ord, (
    SELECT count(*) FROM {schema}.jobs AS j
    WHERE j.state = 'running' AND j.queue = g.queue AND j.task = g.task
      AND CASE WHEN g.kind = 'task' THEN j.limit_concurrency IS NOT NULL
               ELSE j.limit_key = g.key AND j.limit_key_concurrency IS NOT NULL END
) AS running
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
     AS g(kind, queue, task, key, ord);

-- name: park
-- Jobs just claimed over a concurrency limit go back, untouched (their attempt number too:
-- no worker ever saw this claim), to wait out of the claim's way for a free slot.
UPDATE {schema}.jobs AS j
SET
    -- Back to attempt 0, a queued-scope job holds its key again; the claim committed
    -- before this, so an insert may have taken the key meanwhile: then it goes on without
    -- it (as a retried one does, see backburner.unique), which jobs_unique allows.
    unique_key = CASE WHEN j.unique_scope = 'queued' AND j.attempt = 1 AND EXISTS (
        SELECT 1 FROM {schema}.jobs AS o
        WHERE o.queue = j.queue AND o.task = j.task
          AND o.unique_key = j.unique_key AND o.id <> j.id
          AND o.unique_key IS NOT NULL AND (
              (o.unique_scope = 'active' AND o.state IN ('pending', 'scheduled', 'running'))
              OR (o.unique_scope = 'queued' AND o.state IN ('pending', 'scheduled') AND o.attempt = 0)
              OR (o.unique_scope = 'period' AND o.unique_until IS NOT NULL)))
        THEN NULL ELSE j.unique_key END,
    state = 'pending', parked = p.parked, attempt = j.attempt - 1, worker_id = NULL,
    lease_until = NULL, started_at = CASE WHEN j.attempt = 1 THEN NULL ELSE j.started_at END
FROM unnest($1::text[], $2::smallint[]) AS p(id, parked)
WHERE j.id = p.id AND j.state = 'running';

-- name: unpark
-- Slots freed in these groups: as many parked jobs per group become ready (priority, then
-- FIFO) and the workers of their queues are woken (this process's by the caller).
WITH g AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[])
           AS g(kind, queue, task, key, n)
),
-- One walk per kind, each naming its index's predicate (parked = 1 / 2) so it is used.
chosen AS MATERIALIZED (
    SELECT w.id FROM g CROSS JOIN LATERAL (
        SELECT id FROM {schema}.jobs AS j
        WHERE j.parked = 1 AND j.queue = g.queue AND j.task = g.task AND j.state = 'pending'
        ORDER BY j.priority DESC, j.seq
        LIMIT g.n
        FOR UPDATE
    ) AS w
    WHERE g.kind = 'task'
    UNION ALL
    SELECT w.id FROM g CROSS JOIN LATERAL (
        SELECT id FROM {schema}.jobs AS j
        WHERE j.parked = 2 AND j.queue = g.queue AND j.task = g.task
          AND j.limit_key = g.key AND j.state = 'pending'
        ORDER BY j.priority DESC, j.seq
        LIMIT g.n
        FOR UPDATE
    ) AS w
    WHERE g.kind = 'key'
),
unparked AS (
    UPDATE {schema}.jobs AS j SET parked = 0
    FROM chosen AS c WHERE j.id = c.id AND j.state = 'pending'
    RETURNING j.queue
),
woken AS MATERIALIZED (
    SELECT pg_notify($6, json_build_object(
               'o', $7::text, 'e', json_agg(json_build_array('wakeup', q.queue)))::text)
    FROM (SELECT DISTINCT queue FROM unparked) AS q
    HAVING count(*) > 0
)
SELECT DISTINCT queue FROM unparked WHERE (SELECT count(*) FROM woken) >= 0;

-- name: trim_rate_window
DELETE FROM {schema}.rate_starts
WHERE queue = $1 AND task = $2 AND at <= now() - make_interval(secs => $3);

-- name: rate_starts
-- The starts of the window, oldest first (epoch seconds).
SELECT at FROM {schema}.rate_starts WHERE queue = $1 AND task = $2 ORDER BY at;

-- name: record_starts
INSERT INTO {schema}.rate_starts (queue, task, at)
SELECT $1, $2, now() FROM generate_series(1, $3);

-- name: delay_for_rate
-- Jobs just claimed over their task's rate go back, untouched, to start when there is room.
UPDATE {schema}.jobs AS j
SET
    -- Back to attempt 0, a queued-scope job holds its key again; the claim committed
    -- before this, so an insert may have taken the key meanwhile: then it goes on without
    -- it (as a retried one does, see backburner.unique), which jobs_unique allows.
    unique_key = CASE WHEN j.unique_scope = 'queued' AND j.attempt = 1 AND EXISTS (
        SELECT 1 FROM {schema}.jobs AS o
        WHERE o.queue = j.queue AND o.task = j.task
          AND o.unique_key = j.unique_key AND o.id <> j.id
          AND o.unique_key IS NOT NULL AND (
              (o.unique_scope = 'active' AND o.state IN ('pending', 'scheduled', 'running'))
              OR (o.unique_scope = 'queued' AND o.state IN ('pending', 'scheduled') AND o.attempt = 0)
              OR (o.unique_scope = 'period' AND o.unique_until IS NOT NULL)))
        THEN NULL ELSE j.unique_key END,
    state = 'scheduled', run_at = to_timestamp($2), attempt = j.attempt - 1,
    worker_id = NULL, lease_until = NULL,
    started_at = CASE WHEN j.attempt = 1 THEN NULL ELSE j.started_at END
WHERE j.id = ANY($1::text[]) AND j.state = 'running';

-- name: stranded_limits
-- Groups with parked jobs and a free slot. The transition that frees a slot hands it on in
-- a transaction of its own, right after its own: a process that dies in between leaves
-- the slot free and its parked jobs waiting. The rescue (on the housekeeping leader) hands
-- such slots on; unparking one too many is harmless (the claim parks it again).
SELECT g.kind, g.queue, g.task, g.key, (g.allowed - r.running)::int AS n FROM (
    SELECT 'task' AS kind, queue, task, NULL::text AS key, max(limit_concurrency) AS allowed
    FROM {schema}.jobs WHERE parked = 1 GROUP BY queue, task
    UNION ALL
    SELECT 'key', queue, task, limit_key, max(limit_key_concurrency)
    FROM {schema}.jobs WHERE parked = 2 GROUP BY queue, task, limit_key
) AS g
CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {schema}.jobs AS j
    WHERE j.state = 'running' AND j.queue = g.queue AND j.task = g.task
      AND CASE WHEN g.kind = 'task' THEN j.limit_concurrency IS NOT NULL
               ELSE j.limit_key = g.key AND j.limit_key_concurrency IS NOT NULL END
) AS r
WHERE r.running < g.allowed;
