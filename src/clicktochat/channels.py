"""Messengers a link can lead to: each turns (address, text) into the only URLs we ever
redirect to. A new messenger is one more `Channel` entry in `CHANNELS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from .errors import InvalidInput

MAX_TEXT_LENGTH = 1000
"""Characters of pre-filled text. wa.me accepts more, but long URLs break in SMS, QR codes and
some in-app browsers; a thousand characters is several paragraphs."""


@dataclass(frozen=True)
class Channel:
    name: str
    label: str
    normalize: Callable[[str, str, str], str]
    """(raw address, default region, field name) -> canonical address, or raise InvalidInput."""
    build_url: Callable[[str, str], str]
    """(canonical address, text) -> deep link."""
    max_text_length: int = MAX_TEXT_LENGTH
    build_web_url: Callable[[str, str], str] | None = None
    """(canonical address, text) -> the messenger's web app, for desktops; None: the deep link."""


def normalize_phone(raw: str, default_region: str = "", field: str = "to") -> str:
    """A phone number in E.164 digits without '+', the form wa.me wants."""
    text = raw.strip()
    if not text:
        raise InvalidInput(field, "a phone number is required")
    if not any(ch.isdigit() for ch in text):
        raise InvalidInput(field, f"{raw!r} is not a phone number")
    if text.startswith("00"):
        text = "+" + text[2:]  # the international prefix most of the world dials
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
        raise InvalidInput(field, f"{raw!r} is not a valid phone number in {where}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def display_phone(digits: str) -> str:
    """E.164 digits as people read them: 393471234567 -> +39 347 123 4567."""
    try:
        number = phonenumbers.parse("+" + digits)
    except NumberParseException:
        return "+" + digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _whatsapp_url(digits: str, text: str) -> str:
    url = f"https://wa.me/{digits}"
    return f"{url}?text={quote(text, safe='')}" if text else url


def _whatsapp_web_url(digits: str, text: str) -> str:
    url = f"https://web.whatsapp.com/send?phone={digits}"
    return f"{url}&text={quote(text, safe='')}" if text else url


WHATSAPP = Channel(
    name="whatsapp",
    label="WhatsApp",
    normalize=normalize_phone,
    build_url=_whatsapp_url,
    build_web_url=_whatsapp_web_url,
)

CHANNELS: dict[str, Channel] = {channel.name: channel for channel in (WHATSAPP,)}


def get_channel(name: str, field: str = "channel") -> Channel:
    try:
        return CHANNELS[name]
    except KeyError:
        known = ", ".join(sorted(CHANNELS))
        raise InvalidInput(field, f"unknown channel {name!r}; known channels: {known}") from None


def check_text(text: str, channel: Channel, field: str = "text") -> str:
    if len(text) > channel.max_text_length:
        raise InvalidInput(
            field, f"is {len(text)} characters long; {channel.label} links take at most {channel.max_text_length}"
        )
    if "\x00" in text:
        raise InvalidInput(field, "contains a NUL character")
    return text


@lru_cache(maxsize=8192)
def deep_link(channel_name: str, address: str, text: str) -> str:
    """The URL a click is sent to. Address and text were validated when the link was made."""
    return CHANNELS[channel_name].build_url(address, text)


def web_link(channel_name: str, address: str, text: str) -> str:
    """Where a desktop's "open in the browser" goes: the messenger's web app if it has one."""
    channel = CHANNELS[channel_name]
    return (channel.build_web_url or channel.build_url)(address, text)
