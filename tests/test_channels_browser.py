"""The widget's channel picker in a real browser (issue 14): Debian's Chromium on a phone-sized
page (an iPhone's user agent, 390x844) embedding the widget of a business whose agents offer
all ten channels, against the real server (uvicorn on 127.0.0.1). For each channel the test
picks it, taps an agent, and reads the 302 our click route answers: custom schemes (sms:,
tel:, mailto:, viber:) never load, so the click request is fetched by the test and the
navigation stopped there (a 204)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route

from clicktochat.channels import CHANNELS, deep_link
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.widget import WORDS, fill_message
from conftest import DESKTOP, IPHONE, read_qr
from test_widget_browser import seeded_server

# Each channel's address, as typed, and the agent who has it: Giulia five, Marco the other five.
GIULIA = {"whatsapp": "+39 347 123 4567", "telegram": "@giulia_dv", "signal": "+49 1512 3456789",
          "sms": "+39 347 765 4321", "email": "giulia@dolcevita.example"}  # fmt: skip
MARCO = {"messenger": "dolcevita.roma", "instagram": "@dolcevita", "viber": "+380 67 123 4567",
         "line": "@dolcevita", "call": "+39 06 1234 5678"}  # fmt: skip
STORAGE_KEY = "clicktochat:apps:channel"


async def seed(db: str, base: str) -> dict[str, str]:
    """The business, its two agents and the widget; the canonical address of each channel."""
    service = await Service.open(Settings(db=db, base_url=base))
    try:
        shop = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
        addresses: dict[str, str] = {}
        for name, channels in (("Giulia", GIULIA), ("Marco", MARCO)):
            made = await service.add_agent(shop.id, name, channels=[
                {"channel": channel, "address": address} for channel, address in channels.items()])  # fmt: skip
            addresses |= dict(made.channels)
        await service.create_widget(shop.id, "apps", {"allowed_domains": ["localhost"]})
        return addresses
    finally:
        await service.close()


class Shop:
    def __init__(self, base: str, pages: str, addresses: dict[str, str]) -> None:
        self.base, self.pages, self.addresses = base, pages, addresses


@pytest.fixture(scope="module")
def shop(module_db_path: str) -> Iterator[Shop]:
    with seeded_server(module_db_path, seed) as (base, pages, addresses):
        yield Shop(base, pages, addresses)


class Phone:
    """An iPhone-sized visitor. Every click through our widget route is fetched here (without
    following the redirect), recorded, and answered 204 so the page stays where it is."""

    def __init__(self, browser: Browser, shop: Shop) -> None:
        self.shop = shop
        self.clicks: list[tuple[str, int, str, str]] = []  # (request URL, status, Location, body)
        self.seen: list[str] = []
        self.context = browser.new_context(
            user_agent=IPHONE, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
            device_scale_factor=3, locale="en-GB", timezone_id="Europe/Rome",
        )  # fmt: skip
        self.context.on("response", lambda response: self.seen.append(response.url))
        self.context.route(f"{shop.base}/w/**", self._click)
        self.page: Page = self.context.new_page()

    def _click(self, route: Route) -> None:
        answer = route.fetch(max_redirects=0)
        self.clicks.append((route.request.url, answer.status, answer.headers.get("location", ""), answer.text()))
        route.fulfill(status=204, body="")

    def open(self) -> Page:
        self.page.goto(f"{self.shop.pages}/products/cassata?w=apps")
        self.page.locator("clicktochat-widget").locator(".launcher").click()
        return self.page

    def shadow(self, selector: str) -> Any:
        return self.page.locator("clicktochat-widget").locator(selector)


@pytest.fixture
def phone(browser: Browser, shop: Shop) -> Iterator[Phone]:
    visitor = Phone(browser, shop)
    yield visitor
    assert visitor.context.cookies() == [], "the widget sets no cookie"
    visitor.context.close()


def expected(name: str, address: str, click_url: str) -> set[str]:
    """The chat URL a click on `click_url` must lead to: the message is the widget's default,
    filled with the page the click names (the iPhone's form where a channel has one)."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(click_url).query).items()}
    text = fill_message(WORDS["en"]["message"], query["u"], query["t"])
    return {deep_link(name, address, text), deep_link(name, address, text, ios=True)}


def test_each_of_the_ten_channels_is_picked_and_reached_and_the_choice_is_kept_in_the_tab(
    phone: Phone, shop: Shop
) -> None:
    page = phone.open()
    picker = phone.shadow('[role="group"]')
    assert picker.get_attribute("aria-label") == "Choose an app"
    labels = phone.shadow(".channel").all_inner_texts()
    assert labels == [CHANNELS[name].label for name in (*GIULIA, *MARCO)]  # the business's ten, in order
    assert phone.shadow('.channel[aria-pressed="true"]').inner_text() == "WhatsApp"  # the first, preselected
    # Names and labels only: no number or handle in anything the page loaded.
    source = page.content() + page.evaluate("JSON.stringify(performance.getEntries().map((e) => e.name))")
    config = page.request.get(f"{shop.base}/api/widget/apps", headers={"origin": shop.pages}).text()
    for address in shop.addresses.values():
        assert address not in source and address not in config, address

    for number, (name, address) in enumerate(shop.addresses.items()):
        label = CHANNELS[name].label
        phone.shadow(".channel").filter(has_text=label).first.click()
        assert phone.shadow('.channel[aria-pressed="true"]').all_inner_texts() == [label]
        agents = phone.shadow(".agent:visible").all_inner_texts()
        assert [a.split("\n")[0] for a in agents] == (["Giulia"] if name in GIULIA else ["Marco"])  # who is on it
        with page.expect_response(lambda r: r.url.startswith(f"{shop.base}/w/")):
            phone.shadow(".agent:visible").first.click()
        assert len(phone.clicks) == number + 1
        url, status, location, body = phone.clicks[-1]
        assert parse_qs(urlsplit(url).query)["ch"] == [name]
        if status == 200:  # a channel that gets a page first (Viber): the page opens the app
            assert CHANNELS[name].page_first and any(chat.replace("&", "&amp;") in body
                                                     for chat in expected(name, address, url))  # fmt: skip
        else:
            assert status == 302 and location in expected(name, address, url), (name, location)
        assert page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") == name  # remembered in the tab
        assert page.evaluate("document.cookie") == ""
        if phone.shadow('[role="dialog"]').is_hidden():
            phone.shadow(".launcher").click()

    # The next page in the same tab preselects the last choice, and shows only its agents.
    phone.open()
    assert phone.shadow('.channel[aria-pressed="true"]').inner_text() == "Phone call"
    assert [a.split("\n")[0] for a in phone.shadow(".agent:visible").all_inner_texts()] == ["Marco"]
    outside = [u for u in phone.seen if not u.startswith((shop.base, shop.pages, "data:"))]
    assert outside == [], "nothing leaves our origin and the page's"


def test_the_picker_works_from_the_keyboard_and_a_new_tab_starts_afresh(phone: Phone, shop: Shop) -> None:
    page = phone.open()
    active = "document.activeElement.shadowRoot.activeElement"
    assert page.evaluate(f"{active}.className") == "channel"  # focus moves to the app picked
    assert page.evaluate(f"{active}.textContent") == "WhatsApp"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # a real <button>: Enter and Space press it
    assert phone.shadow('.channel[aria-pressed="true"]').inner_text() == "Telegram"
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    assert phone.shadow('.channel[aria-pressed="true"]').inner_text() == "Signal"
    assert page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") == "signal"
    other = phone.context.new_page()  # sessionStorage is per tab: a new tab starts from the first
    other.goto(f"{shop.pages}/products/cassata?w=apps")
    other.locator("clicktochat-widget").locator(".launcher").click()
    assert other.locator("clicktochat-widget").locator('.channel[aria-pressed="true"]').inner_text() == "WhatsApp"


def test_on_a_desktop_the_code_and_the_browser_link_carry_the_channel_picked(browser: Browser, shop: Shop) -> None:
    context = browser.new_context(user_agent=DESKTOP, locale="en-GB", timezone_id="Europe/Rome")
    try:
        page = context.new_page()
        page.goto(f"{shop.pages}/products/cassata?w=apps")
        widget = page.locator("clicktochat-widget")
        widget.locator(".launcher").click()
        widget.locator(".channel").filter(has_text="Telegram").click()
        widget.locator(".agent:visible").first.click()
        web = widget.locator(".web")
        assert web.inner_text() == "Open in the browser"  # Telegram's web app, not "WhatsApp Web"
        assert parse_qs(urlsplit(web.get_attribute("href") or "").query)["ch"] == ["telegram"]
        assert widget.locator('[role="group"]').is_hidden()  # no other choice while the code shows
        code = widget.locator(".handoff img").get_attribute("src") or ""
        scanned = read_qr(page.request.get(code.replace(".svg?", ".png?")).body())
        assert scanned.startswith(f"{shop.base}/w/apps/") and parse_qs(urlsplit(scanned).query)["ch"] == ["telegram"]
        widget.locator(".handoff .link").click()  # back: the picker and the list again, the choice kept
        assert widget.locator('.channel[aria-pressed="true"]').inner_text() == "Telegram"
        widget.locator(".channel").filter(has_text="WhatsApp").click()
        widget.locator(".agent:visible").first.click()
        assert widget.locator(".web").inner_text() == "Open WhatsApp Web"
        assert context.cookies() == []
    finally:
        context.close()
