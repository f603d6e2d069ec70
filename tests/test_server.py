"""The server `clicktochat serve` runs caps request heads: a real process on 127.0.0.1, spoken to
over raw sockets. Before, httptools kept an unfinished header line in memory however long it
grew: ten 20 MB headers took the process from 151 to 387 MB, and a 50 MB header was answered 200."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from clicktochat.cli import cli
from clicktochat.server import MAX_HEAD_BYTES, MAX_HEADERS, SWITCH_INTERVAL, LimitedHttpToolsProtocol
from conftest import free_port, output, running
from pgserver import PostgresServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(module_db_path: str) -> Iterator[tuple[int, int]]:
    """(port, pid) of `clicktochat serve`, on the run's database (a SQLite file, or PostgreSQL)."""
    port = free_port()
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", module_db_path, "--port", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:  # waiting for a process to start, not for something to happen in time
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.kill()
        process.wait(10)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def exchange(port: int, request: bytes) -> bytes:
    """Send `request` whole, then read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def head(size: int, end: bool = True) -> bytes:
    """A GET whose head is exactly `size` bytes, one long header making up the difference."""
    start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: "
    tail = b"\r\nConnection: close\r\n\r\n" if end else b""
    return start + b"a" * (size - len(start) - len(tail)) + tail


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def test_a_head_up_to_the_cap_is_served(server: tuple[int, int]) -> None:
    port, _ = server
    assert status(exchange(port, head(MAX_HEAD_BYTES))) == 200
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS - 2))
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"Connection: close\r\n\r\n"
    assert status(exchange(port, request)) == 200


def test_a_byte_past_the_cap_is_a_431(server: tuple[int, int]) -> None:
    port, _ = server
    # Unfinished: the server must answer without waiting for the end of a line that never comes.
    response = exchange(port, head(MAX_HEAD_BYTES + 1, end=False))
    assert status(response) == 431 and b"connection: close" in response.lower()
    assert status(exchange(port, head(MAX_HEAD_BYTES + 1))) == 431


def test_a_head_behind_another_request_is_capped_too(server: tuple[int, int]) -> None:
    """Pipelined: a request, then in the same reads a head that never ends. The bytes of a head
    that arrive with the request before it may go uncounted (the cheap path), never more than
    the cap: past twice the cap, the connection is refused (431, or reset while we still send)."""
    port, _ = server
    first = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    within = exchange(port, first + head(MAX_HEAD_BYTES // 2, end=False))
    assert status(within) == 200 and within.count(b"HTTP/1.1 ") == 1  # the second head still awaited
    try:
        past = exchange(port, first + head(2 * MAX_HEAD_BYTES + 1, end=False))
    except (BrokenPipeError, ConnectionResetError):
        return  # closed on us while we were still sending or reading: refused
    assert status(past) == 200 and b"HTTP/1.1 431 " in past


class Transport(asyncio.Transport):
    """Where the protocol writes, in memory: the protocol itself is uvicorn's and ours, unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.closed, self.out = False, b""

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.out += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def head_fed(reads: list[bytes]) -> tuple[int, bytes]:
    """The reads given to the protocol, then 1 KiB reads of the last request's head until it is
    refused: how many of those 1 KiB reads were taken, and what was answered."""
    config = uvicorn.Config(_answer, http=LimitedHttpToolsProtocol, lifespan="off", log_level="error")
    config.load()
    protocol = LimitedHttpToolsProtocol(config, ServerState(), {})
    transport = Transport()
    protocol.connection_made(transport)
    for data in reads:
        protocol.data_received(data)
        for _ in range(5):  # the app's task answers the request before
            await asyncio.sleep(0)
    more = 0
    while not transport.closed and more < 10 * MAX_HEAD_BYTES // 1024:
        protocol.data_received(b"a" * 1024)
        more += 1
    return more, transport.out


