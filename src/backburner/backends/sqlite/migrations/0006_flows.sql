-- Chains and groups (backburner.flows): the flow a job belongs to (the id of its first job),
-- the jobs it waits for and the jobs waiting for it (JSON arrays of ids, in order), how many
-- of the former have not completed yet, and what it receives when released ('result':
-- its one dependency's result, 'results': the list of them). All NULL/0 for ordinary jobs,
-- whose transitions never look further than `dependents IS NULL`.
ALTER TABLE backburner_jobs ADD COLUMN flow_id TEXT;
ALTER TABLE backburner_jobs ADD COLUMN depends_on TEXT;
ALTER TABLE backburner_jobs ADD COLUMN dependents TEXT;
ALTER TABLE backburner_jobs ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;
ALTER TABLE backburner_jobs ADD COLUMN receives TEXT;
