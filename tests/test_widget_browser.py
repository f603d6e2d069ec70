"""The widget in a real browser: Debian's Chromium, driven by Playwright, against the real
server (uvicorn on 127.0.0.1) and the page in examples/ served from another origin
(localhost) under a strict Content-Security-Policy. Nothing leaves the machine: chats on
wa.me and web.whatsapp.com are intercepted, and every request is checked."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect

from clicktochat.agents import WEEKDAYS
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import ANDROID, DESKTOP, read_qr
from test_e2e import free_port, server

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HOSTILE_CSS = "* { all: unset !important; } div { display: none !important; } button { display: none !important; }"
XSS = '<img src=x onerror="window.pwned=1">'


class Site:
    """What the tests share: our server, the page server, and the ids of what was made."""

    def __init__(self, base: str, pages: str, ids: dict[str, Any], off_day: str) -> None:
        self.base, self.pages, self.ids, self.off_day = base, pages, ids, off_day


async def seed(db: str, base: str) -> dict[str, Any]:
    service = await Service.open(Settings(db=db, base_url=base))
    try:
        shop = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
        giulia = await service.add_agent(shop.id, "Giulia", "+39 347 123 4567")  # always on
        # Marco works only the day after tomorrow: away now, back then at 09:00.
        off_day = WEEKDAYS[(datetime.now(ZoneInfo("Europe/Rome")).weekday() + 2) % 7]
        marco = await service.add_agent(shop.id, "Marco", "+39 348 765 4321", hours=f"{off_day} 09:00-12:00")
        await service.create_widget(shop.id, "shop", {"allowed_domains": ["localhost"]})
        await service.create_widget(shop.id, "rules", {"show_on": ["/products/*"], "delay": 1, "scroll": 50})
        await service.create_widget(shop.id, "nowhere", {"allowed_domains": ["dolcevita.example"]})
        await service.create_widget(shop.id, "spa", {"show_on": ["/products/*"], "hide_on": ["/products/secret"]})
        await service.create_widget(
            shop.id, "bubble", {"bubble": True, "bubble_delay": 0, "label": "Chat", "position": "left"}
        )
        night = await service.add_business(XSS, "Europe/Rome")
        await service.add_agent(night.id, XSS, "+39 347 123 4567", hours=f"{off_day} 09:00-12:00")
        await service.create_widget(night.id, "xss", {"greeting": XSS, "label": XSS})
        await service.create_widget(night.id, "closed", {"hide_offline": True})
        return {"giulia": giulia.id, "marco": marco.id, "off_day": off_day}
    finally:
        await service.close()


def page_server(base: str) -> tuple[ThreadingHTTPServer, str]:
    """examples/widget.html from another origin, pointed at our server; the query picks
    the widget (w), the page's language (lang), data-locale, hostile CSS and a tall page."""
    html = (EXAMPLES / "widget.html").read_text().replace("http://127.0.0.1:8000", base)
    csp = (f"default-src 'self'; script-src {base}; connect-src {base}; img-src 'self' {base}; style-src 'self'; "
           "frame-ancestors 'none'")  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path.endswith(".css"):
                css = HOSTILE_CSS if url.path == "/hostile.css" else (EXAMPLES / "page.css").read_text()
                body, kind = css, "text/css"
            else:
                body, kind = html.replace('data-widget="demo"', f'data-widget="{query.get("w", "shop")}"'), "text/html"
                body = body.replace('<html lang="en">', f'<html lang="{query.get("lang", "en")}">')
                if "locale" in query:
                    body = body.replace("data-widget=", f'data-locale="{query["locale"]}" data-widget=')
                if "hostile" in query:
                    body = body.replace("</head>", '<link rel="stylesheet" href="/hostile.css"></head>')
                if "tall" in query:
                    body = body.replace("</main>", '<p class="tall">…</p></main>')
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            if "referrer" in query:  # a page that tells every site it links to its whole address
                self.send_header("Referrer-Policy", query["referrer"])
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://localhost:{httpd.server_address[1]}"


T = TypeVar("T")


