"""Messengers a link can lead to: each turns (address, text) into the only URLs we ever
redirect to. A new messenger is one more `Channel` entry in `CHANNELS`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from .errors import InvalidInput
from .names import BIDI_CONTROLS

MAX_TEXT_LENGTH = 1000
"""Characters of pre-filled text. wa.me accepts more, but long URLs break in SMS, QR codes and
some in-app browsers; a thousand characters is several paragraphs."""


@dataclass(frozen=True)
class Channel:
    name: str
    label: str
    normalize: Callable[[str, str, str], str]
    """(raw address, default region, field name) -> canonical address, or raise InvalidInput."""
    build_url: Callable[[str, str, str], str]
    """(canonical address, text, ref) -> deep link. `ref` is the link's campaign, for the
    messengers that hand one to the business (Messenger's `ref`); the others ignore it."""
    example: str
    """What an address looks like, for forms and error messages."""
    takes_text: bool = True
    """The app pre-fills the text; if not, links that carry text say so when they are made."""
    app_only: bool = False
    """The deep link is a scheme only an installed app opens (viber:, sms:, tel:, mailto:): a
    browser without that app shows nothing, so desktops always get a page first."""
    page_first: bool = False
    """Every click gets a page first that opens the app and says what to do if it does not open
    (Viber: many phones and most desktops lack it, and nothing tells the visitor)."""
    takes_ref: bool = False
    """`build_url` uses the link's campaign as `ref`: the click path passes it only then."""
    max_text_length: int = MAX_TEXT_LENGTH
    build_web_url: Callable[[str, str], str] | None = None
    """(canonical address, text) -> the messenger's web app, for desktops; None: the deep link."""
    build_ios_url: Callable[[str, str], str] | None = None
    """(canonical address, text) -> the deep link iPhones and iPads need, where it differs."""
    display: Callable[[str], str] = str
    """A canonical address as the owner reads it in the dashboard (never shown to visitors)."""


def normalize_phone(raw: str, default_region: str = "", field: str = "to") -> str:
    """A phone number in E.164 digits without '+', the form wa.me wants. Fullwidth digits and
    plus (typed with a Chinese or Japanese keyboard) are read as ASCII ones."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if not text:
        raise InvalidInput(field, "a phone number is required")
    if not any(ch.isdigit() for ch in text):
        raise InvalidInput(field, f"{raw!r} is not a phone number")
    if text.startswith("00"):
        text = "+" + text[2:]  # the international prefix most of the world dials
    if text.startswith("+") and (digits := re.sub(r"\D", "", text)) != whatsapp_number(digits):
        text = "+" + whatsapp_number(digits)  # +52 1 55...: how many Mexicans still write their mobile
    region = default_region.upper() or None
    if not text.startswith("+") and region is None:
        raise InvalidInput(
            field,
            f"{raw!r} has no country code: write it as +<country code> <number>, e.g. +39 347 123 4567 "
            "(or set CLICKTOCHAT_DEFAULT_REGION)",
        )
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reasons = {
            NumberParseException.INVALID_COUNTRY_CODE: "has an unknown country code",
            NumberParseException.NOT_A_NUMBER: "is not a phone number",
            NumberParseException.TOO_SHORT_AFTER_IDD: "is too short",
            NumberParseException.TOO_SHORT_NSN: "is too short",
            NumberParseException.TOO_LONG: "is too long",
        }
        raise InvalidInput(field, f"{raw!r} {reasons.get(exc.error_type, 'is not a phone number')}") from None
    if not phonenumbers.is_valid_number(number):  # 1 55 1234 5678 typed in Mexico, 11 8765-4321 in Brazil
        fixed = whatsapp_number(f"{number.country_code}{number.national_number}")
        if fixed != f"{number.country_code}{number.national_number}" and _valid("+" + fixed):
            return fixed
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        reasons = {
            ValidationResult.INVALID_COUNTRY_CODE: "has an unknown country code",
            ValidationResult.TOO_SHORT: "is too short",
            ValidationResult.TOO_LONG: "is too long",
            ValidationResult.INVALID_LENGTH: "has the wrong number of digits",
            ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "can only be dialled locally",
        }
        raise InvalidInput(field, f"{raw!r} {reasons.get(possible, 'is not a valid phone number')}")
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_country_code(number.country_code or 0)
        where = f"for +{number.country_code}" if where == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY else f"in {where}"
        raise InvalidInput(field, f"{raw!r} is not a valid phone number {where}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def whatsapp_number(wa_id: str) -> str:
    """A WhatsApp id (Meta's `wa_id`, `from`, `recipient_id`) as the E.164 digits `phonenumbers`
    gives the same number, the one key for a person: Mexico's mobiles come as 521 + ten digits
    (the 1 Mexico dropped in 2019), and Brazil's accounts made before mobiles got their ninth
    digit as 55 + area + eight. Anything else is left as it is."""
    if len(wa_id) == 13 and wa_id.startswith("521") and wa_id.isdigit():
        return "52" + wa_id[3:]
    if len(wa_id) == 12 and wa_id.startswith("55") and wa_id.isdigit() and wa_id[4] in "6789":
        nine = wa_id[:4] + "9" + wa_id[4:]  # only where the eight digits are no number of today's (a review:
        if not _valid("+" + wa_id) and _valid("+" + nine):  # 55 11 7xxx-xxxx is one, and so is 55 11 97xxx-xxxx)
            return nine
    return wa_id


def _valid(text: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(text)))
    except NumberParseException:
        return False


def whatsapp_forms(digits: str) -> list[str]:
    """Every form Meta may write a number in: the E.164 digits, and (Mexico, older Brazilian
    mobiles) the form `whatsapp_number` reads back into them. What searches raw webhook bodies
    for a person (an export, an erasure) looks for each."""
    forms = [digits]
    if len(digits) == 12 and digits.startswith("52"):
        forms.append("521" + digits[2:])
    eight = digits[:4] + digits[5:]  # a Brazilian mobile without its ninth digit
    if len(digits) == 13 and digits.startswith("55") and digits[4] == "9" and whatsapp_number(eight) == digits:
        forms.append(eight)
    return forms


def international(digits: str, default_region: str = "", field: str = "to") -> str:
    """Digits alone read as a number with its country code, as WhatsApp writes them
    (393471234567); when they are not one, the error quotes what was typed, not the '+' added."""
    try:
        return normalize_phone("+" + whatsapp_number(digits), default_region, field)
    except InvalidInput:
        raise InvalidInput(field, f"{digits!r} is not a number with its country code (digits alone are read as one, "
                                  "as WhatsApp writes them: 393471234567); write it as +39 347 123 4567") from None


def display_phone(digits: str) -> str:
    """E.164 digits as people read them: 393471234567 -> +39 347 123 4567."""
    try:
        number = phonenumbers.parse("+" + digits)
    except NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _q(text: str) -> str:
    """Percent-encode everything but RFC 3986's unreserved characters: spaces as %20 (never '+',
    which some apps keep as a plus), and '&', '#', '?', '%', '+' so they stay in the text."""
    return quote(text, safe="")


def _strip_url(raw: str, hosts: tuple[str, ...]) -> str:
    """What people paste: '@shop', 'shop', 't.me/shop', 'https://www.t.me/shop/'. Returns the
    part after one of `hosts` (or the input), without '@', query, fragment or trailing '/'."""
    text = raw.strip()
    lowered = text.lower()
    for prefix in ("https://", "http://"):
        if lowered.startswith(prefix):
            text, lowered = text[len(prefix):], lowered[len(prefix):]
    if lowered.startswith("www."):
        text, lowered = text[4:], lowered[4:]
    for host in hosts:
        if lowered.startswith(host + "/"):
            text = text[len(host) + 1:]
            break
    text = text.split("?", 1)[0].split("#", 1)[0].strip("/")
    return text[1:] if text.startswith("@") else text


def _check(field: str, value: str, raw: str, pattern: re.Pattern[str], what: str) -> str:
    if not raw.strip():
        raise InvalidInput(field, f"{what} is required")
    if not pattern.fullmatch(value):
        raise InvalidInput(field, f"{raw.strip()!r} is not {what}")
    return value


# WhatsApp: wa.me takes any text; web.whatsapp.com is its desktop app.

def _whatsapp_url(digits: str, text: str, ref: str = "") -> str:
    return f"https://wa.me/{digits}?text={_q(text)}" if text else f"https://wa.me/{digits}"


def _whatsapp_web_url(digits: str, text: str) -> str:
    url = f"https://web.whatsapp.com/send?phone={digits}"
    return f"{url}&text={_q(text)}" if text else url


# Telegram: a public username (5-32 letters, digits, underscores; a letter first), or a phone
# number, which opens a chat only if that person lets everyone find them by number.

TELEGRAM_USERNAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_)){3,30}[A-Za-z0-9]")


def normalize_telegram(raw: str, default_region: str = "", field: str = "to") -> str:
    text = raw.strip()
    if text.startswith("+") or text.startswith("00"):
        return "+" + normalize_phone(text, default_region, field)
    name = _strip_url(text, ("t.me", "telegram.me", "telegram.dog"))
    if name.startswith("+"):  # t.me/+393471234567, pasted
        return "+" + normalize_phone(name, default_region, field)
    what = "a Telegram username (5-32 letters, digits or _, e.g. @dolcevita)"
    return _check(field, name, raw, TELEGRAM_USERNAME, what)


def _telegram_url(address: str, text: str, ref: str = "") -> str:
    return f"https://t.me/{address}?text={_q(text)}" if text else f"https://t.me/{address}"


def _telegram_web_url(address: str, text: str) -> str:
    if address.startswith("+"):  # Telegram's web app has no address for a number: t.me's page
        return _telegram_url(address, text)
    return f"https://web.telegram.org/k/#@{address}"


def _telegram_display(address: str) -> str:
    return display_phone(address[1:]) if address.startswith("+") else "@" + address


# Facebook Messenger: a Page's username (or its numeric id). m.me carries no text, only a
# `ref` that reaches the Page's webhook (messaging_referrals): the link's campaign.

MESSENGER_PAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{3,48})[A-Za-z0-9]")
MESSENGER_REF = re.compile(r"[^A-Za-z0-9+/=\-.:_]")


MESSENGER_PROFILE = re.compile(r"profile\.php\?(?:[^#]*&)?id=([0-9]{5,20})(?:[&#]|$)")


def normalize_messenger(raw: str, default_region: str = "", field: str = "to") -> str:
    what = "a Facebook Page username or id (e.g. dolcevita.roma)"
    if found := MESSENGER_PROFILE.search(raw.strip()):  # facebook.com/profile.php?id=...: the Page's id
        return found.group(1)
    name = _strip_url(raw, ("m.me", "facebook.com", "fb.com", "fb.me", "messenger.com/t"))
    if name.lower().endswith(".php"):  # a Facebook page of its own (profile.php without an id), never a Page
        raise InvalidInput(field, f"{raw.strip()!r} is not {what}")
    return _check(field, name, raw, MESSENGER_PAGE, what)


def _messenger_url(page: str, text: str, ref: str = "") -> str:
    ref = MESSENGER_REF.sub("_", ref)[:250]  # Meta takes only these characters, up to 250
    return f"https://m.me/{page}?ref={_q(ref)}" if ref else f"https://m.me/{page}"


# Instagram: a username (1-30 letters, digits, '.', '_'; no '..', no '.' at either end).

INSTAGRAM_USERNAME = re.compile(r"(?!\.)(?!.*\.\.)[A-Za-z0-9._]{1,30}(?<!\.)")


def normalize_instagram(raw: str, default_region: str = "", field: str = "to") -> str:
    name = _strip_url(raw, ("ig.me/m", "instagram.com"))
    return _check(field, name, raw, INSTAGRAM_USERNAME, "an Instagram username (e.g. @dolcevita)").lower()


def _instagram_url(username: str, text: str, ref: str = "") -> str:
    return f"https://ig.me/m/{username}"


# Signal: a phone number; signal.me opens the chat, and says what to do where Signal is missing.

def _signal_url(digits: str, text: str, ref: str = "") -> str:
    return f"https://signal.me/#p/+{digits}"


# Viber: a phone number, through the viber: scheme, which only an installed Viber opens.

def _viber_url(digits: str, text: str, ref: str = "") -> str:
    return f"viber://chat?number=%2B{digits}"


# LINE: an official account's id, '@' and 1-20 lower-case letters, digits, '.', '_', '-'.
# oaMessage puts the text after '?', alone.

LINE_ID = re.compile(r"@[a-z0-9._-]{1,20}")


def normalize_line(raw: str, default_region: str = "", field: str = "to") -> str:
    name = _strip_url(raw, ("line.me/r/ti/p", "line.me/r/oamessage", "page.line.me"))
    return _check(field, "@" + name.lower(), raw, LINE_ID, "a LINE official account id (e.g. @dolcevita)")


def _line_url(account: str, text: str, ref: str = "") -> str:
    return f"https://line.me/R/oaMessage/{quote(account, safe='@')}/?{_q(text)}"


# SMS (RFC 5724): Android and the RFC put the body after '?'; iPhones want '&body='.

def _sms_url(digits: str, text: str, ref: str = "") -> str:
    return f"sms:+{digits}?body={_q(text)}" if text else f"sms:+{digits}"


def _sms_ios_url(digits: str, text: str) -> str:
    return f"sms:+{digits}&body={_q(text)}" if text else f"sms:+{digits}"


# A phone call (RFC 3966): a global number, no text.

def _call_url(digits: str, text: str, ref: str = "") -> str:
    return f"tel:+{digits}"


# E-mail (RFC 6068): the text's first line is the subject, the rest the body; line breaks as
# CRLF. The address is kept to characters that need no encoding in a mailto: URL.

EMAIL = re.compile(
    r"[A-Za-z0-9._+-]{1,64}@(?=.{4,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def normalize_email(raw: str, default_region: str = "", field: str = "to") -> str:
    text = raw.strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = _check(field, text, raw, EMAIL, "an e-mail address (e.g. shop@example.com)")
    local, domain = text.rsplit("@", 1)
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidInput(field, f"{raw.strip()!r} is not an e-mail address (e.g. shop@example.com)")
    return f"{local}@{domain.lower()}"


def email_parts(text: str) -> tuple[str, str]:
    """(subject, body) of a link's text: the first line, and the rest."""
    lines = text.replace("\r\n", "\n").split("\n", 1)
    return lines[0].strip(), (lines[1] if len(lines) > 1 else "").strip("\n")


def _email_url(address: str, text: str, ref: str = "") -> str:
    subject, body = email_parts(text)
    fields = [f"subject={_q(subject)}"] if subject else []
    fields += [f"body={_q(body.replace(chr(10), chr(13) + chr(10)))}"] if body else []
    return f"mailto:{address}" + ("?" + "&".join(fields) if fields else "")


def _plus_phone(digits: str) -> str:
    return display_phone(digits)


CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (
        Channel("whatsapp", "WhatsApp", normalize_phone, _whatsapp_url, "+39 347 123 4567",
                build_web_url=_whatsapp_web_url, display=_plus_phone),
        Channel("telegram", "Telegram", normalize_telegram, _telegram_url, "@dolcevita",
                build_web_url=_telegram_web_url, display=_telegram_display),
        Channel("messenger", "Messenger", normalize_messenger, _messenger_url, "dolcevita.roma",
                takes_text=False, takes_ref=True),
        Channel("instagram", "Instagram", normalize_instagram, _instagram_url, "@dolcevita",
                takes_text=False, display=lambda name: "@" + name),
        Channel("signal", "Signal", normalize_phone, _signal_url, "+49 1512 3456789",
                takes_text=False, display=_plus_phone),
        Channel("viber", "Viber", normalize_phone, _viber_url, "+380 67 123 4567",
                takes_text=False, app_only=True, page_first=True, display=_plus_phone),
        Channel("line", "LINE", normalize_line, _line_url, "@dolcevita"),
        Channel("sms", "SMS", normalize_phone, _sms_url, "+39 347 123 4567",
                app_only=True, build_ios_url=_sms_ios_url, display=_plus_phone),
        Channel("call", "Phone call", normalize_phone, _call_url, "+39 06 1234 5678",
                takes_text=False, app_only=True, display=_plus_phone),
        Channel("email", "E-mail", normalize_email, _email_url, "shop@example.com", app_only=True),
    )
}  # fmt: skip
WHATSAPP = CHANNELS["whatsapp"]


