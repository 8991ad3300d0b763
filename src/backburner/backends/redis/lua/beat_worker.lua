-- beat_worker: refresh a registered worker's heartbeat. ARGV[1] worker id.
local _, now_s = clock()
if redis.call('HEXISTS', WORKERS, ARGV[1]) == 1 then
  redis.call('ZADD', BEATS, now_s, ARGV[1])
  return 1
end
return 0
