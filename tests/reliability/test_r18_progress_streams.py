"""R18: many progress subscribers of one job, its worker killed mid-progress, reconnecting
clients and a slow consumer.

A web process (uvicorn, r18_web.py, no embedded worker) serves 50 subscribers of one job
that writes progress: 35 over Server-Sent Events (10 of them drop their connection after a
few events and come back with `Last-Event-ID`) and 15 over the WebSocket, plus one slow
consumer that opens the stream and does not read it until the end. The worker running the
job is SIGKILLed mid-progress; another worker takes the job after the lease and finishes it.
What must hold: every subscriber gets the terminal state within 2 s of the job ending (a
bounded wait, not a measure of speed); the progress an attempt wrote never goes back in
what a subscriber sees (a new attempt's first updates may still show the previous attempt's
progress until it reports its own: counted and reported, see the FIGURES line); a
reconnecting client does not get the state it already had; the slow
consumer holds up neither the worker (every progress write of the second attempt stored)
nor the other subscribers, and still ends with the terminal state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import r18_app
import websockets
from rel_harness import DB_ENV, HERE, Scenario
from services import free_port
from test_r30_partition import KINDS

from backburner import JobState

pytestmark = pytest.mark.reliability

SSE, RECONNECTING, WS = 35, 10, 15
# SQLite (datagram wake-ups), Redis (pub/sub) and PostgreSQL (LISTEN): the three ways a web
# process hears of a change. (MySQL's are datagrams too; left out for CI time.)
LEASE = 1.5
STEPS, PAUSE = 25, 0.1
TERMINAL_WITHIN = 2.0


@dataclass
class Seen:
    name: str
    events: list[dict[str, Any]] = field(default_factory=list)
    repeated_after_reconnect: list[str] = field(default_factory=list)
    reconnects: int = 0

    @property
    def terminal(self) -> bool:
        return bool(self.events) and self.events[-1]["state"] in ("completed", "failed",
                                                                   "cancelled")


@contextlib.contextmanager
def web_process(scenario: Scenario) -> Iterator[int]:
    port = free_port()
    log_path = scenario.directory / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "r18_web:api", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=HERE, env=scenario.env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None and time.monotonic() < deadline, (
                    log_path.read_text())
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


# -- clients -------------------------------------------------------------------------------
async def _open_sse(port: int, job_id: str, last_event_id: str | None,
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
    writer.write(f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Accept: text/event-stream\r\n{extra}\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get("transfer-encoding") == "chunked", headers
    return reader, writer


async def _sse_frames(reader: asyncio.StreamReader) -> Any:
    """(id, event, data) of each frame of a chunked event stream, until it ends."""
    buffer = ""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            return
        buffer += (await reader.readexactly(size + 2))[:-2].decode()
        while "\n\n" in buffer:
            frame, buffer = buffer.split("\n\n", 1)
            fields: dict[str, str] = {}
            for line in frame.splitlines():
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
            yield fields.get("id"), fields.get("event"), fields.get("data")


async def sse_subscriber(port: int, job_id: str, seen: Seen, drop_after: int | None) -> None:
    last_id: str | None = None
    while True:
        reader, writer = await _open_sse(port, job_id, last_id)
        first_after_reconnect = last_id is not None
        try:
            async for ident, event, data in _sse_frames(reader):
                if event != "job":
                    assert event is None, (event, data)  # retry hint, keep-alive
                    continue
                if first_after_reconnect and ident == last_id:
                    seen.repeated_after_reconnect.append(ident)
                first_after_reconnect = False
                last_id = ident
                seen.events.append(json.loads(data or "{}"))
                if drop_after is not None and len(seen.events) >= drop_after \
                        and not seen.terminal:
                    break
            else:
                return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        drop_after = None
        seen.reconnects += 1


async def ws_subscriber(port: int, job_id: str, seen: Seen) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/jobs/{job_id}/ws") as ws:
        async for message in ws:
            update = json.loads(message)
            if update["type"] == "job":
                seen.events.append(update)


async def slow_consumer(port: int, job_id: str, done: asyncio.Event) -> list[dict[str, Any]]:
    """Opens the stream with a tiny receive buffer and reads nothing until `done`."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(
        sock, f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await done.wait()  # nothing read meanwhile: the server's writes pile up
    reader, writer = await asyncio.open_connection(sock=sock)
    events = []
    try:
        assert b" 200 " in await reader.readline()
        while await reader.readline() not in (b"\r\n", b""):
            pass
        async for _, event, data in _sse_frames(reader):
            if event == "job":
                events.append(json.loads(data or "{}"))
    finally:
        writer.close()
    return events


