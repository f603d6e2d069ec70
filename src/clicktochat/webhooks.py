"""Meta's webhook at `/webhooks/whatsapp`: the verification handshake (GET), and events (POST)
checked against `X-Hub-Signature-256` over the raw bytes, stored, then acknowledged. A
`WebhookProcessor` applies stored events from the database, so a crash after the 200 loses
nothing, and a body Meta delivers again changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .budget import client_address, network
from .chatstore import ChatStore
from .conversations import parse
from .database import away, log_failure
from .errors import (
    FieldError,
    Forbidden,
    LengthRequired,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .intake import Taken
from .journal import MOVE_BATCH
from .numberstore import NumberKeys
from .visitors import forwarded_for

if TYPE_CHECKING:
    from .journal import Journal
    from .whatsapp import WhatsApp

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 4 * 1024 * 1024  # Meta's bodies are at most a few MiB; a batch of 1,000 changes is under 2 MiB
# What unsigned strangers can make us hold in memory: the bytes of bodies being read, not yet
# checked, in all (64 MiB) and from one address (one largest body: Meta's are 40 KiB to 2 MiB);
# a body waits READER_WAIT s for room, then gets a 503. Filling it takes 16 addresses each
# sending 4 MiB every READ_DEADLINE s (about 100 Mbit/s): a flood for the reverse proxy, whose
# request buffering (nginx's default) hands bodies over whole.
READ_BUDGET, READ_BUDGET_PER_ADDRESS = 16 * MAX_BODY_BYTES, MAX_BODY_BYTES
READER_WAIT = 5.0
READ_DEADLINE = 5.0  # seconds a body may take to arrive (Meta's arrive in well under one)
MAX_CHALLENGE_LENGTH = 200
OK = Response(status_code=200)  # the same answer every time: made once (a Response builds its headers)
PRUNE_EVERY = 3600  # seconds between two deletions of applied bodies past the retention
DISK_FULL_RETRY = 60  # seconds a 503 for a full disk asks Meta to wait (it retries for days anyway)
QUIET, MAX_YIELD = 0.02, 1.0  # the processor applies once no body came for QUIET s, or after MAX_YIELD s
BURST_BATCH = 1  # ...bodies it applies then, every MAX_YIELD s, while they keep coming


@dataclass
class RareWarning:
    """A warning logged once a minute at most, however many requests meet its cause."""

    text: str
    every: float = 60.0
    _at: float | None = None

    def warn(self, exc_info: bool = False) -> None:
        """`exc_info`: with the exception being handled, as a traceback, unless it is the database
        being away (a restart of PostgreSQL): that is said in words (database.away)."""
        now = time.monotonic()
        if self._at is None or now - self._at >= self.every:
            self._at = now
            error = sys.exc_info()[1] if exc_info else None
            if error is not None and away(error):
                log.warning("%s (the database is not answering: %s)", self.text, type(error).__name__)
            else:
                log.warning(self.text, exc_info=exc_info)


disk_full = RareWarning("the disk is full: webhook bodies cannot be stored, and get 503 until there is room")
match_failed = RareWarning("could not tie chats to clicks written after their first message; trying again later")
move_failed = RareWarning("could not move webhook bodies from the journal into the database; trying again later")


def signed_by(body: bytes, header: str, keys: Sequence[NumberKeys]) -> list[NumberKeys]:
    """The numbers whose app secret made this signature (`sha256=<hex HMAC-SHA256>`), each
    compared in constant time. Numbers of one Meta app share its secret."""
    scheme, _, signature = header.strip().partition("=")
    if scheme.lower() != "sha256" or not signature or not signature.isascii():  # compare_digest takes ASCII only
        return []
    digests: dict[str, bool] = {}
    matched = []
    for key in keys:
        if key.app_secret not in digests:
            expected = hmac.digest(key.app_secret.encode(), body, "sha256").hex()  # one-shot, in OpenSSL
            digests[key.app_secret] = hmac.compare_digest(expected, signature.strip().lower())
        if digests[key.app_secret]:
            matched.append(key)
    return matched


def verify_token_ok(token: str, keys: Sequence[NumberKeys]) -> bool:
    """The handshake's token against every connected number's (stored as SHA-256)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = False
    for key in keys:
        found |= hmac.compare_digest(digest, key.verify_token_hash or "")
    return found


