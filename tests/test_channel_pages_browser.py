"""The pages of links to other messengers, in real Chromium against the real server: a message
the app will not pre-fill is copied with the Copy button, Telegram's web app is one click from
a desktop, Viber's page tries the app and stays to explain, the business's other channels lead
through our links; in the visitor's language."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import DESKTOP
from test_e2e import free_port, server

MESSAGE = "Ciao! Vorrei prenotare 2 posti & #1 🍰"


async def seed(db: str, base: str) -> dict[str, str]:
    service = await Service.open(Settings(db=db, base_url=base))
    try:
        shop = await service.add_business("Dolce Vita", "Europe/Rome")
        await service.add_agent(shop.id, "Giulia", "@dolcevita", "telegram")
        await service.add_agent(shop.id, "Marco", "+49 1512 3456789", "signal")
        await service.create_link(business_id=shop.id, slug="shop", text=MESSAGE)
        await service.create_link(to="+49 1512 3456789", channel="signal", slug="signal", text=MESSAGE)
        await service.create_link(to="@dolcevita", channel="telegram", slug="tg", text="Hallo")
        viber = await service.create_link(to="+380 67 123 4567", channel="viber", short=False, title="Dolce Vita")
        return {"viber": viber.url}
    finally:
        await service.close()


@pytest.fixture(scope="module")
def site(module_db_path: str
         ) -> Iterator[tuple[str, dict[str, str]]]:  # fmt: skip
    db = module_db_path
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ThreadPoolExecutor(1) as thread:  # Playwright's loop may already run in this one
        links = thread.submit(asyncio.run, seed(db, base)).result()
    with server(db, port, "--base-url", base):
        yield base, links


@pytest.fixture
def visitor(browser: Browser) -> Iterator[Any]:
    """A desktop visitor with a locale, whose visits to the messengers' sites are answered here."""
    contexts = []

    def start(locale: str) -> Page:
        context = browser.new_context(user_agent=DESKTOP, locale=locale, viewport={"width": 480, "height": 800})
        for host in ("t.me", "web.telegram.org", "signal.me"):
            context.route(f"https://{host}/**", lambda route: route.fulfill(status=200, body="app"))
        contexts.append(context)
        return context.new_page()

    yield start
    for context in contexts:
        context.close()


@pytest.mark.parametrize(("locale", "hint", "copy", "copied"), [
    ("it-IT", "Signal non può inserire il messaggio: copialo e incollalo nella chat.", "Copia", "Copiato"),
    ("fr-FR", "Signal ne peut pas remplir votre message : copiez-le, puis collez-le dans la discussion.", "Copier",
     "Copié"),
])  # fmt: skip
def test_a_message_signal_will_not_fill_in_is_copied_with_one_click(
    visitor: Any, site: tuple[str, dict[str, str]], locale: str, hint: str, copy: str, copied: str
) -> None:
    base, _ = site
    page = visitor(locale)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.goto(f"{base}/s/signal")
    expect(page.locator(".hint").first).to_have_text(hint)
    expect(page.locator("#message")).to_have_text(MESSAGE)
    button = page.get_by_role("button", name=copy)
    expect(button).to_be_visible()  # landing.js shows it; without JavaScript the message is plain text
    button.click()
    expect(page.get_by_role("button", name=copied)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == MESSAGE
    page.get_by_role("link", name="Signal", exact=False).first.click()
    page.wait_for_url("https://signal.me/**")
    assert page.url == "https://signal.me/#p/+4915123456789"


def test_telegram_on_a_desktop_offers_its_web_app(visitor: Any, site: tuple[str, dict[str, str]]) -> None:
    base, _ = site
    page = visitor("de-DE")
    page.goto(f"{base}/s/tg")
    expect(page.locator("h1")).to_have_text("Schreiben Sie uns auf Telegram")
    expect(page.get_by_role("button", name="Kopieren")).to_have_count(0)  # Telegram fills the text in itself
    page.get_by_role("link", name="Telegram im Browser nutzen").click()  # through /s/tg?web=1
    page.wait_for_url("https://web.telegram.org/**")
    assert page.url == "https://web.telegram.org/k/#@dolcevita"
    page.goto(f"{base}/s/tg")
    with page.expect_request("https://t.me/**") as app:
        page.get_by_role("link", name="Auf Telegram schreiben").click()
    assert app.value.url == "https://t.me/dolcevita?text=Hallo"


@pytest.mark.parametrize(("locale", "heading", "missing"), [
    ("en-GB", "Chat with Dolce Vita on Viber", "Nothing happened? Viber is probably not installed on this device."),
    ("es-ES", "Escribe a Dolce Vita por Viber", "¿No pasa nada? Seguramente Viber no está instalado"),
])  # fmt: skip
def test_viber_s_page_tries_the_app_and_stays_to_explain(
    visitor: Any, site: tuple[str, dict[str, str]], locale: str, heading: str, missing: str
) -> None:
    base, links = site
    page = visitor(locale)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    asked: list[str] = []  # navigations the page asked for, whether or not an app took them
    cdp = page.context.new_cdp_session(page)
    cdp.on("Page.frameRequestedNavigation", lambda event: asked.append(event["url"]))
    cdp.send("Page.enable")
    page.goto(links["viber"])
    expect(page.locator("h1")).to_have_text(heading)  # no app here: the page is still there, saying why
    expect(page.locator(".missing")).to_contain_text(missing)
    expect(page.locator("a[data-open]")).to_have_attribute("href", "viber://chat?number=%2B380671234567")
    page.wait_for_function("document.readyState === 'complete'")
    for _ in range(50):  # the try follows the load event: bounded wait for the browser's event
        if asked:
            break
        page.wait_for_timeout(100)
    assert asked == ["viber://chat?number=%2B380671234567"] and errors == []
    expect(page.locator("h1")).to_have_text(heading)


def test_the_business_s_other_channels_lead_through_our_links(visitor: Any, site: tuple[str, dict[str, str]]) -> None:
    base, _ = site
    page = visitor("en-US")
    page.goto(f"{base}/s/shop")
    shown = page.locator("h1").inner_text()  # Telegram or Signal, the business's turn
    other = "Signal" if "Telegram" in shown else "Telegram"
    link = page.locator(".others").get_by_role("link", name=f"Chat on {other}")
    assert link.get_attribute("href") == f"{base}/s/shop?ch={other.lower()}"  # never the handle or the number
    link.click()
    expect(page.locator("h1")).to_have_text(f"Chat with Dolce Vita on {other}")
    expect(page.locator("#message")).to_have_text(MESSAGE)
