#!/usr/bin/env bash
# Print the path of the pinned uv, installing it first (from PyPI, with pip) into .venv-uv.
# Used by setup.sh and upgrade-deps.sh; never by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9  # raise deliberately: its resolver writes the locks
PYTHON=${PYTHON:-python3}
if [ "$(.venv-uv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "setup: installing uv $UV_VERSION into .venv-uv" >&2
  rm -rf .venv-uv
  "$PYTHON" -m venv .venv-uv
  # pip's own output goes to stderr: stdout is the path the callers read.
  .venv-uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
fi
echo "$PWD/.venv-uv/bin/uv"
