"""Benchmark of the WhatsApp webhook path: how many signed webhook bodies of 100 changes a second
one `clicktochat serve` process takes (checks, stores durably and answers 200: what Meta waits
for) and, apart, applies (messages and statuses written by the processor after the 200), next
to a bare Starlette app that only reads each body and checks its signature
(bench/bare_webhook.py), in the same run. A benchmark, not a test: it prints figures and judges
nothing but the checks below.

    .venv/bin/python bench/webhooks.py                       # 3 rounds, unpinned and pinned
    .venv/bin/python bench/webhooks.py --rounds 1 --bodies 100 --duration 5
    .venv/bin/python bench/webhooks.py --help

What it does:
1. makes the load once: `--bodies` bodies (default 300), each a batch of 100 changes as Meta
   sends them (one entry, 100 `messages` changes), about 70 % inbound text messages from
   `--customers` people (default 5,000) and 30 % statuses (sent, delivered, read) of outbound
   messages, in the order they happened; 2 % of the messages come again later (Meta redelivers),
   and 5 % of the bodies are posted a second time byte for byte, later; every body signed with
   the app secret;
2. for each setting (unpinned: server and load generator share both cores; pinned: server on
   CPU 0, load generator on CPU 1) and each round, in turn:
   - bare: the baseline app (bench/bare_webhook.py) on a free 127.0.0.1 port, loaded until
     `--duration` seconds have passed: the load once, then again and again, each pass's bodies
     made new (`variant`: spaces after the first brace, signed again as they go, so bare and
     ours pay the same client cost); bodies/s = 200s answered / time;
   - bare+store: the same app with `--store`: each body also written to a SQLite file (WAL,
     synchronous=NORMAL) before the 200, one INSERT per body: a second baseline, the least a
     receiver that is durable before it acknowledges can do in Python with SQLite;
   - ours (the headline, "taken"): a fresh database with a business and its number connected,
     `clicktochat serve` on a free port, loaded exactly as bare; after it stops (and anything it
     left in its journal, `<db>-webhooks/`, is moved in, as the next start would), every body it
     acknowledged must be in `webhook_events`, once (or it says how many were lost or doubled);
   - applied: again a fresh database and server, the load posted once; the clock stops when
     the processor has applied the last body (`webhook_events.processed_at`, polled every
     20 ms, read-only); then counts what was written: 0 messages, statuses or conversations
     lost or doubled, or it says so;
3. prints per round, then the medians and the best of the rounds: ours / bare (the headline;
   target >= 0.5), bare+store / bare and ours / bare+store, and applied / bare.

The load generator is a small asyncio client in this process: `--connections` keep-alive
connections (default 8), each sending one pre-built request, reading the whole answer, then
sending the next. Only 127.0.0.1 is contacted; every server started is stopped, in bounded time.
Each measurement stops by itself: bare after `--duration` s, ours when the load is applied or
after `--timeout` s (then it reports what was left).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clicktochat.graph_standin import StandInNumber
from clicktochat.journal import drain_file
from clicktochat.payloads import batch, encode, inbound_message, new_wamid, sign, status_update, webhook_body
from clicktochat.service import Service
from clicktochat.settings import ENV_PREFIX, Settings

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
TARGET_RATIO = 0.5
CHANGES_PER_BODY = 100
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
NUMBER = StandInNumber(
    phone_number_id="106540352242922", waba_id="102290129340398", display_phone_number="+39 347 000 1111",
    verified_name="Pasticceria Dolce Vita", access_token="EAAG" + "x" * 40, app_secret="a" * 32,
)  # fmt: skip
TEXTS = [
    "Ciao! Vorrei prenotare un tavolo per due stasera alle 20:30",
    "Buongiorno, avete ancora la torta al pistacchio? Passo verso le 17",
    "Grazie mille, a domani!",
    "Quanto costa la consegna a domicilio in zona Navigli?",
    "Perfetto 👍",
    "Posso pagare con carta quando ritiro?",
]


# -- the load -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    requests: list[bytes]  # whole HTTP requests, duplicates included, in sending order
    bodies: int  # distinct bodies
    messages: int  # distinct inbound messages
    statuses: int  # distinct (wamid, status) pairs
    customers: int  # distinct customers who wrote
    changes: int  # changes posted, duplicates included
    first: list[int] = field(default_factory=list)  # per request, the position of the first with its bytes


def change(value: dict[str, Any]) -> dict[str, Any]:
    return webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                        display_phone_number=NUMBER.display_phone_number, value=value)  # fmt: skip


def make_load(bodies: int, customers: int, seed: int = 9) -> Load:
    """`bodies` distinct bodies of CHANGES_PER_BODY changes (~70 % messages, ~30 % statuses, 2 %
    of the messages again later), then 5 % of the bodies posted a second time, later."""
    rng = random.Random(seed)
    now = int(time.time())
    people = [f"39{rng.randrange(3_200_000_000, 3_499_999_999)}" for _ in range(customers)]
    total = bodies * CHANGES_PER_BODY
    ordered: list[dict[str, Any]] = []  # changes in the order things happened, as Meta sends them
    messages = statuses = 0
    writers: set[str] = set()
    outbound: list[tuple[str, str, int]] = []  # (wamid, recipient, statuses reported so far)
    for n in range(total - total * 2 // 100):
        if rng.random() < 0.7 or not outbound:
            wa_id = rng.choice(people)
            writers.add(wa_id)
            messages += 1
            ordered.append(change(inbound_message(
                wamid=new_wamid(wa_id), timestamp=now - 3600 + n // 100, wa_id=wa_id, user_id=None,
                name=f"Cliente {wa_id[-4:]}", text=rng.choice(TEXTS),
            )))  # fmt: skip
            if rng.random() < 0.5:  # the business answers about half of them: statuses to come
                outbound.append((new_wamid(wa_id, outbound=True), wa_id, 0))
        else:
            i = rng.randrange(len(outbound))
            wamid, wa_id, reported = outbound[i]
            status = ("sent", "delivered", "read")[reported]
            statuses += 1
            ordered.append(change(status_update(wamid=wamid, status=status, timestamp=now - 3600 + n // 100,
                                                recipient_id=wa_id)))  # fmt: skip
            if reported == 2:
                outbound[i] = outbound[-1]
                outbound.pop()
            else:
                outbound[i] = (wamid, wa_id, reported + 1)
    # Meta delivers some messages again, later: each repeat goes in after its first delivery.
    firsts = [i for i, c in enumerate(ordered) if "messages" in c["entry"][0]["changes"][0]["value"]]
    for i in sorted(rng.sample(firsts, total - len(ordered)), reverse=True):
        ordered.insert(rng.randrange(i + 1, len(ordered) + 1), ordered[i])
    raw = [encode(batch(ordered[i : i + CHANGES_PER_BODY])) for i in range(0, len(ordered), CHANGES_PER_BODY)]
    for i in sorted(rng.sample(range(len(raw)), len(raw) * 5 // 100), reverse=True):
        raw.insert(rng.randrange(i + 1, len(raw) + 1), raw[i])  # and some bodies again, byte for byte, later
    seen: dict[bytes, int] = {}
    first = [seen.setdefault(body, i) for i, body in enumerate(raw)]
    return Load([request(body) for body in raw], bodies, messages, statuses, len(writers),
                len(raw) * CHANGES_PER_BODY, first)  # fmt: skip



def request(body: bytes) -> bytes:
    head = (
        f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: facebookexternalua\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Hub-Signature-256: {sign(body, NUMBER.app_secret)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


# -- the load generator ---------------------------------------------------------------------


@dataclass
class Sent:
    ok: int = 0
    other: int = 0  # answers other than 200, and broken connections
    acknowledged: set[tuple[int, int]] = field(default_factory=set)  # (pass, position) of each 200


def variant(request_: bytes, n: int) -> bytes:
    """The request's body made distinct without changing what it says (`n` spaces after its
    first brace), signed again: to Meta's receiver a new body to store, to the processor the
    same messages again (redeliveries, applied once)."""
    body = request_.split(b"\r\n\r\n", 1)[1]
    return request(b"{" + b" " * n + body[1:])


async def post_all(port: int, requests: list[bytes], connections: int, repeat_until: float | None) -> Sent:
    """Send every request once (or the list again and again until `repeat_until`, a
    time.perf_counter() value: each pass after the first sends `variant`s, every body a new
    one, built and signed as they go) over `connections` keep-alive connections."""
    sent = Sent()
    position = passes = 0

    def next_request() -> tuple[tuple[int, int], bytes] | None:
        nonlocal position, passes
        if position == len(requests):
            if repeat_until is None or time.perf_counter() >= repeat_until:
                return None
            position = 0
            passes += 1
        position += 1
        req = requests[position - 1] if passes == 0 else variant(requests[position - 1], passes)
        return (passes, position - 1), req

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(HOST, port, limit=2**20)
        try:
            while (item := next_request()) is not None:
                key, req = item
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200 "):
                    sent.ok += 1
                    sent.acknowledged.add(key)
                else:
                    sent.other += 1
        except (OSError, asyncio.IncompleteReadError):
            sent.other += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return sent


# -- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pin_to(cpu: int | None) -> Callable[[], None] | None:
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def clean_env() -> dict[str, str]:
    """No CLICKTOCHAT_* settings from the caller's shell leak into the servers."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}


