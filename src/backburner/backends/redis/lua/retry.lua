-- retry: put a failed or cancelled job back to pending with a fresh set of attempts (its
-- error history and attempt counter are kept: attempt numbers stay unique fencing tokens).
-- ARGV[3] id. Returns the state after the call, or false for an unknown id.
local now, now_s = clock()
local id = ARGV[3]
local key = job_key(id)
local f = redis.call('HMGET', key, 'state', 'seq', 'priority', 'unique_scope', 'unique_digest',
  'waiting_on')
local state = f[1]
if not state then
  return false
end
-- A job of a flow cancelled while it still waited never got its input: not retried.
if (state == 'failed' or state == 'cancelled') and tonumber(f[6] or '0') == 0 then
  redis.call('HSET', key, 'state', 'pending', 'failures', 0, 'lost', 0, 'cancel_requested', 0,
    'run_at', now_s, 'updated_at', now_s)
  redis.call('HDEL', key, 'reason', 'result', 'finished_at', 'worker_id')
  make_ready(id, f[2], f[3], 0)
  move(id, f[2], state, 'pending')
  if (f[4] == 'active' or f[4] == 'queued') and f[5] then
    -- Back in its scope, it holds its key again unless another live job took it meanwhile.
    local holder = redis.call('GET', unique_key(f[5]))
    if not holder or (holder ~= id and not holds_key(holder, now)) then
      redis.call('SET', unique_key(f[5]), id)
    elseif holder ~= id then
      -- Runs without it, for good (as the SQL stores clear the column).
      redis.call('HDEL', key, 'unique_key', 'unique_digest')
    end
  end
  rearm_dependents(id, now_s)
  return 'pending'
end
return state
