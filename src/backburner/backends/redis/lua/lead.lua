-- lead: take the housekeeping lead if nobody holds it (or the holder's expired: Redis dropped
-- the key by its own clock), or renew it if we hold it. ARGV[1] worker id, ARGV[2] ttl (ms).
-- Returns 1 while this worker leads.
local holder = redis.call('GET', LEADER)
if not holder or holder == ARGV[1] then
  redis.call('SET', LEADER, ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
