"""Signed and short links to every channel, end to end: where a click goes on a phone (and an
iPhone), the page a desktop gets (with the web app only where there is one), Viber's page for
everyone, the crawlers' preview naming the messenger, and nothing of the address before a click."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from clicktochat.agents import WEEKDAYS
from clicktochat.channels import CHANNELS, deep_link, web_link
from clicktochat.page_words import LANGUAGES, heading, lead
from clicktochat.page_words import button as button_words
from clicktochat.service import Service
from conftest import ANDROID, DESKTOP, IPHONE, WHATSAPP_PREVIEW, call

TEXT = "Ciao! 1+1 & #2?\n🍰 100%"
ADDRESS = {name: channel.normalize(channel.example, "", "to") for name, channel in CHANNELS.items()}
SECRET = {  # what of each address must never be in a preview's source
    "whatsapp": "3471234567", "telegram": "dolcevita", "messenger": "dolcevita.roma", "instagram": "dolcevita",
    "signal": "3456789", "viber": "671234567", "line": "dolcevita", "sms": "3471234567", "call": "12345678",
    "email": "shop@example.com",
}  # fmt: skip
WEB_APPS = {"whatsapp", "telegram"}


def make(client: TestClient, service: Service, channel: str, short: bool, **fields: object) -> str:
    """The path of a link to `channel`'s example address (slug "go", or a signed token)."""
    fields = {"text": TEXT} | fields
    if short:
        fields.setdefault("slug", "go")
    created = call(client, service.create_link(to=CHANNELS[channel].example, channel=channel, short=short, **fields))  # type: ignore[arg-type]
    return urlsplit(created.url).path  # type: ignore[attr-defined]


def button(html: str) -> str:
    found = re.search(r'<a class="button" href="([^"]*)"', html)
    assert found, html
    return unescape(found.group(1))


@pytest.mark.parametrize("short", [True, False], ids=["short", "signed"])
@pytest.mark.parametrize("name", list(CHANNELS))
def test_a_phone_goes_to_each_channels_app_and_viber_gets_its_page(
    client: TestClient, service: Service, name: str, short: bool
) -> None:
    path = make(client, service, name, short, campaign="summer-ad")
    expected = deep_link(name, ADDRESS[name], TEXT, "summer-ad" if name == "messenger" else "")
    response = client.get(path, headers={"user-agent": ANDROID})
    if name == "viber":  # many phones lack Viber, and nothing would tell the visitor: a page first
        assert response.status_code == 200 and button(response.text) == expected
    else:
        assert response.status_code == 302 and response.headers["location"] == expected


def test_the_exact_urls_of_the_channels_that_change_per_click(client: TestClient, service: Service) -> None:
    sms = make(client, service, "sms", True, text="Ciao & 1+1")
    body = "Ciao%20%26%201%2B1"
    assert client.get(sms, headers={"user-agent": ANDROID}).headers["location"] == f"sms:+393471234567?body={body}"
    assert client.get(sms, headers={"user-agent": IPHONE}).headers["location"] == f"sms:+393471234567&body={body}"
    for short in (True, False):  # Messenger hands the campaign to the Page as its ref
        messenger = make(client, service, "messenger", short, slug="fb", campaign="summer ad") if short else \
            make(client, service, "messenger", short, campaign="summer ad")  # fmt: skip
        location = client.get(messenger, headers={"user-agent": IPHONE}).headers["location"]
        assert location == "https://m.me/dolcevita.roma?ref=summer_ad"
    whatsapp = make(client, service, "whatsapp", True, slug="wa", campaign="summer-ad", text="Ciao")
    assert client.get(whatsapp, headers={"user-agent": IPHONE}).headers["location"] == "https://wa.me/393471234567?text=Ciao"


