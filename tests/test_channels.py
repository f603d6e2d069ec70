from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from clicktochat.channels import (
    CHANNELS,
    MAX_TEXT_LENGTH,
    check_text,
    deep_link,
    get_channel,
    link_notes,
    normalize_phone,
    web_link,
)
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
        ("+52 1 55 1234 5678", "", "525512345678"),  # a Mexican mobile as many still write it, and WhatsApp keeps it
        ("+55 11 8765-4321", "", "5511987654321"),  # a Brazilian mobile from before the ninth digit
        ("＋３９ ３４７ １２３ ４５６７", "", "393471234567"),  # fullwidth, from a Chinese or Japanese keyboard
        ("1 55 1234 5678", "MX", "525512345678"), ("11 8765-4321", "BR", "5511987654321"),  # typed locally
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
    with pytest.raises(InvalidInput, match="unknown channel 'telegraph'; known channels: whatsapp, telegram"):
        get_channel("telegraph")


# Every channel: what an owner types, the address we keep, and the URL a click goes to.
TEXT = "Ciao & 100% #1? a+b\nRiga 2 🍰 שלום עליכם"
ENCODED = (
    "Ciao%20%26%20100%25%20%231%3F%20a%2Bb%0ARiga%202%20%F0%9F%8D%B0"
    "%20%D7%A9%D7%9C%D7%95%D7%9D%20%D7%A2%D7%9C%D7%99%D7%9B%D7%9D"
)
CASES = [
    ("whatsapp", "+39 347 123 4567", "393471234567", f"https://wa.me/393471234567?text={ENCODED}"),
    ("telegram", "@dolce_vita", "dolce_vita", f"https://t.me/dolce_vita?text={ENCODED}"),
    ("telegram", "https://t.me/DolceVita/", "DolceVita", f"https://t.me/DolceVita?text={ENCODED}"),
    ("telegram", "telegram.me/dolcevita?start=x", "dolcevita", f"https://t.me/dolcevita?text={ENCODED}"),
    ("telegram", "+39 347 123 4567", "+393471234567", f"https://t.me/+393471234567?text={ENCODED}"),
    ("telegram", "t.me/+393471234567", "+393471234567", f"https://t.me/+393471234567?text={ENCODED}"),
    ("messenger", "https://www.facebook.com/dolcevita.roma", "dolcevita.roma", "https://m.me/dolcevita.roma?ref=spring_26"),
    ("messenger", "m.me/102290129340398", "102290129340398", "https://m.me/102290129340398?ref=spring_26"),
    ("messenger", "https://www.facebook.com/profile.php?id=100012345678901&sk=about", "100012345678901",
     "https://m.me/100012345678901?ref=spring_26"),
    ("instagram", "@Dolce.Vita_", "dolce.vita_", "https://ig.me/m/dolce.vita_"),
    ("instagram", "https://www.instagram.com/dolcevita/", "dolcevita", "https://ig.me/m/dolcevita"),
    ("signal", "+49 1512 3456789", "4915123456789", "https://signal.me/#p/+4915123456789"),
    ("viber", "+380 67 123 4567", "380671234567", "viber://chat?number=%2B380671234567"),
    ("line", "@DolceVita", "@dolcevita", f"https://line.me/R/oaMessage/@dolcevita/?{ENCODED}"),
    ("line", "https://line.me/R/ti/p/@dolcevita", "@dolcevita", f"https://line.me/R/oaMessage/@dolcevita/?{ENCODED}"),
    ("sms", "0039 347 123 4567", "393471234567", f"sms:+393471234567?body={ENCODED}"),
    ("call", "+39 06 1234 5678", "390612345678", "tel:+390612345678"),
    ("email", "mailto:Shop@Example.COM", "Shop@example.com",
     "mailto:Shop@example.com?subject=Ciao%20%26%20100%25%20%231%3F%20a%2Bb&body="
     "Riga%202%20%F0%9F%8D%B0%20%D7%A9%D7%9C%D7%95%D7%9D%20%D7%A2%D7%9C%D7%99%D7%9B%D7%9D"),
]  # fmt: skip


@pytest.mark.parametrize(("channel", "raw", "address", "url"), CASES)
def test_each_channel_keeps_one_address_and_builds_one_url(channel: str, raw: str, address: str, url: str) -> None:
    assert get_channel(channel).normalize(raw, "", "to") == address
    assert deep_link(channel, address, TEXT, "spring 26") == url


@pytest.mark.parametrize(("channel", "raw", "address", "url"), CASES)
def test_text_that_the_app_takes_survives_the_round_trip(channel: str, raw: str, address: str, url: str) -> None:
    found = get_channel(channel)
    parts = urlsplit(deep_link(channel, address, TEXT))
    if not found.takes_text:
        assert "Ciao" not in deep_link(channel, address, TEXT) and "text" not in parts.query
        return
    if channel == "line":  # the whole query is the text
        assert unquote(parts.query) == TEXT
    elif channel == "email":
        fields = parse_qs(parts.query)
        assert fields["subject"] == [TEXT.split("\n")[0]]
        assert fields["body"] == [TEXT.split("\n", 1)[1]]
    else:
        key = "body" if channel == "sms" else "text"
        assert parse_qs(parts.query)[key] == [TEXT]
    assert " " not in parts.query and "+" not in parts.query.replace("%2B", "")


