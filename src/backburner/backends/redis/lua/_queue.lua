-- Prelude of every queue script (scripts.py prepends it; the SHA covers both).
--
-- A queue script runs atomically: Redis executes one script at a time, so everything between
-- its first read and its last write is one transaction, and every key it touches shares the
-- queue's hash tag (one Redis Cluster slot).
-- ARGV[1]: the queue's key base (keys.QueueKeys.base: every key of the queue starts with it),
-- ARGV[2]: the queue's name; a script's own arguments start at ARGV[3]. KEYS[1] is the
-- queue's ready set, declared so that a cluster client routes the call to the queue's slot;
-- the other keys are named here from the base, as keys.py names them (a key passed in KEYS
-- costs the server more per call than the concatenation does).
local BASE, QUEUE = ARGV[1], ARGV[2]
local READY, SUSPECTS, SCHEDULED = KEYS[1], BASE .. 'suspects', BASE .. 'scheduled'
local RUNNING, SEQ = BASE .. 'running', BASE .. 'seq'
local STATE = {
  pending = BASE .. 'state:pending', scheduled = BASE .. 'state:scheduled',
  running = BASE .. 'state:running', completed = BASE .. 'state:completed',
  failed = BASE .. 'state:failed', cancelled = BASE .. 'state:cancelled',
}
-- The queue's controls (hash: paused '1'/'0', changed_at), and per terminal state the
-- finished jobs by finished_at (what the retention pruner walks, oldest first).
local CONTROL = BASE .. 'control'
local FINISHED = {
  completed = BASE .. 'finished:completed', failed = BASE .. 'finished:failed',
  cancelled = BASE .. 'finished:cancelled',
}

