"""The widget's server side: settings and their rules, the configuration the script fetches,
who may show it, the click through /w/, its QR code, and /widget.js itself.
The script in a real browser is tested in test_widget_browser.py."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from starlette.testclient import TestClient

from clicktochat.agents import Agent, Business, next_available
from clicktochat.errors import InvalidInput
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.widget import (
    DOMAIN_PATTERN,
    WORDS,
    Script,
    Widget,
    WidgetSettings,
    check_settings,
    config,
    domain_allowed,
    fill_message,
    page_url,
    pick_language,
    request_host,
    text_colour,
)  # fmt: skip
from conftest import ANDROID, DESKTOP, IPHONE, call, flush, read_qr

NUMBER = "+39 347 123 4567"
MONDAY_10_ROME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Rome
ASSETS = Path(__file__).resolve().parents[1] / "widget"


def agent(id: int = 1, hours: dict[str, list[str]] | None = None, name: str = "Giulia") -> Agent:
    return Agent(id, 1, name, "whatsapp", "393471234567", hours, "Europe/Rome")


# -- settings ---------------------------------------------------------------------------


def test_settings_are_checked_and_each_error_names_its_setting() -> None:
    settings = check_settings({"colour": "#0B3D91", "position": "left", "show_on": "/shop/* /cart", "delay": 3})
    assert (settings.colour, settings.position, settings.show_on, settings.delay) == (
        "#0b3d91", "left", ("/shop/*", "/cart"), 3,
    )  # fmt: skip
    bad = {
        "colour": "red", "position": "top", "offset_x": 500, "delay": -1, "scroll": 101, "locale": "xx",
        "greeting": "x" * 301, "label": "x" * 41, "message": "x" * 501, "show_on": ["shop"], "hide_on": ["/a b"],
        "allowed_domains": ["https://example.com"], "agent_ids": ["1"], "bubble": "yes", "qr": 1, "nope": 1,
        "hide_offline": None,
    }  # fmt: skip
    for name, value in bad.items():
        with pytest.raises(InvalidInput) as error:
            check_settings({name: value})
        assert error.value.errors[0].field == name, name
    with pytest.raises(InvalidInput) as error:  # all at once: one round to fix them
        check_settings(bad)
    assert sorted(e.field for e in error.value.errors) == sorted(bad)
    with pytest.raises(InvalidInput, match="control characters"):
        check_settings({"greeting": "hi\x1b[31m"})
    assert check_settings({"greeting": "  "}).greeting is None  # blank means the default
    assert check_settings({"allowed_domains": ["Shop.Example.com.", "*.example.it"]}).allowed_domains == (
        "shop.example.com", "*.example.it",
    )  # fmt: skip


def test_the_text_on_the_button_always_reads_well() -> None:
    from clicktochat.qr import contrast

    for colour in ("#008069", "#25d366", "#ffeb3b", "#777777", "#000000", "#ffffff", "#0b3d91"):
        assert contrast(colour, text_colour(colour)) >= 4.5, colour


def test_language_comes_from_the_snippet_then_the_setting_then_the_page_and_browser() -> None:
    assert pick_language("it", "de,fr", "es") == "it"
    assert pick_language("", "de,fr", "es") == "es"
    assert pick_language("", "ja,pt-BR,fr", None) == "pt"
    assert pick_language("", "ja", None) == "en" and pick_language("xx", "", None) == "en"
    assert pick_language("", "AR-eg", None) == "ar"


def test_allowed_domains_name_sites_in_the_form_browsers_send() -> None:
    """Found by a review: `*.com` was taken (every .com site got the config), and bücher.example
    was refused rather than written as browsers send it."""
    for wide in ("*.com", "*.it", "*.x", "*.co.uk", "*.github.io", "*.CO.UK."):
        with pytest.raises(InvalidInput) as refused:
            check_settings({"allowed_domains": [wide]})
        assert refused.value.errors[0].field == "allowed_domains" and "every site under" in str(refused.value)
        if wide.count(".") == 1:
            assert not DOMAIN_PATTERN.fullmatch(wide)  # the OpenAPI document says so too
    taken = check_settings({"allowed_domains": ["Bücher.example", "*.café.it", "*.shop.co.uk", "*.me.github.io",
                                                "co.uk"]}).allowed_domains  # fmt: skip
    assert taken == ("xn--bcher-kva.example", "*.xn--caf-dma.it", "*.shop.co.uk", "*.me.github.io", "co.uk")
    assert all(DOMAIN_PATTERN.fullmatch(domain) for domain in taken)
    assert domain_allowed(request_host("https://xn--bcher-kva.example", ""), taken)
    with pytest.raises(InvalidInput):
        check_settings({"allowed_domains": ["bü cher.example"]})


def test_allowed_domains_are_exact_or_a_wildcard_for_subdomains() -> None:
    allowed = ("shop.example.com", "*.dolcevita.it")
    assert domain_allowed("shop.example.com", allowed) and domain_allowed("SHOP.example.com.", allowed)
    assert domain_allowed("dolcevita.it", allowed) and domain_allowed("www.dolcevita.it", allowed)
    for host in ("example.com", "evil.com", "dolcevita.it.evil.com", "evildolcevita.it", None, ""):
        assert not domain_allowed(host, allowed), host
    assert domain_allowed(None, ())  # no list: any site
    assert request_host("https://shop.example.com", "https://x.com/a") == "shop.example.com"
    assert request_host("null", "https://x.com/a?b") == "x.com" and request_host("", "") is None


def test_the_page_named_in_the_message_loses_its_query_and_must_be_http_on_an_allowed_site() -> None:
    assert page_url("https://shop.it/p/cannoli?email=a@b.c#top", ()) == "https://shop.it/p/cannoli"
    assert page_url("javascript:alert(1)", ()) == "" and page_url("data:text/html,x", ()) == ""
    assert page_url("https://evil.com/", ("shop.it",)) == "" and page_url("http://[::1", ()) == ""
    assert len(page_url("https://shop.it/" + "a" * 5000, ())) == 500
    assert page_url("https://evil.example@shop.it/p", ("shop.it",)) == "https://shop.it/p"  # no user info
    assert page_url("https://ana:secret@SHOP.it:8443/p?x=1", ()) == "https://shop.it:8443/p"
    assert page_url("http://[::1]:8000/p", ()) == "http://[::1]:8000/p" and page_url("https://shop.it:99999/", ()) == ""


def test_the_message_fills_in_the_page_and_stays_tidy_without_it() -> None:
    template = WORDS["en"]["message"]
    assert fill_message(template, "https://shop.it/p", "Cannoli  \n box") == (
        "Hello! I have a question about Cannoli box https://shop.it/p"
    )
    assert fill_message(template, "", "") == "Hello! I have a question about"
    assert len(fill_message("{page_title}" * 20, "", "x" * 1000)) == 1000


def test_next_available_is_the_next_start_in_the_agents_time_zone() -> None:
    hours = {"mon": ["15:00-19:00"], "wed": ["09:00-13:00"]}
    assert next_available(agent(hours=hours), MONDAY_10_ROME) == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    evening = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
    assert next_available(agent(hours=hours), evening) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert next_available(agent(hours=None), MONDAY_10_ROME) is None


def test_the_configuration_lists_agents_with_availability_and_never_a_number() -> None:
    widget = Widget("shop", 1, WidgetSettings(greeting="<img src=x onerror=alert(1)>", agent_ids=(2, 1)))
    agents = [agent(1, {"mon": ["09:00-13:00"]}), agent(2, {"tue": ["09:00-13:00"]}, "Marco"), agent(3, None, "Ugo")]
    body = config(widget, Business(1, "Dolce Vita", "Europe/Rome"), agents, "it", "https://c.example", False,
                  MONDAY_10_ROME)  # fmt: skip
    assert [(a["name"], a["available"], a["back_at"]) for a in body["agents"]] == [
        ("Marco", False, "2026-11-24T08:00:00Z"), ("Giulia", True, None),
    ]
    assert body["agents"][0]["url"] == "https://c.example/w/shop/2"
    assert body["greeting"] == "<img src=x onerror=alert(1)>"  # as text: the script never parses it
    assert body["open"] is True and body["lang"] == "it" and body["dir"] == "ltr"
    assert body["words"]["online"] == "Online" and body["words"]["close"] == "Chiudi"
    assert body["tz"] == "Europe/Rome" and body["words"]["yours"] == "tuo orario"  # whose time "back" is
    assert "393471234567" not in json.dumps(body) and body["avatar"] is None
    arabic = config(widget, Business(1, "x", "UTC"), agents, "ar", "https://c.example", True, MONDAY_10_ROME)
    assert arabic["dir"] == "rtl" and arabic["avatar"] == "https://c.example/api/widget/shop/avatar.png"


def test_every_language_has_every_word() -> None:
    for lang, words in WORDS.items():
        assert words.keys() == WORDS["en"].keys(), lang
        assert "{time}" in words["back"] and "{page_url}" in words["message"], lang


def test_the_script_stays_within_its_budget_and_carries_its_css() -> None:
    script = Script.build(ASSETS)
    assert len(script.gzipped) <= 5 * 1024, f"widget.js is {len(script.gzipped)} bytes gzipped; the budget is 5 KiB"
    assert gzip.decompress(script.gzipped) == script.body
    text = script.body.decode()
    assert '"__CSS__"' not in text and ":host{all:initial" in text.replace(" ", "")
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write",
                      "document.cookie", "localStorage"):  # fmt: skip
        assert forbidden not in text, forbidden


# -- HTTP -------------------------------------------------------------------------------


@pytest.fixture
def shop(client: TestClient, service: Service) -> dict[str, Any]:
    business = call(client, service.add_business("Dolce Vita", "Europe/Rome"))
    giulia = call(client, service.add_agent(business.id, "Giulia", NUMBER))  # type: ignore[attr-defined]
    marco = call(client, service.add_agent(business.id, "Marco", "+39 348 765 4321", hours="sun 09:00-09:01"))  # type: ignore[attr-defined]
    widget = call(client, service.create_widget(business.id, "shop", {"allowed_domains": ["dolcevita.it"]}))  # type: ignore[attr-defined]
    return {"business": business, "giulia": giulia, "marco": marco, "widget": widget}


def test_one_id_asked_for_many_times_at_once_is_made_once(settings: Settings) -> None:
    """Found by CI: two `serve --demo` started together both looked, saw no widget `demo`, and
    the second's insert failed. Whatever the interleaving, one request wins and the others are
    told the id is taken; two instances of the app share the database."""

    async def race() -> list[object]:
        first, second = await Service.open(settings), await Service.open(settings)
        try:
            shop = await first.add_business("Dolce Vita", "Europe/Rome")
            return await asyncio.gather(
                *(service.create_widget(shop.id, "shop") for service in (first, second) * 4), return_exceptions=True
            )
        finally:
            await first.close()
            await second.close()

    outcomes = asyncio.run(race())
    assert [type(outcome) for outcome in outcomes].count(Widget) == 1, outcomes
    refused = [str(outcome) for outcome in outcomes if isinstance(outcome, InvalidInput)]
    assert refused == ["id: 'shop' is already taken; choose another id"] * 7


def test_the_configuration_is_public_cors_readable_and_cached_briefly(client: TestClient, shop: dict[str, Any]) -> None:
    response = client.get("/api/widget/shop?hl=it-IT,en", headers={"origin": "https://dolcevita.it"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "public, max-age=60" and "Origin" in response.headers["vary"]
    body = response.json()
    assert body["name"] == "Dolce Vita" and body["lang"] == "it" and [a["name"] for a in body["agents"]] == [
        "Giulia", "Marco",
    ]  # fmt: skip
    again = client.get("/api/widget/SHOP?hl=it-IT,en", headers={
        "origin": "https://dolcevita.it", "if-none-match": response.headers["etag"],
    })  # fmt: skip
    assert again.status_code == 304 and again.content == b""
    forced = client.get("/api/widget/shop?hl=it&lang=de", headers={"referer": "https://dolcevita.it/p?x=1"})
    assert forced.json()["lang"] == "de"


def test_a_site_not_allowed_gets_a_403_it_can_read(client: TestClient, shop: dict[str, Any]) -> None:
    for headers in ({"origin": "https://copycat.com"}, {"referer": "https://dolcevita.it.copycat.com/"}, {}):
        response = client.get("/api/widget/shop", headers=headers)
        assert response.status_code == 403, headers
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["content-type"] == "application/problem+json"
        assert "allowed_domains" in response.json()["detail"]
    assert "copycat.com" in client.get("/api/widget/shop", headers={"origin": "https://copycat.com"}).json()["detail"]


def test_a_preview_anyone_can_ask_for_is_drawn_once_not_for_every_request(
    client: TestClient, shop: dict[str, Any]
) -> None:
    """Found by a review: Origin is anyone's to write, and a preview named by our own origin was
    drawn anew for every request, skipping the cache and the caller's budget. Only an owner's
    draft is drawn each time; any other preview is the saved settings', cached."""
    ours = {"origin": "https://chat.example.com"}
    first = client.get("/api/widget/shop?preview=1", headers=ours)
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    assert first.json()["rules"]["show_on"] == []  # a preview: whatever the display rules
    for n in range(40):  # more than a budget's burst: each would have cost a draw
        again = client.get(f"/api/widget/shop?preview=made-up-{n}", headers=ours)
        assert again.status_code == 200 and again.content == first.content
    configs = client.app.state.widget_configs  # type: ignore[attr-defined]
    assert len(configs) == 1  # drawn once, kept beside the public configuration
    public = client.get("/api/widget/shop", headers={"origin": "https://dolcevita.it"})
    assert public.headers["cache-control"] == "public, max-age=60" and len(configs) == 2  # each kept apart