async def handshake(request: Request) -> Response:
    """Meta's subscription check: echo `hub.challenge` when the verify token is one of ours."""
    whatsapp: WhatsApp = request.app.state.service.whatsapp
    params = request.query_params
    if params.get("hub.mode") != "subscribe":
        raise MalformedRequest("hub.mode must be 'subscribe'.", [FieldError("hub.mode", "must be 'subscribe'")])
    challenge = params.get("hub.challenge", "")
    if not challenge or len(challenge) > MAX_CHALLENGE_LENGTH or not challenge.isascii() or not challenge.isprintable():
        reason = f"is missing or not a printable ASCII string of at most {MAX_CHALLENGE_LENGTH} characters"
        raise MalformedRequest(f"hub.challenge {reason}.", [FieldError("hub.challenge", reason)])
    if not verify_token_ok(params.get("hub.verify_token", ""), whatsapp.keys):
        address = client_address(request.scope, request.app.state.proxies)
        now = whatsapp.clock()
        whatsapp.refusals.add(address, now)
        wait = whatsapp.refusals.retry_after(address, now)
        if wait:  # guessing verify tokens: slowed down like bad signatures
            raise TooManyRequests(f"Too many refused webhook requests from this address; try again in {wait} s.", wait)
        raise Forbidden("hub.verify_token is not the verify token of a connected number.")
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


async def receive(scope: Scope, receive_: Receive) -> Response:
    """Check the signature on the raw bytes, store the body, answer 200. Nothing is stored for
    a body that is unsigned, signed with another secret, too large, or not JSON.

    A correctly signed body is always taken, whoever sends it (Meta's addresses are not known,
    and must never be locked out). What strangers can cost is bounded instead: the bytes read
    and not yet checked (ReadBudget: in all, and from one address; a body finding no room
    waits up to READER_WAIT seconds, then gets 503 with Retry-After, which Meta retries), and
    the time a body takes to arrive (READ_DEADLINE, then 408): a connection that sends a few
    bytes and idles holds those bytes for seconds, never a turn that Meta's bodies wait for.
    An address whose requests keep being refused gets 429 instead of 401/403, so a scanner
    learns to wait.

    Plain ASGI, not a Starlette Request: this is the path Meta's bursts take (bench/webhooks.py),
    and its own cost is measured against a bare endpoint's."""
    whatsapp: WhatsApp = scope["app"].state.service.whatsapp
    head = WebhookHeaders.read(scope["headers"])
    peer = scope["client"][0] if scope.get("client") else ""
    address = scope["app"].state.proxies.client(peer, head.forwarded)
    try:
        if not head.signature:
            raise Unauthorized("The X-Hub-Signature-256 header is missing.")
        head.check_body()
        held: list[int] = []  # the bytes this body holds of the budget
        key = _address_key(address)
        try:
            with whatsapp.deadlines.within(whatsapp.read_deadline):
                body = await read_limited(receive_, whatsapp.read_budget, key, whatsapp.reader_wait, held)
        except TimeoutError:
            raise RequestTimeout(f"The body took more than {whatsapp.read_deadline:g} s to arrive.") from None
        finally:
            whatsapp.read_budget.give_key(key, sum(held))
        numbers = signed_by(body, head.signature, whatsapp.keys)
        if not numbers:
            raise Forbidden("X-Hub-Signature-256 does not match the body with the app secret of any connected number.")
    except (Unauthorized, Forbidden, PayloadTooLarge, LengthRequired, UnsupportedMediaType) as refused:
        now = whatsapp.clock()
        whatsapp.refusals.add(address, now)
        wait = whatsapp.refusals.retry_after(address, now)
        if wait:
            raise TooManyRequests(f"Too many refused webhook requests from this address; try again in {wait} s.",
                                  wait) from None  # fmt: skip
        raise refused
    numbers_ids = numbers_of(numbers)
    try:
        taken = await whatsapp.journal.add(body, numbers_ids, int(whatsapp.clock()))
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_FULL:
            raise
        disk_full.warn()
        raise Unavailable("The server's disk is full: the body was not stored. Try again later.",
                          {"Retry-After": str(DISK_FULL_RETRY)}) from None  # fmt: skip
    if taken is Taken.NOT_UTF8:
        raise MalformedRequest("The body is not valid JSON: it is not UTF-8.")
    if taken is Taken.NOT_JSON:
        raise MalformedRequest("The body is not valid JSON (or is nested deeper than 1,024 levels, which is not read).")
    whatsapp.processor.wake()
    return OK