@contextlib.contextmanager
def server(argv: list[str], port: int, log_path: Path, cpu: int | None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it accepts connections, stop it (SIGTERM, then SIGKILL)."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean_env(),
                                preexec_fn=pin_to(cpu), start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not listen on {HOST}:{port} in {START_TIMEOUT:.0f} s") from None
                time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


async def make_db(db: str) -> None:
    """A business and its number, connected without asking Meta (the Graph check is not measured)."""
    service = await Service.open(Settings(db=db, base_url=f"http://{HOST}"))
    try:
        business = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
        await service.whatsapp.chats.connect_number(
            business.id, NUMBER.phone_number_id, NUMBER.waba_id, "393470001111", NUMBER.verified_name,
            NUMBER.access_token, NUMBER.app_secret, hashlib.sha256(b"bench-verify").hexdigest(), int(time.time()),
        )  # fmt: skip
    finally:
        await service.close()


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Run:
    target: str  # "bare", "ours" (taken: stored and acknowledged) or "applied"
    setting: str  # "unpinned" or "pinned"
    round: int
    posted: int  # bodies answered 200
    errors: int
    seconds: float
    bodies_per_second: float
    left: int = 0  # ours: stored bodies not applied when the clock stopped
    lost: int = 0  # ours: messages + statuses sent but not written
    doubled: int = 0  # ours: written more than once
    server_cpu: float = 0.0  # CPU seconds of the server process during the measurement


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_bare(load: Load, args: argparse.Namespace, setting: str, round_: int, cpus: tuple[int | None, int | None],
             log_path: Path, store: Path | None = None) -> Run:  # fmt: skip
    settle()
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "bare_webhook.py"), "--port", str(port), "--secret", NUMBER.app_secret]
    argv += ["--store", str(store)] if store else []
    with server(argv, port, log_path, cpus[0]) as proc:
        asyncio.run(post_all(port, load.requests[:20], args.connections, None))  # warm-up
        cpu = process_cpu_seconds(proc.pid)
        started = time.perf_counter()
        sent = asyncio.run(post_all(port, load.requests, args.connections, started + args.duration))
        seconds = time.perf_counter() - started
        cpu = process_cpu_seconds(proc.pid) - cpu
    if store:
        remove(str(store))
    return Run("bare+store" if store else "bare", setting, round_, sent.ok, sent.other, seconds, sent.ok / seconds,
               server_cpu=cpu)  # fmt: skip


