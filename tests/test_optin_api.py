"""/api/v1/optins: consents a shop's own system records, a number's history, opt-outs; the
ledger's rules (consent.may_message) read what these write."""

from __future__ import annotations

import pytest

from clicktochat.consent import may_message
from conftest import WhatsAppSetup

API = "/api/v1"
CONSENT = {"phone": "+39 347 123 4567", "topic": "orders", "source": "api",
           "consent_text": "Send me updates about my order on WhatsApp", "consent_version": "2026-12"}  # fmt: skip


def entries(whatsapp: WhatsAppSetup, phone: str = "393471234567") -> list:  # type: ignore[type-arg]
    return whatsapp.run(whatsapp.service.whatsapp.chats.consents(whatsapp.business_id, phone, None))  # type: ignore[no-any-return]


def test_a_consent_is_recorded_with_its_words_and_the_number_normalised(whatsapp: WhatsAppSetup) -> None:
    response = whatsapp.client.post(f"{API}/optins", json=CONSENT | {"page_url": "https://shop.example/checkout"},
                                    headers=whatsapp.auth)  # fmt: skip
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["phone"] == "393471234567"
    assert (body["state"], body["topic"], body["source"]) == ("in", "orders", "api")
    assert body["consent_text"] == CONSENT["consent_text"] and body["consent_version"] == "2026-12"
    assert body["proof"] == {"page": "https://shop.example/checkout"}
    assert may_message(entries(whatsapp), "orders").allowed
    assert not may_message(entries(whatsapp), "offers").allowed  # only what they asked for


def test_bad_input_names_the_field(whatsapp: WhatsAppSetup) -> None:
    bad = (({"phone": "+39 12"}), "phone"), ({"phone": "347 123 4567"}, "phone"), ({"topic": "Orders!"}, "topic"), \
        ({"topic": "*"}, "topic"), ({"source": "meta"}, "source"), ({"consent_text": "  "}, "consent_text"), \
        ({"consent_text": "\u200b"}, "consent_text"), ({"consent_text": "."}, "consent_text"), \
        ({"consent_version": "v 1"}, "consent_version")  # fmt: skip  # nothing a person could read: a review's
    for change, field in bad:
        response = whatsapp.client.post(f"{API}/optins", json=CONSENT | change, headers=whatsapp.auth)
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == [field], change
    missing = {k: v for k, v in CONSENT.items() if k != "consent_text"}
    response = whatsapp.client.post(f"{API}/optins", json=missing, headers=whatsapp.auth)
    assert response.json()["errors"] == [{"field": "consent_text", "reason": "is required"}]
    # Every mistake at once, a field missing or not: fixed in one round.
    wrong = {"phone": "+39 12", "topic": "Orders!", "source": "meta", "consent_version": "v 1"}
    response = whatsapp.client.post(f"{API}/optins", json=wrong, headers=whatsapp.auth)
    assert sorted(e["field"] for e in response.json()["errors"]) == ["consent_text", "consent_version", "phone",
                                                                     "source", "topic"]  # fmt: skip
    response = whatsapp.client.post(f"{API}/optins", json=CONSENT | {"phone": "+39 12", "consent_text": "\x07"},
                                    headers=whatsapp.auth)  # fmt: skip
    assert [e["field"] for e in response.json()["errors"]] == ["phone", "consent_text"]
    assert whatsapp.client.post(f"{API}/optins", json=CONSENT).status_code == 401
    assert entries(whatsapp) == []


