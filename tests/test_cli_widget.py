"""`clicktochat widget` (cli_widget.py): the website's chat button made, listed, shown, edited and
removed, end to end through click's CliRunner on the test's database (helpers: test_cli)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from clicktochat.app import create_app
from clicktochat.settings import Settings
from conftest import IPHONE, watch

# test_cli's fixtures: clean_env and _no_leftover_db apply to every test here, as there
from test_cli import (
    BASE,
    OTHER_NUMBER,
    SLUG_CHARS,
    _no_leftover_db,  # noqa: F401  (a fixture)
    as_json,
    clean_env,  # noqa: F401  (a fixture)
    db,  # noqa: F401  (a fixture)
    fails,
    invoke,
    last_line,
    ok,
    query,
    runner,  # noqa: F401  (a fixture)
    shop,  # noqa: F401  (a fixture)
)

# -- widgets ------------------------------------------------------------------------------------

SNIPPET = f'<script src="{BASE}/widget.js" data-widget="shop" async></script>'


def widget(runner: CliRunner, db: str, *args: str) -> Result:
    return invoke(runner, "widget", *args, "--db", db, "--base-url", BASE)


def shown_widget(runner: CliRunner, db: str, widget_id: str = "shop") -> dict[str, Any]:
    row: dict[str, Any] = as_json(widget(runner, db, "show", widget_id, "--json"))
    return row


def stored_widgets(db: str) -> dict[str, tuple[int, dict[str, Any]]]:
    return {row[0]: (row[1], json.loads(row[2])) for row in query(db, "SELECT id, business_id, settings FROM widgets")}


@pytest.fixture
def other(runner: CliRunner, db: str, shop: dict[str, int]) -> dict[str, int]:
    """A second business with an agent of its own."""
    business = int(ok(invoke(runner, "business", "add", "--db", db, "Bar Sport")).stdout)
    agent = int(ok(invoke(runner, "agent", "add", "--db", db, "--business", str(business), "--name", "Marco",
                          "--to", OTHER_NUMBER)).stdout)  # fmt: skip
    return {"business": business, "agent": agent}


def test_widget_create_prints_the_snippet_last_and_stores_what_was_given(runner: CliRunner, db: str,
                                                                         shop: dict[str, int]) -> None:  # fmt: skip
    result = ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "Shop",
                       "--greeting", "Ciao! Serve aiuto?", "--message", "Info su {page_title}", "--label", "Scrivici",
                       "--colour", "0B3D91", "--position", "left", "--offset-x", "0", "--offset-y", "64",
                       "--locale", "it", "--agent", str(shop["agent"]), "--show-on", "/shop/*", "--show-on", "/menu",
                       "--hide-on", "/checkout", "--delay", "3", "--scroll", "40", "--hide-offline", "--bubble",
                       "--bubble-delay", "10", "--no-qr", "--allow", "Dolcevita.it",
                       "--allow", "*.dolcevita.it"))  # fmt: skip
    assert last_line(result) == SNIPPET
    assert result.stdout == SNIPPET + "\n"  # only the snippet on stdout: `SNIPPET=$(clicktochat widget create …)`
    assert f"Created widget shop for business {shop['business']}." in result.stderr
    assert stored_widgets(db) == {"shop": (shop["business"], {
        "greeting": "Ciao! Serve aiuto?", "message": "Info su {page_title}", "label": "Scrivici", "colour": "#0b3d91",
        "position": "left", "offset_x": 0, "offset_y": 64, "locale": "it", "agent_ids": [shop["agent"]],
        "show_on": ["/shop/*", "/menu"], "hide_on": ["/checkout"], "delay": 3, "scroll": 40, "hide_offline": True,
        "bubble": True, "bubble_delay": 10, "qr": False, "allowed_domains": ["dolcevita.it", "*.dolcevita.it"],
    })}  # fmt: skip


def test_widget_create_stores_only_the_settings_given(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop", "--bubble"))
    assert stored_widgets(db) == {"shop": (shop["business"], {"bubble": True})}  # defaults are not written


def test_widget_create_with_a_random_id_and_json(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    row = as_json(widget(runner, db, "create", "--business", str(shop["business"]), "--json"))
    assert re.fullmatch(rf"[{SLUG_CHARS}]{{10}}", row["id"]), row["id"]
    assert row["snippet"] == f'<script src="{BASE}/widget.js" data-widget="{row["id"]}" async></script>'
    assert (row["business_id"], row["clicks"], row["colour"], row["position"]) == (shop["business"], 0, "#008069",
                                                                                   "right")  # fmt: skip
    assert (row["greeting"], row["agent_ids"], row["show_on"], row["qr"]) == (None, None, [], True)
    plain = ok(widget(runner, db, "create", "--business", str(shop["business"])))
    assert last_line(plain) != row["snippet"]  # another random id
    assert len(stored_widgets(db)) == 2


def test_widget_list_and_show_with_clicks(runner: CliRunner, db: str, shop: dict[str, int],
                                          other: dict[str, int]) -> None:  # fmt: skip
    assert ok(widget(runner, db, "list")).stdout == "(none)\n"
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop", "--allow", "dolcevita.it",
              "--agent", str(shop["agent"])))  # fmt: skip
    ok(widget(runner, db, "create", "--business", str(other["business"]), "--id", "bar"))
    app = create_app(Settings(db=db, base_url=BASE, flush_interval=0.05))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        for _ in range(2):
            response = client.get(f"/w/shop/{shop['agent']}", headers={"user-agent": IPHONE})
            assert response.is_redirect and response.headers["location"].startswith("https://wa.me/393337654321")
    # the server wrote its clicks as it stopped

    listed = as_json(widget(runner, db, "list", "--json"))
    assert [(w["id"], w["business_id"], w["clicks"]) for w in listed] == [("shop", shop["business"], 2),
                                                                          ("bar", other["business"], 0)]  # fmt: skip
    assert listed[0]["snippet"] == SNIPPET and listed[0]["allowed_domains"] == ["dolcevita.it"]
    only = as_json(widget(runner, db, "list", "--business", str(other["business"]), "--json"))
    assert [w["id"] for w in only] == ["bar"]
    unknown = widget(runner, db, "list", "--business", "99")  # a business typed wrong: said, not "(none)"
    assert unknown.exit_code == 1 and "--business: there is no business 99" in unknown.stderr
    lines = ok(widget(runner, db, "list")).stdout.splitlines()
    assert lines[0].split() == ["ID", "BUSINESS_ID", "CLICKS", "SITES", "SNIPPET"]
    assert lines[1].split()[:4] == ["shop", str(shop["business"]), "2", "dolcevita.it"] and lines[1].endswith(SNIPPET)
    assert lines[2].split()[:4] == ["bar", str(other["business"]), "0", "(any"]

    row = shown_widget(runner, db)
    assert row == listed[0] | {"clicks": 2}
    assert shown_widget(runner, db, "SHOP") == row  # ids are case-insensitive
    text = ok(widget(runner, db, "show", "shop")).stdout.splitlines()
    assert text[-1] == f"snippet:         {SNIPPET}"  # the snippet is the last line here too
    assert "clicks:          2" in text and "colour:          #008069" in text
    assert f"agent_ids:       {shop['agent']}" in text and "allowed_domains: dolcevita.it" in text
    assert "greeting:        (in the visitor's language)" in text and "show_on:         (every page)" in text


def test_widget_edit_changes_and_resets_settings(runner: CliRunner, db: str, shop: dict[str, int],
                                                 other: dict[str, int]) -> None:  # fmt: skip
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop", "--greeting", "Ciao!",
              "--colour", "#0b3d91", "--agent", str(shop["agent"]), "--show-on", "/shop/*", "--bubble",
              "--allow", "dolcevita.it"))  # fmt: skip
    edited = ok(widget(runner, db, "edit", "shop", "--position", "left", "--show-on", "/menu", "--show-on", "/bar",
                       "--no-bubble"))  # fmt: skip
    assert edited.stdout == "Updated widget shop.\n"
    row = shown_widget(runner, db)
    assert (row["position"], row["show_on"], row["bubble"]) == ("left", ["/menu", "/bar"], False)  # lists replaced
    assert (row["greeting"], row["colour"], row["allowed_domains"]) == ("Ciao!", "#0b3d91", ["dolcevita.it"])

    ok(widget(runner, db, "edit", "shop", "--reset", "greeting", "--reset", "show-on", "--reset", "--colour",
              "--reset", "allowed_domains", "--label", "Scrivici"))  # fmt: skip
    row = shown_widget(runner, db)
    assert (row["greeting"], row["show_on"], row["colour"], row["allowed_domains"]) == (None, [], "#008069", [])
    assert (row["label"], row["position"], row["agent_ids"]) == ("Scrivici", "left", [shop["agent"]])
    assert stored_widgets(db) == {"shop": (shop["business"], {"label": "Scrivici", "position": "left",
                                                              "agent_ids": [shop["agent"]]})}  # fmt: skip

    # Moving to another business: its own agents, or every agent.
    fails(widget(runner, db, "edit", "shop", "--business", str(other["business"])), 1,
          f"--agent: there is no agent {shop['agent']} in business {other['business']}")  # fmt: skip
    ok(widget(runner, db, "edit", "shop", "--business", str(other["business"]), "--reset", "agent"))
    assert stored_widgets(db) == {"shop": (other["business"], {"label": "Scrivici", "position": "left"})}


def test_widget_edit_refusals(runner: CliRunner, db: str, shop: dict[str, int], other: dict[str, int]) -> None:
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop", "--greeting", "Ciao!"))
    before = stored_widgets(db)
    fails(widget(runner, db, "edit", "shop"), 2, "nothing to change")
    fails(widget(runner, db, "edit", "shop", "--greeting", "Hi", "--reset", "greeting"), 2,
          "give --greeting or --reset greeting, not both")  # fmt: skip
    fails(widget(runner, db, "edit", "shop", "--allow", "a.com", "--reset", "allowed_domains"), 2,
          "give --allow or --reset allow, not both")  # fmt: skip
    fails(widget(runner, db, "edit", "shop", "--reset", "colour", "--reset", "size"), 2, "--reset",
          "'size' is not a widget setting", "offset-x")  # fmt: skip
    fails(widget(runner, db, "edit", "shop", "--colour", "red"), 1, "--colour: 'red' is not a colour like #008069")
    fails(widget(runner, db, "edit", "shop", "--business", "99"), 1, "--business: there is no business 99")
    fails(widget(runner, db, "edit", "shop", "--agent", str(other["agent"])), 1,
          f"--agent: there is no agent {other['agent']} in business {shop['business']}")  # fmt: skip
    fails(widget(runner, db, "edit", "shop", "--scroll", "150"), 1, "--scroll: must be a whole number from 0 to 100")
    fails(widget(runner, db, "edit", "nope", "--greeting", "Hi"), 1, "There is no widget 'nope'.")
    assert stored_widgets(db) == before  # nothing half-changed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--colour", "red"], "--colour: 'red' is not a colour like #008069"),
        (["--offset-x", "500"], "--offset-x: must be a whole number from 0 to 200"),
        (["--bubble-delay", "601"], "--bubble-delay: must be a whole number from 0 to 600"),
        (["--label", "x" * 41], "--label: is 41 characters long; at most 40"),
        (["--show-on", "shop/*"], "--show-on: 'shop/*' is not a path pattern like /shop/*"),
        (["--hide-on", "/a b"], "--hide-on: '/a b' is not a path pattern"),
        (["--allow", "https://dolcevita.it"], "--allow: 'https://dolcevita.it' is not a host name like example.com"),
        (["--id", "no spaces"], "--id: 'no spaces' is not a valid widget id"),
        (["--id", "shop"], "--id: 'shop' is already taken; choose another id"),
        (["--id", "SHOP"], "--id: 'shop' is already taken"),
    ],
)
def test_widget_create_refusals_name_the_flag(runner: CliRunner, db: str, shop: dict[str, int], args: list[str],
                                              message: str) -> None:  # fmt: skip
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop"))
    fails(widget(runner, db, "create", "--business", str(shop["business"]), *args), 1, message)
    assert list(stored_widgets(db)) == ["shop"]


def test_widget_create_refuses_unknown_business_and_foreign_agent(runner: CliRunner, db: str, shop: dict[str, int],
                                                                  other: dict[str, int]) -> None:  # fmt: skip
    fails(widget(runner, db, "create", "--business", "99"), 1, "--business: there is no business 99")
    fails(widget(runner, db, "create", "--business", str(shop["business"]), "--agent", str(shop["agent"]),
                 "--agent", str(other["agent"])), 1,
          f"--agent: there is no agent {other['agent']} in business {shop['business']}")  # fmt: skip
    fails(widget(runner, db, "create", "--business", str(shop["business"]), "--agent", "42"), 1,
          "--agent: there is no agent 42")  # fmt: skip
    assert stored_widgets(db) == {}


def test_widget_usage_errors(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    business = str(shop["business"])
    fails(widget(runner, db, "create"), 2, "Missing option '--business'")
    fails(widget(runner, db, "create", "--business", business, "--position", "top"), 2, "--position", "'top'")
    fails(widget(runner, db, "create", "--business", business, "--locale", "xx"), 2, "--locale")
    fails(widget(runner, db, "create", "--business", business, "--delay", "soon"), 2, "'soon' is not a valid integer")
    fails(widget(runner, db, "create", "--business", business, "--agent", "giulia"), 2, "--agent")
    fails(widget(runner, db, "edit", "--greeting", "Hi"), 2, "Missing argument 'WIDGET_ID'")
    assert stored_widgets(db) == {}


def test_widget_remove(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop"))
    fails(invoke(runner, "business", "remove", str(shop["business"]), "--db", db), 1,
          "Links or widgets still lead to this business")  # fmt: skip
    assert ok(widget(runner, db, "remove", "SHOP")).stdout == "Removed widget shop.\n"
    assert stored_widgets(db) == {}
    fails(widget(runner, db, "remove", "shop"), 1, "There is no widget 'shop'.")
    fails(widget(runner, db, "show", "shop"), 1, "There is no widget 'shop'.")
    ok(invoke(runner, "business", "remove", str(shop["business"]), "--db", db))  # nothing leads to it any more


def test_widget_edit_reaches_a_running_server(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    ok(widget(runner, db, "create", "--business", str(shop["business"]), "--id", "shop", "--greeting", "Ciao!"))
    app = create_app(Settings(db=db, base_url=BASE), background=False)
    with TestClient(app, base_url=BASE) as client:
        assert client.get("/api/widget/shop").json()["greeting"] == "Ciao!"
        ok(widget(runner, db, "edit", "shop", "--greeting", "Buongiorno!", "--position", "left"))  # while it runs
        assert client.get("/api/widget/shop").json()["greeting"] == "Ciao!"  # cached until the watcher looks
        watch(client)
        config = client.get("/api/widget/shop").json()
        assert (config["greeting"], config["position"]) == ("Buongiorno!", "left")
        ok(widget(runner, db, "remove", "shop"))
        watch(client)
        assert client.get("/api/widget/shop").status_code == 404
