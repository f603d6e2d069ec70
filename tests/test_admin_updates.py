"""The dashboard's Updates page (admin_updates.py): a one-off update to one person, refused
next to the field without consent, listed with its state, and the month's cost estimate."""

from __future__ import annotations

import re

from clicktochat.graph_standin import StandInNumber
from conftest import WhatsAppSetup
from test_admin_chats import Admin, admin  # noqa: F401  (the fixture)
from test_notifications import opt_in, sync


def form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_an_update_sent_from_the_dashboard(whatsapp: WhatsAppSetup, admin: Admin) -> None:  # noqa: F811
    empty = admin.get("/admin/updates")
    assert empty.status_code == 200 and "No approved template yet" in empty.text
    sync(whatsapp)
    page = admin.get("/admin/updates")
    assert "follow_up (en_US, marketing, 2 parameters)" in page.text
    fields = {"to": "+39 347 123 4567", "topic": "orders", "template": "follow_up|en_US",
              "parameters": "Giulia\r\nthe blue sofa\r\n", "idempotency_key": form_key(page.text)}  # fmt: skip
    refused = admin.post("/admin/updates", fields)
    assert refused.status_code == 409 and "has not opted in to" in refused.text
    assert 'value="+39 347 123 4567"' in refused.text  # what was typed stays
    opt_in(whatsapp)
    sent = admin.post("/admin/updates", fields)
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/updates?done=update-queued"
    again = admin.post("/admin/updates", fields)  # the same form posted twice: one update
    assert again.status_code == 303
    listed = admin.get("/admin/updates")
    assert "The update is queued" not in listed.text  # the notice is only after the redirect
    assert listed.text.count("<td>+39 347 123 4567</td>") == 1 and ">queued</span>" in listed.text
    wrong = admin.post("/admin/updates", {**fields, "parameters": "Giulia", "idempotency_key": "other"})
    assert wrong.status_code == 422 and "takes 2 parameters" in wrong.text
    assert whatsapp.send() == 1
    month = admin.get("/admin/updates?state=sent")
    assert ">sent</span>" in month.text and "0.07 USD" in month.text and "marketing" in month.text
    stats = admin.get("/admin/")  # the month's estimate is on the stats page too, for all or one business
    assert "s cost estimate</h2>" in stats.text
    assert "0.07 USD" in stats.text
    other = admin.get(f"/admin/?business={whatsapp.business_id}").text
    assert "0.07 USD" in other



def test_an_agency_sends_each_business_its_own_update(whatsapp: WhatsAppSetup, admin: Admin) -> None:  # noqa: F811
    """Found by an independent review: with numbers of two businesses connected, the page
    refused every update ("business is required") and had no field to say which."""
    second = StandInNumber(phone_number_id="106540352242999", waba_id="102290129340999",
                           display_phone_number="+39 347 000 2222", verified_name="Fiori Rosa",
                           access_token="EAAG" + "y" * 40, app_secret="c" * 32)  # fmt: skip
    whatsapp.standin.numbers[second.phone_number_id] = second
    service = whatsapp.service
    shop = whatsapp.run(service.add_business("Fiori Rosa", "Europe/Rome"))
    other = whatsapp.run(service.whatsapp.connect(
        shop.id, second.phone_number_id, second.waba_id, second.access_token, second.app_secret, "another-verify-token"
    ))  # fmt: skip
    sync(whatsapp)
    whatsapp.run(service.whatsapp.notifications.sync_templates())
    page = admin.get("/admin/updates")
    assert f'value="{shop.id}|follow_up|en_US"' in page.text and "2 parameters) for Fiori Rosa" in page.text
    assert f'value="{whatsapp.business_id}|follow_up|en_US"' in page.text and "for Pasticceria Dolce Vita" in page.text
    opt_in(whatsapp)  # to the first business only
    fields = {"to": "+39 347 123 4567", "topic": "orders", "template": f"{shop.id}|follow_up|en_US",
              "parameters": "Giulia\nthe vase", "idempotency_key": form_key(page.text)}  # fmt: skip
    refused = admin.post("/admin/updates", fields)  # Fiori Rosa has no consent from them
    assert refused.status_code == 409 and "has not opted in to" in refused.text
    sent = admin.post("/admin/updates", {**fields, "template": f"{whatsapp.business_id}|follow_up|en_US"})
    assert sent.status_code == 303
    listed = whatsapp.client.get("/api/v1/notifications", headers=whatsapp.auth).json()["notifications"]
    assert [(n["business_id"], n["template"]) for n in listed] == [(whatsapp.business_id, "follow_up")]
    assert other.business_id == shop.id
