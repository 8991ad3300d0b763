-- The jobs with concurrency limits, by id: an acknowledgement reads the limits of the jobs it
-- ended through this index (limited_of), so a batch of ordinary jobs finds nothing at once and
-- no state has to tie a claim to its acknowledgement. The columns never change after the
-- insert: only inserts and deletes of limited jobs touch it.
CREATE INDEX backburner_jobs_limited ON backburner_jobs (id)
    WHERE limit_concurrency IS NOT NULL OR limit_key_concurrency IS NOT NULL;
