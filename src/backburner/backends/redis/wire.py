"""Commands packed by hiredis, in C.

redis-py's asyncio connections pack every command in Python, argument by argument (its
synchronous client uses hiredis when it is installed). An enqueue sends ~40 arguments (the
insert script's), so packing was a tenth of its cost: `packed()` gives the pool's connection
class hiredis's packer, with byte-identical output, and keeps the Python one for anything
hiredis refuses (it then raises the same errors as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # the `redis` extra installs hiredis; without it nothing changes
    _pack = None


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        # Like redis-py: a command name given with a space ("CONFIG GET") is several words.
        name = args[0]
        words = name.encode().split() if isinstance(name, str) else name.split()
        if len(words) > 1:
            args = (*words, *args[1:])
        packed = pack(args)
        if packed is not None:
            return [packed]
        # A bytearray, say: the Python packer takes it. The mixin's super() is redis-py's
        # connection class, which mypy cannot see here; through Any rather than an ignore
        # comment, which a typed redis-py release would flag as unused.
        parent: Any = super()
        fallback: list[bytes] = parent.pack_command(*args)
        return fallback


def pack(args: tuple[Any, ...]) -> bytes | None:
    """One command packed by hiredis; None without hiredis or for an argument it refuses."""
    if _pack is None:
        return None
    try:
        return _pack(args)
    except (TypeError, UnicodeError):
        return None


def packed(connection_class: type[Any]) -> type[Any]:
    """`connection_class` (plain, TLS or Unix socket) packing commands with hiredis."""
    if _pack is None:
        return connection_class
    return type(f"Hiredis{connection_class.__name__}", (_HiredisPacking, connection_class), {})
