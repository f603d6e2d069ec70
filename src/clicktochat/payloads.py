"""Meta's WhatsApp webhook payloads, as its documentation shows them: builders for messages,
statuses (with pricing and errors) and user preferences, and `encode`, `sign` and `post_signed`,
which serialise and sign a body exactly as Meta does (``X-Hub-Signature-256``). Used by the Graph
stand-in (graph_standin.py), the simulated customer (simulate.py), the tests and the benchmarks.

Meta withholds the phone number of users with usernames (2026): ``wa_id``/``from``/``recipient_id``
are then omitted and only the business-scoped user id (``user_id``, ``from_user_id``,
``recipient_user_id``) identifies them. Builders omit every key whose value is None.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from typing import Any, Literal

import httpx

JSON = dict[str, Any]
StatusName = Literal["sent", "delivered", "read", "failed"]

ERROR_CODES_URL = "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes"

ERRORS: dict[int, tuple[str, str]] = {
    # code: (title, error_data.details), as in Meta's "Cloud API error codes".
    1: ("API Unknown", "Invalid request or possible server error."),
    2: ("API Service", "Temporary due to downtime or due to being overloaded."),
    190: ("Access token has expired", "Your access token has expired."),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: (
        "Rate limit hit",
        "Message failed to send because there were too many messages sent from this phone number "
        "in a short period of time",
    ),
    131026: (
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number is not a "
        "WhatsApp phone number; the recipient has not accepted the new Terms of Service; the "
        "recipient is using an old WhatsApp version.",
    ),
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
        "messages on WhatsApp from your business.",
        "The user has stopped marketing messages from this business.",
    ),
    131056: (
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from this phone number "
        "to the same phone number in a short period of time.",
    ),
}


def clean(mapping: JSON) -> JSON:
    """`mapping` without the keys whose value is None (Meta omits them)."""
    return {key: value for key, value in mapping.items() if value is not None}


# --- payload builders -------------------------------------------------------------------------


def new_wamid(wa_id: str | None = None, *, outbound: bool = False) -> str:
    """A message id shaped like Meta's: base64 of the user's number and a random hex id."""
    phone = (wa_id or f"1555{secrets.randbelow(10**7):07d}").encode()
    inner = secrets.token_hex(9 if outbound else 10).upper().encode()
    raw = b"\x1c\x18" + bytes([len(phone)]) + phone + b"\x15\x02\x00"
    raw += (b"\x11" if outbound else b"\x12") + b"\x18" + bytes([len(inner)]) + inner + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


def webhook_body(*, waba_id: str, phone_number_id: str, display_phone_number: str, value: JSON,
                 field: str = "messages") -> JSON:
    """One WhatsApp Business Account webhook with one change."""
    metadata = {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}
    change = {"value": {"messaging_product": "whatsapp", "metadata": metadata, **value}, "field": field}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [change]}]}


def batch(bodies: Iterable[JSON]) -> JSON:
    """Many webhook bodies as one POST, as Meta batches them: changes grouped by account entry."""
    entries: dict[str, JSON] = {}
    for body in bodies:
        for entry in body["entry"]:
            entries.setdefault(entry["id"], {"id": entry["id"], "changes": []})["changes"] += entry["changes"]
    return {"object": "whatsapp_business_account", "entry": list(entries.values())}


def referral(*, source_url: str, source_id: str, headline: str, body: str, ctwa_clid: str,
             source_type: str = "ad", media_type: str = "image", image_url: str | None = None,
             video_url: str | None = None, thumbnail_url: str | None = None) -> JSON:
    """The referral a Click-to-WhatsApp ad attaches to the user's first message."""
    return clean({"source_url": source_url, "source_id": source_id, "source_type": source_type,
                   "body": body, "headline": headline, "media_type": media_type, "image_url": image_url,
                   "video_url": video_url, "thumbnail_url": thumbnail_url, "ctwa_clid": ctwa_clid})


