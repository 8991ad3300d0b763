"""S1, S2, S5, S13, S14, S16: answer at once, the durable job does the slow part."""

from __future__ import annotations

import ssl
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import httpx2
import trustme
from demo_harness import Demo, lines, running_demo, wait_for
from fastapi import FastAPI

from backburner import JobState
from backburner.testing import JobsHarness
from examples.demo.settings import Settings, SmtpSettings
from examples.demo.smtp_sink import SmtpSink


async def test_s1_s2_send_email_answers_first_and_the_result_outlives_a_restart(
    settings: Settings, sink: SmtpSink
) -> None:
    slow = replace(settings, slow_seconds=0.3)
    # No worker in this web process: the answer cannot have waited for the mail.
    async with running_demo(slow, sink, worker=False) as web:
        response = await web.client.get("/send_email/test@example.com")
        assert response.status_code == 200
        body = response.json()
        assert body["message"].startswith("Email will be sent to test@example.com")
        assert body["task_id"] in body["message"]
        assert (await web.job(body["task_id"]))["state"] == "pending"
        assert sink.mails == []
    # A worker (here embedded in a restarted server) runs it; the mail reaches SMTP.
    async with running_demo(slow, sink) as web:
        done = await web.wait(body["task_id"])
        assert done["state"] == "completed"
        assert done["result"] == "Email sent to test@example.com"
    assert [m.to for m in sink.mails] == [("test@example.com",)]
    # After another restart the result is still there, by id.
    async with running_demo(slow, sink, worker=False) as web:
        assert (await web.job(body["task_id"]))["result"] == "Email sent to test@example.com"
        assert (await web.client.get("/send_email/not-an-email")).status_code == 422


# S5, S13, S16 run in-process, their jobs on an in-memory store (the `backburner` fixture of
# Backburner's pytest plugin): `api` enqueues through the demo's own routes, `drain` runs
# the jobs, retries included, on a manual clock (no backoff is slept through).
async def test_s5_register_sends_the_welcome_mail_and_retries_a_failed_send(
    api: httpx2.AsyncClient, backburner: JobsHarness, sink: SmtpSink, demo_api: FastAPI
) -> None:
    send_welcome = demo_api.state.demo_tasks.send_welcome
    sink.fail_next = 1  # the first delivery is refused with 451: the job must retry
    response = await api.post("/register", json={"email": "ada@example.com", "username": "ada"})
    assert response.status_code == 200
    backburner.assert_enqueued(send_welcome, "ada@example.com", "ada")
    assert sink.mails == []  # enqueued, not run: the answer did not wait for SMTP
    assert await backburner.drain() == 2
    (job,) = backburner.jobs(send_welcome)
    assert job.state is JobState.COMPLETED and job.attempt == 2
    (error,) = job.errors
    assert error.type == "TransientMailError" and "451" in error.message
    (mail,) = sink.mails
    assert mail.to == ("ada@example.com",) and mail.subject == "Welcome!"
    assert "Welcome ada" in mail.body

    # The other seed's shape: ?email=
    assert (await api.post("/register", params={"email": "bo@example.com"})).is_success
    backburner.assert_enqueued(send_welcome, "bo@example.com", "bo")
    for bad in ({"email": "nope", "username": "x"}, {"email": "a@example.com"}):
        assert (await api.post("/register", json=bad)).status_code == 422
    assert (await api.post("/register")).status_code == 422
    assert len(backburner.jobs(send_welcome)) == 2  # refused requests enqueue nothing
    await backburner.drain()
    assert len(sink.mails) == 2


async def test_s5_a_mail_that_cannot_be_delivered_fails_visibly(
    api: httpx2.AsyncClient, backburner: JobsHarness
) -> None:
    await api.post("/register", json={"email": "bounce@example.com", "username": "b"})
    await backburner.drain()
    (job,) = backburner.jobs("demo.send_welcome")
    # A permanent refusal (550) is not retried, and the error says why.
    assert job.state is JobState.FAILED and job.attempt == 1
    assert "550" in job.errors[0].message
    assert "PermanentMailError" in (job.errors[0].traceback or "")


