-- insert: store new jobs of one queue, `pending` or `scheduled`, all or none, and publish
-- what an enqueue announces (notifier.py's message format): the queue's wake-up on
-- ARGV[4] and each stored job's event on ARGV[5], in the name of the sender ARGV[3] (its
-- process skips its own messages). Published here, not by the client after the reply: no
-- extra round trip per enqueue, and a worker is woken as soon as the job is stored.
-- ARGV[6..]: groups of 13: id, task, priority, args, kwargs, max_attempts, timeout ('' =
-- none), delay (seconds), run_at ('' = none; epoch seconds), unique key ('' = none), its
-- digest (names the key's Redis key), unique scope, unique_for (seconds, '' = none), then
-- (chains and groups, '' = none) flow id, depends_on and dependents (JSON arrays of ids),
-- receives; then the limits (backburner/limits.py, '' = none): limit_concurrency and its
-- group's digest, limit_key, limit_key_concurrency and its group's digest, rate_count,
-- rate_period and the rate's group digest; last the job's meta (JSON object, '' = none, then
-- the hash has no such field): 26 in all. A job that depends on others is
-- stored scheduled at WAITING_RUN_AT with waiting_on = their number, in no ready or
-- scheduled index.
-- Returns {1, id} for an id that already exists (then nothing was written), or
-- {0, id, state, ...}: per job the id used and '' or, when a live job holds its unique key,
-- the holder's id and state (then that job is not stored).
local now, now_s, now_us = clock()
local N = 26
local FIRST = 6
local ORIGIN, SIGNALS, EVENTS = ARGV[3], ARGV[4], ARGV[5]
local events = {}

-- All checks before any write: a script that fails half-way would leave its writes behind.
local seen = {}
for i = FIRST, #ARGV, N do
  local id = ARGV[i]
  if seen[id] or redis.call('EXISTS', job_key(id)) == 1 then
    return {1, id}
  end
  seen[id] = true
end

-- Sequence numbers: the clock in microseconds, strictly increasing within the queue.
local seq = tonumber(redis.call('GET', SEQ) or '0')
if now_us > seq then
  seq = now_us - 1
end

local used = {0}
for i = FIRST, #ARGV, N do
  local id, priority, delay, given_run_at = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 7]), ARGV[i + 8]
  local unique, digest, scope, unique_for = ARGV[i + 9], ARGV[i + 10], ARGV[i + 11], ARGV[i + 12]
  local holder = false
  if unique ~= '' then
    -- The key's own Redis key says who took it last; whether that job still holds it is
    -- judged now, from its record, so no transition has to release keys.
    local ukey = unique_key(digest)
    holder = redis.call('GET', ukey)
    if holder and not holds_key(holder, now) then
      holder = false
    end
    if not holder then
      if unique_for ~= '' then
        -- A period key also expires by itself (the server's clock), so none is left behind.
        redis.call('SET', ukey, id, 'PX', math.ceil(tonumber(unique_for) * 1000))
      else
        redis.call('SET', ukey, id)
      end
    end
  end
  if holder then
    table.insert(used, holder)
    table.insert(used, redis.call('HGET', job_key(holder), 'state'))
  else
    table.insert(used, id)
    table.insert(used, '')
    seq = seq + 1
    local seq_s = string.format('%0' .. SEQ_WIDTH .. '.0f', seq)
    -- Same rule as the memory backend: the later of run_at and now + delay.
    local run_at = now + delay
    if given_run_at ~= '' and tonumber(given_run_at) > run_at then
      run_at = tonumber(given_run_at)
    end
    local scheduled = run_at > now
    local run_at_s = now_s
    if scheduled then
      run_at_s = fmt(run_at)
    end
    local depends_on = ARGV[i + 14]
    local waits = depends_on ~= ''
    if waits then
      scheduled, run_at_s = true, WAITING_RUN_AT
    end
    local key = job_key(id)
    redis.call('HSET', key,
      'id', id, 'task', ARGV[i + 1], 'queue', QUEUE, 'priority', priority,
      'state', scheduled and 'scheduled' or 'pending',
      'args', ARGV[i + 3], 'kwargs', ARGV[i + 4], 'max_attempts', ARGV[i + 5],
      'created_at', now_s, 'updated_at', now_s, 'run_at', run_at_s,
      'attempt', 0, 'failures', 0, 'lost', 0, 'errors', '[]', 'cancel_requested', 0,
      'seq', seq_s)
    if ARGV[i + 6] ~= '' then
      redis.call('HSET', key, 'timeout', ARGV[i + 6])
    end
    if ARGV[i + 25] ~= '' then
      redis.call('HSET', key, 'meta', ARGV[i + 25])
    end
    for n, field in ipairs({'limit_concurrency', 'limit_group', 'limit_key',
        'limit_key_concurrency', 'limit_key_group', 'rate_count', 'rate_period', 'rate_group'}) do
      if ARGV[i + 16 + n] ~= '' then
        redis.call('HSET', key, field, ARGV[i + 16 + n])
      end
    end
    if unique ~= '' then
      redis.call('HSET', key, 'unique_key', unique, 'unique_scope', scope, 'unique_digest', digest)
      if unique_for ~= '' then
        redis.call('HSET', key, 'unique_until', fmt(now + tonumber(unique_for)))
      end
    end
    if ARGV[i + 13] ~= '' then
      redis.call('HSET', key, 'flow_id', ARGV[i + 13])
      if waits then
        redis.call('HSET', key, 'depends_on', depends_on, 'waiting_on', #cjson.decode(depends_on))
      end
      if ARGV[i + 15] ~= '' then
        redis.call('HSET', key, 'dependents', ARGV[i + 15])
      end
      if ARGV[i + 16] ~= '' then
        redis.call('HSET', key, 'receives', ARGV[i + 16])
      end
    end
    table.insert(events, {'job', QUEUE, id, ARGV[i + 1], scheduled and 'scheduled' or 'pending',
      0, cjson.null})
    if waits then
      move(id, seq_s, nil, 'scheduled')
    elseif scheduled then
      redis.call('ZADD', SCHEDULED, run_at_s, id)
      move(id, seq_s, nil, 'scheduled')
    else
      make_ready(id, seq_s, priority, 0)
      move(id, seq_s, nil, 'pending')
    end
  end
end
redis.call('SET', SEQ, string.format('%.0f', seq))
if #events > 0 then
  -- A wake-up for scheduled jobs too: a worker then re-reads when the next one is due.
  redis.call('PUBLISH', SIGNALS, cjson.encode({ORIGIN,
    {{'wakeup', QUEUE, cjson.null, cjson.null, cjson.null, cjson.null, cjson.null}}}))
  redis.call('PUBLISH', EVENTS, cjson.encode({ORIGIN, events}))
end
return used
