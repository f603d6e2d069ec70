"""Opt-ins: people asking for updates on WhatsApp, and the consent that records it. The rules
(numbers checked with phonenumbers, topics, sources, the words shown and their version, forms)
and `Optins`, what the API, the CLI, the hosted page, the widget and the dashboard can do,
validated once here. Entries go to the consent ledger (`consents`); `consent.py` decides what
they allow. A double opt-in form's consent waits in `optin_requests` until the customer's
"Yes" (`OptinStore._optin_reply`)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import phonenumbers
from phonenumbers import PhoneNumberType

from .agents import Business, named
from .channels import international, normalize_phone
from .consent import Consent, latest, may_reply
from .errors import Conflict, FieldError, InvalidInput, Mistakes, NotFound, Unavailable
from .graph import template_payload
from .message_templates import approved_template
from .optin_words import LANGUAGES
from .optinstore import ConfirmedToday, OptinForm, OptinRequest, PendingExists

if TYPE_CHECKING:
    from .service import Service

TOPIC = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?")
FORM_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
TEMPLATE_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
VERSION = re.compile(r"[A-Za-z0-9._:-]{1,50}")
SOURCES = ("widget", "page", "qr", "api", "chat", "cli", "dashboard")
"""Where a consent was given: the widget's panel, the hosted page, the page reached from its
poster's QR code, a shop's system through the API, a chat, the CLI, the dashboard. The ledger
also holds `meta` (opt-outs Meta reports), which nobody can claim."""
MAX_WORDING = 1000
MAX_TOPIC_LABEL = 60
MAX_TOPICS = 20
MAX_TITLE = 100
PENDING_FOR = 86_400  # a double opt-in request waits a day for its "Yes"
CONFIRM_EVERY = 86_400  # at most one confirmation message a day to a number, whoever asks
STOPPED_BY = {"chat": "STOP in the chat", "meta": "a stop in WhatsApp's own settings",
              "erase": "their data was erased"}  # an opt-out's source, as an owner reads it


def check_phone(raw: Any, region: str = "", field: str = "phone") -> str:
    """E.164 digits without '+', the form of Meta's wa_id: the ledger's key for a person. A
    number written without its country code needs `region` (ISO 3166 alpha-2)."""
    if not isinstance(raw, str) or len(raw) > 40:
        raise InvalidInput(field, "must be a phone number with its country code, e.g. +39 347 123 4567")
    text = raw.strip()
    if text.isascii() and text.isdigit() and not region:
        return international(text, "", field)  # digits alone are E.164, as the API lists them
    return normalize_phone(text, region if re.fullmatch(r"[A-Za-z]{2}", region or "") else "", field)


NOT_A_PERSON = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number", PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.SHARED_COST: "a shared-cost number", PhoneNumberType.UAN: "a company's number",
    PhoneNumberType.VOICEMAIL: "a voicemail number", PhoneNumberType.PAGER: "a pager's number",
}  # fmt: skip


class NotAPersonsNumber(InvalidInput):
    """A number no person carries (`check_person_phone`): the page says so in its own words."""


def check_person_phone(raw: Any, region: str = "", field: str = "phone") -> str:
    """`check_phone`, for the public forms: a number a person carries. Premium-rate, toll-free,
    shared-cost and company numbers, and those of no country (+800, +870, +979...), are refused:
    nobody gets updates on one, and a confirmation sent to one is a template paid for nothing."""
    digits = check_phone(raw, region, field)
    number = phonenumbers.parse("+" + digits)
    if phonenumbers.region_code_for_number(number) == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        raise NotAPersonsNumber(field, f"+{number.country_code} is a number of no country, not a person's phone")
    if (kind := phonenumbers.number_type(number)) in NOT_A_PERSON:
        raise NotAPersonsNumber(field, f"is {NOT_A_PERSON[kind]}, not a person's phone")
    return digits


def check_topic(value: Any, field: str = "topic") -> str:
    if not isinstance(value, str) or not TOPIC.fullmatch(value.strip().lower()):
        raise InvalidInput(field, "must be a topic name: 1 to 40 lowercase letters, digits, '-' or '_' (e.g. orders)")
    return value.strip().lower()


def check_source(value: Any, field: str = "source") -> str:
    if value not in SOURCES:
        raise InvalidInput(field, f"must be one of {', '.join(SOURCES)}")
    return str(value)


MIN_LETTERS = 2  # a consent's wording: "OK" at the least, whatever the script


def check_wording(value: Any, field: str = "consent_text") -> str:
    """The exact sentence the person was shown: kept as proof, so it must be there."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "is required: the exact words the customer agreed to")
    text = value.strip()
    if len(text) > MAX_WORDING:
        raise InvalidInput(field, f"is {len(text)} characters long; at most {MAX_WORDING}")
    if any(ord(ch) < 32 and ch != "\n" or ord(ch) == 127 for ch in text):
        raise InvalidInput(field, "must not contain control characters")
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:  # "\u200b" or "." shows the person nothing to agree to
        raise InvalidInput(field, "must be words the customer can read: it holds no letters to show them")
    return text


