"""versions: a change made on what someone else has changed since is refused, through the API
(ETag, If-Match, 412) and the dashboard (a hidden `seen` field, the form again)."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from clicktochat.settings import Settings
from clicktochat.versions import matches, tag
from conftest import connect_db, until_waiting_for_a_lock
from test_admin import Admin, admin_account, sign_in

__all__ = ["admin_account"]  # the fixture, for pytest
API = "/api/v1"


def test_a_tag_names_the_stored_thing_and_if_match_compares_strongly() -> None:
    current = tag({"name": "Dolce Vita"})
    assert current == tag({"name": "Dolce Vita"}) and current != tag({"name": "Dolce Vita!"})
    assert current.startswith('"') and current.endswith('"')
    assert matches(current, current) and matches("*", current) and matches(f'"x", {current}', current)
    assert not matches("W/" + current, current)  # a weak tag never matches If-Match
    assert not matches(current.strip('"'), current) and not matches('"x"', current)


def make(client: TestClient, auth: dict[str, str]) -> dict[str, str]:
    """A business, an agent, a short link to the agent and a widget: their API paths."""
    shop = client.post(f"{API}/businesses", json={"name": "Dolce Vita", "timezone": "Europe/Rome"}, headers=auth)
    business = shop.json()["id"]
    agent = client.post(f"{API}/businesses/{business}/agents", json={"name": "Anna", "address": "+39 347 123 4567"},
                        headers=auth).json()["id"]  # fmt: skip
    link = client.post(f"{API}/links", json={"agent_id": agent, "text": "Ciao", "slug": "vetrina"}, headers=auth)
    widget = client.post(f"{API}/widgets", json={"business_id": business, "id": "shop"}, headers=auth)
    assert link.status_code == 201 and widget.status_code == 201, (link.text, widget.text)
    return {"business": f"{API}/businesses/{business}", "agent": f"{API}/agents/{agent}",
            "link": f"{API}/links/vetrina", "widget": f"{API}/widgets/shop"}  # fmt: skip


CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {  # what one client sends, what another, a field
    "business": ({"name": "Dolce Vita Roma"}, {"colour": "#aa3300"}, "colour"),
    "agent": ({"name": "Anna B"}, {"hours": "mon-fri 09:00-18:00"}, "hours"),
    "link": ({"text": "Buongiorno"}, {"campaign": "summer"}, "campaign"),
    "widget": ({"greeting": "Ciao!"}, {"colour": "#ff0000"}, "colour"),
}


@pytest.mark.parametrize("thing", sorted(CHANGES))
def test_a_patch_on_a_stale_etag_gets_412_and_changes_nothing(
    client: TestClient, auth: dict[str, str], thing: str
) -> None:
    path = make(client, auth)[thing]
    first, theirs, their_field = CHANGES[thing]
    read = client.get(path, headers=auth)
    etag = read.headers["etag"]
    assert client.get(path, headers=auth).headers["etag"] == etag  # unchanged: the same tag

    other = client.patch(path, json=theirs, headers=auth | {"If-Match": etag})  # someone else, first
    assert other.status_code == 200, other.text
    assert other.headers["etag"] != etag and other.headers["etag"] == client.get(path, headers=auth).headers["etag"]
    after_other = client.get(path, headers=auth).json()

    stale = client.patch(path, json=first, headers=auth | {"If-Match": etag})

    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert "was changed since it was read" in stale.json()["detail"]
    assert other.headers["etag"] in stale.json()["detail"]
    assert client.get(path, headers=auth).json() == after_other  # nothing of the stale change written
    again = client.patch(path, json=first, headers=auth | {"If-Match": other.headers["etag"]})
    assert again.status_code == 200, again.text
    assert again.json()[their_field] == after_other[their_field]  # made on what the other left


@pytest.mark.parametrize("thing", sorted(CHANGES))
def test_without_if_match_or_with_a_star_a_patch_goes_through(
    client: TestClient, auth: dict[str, str], thing: str
) -> None:
    path = make(client, auth)[thing]
    first, theirs, _ = CHANGES[thing]
    assert client.patch(path, json=theirs, headers=auth).status_code == 200
    assert client.patch(path, json=first, headers=auth | {"If-Match": "*"}).status_code == 200


def test_an_agents_channels_changed_since_its_etag_refuse_a_stale_change_of_channels(
    client: TestClient, auth: dict[str, str]
) -> None:
    path = make(client, auth)["agent"]
    etag = client.get(path, headers=auth).headers["etag"]
    added = [{"channel": "whatsapp", "address": "+39 347 123 4567"}, {"channel": "telegram", "address": "@anna_dv"}]
    assert client.patch(path, json={"channels": added}, headers=auth).status_code == 200

    stale = client.patch(path, json={"channels": [{"channel": "signal", "address": "+39 347 123 4567"}]},
                         headers=auth | {"If-Match": etag})  # fmt: skip

    assert stale.status_code == 412, stale.text
    assert [c["channel"] for c in client.get(path, headers=auth).json()["channels"]] == ["whatsapp", "telegram"]


def test_a_link_disabled_on_a_stale_etag_stays_enabled(client: TestClient, auth: dict[str, str]) -> None:
    path = make(client, auth)["link"]
    etag = client.get(path, headers=auth).headers["etag"]
    assert client.patch(path, json={"text": "Buongiorno"}, headers=auth).status_code == 200
    assert client.delete(path, headers=auth | {"If-Match": etag}).status_code == 412
    assert client.get(path, headers=auth).json()["disabled"] is False


@pytest.mark.parametrize("thing", ["business", "agent", "widget"])
def test_a_delete_on_a_stale_etag_gets_412_and_deletes_nothing(
    client: TestClient, auth: dict[str, str], thing: str
) -> None:
    """Someone changed it since it was read (a business renamed to be kept, say): the DELETE
    made on the old version is refused; made on the current one, it goes through."""
    business = client.post(f"{API}/businesses", json={"name": "Solo"}, headers=auth).json()["id"]
    paths = {"business": f"{API}/businesses/{business}"}
    agent = client.post(f"{API}/businesses/{business}/agents", json={"name": "Bob", "address": "+39 347 765 4321"},
                        headers=auth)  # fmt: skip
    paths["agent"] = f"{API}/agents/{agent.json()['id']}"
    if thing == "widget":
        assert client.post(f"{API}/widgets", json={"business_id": business, "id": "solo"}, headers=auth).is_success
        paths["widget"] = f"{API}/widgets/solo"
    elif thing == "business":
        assert client.delete(paths["agent"], headers=auth).status_code == 204
    path = paths[thing]
    etag = client.get(path, headers=auth).headers["etag"]
    change = CHANGES[thing][1]
    assert client.patch(path, json=change, headers=auth).status_code == 200  # someone else, meanwhile

    stale = client.delete(path, headers=auth | {"If-Match": etag})

    assert stale.status_code == 412, stale.text
    assert "was changed since it was read" in stale.json()["detail"]
    assert client.get(path, headers=auth).status_code == 200
    current = client.get(path, headers=auth).headers["etag"]
    assert client.delete(path, headers=auth | {"If-Match": current}).status_code == 204
    assert client.get(path, headers=auth).status_code == 404


@pytest.mark.postgresql
def test_the_condition_is_checked_on_the_row_the_write_applies_to(
    client: TestClient, auth: dict[str, str], settings: Settings
) -> None:
    """Another instance changes the business while the PATCH waits for its row: the condition is
    checked once that change is committed, not on the row as it was before (a plain read would
    see the old row, pass, then write over the other change)."""
    path = make(client, auth)["business"]
    etag = client.get(path, headers=auth).headers["etag"]
    with connect_db(settings.db) as other, ThreadPoolExecutor(1) as pool:
        other.execute("BEGIN")
        other.execute("UPDATE businesses SET name = 'Bella Napoli' WHERE id = ?", (int(path.rsplit("/", 1)[1]),))
        patch = pool.submit(client.patch, path, json={"colour": "#aa3300"}, headers=auth | {"If-Match": etag})
        until_waiting_for_a_lock(settings.db, "the PATCH")
        other.execute("COMMIT")
        answer = patch.result(timeout=30)
    assert answer.status_code == 412, answer.text
    assert client.get(path, headers=auth).json() | {"name": "Bella Napoli", "colour": None} == \
        client.get(path, headers=auth).json()  # fmt: skip


# -- the dashboard: a hidden `seen` in each edit form ------------------------------------

FORMS: dict[str, tuple[str, dict[str, str]]] = {  # the page of each thing, and a save of it made from that page
    "link": ("/admin/links/vetrina", {"destination": "to", "to": "+39 347 765 4321", "channel": "whatsapp",
                                      "text": "Buongiorno", "mode": "auto"}),
    "agent": ("/admin/agents/{agent}", {"name": "Anna B", "channel": "whatsapp", "address": "+39 347 123 4567"}),
    "widget": ("/admin/widgets/shop", {"greeting": "Ciao!", "position": "right"}),
    "business": ("/admin/businesses/{business}", {"name": "Panificio", "timezone": "Europe/Rome"}),
}  # fmt: skip


MISTAKES = {"link": {"to": "+39 12"}, "agent": {"address": "+39 12"}, "widget": {"colour": "red"},
            "business": {"timezone": "Nowhere/Atlantis"}}  # fmt: skip


@pytest.fixture
def dashboard(client: TestClient, admin_account: str) -> Admin:
    assert sign_in(client).status_code == 303
    return Admin(client)


@pytest.mark.parametrize("thing", sorted(FORMS))
def test_a_form_saved_after_someone_else_changed_it_is_shown_again_and_saves_the_second_time(
    client: TestClient, auth: dict[str, str], dashboard: Admin, thing: str
) -> None:
    admin = dashboard
    paths = make(client, auth)
    ids = {"agent": paths["agent"].rsplit("/", 1)[1], "business": paths["business"].rsplit("/", 1)[1]}
    page_path, fields = FORMS[thing]
    page_path = page_path.format(**ids)
    opened = admin.get(page_path)
    seen = re.search(r'name="seen" value="([^"]*)"', opened.text)
    assert seen and html.unescape(seen.group(1)) == client.get(paths[thing], headers=auth).headers["etag"]
    assert client.patch(paths[thing], json=CHANGES[thing][1], headers=auth).status_code == 200  # someone else
    stored = client.get(paths[thing], headers=auth).json()

    stale = admin.post(page_path, {"action": "save", "seen": html.unescape(seen.group(1)), **fields})

    assert stale.status_code == 409, stale.text[:2000]
    assert f"someone changed this {thing} after you opened this page" in stale.text
    assert client.get(paths[thing], headers=auth).json() == stored  # nothing written
    fresh = re.search(r'name="seen" value="([^"]*)"', stale.text)
    assert fresh and html.unescape(fresh.group(1)) == client.get(paths[thing], headers=auth).headers["etag"]
    again = admin.post(page_path, {"action": "save", "seen": html.unescape(fresh.group(1)), **fields})
    assert again.status_code == 303, again.text[:2000]
    assert client.get(paths[thing], headers=auth).json() != stored


@pytest.mark.parametrize("thing", sorted(FORMS))
def test_a_stale_form_with_a_mistake_says_both_before_anything_is_saved(
    client: TestClient, auth: dict[str, str], dashboard: Admin, thing: str
) -> None:
    """Found by a review: the 422 for the mistake carried the new version, and the next save,
    mistake fixed, overwrote the other change without a word."""
    paths = make(client, auth)
    ids = {"agent": paths["agent"].rsplit("/", 1)[1], "business": paths["business"].rsplit("/", 1)[1]}
    page_path, fields = FORMS[thing]
    page_path = page_path.format(**ids)
    seen = re.search(r'name="seen" value="([^"]*)"', dashboard.get(page_path).text)
    assert seen
    assert client.patch(paths[thing], json=CHANGES[thing][1], headers=auth).status_code == 200  # someone else
    stored = client.get(paths[thing], headers=auth).json()

    wrong = dashboard.post(page_path, {"action": "save", "seen": html.unescape(seen.group(1)), **fields,
                                       **MISTAKES[thing]})  # fmt: skip

    assert wrong.status_code == 409, wrong.text[:2000]
    assert f"someone changed this {thing} after you opened this page" in wrong.text
    assert client.get(paths[thing], headers=auth).json() == stored
