"""Conversations on the WhatsApp Business Platform, as plain functions: webhook changes read
into typed events (anything unknown is skipped, never an error), the customer-service window
and the free entry point, ref codes that tie a chat to the click that opened it, and the
keywords people write to stop messages."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from .channels import whatsapp_number
from .intake import read_json

SERVICE_WINDOW = 24 * 3600  # free-form messages are allowed this long after the customer's last one
ENTRY_POINT = 72 * 3600  # a chat from a Click-to-WhatsApp ad or a Page button: every message free
REF_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud or retyped without doubt
REF_LENGTH = 5  # 30^5 = 24 million codes; a code is looked up among the clicks of the last REF_DAYS
REF_DAYS = 7
REF_AHEAD = 3600  # a click up to this long after the message still counts: clocks disagree
REF_PATTERN = re.compile(r"\(\s*ref[\s:#-]*([A-Za-z2-9]{5})\s*\)", re.IGNORECASE)
STOP_WORDS = frozenset({  # a whole message saying one of these (any case, accents, punctuation, emoji)
    "stop", "annulla", "baja", "parar", "stopp", "arret", "arreter", "unsubscribe", "cancelar", "abbestellen",
    "stopall", "stop all", "stop promotions", "stop promotion", "cancel", "end", "quit", "opt out", "optout",  # SMS
    "basta", "disiscrivimi", "darme de baja", "dar de baja", "abmelden", "desabonner", "desinscrire", "sair",
    "please stop", "stop please", "annulla iscrizione", "cancella iscrizione", "cancellami",
    "darse de baja", "desuscribirme", "cancelar suscripcion", "remove me", "take me off your list",  # a review's
    "pare", "parem", "sair da lista", "cancelar inscricao", "descadastrar",
    # Said in a sentence (a new user's): "no more messages", "non scrivetemi più"...
    "no more messages", "dont message me", "don t message me", "do not message me", "dont text me", "don t text me",
    "do not text me", "do not contact me", "don t contact me", "dont contact me",
    "non voglio piu messaggi", "non voglio piu ricevere messaggi", "non scrivetemi piu", "non mi scrivete piu",
    "smettete di scrivermi", "smettetela di scrivermi", "non mandatemi piu messaggi", "non inviatemi piu messaggi",
    "basta messaggi", "no quiero mas mensajes", "no me escriban mas", "no me escribas mas",
    "no me envien mas mensajes", "keine nachrichten mehr", "schreibt mir nicht mehr", "schreiben sie mir nicht mehr",
    "plus de messages", "ne m ecrivez plus", "nao quero mais mensagens", "nao me mandem mais mensagens",
})  # fmt: skip
THANKS = ("grazie", "thanks", "thank you", "gracias", "danke", "merci", "obrigado", "obrigada", "please",
          "per favore", "por favor", "bitte", "s il vous plait")  # a polite end does not hide a stop  # fmt: skip
STOP_STARTS = frozenset({  # not "basta" ("basta così, grazie"), nor "annulla" or "cancel" (an order's)
    "stop", "stopp", "unsubscribe", "arret", "arrete", "arreter", "arretez", "baja", "abmelden", "abbestellen",
    "desabonner", "desabonnez", "desinscrire", "desinscrivez", "disiscrivimi",
})  # fmt: skip
POLITE = frozenset({"please", "pls", "bitte"})  # "Please unsubscribe me": read from the word after
NOT_STOP = frozenset({"by", "in", "over", "at", "here", "there", "the", "a"})  # "stop by at 5": a visit, not a stop
"""A short message (six words at most, not a question) starting with one of these says stop too:
"stop sending me this please", "Stop promotions" (the button Meta adds to marketing templates)."""
CHANGED_NUMBER = "Changed their WhatsApp number: this one may now belong to someone else."
STATUS_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
MAX_TEXT_LENGTH = 4096  # Meta's limit for a text message body
EARLIEST, LATEST = 946_684_800, 4_102_444_800  # 2000-01-01 and 2100-01-01: a timestamp outside is not Meta's


@dataclass(frozen=True)
class Inbound:
    """A message a customer wrote."""

    phone_number_id: str
    wamid: str
    at: int
    wa_id: str | None
    user_id: str | None
    name: str | None
    type: str
    text: str | None
    caption: str | None = None
    mime_type: str | None = None
    referral: dict[str, Any] | None = None
    context_id: str | None = None  # the message of ours it answers (a button tapped on it, a quoted reply)
    payload: str | None = None  # a tapped button's payload or id, as we (or Meta) set it

    @property
    def ref(self) -> str | None:
        return find_ref(self.text or self.caption or "")

    @property
    def written(self) -> bool:
        """The customer wrote, tapped or reacted (Meta opens the window for each); a system notice
        (a changed number) is shown in the conversation but is not the customer writing."""
        return self.type != "system"

    @property
    def stop(self) -> bool:
        """Written or tapped: a button's label may be in the customer's language, its payload is ours or Meta's."""
        return self.type in ("text", "button", "interactive") and (
            is_stop(self.text or "") or is_stop(self.payload or "")
        )


