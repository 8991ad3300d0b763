"""A worker's log of its store's reachability: one warning when calls start failing as
unavailable, one line when a call succeeds again, instead of a warning from each side task
(claims, heartbeats, housekeeping, pruning) on every retry for as long as an outage lasts.
The retries themselves are unchanged; only what reaches the log is."""

from __future__ import annotations

import logging
import time

from backburner.errors import BackendUnavailableError


class Reachability:
    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.down_since: float | None = None

    def failed(self, what: str, exc: BackendUnavailableError) -> None:
        """A call failed as unavailable and will be retried: logged as a warning only when it
        is the first failure since the store was last reached (then at debug level)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.log.warning("store unreachable (%s failed: %s); retrying until it is back",
                             what, exc)
        else:
            self.log.debug("%s failed again, will retry: %s", what, exc)

    def reached(self) -> None:
        """A call succeeded."""
        if self.down_since is not None:
            self.log.warning("store reachable again after %.1f s",
                             time.monotonic() - self.down_since)
            self.down_since = None