async def test_s13_notification_line_is_appended_to_the_log(
    api: httpx2.AsyncClient, backburner: JobsHarness, settings: Settings
) -> None:
    response = await api.post("/send-notification/ada@example.com")
    assert response.json() == {"message": "Notification sent in the background"}
    log = settings.notification_log
    assert "Sending notification to ada@example.com" not in lines(log)
    assert await backburner.drain() == 1
    assert "Sending notification to ada@example.com" in lines(log)


async def test_s16_root_answers_before_the_job_prints(
    api: httpx2.AsyncClient, backburner: JobsHarness, settings: Settings, demo_api: FastAPI
) -> None:
    print_msg = demo_api.state.demo_tasks.print_msg
    response = await api.get("/")
    assert response.json() == {"msg": "Hello World"}
    backburner.assert_enqueued(print_msg, name="Ithome")
    assert "Hello Ithome~" not in lines(settings.activity_log)
    await api.get("/", params={"name": "Backburner"})
    await backburner.drain()
    assert [j.state for j in backburner.jobs(print_msg)] == [JobState.COMPLETED] * 2
    assert lines(settings.activity_log).count("Hello Ithome~") == 1
    assert "Hello Backburner~" in lines(settings.activity_log)


async def test_s14_smtp_over_tls_with_login_comes_from_configuration(
    settings: Settings, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for implicit in (True, False):  # SMTP over TLS (the seed's port 465), then STARTTLS
        async with SmtpSink(credentials=("mailer", "s3cret"), tls=server_context,
                            implicit_tls=implicit) as secure:
            smtp = SmtpSettings(host="127.0.0.1", port=secure.port,
                                security="tls" if implicit else "starttls",
                                username="mailer", password="s3cret", ca_file=str(ca_file))
            mode = "tls" if implicit else "starttls"
            configured = replace(settings, smtp=smtp, data_dir=tmp_path / mode,
                                 jobs_url=f"sqlite:///{tmp_path}/{mode}.db")
            async with running_demo(configured, secure) as web:
                await web.client.post("/register", json={"email": "tls@example.com",
                                                         "username": "t"})
                (job,) = await web.wait_jobs("demo.send_welcome", 1)
                assert job["state"] == "completed", job
            assert [m.to for m in secure.mails] == [("tls@example.com",)]

    # Wrong credentials: a permanent failure, recorded on the job.
    async with SmtpSink(credentials=("mailer", "s3cret"), tls=server_context,
                        implicit_tls=True) as secure:
        smtp = SmtpSettings(host="127.0.0.1", port=secure.port, security="tls",
                            username="mailer", password="wrong", ca_file=str(ca_file))
        configured = replace(settings, smtp=smtp, data_dir=tmp_path / "bad",
                             jobs_url=f"sqlite:///{tmp_path}/bad.db")
        async with running_demo(configured, secure) as web:
            await web.client.post("/register", json={"email": "x@example.com", "username": "x"})
            (job,) = await web.wait_jobs("demo.send_welcome", 1)
            assert job["state"] == "failed" and "535" in job["errors"][0]["message"]
        assert secure.mails == []


async def test_the_mails_page_says_when_there_are_no_mails_yet(
    demo: Demo, sink: SmtpSink
) -> None:
    empty = await demo.client.get("/mails")
    assert empty.status_code == 200 and 'id="no-mails"' in empty.text
    assert "No mails yet" in empty.text and "<table" not in empty.text
    await demo.client.post("/register", json={"email": "ada@example.com", "username": "ada"})
    await wait_for(lambda: len(sink.mails) == 1, "the welcome mail")
    listed = await demo.client.get("/mails")
    assert "No mails yet" not in listed.text
    assert "<table" in listed.text and "ada@example.com" in listed.text
    (mail,) = (await demo.client.get("/mails.json")).json()
    # One format for times: ISO 8601 with its offset, as the job API gives them.
    assert datetime.fromisoformat(mail["received_at"]).utcoffset() is not None


async def test_pages_have_an_icon(demo: Demo) -> None:
    icon = await demo.client.get("/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    for page in ("/demo", "/mails"):
        assert 'rel="icon"' in (await demo.client.get(page)).text
