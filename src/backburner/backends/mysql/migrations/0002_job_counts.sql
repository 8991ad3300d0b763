-- Jobs per (queue, state) without counting the table, for what reads the totals at every
-- metrics scrape, `backburner info` and the dashboard.
--
-- Counters updated in place would be hot rows: every claim of a queue takes one from the
-- same (queue, 'pending') row, whose lock InnoDB holds to commit, so workers would queue
-- behind each other there and deadlock in the cycle pending -> running -> scheduled ->
-- pending. Instead triggers (MySQL has only row-level ones) append each row's move to
-- backburner_job_count_deltas, an insert-only log no two writers contend on; readers sum
-- the counts and the log in one snapshot (exact), and fold the log into the counts now and
-- then (as does the housekeeping leader), taking only rows no open transaction holds.
-- Triggers and not the statements themselves: every write is counted, whoever makes it.
-- MySQL's DDL is not transactional: jobs that move while this migration counts them may
-- be counted twice or not at all; migrate with the workers stopped (TRUNCATE, which fires
-- no trigger, leaves the counts wrong too: delete jobs instead).
CREATE TABLE {db}.backburner_job_counts (
    queue VARCHAR(200) NOT NULL,
    state VARCHAR(16)  NOT NULL,
    n     BIGINT       NOT NULL,
    PRIMARY KEY (queue, state)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

-- Keyed by UUID_SHORT() (unique and increasing on a server), not AUTO_INCREMENT: a trigger's
-- INSERT ... SELECT takes InnoDB's table-level AUTO-INC lock for the statement, and the
-- workers' transitions met there (MariaDB answered 1467, "Failed to read auto-increment
-- value", under R25's load).
CREATE TABLE {db}.backburner_job_count_deltas (
    id    BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    queue VARCHAR(200) NOT NULL,
    state VARCHAR(16)  NOT NULL,
    n     INT          NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = {collation};

CREATE TRIGGER {db}.backburner_jobs_count_insert AFTER INSERT ON {db}.backburner_jobs
FOR EACH ROW
    INSERT INTO {db}.backburner_job_count_deltas (id, queue, state, n)
    VALUES (UUID_SHORT(), NEW.queue, NEW.state, 1);

CREATE TRIGGER {db}.backburner_jobs_count_delete AFTER DELETE ON {db}.backburner_jobs
FOR EACH ROW
    INSERT INTO {db}.backburner_job_count_deltas (id, queue, state, n)
    VALUES (UUID_SHORT(), OLD.queue, OLD.state, -1);

-- Heartbeats and progress writes move nothing and add nothing.
CREATE TRIGGER {db}.backburner_jobs_count_update AFTER UPDATE ON {db}.backburner_jobs
FOR EACH ROW
    INSERT INTO {db}.backburner_job_count_deltas (id, queue, state, n)
    SELECT UUID_SHORT(), OLD.queue, OLD.state, -1 FROM DUAL
    WHERE NOT (OLD.state <=> NEW.state AND OLD.queue <=> NEW.queue)
    UNION ALL
    SELECT UUID_SHORT(), NEW.queue, NEW.state, 1 FROM DUAL
    WHERE NOT (OLD.state <=> NEW.state AND OLD.queue <=> NEW.queue);

INSERT INTO {db}.backburner_job_counts (queue, state, n)
    SELECT queue, state, COUNT(*) FROM {db}.backburner_jobs GROUP BY queue, state;
