"""Where each message came from, not only each chat: every message of a customer that carries an
ad's `referral` or one of our links' ref code is recorded (`attributions`, migration 022) in the
transaction that applies it, once (UNIQUE by wamid: Meta's redelivery adds nothing). A chat's
start keeps the first (chatstarts.py); the conversation shows the latest (`latest_attributions`).
A mixin of `ChatStore`, on `chatdb.ChatDB`'s connection and thread."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .chatstarts import LATE_CLICKS, ChatStartStore
from .conversations import REF_AHEAD, REF_DAYS, Inbound

COLUMNS = "at, ref, link_kind, link_key, campaign, agent_id, channel, click_at, referral"
CLICK = ("link_kind", "link_key", "campaign", "agent_id", "channel", "click_at")  # what a click tells


@dataclass(frozen=True)
class Attribution:
    """Where one message said it came from: its ref code's click, an ad's referral, or both."""

    at: int
    ref: str | None
    link_kind: str | None
    link_key: str | None
    campaign: str | None
    agent_id: int | None
    channel: str | None
    click_at: int | None
    referral: dict[str, Any] | None


class AttributionStore(ChatStartStore):
    def _attribute(self, db: sqlite3.Connection, conversation_id: int, display: str, message: Inbound,
                   click: tuple[Any, ...] | None) -> None:  # fmt: skip
        """Record where `message` came from, if it says: `click` is the one its chat's start took
        for it (`_start`), else its ref code's click is looked up here."""
        if not message.ref and not message.referral:
            return
        if click is None and message.ref:
            click = self._click_again(db, message.ref, message.at, display, conversation_id)
        db.execute(
            f"INSERT INTO attributions (conversation_id, wamid, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (wamid) DO NOTHING",
            (conversation_id, message.wamid, message.at, message.ref, *(click[:6] if click else (None,) * 6),
             json.dumps(message.referral) if message.referral else None),
        )  # fmt: skip

    def _click_again(self, db: sqlite3.Connection, ref: str, at: int, display: str,
                     conversation_id: int) -> tuple[Any, ...] | None:  # fmt: skip
        """The click whose message carried `ref` (to `display`, in the REF_DAYS before `at`), as
        `_click_for` finds it for a chat's start, or one this conversation took already (the same
        customer sending that link's message again): (link_kind, link_key, campaign, agent_id,
        channel, click_at). A click another conversation took names nothing here either."""
        key = "id" if self.postgres else "rowid"  # PostgreSQL's click_refs has an id column instead
        found = self._one(
            f"SELECT {key}, used_by, {', '.join(CLICK[:5])}, at FROM click_refs WHERE ref = ? AND at BETWEEN ? AND ?"
            " AND address = ? AND (used_by IS NULL OR used_by = ?) ORDER BY at DESC LIMIT 1",
            (ref, at - REF_DAYS * 86400, at + REF_AHEAD, display, conversation_id),
        )  # fmt: skip
        if not found:
            return None
        if found[1] is None and db.execute(f"UPDATE click_refs SET used_by = ? WHERE {key} = ? AND used_by IS NULL",
                                           (conversation_id, found[0])).rowcount != 1:  # fmt: skip
            return None  # another instance took it first
        return tuple(found[2:])

    async def latest_attributions(self, conversation_ids: list[int]) -> dict[int, Attribution]:
        """Each conversation's latest message that said where it came from (by when it was written)."""

        def work() -> dict[int, Attribution]:
            marks = ", ".join("?" * len(conversation_ids))
            rows = self._all(
                f"SELECT conversation_id, {COLUMNS} FROM (SELECT conversation_id, {COLUMNS}, row_number() OVER"
                " (PARTITION BY conversation_id ORDER BY at DESC, id DESC) AS n FROM attributions"
                f" WHERE conversation_id IN ({marks})) AS a WHERE n = 1", conversation_ids,
            )  # fmt: skip
            return {row[0]: _attribution(row[1:]) for row in rows}

        ids = [i for i in conversation_ids if 0 <= i < 2**63]
        return await self.run(work) if ids else {}

    async def match_late_attributions(self, now: int) -> int:
        """As `match_late_clicks` for chats' starts: messages of the last LATE_CLICKS seconds whose
        ref code no written click had yet are tied to their click, the one their chat's start took
        where the message started it. Returns how many were tied."""
        ready = (
            "FROM attributions a JOIN conversations c ON c.id = a.conversation_id"
            " JOIN whatsapp_numbers n ON n.id = c.number_id"
            " WHERE a.ref IS NOT NULL AND a.link_kind IS NULL AND a.at >= ? AND (EXISTS (SELECT 1 FROM chat_starts s"
            " WHERE s.wamid = a.wamid AND s.link_kind IS NOT NULL) OR EXISTS (SELECT 1 FROM click_refs r"
            " WHERE r.ref = a.ref AND r.address = n.display_phone_number AND (r.used_by IS NULL OR r.used_by = c.id)"
            f" AND r.at BETWEEN a.at - {REF_DAYS * 86400} AND a.at + {REF_AHEAD}))"
        )

        def tie(db: sqlite3.Connection) -> int:
            lock = " FOR UPDATE OF a SKIP LOCKED" if self.postgres else ""  # as match_late_clicks
            pending = db.execute(
                f"SELECT a.id, a.conversation_id, a.wamid, a.ref, a.at, n.display_phone_number {ready}"
                f" ORDER BY a.at{lock}", (now - LATE_CLICKS,),
            ).fetchall()  # fmt: skip
            tied = 0
            for attribution_id, conversation_id, wamid, ref, at, display in pending:
                click = db.execute(f"SELECT {', '.join(CLICK)} FROM chat_starts WHERE wamid = ? AND link_kind IS NOT"
                                   " NULL", (wamid,)).fetchone()  # fmt: skip
                click = click or self._click_again(db, ref, at, display, conversation_id)
                if click:
                    tied += db.execute(f"UPDATE attributions SET {', '.join(f'{c} = ?' for c in CLICK)} WHERE id = ?"
                                       " AND link_kind IS NULL", (*click, attribution_id)).rowcount  # fmt: skip
            return tied

        def work() -> int:  # most rounds find none ready: no write transaction for them
            found = self._one(f"SELECT 1 {ready} LIMIT 1", (now - LATE_CLICKS,))
            return self._retry(tie) if found else 0

        return await self.run(work)


def _attribution(row: Any) -> Attribution:
    at, ref, link_kind, link_key, campaign, agent_id, channel, click_at, referral = row
    return Attribution(at, ref, link_kind, link_key, campaign, agent_id, channel, click_at,
                       json.loads(referral) if referral else None)  # fmt: skip
