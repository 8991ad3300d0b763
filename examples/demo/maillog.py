"""What the email service sent and failed to send (S12's `/email/stats`), in a small SQLite
file of its own, so the numbers are right across restarts and across worker processes.

One row per (job, recipient): a job that runs again after a crash overwrites its row
instead of counting the same mail twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    job_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (job_id, recipient)
)
"""


class MailLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(_SCHEMA)
        return connection

    def _write(self, job_id: str, recipient: str, subject: str, error: str | None) -> None:
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?, ?)",
                (job_id, recipient, subject, error is None, error, time.time()),
            )
        connection.close()

    async def sent(self, job_id: str, recipient: str, subject: str) -> None:
        await asyncio.to_thread(self._write, job_id, recipient, subject, None)

    async def failed(self, job_id: str, recipient: str, subject: str, error: str) -> None:
        await asyncio.to_thread(self._write, job_id, recipient, subject, error)

    def _stats(self) -> dict[str, Any]:
        connection = self._connect()
        try:
            counts = dict(connection.execute(
                "SELECT ok, count(*) FROM deliveries GROUP BY ok").fetchall())

            def recent(ok: bool) -> list[dict[str, Any]]:
                rows = connection.execute(
                    "SELECT job_id, recipient, subject, error, at FROM deliveries "
                    "WHERE ok = ? ORDER BY at DESC LIMIT 10", (ok,)).fetchall()
                return [
                    {"job_id": j, "to": r, "subject": s, "error": e,
                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a))}
                    for j, r, s, e, a in rows
                ]

            return {"sent": counts.get(1, 0), "failed": counts.get(0, 0),
                    "recent_sent": recent(True), "recent_failed": recent(False)}
        finally:
            connection.close()

    async def sent_in(self, job_id: str) -> set[str]:
        """Recipients this job already delivered to (a rerun skips them)."""
        return await asyncio.to_thread(self._sent_in, job_id)

    def _sent_in(self, job_id: str) -> set[str]:
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT recipient FROM deliveries WHERE job_id = ? AND ok = 1", (job_id,)
            ).fetchall()
            return {r for (r,) in rows}
        finally:
            connection.close()

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._stats)

