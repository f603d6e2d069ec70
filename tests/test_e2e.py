"""End to end: the installed command, real uvicorn on 127.0.0.1, real signals."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from clicktochat.database import is_postgres
from conftest import IPHONE, WHATSAPP_PREVIEW, connect_db, output, running

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(db: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clicktochat", *args, "--db", db], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def server(db: str, port: int, *extra: str, env: dict[str, str] | None = None
           ) -> AbstractContextManager[subprocess.Popen[str]]:  # fmt: skip
    return running([sys.executable, "-m", "clicktochat", "serve", "--db", db, "--port", str(port), *extra],
                   port, env)  # fmt: skip


class Clicks:
    """Clients in threads, each on its own connections, clicking links until the server stops
    answering: the load a signal arrives in. Phones get a 302 and count as people; every
    `robot_every`-th request is WhatsApp's link preview, a robot answered with a 200 page."""

    def __init__(self, urls: list[str], threads: int = 12, robot_every: int = 8) -> None:
        self.urls, self.robot_every = urls, robot_every
        self.redirects: list[tuple[float, str]] = []  # (time.monotonic() when the 302 arrived, link)
        self.previews: list[float] = []  # when each robot's 200 arrived
        self.lost: list[float] = []  # when each client found the server gone (its last request)
        self.unexpected: list[str] = []
        self._pool = ThreadPoolExecutor(threads)
        self._clients = [self._pool.submit(self._click, worker) for worker in range(threads)]

    def _click(self, worker: int) -> None:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=10) as http:
            for i in itertools.count(worker):
                url, robot = self.urls[i % len(self.urls)], i % self.robot_every == 0
                try:
                    response = http.get(url, headers={"user-agent": WHATSAPP_PREVIEW if robot else IPHONE})
                except httpx.TransportError:
                    self.lost.append(time.monotonic())
                    return
                now = time.monotonic()  # list.append is atomic: no lock needed
                if response.status_code != (200 if robot else 302):
                    self.unexpected.append(f"{response.status_code} {url} {response.text[:200]}")
                elif robot:
                    self.previews.append(now)
                else:
                    self.redirects.append((now, url))
                assert now < deadline, "the server never went away"

    def wait_for(self, redirects: int) -> None:
        deadline = time.monotonic() + 15
        while len(self.redirects) < redirects:
            assert time.monotonic() < deadline, f"only {len(self.redirects)} redirects in 15 s"
            for client in self._clients:
                if client.done():
                    client.result()  # raises what went wrong in it, if anything
                    raise AssertionError(f"a client lost the server after {len(self.redirects)} redirects")
            time.sleep(0.02)

    def join(self) -> None:
        """Wait until every client has lost the server (raising what went wrong in one)."""
        try:
            for client in self._clients:
                client.result(timeout=40)
        finally:
            self._pool.shutdown(wait=False)
        assert not self.unexpected, self.unexpected[:5]

    def count(self, url: str) -> int:
        return sum(1 for _, link in self.redirects if link == url)


class Recorded(NamedTuple):
    """What the database holds, read with the sqlite3 module (or psycopg) alone."""

    integrity: str
    people: int  # sum(n) of the raw rows of people
    robots: int  # sum(n) of the raw rows of robots
    clicks: int  # the daily totals of every link together: people
    bots: int  # and robots
    per_dimension: dict[str, tuple[int, int]]  # (clicks, bots) summed over each dimension's values
    raw_per_link: dict[tuple[str, str], tuple[int, int]]  # (people, robots) of each link's raw rows
    totals_per_link: dict[tuple[str, str], tuple[int, int]]  # (clicks, bots) of each link's daily totals


# The daily totals: every link together, each dimension summed over its values, each link.
EVERY_LINK = (
    "SELECT coalesce(sum(clicks), 0), coalesce(sum(bots), 0) FROM dimension_days WHERE scope = 'all' AND dimension = ''"
)
PER_DIMENSION = (  # every dimension summed over its values; each link's channel (every click has one)
    "SELECT 'all:' || dimension, sum(clicks), sum(bots) FROM dimension_days GROUP BY 1"
    " UNION ALL SELECT 'channel:' || channel, sum(clicks), sum(bots) FROM link_dimension_days GROUP BY 1"
)
PER_LINK = "SELECT link_kind, link_key, sum(clicks), sum(bots) FROM link_days GROUP BY 1, 2"


