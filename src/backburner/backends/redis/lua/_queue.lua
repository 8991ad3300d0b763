-- Prelude of every queue script (scripts.py prepends it; the SHA covers both).
--
-- A queue script runs atomically: Redis executes one script at a time, so everything between
-- its first read and its last write is one transaction, and every key it touches shares the
-- queue's hash tag (one Redis Cluster slot). KEYS, in keys.QueueKeys.script_keys order:
local READY, SUSPECTS, SCHEDULED, RUNNING, SEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local STATE = {
  pending = KEYS[6], scheduled = KEYS[7], running = KEYS[8],
  completed = KEYS[9], failed = KEYS[10], cancelled = KEYS[11],
}
-- ARGV[1]: the queue's key base (job and held keys are built from it: same tag), ARGV[2]: the
-- queue's name; a script's own arguments start at ARGV[3].
local BASE, QUEUE = ARGV[1], ARGV[2]

-- The server's clock, never a client's: leases and schedules are judged by it alone.
-- Returns seconds as a number and as the string every timestamp is stored as (Lua would
-- print a number with 14 significant digits only), and microseconds for sequence numbers.
local function clock()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  return now, string.format('%.6f', now), tonumber(t[1]) * 1000000 + tonumber(t[2])
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

local function make_ready(id, seq, priority, lost)
  local zset = READY
  if tonumber(lost) > 0 then
    zset = SUSPECTS
  end
  redis.call('ZADD', zset, -tonumber(priority), ready_member(seq, id))
end

local function unready(id, seq)
  local member = ready_member(seq, id)
  redis.call('ZREM', READY, member)
  redis.call('ZREM', SUSPECTS, member)
end

-- The per-state index follows the record's `state` field in every script that changes it.
local function move(id, seq, from, to)
  if from then
    redis.call('ZREM', STATE[from], id)
  end
  redis.call('ZADD', STATE[to], seq, id)
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

-- A job that ends stops holding its key (queued and active scopes): the key's own Redis key
-- goes, so keys of finished jobs do not pile up (period keys expire by themselves).
local function release_key(id)
  local f = redis.call('HMGET', job_key(id), 'unique_digest', 'unique_scope')
  if f[1] and f[2] ~= 'period' and redis.call('GET', unique_key(f[1])) == id then
    redis.call('DEL', unique_key(f[1]))
  end
end