-- The server's clock, never a client's: leases and schedules are judged by it alone.
-- Returns seconds as a number and as the string every timestamp is stored as, and the
-- seconds and microseconds strings TIME gave (sequence numbers are made from them). Built
-- from TIME's strings: string.format of a 16-digit number costs over a microsecond here.
local function clock()
  local t = redis.call('TIME')
  local s, us = t[1], t[2]
  local now_s = s .. '.' .. string.rep('0', 6 - #us) .. us
  return tonumber(now_s), now_s, s, us
end

local function fmt(seconds)
  return string.format('%.6f', seconds)
end

local function job_key(id)
  return BASE .. 'job:' .. id
end

local function held_key(worker)
  return BASE .. 'held:' .. worker
end

-- Ready/suspect members sort by score (-priority), then by member: seq is zero-padded to a
-- fixed width, so member order is FIFO.
local SEQ_WIDTH = 17
local function ready_member(seq, id)
  return seq .. ':' .. id
end
local function member_id(member)
  return string.sub(member, SEQ_WIDTH + 2)
end

-- A field of a hash written by something other than Backburner may hold anything: read as
-- 0 here, so the job still reaches a claim, which fails it (claim.lua, invalid_fields).
local function make_ready(id, seq, priority, lost)
  local zset = READY
  if (tonumber(lost) or 0) > 0 then
    zset = SUSPECTS
  end
  redis.call('ZADD', zset, -(tonumber(priority) or 0), ready_member(seq, id))
end

local function unready(id, seq)
  local member = ready_member(seq, id)
  redis.call('ZREM', READY, member)
  redis.call('ZREM', SUSPECTS, member)
end

-- The per-state index follows the record's `state` field in every script that changes it;
-- so does the finished index (`at`: the finished_at of a job that ends here).
local function move(id, seq, from, to, at)
  if from then
    redis.call('ZREM', STATE[from], id)
    if FINISHED[from] then
      redis.call('ZREM', FINISHED[from], id)
    end
  end
  redis.call('ZADD', STATE[to], seq, id)
  if FINISHED[to] then
    redis.call('ZADD', FINISHED[to], at, id)
  end
end

-- errors is a JSON array kept as text; appending is string surgery, no decode/encode.
local function append_error(key, entry)
  local errors = redis.call('HGET', key, 'errors')
  if not errors or errors == '[]' or errors == '' then
    errors = '[' .. entry .. ']'
  else
    errors = string.sub(errors, 1, -2) .. ',' .. entry .. ']'
  end
  redis.call('HSET', key, 'errors', errors)
end

-- Fencing: a write is accepted only from the attempt that holds the job right now.
-- Returns the job's fields (state, attempt, worker_id, seq, ...) when it does, else nil.
local function owned(id, attempt, ...)
  local f = redis.call('HMGET', job_key(id), 'state', 'attempt', 'worker_id', 'seq', ...)
  if f[1] == 'running' and tonumber(f[2]) == tonumber(attempt) then
    return f
  end
  return nil
end

-- A running job stops being running: forget its lease and its holder.
local function unlease(id, worker)
  redis.call('ZREM', RUNNING, id)
  if worker then
    redis.call('SREM', held_key(worker), id)
  end
end

-- Unique keys (backburner/unique.py): the key of a (task, key) pair names the job that took
-- it last; whether that job still holds it is judged from its record, when asked.
local function unique_key(digest)
  return BASE .. 'unique:' .. digest
end

-- A queued holder holds until it is first claimed, an active one until it ends, a period
-- one until its time (by the server's clock, `now`); a deleted one holds nothing.
local function holds_key(id, now)
  local f = redis.call('HMGET', job_key(id), 'state', 'unique_scope', 'unique_until', 'attempt')
  local state, scope = f[1], f[2]
  if not state then
    return false
  end
  if scope == 'period' then
    return f[3] ~= false and tonumber(f[3]) > now
  end
  local waiting = state == 'pending' or state == 'scheduled'
  if scope == 'queued' then
    return waiting and f[4] == '0'
  end
  return waiting or state == 'running'
end

-- Limits (backburner/limits.py). A job's groups are named by digests stored in its record
-- (limit_key_group, limit_group, rate_group; keys.limit_digest); all their keys carry the
-- queue's tag. `running` sets hold the ids running in a group, `parked` zsets the pending
-- jobs waiting for one of its slots (scored like READY), `rate` zsets the start times of
-- the last period (member: id and attempt, score: the start).
local function limit_running(group)
  return BASE .. 'limit:running:' .. group
end
local function limit_parked(group)
  return BASE .. 'limit:parked:' .. group
end
local function rate_starts(group)
  return BASE .. 'limit:rate:' .. group
end
-- The fields `admit` and `free_slots` read, in this order, after a script's own.
local LIMIT_FIELDS = {'limit_key_group', 'limit_key_concurrency', 'limit_group',
  'limit_concurrency', 'rate_group', 'rate_count', 'rate_period'}

-- Whether a pending job, just taken off READY or SUSPECTS, may start now under its limits
-- (l: its LIMIT_FIELDS values). If so it counts in its groups from now on; if not it is
-- parked on its full group (the key's first) or, over its rate, scheduled for when the
-- window has room. Its READY entry is gone either way: the jobs behind it are claimed.
local function admit(id, seq, priority, attempt, l, now)
  for _, g in ipairs({{l[1], l[2]}, {l[3], l[4]}}) do
    if g[1] and g[2] and redis.call('SCARD', limit_running(g[1])) >= tonumber(g[2]) then
      redis.call('ZADD', limit_parked(g[1]), -tonumber(priority), ready_member(seq, id))
      return false
    end
  end
  if l[5] and l[6] then
    local key, count, period = rate_starts(l[5]), tonumber(l[6]), tonumber(l[7])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - period))
    local n = redis.call('ZCARD', key)
    if n >= count then
      local oldest = redis.call('ZRANGE', key, n - count, n - count, 'WITHSCORES')
      local run_at_s = fmt(tonumber(oldest[2]) + period)
      redis.call('HSET', job_key(id), 'state', 'scheduled', 'run_at', run_at_s)
      redis.call('ZADD', SCHEDULED, run_at_s, id)
      move(id, seq, 'pending', 'scheduled')
      return false
    end
    redis.call('ZADD', key, fmt(now), id .. ':' .. attempt)
    redis.call('PEXPIRE', key, math.ceil(period * 1000) + 1000)
  end
  for _, g in ipairs({l[1], l[3]}) do
    if g then
      redis.call('SADD', limit_running(g), id)
    end
  end
  return true
end

-- A job stopped running: its slots go to the next parked job of each of its groups (kg,
-- tg: its key's and its task's), made ready again. Returns whether one was.
local function free_slots(id, kg, tg)
  local woken = false
  for _, g in ipairs({kg or false, tg or false}) do
    if g then
      redis.call('SREM', limit_running(g), id)
      while true do
        local popped = redis.call('ZPOPMIN', limit_parked(g), 1)
        if #popped == 0 then
          break
        end
        local waiting = member_id(popped[1])
        local w = redis.call('HMGET', job_key(waiting), 'state', 'seq', 'priority', 'lost')
        if w[1] == 'pending' then
          make_ready(waiting, w[2], w[3], w[4])
          woken = true
          break
        end
      end
    end
  end
  return woken
end

-- A waiting job that leaves (cancelled, deleted) leaves its groups' parked sets too.
local function unpark(id, seq)
  local f = redis.call('HMGET', job_key(id), 'limit_key_group', 'limit_group')
  for _, g in ipairs({f[1] or false, f[2] or false}) do
    if g then
      redis.call('ZREM', limit_parked(g), ready_member(seq, id))
    end
  end
end

-- A job that ends stops holding its key (queued and active scopes): the key's own Redis key
-- goes, so keys of finished jobs do not pile up (period keys expire by themselves).
-- `digest` and `scope`: the record's unique_digest and unique_scope, when the caller read
-- them already (complete.lua: one HMGET less per job).
local function release_key(id, digest, scope)
  if digest == nil then
    local f = redis.call('HMGET', job_key(id), 'unique_digest', 'unique_scope')
    digest, scope = f[1], f[2]
  end
  if digest and scope ~= 'period' and redis.call('GET', unique_key(digest)) == id then
    redis.call('DEL', unique_key(digest))
  end
end

-- Chains and groups (backburner/flows.py). Every job of a flow is in this queue, so the
-- script that completes, ends or retries one job changes the jobs that wait for it in the
-- same atomic step. `dependents` / `depends_on` are JSON arrays of ids; a waiting job is
-- `scheduled` with `waiting_on` > 0 and sits in no ready or scheduled index.
local WAITING_RUN_AT = '253402300799.000000'

local function ids_of(json)
  if not json or json == '' then
    return {}
  end
  return cjson.decode(json)
end

-- `id` completed: each dependent waits for one job less; at none it is ready, with what it
-- receives put first in its arguments (string surgery: arguments are kept byte for byte).
-- Returns how many became ready.
local function release_dependents(id, now_s)
  local woke = 0
  for _, dep in ipairs(ids_of(redis.call('HGET', job_key(id), 'dependents'))) do
    local key = job_key(dep)
    local f = redis.call('HMGET', key, 'state', 'waiting_on', 'receives', 'depends_on', 'args',
      'seq', 'priority')
    local waiting = tonumber(f[2] or '0')
    if f[1] == 'scheduled' and waiting > 0 then
      waiting = waiting - 1
      redis.call('HSET', key, 'waiting_on', waiting, 'updated_at', now_s)
      if waiting == 0 then
        local args = f[5]
        if f[3] then
          local results = {}
          for i, d in ipairs(ids_of(f[4])) do
            results[i] = redis.call('HGET', job_key(d), 'result') or 'null'
          end
          local given = results[1] or 'null'
          if f[3] == 'results' then
            given = '[' .. table.concat(results, ',') .. ']'
          end
          local rest = string.match(args, '^%s*%[(.*)%]%s*$')
          if rest and string.match(rest, '%S') then
            args = '[' .. given .. ',' .. rest .. ']'
          else
            args = '[' .. given .. ']'
          end
        end
        redis.call('HSET', key, 'state', 'pending', 'run_at', now_s, 'args', args)
        make_ready(dep, f[6], f[7], 0)
        move(dep, f[6], 'scheduled', 'pending')
        woke = woke + 1
      end
    end
  end
  return woke
end

-- `id` ended `state` without completing (or is being deleted): what waits for it (and on)
-- never runs.
local function cancel_dependents(id, state, now_s)
  local todo = {{id, state}}
  while #todo > 0 do
    local ended = table.remove(todo)
    local entry = '{"attempt":0,"type":"DependencyFailed","message":' .. cjson.encode('job '
      .. ended[1] .. ', which this job waited for, did not complete: ' .. ended[2]) .. ',"traceback":null,'
      .. '"reason":"dependency_failed","at":' .. now_s .. '}'
    for _, dep in ipairs(ids_of(redis.call('HGET', job_key(ended[1]), 'dependents'))) do
      local key = job_key(dep)
      local f = redis.call('HMGET', key, 'state', 'waiting_on', 'seq')
      if f[1] == 'scheduled' and tonumber(f[2] or '0') > 0 then
        append_error(key, entry)
        redis.call('HSET', key, 'state', 'cancelled', 'reason', 'dependency_failed',
          'finished_at', now_s, 'updated_at', now_s)
        move(dep, f[3], 'scheduled', 'cancelled', now_s)
        table.insert(todo, {dep, 'cancelled'})
      end
    end
  end
end

-- `id` is retried: what it cancelled (and on) waits for it again, unless another job it
-- waits for failed or was cancelled too.
local function rearm_dependents(id, now_s)
  local todo = {id}
  while #todo > 0 do
    local live = table.remove(todo)
    for _, dep in ipairs(ids_of(redis.call('HGET', job_key(live), 'dependents'))) do
      local key = job_key(dep)
      local f = redis.call('HMGET', key, 'state', 'reason', 'depends_on', 'seq')
      if f[1] == 'cancelled' and f[2] == 'dependency_failed' then
        local waiting, blocked = 0, false
        for _, d in ipairs(ids_of(f[3])) do
          local s = redis.call('HGET', job_key(d), 'state')
          if not s or s == 'failed' or s == 'cancelled' then
            blocked = true
          elseif s ~= 'completed' then
            waiting = waiting + 1
          end
        end
        if not blocked then
          redis.call('HSET', key, 'state', 'scheduled', 'run_at', WAITING_RUN_AT,
            'waiting_on', waiting, 'updated_at', now_s)
          redis.call('HDEL', key, 'reason', 'finished_at')
          move(dep, f[4], 'cancelled', 'scheduled')
          table.insert(todo, dep)
        end
      end
    end
  end
end

-- Remove a job that is not running, with every index entry and unique key that names it
-- (delete, prune). `state`, `seq`, `digest`: its record's fields. The directory entry (another
-- slot) is the caller's to remove.
local function forget(id, state, seq, digest)
  if digest and redis.call('GET', unique_key(digest)) == id then
    redis.call('DEL', unique_key(digest))
  end
  unready(id, seq)
  redis.call('ZREM', SCHEDULED, id)
  redis.call('ZREM', STATE[state], id)
  if FINISHED[state] then
    redis.call('ZREM', FINISHED[state], id)
  end
  redis.call('DEL', job_key(id))
end
