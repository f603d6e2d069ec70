"""End to end: the installed command, real uvicorn on 127.0.0.1, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import DESKTOP, IPHONE

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(db: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clicktochat", *args, "--db", str(db)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def server(db: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "clicktochat", "serve", "--db", str(db), "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.time() < deadline, "server did not start"
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout:
            process.stdout.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_no_click_is_lost_on_graceful_shutdown(tmp_path: Path, stop_signal: signal.Signals) -> None:
    db, port, clicks = tmp_path / "e2e.db", free_port(), 400
    base = f"http://127.0.0.1:{port}"
    short = cli(db, "link", "create", "--to", "+39 347 123 4567", "--text", "Ciao", "--slug", "vetrina",
                "--base-url", base)  # fmt: skip
    signed = cli(db, "link", "create", "--to", "+39 347 123 4567", "--campaign", "summer-ad", "--base-url", base)
    assert short == f"{base}/s/vetrina" and signed.startswith(f"{base}/c/")
    # A long flush interval: every click is still in memory when the signal arrives.
    with server(db, port, env={"CLICKTOCHAT_FLUSH_INTERVAL": "600"}) as process:
        with httpx.Client(timeout=10) as http, ThreadPoolExecutor(8) as pool:
            def click(i: int) -> int:
                ua = IPHONE if i % 2 else DESKTOP
                return http.get(short if i % 4 < 2 else signed, headers={"user-agent": ua}).status_code

            statuses = list(pool.map(click, range(clicks)))
        assert statuses.count(302) == clicks // 2 and statuses.count(200) == clicks // 2
        assert httpx.get(f"{base}/healthz").json()["pending_clicks"] == clicks
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=30)
        assert process.returncode in (0, -stop_signal), output  # uvicorn re-raises the signal once stopped
        assert f"click writer stopped: wrote the last {clicks} clicks, none pending" in output

    key = cli(db, "apikey", "create", "e2e")
    with server(db, port):  # restarted on the same database
        link = httpx.get(f"{base}/api/v1/links/vetrina", headers={"Authorization": f"Bearer {key}"}).json()
        assert link["clicks"] == clicks // 2
    shown = json.loads(subprocess.run(
        [sys.executable, "-m", "clicktochat", "link", "show", signed, "--json", "--db", str(db)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    assert shown["clicks"] == clicks // 2 and shown["campaign"] == "summer-ad"


def test_signed_links_survive_a_restart_and_a_key_rotation(tmp_path: Path) -> None:
    db, port = tmp_path / "keys.db", free_port()
    old = cli(db, "link", "create", "--to", "+39 347 123 4567", "--base-url", f"http://127.0.0.1:{port}")
    cli(db, "keys", "rotate")
    with server(db, port) as process:
        new = cli(db, "link", "create", "--to", "+39 348 765 4321")  # base URL recorded by serve
        assert new.startswith(f"http://127.0.0.1:{port}/c/")
        for url, number in ((old, "393471234567"), (new, "393487654321")):
            response = httpx.get(url, headers={"user-agent": IPHONE})
            assert response.status_code == 302 and response.headers["location"] == f"https://wa.me/{number}"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    keys = [row[0] for row in sqlite3.connect(db).execute("SELECT key FROM signing_keys")]
    assert len(keys) == 2
    assert not any(key in output for key in keys)  # secrets never reach the logs


def test_the_api_example_runs_against_a_real_server(tmp_path: Path) -> None:
    db, port = tmp_path / "example.db", free_port()
    key = cli(db, "apikey", "create", "example")
    with server(db, port):
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve().parents[1] / "examples" / "api_client.py")],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "CLICKTOCHAT_URL": f"http://127.0.0.1:{port}", "CLICKTOCHAT_API_KEY": key},
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"short link: http://127.0.0.1:{port}/s/" in done.stdout
    assert "a bad number is refused: 422 [{'field': 'to', 'reason': \"'+39 12' is too short\"}]" in done.stdout
    assert "clicks so far: 0" in done.stdout


def test_a_key_rotated_while_the_server_runs_is_used_at_once(tmp_path: Path) -> None:
    db, port = tmp_path / "rotate.db", free_port()
    with server(db, port):
        before = cli(db, "link", "create", "--to", "+39 347 123 4567")
        cli(db, "keys", "rotate")
        after = cli(db, "link", "create", "--to", "+39 348 765 4321")  # signed with the new key
        deadline = time.time() + 5
        while httpx.get(after, headers={"user-agent": IPHONE}).status_code != 302:
            assert time.time() < deadline, "the running server never learnt the new key"
            time.sleep(0.1)
        assert httpx.get(before, headers={"user-agent": IPHONE}).headers["location"] == "https://wa.me/393471234567"
