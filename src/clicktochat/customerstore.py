"""The SQL of one person's data (a phone number, and the business-scoped user ids WhatsApp
tied to it): everything we hold, for an export, and its erasure, which keeps only an opt-out
marker so that nobody messages that number again."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from .channels import whatsapp_forms, whatsapp_number
from .chatdb import RETRYABLE, UNIQUE_VIOLATION
from .conversations import Event, Inbound, Status, parse
from .notifystore import NotificationStore

log = logging.getLogger(__name__)

ERASED_WORDING = "Erased at the person's request: never message this number again."


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    found = []
    for row in cursor.fetchall():
        item = dict(zip(names, row, strict=True))
        for key in ("proof", "referral", "pricing", "payload", "parameters"):
            if isinstance(item.get(key), str):
                item[key] = json.loads(item[key])
        found.append(item)
    return found


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def ties(events: list[Event], phones: set[str], users: set[str]) -> set[str]:
    """The user ids these events tie to the person: a message from one of their numbers or user
    ids, or a status of one to them, that carries a user id."""
    found: set[str] = set()
    for event in events:
        if isinstance(event, Inbound) and event.user_id and (event.wa_id in phones or event.user_id in users):
            found.add(event.user_id)
        elif isinstance(event, Status) and event.recipient_user_id and event.recipient_id in phones:
            found.add(event.recipient_user_id)
    return found


class CustomerStore(NotificationStore):
    @property
    def _body_holds(self) -> str:
        """A webhook body (bytes) holds the text of the parameter: SQLite's instr, PostgreSQL's position."""
        return "position(convert_to(?, 'UTF8') in body) > 0" if self.postgres else "instr(body, ?) > 0"

    def _who(self, db: sqlite3.Connection, phone: str | None, user_id: str | None = None, tied: Iterable[str] = ()
             ) -> tuple[str | None, list[int], list[str]]:  # fmt: skip
        """The person's number (asked for, or the one WhatsApp tied to the user id asked for; None
        when it withheld it), their conversations, and the user ids WhatsApp tied to them (in
        their conversations, or, `tied`, in webhook bodies an erasure read)."""
        if phone is None and user_id is not None:
            found = db.execute("SELECT wa_id FROM conversations WHERE user_id = ? AND wa_id IS NOT NULL LIMIT 1",
                               (user_id,)).fetchone()  # fmt: skip
            phone = whatsapp_number(found[0]) if found else None  # E.164, whichever twin came first
        asked = sorted(u for u in {user_id, *tied} if u)
        forms = whatsapp_forms(phone) if phone else []  # and Meta's own (521...), as migration 015 may have left one
        rows = db.execute(f"SELECT id, user_id FROM conversations WHERE wa_id IN ({_marks(forms)})"
                          f" OR user_id IN ({_marks(asked)})", (*forms, *asked)).fetchall()  # fmt: skip
        user_ids = sorted({r[1] for r in rows if r[1]} | set(asked))
        if user_ids:
            more = db.execute(f"SELECT id FROM conversations WHERE user_id IN ({_marks(user_ids)})", user_ids)
            return phone, sorted({r[0] for r in rows} | {r[0] for r in more.fetchall()}), user_ids
        return phone, sorted(r[0] for r in rows), user_ids

    def _hold_bodies(self, db: sqlite3.Connection, phone: str | None, user_id: str | None, now: int
                     ) -> tuple[str | None, list[int], list[str]]:  # fmt: skip
        """Inside the erasure's transaction: `_who`, once every webhook body that names the
        person is applied. A body may name others too, and the erasure empties it: what it says
        of them must be in their conversations first. `customers.erase` applied what was due,
        but a body may have come since, or been held by another instance (PostgreSQL), which
        applies it in its own transaction: locking the bodies waits for that one to commit, so
        what it wrote is seen, and erased, not committed after the erasure looked. Each
        identifier a body ties to the person (a message from their number that carries a user
        id) is looked for in turn, even where their conversations did not join them (two were
        made apart). SQLite's BEGIN IMMEDIATE already keeps every other writer out."""
        done: set[str] = set()
        tied: set[str] = set()
        while True:
            number, conversations, user_ids = self._who(db, phone, user_id, tied)
            needles = sorted({f for n in (number, phone, user_id, *user_ids) if n for f in whatsapp_forms(n)} - done)
            if not needles:
                return number, conversations, user_ids
            lock = " FOR UPDATE" if self.postgres else ""
            rows = db.execute("SELECT id, processed_at IS NULL, body, numbers FROM webhook_events"
                              f" WHERE {' OR '.join([self._body_holds] * len(needles))} ORDER BY id{lock}",
                              needles).fetchall()  # fmt: skip
            for event_id, pending, body, numbers in rows:
                events = parse(bytes(body), json.loads(numbers))
                tied |= ties(events, {p for p in (number, phone) if p}, {u for u in (user_id, *user_ids) if u})
                if pending:
                    self._apply_one(db, event_id, events, now)
            done.update(needles)

    def _apply_one(self, db: sqlite3.Connection, event_id: int, events: list[Event], now: int) -> None:
        """A pending body, applied inside the erasure; one that fails (a bug of ours) is left out,
        as in the processor, and emptied with the rest: the erasure is not held up by it."""
        db.execute("SAVEPOINT erase_apply")
        try:
            self._apply(db, [(event_id, events)], now)
        except Exception as exc:
            if self.postgres and getattr(exc, "sqlstate", None) in (*RETRYABLE, UNIQUE_VIOLATION):
                raise  # another instance's doing, not a bug: the whole erasure is run again, nothing emptied unapplied
            log.warning("a webhook body could not be applied before an erasure emptied it", exc_info=True)
            db.execute("ROLLBACK TO SAVEPOINT erase_apply")
        db.execute("RELEASE SAVEPOINT erase_apply")

    def _apply(self, db: sqlite3.Connection, bodies: list[tuple[int, list[Event]]], now: int) -> int:
        """What webhook bodies say, in the caller's transaction: `ChatStore._apply`."""
        raise NotImplementedError

    async def customer_data(self, phone: str | None, user_id: str | None = None) -> dict[str, Any]:
        """Everything held about this number (or this user id, when WhatsApp withheld the number), as plain data."""

        def work() -> dict[str, Any]:
            db = self.db
            number, conversations, user_ids = self._who(db, phone, user_id)
            c, u = _marks(conversations), _marks(user_ids)
            notifications = _rows(db, "SELECT n.*, o.state AS outbox_state, o.wamid, o.error_code, o.error"
                                      " FROM notifications n JOIN outbox o ON o.id = n.outbox_id WHERE n.phone = ?"
                                      " ORDER BY n.id", (number,))  # fmt: skip
            messages = _rows(db, f"SELECT * FROM wa_messages WHERE conversation_id IN ({c}) ORDER BY at, id",
                             conversations)  # fmt: skip
            requests = _rows(db, "SELECT * FROM optin_requests WHERE phone = ? ORDER BY id", (number,))
            outbox_ids = sorted({r["outbox_id"] for r in [*messages, *notifications, *requests] if r["outbox_id"]})
            outbox = _rows(db, f"SELECT * FROM outbox WHERE id IN ({_marks(outbox_ids)}) ORDER BY id", outbox_ids)
            for row in outbox:  # which of the business's staff wrote it is theirs, not the customer's (a review)
                row.pop("sent_by", None)
            wamids = [m["wamid"] for m in [*messages, *outbox] if m["wamid"]]
            needles = [f for n in (number, *user_ids) if n for f in whatsapp_forms(n)]  # Meta's forms too (521...)
            return {
                "phone": number,
                "user_ids": user_ids,
                "consents": _rows(db, f"SELECT * FROM consents WHERE phone = ? OR user_id IN ({u}) ORDER BY at, id",
                                  [number, *user_ids]),  # fmt: skip
                "conversations": _rows(db, f"SELECT * FROM conversations WHERE id IN ({c}) ORDER BY id", conversations),
                "chat_starts": _rows(db, f"SELECT * FROM chat_starts WHERE conversation_id IN ({c}) ORDER BY at",
                                     conversations),  # fmt: skip
                "attributions": _rows(db, f"SELECT * FROM attributions WHERE conversation_id IN ({c}) ORDER BY at, id",
                                      conversations),  # fmt: skip
                "messages": messages,
                "statuses": _rows(db, f"SELECT * FROM wa_statuses WHERE wamid IN ({_marks(wamids)}) OR recipient = ?"
                                      f" OR recipient IN ({u}) ORDER BY at", [*wamids, number, *user_ids]),  # fmt: skip
                "notifications": notifications,
                "optin_requests": requests,
                "outbox": outbox,  # what was sent them, or is to be: replies, updates, confirmations
                "webhook_bodies_held": db.execute(
                    "SELECT count(*) FROM webhook_events WHERE " + " OR ".join([self._body_holds] * len(needles)),
                    needles,
                ).fetchone()[0] if needles else 0,
            }  # fmt: skip

        return await self.run(work)

    async def erase_customer(self, phone: str | None, now: int, user_id: str | None = None,
                             marked_at: int | None = None) -> dict[str, int]:  # fmt: skip
        """Delete everything about this number (or user id); then one opt-out entry per business,
        with no other data, so that no path messages it again. Returns what was deleted, per table.
        The raw webhook bodies that name the person are emptied and marked applied, their SHA-256
        kept: Meta redelivers a body for days, and the same bytes again must not bring back what
        was erased (the hash says nothing without the body). `marked_at`: the markers' time, when
        this repeats an erasure asked for then (a restore); a marker it already left is not doubled."""

        def erase(db: sqlite3.Connection) -> dict[str, int]:
            number, conversations, user_ids = self._hold_bodies(db, phone, user_id, now)
            c, u = _marks(conversations), _marks(user_ids)
            outbox = [r[0] for r in db.execute(
                f"SELECT id FROM outbox WHERE conversation_id IN ({c})", conversations).fetchall()]  # fmt: skip
            outbox += [r[0] for r in db.execute("SELECT outbox_id FROM notifications WHERE phone = ?", (number,))]
            outbox += [r[0] for r in db.execute("SELECT outbox_id FROM optin_requests WHERE phone = ?"
                                                " AND outbox_id IS NOT NULL", (number,))]  # double opt-ins' (008)
            wamids = [r[0] for r in db.execute(
                f"SELECT wamid FROM wa_messages WHERE conversation_id IN ({c}) AND wamid IS NOT NULL"
                f" UNION SELECT wamid FROM outbox WHERE id IN ({_marks(outbox)}) AND wamid IS NOT NULL",
                [*conversations, *outbox]).fetchall()]  # fmt: skip
            deleted: dict[str, int] = {}

            def delete(table: str, where: str, params: Sequence[Any]) -> None:
                deleted[table] = deleted.get(table, 0) + db.execute(f"DELETE FROM {table} WHERE {where}",
                                                                    params).rowcount  # fmt: skip

            db.execute(f"UPDATE conversations SET start_id = NULL WHERE id IN ({c})", conversations)
            delete("wa_statuses", f"wamid IN ({_marks(wamids)}) OR recipient = ? OR recipient IN ({u})",
                   [*wamids, number, *user_ids])  # fmt: skip
            delete("wa_messages", f"conversation_id IN ({c})", conversations)
            delete("chat_starts", f"conversation_id IN ({c})", conversations)
            delete("attributions", f"conversation_id IN ({c})", conversations)
            delete("click_refs", f"used_by IN ({c})", conversations)
            delete("notifications", "phone = ?", (number,))
            delete("optin_requests", "phone = ?", (number,))
            delete("outbox", f"id IN ({_marks(outbox)})", outbox)
            delete("conversations", f"id IN ({c})", conversations)
            # Earlier erasures' markers stay: when it was first erased is kept (found by a new user).
            delete("consents", f"(phone = ? OR user_id IN ({u})) AND source <> 'erase'", [number, *user_ids])
            for needle in [f for n in (number, *user_ids) if n for f in whatsapp_forms(n)]:  # emptied, not deleted:
                # the hash turns away Meta's redeliveries
                deleted["webhook_events"] = deleted.get("webhook_events", 0) + db.execute(
                    "UPDATE webhook_events SET body = ?, numbers = '[]', processed_at = coalesce(processed_at, ?),"
                    f" error = NULL WHERE {self._body_holds}", (b"", now, needle),
                ).rowcount  # fmt: skip
            # The marker, per business: the number, and each user id WhatsApp tied to it (a review:
            # a status or a message naming the user id alone was not known as the erased person's).
            # A restore repeating an erasure (`marked_at`) may meet a marker it left already: the
            # number's erasure marks the user ids tied to it, which the restore names too.
            again = (" AND NOT EXISTS (SELECT 1 FROM consents e WHERE e.business_id = b.id AND e.source = 'erase'"
                     " AND e.at = ?4 AND coalesce(e.phone, '') = coalesce(?1, '')"
                     " AND coalesce(e.user_id, '') = coalesce(?2, ''))") if marked_at is not None else ""
            for marker in [(number, None)] * bool(number) + [(None, u) for u in user_ids]:
                db.execute(
                    "INSERT INTO consents (business_id, phone, user_id, topic, state, at, source, wording)"
                    f" SELECT id, ?1, ?2, '*', 'out', ?4, 'erase', ?3 FROM businesses b WHERE TRUE{again}",
                    (*marker, ERASED_WORDING, now if marked_at is None else marked_at),
                )  # fmt: skip
            return deleted

        def work() -> dict[str, int]:
            # Run again from the start when PostgreSQL ends it for a deadlock: an erasure applies
            # pending bodies and so takes row locks an instance applying others may want too.
            deleted = self._retry(erase, also=(UNIQUE_VIOLATION,))
            if not self.postgres:  # the log still holds the pages as they were: written back, then emptied
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return deleted

        return await self.run(work)
