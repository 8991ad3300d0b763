-- Queue controls: a row per queue that was ever paused or resumed (most queues have none).
-- The claim reads it by primary key in the same statement that takes jobs, so a pause
-- holds from the next claim of every process. changed_at: epoch seconds.
CREATE TABLE backburner_queues (
    name       TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL,
    changed_at REAL    NOT NULL
);
