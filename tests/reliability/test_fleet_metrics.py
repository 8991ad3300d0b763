"""The shipped Grafana dashboard and Prometheus alert rules (deploy/) against a real fleet and a
real Prometheus: `promtool check rules` on the rules; then a web process (uvicorn, /metrics
route, no embedded worker) and a separate `backburner worker --metrics-port` process doing
real jobs on one SQLite file, scraped every second by /usr/bin/prometheus on a port and a
storage directory of its own. Every expression of every dashboard panel, every alert rule's
expression with its thresholds made trivially true, and every metric name either uses, must
return series through Prometheus's HTTP API (waited for, within a deadline). The worker's
exposition also passes `promtool check metrics`.

Prometheus and both processes are stopped at the end, whatever happens."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from services import free_port

from tests.child_process import REPO, Proc, processes

pytestmark = pytest.mark.reliability

HERE = Path(__file__).parent
DASHBOARD = REPO / "deploy/grafana/backburner-dashboard.json"
ALERTS = REPO / "deploy/prometheus/alerts.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
DEADLINE = 90.0
"""Seconds for every expression to return series (a few scrapes and rate windows)."""


def require_prometheus() -> None:
    missing = [p for p in (PROMETHEUS, PROMTOOL) if not os.access(p, os.X_OK)]
    if not missing:
        return
    message = f"{', '.join(missing)} missing: apt-get install prometheus (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def post(url: str) -> None:
    request = urllib.request.Request(url, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def wait_until_answers(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            get(url)
            return
        except OSError:
            assert proc.popen.poll() is None, f"exited {proc.popen.returncode}:\n{proc.text()}"
            assert time.monotonic() < deadline, f"{url} never answered:\n{proc.text()}"
            time.sleep(0.1)


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    # Grafana's variables as a dashboard with "All" queues would send them.
    return [e.replace('"$queue"', '".*"').replace("$__rate_interval", "20s") for e in found]


def alert_expressions() -> list[str]:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    # Thresholds made trivially true: the expression must still find its series.
    return [re.sub(r">\s*[0-9.]+", ">= 0", " ".join(r["expr"].split())) for r in rules]


def metric_names(expressions: list[str]) -> set[str]:
    return {name for e in expressions for name in re.findall(r"\bbackburner_[a-z_]+\b", e)}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require_prometheus()
    env = {**os.environ, "FLEET_DB": str(tmp_path / "fleet.db"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), str(REPO),
                                                     os.environ.get("PYTHONPATH", "")) if p)}
    subprocess.run([sys.executable, "-m", "backburner", "migrate", "--app", "fleet_app:jobs"],
                   env=env, cwd=REPO, check=True, capture_output=True, timeout=60)
    web_port, prom_port = free_port(), free_port()
    with processes() as started:
        web = Proc([sys.executable, "-m", "uvicorn", "fleet_app:api", "--host", "127.0.0.1",
                    "--port", str(web_port), "--log-level", "warning"],
                   env, tmp_path / "web.log")
        started.append(web)
        worker = Proc([sys.executable, "-m", "backburner", "worker", "fleet_app:jobs",
                       "-q", "default", "-q", "risky", "--metrics-port", "0", "-c", "4"],
                      env, tmp_path / "worker.log")
        started.append(worker)
        wait_until_answers(f"http://127.0.0.1:{web_port}/metrics", web)
        found = asyncio.run(worker.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/metrics"))
        worker_port = int(found.group(1))
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {"job_name": "web", "static_configs": [{"targets": [f"127.0.0.1:{web_port}"]}]},
                {"job_name": "worker",
                 "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
            ],
        }))
        prometheus = Proc([PROMETHEUS, f"--config.file={config}",
                           f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                           f"--web.listen-address=127.0.0.1:{prom_port}"],
                          env, tmp_path / "prometheus.log")
        started.append(prometheus)
        asyncio.run(prometheus.wait_for("Server is ready to receive web requests"))
        yield {"web": f"http://127.0.0.1:{web_port}", "worker": worker_port,
               "prometheus": f"http://127.0.0.1:{prom_port}", "procs": started}


def query(prometheus: str, expression: str) -> list[Any]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    answer = json.loads(get(url))
    assert answer["status"] == "success", (expression, answer)
    return list(answer["data"]["result"])


def test_promtool_accepts_the_alert_rules() -> None:
    require_prometheus()
    done = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_and_alert_expression_finds_series(fleet: dict[str, Any]) -> None:
    web, prometheus = fleet["web"], fleet["prometheus"]
    expressions = [*dashboard_expressions(), *alert_expressions()]
    wanted = sorted(metric_names(expressions)) + expressions
    post(f"{web}/tasks/stranded")  # waits in a queue no worker serves
    missing = wanted
    deadline = time.monotonic() + DEADLINE
    while True:
        # A steady trickle of work, so rates and histograms have something in every window.
        for task in ("ok", "ok", "ok", "boom"):
            post(f"{web}/tasks/{task}")
        missing = [e for e in missing if not query(prometheus, e)]
        if not missing:
            break
        assert time.monotonic() < deadline, f"no series after {DEADLINE} s for {missing}"
        time.sleep(0.5)
    # Both processes were scraped: the store's view from each, outcomes from the worker.
    jobs = query(prometheus, 'backburner_jobs{queue="orphan", state="pending"}')
    assert {s["metric"]["job"] for s in jobs} == {"web", "worker"}
    outcomes = query(prometheus, "backburner_job_outcomes_total")
    assert {s["metric"]["job"] for s in outcomes} == {"worker"}
    # The alert with no worker for a backlog fires for the orphan queue only (its `for` aside).
    stranded = query(prometheus, alert_expressions()[2])
    assert [s["metric"]["queue"] for s in stranded] == ["orphan"]
    exposition = get(f"http://127.0.0.1:{fleet['worker']}/metrics")
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition,
                          capture_output=True, timeout=60, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