@pytest.mark.parametrize(
    ("channel", "raw", "reason"),
    [
        ("telegram", "", "a Telegram username (5-32 letters, digits or _, e.g. @dolcevita) is required"),
        ("telegram", "@abc", "is not a Telegram username"),  # too short
        ("telegram", "@1shop", "is not a Telegram username"),  # a letter first
        ("telegram", "@shop_", "is not a Telegram username"),
        ("telegram", "@sh__op", "is not a Telegram username"),
        ("telegram", "t.me/joinchat/AAAA", "is not a Telegram username"),  # a group invite, not a person
        ("telegram", "+39 12", "too short"),
        ("messenger", "dolce vita", "is not a Facebook Page"),
        ("messenger", "m.me/dolce/../evil", "is not a Facebook Page"),
        ("messenger", "facebook.com/profile.php?id=12", "is not a Facebook Page"),
        ("messenger", "profile.php", "is not a Facebook Page"),
        ("instagram", ".dolce", "is not an Instagram username"),
        ("instagram", "dolce..vita", "is not an Instagram username"),
        ("instagram", "a" * 31, "is not an Instagram username"),
        ("line", "@" + "a" * 21, "is not a LINE official account id"),
        ("line", "@dolce vita", "is not a LINE official account id"),
        ("signal", "@dolcevita", "is not a phone number"),
        ("viber", "+999 1234567", "unknown country code"),
        ("sms", "12345", "has no country code"),
        ("call", "", "a phone number is required"),
        ("email", "shop@localhost", "is not an e-mail address"),
        ("email", "sh op@example.com", "is not an e-mail address"),
        ("email", "shop@example.com?cc=x@y.z", "is not an e-mail address"),  # no header smuggling
        ("email", ".shop@example.com", "is not an e-mail address"),
        ("email", "shop%40evil@example.com", "is not an e-mail address"),
    ],
)
def test_bad_addresses_say_why_and_name_the_field(channel: str, raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        get_channel(channel).normalize(raw, "", "to")
    assert caught.value.errors[0].field == "to"
    assert reason in caught.value.errors[0].reason


ALLOWED = {"https": {"wa.me", "t.me", "m.me", "ig.me", "signal.me", "line.me"}, "viber": {"chat"},
           "sms": {""}, "tel": {""}, "mailto": {""}}  # fmt: skip


@pytest.mark.parametrize("text", ["", TEXT, "//evil.example/", "@evil.example", "\r\nBcc: x@y.z"])
def test_every_url_is_the_messengers_own_whatever_the_text(text: str) -> None:
    # The only URLs we ever redirect to come from here: no open redirect, no smuggled header.
    for channel, _raw, address, _url in CASES:
        for url in (deep_link(channel, address, text, text), deep_link(channel, address, text, text, ios=True)):
            parts = urlsplit(url)
            assert parts.netloc in ALLOWED[parts.scheme], url
            assert "\r" not in url and "\n" not in url and "evil" not in parts.netloc
            url.encode("ascii")  # a Location header


def test_sms_uses_the_form_iphones_need() -> None:
    assert deep_link("sms", "393471234567", "Hi there", ios=True) == "sms:+393471234567&body=Hi%20there"
    assert deep_link("sms", "393471234567", "Hi there") == "sms:+393471234567?body=Hi%20there"
    assert deep_link("whatsapp", "393471234567", "Hi", ios=True) == "https://wa.me/393471234567?text=Hi"


def test_email_line_breaks_are_crlf_and_an_empty_text_is_a_bare_address() -> None:
    assert deep_link("email", "shop@example.com", "Order 12\nline 1\nline 2") == (
        "mailto:shop@example.com?subject=Order%2012&body=line%201%0D%0Aline%202"
    )
    assert deep_link("email", "shop@example.com", "") == "mailto:shop@example.com"


def test_desktops_get_the_web_app_where_there_is_one() -> None:
    assert web_link("whatsapp", "393471234567", "Hi") == "https://web.whatsapp.com/send?phone=393471234567&text=Hi"
    assert web_link("telegram", "dolcevita", "Hi") == "https://web.telegram.org/k/#@dolcevita"
    assert web_link("telegram", "+393471234567", "Hi") == "https://t.me/+393471234567?text=Hi"
    assert web_link("signal", "4915123456789", "") == "https://signal.me/#p/+4915123456789"


def test_links_say_when_the_app_will_not_show_their_text() -> None:
    assert link_notes(get_channel("whatsapp"), "393471234567", "Ciao") == []
    assert link_notes(get_channel("telegram"), "dolcevita", "Ciao") == []
    for name in ("signal", "instagram", "messenger", "viber", "call"):
        notes = link_notes(get_channel(name), "x", "Ciao")
        assert any("cannot carry a message" in note for note in notes), name
        assert not any("cannot carry" in note for note in link_notes(get_channel(name), "x", "")), name
    assert any("lets everyone find it by its number" in n for n in link_notes(get_channel("telegram"), "+39347", ""))
    assert any("every click gets a page first" in n for n in link_notes(get_channel("viber"), "39347", ""))
    assert any("desktops get a page" in n for n in link_notes(get_channel("sms"), "39347", ""))


def test_the_owner_reads_addresses_in_their_usual_form() -> None:
    shown = {name: CHANNELS[name].display(address) for name, _raw, address, _url in CASES}
    assert shown["whatsapp"] == "+39 347 123 4567"
    assert shown["instagram"] == "@dolcevita" and shown["line"] == "@dolcevita"
    assert shown["telegram"] == "+39 347 123 4567"  # the last telegram case, a number
    assert CHANNELS["telegram"].display("dolcevita") == "@dolcevita"