PEOPLE, ROBOTS = "CASE WHEN robot IS NULL THEN n ELSE 0 END", "CASE WHEN robot IS NULL THEN 0 ELSE n END"


def recorded(db: str) -> Recorded:
    with connect_db(db) as conn:
        return Recorded(  # a PostgreSQL server keeps its own files whole: only SQLite's is checked
            "ok" if is_postgres(db) else conn.execute("PRAGMA integrity_check").fetchone()[0],
            *conn.execute(f"SELECT coalesce(sum({PEOPLE}), 0), coalesce(sum({ROBOTS}), 0) FROM clicks").fetchone(),
            *conn.execute(EVERY_LINK).fetchone(),
            {dimension: (clicks, bots) for dimension, clicks, bots in conn.execute(PER_DIMENSION)},
            {(kind, key): (people, robots) for kind, key, people, robots in conn.execute(
                f"SELECT link_kind, link_key, sum({PEOPLE}), sum({ROBOTS}) FROM clicks GROUP BY 1, 2"
            )},
            {(kind, key): (clicks, bots) for kind, key, clicks, bots in conn.execute(PER_LINK)},
        )  # fmt: skip


def assert_raw_rows_and_totals_agree(found: Recorded) -> None:
    assert found.integrity == "ok"
    assert (found.people, found.robots) == (found.clicks, found.bots), found
    # Every dimension splits the same day's clicks: summed over its values, each gives the total.
    assert set(found.per_dimension.values()) == {(found.clicks, found.bots)}, found.per_dimension
    assert found.raw_per_link == found.totals_per_link


