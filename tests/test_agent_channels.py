"""Several channels per agent (issue 14): the channels a business offers, links and widget clicks
routed by channel, the 410 page with the alternatives when a channel is gone, the widget's
configuration, the API, the CLI and the dashboard. A real app over a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from clicktochat.agents import Agent, Rotation, offered_channels
from clicktochat.channels import CHANNELS
from clicktochat.cli import cli
from clicktochat.errors import InvalidInput
from clicktochat.links import NotOffered, ShortLink, Target, resolve
from clicktochat.service import Service
from clicktochat.store import Store
from conftest import DESKTOP, IPHONE, WHATSAPP_PREVIEW, call, flush, watch
from test_admin import Admin, admin_account, sign_in
from test_store import database_at

__all__ = ["admin_account"]  # the fixture, for pytest
API = "/api/v1"
GIULIA_WA, GIULIA_TG = "+39 347 123 4567", "@giulia_dv"
MARCO_WA, MARCO_SIGNAL, MARCO_MAIL = "+39 348 765 4321", "+49 1512 3456789", "marco@dolcevita.example"
ADDRESSES = ("393471234567", "giulia_dv", "393487654321", "4915123456789", "marco@dolcevita.example")
MONDAY_NOON = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)


def agent(agent_id: int, *channels: tuple[str, str], hours: Any = None) -> Agent:
    (first, address), *_ = channels
    return Agent(agent_id, 1, f"a{agent_id}", first, address, hours, "Europe/Rome", tuple(channels))


@pytest.fixture
def shop(client: TestClient, service: Service) -> dict[str, Any]:
    """Giulia on WhatsApp and Telegram, Marco on WhatsApp, Signal and e-mail; a widget; links."""
    business = call(client, service.add_business("Pasticceria Dolce Vita", "Europe/Rome"))
    giulia = call(client, service.add_agent(business.id, "Giulia", channels=[  # type: ignore[attr-defined]
        {"channel": "whatsapp", "address": GIULIA_WA}, {"channel": "telegram", "address": GIULIA_TG}]))  # fmt: skip
    marco = call(client, service.add_agent(business.id, "Marco", channels=[  # type: ignore[attr-defined]
        {"channel": "whatsapp", "address": MARCO_WA}, {"channel": "signal", "address": MARCO_SIGNAL},
        {"channel": "email", "address": MARCO_MAIL}]))  # fmt: skip
    call(client, service.create_widget(business.id, "shop", {}))  # type: ignore[attr-defined]
    return {"business": business.id, "giulia": giulia.id, "marco": marco.id}  # type: ignore[attr-defined]


def phone(client: TestClient, path: str, **headers: str) -> Any:
    return client.get(path, headers={"user-agent": IPHONE} | headers)


def location(response: Any) -> str:
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


# -- the plain functions ------------------------------------------------------------------


def test_the_channels_a_business_offers_are_the_union_in_a_stable_order() -> None:
    agents = [agent(7, ("signal", "4915123456789"), ("whatsapp", "393487654321")),
              agent(3, ("telegram", "giulia"), ("whatsapp", "393471234567")),
              agent(9, ("email", "x@example.com"))]  # fmt: skip
    assert offered_channels(agents) == ["telegram", "whatsapp", "signal", "email"]  # by agent id, then their order
    assert offered_channels(reversed(agents)) == offered_channels(agents)
    assert offered_channels([]) == []
    only = Agent(1, 1, "a", "whatsapp", "393471234567", None, "UTC")  # made without channels: its one
    assert only.channels == (("whatsapp", "393471234567"),) and only.address_on("telegram") is None


def test_a_link_to_a_business_on_a_channel_rotates_among_the_agents_on_it() -> None:
    agents = (agent(1, ("whatsapp", "1111")), agent(2, ("whatsapp", "2222"), ("telegram", "two")),
              agent(3, ("telegram", "three"), ("whatsapp", "3333")))  # fmt: skip
    link = ShortLink("shop", business_id=1, channel="telegram")
    target = Target(link, "Shop", agents, None, 1)
    rotation = Rotation()
    chosen = [resolve(target, MONDAY_NOON, rotation) for _ in range(4)]
    assert [(d.channel, d.address, d.agent_id) for d in chosen if d] == [
        ("telegram", "two", 2), ("telegram", "three", 3), ("telegram", "two", 2), ("telegram", "three", 3)]
    # A click may ask for another channel the business has; without one, the agents' first, in turn.
    assert resolve(target, MONDAY_NOON, rotation, channel="whatsapp") == ("whatsapp", "1111", 1)  # the next in turn
    plain = Target(ShortLink("all", business_id=1), "Shop", agents, None, 1)
    assert resolve(plain, MONDAY_NOON, Rotation()) == ("whatsapp", "1111", 1)
    with pytest.raises(NotOffered) as gone:
        resolve(target, MONDAY_NOON, rotation, channel="signal")
    assert gone.value.channel == "signal"
    # The fallback takes a chat only on a channel it is on; nobody at all is not "not offered".
    away = {"mon": ["20:00-21:00"]}
    night = (agent(1, ("whatsapp", "1111"), hours=away), agent(2, ("telegram", "two"), hours=away))
    fallback = night[0]
    on_telegram = Target(link, "Shop", night, fallback, 1)
    assert resolve(on_telegram, MONDAY_NOON, Rotation()) == ("telegram", "two", 2)
    assert resolve(Target(ShortLink("x", business_id=1), "Shop", night, fallback, 1), MONDAY_NOON,
                   Rotation()) == ("whatsapp", "1111", 1)  # fmt: skip
    assert resolve(Target(link, "Shop", (), None, 1), MONDAY_NOON, Rotation()) is None


def test_a_link_to_an_agent_goes_to_a_colleague_on_a_channel_the_agent_lacks() -> None:
    giulia = agent(1, ("whatsapp", "1111"), ("telegram", "giulia"))
    marco = agent(2, ("whatsapp", "2222"), ("signal", "4915123456789"))
    to_giulia = Target(ShortLink("g", agent_id=1), "Shop", (giulia,), None, 1, (giulia, marco))
    assert resolve(to_giulia, MONDAY_NOON, Rotation()) == ("whatsapp", "1111", 1)
    assert resolve(to_giulia, MONDAY_NOON, Rotation(), channel="telegram") == ("telegram", "giulia", 1)
    assert resolve(to_giulia, MONDAY_NOON, Rotation(), channel="signal") == ("signal", "4915123456789", 2)
    with pytest.raises(NotOffered):
        resolve(to_giulia, MONDAY_NOON, Rotation(), channel="email")


# -- the store: migration 010, the query, the triggers -----------------------------------


def test_migration_10_gives_every_agent_its_one_channel(sqlite_path: str) -> None:
    """An upgrade of a SQLite file (PostgreSQL starts at schema 11, channels and all)."""
    db = database_at(sqlite_path, 9)
    db.execute("INSERT INTO businesses (id, name, timezone, created_at, updated_at) VALUES (1, 'B', 'UTC', 0, 0)")
    for agent_id, channel, address in ((5, "whatsapp", "393471234567"), (6, "telegram", "bob")):
        db.execute("INSERT INTO agents (id, business_id, name, channel, address, created_at, updated_at)"
                   " VALUES (?, 1, 'A', ?, ?, 0, 0)", (agent_id, channel, address))  # fmt: skip
    db.execute("COMMIT")
    db.close()

    async def scenario() -> None:
        store = await Store.open(sqlite_path)
        try:
            ann, bob = await store.agent(5), await store.agent(6)
            assert ann is not None and ann.channels == (("whatsapp", "393471234567"),)
            assert bob is not None and bob.channels == (("telegram", "bob"),)
            assert await store.business_channels(1) == ["whatsapp", "telegram"]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_an_agents_channels_are_kept_in_order_and_their_changes_move_routing(db_path: str) -> None:
    async def scenario() -> None:
        store = await Store.open(db_path)
        try:
            business = await store.add_business("B", "UTC")
            ann = await store.add_agent(business.id, "Ann", "whatsapp", "393471234567", None, None)
            bob = await store.add_agent(business.id, "Bob", "whatsapp", "393487654321", None, None,
                                        more=[("email", "bob@example.com")])  # fmt: skip
            assert ann.channels == (("whatsapp", "393471234567"),)
            assert bob.channels == (("whatsapp", "393487654321"), ("email", "bob@example.com"))
            assert await store.business_channels(business.id) == ["whatsapp", "email"]
            version = await store.routing_version()
            await store.set_agent_channels(bob.id, [("telegram", "bob"), ("whatsapp", "393487654321")])
            assert await store.routing_version() > version  # a running server drops its cache
            moved = await store.agent(bob.id)
            assert moved is not None and (moved.channel, moved.address) == ("telegram", "bob")  # the first, in sync
            assert moved.channels == (("telegram", "bob"), ("whatsapp", "393487654321"))
            assert [a.channels for a in await store.agents(business.id)] == [ann.channels, moved.channels]
            assert await store.business_channels(business.id) == ["whatsapp", "telegram"]
            await store.delete_agent(ann.id)  # its rows go with it
            assert await store.business_channels(business.id) == ["telegram", "whatsapp"]
            assert await store.business_channels(2**70) == []
        finally:
            await store.close()

    asyncio.run(scenario())


# -- the service: validation ---------------------------------------------------------------


def test_every_address_is_checked_by_its_channel_and_errors_name_the_entry(
    client: TestClient, service: Service, shop: dict[str, Any]
) -> None:
    def refused(channels: Any) -> tuple[str, str]:
        with pytest.raises(InvalidInput) as error:
            call(client, service.add_agent(shop["business"], "X", channels=channels))
        (found,) = error.value.errors
        return found.field, found.reason

    assert refused([{"channel": "whatsapp", "address": GIULIA_WA}, {"channel": "email", "address": "nope"}])[0] == \
        "channels[1].address"  # fmt: skip
    assert refused([{"channel": "whatsapp", "address": "+39 12"}]) == ("channels[0].address", "'+39 12' is too short")
    assert refused([{"channel": "fax", "address": "1"}])[0] == "channels[0].channel"
    assert refused([{"channel": "telegram", "address": "@a_shop"}, {"channel": "telegram", "address": "@b_shop"}]) \
        == ("channels[1].channel", "Telegram is listed twice; an agent has one address on each")  # fmt: skip
    assert refused([])[0] == "channels"
    assert refused(["whatsapp"])[0] == "channels[0]"
    assert refused([{"channel": "whatsapp"}]) == ("channels[0].address", "is required")
    with pytest.raises(InvalidInput) as both:
        call(client, service.add_agent(shop["business"], "X", GIULIA_WA, channels=[]))
    assert both.value.errors[0].field == "channels"


def test_adding_and_removing_a_channel_of_an_agent(client: TestClient, service: Service, shop: dict[str, Any]) -> None:
    giulia = shop["giulia"]
    added = call(client, service.add_agent_channel(giulia, "sms", "+39 347 000 1111"))
    assert added.channels[-1] == ("sms", "393470001111")  # type: ignore[attr-defined]
    again = call(client, service.add_agent_channel(giulia, "telegram", "@giulia_new"))
    assert again.channels[1] == ("telegram", "giulia_new")  # type: ignore[attr-defined]  # where it stood
    with pytest.raises(InvalidInput, match="not on 'viber'"):
        call(client, service.remove_agent_channel(giulia, "viber"))
    removed = call(client, service.remove_agent_channel(giulia, "whatsapp"))
    assert [name for name, _ in removed.channels] == ["telegram", "sms"]  # type: ignore[attr-defined]
    assert removed.channel == "telegram"  # type: ignore[attr-defined]  # the new first
    call(client, service.remove_agent_channel(giulia, "sms"))
    with pytest.raises(InvalidInput, match="only channel"):
        call(client, service.remove_agent_channel(giulia, "telegram"))
    # Editing the first channel keeps the others.
    marco = call(client, service.update_agent(shop["marco"], {"channel": "signal", "address": "+49 1512 0000000"}))
    assert marco.channels == (("signal", "4915120000000"), ("email", MARCO_MAIL))  # type: ignore[attr-defined]


# -- clicks --------------------------------------------------------------------------------


def test_a_short_link_on_a_channel_opens_that_channel_and_stats_show_it(
    client: TestClient, service: Service, shop: dict[str, Any], auth: dict[str, str]
) -> None:
    call(client, service.create_link(business_id=shop["business"], channel="telegram", slug="tg", text="Ciao & co"))
    assert location(phone(client, "/s/tg")) == "https://t.me/giulia_dv?text=Ciao%20%26%20co"
    call(client, service.create_link(agent_id=shop["giulia"], channel="signal", slug="giulia-signal"))
    assert location(phone(client, "/s/giulia-signal")) == "https://signal.me/#p/+4915123456789"  # Marco has it
    call(client, service.create_link(business_id=shop["business"], slug="any"))
    assert location(phone(client, "/s/any?ch=email")).startswith("mailto:marco@dolcevita.example")
    assert location(phone(client, "/s/any?ch=nonsense")).startswith("https://wa.me/")  # a made-up name: ignored
    with pytest.raises(InvalidInput) as refused:
        call(client, service.create_link(business_id=shop["business"], channel="viber"))
    assert refused.value.errors[0].field == "channel" and "its channels: whatsapp, telegram, signal, email" in str(
        refused.value)
    flush(client)
    rows = call(client, service.store.clicks("short", "tg"))
    assert [row["channel"] for row in rows] == ["telegram"]  # type: ignore[attr-defined]
    # The default range ends at the business's today (a date from UTC's clock was the wrong day
    # between midnight UTC and midnight in Rome).
    stats = client.get(f"{API}/stats", params={"by": "channel"}, headers=auth).json()
    by_channel = {row["key"]: row["clicks"] for row in stats["rows"]}
    assert by_channel == {"telegram": 1, "signal": 1, "email": 1, "whatsapp": 1}


def test_a_channel_removed_from_the_business_answers_410_with_the_alternatives(
    client: TestClient, service: Service, shop: dict[str, Any]
) -> None:
    call(client, service.create_link(business_id=shop["business"], channel="telegram", slug="tg"))
    assert phone(client, "/s/tg").status_code == 302  # cached now
    call(client, service.remove_agent_channel(shop["giulia"], "telegram"))  # Giulia was the only one on it
    gone = phone(client, "/s/tg")
    assert gone.status_code == 410 and gone.headers["content-type"].startswith("text/html")
    assert "This chat link asks for Telegram, which is not available here." in gone.text
    assert "You can still write to Pasticceria Dolce Vita on:" in gone.text
    links = re.findall(r'<a class="button" href="([^"]+)"[^>]*>([^<]+)</a>', gone.text)
    assert links == [("https://chat.example.com/s/tg?ch=whatsapp", "WhatsApp"),
                     ("https://chat.example.com/s/tg?ch=signal", "Signal"),
                     ("https://chat.example.com/s/tg?ch=email", "E-mail")]  # fmt: skip
    assert not any(address in gone.text for address in ADDRESSES)  # only our routes, never an address
    for url, _ in links:  # each alternative works: a redirect to that channel, never a broken one
        assert urlsplit(location(phone(client, url))).scheme in ("https", "mailto")
    italian = phone(client, "/s/tg", **{"accept-language": "it-IT,it;q=0.9"})
    assert italian.status_code == 410 and "Puoi comunque scrivere a Pasticceria Dolce Vita su:" in italian.text
    assert "porta a Telegram, che qui non è disponibile" in italian.text
    # HEAD, previews and API clients are told the same.
    assert client.head("/s/tg", headers={"user-agent": IPHONE}).status_code == 410
    assert client.get("/s/tg", headers={"user-agent": WHATSAPP_PREVIEW}).status_code == 410
    problem = client.get("/s/tg", headers={"accept": "application/json"})
    assert problem.status_code == 410 and problem.json()["title"] == "Gone"
    assert problem.json()["alternatives"] == [{"channel": label, "url": url} for url, label in links]


def test_a_change_made_by_another_process_is_seen_at_once(
    client: TestClient, service: Service, shop: dict[str, Any], db_path: str
) -> None:
    call(client, service.create_link(business_id=shop["business"], channel="signal", slug="sig"))
    assert location(phone(client, "/s/sig")).startswith("https://signal.me/")

    async def elsewhere() -> None:  # the CLI's own connection to the same file
        store = await Store.open(db_path)
        try:
            await store.set_agent_channels(shop["marco"], [("whatsapp", "393487654321")])
        finally:
            await store.close()

    call(client, elsewhere())
    watch(client)  # the routing watcher sees routing_version move
    assert phone(client, "/s/sig").status_code == 410


def test_the_widget_offers_the_channels_by_name_and_routes_the_visitors_choice(
    client: TestClient, service: Service, shop: dict[str, Any]
) -> None:
    config = client.get("/api/widget/shop", headers={"origin": "https://dolcevita.example"})
    body = config.json()
    assert body["channels"] == [{"name": name, "label": label} for name, label in (
        ("whatsapp", "WhatsApp"), ("telegram", "Telegram"), ("signal", "Signal"), ("email", "E-mail"))]
    assert [(a["name"], a["channels"]) for a in body["agents"]] == [
        ("Giulia", ["whatsapp", "telegram"]), ("Marco", ["whatsapp", "signal", "email"])]
    assert body["words"]["apps"] == "Choose an app"
    assert not any(address in config.text for address in ADDRESSES)  # names and labels only
    giulia, marco = shop["giulia"], shop["marco"]
    page = {"u": "https://dolcevita.example/cassata", "l": "en"}
    assert location(client.get(f"/w/shop/{giulia}", params=page | {"ch": "telegram"}, headers={
        "user-agent": IPHONE})).startswith("https://t.me/giulia_dv?text=")  # fmt: skip
    # Giulia is not on Signal: Marco is, and takes it.
    assert location(client.get(f"/w/shop/{giulia}", params=page | {"ch": "signal"}, headers={
        "user-agent": IPHONE})) == "https://signal.me/#p/+4915123456789"  # fmt: skip
    assert location(client.get(f"/w/shop/{marco}", params=page, headers={"user-agent": IPHONE})).startswith(
        "https://wa.me/393487654321")  # no choice: the agent's first
    # The desktop's page and QR code carry the choice to the phone.
    landing = client.get(f"/w/shop/{giulia}", params=page | {"ch": "telegram"}, headers={"user-agent": DESKTOP})
    assert landing.status_code == 200
    qr = client.get(f"/qr/w/shop/{giulia}.svg", params={"u": page["u"], "ch": "telegram"})
    assert qr.status_code == 200
    flush(client)
    rows = call(client, service.store.clicks("widget", "shop"))
    assert [row["channel"] for row in rows] == ["telegram", "signal", "whatsapp", "telegram"]  # type: ignore[attr-defined]


def test_a_widget_click_for_a_channel_no_longer_offered_is_a_410_with_our_links(
    client: TestClient, service: Service, shop: dict[str, Any]
) -> None:
    call(client, service.remove_agent_channel(shop["marco"], "email"))
    page = {"u": "https://dolcevita.example/cassata", "t": "Cassata", "l": "de", "ch": "email"}
    gone = client.get(f"/w/shop/{shop['marco']}", params=page, headers={"user-agent": IPHONE,
                                                                          "accept-language": "de"})  # fmt: skip
    assert gone.status_code == 410
    assert "Dieser Chat-Link führt zu E-mail" in gone.text
    hrefs = re.findall(r'<a class="button" href="([^"]+)"', gone.text)
    assert [parse_qs(urlsplit(h.replace("&amp;", "&")).query)["ch"] for h in hrefs] == [
        ["whatsapp"], ["telegram"], ["signal"]]
    assert all(h.startswith("https://chat.example.com/w/shop/any?") for h in hrefs)
    assert not any(address in gone.text for address in ADDRESSES)
    follow = client.get(hrefs[1].replace("&amp;", "&"), headers={"user-agent": IPHONE})
    assert location(follow).startswith("https://t.me/giulia_dv?text=")
    assert "Cassata%20https%3A%2F%2Fdolcevita.example%2Fcassata" in location(follow)  # the message as it was
    assert client.get("/api/widget/shop", headers={"origin": "https://x.example"}).json()["channels"][-1] == {
        "name": "signal", "label": "Signal"}  # fmt: skip


# -- the API --------------------------------------------------------------------------------


def test_the_api_takes_and_gives_an_agents_channels(
    client: TestClient, auth: dict[str, str], shop: dict[str, Any]
) -> None:
    url = f"{API}/businesses/{shop['business']}/agents"
    made = client.post(url, json={"name": "Sara", "channels": [
        {"channel": "line", "address": "@dolcevita"}, {"channel": "call", "address": "+39 06 1234 5678"}]},
        headers=auth)  # fmt: skip
    assert made.status_code == 201, made.text
    sara = made.json()
    assert (sara["channel"], sara["address"]) == ("line", "@dolcevita")
    assert sara["channels"] == [{"channel": "line", "label": "LINE", "address": "@dolcevita"},
                                {"channel": "call", "label": "Phone call", "address": "390612345678"}]  # fmt: skip
    bad = client.post(url, json={"name": "X", "channels": [{"channel": "whatsapp", "address": GIULIA_WA},
                                                           {"channel": "email", "address": "not an address"}]},
                      headers=auth)  # fmt: skip
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["channels[1].address"]
    shape = client.post(url, json={"name": "X", "channels": [{"channel": "whatsapp"}]}, headers=auth)
    assert [e["field"] for e in shape.json()["errors"]] == ["channels[0].address"]
    both = client.post(url, json={"name": "X", "channel": "sms", "channels": [{"address": GIULIA_WA}]}, headers=auth)
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "channel"
    patched = client.patch(f"{API}/agents/{sara['id']}", json={"channels": [
        {"channel": "whatsapp", "address": GIULIA_WA}]}, headers=auth)  # fmt: skip
    assert patched.json()["channels"] == [{"channel": "whatsapp", "label": "WhatsApp", "address": "393471234567"}]
    link = client.post(f"{API}/links", json={"business_id": shop["business"], "channel": "telegram"}, headers=auth)
    assert link.status_code == 201 and link.json()["channel"] == "telegram" and link.json()["to"] is None
    plain = client.post(f"{API}/links", json={"business_id": shop["business"]}, headers=auth)
    assert plain.json()["channel"] is None  # no channel asked: whoever is in turn, on their first
    refused = client.post(f"{API}/links", json={"agent_id": shop["giulia"], "channel": "viber"}, headers=auth)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "channel"
    moved = client.patch(f"{API}/links/{link.json()['slug']}", json={"channel": "signal"}, headers=auth)
    assert moved.status_code == 200 and moved.json()["channel"] == "signal"
    document = client.get(f"{API}/openapi.json").json()
    schema = document["components"]["schemas"]["AgentChannel"]
    assert schema["properties"]["channel"]["enum"] == list(CHANNELS)
    assert "channels" in document["components"]["schemas"]["AgentOut"]["required"]


# -- the CLI ----------------------------------------------------------------------------------


def test_the_cli_adds_and_removes_channels_and_makes_links_on_one(db_path: str) -> None:
    runner, db = CliRunner(), db_path

    def run(*args: str) -> str:
        result = runner.invoke(cli, [*args[:2], "--db", db, *args[2:]] if args[0] == "agent" and args[1] == "channel"
                               else [args[0], args[1], "--db", db, *args[2:]])  # fmt: skip
        assert result.exit_code == 0, result.output
        return result.stdout

    business = run("business", "add", "Shop").strip()
    agent_id = run("agent", "add", "--business", business, "--name", "Giulia", "--to", GIULIA_WA).strip()
    table = runner.invoke(cli, ["agent", "channel", "add", "--db", db, agent_id, "--channel", "telegram",
                                "--to", "https://t.me/giulia_dv"])  # fmt: skip
    assert table.exit_code == 0 and "telegram  giulia_dv" in table.stdout and "Note:" not in table.stderr
    sms = runner.invoke(cli, ["agent", "channel", "add", "--db", db, agent_id, "--channel", "sms", "--to", GIULIA_WA])
    assert sms.exit_code == 0 and "Note: SMS opens only where an app handles it" in sms.stderr
    assert "Note" not in sms.stdout
    no_sms = runner.invoke(cli, ["agent", "channel", "remove", "--db", db, agent_id, "--channel", "sms"])
    assert no_sms.exit_code == 0 and "Note" not in no_sms.stderr  # no link asks for SMS
    rows = json.loads(runner.invoke(cli, ["agent", "channel", "list", "--db", db, agent_id, "--json"]).stdout)
    assert [(r["channel"], r["address"]) for r in rows] == [("whatsapp", "393471234567"), ("telegram", "giulia_dv")]
    bad = runner.invoke(cli, ["agent", "channel", "add", "--db", db, agent_id, "--channel", "email", "--to", "x"])
    assert bad.exit_code == 1 and "--to:" in bad.output  # the address field, as the CLI names it
    url = run("link", "create", "--business", business, "--channel", "telegram", "--slug", "tg").strip()
    assert url.endswith("/s/tg")
    assert "business 1 on Telegram" in run("link", "list")
    assert "393471234567  whatsapp, telegram" in run("agent", "list")
    only = runner.invoke(cli, ["agent", "channel", "remove", "--db", db, agent_id, "--channel", "telegram"])
    assert only.exit_code == 0 and "telegram" not in only.stdout
    # Found by a new user: the link made a moment before now answers 410, and the command says so.
    assert "Note: nobody at the business is on telegram now, so these links answer 410" in only.stderr
    assert "answer 410 (the page lists the channels left): tg. Add telegram to an agent" in only.stderr
    last = runner.invoke(cli, ["agent", "channel", "remove", "--db", db, agent_id, "--channel", "whatsapp"])
    assert last.exit_code == 1 and "only channel" in last.output


# -- the dashboard ---------------------------------------------------------------------------


def test_the_dashboard_adds_and_removes_an_agents_channels(
    client: TestClient, service: Service, shop: dict[str, Any], admin_account: str
) -> None:
    assert sign_in(client).status_code == 303
    admin = Admin(client)
    path = f"/admin/agents/{shop['giulia']}"
    page = admin.get(path)
    assert page.status_code == 200 and "Telegram" in page.text and "@giulia_dv" in page.text
    added = admin.post(path, {"action": "add-channel", "new_channel": "sms", "new_address": "+39 347 000 1111"})
    assert added.status_code == 303
    assert call(client, service.get_agent(shop["giulia"])).channels[-1] == ("sms", "393470001111")  # type: ignore[attr-defined]
    wrong = admin.post(path, {"action": "add-channel", "new_channel": "email", "new_address": "nope"})
    assert wrong.status_code == 422 and 'id="new_address-error"' in wrong.text
    removed = admin.post(path, {"action": "remove-channel", "channel": "telegram"})
    assert removed.status_code == 303
    assert [c for c, _ in call(client, service.get_agent(shop["giulia"])).channels] == [  # type: ignore[attr-defined]
        "whatsapp", "sms"]
    forged = client.post(path, data={"csrf": "forged", "action": "remove-channel", "channel": "sms"})
    assert forged.status_code == 403
    business = admin.get(f"/admin/businesses/{shop['business']}")
    assert "Signal +49 1512 3456789" in business.text and "E-mail marco@dolcevita.example" in business.text


def test_a_link_on_a_channel_keeps_it_when_moved_and_is_never_the_general_way_back(
    client: TestClient, service: Service, shop: dict[str, Any]
) -> None:
    call(client, service.create_link(business_id=shop["business"], channel="telegram", slug="tg"))
    moved = call(client, service.update_link("tg", {"agent_id": shop["giulia"]}))
    assert (moved.agent_id, moved.channel) == (shop["giulia"], "telegram")  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput) as refused:  # nobody at the business is on Viber
        call(client, service.update_link("tg", {"channel": "viber"}))
    assert refused.value.errors[0].field == "channel"
    fixed = call(client, service.update_link("tg", {"to": "+39 347 000 1111"}))
    assert (fixed.channel, fixed.address) == ("whatsapp", "393470001111")  # type: ignore[attr-defined]
    # The way back offered by a gone link is a link to the whole business on no one channel.
    call(client, service.create_link(business_id=shop["business"], channel="signal", slug="sig"))
    call(client, service.create_link(business_id=shop["business"], slug="old"))
    call(client, service.update_link("old", {"disabled": True}))
    page = phone(client, "/s/old")
    assert page.status_code == 410 and "/s/sig" not in page.text
    call(client, service.create_link(business_id=shop["business"], slug="general"))
    assert 'href="https://chat.example.com/s/general"' in phone(client, "/s/old").text


def test_the_dashboard_and_the_api_choose_and_clear_the_channel_a_link_to_people_opens(
    client: TestClient, service: Service, shop: dict[str, Any], admin_account: str, auth: dict[str, str]
) -> None:
    assert sign_in(client).status_code == 303
    admin = Admin(client)
    business = str(shop["business"])
    made = admin.post("/admin/links/new", {"destination": "business", "business_id": business, "opens": "signal",
                                           "kind": "short", "slug": "sig", "text": "Ciao"})  # fmt: skip
    assert made.status_code == 303, made.text
    assert call(client, service.get_link("sig")).channel == "signal"  # type: ignore[attr-defined]
    assert location(phone(client, "/s/sig")) == "https://signal.me/#p/+4915123456789"
    page = admin.get("/admin/links/sig")
    assert '<option value="signal" selected>Signal</option>' in page.text
    refused = admin.post("/admin/links/sig", {"destination": "business", "business_id": str(shop["business"]),
                                              "opens": "viber", "text": "Ciao", "mode": "auto"})  # fmt: skip
    assert refused.status_code == 422 and "nobody at business" in refused.text.lower()
    cleared = admin.post("/admin/links/sig", {"destination": "business", "business_id": str(shop["business"]),
                                              "opens": "", "text": "Ciao", "mode": "auto"})  # fmt: skip
    assert cleared.status_code == 303 and call(client, service.get_link("sig")).channel is None  # type: ignore[attr-defined]
    # The API: a channel given, then null to open each one's first channel again.
    assert client.patch(f"{API}/links/sig", json={"channel": "email"}, headers=auth).json()["channel"] == "email"
    assert location(phone(client, "/s/sig")) == "mailto:marco@dolcevita.example?subject=Ciao"
    assert client.patch(f"{API}/links/sig", json={"channel": None}, headers=auth).json()["channel"] is None
    assert call(client, service.get_link("sig")).channel is None  # type: ignore[attr-defined]


def test_the_channel_asked_for_stays_in_the_page_its_code_its_preview_and_its_web_button(
    client: TestClient, service: Service, shop: dict[str, Any]
) -> None:
    call(client, service.create_link(business_id=shop["business"], slug="shop", text="Ciao"))
    page = client.get("/s/shop?ch=Telegram", headers={"user-agent": DESKTOP})  # any case, as people type it
    assert page.status_code == 200 and "https://t.me/giulia_dv?text=Ciao" in page.text
    assert 'href="https://chat.example.com/s/shop?ch=telegram&amp;web=1"' in page.text
    web = client.get("/s/shop?ch=telegram&web=1", headers={"user-agent": DESKTOP})
    assert location(web) == "https://web.telegram.org/k/#@giulia_dv"
    plain = client.get("/s/shop", headers={"user-agent": DESKTOP})
    code = re.search(r"<svg.*?</svg>", page.text, re.S)
    assert code and code[0] != re.search(r"<svg.*?</svg>", plain.text, re.S)[0]  # type: ignore[index]
    preview = client.get("/s/shop?ch=telegram", headers={"user-agent": WHATSAPP_PREVIEW})
    assert '<meta property="og:url" content="https://chat.example.com/s/shop?ch=telegram">' in preview.text


def test_links_to_people_on_a_channel_say_what_the_app_will_not_do(
    client: TestClient, service: Service, shop: dict[str, Any], auth: dict[str, str]
) -> None:
    made = client.post(f"{API}/links", json={"business_id": shop["business"], "channel": "signal", "text": "Ciao",
                                             "short": True}, headers=auth)  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["notes"] == ["Signal links cannot carry a message: the text will not be pre-filled"]
    # Giulia has no e-mail: Marco, her colleague, takes it, and the note is e-mail's.
    made = client.post(f"{API}/links", json={"agent_id": shop["giulia"], "channel": "email", "short": True},
                       headers=auth)  # fmt: skip
    assert made.json()["notes"] == [
        "E-mail opens only where an app handles it; desktops get a page explaining that first"]
    plain = client.post(f"{API}/links", json={"business_id": shop["business"], "text": "Ciao", "short": True},
                        headers=auth)  # each one's first channel: WhatsApp, which takes text
    assert plain.json()["notes"] == []
