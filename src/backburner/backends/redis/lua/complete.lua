-- complete: record the results of many attempts at once (one round trip per ack batch).
-- ARGV[5..]: triples id, attempt, result (JSON). Returns one 1/0 per item: accepted or fenced
-- (2: accepted, and a parked job got the slot it freed: the queue's workers are woken).
-- Jobs that waited for a completed one (chains, groups) are released here, atomically.
-- The `completed` events of the accepted ones are published here on ARGV[4], in the name
-- of the sender ARGV[3] (notifier.py's format): a result waiter in another process learns
-- of the completion with the commit, not one round trip later.
local _, now_s = clock()
local ORIGIN, EVENTS = ARGV[3], ARGV[4]
local out = {}
local events = {}
for i = 5, #ARGV, 3 do
  local id = ARGV[i]
  local f = owned(id, ARGV[i + 1], 'dependents', 'limit_key_group', 'limit_group', 'task',
    'unique_digest', 'unique_scope')
  if f then
    local key = job_key(id)
    redis.call('HSET', key, 'state', 'completed', 'result', ARGV[i + 2],
      'finished_at', now_s, 'updated_at', now_s)
    redis.call('HDEL', key, 'lease_until')
    unlease(id, f[3])
    move(id, f[4], 'running', 'completed', now_s)
    release_key(id, f[9] or false, f[10])
    if f[5] then
      release_dependents(id, now_s)
    end
    out[#out + 1] = ((f[6] or f[7]) and free_slots(id, f[6], f[7])) and 2 or 1
    events[#events + 1] = {'job', QUEUE, id, f[8], 'completed', tonumber(f[2]), cjson.null}
  else
    out[#out + 1] = 0
  end
end
if #events > 0 then
  redis.call('PUBLISH', EVENTS, cjson.encode({ORIGIN, events}))
end
return out
