"""A small HTTP/1.1 load generator, the fallback of bench/redirect.py when `wrk` is not
installed: N keep-alive connections to 127.0.0.1, each sending one GET, waiting for the whole
response, then sending the next (no pipelining), for a fixed time. Every request's latency is
kept; one JSON object is printed at the end.

    python bench/loadgen.py --port 8000 --path /x --duration 10 --connections 50

It only speaks to loopback addresses, and only understands responses with a Content-Length
(what Starlette sends for a redirect or a small page).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import json
import time
from array import array
from collections import Counter
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None  # type: ignore[assignment]


class Stats:
    def __init__(self) -> None:
        self.latencies = array("d")  # seconds, one per completed request
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.bytes_read = 0


class Connection(asyncio.Protocol):
    """One keep-alive connection: request, whole response, next request, until the deadline."""

    def __init__(self, request: bytes, stats: Stats, deadline: float, done: asyncio.Future[None]) -> None:
        self.request = request
        self.stats = stats
        self.deadline = deadline
        self.done = done
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].split(b"\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                elif name.strip().lower() == b"transfer-encoding":
                    self.fail()  # chunked bodies: not what a redirect benchmark expects
                    return
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            now = time.perf_counter()
            self.stats.latencies.append(now - self.sent_at)
            self.stats.statuses[int(head[0].split(b" ", 2)[1])] += 1
            self.stats.bytes_read += total
            self.buffer = self.buffer[total:]
            if now >= self.deadline:
                self.finish()
                return
            self.send()

    def fail(self) -> None:
        self.stats.errors += 1
        self.finish()

    def finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():  # closed by the server before our deadline
            self.stats.errors += 1
            self.done.set_result(None)


async def run(host: str, port: int, path: str, user_agent: str, connections: int, duration: float) -> dict[str, Any]:
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"{host} is not a loopback address; this load generator only targets this machine")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {user_agent}\r\n"
        "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nConnection: keep-alive\r\n\r\n"
    ).encode("latin-1")
    loop = asyncio.get_running_loop()
    stats = Stats()
    started = time.perf_counter()
    deadline = started + duration
    waiters: list[asyncio.Future[None]] = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        waiters.append(done)
        try:
            await loop.create_connection(functools.partial(Connection, request, stats, deadline, done), host, port)
        except OSError:
            stats.errors += 1
            done.set_result(None)
    try:
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=duration + 10)
    except TimeoutError:
        stats.errors += sum(not w.done() for w in waiters)
    elapsed = time.perf_counter() - started
    latencies = sorted(stats.latencies)

    def percentile(p: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6 if latencies else None

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "requests_per_second": len(latencies) / elapsed,
        "p50_us": percentile(50),
        "p99_us": percentile(99),
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": stats.errors,
        "bytes_read": stats.bytes_read,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--user-agent", default="clicktochat-bench")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    work = run(args.host, args.port, args.path, args.user_agent, args.connections, args.duration)
    result = uvloop.run(work) if uvloop is not None else asyncio.run(work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
