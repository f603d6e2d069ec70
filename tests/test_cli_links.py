"""`clicktochat link` (cli_links.py): short and signed links made, refused, listed, shown, edited,
disabled and drawn as QR codes, end to end through click's CliRunner on the test's database, and
followed in the app (TestClient) over the same database (helpers: test_cli)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from clicktochat.app import create_app
from clicktochat.settings import Settings
from conftest import POSTGRES, read_qr

# test_cli's fixtures: clean_env and _no_leftover_db apply to every test here, as there
from test_cli import (
    BASE,
    DIGITS,
    NUMBER,
    OTHER_DIGITS,
    OTHER_NUMBER,
    SLUG_CHARS,
    TEXT,
    TEXT_ENCODED,
    _no_leftover_db,  # noqa: F401  (a fixture)
    as_json,
    clean_env,  # noqa: F401  (a fixture)
    create,
    db,  # noqa: F401  (a fixture)
    fails,
    invoke,
    last_line,
    ok,
    query,
    runner,  # noqa: F401  (a fixture)
    shop,  # noqa: F401  (a fixture)
    )


def test_tampered_signed_link_is_refused(runner: CliRunner, db: str) -> None:
    url = create(runner, db, "--to", NUMBER)
    base, token = url.rsplit("/", 1)
    forged = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for ref in (f"{base}/{forged}", forged):
        fails(invoke(runner, "link", "show", "--db", db, ref), 1, "This link is not valid")


def test_a_bare_token_is_told_from_a_slug(runner: CliRunner, db: str) -> None:
    token = create(runner, db, "--to", NUMBER).rsplit("/", 1)[1]
    create(runner, db, "--to", NUMBER, "--short", "--slug", "vetrina")
    shown = as_json(invoke(runner, "link", "show", "--db", db, token, "--json"))
    assert shown["to"] == DIGITS and shown["short"] is False and shown["clicks"] == 0
    assert as_json(invoke(runner, "link", "show", "--db", db, "vetrina", "--json"))["slug"] == "vetrina"


def test_links_signed_with_configured_keys_verify_only_with_them(runner: CliRunner, db: str) -> None:
    env = {"CLICKTOCHAT_SECRET_KEYS": "configured-secret-for-tests-0123456789"}
    url = create(runner, db, "--to", NUMBER, env=env)
    ok(invoke(runner, "link", "show", "--db", db, url, env=env))
    fails(invoke(runner, "link", "show", "--db", db, url), 1, "not valid")


def test_signed_link_url_is_the_last_stdout_line(runner: CliRunner, db: str) -> None:
    result = ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--text", TEXT,
                       "--campaign", "summer-ad", "--base-url", BASE))  # fmt: skip
    assert re.fullmatch(r"https://chat\.example\.com/c/_[A-Za-z0-9_-]+", last_line(result))  # sealed: no "."
    if POSTGRES:  # a database the server already had: nothing to note
        assert result.stderr == ""
    else:
        assert result.stderr.startswith(f"Note: {db} did not exist; it is a new, empty database.")
    again = ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--base-url", BASE))
    assert again.stderr == ""  # the note is for a new database only
    assert query(db, "SELECT count(*) FROM links") == [(0,)]  # signed links store nothing


def test_signed_link_json(runner: CliRunner, db: str) -> None:
    row = as_json(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--text", TEXT,
                         "--campaign", "summer-ad", "--base-url", BASE, "--json"))  # fmt: skip
    assert row["url"].startswith(f"{BASE}/c/")
    assert row["chat_url"] == f"https://wa.me/{DIGITS}?text={TEXT_ENCODED}"
    assert row["campaign"] == "summer-ad"
    assert row["to"] == DIGITS and row["channel"] == "whatsapp" and row["text"] == TEXT
    assert row["short"] is False and row["source"] is None and row["expires_at"] is None


def test_short_link_with_slug(runner: CliRunner, db: str) -> None:
    url = create(runner, db, "--to", NUMBER, "--short", "--slug", "vetrina")
    assert url == f"{BASE}/s/vetrina"
    assert query(db, "SELECT slug, address FROM links") == [("vetrina", DIGITS)]


def test_slug_implies_short_and_is_lower_cased(runner: CliRunner, db: str) -> None:
    assert create(runner, db, "--to", NUMBER, "--slug", "Vetrina") == f"{BASE}/s/vetrina"


def test_short_link_gets_a_random_seven_character_slug(runner: CliRunner, db: str) -> None:
    urls = {create(runner, db, "--to", NUMBER, "--short") for _ in range(3)}
    assert len(urls) == 3
    for url in urls:
        assert re.fullmatch(rf"https://chat\.example\.com/s/[{SLUG_CHARS}]{{7}}", url), url
    assert query(db, "SELECT count(*) FROM links") == [(3,)]


def test_short_link_json(runner: CliRunner, db: str) -> None:
    row = as_json(invoke(runner, "link", "create", "--db", db, "--base-url", BASE, "--to", NUMBER,
                         "--text", TEXT, "--slug", "vetrina", "--source", "flyer", "--mode", "landing",
                         "--json"))  # fmt: skip
    assert row["url"] == f"{BASE}/s/vetrina" and row["slug"] == "vetrina"
    assert row["chat_url"] == f"https://wa.me/{DIGITS}?text={TEXT_ENCODED}"
    assert (row["source"], row["mode"], row["clicks"], row["disabled"]) == ("flyer", "landing", 0, False)


def test_base_url_from_environment(runner: CliRunner, db: str) -> None:
    env = {"CLICKTOCHAT_BASE_URL": "https://env.example.org"}
    url = last_line(ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, env=env)))
    assert url.startswith("https://env.example.org/c/")
    flag = last_line(ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--base-url", BASE,
                               env=env)))  # fmt: skip
    assert flag.startswith(f"{BASE}/c/")  # the flag wins over the variable


def test_base_url_recorded_by_init_is_used(runner: CliRunner, db: str) -> None:
    ok(invoke(runner, "init", "--db", db, "--base-url", "https://recorded.example.net/"))
    assert query(db, "SELECT value FROM meta WHERE key = 'base_url'") == [("https://recorded.example.net",)]
    url = last_line(ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "menu")))
    assert url == "https://recorded.example.net/s/menu"
    env = {"CLICKTOCHAT_BASE_URL": "https://env.example.org"}
    shown = as_json(invoke(runner, "link", "show", "--db", db, "menu", "--json", env=env))
    assert shown["url"] == "https://env.example.org/s/menu"  # the variable wins over the recorded one


def test_without_any_base_url_links_point_at_the_local_server(runner: CliRunner, db: str) -> None:
    url = last_line(ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "menu")))
    assert url == "http://127.0.0.1:8000/s/menu"


def test_international_00_prefix_is_accepted(runner: CliRunner, db: str) -> None:
    row = as_json(invoke(runner, "link", "create", "--db", db, "--to", "0039 347 123 4567", "--json"))
    assert row["to"] == DIGITS and row["chat_url"] == f"https://wa.me/{DIGITS}"


def test_national_number_needs_a_default_region(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", "(650) 253-0000"), 1,
          "to: '(650) 253-0000' has no country code", "CLICKTOCHAT_DEFAULT_REGION")  # fmt: skip
    row = as_json(invoke(runner, "link", "create", "--db", db, "--to", "(650) 253-0000", "--json",
                         env={"CLICKTOCHAT_DEFAULT_REGION": "US"}))  # fmt: skip
    assert row["chat_url"] == f"https://wa.me/{OTHER_DIGITS}"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+39 347", "is too short"),
        ("+39 12345678901234", "is too long"),
        ("+999 123456", "has an unknown country code"),
    ],
)
def test_invalid_number_is_refused(runner: CliRunner, db: str, number: str, reason: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", number), 1, f"to: {number!r} {reason}")


def test_text_longer_than_1000_characters_is_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--short", "--text", "x" * 1001), 1,
          "text: is 1001 characters long", "at most 1000")  # fmt: skip
    assert query(db, "SELECT count(*) FROM links") == [(0,)]
    row = as_json(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--text", "x" * 1000,
                         "--json"))  # fmt: skip
    assert row["text"] == "x" * 1000


def test_reserved_slug_is_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "admin"), 1,
          "slug: 'admin' is reserved")  # fmt: skip


def test_invalid_slug_is_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "no spaces"), 1,
          "'no spaces' is not a valid slug")  # fmt: skip


def test_duplicate_slug_is_refused(runner: CliRunner, db: str) -> None:
    create(runner, db, "--to", NUMBER, "--slug", "vetrina")
    fails(invoke(runner, "link", "create", "--db", db, "--to", OTHER_NUMBER, "--slug", "VETRINA"), 1,
          "slug: 'vetrina' is already taken")  # fmt: skip
    assert query(db, "SELECT slug, address FROM links") == [("vetrina", DIGITS)]  # the first one is untouched


def test_unknown_channel_is_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--channel", "telegraph"), 1,
          "channel: unknown channel 'telegraph'; known channels: whatsapp, telegram")  # fmt: skip


def test_two_destinations_are_refused(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--agent", str(shop["agent"])), 1,
          "give exactly one destination")  # fmt: skip
    fails(invoke(runner, "link", "create", "--db", db), 1,
          "give exactly one destination: a number (--to), an agent (--agent) or a business (--business)")  # fmt: skip


def test_unknown_agent_is_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--agent", "42", "--short"), 1, "there is no agent 42")


def test_unknown_link_in_show(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "show", "--db", db, "nope"), 1, "There is no short link 'nope'.")


@pytest.mark.parametrize("seconds", ["0", "-5"])
def test_expires_in_must_be_positive(runner: CliRunner, db: str, seconds: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--expires-in", seconds), 2,
          "--expires-in", "must be a positive number of seconds")  # fmt: skip


def test_expires_at_in_the_past_is_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--expires-at", "2001-01-01"), 1,
          "--expires-at: is in the past")  # fmt: skip


def test_expires_in_and_expires_at_together_are_refused(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--expires-in", "60",
                 "--expires-at", "2099-01-01"), 2, "not both")  # fmt: skip


def test_expires_in_is_written_into_the_link(runner: CliRunner, db: str) -> None:
    row = as_json(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "soon",
                         "--expires-in", "3600", "--json"))  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["expires_at"])
    ((stored,),) = query(db, "SELECT expires_at FROM links WHERE slug = 'soon'")
    created = query(db, "SELECT created_at FROM links WHERE slug = 'soon'")[0][0]
    assert 3590 <= stored - created <= 3610


def test_huge_expires_in_is_refused_cleanly_and_stores_nothing(runner: CliRunner, db: str) -> None:
    """Was a bug (`expiry`, now in cli_links.py): --expires-in had no upper bound; a far-future expiry is stored,
    then turning it into a date (service.timestamp) raised ValueError, and every later `link list` crashed."""
    result = invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--short", "--slug", "forever",
                    "--expires-in", "999999999999999")  # fmt: skip
    listing = invoke(runner, "link", "list", "--db", db)
    assert listing.exception is None, f"link list crashed afterwards: {listing.exception!r}"
    assert listing.stdout == "(none)\n"
    assert result.exit_code in (1, 2) and isinstance(result.exception, SystemExit), repr(result.exception)
    assert "expires" in result.stderr and "Traceback" not in result.stderr and result.stdout == ""


def test_link_list_table_and_json(runner: CliRunner, db: str, shop: dict[str, int],
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CLICKTOCHAT_BASE_URL", BASE)
    assert ok(invoke(runner, "link", "list", "--db", db)).stdout == "(none)\n"
    create(runner, db, "--to", NUMBER, "--text", TEXT, "--campaign", "summer-ad", "--slug", "vetrina")
    create(runner, db, "--agent", str(shop["agent"]), "--slug", "giulia")
    create(runner, db, "--business", str(shop["business"]), "--slug", "negozio")
    create(runner, db, "--to", NUMBER)  # signed: not listed

    lines = ok(invoke(runner, "link", "list", "--db", db)).stdout.splitlines()
    assert lines[0].split() == ["SLUG", "TO", "CAMPAIGN", "MODE", "STATE", "CLICKS", "TEXT"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"vetrina", "giulia", "negozio"}
    assert rows["vetrina"].split()[:9] == ["vetrina", "WhatsApp", "+39", "347", "123", "4567", "summer-ad", "auto",
                                          "active"]  # fmt: skip
    assert TEXT in rows["vetrina"]
    assert f"agent {shop['agent']}" in rows["giulia"] and f"business {shop['business']}" in rows["negozio"]

    listed = {row["slug"]: row for row in as_json(invoke(runner, "link", "list", "--db", db, "--json"))}
    assert set(listed) == {"vetrina", "giulia", "negozio"}
    assert all(row["clicks"] == 0 for row in listed.values())
    assert listed["vetrina"]["url"] == f"{BASE}/s/vetrina" and listed["vetrina"]["campaign"] == "summer-ad"
    assert listed["giulia"]["chat_url"] is None and listed["giulia"]["agent_id"] == shop["agent"]
    assert len(as_json(invoke(runner, "link", "list", "--db", db, "--json", "--limit", "2"))) == 2
    fails(invoke(runner, "link", "list", "--db", db, "--limit", "0"), 2, "--limit")
    business = as_json(invoke(runner, "link", "list", "--db", db, "--json", "--business", str(shop["business"])))
    assert {row["slug"] for row in business} == {"giulia", "negozio"}  # to it or to its agents; a number's is no one's
    fails(invoke(runner, "link", "list", "--db", db, "--business", "99"), 1, "--business: there is no business 99")


def test_link_show_edit_disable_enable(runner: CliRunner, db: str, shop: dict[str, int],
                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CLICKTOCHAT_BASE_URL", BASE)
    create(runner, db, "--to", NUMBER, "--text", TEXT, "--campaign", "summer-ad", "--slug", "vetrina")

    def show() -> dict[str, Any]:
        row: dict[str, Any] = as_json(invoke(runner, "link", "show", "--db", db, "vetrina", "--json"))
        return row

    first = show()
    assert first["chat_url"] == f"https://wa.me/{DIGITS}?text={TEXT_ENCODED}"
    assert (first["clicks"], first["disabled"], first["campaign"]) == (0, False, "summer-ad")
    assert show() == as_json(invoke(runner, "link", "show", "--db", db, "VETRINA", "--json"))
    text = ok(invoke(runner, "link", "show", "--db", db, f"{BASE}/s/vetrina")).stdout
    assert f"url:         {BASE}/s/vetrina" in text and "disabled:    False" in text

    edit = ok(invoke(runner, "link", "edit", "--db", db, "vetrina", "--to", OTHER_NUMBER))
    assert edit.stdout == "Updated vetrina.\n"
    edited = show()
    assert edited["chat_url"] == f"https://wa.me/{OTHER_DIGITS}?text={TEXT_ENCODED}"
    assert edited["to"] == OTHER_DIGITS and edited["text"] == TEXT and edited["campaign"] == "summer-ad"

    ok(invoke(runner, "link", "edit", "--db", db, "vetrina", "--text", "Buongiorno & grazie"))
    assert show()["chat_url"] == f"https://wa.me/{OTHER_DIGITS}?text=Buongiorno%20%26%20grazie"

    ok(invoke(runner, "link", "edit", "--db", db, "vetrina", "--agent", str(shop["agent"])))
    by_agent = show()
    assert by_agent["agent_id"] == shop["agent"]
    assert by_agent["to"] is None and by_agent["channel"] is None and by_agent["chat_url"] is None
    assert by_agent["text"] == "Buongiorno & grazie"

    assert ok(invoke(runner, "link", "disable", "--db", db, "vetrina")).stdout == "Disabled vetrina.\n"
    assert "disabled:    True" in ok(invoke(runner, "link", "show", "--db", db, "vetrina")).stdout
    assert show()["disabled"] is True
    assert "disabled" in ok(invoke(runner, "link", "list", "--db", db)).stdout.splitlines()[1].split()
    assert ok(invoke(runner, "link", "enable", "--db", db, "vetrina")).stdout == "Enabled vetrina.\n"
    assert show()["disabled"] is False
    assert query(db, "SELECT disabled, agent_id, address FROM links") == [(0, shop["agent"], None)]


def test_link_edit_refusals(runner: CliRunner, db: str) -> None:
    create(runner, db, "--to", NUMBER, "--slug", "vetrina")
    fails(invoke(runner, "link", "edit", "--db", db, "vetrina"), 2, "nothing to change")
    fails(invoke(runner, "link", "edit", "--db", db, "vetrina", "--to", "+39 347"), 1,
          "to: '+39 347' is too short")  # fmt: skip
    fails(invoke(runner, "link", "edit", "--db", db, "vetrina", "--text", "y" * 1001), 1, "at most 1000")
    fails(invoke(runner, "link", "edit", "--db", db, "vetrina", "--channel", "whatsapp"), 1,
          "change the channel together with the address (--to)")  # fmt: skip
    fails(invoke(runner, "link", "edit", "--db", db, "vetrina", "--agent", "7"), 1, "there is no agent 7")
    fails(invoke(runner, "link", "edit", "--db", db, "vetrina", "--expires-in", "0"), 2, "--expires-in")
    fails(invoke(runner, "link", "edit", "--db", db, "nope", "--text", "x"), 1,
          "There is no short link 'nope'.")  # fmt: skip
    fails(invoke(runner, "link", "disable", "--db", db, "nope"), 1, "There is no short link 'nope'.")
    assert query(db, "SELECT address, text, disabled FROM links") == [(DIGITS, "", 0)]


def test_short_link_made_by_the_cli_redirects_in_the_app(runner: CliRunner, db: str) -> None:
    create(runner, db, "--to", NUMBER, "--text", TEXT, "--slug", "vetrina", "--mode", "redirect")
    signed = create(runner, db, "--to", NUMBER, "--text", TEXT, "--mode", "redirect")
    app = create_app(Settings(db=db, base_url=BASE, flush_interval=0.05))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        for url in (f"{BASE}/s/vetrina", signed):
            response = client.get(url.removeprefix(BASE))
            assert response.is_redirect, (url, response.status_code)
            assert response.headers["location"] == f"https://wa.me/{DIGITS}?text={TEXT_ENCODED}"


def test_agent_or_business_links_are_short_links(runner: CliRunner, db: str) -> None:
    shop = last_line(ok(invoke(runner, "business", "add", "--db", db, "Shop")))
    ok(invoke(runner, "agent", "add", "--db", db, "--business", shop, "--name", "Giulia", "--to", NUMBER))
    url = last_line(ok(invoke(runner, "link", "create", "--db", db, "--business", shop, "--base-url", BASE)))
    assert re.fullmatch(r"https://chat\.example\.com/s/[a-z2-9]{7}", url)  # routed at each click, editable


def test_expires_at_takes_an_iso_time_with_a_zone(runner: CliRunner, db: str) -> None:
    made = ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "promo",
                     "--expires-at", "2099-01-31T18:00+01:00", "--json"))  # fmt: skip
    assert json.loads(made.stdout)["expires_at"] == "2099-01-31T17:00:00Z"
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--expires-at", "tomorrow"), 2,
          "'tomorrow' is not an ISO 8601 date and time")  # fmt: skip


def test_qr_writes_a_code_of_our_link(runner: CliRunner, db: str, tmp_path: Path) -> None:
    ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "vetrina", "--base-url", BASE))
    png = tmp_path / "vetrina.png"
    done = ok(invoke(runner, "qr", "vetrina", "-o", str(png), "--db", db, "--size", "400", "--base-url", BASE))
    assert done.stdout == f"Wrote {png}: QR version 3 for {BASE}/s/vetrina?qr (?qr: its scans are counted apart)\n"
    assert read_qr(png) == f"{BASE}/s/vetrina?qr"  # a scan, told apart from a tap on the link: said as written
    assert done.stderr == ""
    # Another host's URL: our own link's code, and said so (found by a new user: the host went unsaid).
    other = ok(invoke(runner, "qr", "https://evil.example/s/vetrina", "-o", str(png), "--db", db, "--base-url", BASE))
    assert other.stderr == f"Note: evil.example is not this server's address; this is our own link, {BASE}/s/vetrina\n"
    assert read_qr(png) == f"{BASE}/s/vetrina?qr"
    same = ok(invoke(runner, "qr", f"{BASE}/s/vetrina", "-o", str(png), "--db", db, "--base-url", BASE))
    assert same.stderr == ""
    signed = last_line(ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--base-url", BASE)))
    svg = tmp_path / "ad.svg"
    done = ok(invoke(runner, "qr", signed, "-o", str(svg), "--db", db, "--base-url", BASE))
    assert svg.read_text().startswith("<svg") and "a short link would make a smaller code" in done.stdout
    fails(invoke(runner, "qr", "vetrina", "-o", str(tmp_path / "x.gif"), "--db", db), 2, "must end in .svg or .png")
    fails(invoke(runner, "qr", "nope", "-o", str(png), "--db", db), 1, "There is no short link 'nope'")
    nowhere = invoke(runner, "qr", "vetrina", "-o", str(tmp_path / "no-such-folder" / "x.svg"), "--db", db)
    fails(nowhere, 1, "cannot write", "No such file or directory")  # the file's fault, not the database's
    assert "database" not in nowhere.output
    fails(invoke(runner, "qr", "vetrina", "-o", str(png), "--db", db, "--dark", "777777", "--light", "888888"), 1,
          "--dark: #777777 on #888888 has a contrast of 1.3:1")  # fmt: skip
    # Turned off, it has no code to print, as /qr/s/ answers 410 (found from outside).
    ok(invoke(runner, "link", "disable", "vetrina", "--db", db))
    off = tmp_path / "off.svg"
    fails(invoke(runner, "qr", "vetrina", "-o", str(off), "--db", db), 1,
          "the link vetrina is turned off", "clicktochat link enable vetrina")  # fmt: skip
    fails(invoke(runner, "poster", "vetrina", "-o", str(tmp_path / "off.pdf"), "--db", db), 1,
          "the link vetrina is turned off")  # fmt: skip
    fails(invoke(runner, "poster", f"{BASE}/s/vetrina", "-o", str(tmp_path / "off.pdf"), "--db", db), 1,
          "the link vetrina is turned off")  # its URL is the link too  # fmt: skip
    fails(invoke(runner, "poster", signed, "-o", str(tmp_path / "ad.pdf"), "--db", db), 1,
          "posters are for short links (/s/NAME), and this is a signed link")  # fmt: skip
    assert not off.exists() and not (tmp_path / "ad.pdf").exists()


def test_no_expiry_undoes_an_expiry(runner: CliRunner, db: str) -> None:
    ok(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "promo", "--expires-in", "60"))
    ok(invoke(runner, "link", "edit", "promo", "--db", db, "--no-expiry"))
    assert json.loads(ok(invoke(runner, "link", "show", "promo", "--db", db, "--json")).stdout)["expires_at"] is None
    fails(invoke(runner, "link", "edit", "promo", "--db", db, "--no-expiry", "--expires-in", "5"), 2, "not both")



def test_a_short_links_ref_code_is_set_from_the_command_line(runner: CliRunner, db: str) -> None:
    """The API had ref_code; the CLI had no way to say it (a new user's report)."""
    made = as_json(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--slug", "vetrina", "--ref-code",
                          "--json", "--base-url", BASE))  # fmt: skip
    assert made["ref_code"] is True
    ok(invoke(runner, "link", "edit", "vetrina", "--db", db, "--no-ref-code"))
    assert as_json(invoke(runner, "link", "show", "vetrina", "--db", db, "--json"))["ref_code"] is False
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, "--ref-code"), 1,
          "--ref-code: is for short links")  # fmt: skip