def remove(db: str) -> None:
    """A run's database and everything beside it (its log, the journal): a gigabyte left for the
    kernel to write back would slow the next run's writes."""
    for path in (db, f"{db}-wal", f"{db}-shm", f"{db}-lock"):
        Path(path).unlink(missing_ok=True)
    shutil.rmtree(f"{db}-webhooks", ignore_errors=True)
    settle()


def settle() -> None:
    """Wait for the kernel to write back what earlier runs left dirty: a run that starts while
    a gigabyte is being written back finds its own writes throttled, and measures the disk of
    the run before it (this VM's disk writes about 230 MB/s; 5 s of ours appends 1.2 GB)."""
    os.sync()


def pending(conn: sqlite3.Connection) -> tuple[int, int]:
    stored, left = conn.execute("SELECT count(*), count(*) - count(processed_at) FROM webhook_events").fetchone()
    return int(stored), int(left)


def serve_argv(db: str, port: int) -> list[str]:
    return [sys.executable, "-m", "clicktochat", "serve", "--db", db, "--host", HOST, "--port", str(port),
            "--log-level", "warning"]  # fmt: skip


def run_ours(load: Load, args: argparse.Namespace, setting: str, round_: int, cpus: tuple[int | None, int | None],
             log_path: Path, tmp: Path) -> Run:  # fmt: skip
    """The headline: signed bodies taken (checked, stored durably, answered 200) per second,
    loaded like bare for `--duration` s, every body a distinct one; then every acknowledged
    body must be in the database (counted after the server is stopped)."""
    db = str(tmp / f"intake-{setting}-{round_}.db")
    asyncio.run(make_db(db))
    settle()
    port = free_port()
    with server(serve_argv(db, port), port, log_path, cpus[0]) as proc:
        warm = [variant(r, 10_000 + i) for i, r in enumerate(load.requests[:20])]
        asyncio.run(post_all(port, warm, args.connections, None))
        cpu = process_cpu_seconds(proc.pid)
        started = time.perf_counter()
        sent = asyncio.run(post_all(port, load.requests, args.connections, started + args.duration))
        seconds = time.perf_counter() - started
        cpu = process_cpu_seconds(proc.pid) - cpu
    distinct = len({(p, load.first[i]) for p, i in sent.acknowledged})
    drain_file(db)  # what the stopped server left in its journal (none once it shut down cleanly)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        stored = conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0] - len(warm)
    remove(db)
    return Run("ours", setting, round_, sent.ok, sent.other, seconds, sent.ok / seconds, lost=max(0, distinct - stored),
               doubled=max(0, stored - distinct), server_cpu=cpu)  # fmt: skip