@pytest.mark.parametrize("name", list(CHANNELS))
def test_a_desktop_gets_the_page_with_the_web_app_only_where_there_is_one(
    client: TestClient, service: Service, name: str
) -> None:
    path = make(client, service, name, True)
    page = client.get(path, headers={"user-agent": DESKTOP})
    assert page.status_code == 200 and button(page.text) == deep_link(name, ADDRESS[name], TEXT)
    assert "script-src 'self'" in page.headers["content-security-policy"]  # landing.js, no inline script
    web = client.get(f"{path}?web=1", headers={"user-agent": DESKTOP})
    if name in WEB_APPS:
        assert 'href="/s/go?web=1"' in page.text or 'href="https://chat.example.com/s/go?web=1"' in page.text
        assert web.status_code == 302 and web.headers["location"] == web_link(name, ADDRESS[name], TEXT)
    else:  # no web app: no such button, and ?web=1 is the page again, never a dead redirect
        assert "web=1" not in page.text
        assert web.status_code == 200 and button(web.text) == deep_link(name, ADDRESS[name], TEXT)
    # A phone asking for the web app gets the app.
    if name in WEB_APPS:
        assert client.get(f"{path}?web=1", headers={"user-agent": ANDROID}).headers["location"] == \
            deep_link(name, ADDRESS[name], TEXT)  # fmt: skip


@pytest.mark.parametrize("name", list(CHANNELS))
def test_redirect_mode_sends_desktops_to_the_page_when_only_an_app_opens_the_link(
    client: TestClient, service: Service, name: str
) -> None:
    path = make(client, service, name, False, mode="redirect")
    response = client.get(path, headers={"user-agent": DESKTOP})
    if name == "viber":
        assert response.status_code == 200 and "Nothing happened?" in response.text
    elif CHANNELS[name].app_only:  # sms:, tel:, mailto: show nothing in a browser without the app
        assert response.status_code == 200 and "scan the QR code with your phone instead" in response.text
    else:
        assert response.status_code == 302


def test_viber_always_gets_a_page_that_tries_the_app_and_says_what_else_to_do(
    client: TestClient, service: Service
) -> None:
    path = make(client, service, "viber", True, mode="redirect")
    for ua, accept in ((IPHONE, "it"), (DESKTOP, "de")):
        page = client.get(path, headers={"user-agent": ua, "accept-language": accept})
        assert page.status_code == 200
        assert 'data-open' in page.text and "landing.js" in page.text  # the script tries the app once
        assert button(page.text) == "viber://chat?number=%2B380671234567"
        assert 'href="https://www.viber.com/en/download/"' in page.text
    assert "Nichts passiert? Dann ist Viber auf diesem Gerät wohl nicht installiert." in unescape(page.text)
    assert ">Viber öffnen</a>" in page.text and ">Viber herunterladen</a>" in page.text
    italian = client.get(path, headers={"user-agent": IPHONE, "accept-language": "it"}).text
    assert "Non succede niente? Probabilmente Viber non è installato" in unescape(italian)


@pytest.mark.parametrize(
    ("name", "accept", "heading", "action", "copy"),
    [
        ("telegram", "en", "Chat with us on Telegram", "Chat on Telegram", False),
        ("signal", "en", "Chat with us on Signal", "Chat on Signal", True),
        ("instagram", "fr", "Écrivez-nous sur Instagram", "Discuter sur Instagram", True),
        ("call", "it", "Chiamaci", "Chiama", True),
        ("call", "en", "Call us", "Call", True),
        ("sms", "de", "Senden Sie uns eine SMS", "SMS senden", False),
        ("email", "es", "Escríbenos un correo", "Enviar un correo", False),
        ("email", "en", "E-mail us", "Send an e-mail", False),
        ("line", "pt", "Fale conosco no LINE", "Conversar no LINE", False),
    ],
)  # fmt: skip
def test_the_page_names_the_channel_and_the_action_and_offers_to_copy_what_the_app_ignores(
    client: TestClient, service: Service, name: str, accept: str, heading: str, action: str, copy: bool
) -> None:
    path = make(client, service, name, False, text="Ciao & grazie")
    page = client.get(path, headers={"user-agent": DESKTOP, "accept-language": accept})
    html = unescape(page.text)
    assert f"<h1>{heading}</h1>" in html and f"<title>{heading}</title>" in html
    assert f">{action}</a>" in html
    assert '<figure class="bubble" id="message"' in html and "Ciao & grazie</figure>" in html  # selectable text
    assert ('class="copy" data-copy="message"' in html) is copy


