"""Owners making links to every channel: the CLI (notes on stderr), the API (notes in the
response, the channel and the notes in the OpenAPI document) and the dashboard's link form."""

from __future__ import annotations

import base64
import json
import re
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from clicktochat.accounts import create_admin
from clicktochat.channels import CHANNELS
from clicktochat.cli import cli
from clicktochat.logos import channel_icon
from clicktochat.service import Service
from conftest import ANDROID, call, flush, read_qr
from test_admin import PASSWORD, Admin, sign_in

API = "/api/v1"
NO_TEXT = "Signal links cannot carry a message: the text will not be pre-filled"
APP_ONLY = "Phone call opens only where an app handles it; desktops get a page explaining that first"


def run(db: str, *args: str) -> tuple[str, str]:
    result = CliRunner().invoke(cli, [*args, "--db", db, "--base-url", "https://chat.example.com"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout, result.stderr


def test_the_cli_makes_links_to_any_channel_and_notes_go_to_stderr(db_path: str) -> None:
    db = db_path
    run(db, "init")  # the database exists: the CLI's only note is then about the link
    out, err = run(db, "link", "create", "--channel", "telegram", "--to", "@DolceVita", "--text", "Ciao!", "--short",
                   "--slug", "tg")  # fmt: skip
    assert out == "https://chat.example.com/s/tg\n" and err == ""
    out, err = run(db, "link", "create", "--channel", "signal", "--to", "+49 1512 3456789", "--text", "Hallo",
                   "--signed")  # fmt: skip
    assert out.startswith("https://chat.example.com/c/") and err == f"Note: {NO_TEXT}\n"
    out, err = run(db, "link", "create", "--channel", "call", "--to", "+39 06 1234 5678", "--text", "x", "--json")
    notes = ["Phone call links cannot carry a message: the text will not be pre-filled", APP_ONLY]
    assert json.loads(out)["notes"] == notes and err == "".join(f"Note: {n}\n" for n in notes)
    _, err = run(db, "link", "edit", "tg", "--channel", "telegram", "--to", "+39 347 123 4567")
    assert err.startswith("Note: t.me links to a number open a chat only if that account lets everyone find it")
    out, _ = run(db, "link", "list")
    assert re.search(r"^tg\s+Telegram \+39 347 123 4567\s", out, re.M), out

    both = CliRunner().invoke(cli, ["link", "create", "--db", db, "--to", "@x", "--signed", "--short"])
    assert both.exit_code == 2 and "--signed links carry a fixed --to" in both.stderr
    bad = CliRunner().invoke(cli, ["link", "create", "--db", db, "--channel", "instagram", "--to", "a..b"])
    assert bad.exit_code == 1 and "to: 'a..b' is not an Instagram username" in bad.stderr


def test_the_api_makes_and_changes_links_to_any_channel_with_notes(
    client: TestClient, auth: dict[str, str]
) -> None:
    made = client.post(f"{API}/links", json={"to": "shop@Example.COM", "channel": "email", "text": "Ordine\nCiao",
                                              "slug": "mail"}, headers=auth)  # fmt: skip
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["channel"], body["to"], body["chat_url"]) == ("email", "shop@example.com",
                                                               "mailto:shop@example.com?subject=Ordine&body=Ciao")
    assert body["notes"] == ["E-mail opens only where an app handles it; desktops get a page explaining that first"]
    signed = client.post(f"{API}/links", json={"to": "+49 1512 3456789", "channel": "signal", "text": "Hallo",
                                                "short": False}, headers=auth)  # fmt: skip
    assert signed.status_code == 201 and signed.json()["notes"] == [NO_TEXT]
    changed = client.patch(f"{API}/links/mail", json={"channel": "telegram", "to": "t.me/dolcevita"}, headers=auth)
    assert changed.status_code == 200 and changed.json()["notes"] == [] and changed.json()["to"] == "dolcevita"
    assert client.get("/s/mail", headers={"user-agent": ANDROID}).headers["location"] == \
        "https://t.me/dolcevita?text=Ordine%0ACiao"  # fmt: skip
    refused = client.post(f"{API}/links", json={"to": "@x", "channel": "telegram"}, headers=auth)
    assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"][0]["field"] == "to"
    unknown = client.post(f"{API}/links", json={"to": "@dolcevita", "channel": "skype"}, headers=auth)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "channel"


def test_the_openapi_document_lists_the_channels_and_the_notes(client: TestClient) -> None:
    schemas = client.get(f"{API}/openapi.json").json()["components"]["schemas"]
    for name in ("LinkCreate", "LinkUpdate"):
        assert schemas[name]["properties"]["channel"]["enum"] == list(CHANNELS)
        assert "@dolcevita" in schemas[name]["properties"]["to"]["description"]
    for name in ("LinkOut", "SignedLinkOut"):
        notes = schemas[name]["properties"]["notes"]
        assert notes["type"] == "array" and notes["items"] == {"type": "string"} and "pre-fill" in notes["description"]


@pytest.fixture
def admin(client: TestClient, service: Service) -> Admin:
    call(client, create_admin(service.store, "ana", PASSWORD))
    assert sign_in(client).status_code == 303
    return Admin(client)


def test_the_dashboard_form_picks_a_channel_shows_its_example_and_the_notes(admin: Admin) -> None:
    form = admin.get("/admin/links/new").text
    assert re.search(r'<option value="telegram" data-example="@dolcevita">Telegram</option>', form)
    assert 'placeholder="+39 347 123 4567"' in form  # WhatsApp's example until another channel is picked
    made = admin.post("/admin/links/new", {"destination": "to", "channel": "instagram", "to": "@DolceVita",
                                           "text": "Ciao", "kind": "short", "slug": "ig"})  # fmt: skip
    assert made.status_code == 303
    result = unescape(admin.get(made.headers["location"]).text)
    assert "Instagram @dolcevita" in result and "Instagram links cannot carry a message" in result
    page = admin.get("/admin/links/ig").text
    assert 'id="leads-to">Instagram @dolcevita<' in page and 'value="@dolcevita"' in page
    assert "Instagram links cannot carry a message" in page  # the notes stay on the link's page
    assert re.search(r'<option value="instagram" data-example="@dolcevita" selected>', page)
    listed = unescape(admin.get("/admin/links").text)
    assert "Instagram @dolcevita" in listed
    wrong = admin.post("/admin/links/ig", {"destination": "to", "channel": "email", "to": "not-an-address"})
    assert wrong.status_code == 422 and 'placeholder="shop@example.com"' in wrong.text
    assert "is not an e-mail address" in unescape(wrong.text)
    odd = admin.post("/admin/links/ig", {"destination": "to", "channel": "carrier-pigeon", "to": "x"})
    assert odd.status_code == 422 and "unknown channel" in unescape(odd.text)


def test_stats_by_channel_name_the_channels(
    client: TestClient, service: Service, admin: Admin, auth: dict[str, str], db_path: str
) -> None:
    for channel, to, slug in (("telegram", "@dolcevita", "tg"), ("call", "+39 06 1234 5678", "tel"),
                              ("whatsapp", "+39 347 123 4567", "wa")):  # fmt: skip
        call(client, service.create_link(to=to, channel=channel, slug=slug))
    for slug in ("tg", "tg", "tel", "wa"):
        client.get(f"/s/{slug}", headers={"user-agent": ANDROID})
    flush(client)
    rows = client.get(f"{API}/stats?by=channel", headers=auth).json()["rows"]
    assert {(r["key"], r["label"], r["clicks"]) for r in rows} == {
        ("telegram", "Telegram", 2), ("call", "Phone call", 1), ("whatsapp", "WhatsApp", 1)}
    csv_text = admin.get("/admin/stats.csv?by=channel").text
    assert "telegram,Telegram,2," in csv_text and "call,Phone call,1," in csv_text
    section = re.search(r'<section class="breakdown" id="by-channel">.*?</section>', admin.get("/admin/").text,
                        re.S)  # fmt: skip
    assert section and "<td>Telegram</td>" in section[0] and "<td>Phone call</td>" in section[0]
    table = CliRunner().invoke(cli, ["stats", "--db", db_path, "--by", "channel"])
    assert table.exit_code == 0 and re.search(r"^Telegram\s+2\b", table.stdout, re.M), table.stdout
    assert re.search(r"^Phone call\s+1\b", table.stdout, re.M)


def test_the_cli_draws_the_links_own_channel_mark(tmp_path: Path, db_path: str) -> None:
    db = db_path
    run(db, "init")
    run(db, "link", "create", "--channel", "email", "--to", "shop@example.com", "--slug", "mail")
    run(db, "qr", "mail", "-o", str(tmp_path / "mail.svg"), "--logo", "channel")
    svg = (tmp_path / "mail.svg").read_text()
    assert base64.b64encode(channel_icon("email")).decode() in svg and "shop@example.com" not in svg
    signed, _ = run(db, "link", "create", "--channel", "viber", "--to", "+380 67 123 4567")
    run(db, "qr", signed.strip(), "-o", str(tmp_path / "viber.png"), "--logo", "channel")
    assert read_qr(tmp_path / "viber.png") == signed.strip() + "?qr"
