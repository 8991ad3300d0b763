-- Jobs per (queue, state), kept by triggers as jobs move, so what reads the totals at every
-- metrics scrape, `backburner info` and the dashboard read a few rows instead of counting
-- the whole table (~1 s at a million jobs). Triggers rather than counts kept by each
-- transition in Python: every write is counted, whoever makes it (deletes by retention or
-- by hand, rows written by another program), and a single writer at a time (SQLite's
-- lock) means the counter rows cost no contention. Rows that fall to 0 stay (few: queues x
-- states).
CREATE TABLE backburner_job_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

INSERT INTO backburner_job_counts (queue, state, n)
    SELECT queue, state, count(*) FROM backburner_jobs WHERE true GROUP BY queue, state;

CREATE TRIGGER backburner_jobs_count_insert AFTER INSERT ON backburner_jobs
BEGIN
    INSERT INTO backburner_job_counts (queue, state, n) VALUES (new.queue, new.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER backburner_jobs_count_delete AFTER DELETE ON backburner_jobs
BEGIN
    UPDATE backburner_job_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
END;

-- Only a change of state (or queue) fires it: heartbeats and progress writes do not.
CREATE TRIGGER backburner_jobs_count_update AFTER UPDATE OF queue, state ON backburner_jobs
    WHEN old.state IS NOT new.state OR old.queue IS NOT new.queue
BEGIN
    -- One statement for both rows: half the trigger steps of an UPDATE then an INSERT.
    INSERT INTO backburner_job_counts (queue, state, n)
        VALUES (old.queue, old.state, -1), (new.queue, new.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n;
END;
