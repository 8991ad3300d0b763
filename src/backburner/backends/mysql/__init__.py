"""MySQL/MariaDB backend: `MySQLBackend("mysql://user@host:3306/jobs")` (or `mariadb://`).

Needs asyncmy (`pip install 'backburner[mysql]'`). See backend.py for how it works,
config.py for the URL options, queries.sql and migrations/ for the SQL, connections.py for
scripts and transactions, external.py for enqueueing inside the application's transaction.
"""

from backburner.backends.mysql.backend import MySQLBackend

__all__ = ["MySQLBackend"]
