"""The SQL of connected WhatsApp numbers: connecting one (again), reading them, the keys that
receiving and sending need, disconnecting. On the connection and thread of `chatdb.ChatDB`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chatdb import ChatDB

MOVED = ":moved:"  # a number's row set aside when it went to another business: PHONE_NUMBER_ID:moved:ROW_ID
NUMBER_COLUMNS = ("id, business_id, phone_number_id, waba_id, display_phone_number, verified_name, connected_at,"
                  " token_refused_at, token_error")
HELD = 2**62
"""`next_attempt_at` of a queued message held while its number's token is refused: out of every
claim's reach until the number is connected again (`connect_number`), its row and idempotency key kept."""


@dataclass(frozen=True)
class WhatsAppNumber:
    id: int
    business_id: int
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    verified_name: str | None
    connected_at: int
    token_refused_at: int | None = None  # Meta refused the token (190, 102): to be connected again
    token_error: str | None = None  # Meta's refusal in our words, never the token


@dataclass(frozen=True)
class NumberKeys:
    """What receiving and sending need of a connected number: never leaves the server."""

    id: int
    business_id: int
    phone_number_id: str
    access_token: str
    app_secret: str
    verify_token_hash: str
    token_refused_at: int | None = None  # Meta refused the token: nothing is sent with it


