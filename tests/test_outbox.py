"""Replies through the outbox to the Graph API stand-in: the window, opt-outs, idempotency,
Meta's statuses in any order, retries with backoff on 429/5xx, Meta's errors kept."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import httpx
import pytest

from clicktochat.graph_standin import StandInNumber
from clicktochat.outbox import UNKNOWN_OUTCOME_WAIT, Backoff
from clicktochat.outboxstore import OutboxStore
from clicktochat.payloads import error, post_signed, status_update, webhook_body
from clicktochat.simulate import Customer
from conftest import NUMBER, WhatsAppSetup, free_port
from test_notifications import opt_in, sync


def conversation(setup: WhatsAppSetup, **customer: Any) -> int:
    setup.run(setup.customer(**customer).send_text("Ciao, siete aperti domenica?"))
    setup.process()
    listed = setup.client.get("/api/v1/conversations", headers=setup.auth).json()["conversations"]
    return int(listed[0]["id"])


def reply(setup: WhatsAppSetup, conversation_id: int, text: str, key: str | None = None) -> Any:
    body: dict[str, Any] = {"text": text} | ({"idempotency_key": key} if key else {})
    return setup.client.post(f"/api/v1/conversations/{conversation_id}/messages", json=body, headers=setup.auth)


def messages(setup: WhatsAppSetup, conversation_id: int) -> list[dict[str, Any]]:
    detail = setup.client.get(f"/api/v1/conversations/{conversation_id}", headers=setup.auth).json()
    return detail["messages"]  # type: ignore[no-any-return]


def test_a_reply_reaches_the_graph_api_once_and_its_statuses_come_back(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    answer = reply(whatsapp, cid, "Sì, dalle 9 alle 13!", key="k1")
    assert answer.status_code == 202 and answer.json()["state"] == "queued"
    assert reply(whatsapp, cid, "Sì, dalle 9 alle 13!", key="k1").status_code == 200  # the same request again
    refused = reply(whatsapp, cid, "Altro testo", key="k1")  # the key names another message
    assert refused.status_code == 409 and [e["field"] for e in refused.json()["errors"]] == ["idempotency_key"]
    # A key in the body and another in the header: which one would a retry send? Refused.
    url = f"/api/v1/conversations/{cid}/messages"
    both = whatsapp.client.post(url, json={"text": "Hdr", "idempotency_key": "h-2"},
                                headers=whatsapp.auth | {"Idempotency-Key": "h-3"})  # fmt: skip
    assert both.status_code == 422 and [e["field"] for e in both.json()["errors"]] == ["idempotency_key"]
    same = whatsapp.client.post(url, json={"text": "Sì, dalle 9 alle 13!", "idempotency_key": "k1"},
                                headers=whatsapp.auth | {"Idempotency-Key": "k1"})  # fmt: skip
    assert same.status_code == 200
    assert messages(whatsapp, cid)[-1]["status"] == "queued"
    # the reply's id is its outbox row's: the message shows it (found by a new user: the two ids
    # never matched anywhere)
    assert messages(whatsapp, cid)[-1]["outbox_id"] == answer.json()["id"]
    assert re.fullmatch(r"api:tests #\d+", messages(whatsapp, cid)[-1]["sent_by"])  # who wrote it: the key
    exported = whatsapp.client.get("/api/v1/customers/393471234567", headers=whatsapp.auth).json()
    assert exported["outbox"] and all("sent_by" not in row for row in exported["outbox"])  # staff: not theirs
    assert messages(whatsapp, cid)[0]["sent_by"] is None
    assert messages(whatsapp, cid)[0]["outbox_id"] is None  # the customer's
    assert whatsapp.send() == 1 and whatsapp.send() == 0
    (sent,) = whatsapp.standin.sent
    assert sent.body["to"] == "393471234567" and sent.body["text"]["body"] == "Sì, dalle 9 alle 13!"
    assert re.fullmatch(rf"clicktochat:{answer.json()['id']}:[0-9a-f]{{12}}", sent.body["biz_opaque_callback_data"])
    out = messages(whatsapp, cid)[-1]
    assert (out["direction"], out["status"], out["wamid"]) == ("out", "sent", sent.wamid)
    # Meta delivers statuses out of order and repeats them: the furthest one reached wins.
    for status in ("delivered", "sent", "delivered", "read", "sent"):
        assert whatsapp.status(sent.wamid, status).status_code == 200
    whatsapp.process()
    out = messages(whatsapp, cid)[-1]
    assert out["status"] == "read" and out["pricing"]["category"] == "service"


def test_the_pricing_of_a_lower_status_is_kept_when_a_higher_one_came_first(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a `read` (which carries no pricing) stored before the `sent` that
    carries it left the message with no pricing."""
    cid = conversation(whatsapp)
    assert reply(whatsapp, cid, "Eccoci").status_code == 202
    assert whatsapp.send() == 1
    (sent,) = whatsapp.standin.sent
    pricing = {"billable": False, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"}
    for status, price in (("read", None), ("sent", pricing)):
        value = status_update(wamid=sent.wamid, status=status, timestamp=int(whatsapp.clock()),
                              recipient_id="393471234567", pricing=price)  # fmt: skip
        body = webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                            display_phone_number=NUMBER.display_phone_number, value=value)  # fmt: skip
        assert whatsapp.run(post_signed("https://chat.example.com/webhooks/whatsapp", body, NUMBER.app_secret,
                                        whatsapp.http())).status_code == 200  # fmt: skip
        whatsapp.process()
    out = messages(whatsapp, cid)[-1]
    assert out["status"] == "read" and out["pricing"] == pricing


