#!/usr/bin/env bash
# The whole test suite, from a fresh clone: makes .venv, installs the package and what the
# tests need, checks the code with ruff and mypy --strict, then runs pytest (extra arguments
# are passed to it). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check src tests bench examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
