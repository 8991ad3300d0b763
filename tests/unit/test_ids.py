import os
import sys
import threading
import time
import uuid

import pytest

from backburner.ids import new_job_id


def test_ids_are_unique_uuid7_and_roughly_time_ordered() -> None:
    first = new_job_id()
    time.sleep(0.002)
    ids = [new_job_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(first)
    assert parsed.version == 7
    assert all(first < i for i in ids)


def random_part(job_id: str) -> str:
    """What follows the version digit: all of it drawn from the random block."""
    return job_id[15:]


def test_ids_are_valid_uuid7_across_many_blocks() -> None:
    for _ in range(2_000):
        job_id = new_job_id()
        parsed = uuid.UUID(job_id)
        assert str(parsed) == job_id
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert abs(int(job_id.replace("-", "")[:12], 16) - time.time() * 1000) < 5_000


def test_threads_never_share_random_bytes() -> None:
    per_thread = 5_000
    results: list[list[str]] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        results.append([new_job_id() for _ in range(per_thread)])

    threads = [threading.Thread(target=make) for _ in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, inside new_job_id too
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    parts = [random_part(i) for ids in results for i in ids]
    assert len(parts) == 8 * per_thread
    assert len(set(parts)) == len(parts)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_other_bytes_than_its_parent() -> None:
    new_job_id()  # the parent holds a block partly used
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write, "\n".join(new_job_id() for _ in range(500)).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = [new_job_id() for _ in range(500)]
    with os.fdopen(read) as pipe:
        child = pipe.read().split("\n")
    os.waitpid(pid, 0)
    assert len(child) == 500
    assert not {random_part(i) for i in parent} & {random_part(i) for i in child}
