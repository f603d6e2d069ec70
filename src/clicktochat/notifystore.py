"""The SQL of updates a business starts: each number's message templates (synced from Meta)
and notifications, each tied to the outbox row that sends it. A notification's state is read
from that row and from Meta's statuses of its message: queued, sending, sent, delivered, read,
failed or cancelled."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .consent import CONSENT_COLUMNS, Consent, consent_from
from .conversations import STATUS_RANK
from .graph import error_text
from .message_templates import Template
from .outboxstore import OutboxStore
from .pricing import Sent

NOTIFICATION_COLUMNS = (
    "n.id, n.business_id, n.number_id, n.phone, n.topic, n.template, n.language, n.category, n.parameters,"
    " n.idempotency_key, n.source, n.created_at, o.id, o.state, o.wamid, o.error_code, o.error, o.attempts,"
    " o.sent_at"
)


@dataclass(frozen=True)
class Notification:
    id: int
    business_id: int
    number_id: int
    phone: str
    topic: str
    template: str
    language: str
    category: str
    parameters: list[str]
    idempotency_key: str
    source: str
    created_at: int
    outbox_id: int
    outbox_state: str  # queued, sending, sent, failed, cancelled
    wamid: str | None
    error_code: int | None
    error: str | None
    attempts: int
    sent_at: int | None
    status: str | None = None  # Meta's furthest status: sent, delivered, read, failed
    status_at: int | None = None
    pricing: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        """What people see: the outbox's state until Meta reports on the message."""
        if self.outbox_state != "sent" or self.status is None:
            return self.outbox_state
        return self.status


