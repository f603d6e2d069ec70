"""Updates a business starts (notifications.py, notify_api.py): templates synced from the
Graph stand-in, every check before queueing, the consent checked again just before sending,
retries, idempotency, and the state as Meta reports it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from clicktochat.message_templates import check_parameters, read_template, render
from clicktochat.outbox import Pace
from clicktochat.payloads import error
from conftest import NUMBER, WhatsAppSetup, connect_db

API = "/api/v1"
PHONE = "393471234567"


def sync(setup: WhatsAppSetup) -> Any:
    return setup.client.post(f"{API}/whatsapp-numbers/{setup.number_id}/templates", headers=setup.auth)


def opt_in(setup: WhatsAppSetup, topic: str = "orders", state: str = "in", phone: str = PHONE) -> None:
    chats = setup.service.whatsapp.chats
    setup.run(chats.add_consent(setup.business_id, phone, None, topic, state, int(setup.clock()), "api",
                                "Send me order updates", "v1"))  # fmt: skip


def notify_body(**fields: Any) -> dict[str, Any]:
    return {"to": "+39 347 123 4567", "topic": "orders", "template": "follow_up", "language": "en_US",
            "parameters": ["Giulia", "the blue sofa"]} | fields  # fmt: skip


def notify(setup: WhatsAppSetup, **fields: Any) -> Any:
    return setup.client.post(f"{API}/notifications", json=notify_body(**fields), headers=setup.auth)


def test_templates_are_synced_from_meta_with_their_parameters(whatsapp: WhatsAppSetup) -> None:
    answer = sync(whatsapp)
    assert answer.status_code == 200 and answer.json() == {"synced": {str(whatsapp.number_id): 2}}
    listed = whatsapp.client.get(f"{API}/whatsapp-numbers/{whatsapp.number_id}/templates", headers=whatsapp.auth)
    templates = {t["name"]: t for t in listed.json()["templates"]}
    assert templates["follow_up"]["parameters"] == ["1", "2"] and templates["follow_up"]["category"] == "MARKETING"
    assert templates["hello_world"]["parameters"] == [] and templates["hello_world"]["status"] == "APPROVED"
    whatsapp.standin.templates = whatsapp.standin.templates[:1]  # Meta deleted one: it goes here too
    assert sync(whatsapp).json()["synced"] == {str(whatsapp.number_id): 1}
    assert whatsapp.client.get(f"{API}/whatsapp-numbers/999/templates", headers=whatsapp.auth).status_code == 404


def test_a_template_sync_meta_refuses_for_the_token_marks_the_number_to_connect_again(whatsapp: WhatsAppSetup
                                                                                      ) -> None:  # fmt: skip
    """As a send's 190 does (test_outbox.py): the number is marked, whatever call Meta refused it on."""
    whatsapp.standin.expire_token(NUMBER.phone_number_id, "EAAG" + "n" * 40)
    refused = sync(whatsapp)
    assert refused.status_code == 503 and "connect the number again" in refused.json()["detail"]
    number = whatsapp.client.get(f"{API}/whatsapp-numbers/{whatsapp.number_id}", headers=whatsapp.auth).json()
    assert number["needs_reconnect"] and "n" * 40 not in str(number)
    assert whatsapp.client.get("/healthz").json()["status"] == "degraded"


