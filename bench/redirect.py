"""Benchmark of the redirect path: how many phone clicks per second one uvicorn worker of
clicktochat turns into a 302 to WhatsApp, next to a bare Starlette app that only returns the
same 302 (bench/bare_app.py). A benchmark, not a test: it prints figures and judges nothing
but the checks below.

    .venv/bin/python bench/redirect.py                          # 10 s per target, 3 rounds, unpinned then pinned
    .venv/bin/python bench/redirect.py --duration 5 --rounds 5 --connections 32
    .venv/bin/python bench/redirect.py --visitors new           # every request a new visitor
    .venv/bin/python bench/redirect.py --compare /tmp/main/src  # also another checkout's server, same run
    .venv/bin/python bench/redirect.py --db postgresql://...    # also the same server on PostgreSQL, same run
    .venv/bin/python bench/redirect.py --db postgresql://... --instances 2  # and two servers on it at once
    .venv/bin/python bench/redirect.py --help

What it does:
1. makes a temporary SQLite database with a short link (/s/bench) and a signed link (/c/...)
   to the same WhatsApp number and text, with the project's own Service;
2. for each round, starts in turn, one at a time: the bare app (/x), our server for /c/TOKEN
   and our server for /s/bench (and, with --compare, the same two from another source tree);
   each is a separate process with one uvicorn worker on a free 127.0.0.1 port (httptools, no
   access log); the rounds run twice, first unpinned (server and load share the cores, as on
   a real machine), then with the server pinned to the first CPU and the load to the second;
3. checks that the target answers an iPhone's GET with 302 and the expected Location, warms it
   up (--warmup seconds of load, then a wait until the server has written a click for each
   request of the warm-up; with new visitors, the first sight of 2,000 user agents costs the
   writer seconds of robot checks, which belongs to no steady state), then loads it from a
   separate process with keep-alive connections and an iPhone Safari User-Agent (phones get
   the 302; desktops get a page); `wrk` if it is installed (apt-get install -y wrk), else
   bench/loadgen.py. With --visitors new (wrk only), every request is a
   new visitor: its own X-Forwarded-For, through a proxy our servers are told to trust
   (CLICKTOCHAT_TRUSTED_PROXIES=127.0.0.1), and an iPhone user agent from a pool of
   --user-agents strings (2,000 by default, as bench/soak.py: real clicks come from a limited
   set of browsers), or a new user agent every request with --user-agents 0 (the adversarial
   case, where every click's robot check runs on a string never seen);
4. stops the server with SIGTERM (ours writes pending clicks on shutdown) and, for ours, counts
   the clicks it wrote, to show that click recording was on while it was measured;
5. prints req/s, p50 and p99 per target (the median run of the rounds, or the best with
   --pick best), the ratio ours/bare of req/s and of p99, the server's CPU per request, and
   the part of it spent outside the event loop's thread (the click writer's worker thread
   and aiosqlite's: the writer's CPU per click).

With --db URL (an empty PostgreSQL database, which it writes the same two links into), each round
also serves /c and /s from the same server on PostgreSQL (`--db URL`), and prints the ratio of
each to the same path on SQLite; with --instances N as well, N servers on that database at once,
each loaded by its own load generator with its share of the connections (req/s summed, p50 and
p99 the worst of them; pinning does not apply to them: they share the CPUs).

Only 127.0.0.1 is ever contacted (and the --db server); every process started is stopped, within
bounded time.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from clicktochat import database
from clicktochat.errors import InvalidInput
from clicktochat.service import Service
from clicktochat.settings import ENV_PREFIX, Settings

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
PHONE = "+39 347 123 4567"
TEXT = "Ciao! 👋 Vorrei prenotare un tavolo per due stasera alle 20:30 🍕🍷"
SLUG = "bench"
TARGET_RATIO = {"same": 1.0, "new": 0.75}  # ours / bare, req/s, per --visitors
TARGET_P99 = 1.5  # ours / bare, p99, at most
TARGET_POSTGRES = 0.9  # PostgreSQL / SQLite, req/s, at least (issue 13)
NEW_VISITORS_LUA = """
-- Every request a new visitor: its own address (X-Forwarded-For), and an iPhone user agent from a
-- pool (--user-agents: bench/soak.py's 2,000 strings by default), or a new one every request (0).
local n, pool = 0, __POOL__
request = function()
  n = n + 1
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  local ua
  if pool > 0 then
    local i = n % pool
    ua = string.format(
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 "
        .. "(KHTML, like Gecko) Version/17.%d Mobile/15E%d Safari/604.1", i % 7, i % 7, 100 + i)
  else
    ua = string.format(
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 "
        .. "(KHTML, like Gecko) Version/17.%d Mobile/15E%d Safari/604.1", n % 7, n % 5, n)
  end
  return wrk.format(nil, nil, {["Host"] = wrk.headers["Host"], ["User-Agent"] = ua, ["X-Forwarded-For"] = ip})
end
"""
STOP_TIMEOUT = 30.0  # seconds for a server to exit after SIGTERM before it is killed
START_TIMEOUT = 30.0


# -- the links --------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    token: str
    slug: str
    location: str  # where both links send a phone


async def make_links(db: str) -> Links:
    """A short and a signed link to the same chat, made by the project's own code."""
    service = await Service.open(Settings(db=db, base_url=f"http://{HOST}"))
    try:
        try:
            short = await service.create_link(to=PHONE, text=TEXT, slug=SLUG)
        except InvalidInput as exc:
            raise SystemExit(f"{database.redacted(db)}: {exc.errors[0].reason}: give a new, empty database") from None
        signed = await service.create_link(to=PHONE, text=TEXT, short=False)
        assert short.short is not None and signed.signed is not None and signed.token is not None
        location = service.destination_url(short.short)
        assert location is not None and location == service.destination_url(signed.signed)
        return Links(signed.token, short.short.slug, location)
    finally:
        await service.close()


def connect(db: str) -> closing[sqlite3.Connection]:
    """The SQLite file, or the PostgreSQL database (with SQLite's `?` placeholders)."""
    return closing(database.connect(db) if database.is_postgres(db) else sqlite3.connect(db))


def count_clicks(db: str) -> dict[str, int]:
    with connect(db) as conn:
        rows = conn.execute("SELECT link_kind, sum(n) FROM clicks GROUP BY link_kind").fetchall()
    return {"short": 0, "signed": 0} | dict(rows)


def count_visitors(db: str, link_kind: str) -> int:
    """Distinct visitor hashes among the clicks written (all runs so far)."""
    with connect(db) as conn:
        row = conn.execute("SELECT count(DISTINCT visitor) FROM clicks WHERE link_kind = ?", (link_kind,)).fetchone()
    return int(row[0])


# -- processes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str  # what the tables show
    path: str
    ours: bool
    link_kind: str | None  # clicks.link_kind that a request on this target records
    src: str | None = None  # another source tree's src/ to serve ours from (--compare)
    db: str | None = None  # the database it serves (--db): None, the temporary SQLite file
    instances: int = 1  # servers on `db` at once, each loaded apart (--instances)
    same_as: str | None = None  # the label of the same path on SQLite, for the ratio


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pin_to(cpu: int | None) -> Callable[[], None] | None:
    """A preexec_fn that keeps the child on one CPU (None: no pinning)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """No CLICKTOCHAT_* settings from the caller's shell (e.g. DEMO) leak into the servers."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)} | (extra or {})


@contextmanager
def server(
    argv: list[str], port: int, log_path: Path, cpu: int | None, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it accepts connections, and stop it (SIGTERM, then wait,
    then SIGKILL) however the block ends."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(env),
            preexec_fn=pin_to(cpu),
            start_new_session=True,  # Ctrl-C reaches us, and we stop it
        )
    try:
        wait_until_listening(proc, port, log_path)
        yield proc
    finally:
        stop(proc)


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    # uvicorn runs the lifespan startup before it binds: accepting means ready.
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not listen on {HOST}:{port} within {START_TIMEOUT:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"  ! pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=10)


def server_argv(target: Target, db: str, port: int, location: str) -> list[str]:
    if target.ours:  # click recording is on: it is not a setting
        flags = f"--host {HOST} --port {port} --log-level warning".split()
        return [sys.executable, "-m", "clicktochat", "serve", "--db", db, *flags]
    return [sys.executable, str(BENCH_DIR / "bare_app.py"), "--port", str(port), "--location", location]


def verify(port: int, path: str, location: str) -> None:
    """One iPhone GET: it must be a 302 to `location`."""
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers={"User-Agent": IPHONE_SAFARI})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    got = response.getheader("location")
    if response.status != 302 or got != location:
        raise SystemExit(f"GET {path}: expected 302 to {location}, got {response.status} to {got}")


# -- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    rps: float
    p50_us: float
    p99_us: float
    errors: int  # socket errors, non-2xx/3xx answers, broken connections


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _wrk_time(text: str, pattern: str) -> float:
    match = re.search(pattern + r"\s*([\d.]+)(us|ms|s|m|h)\b", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {pattern!r} in wrk output:\n{text}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(text: str) -> Load:
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unexpected wrk output:\n{text}")
    requests, seconds = int(match[1]), float(match[2]) * _UNITS[match[3]] / 1e6
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non_3xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return Load(
        requests,
        seconds,
        requests / seconds,
        _wrk_time(text, r"^\s*50%"),
        _wrk_time(text, r"^\s*99%"),
        errors + (int(non_3xx[1]) if non_3xx else 0),
    )


def load(
    tool: str, port: int, path: str, seconds: int, connections: int, cpu: int | None, script: str | None = None
) -> Load:
    """Load one target from a separate process for `seconds` (`script`: wrk's Lua, --visitors new)."""
    url = f"http://{HOST}:{port}{path}"
    if tool == "wrk":
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
        argv += ["-H", f"User-Agent: {IPHONE_SAFARI}", *(["-s", script] if script else []), url]
    else:
        argv = [sys.executable, str(BENCH_DIR / "loadgen.py"), "--host", HOST, "--port", str(port), "--path", path]
        argv += ["--user-agent", IPHONE_SAFARI, "--connections", str(connections), "--duration", str(seconds)]
    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=pin_to(cpu), timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = parse_wrk(done.stdout) if tool == "wrk" else parse_loadgen(done.stdout)
    if result.requests == 0:
        raise SystemExit(f"{argv[0]} completed no request on {path}:\n{done.stdout}\n{done.stderr}")
    return result


def parse_loadgen(text: str) -> Load:
    """bench/loadgen.py's JSON; any status but 302 counts as an error."""
    out = json.loads(text)
    statuses = {int(k): v for k, v in out["statuses"].items()}
    return Load(
        out["requests"],
        out["seconds"],
        out["requests_per_second"],
        out["p50_us"] or 0.0,
        out["p99_us"] or 0.0,
        out["errors"] + sum(n for status, n in statuses.items() if status != 302),
    )


# -- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    target: Target
    round: int
    load: Load
    answered: int  # requests the load generators completed, warm-up and check included
    clicks: int | None  # clicks our server wrote for this run (None for the bare app)
    cpu_us: float  # the server's CPU time (all threads, user + system) per measured request
    off_loop_us: float = 0.0  # of which outside the event loop's thread: the click writer's threads
    pinned: bool = False

    @property
    def cost(self) -> float:
        """Requests per CPU-second: less noisy than req/s on a shared, virtualised core."""
        return 1e6 / self.cpu_us if self.cpu_us else 0.0


def process_cpu_seconds(pid: int, task: int | None = None) -> float:
    """utime + stime of a process, all its threads, from /proc (Linux); or of one thread (`task`)."""
    stat = Path(f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int) -> tuple[float, float]:
    """CPU seconds of the whole process and of its main thread (the event loop's)."""
    return process_cpu_seconds(pid), process_cpu_seconds(pid, pid)


def settle(db: str, link_kind: str, before: int, requests: int, limit: float = 60.0) -> float:
    """Wait until the servers have written a click for each of `requests` (the check and the
    warm-up): with new visitors, a pool of user agents seen for the first time takes the writer
    seconds of robot checks, which must not fall in the measured window. At most `limit`
    seconds (then it says so); returns the seconds waited."""
    started = time.monotonic()
    while count_clicks(db)[link_kind] - before < requests:
        if time.monotonic() - started > limit:
            print(f"  (the warm-up's clicks were still not all written after {limit:.0f} s)", flush=True)
            break
        time.sleep(0.1)
    return time.monotonic() - started


def run_target(
    target: Target,
    round_: int,
    links: Links,
    db: str,
    args: argparse.Namespace,
    tool: str,
    cpus: tuple[int | None, int | None],
    log_path: Path,
    script: str | None = None,
) -> Run:
    server_cpu, load_cpu = cpus
    db = target.db or db
    if target.instances > 1:  # they share the CPUs with each other and with their loads
        server_cpu = load_cpu = None
    ports = [free_port() for _ in range(target.instances)]
    before = count_clicks(db)
    env: dict[str, str] = {}
    if target.ours:
        env |= {ENV_PREFIX + name.upper(): value for name, value in (pair.split("=", 1) for pair in args.setting)}
    if target.ours and script:
        env[f"{ENV_PREFIX}TRUSTED_PROXIES"] = HOST  # wrk is the proxy whose X-Forwarded-For is believed
    if target.src:
        env["PYTHONPATH"] = target.src
    share = max(1, args.connections // len(ports))
    with ExitStack() as stack:
        procs = [stack.enter_context(server(server_argv(target, db, port, links.location), port, log_path, server_cpu,
                                            env)) for port in ports]  # fmt: skip
        for port in ports:
            verify(port, target.path, links.location)
        warm = None
        if args.warmup > 0:
            warm = loads(tool, ports, target.path, args.warmup, share, load_cpu, script)
            if target.link_kind is not None:
                settle(db, target.link_kind, before[target.link_kind], len(ports) + warm.requests)
        cpu_before = [cpu_split(proc.pid) for proc in procs]
        measured = loads(tool, ports, target.path, args.duration, share, load_cpu, script)
        cpu_after = [cpu_split(proc.pid) for proc in procs]
    answered = len(ports) + (warm.requests if warm else 0) + measured.requests
    clicks = None
    if target.link_kind is not None:
        clicks = count_clicks(db)[target.link_kind] - before[target.link_kind]
    total = sum(after[0] - start[0] for start, after in zip(cpu_before, cpu_after, strict=True))
    loop = sum(after[1] - start[1] for start, after in zip(cpu_before, cpu_after, strict=True))
    per = 1e6 / measured.requests
    return Run(target, round_, measured, answered, clicks, total * per, (total - loop) * per, server_cpu is not None)


def loads(tool: str, ports: list[int], path: str, seconds: int, connections: int, cpu: int | None,
          script: str | None) -> Load:  # fmt: skip
    """`load` on each port at once, from a load generator each: requests and req/s summed, the
    latencies the worst of them."""
    if len(ports) == 1:
        return load(tool, ports[0], path, seconds, connections, cpu, script)
    found: dict[int, Load] = {}
    failed: list[BaseException] = []

    def one(port: int) -> None:
        try:
            found[port] = load(tool, port, path, seconds, connections, cpu, script)
        except BaseException as exc:  # SystemExit included: raised again below, on the main thread
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    each = list(found.values())
    return Load(sum(x.requests for x in each), max(x.seconds for x in each), sum(x.rps for x in each),
                max(x.p50_us for x in each), max(x.p99_us for x in each), sum(x.errors for x in each))  # fmt: skip


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def fmt_us(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def pick(runs: list[Run], how: str) -> Run:
    """The best run (most req/s), or the run with the (lower) median req/s."""
    ordered = sorted(runs, key=lambda r: r.load.rps)
    return ordered[-1] if how == "best" else ordered[(len(ordered) - 1) // 2]


def report(
    targets: list[Target],
    runs: list[Run],
    how: str,
    connections: int,
    visitors: str,
    title: str,
    db: str | None = None,
    user_agents: int = 0,
) -> None:
    """The summary table, the ratios ours/bare, and clicks written against requests answered."""

    def runs_of(target: Target) -> list[Run]:
        return [r for r in runs if r.target == target]

    bare_target, our_targets = targets[0], targets[1:]
    who = "one visitor"
    if visitors == "new":
        pool = f"{user_agents:,} user agents" if user_agents else "a new user agent every request"
        who = f"every request a new visitor, {pool}"
    print(f"\n== {title}: {how} of {max(r.round for r in runs)} round(s), {connections} connections, iPhone UA, {who}")
    print(f"{'target':<26}{'req/s':>10}{'p50':>11}{'p99':>11}   req/s per round")
    chosen: dict[Target, Load] = {}
    for target in targets:
        best = chosen[target] = pick(runs_of(target), how).load
        rounds = "  ".join(f"{r.load.rps:,.0f}" for r in runs_of(target))
        print(f"{target.label:<26}{best.rps:>10,.0f}{fmt_us(best.p50_us):>11}{fmt_us(best.p99_us):>11}   {rounds}")

    print(f"\n{'server CPU per request':<26}{'µs':>10}{'off loop':>10}   per round (user + system, all threads)")
    for target in targets:
        cpu = sorted(runs_of(target), key=lambda r: r.cpu_us)
        median = cpu[(len(cpu) - 1) // 2]
        rounds = "  ".join(f"{r.cpu_us:.1f}" for r in runs_of(target))
        print(f"{target.label:<26}{median.cpu_us:>10.1f}{median.off_loop_us:>10.1f}   {rounds}")
    print("(median; off loop: the threads other than the event loop's, i.e. the click writer's worker and aiosqlite)")

    print()
    target_ratio = TARGET_RATIO[visitors]
    for target in our_targets:
        ratio = chosen[target].rps / chosen[bare_target].rps
        p99 = chosen[target].p99_us / chosen[bare_target].p99_us
        paired = [r.load.rps / b.load.rps for r, b in zip(runs_of(target), runs_of(bare_target), strict=True)]
        paired_p99 = [r.load.p99_us / b.load.p99_us for r, b in zip(runs_of(target), runs_of(bare_target), strict=True)]
        verdict = "ok" if ratio >= target_ratio else f"BELOW the {target_ratio} target"
        p99_verdict = "ok" if p99 <= TARGET_P99 else f"ABOVE the {TARGET_P99} target"
        print(
            f"{target.label} / bare: req/s {ratio:.2f} ({verdict}), p99 {p99:.2f} ({p99_verdict}); "
            f"same-round req/s {', '.join(f'{x:.2f}' for x in paired)}; p99 {', '.join(f'{x:.2f}' for x in paired_p99)}"
        )

    by_label = {target.label: target for target in targets}
    compared = [target for target in our_targets if target.same_as in by_label]
    if compared:
        print()
    for target in compared:
        sqlite = by_label[str(target.same_as)]
        ratio = chosen[target].rps / chosen[sqlite].rps
        paired = [r.load.rps / b.load.rps for r, b in zip(runs_of(target), runs_of(sqlite), strict=True)]
        verdict = "ok" if ratio >= TARGET_POSTGRES or target.instances > 1 else f"BELOW the {TARGET_POSTGRES} target"
        print(f"{target.label} / {sqlite.label}: req/s {ratio:.2f} ({verdict}), p99 "
              f"{chosen[target].p99_us / chosen[sqlite].p99_us:.2f}; same-round req/s "
              f"{', '.join(f'{x:.2f}' for x in paired)}")  # fmt: skip

    print()
    for target in our_targets:
        answered = sum(r.answered for r in runs_of(target))
        clicks = sum(r.clicks or 0 for r in runs_of(target))
        note = "" if clicks >= answered else "  <- FEWER clicks than answered requests: clicks were lost"
        print(f"clicks written by {target.label}: {clicks:,} for {answered:,} requests answered{note}")
    if db is not None:
        for kind in sorted({t.link_kind for t in our_targets if t.link_kind}):
            print(f"distinct visitors in the {kind} clicks written so far: {count_visitors(db, kind):,}")
    errors = sum(r.load.errors for r in runs)
    if errors:
        print(f"\n! {errors} errors (socket errors or answers other than 302) during the measured runs")
    if len(runs) > len(targets):
        spread = [
            statistics.pstdev([r.load.rps for r in runs_of(t)]) / statistics.mean([r.load.rps for r in runs_of(t)])
            for t in targets
        ]
        print(
            "spread of req/s between rounds (stdev/mean): "
            + ", ".join(f"{t.label} {s:.1%}" for t, s in zip(targets, spread, strict=True))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="Seconds of measured load per run (default 10).")
    parser.add_argument("--warmup", type=int, default=2, help="Seconds of unmeasured load first (default 2).")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of bare, /c, /s per pinning (default 3).")
    parser.add_argument("--connections", type=int, default=32, help="Keep-alive connections (default 32).")
    parser.add_argument(
        "--pick",
        choices=["best", "median"],
        default="median",
        help="Which run of the rounds to report per target (default median).",
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto: wrk if installed, else bench/loadgen.py.",
    )
    parser.add_argument(
        "--pin",
        choices=["both", "no", "yes"],
        default="both",
        help="Unpinned rounds, then rounds with server and load on separate CPUs (both, the default), or one of them.",
    )
    parser.add_argument("--no-pin", action="store_true", help="The same as --pin no.")
    parser.add_argument(
        "--visitors",
        choices=["same", "new"],
        default="same",
        help="same: every request the same iPhone; new: every request a new visitor (wrk only).",
    )
    parser.add_argument(
        "--user-agents",
        type=int,
        default=2000,
        help="With --visitors new: distinct iPhone user agents, as bench/soak.py (default 2000; 0: a new one every "
        "request, the adversarial case).",
    )
    parser.add_argument(
        "--compare",
        metavar="SRC",
        help="Also serve /c and /s from this source tree's src/ (e.g. a checkout of main), in the same rounds.",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="Also serve /c and /s from this PostgreSQL database (a new, empty one: the links are written into it), "
        "in the same rounds, against the same paths on SQLite.",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="With --db: also N servers on that database at once, each loaded apart (default 1: not run).",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A setting for our servers (not bare), e.g. --setting FLUSH_INTERVAL=5 to see what a setting costs; "
        "repeatable. NAME is a CLICKTOCHAT_ setting's name without the prefix.",
    )
    args = parser.parse_args()
    if any("=" not in pair for pair in args.setting):
        raise SystemExit("--setting takes NAME=VALUE, e.g. FLUSH_INTERVAL=5")
    if args.db and not database.is_postgres(args.db):
        raise SystemExit("--db takes a PostgreSQL URL (postgresql://...): the SQLite file is the bench's own")
    if args.instances > 1 and not args.db:
        raise SystemExit("--instances needs --db: several servers share a PostgreSQL database")

    tool = args.loadgen
    if tool != "python" and shutil.which("wrk") is None:
        if tool == "wrk" or args.visitors == "new":
            raise SystemExit("wrk is not installed: apt-get install -y wrk")
        print(
            "wrk is not installed (apt-get install -y wrk); using bench/loadgen.py, which is slower than "
            "wrk and may limit the figures",
            file=sys.stderr,
        )
        tool = "python"
    elif tool == "auto":
        tool = "wrk"
    if args.visitors == "new" and tool != "wrk":
        raise SystemExit("--visitors new needs wrk")

    cpus_available = sorted(os.sched_getaffinity(0))
    pinning = "no" if args.no_pin else args.pin
    modes: list[tuple[str, tuple[int | None, int | None]]] = []
    if pinning in ("both", "no"):
        modes.append(("unpinned", (None, None)))
    if pinning in ("both", "yes"):
        if len(cpus_available) >= 2:
            modes.append((f"pinned (server CPU {cpus_available[0]}, load CPU {cpus_available[1]})",
                          (cpus_available[0], cpus_available[1])))  # fmt: skip
        else:
            print("fewer than 2 CPUs: no pinned rounds", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="clicktochat-bench-") as tmp:
        db = str(Path(tmp) / "bench.db")
        links = asyncio.run(make_links(db))
        targets = [
            Target("bare /x", "/x", ours=False, link_kind=None),
            Target("ours /c/{token}", f"/c/{links.token}", ours=True, link_kind="signed"),
            Target(f"ours /s/{links.slug}", f"/s/{links.slug}", ours=True, link_kind="short"),
        ]
        if args.compare:
            src = str(Path(args.compare).resolve())
            targets += [
                Target("compared /c/{token}", f"/c/{links.token}", ours=True, link_kind="signed", src=src),
                Target(f"compared /s/{links.slug}", f"/s/{links.slug}", ours=True, link_kind="short", src=src),
            ]
        if args.db:
            on_postgres = asyncio.run(make_links(args.db))
            shown = "PostgreSQL"
            for target in targets[1:3]:
                path = f"/c/{on_postgres.token}" if target.link_kind == "signed" else f"/s/{on_postgres.slug}"
                targets.append(Target(f"{target.label.split()[1]} on {shown}", path, ours=True,
                                      link_kind=target.link_kind, db=args.db, same_as=target.label))  # fmt: skip
            if args.instances > 1:
                for target in targets[1:3]:
                    path = f"/c/{on_postgres.token}" if target.link_kind == "signed" else f"/s/{on_postgres.slug}"
                    targets.append(Target(f"{target.label.split()[1]} x{args.instances} on {shown}", path, ours=True,
                                          link_kind=target.link_kind, db=args.db, instances=args.instances,
                                          same_as=f"{target.label.split()[1]} on {shown}"))  # fmt: skip
            print(f"PostgreSQL: {database.redacted(args.db)}")
        script = None
        if args.visitors == "new":
            script = str(Path(tmp) / "new_visitors.lua")
            Path(script).write_text(NEW_VISITORS_LUA.replace("__POOL__", str(args.user_agents)))
        print(
            f"{cpu_model()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; "
            f"load generator: {tool}; Python {sys.version.split()[0]}"
        )
        print(f"302 Location: {links.location}")
        print(f"signed path: /c/{links.token} ({len(links.token)} characters of token)")
        log_path = Path(tmp) / "servers.log"
        results: list[tuple[str, list[Run]]] = []
        try:
            for mode, cpus in modes:
                runs: list[Run] = []
                for round_ in range(1, args.rounds + 1):
                    for target in targets:
                        run = run_target(target, round_, links, db, args, tool, cpus, log_path, script)
                        runs.append(run)
                        clicks = "" if run.clicks is None else f", {run.clicks:,} clicks written"
                        print(
                            f"{mode.split()[0]} round {round_} {target.label:<24} {run.load.rps:>9,.0f} req/s  p50 "
                            f"{fmt_us(run.load.p50_us):>9}  p99 {fmt_us(run.load.p99_us):>9}  "
                            f"{run.load.requests:,} requests{clicks}",
                            flush=True,
                        )
                results.append((mode, runs))
        except BaseException:
            if log_path.exists():
                print(f"\nservers' output:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            raise
        for mode, runs in results:
            report(targets, runs, args.pick, args.connections, args.visitors, mode, db, args.user_agents)
        print(
            "\n(answered: warm-up, check and measured requests; wrk does not count requests still in flight when it "
            "stops, which the server did record, so clicks may exceed answered by up to 2 x connections per run)"
        )
        print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