@contextmanager
def seeded_server(db: str, seed: Callable[[str, str], Coroutine[Any, Any, T]]) -> Iterator[tuple[str, str, T]]:
    """`clicktochat serve` on a free port over `db`, after `seed(db, base)`, and the page server beside it:
    (the server's base URL, the pages' base URL, what `seed` returned)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ThreadPoolExecutor(1) as thread:  # Playwright's loop may already run in this one
        seeded = thread.submit(asyncio.run, seed(db, base)).result()
    httpd, pages = page_server(base)
    try:
        with server(db, port, "--base-url", base):
            yield base, pages, seeded
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def site(module_db_path: str) -> Iterator[Site]:
    with seeded_server(module_db_path, seed) as (base, pages, ids):
        yield Site(base, pages, ids, ids["off_day"])


class Visit:
    """One visitor: a browser context that records every request and answers the chats."""

    def __init__(self, browser: Browser, site: Site, **options: Any) -> None:
        self.site = site
        self.requests: list[str] = []
        self.chats: list[str] = []
        self.context: BrowserContext = browser.new_context(
            user_agent=options.pop("user_agent", DESKTOP), timezone_id="Europe/Rome",
            locale=options.pop("locale", "en-GB"), **options
        )
        self.context.on("request", lambda request: self.requests.append(request.url))
        for messenger in ("https://wa.me/**", "https://web.whatsapp.com/**"):
            self.context.route(messenger, self._chat)
        # Registered before any page script: records CSP violations and layout shifts.
        self.context.add_init_script("""
            window.__violations = []; window.__shifts = 0; window.__events = [];
            document.addEventListener("securitypolicyviolation", (e) => __violations.push(e.violatedDirective));
            new PerformanceObserver((list) => {  // as CLS counts them: not right after an input
                for (const e of list.getEntries()) if (!e.hadRecentInput) __shifts += e.value;
            }).observe({ type: "layout-shift", buffered: true });
            for (const name of ["open", "close", "click"])
                document.addEventListener("clicktochat:" + name, (e) => __events.push([name, e.detail]));
        """)
        self.page: Page = self.context.new_page()

    def _chat(self, route: Route, request: Request) -> None:
        self.chats.append(request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>chat</title>")

    def open(self, path: str = "/products/cassata", **query: str) -> Page:
        search = "&".join(f"{k}={v}" for k, v in query.items())
        self.page.goto(f"{self.site.pages}{path}?{search}")
        return self.page

    def shadow(self, selector: str) -> Any:
        return self.page.locator("clicktochat-widget").locator(selector)

    def close(self) -> None:
        assert self.context.cookies() == [], "the widget must set no cookies"
        outside = [url for url in self.requests if not url.startswith((self.site.base, self.site.pages, "data:"))
                   and not url.startswith(("https://wa.me/", "https://web.whatsapp.com/"))]  # fmt: skip
        assert outside == [], "no request may leave our origin and the page's"
        assert self.page.evaluate("window.__violations") == [], "the widget must work under a strict CSP"
        self.context.close()


@pytest.fixture
def visit(browser: Browser, site: Site) -> Iterator[Any]:
    visits: list[Visit] = []

    def start(**options: Any) -> Visit:
        visits.append(Visit(browser, site, **options))
        return visits[-1]

    yield start
    for one in visits:
        one.close()


def test_the_button_appears_and_the_panel_opens_by_mouse_and_by_keyboard(visit: Any) -> None:
    v = visit()
    page = v.open(w="shop")
    launcher = v.shadow(".launcher")
    launcher.wait_for()
    ours = [urlsplit(url).path for url in v.requests if url.startswith(v.site.base)]
    assert ours == ["/widget.js", "/api/widget/shop"]  # one request after the script: its configuration
    assert launcher.get_attribute("aria-label") == "Chat with us"
    assert launcher.get_attribute("aria-expanded") == "false"
    box = launcher.bounding_box()
    viewport = page.viewport_size
    assert box and viewport and box["width"] >= 56 and box["height"] >= 56  # a target easy to hit
    assert abs(viewport["width"] - (box["x"] + box["width"]) - 20) < 1  # 20 px from the right
    assert abs(viewport["height"] - (box["y"] + box["height"]) - 20) < 1  # and from the bottom
    assert abs(viewport["height"] - (box["y"] + box["height"]) - 20) < 1  # and from the bottom
    launcher.click()
    panel = v.shadow('[role="dialog"]')
    assert panel.is_visible() and launcher.get_attribute("aria-expanded") == "true"
    assert panel.get_attribute("aria-labelledby") == "t" and v.shadow("#t").inner_text() == "Pasticceria Dolce Vita"
    agents = v.shadow(".agent").all_inner_texts()
    assert agents[0].split("\n") == ["Giulia", "Online"]
    assert agents[1].startswith("Marco\nBack ") and "09:00" in agents[1]
    v.shadow(".x").click()
    assert not panel.is_visible()

    # Keyboard only: Tab reaches the button, Enter opens, focus moves in, Escape closes and returns.
    page.locator("body").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.localName") == "clicktochat-widget":
            break
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "launcher"
    page.keyboard.press("Enter")
    assert panel.is_visible()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "agent"
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "launcher"
    assert [name for name, _ in page.evaluate("window.__events")] == ["open", "close", "open", "close"]
    assert page.evaluate("window.__shifts") == 0  # the page never moved


def test_a_phone_click_opens_the_chat_with_the_page_filled_in(visit: Any, site: Site) -> None:
    v = visit(user_agent=ANDROID, is_mobile=True, has_touch=True, viewport={"width": 390, "height": 800})
    page = v.open(w="shop")
    v.shadow(".launcher").click()
    with page.expect_request("https://wa.me/**"):
        v.shadow(".agent").first.click()
    page.wait_for_url("https://wa.me/**")  # same tab on phones
    (chat,) = v.chats
    url = urlsplit(chat)
    assert (url.netloc, url.path) == ("wa.me", "/393471234567")
    assert parse_qs(url.query)["text"] == [
        f"Hello! I have a question about Cassata siciliana – Pasticceria Dolce Vita {site.pages}/products/cassata"
    ]
    through = [i for i, u in enumerate(v.requests) if u.startswith(f"{site.base}/w/shop/{site.ids['giulia']}?")]
    assert len(through) == 1  # counted by our link, and the number was in nothing the page loaded
    assert "393471234567" not in "".join(v.requests[: through[0] + 1])


def test_on_a_desktop_a_qr_code_carries_the_chat_to_the_phone_or_whatsapp_web_opens(visit: Any, site: Site) -> None:
    v = visit()
    page = v.open(w="shop")
    v.shadow(".launcher").click()
    v.shadow(".agent").first.click()
    code = v.shadow(".handoff img")
    code.wait_for()
    # Not page.wait_for_function: it evaluates its string with eval, which the page's CSP forbids.
    expect(code).to_have_js_property("complete", True)
    scanned = read_qr(code.screenshot())
    assert scanned.startswith(f"{site.base}/w/shop/{site.ids['giulia']}?via=qr&u=")
    assert "products%2Fcassata" in scanned
    (name, detail), = [e for e in page.evaluate("window.__events") if e[0] == "click"]
    assert (detail["widget"], detail["agent"], detail["channel"]) == ("shop", "Giulia", "whatsapp")
    web = v.shadow(".web")
    assert web.get_attribute("target") == "_blank" and web.evaluate("(a) => a.getRootNode().activeElement === a")
    with v.context.expect_page() as opened:
        web.click()
    opened.value.wait_for_url("https://web.whatsapp.com/**")
    assert v.chats[-1].startswith("https://web.whatsapp.com/send?phone=393471234567&text=Hello")
    v.shadow(".link").click()  # back to the list, focus on the agent again
    assert v.shadow(".agents").is_visible()


def test_hostile_page_css_cannot_hide_or_break_it(visit: Any) -> None:
    v = visit()
    v.open(w="shop", hostile="1")
    launcher = v.shadow(".launcher")
    launcher.wait_for()
    assert launcher.is_visible()
    box = launcher.bounding_box()
    assert box and box["width"] >= 56 and box["height"] >= 56
    assert v.page.evaluate("getComputedStyle(document.querySelector('clicktochat-widget')).position") == "fixed"
    launcher.click()
    assert v.shadow('[role="dialog"]').is_visible() and v.shadow(".agent").first.is_visible()


def test_hostile_names_and_greetings_show_as_text(visit: Any) -> None:
    v = visit()
    v.open(w="xss")
    v.shadow(".launcher").click()
    assert v.shadow(".greeting").inner_text() == XSS
    assert v.shadow("#t").inner_text() == XSS and v.shadow(".who").inner_text() == XSS
    assert v.shadow(".launcher span").inner_text() == XSS
    images = "document.querySelector('clicktochat-widget').shadowRoot.querySelectorAll('img').length"
    assert v.page.evaluate(images) == 0
    assert v.page.evaluate("window.pwned") is None


def shown_within(v: Visit, milliseconds: int) -> bool:
    """Whether the button shows while the page's (installed, paused) clock moves on by at most
    `milliseconds`, one at a time: each step is also a turn for the browser to run what came."""
    for _ in range(milliseconds):
        if v.page.locator("clicktochat-widget").count():
            return True
        v.page.clock.run_for(1)
    return bool(v.page.locator("clicktochat-widget").count())


def test_display_rules_paths_delay_and_scroll(visit: Any) -> None:
    """The rules' widget: /products/* only, after 1 s, once half the page is scrolled. Time is
    the page's clock, moved by the test, never slept."""
    v = visit()
    v.page.clock.install()
    with v.page.expect_response(lambda r: "/api/widget/rules" in r.url):
        v.open("/about", w="rules", tall="1")
    v.page.clock.pause_at(v.page.evaluate("Date.now()") + 10)
    v.page.mouse.wheel(0, 5000)
    assert not shown_within(v, 1500)  # not a /products/* page

    v = visit()
    v.page.clock.install()
    with v.page.expect_response(lambda r: "/api/widget/rules" in r.url):
        v.open("/products/cassata", w="rules", tall="1")
    v.page.clock.pause_at(v.page.evaluate("Date.now()") + 10)
    v.page.clock.run_for(1500)  # past the delay, but not scrolled
    assert v.page.locator("clicktochat-widget").count() == 0
    v.page.mouse.wheel(0, 2500)
    assert shown_within(v, 500)