def numbers_of(numbers: list[NumberKeys]) -> list[str]:
    """The phone number ids a body was signed for, sorted, without repeats."""
    if len(numbers) == 1:
        return [numbers[0].phone_number_id]
    return sorted({n.phone_number_id for n in numbers})


@dataclass
class WebhookHeaders:
    """The request headers the POST path reads, found in one pass over the raw list (the first
    of each, as Starlette's `Headers.get`)."""

    signature: str = ""
    content_type: bytes = b""
    content_length: bytes | None = None
    chunked: bool = False
    forwarded: str = ""  # X-Forwarded-For

    @classmethod
    def read(cls, raw: list[tuple[bytes, bytes]]) -> WebhookHeaders:
        found = cls()
        seen: set[bytes] = set()
        forwarded: list[bytes] = []
        for name, value in raw:
            if name == b"x-forwarded-for":  # every line, as one list
                forwarded.append(value)
                continue
            if name in seen or name not in _WANTED:
                continue
            seen.add(name)
            if name == b"x-hub-signature-256":
                found.signature = value.decode("latin-1")
            elif name == b"content-type":
                found.content_type = value
            elif name == b"content-length":
                found.content_length = value
            else:
                found.chunked = b"chunked" in value.lower()
        if forwarded:
            found.forwarded = forwarded_for(forwarded)
        return found

    def check_body(self) -> None:
        """JSON, with a length that fits (or sent chunked, checked as it arrives)."""
        if self.content_type.decode("latin-1").split(";")[0].strip().lower() != "application/json":
            raise UnsupportedMediaType("Send the body with 'Content-Type: application/json'.")
        declared = self.content_length
        if declared is None and not self.chunked:
            raise LengthRequired("Send a Content-Length.")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")


_WANTED = frozenset({b"x-hub-signature-256", b"content-type", b"content-length", b"transfer-encoding"})


