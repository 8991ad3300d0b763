-- Chains and groups (backburner.flows): the flow a job belongs to (the id of its first job),
-- the jobs it waits for and the jobs waiting for it (ids, in order), how many of the former
-- have not completed yet, and what it receives when released ('result': its one
-- dependency's result, 'results': the list of them). NULL/0 for ordinary jobs, whose
-- transitions never take the flow path (the claim tells the worker `dependents IS NOT NULL`).
ALTER TABLE {schema}.jobs
    ADD COLUMN flow_id    text,
    ADD COLUMN depends_on text[],
    ADD COLUMN dependents text[],
    ADD COLUMN waiting_on integer NOT NULL DEFAULT 0,
    ADD COLUMN receives   text;
