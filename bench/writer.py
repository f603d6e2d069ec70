"""The click writer's CPU per click when every click is a new visitor (an ad spike behind a
proxy): clicks.ClickRecorder, the real one, fed as a loaded server feeds it, a second's clicks
at a time, with nothing else running in the process. A benchmark, not a test: it prints figures.

    .venv/bin/python bench/writer.py                           # 100,000 clicks, 2,000 user agents, 3 rounds
    .venv/bin/python bench/writer.py --user-agents 0           # a new user agent every click (adversarial)
    .venv/bin/python bench/writer.py --compare /tmp/main       # and another checkout's writer, same rounds

What it does: for each round, and for each source tree (this one, then --compare's), a child
process makes a temporary database, records clicks of one short link, each from its own address
(10.x.y.z) and with an iPhone user agent from a pool of --user-agents strings (bench/soak.py's;
0: a new one every click), in batches of --per-second clicks (the server's flush once a second),
and awaits ClickRecorder.flush() after each batch: hashing, the robot check and ua-parser,
uniques, totals and the SQLite transaction, in the writer's thread and aiosqlite's, as in the
server. The pool is seen once first (a server's warm-up does the same). It prints the process's
CPU time (all threads, time.process_time) and the wall time per click, the median of the
rounds, and the ratio of this tree's CPU per click to --compare's (measured in the same rounds).
In the server this CPU is taken from the cores, and the GIL, that the event loop needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{minor} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{minor} Mobile/15E{build} Safari/604.1"
)


async def child(clicks: int, user_agents: int, per_second: int) -> dict[str, float]:
    from clicktochat.clicks import ClickEvent, ClickRecorder
    from clicktochat.store import Store
    from clicktochat.visitors import Salts

    pool = [IPHONE.format(minor=i % 7, build=100 + i) for i in range(user_agents)]
    start = int(time.time())

    def event(n: int) -> ClickEvent:
        ua = pool[n % len(pool)] if pool else IPHONE.format(minor=n % 7, build=n)
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        return ClickEvent(start + n // per_second, "short", "bench", "whatsapp", None, None, None, b"", "", ua,
                          address=address)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="clicktochat-writer-") as tmp:
        store = await Store.open(str(Path(tmp) / "writer.db"))
        try:
            recorder = ClickRecorder(store, Salts(1800), batch_size=5000)
            for n in range(clicks, clicks + len(pool)):  # the warm-up: every user agent of the pool once
                recorder.record(event(n))
            await recorder.flush()
            cpu, wall = time.process_time(), time.perf_counter()
            for first in range(0, clicks, per_second):
                for n in range(first, min(clicks, first + per_second)):
                    recorder.record(event(n))
                await recorder.flush()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            await store.close()
    return {"cpu_us": cpu / clicks * 1e6, "wall_us": wall / clicks * 1e6}


def run_child(src: str | None, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve() / "src")
    argv = [sys.executable, __file__, "--child", "--clicks", str(args.clicks), "--user-agents", str(args.user_agents),
            "--per-second", str(args.per_second)]  # fmt: skip
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=900).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=100_000, help="clicks measured per run (100000)")
    parser.add_argument("--user-agents", type=int, default=2000, help="distinct user agents (2000; 0: one a click)")
    parser.add_argument("--per-second", type=int, default=5000, help="clicks a flush (5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3); the median is shown")
    parser.add_argument("--compare", metavar="SRC", help="another checkout (its src/ is used), same rounds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.clicks, args.user_agents, args.per_second))))
        return
    trees: list[tuple[str, str | None]] = [("this tree", None)]
    if args.compare:
        trees.append((f"compared ({args.compare})", args.compare))
    pool = f"{args.user_agents:,} user agents" if args.user_agents else "a new user agent every click"
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; {args.clicks:,} new visitors"
          f" a run, {pool}, {args.per_second:,} a flush")  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for round_ in range(1, args.rounds + 1):
        for label, src in trees:
            result = run_child(src, args)
            results[label].append(result)
            cpu, wall = result["cpu_us"], result["wall_us"]
            print(f"round {round_} {label:<40} {cpu:7.1f} µs CPU a click  {wall:7.1f} µs wall")
    print(f"\nmedian of {args.rounds} round(s):")
    medians = {label: statistics.median(r["cpu_us"] for r in runs) for label, runs in results.items()}
    for label, runs in results.items():
        print(f"  {label:<40} {medians[label]:7.1f} µs CPU a click"
              f"  {statistics.median(r['wall_us'] for r in runs):7.1f} µs wall")  # fmt: skip
    if args.compare:
        base = list(medians.values())[1]
        print(f"  this tree / compared, CPU a click: {medians['this tree'] / base:.2f}")
        paired = [a["cpu_us"] / b["cpu_us"] for a, b in zip(*results.values(), strict=True)]
        print(f"  same-round ratios: {', '.join(f'{x:.2f}' for x in paired)}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
