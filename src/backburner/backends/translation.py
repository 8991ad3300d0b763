"""The wrapper every server backend puts around its public methods: driver exceptions never
leave a backend (each backend's errors.py says what they mean for callers), and a
cancellation is never turned into something else.

Drivers can swallow a cancellation that lands mid-command (redis-py disconnects and then
returns, or raises a connection error). A caller that was asked to stop must see
CancelledError, not a result or an outage to back off from: a worker's side task would
otherwise keep running after `cancel()`, and the worker's shutdown would hang.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

B = TypeVar("B")
P = ParamSpec("P")
T = TypeVar("T")

Method = Callable[Concatenate[B, P], Coroutine[Any, Any, T]]


def translating(
    handled: tuple[type[BaseException], ...],
    translate: Callable[[BaseException], BaseException],
    watch: Callable[[Any, BaseException | None], None] | None = None,
) -> Callable[[Method[B, P, T]], Method[B, P, T]]:
    """A decorator for backend methods: exceptions in `handled` leave as `translate(exc)`.
    `watch(backend, outcome)` hears of each call's outcome (None: success; else the
    translated exception), e.g. to log an outage once (see outage.py)."""

    def decorator(method: Method[B, P, T]) -> Method[B, P, T]:
        @functools.wraps(method)
        async def wrapper(backend: B, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                result = await method(backend, *args, **kwargs)
            except handled as exc:
                _raise_if_cancelling(exc)
                translated = translate(exc)
                if watch is not None:
                    watch(backend, translated)
                raise translated from exc
            _raise_if_cancelling(None)
            if watch is not None:
                watch(backend, None)
            return result

        return wrapper

    return decorator


def _raise_if_cancelling(cause: BaseException | None) -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from cause