def test_unknown_widgets_are_a_404_in_json(client: TestClient, shop: dict[str, Any]) -> None:
    for path in ("/api/widget/nope", "/api/widget/%3Cscript%3E", "/api/widget/" + "a" * 300):
        response = client.get(path, headers={"accept": "text/html"})
        assert response.status_code == 404 and response.headers["access-control-allow-origin"] == "*"
        assert response.json()["status"] == 404


def test_a_phone_click_goes_to_the_agent_with_the_page_in_the_message(client: TestClient, shop: dict[str, Any]) -> None:
    marco = shop["marco"]
    page = "https://dolcevita.it/torte/cassata?session=secret#reviews"
    response = client.get(
        f"/w/shop/{marco.id}?u={quote(page)}&t={quote('Cassata – siciliana 🍰')}&l=it",
        headers={"user-agent": IPHONE, "referer": "https://dolcevita.it/torte/cassata"},
    )  # fmt: skip
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "wa.me", "/393487654321")
    text = parse_qs(location.query)["text"][0]
    assert text == "Ciao! Ho una domanda su Cassata – siciliana 🍰 https://dolcevita.it/torte/cassata"
    flush(client)
    (row,) = call(client, client.app.state.service.store.clicks("widget", "shop"))  # type: ignore[attr-defined]
    assert (row["agent_id"], row["page_path"], row["referrer_host"], row["device_class"]) == (
        marco.id, "/torte/cassata", "dolcevita.it", "mobile",
    )  # fmt: skip


