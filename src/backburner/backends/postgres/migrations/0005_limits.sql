-- Global limits (backburner.limits): each job carries its own, so the claim can judge them
-- without knowing the app's tasks. `parked`: a pending job over a concurrency limit waits
-- out of the claim's way, on its task's group (1) or its key's (2), until a slot frees.
ALTER TABLE {schema}.jobs
    ADD COLUMN limit_concurrency     integer,
    ADD COLUMN limit_key             text,
    ADD COLUMN limit_key_concurrency integer,
    ADD COLUMN rate_count            integer,
    ADD COLUMN rate_period           double precision,
    ADD COLUMN parked                smallint NOT NULL DEFAULT 0;

-- Parked jobs are not ready: the claim walks past none of them.
DROP INDEX {schema}.jobs_ready;
CREATE INDEX jobs_ready ON {schema}.jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost = 0 AND parked = 0;
DROP INDEX {schema}.jobs_suspects;
CREATE INDEX jobs_suspects ON {schema}.jobs (queue, priority DESC, seq)
    WHERE state = 'pending' AND lost > 0 AND parked = 0;

-- Parked jobs in the order a freed slot hands them out: per task, and per key. Only pending
-- jobs are ever parked (cancel clears the mark), so the predicates need not name `state`
-- and the transitions of ordinary jobs never evaluate them. Running limited jobs are
-- counted through jobs_running (bounded by the workers' total concurrency).
CREATE INDEX jobs_parked_task ON {schema}.jobs (queue, task, priority DESC, seq)
    WHERE parked = 1;
CREATE INDEX jobs_parked_key ON {schema}.jobs (queue, task, limit_key, priority DESC, seq)
    WHERE parked = 2;

-- Rate limits: the start times of a (queue, task)'s jobs within its last period, a sliding
-- log trimmed by every claim that consults it (under the group's advisory lock).
CREATE TABLE {schema}.rate_starts (
    queue text        NOT NULL,
    task  text        NOT NULL,
    at    timestamptz NOT NULL
);
CREATE INDEX rate_starts_window ON {schema}.rate_starts (queue, task, at);
