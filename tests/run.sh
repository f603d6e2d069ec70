#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs Debian's chromium, nginx, caddy, systemd and postgresql if
# missing, makes .venv, installs the package and what the tests need, checks the code with ruff and mypy --strict,
# then runs pytest twice, on SQLite and on PostgreSQL (extra arguments are passed to it). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages some tests drive: Chromium for the browser tests (Playwright cannot download its
# own browser here); nginx, Caddy and systemd-analyze check the deployment examples (examples/deploy);
# PostgreSQL's server runs the PostgreSQL tests, each cluster started by tests/pgserver.py on a free port
# (its binaries live in /usr/lib/postgresql/<version>/bin; the cluster the package may start is never used).
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
browser=(); tools=()
has chromium || browser+=(chromium)
has nginx || tools+=(nginx)
has caddy || tools+=(caddy)
has systemd-analyze || tools+=(systemd)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || tools+=(postgresql)
if [ $((${#browser[@]} + ${#tools[@]})) -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        if [ ${#browser[@]} -gt 0 ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        fi
        if [ ${#tools[@]} -gt 0 ]; then  # postgresql the largest; the tests start their own servers on free ports
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
        fi
    else
        echo "The tests need: sudo apt-get install ${browser[*]} ${tools[*]}" >&2
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
# Two passes: the whole suite on SQLite (the default), then on PostgreSQL, on a server the tests start
# themselves (tests/pgserver.py), the tests whose outcome depends on the database: those that take one
# (`db_path`, `module_db_path`) and are not marked to run on one database in both passes. The others would
# run exactly as they did; pytest counts them as deselected (conftest.py, --only-database-tests).
# CLICKTOCHAT_TEST_DB=sqlite or =postgresql runs one pass, of every test.
# The two passes run at once (each is mostly one core's work, and waits on servers and browsers): the SQLite
# pass prints as it goes, the PostgreSQL pass's output follows it, whole, once both are done.
if [ -n "${CLICKTOCHAT_TEST_DB:-}" ]; then
    .venv/bin/python -m pytest "$@"
else
    log=$(mktemp)
    CLICKTOCHAT_TEST_DB=postgresql .venv/bin/python -m pytest --only-database-tests "$@" >"$log" 2>&1 &
    postgresql=$!
    trap 'kill "$postgresql" 2>/dev/null || true; rm -f "$log"' EXIT  # (under set -e a failed kill would be the exit status)
    sqlite_status=0 postgresql_status=0
    CLICKTOCHAT_TEST_DB=sqlite .venv/bin/python -m pytest "$@" || sqlite_status=$?
    wait "$postgresql" || postgresql_status=$?
    if [ "$postgresql_status" = 5 ]; then postgresql_status=0; fi  # 5: none of the tests asked for takes a database
    echo; echo "PostgreSQL pass (CLICKTOCHAT_TEST_DB=postgresql --only-database-tests):"; cat "$log"
    [ "$sqlite_status" = 0 ] && [ "$postgresql_status" = 0 ]
fi
