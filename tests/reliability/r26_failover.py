"""R26, the run itself (tests/reliability/test_r26_redis_cluster_failover.py runs it at CI
size, bench/redis_failover.py at 5,000 jobs): a Redis Cluster primary killed (SIGKILL) in the
middle of a run, its replica promoted by the cluster, and nobody restarted by hand.

A private 6-node cluster (3 primaries, 3 replicas) serves two worker processes while an
enqueuer (a thread of this process) enqueues one job at a time until `jobs` enqueues were
acknowledged. Once half are, the primary serving the queue's slot is killed; once its replica
has taken over, the killed node is started again (as a supervisor would) and rejoins as the
new primary's replica. Redis replicates
asynchronously: an enqueue the primary acknowledged but had not yet sent to its replica is
gone after the promotion. The run counts those (acknowledged jobs that never completed) and
samples the replication lag before the kill (bytes the primary had written that its replica
had not received, both offsets read back to back): the window such a loss comes from. On
loopback it stays a fraction of a millisecond of writes. (Stopping the replica with SIGSTOP
does not widen it: the kernel keeps receiving the stream into the stopped replica's socket
buffer, and the replica reads it all once it runs again.) With `wait_replicas=1` every
acknowledgement waits for the replica (WAIT), which closes the window; it also means the
promoted primary, which has no replica until the killed node is back, refuses writes until
then (BackendUnavailableError: the enqueuer backs off and carries on once it is back).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis.crc import key_slot
from redis_cluster import RedisClusterSetup
from rel_harness import DB_ENV, Scenario, Verdict, check

from backburner import Backburner, BackendUnavailableError

PREFIX = "r26"
QUEUE = "default"


@dataclass
class Result:
    wait_replicas: int
    acknowledged: int
    lost: list[str]
    refused: int
    enqueue_rate: float
    """Acknowledged enqueues per second before the kill (one at a time, one client)."""
    stall: float
    """Seconds from the kill to the first enqueue acknowledged after it."""
    resumed_after: float
    """Seconds from the kill to the first job completed after it."""
    max_lag: int
    """Largest replication lag sampled before the kill, in bytes."""
    workers_alive: bool
    exit_codes: dict[int, int | None]
    verdict: Verdict
    logs: str = field(repr=False)

    def figures(self) -> str:
        return (
            f"wait_replicas={self.wait_replicas} acknowledged={self.acknowledged} "
            f"lost_acknowledged={len(self.lost)} refused_during_failover={self.refused} "
            f"enqueue_rate={self.enqueue_rate:.0f}/s enqueue_stall={self.stall:.2f}s "
            f"work_resumed_after={self.resumed_after:.2f}s max_replication_lag={self.max_lag}B "
            f"workers_alive={self.workers_alive} {self.verdict.summary()}"
        )


class Enqueuer(threading.Thread):
    """Enqueues one job at a time until `target` were acknowledged; notes when each was."""

    def __init__(self, scenario: Scenario, target: int) -> None:
        super().__init__(daemon=True)
        self.scenario = scenario
        self.target = target
        self.acknowledged: list[tuple[str, float]] = []
        self.refused = 0
        self.halt = threading.Event()

    def run(self) -> None:
        async def loop(app: Backburner) -> None:
            task = app.get_task("rel.work")
            while not self.halt.is_set() and len(self.acknowledged) < self.target:
                try:
                    job = await task.enqueue(1)
                except BackendUnavailableError:
                    self.refused += 1
                    await asyncio.sleep(0.05)
                    continue
                self.acknowledged.append((job.id, time.monotonic()))

        self.scenario.with_app(loop)


def run_failover(directory: Path, jobs: int, wait_replicas: int, seed: int = 0) -> Result:
    cluster = RedisClusterSetup(directory / "cluster")
    cluster.start()
    scenario: Scenario | None = None
    try:
        (directory / "scenario").mkdir(parents=True, exist_ok=True)
        scenario = Scenario(directory / "scenario", seed, "redis")
        query = f"prefix={PREFIX}&profile=durable"
        if wait_replicas:
            query += f"&wait_replicas={wait_replicas}"
        scenario.url = f"{cluster.url}?{query}"
        scenario.pool.env[DB_ENV] = scenario.url
        return _run(cluster, scenario, jobs, wait_replicas)
    finally:
        if scenario is not None:
            scenario.pool.close()
        cluster.stop()


def _run(cluster: RedisClusterSetup, scenario: Scenario, jobs: int, wait: int) -> Result:
    victim = cluster.primary_of_slot(key_slot(f"{PREFIX}/{QUEUE}".encode()))
    heir = cluster.replica_of(victim)
    workers = scenario.pool.start(2, concurrency=8, lease=3.0)
    enqueuer = Enqueuer(scenario, jobs)
    started = time.monotonic()
    enqueuer.start()
    try:
        max_lag = 0
        deadline = started + 300
        while len(enqueuer.acknowledged) < jobs // 2:
            assert time.monotonic() < deadline and enqueuer.is_alive(), "the enqueuer got stuck"
            max_lag = max(max_lag, cluster.replication_lag(victim))
            time.sleep(0.01)
        before = len(enqueuer.acknowledged)
        rate = before / (enqueuer.acknowledged[-1][1] - started)
        completed_then = scenario.states().get("completed", 0)
        cluster.kill(victim)
        killed_at = time.monotonic()
        scenario.wait_for(lambda: cluster.role(heir) == "master", 60, "the replica's promotion")
        cluster.nodes[victim].start()  # rejoins as the replica of its heir
        enqueuer.join(300)
        assert not enqueuer.is_alive(), "the enqueuer did not finish"
    finally:
        enqueuer.halt.set()
    after = [at for _, at in enqueuer.acknowledged[before:] if at > killed_at]
    stall = (after[0] - killed_at) if after else float("nan")
    resumed = scenario.wait_for(
        lambda: _completed(scenario) > completed_then, 60, "work to resume"
    )
    ids = [job_id for job_id, _ in enqueuer.acknowledged]
    scenario.wait_for(lambda: _settled(scenario), 120, "every acknowledged job to end")
    alive = all(w.alive() for w in workers)
    records = scenario.records(ids)
    verdict = check(scenario.history(), records, died={})
    logs = scenario.pool.logs()
    codes = scenario.pool.stop_all()
    return Result(
        wait, len(ids), verdict.lost, enqueuer.refused, rate, stall, resumed - killed_at,
        max_lag, alive, codes, verdict, logs,
    )


def _settled(scenario: Scenario) -> bool:
    """Nothing pending or running any more (a lost job is simply not there: it never ends)."""
    states = scenario.states()
    return states.get("pending", 0) + states.get("running", 0) + states.get("scheduled", 0) == 0


def _completed(scenario: Scenario) -> int:
    """Completed jobs, or -1 while the test's own reads meet the failover."""
    try:
        return scenario.states().get("completed", 0)
    except BackendUnavailableError:
        return -1
