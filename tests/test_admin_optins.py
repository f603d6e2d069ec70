"""The dashboard's opt-in pages in-process: forms created and edited (a new sentence is a new
version), the consent list with its search and CSV export, consents recorded at the counter
(checked like every other path), CSRF, and strangers sent to sign in."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest

from clicktochat.admin_optins import routes
from clicktochat.consent import may_message
from clicktochat.optins import Optins
from conftest import WhatsAppSetup
from test_admin_chats import Admin, csrf_of

API = "/api/v1"


@pytest.fixture
def admin(whatsapp: WhatsAppSetup) -> Admin:
    return Admin(whatsapp)


def new_form(admin: Admin, whatsapp: WhatsAppSetup, **changes: Any) -> Any:
    page = admin.get("/admin/optins")
    data = {"csrf": csrf_of(page.text), "slug": "dolce", "business_id": str(whatsapp.business_id),
            "topics": "orders, offers", "languages": ["it", "en"], "wording_en": "Send me updates on WhatsApp.",
            "wording_it": "Mandatemi aggiornamenti su WhatsApp."} | changes  # fmt: skip
    return whatsapp.client.post("/admin/optins", data=data)


@pytest.mark.parametrize("route", routes, ids=lambda r: r.path)
def test_strangers_are_sent_to_sign_in(whatsapp: WhatsAppSetup, route: Any) -> None:
    path = route.path.replace("{slug}", "dolce")
    answer = whatsapp.client.get(f"/admin{path}")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/login")


def test_a_form_is_created_and_edited_and_a_new_sentence_is_a_new_version(admin: Admin,
                                                                        whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    created = new_form(admin, whatsapp)
    assert created.status_code == 303 and created.headers["location"].startswith("/admin/optins/dolce")
    page = admin.get("/admin/optins/dolce")
    assert "version 1" in page.text and "https://chat.example.com/optin/dolce" in page.text
    assert 'name="wording_it" rows="2">Mandatemi aggiornamenti su WhatsApp.</textarea>' in page.text.replace(
        'aria-describedby="wording_it-help"', "")  # fmt: skip
    form = whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce"))
    assert form.languages == ("it", "en") and form.topics == ("orders", "offers")
    data = {"csrf": csrf_of(page.text), "slug": "dolce", "business_id": str(whatsapp.business_id),
            "topics": "orders", "languages": ["en"], "wording_en": "Send me order updates on WhatsApp."}  # fmt: skip
    assert whatsapp.client.post("/admin/optins/dolce", data=data).status_code == 303
    form = whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce"))
    assert (form.version, form.languages, form.topics) == (2, ("en",), ("orders",))
    assert "Opt-ins" in admin.get("/admin/optins").text


def test_topic_names_per_language_are_saved_shown_again_and_checked(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    labels = "orders=Ordini, consegne e resi\r\n\r\n offers = Offerte \r\n"  # one topic=name a line; commas are words
    assert new_form(admin, whatsapp, labels_it=labels).status_code == 303
    form = whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce"))
    assert form.topic_labels == {"it": {"orders": "Ordini, consegne e resi", "offers": "Offerte"}}
    page = admin.get("/admin/optins/dolce")
    assert 'name="labels_it" rows="3"' in page.text
    assert "orders=Ordini, consegne e resi\noffers=Offerte</textarea>" in page.text
    assert "Ordini, consegne e resi" in whatsapp.client.get("/optin/dolce?lang=it").text
    bad = new_form(admin, whatsapp, slug="other", labels_it="ordini=Ordini")
    assert bad.status_code == 422 and "line 1: " in bad.text and "not one of the form&#39;s topics" in bad.text
    bad = new_form(admin, whatsapp, slug="other", labels_it="orders=Ordini\nOfferte speciali")
    assert bad.status_code == 422 and "line 2 (Offerte speciali) is not topic=name" in bad.text
    assert "LANG:TOPIC" not in bad.text and "it:orders" not in bad.text


def test_a_label_with_a_comma_set_from_the_cli_is_saved_back_unchanged(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    whatsapp.run(Optins(whatsapp.service).save_form({
        "slug": "dolce", "business_id": whatsapp.business_id, "topics": ["orders"], "wording": {"it": "Sì"},
        "topic_labels": {"it": {"orders": "Ordini, consegne e resi"}}}))  # fmt: skip
    page = admin.get("/admin/optins/dolce")
    data = {"csrf": csrf_of(page.text), "slug": "dolce", "business_id": str(whatsapp.business_id), "topics": "orders",
            "languages": ["it"], "wording_it": "Sì", "labels_it": "orders=Ordini, consegne e resi"}  # fmt: skip
    saved = whatsapp.client.post("/admin/optins/dolce", data=data)
    assert saved.status_code == 303, saved.text
    form = whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce"))
    assert form.topic_labels == {"it": {"orders": "Ordini, consegne e resi"}} and form.version == 1


def test_mistakes_are_shown_beside_their_fields(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    page = new_form(admin, whatsapp, slug="Bad Name!", wording_en="", wording_it="")
    assert page.status_code == 422 and 'aria-invalid="true"' in page.text and "Name" in page.text
    page = new_form(admin, whatsapp, double_optin="on")
    assert page.status_code == 422 and "Confirmation template" in page.text
    page = new_form(admin, whatsapp, double_optin="on", template="nonexist", template_language="en_US")
    assert page.status_code == 422 and "Confirmation template" in page.text and "no template nonexist" in page.text
    assert "clicktochat whatsapp templates sync" in page.text
    assert whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce")) is None
    # a language ticked with no sentence (found by a new user: it was dropped, and the form saved)
    page = new_form(admin, whatsapp, wording_it="  ")
    assert page.status_code == 422 and "no consent sentence in it" in page.text
    assert whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce")) is None
    no_csrf = whatsapp.client.post("/admin/optins", data={"slug": "x"})
    assert no_csrf.status_code == 403


def test_an_edit_with_no_language_ticked_and_a_mistake_is_shown_again(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    """Found by a review: unticking every language box (the browser then sends no `languages`)
    and making a mistake elsewhere was a 500, and what the owner typed was lost."""
    assert new_form(admin, whatsapp).status_code == 303
    page = admin.get("/admin/optins/dolce")
    data = {"csrf": csrf_of(page.text), "slug": "dolce", "business_id": str(whatsapp.business_id),
            "topics": "Orders!", "wording_en": "Yes, updates please", "wording_it": "Sì, aggiornamenti"}  # fmt: skip
    shown = whatsapp.client.post("/admin/optins/dolce", data=data)
    assert shown.status_code == 422 and "Topics" in shown.text and "Yes, updates please" in shown.text
    assert 'value="Orders!"' in shown.text
    assert whatsapp.run(whatsapp.service.whatsapp.chats.form("dolce")).topics == ("orders", "offers")


def test_a_form_renamed_to_another_forms_name_is_told_so_and_keeps_its_own(admin: Admin,
                                                                          whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    """Found by a review: the rename's unique violation was a 500."""
    assert new_form(admin, whatsapp).status_code == 303
    assert new_form(admin, whatsapp, slug="saldi").status_code == 303
    page = admin.get("/admin/optins/saldi")
    data = {"csrf": csrf_of(page.text), "slug": "dolce", "business_id": str(whatsapp.business_id),
            "topics": "orders", "languages": ["en"], "wording_en": "Send me updates on WhatsApp."}  # fmt: skip
    renamed = whatsapp.client.post("/admin/optins/saldi", data=data)
    assert renamed.status_code == 422 and "taken by another form" in renamed.text
    assert 'aria-invalid="true"' in renamed.text
    forms = [whatsapp.run(whatsapp.service.whatsapp.chats.form(slug)) for slug in ("dolce", "saldi")]
    assert [form.topics for form in forms] == [("orders", "offers")] * 2 and forms[0].id != forms[1].id


