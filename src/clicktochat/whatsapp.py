"""The WhatsApp Business Platform side of a running server (or a CLI command): connected
numbers and their keys, the webhook processor and the sender, and what the API, the CLI and
the dashboard can do with conversations, validated once here."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .attributionstore import Attribution
from .chatstore import ChatStore, Conversation, Message
from .consent import may_answer, opted_out
from .conversations import Window, check_text, window
from .deadlines import Deadlines
from .errors import KEY_USED, Conflict, FieldError, InvalidInput, NotFound, Unavailable
from .graph import GraphClient, GraphError, text_payload
from .intake import Intake
from .journal import Journal
from .notifications import IDEMPOTENCY_KEY, Notifications
from .numberstore import NumberKeys, WhatsAppNumber
from .outbox import Sender
from .outboxstore import OutboxRow
from .sharedstore import SharedStore, Unreachable
from .store import Store
from .webhooks import READ_DEADLINE, READER_WAIT, ReadBudget, Refusals, WebhookProcessor

ID_PATTERN = re.compile(r"[0-9]{5,20}")  # Meta's phone number and WABA ids
MAX_SECRET_LENGTH = 1000
# Messages sent 2 to 30 days ago that all stayed at `sent` while others delivered: "may have blocked you".
BLOCK_SUSPECT_AFTER, BLOCK_SUSPECT_WITHIN = 2 * 86400, 30 * 86400
TEMPLATE_SYNC_EVERY = 6 * 3600  # seconds between two syncs of the numbers' templates in a running server
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversationView:
    """A conversation as people see it: who, the window now, and where it came from."""

    conversation: Conversation
    window: Window
    opted_out: bool
    reply_refused: str | None  # why a free-form reply cannot be sent now, or None
    may_have_blocked: bool
    last: tuple[str, str | None] | None = None
    silenced: bool = False  # nothing may go: opted out and silent since, or the number is disconnected
    latest: Attribution | None = None  # the latest message that said where it came from (its chat's start: the first)

    @property
    def may_send(self) -> str:
        """"text", "templates" (the window is closed: approved templates only), or "nothing"."""
        return "nothing" if self.silenced else self.window.may_send


class WhatsApp:
    def __init__(self, store: Store, chats: ChatStore, intake: Intake, graph_url: str,
                 clock: Callable[[], float] = time.time, webhook_retention_days: int = 30) -> None:  # fmt: skip
        self.store = store
        self.chats = chats
        self.intake = intake
        self.journal = Journal(intake)  # a server's bodies go here first (SQLite), once `journal.start()`
        self.clock = clock
        self.graph = GraphClient(graph_url)
        self.keys: list[NumberKeys] = []
        self.connected: frozenset[str] = frozenset()  # display numbers (digits): links to them carry ref codes
        self.processor = WebhookProcessor(chats, clock, retention_days=webhook_retention_days, journal=self.journal)
        self.refusals = Refusals()
        self.read_budget = ReadBudget()  # bytes of webhook bodies being read...
        self.reader_wait = READER_WAIT  # ...how long a body waits for room...
        self.read_deadline = READ_DEADLINE  # ...and how long it may take to arrive
        self.deadlines = Deadlines()
        self.sender = Sender(chats, self.graph, lambda: {k.id: k for k in self.keys}, self._still_allowed, clock,
                             reload=self.reload)  # fmt: skip
        self.notifications = Notifications(self)
        self._tasks: list[asyncio.Task[None]] = []
        self.jobs: SharedStore | None = None  # several instances: scheduled jobs run on one (Service.open)

    @classmethod
    async def open(cls, store: Store, path: str, graph_url: str, clock: Callable[[], float] = time.time,
                   webhook_retention_days: int = 30) -> WhatsApp:  # fmt: skip
        whatsapp = cls(store, await ChatStore.open(path), await Intake.open(path), graph_url, clock,
                       webhook_retention_days)  # fmt: skip
        await whatsapp.reload()
        return whatsapp

    async def reload(self) -> None:
        """Keys and connected numbers, after a change here or in another process."""
        self.keys = await self.chats.number_keys()
        self.connected = frozenset(n.display_phone_number for n in await self.chats.numbers())

    def start(self) -> None:
        """The processor, the sender and the template sync, for a server's lifetime."""
        self._tasks = [asyncio.create_task(self.processor.run(), name="clicktochat-webhooks"),
                       asyncio.create_task(self.sender.run(), name="clicktochat-sender"),
                       asyncio.create_task(self.sync_templates_every(TEMPLATE_SYNC_EVERY),
                                           name="clicktochat-templates")]  # fmt: skip

    async def sync_templates_every(self, seconds: float) -> None:
        """Meta approves, pauses and disables templates on its own: ask again now and then."""
        while True:
            if self.keys and await self._my_turn("sync_templates", seconds):
                try:
                    await self.notifications.sync_templates()
                except Exception as exc:  # Meta unreachable, say: the last list stays, and we try again later
                    log.warning("could not sync message templates from the Graph API (%s: %s); trying again in"
                                " %d s", type(exc).__name__, exc, seconds)  # fmt: skip
            await asyncio.sleep(seconds)

    async def _my_turn(self, job: str, every: float) -> bool:
        """Whether this instance runs `job` now: always alone; with several instances on one
        database (`jobs`, sharedstore.SharedStore), one of them a period (none while it is away)."""
        if self.jobs is None:
            return True
        try:
            return await self.jobs.due(job, time.time(), every)
        except Unreachable:
            return False

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.graph.close()
        await self.journal.close()
        await self.intake.close()
        await self.chats.close()

    # -- numbers ---------------------------------------------------------------------

    async def connect(
        self, business_id: int, phone_number_id: str, waba_id: str, access_token: str, app_secret: str,
        verify_token: str,
    ) -> WhatsAppNumber:  # fmt: skip
        """Check the values, then ask the Graph API for the number (which checks the token too)."""
        errors = []
        for field, value in (("phone_number_id", phone_number_id), ("waba_id", waba_id)):
            if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
                errors.append(FieldError(field, "must be Meta's numeric id (5 to 20 digits)"))
        for field, value, least in (("access_token", access_token, 20), ("app_secret", app_secret, 16),
                                    ("verify_token", verify_token, 8)):  # fmt: skip
            if not isinstance(value, str) or not least <= len(value.strip()) <= MAX_SECRET_LENGTH:
                errors.append(FieldError(field, f"must be {least} to {MAX_SECRET_LENGTH} characters"))
            elif not value.strip().isascii() or not value.strip().isprintable() or " " in value.strip():
                errors.append(FieldError(field, "must be printable ASCII without spaces"))
        if errors:
            raise InvalidInput.many(errors)
        if await self.store.business(business_id) is None:
            raise NotFound(f"There is no business {business_id}.")
        connected = await self.chats.number_by_phone_id(phone_number_id)
        if connected is not None and connected.business_id != business_id:  # its conversations are that business's
            raise connected_elsewhere(connected)
        try:
            found = await self.graph.phone_number(phone_number_id, access_token.strip())
        except GraphError as error:
            if error.status == 0 or error.status >= 500:
                raise Unavailable(f"Could not reach the Graph API to check the number: {error.title}") from None
            field = "access_token" if error.code in (190, 10) or error.status == 401 else "phone_number_id"
            raise InvalidInput(field, f"Meta refused it: {error.message}") from None
        display = re.sub(r"\D", "", str(found.get("display_phone_number", "")))
        if not 6 <= len(display) <= 15:
            raise Unavailable("The Graph API gave no usable display number for this phone number id.")
        number = await self.chats.connect_number(
            business_id, phone_number_id, waba_id, display, _str(found.get("verified_name")), access_token.strip(),
            app_secret.strip(), hashlib.sha256(verify_token.strip().encode()).hexdigest(), int(self.clock()),
        )  # fmt: skip
        if number.business_id != business_id:  # connected there meanwhile (another connect, another instance)
            raise connected_elsewhere(number)
        await self.reload()
        self.sender.wake()  # messages held while its token was refused go now
        return number

    async def disconnect(self, number_id: int) -> None:
        if not await self.chats.disconnect_number(number_id, int(self.clock())):
            raise NotFound(f"There is no connected number {number_id}.")
        await self.reload()

    def to_reconnect(self) -> list[NumberKeys]:
        """Connected numbers whose access token Meta refused (190, 102), as this server last read
        them (any instance's sender marks them; the routing version makes every server read again)."""
        return [key for key in self.keys if key.token_refused_at is not None]

    async def get_number(self, number_id: int) -> WhatsAppNumber:
        number = await self.chats.number(number_id)
        if number is None:
            raise NotFound(f"There is no connected number {number_id}.")
        return number

    # -- conversations ---------------------------------------------------------------

    async def view(self, conversation: Conversation, last: tuple[str, str | None] | None = None,
                   latest: Attribution | None = None) -> ConversationView:  # fmt: skip
        now = int(self.clock())
        c = conversation
        entries = await self.chats.consents(c.business_id, c.wa_id, c.user_id)
        refused = None
        win = window(c.last_inbound_at, c.entry_point_until, c.first_reply_at, now)
        if not win.open:
            refused = ("The 24-hour window is closed: the customer last wrote more than 24 hours ago, "
                       "so only an approved template may be sent.")  # fmt: skip
        stop = opted_out(entries)  # then only a message written since lifts it, not a reaction (a review's)
        decision = may_answer(entries, None if stop is None else await self.chats.last_written_in(c.id))
        if not decision.allowed:
            refused = decision.reason
        connected = any(k.id == c.number_id for k in self.keys)
        if not connected:
            refused = "The business number of this conversation is no longer connected."
        blocked = await self.chats.unanswered_for(
            c.wa_id, c.user_id, c.number_id, now - BLOCK_SUSPECT_WITHIN, now - BLOCK_SUSPECT_AFTER
        )
        silenced = not decision.allowed or not connected
        return ConversationView(c, win, opted_out(entries) is not None, refused, blocked, last, silenced, latest)

    async def conversations(
        self, business_id: int | None = None, agent_id: int | None = None, only_open: bool = False,
        limit: int = 50, offset: int = 0,
    ) -> list[ConversationView]:  # fmt: skip
        """Open conversations first (the customer wrote in the last 24 hours), newest first."""
        since = int(self.clock()) - 24 * 3600 if only_open else None
        found = await self.chats.conversations(business_id, agent_id, since, limit, offset)
        last = await self.chats.last_messages([c.id for c in found])
        latest = await self.chats.latest_attributions([c.id for c in found])
        views = [await self.view(c, last.get(c.id), latest.get(c.id)) for c in found]
        return sorted(views, key=lambda v: not v.window.open)

    async def conversation(self, conversation_id: int) -> tuple[ConversationView, list[Message]]:
        found = await self.chats.conversation(conversation_id)
        if found is None:
            raise NotFound(f"There is no conversation {conversation_id}.")
        latest = (await self.chats.latest_attributions([found.id])).get(found.id)
        return await self.view(found, latest=latest), await self.chats.messages(conversation_id)

    async def reply(
        self, conversation_id: int, text: Any, idempotency_key: str | None = None, sent_by: str | None = None
    ) -> tuple[OutboxRow, bool]:
        """Queue a free-form text reply. Refused with 409 when the window is closed or the
        customer opted out; the same idempotency key returns the first request's message.
        `sent_by`: who wrote it ("admin:ana", "api:shop", "cli"), shown beside it."""
        try:
            text = check_text(text)
        except ValueError as exc:
            raise InvalidInput("text", str(exc)) from None
        if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise InvalidInput("idempotency_key", "must be 1 to 200 letters, digits or . _ : -")
        found = await self.chats.conversation(conversation_id)
        if found is None:
            raise NotFound(f"There is no conversation {conversation_id}.")
        if idempotency_key is not None:
            key = f"reply:{conversation_id}:{idempotency_key}"
            previous = await self.chats.outbox_by_key(key)
            if previous is not None:
                return _same_reply(previous, text), False
        view = await self.view(found)
        if view.reply_refused is not None:
            raise Conflict(view.reply_refused)
        key = f"reply:{conversation_id}:{idempotency_key or secrets.token_urlsafe(16)}"
        payload = text_payload(found.wa_id, found.user_id, text)
        row, created = await self.chats.enqueue(found.number_id, conversation_id, key, payload, text, "text",
                                                int(self.clock()), sent_by)  # fmt: skip
        if not created:  # the same key, sent at the same time by another request (or instance)
            return _same_reply(row, text), False
        self.sender.wake()
        return row, created

    async def _still_allowed(self, rows: list[OutboxRow]) -> list[str | None]:
        """Checked just before sending: a reply still needs the window open and no opt-out; a
        notification, the consent for its topic; a double opt-in's confirmation, its request
        still waiting and no opt-out since it was made."""
        started = [row for row in rows if row.conversation_id is None]  # by the business: updates, confirmations
        notifications = await self.notifications.refusals(started)
        confirmations = await self.chats.confirmation_refusals([row.id for row in started])
        reasons: list[str | None] = []
        for row in rows:
            if row.conversation_id is None:
                reasons.append(notifications[row.id] if row.id in notifications else confirmations.get(row.id))
                continue
            found = await self.chats.conversation(row.conversation_id)
            gone = "The conversation no longer exists."
            reasons.append(gone if found is None else (await self.view(found)).reply_refused)
        return reasons


def _same_reply(previous: OutboxRow, text: str) -> OutboxRow:
    """The message a reply's idempotency key made before, if it asked for the same text."""
    if previous.payload.get("text", {}).get("body") != text:
        raise Conflict("This idempotency key was used for another message.", [KEY_USED])
    return previous


def connected_elsewhere(number: WhatsAppNumber) -> Conflict:
    """The refusal to connect a number another business has connected: its conversations are that one's."""
    return Conflict(f"Phone number id {number.phone_number_id} is connected to business {number.business_id}; "
                    f"disconnect it there first (number {number.id}).",
                    [FieldError("phone_number_id", f"is connected to business {number.business_id}")])


def _str(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) and value else None
