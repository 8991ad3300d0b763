"""S4, S6, S9, S10, S17: task tracking in the seed's shape, ordered tasks, a failing task,
202 Accepted, and the monitoring view."""

from __future__ import annotations

from datetime import datetime

from demo_harness import Demo, Target, lines, wait_for


async def test_s9_long_task_is_tracked_from_pending_to_completed(demo: Demo) -> None:
    created = await demo.client.post("/tasks")
    task_id = created.json()["task_id"]
    seen: list[tuple[str, int]] = []

    def record(body: dict[str, object]) -> bool:
        entry = (str(body["status"]), int(body["progress"]))  # type: ignore[call-overload]
        if not seen or seen[-1] != entry:
            seen.append(entry)
        return body["status"] == "completed"

    while True:
        response = await demo.client.get(f"/tasks/{task_id}")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"id", "status", "progress", "result", "error", "created_at",
                             "updated_at"}
        if record(body):
            break
    progress = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert {s for s, _ in seen} <= {"pending", "running", "completed"}
    assert body["result"] == {"steps": 10} and body["error"] is None
    # Progress steps of 10 %: every value seen is a multiple of ten.
    assert all(p % 10 == 0 for p in progress)
    # The same job in Backburner's own router.
    job = await demo.job(task_id)
    assert job["task"] == "demo.long_task" and job["progress"]["percent"] == 100

    missing = await demo.client.get("/tasks/no-such-task")
    assert missing.status_code == 404 and missing.json()["detail"] == "Task not found"
    listed = (await demo.client.get("/tasks")).json()
    assert [t["id"] for t in listed] == [task_id]


async def test_s9_process_doubles_numbers_with_progress(demo: Demo) -> None:
    response = await demo.client.post("/process", json=[1, 2, 3.5, -4, 0.0])
    task_id = response.json()["task_id"]
    done = await demo.wait(task_id)
    assert done["result"] == {"processed": 5, "results": [2, 4, 7.0, -8, 0.0]}
    # The same kind of number out as in: integers stay integers, floats floats.
    assert [type(n) for n in done["result"]["results"]] == [int, int, float, int, float]
    stored = [*done["args"], *done["kwargs"].values()]
    assert stored == [[1, 2, 3.5, -4, 0.0]]
    assert [type(n) for n in stored[0]] == [int, int, float, int, float]
    ints = await demo.wait((await demo.client.post("/process", json=[1, 2, 3])).json()["task_id"])
    raw = (await demo.client.get(f"/jobs/{ints['id']}")).text
    assert '"results":[2,4,6]' in raw.replace(" ", "")
    info = (await demo.client.get(f"/tasks/{task_id}")).json()
    assert info["status"] == "completed" and info["progress"] == 100
    listed = {t["id"] for t in (await demo.client.get("/tasks")).json()}
    assert task_id in listed
    # Not numbers, or numbers whose double would not fit the JSON store (it keeps 64-bit
    # integers and finite floats): 422, nothing enqueued.
    for bad in (["x"], {"a": 1}, "nope", [True], ["1"], [2**63], [1.7e308]):
        assert (await demo.client.post("/process", json=bad)).status_code == 422, bad
    for text in ("[NaN]", "[Infinity]"):
        refused = await demo.client.post("/process", content=text,
                                         headers={"content-type": "application/json"})
        assert refused.status_code == 422, text
    assert len(await demo.jobs_of("demo.process_data")) == 2
    both = await demo.client.post("/process", params={"data": "x"}, json=[1])
    assert both.status_code == 422