class NotificationStore(OutboxStore):
    # -- templates -------------------------------------------------------------------

    async def replace_templates(self, number_id: int, templates: Sequence[Template], now: int) -> None:
        """The number's templates become exactly these (one that Meta no longer lists is gone; one
        it lists twice, the last). Two syncs at once (two instances) take turns: on PostgreSQL
        each locks the number's row first, so the second deletes what the first wrote (it would
        not see rows committed after its DELETE began) and its list is the one that stays."""
        latest = {(t.name, t.language): t for t in templates}

        def work(db: sqlite3.Connection) -> None:
            if self.postgres:
                db.execute("SELECT 1 FROM whatsapp_numbers WHERE id = ? FOR NO KEY UPDATE", (number_id,))
            db.execute("DELETE FROM message_templates WHERE number_id = ?", (number_id,))
            db.executemany(
                "INSERT INTO message_templates (number_id, name, language, status, category,"
                " body_parameters, body, components, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (number_id, name, language) DO UPDATE SET status = excluded.status,"  # another sync's
                " category = excluded.category, body_parameters = excluded.body_parameters, body = excluded.body,"
                " components = excluded.components, synced_at = excluded.synced_at",
                [(number_id, t.name, t.language, t.status, t.category, len(t.parameter_names), t.body,
                  json.dumps({"components": t.components, "parameters": list(t.parameter_names)}), now)
                 for _, t in sorted(latest.items())],
            )  # fmt: skip

        await self.run(self._retry, work)

    async def templates(self, number_id: int) -> list[tuple[Template, int]]:
        """(template, synced at) of a number, by name and language."""

        def work() -> list[tuple[Template, int]]:
            rows = self._all(
                "SELECT name, language, status, category, body, components, synced_at FROM message_templates"
                " WHERE number_id = ? ORDER BY name, language", (number_id,),
            )  # fmt: skip
            return [(_template(row), row[6]) for row in rows]

        return await self.run(work)

    async def template(self, number_id: int, name: str, language: str) -> Template | None:
        row = await self.run(self._one, "SELECT name, language, status, category, body, components, synced_at"
                                        " FROM message_templates WHERE number_id = ? AND name = ? AND language = ?",
                             (number_id, name, language))  # fmt: skip
        return _template(row) if row else None

    # -- notifications ---------------------------------------------------------------

    async def queue_notification(
        self, business_id: int, number_id: int, phone: str, topic: str, template: Template, parameters: list[str],
        key: str, source: str, payload: dict[str, Any], now: int,
    ) -> tuple[Notification, bool]:  # fmt: skip
        """The notification and its outbox row, in one transaction; (the first one, False) for
        an idempotency key used before."""

        def work() -> tuple[Notification, bool]:
            with self._tx() as db:
                found = self._notification("n.business_id = ? AND n.idempotency_key = ?", (business_id, key))
                if found is not None:
                    return found, False
                row, created = self._enqueue(db, number_id, None, f"notify:{business_id}:{key}", payload, None,
                                             "template", now)  # fmt: skip
                if not created:  # PostgreSQL: another instance queued this key since the look above
                    found = self._notification("n.business_id = ? AND n.idempotency_key = ?", (business_id, key))
                    if found is not None:
                        return found, False
                cursor = db.execute(
                    "INSERT INTO notifications (business_id, number_id, phone, topic, template, language, category,"
                    " parameters, idempotency_key, outbox_id, source, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (business_id, number_id, phone, topic, template.name, template.language, template.category,
                     json.dumps(parameters), key, row.id, source, now),
                )  # fmt: skip
                made = self._notification("n.id = ?", (cursor.fetchone()[0],))
                assert made is not None
                return made, True

        return await self.run(work)

    async def notification(self, notification_id: int) -> Notification | None:
        if not 0 <= notification_id < 2**63:
            return None
        return await self.run(self._notification, "n.id = ?", (notification_id,))

    async def notifications_by_key(self, business_id: int, key: str) -> Notification | None:
        return await self.run(self._notification, "n.business_id = ? AND n.idempotency_key = ?", (business_id, key))

    async def consents_for_outboxes(self, outbox_ids: list[int]) -> dict[int, tuple[str, list[Consent]]]:
        """For the outbox rows that send notifications: the topic, and the consent entries about
        the number, oldest first. One hop, for a batch of the sender's."""

        def work() -> dict[int, tuple[str, list[Consent]]]:
            marks = ", ".join("?" * len(outbox_ids))
            columns = ", ".join("c." + c for c in CONSENT_COLUMNS.split(", "))
            rows = self._all(
                f"SELECT n.outbox_id, n.topic, {columns}"
                f" FROM notifications n LEFT JOIN consents c ON c.business_id = n.business_id AND c.phone = n.phone"
                f" WHERE n.outbox_id IN ({marks})", outbox_ids,
            ) if outbox_ids else []  # fmt: skip
            # And the entries made by the user id their conversations tie to the number (a STOP
            # that came with the user id alone): `ChatStore.consents` reads a person the same way.
            rows += self._all(
                f"SELECT n.outbox_id, n.topic, {columns} FROM notifications n"
                " JOIN whatsapp_numbers w ON w.business_id = n.business_id"
                " JOIN conversations v ON v.number_id = w.id AND v.wa_id = n.phone AND v.user_id IS NOT NULL"
                " JOIN consents c ON c.business_id = n.business_id AND c.user_id = v.user_id"
                f" WHERE n.outbox_id IN ({marks})", outbox_ids,
            ) if outbox_ids else []  # fmt: skip
            found: dict[int, tuple[str, list[Consent]]] = {}
            seen: set[tuple[int, int]] = set()
            for outbox_id, topic, *entry in rows:
                entries = found.setdefault(outbox_id, (topic, []))[1]
                if entry[0] is not None and (outbox_id, entry[0]) not in seen:  # none at all (LEFT JOIN), or twice
                    seen.add((outbox_id, entry[0]))
                    entries.append(consent_from(entry))
            for _, entries in found.values():
                entries.sort(key=lambda e: (e.at, e.id))
            return found

        return await self.run(work)

    async def notification_for_outbox(self, outbox_id: int) -> Notification | None:
        return await self.run(self._notification, "n.outbox_id = ?", (outbox_id,))

    async def notifications(
        self, business_id: int | None = None, phone: str | None = None, topic: str | None = None,
        state: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[Notification]:  # fmt: skip
        """Newest first. `state` filters on the outbox's state (queued, sending, sent, failed,
        cancelled) or, for delivered and read, on Meta's statuses."""

        def work() -> list[Notification]:
            where = ["(?1 IS NULL OR n.business_id = ?1)", "(?2 IS NULL OR n.phone = ?2)",
                     "(?3 IS NULL OR n.topic = ?3)"]  # fmt: skip
            if state in ("delivered", "read"):
                reached = "('delivered', 'read')" if state == "delivered" else "('read')"
                where.append("EXISTS (SELECT 1 FROM wa_statuses s WHERE s.wamid = o.wamid AND s.number_id = n.number_id"
                             f" AND s.status IN {reached})")  # fmt: skip
            elif state is not None:
                where.append("o.state = ?4")
            rows = self._all(
                f"SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN outbox o ON o.id = n.outbox_id"
                f" WHERE {' AND '.join(where)} ORDER BY n.created_at DESC, n.id DESC LIMIT ?5 OFFSET ?6",
                (business_id, phone, topic, state, limit, offset),
            )  # fmt: skip
            return self._with_statuses(rows)

        return await self.run(work)

    async def sent_between(self, start: int, end: int, business_id: int | None = None) -> list[Sent]:
        """Every message Meta took in [start, end), oldest first, as `pricing.estimate` needs it:
        templates with their category and topic, replies as service messages, and Meta's pricing
        object from the message's statuses when it has come."""

        def work() -> list[Sent]:
            rows = self._all(
                "SELECT w.business_id, o.number_id, coalesce(n.phone, c.wa_id, r.phone),"
                " coalesce(lower(n.category), CASE WHEN o.conversation_id IS NULL THEN 'utility' ELSE 'service' END),"
                " n.topic, (SELECT s.pricing FROM wa_statuses s WHERE s.wamid = o.wamid AND s.number_id = o.number_id"
                " AND s.pricing IS NOT NULL ORDER BY s.at DESC LIMIT 1), CASE WHEN r.id IS NULL THEN NULL"
                " ELSE o.payload END"
                " FROM outbox o JOIN whatsapp_numbers w ON w.id = o.number_id"
                " LEFT JOIN notifications n ON n.outbox_id = o.id LEFT JOIN conversations c ON c.id = o.conversation_id"
                " LEFT JOIN optin_requests r ON r.outbox_id = o.id"
                " WHERE o.state = 'sent' AND o.sent_at >= ? AND o.sent_at < ? AND (? IS NULL OR w.business_id = ?)"
                " ORDER BY o.sent_at, o.id", (start, end, business_id, business_id),
            )  # fmt: skip
            sent = []
            for business, number, phone, category, topic, pricing, confirmation in rows:
                if confirmation:  # a double opt-in's confirmation: its template's own category
                    category = self._template_category(number, json.loads(confirmation)) or category
                sent.append(Sent(business, number, phone, category, topic, json.loads(pricing) if pricing else None))
            return sent

        return await self.run(work)

    def _template_category(self, number_id: int, payload: dict[str, Any]) -> str | None:
        template = payload.get("template") or {}
        language = (template.get("language") or {}).get("code")
        row = self._one("SELECT category FROM message_templates WHERE number_id = ? AND name = ? AND language = ?",
                        (number_id, template.get("name"), language))  # fmt: skip
        return str(row[0]).lower() if row else None

    def _notification(self, where: str, params: Sequence[Any]) -> Notification | None:
        rows = self._all(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications n JOIN outbox o ON o.id = n.outbox_id"
                         f" WHERE {where}", params)  # fmt: skip
        found = self._with_statuses(rows)
        return found[0] if found else None

    def _with_statuses(self, rows: list[Any]) -> list[Notification]:
        """Each notification with Meta's furthest status of its message (failed counts as furthest)."""
        wamids = [row[14] for row in rows if row[14]]
        best: dict[str, tuple[str, int, dict[str, Any] | None]] = {}
        failures: dict[str, tuple[int | None, str | None]] = {}  # Meta's error, for a message that failed
        for start in range(0, len(wamids), 500):
            chunk = wamids[start : start + 500]
            for wamid, status, at, pricing, code, title in self._all(
                "SELECT wamid, status, at, pricing, error_code, error_title FROM wa_statuses"
                f" WHERE wamid IN ({', '.join('?' * len(chunk))})", chunk,
            ):  # fmt: skip
                if status == "failed":
                    failures[wamid] = (code, title)
                if wamid not in best or STATUS_RANK.get(status, 0) > STATUS_RANK.get(best[wamid][0], 0):
                    best[wamid] = (status, at, json.loads(pricing) if pricing else best.get(wamid, ("", 0, None))[2])
                elif pricing and best[wamid][2] is None:
                    best[wamid] = (*best[wamid][:2], json.loads(pricing))
        found = []
        for row in rows:
            status = best.get(row[14]) if row[14] else None
            code, error = row[15], row[16]
            if status and status[0] == "failed" and error is None and row[14] in failures:
                code, title = failures[row[14]]
                error = error_text(code, title)
            found.append(Notification(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], json.loads(row[8]), row[9], row[10],
                row[11], row[12], row[13], row[14], code, error, row[17], row[18],
                status[0] if status else None, status[1] if status else None, status[2] if status else None,
            ))  # fmt: skip
        return found


def _template(row: Sequence[Any]) -> Template:
    extra = json.loads(row[5])
    return Template(name=row[0], language=row[1], status=row[2], category=row[3], body=row[4],
                    parameter_names=tuple(extra.get("parameters", [])),
                    components=extra.get("components", []))  # fmt: skip
