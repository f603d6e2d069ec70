"""A design prototype, not the product's writer: how fast a click writer could be if the raw rows
were narrow and the per-click work ran in numpy (issue 11, point 8: ingestion at >= 0.5 of a
bare INSERT). It takes bench/stats.py's synthetic clicks and, in each round, times:

- the baseline: bench/stats.py's bare INSERT of as many 24-column rows, in the same batches;
- the prototype: each distinct query string, referrer and user agent analysed once (clicks.analysis)
  into a `facts` id; each click's link and facts into a `cells` id (two dictionaries, in Python);
  the rest vectorised: the day, the unique-visitor decision (a blocked Bloom filter in a numpy
  array, the first click of each visitor in the batch), the totals by numpy.unique and bincount;
  then narrow raw rows (time, cell, day, visitor, count, uniques; one index) and the totals per
  cell and day, per business, fact and day, per link and day and per link and month, upserted in
  one transaction.

It prints each round's microseconds a click and the ratio to the bare INSERT, and the median of
the rounds, then times the dashboard's kinds of query against these tables (read through the
cell and fact dictionaries) for the last round's database:

    .venv/bin/python bench/lean_writer.py                                     # the issue's shape
    .venv/bin/python bench/lean_writer.py --clicks 300000 --busy 0 --days 1 --batch 20000  # a spike

What it leaves out, and the product's writer does: robots' clicks kept apart per dimension, the
unique-visitor window's generations (one filter here), yesterday's visitor keys, several instances
on PostgreSQL, and every reader of today's tables. docs/performance.md has the figures and says
what building it would change.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import stats as bench_stats  # noqa: E402  (bench/stats.py: the same synthetic clicks and baseline)

from clicktochat.clicks import ClickEvent, analysis, local_day  # noqa: E402

SCHEMA = """
CREATE TABLE facts (id INTEGER PRIMARY KEY, utm_source, utm_medium, utm_campaign, utm_content, utm_term, ad_click,
  referrer, device, os, browser, robot, via);
CREATE TABLE cells (id INTEGER PRIMARY KEY, link_kind, link_key, channel, agent_id, campaign, source, page,
  business_id, fact);
CREATE INDEX cells_link ON cells (link_kind, link_key);
CREATE INDEX cells_campaign ON cells (campaign);
CREATE INDEX cells_agent ON cells (agent_id);
CREATE TABLE clicks (id INTEGER PRIMARY KEY, at, cell, day, visitor, n, uniques);
CREATE INDEX clicks_cell ON clicks (cell, at);
CREATE TABLE cell_days (cell, day, clicks, uniques, bots, PRIMARY KEY (cell, day)) WITHOUT ROWID;
CREATE TABLE fact_days (business_id, day, fact, clicks, uniques, bots, PRIMARY KEY (business_id, day, fact))
  WITHOUT ROWID;
CREATE TABLE link_days (business_id, day, link, clicks, uniques, bots, PRIMARY KEY (business_id, day, link))
  WITHOUT ROWID;
CREATE TABLE link_months (business_id, month, link, clicks, uniques, bots, PRIMARY KEY (business_id, month, link))
  WITHOUT ROWID;
