"""Child processes under time limits: the enqueuing client, and groups of worker processes
whose memory is sampled while they run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from peerbench.adapter import Environment, Peer, WorkerPlan

PEERS_DIR = Path(__file__).resolve().parent.parent / "peers"
CLIENT = PEERS_DIR / "client.py"
# After a measurement nothing of a worker's graceful shutdown matters (the store is reset
# next): SIGTERM, then SIGKILL for whatever is still there after this. Some supervisors
# (taskiq's) take their full grace period to exit.
STOP_GRACE = 3.0
# VmHWM is the kernel's own high-water mark: it only has to be read once before a process
# exits, not sampled. The periodic pass is for children that a supervisor may replace; a
# /proc walk costs a few ms, so it runs rarely (the machine has 2 cores).
RSS_SAMPLE_SECONDS = 1.0


class ScenarioFailed(Exception):
    """A scenario that could not be measured; its message goes into the table."""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # The bench/peers modules are imported by name by the libraries' own CLIs. bench/compare.py
    # sets BENCH_BACKBURNER_SRC to run another commit's Backburner (its src/ comes first).
    paths = [os.environ.get("BENCH_BACKBURNER_SRC", ""), str(PEERS_DIR)]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_client(peer: Peer, env: Environment, args: list[str], store_env: dict[str, str],
               timeout: float, log: Path | None = None) -> dict[str, Any]:
    """Run bench/peers/client.py in the library's venv; its JSON report. On failure its
    stderr is kept in `log`."""
    command = [env.python, str(CLIENT), peer.app_module, *args]
    try:
        done = subprocess.run(command, cwd=PEERS_DIR, env=child_env(store_env),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        if log is not None:
            log.write_text(_text(exc.stderr))
        raise ScenarioFailed(f"client `{args[0]}` timed out after {timeout:.0f} s") from None
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        if log is not None:
            log.write_text(done.stderr)
        raise ScenarioFailed(f"client `{args[0]}` exited {done.returncode}: "
                             f"{_last_line(done.stderr)}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


class WorkerGroup:
    """Worker processes started together, each in a session of its own, so that stopping
    one also stops whatever it forked. Each process's peak resident memory (VmHWM), forked
    children included, is read before it is stopped."""

    def __init__(self, plan: WorkerPlan, store_env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.log: TextIO = log.open("w")
        env = child_env({**store_env, **plan.env})
        self.procs = [
            subprocess.Popen(list(command), cwd=PEERS_DIR, env=env, stdout=self.log,
                             stderr=subprocess.STDOUT, start_new_session=True)
            for command in plan.commands
        ]
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_loop, daemon=True)
        self._sampler.start()

    def _sample_loop(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        sessions = {proc.pid for proc in self.procs}
        for pid in _pids_in_sessions(sessions):
            peak = _vm_hwm(pid)
            if peak:
                self.peaks[pid] = max(peak, self.peaks.get(pid, 0))

    def failure(self) -> str | None:
        """Why the group is no longer serving, if a process has exited."""
        for proc in self.procs:
            code = proc.poll()
            if code is not None:
                self.log.flush()
                return f"worker exited {code}: {_last_line(self.log_path.read_text())}"
        return None

    def stop(self) -> int:
        """Stop every process (and its children); the largest peak RSS of any one of them,
        in bytes: the worker process that runs the tasks (a supervisor is smaller; a sum
        would count pages shared across fork twice)."""
        self._sample()
        self._stop.set()
        self._sampler.join()
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            # Whatever is left (a slow graceful shutdown, orphaned children) is killed.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        self.log.close()
        return max(self.peaks.values(), default=0)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the session leader's pid is its process group id


def _pids_in_sessions(sessions: set[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may contain spaces): state, ppid, pgrp,
        # session, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) in sessions:
            pids.append(int(entry.name))
    return pids


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