class NumberStore(ChatDB):
    async def connect_number(
        self, business_id: int, phone_number_id: str, waba_id: str, display: str, verified_name: str | None,
        access_token: str, app_secret: str, verify_token_hash: str, now: int,
    ) -> WhatsAppNumber:  # fmt: skip
        def work() -> WhatsAppNumber:
            with self._tx() as db:
                # Disconnected from another business: its row stays that business's, set aside
                # with the conversations it held (a customer writing again starts a new one here)...
                db.execute(f"UPDATE whatsapp_numbers SET phone_number_id = phone_number_id || '{MOVED}' || id"
                           " WHERE phone_number_id = ? AND disconnected_at IS NOT NULL AND business_id <> ?",
                           (phone_number_id, business_id))  # fmt: skip
                # ...and a number coming back to a business it served takes its own row again.
                db.execute("UPDATE whatsapp_numbers SET phone_number_id = ? WHERE id = (SELECT max(id) FROM"
                           f" whatsapp_numbers WHERE phone_number_id LIKE ? || '{MOVED}%' AND business_id = ?)"
                           " AND NOT EXISTS (SELECT 1 FROM whatsapp_numbers WHERE phone_number_id = ?)",
                           (phone_number_id, phone_number_id, business_id, phone_number_id))  # fmt: skip
                # Connected to another business, it stays there (whatsapp.connect says so): the
                # check before asking Meta, again here, where two connects at once cannot both pass.
                db.execute(
                    "INSERT INTO whatsapp_numbers (business_id, phone_number_id, waba_id, display_phone_number,"
                    " verified_name, access_token, app_secret, verify_token_hash, connected_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (phone_number_id) DO UPDATE SET"
                    " business_id = excluded.business_id, waba_id = excluded.waba_id,"
                    " display_phone_number = excluded.display_phone_number, verified_name = excluded.verified_name,"
                    " access_token = excluded.access_token, app_secret = excluded.app_secret,"
                    " verify_token_hash = excluded.verify_token_hash, connected_at = excluded.connected_at,"
                    " disconnected_at = NULL, token_refused_at = NULL, token_error = NULL"
                    " WHERE whatsapp_numbers.business_id = excluded.business_id",
                    (business_id, phone_number_id, waba_id, display, verified_name, access_token, app_secret,
                     verify_token_hash, now),
                )  # fmt: skip
                # Messages held while its token was refused go now, with the new one.
                db.execute("UPDATE outbox SET next_attempt_at = ?, error_code = NULL, error = NULL"
                           " WHERE state = 'queued' AND next_attempt_at = ? AND number_id = (SELECT id FROM"
                           " whatsapp_numbers WHERE phone_number_id = ? AND business_id = ?)",
                           (now, HELD, phone_number_id, business_id))  # fmt: skip
                self._bump(db)
            number = self._number("phone_number_id = ?", phone_number_id)
            assert number is not None
            return number

        return await self.run(work)

    def _number(self, where: str, value: Any) -> WhatsAppNumber | None:
        row = self._one(f"SELECT {NUMBER_COLUMNS} FROM whatsapp_numbers WHERE disconnected_at IS NULL AND {where}",
                        (value,))  # fmt: skip
        return WhatsAppNumber(*row) if row else None

    async def number(self, number_id: int) -> WhatsAppNumber | None:
        return await self.run(self._number, "id = ?", number_id) if 0 <= number_id < 2**63 else None

    async def number_by_phone_id(self, phone_number_id: str) -> WhatsAppNumber | None:
        return await self.run(self._number, "phone_number_id = ?", phone_number_id)

    async def numbers(self, business_id: int | None = None) -> list[WhatsAppNumber]:
        def work() -> list[WhatsAppNumber]:
            rows = self._all(f"SELECT {NUMBER_COLUMNS} FROM whatsapp_numbers WHERE disconnected_at IS NULL"
                             " AND (? IS NULL OR business_id = ?) ORDER BY id", (business_id, business_id))  # fmt: skip
            return [WhatsAppNumber(*row) for row in rows]

        return await self.run(work)

    async def number_keys(self) -> list[NumberKeys]:
        def work() -> list[NumberKeys]:
            rows = self._all(
                "SELECT id, business_id, phone_number_id, access_token, app_secret, verify_token_hash,"
                " token_refused_at FROM whatsapp_numbers WHERE disconnected_at IS NULL ORDER BY id"
            )
            return [NumberKeys(*row) for row in rows]

        return await self.run(work)

    async def refuse_token(self, number_id: int, access_token: str, outbox_id: int | None, code: int,
                           error: str, now: int) -> bool:  # fmt: skip
        """Meta refused the number's `access_token` (190, 102): the number is marked to be connected
        again, and its queued messages (and `outbox_id`, being sent) are held until it is, in one
        transaction. False when the number has another token by now (connected again while the
        refused send was on its way) or is gone: nothing is marked, nothing held."""

        def work() -> bool:
            with self._tx() as db:
                cursor = db.execute("UPDATE whatsapp_numbers SET token_refused_at = coalesce(token_refused_at, ?),"
                                    " token_error = ? WHERE id = ? AND access_token = ? AND disconnected_at IS NULL",
                                    (now, error, number_id, access_token))  # fmt: skip
                if cursor.rowcount == 0:
                    return False
                db.execute("UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_until = NULL,"
                           " error_code = ?, error = ? WHERE number_id = ? AND (state = 'queued'"
                           " OR (state = 'sending' AND id = ?))",
                           (HELD, code, error, number_id, outbox_id))  # fmt: skip
                return True

        return await self.run(work)

    async def hold(self, outbox_id: int, code: int | None, error: str | None, now: int) -> bool:
        """A claimed message of a number whose token is refused: back to the queue, held (`HELD`).
        False when the number is no longer marked (connected again by another process, whose new
        token this server has not read yet): the message is due again now, not held for ever."""

        def work() -> bool:
            with self._tx() as db:
                marked = db.execute("SELECT 1 FROM outbox o JOIN whatsapp_numbers n ON n.id = o.number_id"
                                    " WHERE o.id = ? AND n.token_refused_at IS NOT NULL", (outbox_id,)).fetchone()
                if marked is None:
                    db.execute("UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_until = NULL"
                               " WHERE id = ? AND state = 'sending'", (now, outbox_id))  # fmt: skip
                    return False
                db.execute("UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_until = NULL,"
                           " error_code = ?, error = ? WHERE id = ? AND state = 'sending'",
                           (HELD, code, error, outbox_id))  # fmt: skip
                return True

        return await self.run(work)

    async def disconnect_number(self, number_id: int, now: int) -> bool:
        """Wipes the secrets; conversations stay. Queued messages of the number are cancelled."""

        def work() -> bool:
            with self._tx() as db:
                cursor = db.execute(
                    "UPDATE whatsapp_numbers SET disconnected_at = ?, access_token = NULL, app_secret = NULL,"
                    " verify_token_hash = NULL WHERE id = ? AND disconnected_at IS NULL", (now, number_id),
                )  # fmt: skip
                db.execute("UPDATE outbox SET state = 'cancelled', error_code = NULL,"  # not a 429's from before
                           " error = 'The number was disconnected.' WHERE number_id = ? AND state = 'queued'",
                           (number_id,))  # fmt: skip
                self._bump(db)
                return cursor.rowcount > 0

        return await self.run(work) if 0 <= number_id < 2**63 else False
