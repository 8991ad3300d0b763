-- Operator listings of failed and cancelled jobs (the dashboard's and `jobs list --state
-- failed`), newest first and paged by seq, without walking every completed job to find the
-- rare failure. Partial, so a job that never fails or is cancelled costs no write in them.
CREATE INDEX backburner_jobs_failed ON backburner_jobs (seq) WHERE state = 'failed';
CREATE INDEX backburner_jobs_cancelled ON backburner_jobs (seq) WHERE state = 'cancelled';
