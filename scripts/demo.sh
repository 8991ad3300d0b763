#!/usr/bin/env bash
# Set everything up and run the example: enqueue jobs into SQLite, run a worker, print results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/quickstart.py "$@"
