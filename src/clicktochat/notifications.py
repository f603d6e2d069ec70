"""Updates a business starts: a template message to someone who asked for news on a topic.
Everything is checked before anything is queued (the number, the template and its parameters,
the consent), and the consent is checked again by the sender just before the message goes:
an opt-out that arrives while a notification waits stops it."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .channels import normalize_phone
from .consent import may_message
from .errors import KEY_USED, Conflict, FieldError, InvalidInput, NotFound, Unavailable
from .graph import GraphError, template_payload
from .message_templates import Template, approved_template, check_parameters, read_templates
from .notifystore import Notification
from .optins import TEMPLATE_LANGUAGE as LANGUAGE
from .optins import TEMPLATE_NAME, check_topic
from .outboxstore import OutboxRow

if TYPE_CHECKING:
    from .whatsapp import WhatsApp

IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{1,200}")  # a caller's key, for replies and notifications
MONTH = re.compile(r"20[0-9]{2}-(0[1-9]|1[0-2])")


class Notifications:
    def __init__(self, whatsapp: WhatsApp, default_region: str = "") -> None:
        self.whatsapp = whatsapp
        self.chats = whatsapp.chats
        self.default_region = default_region  # CLICKTOCHAT_DEFAULT_REGION: numbers written without +39...

    # -- templates -------------------------------------------------------------------

    async def sync_templates(self, number_id: int | None = None) -> dict[int, int]:
        """Ask Meta for the templates of each connected number (or one); returns how many each has."""
        numbers = await self.chats.numbers()
        if number_id is not None:
            numbers = [n for n in numbers if n.id == number_id]
            if not numbers:
                raise NotFound(f"There is no connected number {number_id}.")
        keys = {k.id: k for k in self.whatsapp.keys}
        counts = {}
        for number in numbers:
            key = keys.get(number.id)
            if key is None:
                continue
            try:
                items = await self.whatsapp.graph.templates(number.waba_id, key.access_token)
            except GraphError as error:
                if error.token_refused:  # as a send's: the number is to be connected again, its messages held
                    await self.chats.refuse_token(number.id, key.access_token, None, error.code,
                                                  f"{error.message} ({error.code})", int(self.whatsapp.clock()))
                    await self.whatsapp.reload()
                raise Unavailable(f"Meta did not list the templates of number {number.id}: {error.message}") from None
            templates = read_templates(items)
            await self.chats.replace_templates(number.id, templates, int(self.whatsapp.clock()))
            counts[number.id] = len(templates)
        return counts

    async def templates(self, number_id: int) -> list[tuple[Template, int]]:
        await self.whatsapp.get_number(number_id)
        return await self.chats.templates(number_id)

    # -- notifications ---------------------------------------------------------------

    async def queue(
        self, *, to: Any, topic: Any, template: Any, language: Any, parameters: Any = None,
        idempotency_key: Any = None, business_id: int | None = None, source: str = "api",
    ) -> tuple[Notification, bool]:  # fmt: skip
        """Queue a template message; (the notification, True), or (the first one, False) when
        the idempotency key came before. Refused with 422 naming the field, 404 for an unknown
        business, 409 without consent for the topic or after an opt-out."""
        errors = []
        phone = ""
        try:
            phone = normalize_phone(to if isinstance(to, str) else "", self.default_region, "to")
        except InvalidInput as exc:
            errors += exc.errors
        try:
            topic = check_topic(topic)  # the opt-ins' rule: a topic one can opt in to
        except InvalidInput as exc:
            errors += exc.errors
        if not isinstance(template, str) or not TEMPLATE_NAME.fullmatch(template):
            errors.append(FieldError("template", "must be a template's name: lower-case letters, digits and _"))
        if language is not None and (not isinstance(language, str) or not LANGUAGE.fullmatch(language)):
            errors.append(FieldError("language", "must be a template language code, like en_US or it"))
        if idempotency_key is not None and (not isinstance(idempotency_key, str)
                                            or not IDEMPOTENCY_KEY.fullmatch(idempotency_key)):  # fmt: skip
            errors.append(FieldError("idempotency_key", "must be 1 to 200 letters, digits or . _ : -"))
        if errors:
            raise InvalidInput.many(errors)
        assert isinstance(topic, str) and isinstance(template, str)
        if idempotency_key is not None:  # a retry gets the first answer, whatever changed since: a template paused,
            first = await self._earlier(business_id, idempotency_key)  # a number disconnected (found by a review)
            if first is not None and (first.phone, first.topic, first.template) == (phone, topic, template) and (
                    language in (None, first.language) and isinstance(parameters, list | None)
                    and [str(p) for p in parameters or []] == list(first.parameters)):  # fmt: skip
                return first, False
        number = await self._number_for(business_id)
        key = idempotency_key or f"auto:{secrets.token_urlsafe(16)}"
        if language is None and idempotency_key is not None:  # a retry: the language the first one took
            first = await self.chats.notifications_by_key(number.business_id, key)
            language = first.language if first is not None and first.template == template else None
        found = await self._template(number.id, template, language)
        language = found.language  # None: the template's only one
        try:
            values = check_parameters(found, [] if parameters is None else parameters)
        except ValueError as exc:
            raise InvalidInput("parameters", str(exc)) from None
        previous = await self.chats.notifications_by_key(number.business_id, key)
        if previous is not None:
            same = (previous.phone, previous.topic, previous.template, previous.language, previous.parameters)
            if same != (phone, topic, template, language, values):
                raise Conflict("This idempotency key was used for another notification.", [KEY_USED])
            return previous, False
        entries = await self.chats.consents(number.business_id, phone, None)
        decision = may_message(entries, topic)
        if not decision.allowed:
            raise Conflict(decision.reason)
        payload = message_payload(phone, found, values)
        made, created = await self.chats.queue_notification(
            number.business_id, number.id, phone, topic, found, values, key, source, payload, int(self.whatsapp.clock())
        )
        if not created and (made.phone, made.topic, made.template, made.language, made.parameters) != (
                phone, topic, template, language, values):  # the same key, at the same moment, from another instance
            raise Conflict("This idempotency key was used for another notification.", [KEY_USED])
        self.whatsapp.sender.wake()
        return made, created

    async def _earlier(self, business_id: int | None, key: str) -> Notification | None:
        """The notification queued under `key` for the business (without one: the only business
        with a number, else the only business)."""
        if business_id is None:
            owners = {n.business_id for n in await self.chats.numbers(None)}
            owners = owners or {b.id for b in await self.whatsapp.store.businesses()}
            if len(owners) != 1:
                return None
            business_id = owners.pop()
        return await self.chats.notifications_by_key(business_id, key)

    async def _number_for(self, business_id: int | None) -> Any:
        numbers = await self.chats.numbers(business_id)
        if business_id is not None and not numbers:
            if await self.whatsapp.store.business(business_id) is None:
                raise NotFound(f"There is no business {business_id}.")
            raise Conflict(f"Business {business_id} has no connected WhatsApp number to send from.")
        if not numbers:
            raise Conflict("No WhatsApp number is connected: connect one first (clicktochat whatsapp connect).")
        if business_id is None and len({n.business_id for n in numbers}) > 1:
            raise InvalidInput("business", "is required: several businesses have connected numbers")
        return numbers[0]

    async def _template(self, number_id: int, name: str, language: str | None) -> Template:
        return approved_template([t for t, _ in await self.chats.templates(number_id)], name, language)

    async def get(self, notification_id: int) -> Notification:
        found = await self.chats.notification(notification_id)
        if found is None:
            raise NotFound(f"There is no notification {notification_id}.")
        return found

    async def refusals(self, rows: list[OutboxRow]) -> dict[int, str | None]:
        """For the sender, just before it sends: per notification row, None while the consent
        for its topic is in force, else why not. Rows that are not notifications are left out."""
        found = await self.chats.consents_for_outboxes([row.id for row in rows])
        decisions = {outbox_id: may_message(entries, topic) for outbox_id, (topic, entries) in found.items()}
        return {outbox_id: None if d.allowed else d.reason for outbox_id, d in decisions.items()}


def month_bounds(month: str | None, now: int) -> tuple[str, int, int]:
    """'YYYY-MM' (default: this month, UTC) as (month, first second, first second of the next)."""
    if month is None:
        month = datetime.fromtimestamp(now, UTC).strftime("%Y-%m")
    if not isinstance(month, str) or not MONTH.fullmatch(month):
        raise InvalidInput("month", "must be YYYY-MM, like 2026-12")
    year, number = int(month[:4]), int(month[5:])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return month, int(start.timestamp()), int(end.timestamp())


def message_payload(phone: str, template: Template, values: list[str]) -> dict[str, Any]:
    payload = template_payload(phone, None, template.name, template.language, values)
    if template.named and values:
        payload["template"]["components"] = [{"type": "body", "parameters": [
            {"type": "text", "parameter_name": name, "text": value}
            for name, value in zip(template.parameter_names, values, strict=True)
        ]}]  # fmt: skip
    return payload
