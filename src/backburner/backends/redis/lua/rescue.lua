-- rescue: take back the jobs of this queue whose lease expired (their worker died or froze).
-- A lost attempt is not the task's fault: it does not count against max_attempts; `lost`
-- counts it instead, and a job that lost `max_lost` workers fails `worker_lost`. A cancel
-- request wins over both. The lost attempt stays fenced off: its number is not the job's
-- next attempt, so nothing it writes later is accepted.
-- ARGV[3] max_lost, ARGV[4] most jobs to take back in this call.
-- Returns groups of 6: id, task, new state, attempt, reason ('' = none), and 1 if a parked
-- job got the slot it held (its queue's workers are woken), else 0: no slot is leaked.
local now, now_s = clock()
local max_lost, batch = tonumber(ARGV[3]), tonumber(ARGV[4])
-- Strictly before now: a lease that ends exactly now is still held (as in memory.py).
local expired = redis.call('ZRANGEBYSCORE', RUNNING, '-inf', '(' .. now_s, 'LIMIT', 0, batch)
local out = {}
for _, id in ipairs(expired) do
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'state', 'attempt', 'worker_id', 'lost',
    'cancel_requested', 'seq', 'priority', 'task', 'limit_key_group', 'limit_group')
  unlease(id, f[3])
  if f[1] == 'running' then
    -- Read defensively (R20): a hash changed by something else must not fail the rescue.
    local lost = (tonumber(f[4]) or 0) + 1
    local message = 'the worker holding this attempt stopped renewing its lease'
    if lost >= max_lost and f[5] ~= '1' then
      message = 'stopped as a poison job after ' .. lost .. ' worker deaths (the max_lost '
        .. 'limit, whatever its retries): ' .. message
    end
    append_error(key, '{"attempt":' .. (tonumber(f[2]) or 0) .. ',"type":"WorkerLost","message":"'
      .. message .. '","traceback":null,'
      .. '"reason":"worker_lost","at":' .. now_s .. '}')
    redis.call('HSET', key, 'lost', lost, 'updated_at', now_s)
    redis.call('HDEL', key, 'worker_id', 'lease_until')
    local state, reason = 'pending', ''
    if f[5] == '1' then
      state, reason = 'cancelled', 'cancelled'
    elseif lost >= max_lost then
      state, reason = 'failed', 'worker_lost'
    end
    if state == 'pending' then
      redis.call('HSET', key, 'state', state)
      make_ready(id, f[6], f[7], lost)
    else
      redis.call('HSET', key, 'state', state, 'reason', reason, 'finished_at', now_s)
      release_key(id)
    end
    move(id, f[6], 'running', state, now_s)
    if state ~= 'pending' then
      cancel_dependents(id, state, now_s)
    end
    local woken = (f[9] or f[10]) and free_slots(id, f[9], f[10])
    local n = #out
    -- A reply element must never be nil (it would cut the reply short), nor an attempt
    -- something other than a whole number (R20: Python reads it as one).
    local attempt = tonumber(f[2])
    if attempt == nil or attempt ~= attempt or math.abs(attempt) == math.huge
        or attempt ~= math.floor(attempt) then
      attempt = 0
    end
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
      id, f[8] or '', state, attempt, reason
    out[n + 6] = woken and 1 or 0
  end
end
return out
