"""The sender: messages wait in the `outbox` table and are sent through the Graph API by a
background task. Rows are claimed with a lease, so no two senders send one row; sends that
Meta refuses for now (429, 5xx, rate limits) are tried again with exponential backoff and
jitter; refusals for good are kept as `failed` with Meta's code and a message people can read;
a refused access token (190, 102) marks its number to be connected again and holds that number's
messages, queued, until it is; and every row is checked again just before it goes (an opt-out or
a closed window that came while it waited cancels it)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .chatstore import ChatStore
from .database import log_failure
from .graph import GraphClient, GraphError
from .numberstore import NumberKeys
from .outboxstore import OutboxRow

log = logging.getLogger(__name__)

Check = Callable[[list[OutboxRow]], Awaitable[list[str | None]]]  # per row, why it may no longer be sent, or None
CLAIM = 4  # rows claimed per round, per send at once: the next sends start while others wait on Meta


MARKETING_STOPPED = 131050  # Meta's error: the person stopped this business's marketing messages
GONE = "The message is no longer there to send (its person erased, or another sender took it)."
WAITING_FOR_TOKEN = ("Waiting: Meta refused the number's access token; it goes once the number is connected again"
                     " with a new token.")
UNKNOWN_OUTCOME_WAIT = 60
"""Seconds at least before trying again a send that got no answer (a timeout, a dropped
connection): Meta may have taken it, and its `sent` status, naming the row, marks it sent."""


@dataclass(frozen=True)
class Backoff:
    base: float = 2.0
    cap: float = 15 * 60
    max_attempts: int = 10

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds before try number `attempt + 1`: Meta's Retry-After when it gave one, else
        base * 2^(attempt-1), capped, with "full jitter" between half and all of it."""
        if retry_after is not None:
            return min(self.cap, retry_after)
        ceiling = min(self.cap, self.base * float(2 ** max(0, attempt - 1)))
        jitter: float = (rng or random).random()
        return ceiling * (0.5 + jitter / 2)


@dataclass
class Pace:
    """Meta's throughput per business number (messages a second), kept by the sender: a
    generic cell rate, so up to one second's worth goes at once and then one every
    1/per_second s. Real time (time.monotonic), not the clock tests move: it only spaces sends."""

    per_second: float = 80.0
    _next: dict[int, float] = field(default_factory=dict)  # number id -> when its next message may go

    def delay(self, number_id: int, now: float) -> float:
        """Seconds to wait before sending one message from this number (and count it as sent)."""
        interval = 1.0 / self.per_second
        earliest = max(self._next.get(number_id, 0.0), now - 1.0 + interval)  # at most 1 s of credit
        self._next[number_id] = earliest + interval
        return max(0.0, earliest - now)


