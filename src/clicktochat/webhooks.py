"""Meta's webhook at `/webhooks/whatsapp`: the verification handshake (GET), and events (POST)
checked against `X-Hub-Signature-256` over the raw bytes, stored, then acknowledged. A
`WebhookProcessor` applies stored events from the database, so a crash after the 200 loses
nothing, and a body Meta delivers again changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .chatstore import ChatStore, NumberKeys
from .conversations import Event, read_body
from .errors import (
    Forbidden,
    LengthRequired,
    MalformedRequest,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from .intake import Taken

if TYPE_CHECKING:
    from .intake import Intake
    from .whatsapp import WhatsApp

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 4 * 1024 * 1024  # Meta's bodies are at most a few MiB; a batch of 1,000 changes is under 2 MiB
READERS = 8  # bodies read at once, at most: what unsigned strangers can make us hold in memory
READER_WAIT = 5.0  # seconds a request waits for a turn to be read before a 503
MAX_CHALLENGE_LENGTH = 200
PRUNE_EVERY = 3600  # seconds between two deletions of applied bodies past the retention
QUIET, MAX_YIELD = 0.02, 1.0  # the processor applies once no body came for QUIET s, or after MAX_YIELD s


def signed_by(body: bytes, header: str, keys: Sequence[NumberKeys]) -> list[NumberKeys]:
    """The numbers whose app secret made this signature (`sha256=<hex HMAC-SHA256>`), each
    compared in constant time. Numbers of one Meta app share its secret."""
    scheme, _, signature = header.strip().partition("=")
    if scheme.lower() != "sha256" or not signature:
        return []
    digests: dict[str, bool] = {}
    matched = []
    for key in keys:
        if key.app_secret not in digests:
            expected = hmac.new(key.app_secret.encode(), body, hashlib.sha256).hexdigest()
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
        raise MalformedRequest("hub.mode must be 'subscribe'.")
    challenge = params.get("hub.challenge", "")
    if not challenge or len(challenge) > MAX_CHALLENGE_LENGTH or not challenge.isascii() or not challenge.isprintable():
        raise MalformedRequest("hub.challenge is missing or not a short printable string.")
    if not verify_token_ok(params.get("hub.verify_token", ""), whatsapp.keys):
        peer = request.client.host if request.client else ""
        address = request.app.state.proxies.client(peer, request.headers.get("x-forwarded-for", ""))
        now = whatsapp.clock()
        whatsapp.refusals.add(address, now)
        wait = whatsapp.refusals.retry_after(address, now)
        if wait:  # guessing verify tokens: slowed down like bad signatures
            raise TooManyRequests(f"Too many refused webhook requests from this address; try again in {wait} s.", wait)
        raise Forbidden("hub.verify_token is not the verify token of a connected number.")
    return PlainTextResponse(challenge, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


async def receive(request: Request) -> Response:
    """Check the signature on the raw bytes, store the body, answer 200. Nothing is stored for
    a body that is unsigned, signed with another secret, too large, or not JSON.

    A correctly signed body is always taken, whoever sends it (Meta's addresses are not known,
    and must never be locked out). What strangers can cost is bounded instead: at most
    READERS bodies are read at once (memory: READERS x MAX_BODY_BYTES; the next ones wait up
    to READER_WAIT seconds for a turn, then get 503 with Retry-After, which Meta retries), and
    an address whose requests keep being refused gets 429 instead of 401/403, so a scanner
    learns to wait."""
    whatsapp: WhatsApp = request.app.state.service.whatsapp
    peer = request.client.host if request.client else ""
    address = request.app.state.proxies.client(peer, request.headers.get("x-forwarded-for", ""))
    try:
        header = request.headers.get("x-hub-signature-256")
        if not header:
            raise Unauthorized("The X-Hub-Signature-256 header is missing.")
        try:  # a burst of Meta's waits its turn for a moment: a 503 would cost minutes of Meta's backoff
            turn = whatsapp.readers.acquire()
            await (asyncio.wait_for(turn, whatsapp.reader_wait) if whatsapp.readers.locked() else turn)
        except TimeoutError:
            raise Unavailable("Too many webhook bodies are being read at once; try again in a second.",
                              {"Retry-After": "1"}) from None  # fmt: skip
        try:
            body = await read_limited(request)
        finally:
            whatsapp.readers.release()
        numbers = signed_by(body, header, whatsapp.keys)
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
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise MalformedRequest("The body is not valid JSON: it is not UTF-8.") from None
    numbers_ids = sorted({n.phone_number_id for n in numbers})
    if await whatsapp.intake.add(body, text, numbers_ids, int(whatsapp.clock())) is Taken.NOT_JSON:
        raise MalformedRequest("The body is not valid JSON.")
    whatsapp.processor.wake()
    return Response(status_code=200)


async def read_limited(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("Send the body with 'Content-Type: application/json'.")
    declared = request.headers.get("content-length")
    if declared is None and "chunked" not in request.headers.get("transfer-encoding", "").lower():
        raise LengthRequired("Send a Content-Length.")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


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
        return hashlib.sha256(address.encode()).hexdigest()[:32]

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


def parse(body: bytes, numbers: list[str]) -> list[Event]:
    """A stored body's events (it was checked to be JSON when it came; nothing here raises)."""
    try:
        return read_body(json.loads(body), set(numbers))
    except ValueError:
        return []