# -- the test ------------------------------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", ["sqlite", *KINDS], indirect=True)
def test_fifty_subscribers_a_killed_worker_and_a_slow_consumer(scenario: Scenario) -> None:
    scenario.pool.env[DB_ENV] = scenario.url

    async def enqueue() -> str:
        async with r18_app.build_app(scenario.url) as app:
            return (await app.get_task("r18.steps").enqueue(STEPS, PAUSE)).id

    # The store exists (migrated) before the web process opens it.
    job_id = asyncio.run(enqueue())
    with web_process(scenario) as port:
        result = asyncio.run(run_clients(scenario, port, job_id))
    subscribers, slow, ended_at, delivered_at, killed_at = result
    record = scenario.record(job_id)
    assert record.state is JobState.COMPLETED and record.attempt == 2, record
    history = scenario.history()
    first, second = history.of(job_id)
    assert second.writes and all(w.ok for w in second.writes), second.writes
    carried_over: set[str] = set()
    reconnected = [s for s in subscribers if s.reconnects]
    assert len(reconnected) == RECONNECTING
    for seen in subscribers:
        assert seen.terminal, (seen.name, seen.events[-3:])
        assert seen.events[-1]["attempt"] == 2
        assert seen.repeated_after_reconnect == [], seen.name
        by_attempt: dict[int, float] = {}
        for update in seen.events:
            progress = update["progress"]
            if progress is None:
                continue
            # r18.steps tags its progress "pid:attempt:": whose progress this is. Every
            # store clears progress at the claim, so an attempt never shows the last one's.
            written_by = int(progress["message"].split(":")[1])
            if written_by != update["attempt"]:
                carried_over.add(seen.name)
            before = by_attempt.get(written_by, float("-inf"))
            assert progress["current"] >= before, (seen.name, update)
            by_attempt[written_by] = progress["current"]
    assert not carried_over, f"shown another attempt's progress: {sorted(carried_over)}"
    assert slow and slow[-1]["state"] == "completed", slow[-3:]
    counts = sorted(len(s.events) for s in subscribers)
    print(f"FIGURES R18 {scenario.kind}: {len(subscribers)} subscribers ({SSE} SSE of which "
          f"{RECONNECTING} reconnected with Last-Event-ID, {WS} WebSocket) + 1 slow consumer; "
          f"worker killed at step {len(first.writes)} of {STEPS}; all got the terminal state "
          f"{delivered_at - ended_at:.2f}s after the job ended (deadline {TERMINAL_WITHIN}s); "
          f"events per subscriber {counts[0]}-{counts[-1]}; slow consumer got {len(slow)} "
          f"events ending with the terminal state; second attempt's progress writes all "
          f"stored ({len(second.writes)}), the kill {killed_at:.1f}s in; subscribers shown "
          f"attempt 1's progress under attempt 2 before its own: {len(carried_over)}")


async def run_clients(
    scenario: Scenario, port: int, job_id: str,
) -> tuple[list[Seen], list[dict[str, Any]], float, float, float]:
    began = time.monotonic()
    subscribers = [Seen(f"sse-{i}") for i in range(SSE)] + [Seen(f"ws-{i}") for i in range(WS)]
    slow_done = asyncio.Event()
    tasks = [
        asyncio.create_task(sse_subscriber(port, job_id, subscribers[i],
                                           3 + i % 4 if i < RECONNECTING else None))
        for i in range(SSE)
    ] + [asyncio.create_task(ws_subscriber(port, job_id, subscribers[SSE + i]))
         for i in range(WS)]
    slow_task = asyncio.create_task(slow_consumer(port, job_id, slow_done))
    (victim,) = scenario.pool.start(1, concurrency=1, lease=LEASE, app="r18_app:app")
    await until(lambda: bool(first_writes(scenario, job_id)), 30, "attempt 1 to start")
    # The rescuer boots while attempt 1 runs (it has nothing to claim until the kill).
    scenario.pool.start(1, concurrency=1, lease=LEASE, app="r18_app:app")
    await until(lambda: len(first_writes(scenario, job_id)) >= 5, 30, "progress on attempt 1")
    await asyncio.to_thread(scenario.pool.kill, victim)
    killed_at = time.monotonic() - began
    ended = await until(lambda: job_ended(scenario, job_id), 60, "the job to end")
    # The deadline: every subscriber has the terminal state within TERMINAL_WITHIN.
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=TERMINAL_WITHIN)
    delivered = time.monotonic()
    late = [s.name for s, t in zip(subscribers, tasks, strict=True) if not t.done()]
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert late == [], f"no terminal state within {TERMINAL_WITHIN}s: {late}"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], errors
    slow_done.set()
    slow = await asyncio.wait_for(slow_task, 30)
    return subscribers, slow, ended, delivered, killed_at


def first_writes(scenario: Scenario, job_id: str) -> list[Any]:
    attempts = scenario.history().of(job_id)
    return attempts[0].writes if attempts else []


def job_ended(scenario: Scenario, job_id: str) -> bool:
    return scenario.record(job_id).is_terminal


async def until(condition: Any, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(condition):
            return time.monotonic()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)

