#!/usr/bin/env bash
# Set everything up and run every quality gate: ruff, mypy --strict, the whole test suite on
# the locked (newest tested) releases; then the same code on the lowest supported releases
# (requirements/lowest.txt in .venv-lowest): import, mypy --strict, tests/unit and tests/stores
# on every backend, tests/contract on memory and SQLite (scripts/lowest-checks.sh; about 2
# minutes on 2 cores).
# Extra arguments go to the main pytest run only (e.g. scripts/test.sh tests/unit -x); the
# lowest-releases run is always the same. BACKBURNER_TEST_LOWEST=0 skips it (for a quick local
# loop; CI and a change to pyproject.toml's ranges need it).
set -euo pipefail
cd "$(dirname "$0")/.."
lowest=${BACKBURNER_TEST_LOWEST:-1}
case "$lowest" in
  0|1) ;;
  *) echo "BACKBURNER_TEST_LOWEST must be 0 or 1 (got: $lowest)" >&2; exit 2 ;;
esac

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
  echo "== lowest supported releases (requirements/lowest.txt, .venv-lowest)"
  bash scripts/lowest-checks.sh .venv-lowest || status=1
else
  echo "== lowest supported releases: SKIPPED (BACKBURNER_TEST_LOWEST=0)"
fi
exit "$status"
