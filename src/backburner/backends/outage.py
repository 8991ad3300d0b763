"""One log line when a store becomes unreachable and one when it is back, instead of one
per failed call (or a traceback per reconnect attempt) for as long as the outage lasts.

Every call through a server backend's `translating` wrapper reports here: a call that
fails as unavailable marks the store down (logged once, with the first reason), the next
call that succeeds marks it up again (logged once, with how long it was down). Callers
still see every failure (`BackendUnavailableError`) and decide themselves what to log."""

from __future__ import annotations

import logging
import time

from backburner.errors import BackendUnavailableError

log = logging.getLogger("backburner.backends")


class OutageLog:
    def __init__(self, store: str) -> None:
        self.store = store
        """How the store is named in the lines (no credentials)."""
        self.down_since: float | None = None

    def observe(self, error: BaseException | None) -> None:
        """The outcome of one call: None for success, else the exception it raised."""
        if error is None:
            if self.down_since is not None:
                log.warning("%s is reachable again (unreachable for %.1f s)", self.store,
                            time.monotonic() - self.down_since)
                self.down_since = None
        elif isinstance(error, BackendUnavailableError) and self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("%s is unreachable (%s); calls fail as unavailable until it is back",
                        self.store, error)
