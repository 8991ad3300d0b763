-- Prelude of every script on the keys shared by all queues (scripts.py prepends it). They
-- share the `{<prefix>}` hash tag: one Redis Cluster slot. KEYS, in keys.Keys.global_keys order:
local DIRECTORY, QUEUES, WORKERS, BEATS, LEADER = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local function clock()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  return now, string.format('%.6f', now)
end
