-- Jobs per (queue, state) without counting the table (~0.25 s at a million jobs), for what
-- reads the totals at every metrics scrape, `backburner info` and the dashboard.
--
-- Counters updated in place would be hot rows: every claim of a queue takes one from the
-- same (queue, 'pending') row, so the row lock, held to commit, would queue up every worker
-- behind the others (SKIP LOCKED exists so they do not). Instead statement-level triggers
-- append what each statement changed, summed per (queue, state), to job_count_deltas: an
-- insert-only log that no two writers contend on (a batch of 100 acknowledgements adds two
-- rows). Readers sum job_counts and the log in one snapshot, which is exact; whoever reads
-- (and the housekeeping leader) folds the log into job_counts now and then, one folder at a
-- time (an advisory lock), so the log stays short. Triggers and not the statements
-- themselves: every write is counted, whoever makes it (retention, deletes by hand, rows
-- another program writes). The functions run as their owner (SECURITY DEFINER, a fixed
-- search_path, every name qualified): a role allowed to write jobs (an application's own,
-- enqueuing in its transactions) needs no grant on the counts' tables.
--
-- The table is locked against writes (until this migration commits) before it is counted,
-- so no job moves between the count and the triggers.
LOCK TABLE {schema}.jobs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE {schema}.job_counts (
    queue text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (queue, state)
);
CREATE TABLE {schema}.job_count_deltas (
    queue text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL
);

INSERT INTO {schema}.job_counts (queue, state, n)
    SELECT queue, state, count(*) FROM {schema}.jobs GROUP BY queue, state;

CREATE FUNCTION {schema}.jobs_count_inserted() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.job_count_deltas (queue, state, n)
        SELECT queue, state, count(*) FROM new_rows GROUP BY queue, state;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_count_updated() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Heartbeats and progress writes move nothing: the sums are 0 and nothing is added.
    INSERT INTO {schema}.job_count_deltas (queue, state, n)
        SELECT queue, state, sum(n) FROM (
            SELECT queue, state, 1 AS n FROM new_rows
            UNION ALL SELECT queue, state, -1 FROM old_rows
        ) moved GROUP BY queue, state HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_count_deleted() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO {schema}.job_count_deltas (queue, state, n)
        SELECT queue, state, -count(*) FROM old_rows GROUP BY queue, state;
    RETURN NULL;
END $$;

CREATE FUNCTION {schema}.jobs_count_truncated() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM {schema}.job_count_deltas;
    DELETE FROM {schema}.job_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON {schema}.jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_inserted();
CREATE TRIGGER jobs_count_update AFTER UPDATE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_updated();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON {schema}.jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_deleted();
CREATE TRIGGER jobs_count_truncate AFTER TRUNCATE ON {schema}.jobs
    FOR EACH STATEMENT EXECUTE PROCEDURE {schema}.jobs_count_truncated();
