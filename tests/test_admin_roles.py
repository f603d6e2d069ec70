"""Owners and agents in the dashboard: an agent answers the conversations (of one business when
kept to it) and is refused every other page, its forms included; owners keep everything. The
CLI makes and changes them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from clicktochat.accounts import create_admin
from clicktochat.admin import routes
from clicktochat.errors import InvalidInput
from conftest import WhatsAppSetup, connect_db
from test_admin_chats import PASSWORD, csrf_of, customer_writes, reply_form

OWNER_PAGES = ["/admin/links", "/admin/links/new", "/admin/businesses", "/admin/widgets", "/admin/keys",
               "/admin/whatsapp", "/admin/optins", "/admin/updates", "/admin/stats.csv"]  # fmt: skip


def sign_in(setup: WhatsAppSetup, username: str, role: str = "owner", business_id: int | None = None) -> Any:
    setup.run(create_admin(setup.service.store, username, PASSWORD, role, business_id))
    client = setup.client
    login = client.get("/admin/login")
    done = client.post("/admin/login", data={"csrf": csrf_of(login.text), "username": username,
                                             "password": PASSWORD, "next": "/admin/"})  # fmt: skip
    assert done.status_code == 303
    return client


def test_an_agent_answers_conversations_and_is_refused_everything_else(whatsapp: WhatsAppSetup) -> None:
    conversation = customer_writes(whatsapp)
    client = sign_in(whatsapp, "luca", "agent")
    home = client.get("/admin/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/admin/conversations"
    listed = client.get("/admin/conversations")
    assert listed.status_code == 200 and f"/admin/conversations/{conversation}" in listed.text
    nav = re.search(r'<nav aria-label="Dashboard">(.*?)</nav>', listed.text, re.S)
    assert nav and re.findall(r'href="([^"]+)"', nav.group(1)) == ["/admin/conversations"]
    assert 'href="/admin/whatsapp"' not in listed.text  # no link to a page that is a 403 (found by a new user)
    for path in OWNER_PAGES:
        refused = client.get(path)
        assert refused.status_code == 403, path
        assert "owners" in refused.text and "Sacher" not in refused.text
    csrf = csrf_of(listed.text)
    made = client.post("/admin/keys", data={"csrf": csrf, "name": "mine"})
    assert made.status_code == 403 and "mine" not in [k.name for k in whatsapp.run(whatsapp.service.store.api_keys())]
    url = f"/admin/conversations/{conversation}"
    sent = client.post(url, data={**reply_form(client.get(url).text), "text": "Arrivo subito"})
    assert sent.status_code == 303 and whatsapp.send() == 1
    assert whatsapp.standin.sent[0].body["text"]["body"] == "Arrivo subito"
    assert "Arrivo subito" in client.get(url).text and " · by luca" in client.get(url).text  # who answered
    assert client.post("/admin/logout", data={"csrf": csrf_of(client.get(url).text)}).status_code == 303


def test_an_agent_of_one_business_sees_only_its_conversations(whatsapp: WhatsAppSetup) -> None:
    ours = customer_writes(whatsapp, name="Giulia")
    other = whatsapp.run(whatsapp.service.add_business("Forno Rossi", "Europe/Rome"))
    with connect_db(whatsapp.service.settings.db) as db:
        db.execute("INSERT INTO conversations (number_id, business_id, wa_id, name, created_at, last_message_at,"
                   " last_inbound_at) VALUES (?, ?, '393489990000', 'Piero', ?, ?, ?)",
                   (whatsapp.number_id, other.id, *(int(whatsapp.clock()),) * 3))  # fmt: skip
        (theirs,) = db.execute("SELECT id FROM conversations WHERE wa_id = '393489990000'").fetchone()
    client = sign_in(whatsapp, "sofia", "agent", whatsapp.business_id)
    for query in ("", f"?business={other.id}"):  # a filter for another business shows nothing of it
        page = client.get(f"/admin/conversations{query}").text
        assert f"/admin/conversations/{ours}\"" in page and "Piero" not in page and "Forno Rossi" not in page
    assert client.get(f"/admin/conversations/{theirs}").status_code == 404
    own = client.get(f"/admin/conversations/{ours}")
    refused = client.post(f"/admin/conversations/{theirs}", data={**reply_form(own.text), "text": "Ciao Piero"})
    assert refused.status_code == 404 and whatsapp.send() == 0 and whatsapp.standin.sent == []


def test_an_agent_whose_business_is_removed_is_told(whatsapp: WhatsAppSetup) -> None:
    other = whatsapp.run(whatsapp.service.add_business("Forno Rossi", "Europe/Rome"))
    client = sign_in(whatsapp, "marta", "agent", other.id)
    assert "no longer exists" not in client.get("/admin/conversations").text
    whatsapp.run(whatsapp.service.delete_business(other.id))
    page = client.get("/admin/conversations")
    assert page.status_code == 200 and f"answers for business {other.id}, which no longer exists" in page.text


def test_owners_keep_every_page(whatsapp: WhatsAppSetup) -> None:
    client = sign_in(whatsapp, "ana")
    assert client.get("/admin/", follow_redirects=False).status_code == 200
    for path in OWNER_PAGES:
        assert client.get(path).status_code == 200, path


def test_only_an_agent_keeps_to_a_business_that_exists(whatsapp: WhatsAppSetup) -> None:
    store = whatsapp.service.store
    for role, business, field in (("owner", whatsapp.business_id, "business"), ("agent", 999, "business"),
                                  ("boss", None, "role")):  # fmt: skip
        with pytest.raises(InvalidInput) as refused:
            whatsapp.run(create_admin(store, "x", PASSWORD, role, business))
        assert refused.value.errors[0].field == field
    assert whatsapp.run(store.admins()) == []


@pytest.mark.parametrize("route", [r for r in routes if r.path not in ("/login", "/{path:path}")],
                         ids=lambda r: r.path)  # fmt: skip
def test_every_owner_page_refuses_an_agent(whatsapp: WhatsAppSetup, route: Any) -> None:
    """The pages listed in admin.routes: an agent gets a 403 on each but signing out (or is sent
    from the home page to the conversations)."""
    client = sign_in(whatsapp, "luca", "agent")
    path = re.sub(r"\{[^}]+\}", "1", route.path)
    method = "POST" if route.methods and "GET" not in route.methods else "GET"
    answer = client.request(method, "/admin" + path, follow_redirects=False,
                            data={"csrf": csrf_of(client.get("/admin/conversations").text)})  # fmt: skip
    expected = {"/logout": 303, "/": 303}.get(route.path, 403)
    if route.path.startswith("/conversations"):
        expected = 200 if method == "GET" and "{" not in route.path else 404
    assert answer.status_code == expected, (route.path, answer.status_code)
