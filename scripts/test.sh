#!/usr/bin/env bash
# Set everything up and run every quality gate: ruff, mypy --strict, the whole test suite on
# the locked (newest tested) releases; then the same code on the lowest supported releases
# (requirements/lowest.txt in .venv-lowest): import, mypy --strict, tests/unit and tests/stores
# on every backend, tests/contract on memory and SQLite (scripts/lowest-checks.sh; about 2
# minutes on 2 cores).
# Extra arguments go to the main pytest run only (e.g. scripts/test.sh tests/unit -x); the
# lowest-releases run is always the same. BACKBURNER_TEST_LOWEST=0 skips it (for a quick local
# loop; CI and a change to pyproject.toml's ranges need it). BACKBURNER_TEST_PGBOUNCER=0 skips
# the contract suite's second run, through PgBouncer; BACKBURNER_TEST_REDIS_CLUSTER_RUN=0 its
# run on a Redis Cluster.
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
(export PATH="$root/.venv/bin:$PATH"; pytest_status pytest -p no:cacheprovider --durations=30 "$@") || status=$?

if [ "${BACKBURNER_TEST_PGBOUNCER:-1}" = 1 ]; then
  # R28: the whole contract suite again, on PostgreSQL behind a PgBouncer in transaction
  # pooling mode (pooler=transaction, LISTEN on a direct listen_url), so that nothing relies
  # on session state across transactions. The polling fallback (no listen_url) has its own
  # tests in tests/stores/test_postgres_pgbouncer.py. About 80 s on 2 cores.
  echo "== pytest: tests/contract on PostgreSQL through PgBouncer (transaction pooling)"
  (export PATH="$root/.venv/bin:$PATH" BACKBURNER_TEST_BACKENDS=postgres
   pytest_status python tests/pg_servers.py pgbouncer --listen-direct -- \
     pytest -p no:cacheprovider tests/contract) || status=1
fi

if [ "${BACKBURNER_TEST_REDIS_CLUSTER_RUN:-1}" = 1 ]; then
  # The whole contract suite again, on a private 6-node Redis Cluster
  # (3 primaries, 3 replicas) that tests/services.py starts and stops
  # (BACKBURNER_TEST_REDIS_CLUSTER=1), so every script is held to one slot and every call
  # that spans queues to the cluster client. About 55 s on 2 cores.
  echo "== pytest: tests/contract on a Redis Cluster"
  (export PATH="$root/.venv/bin:$PATH" BACKBURNER_TEST_BACKENDS=redis \
     BACKBURNER_TEST_REDIS_CLUSTER=1
   pytest_status pytest -p no:cacheprovider tests/contract) || status=1
fi

if [ "$lowest" = 1 ]; then
  echo "== lowest supported releases (requirements/lowest.txt, .venv-lowest)"
  bash scripts/lowest-checks.sh .venv-lowest || status=1
else
  echo "== lowest supported releases: SKIPPED (BACKBURNER_TEST_LOWEST=0)"
fi
exit "$status"
