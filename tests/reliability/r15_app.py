"""The app of the R15 worker processes: one periodic task on a 1 s schedule. The store's URL
comes from R15_URL, read at import (workers load `r15_app:app`)."""

from __future__ import annotations

import os
from datetime import timedelta

from backburner import Backburner

app = Backburner(os.environ.get("R15_URL", "memory://"), poll_interval=0.5)


@app.periodic(every=timedelta(seconds=1))
@app.task(name="r15.tick", retries=0)
async def tick() -> None:
    return None
