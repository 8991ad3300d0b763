"""One log line when a store becomes unreachable and one when it is back, instead of one
per failed call (or a traceback per reconnect attempt) for as long as the outage lasts.

A server backend feeds every call through its `translating` wrapper into `observe`; a
worker reports the calls its side tasks retry (claims, heartbeats, housekeeping) with
`failed` and `reached`. A failure as unavailable marks the store down (logged once, with the
first reason), the next success marks it up again (logged once, with how long it was down).
Callers still see every failure (`BackendUnavailableError`) and decide how to retry."""

from __future__ import annotations

import logging
import time

from backburner.errors import BackendUnavailableError

_backends_log = logging.getLogger("backburner.backends")


class OutageLog:
    def __init__(self, store: str, log: logging.Logger = _backends_log) -> None:
        self.store = store
        """How the store is named in the lines (no credentials)."""
        self.log = log
        self.down_since: float | None = None

    def observe(self, error: BaseException | None) -> None:
        """The outcome of one call: None for success, else the exception it raised."""
        if error is None:
            self.reached()
        elif isinstance(error, BackendUnavailableError):
            self.failed(error)

    def failed(self, error: BackendUnavailableError, what: str | None = None) -> None:
        """A call (`what`, if named) failed as unavailable: logged when it is the first
        failure since the store was last reached, else at debug level."""
        reason = f"{what} failed: {error}" if what else str(error)
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.log.warning("%s is unreachable (%s); calls fail as unavailable until it is "
                             "back", self.store, reason)
        else:
            self.log.debug("%s still unreachable (%s)", self.store, reason)

    def reached(self) -> None:
        """A call succeeded."""
        if self.down_since is not None:
            self.log.warning("%s is reachable again (unreachable for %.1f s)", self.store,
                             time.monotonic() - self.down_since)
            self.down_since = None