def check_version(value: Any, field: str = "consent_version") -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not VERSION.fullmatch(value.strip()):
        raise InvalidInput(field, "must be 1 to 50 letters, digits or . _ : - (e.g. 2026-12 or 3)")
    return value.strip()


def consent_mistakes(raw: dict[str, Any]) -> list[FieldError]:
    """What `Optins.add` says of the values in a raw body: for the API, when its model refused
    other fields, so that one answer names every mistake."""
    mistakes = Mistakes()
    for name, check in (("phone", check_phone), ("topic", check_topic), ("consent_text", check_wording),
                        ("consent_version", check_version)):  # fmt: skip
        if isinstance(raw.get(name), str):
            mistakes.check(check, raw[name], otherwise=None)
    return mistakes.errors


def check_form(values: dict[str, Any]) -> dict[str, Any]:
    """A form's fields, each checked; errors name the field."""
    slug = values.get("slug")
    if not isinstance(slug, str) or not FORM_SLUG.fullmatch(slug.strip().lower()):
        raise InvalidInput("slug", "must be 1 to 40 lowercase letters, digits or '-' (the address /optin/<slug>)")
    topics = values.get("topics")
    if isinstance(topics, str):
        topics = [t for t in re.split(r"[\s,]+", topics) if t]
    if not isinstance(topics, list | tuple) or not topics or len(topics) > MAX_TOPICS:
        raise InvalidInput("topics", f"must be 1 to {MAX_TOPICS} topic names, e.g. orders, offers")
    topics = list(dict.fromkeys(check_topic(t, "topics") for t in topics))
    wording = values.get("wording")
    if not isinstance(wording, dict) or not wording:
        raise InvalidInput("wording", "must give the consent sentence in at least one language")
    checked_wording = {}
    for lang, text in wording.items():
        if lang not in LANGUAGES:
            raise InvalidInput("wording", f"{lang!r} is not one of the languages forms speak: {', '.join(LANGUAGES)}")
        checked_wording[lang] = check_wording(text, f"wording.{lang}")
    languages = values.get("languages") or list(checked_wording)
    if isinstance(languages, str):
        languages = [t for t in re.split(r"[\s,]+", languages) if t]
    missing = [lang for lang in languages if lang not in checked_wording]
    if missing:
        raise InvalidInput("languages", f"no consent sentence in {', '.join(map(str, missing))}")
    title = values.get("title")
    if title is not None and (not isinstance(title, str) or len(title.strip()) > MAX_TITLE):
        raise InvalidInput("title", f"must be at most {MAX_TITLE} characters")
    double = values.get("double_optin", False)
    if not isinstance(double, bool):
        raise InvalidInput("double_optin", "must be true or false")
    template, template_language = values.get("template") or None, values.get("template_language") or None
    if double and not template:
        raise InvalidInput("template", "a double opt-in form needs the confirmation template's name")
    if template is not None and (not isinstance(template, str) or not TEMPLATE_NAME.fullmatch(template)):
        raise InvalidInput("template", "must be an approved template's name: lowercase letters, digits and '_'")
    if template and not (isinstance(template_language, str) and TEMPLATE_LANGUAGE.fullmatch(template_language)):
        raise InvalidInput("template_language", "must be the template's language code, e.g. en_US or it")
    labels = check_topic_labels(values.get("topic_labels") or {}, topics, list(checked_wording))
    business_id = values.get("business_id")
    if isinstance(business_id, bool) or not isinstance(business_id, int) or not 0 < business_id < 2**63:
        raise InvalidInput("business_id", "must be a business's id")
    return {
        "slug": slug.strip().lower(), "business_id": business_id, "title": (title or "").strip() or None,
        "topics": topics, "wording": checked_wording, "languages": list(dict.fromkeys(languages)),
        "double_optin": double, "template": template, "template_language": template_language if template else None,
        "topic_labels": labels,
    }  # fmt: skip