def test_a_crafted_click_cannot_change_who_gets_the_message_or_name_another_site(
    client: TestClient, shop: dict[str, Any]
) -> None:
    response = client.get("/w/shop/1?u=https://evil.com/x&t=Hi&to=999", headers={"user-agent": ANDROID})
    broken = client.get("/w/shop/1?t=%E2%80&u=%FF%FE", headers={"user-agent": ANDROID})
    assert broken.status_code == 302 and "%EF%BF%BD" in broken.headers["location"]  # U+FFFD, not a 500
    flood = client.get("/w/shop/1?t=Hi&" + "x=1&" * 50, headers={"user-agent": ANDROID})
    assert flood.headers["location"] == "https://wa.me/393471234567?text=Hello%21%20I%20have%20a%20question%20about"
    location = response.headers["location"]
    assert location.startswith("https://wa.me/393471234567?text=") and "evil.com" not in location
    unknown_agent = client.get("/w/shop/9999", headers={"user-agent": ANDROID})
    assert unknown_agent.status_code == 302  # a stale page: whoever is on duty takes it
    assert unknown_agent.headers["location"].startswith("https://wa.me/393471234567")
    gone = client.get("/w/nope/1", headers={"user-agent": ANDROID, "accept": "text/html"})
    assert gone.status_code == 404 and "out of date" in gone.text
    assert gone.headers["content-type"].startswith("text/html")


