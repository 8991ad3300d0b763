-- register_worker: ARGV[1] worker id, ARGV[2] its info as a JSON object without its times
-- (the server's clock adds started_at; heartbeat_at lives in BEATS).
local _, now_s = clock()
redis.call('HSET', WORKERS, ARGV[1],
  string.sub(ARGV[2], 1, -2) .. ',"started_at":' .. now_s .. '}')
redis.call('ZADD', BEATS, now_s, ARGV[1])
return 1
