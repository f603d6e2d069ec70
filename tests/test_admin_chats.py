"""The dashboard's WhatsApp pages in-process (TestClient, the Graph stand-in on a real port,
time on a moved clock): who gets in, the connect form, disconnecting, the conversations and
their filters, replies that reach Meta once, and the refusals once the window has closed.
The same flow runs in Chromium in test_admin_chats_browser.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from clicktochat.accounts import create_admin
from clicktochat.admin_chats import routes, time_left, when
from clicktochat.consent import may_message
from clicktochat.conversations import CHANGED_NUMBER
from clicktochat.graph import GraphError
from clicktochat.payloads import new_wamid, number_changed
from clicktochat.payloads import referral as ad_referral
from conftest import NUMBER, VERIFY_TOKEN, WhatsAppSetup

PASSWORD = "correct horse battery"
SECRETS = {"access_token": "EAAG-not-to-be-shown-" + "s" * 30, "app_secret": "app-secret-not-to-be-shown",
           "verify_token": "verify-not-to-be-shown"}  # fmt: skip
CLOSED = "The 24-hour window is closed"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "every form carries a CSRF token"
    return found.group(1)


class Admin:
    """Ana, signed in: each POST carries the token of the page it came from."""

    def __init__(self, setup: WhatsAppSetup) -> None:
        self.client = setup.client
        setup.run(create_admin(setup.service.store, "ana", PASSWORD))
        login = self.client.get("/admin/login")
        done = self.client.post("/admin/login", data={"csrf": csrf_of(login.text), "username": "ana",
                                                      "password": PASSWORD, "next": "/admin/"})  # fmt: skip
        assert done.status_code == 303

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code != 500
        return response

    def post(self, path: str, data: dict[str, str], form_page: str | None = None) -> Any:
        page = self.get(form_page or path)
        response = self.client.post(path, data={"csrf": csrf_of(page.text), **data})
        assert response.status_code != 500
        return response


@pytest.fixture
def admin(whatsapp: WhatsAppSetup) -> Admin:
    return Admin(whatsapp)


def customer_writes(setup: WhatsAppSetup, text: str = "Buongiorno, avete la Sacher?", referral: Any = None,
                    **who: Any) -> int:  # fmt: skip
    """A customer writes in (a signed webhook); the conversation's id."""
    customer = setup.customer(**who)
    assert setup.run(customer.send_text(text, referral=referral)).status_code == 200
    setup.process()
    (found,) = [v for v in setup.run(setup.service.whatsapp.conversations())
                if v.conversation.wa_id == customer.wa_id]  # fmt: skip
    return found.conversation.id


def reply_form(html: str) -> dict[str, str]:
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert key, "the reply box carries an idempotency key"
    return {"csrf": csrf_of(html), "idempotency_key": key.group(1)}


# -- who gets in ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", routes, ids=lambda r: r.path)
def test_strangers_are_sent_to_sign_in(whatsapp: WhatsAppSetup, route: Any) -> None:
    url = "/admin" + re.sub(r"{\w+}", "1", route.path)
    for method in ("GET", "POST"):
        response = whatsapp.client.request(method, url)
        assert response.status_code == 303 and response.headers["location"].startswith("/admin/login"), url
    assert whatsapp.standin.sent == []