def test_a_desktop_gets_whatsapp_web_or_the_landing_page(client: TestClient, shop: dict[str, Any]) -> None:
    giulia = shop["giulia"]
    web = client.get(f"/w/shop/{giulia.id}?u=https://dolcevita.it/&t=Home&web=1", headers={"user-agent": DESKTOP})
    assert web.status_code == 302
    assert web.headers["location"].startswith("https://web.whatsapp.com/send?phone=393471234567&text=Hello")
    landing = client.get(f"/w/shop/{giulia.id}?u=https://dolcevita.it/", headers={"user-agent": DESKTOP})
    assert landing.status_code == 200 and "Dolce Vita" in landing.text
    phone_web = client.get(f"/w/shop/{giulia.id}?web=1", headers={"user-agent": IPHONE})
    assert phone_web.headers["location"].startswith("https://wa.me/")  # web=1 means nothing on a phone


def test_the_handoff_qr_code_leads_to_the_same_chat_on_the_phone(client: TestClient, shop: dict[str, Any]) -> None:
    giulia = shop["giulia"]
    response = client.get(f"/qr/w/shop/{giulia.id}.png?u=https://dolcevita.it/torte&l=it&size=400")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    url = read_qr(response.content)
    assert url == f"https://chat.example.com/w/shop/{giulia.id}?via=qr&u=https%3A%2F%2Fdolcevita.it%2Ftorte&l=it"
    scanned = client.get(url.removeprefix("https://chat.example.com"), headers={"user-agent": IPHONE})
    assert "Ciao%21%20Ho%20una%20domanda%20su%20https%3A%2F%2Fdolcevita.it%2Ftorte" in scanned.headers["location"]
    flush(client)
    rows = call(client, client.app.state.service.store.clicks("widget", "shop"))  # type: ignore[attr-defined]
    assert [row["source"] for row in rows] == ["qr"]  # type: ignore[attr-defined]
    assert client.get("/qr/w/nope/1.svg").status_code == 404
    assert client.get(f"/qr/w/shop/{giulia.id}.svg?size=nope").status_code == 422
    # The page's title goes too, as a tap carries it (found by a new user: the scanned message
    # read "a question about  https://..."), cut to 60 characters.
    titled = client.get(f"/qr/w/shop/{giulia.id}.png", params={"u": "https://dolcevita.it/torte", "l": "it",
                                                               "t": "Torte " + "x" * 80, "size": "400"})  # fmt: skip
    url = read_qr(titled.content)
    assert url.endswith(f"&t=Torte+{'x' * 54}")
    scanned = client.get(url.removeprefix("https://chat.example.com"), headers={"user-agent": IPHONE})
    assert f"Ho%20una%20domanda%20su%20Torte%20{'x' * 54}%20https%3A%2F%2Fdolcevita.it%2Ftorte" in \
        scanned.headers["location"]  # fmt: skip


