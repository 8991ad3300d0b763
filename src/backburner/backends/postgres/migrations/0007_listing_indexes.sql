-- Operator listings of failed and cancelled jobs (the dashboard's and `jobs list --state
-- failed`), newest first and paged by seq, without walking every completed job to find the
-- rare failure. Partial, so a job that never fails or is cancelled costs no index write
-- (a row version outside an index's predicate is not entered in it).
CREATE INDEX jobs_failed ON {schema}.jobs (seq) WHERE state = 'failed';
CREATE INDEX jobs_cancelled ON {schema}.jobs (seq) WHERE state = 'cancelled';
