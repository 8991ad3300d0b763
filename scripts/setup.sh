#!/usr/bin/env bash
# Create a virtualenv and install exactly the committed lock into it (nothing is resolved at
# install time), then Backburner itself, editable. Idempotent and quick when nothing changed:
# a stamp records the hash of the lock, pyproject.toml and the interpreter.
#   bash scripts/setup.sh            .venv         from requirements/lock.txt   (newest tested)
#   bash scripts/setup.sh --lowest   .venv-lowest  from requirements/lowest.txt (every minimum)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
lock=requirements/lock.txt
case "${1:-}" in
  "") ;;
  --lowest) venv=.venv-lowest lock=requirements/lowest.txt ;;
  *) echo "usage: bash scripts/setup.sh [--lowest]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Backburner needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
python_path=$(command -v "$PYTHON")

stamp=$venv/.backburner-installed
want=$( { cat "$lock" pyproject.toml scripts/uv.sh; "$python_path" -VV; } | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

uv=$(PYTHON="$python_path" bash scripts/uv.sh)
# Only the interpreter given, never one uv would download.
export UV_PYTHON_DOWNLOADS=never
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv ($("$python_path" --version))"
  # --seed: pip stays available in the venv (bench/README.md installs peers with it).
  "$uv" venv --quiet --seed --python "$python_path" "$venv"
fi
echo "setup: installing $lock into $venv (exact pins, hashes checked)"
# sync, not install: whatever the lock does not list is removed, so the venv is the lock.
"$uv" pip sync --python "$venv/bin/python" "$lock"
echo "setup: installing Backburner itself (editable, no dependency resolution)"
"$uv" pip install --quiet --python "$venv/bin/python" --no-deps --no-build-isolation -e .
echo "$want" > "$stamp"
echo "setup: $venv is ready"
