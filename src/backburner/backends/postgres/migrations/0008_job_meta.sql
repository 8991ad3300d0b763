-- A job's meta (NewJob.meta): a JSON object of what travels with the job but is no argument
-- of its task, such as its enqueue span's trace context (backburner.tracing). text, like
-- args and kwargs, not jsonb: kept byte for byte, and JSON text never holds a NUL (JSON
-- escapes it as \u0000, which text keeps and jsonb would refuse). NULL for a job without
-- one: adding a nullable column with no default rewrites no row.
ALTER TABLE {schema}.jobs ADD COLUMN meta text;
