"""Job ids: time-ordered UUIDs (version 7 layout), so ids sort roughly by creation.

Every enqueue makes one, so it is cheap: the random part is sliced from a block of
`os.urandom` turned into hex once (one system call per `_BLOCK` ids), and the time part is
formatted once per millisecond. A lock hands each slice out once, whichever threads ask at
the same time (the sync API enqueues from threads); a forked child drops the block it
inherited, so parent and child never use the same bytes.
"""

from __future__ import annotations

import os
import threading
import time

_RANDOM_HEX = 19
"""Hex digits of randomness per id: 3 after the version digit, 1 that carries the variant
bits, then 3 and 12: the layout's 74 random bits."""
_BLOCK = 200
"""Ids per `os.urandom` call."""
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
"""A random hex digit with its top two bits replaced by the RFC 4122 variant (10)."""
_MS_BITS = (1 << 48) - 1


class _Source:
    """The process's block of random hex digits and the current millisecond's prefix."""

    __slots__ = ("hex", "lock", "ms", "position", "prefix")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hex = ""
        self.position = 0
        self.ms = -1
        self.prefix = ""

    def forget(self) -> None:
        """In a forked child: the parent goes on drawing from the block it has, so the child
        must not; and a thread of the parent may have held the lock."""
        self.lock = threading.Lock()
        self.hex = ""
        self.position = 0


_source = _Source()
os.register_at_fork(after_in_child=_source.forget)


def new_job_id() -> str:
    ms = time.time_ns() // 1_000_000
    source = _source
    with source.lock:
        if source.ms != ms:
            h = f"{ms & _MS_BITS:012x}"
            source.prefix = f"{h[:8]}-{h[8:]}-7"  # 48 bits of milliseconds, version 7
            source.ms = ms
        prefix = source.prefix
        start = source.position
        if start + _RANDOM_HEX > len(source.hex):
            source.hex = os.urandom(_BLOCK * _RANDOM_HEX // 2 + 1).hex()
            start = 0
        source.position = start + _RANDOM_HEX
        r = source.hex[start : start + _RANDOM_HEX]
    return f"{prefix}{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:]}"
