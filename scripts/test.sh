#!/usr/bin/env bash
# Set everything up and run every quality gate: ruff, mypy --strict, the whole test suite on
# the locked (newest tested) releases; then, on the lowest supported releases (.venv-lowest,
# requirements/lowest.txt), `import backburner`, tests/unit and tests/contract on the memory
# and SQLite backends.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
# The lowest-releases run is opt-in (BACKBURNER_TEST_LOWEST=1) until it is green: at the
# minimums, a test in tests/unit/test_app.py leaks an event loop (a ResourceWarning that fails
# a later test) and the PostgreSQL unit tests fail or hang with asyncpg 0.30.
set -euo pipefail
cd "$(dirname "$0")/.."
lowest=${BACKBURNER_TEST_LOWEST:-0}

bash scripts/setup.sh
if [ "$lowest" = 1 ]; then
  bash scripts/setup.sh --lowest
fi
root=$PWD

echo "== ruff"
.venv/bin/ruff check src tests bench examples
echo "== mypy --strict (package)"
.venv/bin/mypy src

pytest_status() {
  # pytest's exit 5 (no test collected) is a failure here.
  local status=0
  "$@" || status=$?
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    status=1
  fi
  return "$status"
}

echo "== pytest"
status=0
(export PATH="$root/.venv/bin:$PATH"; pytest_status pytest -p no:cacheprovider "$@") || status=$?

if [ "$lowest" = 1 ]; then
  echo "== lowest supported releases (requirements/lowest.txt): import, unit, contract (memory, SQLite)"
  .venv-lowest/bin/python -c 'import backburner' || status=1
  (export PATH="$root/.venv-lowest/bin:$PATH" BACKBURNER_TEST_BACKENDS=memory,sqlite
   pytest_status pytest -p no:cacheprovider -q tests/unit tests/contract) || status=1
fi
exit "$status"