def test_a_business_name_is_in_the_heading(client: TestClient, service: Service) -> None:
    shop = call(client, service.add_business("Pasticceria Dolce Vita", "Europe/Rome"))
    call(client, service.add_agent(shop.id, "Giulia", "+39 06 1234 5678", "call"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="chiama"))  # type: ignore[attr-defined]
    page = client.get("/s/chiama", headers={"user-agent": DESKTOP, "accept-language": "it"})
    assert "<h1>Chiama Pasticceria Dolce Vita</h1>" in page.text and ">Chiama</a>" in page.text
    english = client.get("/s/chiama", headers={"user-agent": DESKTOP})
    assert "<h1>Call Pasticceria Dolce Vita</h1>" in english.text


@pytest.mark.parametrize(
    ("name", "accept", "title"),
    [
        ("telegram", "en", "Chat with us on Telegram"),
        ("messenger", "en", "Chat with us on Messenger"),
        ("instagram", "it", "Scrivici su Instagram"),
        ("signal", "de", "Schreiben Sie uns auf Signal"),
        ("viber", "en", "Chat with us on Viber"),
        ("line", "en", "Chat with us on LINE"),
        ("sms", "fr", "Envoyez-nous un SMS"),
        ("call", "en", "Call us"),
        ("email", "pt", "Envie um e-mail para nós"),
        ("whatsapp", "en", "Chat with us on WhatsApp"),
    ],
)
def test_the_preview_names_the_messenger_and_never_the_address(
    client: TestClient, service: Service, name: str, accept: str, title: str
) -> None:
    for short in (True, False):
        path = make(client, service, name, short, slug="s" + name, text="Info?") if short else \
            make(client, service, name, short, text="Info?")  # fmt: skip
        preview = client.get(path, headers={"user-agent": WHATSAPP_PREVIEW, "accept-language": accept})
        assert preview.status_code == 200
        assert f'<meta property="og:title" content="{title}">' in unescape(preview.text)
        assert SECRET[name] not in preview.text and SECRET[name] not in unescape(preview.text)
        qr = client.get(f"/qr{path}.svg")
        assert qr.status_code == 200 and SECRET[name] not in qr.text


def test_the_page_offers_the_business_other_channels_through_our_links(
    client: TestClient, service: Service
) -> None:
    shop = call(client, service.add_business("Dolce Vita", "Europe/Rome"))
    for name, to in (("whatsapp", "+39 347 123 4567"), ("telegram", "@dolcevita"), ("whatsapp", "+39 347 765 4321"),
                     ("email", "shop@example.com")):  # fmt: skip
        call(client, service.add_agent(shop.id, name, to, name))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="shop", text="Ciao", campaign="flyer"))  # type: ignore[attr-defined]
    page = client.get("/s/shop", headers={"user-agent": DESKTOP, "accept-language": "it"})
    others = re.search(r'<section class="others".*?</section>', page.text, re.S)
    assert others, page.text
    links = dict((label, url) for url, label in re.findall(r'<a href="([^"]*)" rel="nofollow">([^<]*)</a>', others[0]))
    chosen = urlsplit(button(page.text)).netloc or urlsplit(button(page.text)).scheme
    expected = {"wa.me": {"Scrivi su Telegram", "Manda un'e-mail"}, "t.me": {"Scrivi su WhatsApp", "Manda un'e-mail"},
                "mailto": {"Scrivi su WhatsApp", "Scrivi su Telegram"}}[chosen]  # fmt: skip
    assert set(map(unescape, links)) == expected  # one per channel, never the one shown
    assert "dolcevita" not in others[0] and "shop@" not in others[0] and "347" not in others[0]
    for label, url in links.items():  # the same short link, asking for the channel: routed and counted as it
        channel = {"Scrivi su Telegram": "telegram", "Manda un&#39;e-mail": "email", "Scrivi su WhatsApp": "whatsapp"}
        assert url == f"https://chat.example.com/s/shop?ch={channel[label]}"
        parts = urlsplit(url)
        location = client.get(f"{parts.path}?{parts.query}", headers={"user-agent": ANDROID}).headers["location"]
        assert location in {"Scrivi su Telegram": {"https://t.me/dolcevita?text=Ciao"},
                            "Manda un&#39;e-mail": {"mailto:shop@example.com?subject=Ciao"},
                            "Scrivi su WhatsApp": {"https://wa.me/393471234567?text=Ciao",
                                                   "https://wa.me/393477654321?text=Ciao"}}[label]  # fmt: skip


