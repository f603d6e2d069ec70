"""Where a click's time goes, without the network: calls our ASGI app and the bare one
(bench/bare_app.py) in-process, in a loop, with an iPhone GET, and prints µs per request;
then the cost of the click writer per click, the pieces of the request path one by one, and
(with --cprofile) the functions that cost most. Use it when bench/redirect.py shows a ratio
below 0.8: the differences here are what the server spends on top of the bare app.

    .venv/bin/python bench/profile_redirect.py
    .venv/bin/python bench/profile_redirect.py --requests 20000 --cprofile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bare_app import create_app as create_bare_app  # noqa: E402
from redirect import IPHONE_SAFARI, Links, make_links  # noqa: E402

from clicktochat.app import create_app  # noqa: E402
from clicktochat.channels import deep_link  # noqa: E402
from clicktochat.clicks import ClickEvent, describe  # noqa: E402
from clicktochat.clickstore import NO_ZONES  # noqa: E402
from clicktochat.settings import Settings  # noqa: E402
from clicktochat.tokens import token_key  # noqa: E402
from clicktochat.useragents import classify  # noqa: E402

Scope = dict[str, Any]


def http_scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", IPHONE_SAFARI.encode()),
            (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call_loop(app: Starlette, path: str, requests: int, location: str) -> float:
    """Seconds for `requests` GETs through the whole ASGI app, checking the first answer."""
    scope = http_scope(path)
    messages: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if not messages:
            messages.append(message)

    await app(dict(scope), receive, send)
    start = messages[0]
    headers = dict(start["headers"])
    assert start["status"] == 302 and headers[b"location"].decode() == location, (start, location)
    began = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return time.perf_counter() - began


async def measure(links: Links, db: str, args: argparse.Namespace) -> None:
    ours = create_app(Settings(db=db, base_url="http://127.0.0.1:8000"))
    bare = create_bare_app(links.location)
    async with ours.router.lifespan_context(ours):
        recorder = ours.state.recorder
        targets = [
            ("bare /x", bare, "/x"),
            ("ours /c/{token}", ours, f"/c/{links.token}"),
            ("ours /s/bench", ours, f"/s/{links.slug}"),
        ]
        print(f"in-process ASGI calls, {args.requests:,} per run, median of {args.repeats} runs:")
        costs: dict[str, float] = {}
        for label, app, path in targets:
            times = []
            for _ in range(args.repeats):
                times.append(await call_loop(app, path, args.requests, links.location))
                await recorder.flush()  # the writer's work is measured below, not here
            costs[label] = statistics.median(times) / args.requests * 1e6
            extra = f"  ({costs[label] - costs['bare /x']:+.1f} µs against bare)" if label != "bare /x" else ""
            print(f"  {label:<18} {costs[label]:7.1f} µs per request{extra}")

        # The click writer runs on the same event loop and CPU: its cost per click counts too.
        for _ in range(args.requests):
            recorder.record(
                ClickEvent(int(time.time()), "short", "bench", "whatsapp", None, None, None, b"", "", IPHONE_SAFARI)
            )
        events = recorder.pending
        began = time.perf_counter()
        await recorder.flush()
        flush = (time.perf_counter() - began) / events * 1e6
        event = ClickEvent(int(time.time()), "short", "bench", "whatsapp", None, None, None, b"", "", IPHONE_SAFARI)
        to_row = min(timeit.repeat(lambda: describe(event, 1, NO_ZONES), number=20_000, repeat=3)) / 20_000 * 1e6
        print(
            f"\nclick writer, per click: {flush:.1f} µs in all, of which clicks.describe {to_row:.1f} µs "
            "(the rest: uniques, totals and the SQLite writes)"
        )

        service = ours.state.service
        signed = service.signer.verify(links.token)
        pieces: list[tuple[str, Callable[[], object]]] = [
            ("classify(iPhone UA), memoised", lambda: classify(IPHONE_SAFARI)),
            ("service.signer.verify(token)", lambda: service.signer.verify(links.token)),
            ("token_key(token)", lambda: token_key(links.token)),
            ("service.signed_url(token)", lambda: service.signed_url(links.token)),
            (
                "deep_link(whatsapp, number, text)",
                lambda: deep_link(signed.channel, signed.address, signed.text),
            ),
        ]
        print("\npieces of the request path:")
        for label, piece in pieces:
            n = 20_000
            print(f"  {label:<36} {min(timeit.repeat(piece, number=n, repeat=3)) / n * 1e6:7.2f} µs")

        if args.cprofile:
            for label, app, path in targets[1:]:
                profiler = cProfile.Profile()
                profiler.enable()
                await call_loop(app, path, args.requests, links.location)
                profiler.disable()
                await recorder.flush()
                print(f"\ncProfile of {label}, {args.requests:,} requests, by own time:")
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="Requests per run (default 20000).")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per target; the median is shown.")
    parser.add_argument("--cprofile", action="store_true", help="Also print cProfile's top functions.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clicktochat-profile-") as tmp:
        db = str(Path(tmp) / "profile.db")
        links = asyncio.run(make_links(db))
        asyncio.run(measure(links, db, args))


if __name__ == "__main__":
    main()
