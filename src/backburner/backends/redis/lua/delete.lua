-- delete: remove a job that is not running, with every index entry that names it.
-- A job that had not run yet takes the jobs waiting for it (chains, groups) down with it:
-- they are cancelled `dependency_failed`, so none waits for ever.
-- ARGV[3] id. Returns 1 if deleted, 0 if unknown or running.
local _, now_s = clock()
local id = ARGV[3]
local key = job_key(id)
local f = redis.call('HMGET', key, 'state', 'seq', 'unique_digest')
local state = f[1]
if not state or state == 'running' then
  return 0
end
if state == 'pending' or state == 'scheduled' then
  cancel_dependents(id, 'deleted', now_s)
end
unpark(id, f[2])
forget(id, state, f[2], f[3])
return 1
