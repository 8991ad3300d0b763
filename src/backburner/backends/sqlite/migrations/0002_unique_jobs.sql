-- Unique jobs (backburner.unique): the key a job was enqueued with, its scope, and for the
-- period scope the time (epoch seconds) the key lapses.
ALTER TABLE backburner_jobs ADD COLUMN unique_key TEXT;
ALTER TABLE backburner_jobs ADD COLUMN unique_scope TEXT;
ALTER TABLE backburner_jobs ADD COLUMN unique_until REAL;

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
