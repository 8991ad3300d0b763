#!/usr/bin/env bash
# Set everything up and start the demo: the example app (every seed scenario) under uvicorn
# with an embedded worker, jobs in SQLite, and a local SMTP server; it prints the URLs to open.
# Arguments go to `backburner demo` (e.g. --port 8080, --host 0.0.0.0). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/backburner demo "$@"