def test_history_is_appended_and_an_opt_out_is_a_new_entry(whatsapp: WhatsAppSetup) -> None:
    assert whatsapp.client.post(f"{API}/optins", json=CONSENT, headers=whatsapp.auth).status_code == 201
    whatsapp.clock.move(60)
    gone = whatsapp.client.delete(f"{API}/optins/+393471234567", params={"topic": "orders"}, headers=whatsapp.auth)
    assert gone.status_code == 200 and gone.json()["state"] == "out"
    history = whatsapp.client.get(f"{API}/optins", params={"phone": "+39 347 123 4567"}, headers=whatsapp.auth).json()
    assert [(c["topic"], c["state"]) for c in history["consents"]] == [("orders", "in"), ("orders", "out")]
    assert history["topics"] == {"orders": "out"}
    assert not may_message(entries(whatsapp), "orders").allowed
    # No topic: out of everything, for every topic.
    whatsapp.clock.move(60)
    assert whatsapp.client.post(f"{API}/optins", json=CONSENT | {"topic": "offers"}, headers=whatsapp.auth).is_success
    assert whatsapp.client.delete(f"{API}/optins/393471234567", headers=whatsapp.auth).json()["topic"] == "*"
    assert not may_message(entries(whatsapp), "offers").allowed
    bad = whatsapp.client.get(f"{API}/optins", headers=whatsapp.auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "phone"
    user = whatsapp.client.get(f"{API}/optins", params={"phone": "IT.1234567890"}, headers=whatsapp.auth)
    assert user.status_code == 422 and "is a WhatsApp user id" in user.json()["errors"][0]["reason"]
    assert "country code" not in user.text  # (it said "has no country code": a new user's confusion)


def test_with_two_businesses_an_opt_out_must_name_one_and_the_error_names_the_parameter(
        whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    """Found trying the README: the error named `business_id`, which DELETE does not read."""
    whatsapp.run(whatsapp.service.add_business("Bar Centrale", "Europe/Rome"))
    unnamed = whatsapp.client.delete(f"{API}/optins/393471234567", params={"topic": "orders"}, headers=whatsapp.auth)
    assert unnamed.status_code == 422 and unnamed.json()["errors"] == [
        {"field": "business", "reason": f"name the business: {whatsapp.business_id} (Pasticceria Dolce Vita), "
                                        "2 (Bar Centrale)"}]
    named = whatsapp.client.delete(f"{API}/optins/393471234567", params={"topic": "orders",
                                   "business": whatsapp.business_id}, headers=whatsapp.auth)  # fmt: skip
    assert named.status_code == 200 and named.json()["business_id"] == whatsapp.business_id


def test_with_two_businesses_a_history_is_one_business_s(whatsapp: WhatsAppSetup) -> None:
    """Found by an agency's review: without `business`, the topics of every business were
    merged, `orders: out` where the other business still had `orders: in` and could send."""
    bar = whatsapp.run(whatsapp.service.add_business("Bar Centrale", "Europe/Rome"))
    for business in (whatsapp.business_id, bar.id):
        assert whatsapp.client.post(f"{API}/optins", json=CONSENT | {"business_id": business},
                                    headers=whatsapp.auth).status_code == 201  # fmt: skip
    assert whatsapp.client.delete(f"{API}/optins/393471234567", params={"topic": "orders", "business": bar.id},
                                  headers=whatsapp.auth).status_code == 200  # fmt: skip
    unnamed = whatsapp.client.get(f"{API}/optins", params={"phone": "+393471234567"}, headers=whatsapp.auth)
    assert unnamed.status_code == 422 and unnamed.json()["errors"] == [
        {"field": "business",
         "reason": f"name the business: {whatsapp.business_id} (Pasticceria Dolce Vita), {bar.id} (Bar Centrale)"}]
    for business, state in ((whatsapp.business_id, "in"), (bar.id, "out")):
        history = whatsapp.client.get(f"{API}/optins", params={"phone": "+393471234567", "business": business},
                                      headers=whatsapp.auth).json()  # fmt: skip
        assert history["topics"] == {"orders": state}
        assert {c["business_id"] for c in history["consents"]} == {business}


def test_stop_in_the_chat_after_an_opt_in_wins(whatsapp: WhatsAppSetup) -> None:
    assert whatsapp.client.post(f"{API}/optins", json=CONSENT, headers=whatsapp.auth).status_code == 201
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text("STOP"))
    whatsapp.process()
    decision = may_message(entries(whatsapp), "orders")
    assert not decision.allowed and "opted out" in decision.reason
    history = whatsapp.client.get(f"{API}/optins", params={"phone": "+393471234567"}, headers=whatsapp.auth).json()
    assert history["topics"] == {"orders": "out", "*": "out"}
    assert history["consents"][-1]["source"] == "chat"


@pytest.mark.parametrize("tap", ["button", "interactive", "localised"])
def test_a_stop_button_opts_out_like_the_word(whatsapp: WhatsAppSetup, tap: str) -> None:
    """Found by an attacker: a tap on a template's "Stop promotions" quick reply (Meta's own
    marketing opt-out button) or a STOP reply button was kept as a message and opted nobody out."""
    assert whatsapp.client.post(f"{API}/optins", json=CONSENT, headers=whatsapp.auth).status_code == 201
    whatsapp.clock.move(60)
    customer = whatsapp.customer()
    if tap == "button":
        whatsapp.run(customer.tap_button("Stop promotions", "STOP"))
    elif tap == "interactive":
        whatsapp.run(customer.tap_reply("stop", "STOP"))
    else:  # the label in the customer's language: its payload says it (seen by an attacker)
        whatsapp.run(customer.tap_button("Interrompi promozioni", "Stop promotions"))
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed


@pytest.mark.parametrize("how", ["stop", "erase"])
def test_an_opt_in_over_an_opt_out_needs_renewed_and_says_what_it_undoes(whatsapp: WhatsAppSetup, how: str) -> None:
    """Found by a new user: the README's walkthrough recorded an opt-in for a number that had
    written STOP a minute before, and nothing said so. Then a privacy review: an old call retried
    (or a list imported again) signed up a person who had written STOP or been erased, and updates
    went. It is refused unless the caller says the person gave it again (a checkout may ask again,
    and the person may say yes), and the owner is told what the entry undoes."""
    first = whatsapp.client.post(f"{API}/optins", json=CONSENT, headers=whatsapp.auth)
    assert first.status_code == 201 and first.json()["notes"] == []
    whatsapp.clock.move(60)
    if how == "stop":
        whatsapp.run(whatsapp.customer().send_text("STOP"))
        whatsapp.process()
    else:
        erased = whatsapp.client.delete(f"{API}/customers/393471234567", headers=whatsapp.auth)
        assert erased.status_code in (200, 204), erased.text
    whatsapp.clock.move(60)
    said = "STOP in the chat" if how == "stop" else "their data was erased"
    refused = whatsapp.client.post(f"{API}/optins", json=CONSENT, headers=whatsapp.auth)
    assert refused.status_code == 409 and refused.headers["content-type"] == "application/problem+json"
    assert said in refused.json()["detail"] and [e["field"] for e in refused.json()["errors"]] == ["renewed"]
    assert not may_message(entries(whatsapp), "orders").allowed  # nothing recorded
    again = whatsapp.client.post(f"{API}/optins", json=CONSENT | {"renewed": True}, headers=whatsapp.auth)
    assert again.status_code == 201
    [note] = again.json()["notes"]
    assert "opted out" in note and said in note and "new consent" in note
    assert may_message(entries(whatsapp), "orders").allowed
