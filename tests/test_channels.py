from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from clicktochat.channels import CHANNELS, MAX_TEXT_LENGTH, check_text, deep_link, get_channel, normalize_phone
from clicktochat.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "region", "digits"),
    [
        ("+39 347 123 4567", "", "393471234567"),
        ("+39-347-1234567", "", "393471234567"),
        ("0039 347 123 4567", "", "393471234567"),
        ("(650) 253-0000", "US", "16502530000"),
        ("347 123 4567", "it", "393471234567"),
        ("+1 650 253 0000", "IT", "16502530000"),
    ],
)
def test_numbers_are_normalised_to_wa_me_digits(raw: str, region: str, digits: str) -> None:
    assert normalize_phone(raw, region) == digits


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", "", "a phone number is required"),
        ("(650) 253-0000", "", "has no country code"),
        ("hello", "US", "is not a phone number"),
        ("+999 123456", "", "unknown country code"),
        ("+39 12", "", "too short"),
        ("+39 347 123 4567 8901 2345", "", "too long"),
        ("+1 555 010 0000", "", "is not a valid phone number in US"),
    ],
)
def test_invalid_numbers_say_why(raw: str, region: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw, region, field="to")
    assert caught.value.errors[0].field == "to"
    assert reason in caught.value.errors[0].reason


def test_whatsapp_link_keeps_every_character_of_the_text() -> None:
    text = "Ciao! 🍰 Torta & caffè?\n100% #1 a+b=c / ok"
    url = deep_link("whatsapp", "393471234567", text)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "wa.me", "/393471234567")
    assert parse_qs(parts.query)["text"] == [text]
    assert "+" not in parts.query and " " not in parts.query  # spaces as %20, plus kept as %2B


def test_empty_text_gives_a_bare_chat_link() -> None:
    assert deep_link("whatsapp", "393471234567", "") == "https://wa.me/393471234567"


def test_text_length_limit() -> None:
    whatsapp = get_channel("whatsapp")
    assert check_text("x" * MAX_TEXT_LENGTH, whatsapp)
    with pytest.raises(InvalidInput, match="1001 characters long; WhatsApp links take at most 1000"):
        check_text("x" * (MAX_TEXT_LENGTH + 1), whatsapp)


def test_unknown_channel_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="unknown channel 'telegraph'; known channels: whatsapp"):
        get_channel("telegraph")


def test_every_channel_builds_https_urls_to_its_own_host() -> None:
    # The only URLs we ever redirect to come from here: no open redirect.
    for channel in CHANNELS.values():
        url = channel.build_url(channel.normalize("+39 347 123 4567", "", "to"), "hi")
        assert url.startswith("https://")
