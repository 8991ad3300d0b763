-- insert: store new jobs of one queue, `pending` or `scheduled`, all or none, and publish
-- what an enqueue announces (notifier.py's message format): the queue's wake-up (ARGV[5],
-- encoded by the client, on channel ARGV[4]) and each stored job's event on ARGV[6], in the
-- name of the sender ARGV[7] (its process skips its own messages). Published here, not by
-- the client after the reply: no extra round trip per enqueue, and a worker is woken as soon
-- as the job is stored.
-- ARGV[3]: '1' to also reserve the ids in the directory (KEYS[2]) and add the queue to the
-- set of queues (KEYS[3]): the enqueue of one queue on a single server, in one call. A single
-- server lets a script touch keys of any hash tag; a cluster does not, and reserves in a
-- call of its own first (lua/reserve.lua). '' otherwise.
-- ARGV[8..]: per job (rows.insert_args), 11 fields: id, task, priority, args, kwargs,
-- max_attempts, delay (seconds), run_at ('' = none; epoch seconds), unique key ('' = none),
-- depends_on (JSON array of ids, '' = none) and a count P; then, with a unique key, 3 more:
-- its digest (names the key's Redis key), scope and unique_for (seconds, '' = none); then P
-- field/value pairs stored as they are (the optional fields: timeout, meta, limits, flow).
-- Only what a job has travels: the server pays for every argument of a call.
-- A job that depends on others is stored scheduled at WAITING_RUN_AT with waiting_on = their
-- number, in no ready or scheduled index.
-- Returns {1, id} for an id that already exists (then nothing was written), or
-- {0, id, state, ...}: per job the id used and '' or, when a live job holds its unique key,
-- the holder's id and state (then that job is not stored).
local now, now_s, now_sec, now_usec = clock()
local RESERVING, SIGNALS, WAKEUP, EVENTS, ORIGIN = ARGV[3] == '1', ARGV[4], ARGV[5], ARGV[6],
  ARGV[7]
local FIRST, FIXED = 8, 11

-- Where each job's fields start.
local starts = {}
do
  local i = FIRST
  while i <= #ARGV do
    starts[#starts + 1] = i
    local size = FIXED + 2 * tonumber(ARGV[i + 10])
    if ARGV[i + 8] ~= '' then
      size = size + 3
    end
    i = i + size
  end
end

-- All checks before any write: a script that fails half-way would leave its writes behind.
local seen = {}
for _, i in ipairs(starts) do
  local id = ARGV[i]
  -- Reserving, the directory check covers the record's: every job has an entry there
  -- (lua/reserve.lua or this script wrote it) as long as its record exists.
  if seen[id] or (RESERVING and redis.call('HEXISTS', KEYS[2], id) == 1)
      or (not RESERVING and redis.call('EXISTS', job_key(id)) == 1) then
    return {1, id}
  end
  seen[id] = true
end
if RESERVING then
  for _, i in ipairs(starts) do
    redis.call('HSET', KEYS[2], ARGV[i], QUEUE)
  end
  redis.call('SADD', KEYS[3], QUEUE)
end

-- Sequence numbers: the clock in microseconds, strictly increasing within the queue, stored
-- zero-padded to SEQ_WIDTH (so that they sort as strings). The usual case, the clock ahead
-- of the last one given, takes its string from TIME's without formatting a number.
local last = tonumber(redis.call('GET', SEQ) or '0')
local clock_seq = tonumber(now_sec) * 1000000 + tonumber(now_usec)
local seq = last
local fresh = clock_seq > last
local function next_seq()
  if fresh then
    fresh = false
    seq = clock_seq
    local digits = now_sec .. string.rep('0', 6 - #now_usec) .. now_usec
    return string.rep('0', SEQ_WIDTH - #digits) .. digits
  end
  seq = seq + 1
  return string.format('%0' .. SEQ_WIDTH .. '.0f', seq)
end

local used = {0}
local events = {}
local last_seq_s
for _, i in ipairs(starts) do
  local id, priority, delay, given_run_at = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 6]), ARGV[i + 7]
  local unique, depends_on, pairs_count = ARGV[i + 8], ARGV[i + 9], tonumber(ARGV[i + 10])
  local first_pair = i + FIXED
  local digest, scope, unique_for
  if unique ~= '' then
    digest, scope, unique_for = ARGV[i + 11], ARGV[i + 12], ARGV[i + 13]
    first_pair = first_pair + 3
  end
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
    used[#used + 1] = holder
    used[#used + 1] = redis.call('HGET', job_key(holder), 'state')
  else
    used[#used + 1] = id
    used[#used + 1] = ''
    local seq_s = next_seq()
    last_seq_s = seq_s
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
    local waits = depends_on ~= ''
    if waits then
      scheduled, run_at_s = true, WAITING_RUN_AT
    end
    local state = scheduled and 'scheduled' or 'pending'
    local key = job_key(id)
    redis.call('HSET', key,
      'id', id, 'task', ARGV[i + 1], 'queue', QUEUE, 'priority', priority, 'state', state,
      'args', ARGV[i + 3], 'kwargs', ARGV[i + 4], 'max_attempts', ARGV[i + 5],
      'created_at', now_s, 'updated_at', now_s, 'run_at', run_at_s,
      'attempt', 0, 'failures', 0, 'lost', 0, 'errors', '[]', 'cancel_requested', 0,
      'seq', seq_s)
    if pairs_count > 0 then
      redis.call('HSET', key, unpack(ARGV, first_pair, first_pair + 2 * pairs_count - 1))
    end
    if unique ~= '' then
      redis.call('HSET', key, 'unique_key', unique, 'unique_scope', scope, 'unique_digest', digest)
      if unique_for ~= '' then
        redis.call('HSET', key, 'unique_until', fmt(now + tonumber(unique_for)))
      end
    end
    if waits then
      redis.call('HSET', key, 'depends_on', depends_on, 'waiting_on', #cjson.decode(depends_on))
    end
    events[#events + 1] = {'job', QUEUE, id, ARGV[i + 1], state, 0, cjson.null}
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
if last_seq_s then
  redis.call('SET', SEQ, last_seq_s)
  -- A wake-up for scheduled jobs too: a worker then re-reads when the next one is due.
  redis.call('PUBLISH', SIGNALS, WAKEUP)
  redis.call('PUBLISH', EVENTS, cjson.encode({ORIGIN, events}))
end
return used
