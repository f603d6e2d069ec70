"""Hostile query parameters on every page people (and crawlers) load: each parameter of each
GET route, public and dashboard, signed in and not, with values no form would send. A bad value
is a 4xx or is ignored, never a 500; nothing is logged as an error, and recorded clicks are
still written."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from clicktochat import admin, optin_pages, qr_pages, views, webhooks
from clicktochat.accounts import create_admin
from clicktochat.app import create_app
from clicktochat.optins import Optins
from clicktochat.settings import Settings
from conftest import call, flush

HOSTILE = [
    "http://%5B", "http://[::1", "//evil.example", "%5Cevil.example", "javascript:alert(1)", "../../etc/passwd",
    "%00", "a%00b", "%0D%0ASet-Cookie:%20x=1", "%FF", "%C0%AF", "%ED%A0%80", "%", "%%41",
    "x" * 20_000, "9" * 5_000, "-1", "0", str(2**70), "-" + str(2**70), "1e309", "nan", "inf", "0x10", "1_000",
    "%D9%A3", "%EF%BC%91", "%C2%B2", "%F0%9F%8E%82", "%E2%80%AE", "+", "%20", "[]", "{}", "true",
]  # fmt: skip
"""Raw query-string values: percent-escapes as sent, so invalid UTF-8 reaches the server."""

DONE = ("done",)  # the flash message every dashboard page reads
CLICK = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "gclid", "fbclid", "via", "web",
         "u", "t", "l", "lang")  # fmt: skip
QR = ("size", "border", "error", "dark", "light", "logo")
STATS = ("from", "to", "business", "link", "campaign", "agent", "by")

PUBLIC = {
    "/": ("x", "lang"),
    "/healthz": ("x",),
    "/c/{token}": CLICK,
    "/s/{slug}": CLICK,
    "/w/{widget}/{agent}": CLICK,
    "/poster/s/{slug}": ("format", "lang"),
    "/qr/s/{slug}.{kind}": QR,
    "/qr/c/{token}.{kind}": QR,
    "/qr/w/{widget}/{agent}.{kind}": (*QR, "u", "l", "t"),
    "/widget.js": ("v",),
    "/widget.{version}.js": ("v",),
    "/api/widget/{widget}": ("lang", "hl", "preview"),
    "/api/widget/{widget}/avatar.png": ("agent", "v"),
    "/webhooks/whatsapp": ("hub.mode", "hub.verify_token", "hub.challenge"),
    # -- opt-ins (issue 10) --
    "/optin/{form}": ("lang", "via", "x"),
    "/optin/{form}/poster": ("format", "lang"),
    "/qr/optin/{form}.{kind}": QR,
    "/api/optin/{form}": ("lang", "hl"),
    "/widget-optin.js": ("v",),
}
DASHBOARD = {
    "/login": ("next", "done"),
    "/": (*STATS, *DONE),
    "/stats.csv": STATS,
    "/businesses": DONE,
    "/businesses/{business_id}": DONE,
    "/businesses/{business_id}/logo": DONE,
    "/agents/{agent_id}": DONE,
    "/links": ("q", "offset", *DONE),
    "/links/new": ("made", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", *DONE),
    "/links/{slug}": (*QR, *DONE),
    "/widgets": DONE,
    "/widgets/{widget_id}": DONE,
    "/widgets/{widget_id}/preview": ("draft", *DONE),
    "/keys": ("shown", *DONE),
    "/whatsapp": DONE,
    "/whatsapp/{number_id}/disconnect": DONE,
    "/conversations": ("business", "agent", "open", "offset", *DONE),
    "/conversations/{conversation_id}": DONE,
    "/updates": ("state", *DONE),
    "/optins": DONE,
    "/optins/{slug}": DONE,
    "/consents": ("q", "business", "offset", *DONE),
    "/consents.csv": ("q", "business", "offset"),
    "/{path:path}": DONE,
}
PASSWORD = "correct horse battery"


def get_routes(routes: list[Route]) -> set[str]:
    return {r.path for r in routes if isinstance(r, Route) and r.methods and "GET" in r.methods}


def test_every_get_route_is_fuzzed() -> None:
    modules = (views, qr_pages, webhooks, optin_pages)
    assert set().union(*(get_routes(module.routes) for module in modules)) == set(PUBLIC)
    assert get_routes(admin.routes) == set(DASHBOARD)


@pytest.fixture(scope="module")
def demo(module_db_path: str
         ) -> Iterator[tuple[TestClient, dict[str, str]]]:  # fmt: skip
    """One app with the demo shop (links, a signed link, a widget) and an admin, for all the requests."""
    db = module_db_path
    yield from _demo(Settings(db=db, base_url="https://chat.example.com", flush_interval=60, demo=True))


def _demo(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_app(settings), base_url="https://chat.example.com", follow_redirects=False,
                    raise_server_exceptions=False) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        call(client, create_admin(service.store, "ana", PASSWORD))
        call(client, Optins(service).save_form({"slug": "vetrina", "business_id": 1, "topics": ["orders"],
                                                "wording": {"en": "Send me updates."}}))  # fmt: skip
        token = json.loads(call(client, service.store.get_meta("demo")))["token"]  # type: ignore[arg-type]
        examples = {"token": token, "slug": "vetrina", "widget": "demo", "agent": "1", "kind": "svg",
                    "version": "1", "business_id": "1", "agent_id": "1", "widget_id": "demo", "number_id": "1",
                    "conversation_id": "1", "path": "anything/else", "form": "vetrina"}  # fmt: skip
        yield client, examples


def fill(path: str, examples: dict[str, str]) -> str:
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: examples[m.group(1)], path)


def failures(client: TestClient, url: str, names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        for query in [f"{name}={value}" for value in HOSTILE] + [f"{name}=1&{name}=%FF&{name}&{name}=http://%5B"]:
            response = client.get(f"{url}?{query}")
            if response.status_code >= 500:
                found.append(f"{response.status_code} GET {url}?{query[:80]}")
    return found


def sign_in(client: TestClient) -> None:
    page = client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    response = client.post("/admin/login", data={"csrf": csrf.group(1), "username": "ana", "password": PASSWORD})
    assert response.status_code == 303


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_public_pages_take_hostile_query_parameters(
    demo: tuple[TestClient, dict[str, str]], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, examples = demo
    client.cookies.clear()
    with caplog.at_level(logging.ERROR):
        found = failures(client, fill(path, examples), PUBLIC[path])
        flush(client)  # the click writer reads the same query strings
    assert not found, "\n".join(found[:20])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[:3000]


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
@pytest.mark.parametrize("path", sorted(DASHBOARD))
def test_dashboard_pages_take_hostile_query_parameters(
    demo: tuple[TestClient, dict[str, str]], path: str, signed_in: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client, examples = demo
    client.cookies.clear()
    if signed_in:
        sign_in(client)
    with caplog.at_level(logging.ERROR):
        found = failures(client, "/admin" + fill(path, examples), DASHBOARD[path])
    assert not found, "\n".join(found[:20])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[:3000]
