"""Analytics at scale: synthetic clicks across 1,000 links and two years go through the real
click writer (clicks.ClickRecorder: robots told apart, user agents parsed, uniques decided,
raw rows and daily totals in one transaction), then the dashboard's queries run through
stats.compute, the function behind GET /api/v1/stats.

Figures, each against a baseline in the same run:
- ingestion: clicks a second, against a bare INSERT of the same number of raw rows;
- each query: p50/p95 milliseconds over --runs, against the same answer computed from the
  raw rows (what the daily totals replace). Target: p95 <= 50 ms.

    .venv/bin/python bench/stats.py                    # 10 M clicks: about 15 minutes, ~3 GB of disk
    .venv/bin/python bench/stats.py --clicks 200000    # a quick look (still with the busy link's million)
    .venv/bin/python bench/stats.py --clicks 300000 --busy 0 --days 1 --floor   # a day's spike, and the floor

`--days` spreads the clicks over fewer days: 730 (two years in one pass, each flush of 5,000
clicks spread over days, as a backfill of history would be) is the worst case for the totals;
1 is a spike, where a flush holds one day and the totals merge. `--floor` also times the same
clicks through the same writer with the daily totals switched off (raw rows, their analysis and
the unique-visitor decision only): what no schema of totals can go below.

A busy link (`--busy`, a million clicks in the last 30 days by default) shows its breakdowns by
referrer and utm_source, which link_dimension_days (migration 006) answers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clicktochat import clicks
from clicktochat.cells import Totals
from clicktochat.clicks import ClickEvent, ClickRecorder
from clicktochat.stats import StatsQuery, compute
from clicktochat.store import Store
from clicktochat.visitors import Salts

LINKS = 1000
AGENTS = 20
DAYS = 730
PHONES = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel {v}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/12{v}.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S91{v}B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/2{v}.0 Chrome/11{v}.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 Instagram 30{v}.0.0.0 (iPhone14,2; iOS 17_{v}; it_IT; it; scale=3.00; 1170x2532)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/12{v}.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{v}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
]
ROBOTS = [
    "WhatsApp/2.23.{v}.0 A",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
]
REFERRERS = ["", "", "", "https://www.instagram.com/", "https://m.facebook.com/", "https://www.google.com/",
             "https://l.facebook.com/", "https://t.co/", "https://www.tiktok.com/"]  # fmt: skip
SOURCES = ["ig", "fb", "google", "newsletter", "tiktok"]


def synthetic(total: int, now: int, seed: int = 1, days: int = DAYS) -> list[ClickEvent]:
    """Clicks in the order they would arrive over `days` (two years): links by a Zipf-like law (a
    few campaigns take most), 3 % robots, a third arriving from an ad with UTM tags."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(LINKS)]
    slugs = rng.choices(range(LINKS), weights, k=total)
    start = now - days * 86400
    times = sorted(rng.randrange(start, now) for _ in range(total))
    agents = [link % AGENTS + 1 for link in range(LINKS)]
    phones = [ua.format(v=v) for ua in PHONES for v in range(1, 8)]
    robots = [ua.format(v=v) for ua in ROBOTS for v in range(1, 3)]
    visitors = max(1, total * 2 // 3)
    events = []
    for i in range(total):
        link = slugs[i]
        robot = rng.random() < 0.03
        query = b""
        if link % 3 == 0:
            query = f"utm_source={SOURCES[link % 5]}&utm_medium=paid&utm_campaign=c{link % 40}".encode()
            if link % 6 == 0:
                query += b"&fbclid=IwAR0x"
        events.append(ClickEvent(
            times[i], "short", f"link{link:04d}", "whatsapp", agents[link], f"campaign{link % 25}", "ad",
            query, rng.choice(REFERRERS), rng.choice(robots) if robot else rng.choice(phones), None,
            "" if robot else visitor_key(rng.randrange(visitors)),
        ))  # fmt: skip
    return events


def visitor_key(number: int) -> str:
    """The `number`th visitor's key, 16 hex digits as visitors.Salts makes them (uniques reads
    those as the number they are; other strings it hashes first, a microsecond no server spends)."""
    return f"{number * 0x9E3779B97F4A7C15 % 2**64:016x}"


def busy_link(total: int, now: int, seed: int = 2) -> list[ClickEvent]:
    """One link (`busy`) with `total` clicks in the last 30 days, to time its breakdowns."""
    rng = random.Random(seed)
    phones = [ua.format(v=v) for ua in PHONES for v in range(1, 8)]
    start = now - 30 * 86400
    times = sorted(rng.randrange(start, now) for _ in range(total))
    return [ClickEvent(
        at, "short", "busy", "whatsapp", 1, "campaign0", "ad", f"utm_source={SOURCES[i % 5]}".encode(),
        rng.choice(REFERRERS), rng.choice(phones), None, visitor_key(rng.randrange(total)),
    ) for i, at in enumerate(times)]  # fmt: skip


async def seed(store: Store) -> None:
    async with store.transaction() as db:
        await db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at)"
                         " VALUES (1, 'Bench', 'Europe/Rome', 0, 0)")  # fmt: skip
        await db.executemany(
            "INSERT INTO agents (id, business_id, name, channel, address, created_at, updated_at)"
            " VALUES (?, 1, ?, 'whatsapp', '393471234567', 0, 0)",
            [(i, f"Agent {i}") for i in range(1, AGENTS + 1)],
        )
        await db.executemany(
            "INSERT INTO links (slug, agent_id, campaign, created_at, updated_at) VALUES (?, ?, ?, 0, 0)",
            [(f"link{i:04d}", i % AGENTS + 1, f"campaign{i % 25}") for i in range(LINKS)] + [("busy", 1, "campaign0")],
        )