def test_a_head_behind_a_body_in_the_same_read_is_capped_too() -> None:
    """A read holding the end of a body and a next head: the head's bytes in it went uncounted (a
    read is up to 256 KiB), and the head was refused only a cap's worth of bytes after that read.
    From a review; now a body is fed a cap's worth at a time, and a head is refused within the read
    once it passes twice the cap."""
    post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"
    second = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Long: " + b"a" * (2 * MAX_HEAD_BYTES + 1024)
    more, out = asyncio.run(head_fed([post, b"12345" + second]))
    assert (more, out.count(b"HTTP/1.1 200 "), out.count(b"HTTP/1.1 431 ")) == (0, 1, 1)
    more, out = asyncio.run(head_fed([post, b"12345GET /x HTTP/1.1\r\nHost: a\r\n"]))  # all in one small read
    assert more == MAX_HEAD_BYTES // 1024 + 1 and b"HTTP/1.1 431 " in out  # the last one refused


class Timers:
    """The event loop, but its timers kept here, to be run when the test says: time moved by hand."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.handles = loop, []  # type: list[asyncio.TimerHandle]

    def call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(self.loop.time() + delay, callback, args, self.loop)
        self.handles.append(handle)
        return handle

    def pass_time(self) -> None:
        """Every timer set so far comes due (a cancelled one does nothing)."""
        due, self.handles = self.handles, []
        for handle in due:
            if not handle.cancelled():
                handle._run()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loop, name)


async def head_timed(reads: list[bytes]) -> tuple[Transport, Timers, LimitedHttpToolsProtocol]:
    config = uvicorn.Config(_answer, http=LimitedHttpToolsProtocol, lifespan="off", log_level="error")
    config.load()
    timers = Timers(asyncio.get_running_loop())
    protocol = LimitedHttpToolsProtocol(config, ServerState(), {}, _loop=timers)  # type: ignore[arg-type]
    transport = Transport()
    protocol.connection_made(transport)
    for data in reads:
        protocol.data_received(data)
        for _ in range(5):  # the app's task answers a whole request
            await asyncio.sleep(0)
    return transport, timers, protocol


@pytest.mark.parametrize("reads", [[], [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
                                   [b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", b"GET /x HTTP/1.1\r\n"]])
def test_a_head_that_does_not_all_come_in_time_is_a_408(reads: list[bytes]) -> None:
    """Found by an attacker: a connection that opened (or began a head) and sent nothing more was
    kept for ever; 3,000 of them stayed open for minutes, and with them the server ran out of
    file descriptors. Now each head has HEAD_TIMEOUT seconds (time moved here, not slept)."""

    async def scenario() -> tuple[bool, bytes]:
        transport, timers, _ = await head_timed(reads)
        assert not transport.closed  # before the time is up: kept
        timers.pass_time()
        return transport.closed, transport.out

    closed, out = asyncio.run(scenario())
    assert closed and out.count(b"HTTP/1.1 408 ") == 1
    assert out.count(b"HTTP/1.1 200 ") == (1 if len(reads) == 2 else 0)  # the whole request before: answered


def test_a_head_that_came_whole_is_not_cut_by_its_timer() -> None:
    async def scenario() -> tuple[bool, bytes]:
        transport, timers, protocol = await head_timed([b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"])
        timers.pass_time()  # the head's timer was cancelled when the head ended; the keep-alive's closes
        return transport.closed, transport.out

    closed, out = asyncio.run(scenario())
    assert b"HTTP/1.1 200 " in out and b" 408 " not in out


def test_too_many_headers_are_a_431(server: tuple[int, int]) -> None:
    port, _ = server
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS + 1))
    assert status(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")) == 431


def test_a_body_sent_with_its_head_is_not_counted_as_head(server: tuple[int, int]) -> None:
    port, _ = server
    body = b"x" * (4 * MAX_HEAD_BYTES)  # arrives in the same packets as the head
    request = (b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"X-Hub-Signature-256: sha256=%s\r\n" % (b"0" * 64))  # fmt: skip
    response = exchange(port, request + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    assert status(response) == 403  # read whole, then refused for its signature, not for its size


def test_huge_headers_cost_no_memory(server: tuple[int, int]) -> None:
    port, pid = server
    before = rss_kib(pid)
    outcomes = []
    for _ in range(10):  # ten connections, each a 50 MB header that never ends
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 50_000_000)
                outcomes.append(status(sock.recv(65536)))
            except (BrokenPipeError, ConnectionResetError):
                outcomes.append(0)  # closed on us while we were still sending: refused too
    assert all(outcome in (431, 0) for outcome in outcomes), outcomes
    assert rss_kib(pid) - before < 5 * 1024, f"{before} KiB -> {rss_kib(pid)} KiB"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


# -- a port already taken (issue 12) ------------------------------------------------------------


def test_a_taken_port_is_named_with_a_way_out(tmp_path: Path) -> None:
    with socket.socket() as holder:  # a real listener on a real port, as a second `serve` would meet
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "clicktochat", "serve", "--db", str(tmp_path / "x.db"),
                               "--port", str(port)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == (f"Error: port {port} on 127.0.0.1 is taken: another program (another clicktochat "
                           f"serve?) listens on it. Stop it, or choose another port: clicktochat serve --port "
                           f"{port + 1}\n")  # fmt: skip
    assert not (tmp_path / "x.db").exists()  # said before anything was opened


def test_cannot_listen_says_nothing_of_a_free_port_and_names_a_bad_host() -> None:
    from clicktochat.server import cannot_listen

    assert cannot_listen("127.0.0.1", free_port()) is None
    assert "cannot listen on 'no-such-host.invalid'" in (cannot_listen("no-such-host.invalid", 8000) or "")


# -- PostgreSQL (issue 13) ------------------------------------------------------------------------


def test_serve_on_postgresql_names_the_database_without_its_password(postgres_server: PostgresServer,
                                                                     tmp_path: Path) -> None:  # fmt: skip
    """Whatever the run, on the session's PostgreSQL server (which lets any password in)."""
    name = f"serve_password_{os.getpid()}"
    postgres_server.create_database(name)
    url, port = postgres_server.url(name).replace("postgres@", "postgres:s3cret-pw@"), free_port()
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", url, "--port", str(port), "--log-level", "debug"]
    try:
        with running(argv, port, {"CLICKTOCHAT_DB": ""}) as process:
            assert httpx.get(f"http://127.0.0.1:{port}/nothing-here", timeout=10).status_code == 404
            process.send_signal(signal.SIGTERM)
            process.wait(30)
            printed = output(process)
        assert f"(database {postgres_server.url(name)})" in printed and "s3cret-pw" not in printed
        assert list(tmp_path.iterdir()) == []
    finally:
        postgres_server.drop_database(name)


