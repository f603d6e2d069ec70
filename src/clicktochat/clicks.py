"""Click recording. The request only counts an event in memory (identical clicks are one entry
with their count). A background task turns events into rows (robots told apart, user agents
parsed, unique visitors decided) and writes them in batches, with the daily totals that stats
read, in one transaction: the two never disagree, and no click waits on the disk. Stopping the
recorder writes what is left, so a graceful shutdown loses nothing; a killed process loses at
most one flush interval."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import islice
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from .cells import Cell, CellCache, CellInfo, Totals, cell_totals
from .clickstore import NO_ZONES, Zones
from .database import log_failure
from .sharedstore import SharedStore, decide_uniques, forget_visitors, share_salts
from .store import Store
from .uniques import RecentVisitors
from .useragents import parse_device, robot_name
from .visitors import DAY, Salts

log = logging.getLogger(__name__)
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
AD_CLICK_IDS = ("ctwa_clid", "fbclid", "gclid")  # Click-to-WhatsApp ads, Meta ads, Google Ads
MAX_UTM_LENGTH = 200
PRUNE_EVERY = 3600  # seconds between two deletions of raw rows older than the retention
# What stats can group by besides time and links, each a column of the daily totals.
DIMENSIONS = (
    "source", "referrer", "device", "os", "browser", *UTM_KEYS, "page", "ad_click", "robot", "via",
)  # fmt: skip
# The marker of a code we drew (qr.scan_url adds `qr`): a scan, not a tap. Dub's `qr=1` and the
# widget's `via=qr` (its desktop code) count too.
SCAN_MARKERS = (b"qr", b"qr=1", b"via=qr")


class ClickEvent(NamedTuple):
    """Raw facts of one click, kept cheap to build (a tuple: identical clicks in the same
    second hash alike, so the writer parses and stores each distinct one once)."""

    at: int  # Unix seconds
    link_kind: str  # short | signed | widget
    link_key: str
    channel: str
    agent_id: int | None
    campaign: str | None
    source: str | None
    query_string: bytes
    referer: str
    user_agent: str
    page_path: str | None = None  # widget clicks: the path of the page the button was on
    visitor: str = ""  # visitors.Salts.hashes(): today's salt, then yesterday's while it counts
    visitor_before: str = ""
    probe: bool = False  # a HEAD request: a link checker, never a person
    address: str = ""  # a person's, until the writer hashes it into `visitor` (within a second, never written)
    ref: str = ""  # the ref code put in the pre-filled message (conversations.with_ref)
    ref_address: str = ""  # the number the chat was opened with, which the ref code is looked up for
    business_id: int | None = None  # a business's link to a fixed number (no agent): whose day it counts in


Fields = tuple[Any, ...]
"""A ClickEvent's fields as a plain tuple: what waits for the writer (ClickRecorder.record)."""


def refs_of(events: Iterable[ClickEvent]) -> list[tuple[Any, ...]]:
    """click_refs rows of the clicks whose message carried a ref code. Without the visitor key:
    it would follow the click into the chat's start, and tie a named customer to their click rows
    (migration 020)."""
    return [
        (e.ref, e.at, e.link_kind, e.link_key, e.campaign, e.agent_id, e.channel, e.ref_address, None)
        for e in events if e.ref
    ]  # fmt: skip


class ClickRow(NamedTuple):
    """One row of the clicks table: `n` identical clicks, `uniques` of them the visitor's first."""

    at: int
    link_kind: str
    link_key: str
    channel: str
    agent_id: int | None
    campaign: str | None
    source: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_content: str | None
    utm_term: str | None
    ad_click: str | None  # the first of AD_CLICK_IDS the link carried
    referrer_host: str | None
    device_class: str
    os_family: str
    browser_family: str
    page_path: str | None
    robot: str | None  # what kind, for robots; None for people
    via: str | None  # "qr": scanned from a code we drew; None: a tap on the link
    business_id: int | None
    day: str  # YYYY-MM-DD in the business's time zone (UTC without one)
    visitor: str | None
    n: int
    uniques: int


