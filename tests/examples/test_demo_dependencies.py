"""S8: background tasks added from a function dependency and from a class dependency."""

from __future__ import annotations

from demo_harness import Demo, lines, wait_for

from examples.demo.smtp_sink import SmtpSink


async def test_s8_a_shared_dependency_logs_the_request_id(demo: Demo) -> None:
    items = await demo.client.get("/items", params={"request_id": "req-1"})
    assert items.json() == {"items": [], "request_id": "req-1"}
    users = await demo.client.get("/users", params={"request_id": "req-2"})
    assert users.json() == {"users": [], "request_id": "req-2"}
    log = demo.settings.activity_log
    await wait_for(lambda: {"request req-1", "request req-2"} <= set(lines(log)), "log")
    jobs = await demo.wait_jobs("examples.demo.tasks.log_request", 2, "completed")
    assert {j["kwargs"]["request_id"] for j in jobs} == {"req-1", "req-2"}
    assert (await demo.client.get("/items")).status_code == 422


async def test_s8_a_class_dependency_schedules_mail_and_notification(
    demo: Demo, sink: SmtpSink
) -> None:
    response = await demo.client.post("/order", params={"email": "buyer@example.com"})
    assert response.json() == {"status": "success"}
    # The two tasks of the request run in order, as one tracked chain.
    (chain,) = await demo.wait_jobs("backburner.chain", 1, "completed")
    assert [s["task"] for s in chain["kwargs"]["steps"]] == [
        "demo.send_order_email", "demo.send_notification"]
    assert chain["result"] == ["order mail sent to buyer@example.com", "notified 1"]
    assert [m.to for m in sink.mails] == [("buyer@example.com",)]
    assert "notify user 1: new order" in lines(demo.settings.activity_log)
    assert (await demo.client.post("/order", params={"email": "bad"})).status_code == 422
