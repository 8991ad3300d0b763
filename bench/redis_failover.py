"""R26 at full size: 5,000 jobs, two workers and an enqueuer on a private 6-node Redis
Cluster, a primary SIGKILLed halfway, once without and once with `wait_replicas=1`.

    .venv/bin/python bench/redis_failover.py [--jobs 5000]

Prints, per variant, the acknowledged enqueues lost in the failover, the enqueue rate before
the kill (one enqueue at a time, one client) and the stall, then the rate ratio (the cost of
waiting for the replica). The run itself is tests/reliability/r26_failover.py, which the CI
test (tests/reliability/test_r26_redis_cluster_failover.py) runs with 1,000 jobs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent / "tests", HERE.parent / "tests" / "reliability"):
    sys.path.insert(0, str(folder))

from r26_failover import run_failover  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    options = parser.parse_args()
    results = []
    for wait in (0, 1):
        with tempfile.TemporaryDirectory(prefix="bb-r26-") as directory:
            result = run_failover(Path(directory), options.jobs, wait)
        print(result.figures(), flush=True)
        results.append(result)
    plain, waiting = results
    print(f"enqueue rate with wait_replicas=1 / without: "
          f"{waiting.enqueue_rate:.0f}/{plain.enqueue_rate:.0f} = "
          f"{waiting.enqueue_rate / plain.enqueue_rate:.2f}")
    print(f"lost acknowledged enqueues: without {len(plain.lost)}, with {len(waiting.lost)}")


if __name__ == "__main__":
    main()
