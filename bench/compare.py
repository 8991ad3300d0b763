"""Backburner against itself: two commits side by side in one run, on SQLite, Redis and
PostgreSQL, with the peers benchmark's scenarios (bench/peerbench).

    python bench/compare.py                      # before = BASELINE, after = the working tree
    python bench/compare.py --before v1 --after HEAD --rounds 5
    python bench/compare.py --jobs 20000         # throughput scenarios over 20,000 jobs
    python bench/compare.py --full               # the peers run's full counts (slow)
    python bench/compare.py --write              # also write its section of bench/RESULTS.md

Each commit other than the working tree is checked out as a detached git worktree under
bench/out/worktrees/ and runs from its own src/ (the same virtualenv: a redesign that needs
other dependencies is out of its scope). Rounds alternate the order of the two, and each
figure is the median of its rounds, so a drift of the machine's load hits both alike. The
load average is recorded before and after; on a busy machine the ratios are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from report import cpu_model, memory, write_section  # noqa: E402

BASELINE = "db63126"
"""The last commit before the store layer's redesign (issue 11): what it must not be slower
than."""
SYSTEMS = "backburner-sqlite,backburner-redis,backburner-postgresql"
HIGHER_IS_BETTER = {"enqueue": True, "bulk": True, "drain1": True, "drain2": True,
                    "p50": False, "p99": False, "sleep": True, "rss": False}
UNITS = {"enqueue": "jobs/s", "bulk": "jobs/s", "drain1": "jobs/s", "drain2": "jobs/s",
         "p50": "ms", "p99": "ms", "sleep": "jobs/s", "rss": "MiB"}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def source_tree(rev: str) -> tuple[str, Path]:
    """(label, directory holding src/) of a revision; "." is the working tree as it is."""
    if rev == ".":
        dirty = " (dirty)" if git("status", "--porcelain", "--", "src") else ""
        return f"working tree {git('rev-parse', '--short', 'HEAD')}{dirty}", ROOT
    sha = git("rev-parse", "--short", rev)
    tree = BENCH_DIR / "out" / "worktrees" / sha
    if not (tree / "src").is_dir():
        tree.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", "--force", str(tree), sha)
    return sha, tree


def one_run(tree: Path, counts: list[str]) -> dict[str, dict[str, float | None]]:
    """One peers-benchmark run of Backburner from `tree`'s src: metric values per system."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, str(BENCH_DIR / "run.py"), "--peers", "--no-install",
                   "--only", SYSTEMS, "--out", out, *counts]
        env = {**os.environ, "BENCH_BACKBURNER_SRC": str(tree / "src"),
               "PYTHONPATH": str(tree / "src")}
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        raw = json.loads((Path(out) / "peers-latest.json").read_text())
    return {
        s["key"]: {metric: cell.get("value") for metric, cell in s["cells"].items()}
        for s in raw["systems"]
    }


def median(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def table(labels: tuple[str, str], results: dict[str, list[dict[str, Any]]]) -> str:
    before, after = (results[label] for label in labels)
    lines = [
        f"| system | metric | before ({labels[0]}) | after ({labels[1]}) | after/before "
        "| spread of the rounds |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for system in SYSTEMS.split(","):
        for metric, better_up in HIGHER_IS_BETTER.items():
            b_runs = [r.get(system, {}).get(metric) for r in before]
            a_runs = [r.get(system, {}).get(metric) for r in after]
            b, a = median(b_runs), median(a_runs)
            if a is None and b is None:
                continue
            ratio = "n/a" if not a or not b else f"{a / b:.2f}"
            direction = "higher is better" if better_up else "lower is better"
            lines.append(f"| {system} | {metric} ({UNITS[metric]}, {direction}) | "
                         f"{_fmt(b)} | {_fmt(a)} | {ratio} | "
                         f"{_spread(b_runs)} / {_spread(a_runs)} |")
    return "\n".join(lines)


def _spread(runs: list[float | None]) -> str:
    """How far a variant's rounds lie apart, as a share of their median: the noise to read
    a ratio against."""
    found = [v for v in runs if v is not None]
    if len(found) < 2 or not statistics.median(found):
        return "-"
    return f"±{(max(found) - min(found)) / 2 / statistics.median(found):.0%}"


def _fmt(value: float | None) -> str:
    return "failed" if value is None else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=BASELINE)
    parser.add_argument("--after", default=".")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the peers run's full counts")
    parser.add_argument("--jobs", type=int, default=10_000,
                        help="jobs per throughput scenario unless --full (10,000)")
    parser.add_argument("--samples", type=int, default=200,
                        help="latency samples unless --full (200)")
    parser.add_argument("--write", action="store_true")
    opts = parser.parse_args(argv)
    if opts.rounds < 1:
        parser.error("--rounds must be at least 1")
    counts = [] if opts.full else [
        "--quick", "--jobs", str(opts.jobs), "--samples", str(opts.samples)
    ]
    variants = [source_tree(opts.before), source_tree(opts.after)]
    labels = (variants[0][0], variants[1][0])
    load_before = os.getloadavg()
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for n in range(opts.rounds):
        order = variants if n % 2 == 0 else variants[::-1]
        for label, tree in order:
            print(f"round {n + 1}/{opts.rounds}: {label}", file=sys.stderr, flush=True)
            results[label].append(one_run(tree, counts))
    load_after = os.getloadavg()
    body = "\n".join([
        "## Backburner before and after (bench/compare.py)",
        "",
        f"`python bench/compare.py {' '.join(argv)}`: {opts.rounds} rounds, alternating, "
        f"medians; {'the full counts' if opts.full else ' '.join(counts)} of the peers run. "
        f"{time.strftime('%Y-%m-%d')}, {cpu_model()}, {os.cpu_count()} cores, {memory()}; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{time.perf_counter() - started:.0f} s.",
        "",
        table(labels, results),
    ])
    print(body)
    if opts.write:
        write_section(BENCH_DIR / "RESULTS.md", "compare", body)


if __name__ == "__main__":
    main(sys.argv[1:])
