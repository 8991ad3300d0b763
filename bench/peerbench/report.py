"""Markdown for the peers benchmark: the results table (ratios to the best peer), the
targets, versions and configurations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from peerbench.scenarios import Cell, Settings, SystemResult


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "jobs/s"

    def format(self, value: float) -> str:
        if self.unit == "jobs/s":
            return f"{value:,.0f}"
        return f"{value:.1f}" if self.unit == "MiB" else f"{value:.2f}"

    def better(self, a: float, b: float) -> float:
        """How many times better `a` is than `b` (> 1: better), whatever the direction."""
        return a / b if self.higher_is_better else b / a


def metrics(settings: Settings) -> list[Metric]:
    return [
        Metric("enqueue", "Enqueue 1 by 1", "jobs/s"),
        Metric("bulk", "Enqueue bulk", "jobs/s"),
        Metric("drain1", "Drain, 1 proc", "jobs/s"),
        Metric("drain2", "Drain, 2 procs", "jobs/s"),
        Metric("p50", "Latency p50", "ms"),
        Metric("p99", "Latency p99", "ms"),
        Metric("sleep", f"{settings.sleep_jobs:,} x sleep 10 ms", "jobs/s"),
        Metric("rss", "Worker peak RSS", "MiB"),
    ]


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and value > 0


def best(results: Sequence[SystemResult], metric: Metric) -> SystemResult | None:
    """The best of `results` on `metric`, among those that have a value."""
    measured = [r for r in results if _usable(r.value(metric.key))]
    if not measured:
        return None
    return max(measured, key=lambda r: metric.better(r.value(metric.key) or 0.0, 1.0))


def peers_only(results: Sequence[SystemResult]) -> list[SystemResult]:
    return [r for r in results if not r.peer.is_backburner]


def results_table(results: Sequence[SystemResult], settings: Settings) -> tuple[str, list[str]]:
    """The table and its footnotes (why a cell has no value)."""
    columns = metrics(settings)
    bests = {m.key: best(peers_only(results), m) for m in columns}
    footnotes: list[str] = []
    header = "| System | Store | " + " | ".join(f"{m.title} ({m.unit})" for m in columns) + " |"
    lines = [header, "|---|---|" + "---:|" * len(columns)]
    for result in results:
        cells = []
        for metric in columns:
            cell = result.cells.get(metric.key) or Cell(note="failed: not run")
            cells.append(_cell(result, metric, cell, bests[metric.key], footnotes))
        name = f"**{result.peer.label}**" if result.peer.is_backburner else result.peer.label
        lines.append(f"| {name} | {result.peer.store} | " + " | ".join(cells) + " |")
    return "\n".join(lines), footnotes


def _cell(result: SystemResult, metric: Metric, cell: Cell, top: SystemResult | None,
          footnotes: list[str]) -> str:
    if cell.value is None or not _usable(cell.value):
        note = cell.note or "no value"
        kind = note.split(":", 1)[0]
        # One footnote per distinct reason of a system (a system that is not available has
        # the same reason in every column).
        text = f"{result.peer.label}: {note}"
        if text not in footnotes:
            footnotes.append(text)
        return f"{kind} [{footnotes.index(text) + 1}]"
    text = metric.format(cell.value)
    if top is None:
        return text
    if top is result:
        text = f"**{text}**"
    reference = top.value(metric.key) or 1.0
    return f"{text} ({metric.better(cell.value, reference):.2f}x)"


# -- targets ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool | None
    margin: str


def _margin(achieved: float, required: float) -> tuple[bool, str]:
    """`achieved` and `required` as "times better" factors (higher is better)."""
    factor = achieved / required
    if factor >= 1:
        return True, f"met: {factor:.2f}x the bar"
    return False, f"missed: {factor:.2f}x the bar (needs {1 / factor:.2f}x more)"


class Targets:
    def __init__(self, results: Sequence[SystemResult], settings: Settings) -> None:
        self.by_key = {r.peer.key: r for r in results}
        self.peers = peers_only(results)
        self.metric = {m.key: m for m in metrics(settings)}
        self.verdicts: list[Verdict] = []

    def backburner(self, store: str) -> SystemResult | None:
        return self.by_key.get(f"backburner-{store}")

    def _missing(self, target: str, who: SystemResult | None, metric: str) -> bool:
        cell = who.cells.get(metric) if who is not None else None
        if cell is not None and _usable(cell.value):
            return False
        why = "not measured" if cell is None else (cell.note or "no value").split(":", 1)[0]
        self.verdicts.append(Verdict(target, why, None, "—"))
        return True

    def relative(self, target: str, store: str, metric_key: str, factor: float,
                 reference: Callable[[], SystemResult | None],
                 reference_metric: str | None = None) -> None:
        """Backburner on `store` must be `factor` times better than `reference`."""
        metric = self.metric[metric_key]
        ours, theirs = self.backburner(store), reference()
        ref_key = reference_metric or metric_key
        if self._missing(target, ours, metric_key):
            return
        if theirs is None or not _usable(theirs.value(ref_key)):
            self.verdicts.append(Verdict(target, "no reference measured", None, "—"))
            return
        a, b = ours.value(metric_key) or 0.0, theirs.value(ref_key) or 0.0  # type: ignore[union-attr]
        ratio = metric.better(a, b)
        met, margin = _margin(ratio, factor)
        measured = (f"{metric.format(a)} vs {metric.format(b)} {metric.unit} "
                    f"({theirs.peer.label}{'' if ref_key == metric_key else ', ' + ref_key}): "
                    f"{ratio:.2f}x")
        self.verdicts.append(Verdict(target, measured, met, margin))

    def absolute(self, target: str, store: str, metric_key: str, limit: float) -> None:
        metric = self.metric[metric_key]
        ours = self.backburner(store)
        if self._missing(target, ours, metric_key):
            return
        value = ours.value(metric_key) or 0.0  # type: ignore[union-attr]
        met, margin = _margin(metric.better(value, limit), 1.0)
        self.verdicts.append(Verdict(target, f"{metric.format(value)} {metric.unit}", met,
                                     margin))

    def best_peer(self, metric: str, store: str | None = None) -> Callable[[], SystemResult | None]:
        pool = [r for r in self.peers if store is None or r.peer.store == store]
        return lambda: best(pool, self.metric[metric])


def evaluate(results: Sequence[SystemResult], settings: Settings) -> list[Verdict]:
    t = Targets(results, settings)
    t.relative("Drain, 1 process, Redis ≥ 4x best peer", "redis", "drain1", 4.0,
               t.best_peer("drain1"))
    t.relative("Drain, 1 process, PostgreSQL ≥ 10x Procrastinate", "postgresql", "drain1", 10.0,
               lambda: t.by_key.get("procrastinate"))
    t.relative("Drain, 1 process, PostgreSQL ≥ 1x best Redis peer", "postgresql", "drain1", 1.0,
               t.best_peer("drain1", "redis"))
    for store in ("redis", "postgresql"):  # the issue asks it of the server backends
        t.relative(f"Drain, 2 processes ≥ 1.4x 1 process ({store})", store, "drain2", 1.4,
                   lambda s=store: t.backburner(s), "drain1")  # type: ignore[misc]
    t.relative("Bulk enqueue, Redis ≥ 3x best peer's bulk", "redis", "bulk", 3.0,
               t.best_peer("bulk"))
    t.relative("Bulk enqueue, PostgreSQL ≥ 2x best peer's bulk", "postgresql", "bulk", 2.0,
               t.best_peer("bulk"))
    for store in ("redis", "postgresql", "sqlite"):
        t.relative(f"Enqueue one by one ≥ best peer ({store})", store, "enqueue", 1.0,
                   t.best_peer("enqueue"))
    t.absolute("Latency p50, Redis ≤ 1 ms", "redis", "p50", 1.0)
    t.absolute("Latency p99, Redis ≤ 2 ms", "redis", "p99", 2.0)
    t.absolute("Latency p50, PostgreSQL ≤ 3 ms", "postgresql", "p50", 3.0)
    for store in ("redis", "postgresql", "sqlite"):
        t.relative(f"{settings.sleep_jobs:,} x sleep 10 ms ≥ 3x best peer ({store})", store,
                   "sleep", 3.0, t.best_peer("sleep"))
    for store in ("redis", "postgresql", "sqlite"):
        t.absolute(f"Worker peak RSS ≤ 60 MiB ({store})", store, "rss", 60.0)
    return t.verdicts


def targets_table(verdicts: Sequence[Verdict]) -> str:
    marks = {True: "yes", False: "**no**", None: "—"}
    lines = ["| Target | Measured (Backburner vs reference) | Met | Margin |",
             "|---|---|:---:|---|"]
    lines += [f"| {v.target} | {v.measured} | {marks[v.met]} | {v.margin} |" for v in verdicts]
    return "\n".join(lines)


# -- the RESULTS.md section -------------------------------------------------------------------
TITLE = "## Backburner and its peers on Redis and PostgreSQL (`python bench/run.py --peers`)"


def _versions(result: SystemResult) -> str:
    found = result.details.get("versions") or {}
    return ", ".join(f"{name} {version}" for name, version in found.items()) or "—"


def configurations(results: Sequence[SystemResult]) -> str:
    lines = ["| System | Store | Versions | Sleep scenario | Configuration |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.peer.label} | {r.peer.store} | {_versions(r)} | "
                     f"{r.peer.sleep_mode} | {r.peer.config()} |")
    return "\n".join(lines)


def method(settings: Settings) -> list[str]:
    return [
        f"Enqueue: {settings.jobs:,} no-op jobs from one client process, timed in it (after "
        "connecting); one by one with each library's plain enqueue call, then with its bulk "
        f"API in calls of {settings.batch:,} jobs (\"n/a\": the library has none).",
        f"Drain: the {settings.jobs:,} jobs queued one by one are drained by ONE worker "
        "process, those queued in bulk by TWO. Timed by the tasks themselves (a counter in "
        "shared memory, bench/peers/jobstats.py, the same code for every library): from the "
        "moment every worker process holds its first job (each process waits at its first "
        "job for the others) to the last job's finish, so start-up, imports and connecting "
        "are left out for every library alike.",
        f"Latency: {settings.samples} sequential jobs, each enqueued after the previous "
        f"one's result was seen by the client, against one idle worker process, after "
        f"{settings.warmup} warm-up jobs; p50/p99 of enqueue-to-result as the client sees it.",
        f"Sleep: {settings.sleep_jobs:,} queued jobs that each sleep 10 ms (`asyncio.sleep` "
        "for async libraries; `time.sleep` in a thread for sync-only ones), one worker process "
        "at the concurrency in the Sleep scenario column.",
        "Worker peak RSS: the largest VmHWM of any one process of the worker in the "
        "one-process drain and the sleep scenario (a supervisor, where the library has one, "
        "is smaller than its worker).",
        "Ratios in parentheses are to the best PEER (not Backburner) in that column, in the "
        "better direction (above 1x is better, whatever the unit); the best peer is in bold. "
        "Every scenario starts from an empty store. A cell without a number says why: "
        "\"failed\" (it ran and did not finish: the footnote says how), \"n/a\", or \"not "
        "available\" (not measured here).",
        "One run on a 2-core machine whose store servers share the same cores: differences "
        "below ~20 % are noise even on a quiet machine, and while other work runs (see the "
        "load average above) figures drop and move by 2x or more between runs.",
    ]


def document_section(command: str, machine: dict[str, str], settings: Settings,
                     results: Sequence[SystemResult], seconds: float) -> str:
    table, footnotes = results_table(results, settings)
    warning = []
    if settings.jobs < 20_000 or settings.samples < 500 or settings.sleep_jobs < 2_000:
        warning = ["**Smoke run with small counts: it shows that every system runs end to "
                   "end, its numbers are not for comparison** (the full run is "
                   "`python bench/run.py --peers --write`).", ""]
    parts = [
        TITLE,
        "",
        *warning,
        f"Command: `{command}` ({seconds / 60:.1f} min)",
        "",
        *(f"- **{key}**: {value}" for key, value in machine.items()),
        "",
        f"Settings: jobs={settings.jobs:,}, bulk batch={settings.batch:,}, latency "
        f"samples={settings.samples} (+{settings.warmup} warm-up), sleep jobs="
        f"{settings.sleep_jobs:,}.",
        "",
        table,
        "",
        *(f"{n}. {note}" for n, note in enumerate(footnotes, 1)),
        "",
        "### Targets (issue 3), in this run",
        "",
        targets_table(evaluate(results, settings)),
        "",
        "### Versions and configuration",
        "",
        configurations(results),
        "",
        "### Method",
        "",
        *(f"- {line}" for line in method(settings)),
        "",
    ]
    return "\n".join(parts)
