"""Benchmark of the redirect path: how many phone clicks per second one uvicorn worker of
clicktochat turns into a 302 to WhatsApp, next to a bare Starlette app that only returns the
same 302 (bench/bare_app.py). A benchmark, not a test: it prints figures and judges nothing
but the checks below.

    .venv/bin/python bench/redirect.py                          # 10 s per target, 1 round
    .venv/bin/python bench/redirect.py --duration 10 --rounds 2
    .venv/bin/python bench/redirect.py --help

What it does:
1. makes a temporary SQLite database with a short link (/s/bench) and a signed link (/c/...)
   to the same WhatsApp number and text, with the project's own Service;
2. for each round, starts in turn, one at a time: the bare app (/x), our server for /c/TOKEN
   and our server for /s/bench; each is a separate process with one uvicorn worker on a free
   127.0.0.1 port (httptools, no access log), pinned to the first CPU;
3. checks that the target answers an iPhone's GET with 302 and the expected Location, warms it
   up, then loads it from a separate process pinned to the second CPU, with keep-alive
   connections and an iPhone Safari User-Agent (phones get the 302; desktops get a page);
   `wrk` if it is installed (apt-get install -y wrk), else bench/loadgen.py;
4. stops the server with SIGTERM (ours writes pending clicks on shutdown) and, for ours, counts
   the clicks it wrote, to show that click recording was on while it was measured;
5. prints req/s, p50 and p99 per target (best run of the rounds) and the ratio ours/bare.

Only 127.0.0.1 is ever contacted; every process started is stopped, within bounded time.
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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
TARGET_RATIO = 0.8
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
        short = await service.create_link(to=PHONE, text=TEXT, slug=SLUG)
        signed = await service.create_link(to=PHONE, text=TEXT, short=False)
        assert short.short is not None and signed.signed is not None and signed.token is not None
        location = service.destination_url(short.short)
        assert location is not None and location == service.destination_url(signed.signed)
        return Links(signed.token, short.short.slug, location)
    finally:
        await service.close()


def count_clicks(db: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT link_kind, sum(n) FROM clicks GROUP BY link_kind").fetchall()
    return {"short": 0, "signed": 0} | dict(rows)


# -- processes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    label: str  # what the tables show
    path: str
    ours: bool
    link_kind: str | None  # clicks.link_kind that a request on this target records


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pin_to(cpu: int | None) -> Callable[[], None] | None:
    """A preexec_fn that keeps the child on one CPU (None: no pinning)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def clean_env() -> dict[str, str]:
    """No CLICKTOCHAT_* settings from the caller's shell (e.g. DEMO) leak into the servers."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}


@contextmanager
def server(argv: list[str], port: int, log_path: Path, cpu: int | None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it accepts connections, and stop it (SIGTERM, then wait,
    then SIGKILL) however the block ends."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
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


def load(tool: str, port: int, path: str, seconds: int, connections: int, cpu: int | None) -> Load:
    """Load one target from a separate process for `seconds`."""
    url = f"http://{HOST}:{port}{path}"
    if tool == "wrk":
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
        argv += ["-H", f"User-Agent: {IPHONE_SAFARI}", url]
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

    @property
    def cost(self) -> float:
        """Requests per CPU-second: less noisy than req/s on a shared, virtualised core."""
        return 1e6 / self.cpu_us if self.cpu_us else 0.0


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_target(
    target: Target,
    round_: int,
    links: Links,
    db: str,
    args: argparse.Namespace,
    tool: str,
    cpus: tuple[int | None, int | None],
    log_path: Path,
) -> Run:
    server_cpu, load_cpu = cpus
    port = free_port()
    before = count_clicks(db)
    with server(server_argv(target, db, port, links.location), port, log_path, server_cpu) as proc:
        verify(port, target.path, links.location)
        warm = load(tool, port, target.path, args.warmup, args.connections, load_cpu) if args.warmup > 0 else None
        cpu_before = process_cpu_seconds(proc.pid)
        measured = load(tool, port, target.path, args.duration, args.connections, load_cpu)
        cpu_used = process_cpu_seconds(proc.pid) - cpu_before
    answered = 1 + (warm.requests if warm else 0) + measured.requests
    clicks = None
    if target.link_kind is not None:
        clicks = count_clicks(db)[target.link_kind] - before[target.link_kind]
    return Run(target, round_, measured, answered, clicks, cpu_used / measured.requests * 1e6)


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


def report(targets: list[Target], runs: list[Run], how: str, connections: int) -> dict[str, float]:
    """The summary table, the ratios ours/bare, and clicks written against requests answered."""

    def runs_of(target: Target) -> list[Run]:
        return [r for r in runs if r.target == target]

    bare_target, our_targets = targets[0], targets[1:]
    print(f"\n{how} of {max(r.round for r in runs)} round(s), {connections} keep-alive connections, iPhone UA")
    print(f"{'target':<22}{'req/s':>10}{'p50':>11}{'p99':>11}   req/s per round")
    chosen: dict[Target, Load] = {}
    for target in targets:
        best = chosen[target] = pick(runs_of(target), how).load
        rounds = "  ".join(f"{r.load.rps:,.0f}" for r in runs_of(target))
        print(f"{target.label:<22}{best.rps:>10,.0f}{fmt_us(best.p50_us):>11}{fmt_us(best.p99_us):>11}   {rounds}")

    print(f"\n{'server CPU per request':<22}{'µs':>10}   per round (user + system time, all threads)")
    for target in targets:
        cpu = [r.cpu_us for r in runs_of(target)]
        print(f"{target.label:<22}{min(cpu):>10.1f}   {'  '.join(f'{c:.1f}' for c in cpu)}")

    print()
    for target in our_targets:
        cpu_ratio = min(r.cpu_us for r in runs_of(bare_target)) / min(r.cpu_us for r in runs_of(target))
        verdict = "ok" if cpu_ratio >= TARGET_RATIO else f"BELOW the {TARGET_RATIO} target"
        print(f"CPU-time ratio {target.label} / bare: {cpu_ratio:.2f} ({verdict}): bare's CPU per request / ours")

    print()
    ratios: dict[str, float] = {}
    for target in our_targets:
        ratio = ratios[target.label] = chosen[target].rps / chosen[bare_target].rps
        paired = [r.load.rps / b.load.rps for r, b in zip(runs_of(target), runs_of(bare_target), strict=True)]
        verdict = "ok" if ratio >= TARGET_RATIO else f"BELOW the {TARGET_RATIO} target"
        per_round = ", ".join(f"{p:.2f}" for p in paired)
        print(f"ratio {target.label} / bare: {ratio:.2f} ({verdict}); same-round ratios: {per_round}")

    print()
    for target in our_targets:
        answered = sum(r.answered for r in runs_of(target))
        clicks = sum(r.clicks or 0 for r in runs_of(target))
        note = "" if clicks >= answered else "  <- FEWER clicks than answered requests: clicks were lost"
        print(f"clicks written by {target.label}: {clicks:,} for {answered:,} requests answered{note}")
    print(
        "(answered: warm-up, check and measured requests; wrk does not count requests still in flight when it "
        "stops, which the server did record, so clicks may exceed answered by up to 2 x connections per run)"
    )
    errors = sum(r.load.errors for r in runs)
    if errors:
        print(f"\n! {errors} errors (socket errors or answers other than 302) during the measured runs")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="Seconds of measured load per run (default 10).")
    parser.add_argument("--warmup", type=int, default=2, help="Seconds of unmeasured load first (default 2).")
    parser.add_argument("--rounds", type=int, default=1, help="Rounds of bare, /c, /s (default 1).")
    parser.add_argument("--connections", type=int, default=50, help="Keep-alive connections (default 50).")
    parser.add_argument(
        "--pick",
        choices=["best", "median"],
        default="best",
        help="Which run of the rounds to report per target (default best).",
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="auto: wrk if installed, else bench/loadgen.py.",
    )
    parser.add_argument("--no-pin", action="store_true", help="Do not pin server and load to separate CPUs.")
    args = parser.parse_args()

    tool = args.loadgen
    if tool != "python" and shutil.which("wrk") is None:
        if tool == "wrk":
            raise SystemExit("wrk is not installed: apt-get install -y wrk")
        print(
            "wrk is not installed (apt-get install -y wrk); using bench/loadgen.py, which is slower than "
            "wrk and may limit the figures",
            file=sys.stderr,
        )
        tool = "python"
    elif tool == "auto":
        tool = "wrk"

    cpus_available = sorted(os.sched_getaffinity(0))
    cpus: tuple[int | None, int | None] = (None, None)
    if not args.no_pin and len(cpus_available) >= 2:
        cpus = (cpus_available[0], cpus_available[1])

    with tempfile.TemporaryDirectory(prefix="clicktochat-bench-") as tmp:
        db = str(Path(tmp) / "bench.db")
        links = asyncio.run(make_links(db))
        targets = [
            Target("bare /x", "/x", ours=False, link_kind=None),
            Target("ours /c/{token}", f"/c/{links.token}", ours=True, link_kind="signed"),
            Target(f"ours /s/{links.slug}", f"/s/{links.slug}", ours=True, link_kind="short"),
        ]
        print(
            f"{cpu_model()}, {os.cpu_count()} CPUs; server on CPU {cpus[0]}, load on CPU {cpus[1]}; "
            f"load generator: {tool}; Python {sys.version.split()[0]}"
        )
        print(f"302 Location: {links.location}")
        print(f"signed path: /c/{links.token} ({len(links.token)} characters of token)")
        runs: list[Run] = []
        log_path = Path(tmp) / "servers.log"
        try:
            for round_ in range(1, args.rounds + 1):
                for target in targets:
                    run = run_target(target, round_, links, db, args, tool, cpus, log_path)
                    runs.append(run)
                    clicks = "" if run.clicks is None else f", {run.clicks:,} clicks written"
                    print(
                        f"round {round_} {target.label:<20} {run.load.rps:>9,.0f} req/s  p50 "
                        f"{fmt_us(run.load.p50_us):>9}  p99 {fmt_us(run.load.p99_us):>9}  "
                        f"{run.load.requests:,} requests{clicks}",
                        flush=True,
                    )
        except BaseException:
            if log_path.exists():
                print(f"\nservers' output:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            raise
        report(targets, runs, args.pick, args.connections)
        if len(runs) > 3:
            spread = [
                statistics.pstdev([r.load.rps for r in runs if r.target == t])
                / statistics.mean([r.load.rps for r in runs if r.target == t])
                for t in targets
            ]
            print(
                "\nspread of req/s between rounds (stdev/mean): "
                + ", ".join(f"{t.label} {s:.1%}" for t, s in zip(targets, spread, strict=True))
            )


if __name__ == "__main__":
    main()
