"""PostgreSQL servers of a test's own: a PgBouncer in front of the shared server, and whole
clusters (a primary and a streaming replica) for failover. The shared server on 5432 is never
stopped or reconfigured.

Everything listens on a free loopback port; clusters live under a directory of their own
owned by the `postgres` OS user (PostgreSQL refuses to run as root), and every process is
stopped when its context ends, on failure too.

`python tests/pg_servers.py pgbouncer [--listen-direct] -- CMD...` runs CMD with a
transaction-pooling PgBouncer in front of BACKBURNER_TEST_POSTGRES_URL and that variable
pointing through it (with `pooler=transaction`, and with `--listen-direct` a `listen_url`
to the server itself): scripts/test.sh runs the contract suite that way.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

from services import free_port

PG_BIN = Path(os.environ.get("BACKBURNER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = os.environ.get("BACKBURNER_TEST_PGBOUNCER", "/usr/sbin/pgbouncer")
OS_USER = "postgres"
"""Who runs the servers: PostgreSQL and PgBouncer both refuse root."""


def missing_tools() -> str | None:
    """Why these servers cannot be started here, or None."""
    if not Path(PGBOUNCER).exists():
        return f"{PGBOUNCER} is not installed (apt-get install pgbouncer)"
    if not (PG_BIN / "initdb").exists():
        return f"{PG_BIN}/initdb is not installed (apt-get install postgresql-15)"
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return f"no {OS_USER!r} OS user to run the servers as"
    return None


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _as_postgres() -> list[str]:
    return [] if os.geteuid() != 0 else ["runuser", "-u", OS_USER, "--"]


def _workdir(prefix: str) -> Path:
    """A directory the `postgres` user owns (clusters and PgBouncer's files go there)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(OS_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o755)
    return path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def pgbouncer(upstream_url: str, pool_mode: str = "transaction",
              pool_size: int = 20) -> Iterator[int]:
    """A PgBouncer on a free port in front of `upstream_url`'s server (trust auth, as the
    test server's); yields its port."""
    parts = urlsplit(upstream_url)
    workdir = _workdir("bbt-pgbouncer-")
    port = free_port()
    user = parts.username or "postgres"
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\nmax_client_conn = 500\n"
        f"default_pool_size = {pool_size}\n"
        # The contract suite makes a schema per test and drops it: stale server sessions
        # must not pile up past the shared server's max_connections.
        "server_idle_timeout = 10\n"
    )
    for name in ("users.txt", "pgbouncer.ini"):
        (workdir / name).chmod(0o644)
    log = (workdir / "pgbouncer.log").open("ab")
    process = subprocess.Popen(
        [PGBOUNCER, *(["-u", OS_USER] if os.geteuid() == 0 else []),
         str(workdir / "pgbouncer.ini")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    try:
        _wait_for(port, process, workdir / "pgbouncer.log", "pgbouncer")
        yield port
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for(port: int, process: subprocess.Popen[bytes] | None, log: Path, what: str,
              timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited: {_tail(log)}")
        if answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s: {_tail(log)}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


class Cluster:
    """One PostgreSQL 15 cluster of the test's own (`pg_ctl` as the postgres user)."""

    def __init__(self, root: Path, name: str) -> None:
        self.data = root / name
        self.log = root / f"{name}.log"
        self.port = free_port()
        self._hung: list[int] = []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120.0) -> str:
        done = subprocess.run(
            [*_as_postgres(), *argv], capture_output=True, text=True, timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
        return done.stdout

    def sql(self, statement: str) -> str:
        """One statement through psql (tab-separated, unaligned output)."""
        return self._run(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                         "-U", "postgres", "-d", "postgres", "-Atc", statement)

    def init_primary(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "wal_level = replica\nmax_wal_senders = 4\nfsync = off\n"
                "shared_buffers = 16MB\nmax_connections = 60\n"
            )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")

    def init_replica(self, primary: Cluster) -> None:
        """A streaming replica of `primary` (pg_basebackup -R writes standby.signal and the
        connection to follow)."""
        self._run(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                  "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "--no-sync")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", f"-p {self.port}", "-w", "-t", "60", "start")
        _wait_for(self.port, None, self.log, f"postgres on {self.port}")

    def kill(self) -> None:
        """SIGKILL to the postmaster and every server process, as a machine that dies:
        nothing is shut down cleanly, and no server process commits anything afterwards
        (killed alone, the postmaster leaves its backends running until they notice)."""
        pid = self._postmaster_pid()
        if pid is not None:
            for each in [*self._frozen(pid), pid]:  # children first: they outlive it alone
                with contextlib.suppress(ProcessLookupError):
                    os.kill(each, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def hang(self) -> None:
        """SIGSTOP to the postmaster and every server process, as a machine that hangs (or
        is cut off without a reset): connections are neither refused nor answered."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        self._hung = [pid, *self._frozen(pid)]

    def _frozen(self, pid: int) -> list[int]:
        """SIGSTOP the postmaster, then every server process it has: once it is stopped it
        forks no new one, so none is missed (a backend forked between listing and stopping
        would go on serving its client: two primaries). The children, stopped."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        children = _children(pid)
        for each in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGSTOP)
        return children

    def promote(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote")

    def stop(self) -> None:
        """Immediate shutdown if it still runs (cleanup: on failure too)."""
        for each in self._hung:  # a stopped process cannot shut down
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGCONT)
        self._hung = []
        if self._postmaster_pid() is None:
            return
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
             "-w", "-t", "30", "stop"],
            capture_output=True, timeout=60, check=False,
        )
        pid = self._postmaster_pid()
        if pid is not None:  # pg_ctl could not stop it: no server outlives the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the server processes of a postmaster)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def primary_and_replica(synchronous: bool = False) -> Iterator[tuple[Cluster, Cluster]]:
    """A fresh primary and its streaming replica, both running; both stopped and removed
    at the end, whatever happened. `synchronous`: the primary acknowledges a commit only
    once the replica has it (set on the primary alone, after the copy: a promoted replica
    must not wait for a standby of its own)."""
    root = _workdir("bbt-pgclusters-")
    primary, replica = Cluster(root, "primary"), Cluster(root, "replica")
    try:
        primary.init_primary()
        primary.start()
        replica.init_replica(primary)
        replica.start()
        if synchronous:
            primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
            primary.sql("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 30
            while primary.sql("SELECT count(*) FROM pg_stat_replication "
                              "WHERE sync_state = 'sync'").strip() != "1":
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not become synchronous")
                time.sleep(0.05)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def _run_behind_pgbouncer(command: list[str], listen_direct: bool) -> int:
    upstream = os.environ.get("BACKBURNER_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")
    parts = urlsplit(upstream)
    with pgbouncer(upstream) as port:
        through = parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}")
        query = "pooler=transaction"
        if listen_direct:
            query += "&listen_url=" + quote(upstream, safe="")
        env = dict(os.environ, BACKBURNER_TEST_POSTGRES_URL=through._replace(
            query=query).geturl())
        print(f"PgBouncer (transaction pooling) on 127.0.0.1:{port} -> "
              f"{parts.hostname}:{parts.port or 5432}; tests use "
              f"{env['BACKBURNER_TEST_POSTGRES_URL']}", flush=True)
        return subprocess.call(command, env=env)


USAGE = "usage: python tests/pg_servers.py pgbouncer [--listen-direct] -- COMMAND [ARGS...]"

if __name__ == "__main__":
    args = sys.argv[1:]
    listen = "--listen-direct" in args[:3]
    if listen:
        args.remove("--listen-direct")
    if len(args) < 3 or args[0] != "pgbouncer" or args[1] != "--":
        sys.exit(USAGE)
    reason = missing_tools()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            sys.exit(f"{reason}: CI must run this (.ci/run installs it)")
        print(f"SKIPPED LOUDLY: {reason}", flush=True)
        sys.exit(0)
    sys.exit(_run_behind_pgbouncer(args[2:], listen))