def test_the_consent_list_searches_exports_and_records_at_the_counter(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    base = {"business_id": str(whatsapp.business_id), "topic": "orders",
            "consent_text": "=HYPERLINK(\"http://evil.example\");=1+1", "consent_version": "1"}  # fmt: skip
    bad = admin.post("/admin/consents", base | {"phone": "347", "action": "in"})
    assert bad.status_code == 422 and "Number" in bad.text
    done = admin.post("/admin/consents", base | {"phone": "+39 347 123 4567", "action": "in"})
    assert done.status_code == 303
    assert admin.post("/admin/consents", base | {"phone": "+39 348 000 0000", "action": "in"}).status_code == 303
    entries = whatsapp.run(whatsapp.service.whatsapp.chats.consents(whatsapp.business_id, "393471234567", None))
    assert [(e.source, e.state) for e in entries] == [("dashboard", "in")] and may_message(entries, "orders").allowed
    whatsapp.clock.move(60)
    assert admin.post("/admin/consents", {"business_id": str(whatsapp.business_id), "phone": "+393471234567",
                                          "consent_text": "Asked by\nphone  <b>", "action": "out"}).status_code == 303
    page = admin.get("/admin/consents?q=3471234567")
    assert page.text.count("<tr>") == 3 and "opted out" in page.text and "every topic" in page.text
    # what was typed in the box is the opt-out's note, not dropped (an updates review found it was)
    assert "<small>note: Asked by phone &lt;b&gt;</small>" in page.text
    assert "+39 348" not in page.text
    # times as the conversations show them, in the business's zone (found by a new user: raw ISO)
    assert re.search(r'data-label="When">\d{1,2} \w{3} \d{4}, \d{2}:\d{2} CES?T<', page.text), page.text
    exported = admin.get("/admin/consents.csv?q=347+123")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["phone"], r["state"], r["topic"]) for r in rows] == [("393471234567", "out", "*"),
                                                                     ("393471234567", "in", "orders")]  # fmt: skip
    assert rows[1]["consent_text"] == "'=HYPERLINK(\"http://evil.example\");'=1+1"  # shown, never run
    assert rows[1]["topic_label"] == ""  # recorded at the counter: no form showed a topic's name
    assert (rows[0]["note"], rows[1]["note"]) == ("Asked by phone <b>", "")
    # in again over that opt-out: only when said to be given again (a privacy review)
    over = admin.post("/admin/consents", base | {"phone": "+39 347 123 4567", "action": "in"})
    assert over.status_code == 422 and "had opted out" in over.text and "Given again" in over.text
    assert admin.post("/admin/consents", base | {"phone": "+39 347 123 4567", "action": "in",
                                                 "renewed": "on"}).status_code == 303  # fmt: skip
    assert may_message(whatsapp.run(whatsapp.service.whatsapp.chats.consents(whatsapp.business_id, "393471234567",
                                                                              None)), "orders").allowed  # fmt: skip
    # Meta's form of a Mexican mobile finds its E.164 entries (found upgrading a database)
    assert admin.post("/admin/consents", base | {"phone": "+52 55 1234 5678", "action": "in"}).status_code == 303
    assert "+52 55 1234 5678" in admin.get("/admin/consents?q=5215512345678").text
    assert "search" in admin.get("/admin/consents?q=orders").text