async def test_s10_a_failing_task_is_recorded_and_the_response_does_not_care(
    demo: Demo,
) -> None:
    failing = await demo.client.post("/process", params={"data": "error"})
    assert failing.status_code == 200 and failing.json() == {"message": "processing"}
    fine = await demo.client.post("/process", params={"data": "fine"})
    assert fine.status_code == 200
    jobs = await demo.wait_jobs("demo.risky_task", 2)
    by_state = {j["state"]: j for j in jobs}
    failed = by_state["failed"]
    (error,) = failed["errors"]
    assert error["type"] == "ValueError" and error["message"] == "processing failed"
    assert "Traceback" in error["traceback"] and "risky_task" in error["traceback"]
    assert by_state["completed"]["result"] == "processed fine"
    # S4: the failure shows in the monitoring view and in the router's listing.
    monitor = (await demo.client.get("/monitor")).json()
    assert monitor["queues"]["default"]["failed"] >= 1
    assert monitor["workers"] and monitor["workers"][0]["concurrency"] == 8
    (recent,) = monitor["recent_failures"]
    assert recent["task"] == "demo.risky_task"
    assert recent["errors"][0]["message"] == "processing failed"
    # Error times as the router gives them: ISO 8601, the very same string.
    assert recent["errors"] == (await demo.job(recent["id"]))["errors"]
    assert datetime.fromisoformat(recent["errors"][0]["at"]).tzinfo is not None
    listed = (await demo.client.get("/jobs", params={"state": "failed"})).json()["jobs"]
    assert [j["id"] for j in listed] == [failed["id"]]
    page = await demo.client.get("/dashboard/")
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "demo.risky_task" in page.text and "processing failed" in page.text
    metrics = (await demo.client.get("/metrics")).text
    assert 'backburner_jobs{queue="default",state="failed"} 1.0' in metrics
    assert ('backburner_job_transitions_total{queue="default",state="failed",'
            'task="demo.risky_task"} 1.0') in metrics


async def test_s4_the_dashboard_escapes_what_jobs_carry(demo: Demo, target: Target) -> None:
    evil = '<script>alert(1)</script>"onmouseover="x'
    response = await demo.client.post("/webhook", params={"url": f"{target.url}/fail?q={evil}"},
                                      json={"x": evil})
    failed = await demo.wait(response.json()["task_id"])
    assert failed["state"] == "failed" and evil in failed["errors"][-1]["message"]
    page = (await demo.client.get("/dashboard/")).text
    assert failed["id"] in page and "<script>alert" not in page
    assert '"onmouseover' not in page


async def test_s6_tasks_a_b_c_run_in_the_order_added(demo: Demo) -> None:
    for _ in range(3):
        assert (await demo.client.post("/process")).json() == {"message": "processing"}
    chains = await demo.wait_jobs("backburner.chain", 3, "completed")
    for chain in chains:
        assert chain["result"] == ["A:data_a", "B:data_b", "C:data_c"]
    log = demo.settings.activity_log
    await wait_for(lambda: len(lines(log)) == 9, "nine lines")
    # Three requests may interleave with each other, but within one request A, B, C.
    order = [line.split(":")[0] for line in lines(log)]
    assert order.count("task A") == 3
    for letter_before, letter_after in (("task A", "task B"), ("task B", "task C")):
        firsts = [i for i, x in enumerate(order) if x == letter_before]
        seconds = [i for i, x in enumerate(order) if x == letter_after]
        assert all(a < b for a, b in zip(sorted(firsts), sorted(seconds), strict=True))


async def test_s17_long_jobs_are_accepted_with_202_and_location(demo: Demo) -> None:
    response = await demo.client.post("/long-jobs", params={"steps": 3})
    assert response.status_code == 202
    location = response.headers["Location"]
    body = response.json()
    assert location == body["status_url"] and location.endswith(f"/jobs/{body['id']}")
    assert response.headers["Retry-After"] == "1"
    status = await demo.client.get(location)
    assert status.status_code == 200 and status.json()["id"] == body["id"]
    assert (await demo.wait(body["id"]))["result"] == {"steps": 3}
    # The router's own enqueue of the exposed task answers the same way.
    exposed = await demo.client.post("/tasks/demo.long_task", json={"steps": 2})
    assert exposed.status_code == 202 and "Location" in exposed.headers
    for bad in ({"steps": 0}, {"steps": 1001}, {"steps": "many"}):
        assert (await demo.client.post("/long-jobs", params=bad)).status_code == 422