class WebhookProcessor:
    """Applies stored events in order of arrival. `run_once()` does one round (tests call it);
    `run()` is the loop, woken by each new event and by a timer for retries."""

    def __init__(self, chats: ChatStore, clock: Callable[[], float] = time.time, batch: int = 10,
                 interval: float = 5.0, retention_days: int = 30, intake: Intake | None = None) -> None:  # fmt: skip
        self.chats = chats
        self.intake = intake
        self.clock = clock
        self.batch = batch
        self.interval = interval
        self.retention = retention_days * 86400
        self._pruned_at = 0.0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Apply what is due, in one transaction; returns how many bodies were applied. If that
        fails (a bug of ours, never Meta's input), each body is tried alone, and one that still
        fails is kept and tried again later, with the error recorded."""
        now = int(self.clock())
        if now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await self.chats.prune_events(now - self.retention)
        due = await self.chats.due_events(now, self.batch)
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

    def wait_before_applying(self, now: float, waited: float) -> float:
        """Seconds to wait before the next batch (`now`: time.monotonic()): while bodies keep
        arriving, until none came for QUIET s, but MAX_YIELD s at most in all. In a burst,
        Meta's POSTs are acknowledged first and applied in the lulls, and a burst that never
        ends still sees a batch applied every MAX_YIELD s."""
        if self.intake is None or waited >= MAX_YIELD:
            return 0.0
        return max(0.0, min(QUIET - (now - self.intake.last_arrival), MAX_YIELD - waited))

    async def yield_to_intake(self) -> None:
        waited = 0.0
        while (wait := self.wait_before_applying(time.monotonic(), waited)) > 0:
            await asyncio.sleep(wait)
            waited += wait

    async def run(self) -> None:
        while True:
            try:
                await self.yield_to_intake()
                while await self.run_once() == self.batch:
                    await self.yield_to_intake()
            except Exception:  # a locked or missing database: try again at the next tick
                log.exception("could not apply webhook events")
            try:
                async with asyncio.timeout(self.interval):  # not wait_for: in 3.11 it can swallow a cancel
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()


async def webhook(request: Request) -> Response:
    return await (receive(request) if request.method == "POST" else handshake(request))


async def receive_asgi(scope: Scope, receive_: Receive, send: Send) -> None:
    """`receive` as a plain ASGI endpoint: `app.App` sends Meta's POSTs here straight, past
    Starlette's middleware and router (as it does clicks), the same errors answered."""
    response = await receive(Request(scope, receive_))
    await response(scope, receive_, send)


routes = [Route("/webhooks/whatsapp", webhook, methods=["GET", "POST"])]
