#!/usr/bin/env bash
# The checks on the lowest supported releases (requirements/lowest.txt, the minimum of every
# range in pyproject.toml), in the virtualenv given (default: .venv-lowest, which
# `bash scripts/setup.sh --lowest` installs). scripts/test.sh runs it after the main suite and
# scripts/upgrade-deps.sh before it rewrites the locks:
#   import backburner (with its CLI and dashboard)
#   mypy --strict src          (mypy 1.11 and the oldest stubs: no release-dependent ignores)
#   pytest tests/unit tests/stores
#                              every backend: Redis and PostgreSQL too (cheap, and asyncpg's and
#                              redis-py's minimums are only tested there; tests/stores holds the
#                              tests that talk to those servers directly)
#   pytest tests/contract      memory and SQLite (BACKBURNER_TEST_BACKENDS)
# Every step runs even when one fails; the exit status is 1 if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=$(cd "${1:-.venv-lowest}" && pwd) || exit 1
export PATH="$venv/bin:$PATH"
status=0

step() {
  echo "== lowest releases: $*"
  local code=0
  "$@" || code=$?
  # Any non-zero exit is a failure, pytest's 5 (no test collected) included.
  if [ "$code" -ne 0 ]; then
    echo "lowest releases: FAILED (exit $code): $*" >&2
    status=1
  fi
}

step python -c 'import backburner, backburner.cli, backburner.dashboard'
# A cache of its own: the main venv's newer mypy keeps .mypy_cache.
step mypy --cache-dir "$venv/.mypy_cache" src
step pytest -p no:cacheprovider -q tests/unit tests/stores
step env BACKBURNER_TEST_BACKENDS=memory,sqlite pytest -p no:cacheprovider -q tests/contract
exit "$status"
