"""Meta's webhook through the real endpoint, with real signatures: what is refused stores
nothing; what is accepted is stored before the 200 and applied once, whatever Meta repeats."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from clicktochat.chatstore import customer_lock
from clicktochat.conversations import CHANGED_NUMBER, parse, read_body
from clicktochat.errors import LengthRequired, PayloadTooLarge, UnsupportedMediaType
from clicktochat.payloads import (
    batch,
    encode,
    inbound_message,
    new_wamid,
    number_changed,
    post_signed,
    reaction,
    sign,
    webhook_body,
)
from clicktochat.webhooks import MAX_BODY_BYTES, WebhookHeaders
from conftest import NUMBER, VERIFY_TOKEN, WhatsAppSetup, connect_db

URL = "/webhooks/whatsapp"


def stored(setup: WhatsAppSetup) -> int:
    """Bodies kept: the journal's (SQLite) moved into the database first."""
    setup.run(setup.service.whatsapp.journal.drain())
    chats = setup.service.whatsapp.chats
    return int(setup.run(chats.run(lambda: chats.db.execute("SELECT count(*) FROM webhook_events").fetchone()[0])))


def text_body(text: str, wa_id: str = "393471234567", at: int = 1_798_000_000, wamid: str | None = None) -> Any:
    value = inbound_message(wamid=wamid or new_wamid(wa_id), timestamp=at, wa_id=wa_id, user_id=None, name="Ana",
                            text=text)  # fmt: skip
    return webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                        display_phone_number=NUMBER.display_phone_number, value=value)  # fmt: skip


def post(setup: WhatsAppSetup, body: bytes, signature: str | None, content_type: str = "application/json") -> Any:
    headers = {"content-type": content_type}
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    return setup.client.post(URL, content=body, headers=headers)


def test_the_handshake_echoes_the_challenge_only_for_our_verify_token(whatsapp: WhatsAppSetup) -> None:
    ok = whatsapp.client.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                          "hub.challenge": "1158201444"})  # fmt: skip
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = whatsapp.client.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                             "hub.challenge": "1"})  # fmt: skip
    assert wrong.status_code == 403 and wrong.headers["content-type"] == "application/problem+json"
    no_mode = whatsapp.client.get(URL, params={"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"})
    assert no_mode.status_code == 400 and no_mode.json()["errors"][0]["field"] == "hub.mode"
    long = whatsapp.client.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                            "hub.challenge": "1" * 201})  # fmt: skip
    assert long.status_code == 400 and long.json()["errors"][0]["field"] == "hub.challenge"
    no_challenge = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "<script>"}
    assert whatsapp.client.get(URL, params=no_challenge).status_code == 200  # plain text, nosniff: never HTML
    assert whatsapp.client.get(URL, params=no_challenge).headers["content-type"].startswith("text/plain")


def test_bad_signatures_and_bodies_are_refused_and_store_nothing(whatsapp: WhatsAppSetup) -> None:
    body = encode(text_body("Ciao"))
    good = sign(body, NUMBER.app_secret)
    assert post(whatsapp, body, None).status_code == 401
    assert post(whatsapp, body, sign(body, "b" * 32)).status_code == 403
    assert post(whatsapp, body + b" ", good).status_code == 403  # signed bytes, not parsed JSON
    assert post(whatsapp, body, good.replace("sha256=", "sha1=")).status_code == 403
    assert post(whatsapp, body, "sha256=" + "0" * 64).status_code == 403
    for odd in (b"sha256=\xe9\xe9", "sha256=é".encode() + good.encode()[7:]):  # not hex: refused, not a 500
        headers = {"content-type": "application/json", "x-hub-signature-256": odd}
        assert whatsapp.client.post(URL, content=body, headers=headers).status_code == 403
    not_json = b'{"object": "whatsapp_business_account", '
    assert post(whatsapp, not_json, sign(not_json, NUMBER.app_secret)).status_code == 400
    assert post(whatsapp, body, good, content_type="text/plain").status_code == 415
    huge = b'{"x": "' + b"a" * (4 * 1024 * 1024) + b'"}'
    assert post(whatsapp, huge, sign(huge, NUMBER.app_secret)).status_code == 413
    assert stored(whatsapp) == 0
    assert post(whatsapp, body, good).status_code == 200
    assert stored(whatsapp) == 1


