"""OpenTelemetry spans around enqueue and execution (`Backburner(..., tracing=True)`; needs
`pip install 'backburner[otel]'`).

- Enqueue: a PRODUCER span `enqueue <task>` per job, in the caller's current trace. Its
  context is written into the job, as W3C trace context (whatever propagator OpenTelemetry
  is configured with) under the reserved keyword `backburner.trace` of the stored kwargs
  JSON: not a Python identifier, so it never collides with a task's own argument. The worker
  takes it out before binding the arguments, and records never show it.
- Execution: a CONSUMER span `process <task>` per attempt, a child of the enqueue span and
  linked to it, with the task, queue, job id and attempt; its status is ERROR when the
  attempt failed, with the error's type and message.

Attributes follow OpenTelemetry's messaging conventions (`messaging.system` = backburner,
`messaging.destination.name` = the queue, `messaging.message.id` = the job id) plus
`backburner.task` and `backburner.attempt`. Tracing off (the default) costs nothing: no
import of OpenTelemetry, no extra work per job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from backburner import codec
from backburner._version import __version__
from backburner.backends.protocol import ClaimedJob, Failure, NewJob
from backburner.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from backburner.execution import Outcome

__all__ = ["TRACE_KEY", "Tracing"]

TRACE_KEY = "backburner.trace"
"""The reserved keyword of a job's stored kwargs that carries its enqueue span's context."""


def strip(kwargs: Any) -> Any:
    """`kwargs` without the trace carrier (what tasks and records see)."""
    if isinstance(kwargs, dict) and TRACE_KEY in kwargs:
        kwargs = {k: v for k, v in kwargs.items() if k != TRACE_KEY}
    return kwargs


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
        their span's context in their kwargs. A store error ends the spans with it."""
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
                traced.append(replace(job, kwargs=_with_carrier(job.kwargs, carrier)))
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
        try:
            stored = codec.loads(job.kwargs)
        except codec.PayloadError:
            stored = None
        carrier = stored.get(TRACE_KEY) if isinstance(stored, dict) else None
        if isinstance(carrier, dict):
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


def _with_carrier(kwargs: str, carrier: dict[str, str]) -> str:
    """The kwargs JSON object with the carrier added (the key cannot be there already: it is
    no identifier, so no task argument has it)."""
    entry = codec.dumps({TRACE_KEY: carrier})
    body = kwargs.strip()
    if body == "{}":
        return entry
    return entry[:-1] + "," + body[1:]
