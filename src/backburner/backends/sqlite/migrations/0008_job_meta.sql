-- A job's meta (NewJob.meta): a JSON object of what travels with the job but is no argument
-- of its task, such as its enqueue span's trace context (backburner.tracing). NULL for a job
-- without one, which costs no more than that.
ALTER TABLE backburner_jobs ADD COLUMN meta TEXT;
