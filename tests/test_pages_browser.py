"""The pages a customer meets, in their language, in a real browser: Debian's Chromium, driven by
Playwright with a locale (which sets Accept-Language and navigator.languages) and a time zone,
against the real server (uvicorn on 127.0.0.1). The landing page, the 404 and 410 pages and the
widget, each in two languages at least. With CLICKTOCHAT_SCREENSHOTS=docs/img set, the tests
also save the screenshots the README shows (small PNGs: a narrow window, 64 colours)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from clicktochat.agents import WEEKDAYS
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import DESKTOP
from test_widget_browser import seeded_server

SCREENSHOTS = os.environ.get("CLICKTOCHAT_SCREENSHOTS")
SHOP = "Pasticceria Dolce Vita"


class Site:
    def __init__(self, base: str, pages: str, off_day: str) -> None:
        self.base, self.pages, self.off_day = base, pages, off_day


async def seed(db: str, base: str) -> str:
    service = await Service.open(Settings(db=db, base_url=base))
    try:
        shop = await service.add_business(SHOP, "Europe/Rome")
        await service.add_agent(shop.id, "Giulia", "+39 347 123 4567")  # always on
        # Marco works only the day after tomorrow (in Rome): away now, back then at 09:00 Rome time.
        off_day = WEEKDAYS[(datetime.now(ZoneInfo("Europe/Rome")).weekday() + 2) % 7]
        await service.add_agent(shop.id, "Marco", "+39 348 765 4321", hours=f"{off_day} 09:00-12:00")
        await service.create_link(business_id=shop.id, slug="vetrina", text="Ciao! Vorrei ordinare una cassata.")
        await service.create_link(business_id=shop.id, slug="natale", campaign="natale", text="Panettone?")
        await service.update_link("natale", {"disabled": True})  # the season is over
        await service.create_widget(shop.id, "shop", {"allowed_domains": ["localhost"]})
        return off_day
    finally:
        await service.close()


@pytest.fixture(scope="module")
def site(module_db_path: str) -> Iterator[Site]:
    with seeded_server(module_db_path, seed) as (base, pages, off_day):
        yield Site(base, pages, off_day)


@pytest.fixture
def visitor(browser: Browser) -> Iterator[Any]:
    """A desktop visitor with a locale and a time zone: `visitor("it-IT")`."""
    contexts = []

    def start(locale: str, timezone: str = "Europe/Rome") -> Page:
        context = browser.new_context(user_agent=DESKTOP, locale=locale, timezone_id=timezone,
                                      viewport={"width": 480, "height": 720})  # fmt: skip
        context.route("https://wa.me/**", lambda route: route.fulfill(status=200, body="chat"))
        contexts.append(context)
        return context.new_page()

    yield start
    for context in contexts:
        context.close()


def shoot(page: Page, name: str) -> None:
    """A small PNG for the README: 64 colours are plenty for these pages."""
    if SCREENSHOTS:
        path = Path(SCREENSHOTS) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        Image.open(path).convert("RGB").quantize(64).save(path, optimize=True)


@pytest.mark.parametrize(
    ("locale", "heading", "button", "scan"),
    [
        ("it-IT", "Scrivi a Pasticceria Dolce Vita su WhatsApp", "Scrivi su WhatsApp", "Sei al telefono?"),
        ("de-DE", "Schreiben Sie Pasticceria Dolce Vita auf WhatsApp", "Auf WhatsApp schreiben", "Am Handy?"),
        ("en-US", "Chat with Pasticceria Dolce Vita on WhatsApp", "Chat on WhatsApp", "On your phone?"),
    ],
)
def test_the_landing_page_in_the_browsers_language(
    visitor: Any, site: Site, locale: str, heading: str, button: str, scan: str
) -> None:
    page = visitor(locale)
    page.goto(f"{site.base}/s/vetrina")
    assert page.evaluate("document.documentElement.lang") == locale[:2]
    assert page.title() == heading
    expect(page.locator("h1")).to_have_text(heading)
    expect(page.locator(".bubble")).to_have_text("Ciao! Vorrei ordinare una cassata.")  # the owner's words
    expect(page.locator(".phone p")).to_contain_text(scan)
    shoot(page, f"page-landing-{locale[:2]}")
    with page.expect_request("https://wa.me/**") as chat:
        page.get_by_role("link", name=button).click()
    assert chat.value.url.startswith("https://wa.me/39347")


@pytest.mark.parametrize(
    ("locale", "title", "detail"),
    [
        ("es-ES", "No encontrado", "Aquí no hay ningún enlace de chat."),
        ("fr-FR", "Introuvable", "Il n'y a pas de lien de discussion ici."),
    ],
)
def test_the_404_page_in_the_browsers_language(visitor: Any, site: Site, locale: str, title: str, detail: str) -> None:
    page = visitor(locale)
    response = page.goto(f"{site.base}/s/no-such-link")
    assert response is not None and response.status == 404
    assert page.evaluate("document.documentElement.lang") == locale[:2]
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator(".lead")).to_contain_text(detail)
    shoot(page, f"page-404-{locale[:2]}")


@pytest.mark.parametrize(
    ("locale", "title", "button", "continues"),
    [
        ("it-IT", "Questo link non funziona più", "Scrivi a Pasticceria Dolce Vita", "Scrivi su WhatsApp"),
        ("pt-BR", "Este link não funciona mais", "Escrever para Pasticceria Dolce Vita", "Conversar no WhatsApp"),
    ],
)
def test_the_410_page_offers_the_business_in_the_browsers_language(
    visitor: Any, site: Site, locale: str, title: str, button: str, continues: str
) -> None:
    page = visitor(locale)
    response = page.goto(f"{site.base}/s/natale")
    assert response is not None and response.status == 410
    assert page.evaluate("document.documentElement.lang") == locale[:2]
    expect(page.locator("h1")).to_have_text(title)
    assert "Panettone" not in page.content()  # nothing of the turned-off link itself
    shoot(page, f"page-410-{locale[:2]}")
    page.get_by_role("link", name=button).click()  # the business's general link, in the same language
    page.wait_for_url(f"{site.base}/s/vetrina")
    expect(page.get_by_role("link", name=continues)).to_be_visible()


def widget_agents(page: Page, site: Site) -> list[str]:
    page.goto(f"{site.pages}/products/cassata?w=shop&lang=und")  # a page of no set language: the browser's
    launcher = page.locator("clicktochat-widget .launcher")
    launcher.click()
    agents = page.locator("clicktochat-widget .agent")
    expect(agents).to_have_count(2)
    return agents.all_inner_texts()


@pytest.mark.parametrize(
    ("locale", "back", "yours", "days"),
    [
        ("en-GB", "Back", "(your time)", ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")),
        ("it-IT", "Torna", "(tuo orario)", ("lun", "mar", "mer", "gio", "ven", "sab", "dom")),
    ],
)
def test_the_widget_speaks_the_browsers_language_and_says_whose_time_it_is(
    visitor: Any, site: Site, locale: str, back: str, yours: str, days: tuple[str, ...]
) -> None:
    day = days[WEEKDAYS.index(site.off_day)]
    # In London, an hour behind Rome: Marco is back at 08:00 the visitor's time, and it says so.
    london = visitor(locale, "Europe/London")
    giulia, marco = widget_agents(london, site)
    assert giulia.split("\n") == ["Giulia", "Online"]
    assert marco.split("\n") == ["Marco", f"{back} {day} 08:00 {yours}"]
    shoot(london, f"widget-back-{locale[:2]}")
    # In Berlin the clock reads as in Rome: nothing to say.
    berlin = visitor(locale, "Europe/Berlin")
    assert widget_agents(berlin, site)[1].split("\n") == ["Marco", f"{back} {day} 09:00"]
