-- forget_workers: drop workers whose last heartbeat is older than ARGV[1] seconds (they are
-- gone; their jobs were or will be rescued through lease expiry). Returns how many.
local now = clock()
local gone = redis.call('ZRANGEBYSCORE', BEATS, '-inf', string.format('(%.6f', now - tonumber(ARGV[1])))
for _, id in ipairs(gone) do
  redis.call('HDEL', WORKERS, id)
  redis.call('ZREM', BEATS, id)
end
return #gone