def get_channel(name: str, field: str = "channel") -> Channel:
    try:
        return CHANNELS[name]
    except KeyError:
        known = ", ".join(CHANNELS)
        raise InvalidInput(field, f"unknown channel {name!r}; known channels: {known}") from None


def check_text(text: str, channel: Channel, field: str = "text") -> str:
    """The pre-filled message, kept exactly as written; a 422 naming `field` when it is too long
    for the channel or holds a control character other than tabs and line ends (NUL, escapes)
    or a text direction mark (which makes the message read otherwise than it is)."""
    if len(text) > channel.max_text_length:
        raise InvalidInput(
            field, f"is {len(text)} characters long; {channel.label} links take at most {channel.max_text_length}"
        )
    if any((unicodedata.category(c) == "Cc" and c not in "\t\n\r") or c in BIDI_CONTROLS for c in text):
        raise InvalidInput(field, "must not hold control characters other than tabs and new lines (NUL, escapes), "
                                  "nor text direction marks")  # fmt: skip
    return text


def link_notes(channel: Channel, address: str, text: str) -> list[str]:
    """What the owner should know about a link when it is made: text the app will not show,
    a destination that works only under conditions the owner cannot see from here."""
    notes = []
    if text and not channel.takes_text:
        notes.append(f"{channel.label} links cannot carry a message: the text will not be pre-filled")
    if channel.name == "telegram" and address.startswith("+"):
        notes.append("t.me links to a number open a chat only if that account lets everyone find it by its number")
    if channel.page_first:
        notes.append(f"{channel.label} opens only where its app is installed: every click gets a page first that"
                     " opens it and says what to do when nothing happens")
    elif channel.app_only:
        notes.append(f"{channel.label} opens only where an app handles it; desktops get a page explaining that first")
    return notes


@lru_cache(maxsize=8192)
def deep_link(channel_name: str, address: str, text: str, ref: str = "", ios: bool = False) -> str:
    """The URL a click is sent to. Address and text were validated when the link was made;
    `ref` is the link's campaign (Messenger hands it to the Page), `ios` picks iOS's form."""
    channel = CHANNELS[channel_name]
    if ios and channel.build_ios_url is not None:
        return channel.build_ios_url(address, text)
    return channel.build_url(address, text, ref)


def web_link(channel_name: str, address: str, text: str) -> str:
    """Where a desktop's "open in the browser" goes: the messenger's web app if it has one."""
    channel = CHANNELS[channel_name]
    return channel.build_web_url(address, text) if channel.build_web_url else channel.build_url(address, text, "")