def test_a_notification_needs_consent_for_its_topic_and_goes_out_once(whatsapp: WhatsAppSetup) -> None:
    sync(whatsapp)
    refused = notify(whatsapp)
    assert refused.status_code == 409 and "has not opted in to 'orders'" in refused.json()["detail"]
    opt_in(whatsapp, topic="offers")
    assert notify(whatsapp).status_code == 409  # consent for another topic is not consent for this one
    opt_in(whatsapp)
    queued = notify(whatsapp, idempotency_key="order-1042")
    assert queued.status_code == 202 and queued.json()["state"] == "queued" and queued.json()["to"] == PHONE
    again = notify(whatsapp, idempotency_key="order-1042")
    assert again.status_code == 200 and again.json()["id"] == queued.json()["id"]
    changed = notify(whatsapp, idempotency_key="order-1042", parameters=["Giulia", "the red sofa"])
    assert changed.status_code == 409 and "idempotency key" in changed.json()["detail"]
    assert [e["field"] for e in changed.json()["errors"]] == ["idempotency_key"]
    both = whatsapp.client.post(f"{API}/notifications", headers=whatsapp.auth | {"Idempotency-Key": "order-1043"},
                                json=notify_body(idempotency_key="order-1042"))  # fmt: skip
    assert both.status_code == 422 and "Idempotency-Key header" in both.json()["errors"][0]["reason"]
    assert whatsapp.send() == 1 and whatsapp.send() == 0
    assert len(whatsapp.standin.sent) == 1
    sent = whatsapp.standin.sent[0].body
    assert sent["type"] == "template" and sent["to"] == PHONE
    assert sent["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Giulia"}, {"type": "text", "text": "the blue sofa"}]  # fmt: skip
    shown = whatsapp.client.get(f"{API}/notifications/{queued.json()['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "sent" and shown["wamid"] == whatsapp.standin.sent[0].wamid
    assert whatsapp.status(shown["wamid"], "delivered").status_code == 200
    whatsapp.process()
    shown = whatsapp.client.get(f"{API}/notifications/{queued.json()['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "delivered" and shown["pricing"]["category"] == "marketing"
    listed = whatsapp.client.get(f"{API}/notifications", params={"state": "delivered", "to": "+393471234567"},
                                 headers=whatsapp.auth).json()["notifications"]  # fmt: skip
    assert [n["id"] for n in listed] == [queued.json()["id"]]
    assert whatsapp.client.get(f"{API}/notifications", params={"state": "read"},
                               headers=whatsapp.auth).json()["notifications"] == []  # fmt: skip


@pytest.mark.postgresql
def test_one_key_sent_to_two_instances_at_once_is_one_notification(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: the same idempotency key posted to two instances at the same moment
    was a 500 for one of them (the notification's outbox row was the other's). Another
    instance's transaction holds the key; ours waits for it, then answers with its notification."""
    sync(whatsapp)
    opt_in(whatsapp)
    key, now = f"notify:{whatsapp.business_id}:race", int(whatsapp.clock())
    with connect_db(whatsapp.service.settings.db) as other, ThreadPoolExecutor(1) as thread:
        other.execute("BEGIN")
        (outbox_id,) = other.execute(
            "INSERT INTO outbox (number_id, idempotency_key, payload, state, next_attempt_at, created_at)"
            " VALUES (?, ?, '{}', 'queued', ?, ?) RETURNING id", (whatsapp.number_id, key, now, now)).fetchone()
        (theirs,) = other.execute(
            "INSERT INTO notifications (business_id, number_id, phone, topic, template, language, category, parameters,"
            " idempotency_key, outbox_id, source, created_at) VALUES (?, ?, ?, 'orders', 'follow_up', 'en_US',"
            " 'MARKETING', '[\"Giulia\", \"the blue sofa\"]', 'race', ?, 'api', ?) RETURNING id",
            (whatsapp.business_id, whatsapp.number_id, PHONE, outbox_id, now)).fetchone()  # fmt: skip
        ours = thread.submit(notify, whatsapp, idempotency_key="race")
        for _ in range(3000):  # ours waits on the other's key (a lock), not on time: then the other commits
            if other.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()[0]:
                break
            time.sleep(0.01)
        other.execute("COMMIT")
        answer = ours.result(timeout=60)
    assert answer.status_code == 200 and answer.json()["id"] == theirs
    assert len(whatsapp.client.get(f"{API}/notifications", headers=whatsapp.auth).json()["notifications"]) == 1


def test_a_template_in_one_language_needs_no_language_named(whatsapp: WhatsAppSetup) -> None:
    """The CLI took en_US when none was named, the API refused: both take the template's only one."""
    sync(whatsapp)
    opt_in(whatsapp)
    body = notify_body()
    del body["language"]
    queued = whatsapp.client.post(f"{API}/notifications", json=body | {"idempotency_key": "n1"}, headers=whatsapp.auth)
    assert queued.status_code == 202 and queued.json()["language"] == "en_US", queued.text
    italian = dict(next(t for t in whatsapp.standin.templates if t["name"] == "follow_up"), language="it")
    whatsapp.standin.templates = [*whatsapp.standin.templates, italian]
    sync(whatsapp)
    several = whatsapp.client.post(f"{API}/notifications", json=body | {"idempotency_key": "n2"}, headers=whatsapp.auth)
    assert several.status_code == 422 and several.json()["errors"] == [
        {"field": "language", "reason": "the template follow_up exists in en_US, it: name one"}]
    # A retry of the first, after the second language came: the same notification (a review's).
    again = whatsapp.client.post(f"{API}/notifications", json=body | {"idempotency_key": "n1"}, headers=whatsapp.auth)
    assert again.status_code == 200 and again.json()["id"] == queued.json()["id"], again.text


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"template": "no_such"}, "template", "no template no_such"),
    ({"language": "it"}, "language", "exists in en_US, not it"),
    ({"parameters": ["Giulia"]}, "parameters", "takes 2 parameters"),
    ({"parameters": ["Giulia", "a\nb"]}, "parameters", "new line"),
    ({"to": "347 123 4567"}, "to", "country code"),
    ({"topic": "Orders!"}, "topic", "must be a topic name"),
    ({"business": 999}, None, "no business 999"),
])  # fmt: skip
def test_what_cannot_be_sent_is_refused_before_it_is_queued(
    whatsapp: WhatsAppSetup, fields: dict[str, Any], field: str | None, words: str
) -> None:
    sync(whatsapp)
    opt_in(whatsapp)
    answer = notify(whatsapp, **fields)
    assert answer.status_code == (422 if field else 404), answer.text
    assert words in answer.json()["detail"]
    if field:
        assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert whatsapp.send() == 0 and whatsapp.standin.sent == []


