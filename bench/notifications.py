"""Benchmark of the notification outbox: N notifications (default 10,000) queued for people who
opted in, sent by the real sender (outbox.Sender: leases, the consent checked again before each
send, Meta's pace per number) through the real Graph client to the Graph stand-in on 127.0.0.1,
against the stand-in's own ceiling in the same run: a bare loop of httpx POSTs of the same
messages, as many at once as the sender sends. A benchmark, not a test: it prints figures and
checks only that every notification reached the stand-in exactly once.

    .venv/bin/python bench/notifications.py                    # 10,000 notifications, 3 rounds
    .venv/bin/python bench/notifications.py --messages 2000 --rounds 1

What it does, each round (bare first in odd rounds, ours first in even ones):
1. starts the stand-in (graph_standin.GraphStandIn, one number, no status webhooks) as its own
   uvicorn process on a free port;
2. bare: `--concurrency` asyncio workers POST the N template messages with httpx, one after
   another each; messages/s = N / time;
3. ours: a fresh SQLite database, a business and the number connected (without asking Meta),
   templates synced from the stand-in, N people opted in to 'orders' and N notifications queued
   through `Notifications.queue` (the API's checks; timed apart, as queued/s); then the clock
   runs while the sender sends until nothing is queued; messages/s = N / time;
4. asks the stand-in (SIGTERM: it prints what it accepted) how many it got, and how many
   distinct outbox ids (`biz_opaque_callback_data`): lost = N - distinct, doubled = got - distinct.
The pace per number is set to `--per-second` (default 10,000: the stand-in has no limit of
its own, and Meta's highest is 1,000); the pace itself is tested in tests/test_notifications.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from clicktochat.graph import template_payload
from clicktochat.graph_standin import GraphStandIn, StandInNumber
from clicktochat.service import Service
from clicktochat.settings import Settings

TARGET = 0.7
NUMBER = StandInNumber(
    phone_number_id="106540352242922", waba_id="102290129340398", display_phone_number="+39 347 000 1111",
    verified_name="Pasticceria Dolce Vita", access_token="EAAG" + "x" * 40, app_secret="a" * 32,
)  # fmt: skip


def phones(n: int) -> list[str]:
    return [f"3934{7000000 + i:08d}" for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def standin_main(port: int) -> None:
    """The stand-in process: serve until SIGTERM, then print what was accepted as JSON."""
    import uvicorn

    class Server(uvicorn.Server):
        def capture_signals(self) -> contextlib.nullcontext[None]:  # type: ignore[override]
            return contextlib.nullcontext()  # ours below: uvicorn's would kill us again after stopping

    standin = GraphStandIn([NUMBER])
    server = Server(uvicorn.Config(standin.app, host="127.0.0.1", port=port, log_level="warning",
                                   access_log=False, http="httptools"))  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()
    callbacks = [m.body.get("biz_opaque_callback_data") for m in standin.sent]
    print(json.dumps({"accepted": len(standin.sent), "distinct": len(set(callbacks))}), flush=True)


class StandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, __file__, "--standin", str(self.port)],
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("the stand-in did not start") from None
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/v26.0"

    def stop(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def bare(url: str, n: int, concurrency: int, client: str = "httpx") -> tuple[float, float]:
    """(messages/s, CPU seconds of this process per message), with `client` (httpx: the issue's
    baseline; aiohttp: the stand-in's ceiling with the cheapest client we know)."""
    payloads = [template_payload(p, None, "hello_world", "en_US") | {"biz_opaque_callback_data": str(i)}
                for i, p in enumerate(phones(n))]  # fmt: skip
    headers = {"Authorization": f"Bearer {NUMBER.access_token}"}
    target = f"{url}/{NUMBER.phone_number_id}/messages"
    warm = payloads[0] | {"biz_opaque_callback_data": "warm"}
    queue = iter(payloads)
    if client == "httpx":
        async with httpx.AsyncClient(timeout=30) as http:
            (await http.post(target, json=warm, headers=headers)).raise_for_status()
            started, cpu = time.perf_counter(), time.process_time()

            async def worker() -> None:
                for payload in queue:
                    answer = await http.post(target, json=payload, headers=headers)
                    answer.raise_for_status()
                    answer.json()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - started), (time.process_time() - cpu) / n
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        headers["Content-Type"] = "application/json"
        async with session.post(target, data=json.dumps(warm).encode(), headers=headers) as answer:
            answer.raise_for_status()
        started, cpu = time.perf_counter(), time.process_time()

        async def aio_worker() -> None:
            for payload in queue:
                async with session.post(target, data=json.dumps(payload).encode(), headers=headers) as answer:
                    answer.raise_for_status()
                    json.loads(await answer.read())

        await asyncio.gather(*(aio_worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - started), (time.process_time() - cpu) / n


async def ours(url: str, n: int, concurrency: int, per_second: float, db: str) -> tuple[float, float, int, float]:
    """(messages/s sent, notifications/s queued, outbox rows sent, CPU seconds per message sent:
    this process's, all threads, the database's included)."""
    service = await Service.open(Settings(db=db, base_url="http://127.0.0.1", graph_url=url))
    try:
        business = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
        chats = service.whatsapp.chats
        await chats.connect_number(business.id, NUMBER.phone_number_id, NUMBER.waba_id, "393470001111",
                                   NUMBER.verified_name, NUMBER.access_token, NUMBER.app_secret, "x" * 64,
                                   int(time.time()))  # fmt: skip
        await service.whatsapp.reload()
        await service.whatsapp.notifications.sync_templates()
        everyone = phones(n)

        def consent_all() -> None:
            with chats._tx() as tx:
                tx.executemany("INSERT INTO consents (business_id, phone, topic, state, at, source, wording)"
                               " VALUES (?, ?, 'orders', 'in', ?, 'api', 'Order updates')",
                               [(business.id, p, int(time.time()) - 10) for p in everyone])  # fmt: skip

        await chats.run(consent_all)
        started = time.perf_counter()
        for i, phone in enumerate(everyone):
            await service.whatsapp.notifications.queue(to=f"+{phone}", topic="orders", template="hello_world",
                                                       language="en_US", idempotency_key=f"bench-{i}")  # fmt: skip
        queued = n / (time.perf_counter() - started)
        sender = service.whatsapp.sender
        sender.concurrency = concurrency
        sender.pace.per_second = per_second
        started, cpu = time.perf_counter(), time.process_time()
        while await sender.drain():  # what the server's sender loop does when woken
            pass
        rate, cpu = n / (time.perf_counter() - started), (time.process_time() - cpu) / n
        sent = await chats.run(lambda: chats.db.execute("SELECT count(*) FROM outbox WHERE state = 'sent'").fetchone())
        return rate, queued, int(sent[0]), cpu
    finally:
        await service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="Sends at once, ours and bare (default 8).")
    parser.add_argument("--per-second", type=float, default=10_000.0, help="The sender's pace per number.")
    parser.add_argument("--json", help="Also write the figures to this file.")
    parser.add_argument("--standin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.standin:
        return standin_main(args.standin)
    if not 1 <= args.messages <= 100_000 or not 1 <= args.rounds <= 10:
        raise SystemExit("--messages 1..100,000, --rounds 1..10: the run must stay bounded")
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}; {args.messages:,} messages,"
          f" {args.concurrency} at once, pace {args.per_second:,.0f}/s per number")  # fmt: skip
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="clicktochat-bench-") as tmp:
        for round_ in range(1, args.rounds + 1):

            def run_bare(client: str) -> tuple[float, float, dict[str, int]]:
                standin = StandIn()
                try:
                    rate, cpu = asyncio.run(bare(standin.url, args.messages, args.concurrency, client))
                finally:
                    got = standin.stop()
                return rate, cpu, got

            db = str(Path(tmp) / f"round-{round_}.db")

            def run_ours(db: str = db) -> tuple[float, float, int, float, dict[str, int]]:
                standin = StandIn()
                try:
                    found = asyncio.run(ours(standin.url, args.messages, args.concurrency, args.per_second, db))
                finally:
                    got = standin.stop()
                return (*found, got)

            # The three in a different order each round: a machine getting busier or quieter
            # during the run favours none of them.
            results: dict[str, Any] = {}
            order = ["httpx", "aiohttp", "ours"]
            for name in order[round_ % 3:] + order[:round_ % 3]:
                results[name] = run_ours() if name == "ours" else run_bare(name)
            bare_rate, bare_cpu, got_bare = results["httpx"]
            aio_rate, aio_cpu, got_aio = results["aiohttp"]
            rate, queued, sent, cpu, got = results["ours"]
            lost, doubled = args.messages - got["distinct"], got["accepted"] - got["distinct"]
            rows.append({"round": round_, "bare": bare_rate, "bare_aiohttp": aio_rate, "ours": rate, "queued": queued,
                         "sent": sent, "lost": lost, "doubled": doubled, "bare_accepted": got_bare["accepted"],
                         "bare_aiohttp_accepted": got_aio["accepted"], "bare_cpu_us": bare_cpu * 1e6,
                         "bare_aiohttp_cpu_us": aio_cpu * 1e6, "ours_cpu_us": cpu * 1e6})  # fmt: skip
            print(f"round {round_}: bare httpx {bare_rate:,.0f}/s, bare aiohttp {aio_rate:,.0f}/s, ours {rate:,.0f}/s"
                  f" ({rate / bare_rate:.2f} of httpx, {rate / aio_rate:.2f} of aiohttp); CPU a message"
                  f" {bare_cpu * 1e6:,.0f} µs httpx, {aio_cpu * 1e6:,.0f} µs aiohttp, {cpu * 1e6:,.0f} µs ours;"
                  f" queued {queued:,.0f}/s; stand-in got {got['accepted']:,} ({lost} lost, {doubled} doubled)",
                  flush=True)  # fmt: skip
    bare_median = statistics.median(r["bare"] for r in rows)
    ours_median = statistics.median(r["ours"] for r in rows)
    ratio = ours_median / bare_median
    aio_median = statistics.median(r["bare_aiohttp"] for r in rows)
    lost, doubled = sum(r["lost"] for r in rows), sum(r["doubled"] for r in rows)
    verdict = "ok" if ratio >= TARGET else f"BELOW the {TARGET} target"
    cpu_ratio = statistics.median(r["bare_cpu_us"] for r in rows) / statistics.median(r["ours_cpu_us"] for r in rows)
    print(f"\nmedian of {len(rows)}: bare httpx {bare_median:,.0f} messages/s, ours {ours_median:,.0f}/s: {ratio:.2f}"
          f" ({verdict}); messages per CPU second, ours / bare httpx: {cpu_ratio:.2f}; {lost} lost,"
          f" {doubled} doubled")  # fmt: skip
    print(f"against the stand-in's ceiling with aiohttp, {aio_median:,.0f} messages/s: {ours_median / aio_median:.2f}")
    if args.json:
        figures = {"rounds": rows, "ratio": ratio, "ratio_aiohttp": ours_median / aio_median,
                   "lost": lost, "doubled": doubled}  # fmt: skip
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
