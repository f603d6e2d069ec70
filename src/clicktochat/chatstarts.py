"""Where each chat came from: its start (the first message of a conversation, or the first
after the window closed) tied to the click whose ref code it carried, or to the ad's referral;
a first message applied after a later one; clicks written after the chat began. The SQL runs
inside `ChatStore.apply_events`' transaction, on `chatdb.ChatDB`'s connection and thread."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .chatdb import ChatDB
from .conversations import ENTRY_POINT, REF_AHEAD, REF_DAYS, SERVICE_WINDOW, Inbound

LATE_CLICKS = 3600  # seconds a chat's ref code waits for its click to be written (match_late_clicks)


class ChatStartStore(ChatDB):
    def _start(
        self, db: sqlite3.Connection, conversation_id: int, business_id: int, timezone: str, display: str,
        message: Inbound,
    ) -> tuple[Any, ...] | None:  # fmt: skip
        """A chat starts with `message`; the click its ref code names, taken for it, if any."""
        ref = message.ref
        click = self._click_for(db, ref, message.at, display, conversation_id) if ref else None
        day = datetime.fromtimestamp(message.at, ZoneInfo(timezone)).date().isoformat()
        referral = json.dumps(message.referral) if message.referral else None
        cursor = db.execute(
            "INSERT INTO chat_starts (conversation_id, business_id, at, day, wamid, ref, link_kind, link_key,"
            " campaign, agent_id, channel, click_at, visitor, referral)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (conversation_id, business_id, message.at, day, message.wamid, ref, *(click or (None,) * 7), referral),
        )  # fmt: skip
        # An ad's free entry point runs 72 h from the ad, through a chat start without one.
        entry_point = message.at + ENTRY_POINT if message.referral else None
        db.execute("UPDATE conversations SET start_id = ?, entry_point_until = coalesce(?, CASE WHEN"
                   " entry_point_until > ? THEN entry_point_until END) WHERE id = ?",
                   (cursor.fetchone()[0], entry_point, message.at, conversation_id))  # fmt: skip
        return click

    def _start_earlier(
        self, db: sqlite3.Connection, conversation_id: int, timezone: str, display: str, message: Inbound
    ) -> tuple[Any, ...] | None:
        """An earlier message of a chat, applied after a later one (Meta reorders its deliveries,
        and a body the journal could not take is applied before older ones it holds): the chat's
        start moves back to it, and where the chat came from is read from it too (its ref code,
        an ad's referral), where the later message said nothing of it. Returns the click taken for
        it, if any."""
        # Locked on PostgreSQL: another instance tying it to a late click (match_late_clicks) is
        # waited for, and what it tied is read, not written over with what was there before.
        lock = " FOR UPDATE" if self.postgres else ""
        found = db.execute(
            f"SELECT id, link_kind, referral FROM chat_starts WHERE conversation_id = ? AND at > ? AND at <= ?{lock}",
            (conversation_id, message.at, message.at + SERVICE_WINDOW),
        ).fetchone()  # fmt: skip
        if found is None:
            return None
        start_id, link_kind, referral = found
        day = datetime.fromtimestamp(message.at, ZoneInfo(timezone)).date().isoformat()
        db.execute("UPDATE chat_starts SET at = ?, day = ?, wamid = ? WHERE id = ?",
                   (message.at, day, message.wamid, start_id))  # fmt: skip
        click = None
        if message.ref and link_kind is None:  # a code no click has yet: match_late_clicks may find it
            click = self._click_for(db, message.ref, message.at, display, conversation_id)
            db.execute(
                "UPDATE chat_starts SET ref = ?, link_kind = ?, link_key = ?, campaign = ?, agent_id = ?, channel = ?,"
                " click_at = ?, visitor = ? WHERE id = ?", (message.ref, *(click or (None,) * 7), start_id),
            )  # fmt: skip
        if message.referral and referral is None:
            db.execute("UPDATE chat_starts SET referral = ? WHERE id = ?", (json.dumps(message.referral), start_id))
            db.execute("UPDATE conversations SET entry_point_until = ? WHERE id = ? AND start_id = ?",
                       (message.at + ENTRY_POINT, conversation_id, start_id))  # fmt: skip
        return click

    def _click_for(self, db: sqlite3.Connection, ref: str, at: int, display: str,
                   conversation_id: int) -> tuple[Any, ...] | None:  # fmt: skip
        """The click whose message carried `ref` (to the number `display`, in the REF_DAYS before
        `at`), taken for this chat: (link_kind, link_key, campaign, agent_id, channel, click_at,
        visitor). A click starts one chat: a forwarded or copied message attributes nothing more."""
        key = "id" if self.postgres else "rowid"  # PostgreSQL's click_refs has an id column instead
        found = self._one(
            f"SELECT {key}, link_kind, link_key, campaign, agent_id, channel, at, visitor FROM click_refs"
            " WHERE ref = ? AND at BETWEEN ? AND ? AND address = ? AND used_by IS NULL ORDER BY at DESC LIMIT 1",
            (ref, at - REF_DAYS * 86400, at + REF_AHEAD, display),
        )  # fmt: skip
        if not found:
            return None
        taken = db.execute(f"UPDATE click_refs SET used_by = ? WHERE {key} = ? AND used_by IS NULL",
                           (conversation_id, found[0]))  # fmt: skip
        return tuple(found[1:]) if taken.rowcount == 1 else None  # another instance took it first

    async def match_late_clicks(self, now: int) -> int:
        """Tie chats of the last LATE_CLICKS seconds whose first message carried a ref code that
        no written click had yet, to their click: the click writer writes a click a second or so
        after it happens (another instance's writer, on PostgreSQL, may be later still), and a
        customer can be quicker. Returns how many were tied."""

        # A waiting chat (chat_starts_unmatched) with an unused click to tie it to: a chat whose
        # code no click has (made up, copied, sent again days later) costs a round nothing.
        ready = (
            "FROM chat_starts s JOIN conversations c ON c.id = s.conversation_id"
            " JOIN whatsapp_numbers n ON n.id = c.number_id"
            " WHERE s.ref IS NOT NULL AND s.link_kind IS NULL AND s.at >= ? AND EXISTS (SELECT 1 FROM click_refs r"
            " WHERE r.ref = s.ref AND r.address = n.display_phone_number AND r.used_by IS NULL"
            f" AND r.at BETWEEN s.at - {REF_DAYS * 86400} AND s.at + {REF_AHEAD})"
        )

        def tie(db: sqlite3.Connection) -> int:
            # PostgreSQL: the chats are locked until the commit, and those another instance or an
            # erasure holds are left to it (SQLite's BEGIN IMMEDIATE already keeps others out).
            lock = " FOR UPDATE OF s SKIP LOCKED" if self.postgres else ""
            pending = db.execute(
                f"SELECT s.id, s.conversation_id, s.ref, s.at, n.display_phone_number {ready} ORDER BY s.at{lock}",
                (now - LATE_CLICKS,),
            ).fetchall()  # fmt: skip
            tied = 0
            for start_id, conversation_id, ref, at, display in pending:
                click = self._click_for(db, ref, at, display, conversation_id)
                if click:
                    tied += db.execute(
                        "UPDATE chat_starts SET link_kind = ?, link_key = ?, campaign = ?, agent_id = ?, channel = ?,"
                        " click_at = ?, visitor = ? WHERE id = ? AND link_kind IS NULL", (*click, start_id),
                    ).rowcount  # fmt: skip
            return tied

        def work() -> int:  # most rounds find none ready: no write transaction for them
            found = self._one(f"SELECT 1 {ready} LIMIT 1", (now - LATE_CLICKS,))
            return self._retry(tie) if found else 0

        return await self.run(work)