def test_a_retry_gets_the_first_answer_after_its_template_is_paused_or_its_number_is_gone(
        whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    """Found by a review: the retry of a delivered update was a 422 (template paused since) or a
    409 (number disconnected since): the shop was told its update had failed."""
    sync(whatsapp)
    opt_in(whatsapp)
    queued = notify(whatsapp, idempotency_key="order-7")
    assert queued.status_code == 202 and whatsapp.send() == 1
    whatsapp.standin.templates = [{**t, "status": "PAUSED"} for t in whatsapp.standin.templates]
    sync(whatsapp)
    again = notify(whatsapp, idempotency_key="order-7", language=None)
    assert again.status_code == 200 and again.json()["id"] == queued.json()["id"] and again.json()["state"] == "sent"
    assert notify(whatsapp, idempotency_key="order-8").status_code == 422  # a new one: the template is paused
    changed = notify(whatsapp, idempotency_key="order-7", parameters=["Giulia", "another sofa"])
    assert changed.status_code == 422  # not the same request: checked as a new one, and its template is paused
    gone = whatsapp.client.delete(f"{API}/whatsapp-numbers/{whatsapp.number_id}", headers=whatsapp.auth)
    assert gone.status_code in (200, 204)
    again = notify(whatsapp, idempotency_key="order-7")
    assert again.status_code == 200 and again.json()["id"] == queued.json()["id"]
    assert notify(whatsapp, idempotency_key="order-9").status_code == 409  # a new one: no number to send from
    assert len(whatsapp.standin.sent) == 1


def test_an_unapproved_template_is_refused(whatsapp: WhatsAppSetup) -> None:
    whatsapp.standin.templates = [{**whatsapp.standin.templates[1], "status": "PAUSED"}]
    sync(whatsapp)
    opt_in(whatsapp)
    answer = notify(whatsapp)
    assert answer.status_code == 422 and "PAUSED at Meta, not APPROVED" in answer.json()["detail"]


def test_an_opt_out_that_arrives_while_it_waits_stops_it(whatsapp: WhatsAppSetup) -> None:
    sync(whatsapp)
    opt_in(whatsapp)
    queued = notify(whatsapp).json()
    whatsapp.run(whatsapp.customer(wa_id=PHONE, user_id=None).send_text("STOP"))
    whatsapp.process()
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    shown = whatsapp.client.get(f"{API}/notifications/{queued['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "cancelled" and "opted out" in shown["error"]
    after = notify(whatsapp)
    assert after.status_code == 409 and "opted out" in after.json()["detail"]


@pytest.mark.parametrize("how", ["STOP", "user_preferences"])
def test_an_opt_out_that_names_only_the_user_id_stops_updates_to_the_number(whatsapp: WhatsAppSetup, how: str) -> None:
    """Found by a review: WhatsApp may withhold the number on a message (business-scoped user
    ids); a STOP that came with the user id alone was recorded under it, and updates, addressed
    by number, still went out. The conversation that holds both ties them together."""
    sync(whatsapp)
    opt_in(whatsapp)
    whatsapp.run(whatsapp.customer(wa_id=PHONE, user_id="IT.777").send_text("Ciao"))
    whatsapp.process()
    queued = notify(whatsapp).json()
    withheld = whatsapp.customer(wa_id=None, user_id="IT.777")
    whatsapp.run(withheld.send_text("STOP") if how == "STOP" else withheld.set_marketing("stop"))
    whatsapp.process()
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []  # the sender's last look
    shown = whatsapp.client.get(f"{API}/notifications/{queued['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "cancelled" and "opted out" in shown["error"]
    after = notify(whatsapp, idempotency_key="next")
    assert after.status_code == 409 and "opted out" in after.json()["detail"]


def test_a_notification_meta_reports_failed_says_why(whatsapp: WhatsAppSetup) -> None:
    """Found by an independent review: Meta's usual way to report 131026 (a `failed` status)
    left the notification `failed` with no code and no reason."""
    sync(whatsapp)
    opt_in(whatsapp)
    made = notify(whatsapp).json()
    assert whatsapp.send() == 1
    (sent,) = whatsapp.standin.sent
    whatsapp.status(sent.wamid, "failed", [error(131026)])
    whatsapp.process()
    shown = whatsapp.client.get(f"{API}/notifications/{made['id']}", headers=whatsapp.auth).json()
    assert (shown["state"], shown["error_code"]) == ("failed", 131026)
    assert shown["error"].startswith("The message could not be delivered")


def test_meta_refusing_for_a_marketing_stop_is_an_opt_out(whatsapp: WhatsAppSetup) -> None:
    """Found by an independent review: error 131050 in a status was an opt-out, the same error
    in Meta's answer to the send was not, and the next update went out."""
    sync(whatsapp)
    opt_in(whatsapp)
    whatsapp.standin.fail_next(1, 400, 131050)
    first = notify(whatsapp).json()
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    shown = whatsapp.client.get(f"{API}/notifications/{first['id']}", headers=whatsapp.auth).json()
    assert (shown["state"], shown["error_code"]) == ("failed", 131050)
    after = notify(whatsapp, idempotency_key="next")
    assert after.status_code == 409 and "opted out" in after.json()["detail"]


def test_refusals_for_now_are_retried_with_backoff_and_sent_once(whatsapp: WhatsAppSetup) -> None:
    sync(whatsapp)
    opt_in(whatsapp)
    queued = notify(whatsapp).json()
    whatsapp.standin.fail_next(1, 429, 130429)
    whatsapp.standin.fail_next(1, 503, 131000)
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    shown = whatsapp.client.get(f"{API}/notifications/{queued['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "queued" and shown["error_code"] == 130429 and shown["attempts"] == 1
    assert whatsapp.send() == 0  # not due yet
    whatsapp.clock.move(60)
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []
    whatsapp.clock.move(120)
    assert whatsapp.send() == 1 and len(whatsapp.standin.sent) == 1
    shown = whatsapp.client.get(f"{API}/notifications/{queued['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "sent" and shown["attempts"] == 3


def test_a_refusal_for_good_fails_with_metas_reason(whatsapp: WhatsAppSetup) -> None:
    sync(whatsapp)
    opt_in(whatsapp)
    queued = notify(whatsapp).json()
    whatsapp.standin.fail_next(1, 400, 131026)
    assert whatsapp.send() == 1
    shown = whatsapp.client.get(f"{API}/notifications/{queued['id']}", headers=whatsapp.auth).json()
    assert shown["state"] == "failed" and shown["error_code"] == 131026 and "could not be delivered" in shown["error"]


def test_the_pace_keeps_metas_throughput_per_number() -> None:
    pace = Pace(per_second=4)
    delays = [pace.delay(1, 100.0) for _ in range(8)]
    assert delays == [0.0] * 4 + [0.25, 0.5, 0.75, 1.0]  # one second's worth at once, then 4 a second
    assert pace.delay(2, 100.0) == 0.0  # another number has its own
    assert pace.delay(1, 200.0) == 0.0  # idle for long: credit again, but never more than one second's


def test_templates_are_read_and_checked_as_meta_writes_them() -> None:
    body = {"type": "BODY", "text": "Ciao {{name}}, l'ordine {{order}} è pronto."}
    named = read_template({"name": "order_ready", "language": "it", "status": "APPROVED", "category": "UTILITY",
                           "components": [body]})  # fmt: skip
    assert named is not None and named.parameter_names == ("name", "order") and named.named
    assert check_parameters(named, ["Giulia", 1042]) == ["Giulia", "1042"]
    assert render(named, ["Giulia", "1042"]) == "Ciao Giulia, l'ordine 1042 è pronto."
    with pytest.raises(ValueError, match="takes 2 parameters"):
        check_parameters(named, ["Giulia"])
    assert read_template({"language": "it"}) is None
    positional = read_template({"name": "x", "language": "en", "components": [{"type": "BODY", "text": "{{2}} {{1}}"}]})
    assert positional is not None and positional.parameter_names == ("1", "2") and not positional.named


def test_draining_sends_every_batch_once_never_more_at_once_than_allowed(whatsapp: WhatsAppSetup) -> None:
    sync(whatsapp)
    phones = [f"3934712345{i:02d}" for i in range(30)]
    for phone in phones:
        opt_in(whatsapp, phone=phone)
    for phone in phones:
        assert notify(whatsapp, to=f"+{phone}", idempotency_key=f"order-{phone}").status_code == 202
    opt_in(whatsapp, phone=phones[-1], state="out")  # opted out while waiting: cancelled, not sent
    sender = whatsapp.service.whatsapp.sender
    sender.concurrency = 3  # 12 rows a batch: three batches, two of them in flight at a time
    assert whatsapp.run(sender.drain()) == 30
    assert whatsapp.run(sender.drain()) == 0
    assert sorted(s.body["to"] for s in whatsapp.standin.sent) == phones[:-1]
    assert whatsapp.standin.peak_in_flight <= 3  # how many overlap depends on timing; never more than allowed
    listed = whatsapp.client.get(f"{API}/notifications?limit=100", headers=whatsapp.auth).json()["notifications"]
    assert sorted(n["state"] for n in listed) == ["cancelled"] + ["sent"] * 29


def test_an_id_too_large_for_the_database_is_a_422_naming_it(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker's fuzzer: a business id past 64 bits was a 500 (OverflowError); the
    document said "maximum" and nothing enforced it. The same for the other bodies' ids."""
    huge = 2**64
    answers = [
        (notify(whatsapp, business=huge), "business"),
        (whatsapp.client.post(f"{API}/optins", headers=whatsapp.auth, json={
            "phone": "+39 347 123 4567", "topic": "orders", "source": "api", "consent_text": "Yes",
            "consent_version": "1", "business_id": huge}), "business_id"),
        (whatsapp.client.post(f"{API}/whatsapp-numbers", headers=whatsapp.auth, json={
            "business_id": huge, "phone_number_id": "1234", "waba_id": "5678", "access_token": "x" * 40,
            "app_secret": "y" * 32, "verify_token": "z" * 20}), "business_id"),
    ]  # fmt: skip
    for answer, field in answers:
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["errors"]] == [field], answer.text