def test_list_says_what_a_click_meets_and_codes_are_refused_for_a_channel_gone(
    runner: CliRunner, db: str, shop: dict[str, int], tmp_path: Path
) -> None:
    """Found trying the product: a link asking for a channel nobody of the business is on any
    more answers 410, while `link list` called it active and `qr` printed its code."""
    agent = str(shop["agent"])
    ok(invoke(runner, "agent", "channel", "add", "--db", db, agent, "--channel", "telegram", "--to", "@dolcevita"))
    create(runner, db, "--business", str(shop["business"]), "--channel", "telegram", "--slug", "telegram")
    create(runner, db, "--business", str(shop["business"]), "--slug", "negozio")
    create(runner, db, "--to", NUMBER, "--slug", "finita", "--expires-in", "60")
    ok(invoke(runner, "link", "disable", "--db", db, "negozio"))

    def states() -> dict[str, str]:
        lines = ok(invoke(runner, "link", "list", "--db", db)).stdout.splitlines()[1:]
        return {line.split()[0]: line for line in lines}

    assert "active" in states()["telegram"].split()
    ok(invoke(runner, "qr", "telegram", "--db", db, "-o", str(tmp_path / "ok.png")))
    ok(invoke(runner, "agent", "channel", "remove", "--db", db, agent, "--channel", "telegram"))
    listed = states()
    assert "channel gone" in listed["telegram"] and "disabled" in listed["negozio"].split()
    assert "active" in listed["finita"].split()
    fails(invoke(runner, "qr", "telegram", "--db", db, "-o", str(tmp_path / "gone.png")), 1, "Telegram")
    assert not (tmp_path / "gone.png").exists()


def test_an_expired_signed_link_is_still_shown_to_its_owner(runner: CliRunner, db: str) -> None:
    """Found by a new user: `link show` of an expired signed URL said only "This link has expired"."""
    from clicktochat.service import Service
    from clicktochat.tokens import SignedLink

    create(runner, db, "--to", NUMBER)  # the database and its signing key

    async def sign() -> str:
        service = await Service.open(Settings(db=db, base_url=BASE))
        try:
            return service.signer.sign(SignedLink("whatsapp", "393471234567", "Ciao", campaign="estate", expires_at=1))
        finally:
            await service.close()

    token = asyncio.run(sign())
    shown = ok(invoke(runner, "link", "show", f"{BASE}/c/{token}", "--db", db)).stdout
    assert "expired" in shown and "estate" in shown