def test_a_fixed_address_of_a_business_and_a_widget_click_offer_its_other_channels(
    client: TestClient, service: Service
) -> None:
    shop = call(client, service.add_business("Dolce Vita", "Europe/Rome"))
    call(client, service.add_agent(shop.id, "Giulia", "@dolcevita", "telegram"))  # type: ignore[attr-defined]
    call(client, service.add_agent(shop.id, "Luca", "shop@example.com", "email"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="till", text="Ciao"))  # type: ignore[attr-defined]
    till = call(client, service.update_link("till", {"to": "+39 347 123 4567"}))  # the number stays the business's
    assert (till.address, till.business_id) == ("393471234567", shop.id)
    page = client.get("/s/till", headers={"user-agent": DESKTOP, "accept-language": "en"})
    others = re.search(r'<section class="others".*?</section>', page.text, re.S)
    assert others and "@dolcevita" not in others[0] and "shop@" not in others[0]
    urls = re.findall(r'<a href="([^"]*)" rel="nofollow">', others[0])
    assert urls == ["https://chat.example.com/s/till?ch=telegram", "https://chat.example.com/s/till?ch=email"]
    moved = client.get("/s/till?ch=telegram", headers={"user-agent": ANDROID})
    assert moved.headers["location"] == "https://t.me/dolcevita?text=Ciao"
    # A channel nobody at the business is on leaves the link where it leads.
    assert client.get("/s/till?ch=signal", headers={"user-agent": ANDROID}).headers["location"] == (
        "https://wa.me/393471234567?text=Ciao")
    call(client, service.create_widget(shop.id, "shop", {}))
    widget = client.get("/w/shop/any?ch=email&u=&l=en", headers={"user-agent": DESKTOP})
    others = re.search(r'<section class="others".*?</section>', widget.text, re.S)
    assert others and re.findall(r'<a href="([^"]*)" rel="nofollow">', others[0]) == [
        "https://chat.example.com/w/shop/any?l=en&amp;ch=telegram"]


def test_a_link_to_one_number_offers_nothing_else(client: TestClient, service: Service) -> None:
    page = client.get(make(client, service, "telegram", True), headers={"user-agent": DESKTOP})
    assert 'class="others"' not in page.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_channel_has_its_words_in_every_language(lang: str) -> None:
    buttons = set()
    for channel in CHANNELS.values():
        texts = [heading(lang, "Dolce Vita", channel), heading(lang, None, channel), button_words(lang, channel),
                 lead(lang, channel, ""), lead(lang, channel, "Ciao")]  # fmt: skip
        assert all(text.strip() and "{" not in text for text in texts), (lang, channel.name, texts)
        assert "Dolce Vita" in texts[0] and "Dolce Vita" not in texts[1]
        if channel.name not in ("sms", "call", "email"):  # those name their action instead
            assert all(channel.label in text for text in texts), (lang, channel.name, texts)
        assert (lead(lang, channel, "Ciao") != lead(lang, channel, "")) is channel.takes_text
        buttons.add(button_words(lang, channel))
    assert len(buttons) == len(CHANNELS)  # no two channels' buttons say the same


def test_only_agents_on_shift_are_offered(client: TestClient, service: Service) -> None:
    shop = call(client, service.add_business("Dolce Vita", "Europe/Rome"))
    call(client, service.add_agent(shop.id, "Giulia", "+39 347 123 4567"))  # type: ignore[attr-defined]
    off_day = WEEKDAYS[(datetime.now(ZoneInfo("Europe/Rome")).weekday() + 2) % 7]  # away all of today
    call(client, service.add_agent(shop.id, "Marco", "@dolcevita", "telegram", f"{off_day} 09:00-12:00"))  # type: ignore[attr-defined]
    call(client, service.create_link(business_id=shop.id, slug="shop"))  # type: ignore[attr-defined]
    page = client.get("/s/shop", headers={"user-agent": DESKTOP})
    assert button(page.text).startswith("https://wa.me/") and 'class="others"' not in page.text
