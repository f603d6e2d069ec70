"""Two edits of different things sent at once (two requests to one server, or one to each of
two instances, as two `serve` processes on one database) both kept: found by a review, each of
these lost one of the two in most rounds, as the edit read the row, changed it in Python and
wrote it back whole. Each runs on the suite's database, with one `Service` and with two."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from clicktochat import database
from clicktochat.optins import Optins
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import connect_db

ROUNDS = 5


async def services(settings: Settings, two: bool) -> tuple[Service, Service]:
    first = await Service.open(settings)
    return (first, await Service.open(settings)) if two else (first, first)


async def closed(*opened: Service) -> None:
    for service in dict.fromkeys(opened):
        await service.close()


def run(settings: Settings, two: bool, scenario: Callable[[Service, Service], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        one, other = await services(settings, two)
        try:
            return await scenario(one, other)
        finally:
            await closed(one, other)

    return asyncio.run(main())


# -- widgets: settings merged in Python, written whole ---------------------------------


@pytest.mark.parametrize("two", [False, True], ids=["one_instance", "two_instances"])
def test_two_widget_patches_of_different_settings_both_stick(settings: Settings, two: bool) -> None:
    async def scenario(one: Service, other: Service) -> list[dict[str, Any]]:
        shop = await one.add_business("Dolce Vita", "Europe/Rome")
        lost = []
        for n in range(ROUNDS):
            widget = await one.create_widget(shop.id, f"w{n}")
            await asyncio.gather(one.update_widget(widget.id, {"greeting": "Ciao!"}),
                                 other.update_widget(widget.id, {"colour": "#ff0000"}))  # fmt: skip
            found = (await one.get_widget(widget.id)).settings
            if found.greeting != "Ciao!" or found.colour != "#ff0000":
                lost.append({"greeting": found.greeting, "colour": found.colour})
        return lost

    lost = run(settings, two, scenario)
    assert lost == [], f"{len(lost)}/{ROUNDS} rounds lost a setting: {lost}"


@pytest.mark.parametrize("two", [False, True], ids=["one_instance", "two_instances"])
def test_a_widget_moved_to_another_business_stays_moved_when_a_setting_changes_at_once(
    settings: Settings, two: bool
) -> None:
    async def scenario(one: Service, other: Service) -> list[int]:
        shop = await one.add_business("Dolce Vita", "Europe/Rome")
        second = await one.add_business("Bella Napoli", "Europe/Rome")
        lost = []
        for n in range(ROUNDS):
            widget = await one.create_widget(shop.id, f"m{n}")
            await asyncio.gather(one.update_widget(widget.id, {"business_id": second.id}),
                                 other.update_widget(widget.id, {"label": "Chat"}))  # fmt: skip
            found = await one.get_widget(widget.id)
            if found.business_id != second.id:
                lost.append(found.business_id)
        return lost

    lost = run(settings, two, scenario)
    assert lost == [], f"{len(lost)}/{ROUNDS} rounds moved the widget back: {lost}"


# -- agents: the list of channels read, changed in Python, replaced whole ---------------


@pytest.mark.parametrize("two", [False, True], ids=["one_instance", "two_instances"])
def test_two_channels_added_to_an_agent_at_once_are_both_kept(settings: Settings, two: bool) -> None:
    async def scenario(one: Service, other: Service) -> list[Any]:
        shop = await one.add_business("Dolce Vita", "Europe/Rome")
        lost = []
        for n in range(ROUNDS):
            agent = await one.add_agent(shop.id, f"Giulia {n}", "+39 347 123 4567")
            await asyncio.gather(one.add_agent_channel(agent.id, "telegram", "@dolcevita"),
                                 other.add_agent_channel(agent.id, "email", "shop@example.com"))  # fmt: skip
            found = (await one.get_agent(agent.id)).channels
            if {name for name, _ in found} != {"whatsapp", "telegram", "email"}:
                lost.append(found)
        return lost

    lost = run(settings, two, scenario)
    assert lost == [], f"{len(lost)}/{ROUNDS} rounds lost a channel: {lost}"


@pytest.mark.parametrize("two", [False, True], ids=["one_instance", "two_instances"])
def test_a_new_address_and_a_new_channel_at_once_are_both_kept(settings: Settings, two: bool) -> None:
    async def scenario(one: Service, other: Service) -> list[Any]:
        shop = await one.add_business("Dolce Vita", "Europe/Rome")
        lost = []
        for n in range(ROUNDS):
            agent = await one.add_agent(shop.id, f"Marco {n}", "+39 347 123 4567")
            await asyncio.gather(one.update_agent(agent.id, {"address": "+39 348 765 4321"}),  # PATCH /agents/{id}
                                 other.add_agent_channel(agent.id, "telegram", "@marco"))  # fmt: skip
            found = (await one.get_agent(agent.id)).channels
            if found != (("whatsapp", "393487654321"), ("telegram", "marco")):
                lost.append(found)
        return lost

    lost = run(settings, two, scenario)
    assert lost == [], f"{len(lost)}/{ROUNDS} rounds lost a change: {lost}"


# -- opt-in forms: the version bump decided against the form read before ----------------


@pytest.mark.parametrize("two", [False, True], ids=["one_instance", "two_instances"])
def test_a_forms_version_names_one_wording(settings: Settings, two: bool) -> None:
    """Two owners open the form; one changes the sentence (version 2), the other the title, and
    saves the page it loaded (the old sentence). The old sentence is back: it must not be called
    version 2, the version consents given under the new sentence name."""

    async def scenario(one: Service, other: Service) -> list[Any]:
        shop = await one.add_business("Dolce Vita", "Europe/Rome")
        values = {"slug": "news", "business_id": shop.id, "topics": ["offers"],
                  "wording": {"en": "Send me offers"}, "title": None}  # fmt: skip
        form = await Optins(one).save_form(values)
        assert form.version == 1
        after = await asyncio.gather(
            Optins(one).save_form(values | {"wording": {"en": "Send me offers and news"}}, form),
            Optins(other).save_form(values | {"title": "Offers"}, form),
        )
        final = await Optins(one).form("news")
        return [(f.version, f.wording["en"]) for f in (*after, final)]

    seen = run(settings, two, scenario)
    versions: dict[int, set[str]] = {}
    for version, wording in seen:
        versions.setdefault(version, set()).add(wording)
    assert all(len(w) == 1 for w in versions.values()), f"one version, two wordings: {seen}"


@pytest.mark.parametrize("two", [False, True], ids=["one_instance", "two_instances"])
def test_the_agent_page_saving_a_name_keeps_a_channel_added_at_once(settings: Settings, two: bool) -> None:
    """The dashboard's agent form always posts channel and address (unchanged here): saving only a
    new name rewrites the whole list of channels from the agent read at the start."""

    async def scenario(one: Service, other: Service) -> list[Any]:
        shop = await one.add_business("Dolce Vita", "Europe/Rome")
        lost = []
        for n in range(ROUNDS):
            agent = await one.add_agent(shop.id, f"Anna {n}", "+39 347 123 4567")
            await asyncio.gather(
                one.update_agent(agent.id, {"name": f"Anna B {n}", "channel": "whatsapp",
                                            "address": "+39 347 123 4567"}),  # admin_businesses.agent_page's dict
                other.add_agent_channel(agent.id, "telegram", "@anna_dolce"),
            )  # fmt: skip
            found = await one.get_agent(agent.id)
            if found.address_on("telegram") is None or found.name != f"Anna B {n}":
                lost.append((found.name, found.channels))
        return lost

    lost = run(settings, two, scenario)
    assert lost == [], f"{len(lost)}/{ROUNDS} rounds lost a change: {lost}"


# -- a row that keeps changing: after CHANGE_TRIES reads, 409 rather than a write on stale data --

def keep_changing(db: str, table: str, then: str) -> None:
    """A trigger on `table` standing for another request that changes the row every time this one
    reads it: each update by the application finds it changed (`then`: SQLite's trigger body)."""
    with connect_db(db) as conn:
        if database.is_postgres(db):
            action = "RETURN NULL" if "RAISE(IGNORE)" in then else (
                "INSERT INTO agent_channels (agent_id, channel, address, position) "
                "VALUES (NEW.id, 'telegram', '@elsewhere', 99); RETURN NEW")  # fmt: skip
            when = "BEFORE" if "RAISE(IGNORE)" in then else "AFTER"
            conn.execute(f"CREATE FUNCTION keep_changing() RETURNS trigger AS $$ BEGIN {action}; END $$"
                         " LANGUAGE plpgsql")  # fmt: skip
            conn.execute(f"CREATE TRIGGER keep_changing {when} UPDATE ON {table} FOR EACH ROW"
                         " EXECUTE FUNCTION keep_changing()")  # fmt: skip
        else:
            when = "BEFORE" if "RAISE(IGNORE)" in then else "AFTER"
            conn.execute(f"CREATE TRIGGER keep_changing {when} UPDATE ON {table} BEGIN {then}; END")


def test_a_widget_that_keeps_changing_gets_409_and_keeps_what_it_had(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    shop = client.post("/api/v1/businesses", json={"name": "Dolce Vita", "timezone": "Europe/Rome"}, headers=auth)
    created = client.post("/api/v1/widgets", json={"business_id": shop.json()["id"], "id": "busy"}, headers=auth)
    assert created.status_code == 201, created.text
    keep_changing(settings.db, "widgets", "SELECT RAISE(IGNORE)")

    answer = client.patch("/api/v1/widgets/busy", json={"greeting": "Ciao!"}, headers=auth)

    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "kept changing" in answer.json()["detail"] and "send it again" in answer.json()["detail"]
    assert client.get("/api/v1/widgets/busy", headers=auth).json()["greeting"] != "Ciao!"


def test_an_agent_whose_channels_keep_changing_gets_409_and_keeps_its_channels(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    shop = client.post("/api/v1/businesses", json={"name": "Dolce Vita", "timezone": "Europe/Rome"}, headers=auth)
    agent = client.post(f"/api/v1/businesses/{shop.json()['id']}/agents",
                        json={"name": "Anna", "address": "+39 347 123 4567"}, headers=auth).json()
    keep_changing(settings.db, "agents", "INSERT INTO agent_channels (agent_id, channel, address, position)"
                                         " VALUES (NEW.id, 'telegram', '@elsewhere', 99)")  # fmt: skip

    answer = client.patch(f"/api/v1/agents/{agent['id']}",
                          json={"channels": [{"channel": "signal", "address": "+39 347 123 4567"}]}, headers=auth)

    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert f"Agent {agent['id']}'s channels kept changing" in answer.json()["detail"]
    channels = client.get(f"/api/v1/agents/{agent['id']}", headers=auth).json()["channels"]
    assert [c["channel"] for c in channels] == ["whatsapp"]