CREATE TABLE links (id INTEGER PRIMARY KEY, link_kind, link_key, UNIQUE (link_kind, link_key));
"""
ADD = " ON CONFLICT DO UPDATE SET clicks = clicks + excluded.clicks, uniques = uniques + excluded.uniques, " \
      "bots = bots + excluded.bots"  # fmt: skip
WORDS = 1 << 22  # the Bloom filter: 32 MiB, 2 million visitors at 16 bits each
M1, M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
EPOCH_DAY = 100_000  # key = id * EPOCH_DAY + day number: one int64 for numpy.unique
UNIX_DAY = 719_163  # date(1970, 1, 1).toordinal(): days are counted from there


class LeanWriter:
    def __init__(self, db: sqlite3.Connection, zones: dict[int, tuple[int | None, str]]) -> None:
        self.db, self.zones = db, zones
        self.by_input: dict[tuple[Any, ...], tuple[int, str]] = {}  # the raw fields of a click -> cell, time zone
        self.cells: dict[tuple[Any, ...], int] = {}
        self.facts: dict[tuple[Any, ...], int] = {}
        self.links: dict[tuple[str, str], int] = {}
        self.days: dict[tuple[int, str], int] = {}  # (quarter hour, zone) -> day number
        size = 1 << 20  # per cell: robot or not, its fact, business, link
        self.robot, self.fact = np.zeros(size, np.int64), np.zeros(size, np.int64)
        self.business, self.link = np.zeros(size, np.int64), np.zeros(size, np.int64)
        self.bloom = np.zeros(WORDS, np.uint64)

    def cell(self, f: tuple[Any, ...], new_facts: list[Any], new_cells: list[Any], new_links: list[Any]
             ) -> tuple[int, str]:  # fmt: skip
        found = analysis(f[7], f[8], f[9], f[13])
        fact = self.facts.get(found)
        if fact is None:
            fact = self.facts[found] = len(self.facts) + 1
            new_facts.append((fact, *found))
        business, zone = self.zones.get(f[4] or 0, (None, "UTC"))
        key = (f[1], f[2], f[3], f[4], f[5], f[6], f[10], business, fact)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = len(self.cells) + 1
            new_cells.append((cell, *key))
            link = self.links.get((f[1], f[2]))
            if link is None:
                link = self.links[(f[1], f[2])] = len(self.links) + 1
                new_links.append((link, f[1], f[2]))
            self.robot[cell], self.fact[cell] = found[10] is not None, fact
            self.business[cell], self.link[cell] = business or 0, link
        got = self.by_input[f[1:11]] = (cell, zone)
        return got

    def write(self, batch: dict[tuple[Any, ...], int]) -> None:
        new_facts: list[Any] = []
        new_cells: list[Any] = []
        new_links: list[Any] = []
        ats, cells, days, visitors, counts = [], [], [], [], []
        for f, n in batch.items():  # the one loop in Python: two dictionary lookups a click
            got = self.by_input.get(f[1:11]) or self.cell(f, new_facts, new_cells, new_links)
            quarter = (f[0] // 900, got[1])
            day = self.days.get(quarter)
            if day is None:
                day = self.days[quarter] = datetime.fromisoformat(local_day(*quarter)).toordinal() - UNIX_DAY
            ats.append(f[0])
            cells.append(got[0])
            days.append(day)
            visitors.append(int(f[11], 16) - 2**63 if f[11] else 0)  # a signed 64-bit integer, as SQLite keeps it
            counts.append(n)
        cell, day, n = np.array(cells), np.array(days), np.array(counts)
        robot = self.robot[cell].astype(bool)
        uniques = self.uniques(np.array(visitors, np.int64).view(np.uint64), robot)
        cell_days, (clicks, firsts, bots) = totals(cell * EPOCH_DAY + day, n * ~robot, uniques, n * robot)
        per_cell = cell_days // EPOCH_DAY
        on = cell_days % EPOCH_DAY
        business = self.business[per_cell]
        rollups = []
        for ids, when in ((self.fact[per_cell], on), (self.link[per_cell], on), (self.link[per_cell], on // 30)):
            keys, sums = totals((business * 1_000_000 + ids) * EPOCH_DAY + when, clicks, firsts, bots)
            owner, what = divmod(keys // EPOCH_DAY, 1_000_000)
            columns = (owner, keys % EPOCH_DAY, what, *sums)
            rollups.append(zip(*(column.tolist() for column in columns), strict=True))
        db = self.db
        db.execute("BEGIN")
        db.executemany("INSERT INTO facts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", new_facts)
        db.executemany("INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?)", new_cells)
        db.executemany("INSERT INTO links VALUES (?,?,?)", new_links)
        db.executemany("INSERT INTO clicks (at, cell, day, visitor, n, uniques) VALUES (?,?,?,?,?,?)",
                       zip(ats, cells, days, visitors, counts, uniques.tolist(), strict=True))  # fmt: skip
        db.executemany("INSERT INTO cell_days VALUES (?,?,?,?,?)" + ADD,
                       zip(*(column.tolist() for column in (per_cell, on, clicks, firsts, bots)), strict=True))
        for table, rows in zip(("fact_days", "link_days", "link_months"), rollups, strict=True):
            db.executemany(f"INSERT INTO {table} VALUES (?,?,?,?,?,?)" + ADD, rows)
        db.execute("COMMIT")

    def uniques(self, visitors: np.ndarray, robot: np.ndarray) -> np.ndarray:
        """1 for a person's first click in the batch if the filter has not seen them, then they are added."""
        person = (visitors != 0) & ~robot
        h, g = visitors * M1, visitors * M2
        first_word = (h >> np.uint64(42)) % np.uint64(WORDS)
        stride = (g >> np.uint64(42)) | np.uint64(1)
        words = [first_word, (first_word + stride) % np.uint64(WORDS), (first_word + 2 * stride) % np.uint64(WORDS)]
        bits = [three_bits(g, 0), three_bits(g, 18), three_bits(h, 0)]
        seen = np.ones(len(visitors), bool)
        for word, bit in zip(words, bits, strict=True):
            seen &= (self.bloom[word] & bit) == bit
        first = np.zeros(len(visitors), bool)
        people = np.nonzero(person)[0]
        first[people[np.unique(visitors[people], return_index=True)[1]]] = True
        for word, bit in zip(words, bits, strict=True):
            np.bitwise_or.at(self.bloom, word[person], bit[person])
        return (first & ~seen).astype(np.int64)


def three_bits(x: np.ndarray, shift: int) -> np.ndarray:
    one, mask = np.uint64(1), np.uint64(63)
    return (one << ((x >> np.uint64(shift)) & mask) | one << ((x >> np.uint64(shift + 6)) & mask)
            | one << ((x >> np.uint64(shift + 12)) & mask))  # fmt: skip