def test_the_delay_counts_from_the_pages_load_not_from_when_the_configuration_came(visit: Any) -> None:
    """A configuration that comes late (a slow network) does not add to the delay (found by a
    review: a 1 s delay became 1 s after the answer)."""
    v = visit()
    held: list[Route] = []
    v.page.route(re.compile(r"/api/widget/rules\b"), lambda route: held.append(route))  # held back while the clock runs
    v.page.clock.install()
    v.open("/products/cassata", w="rules", tall="1")
    v.page.clock.pause_at(v.page.evaluate("Date.now()") + 10)
    v.page.mouse.wheel(0, 2500)  # scrolled
    for _ in range(5000):  # the browser asks for it once its script runs: a bounded wait for that event
        if held:
            break
        v.page.clock.run_for(1)
    v.page.clock.run_for(1500)  # the delay has passed since the page's load
    held[0].continue_()
    assert shown_within(v, 500)  # at once, not a whole delay after the answer came


def test_hide_when_nobody_is_available(visit: Any) -> None:
    v = visit()
    with v.page.expect_response(lambda r: "/api/widget/closed" in r.url) as response:
        v.open(w="closed")
    assert response.value.json()["open"] is False
    v.page.wait_for_timeout(300)
    assert v.page.locator("clicktochat-widget").count() == 0


