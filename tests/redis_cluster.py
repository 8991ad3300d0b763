"""A private Redis Cluster (3 primaries, 3 replicas) and a private Sentinel set-up for tests.

`RedisCluster` starts six `redis-server --cluster-enabled yes` on free loopback ports under a
directory of the test's, joins them with `redis-cli --cluster create --cluster-replicas 1`,
and waits until every node reports `cluster_state:ok`. `SentinelSetup` starts one primary,
one replica and three sentinels (`redis-server <conf> --sentinel`) watching service
`mymaster`. Both stop every process they started, also when a test fails.

Also a command line, for a run of the contract suite on a cluster (scripts/test.sh):
`python tests/redis_cluster.py DIR` starts a cluster, prints its URL and keeps it up until
stdin closes or the process gets SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

sys.path.insert(0, str(Path(__file__).parent))

from redis_server import RedisServer, free_port


def _answer(port: int, command: bytes, timeout: float = 1.0) -> bytes:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(command)
            return s.recv(65536)
    except OSError:
        return b""


def _wait(what: str, test: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(test) and test():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")


class RedisClusterSetup:
    """Six nodes: the first three become primaries, the last three their replicas."""

    def __init__(self, directory: Path, *config: str) -> None:
        # validity-factor 0: a replica always stands for election when its primary dies. With
        # the default (10), a replica of a primary that had been quiet for a few seconds
        # judged its data too old and never took over (seen here with a 1 s node timeout).
        common = ("--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
                  "--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0",
                  "--appendonly", "yes", "--maxmemory-policy", "noeviction", *config)
        self.nodes: list[RedisServer] = []
        for n in range(6):
            node_dir = directory / f"node{n}"
            node = RedisServer(node_dir, *common)
            # The bus port defaults to port + 10000, too high for many free ports: its own.
            node.config = (*common, "--cluster-config-file", str(node_dir / "nodes.conf"),
                           "--cluster-port", str(free_port()))
            self.nodes.append(node)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def url_of(self, node: int) -> str:
        return self.nodes[node].url

    def start(self, timeout: float = 60.0) -> None:
        try:
            for node in self.nodes:
                node.start()
            hosts = [f"127.0.0.1:{node.port}" for node in self.nodes]
            done = subprocess.run(
                ["redis-cli", "--cluster", "create", *hosts, "--cluster-replicas", "1",
                 "--cluster-yes"],
                capture_output=True, timeout=timeout, check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout[-2000:]!r}"
                                   f" {done.stderr[-2000:]!r}")
            _wait("cluster_state:ok on every node", self.healthy, timeout)
            # A replica that has not finished its first sync holds nothing: a primary killed
            # before then would take every job with it.
            _wait("every replica in sync", self.replicas_in_sync, timeout)
        except BaseException:
            self.stop()
            raise

    def healthy(self) -> bool:
        alive = [n for n in self.nodes if n.process is not None]
        return all(b"cluster_state:ok" in _answer(n.port, b"CLUSTER INFO\r\n") for n in alive)

    def replicas_in_sync(self) -> bool:
        for node in self.nodes:
            text = _answer(node.port, b"INFO replication\r\n")
            if b"role:slave" in text and b"master_link_status:up" not in text:
                return False
        return sum(self.role(n) == "slave" for n in range(len(self.nodes))) == 3

    def role(self, node: int) -> str:
        reply = _answer(self.nodes[node].port, b"ROLE\r\n")
        return "master" if b"master" in reply[:40] else "slave"

    def replication_lag(self, primary: int) -> int:
        """Bytes the primary has written that its replica has not received: the replica's
        offset is read first, so a write in between makes this an upper bound. 0 when the
        replica does not answer (stopped)."""
        replica = self.replica_of(primary)
        theirs = _info_number(self.nodes[replica].port, "slave_repl_offset")
        ours = _info_number(self.nodes[primary].port, "master_repl_offset")
        return max(0, ours - theirs) if theirs >= 0 and ours >= 0 else 0

    def primary_of_slot(self, slot: int) -> int:
        """The index of the node that serves `slot` now, as the first live node sees it."""
        by_port = {node.port: n for n, node in enumerate(self.nodes)}
        for node in self.nodes:
            if node.process is None:
                continue
            text = _answer(node.port, b"CLUSTER NODES\r\n").decode(errors="replace")
            for line in text.splitlines():
                fields = line.split()
                if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
                    continue
                port = int(fields[1].split("@")[0].rpartition(":")[2])
                if _serves(fields, slot) and port in by_port:
                    return by_port[port]
        raise RuntimeError(f"no live primary serves slot {slot}")

    def replica_of(self, primary: int) -> int:
        """The index of the node replicating `primary` (as `primary` itself reports)."""
        text = _answer(self.nodes[primary].port, b"INFO replication\r\n").decode()
        by_port = {node.port: n for n, node in enumerate(self.nodes)}
        for line in text.splitlines():
            if line.startswith("slave0:"):
                port = int(line.split("port=")[1].split(",")[0])
                return by_port[port]
        raise RuntimeError(f"node {primary} has no replica")

    def kill(self, node: int) -> None:
        self.nodes[node].kill()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> RedisClusterSetup:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _info_number(port: int, name: str) -> int:
    for line in _answer(port, b"INFO replication\r\n", 0.3).decode().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split(":")[1])
    return -1


def _serves(fields: list[str], slot: int) -> bool:
    for part in fields[8:]:
        if part.startswith("["):
            continue  # a slot being migrated
        low, _, high = part.partition("-")
        if int(low) <= slot <= int(high or low):
            return True
    return False


class SentinelSetup:
    """One primary, one replica and three sentinels watching them as `mymaster`."""

    SERVICE = "mymaster"

    def __init__(self, directory: Path) -> None:
        durable = ("--appendonly", "yes", "--maxmemory-policy", "noeviction",
                   "--repl-diskless-sync-delay", "0")
        self.primary = RedisServer(directory / "primary", *durable)
        self.replica = RedisServer(directory / "replica", *durable)
        self.replica.config = (*durable, "--replicaof", "127.0.0.1", str(self.primary.port))
        self.sentinels: list[RedisServer] = []
        for n in range(3):
            sentinel_dir = directory / f"sentinel{n}"
            sentinel = RedisServer(sentinel_dir)
            conf = sentinel_dir / "sentinel.conf"
            conf.write_text(
                f"port {sentinel.port}\nbind 127.0.0.1\ndir {sentinel_dir}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 10000\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n"
            )
            self.sentinels.append(sentinel)

    def url(self, query: str = "") -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0" + (f"?{query}" if query else "")

    def start(self, timeout: float = 30.0) -> None:
        try:
            self.primary.start()
            self.replica.start()
            for sentinel in self.sentinels:
                _start_sentinel(sentinel)
            _wait("the replica in sync", lambda: b"master_link_status:up" in _answer(
                self.replica.port, b"INFO replication\r\n"), timeout)
            _wait("every sentinel to know the replica", self._sentinels_see_replica, timeout)
            _wait("the sentinels to know each other", self._sentinels_agree, timeout)
        except BaseException:
            self.stop()
            raise

    def _sentinels_see_replica(self) -> bool:
        command = f"SENTINEL REPLICAS {self.SERVICE}\r\n".encode()
        return all(str(self.replica.port).encode() in _answer(s.port, command)
                   for s in self.sentinels)

    def _sentinels_agree(self) -> bool:
        """Every sentinel sees the primary up and the two other sentinels (what redis-py's
        discovery checks before it trusts an answer)."""
        import redis

        for sentinel in self.sentinels:
            with redis.Redis(port=sentinel.port, socket_timeout=1, decode_responses=True) as c:
                try:
                    state = c.sentinel_master(self.SERVICE)
                except redis.RedisError:
                    return False
            if not state.get("is_master") or state.get("is_sdown") or state.get("is_odown"):
                return False
            if int(state.get("num-other-sentinels", 0)) < len(self.sentinels) - 1:
                return False
        return True

    def primary_port(self) -> int:
        """The primary's port as the first live sentinel names it."""
        command = f"SENTINEL GET-MASTER-ADDR-BY-NAME {self.SERVICE}\r\n".encode()
        for sentinel in self.sentinels:
            reply = _answer(sentinel.port, command).split(b"\r\n")
            if len(reply) >= 5:
                return int(reply[4])
        raise RuntimeError("no sentinel answered")

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.primary):
            server.kill()

    def __enter__(self) -> SentinelSetup:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _start_sentinel(server: RedisServer, timeout: float = 10.0) -> None:
    log = (server.directory / "redis.log").open("ab")
    server.process = subprocess.Popen(
        [server.binary, str(server.directory / "sentinel.conf"), "--sentinel"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    _wait(f"sentinel on {server.port}",
          lambda: _answer(server.port, b"PING\r\n").startswith(b"+PONG"), timeout)


def main() -> None:
    """Start a cluster, print its URL, stop it when stdin closes or on SIGTERM."""
    directory = Path(sys.argv[1])
    cluster = RedisClusterSetup(directory)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cluster.start()
    try:
        print(cluster.url, flush=True)
        sys.stdin.read()
    finally:
        cluster.stop()


if __name__ == "__main__":
    os.environ.setdefault("CI", "")
    main()
