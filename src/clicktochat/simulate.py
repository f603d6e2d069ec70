"""A WhatsApp user writing in, for tests and for a demo with no Meta account (`clicktochat
simulate`): each message a webhook body in Meta's format (payloads.py), signed with the number's
app secret and posted to our webhook; the Graph stand-in (graph_standin.py) learns of it, so
that the customer service window it enforces opens as Meta's would."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from .graph_standin import Clock, GraphStandIn, StandInNumber
from .payloads import JSON, inbound_message, new_wamid, post_signed, reaction, user_preferences, webhook_body

# --- a customer writing in -------------------------------------------------------------------------


@dataclass
class Customer:
    """A WhatsApp user writing to one of our numbers. ``wa_id=None`` is a user whose phone number
    Meta withholds (a username): their webhooks carry only the BSUID ``user_id``."""

    webhook_url: str
    number: StandInNumber
    wa_id: str | None
    user_id: str | None = None
    name: str = "Sheena Nelson"
    standin: GraphStandIn | None = None
    http: httpx.AsyncClient | None = None
    clock: Clock | None = None
    sent: list[JSON] = field(default_factory=list)

    def _now(self) -> float:
        return (self.clock or (self.standin.clock if self.standin else time.time))()

    async def deliver(self, value: JSON, field: str = "messages") -> httpx.Response:
        """Wrap ``value`` in a webhook for our number, sign it and POST it to the webhook URL."""
        body = webhook_body(waba_id=self.number.waba_id, phone_number_id=self.number.phone_number_id,
                            display_phone_number=self.number.display_phone_number, value=value, field=field)
        self.sent.append(body)
        return await post_signed(self.webhook_url, body, self.number.app_secret, self.http)

    async def _message(self, **message: Any) -> httpx.Response:
        now = self._now()
        value = inbound_message(wamid=new_wamid(self.wa_id), timestamp=int(now), wa_id=self.wa_id,
                                user_id=self.user_id, name=self.name, **message)
        response = await self.deliver(value)
        if self.standin is not None:
            self.standin.customer_wrote(self.number.phone_number_id, self.wa_id, now, self.user_id)
        return response

    async def send_text(self, text: str, referral: JSON | None = None, context: JSON | None = None) -> httpx.Response:
        return await self._message(type="text", text=text, referral=referral, context=context)

    async def send_media(self, kind: str = "image", caption: str | None = None,
                         mime_type: str | None = None) -> httpx.Response:
        return await self._message(type=kind, caption=caption, mime_type=mime_type)

    async def tap_button(self, text: str, payload: str, context: JSON | None = None) -> httpx.Response:
        """A quick-reply button of a template we sent."""
        return await self._message(type="button", button={"payload": payload, "text": text}, context=context)

    async def tap_reply(self, id: str, title: str, context: JSON | None = None) -> httpx.Response:
        """A reply button of an interactive message we sent."""
        interactive = {"type": "button_reply", "button_reply": {"id": id, "title": title}}
        return await self._message(type="interactive", interactive=interactive, context=context)

    async def react(self, message_id: str, emoji: str | None) -> httpx.Response:
        """A reaction on a message (ours or theirs); no emoji takes it back. Meta opens the window for it."""
        now = self._now()
        response = await self.deliver(reaction(wamid=new_wamid(self.wa_id), timestamp=int(now), wa_id=self.wa_id,
                                               user_id=self.user_id, name=self.name, message_id=message_id,
                                               emoji=emoji))  # fmt: skip
        if self.standin is not None:
            self.standin.customer_wrote(self.number.phone_number_id, self.wa_id, now, self.user_id)
        return response

    async def set_marketing(self, value: Literal["stop", "resume"]) -> httpx.Response:
        """Stop or resume marketing messages (the ``user_preferences`` webhook)."""
        value_ = user_preferences(wa_id=self.wa_id, user_id=self.user_id, value=value,
                                  timestamp=int(self._now()), name=self.name)
        if self.standin is not None:
            self.standin.marketing_preference(self.number.phone_number_id, self.wa_id or self.user_id or "", value)
        return await self.deliver(value_, field="user_preferences")
