-- Periodic schedules: only what must be shared by every scheduler (pause state); the
-- definitions live in code. changed_at: when last paused or resumed (epoch seconds).
CREATE TABLE backburner_schedules (
    name       TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL,
    changed_at REAL    NOT NULL
);
