-- Global limits (backburner.limits): each job carries its own, so the claim can judge them
-- without knowing the app's tasks. `parked`: a pending job over a concurrency limit waits
-- out of the claim's way, on its task's group (1) or its key's (2), until a slot frees.
ALTER TABLE backburner_jobs ADD COLUMN limit_concurrency INTEGER;
ALTER TABLE backburner_jobs ADD COLUMN limit_key TEXT;
ALTER TABLE backburner_jobs ADD COLUMN limit_key_concurrency INTEGER;
ALTER TABLE backburner_jobs ADD COLUMN rate_count INTEGER;
ALTER TABLE backburner_jobs ADD COLUMN rate_period REAL;
ALTER TABLE backburner_jobs ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;

-- Parked jobs are not ready: the claim walks past none of them.
DROP INDEX backburner_jobs_ready;
CREATE INDEX backburner_jobs_ready
    ON backburner_jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost = 0 AND parked = 0;
DROP INDEX backburner_jobs_suspects;
CREATE INDEX backburner_jobs_suspects
    ON backburner_jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost > 0 AND parked = 0;

-- Parked jobs in the order a freed slot hands them out: per task, and per key. Only pending
-- jobs are ever parked (cancel clears the mark), so the predicates need not name `state`:
-- the transitions of ordinary jobs, which change `state` and never `parked`, leave these
-- indexes alone (a predicate on `state` would be evaluated on every one of them). Running
-- limited jobs are counted through backburner_jobs_running, for the same reason.
CREATE INDEX backburner_jobs_parked_task
    ON backburner_jobs (queue, task, priority DESC, seq) WHERE parked = 1;
CREATE INDEX backburner_jobs_parked_key
    ON backburner_jobs (queue, task, limit_key, priority DESC, seq) WHERE parked = 2;

-- Rate limits: the start times (epoch seconds) of a (queue, task)'s jobs within its last
-- period, a sliding log trimmed by every claim that consults it.
CREATE TABLE backburner_rate_starts (
    queue TEXT NOT NULL,
    task  TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX backburner_rate_starts_window ON backburner_rate_starts (queue, task, at);
