#!/usr/bin/env bash
# Run every quality gate and the whole test suite, from a fresh clone.
# Creates .venv/ if needed. PostgreSQL tests start their own server (initdb/pg_ctl); under CI=true a
# missing PostgreSQL fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'

echo "== ruff check"; .venv/bin/ruff check .
echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== mypy (strict) bridge/"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest "$@"
