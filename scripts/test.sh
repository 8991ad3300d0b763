#!/usr/bin/env bash
# Set everything up and run every quality gate: ruff, mypy --strict, the whole test suite on
# the locked (newest tested) releases; then, on the lowest supported releases (.venv-lowest,
# requirements/lowest.txt), mypy, `import backburner`, tests/unit and tests/contract on the
# memory and SQLite backends.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x); the lowest-releases run
# is then skipped unless BACKBURNER_TEST_LOWEST=1 (BACKBURNER_TEST_LOWEST=0 always skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then lowest=${BACKBURNER_TEST_LOWEST:-1}; else lowest=${BACKBURNER_TEST_LOWEST:-0}; fi

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
  echo "== lowest supported releases (requirements/lowest.txt): mypy --strict, import, unit, contract (memory, SQLite)"
  # Its own mypy cache: another mypy release would otherwise invalidate the main one's.
  .venv-lowest/bin/mypy --cache-dir .venv-lowest/.mypy_cache src || status=1
  .venv-lowest/bin/python -c 'import backburner' || status=1
  (export PATH="$root/.venv-lowest/bin:$PATH" BACKBURNER_TEST_BACKENDS=memory,sqlite
   pytest_status pytest -p no:cacheprovider -q tests/unit tests/contract) || status=1
fi
exit "$status"
