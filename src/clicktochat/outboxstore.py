"""The outbox's SQL: one row per intended message, UNIQUE by its idempotency key, claimed by
senders with a lease (`UPDATE ... RETURNING`), so no two senders send one row."""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from .chatdb import ChatDB

CALLBACK = "clicktochat:"  # biz_opaque_callback_data: "clicktochat:<outbox id>:<12 random hex digits>"


def outbox_of(callback: str | None) -> int | None:
    """The outbox row a status's `biz_opaque_callback_data` names, if it is ours (or, from
    before the random part, bare digits); the caller compares the whole value with the row's."""
    if not callback:
        return None
    if callback.isdigit():
        return int(callback[:18])
    parts = callback.split(":")
    if len(parts) == 3 and f"{parts[0]}:" == CALLBACK and parts[1].isdigit() and len(parts[1]) <= 18:
        return int(parts[1])
    return None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    number_id: int
    conversation_id: int | None
    payload: dict[str, Any]
    state: str
    attempts: int
    wamid: str | None
    error_code: int | None
    error: str | None
    created_at: int


class OutboxStore(ChatDB):
    async def enqueue(
        self, number_id: int, conversation_id: int | None, key: str, payload: dict[str, Any], text: str | None,
        kind: str, now: int, sent_by: str | None = None,
    ) -> tuple[OutboxRow, bool]:  # fmt: skip
        """The outbox row for this idempotency key, and whether it was made now (False: the
        same request came before, and nothing new is queued). `sent_by`: who asked for it."""

        def work() -> tuple[OutboxRow, bool]:
            with self._tx() as db:
                return self._enqueue(db, number_id, conversation_id, key, payload, text, kind, now, sent_by)

        return await self.run(work)

    def _enqueue(
        self, db: sqlite3.Connection, number_id: int, conversation_id: int | None, key: str, payload: dict[str, Any],
        text: str | None, kind: str, now: int, sent_by: str | None = None,
    ) -> tuple[OutboxRow, bool]:  # fmt: skip
        cursor = db.execute(
            "INSERT INTO outbox (number_id, conversation_id, idempotency_key, payload, state, next_attempt_at,"
            " created_at, sent_by) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
            (number_id, conversation_id, key, json.dumps(payload), now, now, sent_by),
        )  # fmt: skip
        created = cursor.rowcount > 0
        row = self._outbox("idempotency_key = ?", key)
        assert row is not None
        if created:
            # The payload names our row, so Meta's statuses can find it after a crash; with a
            # random part, so that another tool's callback data on the number never does.
            payload_with_id = {**payload, "biz_opaque_callback_data": f"{CALLBACK}{row.id}:{secrets.token_hex(6)}"}
            db.execute("UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps(payload_with_id), row.id))
            if conversation_id is not None:
                db.execute(
                    "INSERT INTO wa_messages (conversation_id, direction, at, type, text, outbox_id)"
                    " VALUES (?, 'out', ?, ?, ?, ?)", (conversation_id, now, kind, text, row.id),
                )  # fmt: skip
                db.execute("UPDATE conversations SET last_message_at = max(last_message_at, ?) WHERE id = ?",
                           (now, conversation_id))  # fmt: skip
            row = self._outbox("id = ?", row.id)
            assert row is not None
        return row, created

    def _outbox(self, where: str, value: Any) -> OutboxRow | None:
        row = self._one("SELECT id, number_id, conversation_id, payload, state, attempts, wamid, error_code, error,"
                        f" created_at FROM outbox WHERE {where}", (value,))  # fmt: skip
        return OutboxRow(row[0], row[1], row[2], json.loads(row[3]), *row[4:]) if row else None

    async def outbox_by_key(self, key: str) -> OutboxRow | None:
        return await self.run(self._outbox, "idempotency_key = ?", key)

    async def outbox_row(self, outbox_id: int) -> OutboxRow | None:
        return await self.run(self._outbox, "id = ?", outbox_id) if 0 <= outbox_id < 2**63 else None

    async def claim(self, now: int, lease: int, limit: int) -> list[OutboxRow]:
        """Due rows, leased to this sender: another sender (or instance) skips them until the
        lease ends. A row still `sending` after its lease was interrupted (a crash): unless a
        status of Meta's has shown it went out within another `lease` seconds, it is sent again
        (Meta's `sent` status names the row, and comes within seconds of a send it took: a
        restarted server must have had the time to hear it first)."""

        def work(db: sqlite3.Connection) -> list[Any]:
            claim = CLAIM_POSTGRES if self.postgres else CLAIM
            return db.execute(claim, (now + lease, now, limit, now - lease)).fetchall()

        def claimed() -> list[OutboxRow]:
            rows = self._retry(work)
            return sorted((OutboxRow(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in rows), key=lambda r: r.id)

        return await self.run(claimed)

    async def renew(self, outbox_id: int, attempts: int, lease_until: int) -> bool:
        """Keep a claimed row for longer; False if it is no longer this claim's (`attempts`, which
        every claim counts up, tells one claim from the next): taken back, or marked sent."""

        def work() -> bool:
            with self._tx() as db:
                cursor = db.execute("UPDATE outbox SET lease_until = ? WHERE id = ? AND state = 'sending'"
                                    " AND attempts = ?", (lease_until, outbox_id, attempts))  # fmt: skip
                return cursor.rowcount == 1

        return await self.run(work)

    async def still_claimed(self, rows: list[OutboxRow]) -> set[int]:
        """Of `rows` (as claimed), the ids still this claim's: not erased with their person, not
        taken back by another sender, not marked sent or given up meanwhile."""

        def work() -> set[int]:
            marks = ", ".join("?" * len(rows))
            found = self._all(f"SELECT id, attempts FROM outbox WHERE id IN ({marks}) AND state = 'sending'",
                              [row.id for row in rows])  # fmt: skip
            attempts = {row.id: row.attempts for row in rows}
            return {outbox_id for outbox_id, tries in found if attempts[outbox_id] == tries}

        return await self.run(work) if rows else set()

    async def sent(self, outbox_id: int, wamid: str, now: int) -> None:
        await self.sent_many([(outbox_id, wamid, now)])

    async def sent_many(self, sent: list[tuple[int, str, int]]) -> None:
        """(outbox id, wamid, when) of messages Meta took, in one transaction."""
        if not sent:
            return

        rows = json.dumps(sent)

        def work(db: sqlite3.Connection) -> None:
            # One statement a table, over the batch as JSON: executemany steps once a row, and lets
            # go of the GIL at every step, so under a busy event loop a batch waited on each row.
            for statement in SENT_POSTGRES if self.postgres else SENT:
                db.execute(statement, (rows,))

        await self.run(self._retry, work)

    async def retry_later(self, outbox_id: int, next_attempt_at: int, code: int | None, error: str) -> None:
        def work() -> None:
            with self._tx() as db:
                db.execute(  # still this sender's: a status of Meta's may have shown it went out meanwhile
                    "UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_until = NULL,"
                    " error_code = ?, error = ? WHERE id = ? AND state = 'sending'",
                    (next_attempt_at, code, error, outbox_id),
                )  # fmt: skip

        await self.run(work)

    async def give_up(self, outbox_id: int, state: str, code: int | None, error: str) -> None:
        """`failed` (Meta refused) or `cancelled` (it may no longer be sent)."""

        def work() -> None:
            with self._tx() as db:
                db.execute("UPDATE outbox SET state = ?, lease_until = NULL, error_code = ?, error = ?"
                           " WHERE id = ? AND state = 'sending'", (state, code, error, outbox_id))  # fmt: skip

        await self.run(work)

    async def next_due(self) -> int | None:
        row = await self.run(self._one, "SELECT min(CASE state WHEN 'queued' THEN next_attempt_at ELSE lease_until END)"
                                        " FROM outbox WHERE state IN ('queued', 'sending')")  # fmt: skip
        return int(row[0]) if row and row[0] is not None else None


# Two walks of the index (state, next_attempt_at), each stopping at `limit`: one query with OR
# gathered and sorted every due row, each time (10,000 queued: 10,000).
CLAIM = (
    "UPDATE outbox SET state = 'sending', lease_until = ?1, attempts = attempts + 1 WHERE id IN"
    " (SELECT id FROM (SELECT id FROM outbox WHERE state = 'sending' AND lease_until <= ?4 LIMIT ?3)"
    " UNION ALL SELECT id FROM (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?2"
    " ORDER BY next_attempt_at, id LIMIT ?3) LIMIT ?3)"
    " RETURNING id, number_id, conversation_id, payload, state, attempts, wamid, error_code, error, created_at"
)
# PostgreSQL: the same walks, skipping rows another instance's sender is claiming right now
# (SQLite has one writer at a time; here a second claim would wait, then take the rows again).
CLAIM_POSTGRES = (
    "UPDATE outbox SET state = 'sending', lease_until = ?1, attempts = outbox.attempts + 1 WHERE id IN"
    " (SELECT id FROM (SELECT id FROM outbox WHERE state = 'sending' AND lease_until <= ?4 LIMIT ?3"
    " FOR UPDATE SKIP LOCKED) AS leased UNION ALL SELECT id FROM (SELECT id FROM outbox WHERE state = 'queued'"
    " AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT ?3 FOR UPDATE SKIP LOCKED) AS due LIMIT ?3)"
    " RETURNING id, number_id, conversation_id, payload, state, attempts, wamid, error_code, error, created_at"
)
# (outbox id, wamid, when) as a JSON list of lists, one parameter.
SENT = (
    "UPDATE outbox SET state = 'sent', wamid = json_extract(j.value, '$[1]'),"
    " sent_at = json_extract(j.value, '$[2]'), lease_until = NULL, error = NULL, error_code = NULL"
    " FROM json_each(?) AS j WHERE outbox.id = json_extract(j.value, '$[0]')",
    "UPDATE wa_messages SET wamid = json_extract(j.value, '$[1]') FROM json_each(?) AS j"
    " WHERE wa_messages.outbox_id = json_extract(j.value, '$[0]')",
    "UPDATE conversations SET last_outbound_at = max(coalesce(last_outbound_at, 0), last.at) FROM"
    " (SELECT o.conversation_id AS id, max(json_extract(j.value, '$[2]')) AS at FROM json_each(?) AS j"
    " JOIN outbox o ON o.id = json_extract(j.value, '$[0]') WHERE o.conversation_id IS NOT NULL"
    " GROUP BY o.conversation_id) AS last WHERE conversations.id = last.id",
)
_SENT_ROWS = (
    "(SELECT CAST(j->>0 AS BIGINT) AS id, j->>1 AS wamid, CAST(j->>2 AS BIGINT) AS at"
    " FROM jsonb_array_elements(CAST(? AS jsonb)) AS j) AS s"
)
SENT_POSTGRES = (
    "UPDATE outbox SET state = 'sent', wamid = s.wamid, sent_at = s.at, lease_until = NULL, error = NULL,"
    f" error_code = NULL FROM {_SENT_ROWS} WHERE outbox.id = s.id",
    f"UPDATE wa_messages SET wamid = s.wamid FROM {_SENT_ROWS} WHERE wa_messages.outbox_id = s.id",
    "UPDATE conversations SET last_outbound_at = max(coalesce(last_outbound_at, 0), last.at) FROM"
    f" (SELECT o.conversation_id AS id, max(s.at) AS at FROM {_SENT_ROWS} JOIN outbox o ON o.id = s.id"
    " WHERE o.conversation_id IS NOT NULL GROUP BY o.conversation_id) AS last WHERE conversations.id = last.id",
)