@dataclass(frozen=True)
class Status:
    """What became of a message the business sent."""

    phone_number_id: str
    wamid: str
    status: str
    at: int
    recipient_id: str | None
    recipient_user_id: str | None
    pricing: dict[str, Any] | None
    error_code: int | None
    error_title: str | None
    callback: str | None


@dataclass(frozen=True)
class Preference:
    """A customer stopped (or resumed) marketing messages from the business, in WhatsApp itself."""

    phone_number_id: str
    wa_id: str | None
    user_id: str | None
    value: str
    at: int


Event = Inbound | Status | Preference
log = logging.getLogger(__name__)


def parse(body: bytes, numbers: list[str]) -> list[Event]:
    """A stored body's events; nothing here raises. It was checked to be JSON when it came (and
    `read_json` reads all that is taken), but a journal page a power cut zeroed is skipped."""
    try:
        return read_body(read_json(body), set(numbers))
    except ValueError as exc:
        log.warning("a stored webhook body is not JSON that can be read (%s); it is skipped", type(exc).__name__)
        return []


def read_body(body: Any, phone_number_ids: set[str]) -> list[Event]:
    """The events of one webhook body, for the numbers whose app secret signed it. Meta adds
    fields and event types over time: whatever is not understood is left out, never raised."""
    events: list[Event] = []
    if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
        return events
    for entry in _list(body.get("entry")):
        for change in _list(_dict(entry).get("changes")):
            change = _dict(change)
            value = _dict(change.get("value"))
            number = _str(_dict(value.get("metadata")).get("phone_number_id"))
            if number is None or number not in phone_number_ids:
                continue
            if change.get("field") == "messages":
                events += _messages(number, value)
            elif change.get("field") == "user_preferences":
                events += _preferences(number, value)
    return events