async def read_limited(receive_: Receive, budget: ReadBudget, key: str, wait: float, held: list[int]) -> bytes:
    """The body, each chunk taken from `budget` as it arrives (and appended to `held`, which the
    caller gives back); a chunk that finds no room within `wait` seconds is a 503: a burst of
    Meta's waits a moment, as a 503 costs minutes of Meta's backoff."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive_()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
            if not budget.take_now(key, len(chunk)) and not await budget.take_key(key, len(chunk), wait):
                raise Unavailable("Too many webhook bodies are being read at once; try again in a second.",
                                  {"Retry-After": "1"})  # fmt: skip
            held.append(len(chunk))
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _address_key(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:32]


class ReadBudget:
    """Bytes of webhook bodies read and not yet checked: at most `total` in all and `per_address`
    from one address (hashed, as Refusals keeps them). One event loop's: no lock needed."""

    def __init__(self, total: int = READ_BUDGET, per_address: int = READ_BUDGET_PER_ADDRESS) -> None:
        self.total, self.per_address = total, per_address
        self.used = 0
        self._held: dict[str, int] = {}
        self._freed = asyncio.Event()

    async def take(self, address: str, size: int, wait: float) -> bool:
        """Hold `size` more bytes for `address`, waiting up to `wait` seconds for room."""
        return await self.take_key(_address_key(address), size, wait)

    def take_now(self, key: str, size: int) -> bool:
        """`take_key` without waiting: False if there is no room now."""
        if self.used + size > self.total or self._held.get(key, 0) + size > self.per_address:
            return False
        self.used += size
        self._held[key] = self._held.get(key, 0) + size
        return True

    async def take_key(self, key: str, size: int, wait: float) -> bool:
        """`take`, for an address already hashed (`_address_key`: once a body, not once a chunk).
        Each address has its own share: Meta's servers may share a /64."""
        deadline = None
        while not self.take_now(key, size):
            deadline = deadline or time.monotonic() + wait
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._freed.clear()
            try:
                async with asyncio.timeout(left):
                    await self._freed.wait()
            except TimeoutError:
                return False
        return True

    def give(self, address: str, size: int) -> None:
        self.give_key(_address_key(address), size)

    def give_key(self, key: str, size: int) -> None:
        if not size:
            return
        self.used -= size
        left = self._held[key] - size
        if left:
            self._held[key] = left
        else:
            del self._held[key]
        self._freed.set()


@dataclass
class Refusals:
    """Refused webhook requests per address (hashed), in a sliding window. Meta never gets
    here: its requests are signed. In memory, bounded; the oldest addresses are forgotten first."""

    limit: int = 30
    window: float = 60.0
    max_keys: int = 10_000
    _seen: dict[str, deque[float]] = field(default_factory=dict)

    @staticmethod
    def _key(address: str) -> str:
        return hashlib.sha256(network(address).encode()).hexdigest()[:32]  # an IPv6 /64 counts once

    def retry_after(self, address: str, now: float) -> int:
        times = self._seen.get(self._key(address))
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times or len(times) < self.limit:
            return 0
        return int(times[0] + self.window - now) + 1

    def add(self, address: str, now: float) -> None:
        key = self._key(address)
        if key not in self._seen and len(self._seen) >= self.max_keys:
            del self._seen[next(iter(self._seen))]
        self._seen.setdefault(key, deque()).append(now)