def describe(event: ClickEvent, n: int, zones: Zones) -> ClickRow:
    """Everything stored of a click, but whether it was unique (that needs the ones before)."""
    query, referer, user_agent = event.query_string, event.referer, event.user_agent
    if len(query) + len(referer) <= MAX_CACHED_ANALYSIS:
        facts = analysis(query, referer, user_agent, event.probe)
    else:  # rare and long: not worth a place in the cache (whose memory this bounds)
        facts = analyse(query, referer, user_agent, event.probe)
    business_id, timezone = where(event, zones)
    return ClickRow(
        event.at, event.link_kind, event.link_key, event.channel, event.agent_id, event.campaign, event.source,
        facts[0], facts[1], facts[2], facts[3], facts[4], facts[5], facts[6], facts[7], facts[8], facts[9],
        kept_text(event.page_path), facts[10], facts[11], business_id, local_day(event.at // 900, timezone),
        event.visitor or None, n, 0,
    )  # fmt: skip


def where(event: ClickEvent, zones: Zones) -> tuple[int | None, str]:
    """The business a click counts for, and its time zone: its agent's, else its own business's
    (a link to a fixed number), else none and UTC."""
    if event.agent_id is not None or event.business_id is None:
        return zones.agents.get(event.agent_id or 0, (None, "UTC"))
    return event.business_id, zones.businesses.get(event.business_id, "UTC")


NO_BUSINESS = (None, "UTC")


def cell_for(event: ClickEvent, business_id: int | None) -> Cell:
    """The cell (cells.CELL_COLUMNS) of what describe() would store of `event`, '' and 0 for none:
    what the writer works out for a click it has not met."""
    query, referer, user_agent = event.query_string, event.referer, event.user_agent
    if len(query) + len(referer) <= MAX_CACHED_ANALYSIS:
        facts = analysis(query, referer, user_agent, event.probe)
    else:
        facts = analyse(query, referer, user_agent, event.probe)
    return (
        event.link_kind, event.link_key, business_id or 0, event.campaign or "", event.agent_id or 0, event.channel,
        event.source or "", facts[6] or "", facts[7], facts[8], facts[9], facts[0] or "", facts[1] or "",
        facts[2] or "", facts[3] or "", facts[4] or "", kept_text(event.page_path) or "", facts[5] or "",
        facts[10] or "", facts[11] or "",
    )  # fmt: skip


class LogRow(NamedTuple):
    """One row of click_log (migration 023): `n` identical clicks of one cell in the same second,
    `uniques` of them the visitor's first."""

    at: int
    cell: int
    day: str
    visitor: str | None
    n: int
    uniques: int


class Visit(NamedTuple):
    """What uniques.RecentVisitors reads of a row."""

    at: int
    visitor: str | None
    robot: bool


# What describe() reads from the query string, referrer and user agent: the utm_* values, the ad
# click id, the referrer's host, the device class, OS and browser families, the robot's kind, and
# whether the link was scanned.
Analysis = tuple[
    str | None, str | None, str | None, str | None, str | None, str | None, str | None, str, str, str, str | None,
    str | None,
]
MAX_CACHED_ANALYSIS = 1024  # characters of query string and referrer together, for a place in the cache


def analyse(query_string: bytes, referer: str, user_agent: str, probe: bool) -> Analysis:
    """The facts of a click that depend only on its query string, referrer and user agent."""
    query: dict[str, list[str]] = {}
    if query_string:
        try:
            query = parse_qs(query_string.decode("latin-1"), max_num_fields=100)
        except ValueError:  # more fields than anyone sends but an attacker
            pass
    utm = (utm_value(query[key][0]) if key in query else None for key in UTM_KEYS)
    utm_source, utm_medium, utm_campaign, utm_content, utm_term = utm
    device = parse_device(user_agent)
    return (
        utm_source, utm_medium, utm_campaign, utm_content, utm_term,
        next((name for name in AD_CLICK_IDS if name in query), None), referrer_host(referer),
        device.device_class, device.os_family, device.browser_family,
        "link checker" if probe else robot_name(user_agent), scanned(query_string),
    )  # fmt: skip


def scanned(query_string: bytes) -> str | None:
    """"qr" when the query string carries one of SCAN_MARKERS (read by the writer, never on the
    click path: the click only keeps the raw query string, as before)."""
    if query_string and any(part in SCAN_MARKERS for part in query_string.split(b"&")):
        return "qr"
    return None


# Memoised per distinct (query string, referrer, user agent): an ad's clicks share a few of each, so
# the writer parses each combination once. 8,192 entries of at most 1,024 + 512 characters: at
# most about 15 MB, whatever the traffic (the user-agent caches below it are bounded apart).
analysis = lru_cache(maxsize=8192)(analyse)


@lru_cache(maxsize=4096)
def local_day(quarter_hour: int, timezone: str) -> str:
    """The date in `timezone` (every offset in use is a multiple of 15 minutes, hence the key)."""
    return datetime.fromtimestamp(quarter_hour * 900, ZoneInfo(timezone)).date().isoformat()


def utm_value(value: str) -> str | None:
    """A campaign label, cut short; e-mail addresses (newsletters put them there) are dropped."""
    return None if "@" in value else kept_text(value[:MAX_UTM_LENGTH])


def kept_text(value: str | None) -> str | None:
    """Text from a URL as both databases keep it: PostgreSQL's text cannot hold NUL, so NUL is
    U+FFFD on both (as clicktochat.database binds it), and counted with a U+FFFD already there."""
    return value.replace("\0", "\ufffd") if value and "\0" in value else value


def referrer_host(referer: str) -> str | None:
    """Only the host: full referrer URLs can carry personal data."""
    if not referer:
        return None
    try:
        host = urlsplit(referer).hostname
    except ValueError:
        return None
    return host[:253] if host else None


def first_visits(
    visits: Sequence[Visit], before: Sequence[str]
) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """Each person's visitor key in a batch with the first and last second of their clicks, and
    its key under yesterday's salt where there is one (robots have no say in uniques)."""
    firsts: dict[str, tuple[int, int]] = {}
    keys: dict[str, str] = {}
    for visit, key in zip(visits, before, strict=True):
        if visit.visitor and not visit.robot:
            first, last = firsts.get(visit.visitor, (visit.at, visit.at))
            firsts[visit.visitor] = (min(first, visit.at), max(last, visit.at))
            if key:
                keys[visit.visitor] = key
    return firsts, keys


def mark_uniques(described: Described, new: set[str]) -> tuple[list[LogRow], Totals]:
    """One unique for the first row of each visitor in `new` (the database said so), and the
    totals the rows add, each list in its key's order (two writers lock rows in the same order)."""
    left = set(new)
    rows = []
    for row, visit in sorted(zip(described.rows, described.visits, strict=True), key=lambda pair: pair[0].at):
        if row.visitor in left and not visit.robot:
            left.discard(row.visitor)
            row = tuple.__new__(LogRow, (*row[:-1], 1))  # row._replace(uniques=1)
        rows.append(row)
    return rows, cell_totals(rows, described.infos).sorted()


@dataclass
class Described:
    """A batch as ClickRecorder.describe() leaves it."""

    rows: list[LogRow]
    visits: list[Visit]  # each row's, for the unique-visitor decision
    befores: list[str]  # each row's visitor key under yesterday's salt, or ""
    infos: dict[int, CellInfo]  # the rows' cells, by id
    missing: dict[Cell, list[int]]  # cells the writer had no id for, with their rows' places
    refs: list[tuple[Any, ...]]  # click_refs rows

    def place(self, known: Mapping[Cell, CellInfo]) -> None:
        """Give the rows of `missing` their cells, now that the database has named them."""
        for cell, places in self.missing.items():
            found = known[cell]
            self.infos[found.id] = found
            for i in places:
                self.rows[i] = self.rows[i]._replace(cell=found.id)
        self.infos.pop(0, None)
        self.missing = {}


class Decided(NamedTuple):
    """A batch whose unique visitors the database has decided (several instances), not yet written."""

    described: Described
    new: set[str]
    clicks: int


def marked(described: Described, uniques: list[int]) -> tuple[list[LogRow], Totals]:
    """The rows with their uniques (RecentVisitors.decide's), and the totals they add."""
    rows = [
        tuple.__new__(LogRow, (*row[:-1], 1)) if unique else row  # row._replace(uniques=1), cheaper
        for row, unique in zip(described.rows, uniques, strict=True)
    ]
    return rows, cell_totals(rows, described.infos)


class ClickRecorder:
    def __init__(
        self,
        store: Store,
        salts: Salts | None = None,
        flush_interval: float = 1.0,
        retention_days: int = 400,
        batch_size: int = 20_000,
        max_pending: int = 1_000_000,
        shared: SharedStore | None = None,
    ) -> None:
        """`shared` (PostgreSQL): several instances write clicks; unique visitors and the salts
        are then decided in the database (sharedstore), and pruning runs on one instance."""
        self.store = store
        self.shared = shared
        self.salts = salts or Salts(1800)
        self.visitors = RecentVisitors(self.salts.window)
        self.cells = CellCache()
        self._zones = NO_ZONES  # the last batch's: when they change, cells are looked up again
        self.flush_interval = flush_interval
        self.retention_days = retention_days
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.dropped = 0  # clicks refused because the database has been failing for a long while
        # Clicks waiting, each distinct one (a plain tuple: record() says why) with how many times
        # it came; the writer makes them ClickEvents again. And how many clicks that is.
        self._pending: dict[Fields, int] = {}
        self._pending_clicks = 0
        self._flushing = 0  # clicks taken by the flush under way, not written yet
        # Batches whose unique visitors the database has decided, not yet written: written as
        # they are (deciding again would find their own visitors seen).
        self._decided: list[Decided] = []
        self._decided_clicks = 0  # the clicks of those batches
        self.failing = False  # the last write failed (the database is away): clicks wait in memory
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()  # one flush at a time (the loop's, a test's, stop()'s)
        self._stopping = asyncio.Event()
        self._pruned_at = 0.0

    def record(self, event: ClickEvent) -> None:
        """Called on the request path: a count, nothing else. Memory is bounded: if writes have
        failed for so long that a million clicks wait, newer ones are counted as dropped.
        Identical clicks (one visitor, the same second) are merged here, a quarter of a
        microsecond each, rather than by the writer's thread: its 7 ms a second of merging
        (30,000 clicks) held the GIL away from the event loop, the slowest requests' time.
        Kept as a plain tuple: the garbage collector stops tracking a plain tuple of strings and
        numbers at its first pass, where a NamedTuple stays tracked, and a second's clicks (tens
        of thousands) walked by every older generation's pass made the slowest requests slower.
        (docs/performance.md, "The p99 below bare's".)"""
        if self._pending_clicks + self._flushing + self._decided_clicks < self.max_pending:
            fields = tuple(event)
            self._pending[fields] = self._pending.get(fields, 0) + 1
            self._pending_clicks += 1
        else:
            self.dropped += 1

    @property
    def pending(self) -> int:
        return self._pending_clicks + self._flushing + self._decided_clicks

    async def start(self, loop: bool = True, now: int | None = None) -> None:
        """Recall the visitors of the last window (a restart must not make them new), a chunk
        of raw rows at a time, then run the loop; without it (`loop=False`, for tests) nothing
        is written but by run_once(), flush() and stop()."""
        if self.shared is None:  # with several instances, the database remembers (seen_visitors)
            since = self.visitors.since(int(time.time()) if now is None else now)
            async for visitors in self.store.recent_visitors(since):
                self.visitors.remember(visitors)
        if loop:
            self._task = asyncio.create_task(self._run(), name="clicktochat-click-writer")

    async def stop(self) -> int:
        """Stop the loop, then write everything still pending; returns how many that was."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        written = 0
        while self.pending:
            written += await self.flush()
        return written

    async def flush(self) -> int:
        """Write the clicks pending now, `batch_size` a transaction. Clicks recorded meanwhile wait
        for the next flush: a writer that chased them would write a few hundred at a time, each in
        a transaction of its own, all second long (on PostgreSQL, a round trip per statement, each
        taking the GIL back from the event loop). What a failed write left stays pending, first.
        Flushes take turns: two at once would each write the other's decided batches."""
        async with self._flush_lock:
            todo, self._pending = self._pending, {}  # `todo` loses each batch once it is written
            self._flushing, self._pending_clicks = self._pending_clicks, 0  # still counted by pending
            try:
                return await (self._write(todo) if self.shared is None else self._write_shared(todo))
            finally:
                if todo:  # what was not written waits first, then what came meanwhile
                    for fields, n in self._pending.items():
                        todo[fields] = todo.get(fields, 0) + n
                    self._pending = todo
                self._pending_clicks += self._flushing
                self._flushing = 0

    def _take(self, todo: dict[Fields, int]) -> dict[Fields, int]:
        """The next batch of `todo`: `todo` itself when it fits (nearly always: nothing is copied
        on the event loop), else its first `batch_size` distinct clicks, each with its count."""
        return todo if len(todo) <= self.batch_size else dict(islice(todo.items(), self.batch_size))

    def _written(self, todo: dict[Fields, int], batch: dict[Fields, int]) -> int:
        """Take a written batch out of `todo` and of the clicks being flushed; how many clicks it held."""
        if batch is todo:  # the rest of the flush: all the clicks still in flight
            clicks = self._flushing
            todo.clear()
        else:  # a backlog, a batch at a time (a few milliseconds for 20,000 distinct clicks)
            clicks = sum(batch.values())
            for fields in batch:
                del todo[fields]
        self._flushing -= clicks
        return clicks

    async def _write(self, todo: dict[Fields, int]) -> int:
        written = 0
        while todo:
            batch = self._take(todo)
            # Hashing visitors and parsing new user agents takes a while: off the event loop.
            described = await self._describe(batch)
            uniques, seen = await asyncio.to_thread(self.visitors.decide, described.visits, described.befores)
            rows, totals = await asyncio.to_thread(marked, described, uniques)
            await self.store.add_clicks(rows, totals, described.refs)
            clicks = self._written(todo, batch)
            # Written: now they count as seen. In the worker thread too, a few microseconds a new
            # visitor, which the event loop would otherwise spend in one go, between two requests.
            await asyncio.to_thread(self.visitors.remember, seen)
            written += clicks
        self.salts.expire(int(time.time()))
        if self.salts.changed:
            await self.store.set_meta("visitor_salts", self.salts.save())
        return written

    async def _write_shared(self, todo: dict[Fields, int]) -> int:
        """_write() with other instances writing too (PostgreSQL): the day's salt is the one they
        use (sharedstore.share_salts), unique visitors are decided in the database
        (sharedstore.decide_uniques), and the totals go in a fixed order (two writers adding to
        the same rows lock them in the same order: no deadlock)."""
        written = await self._write_decided()
        while todo:
            batch = self._take(todo)
            await self._share_salts(max(fields[0] for fields in batch))  # ClickEvent.at
            described = await self._describe(batch)
            firsts, before = first_visits(described.visits, described.befores)
            new = await decide_uniques(self.store, firsts, before, self.salts.window)
            # Decided (committed): from here the batch is written as it is, even if this write fails.
            clicks = self._written(todo, batch)
            self._decided.append(Decided(described, new, clicks))
            self._decided_clicks += clicks
            written += await self._write_decided()
        await self._share_salts(int(time.time()))
        return written

    async def _write_decided(self) -> int:
        written = 0
        while self._decided:
            decided = self._decided[0]
            rows, totals = await asyncio.to_thread(mark_uniques, decided.described, decided.new)
            await self.store.add_clicks(rows, totals, decided.described.refs)
            self._decided.pop(0)
            self._decided_clicks -= decided.clicks
            written += decided.clicks
        return written

    async def _share_salts(self, now: int) -> None:
        self.salts.expire(now)
        if self.salts.changed:
            self.salts = Salts(self.salts.window, await share_salts(self.store, self.salts.save()))

    async def _describe(self, batch: dict[Fields, int]) -> Described:
        """describe() in a worker thread, then the cells it met for the first time from the
        database (new ones written in a transaction of their own: a cell no row names costs nothing)."""
        zones = await self.store.click_zones()
        if zones != self._zones:  # a business moved or changed time zone: its clicks' cells did
            self.cells.by_fields.clear()
            self._zones = zones
        described = await asyncio.to_thread(self.describe, batch, zones)
        if described.missing:
            self.cells.learn(await self.store.click_cells(list(described.missing)))
            await asyncio.to_thread(described.place, self.cells.known)
        return described

    def describe(self, batch: dict[Fields, int], zones: Zones) -> Described:
        """The batch's raw rows, none unique yet (visitors hashed here, once per distinct click,
        rather than on the request path), and what decides their uniques. The loop every click
        goes through: a dictionary lookup for its cell, a cached one for its day. A cell the
        writer has not met waits in `missing`, its rows' places with it."""
        rows: list[LogRow] = []
        visits: list[Visit] = []
        befores: list[str] = []
        infos: dict[int, CellInfo] = {}
        missing: dict[Cell, list[int]] = {}
        refs: list[tuple[Any, ...]] = []
        by_fields, known, remember = self.cells.by_fields, self.cells.known, self.cells.remember
        agents, businesses, hashes = zones.agents, zones.businesses, self.salts.hashes
        for fields, n in batch.items():
            event = tuple.__new__(ClickEvent, fields)  # ClickEvent._make(fields), cheaper
            if event[14]:  # an address: hashed into the visitor's keys, then forgotten
                today, before = hashes(event.at, event.address, event.user_agent, event.link_kind, event.link_key)
                # event._replace(address="", visitor=today, visitor_before=before), at a quarter of the cost
                event = tuple.__new__(ClickEvent, (*event[:11], today, before, event[13], "", *event[15:]))
            key = (event[1:11], event[13], event[17])  # what makes its cell (ClickEvent's order), zones aside
            found = by_fields.get(key)
            if found is None:
                cell = cell_for(event, where(event, zones)[0])
                found = known.get(cell)
                if found is None:
                    missing.setdefault(cell, []).append(len(rows))
                    found = CellInfo(0, 0, 0, cell[2], bool(cell[18]), ())  # its ids once known (place)
                else:
                    remember(key, found)
            infos[found.id] = found
            agent = event[4]
            if agent is not None or event[17] is None:
                zone = agents.get(agent or 0, NO_BUSINESS)[1]
            else:
                zone = businesses.get(event[17], "UTC")
            at, visitor = event[0], event[11] or None
            rows.append(tuple.__new__(LogRow, (at, found.id, local_day(at // 900, zone), visitor, n, 0)))
            visits.append(tuple.__new__(Visit, (at, visitor, found.robot)))
            befores.append(event[12])
            if event[15]:
                refs.append(refs_of((event,))[0])
        return Described(rows, visits, befores, infos, missing, refs)

    async def prune(self, now: float) -> int:
        """Delete raw rows past the retention; the daily totals stay. With several instances, the
        one whose turn it is (sharedstore.SharedStore.due) does it, and forgets old visitor keys."""
        self._pruned_at = now
        if self.shared is not None:
            if not await self.shared.due("prune_clicks", now, PRUNE_EVERY):
                return 0
            await forget_visitors(self.store, int(now) - 2 * self.salts.window)
        return await self.store.prune_clicks(int(now) - self.retention_days * DAY)

    async def run_once(self, now: float | None = None) -> None:
        """One step of the loop: write what is pending, and delete old rows once every
        PRUNE_EVERY seconds. Errors are logged, never raised: the clicks wait for the next step."""
        now = time.time() if now is None else now
        try:
            await self.flush()
            if self.failing:
                log.warning("writing clicks works again")
            self.failing = False
            if now - self._pruned_at >= PRUNE_EVERY:
                deleted = await self.prune(now)
                if deleted:
                    log.info("deleted %d click rows older than %d days", deleted, self.retention_days)
        except Exception as exc:
            if not self.failing:
                log_failure(log, "writing clicks failed; %d kept in memory for the next try", self.pending)
            else:  # not a traceback a second while the database is away
                log.debug("writing clicks failed again (%s); %d kept in memory", exc, self.pending)
            self.failing = True
        if self.dropped:
            log.error("%d clicks were dropped: the database refused writes for too long", self.dropped)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(self.flush_interval):  # not wait_for: in 3.11 it can swallow a cancel
                    await self._stopping.wait()
                return  # stop() writes the rest
            except TimeoutError:
                pass
            await self.run_once()