async def ingest(store: Store, events: list[ClickEvent], batch: int) -> float:
    """Seconds the writer spent on all of them, in batches as the server sends them."""
    recorder = ClickRecorder(store, Salts(1800), retention_days=100_000, batch_size=batch)
    spent = 0.0
    for i in range(0, len(events), batch):
        for event in events[i : i + batch]:
            recorder.record(event)
        start = time.perf_counter()
        await recorder.flush()
        spent += time.perf_counter() - start
        if (i // batch) % 200 == 0:
            print(f"  {i + batch:>10,} clicks written", flush=True)
    return spent


async def floor(folder: Path, events: list[ClickEvent], batch: int, round_: int = 0) -> float:
    """`ingest` into a database of its own with the daily totals switched off (a benchmark's
    patch of `clicks.cell_totals`, undone after): raw rows, their analysis (user agents,
    referrers, UTM tags, visitor keys) and the unique-visitor decision, nothing else."""
    store = await Store.open(str(folder / f"floor{round_}.db"))
    real = clicks.cell_totals
    clicks.cell_totals = lambda rows, infos: Totals([], [], [], [])
    try:
        await seed(store)
        return await ingest(store, events, batch)
    finally:
        clicks.cell_totals = real
        await store.close()


def bare_insert(path: Path, events: list[ClickEvent], batch: int) -> float:
    """The baseline: the same number of rows into a table of the same width, nothing else."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(f"CREATE TABLE raw ({', '.join(f'c{i}' for i in range(24))})")
    rows = [(e.at, e.link_kind, e.link_key, e.channel, e.agent_id, e.campaign, e.source, *([None] * 17))
            for e in events]  # fmt: skip
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO raw VALUES ({', '.join('?' * 24)})", rows[i : i + batch])
        db.execute("COMMIT")
    spent = time.perf_counter() - start
    db.close()
    return spent


def dashboard(today: datetime) -> list[tuple[str, StatsQuery, str]]:
    """What a dashboard shows, with the SQL over raw rows that the daily totals replace."""
    last = today.date()
    month, year = last - timedelta(29), last - timedelta(364)
    span = f"at >= {int(datetime.combine(month, datetime.min.time(), UTC).timestamp())}"
    span_year = f"at >= {int(datetime.combine(year, datetime.min.time(), UTC).timestamp())}"
    raw = "SELECT {0}, sum(n) FROM clicks WHERE robot IS NULL AND {1} GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
    return [
        ("30 days by day", StatsQuery(month, last, "day"), raw.format("day", span)),
        ("30 days top links", StatsQuery(month, last, "link", limit=10), raw.format("link_key", span)),
        ("30 days by campaign", StatsQuery(month, last, "campaign", limit=10), raw.format("campaign", span)),
        ("30 days by agent", StatsQuery(month, last, "agent"), raw.format("agent_id", span)),
        ("30 days by referrer", StatsQuery(month, last, "referrer", limit=10), raw.format("referrer_host", span)),
        ("30 days by device", StatsQuery(month, last, "device"), raw.format("device_class", span)),
        ("30 days by utm_source", StatsQuery(month, last, "utm_source"), raw.format("utm_source", span)),
        ("30 days robots", StatsQuery(month, last, "robot"),
         "SELECT robot, sum(n) FROM clicks WHERE robot IS NOT NULL AND " + span + " GROUP BY 1"),
        ("30 days one campaign by referrer", StatsQuery(month, last, "referrer", campaign="campaign0"),
         raw.format("referrer_host", span + " AND campaign = 'campaign0'")),
        ("30 days one agent by device", StatsQuery(month, last, "device", agent_id=1),
         raw.format("device_class", span + " AND agent_id = 1")),
        ("30 days top link by day", StatsQuery(month, last, "day", link="link0000"),
         raw.format("day", span + " AND link_kind = 'short' AND link_key = 'link0000'")),
        ("30 days top link by referrer", StatsQuery(month, last, "referrer", link="link0000"),
         raw.format("referrer_host", span + " AND link_kind = 'short' AND link_key = 'link0000'")),
        ("30 days busy link by referrer", StatsQuery(month, last, "referrer", link="busy"),
         raw.format("referrer_host", span + " AND link_kind = 'short' AND link_key = 'busy'")),
        ("30 days busy link by utm_source", StatsQuery(month, last, "utm_source", link="busy"),
         raw.format("utm_source", span + " AND link_kind = 'short' AND link_key = 'busy'")),
        ("365 days by month", StatsQuery(year, last, "month"), raw.format("substr(day, 1, 7)", span_year)),
        ("365 days by week", StatsQuery(year, last, "week"),
         raw.format("date(day, '-6 days', 'weekday 1')", span_year)),
        ("365 days top links", StatsQuery(year, last, "link", limit=10), raw.format("link_key", span_year)),
    ]  # fmt: skip


async def timed(make: object, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await make()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return times


def p(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100)[int(q) - 1] if len(times) > 1 else times[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=5000, help="clicks a flush (the server's batch size)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ingestion; the median ratio is the headline")
    parser.add_argument("--busy", type=int, default=1_000_000, help="clicks of one link in the last 30 days")
    parser.add_argument("--days", type=int, default=DAYS, help="days the clicks are spread over (1: a spike)")
    parser.add_argument("--floor", action="store_true", help="also time the writer with the daily totals off")
    parser.add_argument("--dir", default=None, help="where the database goes (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="clicktochat-bench-"))
    now = datetime.now(UTC)
    print(f"generating {args.clicks:,} clicks over {args.days} days across {LINKS} links ...", flush=True)
    events = synthetic(args.clicks, int(now.timestamp()), days=args.days)
    if args.busy:  # merged in time order, as they would arrive
        events = sorted(events + busy_link(args.busy, int(now.timestamp())), key=lambda e: e.at)

    # The generated clicks live for the whole run: out of the collector's way, as a server's
    # start-up objects are (app.py). A server holds a second of clicks, not two years of them, and
    # collections walking 1.2 million tuples made every flush of either side slower.
    gc.freeze()
    ratios = []
    for round_ in range(args.rounds):  # each round: the baseline, then the writer into a new database
        baseline = bare_insert(folder / f"bare{round_}.db", events, args.batch)
        floored = await floor(folder, events, args.batch, round_) if args.floor else None
        store = await Store.open(str(folder / f"stats{round_}.db"))
        try:
            await seed(store)
            spent = await ingest(store, events, args.batch)
            ratios.append(baseline / spent)
            await report(store, folder, round_, baseline, spent, floored, args)
            if round_ == args.rounds - 1:
                print(f"\ningestion, median of {args.rounds} rounds: ratio {statistics.median(ratios):.2f} of the"
                      f" bare INSERT (rounds: {', '.join(f'{r:.2f}' for r in ratios)}; gate 0.5)")  # fmt: skip
                events.clear()
                await queries(store, now, args)
        finally:
            await store.close()
    if not args.dir:
        for path in folder.iterdir():
            os.remove(path)
        folder.rmdir()


async def report(
    store: Store, folder: Path, round_: int, baseline: float, spent: float, floored: float | None,
    args: argparse.Namespace,
) -> None:  # fmt: skip
    (raw_rows,) = await store._one("SELECT count(*) FROM click_log")
    (day_rows,) = await store._one("SELECT (SELECT count(*) FROM cell_days) + (SELECT count(*) FROM link_totals_days)"
                                   " + (SELECT count(*) FROM dimension_days)")  # fmt: skip
    size = sum(f.stat().st_size for f in folder.glob(f"stats{round_}.db*")) / 1e9
    total = args.clicks + args.busy
    print(f"\nround {round_ + 1}, ingestion: {total / spent:,.0f} clicks/s through the click writer, "
          f"{total / baseline:,.0f} rows/s bare INSERT (ratio {baseline / spent:.2f})")  # fmt: skip
    print(f"  {spent / total * 1e6:.1f} us a click through the writer, {baseline / total * 1e6:.1f} us a bare row")
    if floored is not None:
        print(f"  floor, the daily totals off: {total / floored:,.0f} clicks/s, {floored / total * 1e6:.1f} us a click"
              f" (ratio {baseline / floored:.2f} of the bare INSERT)")  # fmt: skip
    print(f"  stored: {raw_rows:,} raw rows, {day_rows:,} daily-total rows, {size:.2f} GB", flush=True)


async def queries(store: Store, now: datetime, args: argparse.Namespace) -> None:
    await store.db.execute("PRAGMA optimize")
    print(f"\n{'query':36} {'p50 ms':>8} {'p95 ms':>8} {'raw p50':>9} {'ratio':>6}")
    worst = 0.0
    for name, query, raw_sql in dashboard(now):
        fast = await timed(lambda q=query: compute(store, q, now=now), args.runs)  # type: ignore[misc]
        slow = await timed(lambda s=raw_sql: store._all(s), max(3, args.runs // 10))  # type: ignore[misc]
        worst = max(worst, p(fast, 95))
        print(f"{name:36} {p(fast, 50):8.1f} {p(fast, 95):8.1f} {p(slow, 50):9.1f} "
              f"{p(fast, 50) / p(slow, 50):6.3f}")  # fmt: skip
    print(f"\nslowest p95: {worst:.1f} ms (target 50 ms){'' if worst <= 50 else '  OVER TARGET'}")


if __name__ == "__main__":
    asyncio.run(main())
