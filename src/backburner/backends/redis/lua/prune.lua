-- prune: delete finished jobs of this queue past their retention (one batch).
-- ARGV[3] most jobs to delete, ARGV[4..]: pairs terminal state, age (seconds): jobs of that
-- state whose finished_at is older than the age, by the server's clock, go.
-- Returns the ids deleted (the caller removes their directory entries, in another slot).
local now, now_s = clock()
local limit = tonumber(ARGV[3])
local out = {}

local function awaited(dependents)
  for _, dep in ipairs(ids_of(dependents)) do
    local w = redis.call('HMGET', job_key(dep), 'state', 'waiting_on')
    if w[1] == 'scheduled' and tonumber(w[2] or '0') > 0 then
      return true
    end
  end
  return false
end

local function prune_state(state, before)
  local index = FINISHED[state]
  -- Every entry looked at leaves the range (deleted, re-filed or dropped), so each round
  -- reads new ones; `budget` bounds how many entries one call looks at.
  local budget = limit + 1000
  while #out < limit and budget > 0 do
    local ids = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. before, 'LIMIT', 0,
      math.min(limit - #out, budget))
    if #ids == 0 then
      return
    end
    budget = budget - #ids
    for _, id in ipairs(ids) do
      local f = redis.call('HMGET', job_key(id), 'state', 'seq', 'unique_digest',
        'unique_scope', 'unique_until', 'dependents')
      if f[1] ~= state then
        redis.call('ZREM', index, id) -- a stale entry; the record is the truth
      elseif f[4] == 'period' and f[5] and tonumber(f[5]) > now then
        -- It still holds a period key (a periodic tick): deleting it would free the key for
        -- a second enqueue of the same tick. Kept until then, and out of the way of the
        -- next rounds: re-filed under the time its key lapses.
        redis.call('ZADD', index, f[5], id)
      elseif awaited(f[6]) then
        -- A job of a chain or group still waits for it (it will read its result, or re-arm
        -- on its retry): kept, and looked at again one retention period from now.
        redis.call('ZADD', index, now_s, id)
      else
        forget(id, state, f[2], f[3])
        out[#out + 1] = id
      end
    end
  end
end

for i = 4, #ARGV, 2 do
  if #out >= limit then
    break
  end
  prune_state(ARGV[i], fmt(now - tonumber(ARGV[i + 1])))
end
return out