def test_the_greeting_bubble_shows_once_per_visit(visit: Any) -> None:
    v = visit()
    v.open(w="bubble")
    bubble = v.shadow(".bubble")
    bubble.wait_for()
    assert bubble.inner_text() == "Hi! How can we help you?"
    assert v.shadow(".launcher").inner_text() == "Chat"  # a label instead of the aria-label
    box = v.shadow(".launcher").bounding_box()
    assert box and abs(box["x"] - 20) < 1  # on the left
    bubble.click()
    assert v.shadow('[role="dialog"]').is_visible() and not bubble.is_visible()
    v.open(w="bubble")
    v.shadow(".launcher").wait_for()
    v.page.wait_for_timeout(300)
    assert not v.shadow(".bubble").is_visible()  # the same visit: not again


def test_language_follows_the_page_and_data_locale_and_arabic_is_right_to_left(visit: Any, site: Site) -> None:
    v = visit()
    v.open(w="shop", lang="it")
    v.shadow(".launcher").click()
    assert v.shadow(".launcher").get_attribute("aria-label") == "Scrivici"
    assert v.shadow(".greeting").inner_text() == "Ciao! Come possiamo aiutarti?"
    marco = v.shadow(".agent").nth(1).inner_text()
    italian_day = ("lun", "mar", "mer", "gio", "ven", "sab", "dom")[WEEKDAYS.index(site.off_day)]
    assert f"Torna {italian_day} 09:00" in marco
    v.open(w="shop", lang="it", locale="de")
    assert v.shadow(".launcher").get_attribute("aria-label") == "Schreib uns"
    v.open(w="shop", lang="ar")
    assert v.shadow(".panel").get_attribute("dir") == "rtl"
    v.shadow(".launcher").click()
    assert v.shadow(".x").get_attribute("aria-label") == "إغلاق"
    header, close = v.shadow(".head h2").bounding_box(), v.shadow(".x").bounding_box()
    assert header and close and close["x"] < header["x"]  # right to left: the close button on the left