class Sender:
    """`run_once()` sends what is due (tests call it, moving the clock); `run()` is the loop."""

    def __init__(
        self, chats: ChatStore, graph: GraphClient, keys: Callable[[], dict[int, NumberKeys]], check: Check,
        clock: Callable[[], float] = time.time, concurrency: int = 8, lease: int = 60,
        backoff: Backoff = Backoff(), interval: float = 1.0, reload: Callable[[], Awaitable[None]] | None = None,
    ) -> None:  # fmt: skip
        self.chats = chats
        self.reload = reload  # the numbers' keys read again, once a number's token was refused
        self.graph = graph
        self.keys = keys
        self.check = check
        self.clock = clock
        self.concurrency = concurrency
        self.lease = lease
        self.backoff = backoff
        self.interval = interval
        self.pace = Pace()
        self.failing = False  # the last round failed: said once, not each tick until it works again
        self._wake = asyncio.Event()
        self._due: list[tuple[OutboxRow, asyncio.Future[str | None]]] = []  # rows at the moment of sending
        self._checking: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def claim_size(self) -> int:
        """Rows a claim takes: `CLAIM` per send at once, but no more than Meta's pace lets go in a
        quarter of the lease (a slow number's rows would wait out their lease in the batch)."""
        return max(1, min(CLAIM * self.concurrency, int(self.pace.per_second * self.lease / 4)))

    async def run_once(self) -> int:
        """Claim due rows (`claim_size`) and send them, `concurrency` at a time (a slow send
        holds up one slot, not the batch); returns how many were claimed."""
        now = int(self.clock())
        rows = await self.chats.claim(now, self.lease, self.claim_size())
        if rows:
            await self._batch(rows, asyncio.Semaphore(self.concurrency), claimed_at=now)
        return len(rows)

    async def drain(self) -> int:
        """Send everything due, as `run_once()` batch after batch, but with the next batch claimed
        and checked while the last one is still on its way (two batches in flight sharing the
        `concurrency` slots), so the sends never wait for the database between batches. Returns
        how many rows were claimed."""
        slots = asyncio.Semaphore(self.concurrency)
        batches: set[asyncio.Task[None]] = set()
        writes: set[asyncio.Task[None]] = set()  # what Meta took, being written while the next sends go
        claimed = 0
        try:
            while rows := await self.chats.claim(now := int(self.clock()), self.lease, self.claim_size()):
                claimed += len(rows)
                batches.add(asyncio.create_task(self._batch(rows, slots, writes, now), name="clicktochat-send-batch"))
                if len(batches) >= 2:
                    done, batches = await asyncio.wait(batches, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # a batch's error (a locked database) stops the round
        finally:  # what is on its way finishes (and is written) before this returns or raises
            results = await asyncio.gather(*batches, return_exceptions=True)
            results += await asyncio.gather(*writes, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return claimed

    async def _batch(self, rows: list[OutboxRow], slots: asyncio.Semaphore,
                     writes: set[asyncio.Task[None]] | None = None, claimed_at: int | None = None) -> None:  # fmt: skip
        """Send `rows` (claimed at `claimed_at`), `slots` at a time, then record what Meta took:
        awaited, or (`writes`) as a task of its own, so the caller's next batch need not wait."""
        claimed_at = int(self.clock()) if claimed_at is None else claimed_at
        reasons = await self.check(rows)  # all rows at once: one hop to the database, not one per row
        sent: list[tuple[int, str, int]] = []

        async def one(row: OutboxRow, reason: str | None) -> None:
            async with slots:
                key = self.keys().get(row.number_id)  # as now: a token refused meanwhile holds the rest
                if key is None:
                    await self.chats.give_up(row.id, "cancelled", None, "The number is no longer connected.")
                elif key.token_refused_at is not None:  # held until the number is connected again
                    if not await self.chats.hold(row.id, None, WAITING_FOR_TOKEN, int(self.clock())):
                        await self._reload()  # connected again elsewhere: its new token read before it goes
                elif reason is not None:
                    await self.chats.give_up(row.id, "cancelled", None, reason)
                else:
                    await self._send(row, key, sent, claimed_at)

        try:
            await asyncio.gather(*(one(row, reason) for row, reason in zip(rows, reasons, strict=True)))
        finally:  # what Meta took is written in one transaction, even when the batch is cut short
            if writes is None:
                await self.chats.sent_many(sent)
            else:
                writes.add(asyncio.create_task(self.chats.sent_many(sent), name="clicktochat-sent"))

    async def _send(self, row: OutboxRow, key: NumberKeys, sent: list[tuple[int, str, int]], claimed_at: int) -> None:
        wait = self.pace.delay(row.number_id, time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        # A row that waited half its lease (a slow Meta, a slow pace) is kept for another lease
        # first; if another sender took it back meanwhile (or a status showed it went), it is
        # theirs: sent once, never twice (found by a review, with two instances and a slow Meta).
        now = int(self.clock())
        if now >= claimed_at + self.lease / 2 and not await self.chats.renew(row.id, row.attempts, now + self.lease):
            return
        # Checked again at the moment of sending, not only when claimed: a STOP or an erasure
        # applied while the row waited for its turn (Meta's pace, a slow Meta, the batch before
        # it) holds it back (found by a review: sends went on for 9 s after a STOP).
        reason = await self.allowed_now(row)
        if reason is not None:
            if reason != GONE:
                await self.chats.give_up(row.id, "cancelled", None, reason)
            return
        try:
            wamid = await self.graph.send(key.phone_number_id, key.access_token, row.payload)
        except GraphError as error:
            detail = f"{error.message} ({error.code}{': ' + error.detail if error.detail else ''})"
            if error.token_refused:
                await self._token_refused(row, key, error.code, detail)
            elif error.retryable and row.attempts < self.backoff.max_attempts:
                delay = self.backoff.delay(row.attempts, error.retry_after)
                if error.status == 0:  # no answer: Meta may have taken it, and its `sent` status would say so
                    delay = max(delay, UNKNOWN_OUTCOME_WAIT)
                await self.chats.retry_later(row.id, int(self.clock() + delay), error.code or None, detail)
            else:
                await self.chats.give_up(row.id, "failed", error.code or None, detail)
                if error.code == MARKETING_STOPPED:  # told in the answer, as in a status: an opt-out either way
                    await self.chats.add_consent(
                        key.business_id, row.payload.get("to"), row.payload.get("recipient"), "*", "out",
                        int(self.clock()), "meta", "Stopped marketing messages (Meta error 131050)",
                        proof={"outbox_id": row.id},
                    )  # fmt: skip
            return
        sent.append((row.id, wamid, int(self.clock())))

    async def _token_refused(self, row: OutboxRow, key: NumberKeys, code: int, detail: str) -> None:
        """Meta refused the number's token: the number is marked (the dashboard, the CLI, the API
        and /healthz say so) and its messages held, not failed, until it is connected again; a
        number connected again with a new token while this send was on its way sends it again now."""
        if await self.chats.refuse_token(row.number_id, key.access_token, row.id, code, detail, int(self.clock())):
            log.warning("WhatsApp number %d: Meta refused its access token (%d); its messages wait until it is"
                        " connected again with a new token", row.number_id, code)  # fmt: skip
            await self._reload()
        else:  # the new token read first (another process connected it again), or the next try is refused too
            await self._reload()
            await self.chats.retry_later(row.id, int(self.clock()), None, "Meta refused the number's old access token:"
                                         " sending again with the new one.")  # fmt: skip

    async def _reload(self) -> None:
        if self.reload is not None:
            await self.reload()

    async def allowed_now(self, row: OutboxRow) -> str | None:
        """Why `row` may not go now (`check` again, or GONE: erased, or no longer this claim's), or
        None. Rows that reach this moment together are checked together (a few queries for all of
        them): those that come while a check is on its way wait for the next one."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._due.append((row, future))
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check_due(), name="clicktochat-send-check")
        return await future

    async def _check_due(self) -> None:
        while self._due:
            due, self._due = self._due, []
            rows = [row for row, _ in due]
            try:
                ours = await self.chats.still_claimed(rows)
                reasons = iter(await self.check([row for row in rows if row.id in ours]))
            except Exception as exc:  # a locked database: these sends fail, their rows go again later
                for _, future in due:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException:  # cancelled (the loop closing): so are the sends that wait on it
                for _, future in [*due, *self._due]:
                    future.cancel()
                raise
            for row, future in due:
                reason = next(reasons) if row.id in ours else GONE
                if not future.done():  # its sender may have been cancelled meanwhile
                    future.set_result(reason)

    async def run(self) -> None:
        while True:
            try:
                while await self.drain():
                    pass
                self.failing = False
            except Exception:  # a locked database, say: try again at the next tick
                if not self.failing:  # once, not a tick, while PostgreSQL restarts
                    log_failure(log, "could not send queued messages")
                self.failing = True
            try:
                async with asyncio.timeout(self.interval):  # not wait_for: in 3.11 it can swallow a cancel
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
