"""OpenTelemetry spans on every backend: the enqueue span's context travels in the stored
job and the execution span is its child, linked to it; records and tasks never see it."""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from backburner import Backburner, codec
from backburner.backends.protocol import Backend, NewJob
from backburner.ids import new_job_id
from backburner.tracing import META_KEY, TRACE_KEY


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


def register(app: Backburner, seen: list[Any]) -> tuple[Any, Any]:
    @app.task(name="traced.ok", retries=0)
    async def ok(x: int) -> int:
        seen.append(trace.get_current_span().get_span_context())
        return x

    @app.task(name="traced.boom", retries=0, queue="risky")
    async def boom() -> None:
        raise ValueError("no luck")

    return ok, boom


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


async def test_execution_spans_are_children_of_the_enqueue_spans(backend: Backend) -> None:
    tracer_provider, exporter = provider()
    app = Backburner(backend=backend, poll_interval=0.2, tracing=tracer_provider)
    seen: list[Any] = []
    ok, boom = register(app, seen)
    with tracer_provider.get_tracer("test").start_as_current_span("request") as request:
        job = await ok.enqueue(x=7)
        failing = await boom.enqueue()
    await app.run_worker(burst=True, concurrency=2)

    record = await app.get_job(job.id)
    assert record is not None and record.result == 7
    assert record.kwargs == {"x": 7}  # the carrier is not shown
    spans = exporter.get_finished_spans()
    enqueue, process = one(spans, "enqueue traced.ok"), one(spans, "process traced.ok")
    assert enqueue.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert enqueue.parent is not None
    assert enqueue.parent.span_id == request.get_span_context().span_id
    assert process.parent is not None and process.parent.span_id == enqueue.context.span_id
    assert process.context.trace_id == request.get_span_context().trace_id
    assert [link.context.span_id for link in process.links] == [enqueue.context.span_id]
    wanted = {"backburner.task": "traced.ok", "messaging.destination.name": "default",
              "messaging.message.id": job.id, "backburner.attempt": 1,
              "backburner.outcome": "complete"}
    assert dict(process.attributes or {}).items() >= wanted.items()
    assert seen == [process.context]  # the task runs inside its execution span

    failed = one(spans, "process traced.boom")
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["exception.type"] == "ValueError"
    assert (failed.attributes or {})["messaging.message.id"] == failing.id


async def test_a_traced_job_runs_on_a_worker_without_tracing(backend: Backend) -> None:
    tracer_provider, exporter = provider()
    producer = Backburner(backend=backend, tracing=tracer_provider)
    consumer = Backburner(backend=backend, poll_interval=0.2)
    seen: list[Any] = []
    ok, _ = register(producer, seen)
    register(consumer, [])
    job = await ok.enqueue(x=3)
    page = await consumer.list_jobs()
    assert all(TRACE_KEY not in j.kwargs for j in page.jobs)
    await consumer.run_worker(burst=True)
    done = await consumer.get_job(job.id)
    assert done is not None and done.result == 3
    assert [s.name for s in exporter.get_finished_spans()] == ["enqueue traced.ok"]


async def test_no_spans_and_no_carrier_when_tracing_is_off(app: Backburner) -> None:
    seen: list[Any] = []
    ok, _ = register(app, seen)
    assert app.tracing is None
    job = await ok.enqueue(x=1)
    page = await app.backend.list_jobs(app.job_filter(search="backburner.trace"))
    assert page.jobs == []
    await app.run_worker(burst=True)
    assert (await job.result(timeout=5)) == 1
    assert seen == [trace.INVALID_SPAN_CONTEXT]


async def test_the_steps_of_a_chain_are_traced_too(backend: Backend) -> None:
    tracer_provider, exporter = provider()
    app = Backburner(backend=backend, poll_interval=0.2, tracing=tracer_provider)
    ok, _ = register(app, [])

    @app.task(name="traced.double", retries=0)
    async def double(n: int) -> int:
        return n * 2

    flow = await app.chain(ok.call(x=2), double.pipe())
    await app.run_worker(burst=True)
    last = await app.get_job(flow.jobs[-1].id)
    assert last is not None and last.result == 4 and last.kwargs == {}
    spans = exporter.get_finished_spans()
    for task in ("traced.ok", "traced.double"):
        enqueue, process = one(spans, f"enqueue {task}"), one(spans, f"process {task}")
        assert process.parent is not None and process.parent.span_id == enqueue.context.span_id


async def test_a_job_enqueued_with_the_carrier_in_its_kwargs_still_runs_parented(
    backend: Backend,
) -> None:
    # An earlier release stored the context under TRACE_KEY in the kwargs, not in meta.
    tracer_provider, exporter = provider()
    app = Backburner(backend=backend, poll_interval=0.2, tracing=tracer_provider)
    seen: list[Any] = []
    register(app, seen)
    with tracer_provider.get_tracer("test").start_as_current_span("old enqueue") as old:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    job = NewJob(id=new_job_id(), task="traced.ok", queue="default", priority=0, args="[]",
                 kwargs=codec.dumps({"x": 5, TRACE_KEY: carrier}), max_attempts=1)
    await backend.insert([job])
    await app.run_worker(burst=True)

    record = await app.get_job(job.id)
    assert record is not None and record.result == 5  # the key was not bound to the task
    assert record.meta == {}
    assert TRACE_KEY in record.kwargs  # records strip nothing (see backburner.tracing)
    process = one(exporter.get_finished_spans(), "process traced.ok")
    assert process.parent is not None
    assert process.parent.span_id == old.get_span_context().span_id
    assert [link.context.span_id for link in process.links] == [old.get_span_context().span_id]
    assert seen == [process.context]


async def test_the_carrier_joins_the_meta_a_job_already_has(backend: Backend) -> None:
    tracer_provider, _ = provider()
    app = Backburner(backend=backend, tracing=tracer_provider)
    assert app.tracing is not None
    job = NewJob(id="j1", task="traced.ok", queue="default", priority=0, args="[]",
                 kwargs='{"x":1}', max_attempts=1, meta=codec.dumps({"kept": True}))
    with app.tracing.enqueue([job]) as (traced,):
        meta = codec.loads(traced.meta or "null")
    assert meta["kept"] is True and "traceparent" in meta[META_KEY]
    assert traced.kwargs == '{"x":1}'