def _messages(number: str, value: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    contacts = [_dict(c) for c in _list(value.get("contacts"))]
    for message in (_dict(m) for m in _list(value.get("messages"))):
        wamid, at = _str(message.get("id")), _time(message.get("timestamp"))
        kind = _str(message.get("type")) or "unknown"
        if wamid is None or at is None or kind == "errors":
            continue
        wa_id, user_id = _str(message.get("from")), _str(message.get("from_user_id"))
        contact = _contact(contacts, wa_id, user_id)
        wa_id = _number(wa_id or _str(contact.get("wa_id")))
        user_id = user_id or _str(contact.get("user_id"))
        if wa_id is None and user_id is None:
            continue
        content = _dict(message.get(kind))
        text = caption = payload = None
        context = _str(_dict(message.get("context")).get("id"))
        if kind == "text":
            text = _str(content.get("body"))
        elif kind == "button":
            text, payload = _str(content.get("text")), _str(content.get("payload"))
        elif kind == "interactive":
            reply = _dict(content.get(_str(content.get("type")) or ""))
            text, payload = _str(reply.get("title")) or _str(reply.get("body")), _str(reply.get("id"))
        elif kind == "location":
            text = _place(content)
        elif kind == "contacts":
            text = _people(message.get("contacts"))
        elif kind == "order":
            text = _order(content)
        elif kind == "reaction":  # no emoji: the customer took their reaction back
            text, context = _str(content.get("emoji")), _str(content.get("message_id"))
        elif kind == "system":  # a notice, not the customer writing
            text, payload = _str(content.get("body")), _str(content.get("type"))
            if payload == "user_changed_number":  # Meta's words name the new number, which is not kept here:
                text = CHANGED_NUMBER  # erasing or exporting that number would not find this conversation
        else:
            caption = _str(content.get("caption"))
        referral = message.get("referral")
        events.append(Inbound(
            number, wamid, at, wa_id, user_id, _str(_dict(contact.get("profile")).get("name")), kind,
            text, caption, _str(content.get("mime_type")), _referral(referral) if isinstance(referral, dict) else None,
            context, payload,
        ))  # fmt: skip
    for status in (_dict(s) for s in _list(value.get("statuses"))):
        wamid, state, at = _str(status.get("id")), _str(status.get("status")), _time(status.get("timestamp"))
        if wamid is None or state not in STATUS_RANK or at is None:
            continue
        error = _dict(_list(status.get("errors"))[0]) if _list(status.get("errors")) else {}
        pricing = status.get("pricing")
        events.append(Status(
            number, wamid, state, at, _number(_str(status.get("recipient_id"))), _str(status.get("recipient_user_id")),
            pricing if isinstance(pricing, dict) else None, _int(error.get("code")),
            _str(error.get("title")) or _str(error.get("message")), _str(status.get("biz_opaque_callback_data")),
        ))  # fmt: skip
    return events


def _place(location: dict[str, Any]) -> str | None:
    """A shared location as an agent reads it: its name, address and coordinates."""
    parts = [p for p in (_str(location.get("name")), _str(location.get("address"))) if p]
    lat, lon = location.get("latitude"), location.get("longitude")
    if all(isinstance(v, int | float) and type(v) is not bool and -180 <= v <= 180 for v in (lat, lon)):  # no NaN
        parts.append(f"{lat}, {lon}")
    return " · ".join(parts)[:MAX_TEXT_LENGTH] or None


def _people(contacts: Any) -> str | None:
    """Shared contact cards: each one's name and first number."""
    cards = []
    for card in (_dict(c) for c in _list(contacts)):
        name = _str(_dict(card.get("name")).get("formatted_name"))
        phones = [_str(_dict(p).get("phone")) for p in _list(card.get("phones"))]
        cards.append(" ".join(p for p in (name, next((p for p in phones if p), None)) if p))
    return "; ".join(c for c in cards if c)[:MAX_TEXT_LENGTH] or None


def _order(order: dict[str, Any]) -> str | None:
    """An order from the catalogue: each product's quantity and id, then the customer's note."""
    items = []
    for item in (_dict(i) for i in _list(order.get("product_items"))):
        product, quantity = _str(item.get("product_retailer_id")), item.get("quantity")
        if product:
            items.append(f"{quantity} × {product}" if type(quantity) is int and quantity < 10**9 else product)
    return " · ".join([*items, *([note] if (note := _str(order.get("text"))) else [])])[:MAX_TEXT_LENGTH] or None


def _preferences(number: str, value: dict[str, Any]) -> list[Event]:
    events: list[Event] = []
    for item in (_dict(p) for p in _list(value.get("user_preferences"))):
        wa_id, user_id, at = _number(_str(item.get("wa_id"))), _str(item.get("user_id")), _time(item.get("timestamp"))
        choice = _str(item.get("value"))
        if (wa_id or user_id) and at is not None and choice in ("stop", "resume"):
            events.append(Preference(number, wa_id, user_id, choice, at))
    return events


def _referral(referral: dict[str, Any]) -> dict[str, Any]:
    """What of Meta's referral says where the chat came from (media URLs are left out)."""
    keys = ("source_type", "source_id", "source_url", "headline", "body", "ctwa_clid", "media_type")
    return {key: value for key in keys if (value := _str(referral.get(key))) is not None}  # surrogates made U+FFFD


def _contact(contacts: list[dict[str, Any]], wa_id: str | None, user_id: str | None) -> dict[str, Any]:
    for contact in contacts:
        if (wa_id and contact.get("wa_id") == wa_id) or (user_id and contact.get("user_id") == user_id):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _number(wa_id: str | None) -> str | None:
    """Meta's id of a person as the number's E.164 digits, as consents and notifications key it."""
    return whatsapp_number(wa_id) if wa_id else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    """A string of the payload, cut short; half a UTF-16 pair (JSON may say "\\ud800"), which no
    database holds, becomes U+FFFD."""
    if not isinstance(value, str) or not value:
        return None
    text: str = value[:MAX_TEXT_LENGTH * 2]
    try:
        text.encode()
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 16:
        return int(value)
    return None


def _time(value: Any) -> int | None:
    """A Unix timestamp of Meta's, or None for anything that cannot be one (the event is skipped)."""
    at = _int(value)
    return at if at is not None and EARLIEST <= at <= LATEST else None


# -- the window ------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """What the business may send now, and until when."""

    open_until: int | None  # free-form messages until then (None: the customer never wrote)
    entry_point_until: int | None  # every message free until then (chats from ads and Page buttons)
    now: int

    @property
    def open(self) -> bool:
        return self.open_until is not None and self.now < self.open_until

    @property
    def may_send(self) -> str:
        """"text": free-form messages (and templates); "templates": only approved templates."""
        return "text" if self.open else "templates"

    def as_dict(self) -> dict[str, Any]:
        return {"open": self.open, "open_until": self.open_until, "free_entry_point_until": self.entry_point_until,
                "may_send": self.may_send}  # fmt: skip


def window(last_inbound_at: int | None, entry_point_until: int | None, replied_at: int | None, now: int) -> Window:
    """The customer-service window runs 24 h from the customer's last message. A chat that
    started from an ad or a Page button has the 72-hour free entry point, kept only if the
    business replied within the first 24 h."""
    open_until = last_inbound_at + SERVICE_WINDOW if last_inbound_at is not None else None
    if entry_point_until is not None:
        started = entry_point_until - ENTRY_POINT
        kept = (replied_at is not None and started <= replied_at <= started + SERVICE_WINDOW) or (
            now < started + SERVICE_WINDOW
        )
        if not kept or now >= entry_point_until:
            entry_point_until = None
    return Window(open_until, entry_point_until, now)


# -- ref codes and stop words ------------------------------------------------------------


def new_ref() -> str:
    return "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))


def with_ref(text: str, ref: str) -> str:
    """The pre-filled message with its ref code at the end, where the customer sees it and may
    delete it."""
    return f"{text} (ref {ref})" if text else f"(ref {ref})"


def find_ref(text: str) -> str | None:
    """The last ref code in a message, as written by `with_ref` (any case, a few typos' worth
    of spacing)."""
    found = REF_PATTERN.findall(text[-2000:])
    code = found[-1].upper() if found else None
    return code if code and all(c in REF_ALPHABET for c in code) else None


PADDING = " \t\r\n!.?¡¿…"  # what a STOP may be padded with past 80 characters ("STOP!!!!!!...", found by a review)


def is_stop(text: str) -> bool:
    """STOP, ANNULLA, BAJA, PARAR, STOPP, ARRÊT... alone in a message, in any case, with
    punctuation or an emoji around it (`says_stop`), or a short message starting with stop ("stop
    sending me this", "Stop promotions"). When in doubt it says stop: a customer who did not mean it
    only stops getting marketing and updates, may ask for them again, and may still be answered
    in the window (consent.may_answer)."""
    words = _words(text)
    if not words:
        return False
    if _says_stop(words):
        return True
    if words[0] in POLITE and len(words) > 1:
        words = words[1:]
    short = len(words) <= 6 and "?" not in text
    return words[0] in STOP_STARTS and short and (len(words) == 1 or words[1] not in NOT_STOP)


def says_stop(text: str) -> bool:
    """The whole message is a stop: "STOP", "Baja por favor", "non scrivetemi più, grazie", not a
    sentence that only starts with one ("Stop, wrong address!")."""
    words = _words(text)
    return bool(words) and _says_stop(words)


def _words(text: str) -> list[str]:
    """A short message's words, lower case, accents dropped; none for a long one."""
    if not text or len(text) > 80 and len(text.strip(PADDING)) > 80:  # a real message is decided here, most
        return []
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if c.isascii())  # accents dropped
    return "".join(c if c.isalpha() else " " for c in folded).split()


def _says_stop(words: list[str]) -> bool:
    said = " ".join(words)
    if said in STOP_WORDS:
        return True
    for polite in THANKS:  # "non scrivetemi più, grazie"; but not "basta, grazie" ("that's all, thanks")
        said = said.removesuffix(f" {polite}")
    return said in STOP_WORDS and (" " in said or said in STOP_STARTS)  # "baja, por favor"


def check_text(text: Any) -> str:
    """A reply's text, or a reason it cannot be sent (ValueError)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must not be empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"must be at most {MAX_TEXT_LENGTH} characters (WhatsApp's limit)")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise ValueError("must not contain control characters")
    return text.replace("\r\n", "\n")
