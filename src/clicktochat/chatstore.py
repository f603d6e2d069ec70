"""The SQL of the WhatsApp side but the outbox's and the numbers': stored webhook events,
conversations, messages and statuses, and the consent ledger (where chats came from is
chatstarts.py's). On the connection and thread of `chatdb.ChatDB`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .attributionstore import AttributionStore
from .channels import whatsapp_forms, whatsapp_number
from .consent import CONSENT_COLUMNS, Consent, consent_from
from .conversations import (
    ENTRY_POINT,
    SERVICE_WINDOW,
    STATUS_RANK,
    Event,
    Inbound,
    Preference,
    Status,
)
from .customerstore import CustomerStore
from .graph import error_text
from .numberstore import MOVED, NumberStore
from .optinstore import OptinStore
from .outboxstore import outbox_of

REACTED_TO = 200  # characters of the message a reaction is on, kept beside it
CONVERSATION_COLUMNS = (
    "c.id, c.number_id, c.business_id, c.wa_id, c.user_id, c.name, c.created_at, c.last_inbound_at, "
    "c.last_message_at, c.last_outbound_at, c.entry_point_until, "
    "s.at, s.ref, s.link_kind, s.link_key, s.campaign, s.agent_id, s.channel, s.click_at, s.referral, "
    # the business's first reply in the chat, or since the ad while its free entry point runs:
    # it keeps the free entry point (conversations.window)
    "(SELECT min(m.at) FROM wa_messages m WHERE m.conversation_id = c.id AND m.direction = 'out'"
    f" AND m.wamid IS NOT NULL AND m.at >= coalesce(c.entry_point_until - {ENTRY_POINT}, s.at, 0))"
)


@dataclass(frozen=True)
class ChatStart:
    at: int
    ref: str | None
    link_kind: str | None
    link_key: str | None
    campaign: str | None
    agent_id: int | None
    channel: str | None
    click_at: int | None
    referral: dict[str, Any] | None


@dataclass(frozen=True)
class Conversation:
    id: int
    number_id: int
    business_id: int
    wa_id: str | None
    user_id: str | None
    name: str | None
    created_at: int
    last_inbound_at: int | None
    last_message_at: int
    last_outbound_at: int | None
    entry_point_until: int | None
    start: ChatStart | None
    first_reply_at: int | None = None  # the business's first reply since the chat started


@dataclass(frozen=True)
class Message:
    id: int
    wamid: str | None
    direction: str
    at: int
    type: str
    text: str | None
    caption: str | None
    mime_type: str | None
    status: str | None  # outbound: queued, sent, delivered, read, failed
    error_code: int | None
    error: str | None
    pricing: dict[str, Any] | None
    outbox_id: int | None = None  # outbound: the outbox row it was sent from (a reply's id)
    sent_by: str | None = None  # a reply: who wrote it ("admin:ana", "api:shop #3", "cli"), if known


class ChatStore(OptinStore, CustomerStore, AttributionStore, NumberStore):
    """Webhook events, conversations, messages, statuses, chat starts and consents (and opt-in forms
    and requests: `optinstore.OptinStore`; connected numbers: `numberstore.NumberStore`; where each
    message came from: `attributionstore.AttributionStore`, over `chatstarts.ChatStartStore`)."""

    # -- webhook events --------------------------------------------------------------

    async def due_events(self, now: int, limit: int) -> list[tuple[int, bytes, list[str], int]]:
        """(id, body, phone number ids it was signed for, attempts) of events not yet applied."""

        def work() -> list[tuple[int, bytes, list[str], int]]:
            rows = self._all("SELECT id, body, numbers, attempts FROM webhook_events WHERE processed_at IS NULL"
                             " AND next_try_at <= ? ORDER BY id LIMIT ?", (now, limit))  # fmt: skip
            return [(row[0], bytes(row[1]), json.loads(row[2]), row[3]) for row in rows]

        return await self.run(work)

    async def pending_events(self) -> int:
        return int((await self.run(self._one, "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL"))[0])

    async def prune_events(self, before: int) -> int:
        """Delete applied webhook bodies received before `before` (what they said is kept in
        the conversations; the raw bodies hold numbers and messages, so they do not stay)."""

        def work() -> int:
            with self._tx() as db:
                cursor = db.execute("DELETE FROM webhook_events WHERE processed_at IS NOT NULL AND received_at < ?",
                                    (before,))  # fmt: skip
                return cursor.rowcount

        return await self.run(work)

    async def event_failed(self, event_id: int, error: str, next_try_at: int) -> None:
        def work() -> None:
            with self._tx() as db:
                db.execute("UPDATE webhook_events SET attempts = attempts + 1, error = ?, next_try_at = ?"
                           " WHERE id = ? AND processed_at IS NULL",  # another instance may have applied it
                           (error[:1000], next_try_at, event_id))  # fmt: skip

        await self.run(work)

    async def apply_events(self, bodies: list[tuple[int, list[Event]]], now: int) -> int:
        """Everything some webhook bodies say, and their being done, in one transaction: applied
        once, whatever happens to the process. Each message and status is applied once, even
        when Meta delivers it again in another body. Returns how many bodies were applied: those
        applied since they were read (by another instance or process, or emptied by an erasure
        meanwhile, which must not be undone) are left out; on PostgreSQL so are those another
        instance is applying now (each body's row locked by the one applying it)."""
        emptied: list[int] = []
        applied: int = await self.run(self._retry, lambda db: self._apply(db, bodies, now, emptied))
        if emptied and not self.postgres:  # the log still holds those bodies as they came: written back, emptied
            await self.run(lambda: self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)"))  # (as an erasure does)
        return applied

    def _apply(self, db: sqlite3.Connection, bodies: list[tuple[int, list[Event]]], now: int,
               emptied: list[int] | None = None) -> int:  # fmt: skip
        """`apply_events` inside the caller's transaction (an erasure applies what it found pending
        too); `emptied` is given the ids of the bodies emptied for naming someone erased."""
        mine = bodies
        if bodies:  # SQLite: BEGIN IMMEDIATE already keeps every other writer out until the commit
            lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
            free = {row[0] for row in db.execute(
                f"SELECT id FROM webhook_events WHERE id IN ({', '.join('?' * len(bodies))})"
                f" AND processed_at IS NULL{lock}", [event_id for event_id, _ in bodies],
            ).fetchall()}  # fmt: skip
            mine = [body for body in bodies if body[0] in free]
        if self.postgres:
            self._hold_customers(db, mine)
        batch = _Batch()
        batch.erased = self._erased_among(db, {who for _, events in mine for event in events for who in (
            (event.recipient_id, event.recipient_user_id) if isinstance(event, Status) else
            (event.wa_id, event.user_id) if isinstance(event, Inbound | Preference) else ()) if who})  # fmt: skip
        naming_erased = []  # bodies that named someone erased, about what they wrote or were sent before
        for event_id, events in mine:
            dropped = False
            for event in events:
                number = self._number_of(batch, event.phone_number_id)
                if number is None:
                    continue
                if isinstance(event, Inbound):
                    if {event.wa_id, event.user_id} & batch.erased and self._erased_inbound(db, event, number[1]):
                        dropped = True  # written before the erasure: Meta delivering it again, in other bytes
                    else:
                        self._inbound(db, batch, event, number)
                elif isinstance(event, Status):
                    dropped = self._status(db, batch, event, number[0], number[1]) or dropped
                elif isinstance(event, Preference):
                    if event.value == "stop":  # recorded whoever it is: a person back since their erasure too
                        self._consent(db, number[1], event.wa_id, event.user_id, "*", "out", event.at, "meta",
                                      "Stopped marketing messages in WhatsApp", None, {"user_preferences": "stop"})
                    # An erased person's name and ids in the raw body, kept 30 days: emptied (a privacy review)
                    dropped = dropped or bool({event.wa_id, event.user_id} & batch.erased)
            if dropped:
                naming_erased.append(event_id)
        # Emptied as an erasure empties the bodies it finds (found by a privacy review: a late
        # status's body kept the number for the retention's 30 days); the hash still turns away
        # the same bytes again.
        db.executemany("UPDATE webhook_events SET body = ?, numbers = '[]' WHERE id = ?",
                       [(b"", event_id) for event_id in naming_erased])  # fmt: skip
        if emptied is not None:
            emptied[:] = naming_erased  # (each try of `_retry` says it afresh)
        db.executemany(
            "UPDATE conversations SET last_inbound_at = coalesce(max(last_inbound_at, ?1), ?1, last_inbound_at),"
            " last_message_at = max(last_message_at, ?2), name = coalesce(?3, name) WHERE id = ?4",
            [(c.last_inbound, c.last_message, c.name, c.id) for _, c in sorted(batch.changed.items())],
        )  # fmt: skip
        db.executemany("UPDATE webhook_events SET processed_at = ?, error = NULL WHERE id = ?",
                       [(now, event_id) for event_id, _ in mine])  # fmt: skip
        return len(mine)

    def _hold_customers(self, db: sqlite3.Connection, bodies: list[tuple[int, list[Event]]]) -> None:
        """PostgreSQL: before anything is written, a lock on each customer the bodies name, taken
        in one order every instance follows (held to the commit). Two instances making or updating
        the same two customers' conversations in the order their bodies name them would deadlock,
        and PostgreSQL roll one back after a second; now the second waits for the first instead."""
        keys = sorted({customer_lock(event.phone_number_id, who) for _, events in bodies for event in events
                       if isinstance(event, Inbound) for who in (event.wa_id, event.user_id) if who})  # fmt: skip
        if keys:
            db.execute("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM (VALUES"
                       f" {', '.join(['(?)'] * len(keys))}) AS v (k) ORDER BY k) AS held", keys)  # fmt: skip

    def _number_of(self, batch: _Batch, phone_number_id: str) -> tuple[int, int, str, str] | None:
        if phone_number_id not in batch.numbers:
            batch.numbers[phone_number_id] = found = self._one(  # (id, business id, time zone, display number)
                "SELECT n.id, n.business_id, b.timezone, n.display_phone_number FROM whatsapp_numbers n"
                " JOIN businesses b ON b.id = n.business_id WHERE n.phone_number_id = ?", (phone_number_id,),
            )  # fmt: skip
            if found is not None and self._one(f"SELECT 1 FROM whatsapp_numbers WHERE phone_number_id LIKE ? || "
                                               f"'{MOVED}%'", (phone_number_id,)):  # fmt: skip
                batch.moved.add(found[0])  # it served another business before (numberstore.connect_number)
        return batch.numbers[phone_number_id]

    def _sender_of(self, db: sqlite3.Connection, wamid: str) -> tuple[int, int] | None:
        """(number id, business id) that sent `wamid`, for a number that has moved between
        businesses: a late status of a message the first business sent is the first business's."""
        row = db.execute("SELECT c.number_id, c.business_id FROM wa_messages m JOIN conversations c"
                         " ON c.id = m.conversation_id WHERE m.wamid = ?", (wamid,)).fetchone()  # fmt: skip
        row = row or db.execute("SELECT o.number_id, n.business_id FROM outbox o JOIN whatsapp_numbers n"
                                " ON n.id = o.number_id WHERE o.wamid = ?", (wamid,)).fetchone()  # fmt: skip
        return (int(row[0]), int(row[1])) if row else None

    def _known(self, number_id: int, wa_id: str | None, user_id: str | None) -> tuple[Any, ...] | None:
        """(id, last inbound, last message, wa_id, user_id) of the customer's conversation, by user id
        first (the number may change), else by number."""
        row = None
        if user_id:
            row = self._one("SELECT id, last_inbound_at, last_message_at, wa_id, user_id FROM conversations"
                            " WHERE number_id = ? AND user_id = ?", (number_id, user_id))  # fmt: skip
        if row is None and wa_id:
            row = self._one("SELECT id, last_inbound_at, last_message_at, wa_id, user_id FROM conversations"
                            " WHERE number_id = ? AND wa_id = ?", (number_id, wa_id))  # fmt: skip
        return tuple(row) if row else None

    def _conversation(
        self, db: sqlite3.Connection, batch: _Batch, number_id: int, business_id: int, message: Inbound
    ) -> _Customer:
        """The conversation with this customer (made on their first message), as this batch
        knows it: looked up once, its times and name written once at the end."""
        wa_id, user_id = message.wa_id, message.user_id
        keys = [(number_id, "u", user_id)] if user_id else []
        keys += [(number_id, "w", wa_id)] if wa_id else []
        found = next((batch.customers[k] for k in keys if k in batch.customers), None)
        if found is None:
            row = self._known(number_id, wa_id, user_id)
            if row is None:
                # PostgreSQL: another instance may be making the same customer's conversation now;
                # the insert then waits for it, does nothing, and theirs is read (no error, no retry).
                made = db.execute(
                    "INSERT INTO conversations (number_id, business_id, wa_id, user_id, name, created_at,"
                    " last_message_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                    (number_id, business_id, wa_id, user_id, message.name, message.at, message.at),
                ).fetchone()  # fmt: skip
                if made is not None:
                    row = (int(made[0]), None, message.at, wa_id, user_id)
                elif (row := self._known(number_id, wa_id, user_id)) is None:
                    raise LookupError("a conversation neither made nor found")  # not expected: the body is retried
            found = _Customer(*row)
        if (wa_id and not found.wa_id) or (user_id and not found.user_id):
            try:  # learn the identifier that was missing (a withheld number, or a user id from 2026 on)
                with self._savepoint(db):
                    db.execute("UPDATE conversations SET wa_id = coalesce(wa_id, ?), user_id = coalesce(user_id, ?)"
                               " WHERE id = ?", (wa_id, user_id, found.id))  # fmt: skip
                found.wa_id, found.user_id = found.wa_id or wa_id, found.user_id or user_id
            except sqlite3.IntegrityError:  # another conversation holds it: keep them apart
                pass
        for key in keys:
            batch.customers[key] = found
        return found

    def _inbound(self, db: sqlite3.Connection, batch: _Batch, message: Inbound,
                 number: tuple[int, int, str, str]) -> None:  # fmt: skip
        number_id, business_id, timezone, display = number
        customer = self._conversation(db, batch, number_id, business_id, message)
        caption = message.caption
        if message.type == "reaction" and message.context_id:  # what it reacts to, as the agent saw it
            row = db.execute("SELECT coalesce(text, caption, '[' || type || ']') FROM wa_messages"
                             " WHERE wamid = ? AND conversation_id = ?", (message.context_id, customer.id)).fetchone()
            caption = row[0][:REACTED_TO] if row else None
        cursor = db.execute(
            "INSERT INTO wa_messages (conversation_id, wamid, direction, at, type, text, caption, mime_type)"
            " VALUES (?, ?, 'in', ?, ?, ?, ?, ?) ON CONFLICT (wamid) DO NOTHING",
            (customer.id, message.wamid, message.at, message.type, message.text, caption, message.mime_type),
        )  # fmt: skip
        if cursor.rowcount == 0:
            return  # delivered before
        customer.last_message = max(customer.last_message, message.at)
        batch.changed[customer.id] = customer
        if message.payload == "user_changed_number" and message.type == "system" and message.wa_id:
            # The old number may be given to someone else: nothing the person asked for goes there now.
            self._consent(db, business_id, message.wa_id, None, "*", "out", message.at, "meta",
                          "Changed their WhatsApp number", None, {"wamid": message.wamid})  # fmt: skip
        if not message.written:
            return  # a notice (a changed number): no window, no new chat, no answer to a question
        last_inbound = customer.last_inbound
        click = None  # the click its chat's start took for it
        if message.type == "reaction":
            pass  # opens the window, as Meta does, but starts no chat: no one clicked to send an emoji
        elif last_inbound is None or message.at >= last_inbound + SERVICE_WINDOW:
            click = self._start(db, customer.id, business_id, timezone, display, message)
        elif message.at < last_inbound:
            click = self._start_earlier(db, customer.id, timezone, display, message)
        self._attribute(db, customer.id, display, message, click)  # every message that says (attributionstore.py)
        customer.last_inbound = max(last_inbound or 0, message.at)
        customer.name = message.name or customer.name
        if message.stop:
            self._consent(db, business_id, message.wa_id, message.user_id, "*", "out", message.at, "chat",
                          message.text, None, {"wamid": message.wamid})  # fmt: skip
        self._optin_reply(db, business_id, message)  # a double opt-in's "Yes" (optinstore.py)

    def _status(self, db: sqlite3.Connection, batch: _Batch, status: Status, number_id: int, business_id: int
                ) -> bool:  # fmt: skip
        """Applied once; True when dropped, as the status of a message an erasure deleted."""
        if number_id in batch.moved and (sender := self._sender_of(db, status.wamid)) is not None:
            number_id, business_id = sender
        if {status.recipient_id, status.recipient_user_id} & batch.erased and self._erased_message(db, status,
                                                                                                   business_id):
            return True
        cursor = db.execute(
            "INSERT INTO wa_statuses (wamid, number_id, status, at, recipient, pricing, error_code, error_title,"
            " callback) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (status.wamid, number_id, status.status, status.at, status.recipient_id or status.recipient_user_id,
             json.dumps(status.pricing) if status.pricing else None, status.error_code, status.error_title,
             status.callback),
        )  # fmt: skip
        if cursor.rowcount == 0:
            return False
        outbox_id = outbox_of(status.callback)
        if outbox_id is not None:
            # A send interrupted by a crash: Meta's status tells us it did go out. Only the
            # number's own rows (another app's secret names no row of ours), and only when the
            # callback data is the row's own, whole (another tool's "42" on the number is not).
            row = db.execute("SELECT payload FROM outbox WHERE id = ? AND number_id = ?"
                             " AND state IN ('sending', 'queued') AND wamid IS NULL",
                             (outbox_id, number_id)).fetchone()  # fmt: skip
            if row and json.loads(row[0]).get("biz_opaque_callback_data") == status.callback:
                db.execute("UPDATE outbox SET state = 'sent', wamid = ?, sent_at = coalesce(sent_at, ?),"
                           " lease_until = NULL WHERE id = ?", (status.wamid, status.at, outbox_id))  # fmt: skip
                db.execute("UPDATE wa_messages SET wamid = ? WHERE outbox_id = ? AND wamid IS NULL",
                           (status.wamid, outbox_id))  # fmt: skip
        if status.status == "failed" and status.error_code == 131050:
            self._consent(db, business_id, status.recipient_id, status.recipient_user_id, "*", "out", status.at,
                          "meta", "Stopped marketing messages (Meta error 131050)", None, {"wamid": status.wamid})
        return False

    def _erased_inbound(self, db: sqlite3.Connection, message: Inbound, business_id: int) -> bool:
        """A message written no later than an erasure of its sender (found by a privacy review:
        Meta's redelivery in other bytes, which the body's hash does not know, brought it back).
        What they write after it is theirs to keep, as the README says."""
        return db.execute(
            "SELECT 1 FROM consents WHERE business_id = ? AND (phone = ? OR user_id = ?) AND source = 'erase'"
            " AND at >= ? LIMIT 1", (business_id, message.wa_id, message.user_id, message.at),
        ).fetchone() is not None  # fmt: skip

    def _erased_among(self, db: sqlite3.Connection, recipients: set[str]) -> set[str]:
        """Those of a batch's senders and status recipients (numbers or user ids) some erasure
        named: one query a batch."""
        if not recipients:
            return set()
        found = json.dumps(sorted(recipients))
        return {row[0] for row in db.execute(
            f"SELECT phone FROM consents WHERE source = 'erase' AND phone IN ({self._json_texts})"
            f" UNION SELECT user_id FROM consents WHERE source = 'erase' AND user_id IN ({self._json_texts})",
            (found, found)).fetchall()}  # fmt: skip

    def _erased_message(self, db: sqlite3.Connection, status: Status, business_id: int) -> bool:
        """A status, come late, of a message an erasure deleted (found by a privacy review): kept,
        it would name the erased person again, for ever, where no export looks. Looked at only
        for a recipient an erasure named (`_erased_among`)."""
        if db.execute("SELECT 1 FROM consents WHERE business_id = ? AND (phone = ? OR user_id = ?) AND source = 'erase'"
                      " LIMIT 1", (business_id, status.recipient_id, status.recipient_user_id)).fetchone() is None:
            return False  # (by either: an erasure by user id may never have known the number)
        if db.execute("SELECT 1 FROM wa_messages WHERE wamid = ?", (status.wamid,)).fetchone() is not None:
            return False  # a message sent since (they wrote again)
        ours = outbox_of(status.callback)  # an update sent since, or a send whose wamid is not written yet
        row = db.execute("SELECT payload FROM outbox WHERE id = ?", (ours,)).fetchone() if ours is not None else None
        return row is None or json.loads(row[0]).get("biz_opaque_callback_data") != status.callback  # whole, as _status

    def _consent(
        self, db: sqlite3.Connection, business_id: int, phone: str | None, user_id: str | None, topic: str,
        state: str, at: int, source: str, wording: str | None, version: str | None, proof: dict[str, Any] | None,
    ) -> None:  # fmt: skip
        db.execute(
            "INSERT INTO consents (business_id, phone, user_id, topic, state, at, source, wording, version, proof)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (business_id, phone, user_id, topic, state, at, source, wording, version,
             json.dumps(proof) if proof else None),
        )  # fmt: skip

    # -- conversations ---------------------------------------------------------------

    async def conversations(
        self, business_id: int | None = None, agent_id: int | None = None, open_since: int | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Conversation]:  # fmt: skip
        """Newest first; `open_since`: only those whose customer wrote since then."""

        def work() -> list[Conversation]:
            rows = self._all(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations c LEFT JOIN chat_starts s ON s.id = c.start_id"
                " WHERE (?1 IS NULL OR c.business_id = ?1) AND (?2 IS NULL OR s.agent_id = ?2)"
                " AND (?3 IS NULL OR c.last_inbound_at >= ?3)"
                " ORDER BY c.last_message_at DESC, c.id DESC LIMIT ?4 OFFSET ?5",
                (business_id, agent_id, open_since, limit, offset),
            )  # fmt: skip
            return [_conversation(row) for row in rows]

        return await self.run(work)

    async def customer_name(self, number_id: int, wa_id: str) -> str | None:
        """The profile name WhatsApp last gave for this customer of this number (the simulator
        keeps it, as a real customer keeps theirs)."""
        row = await self.run(self._one, "SELECT name FROM conversations WHERE number_id = ? AND wa_id = ?"
                             " ORDER BY last_message_at DESC LIMIT 1", (number_id, wa_id))  # fmt: skip
        return str(row[0]) if row and row[0] else None

    async def conversation(self, conversation_id: int) -> Conversation | None:
        if not 0 <= conversation_id < 2**63:
            return None

        def work() -> Conversation | None:
            row = self._one(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations c"
                " LEFT JOIN chat_starts s ON s.id = c.start_id WHERE c.id = ?", (conversation_id,),
            )  # fmt: skip
            return _conversation(row) if row else None

        return await self.run(work)

    async def messages(self, conversation_id: int, limit: int = 100) -> list[Message]:
        """The last `limit` messages, oldest first, each outbound one with the furthest status
        Meta reported (a late `sent` never undoes a `delivered`)."""

        def work() -> list[Message]:
            rows = self._all(
                "SELECT * FROM (SELECT m.id, m.wamid, m.direction, m.at, m.type, m.text, m.caption, m.mime_type,"
                " o.state, o.error_code, o.error, m.outbox_id, o.sent_by"
                " FROM wa_messages m LEFT JOIN outbox o ON o.id = m.outbox_id"
                " WHERE m.conversation_id = ? ORDER BY m.at DESC, m.id DESC LIMIT ?) AS last ORDER BY at, id",
                (conversation_id, limit),
            )  # fmt: skip
            number = self._one("SELECT number_id FROM conversations WHERE id = ?", (conversation_id,))
            sent = [row[1] for row in rows if row[1] and row[2] == "out"]
            statuses = self._statuses(sent, number[0] if number else 0)
            messages = []
            for (id_, wamid, direction, at, kind, text, caption, mime, state, code, error, outbox_id, by) in rows:
                status = pricing = None
                if direction == "out":
                    reported = statuses.get(wamid) if wamid else None
                    status = reported[0] if reported else ("queued" if state in ("queued", "sending") else state)
                    if reported:
                        pricing = reported[1]
                        if reported[0] == "failed":
                            code, error = reported[2], error_text(reported[2], reported[3])
                messages.append(Message(id_, wamid, direction, at, kind, text, caption, mime, status, code, error,
                                        pricing, outbox_id, by))  # fmt: skip
            return messages

        return await self.run(work)

    def _statuses(
        self, wamids: list[str], number_id: int
    ) -> dict[str, tuple[str, dict[str, Any] | None, int | None, str | None]]:
        """What Meta reported of these messages of one number (statuses signed for another are not read)."""
        found: dict[str, tuple[str, dict[str, Any] | None, int | None, str | None]] = {}
        if not wamids:
            return found
        rows = self._all("SELECT wamid, status, pricing, error_code, error_title FROM wa_statuses"
                         f" WHERE wamid IN ({self._json_texts}) AND number_id = ?",
                         (json.dumps(wamids), number_id))  # fmt: skip
        for wamid, status, pricing, code, title in rows:
            best = found.get(wamid)
            price = json.loads(pricing) if pricing else None
            if best is None or STATUS_RANK[status] > STATUS_RANK[best[0]]:
                found[wamid] = (status, price or (best[1] if best else None), code, title)
            elif price and best[1] is None:  # a `read` (no pricing) stored before the `sent` that has it
                found[wamid] = (best[0], price, best[2], best[3])
        return found

    async def last_messages(self, conversation_ids: list[int]) -> dict[int, tuple[str, str | None]]:
        """(direction, text or type) of each conversation's last message, for lists."""

        def work() -> dict[int, tuple[str, str | None]]:
            rows = self._all(
                "SELECT m.conversation_id, m.direction, CASE WHEN m.type = 'reaction'"
                " THEN coalesce(m.text, '[reaction]')"  # its caption is the message it is on, not its words
                " ELSE coalesce(m.text, m.caption, '[' || m.type || ']') END"
                " FROM wa_messages m WHERE m.id IN (SELECT (SELECT id FROM wa_messages WHERE conversation_id = value"
                f" ORDER BY at DESC, id DESC LIMIT 1) FROM {self._json_ids})", (json.dumps(conversation_ids),),
            )  # fmt: skip
            return {row[0]: (row[1], row[2]) for row in rows}

        return await self.run(work) if conversation_ids else {}

    async def last_written_in(self, conversation_id: int) -> int | None:
        """When the customer last wrote in the conversation: as optinstore's `last_written`, a
        reaction does not count."""
        row = await self.run(self._one, "SELECT max(at) FROM wa_messages WHERE conversation_id = ?"
                                        " AND direction = 'in' AND type <> 'reaction'", (conversation_id,))  # fmt: skip
        return int(row[0]) if row and row[0] is not None else None

    async def unanswered_for(
        self, wa_id: str | None, user_id: str | None, number_id: int, since: int, until: int
    ) -> bool:
        """True when every message sent to this customer between `since` and `until` stayed at
        `sent`, while messages to others in that time were delivered: they may have blocked us."""

        forms = set(whatsapp_forms(whatsapp_number(wa_id))) if wa_id else set()  # and a 521... twin's

        def work() -> bool:
            rows = self._all(
                "SELECT m.wamid, c.wa_id, c.user_id FROM wa_messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE c.number_id = ? AND m.direction = 'out' AND m.wamid IS NOT NULL AND m.at BETWEEN ? AND ?",
                (number_id, since, until),
            )  # fmt: skip
            statuses = self._statuses([row[0] for row in rows], number_id)
            mine = {w: c_wa in forms or (user_id is not None and c_user == user_id) for w, c_wa, c_user in rows}
            theirs = [statuses.get(w, ("queued",))[0] for w, is_mine in mine.items() if is_mine]
            others = [statuses.get(w, ("queued",))[0] for w, is_mine in mine.items() if not is_mine]
            return bool(theirs) and all(s == "sent" for s in theirs) and any(
                s in ("delivered", "read") for s in others
            )

        return await self.run(work)

    # -- consent ---------------------------------------------------------------------

    async def consents(self, business_id: int | None, phone: str | None, user_id: str | None) -> list[Consent]:
        """Every entry about one person, oldest first: by their number or user id, and by the
        other identifier the business's conversations tie to it. A STOP may come with the user
        id alone (WhatsApp withholds the number), and a notification names the number alone."""

        def work() -> list[Consent]:
            phones, users = self._identities(business_id, phone, user_id)
            scope = "" if business_id is None else " AND business_id = ?"  # equalities only: the indexes serve them
            keys = [(column, value) for column, values in (("phone", phones), ("user_id", users)) for value in values]
            sql = " UNION ".join(f"SELECT {CONSENT_COLUMNS} FROM consents WHERE {column} = ?{scope}"
                                 for column, _ in keys)  # fmt: skip
            values = [v for _, value in keys for v in (value, business_id) if v is not None]
            return [consent_from(row) for row in self._all(f"{sql} ORDER BY at, id", values)] if keys else []

        return await self.run(work)

    def _identities(self, business_id: int | None, phone: str | None, user_id: str | None
                    ) -> tuple[list[str], list[str]]:  # fmt: skip
        """The person's numbers and user ids: those asked for, and those the business's
        conversations hold with them (a conversation learns each when a message carries it)."""
        numbers = "SELECT id FROM whatsapp_numbers" + ("" if business_id is None else " WHERE business_id = ?")
        scope = [] if business_id is None else [business_id]
        # A number in every form Meta writes it (a 521... conversation migration 015 left beside its twin)
        phones = set(whatsapp_forms(whatsapp_number(phone))) if phone else set()
        users = {u for u in (user_id,) if u}
        held = f"FROM conversations WHERE number_id IN ({numbers})"
        if phone:
            forms = sorted(phones)
            rows = self._all(f"SELECT user_id {held} AND wa_id IN ({', '.join('?' * len(forms))})"
                             " AND user_id IS NOT NULL", [*scope, *forms])  # fmt: skip
            users |= {row[0] for row in rows}
        if user_id:
            rows = self._all(f"SELECT wa_id {held} AND user_id = ? AND wa_id IS NOT NULL", [*scope, user_id])
            phones |= {form for row in rows for form in whatsapp_forms(whatsapp_number(row[0]))}
        return sorted(phones), sorted(users)

    async def add_consent(
        self, business_id: int, phone: str | None, user_id: str | None, topic: str, state: str, at: int,
        source: str, wording: str | None = None, version: str | None = None, proof: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        def work() -> None:
            with self._tx() as db:
                self._consent(db, business_id, phone, user_id, topic, state, at, source, wording, version, proof)

        await self.run(work)

@dataclass
class _Customer:
    """A conversation as one transaction sees it."""

    id: int
    last_inbound: int | None
    last_message: int
    wa_id: str | None
    user_id: str | None
    name: str | None = None


def customer_lock(phone_number_id: str, who: str) -> int:
    """The advisory lock of a customer of a number (by wa_id or user id): 64 bits of a hash."""
    digest = hashlib.blake2b(f"customer:{phone_number_id}:{who}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class _Batch:
    numbers: dict[str, tuple[int, int, str, str] | None] = field(default_factory=dict)
    customers: dict[tuple[int, str, str], _Customer] = field(default_factory=dict)
    changed: dict[int, _Customer] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)  # senders and status recipients an erasure named
    moved: set[int] = field(default_factory=set)  # numbers that served another business before


def _conversation(row: Sequence[Any]) -> Conversation:
    start = None
    if row[11] is not None:
        start = ChatStart(*row[11:19], referral=json.loads(row[19]) if row[19] else None)  # type: ignore[misc]
    return Conversation(*row[:11], start=start, first_reply_at=row[20])  # type: ignore[misc]



