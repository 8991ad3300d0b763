"""Redis backend: `RedisBackend("redis://host:6379/0?prefix=backburner&profile=durable")`.

Needs redis-py (`pip install 'backburner[redis]'`, hiredis recommended). See backend.py for
how it works, keys.py for the key layout, lua/ for the scripts.
"""

from backburner.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
