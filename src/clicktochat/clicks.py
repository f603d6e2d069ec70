"""Click recording: the request only appends an event to a list in memory; a background
task parses and writes them to SQLite in batches, so no click waits on the disk. Stopping
the recorder writes what is left, so a graceful shutdown loses nothing."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from .store import Store
from .useragents import parse_device

log = logging.getLogger(__name__)
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
MAX_UTM_LENGTH = 200


class ClickEvent(NamedTuple):
    """Raw facts of one click, kept cheap to build (a tuple: identical clicks in the same
    second hash alike, so the writer parses and stores each distinct one once)."""

    at: int  # Unix seconds
    link_kind: str  # short | signed
    link_key: str
    channel: str
    agent_id: int | None
    campaign: str | None
    source: str | None
    query_string: bytes
    referer: str
    user_agent: str
    page_path: str | None = None  # widget clicks: the path of the page the button was on

    def to_row(self) -> tuple[Any, ...]:
        query: dict[str, list[str]] = {}
        if self.query_string:
            try:
                query = parse_qs(self.query_string.decode("latin-1"), max_num_fields=100)
            except ValueError:  # more fields than anyone sends but an attacker
                pass
        utm = [utm_value(query[key][0]) if key in query else None for key in UTM_KEYS]
        device = parse_device(self.user_agent)
        return (
            self.at, self.link_kind, self.link_key, self.channel, self.agent_id, self.campaign, self.source,
            *utm, int("fbclid" in query), int("gclid" in query), referrer_host(self.referer),
            device.device_class, device.os_family, device.browser_family, self.page_path,
        )  # fmt: skip


def utm_value(value: str) -> str | None:
    """A campaign label, cut short; e-mail addresses (newsletters put them there) are dropped."""
    return None if "@" in value else value[:MAX_UTM_LENGTH]


def merge_identical(events: list[ClickEvent]) -> list[tuple[Any, ...]]:
    """One row per distinct click (to the second), with how many there were."""
    return [(*event.to_row(), n) for event, n in Counter(events).items()]


def referrer_host(referer: str) -> str | None:
    """Only the host: full referrer URLs can carry personal data."""
    if not referer:
        return None
    try:
        host = urlsplit(referer).hostname
    except ValueError:
        return None
    return host[:253] if host else None


class ClickRecorder:
    def __init__(
        self, store: Store, flush_interval: float = 1.0, batch_size: int = 5000, max_pending: int = 1_000_000
    ) -> None:
        self.store = store
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.dropped = 0  # clicks refused because the database has been failing for a long while
        self._pending: list[ClickEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def record(self, event: ClickEvent) -> None:
        """Called on the request path: an append, nothing else. Memory is bounded: if writes have
        failed for so long that a million clicks wait, newer ones are counted as dropped."""
        if len(self._pending) < self.max_pending:
            self._pending.append(event)
        else:
            self.dropped += 1

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="clicktochat-click-writer")

    async def stop(self) -> int:
        """Stop the loop, then write everything still pending; returns how many that was."""
        self._stopping.set()
        if self._task is not None:
            await self._task
        return await self.flush()

    async def flush(self) -> int:
        written = 0
        while self._pending:
            batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
            try:
                # Parsing thousands of new user agents takes a while: off the event loop.
                await self.store.add_clicks(await asyncio.to_thread(merge_identical, batch))
            except BaseException:  # an error or a cancellation: keep them for the next try
                self._pending[:0] = batch
                raise
            written += len(batch)
        return written

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.flush_interval)
                return  # stop() writes the rest
            except TimeoutError:
                pass
            try:
                await self.flush()
            except Exception:
                log.exception("writing clicks failed; %d kept in memory for the next try", self.pending)
            if self.dropped:
                log.error("%d clicks were dropped: the database refused writes for too long", self.dropped)
