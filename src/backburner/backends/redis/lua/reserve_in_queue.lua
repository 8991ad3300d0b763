-- reserve, inside a queue's insert (scripts.py builds `insert_reserving` from the queue
-- prelude, this, then insert.lua): the enqueue of one queue on a single Redis server, in one
-- script call instead of a pipeline of two. A single server lets a script touch keys of any
-- hash tag; a cluster does not, and keeps the two calls. KEYS[16], KEYS[17]: the directory
-- and the set of queues (the first two of keys.Keys.global_keys). Every check of both parts
-- comes before any write, so the call stays all or none; the arguments are insert.lua's
-- (jobs from ARGV[6], 26 per job: insert.lua's FIRST and N).
do
  local DIRECTORY, QUEUES = KEYS[16], KEYS[17]
  local checked = {}
  for i = 6, #ARGV, 26 do
    local id = ARGV[i]
    if checked[id] or redis.call('HEXISTS', DIRECTORY, id) == 1
        or redis.call('EXISTS', job_key(id)) == 1 then
      return {1, id}
    end
    checked[id] = true
  end
  for i = 6, #ARGV, 26 do
    redis.call('HSET', DIRECTORY, ARGV[i], QUEUE)
  end
  redis.call('SADD', QUEUES, QUEUE)
end
