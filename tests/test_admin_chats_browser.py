"""The dashboard's WhatsApp pages in Debian's Chromium, against a real server: uvicorn in a
thread on 127.0.0.1, our app on a clock the test moves, Meta's Graph API played by the
stand-in. A customer writes in (a signed webhook), the shop owner answers from the reply box,
the reply reaches the stand-in; a day later the box gives way to the closed-window sentence.

Webhooks are applied and the outbox is sent by the test (`run_once()` on the server's loop),
never by waiting. With CLICKTOCHAT_SCREENSHOTS=docs/img set, the light screenshots the README
shows are saved too."""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from clicktochat.accounts import create_admin
from clicktochat.app import create_app
from clicktochat.graph_standin import GraphStandIn
from clicktochat.payloads import post_signed, referral
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.simulate import Customer
from conftest import NUMBER, VERIFY_TOKEN, Clock, free_port

PASSWORD = "correct horse battery"
SCREENSHOTS = os.environ.get("CLICKTOCHAT_SCREENSHOTS")


class Live:
    """Our app served by uvicorn on its own event loop, in a thread."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.base = settings.base_url
        self.app = create_app(settings, clock, background=False)
        port = int(self.base.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> Live:
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:  # start-up of a real server: bounded, not a timing assumption
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.loop.close()

    @property
    def service(self) -> Service:
        return self.app.state.service  # type: ignore[no-any-return]

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Await on the server's loop (the store's connections and the Graph client live there)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def customer(self, standin: GraphStandIn, clock: Clock, wa_id: str, name: str) -> Customer:
        return Customer(f"{self.base}/webhooks/whatsapp", NUMBER, wa_id, f"IT.{wa_id[-6:]}", name, standin,
                        clock=clock)  # fmt: skip

    def writes(self, customer: Customer, text: str, **extra: Any) -> None:
        assert self.run(customer.send_text(text, **extra)).status_code == 200
        assert self.run(self.service.whatsapp.processor.run_once()) == 1


@pytest.fixture
def live(db_path: str, standin: GraphStandIn, clock: Clock) -> Iterator[Live]:
    """A shop with a connected number and an admin, Ana; the server's time is `clock`."""
    settings = Settings(db=db_path, base_url=f"http://127.0.0.1:{free_port()}",
                        flush_interval=0.05, graph_url=standin.url)  # type: ignore[attr-defined]  # fmt: skip
    with Live(settings, clock) as site:
        service = site.service
        business = site.run(service.add_business("Pasticceria Dolce Vita", "Europe/Rome"))
        site.run(service.whatsapp.connect(business.id, NUMBER.phone_number_id, NUMBER.waba_id, NUMBER.access_token,
                                          NUMBER.app_secret, VERIFY_TOKEN))  # fmt: skip
        site.run(create_admin(service.store, "ana", PASSWORD))
        yield site


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def sign_in(page: Page, live: Live, path: str = "/admin/") -> None:
    page.goto(f"{live.base}/admin/login?next={path}")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def overflow(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def test_answer_a_customer_from_the_reply_box_until_the_window_closes(
    browser: Browser, live: Live, standin: GraphStandIn, clock: Clock
) -> None:
    ad = referral(source_url="https://fb.me/2Xk9", source_id="120210", headline="Sacher a domicilio",
                  body="Ordina ora", ctwa_clid="ARAkLkA8")  # fmt: skip
    live.writes(live.customer(standin, clock, "393470000001", "Marco"), "Fate consegne a Milano?", referral=ad)
    clock.move(20 * 3600)
    live.writes(live.customer(standin, clock, "393470000002", "Lucia"), "STOP")
    clock.move(5 * 3600)  # Marco's window has closed; Lucia's is open, but she opted out
    giulia = live.customer(standin, clock, "393471234567", "Giulia")
    live.writes(giulia, "Buongiorno, avete la torta Sacher per sabato?")

    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.add_init_script("""
        window.__violations = [];
        document.addEventListener("securitypolicyviolation", (e) => __violations.push(e.violatedDirective));
    """)
    page = context.new_page()
    page.clock.install(time=datetime(2025, 1, 1, tzinfo=UTC))  # the browser's time is not the server's
    sign_in(page, live)
    page.get_by_role("navigation").get_by_role("link", name="Conversations").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    rows = page.locator("table.conversations tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Giulia")
    expect(rows.nth(0).locator(".countdown")).to_have_text("closes in 24 h 0 min")
    expect(rows.nth(1)).to_contain_text("opted out")
    expect(rows.nth(1)).to_contain_text("may not send")  # not a countdown: nothing may be sent to Lucia
    expect(rows.nth(2)).to_contain_text("window closed")
    expect(rows.nth(2)).to_contain_text("ad: Sacher a domicilio")
    page.clock.run_for(60_000)  # admin.js counts down from the server's time, not the browser's
    expect(rows.nth(0).locator(".countdown")).to_have_text("closes in 23 h 59 min")
    shoot(page, "dashboard-conversations")

    rows.nth(0).get_by_role("link", name="Giulia").click()
    expect(page.get_by_role("heading", name=re.compile("^Giulia"))).to_be_visible()
    expect(page.locator(".about")).to_contain_text("May send: text")
    page.get_by_label("Message").fill("Buongiorno Giulia! Sì, la Sacher per sabato si può ordinare fino a giovedì.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".flash")).to_have_text(re.compile("Your reply is queued"))
    expect(page.locator(".msg.out .status")).to_have_text("queued")

    assert live.run(live.service.whatsapp.sender.run_once()) == 1
    (sent,) = standin.sent
    assert sent.body["to"] == "393471234567"
    assert sent.body["text"]["body"] == "Buongiorno Giulia! Sì, la Sacher per sabato si può ordinare fino a giovedì."
    delivered = standin.status_body(sent.wamid, "delivered")
    assert live.run(post_signed(f"{live.base}/webhooks/whatsapp", delivered, NUMBER.app_secret)).status_code == 200
    live.run(live.service.whatsapp.processor.run_once())
    page.goto(page.url.split("?")[0])  # the same page, without the notice
    expect(page.locator(".msg.out .status")).to_have_text("delivered")
    shoot(page, "dashboard-conversation")

    page.get_by_label("Message").fill("Ci vediamo sabato!")  # typed as the window closes, the page left open
    page.clock.run_for(24 * 3600 * 1000)  # still "text" and a live Send button here, a review found
    expect(page.locator("#may-send")).to_have_text("only templates")
    expect(page.locator(".about .tag").first).to_have_text("closed")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.get_by_role("alert")).to_contain_text("The 24-hour window has closed")
    expect(page.get_by_label("Message")).to_have_value("Ci vediamo sabato!")  # the draft stays

    clock.move(24 * 3600 + 1)  # a day and a second after Giulia last wrote
    page.reload()
    expect(page.get_by_label("Message")).to_have_count(0)
    expect(page.locator("#refused")).to_have_text(re.compile("^The 24-hour window is closed: .* only an approved "
                                                             "template may be sent\\.$"))  # fmt: skip
    expect(page.locator(".about")).to_contain_text("May send: only templates")
    assert page.evaluate("window.__violations") == [], "the pages must work under the dashboard's CSP"
    context.close()


def test_the_pages_fit_a_phone_and_work_without_javascript(browser: Browser, live: Live, standin: GraphStandIn,
                                                           clock: Clock) -> None:  # fmt: skip
    live.writes(live.customer(standin, clock, "393471234567", "Giulia Bianchi-Ferraris"), "Ciao! " * 40)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, java_script_enabled=False)
    page = context.new_page()
    sign_in(page, live, "/admin/conversations")
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    expect(page.locator(".countdown")).to_have_text("closes in 24 h 0 min")  # as the server wrote it
    assert overflow(page) <= 0
    page.get_by_role("link", name="Giulia Bianchi-Ferraris").click()
    page.get_by_label("Message").fill("Eccoci!")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".flash")).to_have_text(re.compile("Your reply is queued"))
    assert overflow(page) <= 0
    page.goto(f"{live.base}/admin/whatsapp")
    expect(page.get_by_text("+39 347 000 1111")).to_be_visible()
    assert overflow(page) <= 0
    page.get_by_role("link", name="Disconnect +39 347 000 1111").click()  # the confirmation step, no confirm()
    page.get_by_role("button", name="Disconnect +39 347 000 1111").click()
    expect(page.locator(".flash")).to_have_text(re.compile("disconnected"))
    assert live.run(live.service.whatsapp.sender.run_once()) == 0 and standin.sent == []  # its queue was cancelled
    context.close()
