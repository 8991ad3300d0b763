-- claim: move up to `limit` due jobs of one queue to `running` under a lease.
-- ARGV[3] worker id, ARGV[4] limit, ARGV[5] lease (seconds), ARGV[6] mode:
--   'normal'  jobs that never lost a worker, priority desc then FIFO;
--   'suspect' one job that lost a worker (lost > 0), for a worker that runs nothing else;
--   'both'    'suspect', then 'normal' when no suspect waits (one queue, idle worker).
-- Returns {now, next_run_at ('' = none or not asked), suspects_waiting (0/1), job fields...}:
-- 14 fields per job (see rows.claimed_jobs; the last is its meta, '' = none). The `running`
-- events of the claimed jobs are published here on ARGV[8], in the name of the sender
-- ARGV[7] (notifier.py's format): no publish round trip of the worker's per claim.
local now, now_s = clock()
local worker, limit, lease, mode = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local ORIGIN, EVENTS = ARGV[7], ARGV[8]
local events = {}
local lease_until_s = fmt(now + lease)

-- Stage what has come due (delayed jobs, retries in backoff), in the same atomic step as the
-- claim: a due job is never invisible to a claim. Bounded, so one call stays short; the next
-- claims stage the rest.
local due = redis.call('ZRANGEBYSCORE', SCHEDULED, '-inf', now_s, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'state', 'seq', 'priority', 'lost')
  redis.call('ZREM', SCHEDULED, id)
  if f[1] == 'scheduled' then
    redis.call('HSET', key, 'state', 'pending', 'updated_at', now_s)
    make_ready(id, f[2], f[3], f[4])
    move(id, f[2], 'scheduled', 'pending')
  end
end

local out = {now_s, '', 0}
local function claimed()
  if #events > 0 then
    redis.call('PUBLISH', EVENTS, cjson.encode({ORIGIN, events}))
  end
  return out
end

-- A paused queue gives nothing (its due jobs are staged all the same, and wait). One HGET of
-- a key in this queue's slot, inside the claim's atomic step: no extra round trip.
if redis.call('HGET', CONTROL, 'paused') == '1' then
  return out
end

-- The fields of a job hash (from take's HMGET) that are not what Backburner writes: such a
-- job was written by something else (R20: untrusted rows never take a worker down). The
-- same rule as records.claim_problems: integers as Python's int() reads them, times and the
-- timeout as numbers (the timeout may be absent).
local INTEGER_FIELDS = {{2, 'seq'}, {4, 'priority'}, {7, 'attempt'}, {8, 'max_attempts'},
  {9, 'failures'}, {10, 'lost'}}
local NUMBER_FIELDS = {{12, 'created_at'}, {13, 'run_at'}}
local function is_number(v)
  return v and tonumber(v) ~= nil and not string.find(v, '[xX]')
end
local function invalid_fields(f)
  local bad = {}
  for _, field in ipairs(INTEGER_FIELDS) do
    local v = f[field[1]]
    if not (v and string.find(v, '^%s*%-?%d+%s*$')) then
      bad[#bad + 1] = field[2]
    end
  end
  for _, field in ipairs(NUMBER_FIELDS) do
    if not is_number(f[field[1]]) then
      bad[#bad + 1] = field[2]
    end
  end
  local timeout = f[11]
  if timeout and timeout ~= '' and not (is_number(timeout) and tonumber(timeout) > 0) then
    bad[#bad + 1] = 'timeout'
  end
  return bad
end

-- Such a job fails at once with `invalid_payload`, as a worker would fail a bad payload;
-- it is never handed to a worker.
local function refuse(id, f, bad)
  local key = job_key(id)
  local attempt = (tonumber(f[7]) or 0) + 1
  append_error(key, cjson.encode({attempt = attempt, type = 'InvalidRow',
    message = 'stored fields not readable: ' .. table.concat(bad, ', '),
    traceback = cjson.null, reason = 'invalid_payload', at = now}))
  redis.call('HSET', key, 'state', 'failed', 'reason', 'invalid_payload', 'attempt', attempt,
    'finished_at', now_s, 'updated_at', now_s)
  move(id, tonumber(f[2]) or 0, 'pending', 'failed', now_s)
  release_key(id)
  if f[14] then
    cancel_dependents(id, 'failed', now_s)
  end
  events[#events + 1] = {'job', QUEUE, id, f[3] or '', 'failed', attempt, cjson.null}
end

-- The attempt number is the fencing token: incremented here, checked by every later write.
local function take(id)
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'state', 'seq', 'task', 'priority', 'args', 'kwargs',
    'attempt', 'max_attempts', 'failures', 'lost', 'timeout', 'created_at', 'run_at',
    'dependents', 'meta', unpack(LIMIT_FIELDS))
  if f[1] ~= 'pending' then
    return false -- a stale index entry; the record is the truth
  end
  local bad = invalid_fields(f)
  if #bad > 0 then
    refuse(id, f, bad)
    return false
  end
  local attempt = tonumber(f[7]) + 1
  -- Jobs without limits have none of these fields: they skip the check entirely.
  if (f[16] or f[18] or f[20]) and not admit(id, f[2], f[4], attempt,
      {f[16], f[17], f[18], f[19], f[20], f[21], f[22]}, now) then
    return false
  end
  redis.call('HSET', key, 'state', 'running', 'attempt', attempt, 'worker_id', worker,
    'lease_until', lease_until_s, 'started_at', now_s, 'updated_at', now_s,
    'cancel_requested', 0)
  -- A new attempt starts with no progress: the last one's would read as this one's (a
  -- first attempt has none to drop).
  if attempt > 1 then
    redis.call('HDEL', key, 'progress')
  end
  redis.call('ZADD', RUNNING, lease_until_s, id)
  redis.call('SADD', held_key(worker), id)
  move(id, f[2], 'pending', 'running')
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, f[3], f[4], f[5]
  out[n + 5], out[n + 6], out[n + 7], out[n + 8] = f[6], attempt, f[8], f[9]
  out[n + 9], out[n + 10], out[n + 11], out[n + 12] = f[10], f[11] or '', f[12], f[13]
  out[n + 13], out[n + 14] = f[14] and 1 or 0, f[15] or ''
  events[#events + 1] = {'job', QUEUE, id, f[3], 'running', attempt, cjson.null}
  return true
end

if mode ~= 'normal' then
  while true do
    local popped = redis.call('ZPOPMIN', SUSPECTS, 1)
    if #popped == 0 then
      break
    end
    if take(member_id(popped[1])) then
      return claimed()
    end
  end
  if mode == 'suspect' then
    return out
  end
end

local taken = 0
while taken < limit do
  local popped = redis.call('ZPOPMIN', READY, limit - taken)
  if #popped == 0 then
    break
  end
  for i = 1, #popped, 2 do
    if take(member_id(popped[i])) then
      taken = taken + 1
    end
  end
end

if redis.call('ZCARD', SUSPECTS) > 0 then
  out[3] = 1
end
if taken < limit then
  local first = redis.call('ZRANGE', SCHEDULED, 0, 0, 'WITHSCORES')
  if #first > 0 then
    out[2] = first[2]
  end
end
return claimed()
