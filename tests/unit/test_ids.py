import time
import uuid

from backburner.ids import new_job_id


def test_ids_are_unique_uuid7_and_roughly_time_ordered() -> None:
    first = new_job_id()
    time.sleep(0.002)
    ids = [new_job_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(first)
    assert parsed.version == 7
    assert all(first < i for i in ids)