def test_a_post_without_its_csrf_token_is_refused_and_sends_nothing(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    conversation = customer_writes(whatsapp)
    refused = whatsapp.client.post(f"/admin/conversations/{conversation}", data={"text": "Sì!", "csrf": "forged"})
    assert refused.status_code == 403 and "This form has expired" in refused.text
    page = admin.get(f"/admin/conversations/{conversation}")
    other_site = whatsapp.client.post(f"/admin/conversations/{conversation}", data={"text": "Sì!", **reply_form(
        page.text)}, headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"})  # fmt: skip
    assert other_site.status_code == 403
    number = whatsapp.number_id
    assert whatsapp.client.post(f"/admin/whatsapp/{number}/disconnect", data={"csrf": "x"}).status_code == 403
    whatsapp.send()
    assert whatsapp.standin.sent == [] and "Sì!" not in admin.get(f"/admin/conversations/{conversation}").text
    assert admin.get("/admin/whatsapp").text.count("Disconnect…") == 1


# -- numbers -------------------------------------------------------------------------------


def test_the_numbers_page_lists_the_number_and_the_webhook_url(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    page = admin.get("/admin/whatsapp")
    assert page.status_code == 200
    assert "+39 347 000 1111" in page.text and "Pasticceria Dolce Vita" in page.text
    assert 'value="https://chat.example.com/webhooks/whatsapp"' in page.text
    assert NUMBER.access_token not in page.text and NUMBER.app_secret not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(("change", "field", "status"), [
    ({"phone_number_id": "12ab"}, "phone_number_id", 422),
    ({"waba_id": ""}, "waba_id", 422),
    ({"access_token": "short"}, "access_token", 422),
    ({"verify_token": "has spaces in it"}, "verify_token", 422),
    ({"phone_number_id": "999999999999", "access_token": NUMBER.access_token}, "phone_number_id", 422),  # unknown
    ({"access_token": "EAAG" + "w" * 40}, "access_token", 422),  # Meta: a token it does not know
    ({"business_id": "424242"}, "business_id", 422),
    ({"business_id": "two"}, "business_id", 422),
])  # fmt: skip
def test_connect_form_errors_are_shown_by_their_fields_and_secrets_are_never_echoed(
    whatsapp: WhatsAppSetup, admin: Admin, change: dict[str, str], field: str, status: int
) -> None:
    form = {"business_id": str(whatsapp.business_id), "phone_number_id": NUMBER.phone_number_id,
            "waba_id": NUMBER.waba_id, **SECRETS, **change}  # fmt: skip
    response = admin.post("/admin/whatsapp", form)
    assert response.status_code == status
    assert f'id="{field}-error"' in response.text and f'id="f-{field}"' in response.text
    for name in ("access_token", "app_secret", "verify_token"):
        assert form[name] not in response.text, name
        assert re.search(rf'name="{name}" type="password" value=""', response.text)
    if field not in ("business_id",) + tuple(SECRETS):
        assert f'value="{form[field]}"' in response.text  # what is not secret stays, to be corrected


def test_an_unreachable_graph_api_is_a_message_not_a_500(whatsapp: WhatsAppSetup, admin: Admin,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    async def down(*args: Any) -> Any:
        raise GraphError(0, 0, "Connection refused")

    monkeypatch.setattr(whatsapp.service.whatsapp.graph, "phone_number", down)
    form = {"business_id": str(whatsapp.business_id), "phone_number_id": NUMBER.phone_number_id,
            "waba_id": NUMBER.waba_id, **SECRETS}  # fmt: skip
    response = admin.post("/admin/whatsapp", form)
    assert response.status_code == 503 and "Could not reach the Graph API" in response.text
    assert all(secret not in response.text for secret in SECRETS.values())


def test_connecting_again_and_disconnecting_with_a_confirmation_step(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    form = {"business_id": str(whatsapp.business_id), "phone_number_id": NUMBER.phone_number_id,
            "waba_id": NUMBER.waba_id, "access_token": NUMBER.access_token, "app_secret": NUMBER.app_secret,
            "verify_token": VERIFY_TOKEN}  # fmt: skip
    done = admin.post("/admin/whatsapp", form)
    assert done.status_code == 303 and done.headers["location"] == "/admin/whatsapp?done=connected"
    assert "The number is connected." in admin.get("/admin/whatsapp?done=connected").text
    other = whatsapp.run(whatsapp.service.add_business("Altro negozio")).id
    moved = admin.post("/admin/whatsapp", form | {"business_id": str(other)})
    assert moved.status_code == 409 and f"is connected to business {whatsapp.business_id}" in moved.text
    assert f'value="{NUMBER.phone_number_id}"' in moved.text  # the form again, as typed (but its secrets)
    assert NUMBER.access_token not in moved.text and NUMBER.app_secret not in moved.text
    conversation = customer_writes(whatsapp)
    url = f"/admin/whatsapp/{whatsapp.number_id}/disconnect"
    asked = admin.get(url)
    assert asked.status_code == 200 and "Disconnect +39 347 000 1111?" in asked.text
    assert whatsapp.service.whatsapp.keys, "asking disconnects nothing"
    gone = admin.post(url, {})
    assert gone.status_code == 303 and gone.headers["location"] == "/admin/whatsapp?done=disconnected"
    listed = admin.get("/admin/whatsapp?done=disconnected").text
    assert "its conversations stay" in listed and "+39 347 000 1111" not in listed
    assert admin.get(url).status_code == 404 and admin.post(url, {}, form_page="/admin/whatsapp").status_code == 404
    page = admin.get(f"/admin/conversations/{conversation}")  # still readable, no longer answerable
    assert "Buongiorno" in page.text and "no longer connected" in page.text and "<textarea" not in page.text


def test_a_number_whose_token_meta_refused_says_to_connect_it_again(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    """A review's: Meta's 190 failed the number's messages and the dashboard still showed it as fine."""
    url = f"/admin/conversations/{customer_writes(whatsapp)}"
    assert whatsapp.client.post(url, data=reply_form(admin.get(url).text) | {"text": "Sì, c'è!"}).status_code == 303
    whatsapp.standin.expire_token(NUMBER.phone_number_id, "EAAG" + "n" * 40)
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    page = admin.get("/admin/whatsapp").text
    assert "Meta refused its access token" in page and "connect the number again with a new token" in page
    assert NUMBER.access_token not in page and "n" * 40 not in page
    form = {"business_id": str(whatsapp.business_id), "phone_number_id": NUMBER.phone_number_id,
            "waba_id": NUMBER.waba_id, "access_token": "EAAG" + "n" * 40, "app_secret": NUMBER.app_secret,
            "verify_token": VERIFY_TOKEN}  # fmt: skip
    assert admin.post("/admin/whatsapp", form).status_code == 303
    assert "Meta refused its access token" not in admin.get("/admin/whatsapp").text
    assert whatsapp.send() == 1 and [m.body["text"]["body"] for m in whatsapp.standin.sent] == ["Sì, c'è!"]


# -- conversations -------------------------------------------------------------------------


def test_a_conversation_shows_the_latest_ad_its_customer_came_from(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    """A review's: an ad clicked while the window was open was forgotten; the chat's start keeps the first."""
    first = ad_referral(source_url="https://fb.me/first", source_id="120210", headline="Sacher a domicilio",
                        body="Ordina ora", ctwa_clid="ARAkLkA8")  # fmt: skip
    conversation = customer_writes(whatsapp, "Avete la torta?", referral=first)
    page = admin.get(f"/admin/conversations/{conversation}").text
    assert "Came from: ad: Sacher a domicilio." in page and "Latest from" not in page
    whatsapp.clock.move(3600)
    later = ad_referral(source_url="https://fb.me/later", source_id="120299", headline="Cannoli -20%",
                        body="Solo oggi", ctwa_clid="ARAkLkB9")  # fmt: skip
    customer_writes(whatsapp, "E i cannoli?", referral=later)
    page = admin.get(f"/admin/conversations/{conversation}").text
    assert "Came from: ad: Sacher a domicilio." in page and "Ad: https://fb.me/first" in page
    assert "Latest from: ad: Cannoli -20% (a message of " in page and "Ad: https://fb.me/later" in page


def test_open_conversations_come_first_with_countdown_badges_and_where_they_came_from(
    whatsapp: WhatsAppSetup, admin: Admin
) -> None:
    ad = ad_referral(source_url="https://fb.me/ad", source_id="120210", headline="Sacher a domicilio",
                  body="Ordina ora", ctwa_clid="ARAkLkA8")  # fmt: skip
    old = customer_writes(whatsapp, "Avete la torta?", wa_id="393470000001", user_id="IT.1", name="Marco",
                          referral=ad)  # fmt: skip
    whatsapp.clock.move(20 * 3600)
    stopped = customer_writes(whatsapp, "STOP", wa_id="393470000002", user_id="IT.2", name="Lucia")
    whatsapp.clock.move(5 * 3600)  # Marco wrote 25 h ago: closed; Lucia 5 h ago: open, but she said STOP
    fresh = customer_writes(whatsapp, "Ciao!", wa_id="393470000003", user_id="IT.3", name="Sara")
    page = admin.get("/admin/conversations")
    assert page.status_code == 200
    order = [int(i) for i in re.findall(r'<a href="/admin/conversations/(\d+)">', page.text)]
    assert order == [fresh, stopped, old]
    assert re.search(r'data-until="\d+" data-now="\d+">closes in 24 h 0 min<', page.text)
    assert f'data-now="{int(whatsapp.clock.now)}"' in page.text
    assert "closes in 19 h 0 min" not in page.text and "may not send" in page.text  # Lucia: not a green countdown
    assert "window closed" in page.text and "opted out" in page.text
    assert "ad: Sacher a domicilio" in page.text and "Avete la torta?" in page.text
    assert "<script>" not in page.text and ' style="' not in page.text
    only_open = admin.get("/admin/conversations?open=true").text
    assert f"/admin/conversations/{old}\"" not in only_open and f"/admin/conversations/{fresh}\"" in only_open
    assert "Sara" in admin.get(f"/admin/conversations?business={whatsapp.business_id}").text
    other = whatsapp.run(whatsapp.service.add_business("Forno Rossi", "Europe/Rome"))
    assert "No conversation matches these filters" in admin.get(f"/admin/conversations?business={other.id}").text
    assert "No conversation matches" in admin.get("/admin/conversations?agent=7").text


@pytest.mark.parametrize("query", ["business=abc", "agent=-1", "offset=1e9", "business=99999999999999999999",
                                   "open=maybe", "offset=99999999999"])  # fmt: skip
def test_odd_filters_are_refused_or_ignored_never_a_500(whatsapp: WhatsAppSetup, admin: Admin, query: str) -> None:
    customer_writes(whatsapp)
    assert admin.get(f"/admin/conversations?{query}").status_code in (200, 422)


@pytest.mark.parametrize("url", ["/admin/conversations/abc", "/admin/conversations/999999",
                                 "/admin/conversations/99999999999999999999", "/admin/conversations/-1",
                                 "/admin/whatsapp/abc/disconnect", "/admin/whatsapp/999/disconnect"])  # fmt: skip
def test_bad_ids_are_404s_not_500s(whatsapp: WhatsAppSetup, admin: Admin, url: str) -> None:
    assert admin.get(url).status_code == 404
    assert admin.post(url, {"text": "Ciao"}, form_page="/admin/whatsapp").status_code == 404


# -- one conversation and its reply box ----------------------------------------------------------


def test_a_reply_is_queued_once_and_reaches_meta(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    conversation = customer_writes(whatsapp)
    url = f"/admin/conversations/{conversation}"
    page = admin.get(url)
    until = when(int(whatsapp.clock.now) + 24 * 3600, "Europe/Rome")  # e.g. 24 Dec 2026, 05:26 CET
    assert f"Open until {until}" in page.text and "May send: <strong id=\"may-send\">text</strong>" in page.text
    form = reply_form(page.text)
    first = whatsapp.client.post(url, data={**form, "text": "Sì, fino alle 19!"})
    again = whatsapp.client.post(url, data={**form, "text": "Sì, fino alle 19!"})  # a double click
    assert first.status_code == again.status_code == 303 and first.headers["location"] == f"{url}?done=queued"
    shown = admin.get(f"{url}?done=queued").text
    assert "Your reply is queued" in shown and shown.count("Sì, fino alle 19!") == 1 and ">queued<" in shown
    assert whatsapp.send() == 1 and whatsapp.send() == 0
    (sent,) = whatsapp.standin.sent
    assert sent.body["text"]["body"] == "Sì, fino alle 19!" and sent.body["to"] == "393471234567"
    assert ">sent<" in admin.get(url).text  # sent to Meta, no status yet
    assert whatsapp.status(sent.wamid, "delivered").status_code == 200
    whatsapp.process()
    assert ">delivered<" in admin.get(url).text


def test_a_reaction_to_our_reply_shows_on_what_it_reacts_to_and_a_changed_number_as_a_notice(
    whatsapp: WhatsAppSetup, admin: Admin,
) -> None:
    conversation = customer_writes(whatsapp)
    url = f"/admin/conversations/{conversation}"
    assert whatsapp.client.post(url, data={**reply_form(admin.get(url).text), "text": "Sì, 28 euro"}).status_code == 303
    assert whatsapp.send() == 1
    (sent,) = whatsapp.standin.sent
    customer = whatsapp.customer()
    assert whatsapp.run(customer.react(sent.wamid, "\U0001f44d")).status_code == 200
    assert whatsapp.run(customer.react(sent.wamid, None)).status_code == 200
    notice = number_changed(wamid=new_wamid(), timestamp=int(whatsapp.clock()), wa_id=customer.wa_id or "",
                            new_wa_id="393480001111", body="Giulia changed from +39 347 to +39 348")  # fmt: skip
    assert whatsapp.run(customer.deliver(notice)).status_code == 200
    assert whatsapp.process() == 3
    page = admin.get(url).text
    assert '<span class="tag">reaction</span> \U0001f44d to <q>Sì, 28 euro</q>' in page
    assert '<span class="tag">reaction</span> taken back to <q>Sì, 28 euro</q>' in page
    assert f'<span class="tag">WhatsApp</span> {CHANGED_NUMBER}' in page and "+39 348" not in page


def test_a_bad_reply_is_shown_by_the_box_and_keeps_its_key(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    conversation = customer_writes(whatsapp)
    url = f"/admin/conversations/{conversation}"
    form = reply_form(admin.get(url).text)
    empty = whatsapp.client.post(url, data={**form, "text": "   "})
    assert empty.status_code == 422 and 'id="text-error"' in empty.text
    assert f'value="{form["idempotency_key"]}"' in empty.text
    long = whatsapp.client.post(url, data={**form, "text": "x" * 4097})
    assert long.status_code == 422 and "4096" in long.text
    whatsapp.send()
    assert whatsapp.standin.sent == []


def test_once_the_window_closes_the_box_is_replaced_and_a_post_is_refused(whatsapp: WhatsAppSetup,
                                                                         admin: Admin) -> None:  # fmt: skip
    conversation = customer_writes(whatsapp)
    url = f"/admin/conversations/{conversation}"
    form = reply_form(admin.get(url).text)
    whatsapp.clock.move(24 * 3600 + 1)
    page = admin.get(url)
    assert CLOSED in page.text and "<textarea" not in page.text and "only templates" in page.text
    refused = whatsapp.client.post(url, data={**form, "text": "Ancora lì?"})
    assert refused.status_code == 409 and CLOSED in refused.text and 'role="alert"' in refused.text
    assert "Ancora lì?" not in refused.text.split("<h2>Messages</h2>")[1].split('id="reply-heading"')[0]
    assert '<blockquote class="unsent" id="unsent">Ancora lì?</blockquote>' in refused.text  # to copy, not lost
    whatsapp.send()
    assert whatsapp.standin.sent == []
    assert "window closed" in admin.get("/admin/conversations").text


def test_a_customer_who_wrote_stop_is_not_answered(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    conversation = customer_writes(whatsapp, "STOP")
    page = admin.get(f"/admin/conversations/{conversation}")
    assert "opted out" in page.text and "The customer opted out of messages" in page.text
    assert "<textarea" not in page.text
    assert 'May send: <strong id="may-send">nothing</strong>' in page.text  # it said "text" (a new user's report)
    (row,) = re.findall(r"<tr><td>.*?</tr>", admin.get("/admin/conversations").text, re.S)
    assert "may not send" in row and "countdown" not in row  # it showed "closes in 23 h 59 min" (a review's)


def test_a_sentence_that_starts_with_stop_stops_updates_but_may_be_answered(whatsapp: WhatsAppSetup,
                                                                          admin: Admin) -> None:  # fmt: skip
    """Found by a review: "Stop, wait, I got the address wrong" opted the customer out, to be safe,
    and then the agent could not answer the question just asked."""
    conversation = customer_writes(whatsapp, "Stop, aspetta, ho sbagliato indirizzo")
    url = f"/admin/conversations/{conversation}"
    page = admin.get(url)
    assert "opted out" in page.text and 'May send: <strong id="may-send">text</strong>' in page.text
    assert whatsapp.client.post(url, data={**reply_form(page.text), "text": "Qual è quello giusto?"}).status_code == 303
    whatsapp.send()
    assert [m.body["text"]["body"] for m in whatsapp.standin.sent] == ["Qual è quello giusto?"]
    (view,) = whatsapp.run(whatsapp.service.whatsapp.conversations())
    entries = whatsapp.run(whatsapp.service.whatsapp.chats.consents(view.conversation.business_id,
                                                                     view.conversation.wa_id, None))  # fmt: skip
    assert not may_message(entries, "orders").allowed  # updates and marketing stay stopped


def test_what_a_customer_wrote_cannot_turn_the_page_around_it(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    """Found by a review: a name holding U+202E (right-to-left override) reversed what followed it
    in the list. Names and texts are isolated (<bdi>, dir="auto"), as the Unicode bidi rules advise."""
    name, text = "Eve\u202e nomis", "\u202eCiao, avete la Sacher?"
    conversation = customer_writes(whatsapp, text, name=name)
    listed = admin.get("/admin/conversations").text
    assert f"<bdi>{name}</bdi></a>" in listed and f"<bdi>{text}</bdi>" in listed
    page = admin.get(f"/admin/conversations/{conversation}").text
    assert f"<h1><bdi>{name}</bdi>" in page and f'<p class="body" dir="auto">{text}</p>' in page


@pytest.mark.parametrize(("seconds", "said"), [
    (0, "closed"), (-5, "closed"), (59, "closes in less than a minute"), (60, "closes in 1 min"),
    (3 * 3600 + 12 * 60 + 30, "closes in 3 h 12 min"), (24 * 3600, "closes in 24 h 0 min"),
])  # fmt: skip
def test_time_left_in_words(seconds: int, said: str) -> None:
    assert time_left(seconds) == said


def test_times_are_shown_in_the_business_time_zone() -> None:
    assert when(1_798_000_000, "Europe/Rome") == "23 Dec 2026, 05:26 CET"
    assert when(1_798_000_000, "America/New_York") == "22 Dec 2026, 23:26 EST"
    assert when(None, "UTC") == ""


def test_a_spent_key_with_another_text_keeps_the_box_with_a_fresh_key(whatsapp: WhatsAppSetup, admin: Admin) -> None:
    conversation = customer_writes(whatsapp)
    url = f"/admin/conversations/{conversation}"
    form = reply_form(admin.get(url).text)
    assert whatsapp.client.post(url, data={**form, "text": "Sì"}).status_code == 303
    edited = whatsapp.client.post(url, data={**form, "text": "Sì, certo"})  # back, edited, sent again
    assert edited.status_code == 409 and 'id="text-error"' in edited.text and "<textarea" in edited.text
    assert "Sì, certo" in edited.text.split("<h2 id=\"reply-heading\">")[1]  # what was typed stays
    assert reply_form(edited.text)["idempotency_key"] != form["idempotency_key"]
    assert whatsapp.send() == 1


def test_two_agents_answering_at_once_are_told_before_their_replies_cross(whatsapp: WhatsAppSetup,
                                                                          admin: Admin) -> None:  # fmt: skip
    """From a review playing a support agent: Ana and Bea both answered the same question, and
    the customer got two answers with no warning to either."""
    conversation = customer_writes(whatsapp)
    url = f"/admin/conversations/{conversation}"
    page = admin.get(url).text
    seen = re.search(r'name="seen" value="(\d+)"', page)
    assert seen and int(seen.group(1)) > 0
    form = reply_form(page) | {"seen": seen.group(1)}
    own = whatsapp.client.post(url, data={**form, "text": "Un attimo, controllo"})  # her own reply is no crossing
    assert own.status_code == 303
    form = reply_form(admin.get(url).text) | {"seen": seen.group(1)}  # a page loaded before her own reply
    assert whatsapp.client.post(url, data={**form, "text": "Sì, c'è!"}).status_code == 303
    page = admin.get(url).text
    form = reply_form(page) | {"seen": re.findall(r'name="seen" value="(\d+)"', page)[0]}
    whatsapp.run(whatsapp.service.whatsapp.reply(conversation, "Sì, la Sacher è pronta", None, "admin:bea"))
    crossed = whatsapp.client.post(url, data={**form, "text": "Sì, ne abbiamo due"})
    assert crossed.status_code == 409 and "Another reply was sent by bea while you were typing" in crossed.text
    assert 'id="text-error"' in crossed.text and "Sì, ne abbiamo due</textarea>" in crossed.text  # the draft stays
    assert crossed.text.count("Sì, la Sacher è pronta") == 1  # Bea's reply is shown above
    again = reply_form(crossed.text) | {"seen": re.findall(r'name="seen" value="(\d+)"', crossed.text)[0]}
    assert again["idempotency_key"] == form["idempotency_key"]  # still the same message
    assert whatsapp.client.post(url, data={**again, "text": "Sì, ne abbiamo due"}).status_code == 303  # read: it goes
    assert whatsapp.send() == 4
    assert [s.body["text"]["body"] for s in whatsapp.standin.sent][-1] == "Sì, ne abbiamo due"