def test_a_user_known_only_by_user_id_is_answered_by_user_id(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp, wa_id=None, user_id="IT.99887766554433")
    assert reply(whatsapp, cid, "Buongiorno").status_code == 202
    whatsapp.send()
    (sent,) = whatsapp.standin.sent
    assert "to" not in sent.body and sent.body["recipient"] == "IT.99887766554433"


def test_replies_are_refused_once_the_window_has_closed(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    whatsapp.clock.move(24 * 3600 - 1)
    assert reply(whatsapp, cid, "Ancora in tempo").status_code == 202
    whatsapp.clock.move(2)
    late = reply(whatsapp, cid, "Troppo tardi")
    assert late.status_code == 409 and "24-hour window is closed" in late.json()["detail"]
    detail = whatsapp.client.get(f"/api/v1/conversations/{cid}", headers=whatsapp.auth).json()
    assert detail["window"] == {"open": False, "open_until": detail["window"]["open_until"],
                                "free_entry_point_until": None, "may_send": "templates"}  # fmt: skip
    # The reply queued in time is checked again when it goes: the window closed while it waited.
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    assert messages(whatsapp, cid)[-1]["status"] == "cancelled"


def test_stop_opts_out_and_replies_wait_until_the_customer_writes_again(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    customer = whatsapp.customer()
    whatsapp.clock.move(60)
    whatsapp.run(customer.send_text("Stop!"))
    whatsapp.process()
    c = whatsapp.client.get(f"/api/v1/conversations/{cid}", headers=whatsapp.auth).json()
    assert c["opted_out"] and "opted out" in c["reply_refused"]
    assert c["window"]["open"] and c["window"]["may_send"] == "nothing"  # it said "text" (a new user's report)
    assert reply(whatsapp, cid, "Peccato!").status_code == 409
    whatsapp.clock.move(60)
    whatsapp.run(customer.send_text("Scusate, una domanda sull'ordine"))
    whatsapp.process()
    assert reply(whatsapp, cid, "Certo, mi dica").status_code == 202  # they came back to ask: a service reply
    c = whatsapp.client.get(f"/api/v1/conversations/{cid}", headers=whatsapp.auth).json()
    assert c["reply_refused"] is None and c["window"]["may_send"] == "text"


@pytest.mark.parametrize("meanwhile", ["stop", "erase"])
def test_a_stop_or_an_erasure_while_a_batch_waits_holds_back_the_rest_of_it(
    whatsapp: WhatsAppSetup, meanwhile: str
) -> None:
    """Found by a review with three instances: a batch was checked once, when claimed, and its
    rows went on being sent for 9 s after the customer's STOP (or their erasure) was applied,
    while they waited for Meta's pace or for the sends before them. Each row is checked again
    at the moment it goes. Here Meta holds the first send until the STOP or erasure is done."""
    cid = conversation(whatsapp)
    for n in range(3):
        assert reply(whatsapp, cid, f"Risposta {n}", key=f"held-{n}").status_code == 202
    first_in, go_on = threading.Event(), threading.Event()

    def hold(sent: Any) -> None:  # on the stand-in's thread: Meta slow to answer the first send
        if not first_in.is_set():
            first_in.set()
            go_on.wait(60)

    whatsapp.standin.on_send = hold
    sender = whatsapp.service.whatsapp.sender
    sender.concurrency = 1  # the other rows of the batch wait for the first send's answer

    async def scenario() -> None:
        sending = asyncio.create_task(sender.run_once())  # claims and checks all three, sends the first
        try:
            assert await asyncio.to_thread(first_in.wait, 60)
            if meanwhile == "stop":
                assert (await whatsapp.customer().send_text("STOP")).status_code == 200
                assert await whatsapp.service.whatsapp.processor.run_once() == 1
            else:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=whatsapp.client.app),
                                             base_url="https://chat.example.com") as http:  # fmt: skip
                    erased = await http.delete("/api/v1/customers/393471234567", headers=whatsapp.auth)
                assert erased.status_code == 200, erased.text
        finally:
            go_on.set()
        assert await sending == 3

    whatsapp.run(scenario())
    assert [m.body["text"]["body"] for m in whatsapp.standin.sent] == ["Risposta 0"]
    if meanwhile == "stop":
        held = [m for m in messages(whatsapp, cid) if m["direction"] == "out"][1:]
        assert [m["status"] for m in held] == ["cancelled", "cancelled"], held
    whatsapp.clock.move(3600)
    assert whatsapp.send() == 0 and len(whatsapp.standin.sent) == 1  # nor later