def test_a_customer_writes_and_a_conversation_opens_with_its_window(whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    customer = whatsapp.customer(name="Giulia")
    assert whatsapp.run(customer.send_text("Buongiorno, avete la torta Sacher?")).status_code == 200
    assert whatsapp.process() == 1
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert len(listed) == 1
    c = listed[0]
    assert (c["wa_id"], c["user_id"], c["name"]) == ("393471234567", "IT.1234567890", "Giulia")
    assert c["window"]["open"] and c["window"]["may_send"] == "text"
    until = datetime.fromtimestamp(whatsapp.clock.now + 24 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert c["window"]["open_until"] == until  # 24 h after the message
    assert c["window"]["free_entry_point_until"] is None and c["reply_refused"] is None
    detail = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()
    assert [(m["direction"], m["text"]) for m in detail["messages"]] == [("in", "Buongiorno, avete la torta Sacher?")]


def test_redeliveries_and_repeats_in_other_bodies_are_applied_once(whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    wamid = new_wamid("393471234567")
    first = text_body("Ciao", wamid=wamid)
    raw = encode(first)
    for _ in range(3):  # Meta retries the same bytes
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert stored(whatsapp) == 1
    again = batch([first, text_body("E poi?", at=1_798_000_100)])  # the same message inside another body
    raw = encode(again)
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 2
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    detail = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()
    assert [m["text"] for m in detail["messages"]] == ["Ciao", "E poi?"]
    assert whatsapp.process() == 0


def test_a_batch_of_a_thousand_changes_is_applied_in_one_go(whatsapp: WhatsAppSetup) -> None:
    bodies = [text_body(f"n. {i}", wa_id=f"39347{i:07d}", at=1_798_000_000 + i) for i in range(1000)]
    raw = encode(batch(bodies))
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 1
    listed = whatsapp.client.get("/api/v1/conversations?limit=500", headers=whatsapp.auth).json()["conversations"]
    assert len(listed) == 500 and listed[0]["last_message"] == "n. 999"


def test_unknown_fields_and_event_types_are_kept_and_ignored(whatsapp: WhatsAppSetup) -> None:
    body = text_body("Ciao")
    body["entry"][0]["changes"][0]["value"]["something_new"] = {"a": [1, 2]}
    body["entry"][0]["changes"].append({"field": "message_template_quality_update", "value": {"x": 1}})
    body["entry"][0]["changes"].append({"field": "messages", "value": "not an object"})
    body["entry"].append({"id": "1", "changes": [{"field": "messages", "value": {"messages": [{"type": "text"}]}}]})
    weird = encode(body)
    assert post(whatsapp, weird, sign(weird, NUMBER.app_secret)).status_code == 200
    for odd in ([], {"object": "page"}, {"object": "whatsapp_business_account", "entry": "x"}, "text", 7):
        raw = json.dumps(odd).encode()
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 6
    assert len(whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]) == 1


def test_json_that_python_reads_only_with_help_is_applied_not_skipped(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a body with an integer of 5,000 digits, or nested 990 deep (JSON that
    SQLite's json_valid and simdjson take), got its 200 and was then skipped, messages and all:
    Python's parser refuses both. Either comes in an unknown field Meta might add."""
    now = int(whatsapp.clock.now)
    bodies = []
    for n, filler in enumerate((b"7" * 5000, b"[" * 990 + b"]" * 990)):
        body = text_body(f"Ciao {n}", wa_id=f"39347000005{n}", at=now)
        body["entry"][0]["changes"][0]["value"]["something_new"] = 0
        raw = encode(body)
        raw = raw.replace(b'"something_new":0', b'"something_new":' + filler)
        assert raw.count(filler) == 1
        bodies.append(raw)
    for raw in bodies:
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    # and what cannot be read is refused on both databases, never taken then skipped (a review of
    # the fix: SQLite's json_valid takes nesting to 2,000, and numbers simdjson refuses at any depth)
    for filler in (b"[" * 1100 + b"]" * 1100, b"[" * 1000 + b"18446744073709551616" + b"]" * 1000,
                   b"[" * 1000 + b"1e400" + b"]" * 1000):  # fmt: skip
        raw = encode(text_body("Lost?", wa_id="393470000059", at=now))
        raw = raw.replace(b'"messaging_product"', b'"x":' + filler + b',"messaging_product"')
        refused = post(whatsapp, raw, sign(raw, NUMBER.app_secret))
        assert refused.status_code == 400 and "nested deeper than 1,024" in refused.json()["detail"]
    assert whatsapp.process() == 2
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert sorted(c["last_message"] for c in listed) == ["Ciao 0", "Ciao 1"]


def test_changes_for_a_number_the_signer_does_not_own_are_not_applied(whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    body = text_body("Ciao")
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999"
    raw = encode(body)
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    whatsapp.process()
    assert whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"] == []


@pytest.mark.parametrize("kind", ["image", "document", "audio"])
def test_media_keeps_its_type_and_caption_not_its_body(whatsapp: WhatsAppSetup, auth: dict[str, str],
                                                       kind: str) -> None:  # fmt: skip
    customer = whatsapp.customer()
    whatsapp.run(customer.send_media(kind, caption="Questa?", mime_type="image/jpeg"))
    whatsapp.process()
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    (m,) = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()["messages"]
    assert (m["type"], m["caption"], m["mime_type"], m["text"]) == (kind, "Questa?", "image/jpeg", None)


def test_an_address_that_keeps_sending_bad_requests_is_told_to_wait_but_meta_never_is(
    whatsapp: WhatsAppSetup,
) -> None:
    body = encode(text_body("Ciao"))
    for _ in range(29):
        assert post(whatsapp, body, sign(body, "b" * 32)).status_code == 403
    refused = post(whatsapp, body, None)
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 61
    assert post(whatsapp, body, sign(body, "b" * 32)).status_code == 429
    # A correctly signed body is taken whatever its address did: Meta must never be locked out.
    assert post(whatsapp, body, sign(body, NUMBER.app_secret)).status_code == 200
    wrong_token = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
    assert whatsapp.client.get(URL, params=wrong_token).status_code == 429  # guessing verify tokens too
    whatsapp.clock.move(61)
    assert post(whatsapp, body, sign(body, "b" * 32)).status_code == 403


def test_bytes_read_at_once_are_bounded(whatsapp: WhatsAppSetup) -> None:
    """What unsigned strangers can make the server hold in memory: READ_BUDGET bytes of bodies
    being read; a body finding no room waits `reader_wait` seconds (none here), then gets a 503."""
    budget = whatsapp.service.whatsapp.read_budget
    whatsapp.service.whatsapp.reader_wait = 0.0
    for n in range(budget.total // budget.per_address):  # strangers at several addresses fill it
        assert whatsapp.run(budget.take(f"192.0.2.{n}", budget.per_address, 0.0))
    body = encode(text_body("Ciao"))
    busy = post(whatsapp, body, sign(body, NUMBER.app_secret))
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and stored(whatsapp) == 0
    whatsapp.service.whatsapp.read_budget.give("192.0.2.0", budget.per_address)
    assert post(whatsapp, body, sign(body, NUMBER.app_secret)).status_code == 200
    assert budget.used == budget.total - budget.per_address  # what the body held was given back


def test_one_address_holds_at_most_its_share_of_the_budget(whatsapp: WhatsAppSetup) -> None:
    budget = whatsapp.service.whatsapp.read_budget
    assert whatsapp.run(budget.take("192.0.2.1", budget.per_address, 0.0))
    assert not whatsapp.run(budget.take("192.0.2.1", 1, 0.0))  # that address: full
    assert whatsapp.run(budget.take("192.0.2.2", 1, 0.0))  # another: room
    body = encode(text_body("Ciao"))  # TestClient's address is neither
    assert post(whatsapp, body, sign(body, NUMBER.app_secret)).status_code == 200


def test_a_body_waits_for_room_to_be_read(whatsapp: WhatsAppSetup) -> None:
    """A burst (Meta sends many at once) is not refused while room frees up in time."""
    budget = whatsapp.service.whatsapp.read_budget

    async def busy_then_free() -> int:
        holders = [f"192.0.2.{n}" for n in range(budget.total // budget.per_address)]
        for address in holders:
            assert await budget.take(address, budget.per_address, 0.0)
        waiting = asyncio.create_task(post_signed("https://chat.example.com/webhooks/whatsapp", text_body("Ciao"),
                                                  NUMBER.app_secret, whatsapp.http()))  # fmt: skip
        for _ in range(200):  # long enough to be answered at once (in memory), were it refused: it waits
            await asyncio.sleep(0)
        assert not waiting.done()
        budget.give(holders[0], budget.per_address)
        return (await waiting).status_code  # type: ignore[no-any-return]

    assert whatsapp.run(busy_then_free()) == 200 and stored(whatsapp) == 1


def test_applied_bodies_are_deleted_after_the_retention_and_what_they_said_stays(whatsapp: WhatsAppSetup) -> None:
    whatsapp.run(whatsapp.customer().send_text("Ciao"))
    assert whatsapp.process() == 1 and stored(whatsapp) == 1
    whatsapp.clock.move(29 * 86400)
    whatsapp.process()
    assert stored(whatsapp) == 1
    whatsapp.clock.move(2 * 86400)
    whatsapp.process()
    assert stored(whatsapp) == 0
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert c["last_message"] == "Ciao"


def test_button_and_list_replies_keep_what_the_customer_tapped(whatsapp: WhatsAppSetup) -> None:
    customer = whatsapp.customer()
    whatsapp.run(customer.tap_button("Sì, confermo", "CONFIRM_ORDER_42"))
    whatsapp.run(customer.tap_reply("slot-2", "Domani alle 10"))
    whatsapp.process()
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    messages = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()["messages"]
    assert [(m["type"], m["text"]) for m in messages] == [("button", "Sì, confermo"),
                                                          ("interactive", "Domani alle 10")]  # fmt: skip


def test_a_location_contact_cards_and_an_order_are_kept_as_an_agent_reads_them(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a shared location, contact cards and an order arrived as an empty
    "[location]", "[contacts]", "[order]": the agent could not see the address the customer sent."""
    shared = {
        "location": {"latitude": 45.4642, "longitude": 9.19, "name": "Pasticceria", "address": "Via Roma 1, Milano"},
        "contacts": [{"name": {"formatted_name": "Marco Bianchi", "first_name": "Marco"},
                      "phones": [{"phone": "+39 348 555 0101", "type": "CELL", "wa_id": "393485550101"}]},
                     {"name": {"formatted_name": "Anna"}}],
        "order": {"catalog_id": "123", "text": "Per sabato", "product_items": [
            {"product_retailer_id": "TORTA-M", "quantity": 2, "item_price": 25, "currency": "EUR"},
            {"product_retailer_id": "CANNOLI", "quantity": 6, "item_price": 2.5, "currency": "EUR"}]},
        "interactive": {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": "{}"}},
    }  # fmt: skip
    at = int(whatsapp.clock())
    for n, (kind, content) in enumerate(shared.items()):
        value = inbound_message(wamid=new_wamid(f"{n}"), timestamp=at + n, wa_id="393471234567", user_id=None,
                                name="Ana", type=kind)  # fmt: skip
        value["messages"][0][kind] = content
        raw = encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                                  display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 4
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    messages = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()["messages"]
    assert [(m["type"], m["text"]) for m in messages] == [
        ("location", "Pasticceria · Via Roma 1, Milano · 45.4642, 9.19"),
        ("contacts", "Marco Bianchi +39 348 555 0101; Anna"),
        ("order", "2 × TORTA-M · 6 × CANNOLI · Per sabato"),
        ("interactive", "Sent"),
    ]


def test_reactions_are_kept_on_their_message_and_a_changed_number_is_a_notice_that_stops_the_old_one(
    whatsapp: WhatsAppSetup,
) -> None:
    """Reactions and system notices were dropped: the agent never saw a 👍 on the price they quoted,
    nor that the customer changed number. A reaction opens the window as a message does; the notice
    does not, and no update goes to the old number, which may be someone else's now."""
    at, wa_id = int(whatsapp.clock()), "393471234567"
    said = new_wamid(wa_id)
    values = [
        inbound_message(wamid=said, timestamp=at, wa_id=wa_id, user_id=None, name="Ana", text="Quanto costa?"),
        reaction(wamid=new_wamid(), timestamp=at + 60, wa_id=wa_id, user_id=None, name="Ana", message_id=said,
                 emoji="\U0001f44d"),
        reaction(wamid=new_wamid(), timestamp=at + 120, wa_id=wa_id, user_id=None, name="Ana", message_id=said,
                 emoji=None),  # taken back
        reaction(wamid=new_wamid(), timestamp=at + 180, wa_id=wa_id, user_id=None, name="Ana",
                 message_id="wamid.not-ours", emoji="\u2764\ufe0f"),
        number_changed(wamid=new_wamid(), timestamp=at + 240, wa_id=wa_id, new_wa_id="393480001111",
                       body="Ana changed from +39 347 123 4567 to +39 348 000 1111"),
        number_changed(wamid=new_wamid(), timestamp=at, wa_id="393489990000", new_wa_id="393489990001",
                       body="Bo changed from +39 348 999 0000 to +39 348 999 0001"),  # nobody we know
        inbound_message(wamid=(cy := new_wamid("393470000003")), timestamp=at, wa_id="393470000003", user_id=None,
                        name="Cy", text="Buongiorno"),
        reaction(wamid=new_wamid(), timestamp=at + 60, wa_id="393470000003", user_id=None, name="Cy", message_id=cy,
                 emoji=None),  # the list must not show "Buongiorno" as if written again
    ]  # fmt: skip
    for value in values:
        raw = encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                                  display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 8
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert next(c for c in listed if c["wa_id"] == "393470000003")["last_message"] == "[reaction]"
    ana, bo = (next(c for c in listed if c["wa_id"] == w) for w in (wa_id, "393489990000"))
    until = datetime.fromtimestamp(at + 180 + 24 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ana["window"]["open_until"] == until  # the last reaction's, not the notice's
    assert bo["window"]["open_until"] is None and bo["window"]["may_send"] == "nothing"  # and opted out: a new number
    messages = whatsapp.client.get(f"/api/v1/conversations/{ana['id']}", headers=whatsapp.auth).json()["messages"]
    assert [(m["type"], m["text"], m["caption"]) for m in messages] == [
        ("text", "Quanto costa?", None),
        ("reaction", "\U0001f44d", "Quanto costa?"),
        ("reaction", None, "Quanto costa?"),
        ("reaction", "\u2764\ufe0f", None),
        ("system", CHANGED_NUMBER, None),  # not Meta's words, which name the new number (erased apart from this)
    ]
    # The old number may go to someone else: nothing the person asked for is sent there any more.
    (entry,) = whatsapp.run(whatsapp.service.whatsapp.chats.consents(whatsapp.business_id, wa_id, None))
    assert (entry.state, entry.topic, entry.source) == ("out", "*", "meta")
    assert entry.wording == "Changed their WhatsApp number"


def test_a_failed_attempt_is_not_written_on_a_body_another_instance_applied_meanwhile(whatsapp: WhatsAppSetup) -> None:
    """Found by a load test: one instance's failed try was recorded on a body the other had applied."""
    raw = encode(text_body("Ciao"))
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 1
    chats = whatsapp.service.whatsapp.chats
    with connect_db(whatsapp.service.settings.db) as db:
        (event_id,) = db.execute("SELECT id FROM webhook_events").fetchone()
    whatsapp.run(chats.event_failed(event_id, "UniqueViolation: too late", int(whatsapp.clock()) + 60))
    with connect_db(whatsapp.service.settings.db) as db:
        assert db.execute("SELECT error, attempts FROM webhook_events").fetchone() == (None, 0)


def test_hostile_values_in_shared_content_are_left_out_not_shown_or_raised() -> None:
    values = {"location": {"latitude": True, "longitude": 2, "name": "A"},
              "contacts": [{"name": "x", "phones": [None, 3, {"phone": 5}]}, 7, {"name": {"formatted_name": "B"}}],
              "order": {"product_items": [{"product_retailer_id": "C", "quantity": True},
                                          {"product_retailer_id": "D", "quantity": 10**40}, "junk"]}}  # fmt: skip
    messages = [{"id": f"w{n}", "timestamp": "1800000000", "from": "39", "type": kind, kind: content}
                for n, (kind, content) in enumerate(values.items())]  # fmt: skip
    messages.append({"id": "w9", "timestamp": "1800000000", "from": "39", "type": "location",
                     "location": {"latitude": float("nan"), "longitude": 1e999}})  # fmt: skip
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "1"}, "messages": messages}}]}]}  # fmt: skip
    assert [event.text for event in read_body(body, {"1"})] == ["A", "B", "C · D", None]  # type: ignore[union-attr]


def test_a_number_signs_only_for_its_own_messages_and_statuses(whatsapp: WhatsAppSetup) -> None:
    """Another app's secret (another business's number) cannot mark our queued reply as sent."""
    other = "200000000000001"
    whatsapp.run(whatsapp.service.whatsapp.chats.connect_number(
        whatsapp.business_id, other, "200000000000002", "393400000009", "Altro", "EAAG" + "z" * 30,
        "other-app-secret-0123", "x" * 64, int(whatsapp.clock.now),
    ))  # fmt: skip
    whatsapp.run(whatsapp.service.whatsapp.reload())
    whatsapp.run(whatsapp.customer().send_text("Ciao"))
    whatsapp.process()
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    queued = whatsapp.client.post(f"/api/v1/conversations/{c['id']}/messages", json={"text": "Eccoci"},
                                  headers=whatsapp.auth).json()  # fmt: skip
    forged = webhook_body(waba_id="200000000000002", phone_number_id=other, display_phone_number="393400000009",
                          value={"statuses": [{"id": "wamid.FORGED", "status": "read", "timestamp": str(int(
                              whatsapp.clock.now)), "recipient_id": "393471234567",
                              "biz_opaque_callback_data": str(queued["id"])}]})  # fmt: skip
    raw = encode(forged)
    assert post(whatsapp, raw, sign(raw, "other-app-secret-0123")).status_code == 200
    whatsapp.process()
    detail = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()
    assert detail["messages"][-1]["status"] == "queued" and detail["messages"][-1]["wamid"] is None
    assert whatsapp.send() == 1 and len(whatsapp.standin.sent) == 1  # still sent, once


def test_timestamps_that_cannot_be_meta_are_skipped_not_fatal(whatsapp: WhatsAppSetup) -> None:
    for at in (253402250000, -100000000000, 0):
        raw = encode(text_body("Dal futuro", at=at))
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    raw = encode(text_body("Adesso", at=int(whatsapp.clock.now)))
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 4
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth)
    assert listed.status_code == 200 and [c["last_message"] for c in listed.json()["conversations"]] == ["Adesso"]
    assert whatsapp.client.get("/admin/conversations").status_code in (200, 303)


def test_chunked_bodies_are_read_whatever_the_header_case(whatsapp: WhatsAppSetup) -> None:
    raw = encode(text_body("Ciao"))

    def chunks() -> Any:
        yield raw[:100]
        yield raw[100:]

    answer = whatsapp.client.post(URL, content=chunks(), headers={
        "content-type": "application/json", "x-hub-signature-256": sign(raw, NUMBER.app_secret)})  # fmt: skip
    assert answer.status_code == 200 and stored(whatsapp) == 1


@pytest.mark.postgresql  # one SQLite file has one writer at a time
def test_a_body_another_instance_is_applying_is_left_to_it(whatsapp: WhatsAppSetup) -> None:
    """Several instances on one PostgreSQL: a processor skips the bodies another one holds (the
    row locked by its transaction), and once that one has committed, finds nothing left to do:
    a body is applied by one instance, once."""
    body = encode(text_body("Ciao"))
    assert post(whatsapp, body, sign(body, NUMBER.app_secret)).status_code == 200
    with connect_db(whatsapp.service.settings.db) as other:  # the other instance, mid-transaction
        other.execute("BEGIN")
        other.execute("SELECT id FROM webhook_events FOR UPDATE")
        assert whatsapp.process() == 0  # not waiting for it, not applying it too
        other.execute("UPDATE webhook_events SET processed_at = 1")
        other.execute("COMMIT")
    assert whatsapp.process() == 0
    assert whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"] == []
    assert stored(whatsapp) == 1


@pytest.mark.postgresql  # one SQLite file has one writer at a time
def test_a_conversation_another_instance_is_making_is_taken_not_an_error(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: two instances applying a new customer's messages at once both inserted
    their conversation; one failed on the unique index (the batch then tried body by body, with
    a traceback in the log when there were several, and an erasure took it for a failing body).
    The insert now waits for the other instance and takes its conversation."""
    body = encode(text_body("Ciao"))
    assert post(whatsapp, body, sign(body, NUMBER.app_secret)).status_code == 200
    whatsapp.run(whatsapp.service.whatsapp.journal.drain())
    chats = whatsapp.service.whatsapp.chats
    now = int(whatsapp.clock())
    read = [(event_id, parse(raw, numbers)) for event_id, raw, numbers, _ in whatsapp.run(chats.due_events(now, 10))]
    with connect_db(whatsapp.service.settings.db) as other:  # the other instance, making the same conversation
        other.execute("BEGIN")
        other.execute("INSERT INTO conversations (number_id, business_id, wa_id, name, created_at, last_message_at)"
                      " VALUES (?, ?, '393471234567', 'Giulia', 1, 1)", (whatsapp.number_id, whatsapp.business_id))
        assert whatsapp.client.portal is not None
        applying = whatsapp.client.portal.start_task_soon(chats.apply_events, read, now)
        deadline = time.monotonic() + 60  # a bound on a condition, not a timing assumption
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()").fetchone()[0] < 1:  # fmt: skip
            assert time.monotonic() < deadline, "the insert never waited"
            time.sleep(0.01)
        other.execute("COMMIT")
    assert applying.result(60) == 1  # at the first try, in the one transaction
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert c["last_message"] == "Ciao" and c["name"] == "Ana"  # the one conversation, its name from the message


@pytest.mark.postgresql  # one SQLite file has one writer at a time
@pytest.mark.parametrize("known", [False, True], ids=["new customers", "known customers"])
def test_two_instances_take_the_same_customers_in_one_order_and_never_deadlock(whatsapp: WhatsAppSetup,
                                                                                known: bool) -> None:  # fmt: skip
    """Found by a load test of two instances: each made (or updated) the conversations of a body's
    customers in the order they wrote, so two bodies with the same two customers in opposite orders
    deadlocked, and PostgreSQL rolled one back after a second. Each instance now locks the customers
    of its batch first, in one order. The other instance here does as ours does (takes both locks),
    then writes the first customer's conversation and, once ours waits, the second's; our body
    names them the other way round."""
    first, second = "393470000001", "393470000002"
    chats = whatsapp.service.whatsapp.chats
    if known:
        for wa_id in (first, second):
            raw = encode(text_body("Prima", wa_id=wa_id, at=int(whatsapp.clock()) - 60))
            assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
        assert whatsapp.process() == 2
    at = int(whatsapp.clock())
    value = inbound_message(wamid=new_wamid(second), timestamp=at, wa_id=second, user_id=None, name="Bo", text="Ciao")
    value["messages"] += inbound_message(wamid=new_wamid(first), timestamp=at, wa_id=first, user_id=None, name="Al",
                                         text="Ciao")["messages"]  # fmt: skip
    value["contacts"] += [{"profile": {"name": "Al"}, "wa_id": first}]
    raw = encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                              display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    whatsapp.run(whatsapp.service.whatsapp.journal.drain())
    now = int(whatsapp.clock())
    read = [(event_id, parse(body, numbers)) for event_id, body, numbers, _ in whatsapp.run(chats.due_events(now, 10))]

    def take(other: Any, wa_id: str) -> None:  # as the other instance's batch does: make it, or update it
        if known:
            other.execute("UPDATE conversations SET last_message_at = last_message_at WHERE wa_id = ?", (wa_id,))
        else:
            other.execute("INSERT INTO conversations (number_id, business_id, wa_id, created_at, last_message_at)"
                          " VALUES (?, ?, ?, 1, 1)", (whatsapp.number_id, whatsapp.business_id, wa_id))  # fmt: skip

    with connect_db(whatsapp.service.settings.db) as other:
        other.execute("BEGIN")
        for key in sorted(customer_lock(NUMBER.phone_number_id, wa_id) for wa_id in (first, second)):
            other.execute("SELECT pg_advisory_xact_lock(?)", (key,))
        take(other, first)
        assert whatsapp.client.portal is not None
        applying = whatsapp.client.portal.start_task_soon(chats.apply_events, read, now)
        deadline = time.monotonic() + 60  # a bound on a condition, not a timing assumption
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()").fetchone()[0] < 1:  # fmt: skip
            assert time.monotonic() < deadline, "our batch never waited"
            time.sleep(0.01)
        # Ours waits and holds nothing of the second customer's: the other instance takes it at
        # once. (Before, ours had made or updated it, and waited for the first: a deadlock.)
        other.execute("SET LOCAL lock_timeout = '500ms'")  # before PostgreSQL looks for a deadlock (after 1 s)
        take(other, second)
        other.execute("COMMIT")
    assert applying.result(60) == 1
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert sorted((c["wa_id"], c["last_message"]) for c in listed) == [(first, "Ciao"), (second, "Ciao")]


def test_an_identifier_another_conversation_holds_keeps_the_two_apart(whatsapp: WhatsAppSetup) -> None:
    """A customer first known only by their user id (number withheld), and a chat with their
    number: a message naming both goes to the user id's chat, which cannot take the number
    (another conversation has it). The refused write is undone alone; the batch is applied."""

    def message(wa_id: str | None, user_id: str | None, text: str, at: int) -> Any:
        value = inbound_message(wamid=new_wamid(wa_id or "39"), timestamp=at, wa_id=wa_id, user_id=user_id,
                                name="Ana", text=text)  # fmt: skip
        return webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                            display_phone_number=NUMBER.display_phone_number, value=value)  # fmt: skip

    at = int(whatsapp.clock())
    for body in (message(None, "IT.111", "Ciao", at - 60), message("393471234567", None, "Salve", at - 50),
                 message("393471234567", "IT.111", "Sono io", at - 40)):  # fmt: skip
        raw = encode(body)
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 3
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert {(c["wa_id"], c["user_id"], c["last_message"]) for c in listed} == {
        ("393471234567", None, "Salve"), (None, "IT.111", "Sono io")}  # fmt: skip


def partial_post(whatsapp: WhatsAppSetup, address: str, sent: list[Any], arrived: asyncio.Event) -> Any:
    """A POST to the webhook straight into the app, from `address`, whose body's first byte
    arrives and the rest never does (the connection idles); `sent`: what the app answered."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "path": URL, "raw_path": URL.encode(), "root_path": "",
        "query_string": b"", "client": (address, 40000), "server": ("chat.example.com", 443),
        "headers": [(b"host", b"chat.example.com"), (b"content-type", b"application/json"),
                    (b"x-hub-signature-256", b"sha256=00"), (b"transfer-encoding", b"chunked")],
    }  # fmt: skip
    chunks = [{"type": "http.request", "body": b"{", "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            arrived.set()
            return chunks.pop()
        await asyncio.Event().wait()  # never: the client idles
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return whatsapp.client.app(scope, receive, send)


def test_connections_that_send_a_byte_and_idle_never_hold_up_metas_bodies(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: eight such connections used to take every turn to be read, and
    Meta's bodies got a 503 for as long as they stayed open. Now each holds its one byte."""
    whatsapp.service.whatsapp.reader_wait = 0.0  # a body finding no room would be refused at once

    async def idle_then_post() -> tuple[int, int]:
        started = []
        for n in range(50):
            arrived = asyncio.Event()
            started.append(asyncio.create_task(partial_post(whatsapp, f"192.0.2.{n}", [], arrived)))
            await arrived.wait()
        response = await post_signed("https://chat.example.com" + URL, text_body("Ciao"), NUMBER.app_secret,
                                     whatsapp.http())  # fmt: skip
        held = whatsapp.service.whatsapp.read_budget.used
        for task in started:
            task.cancel()
        return response.status_code, held

    status, held = whatsapp.run(idle_then_post())
    assert status == 200 and stored(whatsapp) == 1
    assert held == 50  # a byte each


def test_a_body_that_never_finishes_arriving_is_a_408_and_gives_its_bytes_back(whatsapp: WhatsAppSetup) -> None:
    whatsapp.service.whatsapp.read_deadline = 0.05

    async def slow() -> list[Any]:
        sent: list[Any] = []
        await partial_post(whatsapp, "192.0.2.7", sent, asyncio.Event())
        return sent

    sent = whatsapp.run(slow())
    assert sent[0]["status"] == 408
    assert b"took more than 0.05 s to arrive" in sent[1]["body"]
    assert whatsapp.service.whatsapp.read_budget.used == 0 and stored(whatsapp) == 0


@pytest.mark.parametrize("path", [URL, "/optin/dolce"])
def test_a_client_that_hangs_up_mid_body_is_no_error_in_the_logs(whatsapp: WhatsAppSetup, path: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """Found by an attacker: each such request wrote two tracebacks (about 40 lines) as an
    internal error, unauthenticated and unthrottled."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "client": ("192.0.2.8", 40000),
        "server": ("chat.example.com", 443),
        "headers": [(b"host", b"chat.example.com"), (b"x-hub-signature-256", b"sha256=00"),
                    (b"content-type", b"application/json" if path == URL else b"application/x-www-form-urlencoded"),
                    (b"content-length", b"100")],
    }  # fmt: skip
    messages = [{"type": "http.disconnect"}, {"type": "http.request", "body": b"{", "more_body": True}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return messages.pop()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level("INFO"):
        whatsapp.run(whatsapp.client.app(scope, receive, send))
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info] == []
    assert sent[0]["status"] == 400 and stored(whatsapp) == 0


def test_a_lone_surrogate_in_a_text_is_kept_as_a_replacement_not_retried_for_ever(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: JSON may escape half of a UTF-16 pair ("\\ud800"), which no database
    can hold: the body failed to apply, with its whole batch, every hour for ever."""
    raw = encode(text_body("Ciao \ud800 e \udfff", at=int(whatsapp.clock.now)))
    assert b"\\ud800" in raw
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 1
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    assert [c["last_message"] for c in listed] == ["Ciao \ufffd e \ufffd"]
    # in an ad's referral too (found by the attacker again: the whole conversation list was a 500)
    value = inbound_message(wamid=new_wamid("393470000023"), timestamp=int(whatsapp.clock.now), wa_id="393470000023",
                            user_id=None, name="Ad", text="Info?", referral={
                                "source_type": "ad", "source_id": "1\ud800", "source_url": "https://fb.me/\ud800",
                                "headline": "H\ud800", "body": "B\ud800", "ctwa_clid": "c\ud800"})  # fmt: skip
    raw = encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                              display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip
    assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 1
    listed = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth)
    assert listed.status_code == 200
    [ad] = [c for c in listed.json()["conversations"] if c["wa_id"] == "393470000023"]
    assert ad["came_from"]["referral"]["headline"] == "H\ufffd"


def test_the_headers_read_are_the_first_of_each_as_starlette_reads_them() -> None:
    """The POST path reads its headers from the raw list in one pass: the first of each counts
    (as `Headers.get`), others are ignored, and the body checks refuse what they always did."""
    long_chain = ", ".join(f"198.51.100.{n % 250}" for n in range(200)) + ", 203.0.113.9"
    head = WebhookHeaders.read([(b"host", b"x"), (b"x-hub-signature-256", b"sha256=ab"),
                                (b"x-forwarded-for", long_chain.encode()),
                                (b"x-hub-signature-256", b"sha256=cd"),
                                (b"content-type", b"Application/JSON; charset=utf-8"),
                                (b"content-length", b"12"), (b"content-type", b"text/plain")])  # fmt: skip
    assert head.signature == "sha256=ab" and not head.chunked
    assert head.forwarded.endswith(", 203.0.113.9")  # whole: cut, the client named itself
    head.check_body()  # JSON, with a length
    with pytest.raises(UnsupportedMediaType):
        WebhookHeaders.read([(b"content-type", b"text/plain"), (b"content-length", b"2")]).check_body()
    with pytest.raises(LengthRequired):
        WebhookHeaders.read([(b"content-type", b"application/json")]).check_body()
    chunked = WebhookHeaders.read([(b"content-type", b"application/json"), (b"transfer-encoding", b"Chunked")])
    assert chunked.chunked
    chunked.check_body()  # sent chunked: checked as it arrives
    for length in (b"-1", b"1e3", str(MAX_BODY_BYTES + 1).encode()):
        with pytest.raises(PayloadTooLarge):
            WebhookHeaders.read([(b"content-type", b"application/json"), (b"content-length", length)]).check_body()


def test_a_reaction_after_a_stop_does_not_lift_it_but_a_message_does(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a reaction (even one taken back) counted as writing again, so replies
    and confirmations went to someone who had said STOP."""
    customer = whatsapp.customer(name="Ana")
    assert whatsapp.run(customer.send_text("Ciao, info?")).status_code == 200
    whatsapp.clock.move(60)
    assert whatsapp.run(customer.send_text("STOP")).status_code == 200
    assert whatsapp.process() == 2
    chat = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"][0]
    said = whatsapp.client.get(f"/api/v1/conversations/{chat['id']}", headers=whatsapp.auth).json()["messages"][0]
    for emoji in ("\U0001f44d", None):  # a thumbs up on the old message, then taken back
        whatsapp.clock.move(60)
        value = reaction(wamid=new_wamid(), timestamp=int(whatsapp.clock()), wa_id=chat["wa_id"], user_id=None,
                         name="Ana", message_id=said["wamid"], emoji=emoji)  # fmt: skip
        raw = encode(webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                                  display_phone_number=NUMBER.display_phone_number, value=value))  # fmt: skip
        assert post(whatsapp, raw, sign(raw, NUMBER.app_secret)).status_code == 200
    assert whatsapp.process() == 2
    shown = whatsapp.client.get(f"/api/v1/conversations/{chat['id']}", headers=whatsapp.auth).json()
    assert shown["reply_refused"] and "opted out" in shown["reply_refused"]
    chats = whatsapp.service.whatsapp.chats
    assert whatsapp.run(chats.last_written(whatsapp.business_id, chat["wa_id"])) == int(whatsapp.clock()) - 120
    whatsapp.clock.move(60)
    assert whatsapp.run(customer.send_text("Scusate, ho cambiato idea")).status_code == 200
    assert whatsapp.process() == 1
    shown = whatsapp.client.get(f"/api/v1/conversations/{chat['id']}", headers=whatsapp.auth).json()
    assert shown["reply_refused"] is None