class WebhookProcessor:
    """Applies stored events in order of arrival. `run_once()` does one round (tests call it);
    `run()` is the loop, woken by each new event and by a timer for retries."""

    def __init__(self, chats: ChatStore, clock: Callable[[], float] = time.time, batch: int = 10,
                 interval: float = 5.0, retention_days: int = 30, journal: Journal | None = None) -> None:  # fmt: skip
        self.chats = chats
        self.journal = journal
        self.clock = clock
        self.batch = batch
        self.interval = interval
        self.retention = retention_days * 86400
        self._pruned_at = 0.0
        self._wake = asyncio.Event()
        self.max_yield = MAX_YIELD  # (tests set it)
        self.moved = 0  # bodies the last round moved from the journal
        self.failing = False  # the last round failed: said once, not each tick until it works again

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self, move: int | None = None, batch: int | None = None) -> int:
        """Move bodies from the journal into the database (`move` at most; None: all), tie chats
        to clicks written since their first message, then apply what is due (`batch` bodies at
        most; None: the processor's batch), in one transaction; returns how many were applied.
        If that fails (a bug of ours, never Meta's input), each body is tried alone, and one that
        still fails is kept and tried again later, with the error recorded."""
        self.moved = 0
        if self.journal is not None:
            try:
                await self.journal.take_over()
                self.moved = await self.journal.move(move)
            except Exception:  # a full or locked database, say: what is already in it is still applied
                move_failed.warn(exc_info=True)
        now = int(self.clock())
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await self.chats.prune_events(now - self.retention)
        try:  # chats (and messages that said where they came from) whose click was written after them
            await self.chats.match_late_clicks(now)
            await self.chats.match_late_attributions(now)
        except Exception:  # a locked database, say: applying must not wait for it
            match_failed.warn(exc_info=True)
        due = await self.chats.due_events(now, batch or self.batch)
        read = await self.chats.run(lambda: [(event_id, parse(body, numbers)) for event_id, body, numbers, _ in due])
        try:
            return await self.chats.apply_events(read, now)
        except Exception:
            if len(read) == 1:
                pass  # reported below
            else:
                log.exception("webhook events %d-%d could not be applied together; applying one by one",
                              due[0][0], due[-1][0])  # fmt: skip
        done = 0
        for (event_id, _, _, attempts), one in zip(due, read, strict=True):
            try:
                done += await self.chats.apply_events([one], now)
            except Exception as exc:
                log.exception("webhook event %d could not be applied; it will be tried again", event_id)
                delay = min(3600, 30 * 2 ** min(attempts, 7))
                await self.chats.event_failed(event_id, f"{type(exc).__name__}: {exc}", now + delay)
        return done

    async def catch_up(self) -> None:
        """Apply everything due now, whoever calls (a customer export must show what Meta sent,
        not only what the server's loop has applied so far; applying is idempotent). Until a
        round applies nothing: a short round is not the end when a body in it failed (kept for a
        later try, with its error) or another instance was applying one (PostgreSQL)."""
        while await self.run_once() or self.moved:
            pass

    def wait_before_applying(self, now: float, waited: float) -> float:
        """Seconds to wait before the next batch (`now`: time.monotonic()): while bodies keep
        arriving, until none came for QUIET s, but MAX_YIELD s at most in all. In a burst,
        Meta's POSTs are acknowledged first and applied in the lulls, and a burst that never
        ends still sees BURST_BATCH bodies applied every MAX_YIELD s."""
        if self.journal is None or waited >= self.max_yield:
            return 0.0
        return max(0.0, min(QUIET - (now - self.journal.last_arrival), self.max_yield - waited))

    async def yield_to_intake(self) -> int:
        """Wait as `wait_before_applying` says; then how many bodies the round applies: its
        batch in a lull, but BURST_BATCH while bodies keep coming (MAX_YIELD s passed). The
        round's SQLite work hands the GIL back and forth with the event loop at each statement,
        and the event loop acknowledges Meta's POSTs first: applying 10 bodies a second under
        bench/webhooks.py's load cost it a tenth of the bodies it took (docs/performance.md)."""
        waited = 0.0
        while (wait := self.wait_before_applying(time.monotonic(), waited)) > 0:
            await asyncio.sleep(wait)
            waited += wait
        if self.journal is not None and time.monotonic() - self.journal.last_arrival < QUIET:
            return BURST_BATCH
        return self.batch

    async def run(self) -> None:
        while True:
            try:
                while True:  # until nothing is left
                    batch = await self.yield_to_intake()
                    # In a lull, move MOVE_BATCH bodies from the journal; under a burst, what is applied.
                    applied = await self.run_once(MOVE_BATCH if batch == self.batch else batch, batch)
                    if applied < batch and not self.moved:
                        break
                self.failing = False
            except Exception:  # a locked or missing database: try again at the next tick
                if not self.failing:  # once, not a tick, while PostgreSQL restarts
                    log_failure(log, "could not apply webhook events")
                self.failing = True
            try:
                async with asyncio.timeout(self.interval):  # not wait_for: in 3.11 it can swallow a cancel
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()


async def webhook(request: Request) -> Response:
    return await (receive(request.scope, request.receive) if request.method == "POST" else handshake(request))


async def receive_asgi(scope: Scope, receive_: Receive, send: Send) -> None:
    """`receive` as a plain ASGI endpoint: `app.App` sends Meta's POSTs here straight, past
    Starlette's middleware and router (as it does clicks), the same errors answered."""
    response = await receive(scope, receive_)
    await response(scope, receive_, send)


routes = [Route("/webhooks/whatsapp", webhook, methods=["GET", "POST"])]
