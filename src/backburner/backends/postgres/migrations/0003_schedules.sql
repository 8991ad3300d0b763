-- Periodic schedules: only what every scheduler must share (pause state); definitions live
-- in code. changed_at: when last paused or resumed (server clock).
CREATE TABLE {schema}.schedules (
    name       text        PRIMARY KEY,
    paused     boolean     NOT NULL,
    changed_at timestamptz NOT NULL
);
