"""Shared fixtures: a real app over a real SQLite file in a temporary folder."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, sync_playwright
from starlette.testclient import TestClient

from clicktochat import database
from clicktochat.app import create_app
from clicktochat.graph_standin import GraphStandIn, StandInNumber
from clicktochat.keys import create_api_key
from clicktochat.payloads import post_signed
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.simulate import Customer
from clicktochat.store import Store
from pgserver import MEMORY, DatabasePool, PostgresServer

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
WHATSAPP_PREVIEW = "WhatsApp/2.23.20.0 A"


def read_qr(image: bytes | Path | np.ndarray) -> str:
    """The text of the one QR code in an image, or "" when none can be read.

    ZXing's decoder is the one most phone scanners are built on, so a code it
    cannot read is a code a customer's phone may not read either.
    """
    if isinstance(image, bytes | Path):
        image = np.asarray(Image.open(image if isinstance(image, Path) else io.BytesIO(image)).convert("L"))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) <= 1, "more than one code"
    return found[0].text if found else ""


CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright cannot download its own browser here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# The suite runs twice in CI: on SQLite (the default) and with CLICKTOCHAT_TEST_DB=postgresql, on a
# real PostgreSQL server it starts itself (tests/pgserver.py). `db_path` is then a database's URL.
TEST_DB = os.environ.get("CLICKTOCHAT_TEST_DB", "sqlite")
POSTGRES = TEST_DB == "postgresql"
TEMPLATE = "clicktochat_migrated"  # migrated once; each test's database is a copy of it


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--only-database-tests", action="store_true",
        help="run only the tests whose outcome depends on CLICKTOCHAT_TEST_DB: those that take `db_path` or "
        "`module_db_path` and are not marked sqlite or postgresql (tests/run.sh's PostgreSQL pass; the SQLite pass "
        "before it runs every test)",
    )  # fmt: skip


def depends_on_the_database(item: pytest.Item) -> bool:
    """Whether a test runs differently on the two passes: it takes `db_path` (directly or through `settings`,
    `client`, `whatsapp`...) or `module_db_path`, and is not marked to run on one database in both passes."""
    fixtures = getattr(item, "fixturenames", ())
    marked = item.get_closest_marker("sqlite") or item.get_closest_marker("postgresql")
    return ("db_path" in fixtures or "module_db_path" in fixtures) and marked is None


@pytest.hookimpl(tryfirst=True)  # before pytest's own tmp_path plugin reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    """Unless --basetemp says where, the tests' temporary files (their SQLite databases, the servers' logs and
    journals) live in a new folder of MEMORY (a tmpfs), not on the disk: every test makes a database and most
    write to it, and on this machine's disk that took 0.03-0.1 s a test of waiting for the file system
    (tests/test_api.py on SQLite: 50-54 s -> 32-33 s). Removed at the end when every test passed (pytest's
    own numbered folders are kept three runs; in memory, that is memory); kept for a look when one failed."""
    if config.option.basetemp is None and MEMORY.is_dir() and os.access(MEMORY, os.W_OK | os.X_OK):
        config.option.basetemp = config.stash[_in_memory] = tempfile.mkdtemp(prefix="clicktochat-tests-", dir=MEMORY)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder = session.config.stash.get(_in_memory, None)
    if folder is not None and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        shutil.rmtree(folder, ignore_errors=True)


_in_memory = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --only-database-tests, the tests that would run exactly as in the SQLite pass are deselected
    (pytest counts them as such): a test that never touches `db_path`, or that is marked to run on one
    database whichever the pass, gains nothing from running twice."""
    if not config.getoption("--only-database-tests"):
        return
    kept = [item for item in items if depends_on_the_database(item)]
    deselected = [item for item in items if not depends_on_the_database(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer.start(tmp_path_factory.mktemp("postgresql"), in_memory=True) as server:  # pgserver.MEMORY
        server.create_database(TEMPLATE)

        async def migrate() -> None:
            await (await Store.open(server.url(TEMPLATE))).close()

        # In a thread of its own: a browser test's module may start the server first, inside the
        # event loop Playwright's sync API runs, where asyncio.run() is refused.
        with concurrent.futures.ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, migrate()).result()
        yield server


@pytest.fixture
def db_path(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the test's database lives: a new SQLite file, or a new PostgreSQL database (in the
    PostgreSQL pass, and in both passes for a test marked `postgresql`: what only PostgreSQL has,
    such as row locks, dropped connections and several instances, is tested on every run; and
    on SQLite in both passes for a test marked `sqlite`: what is only SQLite's, such as its files)."""
    if request.node.get_closest_marker("sqlite") is not None or (
        not POSTGRES and request.node.get_closest_marker("postgresql") is None
    ):
        yield str(tmp_path / "test.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    pool: DatabasePool = request.getfixturevalue("postgres_pool")
    name = pool.take()
    yield server.url(name)
    pool.give_back(name)


@pytest.fixture(scope="session")
def postgres_pool(postgres_server: PostgresServer) -> Iterator[DatabasePool]:
    """`db_path`'s databases, each a new copy of the template for one test, made while the tests before run
    and dropped while the tests after run (pgserver.DatabasePool): a test waited 0.05-0.2 s for CREATE DATABASE
    and DROP DATABASE."""
    pool = postgres_server.pool(TEMPLATE, f"test_{os.getpid()}_")
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def module_db_path(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[str]:
    """A test module's database, as `db_path` is a test's (for a server or a browser session that the module's
    tests share): a SQLite file, or in the PostgreSQL pass a copy of the migrated template, dropped at the end."""
    name = request.module.__name__.rpartition(".")[2]
    if not POSTGRES:
        yield str(tmp_path_factory.mktemp(name) / f"{name}.db")
        return
    # In a thread of its own: Playwright's sync API may already run an event loop in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        server: PostgresServer = thread.submit(request.getfixturevalue, "postgres_server").result()
    database = f"{name}_{os.getpid()}"
    server.create_database(database, template=TEMPLATE)
    try:
        yield server.url(database)
    finally:
        server.drop_database(database)


@contextmanager
def connect_db(db: str) -> Iterator[Any]:
    """A plain connection to the test's database, SQLite file or PostgreSQL URL, for reading (and
    arranging) rows behind the application's back; closed at the end. On PostgreSQL it is autocommit
    and takes SQLite's `?` placeholders (clicktochat.database)."""
    conn = database.connect(db) if database.is_postgres(db) else sqlite3.connect(db)
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def until_waiting_for_a_lock(db: str, what: str) -> None:
    """Return once a connection to PostgreSQL database `db` waits for another's lock (a row held
    by a transaction the test keeps open): an event awaited, not a duration; `what` says, after
    30 s, what should have waited."""
    with connect_db(db) as watcher:
        for _ in range(3000):
            if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                               " AND datname = current_database()").fetchone()[0]:  # fmt: skip
                return
            time.sleep(0.01)
    raise AssertionError(f"{what} did not wait for the lock")


@pytest.fixture
def sqlite_path(tmp_path: Path) -> str:
    """A SQLite file whatever the run: for what only SQLite has (backups, the file lock)."""
    return str(tmp_path / "test.db")


@pytest.fixture
def settings(db_path: str) -> Settings:
    return Settings(db=db_path, base_url="https://chat.example.com", flush_interval=0.05)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A new SQLite database, migrated once: what the app makes of a file that does not exist yet."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"

    async def migrate() -> None:
        await (await Store.open(str(path))).close()

    # In a thread of its own, as the PostgreSQL template is migrated (Playwright's loop may run in this one).
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, migrate()).result()
    return path.read_bytes()


def migrated(db: str, request: pytest.FixtureRequest) -> None:
    """The app is about to open `db`: a SQLite file that does not exist yet is made a copy of `sqlite_template`,
    with the mode the app gives a new file (storedb.private), which is what the app's migrations would have made
    of it there and then, in 0.003 s instead of 0.05 s. A file a test made before, a PostgreSQL database (a copy of
    its own template already), and every database a test opens itself are left as they are."""
    if database.is_postgres(db) or Path(db).exists():
        return
    template: bytes = request.getfixturevalue("sqlite_template")
    with open(os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb") as file:
        file.write(template)


@pytest.fixture
def client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app with its background loops held: a test flushes clicks (flush) and checks for
    other processes' changes (watch) when it chooses, so nothing runs behind its back."""
    migrated(settings.db, request)
    app = create_app(settings, background=False)
    with TestClient(app, base_url="https://chat.example.com", follow_redirects=False) as c:
        yield c


@pytest.fixture
def service(client: TestClient) -> Service:
    """The running app's service (same database, same cache)."""
    return client.app.state.service  # type: ignore[attr-defined,no-any-return]


def call(client: TestClient, coroutine: object) -> object:
    """Run a coroutine on the app's event loop (aiosqlite connections belong to one loop)."""
    assert client.portal is not None

    async def run() -> object:
        return await coroutine  # type: ignore[misc]

    return client.portal.call(run)


@pytest.fixture
def api_key(client: TestClient, service: Service) -> str:
    return call(client, create_api_key(service.store, "tests")).key  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def flush(client: TestClient) -> None:
    """Write pending clicks now instead of waiting for the writer's next tick."""
    call(client, client.app.state.recorder.flush())  # type: ignore[attr-defined]


def watch(client: TestClient) -> None:
    """One check of the routing watcher: what another process (the CLI) changed is seen now."""
    call(client, client.app.state.watcher.run_once())  # type: ignore[attr-defined]


__all__ = ["IPHONE", "ANDROID", "DESKTOP", "WHATSAPP_PREVIEW", "call", "flush", "watch", "asyncio"]


# -- the WhatsApp side: Meta's Graph API stand-in on a real port, our app in-process -----


class Clock:
    """Now, as the tests say: moved, never slept."""

    def __init__(self, now: float = 1_798_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += seconds


NUMBER = StandInNumber(
    phone_number_id="106540352242922", waba_id="102290129340398", display_phone_number="+39 347 000 1111",
    verified_name="Pasticceria Dolce Vita", access_token="EAAG" + "x" * 40, app_secret="a" * 32,
)
VERIFY_TOKEN = "verify-me-please"


@contextmanager
def running(argv: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A real server process, ready when /healthz answers (a bounded wait for its start-up, not
    a timing assumption); killed however the block ends. What it prints goes to a file (a pipe
    nobody reads would fill and hang a server that logs much): `output(process)` reads it."""
    with tempfile.NamedTemporaryFile("w", prefix="clicktochat-serve-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **(env or {})})  # fmt: skip
    _logs[process.pid] = Path(log.name)
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert process.poll() is None, output(process)
                assert time.time() < deadline, "server did not start"
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        _logs.pop(process.pid).unlink(missing_ok=True)


_logs: dict[int, Path] = {}


def output(process: subprocess.Popen[str]) -> str:
    """What a server started by `running` has printed so far."""
    return _logs[process.pid].read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clock() -> Clock:
    """Starts at the real now: clicks (timed by the real clock) and messages meet."""
    return Clock(float(int(time.time())))


@pytest.fixture
def standin(clock: Clock) -> Iterator[GraphStandIn]:
    """The Graph API stand-in, served by uvicorn on a free port of 127.0.0.1 in a thread."""
    graph = GraphStandIn([NUMBER], clock=clock)
    server = uvicorn.Server(uvicorn.Config(graph.app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           timeout_graceful_shutdown=5))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # start-up of a real server: bounded, not a timing assumption
        assert thread.is_alive(), "the stand-in did not start"
        threading.Event().wait(0.01)
    graph.url = f"http://127.0.0.1:{server.config.port}/v26.0"  # type: ignore[attr-defined]
    yield graph
    graph.webhook_patience = 0.0  # statuses still being POSTed again to a server that is gone stop now
    server.should_exit = True
    thread.join(30)
    # A thread left running into the interpreter's exit can crash it (a segfault after the last test).
    assert not thread.is_alive(), "the stand-in did not stop"


@dataclass
class WhatsAppSetup:
    client: TestClient
    service: Service
    standin: GraphStandIn
    clock: Clock
    number_id: int
    business_id: int
    auth: dict[str, str]

    def customer(self, wa_id: str | None = "393471234567", user_id: str | None = "IT.1234567890", name: str = "Giulia"
                 ) -> Customer:  # fmt: skip
        return Customer("https://chat.example.com/webhooks/whatsapp", NUMBER, wa_id, user_id, name, self.standin,
                        http=self.http(), clock=self.clock)  # fmt: skip

    def http(self) -> Any:
        """An async client that reaches the app in-process (created and used on the app's loop)."""
        return _AsgiClient(self.client)

    def run(self, coroutine: Any) -> Any:
        return call(self.client, coroutine)

    def process(self) -> int:
        """Apply stored webhook events now (the processor's loop does this in a server)."""
        return self.run(self.service.whatsapp.processor.run_once())  # type: ignore[no-any-return]

    def send(self) -> int:
        return self.run(self.service.whatsapp.sender.run_once())  # type: ignore[no-any-return]

    def status(self, wamid: str, status: str, errors: Any = None) -> Any:
        body = self.standin.status_body(wamid, status, errors)  # type: ignore[arg-type]
        return self.run(post_signed("https://chat.example.com/webhooks/whatsapp", body, NUMBER.app_secret,
                                    self.http()))  # fmt: skip


class _AsgiClient:
    """httpx.AsyncClient over the app's ASGI interface, made lazily on the app's loop."""

    def __init__(self, client: TestClient) -> None:
        self.app = client.app

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="https://chat.example.com"
                                     ) as http:  # fmt: skip
            return await http.post(url, **kwargs)


@pytest.fixture
def whatsapp(db_path: str, standin: GraphStandIn, clock: Clock, request: pytest.FixtureRequest
             ) -> Iterator[WhatsAppSetup]:  # fmt: skip
    """A running app with a business and a connected number, time on `clock`, Graph on the stand-in."""
    migrated(db_path, request)
    settings = Settings(db=db_path, base_url="https://chat.example.com", flush_interval=0.05,
                        graph_url=standin.url)  # type: ignore[attr-defined]  # fmt: skip
    app = create_app(settings, clock, background=False)
    with TestClient(app, base_url="https://chat.example.com", follow_redirects=False) as c:
        service: Service = c.app.state.service  # type: ignore[attr-defined]
        business = call(c, service.add_business("Pasticceria Dolce Vita", "Europe/Rome"))
        number = call(c, service.whatsapp.connect(
            business.id, NUMBER.phone_number_id, NUMBER.waba_id, NUMBER.access_token, NUMBER.app_secret,  # type: ignore[attr-defined]
            VERIFY_TOKEN,
        ))  # fmt: skip
        key = call(c, create_api_key(service.store, "tests")).key  # type: ignore[attr-defined]
        yield WhatsAppSetup(c, service, standin, clock, number.id, business.id,  # type: ignore[attr-defined]
                            {"Authorization": f"Bearer {key}"})
