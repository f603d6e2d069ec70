"""A person's data, on request: everything we hold about a phone number as one JSON document,
or all of it erased, keeping only an opt-out marker so that no path messages the number again
(`clicktochat customer export|erase`, `GET|DELETE /api/v1/customers/{phone}`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .channels import international, normalize_phone
from .service import timestamp

if TYPE_CHECKING:
    from .service import Service

TIME_FIELDS = ("at", "created_at", "last_inbound_at", "last_message_at", "last_outbound_at", "entry_point_until",
               "click_at", "sent_at", "next_attempt_at", "lease_until", "received_at", "expires_at",
               "confirmation_at", "decided_at")  # fmt: skip


USER_ID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9]{1,128}")
"""A business-scoped user id, as WhatsApp gives one for a person whose number it withholds (2026)."""


def who(service: Service, text: str) -> tuple[str | None, str | None]:
    """(digits of a number, None), or (None, a user id) for a person known only by one."""
    text = text.strip()
    return (None, text) if USER_ID.fullmatch(text) else (digits_of(service, text), None)


def digits_of(service: Service, phone: str) -> str:
    """+39 347 123 4567, or the digits alone as WhatsApp writes them (393471234567)."""
    text = phone.strip()
    if text.isascii() and text.isdigit():
        return international(text, service.settings.default_region, "phone")
    return normalize_phone(text, service.settings.default_region, "phone")


async def export(service: Service, phone: str) -> dict[str, Any]:
    """Everything about the number, times as ISO 8601 (UTC), nothing about anyone else."""
    digits, user_id = who(service, phone)
    await service.whatsapp.journal.drain()  # bodies not yet moved into the database count too
    await service.whatsapp.processor.catch_up()  # and what they say shows as messages, not only as bodies held
    data = await service.whatsapp.chats.customer_data(digits, user_id)
    for key, value in data.items():
        if isinstance(value, list):
            data[key] = [_readable(item) if isinstance(item, dict) else item for item in value]
    return {"format": "clicktochat customer export 1", "exported_at": timestamp(int(service.whatsapp.clock())),
            **data}  # fmt: skip


async def erase(service: Service, phone: str) -> dict[str, int]:
    """Delete everything about the number; returns what was deleted, per table."""
    return await erase_person(service, *who(service, phone))


async def erase_person(service: Service, digits: str | None, user_id: str | None,
                       marked_at: int | None = None) -> dict[str, int]:  # fmt: skip
    """`erase`, for a number's E.164 digits or a user id as stored (a restore's markers name both,
    and `marked_at` says when the erasure it repeats was asked for)."""
    await service.whatsapp.journal.drain()  # nothing about them may stay in the journal's files either
    # A body that names them may name others too: applied first, so that emptying it loses
    # nothing of theirs (what is about this person is then erased with the rest).
    await service.whatsapp.processor.catch_up()
    return await service.whatsapp.chats.erase_customer(digits, int(service.whatsapp.clock()), user_id, marked_at)


def _readable(item: dict[str, Any]) -> dict[str, Any]:
    return {k: timestamp(v) if k in TIME_FIELDS and isinstance(v, int) else v for k, v in item.items()}
