-- fail: record failed attempts; each is scheduled again after `retry_in` or ends the job.
-- ARGV[3..]: groups of 7: id, attempt, retry_in ('' = end it), final state (failed or
-- cancelled), reason, counts (1: counts against max_attempts), error (a JSON object without
-- its time: the server's clock adds "at").
-- Returns one 1/0 per item: accepted or fenced (2: as in complete.lua).
local now, now_s = clock()
local out = {}
for i = 3, #ARGV, 7 do
  local id = ARGV[i]
  local f = owned(id, ARGV[i + 1], 'dependents', 'limit_key_group', 'limit_group')
  if f then
    local key = job_key(id)
    local retry_in = ARGV[i + 2]
    append_error(key, string.sub(ARGV[i + 6], 1, -2) .. ',"at":' .. now_s .. '}')
    redis.call('HINCRBY', key, 'failures', tonumber(ARGV[i + 5]))
    redis.call('HSET', key, 'updated_at', now_s)
    redis.call('HDEL', key, 'lease_until')
    unlease(id, f[3])
    if retry_in ~= '' then
      local run_at_s = fmt(now + tonumber(retry_in))
      redis.call('HSET', key, 'state', 'scheduled', 'run_at', run_at_s)
      redis.call('HDEL', key, 'reason', 'worker_id', 'finished_at')
      redis.call('ZADD', SCHEDULED, run_at_s, id)
      move(id, f[4], 'running', 'scheduled')
    else
      local final = ARGV[i + 3]
      redis.call('HSET', key, 'state', final, 'reason', ARGV[i + 4], 'finished_at', now_s)
      move(id, f[4], 'running', final, now_s)
      release_key(id)
      if f[5] then
        cancel_dependents(id, final, now_s)
      end
    end
    out[#out + 1] = ((f[6] or f[7]) and free_slots(id, f[6], f[7])) and 2 or 1
  else
    out[#out + 1] = 0
  end
end
return out
