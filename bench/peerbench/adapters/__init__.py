"""Every system the peers benchmark knows, in report order."""

from __future__ import annotations

from peerbench.adapter import Peer
from peerbench.adapters.arq import Arq
from peerbench.adapters.backburner import Backburner
from peerbench.adapters.celery import Celery
from peerbench.adapters.dramatiq import Dramatiq
from peerbench.adapters.huey import Huey
from peerbench.adapters.procrastinate import Procrastinate
from peerbench.adapters.rq import RQ
from peerbench.adapters.saq import SAQ
from peerbench.adapters.taskiq import Taskiq


def all_systems() -> list[Peer]:
    return [
        Backburner("sqlite"),
        Backburner("redis"),
        Backburner("postgresql"),
        Celery(),
        RQ(),
        Dramatiq(),
        Arq(),
        Taskiq(),
        SAQ(),
        Huey(),
        Procrastinate(),
    ]
