-- heartbeat: extend the lease of every job of this queue the worker still holds.
-- ARGV[3] worker id, ARGV[4] lease (seconds).
-- Returns triples id, attempt, cancel_requested for the jobs it holds.
local now = clock()
local worker = ARGV[3]
local lease_until_s = fmt(now + tonumber(ARGV[4]))
local held = held_key(worker)
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', held)) do
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'state', 'attempt', 'worker_id', 'cancel_requested')
  if f[1] == 'running' and f[3] == worker then
    redis.call('HSET', key, 'lease_until', lease_until_s)
    redis.call('ZADD', RUNNING, lease_until_s, id)
    local n = #out
    out[n + 1], out[n + 2], out[n + 3] = id, f[2], f[4]
  else
    -- Rescued and re-claimed by someone else meanwhile: not ours any more.
    redis.call('SREM', held, id)
  end
end
return out
