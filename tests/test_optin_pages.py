"""The hosted opt-in page, its poster and QR code, the widget panel's endpoints, double opt-in
through the outbox and the Graph stand-in, and the limits on public forms. Time is the test's
clock; nothing sleeps."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from clicktochat.budget import BURST, Budget
from clicktochat.consent import may_message
from clicktochat.errors import InvalidInput
from clicktochat.graph_standin import StandInNumber
from clicktochat.optins import Optins
from clicktochat.optinstore import says_yes
from clicktochat.payloads import inbound_message, new_wamid
from clicktochat.simulate import Customer
from conftest import WhatsAppSetup, read_qr

FORM: dict[str, Any] = {
    "slug": "dolce", "topics": ["orders", "offers"], "title": None,
    "wording": {"en": "Yes, send me updates on WhatsApp about what I choose.",
                "it": "Sì, mandatemi su WhatsApp aggiornamenti su quello che scelgo."},
}  # fmt: skip
PHONE = "393471234567"


def make_form(whatsapp: WhatsAppSetup, **changes: Any) -> Any:
    values = FORM | {"business_id": whatsapp.business_id} | changes
    return whatsapp.run(Optins(whatsapp.service).save_form(values))


def entries(whatsapp: WhatsAppSetup, phone: str = PHONE) -> list[Any]:
    return whatsapp.run(whatsapp.service.whatsapp.chats.consents(whatsapp.business_id, phone, None))  # type: ignore[no-any-return]


def post(whatsapp: WhatsAppSetup, slug: str = "dolce", **fields: str) -> Any:
    data = {"country": "IT", "phone": "347 123 4567", "topic": "orders", "lang": "it"} | fields
    return whatsapp.client.post(f"/optin/{slug}", data=data)


def test_the_page_speaks_the_visitors_language_and_preselects_their_country(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    page = whatsapp.client.get("/optin/dolce", headers={"Accept-Language": "it-IT,it;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="it">' in page.text and "Ricevi aggiornamenti su WhatsApp" in page.text
    assert "mandatemi su WhatsApp" in page.text and '<option value="IT" selected>' in page.text
    names = re.findall(r'<option value="([A-Z]{2})"[^>]*>([^<]+)</option>', page.text)
    assert ("IT", "Italia +39") in names and ("DE", "Germania +49") in names  # named in the page's language
    order = [region for region, _ in names]
    assert order.index("DE") < order.index("IT") < order.index("GB")  # Germania, Italia, Regno Unito
    assert "form-action 'self'" in page.headers["content-security-policy"]
    english = whatsapp.client.get("/optin/dolce", headers={"Accept-Language": "en-US"})
    assert "Get updates on WhatsApp" in english.text and '<option value="US" selected>' in english.text
    assert 'name="website"' in english.text  # the honeypot
    assert whatsapp.client.get("/optin/nope").status_code == 404
    gone = whatsapp.client.get("/optin/nope", headers={"Accept-Language": "de"})  # a removed form's poster
    assert gone.status_code == 404 and "Hier gibt es kein Anmeldeformular" in gone.text  # was English (a review)
    assert "There is no sign-up form" not in gone.text


def test_an_opt_in_on_the_page_records_the_words_shown_and_the_proof(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    done = post(whatsapp, topic="offers")
    assert done.status_code == 200, done.text
    assert "Grazie!" in done.text and "Offers" in done.text
    [entry] = entries(whatsapp)
    assert (entry.phone, entry.topic, entry.state, entry.source) == (PHONE, "offers", "in", "page")
    assert entry.wording == FORM["wording"]["it"] and entry.version == "1"
    assert entry.proof["page"] == "https://chat.example.com/optin/dolce" and entry.proof["form"] == "dolce"
    assert len(entry.proof["visitor"]) == 16 and "testclient" not in str(entry.proof)  # a hash, never the address
    assert may_message(entries(whatsapp), "offers").allowed and not may_message(entries(whatsapp), "orders").allowed


def test_a_new_wording_is_a_new_version(whatsapp: WhatsAppSetup) -> None:
    form = make_form(whatsapp)
    changed = whatsapp.run(Optins(whatsapp.service).save_form(
        FORM | {"business_id": whatsapp.business_id, "wording": FORM["wording"] | {"en": "Updates, please."}}, form))
    assert changed.version == 2
    assert post(whatsapp, lang="en").status_code == 200
    assert (entries(whatsapp)[0].wording, entries(whatsapp)[0].version) == ("Updates, please.", "2")


def test_the_title_heads_the_form_and_the_business_gives_the_consent(whatsapp: WhatsAppSetup) -> None:
    """Found by a new user: a form's title took the business's place in the consent sentence
    ("Leave your number and Order updates will send you..."), which then named no business."""
    make_form(whatsapp, title="Aggiornamenti")
    page = whatsapp.client.get("/optin/dolce", params={"lang": "it"}).text
    assert '<p class="business">Aggiornamenti</p>' in page
    assert "Pasticceria Dolce Vita ti manderà su WhatsApp" in page and "Aggiornamenti ti manderà" not in page
    panel = whatsapp.client.get("/api/optin/dolce", params={"lang": "it"}).json()
    assert "Pasticceria Dolce Vita" in panel["words"]["intro"]


def test_topics_are_called_what_the_form_calls_them_in_each_language(whatsapp: WhatsAppSetup) -> None:
    form = make_form(whatsapp, topic_labels={"it": {"orders": "I miei ordini", "offers": "Offerte e novità"}})
    italian = whatsapp.client.get("/optin/dolce?lang=it")
    assert 'value="orders" checked> I miei ordini</label>' in italian.text and "Offerte e novità" in italian.text
    english = whatsapp.client.get("/optin/dolce?lang=en")  # no labels in English: the names, made readable
    assert 'value="orders" checked> Orders</label>' in english.text and "I miei ordini" not in english.text
    panel = whatsapp.client.get("/api/optin/dolce", params={"lang": "it"}).json()
    assert panel["topics"] == [["orders", "I miei ordini"], ["offers", "Offerte e novità"]]
    done = post(whatsapp, topic="offers")
    assert "Offerte e novità" in done.text and entries(whatsapp)[0].topic == "offers"
    assert "aggiornamenti su «Offerte e novità» su WhatsApp" in done.text  # a name, in the sentence: quoted
    # ...and the consent keeps it: the form keeps only its latest words (found by a new user).
    assert entries(whatsapp)[0].proof["topic_label"] == "Offerte e novità"
    # What a topic is called is part of what people agree to: a new label is a new version.
    relabelled = whatsapp.run(Optins(whatsapp.service).save_form(
        FORM | {"business_id": whatsapp.business_id, "topic_labels": {"it": {"orders": "Ordini"}}}, form))
    assert relabelled.version == 2 and relabelled.topic_label("offers", "it") == "Offers"


def test_a_topic_sent_twice_with_two_values_asks_again_and_records_nothing(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: topic=orders&topic=offers recorded `offers`, the last, and said nothing."""
    make_form(whatsapp)
    data = {"country": "IT", "phone": "347 123 4567", "topic": ["orders", "offers"], "lang": "it"}
    asked = whatsapp.client.post("/optin/dolce", data=data)
    assert asked.status_code == 422 and "Scegli uno degli argomenti." in asked.text and entries(whatsapp) == []
    same = whatsapp.client.post("/optin/dolce", data=data | {"topic": ["offers", "offers"]})
    assert same.status_code == 200 and [e.topic for e in entries(whatsapp)] == ["offers"]


