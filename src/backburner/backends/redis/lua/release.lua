-- release: give claimed jobs back untouched (graceful shutdown): pending again at once, with
-- no failure counted. ARGV[3..]: pairs id, attempt. Returns one 1/0 per item (2: as in
-- complete.lua).
local _, now_s = clock()
local out = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local f = owned(id, ARGV[i + 1], 'priority', 'lost', 'limit_key_group', 'limit_group')
  if f then
    local key = job_key(id)
    redis.call('HSET', key, 'state', 'pending', 'updated_at', now_s)
    redis.call('HDEL', key, 'worker_id', 'lease_until')
    unlease(id, f[3])
    make_ready(id, f[4], f[5], f[6])
    move(id, f[4], 'running', 'pending')
    out[#out + 1] = ((f[7] or f[8]) and free_slots(id, f[7], f[8])) and 2 or 1
  else
    out[#out + 1] = 0
  end
end
return out
