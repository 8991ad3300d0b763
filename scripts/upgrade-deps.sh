#!/usr/bin/env bash
# Re-resolve the locks to the newest releases pyproject.toml's ranges allow, check them in
# throwaway virtualenvs, and rewrite requirements/lock.txt and requirements/lowest.txt only if
# every check is green:
#   lock.txt    newest releases:                 ruff, mypy --strict, tests/unit tests/stores
#   lowest.txt  the minimum of every direct range
#               (--resolution lowest-direct):    scripts/lowest-checks.sh, as scripts/test.sh
#                                                runs it: import, mypy --strict, tests/unit,
#                                                tests/stores, tests/contract (memory, SQLite)
# On a failure the locks stay as they are, and it says which releases changed and which check
# failed (its output is above). Run it after changing a range in pyproject.toml, too.
# Redis and PostgreSQL at their test addresses: tests/stores needs them (see tests/services.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
python_path=$(command -v "$PYTHON")
uv=$(PYTHON="$python_path" bash scripts/uv.sh)
export UV_PYTHON_DOWNLOADS=never
work=$(mktemp -d "${TMPDIR:-/tmp}/backburner-upgrade.XXXXXX")
trap 'rm -rf "$work"' EXIT

resolve() {  # name, resolution
  echo "== resolving $1 (--resolution $2)"
  # A fresh output file: uv then prefers nothing from the committed lock.
  "$uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --resolution "$2" --custom-compile-command "bash scripts/upgrade-deps.sh" \
    pyproject.toml requirements/build.in --extra dev --extra uvloop -o "$work/$1.txt"
}

pins() {  # the name==version lines of a lock, one per line
  grep -E '^[A-Za-z0-9]' "$1" | sed -E 's/ *\\$//; s/ *;.*//' | sort -u
}

changes() {  # name: what moved between the committed lock and the new one
  if [ -f "requirements/$1.txt" ]; then
    diff <(pins "requirements/$1.txt") <(pins "$work/$1.txt") \
      | sed -nE 's/^< /    was /p; s/^> /    now /p' || true
  fi
}

failed=()
check() {  # name, then the check's command (run with that venv's bin/ first on PATH)
  local name=$1; shift
  echo "== $name: $*"
  if ! env PATH="$work/venv-$name/bin:$PATH" "$@"; then
    failed+=("requirements/$name.txt: \`$*\` failed")
  fi
}

gate() {  # name
  local name=$1 venv="$work/venv-$1"
  echo "== installing $name into a throwaway virtualenv"
  if ! { "$uv" venv --quiet --python "$python_path" "$venv" \
         && "$uv" pip sync --quiet --python "$venv/bin/python" "$work/$name.txt" \
         && "$uv" pip install --quiet --python "$venv/bin/python" --no-deps \
              --no-build-isolation -e .; }; then
    failed+=("requirements/$name.txt: installing it failed")
    return
  fi
  if [ "$name" = lock ]; then
    check "$name" "$venv/bin/ruff" check src tests bench examples
    check "$name" "$venv/bin/mypy" --cache-dir "$venv/.mypy_cache" src
    check "$name" "$venv/bin/pytest" -p no:cacheprovider -q tests/unit tests/stores
  else
    check "$name" bash scripts/lowest-checks.sh "$venv"
  fi
}

resolve lock highest
resolve lowest lowest-direct
gate lock
gate lowest

for name in lock lowest; do
  moved=$(changes "$name")
  if [ -n "$moved" ]; then echo "requirements/$name.txt, releases that change:"; echo "$moved"
  else echo "requirements/$name.txt: no release changes"; fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "NOT upgraded: the locks stay as they are. What failed (output above):"
  printf '  %s\n' "${failed[@]}"
  echo "The releases listed as 'now' above are the suspects: pin the culprit in pyproject.toml"
  echo "(e.g. 'name<new') or fix the code, then run this again."
  exit 1
fi
cp "$work/lock.txt" requirements/lock.txt
cp "$work/lowest.txt" requirements/lowest.txt
echo "Locks rewritten: review \`git diff requirements/\`, run bash scripts/test.sh, commit."
