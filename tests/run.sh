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

# Posters print shops' names in any script: Debian's Chromium has DejaVu and Liberation for Latin,
# Greek, Cyrillic and Arabic, but no font for Chinese or Japanese (1.6 MB; the poster test prints one).
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh family)" ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null
    else
        echo "The poster tests print a Japanese name: sudo apt-get install fonts-wqy-microhei" >&2
        exit 1
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

.venv/bin/ruff check src tests bench examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
