from __future__ import annotations

import asyncio
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from clicktochat.app import App, create_app
from clicktochat.clicks import ClickEvent
from clicktochat.demo import seed_demo
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.tokens import LinkSigner
from conftest import ANDROID, DESKTOP, IPHONE, WHATSAPP_PREVIEW, call, connect_db, flush, watch

LOCAL = "http://127.0.0.1:8000"  # the origin of a server without a base URL: the only host it answers for
TEXT = "Ciao! 🍰 Torta & caffè?\n100% #1 a+b"


def make(client: TestClient, service: Service, **fields: object) -> str:
    """A link's URL path (/c/... or /s/...)."""
    created = call(client, service.create_link(**fields))  # type: ignore[arg-type]
    return urlsplit(created.url).path  # type: ignore[attr-defined]


def clicks(client: TestClient, service: Service, kind: str, key: str) -> int:
    flush(client)
    return call(client, service.store.click_count(kind, key))  # type: ignore[return-value]


def test_phone_goes_straight_to_the_chat_with_the_exact_text(client: TestClient, service: Service) -> None:
    for path in (make(client, service, to="+39 347 123 4567", text=TEXT, short=False),
                 make(client, service, to="+39 347 123 4567", text=TEXT, slug="vetrina")):  # fmt: skip
        for ua in (IPHONE, ANDROID):
            response = client.get(path, headers={"user-agent": ua})
            assert response.status_code == 302
            location = urlsplit(response.headers["location"])
            assert (location.scheme, location.netloc, location.path) == ("https", "wa.me", "/393471234567")
            assert parse_qs(location.query)["text"] == [TEXT]
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["referrer-policy"] == "no-referrer"


def test_desktop_gets_a_landing_page_with_button_preview_and_qr(client: TestClient, service: Service) -> None:
    shop = call(client, service.add_business("Pasticceria <b>Dolce</b>", "Europe/Rome"))
    call(client, service.add_agent(shop.id, "Giulia", "+39 347 123 4567"))  # type: ignore[attr-defined]
    path = make(client, service, business_id=shop.id, text="<script>alert(1)</script>", slug="shop")  # type: ignore[attr-defined]
    page = client.get(path, headers={"user-agent": DESKTOP})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Pasticceria &lt;b&gt;Dolce&lt;/b&gt;" in page.text  # names are escaped, never HTML
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert 'href="https://wa.me/393471234567?text=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in page.text
    assert "<svg" in page.text  # the QR code to continue on the phone
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert clicks(client, service, "short", "shop") == 1


def test_modes_override_the_device_rule(client: TestClient, service: Service) -> None:
    always = make(client, service, to="+39 347 123 4567", mode="redirect", slug="always")
    landing = make(client, service, to="+39 347 123 4567", mode="landing", short=False)
    assert client.get(always, headers={"user-agent": DESKTOP}).status_code == 302
    on_phone = client.get(landing, headers={"user-agent": IPHONE})
    assert on_phone.status_code == 200
    # no "On your phone? Scan this code" to someone on their phone (found by a new user)
    assert 'class="phone"' not in on_phone.text and 'class="phone"' in client.get(landing).text


def test_preview_crawlers_get_open_graph_and_are_not_counted(client: TestClient, service: Service) -> None:
    path = make(client, service, to="+39 347 123 4567", text="Info sui cannoli?", slug="cannoli")
    for ua in (WHATSAPP_PREVIEW, "facebookexternalhit/1.1", "Twitterbot/1.0", ""):
        response = client.get(path, headers={"user-agent": ua})
        assert response.status_code == 200
        assert '<meta property="og:title" content="Chat with us on WhatsApp">' in response.text
        assert '<meta property="og:description" content="Info sui cannoli?">' in response.text
        assert "393471234567" not in response.text  # previews never show the number
    client.head(path, headers={"user-agent": IPHONE})  # link checkers: not a click either
    assert clicks(client, service, "short", "cannoli") == 0
    client.get(path, headers={"user-agent": IPHONE})
    assert clicks(client, service, "short", "cannoli") == 1
    # Robots are not lost, though: counted apart, by kind, for the owner to see.
    robots = call(client, service.store.dimension_totals("robot", "2000-01-01", "2100-01-01", "value", None))
    assert {name: bots for name, _, _, bots in robots} == {  # type: ignore[attr-defined]
        "WhatsApp": 1, "facebookexternalhit": 1, "Twitterbot": 1, "no user agent": 1, "link checker": 1, "": 0,
    }