def check_topic_labels(value: Any, topics: list[str], languages: list[str]) -> dict[str, dict[str, str]]:
    """{language: {topic: label}}: what each topic is called in each language the form speaks."""
    if not isinstance(value, dict):
        raise InvalidInput("topic_labels", 'must map languages to {topic: label}, e.g. {"it": {"orders": "Ordini"}}')
    labels: dict[str, dict[str, str]] = {}
    for lang, names in value.items():
        if lang not in languages:
            raise InvalidInput(f"topic_labels.{lang}", f"the form has no consent sentence in {lang!r}")
        if not isinstance(names, dict):
            raise InvalidInput(f"topic_labels.{lang}", "must map topics to labels")
        for topic, label in names.items():
            field = f"topic_labels.{lang}.{topic}"
            if topic not in topics:
                raise InvalidInput(field, f"{topic!r} is not one of the form's topics ({', '.join(topics)})")
            if not isinstance(label, str) or not 0 < len(label.strip()) <= MAX_TOPIC_LABEL:
                raise InvalidInput(field, f"must be 1 to {MAX_TOPIC_LABEL} characters")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
                raise InvalidInput(field, "must not contain control characters")
            labels.setdefault(lang, {})[topic] = label.strip()
    return labels


def parse_topic_labels(items: list[str] | tuple[str, ...], field: str = "topic_labels") -> dict[str, dict[str, str]]:
    """The CLI's and the dashboard's `LANG:TOPIC=LABEL` items as check_topic_labels wants them."""
    labels: dict[str, dict[str, str]] = {}
    for item in items:
        where, sep, label = item.partition("=")
        lang, colon, topic = where.partition(":")
        if not sep or not colon or not lang.strip() or not topic.strip():
            raise InvalidInput(field, f"{item!r} is not LANG:TOPIC=LABEL (e.g. it:orders=Ordini)")
        labels.setdefault(lang.strip(), {})[topic.strip()] = label
    return labels


def form_language(form: OptinForm, asked: str, accept_language: str) -> str:
    """`asked` (?lang) when the form has it, else the first of the visitor's languages it has,
    else the form's first."""
    if asked in form.languages:
        return asked
    for part in accept_language.replace("_", "-").split(","):
        code = part.split(";")[0].strip().split("-")[0].lower()
        if code in form.languages:
            return code
    return form.languages[0]


def visitor_key(salted: str) -> str:
    """Never an address: the analytics' daily-salted visitor hash, shortened again."""
    return hashlib.blake2b(salted.encode(), digest_size=8).hexdigest() if salted else ""


@dataclass(frozen=True)
class Outcome:
    """What a submission became: `in` (recorded), `pending` (a confirmation is on its way),
    `waiting` (one was already sent and still waits), `later` (one went out today)."""

    state: str
    consent: Consent | None = None
    request: OptinRequest | None = None