def totals(keys: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    distinct, where = np.unique(keys, return_inverse=True)
    return distinct, [np.bincount(where, weights=v, minlength=len(distinct)).astype(np.int64) for v in values]


def ingest(path: Path, events: list[ClickEvent], batch: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    writer = LeanWriter(db, {agent: (1, "Europe/Rome") for agent in range(bench_stats.AGENTS + 1)})
    spent = 0.0
    for i in range(0, len(events), batch):
        pending: dict[tuple[Any, ...], int] = {}
        for event in events[i : i + batch]:  # as ClickRecorder.record() keeps them
            fields = tuple(event)
            pending[fields] = pending.get(fields, 0) + 1
        start = time.perf_counter()
        writer.write(pending)
        spent += time.perf_counter() - start
    db.close()
    return spent


QUERIES = {
    "30 days by day": "SELECT day, sum(clicks) FROM link_days WHERE business_id = 1 AND day >= :since GROUP BY day",
    "30 days top links": "SELECT link, sum(clicks) AS c FROM link_days WHERE business_id = 1 AND day >= :since "
                         "GROUP BY link ORDER BY c DESC LIMIT 10",
    "30 days by referrer": "SELECT f.referrer, sum(d.clicks) FROM fact_days d JOIN facts f ON f.id = d.fact "
                           "WHERE d.business_id = 1 AND d.day >= :since GROUP BY f.referrer",
    "30 days by campaign": "SELECT c.campaign, sum(d.clicks) FROM cells c JOIN cell_days d ON d.cell = c.id "
                           "AND d.day >= :since WHERE c.business_id = 1 GROUP BY c.campaign",
    "30 days one campaign by referrer": "SELECT f.referrer, sum(d.clicks) FROM cells c JOIN cell_days d "
                                        "ON d.cell = c.id AND d.day >= :since JOIN facts f ON f.id = c.fact "
                                        "WHERE c.campaign = 'campaign3' GROUP BY f.referrer",
    "30 days busy link by referrer": "SELECT f.referrer, sum(d.clicks) FROM cells c JOIN cell_days d "
                                     "ON d.cell = c.id AND d.day >= :since JOIN facts f ON f.id = c.fact "
                                     "WHERE c.link_kind = 'short' AND c.link_key = 'busy' GROUP BY f.referrer",
    "365 days by month": "SELECT month, sum(clicks) FROM link_months WHERE business_id = 1 AND month >= :since / 30 "
                         "- 12 GROUP BY month",
    "365 days top links": "SELECT link, sum(clicks) AS c FROM link_months WHERE business_id = 1 "
                          "AND month >= :since / 30 - 12 GROUP BY link ORDER BY c DESC LIMIT 10",
}  # fmt: skip


def queries(path: Path, today: int, runs: int) -> None:
    db = sqlite3.connect(path)
    stored = db.execute("SELECT sum(n), sum(uniques) FROM clicks").fetchone()
    for table in ("cell_days", "fact_days", "link_days", "link_months"):  # the totals add up to the raw rows
        assert db.execute(f"SELECT sum(clicks) + sum(bots), sum(uniques) FROM {table}").fetchone() == stored, table
    print(f"\nqueries on the last round's tables, {runs} runs each (p50 / p95 ms):")
    for name, sql in QUERIES.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            found = db.execute(sql, {"since": today - 30}).fetchall()
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        assert found and all(row[-1] for row in found), name  # each query finds clicks
        print(f"  {name:<36} {statistics.median(times):7.1f} {times[int(0.95 * (len(times) - 1))]:7.1f}")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=200_000, help="background clicks (bench/stats.py's)")
    parser.add_argument("--busy", type=int, default=1_000_000, help="the busy link's clicks in the last 30 days")
    parser.add_argument("--days", type=int, default=bench_stats.DAYS)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="runs of each query")
    args = parser.parse_args()
    now = int(datetime.now(UTC).timestamp())
    events = bench_stats.synthetic(args.clicks, now, days=args.days)
    if args.busy:
        events = sorted(events + bench_stats.busy_link(args.busy, now), key=lambda e: e.at)
    total = len(events)
    print(f"{total:,} clicks over {args.days} days (a busy link: {args.busy:,}), flushes of {args.batch:,}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            bare = bench_stats.bare_insert(Path(folder) / f"bare{round_}.db", events, args.batch)
            lean = ingest(Path(folder) / f"lean{round_}.db", events, args.batch)
            ratios.append(bare / lean)
            print(f"  round {round_ + 1}: {lean / total * 1e6:.1f} us a click, bare INSERT {bare / total * 1e6:.1f} us"
                  f" a row: ratio {bare / lean:.2f}")  # fmt: skip
        print(f"median of {args.rounds} rounds: ratio {statistics.median(ratios):.2f} of the bare INSERT (gate: 0.5)")
        queries(Path(folder) / f"lean{args.rounds - 1}.db", now // 86400, args.runs)


if __name__ == "__main__":
    main()
