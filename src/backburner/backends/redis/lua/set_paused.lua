-- set_paused: pause ('1') or resume ('0') this queue for every worker; claim.lua reads it.
-- ARGV[3] '1' or '0'. changed_at is the server's clock.
local _, now_s = clock()
redis.call('HSET', CONTROL, 'paused', ARGV[3], 'changed_at', now_s)
return now_s