@pytest.mark.parametrize(
    ("labels", "field", "reason"),
    [
        ({"de": {"orders": "Bestellungen"}}, "topic_labels.de", "no consent sentence in 'de'"),
        ({"it": {"ordini": "Ordini"}}, "topic_labels.it.ordini", "not one of the form's topics (orders, offers)"),
        ({"it": {"orders": ""}}, "topic_labels.it.orders", "1 to 60 characters"),
        ({"it": {"orders": "x" * 61}}, "topic_labels.it.orders", "1 to 60 characters"),
        ({"it": {"orders": "Or\nders"}}, "topic_labels.it.orders", "control characters"),
        ({"it": ["orders"]}, "topic_labels.it", "must map topics to labels"),
    ],
)
def test_bad_topic_labels_name_the_field(whatsapp: WhatsAppSetup, labels: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_form(whatsapp, topic_labels=labels)
    assert caught.value.errors[0].field == field and reason in caught.value.errors[0].reason
    assert whatsapp.run(whatsapp.service.whatsapp.chats.forms()) == []


def test_bad_numbers_are_shown_beside_the_field_and_nothing_is_recorded(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    page = post(whatsapp, phone="12")
    assert page.status_code == 422
    assert 'aria-invalid="true"' in page.text and "Controlla il numero." in page.text
    assert 'value="12"' in page.text
    assert entries(whatsapp) == []


@pytest.mark.parametrize(("phone", "says"), [
    ("+44 909 879 0000", "a premium-rate number"), ("+1 900 555 1234", "a premium-rate number"),
    ("+39 800 123456", "a toll-free number"), ("+800 1234 5678", "+800 is a number of no country"),
    ("+870 773 111 632", "+870 is a number of no country"), ("+979 123456789", "+979 is a number of no country"),
])  # fmt: skip
def test_numbers_no_person_carries_are_refused_by_the_public_form(whatsapp: WhatsAppSetup, phone: str,
                                                                   says: str) -> None:  # fmt: skip
    """Found by an attacker: premium-rate, toll-free and no-country numbers were taken, and a
    double opt-in form sent each a confirmation the business paid for."""
    make_form(whatsapp)
    answer = whatsapp.client.post("/optin/dolce", headers={"Accept": "application/json"},
                                  data={"phone": phone, "topic": "orders", "lang": "en"})  # fmt: skip
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "phone"
    assert says in answer.json()["detail"] and entries(whatsapp) == []
    page = post(whatsapp, phone=phone)  # a person reads why beside the field, in the page's language
    assert page.status_code == 422 and "Usa il tuo numero di cellulare" in page.text


def test_a_json_body_is_a_415_not_a_missing_phone(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: JSON posted to the form was read as an empty form ("a phone number is required")."""
    make_form(whatsapp)
    answer = whatsapp.client.post("/optin/dolce", headers={"Accept": "application/json"},
                                  json={"phone": "+39 347 123 4567", "topic": "orders"})  # fmt: skip
    assert answer.status_code == 415 and "x-www-form-urlencoded" in answer.json()["detail"]
    assert entries(whatsapp) == []


def test_a_number_typed_in_fullwidth_digits_is_read(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: ＋３９… (a Chinese or Japanese keyboard) was refused as having no country code."""
    make_form(whatsapp)
    fullwidth = "＋３９ ３４７ １２３ ４５６７"
    answer = whatsapp.client.post("/optin/dolce", headers={"Accept": "application/json"},
                                  data={"phone": fullwidth, "topic": "orders", "lang": "en"})  # fmt: skip
    assert answer.status_code == 200 and [e.phone for e in entries(whatsapp)] == ["393471234567"]


@pytest.mark.parametrize(("path", "accept"), [("/optin/dolce", "text/html"), ("/api/v1/links", "application/json"),
                                              ("/admin/login", "text/html")])  # a review: the dashboard's said 422
def test_a_body_that_never_finishes_arriving_is_a_408_not_a_connection_held_for_ever(
    whatsapp: WhatsAppSetup, path: str, accept: str,
) -> None:
    """Found by an attacker: a form or API POST that sent a byte and idled held its request (and
    connection) for ever; only Meta's webhooks had a deadline."""
    make_form(whatsapp)
    app = whatsapp.client.app
    app.body_deadline = 0.05  # type: ignore[attr-defined]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "client": ("192.0.2.9", 40000),
        "server": ("chat.example.com", 80), "headers": [(b"host", b"chat.example.com"), (b"accept", accept.encode()),
        (b"content-type", b"application/json" if path.startswith("/api/") else b"application/x-www-form-urlencoded"),
        (b"content-length", b"8000"),
        *[(k.lower().encode(), v.encode()) for k, v in whatsapp.auth.items() if path.startswith("/api/")]],
    }  # fmt: skip
    first = [{"type": "http.request", "body": b"p", "more_body": True}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        if first:
            return first.pop()
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    whatsapp.run(app(scope, receive, send))
    assert sent[0]["status"] == 408 and entries(whatsapp) == []
    assert (b"connection", b"close") in sent[0]["headers"]  # and the connection goes (a review: it stayed)
    assert b"took more than 0.05 s to arrive" in b"".join(m.get("body", b"") for m in sent[1:])


def test_the_honeypot_is_answered_as_a_success_and_dropped(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    page = post(whatsapp, website="http://spam.example")
    assert page.status_code == 200 and "Grazie!" in page.text
    assert entries(whatsapp) == []


def test_the_panels_errors_are_problems_the_script_can_read_and_guessing_costs(whatsapp: WhatsAppSetup) -> None:
    """Found by an independent review: an unknown form's panel was a bare {"detail"} and spent
    nothing, however many names were guessed; the panel's language, from the browser, was cached
    by Origin alone."""
    make_form(whatsapp)
    panel = whatsapp.client.get("/api/optin/dolce", headers={"accept-language": "it"})
    assert panel.status_code == 200 and set(panel.headers["vary"].split(", ")) == {"Origin", "Accept-Language"}
    statuses = []
    for n in range(BURST + 1):
        missing = whatsapp.client.get(f"/api/optin/nope{n}")
        statuses.append(missing.status_code)
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.headers["access-control-allow-origin"] == "*"  # the script reads why
    assert statuses == [404] * BURST + [429]
    assert whatsapp.client.get("/api/optin/dolce").status_code == 200  # a known form's panel: no budget spent


def test_a_form_changed_after_it_was_shown_records_nothing_and_shows_the_new_words(whatsapp: WhatsAppSetup) -> None:
    """Found by an independent review: the ledger recorded the form's wording at the time of the
    POST, which may not be what the person read (the owner changed it meanwhile)."""
    make_form(whatsapp, slug="single")
    page = whatsapp.client.get("/optin/single", params={"lang": "en"}).text
    shown = re.search(r'name="version" value="(\d+)"', page)
    assert shown
    optins = Optins(whatsapp.service)
    form = whatsapp.run(optins.form("single"))
    values = FORM | {"business_id": whatsapp.business_id, "slug": "single",
                     "wording": {"en": "Yes, and partner offers too."}}  # fmt: skip
    whatsapp.run(optins.save_form(values, form))
    fields = {"phone": "347 123 4567", "country": "IT", "topic": "orders", "lang": "en", "version": shown.group(1)}
    refused = whatsapp.client.post("/optin/single", data=fields)
    assert refused.status_code == 409 and "have changed since this page was opened" in refused.text
    assert "partner offers too" in refused.text and 'value="347 123 4567"' in refused.text  # the new words, shown
    assert entries(whatsapp) == []
    panel = whatsapp.client.post("/optin/single", data=fields, headers={"accept": "application/json"})
    assert panel.status_code == 409 and panel.json()["errors"][0]["field"] == "version"
    assert "changed since this page was opened" in panel.json()["message"]
    again = re.search(r'name="version" value="(\d+)"', refused.text)
    assert again and again.group(1) != shown.group(1)
    assert whatsapp.client.post("/optin/single", data=fields | {"version": again.group(1)}).status_code == 200
    (entry,) = entries(whatsapp)
    assert entry.wording == "Yes, and partner offers too."


def test_each_address_and_each_number_has_a_budget(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    for _ in range(3):
        assert post(whatsapp).status_code == 200
    refused = post(whatsapp)  # the number's fourth
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 60
    assert "Troppe iscrizioni per questo numero" in refused.text  # the form's language (lang=it)
    for n in range(10, 16):  # the address's fifth to tenth
        assert post(whatsapp, phone=f"347 000 00{n}").status_code == 200
    refused = post(whatsapp, phone="347 000 0020")  # the address's eleventh
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 30
    assert "Troppe iscrizioni da qui" in refused.text and "Riprova tra 1 min." in refused.text
    whatsapp.clock.move(30)
    assert post(whatsapp, phone="347 000 0020").status_code == 200


def test_a_numbers_budget_tells_no_other_business_and_a_refused_form_spends_none(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: the number's budget was one for the whole install, and a form
    refused for a topic it does not offer spent it: posting a wrong topic to another business's
    form showed, by when the 429 came, whether the number had signed up here, and locked a
    stranger's number out of every form for an hour at no cost."""
    make_form(whatsapp)
    other = whatsapp.run(whatsapp.service.add_business("Bar Sport", "Europe/Rome"))
    make_form(whatsapp, slug="bar", business_id=other.id)
    for _ in range(6):  # a prober: a topic no form offers, nothing recorded, nothing spent
        assert post(whatsapp, slug="bar", topic="nosuch").status_code == 422
    for _ in range(3):  # the person, at the first business: all three of their budget still there
        assert post(whatsapp).status_code == 200
    assert post(whatsapp).status_code == 429
    whatsapp.clock.move(4 * 30)  # the address's budget (one every 30 s) for four more; not the number's (an hour)
    answers = [post(whatsapp, slug="bar").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]  # the other business counts its own: as for a number never seen
    whatsapp.clock.move(4 * 30)
    fresh = [post(whatsapp, slug="bar", phone="347 000 0077").status_code for _ in range(4)]
    assert fresh == answers


def sync(whatsapp: WhatsAppSetup) -> None:
    whatsapp.run(whatsapp.service.whatsapp.notifications.sync_templates())


def double_form(whatsapp: WhatsAppSetup) -> Any:
    sync(whatsapp)  # the confirmation template is checked against the number's synced templates
    return make_form(whatsapp, double_optin=True, template="hello_world", template_language="en_US")


@pytest.mark.parametrize(("template", "language", "field", "says"), [
    ("nonexist", "en_US", "template", "no template nonexist (synced from Meta): check the name, or fetch them again"
                                      " with clicktochat whatsapp templates sync"),
    ("hello_world", "it", "template_language", "the template hello_world exists in en_US, not it"),
    ("paused_one", "en_US", "template", "PAUSED at Meta, not APPROVED: wait for Meta's approval"),
    # Meta refused every confirmation of such a form: the template wants values it is never given.
    ("follow_up", "en_US", "template", "takes 2 parameters ({{1}}, {{2}}), and a confirmation sends none"),
])  # fmt: skip
def test_a_double_opt_in_form_needs_an_approved_synced_template(
    whatsapp: WhatsAppSetup, template: str, language: str, field: str, says: str
) -> None:
    paused = {"name": "paused_one", "language": "en_US", "status": "PAUSED", "category": "UTILITY"}
    whatsapp.standin.templates = [*whatsapp.standin.templates, paused]
    sync(whatsapp)
    with pytest.raises(InvalidInput) as refused:
        make_form(whatsapp, double_optin=True, template=template, template_language=language)
    assert [(e.field, says in e.reason) for e in refused.value.errors] == [(field, True)], refused.value.errors
    assert whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce")) is None  # nothing kept


def test_a_double_opt_in_form_needs_a_connected_number(whatsapp: WhatsAppSetup) -> None:
    other = whatsapp.run(whatsapp.service.add_business("Bar Sport", "Europe/Rome"))
    with pytest.raises(InvalidInput) as refused:
        make_form(whatsapp, business_id=other.id, double_optin=True, template="hello_world", template_language="en_US")
    [error] = refused.value.errors
    assert error.field == "double_optin" and "has no connected WhatsApp number" in error.reason
    assert make_form(whatsapp, business_id=other.id).double_optin is False  # without double opt-in it is fine


def test_a_confirmation_meta_refused_does_not_lock_the_person_out(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    kept = whatsapp.standin.templates
    whatsapp.standin.templates = []  # deleted at Meta after the form was saved: sends fail with code 100
    assert "Tocca Sì" in post(whatsapp).text
    assert whatsapp.send() == 1
    [row] = whatsapp.run(whatsapp.service.whatsapp.chats.requests(None, PHONE))
    outbox = whatsapp.run(whatsapp.service.whatsapp.chats.outbox_row(row.outbox_id))
    assert outbox.state == "failed" and outbox.error_code == 100, outbox
    whatsapp.standin.templates = kept  # the business put it back at Meta
    whatsapp.clock.move(60)
    again = post(whatsapp)
    assert "Tocca Sì" in again.text and "già scritto" not in again.text and "Riprova domani" not in again.text
    assert whatsapp.send() == 1 and whatsapp.standin.sent[-1].body["template"]["name"] == "hello_world"
    states = [r.state for r in whatsapp.run(whatsapp.service.whatsapp.chats.requests(None, PHONE))]
    assert states == ["lapsed", "pending"]
    whatsapp.run(whatsapp.customer().tap_button("Yes", "confirm", context={"id": whatsapp.standin.sent[-1].wamid}))
    whatsapp.process()
    assert may_message(entries(whatsapp), "orders").allowed
    assert "già scritto" in post(whatsapp, topic="offers").text  # one that reached them counts for the day


def test_a_form_whose_template_is_gone_says_so_in_the_visitors_language(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    whatsapp.standin.templates = []
    sync(whatsapp)  # the template is gone from the synced list too: nothing is queued, nobody waits
    page = post(whatsapp)
    assert page.status_code == 503 and "non è possibile iscriversi" in page.text
    assert "Pasticceria Dolce Vita non può mandare la conferma" in page.text
    panel = whatsapp.client.post("/optin/dolce", headers={"Accept": "application/json"},
                                 data={"phone": "+393471234567", "topic": "orders", "lang": "en"})  # fmt: skip
    assert panel.status_code == 503 and "no template hello_world" in panel.json()["detail"]
    assert whatsapp.run(whatsapp.service.whatsapp.chats.requests(None, PHONE)) == [] and whatsapp.send() == 0


def test_one_address_cannot_spend_a_business_hour_of_confirmations(whatsapp: WhatsAppSetup) -> None:
    """Found by an independent review: the address's allowance (10, then one every 30 s) let
    one address send the business's whole hour of paid confirmations to numbers it typed."""
    double_form(whatsapp)
    for n in range(5):
        assert post(whatsapp, phone=f"347 000 00{n:02d}").status_code == 200
    refused = post(whatsapp, phone="347 000 0099")
    assert refused.status_code == 429 and "Troppe iscrizioni da qui" in refused.text
    whatsapp.clock.move(600)
    assert post(whatsapp, phone="347 000 0099").status_code == 200


def test_double_opt_in_is_pending_until_the_customer_taps_yes(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    page = post(whatsapp)
    assert "Tocca Sì" in page.text
    assert whatsapp.send() == 1
    [sent] = whatsapp.standin.sent
    assert sent.body["to"] == PHONE and sent.body["template"]["name"] == "hello_world"
    assert entries(whatsapp) == [] and not may_message(entries(whatsapp), "orders").allowed
    assert "già scritto" in post(whatsapp).text  # one pending at a time: no second message
    assert whatsapp.send() == 0
    whatsapp.clock.move(60)
    # Found by an attacker: any button confirmed it, one of another message ("Track my order") too.
    whatsapp.run(whatsapp.customer().tap_reply("track", "Track my order", context={"id": "wamid.ANOTHER"}))
    whatsapp.process()
    assert entries(whatsapp) == []
    whatsapp.run(whatsapp.customer().tap_button("Yes", "confirm", context={"id": sent.wamid}))
    whatsapp.process()
    [entry] = entries(whatsapp)
    assert (entry.state, entry.source, entry.wording) == ("in", "page", FORM["wording"]["it"])
    assert entry.proof["confirmed_by"].startswith("wamid.") and entry.proof["form"] == "dolce"
    assert may_message(entries(whatsapp), "orders").allowed
    history = whatsapp.client.get("/api/v1/optins", params={"phone": PHONE}, headers=whatsapp.auth).json()
    assert [r["state"] for r in history["requests"]] == ["confirmed"]
    assert history["pending"] == []  # a confirmed request waits no more (an updates review: it was listed as pending)


def test_never_more_than_one_confirmation_a_day_to_a_number(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    post(whatsapp)
    whatsapp.send()
    whatsapp.run(whatsapp.customer().send_text("sì grazie"))  # writing back confirms too
    whatsapp.process()
    assert [e.state for e in entries(whatsapp)] == ["in"]
    assert "già scritto" in post(whatsapp, topic="offers").text
    whatsapp.send()
    assert len(whatsapp.standin.sent) == 1
    whatsapp.clock.move(86_400)
    assert "Tocca Sì" in post(whatsapp, topic="offers").text


def test_stop_refuses_a_pending_request_and_stop_after_an_opt_in_wins(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    post(whatsapp)
    whatsapp.run(whatsapp.customer().send_text("STOP"))
    whatsapp.process()
    assert [(e.topic, e.state) for e in entries(whatsapp)] == [("*", "out")]
    history = whatsapp.client.get("/api/v1/optins", params={"phone": PHONE}, headers=whatsapp.auth).json()
    assert [r["state"] for r in history["requests"]] == ["refused"]
    make_form(whatsapp, slug="plain")
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text("Ciao, rieccomi"))  # back in touch: the form may count again
    whatsapp.process()
    whatsapp.clock.move(60)
    post(whatsapp, slug="plain")
    assert may_message(entries(whatsapp), "orders").allowed  # opting in again, with the words shown
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text("Stop"))
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed


def test_no_confirmation_goes_to_a_number_that_said_stop_or_was_erased(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: a stranger typing in a number that had written STOP, or had been
    erased, made the business send it a confirmation. The page answers as for anyone (it must
    not tell who opted out); writing to the business again lets the form's confirmation go."""
    double_form(whatsapp)
    whatsapp.run(whatsapp.customer().send_text("STOP"))
    whatsapp.process()
    whatsapp.clock.move(60)
    assert "Tocca Sì" in post(whatsapp).text
    # and again, as for anyone (found by the attacker's second look: it said "pending" every time,
    # where anyone else's second try says one was sent already)
    assert "già scritto" in post(whatsapp).text
    assert whatsapp.send() == 0 and whatsapp.standin.sent == []
    erased = "393475550001"
    whatsapp.run(whatsapp.service.whatsapp.chats.erase_customer(erased, int(whatsapp.clock())))
    assert "Tocca Sì" in post(whatsapp, phone="+" + erased).text
    assert whatsapp.send() == 0 and whatsapp.standin.sent == []
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text("Ciao, vorrei di nuovo gli aggiornamenti"))
    whatsapp.process()
    whatsapp.clock.move(60)
    assert "Tocca Sì" in post(whatsapp).text
    assert whatsapp.send() == 1 and whatsapp.standin.sent[0].body["to"] == PHONE


def test_a_stop_that_names_only_the_user_id_holds_back_a_confirmation(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a STOP that came with the business-scoped user id alone (WhatsApp
    withheld the number) did not stop a confirmation addressed to the number it belongs to."""
    double_form(whatsapp)
    whatsapp.run(whatsapp.customer().send_text("Ciao"))  # the conversation ties the number to the user id
    whatsapp.process()
    whatsapp.clock.move(60)
    assert "Tocca Sì" in post(whatsapp).text
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer(wa_id=None).send_text("STOP"))
    whatsapp.process()
    whatsapp.send()
    assert whatsapp.standin.sent == []


@pytest.mark.parametrize("reply", ["No", "no.", "No grazie!", "Nein danke", "non merci", "NO THANKS"])
def test_a_written_no_refuses_a_pending_request(whatsapp: WhatsAppSetup, reply: str) -> None:
    double_form(whatsapp)
    post(whatsapp)
    whatsapp.run(whatsapp.customer().send_text(reply))
    whatsapp.process()
    assert entries(whatsapp) == [] and not may_message(entries(whatsapp), "orders").allowed
    history = whatsapp.client.get("/api/v1/optins", params={"phone": PHONE}, headers=whatsapp.auth).json()
    assert [r["state"] for r in history["requests"]] == ["refused"]


def test_a_place_or_a_contact_named_no_does_not_refuse_a_pending_request(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: shared locations and contact cards are kept as text now; one named "No"
    (or "Stop") must not read as the customer's answer."""
    double_form(whatsapp)
    post(whatsapp)
    customer = whatsapp.customer()
    for kind, content in (("location", {"latitude": 45.0, "longitude": 9.0, "name": "No"}),
                          ("contacts", [{"name": {"formatted_name": "Stop"}}])):  # fmt: skip
        value = inbound_message(wamid=new_wamid(PHONE), timestamp=int(whatsapp.clock()), wa_id=PHONE,
                                user_id=customer.user_id, name="Giulia", type=kind)  # fmt: skip
        value["messages"][0][kind] = content
        assert whatsapp.run(customer.deliver(value)).status_code == 200
    whatsapp.process()
    history = whatsapp.client.get("/api/v1/optins", params={"phone": PHONE}, headers=whatsapp.auth).json()
    assert [r["state"] for r in history["requests"]] == ["pending"] and history["pending"] == history["requests"]


def test_a_businesss_double_opt_in_forms_take_a_bounded_number_of_sign_ups_an_hour(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: strangers at many addresses could make a business send a paid
    confirmation to any number they typed in, thousands a day. Single opt-in forms send nothing."""
    double_form(whatsapp)
    make_form(whatsapp, slug="plain")
    limits = whatsapp.client.app.state.optin_limits  # type: ignore[attr-defined]
    limits.confirmations = Budget(burst=2, rate=2 / 3600, clock=whatsapp.clock)
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0001").text
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0002").text
    third = post(whatsapp, phone="347 000 0003")
    assert third.status_code == 429 and int(third.headers["retry-after"]) == 1800
    assert post(whatsapp, slug="plain", phone="347 000 0004").status_code == 200  # nothing sent: not counted
    assert whatsapp.send() == 2
    whatsapp.clock.move(1800)
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0003").text


def test_a_sign_up_that_sends_nothing_costs_the_business_nothing(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: the business's hour was spent before knowing whether a message
    would go out (a number already waiting, or confirmed today), and a sign-up refused for the
    business's hour still spent the person's own budgets: a flood shut real people out."""
    double_form(whatsapp)
    limits = whatsapp.client.app.state.optin_limits  # type: ignore[attr-defined]
    limits.confirmations = Budget(burst=2, rate=2 / 3600, clock=whatsapp.clock)
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0001").text
    for _ in range(2):  # the same number again: it waits for its first confirmation, nothing is sent
        assert post(whatsapp, phone="347 000 0001").status_code == 200
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0002").text  # the hour's second confirmation
    assert whatsapp.send() == 2
    for _ in range(3):  # the hour is spent: refused, and the number's own budget (3 at once) kept
        assert post(whatsapp, phone="347 000 0003").status_code == 429
    whatsapp.clock.move(1800)
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0003").text


def test_a_sign_up_refused_for_its_topic_spends_no_confirmation(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a sign-up refused after the budgets were spent (a topic the form does
    not offer) still took one of the address's five double opt-in confirmations."""
    double_form(whatsapp)
    for n in range(6):
        assert post(whatsapp, topic="nosuch", phone=f"347 000 01{n:02d}").status_code == 422
    assert "Tocca Sì" in post(whatsapp, phone="347 000 0199").text


def test_the_budgets_tell_no_one_who_opted_out(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a sign-up for a number that had opted out (answered "pending", as for
    anyone) gave back the address's budget, which a real one spends: a stranger could tell."""
    double_form(whatsapp)
    erased = "393475550001"
    whatsapp.run(whatsapp.service.whatsapp.chats.erase_customer(erased, int(whatsapp.clock())))
    assert "Tocca Sì" in post(whatsapp, phone="+" + erased).text
    for n in range(4):  # the address's 5 double opt-in sign-ups, the opted-out number's among them
        assert post(whatsapp, phone=f"347 000 00{n:02d}").status_code == 200
    assert post(whatsapp, phone="347 000 0099").status_code == 429


def test_two_businesses_forms_tell_no_one_who_opted_out_of_either_nor_of_each_other(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a number typed into two businesses' forms was answered "later" at the
    second when the first had sent it a confirmation, but "pending" when it had opted out at the
    first (nothing sent): the difference told a stranger who had opted out. Then by an agency's
    review: the one "later" shared by all told the second business's visitors that the number
    had signed up with the first that day. Each business answers from what it did itself."""
    second = StandInNumber(phone_number_id="106540352242888", waba_id="102290129340888",
                           display_phone_number="+39 347 000 3333", verified_name="Bar Sport",
                           access_token="EAAG" + "z" * 40, app_secret="d" * 32)  # fmt: skip
    whatsapp.standin.numbers[second.phone_number_id] = second
    other = whatsapp.run(whatsapp.service.add_business("Bar Sport", "Europe/Rome"))
    number = whatsapp.run(whatsapp.service.whatsapp.connect(other.id, second.phone_number_id, second.waba_id,
                                                            second.access_token, second.app_secret, "bar-verify"))
    assert whatsapp.client.post(f"/api/v1/whatsapp-numbers/{number.id}/templates", headers=whatsapp.auth).is_success
    double_form(whatsapp)
    make_form(whatsapp, slug="bar", business_id=other.id, double_optin=True, template="hello_world",
              template_language="en_US")  # fmt: skip
    stopped, reachable = "393475550001", "393475550002"
    whatsapp.run(whatsapp.service.whatsapp.chats.erase_customer(stopped, int(whatsapp.clock())))  # opted out everywhere
    answers = {}
    for phone in (stopped, reachable):
        first = post(whatsapp, slug="dolce", phone="+" + phone)
        then = post(whatsapp, slug="bar", phone="+" + phone)
        answers[phone] = (first.status_code, "Tocca Sì" in first.text, then.status_code, "domani" in then.text)
    assert answers[stopped] == answers[reachable] == (200, True, 200, False)  # both: "we sent you a message"
    assert whatsapp.send() == 2 and [m.body["to"] for m in whatsapp.standin.sent] == [reachable, reachable]
    whatsapp.clock.move(2 * 3600)  # the address's budget refilled; the day not over
    for phone in (stopped, reachable):  # and again the same day: each business's own limit, the same for both
        for slug in ("dolce", "bar"):
            again = post(whatsapp, slug=slug, phone="+" + phone)
            assert again.status_code == 200 and "Tocca Sì" not in again.text, (phone, slug)


@pytest.mark.parametrize("tapped", ["Yes", "No"])
def test_typing_a_number_in_again_tells_no_one_whether_its_owner_answered(whatsapp: WhatsAppSetup, tapped: str) -> None:
    """Found by an attacker: typed in again the same day, a number whose owner had not answered
    the confirmation was told "we already wrote to you", one whose owner had tapped Yes or No
    "try again tomorrow": a stranger learnt that the person had reacted. One answer for both."""
    double_form(whatsapp)
    silent, answering = "393475550011", "393475550022"
    for phone in (silent, answering):
        assert "Tocca Sì" in post(whatsapp, phone="+" + phone).text
    assert whatsapp.send() == 2
    wamid = next(m.wamid for m in whatsapp.standin.sent if m.body["to"] == answering)
    customer = whatsapp.customer(wa_id=answering, user_id=None)
    whatsapp.run(customer.tap_button(tapped, "confirm" if tapped == "Yes" else "refuse", context={"id": wamid}))
    whatsapp.process()
    [request] = whatsapp.run(whatsapp.service.whatsapp.chats.requests(None, answering))
    assert request.state == ("confirmed" if tapped == "Yes" else "refused")
    whatsapp.clock.move(3600)  # the address's and the numbers' budgets refilled; the same day
    pages = {phone: post(whatsapp, phone="+" + phone) for phone in (silent, answering)}
    assert pages[silent].status_code == pages[answering].status_code == 200
    assert pages[silent].text == pages[answering].text and "già scritto" in pages[silent].text
    panels = {phone: whatsapp.client.post("/optin/dolce", headers={"accept": "application/json"},
                                          data={"country": "IT", "phone": "+" + phone, "topic": "orders", "lang": "it"})
              for phone in (silent, answering)}  # fmt: skip
    assert panels[silent].json() == panels[answering].json() and panels[silent].json()["state"] == "waiting"
    assert whatsapp.send() == 0  # and nothing sent to either


def test_refusals_speak_the_forms_language_whatever_the_browsers(whatsapp: WhatsAppSetup) -> None:
    """Found trying the README: on an Italian page, a topic not offered was refused in English,
    and a 429 (no Accept-Language) was an English error page saying "3600 s"."""
    make_form(whatsapp)
    wrong = post(whatsapp, topic="nosuch")
    assert wrong.status_code == 422 and "Scegli uno degli argomenti." in wrong.text
    make_form(whatsapp, slug="uno", topics=["orders"])  # one topic: no choice shown, the error still is
    single = post(whatsapp, slug="uno", topic="offers", phone="347 000 0009")
    assert single.status_code == 422 and "Scegli uno degli argomenti." in single.text
    assert "choose one of" not in wrong.text
    for _ in range(3):  # the number's budget: 3 at once (the wrong topic spent none), then one an hour
        assert post(whatsapp).status_code == 200
    busy = post(whatsapp)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "3600"
    assert "Troppe iscrizioni per questo numero in questo momento. Riprova tra 60 min." in busy.text
    assert 'lang="it"' in busy.text and "3600" not in busy.text
    # Said as a refusal, with the form still filled in to try later (an updates review: it looked like the thank-you)
    assert 'class="notice" role="alert">Troppe iscrizioni' in busy.text and 'class="done"' not in busy.text
    assert 'value="347 123 4567"' in busy.text and "<form" in busy.text
    panel = whatsapp.client.post("/optin/dolce", headers={"Accept": "application/json"},
                                 data={"phone": "+393471234567", "topic": "orders", "lang": "it"})  # fmt: skip
    assert panel.status_code == 429 and panel.headers["content-type"] == "application/problem+json"
    # The widget's panel shows `message`, in the form's language (found by a new user: it showed
    # the English `detail`); `detail` stays English, for programs.
    assert panel.json()["message"] == "Troppe iscrizioni per questo numero in questo momento. Riprova tra 60 min."
    topic = whatsapp.client.post("/optin/dolce", headers={"Accept": "application/json"},
                                 data={"phone": "+393471234599", "topic": "nosuch", "lang": "it"})  # fmt: skip
    assert topic.status_code == 422 and topic.json()["message"] == "Scegli uno degli argomenti."


@pytest.mark.parametrize("reply", ["Sì", "si grazie!", "Yes please", "OK", "oui", "Ja, gerne", "👍"])
def test_a_written_yes_confirms_it(whatsapp: WhatsAppSetup, reply: str) -> None:
    double_form(whatsapp)
    post(whatsapp)
    whatsapp.run(whatsapp.customer().send_text(reply))  # found by an attacker: a yes before the question
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed  # reached them (not sent yet, or never) is none
    assert whatsapp.send() == 1
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text(reply))
    whatsapp.process()
    assert may_message(entries(whatsapp), "orders").allowed


def test_an_ok_to_an_agent_who_wrote_since_the_question_confirms_nothing(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a customer chatting about a booking, whose number a stranger had typed
    into the form, confirmed the sign-up with "ok, see you then", written to the agent."""
    customer = whatsapp.customer()
    whatsapp.run(customer.send_text("Vorrei prenotare per sabato"))
    whatsapp.process()
    double_form(whatsapp)
    post(whatsapp)  # the stranger
    assert whatsapp.send() == 1
    (question,) = whatsapp.standin.sent
    whatsapp.clock.move(60)
    (c,) = whatsapp.client.get("/api/v1/conversations", headers=whatsapp.auth).json()["conversations"]
    answer = whatsapp.client.post(f"/api/v1/conversations/{c['id']}/messages", headers=whatsapp.auth,
                                  json={"text": "Confermato, sabato alle 20"})  # fmt: skip
    assert answer.status_code == 202 and whatsapp.send() == 1
    whatsapp.clock.move(60)
    whatsapp.run(customer.send_text("ok, see you then"))
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed
    whatsapp.clock.move(60)
    whatsapp.run(customer.send_text("Sì", context={"id": question.wamid}))  # an answer to the question itself
    whatsapp.process()
    assert may_message(entries(whatsapp), "orders").allowed


def test_an_ok_to_an_update_sent_since_the_question_confirms_nothing(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: updates are sent with no conversation, so an "ok" to an update about
    another topic, sent after the question, still confirmed a stranger's sign-up."""
    double_form(whatsapp)
    whatsapp.run(whatsapp.service.whatsapp.chats.add_consent(
        whatsapp.business_id, PHONE, None, "offers", "in", int(whatsapp.clock()), "api", "Send me offers", "v1"))
    post(whatsapp)  # the stranger, for orders
    assert whatsapp.send() == 1
    whatsapp.clock.move(60)
    update = whatsapp.client.post("/api/v1/notifications", headers=whatsapp.auth, json={
        "to": "+" + PHONE, "topic": "offers", "template": "follow_up", "language": "en_US",
        "parameters": ["Giulia", "the Sacher"]})  # fmt: skip
    assert update.status_code == 202 and whatsapp.send() == 1
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text("ok"))
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed


def test_a_yes_written_to_another_number_of_the_business_confirms_nothing(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a customer answering "Sì" to an agent's question on the business's
    second number confirmed the sign-up a stranger had made, whose question came from the first."""
    second = StandInNumber(phone_number_id="106540352242999", waba_id="102290129340999",
                           display_phone_number="+39 347 000 2222", verified_name="Dolce Vita 2",
                           access_token="EAAG" + "y" * 40, app_secret="c" * 32)  # fmt: skip
    whatsapp.standin.numbers[second.phone_number_id] = second
    whatsapp.run(whatsapp.service.whatsapp.connect(whatsapp.business_id, second.phone_number_id, second.waba_id,
                                                   second.access_token, second.app_secret, "another-verify-token"))
    on_second = Customer("https://chat.example.com/webhooks/whatsapp", second, PHONE, None, "Giulia",
                         whatsapp.standin, http=whatsapp.http(), clock=whatsapp.clock)  # fmt: skip
    double_form(whatsapp)
    post(whatsapp)  # the stranger; the question goes from the first number
    assert whatsapp.send() == 1
    whatsapp.clock.move(60)
    whatsapp.run(on_second.send_text("Sì"))  # to the second number, in that chat
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed
    whatsapp.run(whatsapp.customer().send_text("Sì"))  # to the number that asked
    whatsapp.process()
    assert may_message(entries(whatsapp), "orders").allowed


@pytest.mark.parametrize("reply", ["Okay, stop", "yes stop", "ok no", "Sì, ma non ora", "oui pas maintenant"])
def test_a_yes_taken_back_in_the_same_reply_confirms_nothing(whatsapp: WhatsAppSetup, reply: str) -> None:
    """Found by a review: "Okay, stop" started with a yes, and confirmed the request."""
    assert says_yes("Okay") and not says_yes(reply)
    double_form(whatsapp)
    post(whatsapp)
    assert whatsapp.send() == 1  # the question went out
    whatsapp.clock.move(60)
    whatsapp.run(whatsapp.customer().send_text(reply))
    whatsapp.process()
    assert not any(e.state == "in" for e in entries(whatsapp))


def test_a_yes_written_before_the_question_went_out_confirms_nothing(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: the confirmation waited (Meta asked us to retry), a "yes" Meta delivered
    late, written before the question went out, confirmed it once it had gone."""
    double_form(whatsapp)
    whatsapp.standin.fail_next(1, 503, 2)
    post(whatsapp)
    written_at = int(whatsapp.clock())
    assert whatsapp.send() == 1 and whatsapp.standin.sent == []  # not taken: retried later
    whatsapp.clock.move(3600)
    assert whatsapp.send() == 1 and len(whatsapp.standin.sent) == 1  # the question goes out now
    customer = whatsapp.customer()
    value = inbound_message(wamid=new_wamid(customer.wa_id), timestamp=written_at + 5, wa_id=customer.wa_id,
                            user_id=customer.user_id, name=customer.name, text="Sì")  # fmt: skip
    whatsapp.run(customer.deliver(value))  # written an hour before the question: delivered late
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed
    whatsapp.run(customer.send_text("Sì"))  # an answer to the question
    whatsapp.process()
    assert may_message(entries(whatsapp), "orders").allowed


@pytest.mark.parametrize("reply", ["Nothing yet, when will my order arrive?", "Who is this? I never signed up",
                                   "Stop sending me this please", "Stop promotions", "ma chi siete?"])
def test_a_reply_that_says_no_yes_confirms_nothing(whatsapp: WhatsAppSetup, reply: str) -> None:
    """Found by an attacker: any written reply confirmed a request, "I never signed up" and a
    customer's next question about an order included (the stranger who typed the number in
    only had to wait for it)."""
    double_form(whatsapp)
    post(whatsapp)
    whatsapp.run(whatsapp.customer().send_text(reply))
    whatsapp.process()
    assert not may_message(entries(whatsapp), "orders").allowed
    assert not any(e.state == "in" for e in entries(whatsapp))


def test_a_number_that_said_stop_is_not_signed_up_again_by_a_stranger(whatsapp: WhatsAppSetup) -> None:
    """Found by an attacker: anyone typing a number into a single opt-in form undid its STOP, or
    its erasure, and the business then sent it marketing. The page answers as for anyone."""
    make_form(whatsapp, slug="plain")
    whatsapp.run(whatsapp.customer().send_text("STOP"))
    whatsapp.process()
    whatsapp.clock.move(60)
    thanks = "ti manderà aggiornamenti su"
    page = post(whatsapp, slug="plain")
    assert page.status_code == 200 and thanks in page.text
    assert not may_message(entries(whatsapp), "orders").allowed
    erased = "393475550001"
    whatsapp.run(whatsapp.service.whatsapp.chats.erase_customer(erased, int(whatsapp.clock())))
    whatsapp.clock.move(60)
    again = post(whatsapp, slug="plain", phone="+" + erased)
    assert again.status_code == 200 and thanks in again.text
    assert not may_message(entries(whatsapp, erased), "orders").allowed


def test_double_opt_in_needs_a_connected_number(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    whatsapp.run(whatsapp.service.whatsapp.disconnect(whatsapp.number_id))
    assert post(whatsapp).status_code == 503


def test_the_widget_panel_gets_json_with_cors_and_is_recorded_as_the_widget(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    whatsapp.run(whatsapp.service.create_widget(whatsapp.business_id, "shop", {"allowed_domains": ["shop.example"],
                                                                              "optin_form": "dolce"}))  # fmt: skip
    panel = whatsapp.client.get("/api/optin/dolce", params={"lang": "en", "hl": "en-IE"})
    assert panel.headers["access-control-allow-origin"] == "*"
    body = panel.json()
    assert body["wording"] == FORM["wording"]["en"] and body["country"] == "IE" and "IT:39:Italy" in body["countries"]
    from_shop = {"Accept": "application/json", "Origin": "https://shop.example"}
    answer = whatsapp.client.post("/optin/dolce", headers=from_shop, data={
        "country": "IE", "phone": "+39 347 123 4567", "topic": "orders", "lang": "en", "widget": "shop",
        "page": "https://shop.example/cannoli?session=secret#top"})  # fmt: skip
    assert answer.json()["state"] == "in" and answer.headers["access-control-allow-origin"] == "*"
    [entry] = entries(whatsapp)
    assert entry.source == "widget" and entry.proof["page"] == "https://shop.example/cannoli"
    assert entry.proof["widget"] == "shop"
    # A page the widget may not be on is not kept as proof; an unknown widget is no widget.
    for phone, widget, page in (("+39 347 123 4568", "shop", "https://elsewhere.example/"),
                                ("+39 347 123 4569", "nope", "https://shop.example/")):
        whatsapp.client.post("/optin/dolce", headers=from_shop, data={
            "phone": phone, "topic": "orders", "lang": "en", "widget": widget, "page": page})  # fmt: skip
    assert entries(whatsapp, "393471234568")[0].proof["page"] == ""
    assert entries(whatsapp, "393471234569")[0].source == "page"
    # Found by a review: anyone could claim a widget and a shop's page for a sign-up made elsewhere
    # (with curl, or another site's page posting for its visitors). The widget must offer this
    # form, and the post come from a site it may be on.
    whatsapp.run(whatsapp.service.create_widget(whatsapp.business_id, "other", {"allowed_domains": ["shop.example"]}))
    for phone, widget, origin in (("+39 347 123 4570", "shop", "https://evil.example"),
                                  ("+39 347 123 4571", "shop", None),
                                  ("+39 347 123 4572", "other", "https://shop.example")):  # offers no form
        headers = {"Accept": "application/json"} | ({"Origin": origin} if origin else {})
        answer = whatsapp.client.post("/optin/dolce", headers=headers, data={
            "phone": phone, "topic": "orders", "lang": "en", "widget": widget, "page": "https://shop.example/x"})
        assert answer.json()["state"] == "in"  # taken, as a sign-up on the form's own page
        [entry] = entries(whatsapp, "39" + phone[4:].replace(" ", ""))
        assert (entry.source, entry.proof["page"], "widget" in entry.proof) == (
            "page", f"{whatsapp.service.base_url}/optin/dolce", False)
    json_please = {"Accept": "application/json"}
    bad = whatsapp.client.post("/optin/dolce", headers=json_please, data={"phone": "1", "lang": "en"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "phone"
    assert bad.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("lang", ["en", "it"])
def test_the_poster_and_its_qr_code_lead_to_the_page(whatsapp: WhatsAppSetup, lang: str) -> None:
    make_form(whatsapp)
    poster = whatsapp.client.get("/optin/dolce/poster", params={"lang": lang, "format": "a5"})
    assert poster.status_code == 200
    assert ("Ricevi aggiornamenti" if lang == "it" else "Get updates") in poster.text
    # the address people read and type is the page's (found by a new user: it printed "?via=qr",
    # and whoever typed it in was counted as a scan); the code carries the marker
    assert "chat.example.com/optin/dolce<" in poster.text and "via=qr" not in poster.text.replace("via=qr</", "")
    code = whatsapp.client.get("/qr/optin/dolce.png", params={"size": "400"})
    assert read_qr(code.content) == "https://chat.example.com/optin/dolce?via=qr"
    fields = {"country": "IT", "phone": "3471234567", "topic": "orders", "lang": lang, "via": "qr"}
    via_qr = whatsapp.client.post("/optin/dolce?via=qr", data=fields)
    assert via_qr.status_code == 200
    assert entries(whatsapp)[0].source == "qr"


def test_every_language_has_every_word() -> None:
    from clicktochat.optin_words import WORDS

    for lang, words in WORDS.items():
        assert set(words) == set(WORDS["en"]), lang
        assert "{business}" in words["intro"] and "{topic}" in words["in"], lang


def test_the_panel_script_is_small_cached_and_readable_from_any_site(whatsapp: WhatsAppSetup) -> None:
    script = whatsapp.client.get("/widget-optin.js", headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["access-control-allow-origin"] == "*" and "max-age=3600" in script.headers["cache-control"]
    assert script.headers["content-encoding"] == "gzip"
    assert len(whatsapp.client.app.state.optin_script.gzipped) <= 2560  # type: ignore[attr-defined]
    assert "export default" in script.text
    again = whatsapp.client.get("/widget-optin.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    widget = whatsapp.client.app.state.widget_script  # type: ignore[attr-defined]
    assert len(widget.gzipped) <= 5 * 1024 and b"import(" in widget.body


def test_a_request_whose_message_was_never_queued_gets_it_at_the_next_submission(whatsapp: WhatsAppSetup) -> None:
    form = double_form(whatsapp)
    now = int(whatsapp.clock())
    # As after a crash between the request's transaction and the outbox's: pending, nothing queued.
    whatsapp.run(whatsapp.service.whatsapp.chats.add_request(
        form.business_id, form.id, PHONE, "orders", "page", FORM["wording"]["it"], "1", None, now, now + 86_400,
        86_400))  # fmt: skip
    assert whatsapp.send() == 0
    assert "già scritto" in post(whatsapp).text
    assert "già scritto" in post(whatsapp).text
    assert whatsapp.send() == 1 and len(whatsapp.standin.sent) == 1


def test_erasing_a_person_erases_their_double_opt_in_requests_and_confirmations(whatsapp: WhatsAppSetup) -> None:
    double_form(whatsapp)
    post(whatsapp)
    chats = whatsapp.service.whatsapp.chats
    held = whatsapp.run(chats.customer_data(PHONE))
    assert [r["state"] for r in held["optin_requests"]] == ["pending"]
    deleted = whatsapp.run(chats.erase_customer(PHONE, int(whatsapp.clock())))
    assert deleted["optin_requests"] == 1 and deleted["outbox"] == 1
    assert whatsapp.run(chats.customer_data(PHONE))["optin_requests"] == []
    assert whatsapp.send() == 0  # the confirmation never goes


def test_a_widget_offers_only_an_existing_form_of_its_own_business(whatsapp: WhatsAppSetup) -> None:
    make_form(whatsapp)
    rival = whatsapp.run(whatsapp.service.add_business("Pasticceria Rivale", "Europe/Rome"))
    make_form(whatsapp, slug="rival", business_id=rival.id)
    whatsapp.run(whatsapp.service.create_widget(whatsapp.business_id, "demo", {}))
    api = "/api/v1/widgets"
    for slug, says in (("nope", "there is no opt-in form 'nope'"), ("rival", "belongs to another business")):
        answer = whatsapp.client.patch(f"{api}/demo", json={"optin_form": slug}, headers=whatsapp.auth)
        assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in answer.json()["errors"]] == ["optin_form"], answer.json()
        assert says in answer.json()["errors"][0]["reason"], answer.json()
        made = whatsapp.client.post(api, json={"business_id": whatsapp.business_id, "optin_form": slug},
                                    headers=whatsapp.auth)  # fmt: skip
        assert made.status_code == 422 and made.json()["errors"][0]["field"] == "optin_form"
    assert "optin" not in whatsapp.client.get("/api/widget/demo").json()  # nothing advertised
    mine = whatsapp.client.patch(f"{api}/demo", json={"optin_form": "Dolce"}, headers=whatsapp.auth)
    assert mine.status_code == 200 and mine.json()["optin_form"] == "dolce"
    assert whatsapp.client.get("/api/widget/demo").json()["optin"]["form"] == "dolce"
    moved = whatsapp.client.patch(f"{api}/demo", json={"business_id": rival.id}, headers=whatsapp.auth)
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "optin_form"  # dolce is not the rival's
    off = whatsapp.client.patch(f"{api}/demo", json={"optin_form": None}, headers=whatsapp.auth)
    assert off.status_code == 200 and off.json()["optin_form"] is None


def test_a_stop_that_arrives_before_the_confirmation_goes_cancels_it(whatsapp: WhatsAppSetup) -> None:
    """Seen by an attacker in the code: the sender checked a reply's window and an update's
    consent just before sending, but nothing of a confirmation waiting its turn (or Meta's 429):
    a STOP, or an opt-out in WhatsApp's settings, meanwhile did not stop it."""
    double_form(whatsapp)
    assert "Tocca Sì" in post(whatsapp).text
    whatsapp.run(whatsapp.customer().send_text("STOP"))
    whatsapp.process()
    whatsapp.send()
    assert whatsapp.standin.sent == []
    history = whatsapp.client.get("/api/v1/optins", params={"phone": PHONE}, headers=whatsapp.auth).json()
    assert [r["state"] for r in history["requests"]] == ["refused"]
