"""Soak benchmark of memory under an ad spike: `clicktochat serve` behind a trusted proxy, every
request from a new visitor, for minutes; the server's memory (VmRSS) and throughput sampled
every interval. A benchmark, not a test: it prints figures and judges nothing; it exits
non-zero only if the server dies or answers nothing.

    .venv/bin/python bench/soak.py                          # 20 s warm-up, then 2 minutes
    .venv/bin/python bench/soak.py --duration 600 --interval 10
    .venv/bin/python bench/soak.py --help

What it does:
1. makes a temporary SQLite database with a short link (/s/bench, bench/redirect.py's), and
   starts `clicktochat serve` on a free 127.0.0.1 port with CLICKTOCHAT_TRUSTED_PROXIES=127.0.0.1;
2. loads it from this process (an asyncio client: `--connections` keep-alive connections, one
   request at a time each), every request with a new X-Forwarded-For (10.x.y.z, then the next)
   and a user agent from a pool of `--user-agents` iPhone strings (0: a new one every request),
   so that every click is a new visitor (the hash covers address, browser and link);
3. every `--interval` seconds reads the server's VmRSS from /proc/PID/status, the answers of
   the interval, the server's CPU time per answer (all threads, /proc/PID/stat) and how much of
   the machine's CPUs the other processes took (/proc/stat less the server and this load), so a
   drop in throughput can be told apart: the server costing more, or the machine busy
   elsewhere; after `--warmup` seconds (not counted), runs for `--duration` more;
4. stops the server (SIGTERM: it writes what is pending) and counts the clicks and uniques it
   wrote (all visitors are new: uniques / clicks is 1 less the false positives);
5. prints each interval, the growth of RSS per 30 s once warm (a least-squares slope over the
   measured intervals; target <= 25 MB), and each interval's throughput against the first
   measured one (target: within 10 %).

A pool of browsers is the realistic case (most clicks come from a few thousand distinct
strings); `--user-agents 0` is the adversarial one, where each click's robot check runs
crawlerdetect's ~1,500 patterns on a string never seen (about a millisecond): the writer then
falls behind and its pending clicks (bounded by ClickRecorder.max_pending) are what grows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from redirect import HOST, make_links, process_cpu_seconds  # noqa: E402  (bench/ is not a package)

from clicktochat.settings import ENV_PREFIX  # noqa: E402

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{minor} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{minor} Mobile/15E{build} Safari/604.1"
)
TARGET_GROWTH_MB = 25.0  # per 30 s, once warm
TARGET_THROUGHPUT = 0.10  # each interval within 10 % of the first
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss_mb: float
    requests: int  # answered in the interval
    per_second: float
    warm: bool
    cpu_us: float = 0.0  # the server's CPU (all threads) per request answered in the interval
    machine_busy: float = 0.0  # the other processes' share of the machine's CPUs in the interval (0 to 1)


class Visitors:
    """A new visitor a request: the next address, and a browser from the pool."""

    def __init__(self, user_agents: int) -> None:
        self.n = 0
        self.pool = [IPHONE.format(minor=i % 7, build=100 + i) for i in range(user_agents)]

    def request(self) -> bytes:
        self.n += 1
        n = self.n
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        ua = self.pool[n % len(self.pool)] if self.pool else IPHONE.format(minor=n % 7, build=n)
        if n >= 1 << 24:  # past 16.7 million addresses: the browser tells them apart
            ua = f"{ua} r{n >> 24}"
        return (
            f"GET /s/bench HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {ua}\r\nX-Forwarded-For: {address}\r\n\r\n"
        ).encode("latin-1")


class Client(asyncio.Protocol):
    """One keep-alive connection: a request, its whole answer (a 302 with Content-Length), the next."""

    def __init__(self, visitors: Visitors, counts: list[int], stop: asyncio.Event, lost: asyncio.Future[None]) -> None:
        self.visitors, self.counts, self.stop, self.lost = visitors, counts, stop, lost
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.visitors.request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = head[9:12]
        self.buffer = self.buffer[end + 4 + length :]
        self.counts[0 if status == b"302" else 1] += 1
        assert self.transport is not None
        if self.stop.is_set():
            self.transport.close()
        else:
            self.transport.write(self.visitors.request())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stop.is_set() and not self.lost.done():
            self.lost.set_result(None)


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def server_gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def load(port: int, pid: int, args: argparse.Namespace) -> list[Sample]:
    loop = asyncio.get_running_loop()
    visitors, counts, stop = Visitors(args.user_agents), [0, 0], asyncio.Event()
    lost: asyncio.Future[None] = loop.create_future()
    transports = []
    for _ in range(args.connections):
        transport, _ = await loop.create_connection(lambda: Client(visitors, counts, stop, lost), HOST, port)
        transports.append(transport)
    samples: list[Sample] = []
    warmup, measured = math.ceil(args.warmup / args.interval), max(1, math.ceil(args.duration / args.interval))
    started = last_at = time.monotonic()
    last_count, last_cpu, last_busy, last_mine = 0, process_cpu_seconds(pid), machine_cpu_seconds(), time.process_time()
    try:
        while True:
            await asyncio.wait([lost], timeout=args.interval)
            if lost.done() or server_gone(pid):
                raise SystemExit("the server closed a connection or exited: it crashed or refused the load")
            now, answered = time.monotonic(), counts[0] + counts[1]
            cpu, busy, mine = process_cpu_seconds(pid), machine_cpu_seconds(), time.process_time()
            requests = answered - last_count
            others = (busy - last_busy) - (cpu - last_cpu) - (mine - last_mine)  # neither the server nor this load
            sample = Sample(
                round(now - started, 1), round(rss_mb(pid), 1), requests, round(requests / (now - last_at)),
                len(samples) >= warmup, round((cpu - last_cpu) / max(1, requests) * 1e6, 1),
                round(max(0.0, others) / ((now - last_at) * (os.cpu_count() or 1)), 2),
            )  # fmt: skip
            samples.append(sample)
            print(f"  {sample.at:7.1f} s  RSS {sample.rss_mb:7.1f} MB  {sample.per_second:7d} req/s"
                  f"  server CPU {sample.cpu_us:6.1f} us a request  other processes {sample.machine_busy:4.0%}"
                  f"{'' if sample.warm else '  (warm-up)'}", flush=True)  # fmt: skip
            last_at, last_count, last_cpu, last_busy, last_mine = now, answered, cpu, busy, mine
            if len(samples) >= warmup + measured:
                break
    finally:
        stop.set()
        for transport in transports:
            transport.close()
    if counts[1]:
        print(f"  ! {counts[1]} answers were not 302")
    return samples


def slope_per_30s(samples: list[Sample]) -> float | None:
    """Least-squares growth of RSS, MB per 30 s, over the samples."""
    if len(samples) < 2:
        return None
    xs, ys = [s.at for s in samples], [s.rss_mb for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 30 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else None


def serve(db: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env[f"{ENV_PREFIX}TRUSTED_PROXIES"] = "127.0.0.1"
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", db, "--host", HOST, "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit(f"server did not listen on {HOST}:{port} within {START_TIMEOUT:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL; the exit code, or None if it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  ! pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=10)
            return None
    return proc.returncode


def report(samples: list[Sample], clicks: int, uniques: int) -> dict[str, object]:
    warm = [s for s in samples if s.warm]
    growth = slope_per_30s(warm)
    first = warm[0].per_second if warm else 0
    ratios = [round(s.per_second / first, 3) if first else 0.0 for s in warm]
    print(f"\nRSS: {samples[0].rss_mb:.1f} MB after the first interval, "
          f"{warm[0].rss_mb if warm else 0:.1f} MB once warm, {samples[-1].rss_mb:.1f} MB at the end")  # fmt: skip
    if growth is not None:
        print(f"growth once warm: {growth:+.1f} MB per 30 s (target <= {TARGET_GROWTH_MB:.0f})")
    print("throughput of each interval / the first: " + " ".join(f"{r:.2f}" for r in ratios)
          + f" (target: within {TARGET_THROUGHPUT:.0%})")  # fmt: skip
    cpu_first = warm[0].cpu_us if warm else 0
    print("server CPU per request of each interval / the first: "
          + " ".join(f"{s.cpu_us / cpu_first:.2f}" if cpu_first else "-" for s in warm)
          + "  (what the server itself spends; throughput also moves with what else the machine runs:)")  # fmt: skip
    print("other processes' share of the CPUs in each interval: " + " ".join(f"{s.machine_busy:.0%}" for s in warm))
    print(f"clicks written: {clicks}, uniques {uniques}"
          f" ({uniques / clicks:.4%} of them: every visitor was new)" if clicks else "clicks written: 0")  # fmt: skip
    return {
        "samples": [asdict(s) for s in samples], "growth_mb_per_30s": growth, "throughput_ratios": ratios,
        "clicks": clicks, "uniques": uniques,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--duration", type=float, default=120.0, help="measured seconds, after the warm-up (120)")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds of load not counted (20)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between two samples (10)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    parser.add_argument("--user-agents", type=int, default=2000, help="distinct browsers (2000; 0: one a request)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clicktochat-soak-") as tmp:
        db, log = str(Path(tmp) / "soak.db"), Path(tmp) / "server.log"
        asyncio.run(make_links(db))
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        proc = serve(db, port, log)
        print(f"clicktochat serve, pid {proc.pid}, on {HOST}:{port}; {args.connections} connections, a new"
              f" visitor a request; {args.warmup:g} s warm-up, then {args.duration:g} s,"
              f" sampled every {args.interval:g} s")
        try:
            samples = asyncio.run(load(port, proc.pid, args))
        finally:
            code = stop(proc)
        if code not in (0, -signal.SIGTERM):  # uvicorn re-raises SIGTERM once it has shut down
            raise SystemExit(f"the server exited with {code}:\n{log.read_text()[-2000:]}")
        with sqlite3.connect(db) as conn:
            sql = "SELECT coalesce(sum(n), 0), coalesce(sum(uniques), 0) FROM clicks"
            clicks, uniques = conn.execute(sql).fetchone()
    result = report(samples, clicks, uniques)
    if not clicks or not any(s.requests for s in samples):
        raise SystemExit("the server answered or wrote nothing")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
