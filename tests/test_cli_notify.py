"""`clicktochat notify`, `notifications` and `whatsapp templates` (cli_notify.py): click's
CliRunner against a real database (the run's: SQLite or PostgreSQL) and the Graph stand-in on a real port."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from clicktochat.cli import cli, cli_whatsapp  # cli first: it registers cli_whatsapp's groups
from clicktochat.cli_notify import _plain
from clicktochat.graph_standin import GraphStandIn
from conftest import NUMBER, VERIFY_TOKEN, connect_db
from test_cli_whatsapp import clean_env  # noqa: F401  (autouse: no CLICKTOCHAT_* from the caller's shell)


@pytest.fixture
def db(db_path: str) -> str:
    return db_path


@pytest.fixture
def run(standin: GraphStandIn, db: str) -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, [*args, "--db", db], input=input,
                             env={"CLICKTOCHAT_GRAPH_URL": standin.url})  # type: ignore[attr-defined]

    assert invoke("business", "add", "Pasticceria Dolce Vita").exit_code == 0
    connected = invoke("whatsapp", "connect", "--phone-number-id", NUMBER.phone_number_id, "--waba-id",
                       NUMBER.waba_id, "--token", NUMBER.access_token, "--app-secret", NUMBER.app_secret,
                       "--verify-token", VERIFY_TOKEN)  # fmt: skip
    assert connected.exit_code == 0, connected.output
    return invoke


def consent(db: str, topic: str, state: str = "in") -> None:
    with connect_db(db) as conn:
        conn.execute("INSERT INTO consents (business_id, phone, topic, state, at, source, wording, version)"
                     " VALUES (1, '393471234567', ?, ?, ?, 'cli', 'Order updates on WhatsApp', 'v1')",
                     (topic, state, int(time.time()) - 5))  # fmt: skip


def test_templates_are_synced_and_listed(run: Callable[..., Result]) -> None:
    assert run("whatsapp", "templates", "list", "1").exit_code == 1  # not synced yet: says how
    synced = run("whatsapp", "templates", "sync")
    assert synced.exit_code == 0 and "Number 1: 2 templates." in synced.output
    listed = run("whatsapp", "templates", "list", "1")
    assert listed.exit_code == 0 and "follow_up" in listed.output and "{{1}} {{2}}" in listed.output
    as_json = json.loads(run("whatsapp", "templates", "list", "1", "--json").output)
    assert {t["name"] for t in as_json} == {"hello_world", "follow_up"}


def test_notify_is_refused_without_consent_and_queued_with_it(run: Callable[..., Result], db: str) -> None:
    run("whatsapp", "templates", "sync")
    args = ("notify", "--to", "+39 347 123 4567", "--topic", "orders", "--template", "follow_up",
            "--param", "Giulia", "--param", "the blue sofa", "--key", "order-1042")  # fmt: skip
    refused = run(*args)
    assert refused.exit_code == 1 and "has not opted in to 'orders'" in refused.output
    consent(db, "orders")
    queued = run(*args)
    assert queued.exit_code == 0, queued.output
    assert "Notification 1 to +393471234567 (orders, follow_up): queued." in queued.output
    again = run(*args)  # the same key: the same notification, nothing more queued, and it says so
    assert again.exit_code == 0 and again.output.startswith("Already queued with this key: notification 1 ")
    assert "Nothing new was sent." in again.output
    wrong = run("notify", "--to", "+39 347 123 4567", "--topic", "orders", "--template", "follow_up")
    assert wrong.exit_code == 1 and "takes 2 parameters" in wrong.output
    assert "--param:" in wrong.output and "--parameters" not in wrong.output  # the flag typed (found by a new user)
    bad_key = run(*args[:-1], "bad key!")
    assert bad_key.exit_code == 1 and "--key:" in bad_key.output and "idempotency" not in bad_key.output
    listed = json.loads(run("notifications", "list", "--json").output)
    assert [(n["id"], n["state"], n["source"]) for n in listed] == [(1, "queued", "cli")]
    for command in (("notifications", "list"), ("costs",)):  # a business typed wrong: said, not "(none)"
        unknown = run(*command, "--business", "99")
        assert unknown.exit_code == 1 and "--business: there is no business 99" in unknown.output, unknown.output
    shown = json.loads(run("notifications", "show", "1", "--json").output)
    assert shown["parameters"] == ["Giulia", "the blue sofa"] and shown["idempotency_key"] == "order-1042"
    table = run("notifications", "show", "1").output  # a line a field, as the other show commands (a new user's)
    assert "parameters:       Giulia, the blue sofa" in table and "idempotency key:  order-1042" in table
    consent(db, "*", "out")
    after = run(*args[:-2], "--key", "order-1043")
    assert after.exit_code == 1 and "opted out" in after.output
    old = run(*args)  # after the STOP, the first key's notification is shown, never sent again (a new user's)
    assert old.exit_code == 0 and "Nothing new was sent." in old.output


def test_shown_fields_read_as_words_not_python() -> None:
    """Found by a new user: `notifications show` printed Meta's pricing as a Python dict."""
    pricing = {"billable": True, "pricing_model": "PMP", "category": "marketing"}
    assert _plain(pricing) == "billable: yes, pricing_model: PMP, category: marketing"
    assert _plain(["Giulia", 2, False]) == "Giulia, 2, no"