def create_links(db: str, base: str) -> tuple[str, str]:
    short = cli(db, "link", "create", "--to", "+39 347 123 4567", "--text", "Ciao", "--slug", "vetrina",
                "--base-url", base)  # fmt: skip
    signed = cli(db, "link", "create", "--to", "+39 347 123 4567", "--campaign", "summer-ad", "--base-url", base)
    assert short == f"{base}/s/vetrina" and signed.startswith(f"{base}/c/")
    return short, signed


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_no_click_is_lost_on_graceful_shutdown(db_path: str, stop_signal: signal.Signals) -> None:
    db, port = db_path, free_port()
    base = f"http://127.0.0.1:{port}"
    short, signed = create_links(db, base)
    # A long flush interval: every click is still in memory when the signal arrives.
    with server(db, port, env={"CLICKTOCHAT_FLUSH_INTERVAL": "600"}) as process:
        load = Clicks([short, signed])
        load.wait_for(redirects=500)
        signalled_at = time.monotonic()
        process.send_signal(stop_signal)  # while a dozen clients keep clicking
        load.join()
        process.wait(30)
        printed = output(process)
    assert process.returncode in (0, -stop_signal), printed  # uvicorn re-raises the signal once stopped
    assert min(load.lost) > signalled_at, "a client lost the server before the signal"
    assert max(at for at, _ in load.redirects) > signalled_at, "no click was answered while the server stopped"
    redirects, previews = len(load.redirects), len(load.previews)
    assert f"click writer stopped: wrote the last {redirects + previews} clicks, none pending" in printed, (
        f"{redirects} redirects and {previews} previews answered",
        [line for line in printed.splitlines() if "click" in line],
    )
    found = recorded(db)
    assert (found.people, found.robots) == (redirects, previews), found
    assert (found.clicks, found.bots) == (redirects, previews), found
    assert_raw_rows_and_totals_agree(found)

    key = cli(db, "apikey", "create", "e2e")
    with server(db, port):  # restarted on the same database
        link = httpx.get(f"{base}/api/v1/links/vetrina", headers={"Authorization": f"Bearer {key}"}).json()
        assert link["clicks"] == load.count(short) > 0
    shown = json.loads(subprocess.run(
        [sys.executable, "-m", "clicktochat", "link", "show", signed, "--json", "--db", db],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    assert shown["clicks"] == load.count(signed) > 0 and shown["campaign"] == "summer-ad"


def test_sigkill_loses_only_clicks_not_yet_flushed_and_never_corrupts_the_database(db_path: str) -> None:
    """While clicks keep coming, the writer flushes on its own (every 0.2 s here): everything
    answered before a flush the test has seen survives SIGKILL, and the database stays whole.
    No timing assumption: the test waits (bounded) for a flush, then for more clicks, then kills."""
    db, port = db_path, free_port()
    short, signed = create_links(db, f"http://127.0.0.1:{port}")
    with server(db, port, env={"CLICKTOCHAT_FLUSH_INTERVAL": "0.2"}) as process:
        load = Clicks([short, signed])
        load.wait_for(redirects=100)
        answered, previewed = len(load.redirects), len(load.previews)
        deadline = time.monotonic() + 60  # bounded polling of a real process, not a timing assumption
        while (now := recorded(db)).people < answered or now.robots < previewed:
            assert time.monotonic() < deadline, f"no flush wrote the first {answered} clicks in 60 s"
            time.sleep(0.05)
        load.wait_for(redirects=answered + 200)  # clicks keep coming after that flush: some still in memory
        process.kill()
        process.wait(10)
        load.join()
    assert process.returncode == -signal.SIGKILL
    found = recorded(db)
    assert_raw_rows_and_totals_agree(found)
    assert answered <= found.people <= len(load.redirects), (answered, found.people, len(load.redirects))
    assert 0 < previewed <= found.robots <= len(load.previews)


def test_signed_links_survive_a_restart_and_a_key_rotation(db_path: str) -> None:
    db, port = db_path, free_port()
    old = cli(db, "link", "create", "--to", "+39 347 123 4567", "--base-url", f"http://127.0.0.1:{port}")
    cli(db, "keys", "rotate")
    with server(db, port) as process:
        new = cli(db, "link", "create", "--to", "+39 348 765 4321")  # base URL recorded by serve
        assert new.startswith(f"http://127.0.0.1:{port}/c/")
        for url, number in ((old, "393471234567"), (new, "393487654321")):
            response = httpx.get(url, headers={"user-agent": IPHONE})
            assert response.status_code == 302 and response.headers["location"] == f"https://wa.me/{number}"
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        printed = output(process)
    with connect_db(db) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM signing_keys")]
    assert len(keys) == 2
    assert not any(key in printed for key in keys)  # secrets never reach the logs


def test_the_api_example_runs_against_a_real_server(db_path: str) -> None:
    db, port = db_path, free_port()
    key = cli(db, "apikey", "create", "example")
    with server(db, port):
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve().parents[1] / "examples" / "api_client.py")],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "CLICKTOCHAT_URL": f"http://127.0.0.1:{port}", "CLICKTOCHAT_API_KEY": key},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"short link: http://127.0.0.1:{port}/s/" in done.stdout
    url = done.stdout.split("short link: ")[1].split("\n")[0]
    assert f"asked again with the same key: 200, {url}\n" in done.stdout  # one link, not two
    assert "a bad number is refused: 422 [{'field': 'to', 'reason': \"'+39 12' is too short\"}]" in done.stdout
    assert "clicks so far: 0" in done.stdout


def test_a_key_rotated_while_the_server_runs_is_used_at_once(db_path: str) -> None:
    db, port = db_path, free_port()
    with server(db, port):
        before = cli(db, "link", "create", "--to", "+39 347 123 4567")
        cli(db, "keys", "rotate")
        after = cli(db, "link", "create", "--to", "+39 348 765 4321")  # signed with the new key
        deadline = time.time() + 30
        while httpx.get(after, headers={"user-agent": IPHONE}).status_code != 302:
            assert time.time() < deadline, "the running server never learnt the new key"
            time.sleep(0.1)
        assert httpx.get(before, headers={"user-agent": IPHONE}).headers["location"] == "https://wa.me/393471234567"
