-- progress: store an attempt's progress, only while that attempt holds the job (fenced).
-- ARGV[3] id, ARGV[4] attempt, ARGV[5] progress (JSON). Returns 1/0.
local _, now_s = clock()
if owned(ARGV[3], ARGV[4]) then
  redis.call('HSET', job_key(ARGV[3]), 'progress', ARGV[5], 'updated_at', now_s)
  return 1
end
return 0
