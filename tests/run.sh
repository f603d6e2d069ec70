#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs Debian's chromium if missing, makes
# .venv, installs the package and what the tests need, checks the code with ruff and mypy --strict, then runs pytest (extra arguments
# are passed to it). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "The browser tests need Chromium: sudo apt-get install chromium" >&2
        exit 1
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check src tests bench examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
