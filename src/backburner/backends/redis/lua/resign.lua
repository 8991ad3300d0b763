-- resign: give up the lead now, if we hold it (so another worker takes over at once).
-- ARGV[1] worker id.
if redis.call('GET', LEADER) == ARGV[1] then
  redis.call('DEL', LEADER)
end
return 1
