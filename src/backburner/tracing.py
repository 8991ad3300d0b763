"""OpenTelemetry spans around enqueue and execution (`Backburner(..., tracing=True)`; needs
`pip install 'backburner[otel]'`).

- Enqueue: a PRODUCER span `enqueue <task>` per job, in the caller's current trace. Its
  context is written into the job's meta (`NewJob.meta`, stored beside the arguments and
  never passed to the task) as `{"trace": {...}}`, W3C trace context (whatever propagator
  OpenTelemetry is configured with), merged with any meta the job already has.
- Execution: a CONSUMER span `process <task>` per attempt, a child of the enqueue span and
  linked to it, with the task, queue, job id and attempt; its status is ERROR when the
  attempt failed, with the error's type and message.

Jobs enqueued by an earlier release carry the context in their kwargs instead, under the
reserved keyword `backburner.trace` (`TRACE_KEY`; no Python identifier, so no task argument
has it). Execution still reads it from there, and the worker takes the key out before
binding the arguments (`strip`). The stores keep no knowledge of it: the record of such a job
(`get`, `list_jobs`) shows the key in its kwargs until the job is pruned.

Attributes follow OpenTelemetry's messaging conventions (`messaging.system` = backburner,
`messaging.destination.name` = the queue, `messaging.message.id` = the job id) plus
`backburner.task` and `backburner.attempt`. Tracing off (the default) costs nothing: the app
uses `NoTracing`, whose calls do nothing, and OpenTelemetry is never imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from backburner import codec
from backburner._version import __version__
from backburner.backends.protocol import ClaimedJob, Failure, NewJob
from backburner.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from backburner.execution import Outcome

__all__ = ["META_KEY", "TRACE_KEY", "JobSpans", "NoTracing", "Tracing"]

META_KEY = "trace"
"""The entry of a job's meta that carries its enqueue span's context."""

TRACE_KEY = "backburner.trace"
"""Where jobs enqueued by an earlier release carry it: a reserved keyword of their kwargs."""


def strip(kwargs: Any) -> Any:
    """`kwargs` without an earlier release's trace carrier (what the task is called with)."""
    if isinstance(kwargs, dict) and TRACE_KEY in kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k != TRACE_KEY}
    return kwargs


class JobSpans(Protocol):
    """What enqueue and the worker call around every job: `Tracing` when tracing is on,
    `NoTracing` when it is off, so neither has a second path for either case."""

    def enqueue(self, jobs: Sequence[NewJob]) -> AbstractContextManager[Sequence[NewJob]]:
        """Open while `jobs` are stored; gives the jobs to store."""
        ...

    def execution(self, job: ClaimedJob) -> AbstractContextManager[Any]:
        """Open while one attempt of `job` runs; gives its span."""
        ...

    def finished(self, span: Any, outcome: Outcome) -> None:
        """Mark the attempt's span with its outcome."""
        ...


class NoTracing:
    """Tracing off: the jobs are stored as they are, attempts run in no span. One trivial
    call per job, nothing imported."""

    def __init__(self) -> None:
        # nullcontext keeps no state between uses, so one serves every attempt.
        self._no_span: AbstractContextManager[None] = contextlib.nullcontext()

    def enqueue(self, jobs: Sequence[NewJob]) -> AbstractContextManager[Sequence[NewJob]]:
        return contextlib.nullcontext(jobs)

    def execution(self, job: ClaimedJob) -> AbstractContextManager[None]:
        return self._no_span

    def finished(self, span: Any, outcome: Outcome) -> None:
        return None


class Tracing:
    """The spans of one app: made from `tracer_provider` (None: OpenTelemetry's global)."""

    def __init__(self, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            raise ConfigurationError(
                "tracing=True needs OpenTelemetry: pip install 'backburner[otel]'"
            ) from None
        self._trace = trace
        self._propagate = propagate
        self.tracer = trace.get_tracer("backburner", __version__,
                                       tracer_provider=tracer_provider)

    def _attributes(self, task: str, queue: str, job_id: str) -> dict[str, Any]:
        return {
            "messaging.system": "backburner",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "backburner.task": task,
        }

    @contextlib.contextmanager
    def enqueue(self, jobs: Sequence[NewJob]) -> Iterator[list[NewJob]]:
        """One PRODUCER span per job, open while the jobs are stored; yields the jobs with
        their span's context in their meta. A store error ends the spans with it."""
        spans: list[Span] = []
        traced: list[NewJob] = []
        kind = self._trace.SpanKind.PRODUCER
        try:
            for job in jobs:
                span = self.tracer.start_span(
                    f"enqueue {job.task}", kind=kind,
                    attributes={**self._attributes(job.task, job.queue, job.id),
                                "messaging.operation.type": "send"},
                )
                spans.append(span)
                carrier: dict[str, str] = {}
                self._propagate.inject(carrier, context=self._trace.set_span_in_context(span))
                traced.append(replace(job, meta=_with_carrier(job.meta, carrier)))
            yield traced
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, str(exc)))
            raise
        finally:
            for span in spans:
                span.end()

    @contextlib.contextmanager
    def execution(self, job: ClaimedJob) -> Iterator[Span]:
        """The CONSUMER span of one attempt, child of (and linked to) its enqueue span."""
        parent = None
        links = []
        carrier = _carrier(job)
        if carrier is not None:
            parent = self._propagate.extract(
                {str(k): str(v) for k, v in carrier.items()}
            )
            producer = self._trace.get_current_span(parent).get_span_context()
            if producer.is_valid:
                links.append(self._trace.Link(producer))
        attributes = {**self._attributes(job.task, job.queue, job.id),
                      "messaging.operation.type": "process", "backburner.attempt": job.attempt}
        with self.tracer.start_as_current_span(
            f"process {job.task}", context=parent, kind=self._trace.SpanKind.CONSUMER,
            links=links, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    def finished(self, span: Span, outcome: Outcome) -> None:
        """Mark the attempt's span with its outcome."""
        span.set_attribute("backburner.outcome", outcome.kind)
        write = outcome.write
        if isinstance(write, Failure):
            span.set_attribute("backburner.failure_reason", write.reason.value)
            kind = str(write.error.get("type", ""))
            message = str(write.error.get("message", ""))
            span.set_attribute("exception.type", kind)
            span.set_attribute("exception.message", message)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR,
                                               f"{kind}: {message}"))


def _with_carrier(meta: str | None, carrier: dict[str, str]) -> str:
    """The job's meta JSON object with the carrier in it (what was there is kept; a meta
    that is no JSON object cannot be kept, and is replaced)."""
    stored = _object(meta) if meta is not None else None
    return codec.dumps({**(stored or {}), META_KEY: carrier})


def _carrier(job: ClaimedJob) -> dict[Any, Any] | None:
    """The trace context stored with the job: in its meta, or, for a job enqueued by an
    earlier release, in its kwargs."""
    if job.meta is not None:
        carrier = (_object(job.meta) or {}).get(META_KEY)
        if isinstance(carrier, dict):
            return carrier
    legacy = (_object(job.kwargs) or {}).get(TRACE_KEY)
    return legacy if isinstance(legacy, dict) else None


def _object(text: str) -> dict[Any, Any] | None:
    """A stored JSON object (None: not JSON, or not an object)."""
    try:
        value = codec.loads(text)
    except codec.PayloadError:
        return None
    return value if isinstance(value, dict) else None