def test_visitors_are_told_apart_by_address_only_through_trusted_proxies(tmp_path: Path) -> None:
    settings = Settings.from_env({}, db=str(tmp_path / "proxy.db"), trusted_proxies="127.0.0.0/8")
    with TestClient(create_app(settings), base_url=LOCAL, client=("127.0.0.1", 5000)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        path = make(client, service, to="+39 347 123 4567", slug="proxied")
        for forwarded in ("198.51.100.1", "198.51.100.1", "198.51.100.2", "6.6.6.6, 198.51.100.2"):
            client.get(path, headers={"user-agent": IPHONE, "x-forwarded-for": forwarded})
        flush(client)
        rows = call(client, service.store.clicks("short", "proxied"))
    assert sum(r["n"] for r in rows) == 4 and sum(r["uniques"] for r in rows) == 2  # type: ignore[index]
    assert "198.51.100" not in (tmp_path / "proxy.db").read_bytes().decode("latin-1")
    untrusted = Settings.from_env({}, db=str(tmp_path / "direct.db"))
    with TestClient(create_app(untrusted), base_url=LOCAL, client=("127.0.0.1", 5000)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        path = make(client, service, to="+39 347 123 4567", slug="direct")
        for forwarded in ("198.51.100.1", "198.51.100.2"):  # forged: one visitor, whatever the header says
            client.get(path, headers={"user-agent": IPHONE, "x-forwarded-for": forwarded})
        flush(client)
        rows = call(client, service.store.clicks("short", "direct"))
    assert sum(r["n"] for r in rows) == 2 and sum(r["uniques"] for r in rows) == 1  # type: ignore[index]


def test_every_human_click_is_counted_per_link(client: TestClient, service: Service) -> None:
    signed = make(client, service, to="+39 347 123 4567", short=False, campaign="ad")
    short = make(client, service, to="+39 347 123 4567", slug="flyer")
    for _ in range(7):
        client.get(signed, headers={"user-agent": IPHONE})
    for ua in (IPHONE, DESKTOP, ANDROID):
        client.get(short + "?utm_source=flyer&gclid=1", headers={"user-agent": ua, "referer": "https://x.it/a?b"})
    from clicktochat.tokens import token_key

    assert clicks(client, service, "signed", token_key(signed.rsplit("/", 1)[1])) == 7
    assert clicks(client, service, "short", "flyer") == 3
    rows = call(client, service.store.clicks("short", "flyer"))
    assert {r["device_class"] for r in rows} == {"mobile", "desktop"}  # type: ignore[attr-defined]
    assert {(r["utm_source"], r["ad_click"], r["referrer_host"]) for r in rows} == {("flyer", "gclid", "x.it")}  # type: ignore[attr-defined]


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_bad_tokens_are_404_pages_never_redirects(client: TestClient, service: Service, accept: str) -> None:
    good = make(client, service, to="+39 347 123 4567", short=False)
    for path in (good[:-2], good + "x", good.replace("/c/", "/c/x"), "/c/garbage", "/c/a.b.c", "/c/" + "A" * 3000):
        response = client.get(path, headers={"user-agent": IPHONE, "accept": accept})
        assert response.status_code == 404, path
        assert "location" not in response.headers
        if accept == "application/json":
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["detail"] == "This link is not valid. Check that it was copied completely."
        else:
            assert "This link is not valid" in response.text and "<h1>Not found</h1>" in response.text


def test_mutated_tokens_are_404_pages_never_500s(client: TestClient, service: Service) -> None:
    from clicktochat.budget import Budget

    client.app.state.budget = Budget(burst=1000)  # type: ignore[attr-defined]  # ~100 QR 404s from one address
    good = make(client, service, to="+39 347 123 4567", text=TEXT, short=False).rsplit("/", 1)[1]
    foreign = LinkSigner(["another-key-that-signed-nothing-here"]).sign(service.signer.verify(good))
    flips = [good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1:] for i in range(0, len(good), 5)]
    cuts = [good[:i] for i in range(1, len(good), 9)]
    for token in [*flips, *cuts, good + "A", good + "AA", good + "~", good[1:], foreign, "_" + good]:
        for path in (f"/c/{token}", f"/qr/c/{token}.svg"):
            response = client.get(path, headers={"user-agent": IPHONE})
            assert response.status_code == 404, path
            assert "location" not in response.headers and "This link is not valid" in response.text
    assert client.get(f"/c/{good}", headers={"user-agent": IPHONE}).status_code == 302


def test_links_printed_before_sealing_still_open_and_count(client: TestClient, service: Service) -> None:
    from clicktochat.tokens import SignedLink, token_key

    old = service.signer._serializer.dumps(SignedLink("whatsapp", "393471234567", TEXT).to_payload())  # the v1 path
    assert "." in old and not old.startswith("_")
    for _ in range(3):
        response = client.get(f"/c/{old}", headers={"user-agent": IPHONE})
        assert response.status_code == 302
        assert parse_qs(urlsplit(response.headers["location"]).query)["text"] == [TEXT]
    assert client.get(f"/qr/c/{old}.svg").status_code == 200
    assert clicks(client, service, "signed", token_key(old)) == 3


def test_expired_and_disabled_links_are_410_pages(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    soon = int(time.time()) + 60
    signed = make(client, service, to="+39 347 123 4567", short=False, expires_at=soon)
    short = make(client, service, to="+39 347 123 4567", slug="promo", expires_at=soon)
    make(client, service, to="+39 347 123 4567", slug="old")
    call(client, service.update_link("old", {"disabled": True}))
    for path in (signed, short):  # not yet
        assert client.get(path, headers={"user-agent": IPHONE}).status_code == 302
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # the clock moves past the expiry
    for path, words in ((signed, "This chat link has expired."), (short, "This chat link has expired."),
                        ("/s/old", "turned off by the business")):  # fmt: skip
        response = client.get(path, headers={"user-agent": IPHONE})
        assert response.status_code == 410 and words in response.text
    assert clicks(client, service, "short", "promo") == 1  # the click before the expiry only


@pytest.mark.parametrize("slug", ["nope", "NOPE", "a%20b", "%3Cscript%3E", "x" * 300, "admin"])
def test_unknown_slugs_are_friendly_404_pages(client: TestClient, slug: str) -> None:
    response = client.get(f"/s/{slug}", headers={"user-agent": IPHONE})
    assert response.status_code == 404
    assert "There is no chat link here" in response.text
    assert "<script>" not in response.text


def test_slugs_match_whatever_the_case(client: TestClient, service: Service) -> None:
    make(client, service, to="+39 347 123 4567", slug="vetrina")
    assert client.get("/s/VETRINA", headers={"user-agent": IPHONE}).status_code == 302


def test_a_business_link_rotates_and_falls_back(client: TestClient, service: Service) -> None:
    shop = call(client, service.add_business("Shop", "UTC"))
    ids = [call(client, service.add_agent(shop.id, f"A{i}", f"+39 347 123 456{i}")).id for i in (1, 2)]  # type: ignore[attr-defined]
    path = make(client, service, business_id=shop.id, slug="team")  # type: ignore[attr-defined]
    numbers = [client.get(path, headers={"user-agent": IPHONE}).headers["location"][14:26] for _ in range(4)]
    assert numbers == ["393471234561", "393471234562"] * 2
    # Nobody on shift (hours that exclude now): the fallback agent gets the chat.
    closed = "mon-sun 00:00-00:01" if datetime.now(UTC).strftime("%H:%M") > "00:01" else "mon-sun 12:00-12:01"
    for agent_id in ids:
        call(client, service.update_agent(agent_id, {"hours": closed}))
    call(client, service.update_business(shop.id, {"fallback_agent_id": ids[1]}))  # type: ignore[attr-defined]
    assert {client.get(path, headers={"user-agent": IPHONE}).headers["location"][14:26] for _ in range(3)} == {
        "393471234562"
    }


def test_a_business_with_nobody_to_answer_is_503(client: TestClient, service: Service) -> None:
    shop = call(client, service.add_business("Empty", "UTC"))
    path = make(client, service, business_id=shop.id, slug="empty")  # type: ignore[attr-defined]
    response = client.get(path, headers={"user-agent": IPHONE})
    assert response.status_code == 503 and "has not added anyone" in response.text


def test_the_click_path_reads_and_writes_nothing(client: TestClient, service: Service) -> None:
    signed = make(client, service, to="+39 347 123 4567", short=False)
    short = make(client, service, to="+39 347 123 4567", slug="cached")
    client.get(short, headers={"user-agent": IPHONE})  # first click fills the cache
    flush(client)
    statements: list[str] = []
    call(client, service.store.db.set_trace_callback(statements.append))
    try:
        for path in (signed, short) * 5:
            assert client.get(path, headers={"user-agent": IPHONE}).status_code == 302
    finally:
        call(client, service.store.db.set_trace_callback(None))
    # The client's background loops are held, so every statement would be the click path's own.
    assert statements == []
    assert client.app.state.recorder.pending == 10  # type: ignore[attr-defined]  # recorded in memory only
    call(client, service.store.db.set_trace_callback(statements.append))
    try:
        flush(client)  # the trace sees what the connection runs: the writer's statements show up
    finally:
        call(client, service.store.db.set_trace_callback(None))
    assert any(s.startswith(("INSERT INTO click_log", "COPY click_log")) for s in statements), statements  # COPY: PG


def test_an_edit_from_another_process_reaches_the_running_server(client: TestClient, service: Service) -> None:
    make(client, service, to="+39 347 123 4567", slug="edited")
    assert "393471234567" in client.get("/s/edited", headers={"user-agent": IPHONE}).headers["location"]

    def edit_like_the_cli() -> None:  # its own connection, thread and event loop, like `clicktochat link edit`
        async def run() -> None:
            other = await Service.open(Settings(db=service.settings.db))
            await other.update_link("edited", {"to": "+39 348 765 4321"})
            await other.close()

        asyncio.run(run())

    thread = threading.Thread(target=edit_like_the_cli)
    thread.start()
    thread.join()
    assert "393471234567" in client.get("/s/edited", headers={"user-agent": IPHONE}).headers["location"]  # cached
    watch(client)  # the watcher's next check
    assert "393487654321" in client.get("/s/edited", headers={"user-agent": IPHONE}).headers["location"]


def test_welcome_page_shows_the_demo(db_path: str) -> None:
    settings = Settings(db=db_path, base_url="http://127.0.0.1:8000", demo=True)
    with TestClient(create_app(settings), base_url=LOCAL) as demo:
        page = demo.get("/")
        assert page.status_code == 200
        assert "Pasticceria Dolce Vita" in page.text
        for slug in ("vetrina", "ordini", "torte"):
            assert f"http://127.0.0.1:8000/s/{slug}" in page.text
        assert "http://127.0.0.1:8000/c/" in page.text
        assert page.text.count("<svg") == 4
        assert "<strong>Giulia</strong>" in page.text and "<strong>Marco</strong>" in page.text
        assert "mon-fri 09:00-13:00,15:00-19:00; sat 09:00-13:00 (Europe/Rome)" in page.text
        assert '<script src="/widget.js" data-widget="demo" async></script>' in page.text
        assert "script-src 'self'; connect-src 'self'" in page.headers["content-security-policy"]
        assert demo.get("/api/widget/demo", headers={"referer": "http://127.0.0.1:8000/"}).json()["bubble"] == 2
        with connect_db(db_path) as conn:
            agents = conn.execute("SELECT count(*) FROM agents").fetchone()[0]
    with TestClient(create_app(settings), base_url=LOCAL) as again:  # seeding is once per database
        assert again.get("/").status_code == 200
        with connect_db(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM agents").fetchone()[0] == agents == 2


def test_two_instances_started_together_seed_the_demo_once(db_path: str) -> None:
    """Found by a review: two `serve --demo` started together on an empty database both seeded
    it (two shops), and the second stopped on its taken slugs."""
    settings = Settings(db=db_path, base_url="http://127.0.0.1:8000", demo=True)

    async def both() -> list[bool]:
        first, second = await Service.open(settings), await Service.open(settings)
        try:
            return list(await asyncio.gather(seed_demo(first), seed_demo(second)))
        finally:
            await first.close()
            await second.close()

    assert sorted(asyncio.run(both())) == [False, True]
    with connect_db(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM businesses").fetchone()[0] == 1


def test_welcome_page_without_demo_says_how_to_start(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "clicktochat link create" in page.text


def test_unknown_pages_and_methods(client: TestClient) -> None:
    assert client.get("/nowhere").status_code == 404
    assert "There is nothing at this address." in client.get("/nowhere").text
    api = client.get("/api/v1/nowhere")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
    assert client.post("/s/x").status_code == 405


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "pending_clicks": 0}


def test_welcome_page_survives_replaced_signing_keys(db_path: str) -> None:
    db = db_path
    with TestClient(create_app(Settings(db=db, demo=True)), base_url=LOCAL) as first:
        assert first.get("/").text.count("<svg") == 4
    replaced = Settings(db=db, demo=True, secret_keys="another-key-" + "x" * 32)
    with TestClient(create_app(replaced), base_url=LOCAL) as second:
        page = second.get("/")
        assert page.status_code == 200 and page.text.count("<svg") == 3  # the signed demo link is left out


def test_a_signed_link_too_long_for_a_qr_code_still_gets_its_landing_page(client: TestClient, service: Service) -> None:
    text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000))  # 1000 CJK characters: 3 KB
    path = make(client, service, to="+39 347 123 4567", text=text, short=False)
    assert len(path) > 2400  # more than a QR code can hold
    page = client.get(path, headers={"user-agent": DESKTOP})
    assert page.status_code == 200
    assert "Chat on WhatsApp" in page.text and "<svg" not in page.text  # no QR code, no error


def test_huge_headers_are_cut_before_they_are_kept(client: TestClient, service: Service) -> None:
    path = make(client, service, to="+39 347 123 4567", slug="huge")
    huge = IPHONE + " x" * 50_000
    headers = {"user-agent": huge, "referer": "https://a.it/" + "r" * 9000}
    response = client.get(path + "?utm_source=" + "q" * 5000, headers=headers)
    assert response.status_code == 302
    pending = client.app.state.recorder._pending  # type: ignore[attr-defined]
    (fields,) = pending
    event = ClickEvent._make(fields)
    assert len(event.user_agent) == 512 and len(event.referer) == 2048 and len(event.query_string) == 2048
    assert clicks(client, service, "short", "huge") == 1


def test_previews_and_heads_do_not_take_a_turn_in_the_rotation(client: TestClient, service: Service) -> None:
    shop = call(client, service.add_business("Shop", "UTC"))
    for i in (1, 2):
        call(client, service.add_agent(shop.id, f"A{i}", f"+39 347 123 456{i}"))  # type: ignore[attr-defined]
    path = make(client, service, business_id=shop.id, slug="turns")  # type: ignore[attr-defined]
    numbers = []
    for _ in range(4):
        client.get(path, headers={"user-agent": WHATSAPP_PREVIEW})  # the chat app fetches a preview
        client.head(path, headers={"user-agent": IPHONE})
        numbers.append(client.get(path, headers={"user-agent": IPHONE}).headers["location"][14:26])
    assert numbers == ["393471234561", "393471234562"] * 2


def test_the_watcher_survives_a_failed_check(
    client: TestClient, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    make(client, service, to="+39 347 123 4567", slug="watched")
    client.get("/s/watched", headers={"user-agent": IPHONE})
    with connect_db(service.settings.db) as other:
        other.execute("ALTER TABLE meta RENAME TO meta_away")  # the watcher's reads now fail
        watch(client)
        assert "could not check for changes made by other processes" in caplog.text
        other.execute("ALTER TABLE meta_away RENAME TO meta")
        other.execute("UPDATE links SET address = '393487654321' WHERE slug = 'watched'")
    watch(client)  # the next check still works
    assert "393487654321" in client.get("/s/watched", headers={"user-agent": IPHONE}).headers["location"]


def test_the_demo_offers_posters_and_qr_downloads(db_path: str) -> None:
    with TestClient(create_app(Settings(db=db_path, demo=True)), base_url=LOCAL) as demo:
        page = demo.get("/").text
        assert 'href="/poster/s/vetrina?format=a5"' in page
        assert demo.get("/poster/s/vetrina?format=a5").status_code == 200
        download = re.search(r'href="(/qr/s/vetrina.png\?[^"]+)"', page).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
        assert "logo=channel" in download and "sig=" in download  # the demo's styled code is signed
        assert demo.get(download).headers["content-type"] == "image/png"
        assert demo.get("/qr/s/vetrina.png?size=600&logo=channel").status_code == 403  # unsigned: not for anyone


def test_clicks_answer_the_same_with_or_without_the_fast_path(client: TestClient, service: Service) -> None:
    """app.App sends clicks straight to their endpoints; Starlette's own stack (middleware and
    router) must give the same answers, byte for byte, errors included."""
    app = client.app
    assert isinstance(app, App)

    async def starlette_only(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)

    slow = TestClient(starlette_only, base_url="https://chat.example.com", follow_redirects=False)
    signed = make(client, service, to="+39 347 123 4567", text=TEXT, short=False)
    short = make(client, service, to="+39 347 123 4567", text=TEXT, slug="vetrina")
    cases = [
        ("GET", signed, IPHONE, "chat.example.com"), ("HEAD", signed, IPHONE, "chat.example.com"),
        ("GET", signed, DESKTOP, "chat.example.com"), ("GET", signed, WHATSAPP_PREVIEW, "chat.example.com"),
        ("GET", short, IPHONE, "chat.example.com"), ("GET", short.upper(), IPHONE, "chat.example.com"),
        ("GET", signed, IPHONE, "evil.example"), ("GET", short, DESKTOP, "evil.example"),
        ("GET", "/s/nothing", IPHONE, "chat.example.com"), ("GET", signed + "x", DESKTOP, "chat.example.com"),
        ("GET", "/w/nothing/any", IPHONE, "chat.example.com"), ("GET", "/s/", IPHONE, "chat.example.com"),
        ("GET", "/c/a/b", IPHONE, "chat.example.com"), ("GET", short + "/", IPHONE, "chat.example.com"),
        ("GET", "/w/a", IPHONE, "chat.example.com"), ("GET", "/w/a//", IPHONE, "chat.example.com"),
        ("POST", short, IPHONE, "chat.example.com"), ("PUT", signed, IPHONE, "chat.example.com"),
    ]  # fmt: skip
    for method, path, ua, host in cases:
        for accept in ("text/html", "application/json"):
            headers = {"user-agent": ua, "host": host, "accept": accept}
            fast, other = client.request(method, path, headers=headers), slow.request(method, path, headers=headers)
            assert (fast.status_code, fast.headers, fast.content) == (other.status_code, other.headers, other.content)
    flush(client)


def test_an_unexpected_error_in_a_click_is_the_error_page_and_is_raised(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make(client, service, to="+39 347 123 4567", text=TEXT, slug="vetrina")

    async def broken(*args: object) -> object:
        raise RuntimeError("the cache broke")

    monkeypatch.setattr(service.cache, "get", broken)
    with pytest.raises(RuntimeError, match="the cache broke"):  # for the server to log, as Starlette's stack does
        client.get(path, headers={"user-agent": IPHONE})
    lenient = TestClient(client.app, base_url="https://chat.example.com", raise_server_exceptions=False)
    page = lenient.get(path, headers={"user-agent": IPHONE, "accept": "text/html"})
    assert page.status_code == 500 and "Something went wrong on our side" in page.text
    problem = lenient.get(path, headers={"user-agent": IPHONE, "accept": "application/json"})
    assert problem.status_code == 500 and problem.headers["content-type"] == "application/problem+json"


def test_a_click_skips_starlettes_middleware_and_router(
    client: TestClient, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make(client, service, to="+39 347 123 4567", text=TEXT, slug="vetrina")

    async def not_here(*args: object) -> None:
        raise AssertionError("a click went through Starlette's stack")

    monkeypatch.setattr(Starlette, "__call__", not_here)
    assert client.get(path, headers={"user-agent": IPHONE}).status_code == 302
    assert client.head(path, headers={"user-agent": IPHONE}).status_code == 302
    assert client.get(path, headers={"user-agent": IPHONE, "host": "evil.example"}).status_code == 400
    with pytest.raises(AssertionError, match="Starlette's stack"):
        client.get("/healthz")