def run_applied(load: Load, args: argparse.Namespace, setting: str, round_: int,
                cpus: tuple[int | None, int | None], log_path: Path, tmp: Path) -> Run:  # fmt: skip
    """Bodies applied per second: the load posted once, the clock stopped when the processor
    has applied the last of them; then messages and statuses counted against what was sent."""
    db = str(tmp / f"applied-{setting}-{round_}.db")
    asyncio.run(make_db(db))
    settle()
    port = free_port()
    with server(serve_argv(db, port), port, log_path, cpus[0]) as proc, contextlib.closing(
        sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    ) as conn:
        cpu = process_cpu_seconds(proc.pid)
        started = time.perf_counter()
        sent = asyncio.run(post_all(port, load.requests, args.connections, None))
        deadline = started + args.timeout
        while True:
            stored, left = pending(conn)
            if (stored >= load.bodies and left == 0) or time.perf_counter() > deadline:
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        cpu = process_cpu_seconds(proc.pid) - cpu
    lost, doubled = count(db, load)
    remove(db)
    return Run("applied", setting, round_, sent.ok, sent.other, seconds, sent.ok / seconds, left + load.bodies - stored,
               lost, doubled, cpu)  # fmt: skip


def count(db: str, load: Load) -> tuple[int, int]:
    """(lost, doubled): messages, statuses and conversations written against what was sent."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT wamid) FROM wa_messages"
                                      " WHERE direction = 'in'").fetchone()  # fmt: skip
        statuses = conn.execute("SELECT count(*) FROM wa_statuses").fetchone()[0]
        conversations, people = conn.execute("SELECT count(*), count(DISTINCT wa_id) FROM conversations").fetchone()
    lost = max(0, load.messages - distinct) + max(0, load.statuses - statuses) + max(0, load.customers - people)
    doubled = (rows - distinct) + max(0, distinct - load.messages) + max(0, statuses - load.statuses)
    return lost, doubled + (conversations - people) + max(0, people - load.customers)


# -- report ---------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def summarise(runs: list[Run], setting: str) -> dict[str, float]:
    def of(target: str) -> list[float]:
        return [r.bodies_per_second for r in runs if r.target == target and r.setting == setting]

    bare, stored, ours, applied = of("bare"), of("bare+store"), of("ours"), of("applied")
    if not bare or not stored or not ours or not applied:
        return {}
    return {"bare_median": statistics.median(bare), "bare_best": max(bare), "ours_median": statistics.median(ours),
            "ours_best": max(ours), "ratio": statistics.median(ours) / statistics.median(bare),
            "ratio_best": max(ours) / max(bare),
            "same_round_ratio_median": statistics.median([o / b for o, b in zip(ours, bare, strict=True)]),
            "stored_median": statistics.median(stored),
            "stored_ratio": statistics.median(stored) / statistics.median(bare),
            "ours_to_stored": statistics.median(ours) / statistics.median(stored),
            "applied_median": statistics.median(applied),
            "applied_ratio": statistics.median(applied) / statistics.median(bare)}  # fmt: skip


def report(runs: list[Run], load: Load) -> dict[str, Any]:
    rounds = max(r.round for r in runs)
    print(f"\n{rounds} round(s); bodies of {CHANGES_PER_BODY} changes; median (headline) and best of the rounds")
    print("taken: checked, stored durably and answered 200 (what Meta waits for); applied: written into")
    print("conversations, messages and statuses by the processor, after the 200")
    print(f"{'':<10}{'bare median':>13}{'bare best':>11}{'ours median':>13}{'ours best':>11}{'ratio':>8}"
          f"{'(best/best)':>13}   bodies/s")  # fmt: skip
    summary: dict[str, Any] = {}
    for setting in ("unpinned", "pinned"):
        s = summarise(runs, setting)
        if not s:
            continue
        summary[setting] = s
        verdict = "ok" if s["ratio"] >= TARGET_RATIO else f"BELOW the {TARGET_RATIO} target"
        print(f"{setting:<10}{s['bare_median']:>13,.1f}{s['bare_best']:>11,.1f}{s['ours_median']:>13,.1f}"
              f"{s['ours_best']:>11,.1f}{s['ratio']:>8.2f}{s['ratio_best']:>13.2f}   taken, {verdict}")  # fmt: skip
    for setting, s in summary.items():
        print(f"{setting:<10}bare+store (bare, and each body written to SQLite before the 200):"
              f" {s['stored_median']:,.1f} bodies/s median, {s['stored_ratio']:.2f} of bare;"
              f" ours taken {s['ours_to_stored']:.2f} of it")  # fmt: skip
    for setting, s in summary.items():
        print(f"{setting:<10}applied: {s['applied_median']:,.1f} bodies/s median"
              f" ({s['applied_median'] * CHANGES_PER_BODY:,.0f} changes/s), {s['applied_ratio']:.2f} of bare")
    ours = [r for r in runs if r.target in ("ours", "applied")]
    lost, doubled, left = sum(r.lost for r in ours), sum(r.doubled for r in ours), sum(r.left for r in ours)
    print(f"\nours, every run: {lost} lost, {doubled} doubled (taken: every acknowledged body stored once;"
          f" applied: {load.messages:,} messages, {load.statuses:,} statuses and {load.customers:,}"
          f" conversations a run), {left} bodies left unapplied")  # fmt: skip
    errors = sum(r.errors for r in runs)
    if errors:
        print(f"! {errors} answers other than 200 or broken connections")
    return {"summary": summary, "lost": lost, "doubled": doubled, "left": left, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of bare then ours, per setting (default 3).")
    parser.add_argument("--bodies", type=int, default=300, help="Distinct bodies in the load (default 300).")
    parser.add_argument("--customers", type=int, default=5000, help="People writing in (default 5,000).")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="Seconds the bare app is loaded for, at least one pass (default 5).")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="Most seconds one run of ours may take before it is cut short (default 60).")  # fmt: skip
    parser.add_argument("--connections", type=int, default=8, help="Keep-alive connections (default 8).")
    parser.add_argument("--settings", choices=["both", "unpinned", "pinned"], default="both")
    parser.add_argument("--json", help="Also write every run and the summary to this file.")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.bodies <= 5000 or not 0 < args.duration <= 120:
        raise SystemExit("--rounds 1..20, --bodies 1..5000, --duration up to 120 s: the run must stay bounded")

    cpus_available = sorted(os.sched_getaffinity(0))
    settings = ["unpinned", "pinned"] if args.settings == "both" else [args.settings]
    if "pinned" in settings and len(cpus_available) < 2:
        print("fewer than 2 CPUs: the pinned setting is skipped", file=sys.stderr)
        settings.remove("pinned")
    load = make_load(args.bodies, args.customers)
    size = sum(len(r) for r in load.requests) / len(load.requests)
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {args.connections} connections")
    print(f"load: {len(load.requests):,} POSTs ({load.bodies:,} distinct bodies, {size / 1024:,.0f} KiB each on"
          f" average), {load.changes:,} changes: {load.messages:,} distinct messages from {load.customers:,}"
          f" people, {load.statuses:,} statuses, repeats included")  # fmt: skip
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="clicktochat-bench-") as tmp:
        log_path = Path(tmp) / "servers.log"
        try:
            for setting in settings:
                cpus = (cpus_available[0], cpus_available[1]) if setting == "pinned" else (None, None)
                os.sched_setaffinity(0, {cpus[1]} if cpus[1] is not None else set(cpus_available))
                try:
                    for round_ in range(1, args.rounds + 1):
                        for run in (run_bare(load, args, setting, round_, cpus, log_path),
                                    run_bare(load, args, setting, round_, cpus, log_path, Path(tmp) / "bare.db"),
                                    run_ours(load, args, setting, round_, cpus, log_path, Path(tmp)),
                                    run_applied(load, args, setting, round_, cpus, log_path, Path(tmp))):  # fmt: skip
                            runs.append(run)
                            checks = "" if run.target.startswith("bare") else (
                                f"  {run.lost} lost, {run.doubled} doubled, {run.left} left")  # fmt: skip
                            print(f"{setting:<9} round {round_} {run.target:<10} {run.bodies_per_second:>9,.1f} b/s"
                                  f"  ({run.posted:,} in {run.seconds:.2f} s, server CPU {run.server_cpu:.2f} s)"
                                  f"{checks}", flush=True)  # fmt: skip
                finally:
                    os.sched_setaffinity(0, set(cpus_available))
        except BaseException:
            if log_path.exists():
                print(f"\nservers' output:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            raise
    result = report(runs, load)
    if args.json:
        Path(args.json).write_text(json.dumps({**result, "runs": [asdict(r) for r in runs], "bodies": load.bodies,
                                               "posts": len(load.requests)}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