def test_widget_js_is_served_gzipped_versioned_and_revalidated(client: TestClient) -> None:
    script = client.app.state.widget_script  # type: ignore[attr-defined]
    response = client.get("/widget.js", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.content == script.body  # httpx decoded it
    assert response.headers["cache-control"].startswith("public, max-age=3600")
    assert response.headers["access-control-allow-origin"] == "*" and "set-cookie" not in response.headers
    assert client.get("/widget.js", headers={"if-none-match": response.headers["etag"]}).status_code == 304
    pinned = client.get(f"/widget.{script.version}.js")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/widget.000000000000.js").status_code == 404


def test_the_avatar_is_the_business_logo(client: TestClient, service: Service, shop: dict[str, Any]) -> None:
    import io

    from PIL import Image

    assert client.get("/api/widget/shop/avatar.png").status_code == 404
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "#8e44ad").save(buffer, format="PNG")
    call(client, service.set_logo(shop["business"].id, buffer.getvalue()))
    service.forget()
    body = client.get("/api/widget/shop", headers={"origin": "https://dolcevita.it"}).json()
    assert body["avatar"] == "https://chat.example.com/api/widget/shop/avatar.png"
    avatar = client.get("/api/widget/shop/avatar.png")
    assert avatar.status_code == 200 and avatar.content.startswith(b"\x89PNG")


def test_edits_reach_the_configuration_at_once(client: TestClient, service: Service, shop: dict[str, Any]) -> None:
    origin = {"origin": "https://dolcevita.it"}
    assert client.get("/api/widget/shop", headers=origin).json()["greeting"] == "Hi! How can we help you?"
    call(client, service.update_widget("shop", {"greeting": "Ciao!", "allowed_domains": None}))
    body = client.get("/api/widget/shop", headers={"origin": "https://anywhere.net"}).json()
    assert body["greeting"] == "Ciao!"
    call(client, service.delete_widget("shop"))
    assert client.get("/api/widget/shop", headers=origin).status_code == 404