def inbound_message(*, wamid: str, timestamp: int | str, wa_id: str | None, user_id: str | None, name: str,
                    type: str = "text", text: str | None = None, caption: str | None = None,
                    media_id: str | None = None, mime_type: str | None = None, button: JSON | None = None,
                    interactive: JSON | None = None, referral: JSON | None = None,
                    context: JSON | None = None) -> JSON:
    """The `value` of a messages webhook for one message a user sent."""
    message: JSON = clean({"context": context, "from": wa_id, "from_user_id": user_id, "id": wamid,
                            "timestamp": str(timestamp), "type": type, "referral": referral})
    if type == "text":
        message["text"] = {"body": text or ""}
    elif type in ("image", "video", "audio", "document", "sticker"):
        media_id = media_id or str(secrets.randbelow(10**15))
        message[type] = clean({"caption": caption, "mime_type": mime_type or "image/jpeg",
                                "sha256": hashlib.sha256(media_id.encode()).hexdigest(), "id": media_id})
    elif type == "button":
        message["button"] = button or {}
    elif type == "interactive":
        message["interactive"] = interactive or {}
    contact = clean({"profile": {"name": name}, "wa_id": wa_id, "user_id": user_id})
    return {"contacts": [contact], "messages": [message]}


def reaction(*, wamid: str, timestamp: int | str, wa_id: str | None, user_id: str | None, name: str,
             message_id: str, emoji: str | None) -> JSON:
    """The `value` of a messages webhook for a reaction on a message; no emoji: the reaction taken back."""
    value = inbound_message(wamid=wamid, timestamp=timestamp, wa_id=wa_id, user_id=user_id, name=name, type="reaction")
    value["messages"][0]["reaction"] = clean({"message_id": message_id, "emoji": emoji})
    return value


def number_changed(*, wamid: str, timestamp: int | str, wa_id: str, new_wa_id: str, body: str) -> JSON:
    """The `value` of a messages webhook for the system notice that a customer changed number (no contacts)."""
    message = {"from": wa_id, "id": wamid, "timestamp": str(timestamp), "type": "system",
               "system": {"body": body, "new_wa_id": new_wa_id, "type": "user_changed_number"}}  # fmt: skip
    return {"messages": [message]}


def pricing(category: str = "service", billable: bool = False, pricing_model: str = "PMP",
            type: str = "free_customer_service") -> JSON:
    """A status webhook's pricing object (per-message pricing)."""
    return {"billable": billable, "pricing_model": pricing_model, "category": category, "type": type}


def error(code: int, title: str | None = None, message: str | None = None, details: str | None = None) -> JSON:
    """One of Meta's error objects as a failed status carries it; known codes fill themselves in."""
    known_title, known_details = ERRORS.get(code, ("Unknown error", "Unknown error"))
    title = title or known_title
    return {"code": code, "title": title, "message": message or title,
            "error_data": {"details": details or known_details}, "href": ERROR_CODES_URL}


def status_update(*, wamid: str, status: str, timestamp: int | str, recipient_id: str | None,
                  recipient_user_id: str | None = None, pricing: JSON | None = None,
                  conversation: JSON | None = None, errors: list[JSON] | None = None,
                  biz_opaque_callback_data: str | None = None, contacts: list[JSON] | None = None) -> JSON:
    """The `value` of a messages webhook reporting one status of a message we sent."""
    entry = clean({"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": recipient_id,
                    "recipient_user_id": recipient_user_id, "biz_opaque_callback_data": biz_opaque_callback_data,
                    "conversation": conversation, "pricing": pricing, "errors": errors})
    return clean({"contacts": contacts, "statuses": [entry]})


def user_preferences(*, wa_id: str | None, user_id: str | None = None, value: Literal["stop", "resume"] = "stop",
                     timestamp: int, category: str = "marketing_messages", detail: str | None = None,
                     name: str | None = None) -> JSON:
    """The `value` of a ``user_preferences`` webhook (use ``field="user_preferences"``)."""
    detail = detail or f"User requested to {value} marketing messages"
    contact = clean({"profile": {"name": name} if name else None, "wa_id": wa_id, "user_id": user_id})
    preference = clean({"wa_id": wa_id, "user_id": user_id, "detail": detail, "category": category,
                         "value": value, "timestamp": int(timestamp)})
    return {"contacts": [contact], "user_preferences": [preference]}


def encode(body: JSON) -> bytes:
    """Serialise a webhook as Meta does: compact, non-ASCII and "/" escaped. Receivers must verify
    the signature over these bytes, never over a re-serialisation."""
    return json.dumps(body, separators=(",", ":")).replace("/", "\\/").encode()


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header value: HMAC-SHA256 of the exact body with the app secret."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


async def post_signed(url: str, body: JSON, app_secret: str, http: httpx.AsyncClient | None = None) -> httpx.Response:
    """POST a webhook signed as Meta signs it."""
    raw = encode(body)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, app_secret),
               "User-Agent": "facebookexternalua"}
    if http is not None:
        return await http.post(url, content=raw, headers=headers)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, content=raw, headers=headers)
