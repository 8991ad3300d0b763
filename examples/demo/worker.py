"""The demo's tasks for a separate worker process:

    backburner worker examples.demo.worker:create_jobs

A factory, not a module-level app: the CLI calls it once, with settings from the
environment (the same variables the web process reads, DEMO_DATA_DIR and SMTP_* above all).
"""

from __future__ import annotations

from backburner import Backburner
from examples.demo.settings import Settings
from examples.demo.tasks import build_jobs


def create_jobs() -> Backburner:
    jobs, _ = build_jobs(Settings.from_env())
    return jobs
