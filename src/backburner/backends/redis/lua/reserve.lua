-- reserve: enter new job ids in the directory (id -> queue), all or none, before their queue
-- scripts store them. This is where an id is unique across every queue: a queue script can
-- only see its own queue's keys.
-- ARGV: pairs id, queue. Returns {0}, or {1, id} for an id already known (nothing written).
local seen = {}
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if seen[id] or redis.call('HEXISTS', DIRECTORY, id) == 1 then
    return {1, id}
  end
  seen[id] = true
end
local queues = {}
for i = 1, #ARGV, 2 do
  redis.call('HSET', DIRECTORY, ARGV[i], ARGV[i + 1])
  queues[ARGV[i + 1]] = true
end
for queue in pairs(queues) do
  redis.call('SADD', QUEUES, queue)
end
return {0}