def test_a_site_that_is_not_allowed_shows_nothing(visit: Any) -> None:
    v = visit()
    messages: list[str] = []
    v.page.on("console", lambda message: messages.append(message.text))
    with v.page.expect_response(lambda r: "/api/widget/nowhere" in r.url) as response:
        v.open(w="nowhere")
    assert response.value.status == 403
    v.page.wait_for_timeout(300)
    assert v.page.locator("clicktochat-widget").count() == 0
    assert any("not allowed on localhost" in message for message in messages)


def test_the_js_api_opens_and_closes_and_is_the_only_global(visit: Any) -> None:
    v = visit()
    page = v.open(w="shop")
    v.shadow(".launcher").wait_for()
    added = page.evaluate("""() => {
        const frame = document.createElement("iframe"); document.body.append(frame);
        const clean = new Set(Object.getOwnPropertyNames(frame.contentWindow)); frame.remove();
        return Object.getOwnPropertyNames(window).filter((k) => !clean.has(k) && !k.startsWith("__"));
    }""")
    assert added == ["ClickToChat"]
    page.evaluate("ClickToChat.open()")
    assert v.shadow('[role="dialog"]').is_visible()
    page.evaluate("ClickToChat.close()")
    assert not v.shadow('[role="dialog"]').is_visible()
    marks = page.evaluate("performance.getEntriesByType('mark').map((m) => m.name)")
    assert {"clicktochat:start", "clicktochat:painted"} <= set(marks)


def test_reduced_motion_and_dark_mode_are_respected(visit: Any) -> None:
    v = visit(reduced_motion="reduce", color_scheme="dark")
    v.open(w="shop")
    v.shadow(".launcher").click()
    panel = v.shadow(".panel")
    assert panel.evaluate("(p) => getComputedStyle(p).animationName") == "none"
    assert panel.evaluate("(p) => getComputedStyle(p).backgroundColor") == "rgb(31, 36, 40)"
    light = visit(reduced_motion="no-preference", color_scheme="light")
    light.open(w="shop")
    light.shadow(".launcher").click()
    assert light.shadow(".panel").evaluate("(p) => getComputedStyle(p).animationName") == "rise"
    assert light.shadow(".panel").evaluate("(p) => getComputedStyle(p).backgroundColor") == "rgb(255, 255, 255)"


def test_the_display_rules_follow_a_single_page_apps_routes(visit: Any) -> None:
    v = visit()
    page = v.open("/products/cassata", w="spa")
    page.evaluate("() => ClickToChat.open()")  # as soon as the page has loaded: opened once it is drawn
    expect(v.shadow('[role="dialog"]')).to_be_visible()
    launcher = v.shadow(".launcher")
    launcher.click()  # (closes it)
    launcher.click()
    for path, shown in (("/products/secret", False), ("/about", False), ("/products/cannoli", True)):
        page.evaluate("(path) => history.pushState({}, '', path)", path)
        expect(launcher).to_be_visible() if shown else expect(launcher).to_be_hidden()
    assert not v.shadow('[role="dialog"]').is_visible()  # leaving a page closed the panel
    page.go_back()  # popstate
    expect(launcher).to_be_hidden()
    v.open("/about", w="spa")  # first loaded where it is not shown: it comes when the route does
    v.page.evaluate("() => ClickToChat.open()")  # the page's own call, where the rules hide it: nothing
    v.page.evaluate("() => history.pushState({}, '', '/products/cassata')")
    expect(launcher).to_be_visible()
    assert not v.shadow('[role="dialog"]').is_visible()  # not opened later, taking the page's focus (a review's)
    v.page.evaluate("() => history.pushState({}, '', '/products/secret')")
    v.page.evaluate("() => ClickToChat.open()")
    v.page.evaluate("() => history.pushState({}, '', '/products/cannoli')")
    assert not v.shadow('[role="dialog"]').is_visible()
    assert [name for name, _ in v.page.evaluate("window.__events")] == []  # no "open" nobody saw