def test_customer_export_and_erase(run: Callable[..., Result], db: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    consent(db, "orders")
    (tmp_path / "giulia.json").write_text("an older export")
    (tmp_path / "giulia.json").chmod(0o644)
    exported = run("customer", "export", "+39 347 123 4567", "-o", str(tmp_path / "giulia.json"))
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "giulia.json").stat().st_mode & 0o777 == 0o600  # one person's data: the owner's only
    data = json.loads((tmp_path / "giulia.json").read_text())
    assert data["phone"] == "393471234567" and [c["wording"] for c in data["consents"]] == ["Order updates on WhatsApp"]
    monkeypatch.chdir(tmp_path)
    dash = run("customer", "export", "393471234567", "-o", "-")  # as other tools: standard output, not a file "-"
    assert json.loads(dash.stdout)["phone"] == "393471234567" and not (tmp_path / "-").exists()
    nowhere = run("customer", "export", "393471234567", "-o", str(tmp_path / "no-such-folder" / "g.json"))
    assert nowhere.exit_code == 1 and "cannot write" in nowhere.output and "Traceback" not in nowhere.output
    wrong = run("customer", "erase", "+39")  # no number at all: said before anything is asked (a review's)
    assert wrong.exit_code == 1 and "is not a phone number" in wrong.output and "--yes" not in wrong.output
    unasked = run("customer", "erase", "393471234567")  # asks first; no terminal, no answer: nothing erased
    assert unasked.exit_code == 1 and "Nothing was erased" in unasked.output
    unasked = run("customer", "erase", "393471234567", input="y\n")  # a y piped in is no one answering
    assert unasked.exit_code == 1 and "Nothing was erased" in unasked.output
    monkeypatch.setattr(cli_whatsapp, "interactive", lambda: True)  # a person at a terminal, who says no
    unasked = run("customer", "erase", "393471234567", input="n\n")
    assert unasked.exit_code == 1 and "Cancelled: nothing was erased." in unasked.output
    assert "Error" not in unasked.output and "--yes" not in unasked.output  # a choice, not a mistake
    erased = run("customer", "erase", "393471234567", input="y\n")  # and who says yes (scripts: --yes)
    assert erased.exit_code == 0 and "Erased 1 row: 1 consents. An opt-out marker stays." in erased.output
    data = json.loads(run("customer", "export", "393471234567").output)
    assert [(c["state"], c["source"], c["wording"][:6]) for c in data["consents"]] == [("out", "erase", "Erased")]


def test_a_double_opt_in_form_is_checked_against_the_synced_templates(run: Callable[..., Result]) -> None:
    form = ("optin", "form", "dbl3", "--business", "1", "--topics", "orders", "--wording", "en=Yes", "--double-optin")
    bad = run(*form, "--template", "hello_world", "--template-language", "en_US")  # nothing synced yet
    assert bad.exit_code == 1 and "--template: the number has no template hello_world" in bad.output, bad.output
    assert "clicktochat whatsapp templates sync" in bad.output
    assert run("whatsapp", "templates", "sync").exit_code == 0
    bad = run(*form, "--template", "nonexist", "--template-language", "en_US")
    assert bad.exit_code == 1 and "--template: the number has no template nonexist" in bad.output, bad.output
    bad = run(*form, "--template", "hello_world", "--template-language", "it")
    assert bad.exit_code == 1 and "--template-language: the template hello_world exists in en_US, not it" in bad.output
    made = run(*form, "--template", "hello_world", "--template-language", "en_US")
    assert made.exit_code == 0 and "/optin/dbl3 (version 1)" in made.output, made.output