class Optins:
    """Made per use from the service (it holds nothing of its own)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.whatsapp = service.whatsapp
        self.chats = service.whatsapp.chats

    def now(self) -> int:
        return int(self.whatsapp.clock())

    async def business(self, business_id: int | None, field: str = "business_id") -> Business:
        """The business named, or the only one there is (`field`: what the caller names it)."""
        if business_id is None:
            businesses = await self.service.store.businesses()
            if len(businesses) != 1:
                raise InvalidInput(field, f"name the business: {named(businesses)}" if businesses else
                                   "there is no business yet: add one first (clicktochat business add)")  # fmt: skip
            return businesses[0]
        found = await self.service.store.business(business_id) if 0 < business_id < 2**63 else None
        if found is None:
            raise NotFound(f"There is no business {business_id}.")
        return found

    # -- the ledger ------------------------------------------------------------------

    async def add(self, business_id: int | None, phone: Any, topic: Any, source: Any, wording: Any, version: Any,
                  proof: dict[str, Any] | None = None, region: str = "", renewed: bool = False) -> Consent:  # fmt: skip
        """Record a consent given elsewhere (a shop's checkout, a till, the CLI): in force at once.
        Every wrong value is named in one refusal. Over an opt-out (a STOP, an erasure), only with
        `renewed`: the caller says the person gave it again since, where an old call retried, or a
        list imported again, would otherwise sign them up behind their STOP (a privacy review)."""
        mistakes = Mistakes()
        phone = mistakes.check(check_phone, phone, region, otherwise="")
        topic = mistakes.check(check_topic, topic, otherwise="")
        source = mistakes.check(check_source, source, otherwise="")
        wording = mistakes.check(check_wording, wording, otherwise="")
        version = mistakes.check(check_version, version, otherwise="")
        mistakes.raise_any()
        business = await self.business(business_id)
        if not renewed:
            before = latest(await self.chats.consents(business.id, phone, None), topic)
            if before is not None and before.state == "out":
                undone = f"+{phone} {self._undone(before)}"
                raise Conflict(f"{undone}: nothing was recorded. Record it only if they gave their consent again since,"
                               " and say so (renewed)",
                               [FieldError("renewed", f"{undone}: set it only if they gave their consent again since")])
        return await self._entry(business.id, phone, topic, "in", source, wording, version, proof)

    @staticmethod
    def _undone(before: Consent) -> str:
        how = STOPPED_BY.get(before.source, f"recorded from {before.source}")
        return f"had opted out ({how}, {datetime.fromtimestamp(before.at, UTC).strftime('%Y-%m-%d %H:%M UTC')})"

    async def notes(self, entry: Consent) -> list[str]:
        """What the owner should know of an opt-in just recorded: that it undoes an opt-out (a STOP,
        an erasure). Allowed, since the person may say yes again, but only with their new consent."""
        entries = [e for e in await self.chats.consents(entry.business_id, entry.phone or "", None) if e.id != entry.id]
        before = latest(entries, entry.topic)
        if before is None or before.state != "out":
            return []
        return [f"+{entry.phone} {self._undone(before)}; this entry, newer, opts them in to {entry.topic} "
                "again, as their new consent"]  # fmt: skip

    async def remove(self, business_id: int | None, phone: Any, topic: Any | None, source: Any,
                     proof: dict[str, Any] | None = None, field: str = "business_id") -> Consent:  # fmt: skip
        """An opt-out: a new entry, never a deletion. No topic: out of every topic."""
        phone = check_phone(phone)
        topic = "*" if topic in (None, "", "*") else check_topic(topic)
        source = check_source(source)
        business = await self.business(business_id, field)
        words = "Opted out of every topic" if topic == "*" else f"Opted out of {topic}"
        return await self._entry(business.id, phone, topic, "out", source, words, None, proof)

    async def _entry(self, business_id: int, phone: str, topic: str, state: str, source: str, wording: str | None,
                     version: str | None, proof: dict[str, Any] | None) -> Consent:  # fmt: skip
        await self.chats.add_consent(business_id, phone, None, topic, state, self.now(), source, wording, version,
                                     proof)  # fmt: skip
        entries = await self.chats.consents(business_id, phone, None)
        return max(entries, key=lambda e: e.id)

    async def history(self, business_id: int | None, phone: Any,
                      field: str = "business_id") -> tuple[str, list[Consent], list[OptinRequest]]:  # fmt: skip
        """(the number as stored, every entry about it at the business oldest first, its double
        opt-in requests there). With more than one business, the business must be named: a
        summary across them said `orders: out` where one business may still send (a review)."""
        digits = check_phone(phone)
        business = await self.business(business_id, field)
        entries = await self.chats.consents(business.id, digits, None)
        return digits, entries, await self.chats.requests(business.id, digits)

    @staticmethod
    def topics_now(entries: list[Consent]) -> dict[str, str]:
        """Each topic's state now, as `consent.may_message` would decide it ('*': every topic)."""
        found: dict[str, str] = {}
        for topic in dict.fromkeys(e.topic for e in entries):
            entry = latest(entries, topic)
            if entry is not None:
                found[topic] = entry.state
        return found

    # -- forms -----------------------------------------------------------------------

    async def form(self, slug: str) -> OptinForm:
        found = await self.chats.form(slug.lower()) if FORM_SLUG.fullmatch(slug.lower()) else None
        if found is None:
            raise NotFound("There is no sign-up form here. Check the address, or ask the business for a new one.",
                           says="no_form")  # in the visitor's language on the page
        return found

    async def save_form(self, values: dict[str, Any], form: OptinForm | None = None) -> OptinForm:
        """A form checked before it is kept; one with double opt-in also against what can send its
        confirmation: a connected number, and the template synced from Meta, approved, in its language."""
        checked = check_form(values)
        if form is not None and checked["business_id"] != form.business_id:
            # Its consents, its widgets and its printed QR codes are that business's: moved, the
            # first business's widget would collect sign-ups for the second (found by a review).
            raise InvalidInput("business_id", f"the form {form.slug!r} is business {form.business_id}'s, and a form "
                                              "stays with its business: make a new form for the other one")  # fmt: skip
        await self.business(checked["business_id"])
        if checked["double_optin"]:
            await self._confirming_number(checked["business_id"], checked["template"], checked["template_language"])
        try:
            if form is None:
                return await self.chats.add_form(checked, self.now())
            return await self.chats.update_form(form, checked, self.now())
        except KeyError:
            raise InvalidInput("slug", f"{checked['slug']!r} is taken by another form") from None

    async def submit(self, form: OptinForm, phone: Any, region: str, topic: Any, lang: str, source: str,
                     proof: dict[str, Any]) -> Outcome:  # fmt: skip
        """A person's own opt-in on a form (the hosted page, its QR code, the widget): the words
        are the form's, in the language shown, never the submitter's."""
        phone = check_phone(phone, region)
        topic = check_topic(topic) if topic else (form.topics[0] if len(form.topics) == 1 else "")
        if topic not in form.topics:
            raise InvalidInput("topic", "choose one of the topics offered")
        wording, version = form.wording[lang], str(form.version)
        # The topic's name as shown is part of what was agreed to ("Orders and deliveries"), and
        # the form keeps only its latest words: the consent keeps it.
        proof = {"form": form.slug, "topic_label": form.topic_label(topic, lang), **proof}
        if not form.double_optin:
            if not await self._may_reply(form.business_id, phone):
                return Outcome("in")  # answered as for anyone; nothing recorded (see _may_reply)
            return Outcome("in", await self._entry(form.business_id, phone, topic, "in", source, wording, version,
                                                   proof))  # fmt: skip
        return await self._request(form, phone, topic, source, wording, version, proof)

    async def _may_reply(self, business_id: int, phone: str) -> bool:
        """False for a number that opted out (STOP, or erased) and has not written since: anyone may
        type a number into a form, and a stranger must not undo someone's STOP, nor make the
        business send a confirmation to it. The person comes back by writing to the business."""
        entries = await self.chats.consents(business_id, phone, None)
        return may_reply(entries, await self.chats.last_written(business_id, phone)).allowed

    async def _request(self, form: OptinForm, phone: str, topic: str, source: str, wording: str, version: str,
                       proof: dict[str, Any]) -> Outcome:  # fmt: skip
        if not form.template or not form.template_language:
            raise Unavailable("This form cannot send its confirmation: it names no template.")
        try:  # the number or the template may have gone since the form was saved
            number_id = await self._confirming_number(form.business_id, form.template, form.template_language)
        except InvalidInput as exc:
            raise Unavailable(f"This form cannot send its confirmation now: {exc.detail}") from None
        now = self.now()
        if not await self._may_reply(form.business_id, phone):  # answered as for anyone: it tells no one who opted out
            return Outcome(await self.chats.quiet_request(form.business_id, form.id, phone, topic, source, wording,
                                                          version, proof, now, now + PENDING_FOR, CONFIRM_EVERY))
        try:
            request = await self.chats.add_request(form.business_id, form.id, phone, topic, source, wording, version,
                                                   proof, now, now + PENDING_FOR, CONFIRM_EVERY)  # fmt: skip
        except PendingExists:
            waiting = await self.chats.pending_request(form.business_id, phone)
            if waiting is not None and waiting.outbox_id is None:  # a crash before its message was queued
                await self._confirm(waiting, form, number_id, now)
            return Outcome("waiting", request=waiting)
        except ConfirmedToday:
            return Outcome("later")
        await self._confirm(request, form, number_id, now)
        return Outcome("pending", request=request)

    async def _confirming_number(self, business_id: int, template: str, language: str) -> int:
        """The number a double opt-in confirmation goes from, once its template is known to be
        there; else a 422 saying what to put right (naming `double_optin`, `template` or
        `template_language`)."""
        numbers = [k for k in self.whatsapp.keys if k.business_id == business_id]
        if not numbers:
            raise InvalidInput("double_optin", f"business {business_id} has no connected WhatsApp number to send the "
                                               "confirmation from: connect one first (clicktochat whatsapp connect) "
                                               "and sync its templates, or turn double opt-in off")  # fmt: skip
        synced = [t for t, _ in await self.chats.templates(numbers[0].id)]
        found = approved_template(synced, template, language, "template_language")
        if found.parameter_names:  # the confirmation fills none: Meta would refuse every one of them
            raise InvalidInput("template", f"the template {template} takes {len(found.parameter_names)} parameters"
                                           f" ({', '.join('{{' + n + '}}' for n in found.parameter_names)}), and a"
                                           " confirmation sends none: choose a template without them")  # fmt: skip
        return numbers[0].id

    async def _confirm(self, request: OptinRequest, form: OptinForm, number_id: int, now: int) -> None:
        """Queue the confirmation template. The request's id is the idempotency key: however often
        this runs for one request (a retry after a crash between the two steps), one message."""
        assert form.template and form.template_language
        payload = template_payload(request.phone, None, form.template, form.template_language)
        row, _ = await self.chats.enqueue(number_id, None, f"optin-confirm:{request.id}", payload, form.template,
                                          "template", now)  # fmt: skip
        await self.chats.request_queued(request.id, row.id)
        self.whatsapp.sender.wake()