def test_without_the_navigation_api_the_routes_are_followed_all_the_same(visit: Any) -> None:
    """Browsers without `window.navigation`: the path is looked at each second instead."""
    v = visit()
    v.context.add_init_script("delete window.navigation; delete Window.prototype.navigation")
    page = v.open("/products/cassata", w="spa")
    assert page.evaluate("() => 'navigation' in window") is False
    launcher = v.shadow(".launcher")
    expect(launcher).to_be_visible()
    page.evaluate("() => history.pushState({}, '', '/products/secret')")
    expect(launcher).to_be_hidden()
    page.evaluate("() => history.pushState({}, '', '/products/cannoli')")
    expect(launcher).to_be_visible()


def test_a_page_that_swaps_its_body_keeps_the_widget(visit: Any) -> None:
    """Turbo and similar libraries replace <body> on every navigation."""
    v = visit()
    page = v.open(w="shop")
    v.shadow(".launcher").wait_for()
    page.evaluate("() => document.body.replaceWith(document.createElement('body'))")
    v.shadow(".launcher").click()
    assert v.shadow('[role="dialog"]').is_visible()
    page.evaluate("() => document.querySelector('clicktochat-widget').remove()")  # a framework clearing the page
    expect(v.shadow(".launcher")).to_be_visible()
    # A transformed body (off-canvas menus) does not pin the fixed button to the document's end.
    page.evaluate("() => Object.assign(document.body.style, {transform: 'translateZ(0)', minHeight: '5000px'})")
    box, viewport = v.shadow(".launcher").bounding_box(), page.viewport_size
    assert box and viewport and box["y"] + box["height"] <= viewport["height"]


def test_in_a_right_to_left_language_the_button_keeps_its_corner(visit: Any) -> None:
    v = visit()
    v.open(w="shop", lang="ar")
    launcher = v.shadow(".launcher")
    closed = launcher.bounding_box()
    launcher.click()
    opened, panel = launcher.bounding_box(), v.shadow(".panel").bounding_box()
    assert closed and opened and panel and opened["x"] == closed["x"]
    assert abs((panel["x"] + panel["width"]) - (opened["x"] + opened["width"])) < 1  # right edges aligned
    assert v.shadow(".panel").get_attribute("dir") == "rtl" and v.shadow(".launcher").get_attribute("dir") == "rtl"


def test_the_widget_tells_our_server_only_the_pages_origin(visit: Any, site: Site) -> None:
    """Even on a page whose policy sends its whole address (query and all) to every site."""
    v = visit()
    referers: dict[str, str | None] = {}
    v.context.on("request", lambda r: referers.setdefault(urlsplit(r.url).path, r.headers.get("referer")))
    page = v.open(w="shop", referrer="unsafe-url", order="4711")
    v.shadow(".launcher").click()
    v.shadow(".agent").first.click()
    expect(v.shadow(".handoff img")).to_have_js_property("complete", True)
    with v.context.expect_page():
        v.shadow(".web").click()
    ours = {path: referer for path, referer in referers.items() if path.startswith(("/api/", "/qr/", "/w/"))}
    assert set(ours) == {"/api/widget/shop", f"/qr/w/shop/{site.ids['giulia']}.svg", f"/w/shop/{site.ids['giulia']}"}
    assert set(ours.values()) == {f"{site.pages}/"}, ours
    assert page.evaluate("document.referrer") == ""  # (the page itself was loaded directly)
