"""One virtualenv per library under bench/.venvs/<key> (gitignored), built from PyPI with
the exact requirements its adapter lists, and rebuilt when that list changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from peerbench.adapter import Environment, Peer

BENCH_DIR = Path(__file__).resolve().parent.parent
VENVS_DIR = BENCH_DIR / ".venvs"
STAMP = "bench-requirements.txt"
INSTALL_TIMEOUT = 900.0

_VERSIONS = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({(d.metadata['Name'] or '').lower(): d.version for d in m.distributions()}))"
)


class InstallFailed(Exception):
    pass


def environment(peer: Peer, install: bool = True, extra: tuple[str, ...] = (),
                suffix: str = "") -> Environment:
    """The virtualenv for `peer`, created or updated if needed (and allowed). `extra`
    requirements (bench/web.py: FastAPI and uvicorn) go into a venv of their own,
    `<key><suffix>`, so the peers benchmark's venvs keep exactly their adapters' pins."""
    if not peer.requirements:
        # Backburner runs from the interpreter running the harness (the repo's .venv).
        return Environment(Path(sys.executable).parent)
    root = VENVS_DIR / f"{peer.key}{suffix}"
    requirements = (*peer.requirements, *extra)
    wanted = "\n".join(requirements) + "\n"
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text() == wanted:
        return Environment(root / "bin")
    if not install:
        raise InstallFailed(f"{root} is missing or out of date (run without --no-install)")
    print(f"… installing {peer.label} into {root}", file=sys.stderr, flush=True)
    shutil.rmtree(root, ignore_errors=True)
    # The harness's own interpreter is the base: every library runs on the same Python.
    _run([sys.executable, "-m", "venv", str(root)])
    _run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet",
          "--disable-pip-version-check", *requirements])
    stamp.write_text(wanted)
    return Environment(root / "bin")


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise InstallFailed(f"{command[0]} timed out after {INSTALL_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InstallFailed(f"{' '.join(command[:4])} … failed: {tail}")


def versions(env: Environment) -> dict[str, str]:
    """Every distribution installed in the environment, by lower-case name."""
    done = subprocess.run([env.python, "-c", _VERSIONS], capture_output=True, text=True,
                          timeout=60, check=True)
    found: dict[str, str] = json.loads(done.stdout)
    return found