def test_nothing_may_be_sent_on_a_disconnected_number(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    whatsapp.run(whatsapp.service.whatsapp.disconnect(whatsapp.number_id))
    c = whatsapp.client.get(f"/api/v1/conversations/{cid}", headers=whatsapp.auth).json()
    assert c["window"]["may_send"] == "nothing" and "no longer connected" in c["reply_refused"]
    refused = reply(whatsapp, cid, "Ci sei?")
    assert refused.status_code == 409 and "no longer connected" in refused.json()["detail"]


def test_a_reply_waiting_on_a_429_when_its_number_is_disconnected_says_only_that(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: the cancelled reply kept the 429's code, 130429, beside the disconnection."""
    cid = conversation(whatsapp)
    whatsapp.standin.fail_next(1, 429, 130429)
    assert reply(whatsapp, cid, "Uno").status_code == 202
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    assert messages(whatsapp, cid)[-1]["error_code"] == 130429  # waiting to be tried again
    whatsapp.run(whatsapp.service.whatsapp.disconnect(whatsapp.number_id))
    cancelled = messages(whatsapp, cid)[-1]
    assert cancelled["status"] == "cancelled" and cancelled["error"] == "The number was disconnected."
    assert cancelled["error_code"] is None


def test_meta_stops_in_any_form_are_opt_outs(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    whatsapp.run(whatsapp.customer().set_marketing("stop"))
    whatsapp.process()
    c = whatsapp.client.get(f"/api/v1/conversations/{cid}", headers=whatsapp.auth).json()
    assert c["opted_out"]


def test_429_and_5xx_are_retried_with_backoff_and_meta_refusals_kept(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    whatsapp.standin.fail_next(1, 429, 130429)
    whatsapp.standin.fail_next(1, 503, 2)
    assert reply(whatsapp, cid, "Uno").status_code == 202
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    assert whatsapp.send() == 0  # not due yet: backing off
    whatsapp.clock.move(Backoff().cap)
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []  # 503 this time
    whatsapp.clock.move(Backoff().cap)
    assert whatsapp.send() == 1 and len(whatsapp.standin.sent) == 1
    whatsapp.standin.fail_next(1, 400, 131026)
    assert reply(whatsapp, cid, "Due").status_code == 202
    assert whatsapp.send() == 1
    failed = messages(whatsapp, cid)[-1]
    assert failed["status"] == "failed" and failed["error_code"] == 131026
    assert "could not be delivered" in failed["error"]


def test_a_failed_status_from_meta_shows_its_error(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    reply(whatsapp, cid, "Eccomi")
    whatsapp.send()
    (sent,) = whatsapp.standin.sent
    whatsapp.status(sent.wamid, "failed", [error(131047)])
    whatsapp.process()
    out = messages(whatsapp, cid)[-1]
    assert (out["status"], out["error_code"]) == ("failed", 131047)
    assert out["error"].startswith("The 24-hour window is closed")  # our words, not Meta's title (a review)


def test_bad_replies_are_422_and_unknown_conversations_404(whatsapp: WhatsAppSetup) -> None:
    cid = conversation(whatsapp)
    for text in ("", "   ", "x" * 4097, "a\x00b"):
        answer = reply(whatsapp, cid, text)
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "text"
    assert reply(whatsapp, cid, "ok", key="has spaces").status_code == 422
    assert reply(whatsapp, 999999, "ok").status_code == 404
    assert reply(whatsapp, 2**70, "ok").status_code == 404


def test_secrets_never_come_back_from_the_api(whatsapp: WhatsAppSetup) -> None:
    from conftest import NUMBER, VERIFY_TOKEN

    listed = whatsapp.client.get("/api/v1/whatsapp-numbers", headers=whatsapp.auth)
    one = whatsapp.client.get(f"/api/v1/whatsapp-numbers/{whatsapp.number_id}", headers=whatsapp.auth)
    for answer in (listed, one):
        assert answer.status_code == 200
        for secret in (NUMBER.access_token, NUMBER.app_secret, VERIFY_TOKEN):
            assert secret not in answer.text
    assert listed.json()["numbers"][0]["display_phone_number"] == "393470001111"
    assert one.json()["webhook_url"] == "https://chat.example.com/webhooks/whatsapp"


def test_connecting_checks_the_values_and_the_token_with_meta(whatsapp: WhatsAppSetup) -> None:
    from conftest import NUMBER

    good = {"business_id": whatsapp.business_id, "phone_number_id": NUMBER.phone_number_id,
            "waba_id": NUMBER.waba_id, "access_token": NUMBER.access_token, "app_secret": NUMBER.app_secret,
            "verify_token": "another-verify-token"}  # fmt: skip
    url = "/api/v1/whatsapp-numbers"
    assert whatsapp.client.post(url, json=good, headers=whatsapp.auth).status_code == 200  # connected: new secrets
    first_chat = conversation(whatsapp)
    assert reply(whatsapp, first_chat, "Per il primo negozio").status_code == 202 and whatsapp.send() == 1
    answer_wamid = whatsapp.standin.sent[-1].wamid
    # Connected to one business, it does not move to another (its conversations are the first's).
    other = whatsapp.run(whatsapp.service.add_business("Altro negozio")).id
    moved = whatsapp.client.post(url, json=good | {"business_id": other}, headers=whatsapp.auth)
    assert moved.status_code == 409 and moved.json()["errors"][0]["field"] == "phone_number_id", moved.text
    assert f"connected to business {whatsapp.business_id}" in moved.json()["detail"]
    assert whatsapp.client.get(f"{url}/{whatsapp.number_id}", headers=whatsapp.auth).json()["business_id"] == (
        whatsapp.business_id)
    # The same in the database: two connects at once cannot both pass the check made before Meta is asked.
    raced = whatsapp.run(whatsapp.service.whatsapp.chats.connect_number(
        other, NUMBER.phone_number_id, NUMBER.waba_id, "393470001111", None, "t" * 30, "s" * 20, "h", 0))
    assert (raced.id, raced.business_id) == (whatsapp.number_id, whatsapp.business_id)
    wrong_token = whatsapp.client.post(url, json=good | {"access_token": "EAAG" + "y" * 40}, headers=whatsapp.auth)
    assert wrong_token.status_code == 422 and wrong_token.json()["errors"][0]["field"] == "access_token"
    assert "y" * 40 not in wrong_token.text
    bad = whatsapp.client.post(url, json=good | {"phone_number_id": "abc", "app_secret": "x"}, headers=whatsapp.auth)
    assert {e["field"] for e in bad.json()["errors"]} == {"phone_number_id", "app_secret"}
    assert whatsapp.client.post(url, json=good | {"business_id": 999}, headers=whatsapp.auth).status_code == 404
    assert whatsapp.client.delete(f"{url}/{whatsapp.number_id}", headers=whatsapp.auth).status_code == 204
    assert whatsapp.client.delete(f"{url}/{whatsapp.number_id}", headers=whatsapp.auth).status_code == 404
    assert whatsapp.client.get(url, headers=whatsapp.auth).json()["numbers"] == []
    # Disconnected, it may be connected to another business (a number sold, an agency's client):
    # the first business keeps its conversations, and a customer writing again starts one here.
    moved = whatsapp.client.post(url, json=good | {"business_id": other}, headers=whatsapp.auth)
    assert moved.status_code == 201 and moved.json()["business_id"] == other
    whatsapp.run(whatsapp.customer().send_text("Per il secondo negozio"))
    whatsapp.process()
    chats = {c["business_id"]: c for c in whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth
                                                               ).json()["conversations"]}  # fmt: skip
    assert set(chats) == {whatsapp.business_id, other}, chats
    first = whatsapp.client.get(f"/api/v1/conversations/{chats[whatsapp.business_id]['id']}", headers=whatsapp.auth)
    assert [m["text"] for m in first.json()["messages"]] == ["Ciao, siete aperti domenica?", "Per il primo negozio"]
    second = whatsapp.client.get(f"/api/v1/conversations/{chats[other]['id']}", headers=whatsapp.auth)
    assert [m["text"] for m in second.json()["messages"]] == ["Per il secondo negozio"]
    # A late status of the first business's reply is still the first business's (a review's).
    whatsapp.status(answer_wamid, "read")
    whatsapp.process()
    assert messages(whatsapp, first_chat)[-1]["status"] == "read"
    # Back to the first business: it takes its own row again, and its customer their conversation.
    assert whatsapp.client.delete(f"{url}/{moved.json()['id']}", headers=whatsapp.auth).status_code == 204
    back = whatsapp.client.post(url, json=good, headers=whatsapp.auth)
    assert back.status_code == 201 and back.json()["id"] == whatsapp.number_id, back.text
    whatsapp.run(whatsapp.customer().send_text("Di nuovo qui"))
    whatsapp.process()
    mine = whatsapp.client.get("/api/v1/conversations", params={"business": whatsapp.business_id},
                               headers=whatsapp.auth).json()["conversations"]  # fmt: skip
    assert [c["id"] for c in mine] == [first_chat] and messages(whatsapp, first_chat)[-1]["text"] == "Di nuovo qui"


def test_two_senders_claiming_at_once_never_take_the_same_row(whatsapp: WhatsAppSetup) -> None:
    """Two instances' senders (two connections, each on its own thread) claim from one outbox
    at the same moment: every row is leased to exactly one of them."""
    mine = whatsapp.service.whatsapp.chats
    rows = [whatsapp.run(mine.enqueue(whatsapp.number_id, None, f"k{n}", {"n": n}, None, "text", 1))[0].id
            for n in range(120)]  # fmt: skip

    async def claim_all(store: OutboxStore) -> list[int]:
        claimed: list[int] = []
        while found := await store.claim(10, 60, 7):
            claimed += [row.id for row in found]
        return claimed

    async def both() -> tuple[list[int], list[int]]:
        other = await OutboxStore.open(whatsapp.service.settings.db)
        try:
            return await asyncio.gather(claim_all(mine), claim_all(other))  # type: ignore[return-value]
        finally:
            await other.close()

    first, second = whatsapp.run(both())
    assert sorted(first + second) == rows  # each row once: none twice, none left behind


def test_a_row_claimed_long_ago_and_taken_back_by_another_sender_goes_once(whatsapp: WhatsAppSetup) -> None:
    """Found by a review with two instances and a slow Meta: rows that waited in a batch for
    twice the lease were taken back by the other instance's sender, and both sent them. A row
    that waited half its lease is renewed just before it goes, or left to whoever took it."""
    cid = conversation(whatsapp)
    for n in range(2):
        assert reply(whatsapp, cid, f"Risposta {n}", key=f"slow-{n}").status_code == 202
    sender = whatsapp.service.whatsapp.sender
    claimed_at = int(whatsapp.clock())
    rows = whatsapp.run(whatsapp.service.whatsapp.chats.claim(claimed_at, sender.lease, 10))
    assert len(rows) == 2  # this instance's batch, then held up (Meta slow to answer, a slow pace)
    whatsapp.clock.move(2 * sender.lease + 1)
    taken_back = rows[0]  # the other instance takes back the first (as its sender would, its lease over)
    assert whatsapp.run(whatsapp.service.whatsapp.chats.claim(int(whatsapp.clock()), sender.lease, 1))[0].id \
        == taken_back.id  # fmt: skip
    whatsapp.run(sender._batch(rows, asyncio.Semaphore(1), claimed_at=claimed_at))
    assert [m.body["text"]["body"] for m in whatsapp.standin.sent] == ["Risposta 1"]  # its own, renewed
    sender.pace.per_second = 0.4  # a claim takes what the pace sends in a quarter of the lease
    assert sender.claim_size() == 6


def sent_status(setup: WhatsAppSetup, wamid: str, callback: str) -> None:
    value = status_update(wamid=wamid, status="sent", timestamp=int(setup.clock()), recipient_id="393471234567",
                          biz_opaque_callback_data=callback)  # fmt: skip
    body = webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                        display_phone_number=NUMBER.display_phone_number, value=value)  # fmt: skip
    assert setup.run(post_signed("https://chat.example.com/webhooks/whatsapp", body, NUMBER.app_secret,
                                 setup.http())).status_code == 200  # fmt: skip


def test_a_send_with_no_answer_waits_for_meta_to_say_it_went_out(whatsapp: WhatsAppSetup) -> None:
    """Found by an independent review: a send that timed out was tried again at once, and a
    `sent` status that came meanwhile was overwritten by the retry (three copies for one row).
    No answer may mean Meta took it: the retry waits, and a status naming the row ends it."""
    cid = conversation(whatsapp)
    graph = whatsapp.service.whatsapp.graph
    reachable, graph.base_url = graph.base_url, f"http://127.0.0.1:{free_port()}/v26.0"  # nothing listens: no answer
    assert reply(whatsapp, cid, "Arrivo!").status_code == 202
    assert whatsapp.send() == 1
    (row,) = whatsapp.run(whatsapp.service.whatsapp.chats.run(lambda: whatsapp.service.whatsapp.chats.db.execute(
        "SELECT id, state, next_attempt_at, payload FROM outbox").fetchall()))  # fmt: skip
    assert row[1] == "queued" and row[2] >= whatsapp.clock() + UNKNOWN_OUTCOME_WAIT
    graph.base_url = reachable
    whatsapp.clock.move(UNKNOWN_OUTCOME_WAIT / 2)
    assert whatsapp.send() == 0  # still waiting for Meta's word
    callback = json.loads(row[3])["biz_opaque_callback_data"]
    # Another tool sending from the number with its own callback data ("42", or our row's id)
    # names no row of ours (found by a review: it marked an unsent reply as sent).
    for foreign in (str(row[0]), f"clicktochat:{row[0]}:000000000000"):
        sent_status(whatsapp, "wamid.OTHERTOOL" + foreign[-1], foreign)
    whatsapp.process()
    assert messages(whatsapp, cid)[-1]["status"] == "queued"
    sent_status(whatsapp, "wamid.TOOK", callback)
    whatsapp.process()
    whatsapp.clock.move(UNKNOWN_OUTCOME_WAIT)
    assert whatsapp.send() == 0 and whatsapp.standin.sent == []  # Meta took it once: never again
    assert messages(whatsapp, cid)[-1]["status"] == "sent"
    # A retry decided after the status (a send's answer lost in flight) leaves it sent.
    whatsapp.run(whatsapp.service.whatsapp.chats.retry_later(row[0], int(whatsapp.clock()), None, "late"))
    whatsapp.run(whatsapp.service.whatsapp.chats.give_up(row[0], "failed", None, "late"))
    assert messages(whatsapp, cid)[-1]["status"] == "sent"


SECOND = StandInNumber(phone_number_id="106540352242999", waba_id="102290129340999",
                       display_phone_number="+39 347 000 2222", verified_name="Fiori Rosa",
                       access_token="EAAG" + "y" * 40, app_secret="c" * 32)  # fmt: skip
NEW_TOKEN = "EAAG" + "n" * 40


def second_number(setup: WhatsAppSetup) -> tuple[int, int]:
    """Another business's number on the same stand-in, with a conversation open: (number id, conversation id)."""
    setup.standin.numbers[SECOND.phone_number_id] = SECOND
    shop = setup.run(setup.service.add_business("Fiori Rosa", "Europe/Rome"))
    number = setup.run(setup.service.whatsapp.connect(shop.id, SECOND.phone_number_id, SECOND.waba_id,
                                                      SECOND.access_token, SECOND.app_secret, "another-verify-token"))
    customer = Customer("https://chat.example.com/webhooks/whatsapp", SECOND, "393489990000", None, "Marco",
                        setup.standin, http=setup.http(), clock=setup.clock)  # fmt: skip
    setup.run(customer.send_text("Avete rose rosse?"))
    setup.process()
    listed = setup.client.get("/api/v1/conversations", params={"business": shop.id}, headers=setup.auth).json()
    return number.id, int(listed["conversations"][0]["id"])


def test_an_expired_token_holds_its_numbers_messages_until_it_is_connected_again(whatsapp: WhatsAppSetup) -> None:
    """Found by a review of the WhatsApp side: Meta's 190 (the token expired) failed every queued
    message of the number for good, and /healthz still said ok. The number is marked to be
    connected again, its messages (replies and updates) wait, held, with their idempotency keys,
    other numbers' go on, and connecting it again with a new token sends each held one once."""
    cid = conversation(whatsapp)
    other_number, other_cid = second_number(whatsapp)
    sync(whatsapp)
    opt_in(whatsapp)
    update = whatsapp.client.post("/api/v1/notifications", headers=whatsapp.auth, json={
        "to": "+39 347 123 4567", "topic": "orders", "template": "follow_up", "language": "en_US",
        "parameters": ["Giulia", "the cake"], "idempotency_key": "order-7", "business": whatsapp.business_id})
    assert update.status_code == 202, update.text
    for n in range(3):
        assert reply(whatsapp, cid, f"Risposta {n}", key=f"r-{n}").status_code == 202
    assert reply(whatsapp, other_cid, "Sì, tutte!").status_code == 202
    whatsapp.standin.expire_token(NUMBER.phone_number_id, NEW_TOKEN)  # mid-queue: nothing of number 1 sent yet

    assert whatsapp.send() == 5
    assert [(m.phone_number_id, m.body["text"]["body"]) for m in whatsapp.standin.sent] == [
        (SECOND.phone_number_id, "Sì, tutte!")]  # the other number's reply went
    held = [m for m in messages(whatsapp, cid) if m["direction"] == "out"]
    assert [m["status"] for m in held] == ["queued"] * 3, held  # not failed
    assert all(m["error_code"] == 190 and "connect the number again" in m["error"] for m in held)
    notification = whatsapp.client.get(f"/api/v1/notifications/{update.json()['id']}", headers=whatsapp.auth).json()
    assert notification["state"] == "queued" and notification["error_code"] == 190
    numbers = {n["id"]: n for n in whatsapp.client.get("/api/v1/whatsapp-numbers", headers=whatsapp.auth
                                                       ).json()["numbers"]}  # fmt: skip
    assert numbers[whatsapp.number_id]["needs_reconnect"] and numbers[whatsapp.number_id]["token_refused_at"]
    assert "connect the number again" in numbers[whatsapp.number_id]["token_error"]
    assert not numbers[other_number]["needs_reconnect"]
    health = whatsapp.client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    (reason,) = health.json()["reasons"]
    assert f"WhatsApp number {whatsapp.number_id} " in reason and "access token" in reason
    for secret in (NUMBER.access_token, NEW_TOKEN, NUMBER.app_secret):
        assert secret not in health.text and secret not in str(numbers)

    # Held, not tried again and again: a day later nothing is due, and a new reply waits with them.
    whatsapp.clock.move(86400)
    assert whatsapp.send() == 0
    whatsapp.run(whatsapp.customer().send_text("Allora?"))
    whatsapp.process()
    assert reply(whatsapp, cid, "Risposta 3", key="r-3").status_code == 202
    assert whatsapp.send() == 1 and whatsapp.send() == 0 and len(whatsapp.standin.sent) == 1
    again = reply(whatsapp, cid, "Risposta 0", key="r-0")  # its idempotency key still names the held reply
    assert again.status_code == 200 and again.json()["id"] == held[0]["outbox_id"]

    # Connected again with the new token (the API's, the CLI's and the dashboard's connect): every
    # held message goes, once.
    connect = {"business_id": whatsapp.business_id, "phone_number_id": NUMBER.phone_number_id,
               "waba_id": NUMBER.waba_id, "access_token": NEW_TOKEN, "app_secret": NUMBER.app_secret,
               "verify_token": "verify-me-please"}  # fmt: skip
    answer = whatsapp.client.post("/api/v1/whatsapp-numbers", json=connect, headers=whatsapp.auth)
    assert answer.status_code == 200 and not answer.json()["needs_reconnect"] and answer.json()["token_error"] is None
    assert whatsapp.client.get("/healthz").json() == {"status": "ok", "pending_clicks": 0}
    assert whatsapp.send() == 5 and whatsapp.send() == 0
    whatsapp.clock.move(86400)
    assert whatsapp.send() == 0
    mine = [m for m in whatsapp.standin.sent if m.phone_number_id == NUMBER.phone_number_id]
    assert sorted(m.body["text"]["body"] if m.body["type"] == "text" else m.body["template"]["name"] for m in mine
                  ) == ["Risposta 0", "Risposta 1", "Risposta 2", "Risposta 3", "follow_up"]  # fmt: skip
    assert [m["status"] for m in messages(whatsapp, cid) if m["direction"] == "out"] == ["sent"] * 4
    notification = whatsapp.client.get(f"/api/v1/notifications/{update.json()['id']}", headers=whatsapp.auth).json()
    assert notification["state"] == "sent" and notification["error_code"] is None


def test_a_token_refused_after_the_number_got_a_new_one_marks_nothing(whatsapp: WhatsAppSetup) -> None:
    """A 190 for a send made with the old token, answered after the number was connected again
    with a new one, neither marks the number nor holds its messages: the reply goes with the new token."""
    cid = conversation(whatsapp)
    assert reply(whatsapp, cid, "Eccomi").status_code == 202
    whatsapp.standin.expire_token(NUMBER.phone_number_id, NEW_TOKEN)
    chats = whatsapp.service.whatsapp.chats
    (row,) = whatsapp.run(chats.claim(int(whatsapp.clock()), 60, 10))
    whatsapp.run(whatsapp.service.whatsapp.connect(whatsapp.business_id, NUMBER.phone_number_id, NUMBER.waba_id,
                                                   NEW_TOKEN, NUMBER.app_secret, "verify-me-please"))  # fmt: skip
    assert not whatsapp.run(chats.refuse_token(whatsapp.number_id, NUMBER.access_token, row.id, 190, "expired",
                                               int(whatsapp.clock())))  # fmt: skip
    assert whatsapp.run(chats.number(whatsapp.number_id)).token_refused_at is None
    assert whatsapp.run(chats.outbox_row(row.id)).state == "sending"  # not held: its sender sends it again


def test_held_messages_go_when_another_process_connected_the_number_again(whatsapp: WhatsAppSetup) -> None:
    """`clicktochat whatsapp connect` run while the server sends: the server's keys still say the
    token was refused (it reads them again within a second). The messages released by the connect
    are not held again for ever, nor sent again and again with the old token: the sender reads
    the keys, and they go once with the new one."""
    cid = conversation(whatsapp)
    for n in range(2):
        assert reply(whatsapp, cid, f"Risposta {n}", key=f"r-{n}").status_code == 202
    whatsapp.standin.expire_token(NUMBER.phone_number_id, NEW_TOKEN)
    assert whatsapp.send() == 2 and whatsapp.standin.sent == []
    assert reply(whatsapp, cid, "Risposta 2", key="r-2").status_code == 202  # queued after the mark
    chats = whatsapp.service.whatsapp.chats
    # Another process connects it again (the CLI): the database changes, this server's keys do not yet.
    whatsapp.run(chats.connect_number(whatsapp.business_id, NUMBER.phone_number_id, NUMBER.waba_id, "393470001111",
                                      NUMBER.verified_name, NEW_TOKEN, NUMBER.app_secret, "hash",
                                      int(whatsapp.clock())))  # fmt: skip
    assert whatsapp.service.whatsapp.to_reconnect()  # stale, as a server's keys are for up to a second
    for _ in range(3):
        whatsapp.send()
    assert sorted(m.body["text"]["body"] for m in whatsapp.standin.sent) == ["Risposta 0", "Risposta 1", "Risposta 2"]
    assert [m["status"] for m in messages(whatsapp, cid) if m["direction"] == "out"] == ["sent"] * 3
    assert not whatsapp.service.whatsapp.to_reconnect()
    whatsapp.clock.move(86400)
    assert whatsapp.send() == 0 and len(whatsapp.standin.sent) == 3