def test_a_number_searched_for_shows_its_pending_double_opt_in(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    whatsapp.run(whatsapp.service.whatsapp.notifications.sync_templates())  # the template is checked when saved
    assert new_form(admin, whatsapp, double_optin="on", template="hello_world",
                    template_language="en_US").status_code == 303  # fmt: skip
    answer = whatsapp.client.post("/optin/dolce", data={"country": "IT", "phone": "347 123 4567", "topic": "orders"})
    assert answer.status_code == 200
    page = admin.get("/admin/consents?q=%2B39+347+123+4567")
    assert "Double opt-in requests" in page.text and "pending" in page.text
    assert "No consent matches" in page.text  # pending is no consent yet


def test_the_widget_page_offers_a_choice_of_the_business_s_own_forms(admin: Admin, whatsapp: WhatsAppSetup) -> None:
    assert new_form(admin, whatsapp).status_code == 303
    rival = whatsapp.run(whatsapp.service.add_business("Pasticceria Rivale", "Europe/Rome"))
    whatsapp.run(Optins(whatsapp.service).save_form({"slug": "rival", "business_id": rival.id, "topics": ["orders"],
                                                     "wording": {"en": "Yes"}}))  # fmt: skip
    whatsapp.run(whatsapp.service.create_widget(whatsapp.business_id, "demo", {}))
    page = admin.get("/admin/widgets/demo")
    assert '<select id="f-optin_form" name="optin_form"' in page.text
    assert '<option value="dolce">dolce</option>' in page.text and 'value="rival"' not in page.text
    assert '<option value="" selected>(none: no updates offered)</option>' in page.text
    forged = admin.post("/admin/widgets/demo", {"optin_form": "rival"})  # not offered, posted anyway
    assert forged.status_code == 422 and "belongs to another business" in forged.text
    assert whatsapp.run(whatsapp.service.get_widget("demo")).settings.optin_form is None
    assert admin.post("/admin/widgets/demo", {"optin_form": "dolce"}).status_code == 303
    assert whatsapp.run(whatsapp.service.get_widget("demo")).settings.optin_form == "dolce"
    assert '<option value="dolce" selected>dolce</option>' in admin.get("/admin/widgets/demo").text
    # The form stays with its business: its page offers no other, and a forged one is refused.
    edit = admin.get("/admin/optins/dolce")
    assert "Pasticceria Rivale" not in edit.text.split('name="business_id"')[1].split("</select>")[0]
    moved = admin.post("/admin/optins/dolce", {"slug": "dolce", "business_id": str(rival.id), "topics": "orders",
                                                "languages": "en", "wording_en": "Yes"})  # fmt: skip
    assert moved.status_code == 422 and "a form stays with its business" in moved.text
    assert whatsapp.run(Optins(whatsapp.service).form("dolce")).business_id == whatsapp.business_id
