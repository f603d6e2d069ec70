"""What messages cost (pricing.py) and the month's estimate through the API and the CLI: the
rules from 1 October 2026, Meta's pricing object winning when it has come, the owner's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktochat.optins import Optins
from clicktochat.pricing import FREE_SERVICE_PER_MONTH, Sent, estimate, load_table, money
from clicktochat.settings import Settings
from conftest import WhatsAppSetup
from test_notifications import API, notify, opt_in, sync


def test_the_example_table_prices_by_country_with_a_default() -> None:
    table = load_table()
    assert table.currency == "USD" and table.price("IT", "marketing") == 0.0691
    assert table.price("NZ", "marketing") == table.price("*", "marketing") > 0


def test_the_rules_templates_charged_service_free_up_to_a_thousand_free_entry_point_free() -> None:
    table = load_table()
    it = "393471234567"
    messages = [Sent(1, 1, it, "marketing", "offers", None), Sent(1, 1, it, "utility", "orders", None),
                Sent(1, 1, it, "utility", "orders", {"billable": False, "type": "free_entry_point"})]  # fmt: skip
    messages += [Sent(1, 1, it, "service", None, None)] * (FREE_SERVICE_PER_MONTH + 2)
    found = estimate(messages, table)
    assert found.by_category[(1, "marketing")].cost == 0.0691
    utility = found.by_category[(1, "utility")]
    assert (utility.messages, utility.charged, utility.cost) == (2, 1, 0.03)  # the free entry point one is free
    service = found.by_category[(1, "service")]
    assert (service.messages, service.charged) == (FREE_SERVICE_PER_MONTH + 2, 2)
    assert found.by_topic[(1, "orders")].messages == 2 and (1, "") not in found.by_topic
    assert found.total == round(0.0691 + 0.03 + 2 * table.price("IT", "service"), 4)


def test_the_owners_table_is_checked_when_the_server_starts(tmp_path: Path) -> None:
    mine = tmp_path / "prices.csv"
    mine.write_text("region,category,price,currency\nIT,marketing,0.05,EUR\n*,utility,0.01,EUR\n")
    assert load_table(str(mine)).price("IT", "utility") == 0.01
    assert Settings(price_table=str(mine)).price_table == str(mine)
    mine.write_text("region,category,price,currency\nItaly,marketing,0.05,EUR\n")
    with pytest.raises(ValueError, match="CLICKTOCHAT_PRICE_TABLE: .*row 2: region must be a two-letter country"):
        Settings(price_table=str(mine))
    with pytest.raises(ValueError, match="CLICKTOCHAT_PRICE_TABLE"):
        Settings(price_table=str(tmp_path / "missing.csv"))


def test_the_months_estimate_from_what_was_sent(whatsapp: WhatsAppSetup) -> None:
    sync(whatsapp)
    opt_in(whatsapp)
    assert notify(whatsapp).status_code == 202 and whatsapp.send() == 1
    month = whatsapp.client.get(f"{API}/costs", headers=whatsapp.auth).json()
    assert month["currency"] == "USD" and month["price_table"] == "prices.csv (example)"
    assert [(c["category"], c["messages"], c["charged"]) for c in month["by_category"]] == [("marketing", 1, 1)]
    assert month["total"] == 0.0691 and month["by_topic"][0]["topic"] == "orders"
    before = whatsapp.client.get(f"{API}/costs", params={"month": "2020-01"}, headers=whatsapp.auth).json()
    assert before["total"] == 0 and before["by_category"] == []
    bad = whatsapp.client.get(f"{API}/costs", params={"month": "2026-13"}, headers=whatsapp.auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "month"
    # every id the document allows is read as one (found by a fuzzer: 13 digits and more were
    # refused as malformed), and then found or not; beyond the range, refused as malformed
    for path in ("/costs", "/conversations", "/notifications", "/optins"):
        for business, reason in ((2**63 - 1, "there is no business"), (10**12, "there is no business"),
                                 (2**63, "must be a whole number"), (0, "must be a whole number")):  # fmt: skip
            params = {"business": business} | ({"phone": "+39 347 123 4567"} if path == "/optins" else {})
            answer = whatsapp.client.get(f"{API}{path}", params=params, headers=whatsapp.auth)
            assert answer.status_code == 422 and reason in answer.json()["errors"][0]["reason"], (path, answer.text)
        params = {"business": whatsapp.business_id} | ({"phone": "+39 347 123 4567"} if path == "/optins" else {})
        assert whatsapp.client.get(f"{API}{path}", params=params, headers=whatsapp.auth).status_code == 200


def test_a_utility_update_inside_an_open_window_is_charged_after_the_readme_walkthrough(
    whatsapp: WhatsAppSetup,
) -> None:
    """The README's loop: the customer writes (the window opens), a utility template goes to
    them; the stand-in's pricing object says it is charged, as our rules do, and `costs` counts it."""
    sync(whatsapp)
    whatsapp.run(whatsapp.customer().send_text("Ciao"))
    whatsapp.process()
    opt_in(whatsapp)
    assert notify(whatsapp, template="hello_world", parameters=[]).status_code == 202 and whatsapp.send() == 1
    wamid = whatsapp.standin.sent[-1].wamid
    assert whatsapp.standin.window_open(whatsapp.standin.sent[-1].phone_number_id, "393471234567")
    assert whatsapp.status(wamid, "delivered").status_code == 200
    whatsapp.process()
    month = whatsapp.client.get(f"{API}/costs", headers=whatsapp.auth).json()
    assert [(c["category"], c["messages"], c["charged"]) for c in month["by_category"]] == [("utility", 1, 1)]
    assert month["total"] > 0


@pytest.mark.parametrize(("amount", "shown"), [(0.015, "0.015"), (0.01, "0.01"), (0.5, "0.50"), (12.0, "12.00"),
                                               (0.0, "0.00"), (1.23456, "1.2346"), (0.0008, "0.0008")])
def test_money_keeps_the_decimals_a_price_has(amount: float, shown: str) -> None:
    """`costs` printed a month of one 0.015 message as 0.01 (found trying the README)."""
    assert money(amount) == shown


def test_a_double_opt_in_confirmation_is_priced_by_its_country_and_template(whatsapp: WhatsAppSetup) -> None:
    """Found from outside: confirmations were priced at the default row as utility, whatever the
    number's country and the template's category."""
    confirm = {"name": "confirm_offers", "language": "it", "status": "APPROVED", "category": "MARKETING",
               "components": [{"type": "BODY", "text": "Vuoi le nostre offerte su WhatsApp?"}]}  # fmt: skip
    whatsapp.standin.templates = [*whatsapp.standin.templates, confirm]
    sync(whatsapp)
    form = {"slug": "dolce", "topics": ["orders"], "title": None, "wording": {"it": "Sì, aggiornamenti."},
            "business_id": whatsapp.business_id, "double_optin": True, "template": "confirm_offers",
            "template_language": "it"}  # fmt: skip
    whatsapp.run(Optins(whatsapp.service).save_form(form))
    page = whatsapp.client.post("/optin/dolce", data={"country": "IT", "phone": "348 111 2222", "lang": "it"})
    assert page.status_code == 200 and whatsapp.send() == 1
    month = whatsapp.client.get(f"{API}/costs", headers=whatsapp.auth).json()
    assert [(c["category"], c["messages"]) for c in month["by_category"]] == [("marketing", 1)]
    assert month["total"] == load_table().price("IT", "marketing") == 0.0691
