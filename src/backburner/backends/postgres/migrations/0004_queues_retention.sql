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
