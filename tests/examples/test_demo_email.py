"""S12: the email service, its stats after partial failures, retries of failed sends."""

from __future__ import annotations

from demo_harness import Demo, wait_for

from examples.demo.smtp_sink import SmtpSink


async def test_s12_one_job_per_recipient_and_stats_after_partial_failure(
    demo: Demo, sink: SmtpSink
) -> None:
    sink.fail_next = 1  # one temporary refusal: that send is retried and succeeds
    response = await demo.client.post("/email/send", json={
        "to": ["a@example.com", "bounce@example.com", "c@example.com"],
        "subject": "News", "body": "Hello", "cc": ["boss@example.com"],
    })
    assert response.status_code == 200
    body = response.json()
    assert body["recipients"] == ["a@example.com", "bounce@example.com", "c@example.com"]
    assert len(body["task_ids"]) == 3
    for job_id in body["task_ids"]:
        await demo.wait(job_id)
    jobs = [await demo.job(i) for i in body["task_ids"]]
    assert [j["state"] for j in jobs] == ["completed", "failed", "completed"]
    assert sum(j["attempt"] for j in jobs) == 4  # one of the good two needed a retry
    stats = (await demo.client.get("/email/stats")).json()
    assert stats["sent"] == 2 and stats["failed"] == 1
    assert {m["to"] for m in stats["recent_sent"]} == {"a@example.com", "c@example.com"}
    (failed,) = stats["recent_failed"]
    assert failed["to"] == "bounce@example.com" and "550" in failed["error"]
    reached = {address for m in sink.mails for address in m.to}
    assert reached == {"a@example.com", "c@example.com", "boss@example.com"}  # cc'd too
    assert all("boss@example.com" in m.to for m in sink.mails)


async def test_s12_bulk_sends_a_batch_in_one_job(demo: Demo, sink: SmtpSink) -> None:
    sink.fail_next = 1
    response = await demo.client.post(
        "/email/bulk", params={"subject": "Batch", "body": "Hi all"},
        json=["x@example.com", "bounce-2@example.com", "y@example.com"],
    )
    done = await demo.wait(response.json()["task_id"])
    assert done["state"] == "completed" and done["result"] == {"sent": 2, "failed": 1}
    stats = (await demo.client.get("/email/stats")).json()
    assert stats["sent"] == 2 and stats["failed"] == 1
    await wait_for(lambda: len(sink.mails) == 2, "two mails")


async def test_s12_attachments_are_uploaded_files(demo: Demo, sink: SmtpSink) -> None:
    upload = await demo.client.post("/upload", files={"file": ("r.csv", b"a,b\n1,2\n")})
    stored = upload.json()["stored_name"]
    response = await demo.client.post("/email/send", json={
        "to": ["a@example.com"], "subject": "Report", "body": "attached",
        "attachments": [stored]})
    await demo.wait(response.json()["task_ids"][0])
    assert sink.mails[0].attachments == (stored,)
    # Not a stored name at all: the schema refuses it; a stored name never uploaded: 404.
    for name, status in (("../../etc/passwd", 422), ("0" * 32 + ".csv", 404)):
        refused = await demo.client.post("/email/send", json={
            "to": ["a@example.com"], "subject": "x", "body": "x", "attachments": [name]})
        assert refused.status_code == status, refused.text


async def test_s12_invalid_requests_are_422(demo: Demo) -> None:
    bad_bodies = [
        {"to": ["not-an-email"], "subject": "s", "body": "b"},
        {"to": [], "subject": "s", "body": "b"},
        {"to": ["a@example.com"], "subject": "", "body": "b"},
        {"to": ["a@example.com"], "subject": "s", "body": "b", "cc": ["nope"]},
        {"subject": "s", "body": "b"},
    ]
    for body in bad_bodies:
        assert (await demo.client.post("/email/send", json=body)).status_code == 422, body
    bulk = await demo.client.post("/email/bulk", params={"subject": "s", "body": "b"},
                                  json=["fine@example.com", "broken"])
    assert bulk.status_code == 422
    assert (await demo.client.post("/email/bulk", json=["a@example.com"])).status_code == 422
