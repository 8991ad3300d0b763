"""PostgreSQL backend: `PostgresBackend("postgresql://user@host:5432/db?schema=jobs")`.

Needs asyncpg (`pip install 'backburner[postgres]'`). See backend.py for how it works,
config.py for the URL options, queries.sql and migrations/ for the SQL, notifier.py for
LISTEN/NOTIFY, external.py for enqueueing inside the application's transaction.
"""

from backburner.backends.postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]
