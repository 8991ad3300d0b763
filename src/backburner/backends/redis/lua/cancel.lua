-- cancel: a pending or scheduled job is cancelled now; a running one is asked to stop (its
-- worker learns it by notification or at its next heartbeat).
-- ARGV[3] id. Returns the state after the call, or false for an unknown id.
local _, now_s = clock()
local id = ARGV[3]
local key = job_key(id)
local f = redis.call('HMGET', key, 'state', 'seq')
local state = f[1]
if not state then
  return false
end
if state == 'pending' or state == 'scheduled' then
  unready(id, f[2])
  unpark(id, f[2])
  redis.call('ZREM', SCHEDULED, id)
  redis.call('HSET', key, 'state', 'cancelled', 'reason', 'cancelled',
    'finished_at', now_s, 'updated_at', now_s)
  move(id, f[2], state, 'cancelled', now_s)
  release_key(id)
  cancel_dependents(id, 'cancelled', now_s)
  return 'cancelled'
end
if state == 'running' then
  redis.call('HSET', key, 'cancel_requested', 1, 'updated_at', now_s)
end
return state