def test_serve_on_an_unreachable_postgresql_server_says_so_without_the_password(tmp_path: Path) -> None:
    port, nothing = free_port(), free_port()  # nothing listens on `nothing`
    done = subprocess.run([sys.executable, "-m", "clicktochat", "serve", "--port", str(port), "--db",
                           f"postgresql://shop:s3cret-pw@127.0.0.1:{nothing}/clicktochat"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"Error: cannot use the database postgresql://shop@127.0.0.1:{nothing}/clicktochat: ")
    assert "s3cret-pw" not in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_serve_hands_the_gil_over_every_millisecond(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The click writer's thread must not hold the event loop for Python's default 5 ms at a time
    (docs/performance.md: the p99 with new visitors): `serve` sets the switch interval first."""
    seen: list[float] = []

    def run(self: uvicorn.Server) -> None:  # the server as it would start: what interval it runs under
        seen.append(sys.getswitchinterval())
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    before = sys.getswitchinterval()
    try:
        result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "app.db"), "--port", str(free_port())],
                                    env={"CLICKTOCHAT_DB": None, "CLICKTOCHAT_BASE_URL": None})  # fmt: skip
    finally:
        sys.setswitchinterval(before)
    assert result.exit_code == 0, result.output
    assert seen == [SWITCH_INTERVAL] and SWITCH_INTERVAL < 0.005  # Python's default


@pytest.mark.e2e
def test_serving_every_interface_without_a_base_url_says_how_phones_reach_it(tmp_path: Path) -> None:
    """Found by a new user: with --host 0.0.0.0, a phone on the network got 400, and nothing said why."""
    port = free_port()
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", str(tmp_path / "shop.db"), "--host", "0.0.0.0",
            "--port", str(port)]  # fmt: skip
    with running(argv, port) as process:
        printed = output(process)
    assert f"links and QR codes name http://127.0.0.1:{port}" in printed
    assert f"--base-url http://<this machine's address>:{port}" in printed
