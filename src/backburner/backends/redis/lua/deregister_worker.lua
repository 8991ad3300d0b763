-- deregister_worker: ARGV[1] worker id.
redis.call('HDEL', WORKERS, ARGV[1])
redis.call('ZREM', BEATS, ARGV[1])
return 1
