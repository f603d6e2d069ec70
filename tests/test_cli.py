"""The `clicktochat` command, end to end: click's CliRunner against a real SQLite file, the
installed module as a subprocess, and the app (TestClient) over the same database file. The
tests of `link`, of `business`/`agent` and of `widget` are in test_cli_links.py,
test_cli_business.py and test_cli_widget.py, with the helpers and fixtures of this module."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from clicktochat import __version__
from clicktochat.app import create_app
from clicktochat.cli import cli
from clicktochat.dblock import DatabaseLock
from clicktochat.settings import Settings
from clicktochat.storedb import migrations
from conftest import ANDROID, IPHONE, POSTGRES, connect_db, free_port, read_qr
from pgserver import PostgresServer
from test_store import database_at

BASE = "https://chat.example.com"
NUMBER = "+39 347 123 4567"
DIGITS = "393471234567"
TEXT = "Ciao! Info sull'ordine?"
TEXT_ENCODED = "Ciao%21%20Info%20sull%27ordine%3F"
OTHER_NUMBER = "+1 650 253 0000"
OTHER_DIGITS = "16502530000"
HOURS = "mon-fri 09:00-13:00,15:00-19:00; sat 10:00-12:00"
SLUG_CHARS = "23456789abcdefghjkmnpqrstuvwxyz"


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CLICKTOCHAT_* variable from the outer shell, and no stray clicktochat.db in the checkout."""
    for name in list(os.environ):
        if name.startswith("CLICKTOCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db(db_path: str) -> str:
    """The test's database: a SQLite file, or a PostgreSQL URL when the suite runs on PostgreSQL."""
    return db_path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(cli, list(args), env=env)


def describe(result: Result) -> str:
    return (
        f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n"
        f"exception: {result.exception!r}"
    )


def ok(result: Result) -> Result:
    """Exit 0 and nothing raised; shows the output when it did not."""
    assert result.exit_code == 0 and result.exception is None, describe(result)
    return result


def fails(result: Result, code: int, *fragments: str) -> Result:
    """A clean refusal: the exit code, each fragment on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, describe(result)
    assert isinstance(result.exception, SystemExit), f"crashed with {result.exception!r}"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("Error:") or result.stderr.startswith("Usage:")
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in stderr: {result.stderr!r}"
    return result


def last_line(result: Result) -> str:
    return result.stdout.strip().splitlines()[-1]


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with connect_db(db) as conn:
        return list(conn.execute(sql, params).fetchall())


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTOCHAT_")}
    return env | extra


def run_module(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clicktochat", *args],
        capture_output=True, text=True, timeout=timeout, env=subprocess_env(**env),
    )  # fmt: skip


def create(runner: CliRunner, db: str, *args: str, env: dict[str, str] | None = None) -> str:
    """`link create` with the usual number; returns the URL (the last stdout line)."""
    return last_line(ok(invoke(runner, "link", "create", "--db", db, "--base-url", BASE, *args, env=env)))


@pytest.fixture
def shop(runner: CliRunner, db: str) -> dict[str, int]:
    """A business in Rome with one agent working Italian shop hours."""
    business = int(ok(invoke(runner, "business", "add", "--db", db, "Pizzeria Da Mario", "--timezone",
                             "Europe/Rome")).stdout)  # fmt: skip
    agent = int(ok(invoke(runner, "agent", "add", "--db", db, "--business", str(business), "--name", "Giulia",
                          "--to", "+39 333 765 4321", "--hours", HOURS)).stdout)  # fmt: skip
    return {"business": business, "agent": agent}


# -- help and version ---------------------------------------------------------------------


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = ok(invoke(runner, "--help"))
    commands = result.stdout.split("Commands:", 1)[1]
    listed = set(re.findall(r"^  (\S+)", commands, re.MULTILINE))  # not the summaries' wrapped lines
    assert listed == {"serve", "init", "keys", "apikey", "admin", "business", "agent", "link", "widget", "qr", "poster",
                      "stats", "whatsapp", "conversations", "simulate", "notify", "notifications", "customer",
                      "optin", "costs", "backup", "restore", "db"}  # fmt: skip
    assert ok(invoke(runner, "-h")).stdout == result.stdout


def test_link_create_help_mentions_short_slug_and_json(runner: CliRunner) -> None:
    text = ok(invoke(runner, "link", "create", "--help")).stdout
    for option in ("--short", "--slug", "--json", "--to", "--text", "--campaign", "--expires-in"):
        assert option in text
    assert "last line" in text


def test_version(runner: CliRunner) -> None:
    assert ok(invoke(runner, "--version")).stdout == f"clicktochat, version {__version__}\n"


def test_unknown_command_is_a_usage_error(runner: CliRunner) -> None:
    fails(invoke(runner, "links"), 2, "No such command 'links'")


# -- init and signing keys ----------------------------------------------------------------


def test_init_creates_the_database_with_one_signing_key(runner: CliRunner, db: str) -> None:
    assert not Path(db).exists()  # a PostgreSQL database's URL is never taken for a file's path
    result = ok(invoke(runner, "init", "--db", db))
    assert result.stdout == f"Database ready: {db}\n"
    assert Path(db).is_file() != POSTGRES
    assert len(query(db, "SELECT key FROM signing_keys")) == 1
    assert query(db, "SELECT value FROM meta WHERE key = 'base_url'") == []  # nothing given, nothing recorded
    ok(invoke(runner, "init", "--db", db))  # a second init keeps the one key
    assert len(query(db, "SELECT key FROM signing_keys")) == 1


def test_init_takes_the_database_from_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "from-env.db"
    ok(invoke(runner, "init", env={"CLICKTOCHAT_DB": str(path)}))
    assert path.is_file()
    assert not (tmp_path / "clicktochat.db").exists()


@pytest.fixture
def url_with_password(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of the session's PostgreSQL server (whatever the run), its URL carrying a password
    (the test server trusts local connections, so any password lets it in)."""
    name = f"cli_password_{os.getpid()}"
    postgres_server.create_database(name)
    yield postgres_server.url(name).replace("postgres@", "postgres:s3cret-pw@")
    postgres_server.drop_database(name)


def test_a_postgresql_url_is_a_database_and_its_password_is_never_printed(runner: CliRunner,
                                                                         url_with_password: str) -> None:  # fmt: skip
    shown = url_with_password.replace(":s3cret-pw@", "@")
    done = ok(invoke(runner, "init", "--db", url_with_password))
    assert done.stdout == f"Database ready: {shown}\n" and done.stderr == ""  # no "did not exist" note
    assert not list(Path.cwd().iterdir())  # no file named after the URL
    ok(invoke(runner, "keys", "rotate", env={"CLICKTOCHAT_DB": url_with_password}))
    assert len(query(url_with_password, "SELECT id FROM signing_keys")) == 2


def test_an_unreachable_postgresql_server_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    """(A subprocess, as for a missing folder: in-process, aiosqlite's thread trips over the closed loop.)"""
    port = free_port()  # nothing listens there
    proc = run_module("keys", "list", "--db", f"postgresql://shop:s3cret-pw@127.0.0.1:{port}/clicktochat")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"Error: cannot use the database postgresql://shop@127.0.0.1:{port}/clicktochat: ")
    assert "s3cret-pw" not in proc.stderr and "Traceback" not in proc.stderr and "Note:" not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_a_folder_given_as_the_database_is_a_clear_error(tmp_path: Path) -> None:
    """Found by a review: the right message, then a traceback from aiosqlite's thread."""
    proc = run_module("link", "list", "--db", str(tmp_path))
    assert proc.returncode == 1 and proc.stdout == ""
    said = f"Error: cannot use the database {tmp_path}: {tmp_path} is a folder: give the database file's path\n"
    assert proc.stderr == said


def test_keys_list_rotate_and_secrets_never_printed(runner: CliRunner, db: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("CLICKTOCHAT_BASE_URL", BASE)
    outputs: list[str] = []

    def run(*args: str) -> Result:
        result = ok(invoke(runner, *args))
        outputs.extend([result.stdout, result.stderr])
        return result

    run("init", "--db", db)
    table = run("keys", "list", "--db", db).stdout.strip().splitlines()
    assert table[0].split() == ["ID", "CREATED_AT", "SIGNS"]
    assert len(table) == 2 and table[1].split()[0] == "1" and table[1].split()[-1] == "True"
    listed = json.loads(run("keys", "list", "--db", db, "--json").stdout)
    assert [(k["id"], k["signs"]) for k in listed] == [(1, True)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed[0]["created_at"])

    before = last_line(run("link", "create", "--db", db, "--base-url", BASE, "--to", NUMBER, "--text", TEXT))
    rotated = run("keys", "rotate", "--db", db).stdout
    assert rotated == "Added signing key 2: it signs new links; all 2 keys verify links.\n"
    listed = json.loads(run("keys", "list", "--db", db, "--json").stdout)
    assert [(k["id"], k["signs"]) for k in listed] == [(1, False), (2, True)]
    after = last_line(run("link", "create", "--db", db, "--base-url", BASE, "--to", NUMBER, "--text", TEXT))

    # Same payload, different key: the newest key signs now.
    assert before != after
    assert before.rsplit(".", 1)[0] == after.rsplit(".", 1)[0]
    for url in (before, after):
        shown = json.loads(run("link", "show", "--db", db, url, "--json").stdout)
        assert shown["url"] == url
        assert shown["chat_url"] == f"https://wa.me/{DIGITS}?text={TEXT_ENCODED}"
        assert shown["clicks"] == 0
        assert f"to:          {DIGITS}" in run("link", "show", "--db", db, url).stdout

    secrets = [row[0] for row in query(db, "SELECT key FROM signing_keys")]
    assert len(secrets) == 2 and all(len(s) >= 32 for s in secrets)
    for secret in secrets:
        for output in outputs:
            assert secret not in output


# -- refusals -------------------------------------------------------------------------------


def test_invalid_port_variable_is_a_usage_error_before_serving(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    proc = run_module("serve", "--db", str(db), timeout=30, CLICKTOCHAT_PORT="abc")
    assert proc.returncode == 2
    assert "CLICKTOCHAT_PORT='abc' is not a valid int" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not db.exists()  # refused before opening the database, let alone listening


def test_invalid_port_flag_is_a_usage_error(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "serve", "--db", db, "--port", "abc"), 2, "'abc' is not a valid integer")
    # The OS would listen on 73838 - 65536, and the links made next would carry :73838.
    fails(invoke(runner, "serve", "--db", db, "--port", "73838"), 2, "73838 is not in the range 1<=x<=65535")
    assert not Path(db).exists()


def test_a_port_variable_out_of_range_is_refused_before_serving(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "serve", "--db", db, env={"CLICKTOCHAT_PORT": "99999"}), 2,
          "CLICKTOCHAT_PORT must be a TCP port, 1 to 65535; 99999 is not one")  # fmt: skip
    assert not Path(db).exists()


def test_invalid_boolean_variable_is_a_usage_error(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "link", "create", "--db", db, "--to", NUMBER, env={"CLICKTOCHAT_DEMO": "maybe"}), 2,
          "CLICKTOCHAT_DEMO='maybe' is not a valid bool")  # fmt: skip


def test_apikey_revoke_unknown(runner: CliRunner, db: str) -> None:
    ok(invoke(runner, "init", "--db", db))
    fails(invoke(runner, "apikey", "revoke", "--db", db, "999"), 1, "There is no active API key 999.")
    fails(invoke(runner, "apikey", "revoke", "--db", db, "abc"), 2, "'abc' is not a valid integer")


def test_database_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    """BUG (cli.py `run_with_service`, lines 57-61): only ProblemError is turned into a message;
    sqlite3.OperationalError 'unable to open database file' escapes as a traceback.
    (Run as a subprocess: in-process, aiosqlite's worker thread also trips over the closed loop.)"""
    path = tmp_path / "missing" / "x.db"
    proc = run_module("init", "--db", str(path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("Error:") and str(path) in proc.stderr
    assert proc.stdout == ""


# -- API keys -----------------------------------------------------------------------------------


def test_apikey_create_list_revoke(runner: CliRunner, db: str) -> None:
    created = ok(invoke(runner, "apikey", "create", "--db", db, "zapier"))
    key = last_line(created)
    assert re.fullmatch(r"ctc_[A-Za-z0-9_-]{40,}", key)
    assert created.stdout == key + "\n"  # only the key on stdout: `KEY=$(clicktochat apikey create x)` works
    assert "Copy it now" in created.stderr and key not in created.stderr

    table = ok(invoke(runner, "apikey", "list", "--db", db)).stdout
    assert key[:10] + "…" in table and key not in table and "zapier" in table
    (row,) = as_json(invoke(runner, "apikey", "list", "--db", db, "--json"))
    assert (row["id"], row["name"], row["prefix"], row["revoked_at"]) == (1, "zapier", key[:10] + "…", None)
    assert key not in json.dumps(row)
    assert key not in "".join(str(v) for r in query(db, "SELECT * FROM api_keys") for v in r)  # stored hashed

    assert ok(invoke(runner, "apikey", "revoke", "--db", db, "1")).stdout == "Revoked API key 1.\n"
    (row,) = as_json(invoke(runner, "apikey", "list", "--db", db, "--json"))
    assert row["revoked_at"] is not None
    fails(invoke(runner, "apikey", "revoke", "--db", db, "1"), 1, "There is no active API key 1.")


def test_apikey_name_is_checked(runner: CliRunner, db: str) -> None:
    fails(invoke(runner, "apikey", "create", "--db", db, "  "), 2, "give a name of 1 to 100 characters")
    fails(invoke(runner, "apikey", "create", "--db", db, "n" * 101), 2, "give a name of 1 to 100 characters")


def test_revoked_key_is_refused_by_the_running_api(runner: CliRunner, db: str) -> None:
    key = last_line(ok(invoke(runner, "apikey", "create", "--db", db, "integration")))
    create(runner, db, "--to", NUMBER, "--slug", "vetrina")
    auth = {"Authorization": f"Bearer {key}"}
    app = create_app(Settings(db=db, base_url=BASE, flush_interval=0.05))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        response = client.get("/api/v1/links", headers=auth)
        assert response.status_code == 200, response.text
        assert [link["slug"] for link in response.json()["links"]] == ["vetrina"]
        assert client.get("/api/v1/links").status_code == 401

        ok(invoke(runner, "apikey", "revoke", "--db", db, "1"))  # while the server runs

        response = client.get("/api/v1/links", headers=auth)
        assert response.status_code == 401
        assert "revoked" in response.json()["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")


# -- the installed command, as a subprocess --------------------------------------------------


def test_module_creates_a_link_in_a_subprocess(tmp_path: Path) -> None:
    db = str(tmp_path / "proc.db")
    proc = run_module("link", "create", "--db", db, "--to", NUMBER, "--text", TEXT, "--campaign", "summer-ad",
                      CLICKTOCHAT_BASE_URL=BASE)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("Note: ") and "new, empty database" in proc.stderr
    assert re.fullmatch(r"https://chat\.example\.com/c/_[A-Za-z0-9_-]+", proc.stdout.strip())

    shown = run_module("link", "show", "--db", db, proc.stdout.strip(), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["chat_url"] == f"https://wa.me/{DIGITS}?text={TEXT_ENCODED}"


def test_module_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    proc = run_module("link", "create", "--db", str(tmp_path / "proc.db"), "--to", "347 123 4567")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error: --to: '347 123 4567' has no country code")
    assert "Traceback" not in proc.stderr


def test_module_version_and_usage_error() -> None:
    proc = run_module("--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"clicktochat, version {__version__}\n", "")
    proc = run_module("link", "edit")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Missing argument 'SLUG'" in proc.stderr


@pytest.fixture(autouse=True)
def _no_leftover_db(tmp_path: Path) -> Iterator[None]:
    """Commands given --db must never fall back to ./clicktochat.db."""
    yield
    assert not (tmp_path / "clicktochat.db").exists()


def test_ids_beyond_sqlite_are_refused_cleanly(runner: CliRunner, db: str) -> None:
    ok(invoke(runner, "init", "--db", db))
    huge = "9" * 25
    listed = ok(invoke(runner, "agent", "list", "--db", db, "--business", huge))
    assert listed.stdout == "(none)\n"
    fails(invoke(runner, "apikey", "revoke", "--db", db, huge), 1)
    fails(invoke(runner, "link", "create", "--db", db, "--agent", huge), 1, "--agent: there is no agent")


# -- stats --------------------------------------------------------------------------------


def test_stats_prints_a_table_json_and_csv(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    ok(invoke(runner, "link", "create", "--db", db, "--base-url", BASE, "--agent", str(shop["agent"]), "--short",
              "--slug", "vetrina", "--campaign", "summer"))  # fmt: skip
    app = create_app(Settings(db=db, base_url=BASE))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        for referer in ("https://www.instagram.com/p/1", "https://www.instagram.com/p/2", ""):
            assert client.get("/s/vetrina", headers={"user-agent": IPHONE, "referer": referer}).is_redirect
        client.get("/s/vetrina", headers={"user-agent": "facebookexternalhit/1.1"})
    # the server wrote its clicks as it stopped
    table = ok(invoke(runner, "stats", "--db", db, "--by", "referrer", "--link", "vetrina"))
    assert [line.split() for line in table.stdout.splitlines()] == [
        ["REFERRER", "CLICKS", "UNIQUES", "BOTS"],  # no WhatsApp number connected: no chats to count
        ["www.instagram.com", "2", "1", "0"],  # one visitor: the same address and phone, twice
        ["(none)", "1", "0", "1"],
        ["TOTAL", "3", "1", "1"],
    ]
    assert "(Europe/Rome), by referrer" in table.stderr
    found = as_json(invoke(runner, "stats", "--db", db, "--campaign", "summer", "--json"))
    assert found["totals"] == {"clicks": 3, "uniques": 1, "bots": 1, "conversations": 0, "conversion": None,
                               "conversations_from_clicks": 0}
    assert len(found["rows"]) == 30
    csv_text = ok(invoke(runner, "stats", "--db", db, "--by", "robot", "--csv")).stdout
    assert csv_text.splitlines() == [
        "robot,label,clicks,uniques,bots", ",(none),3,1,0",
        "facebookexternalhit,facebookexternalhit,0,0,1",
    ]  # fmt: skip
    bad = invoke(runner, "stats", "--db", db, "--from", "2026-11-30", "--to", "2026-11-01")
    assert bad.exit_code == 1 and "--from: must not be after 'to'" in bad.stderr
    assert invoke(runner, "stats", "--db", db, "--by", "colour").exit_code == 2  # click names the choices


def test_stats_tell_scans_from_taps_by_link_and_campaign(runner: CliRunner, db: str, shop: dict[str, int]) -> None:
    for slug, campaign in (("vetrina", "summer"), ("banco", "winter")):
        ok(invoke(runner, "link", "create", "--db", db, "--base-url", BASE, "--agent", str(shop["agent"]), "--short",
                  "--slug", slug, "--campaign", campaign))  # fmt: skip
    app = create_app(Settings(db=db, base_url=BASE))
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        printed = read_qr(client.get("/qr/s/vetrina.png").content)  # what a phone reads off the poster
        assert printed == f"{BASE}/s/vetrina?qr"
        for url, agent in ((printed, IPHONE), (printed, IPHONE), (f"{BASE}/s/vetrina", ANDROID),
                           (f"{BASE}/s/banco?qr", ANDROID)):  # fmt: skip
            assert client.get(url, headers={"user-agent": agent}).is_redirect
    csv_text = ok(invoke(runner, "stats", "--db", db, "--by", "via", "--link", "vetrina", "--csv")).stdout
    assert csv_text.splitlines() == [
        "via,label,clicks,uniques,bots", "qr,QR code scan,2,1,0",
        ",tap on the link,1,1,0",
    ]  # fmt: skip
    summer = as_json(invoke(runner, "stats", "--db", db, "--by", "via", "--campaign", "summer", "--json"))
    assert [(r["key"], r["clicks"]) for r in summer["rows"]] == [("qr", 2), ("", 1)]
    table = ok(invoke(runner, "stats", "--db", db, "--by", "via"))
    assert [re.split(r"\s{2,}", line.strip()) for line in table.stdout.splitlines()[1:3]] == [
        ["QR code scan", "3", "2", "0"], ["tap on the link", "1", "1", "0"],  # no number connected: no chats
    ]  # every link
    weeks = ok(invoke(runner, "stats", "--db", db, "--by", "week", "--csv")).stdout.splitlines()
    assert weeks[0] == "week,clicks,uniques,bots"  # the week once, no label repeating it; no WhatsApp number: no chats
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2},\d+,\d+,\d+", line) for line in weeks[1:])
    assert sum(int(line.split(",")[1]) for line in weeks[1:]) == 4


# -- admin ---------------------------------------------------------------------------------


def test_admin_create_reads_the_password_from_stdin_and_the_dashboard_accepts_it(db: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clicktochat", "admin", "create", "ana", "--password-stdin", "--db", db,
         "--base-url", BASE], input="correct horse battery\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Admin ana can now sign in at {BASE}/admin/"
    assert "correct horse" not in done.stdout + done.stderr
    with TestClient(create_app(Settings(db=db, base_url=BASE)), base_url=BASE, follow_redirects=False) as client:
        page = client.get("/admin/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        form = {"csrf": csrf, "username": "ana", "password": "correct horse battery"}
        signed_in = client.post("/admin/login", data=form)
        assert signed_in.status_code == 303 and client.get("/admin/").status_code == 200


def test_admin_create_prompts_twice_and_refuses_bad_input(runner: CliRunner, db: str) -> None:
    made = ok(runner.invoke(cli, ["admin", "create", "ana", "--db", db],
                            input="short\n" + "correct horse battery\n" * 2))  # asked again at once  # fmt: skip
    assert "the password is 5 characters long; use at least 10" in made.output
    assert "Admin ana can now sign in" in made.stdout and "correct horse" not in made.stdout
    fails(runner.invoke(cli, ["admin", "create", "ANA", "--password-stdin", "--db", db], input="another password!\n"),
          1, "'ANA' is already an admin")  # fmt: skip
    fails(runner.invoke(cli, ["admin", "create", "bob", "--password-stdin", "--db", db], input="short\n"),
          1, "password: is 5 characters long; use at least 10")  # fmt: skip
    fails(runner.invoke(cli, ["admin", "create", "bad name", "--password-stdin", "--db", db], input="x" * 12),
          2, "USERNAME")  # fmt: skip
    listed = json.loads(ok(invoke(runner, "admin", "list", "--json", "--db", db)).stdout)
    assert [a["username"] for a in listed] == ["ana"] and listed[0]["last_login_at"] is None
    ok(runner.invoke(cli, ["admin", "password", "ana", "--password-stdin", "--db", db], input="a new passphrase\n"))
    fails(runner.invoke(cli, ["admin", "password", "zed", "--password-stdin", "--db", db], input="a new passphrase\n"),
          1, "there is no admin 'zed'")  # fmt: skip
    ok(invoke(runner, "admin", "remove", "ana", "--db", db))
    fails(invoke(runner, "admin", "remove", "ana", "--db", db), 1, "There is no admin 'ana'")


def test_admin_roles_from_the_command_line(runner: CliRunner, db: str) -> None:
    business = {"id": int(ok(invoke(runner, "business", "add", "--db", db, "Forno")).stdout.split()[-1])}
    made = ok(runner.invoke(cli, ["admin", "create", "luca", "--role", "agent", "--business", str(business["id"]),
                                  "--password-stdin", "--db", db], input="correct horse battery\n"))  # fmt: skip
    assert f"luca, an agent (conversations of business {business['id']}), can now sign in" in made.stdout
    fails(runner.invoke(cli, ["admin", "create", "bo", "--business", "1", "--password-stdin", "--db", db],
                        input="correct horse battery\n"), 1, "only an agent keeps to one business")  # fmt: skip
    fails(runner.invoke(cli, ["admin", "create", "bo", "--role", "agent", "--business", "99", "--password-stdin",
                              "--db", db], input="correct horse battery\n"), 1, "there is no business 99")  # fmt: skip
    fails(invoke(runner, "admin", "create", "bo", "--role", "boss", "--db", db), 2, "--role")
    listed = json.loads(ok(invoke(runner, "admin", "list", "--json", "--db", db)).stdout)
    assert [(a["username"], a["role"], a["business_id"]) for a in listed] == [("luca", "agent", business["id"])]
    changed = ok(invoke(runner, "admin", "role", "luca", "owner", "--db", db))
    assert "luca is now an owner (everything)." in changed.stdout
    listed = json.loads(ok(invoke(runner, "admin", "list", "--json", "--db", db)).stdout)
    assert [(a["role"], a["business_id"]) for a in listed] == [("owner", None)]
    fails(invoke(runner, "admin", "role", "zed", "agent", "--db", db), 1, "there is no admin 'zed'")
    widened = ok(invoke(runner, "admin", "role", "luca", "agent", "--db", db))  # owner to agent: every business
    assert "luca is now an agent (conversations of every business)." in widened.stdout
    kept = ok(invoke(runner, "admin", "role", "luca", "agent", "--business", str(business["id"]), "--db", db))
    assert f"luca is now an agent (conversations of business {business['id']})." in kept.stdout
    # Said again without --business, an agent kept to one business stays so (found by an agency's
    # review: it silently widened to every business); widening is said in words.
    again = ok(invoke(runner, "admin", "role", "luca", "agent", "--db", db))
    assert f"luca is now an agent (conversations of business {business['id']})." in again.stdout
    shouted = ok(invoke(runner, "admin", "role", "LUCA", "agent", "--db", db))  # names match whatever their case
    assert f"luca is now an agent (conversations of business {business['id']})." in shouted.stdout
    fails(invoke(runner, "admin", "role", "luca", "agent", "--every-business", "--business", "1", "--db", db), 2,
          "--every-business is for an agent, without --business")  # fmt: skip
    fails(invoke(runner, "admin", "role", "luca", "owner", "--every-business", "--db", db), 2, "--every-business")
    every = ok(invoke(runner, "admin", "role", "luca", "agent", "--every-business", "--db", db))
    assert "luca is now an agent (conversations of every business)." in every.stdout


def test_admin_without_a_terminal_says_to_use_password_stdin(runner: CliRunner, db: str) -> None:
    """Run from a script with nothing on standard input, the prompt reads nothing: click said "Aborted!"."""
    for command in (["admin", "create", "ana"], ["admin", "password", "ana"]):
        failed = runner.invoke(cli, [*command, "--db", db], input="")
        assert failed.exit_code == 1 and isinstance(failed.exception, SystemExit), describe(failed)
        assert failed.stderr == ("Error: no terminal to ask for the password on: give it on standard input with "
                                 f"--password-stdin, e.g. printf '%s\\n' \"$PASSWORD\" | cli {' '.join(command)} "
                                 "--password-stdin\n")  # fmt: skip
        assert "Aborted" not in failed.output
    done = subprocess.run([sys.executable, "-m", "clicktochat", "admin", "create", "ana", "--db", db],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "Aborted" not in done.stderr
    assert "GetPassWarning" not in done.stderr and "--password-stdin" in done.stderr  # no Python noise first
    assert "| clicktochat admin create ana --password-stdin" in done.stderr
    assert json.loads(ok(invoke(runner, "admin", "list", "--json", "--db", db)).stdout) == []


def test_text_from_strangers_cannot_drive_the_terminal() -> None:
    from clicktochat.cli import printable

    assert printable("\x1b]0;PWNED\x07\x1b[2Jrow\nfake\r\x85x") == "�]0;PWNED��[2Jrow⏎fake��x"
    assert printable("Giulia 🍰 è") == "Giulia 🍰 è"


def test_a_command_never_upgrades_the_database_behind_a_running_older_server(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Found by a new user: after `pip install` of a new release, any command (`link list`)
    upgraded the database at once, under the older server still running on it. Commands now say
    so and change nothing; `clicktochat db upgrade` (or `serve`) brings it up to date."""
    path = str(tmp_path / "old.db")
    database_at(path, 12).execute("COMMIT")
    refused = invoke(runner, "link", "list", "--db", path)
    assert refused.exit_code == 1 and "schema 12" in refused.stderr and "clicktochat db upgrade" in refused.stderr
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 12
    older_server = DatabaseLock(path)  # still running on it (found by an operator's review: upgraded under it)
    for command in (["db", "upgrade"], ["serve", "--port", str(free_port())]):
        refused = invoke(runner, *command, "--db", path)
        assert refused.exit_code == 1 and "at schema 12 and open in another process" in refused.stderr, command
        assert "stop it first" in refused.stderr and "Traceback" not in refused.output
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 12
    older_server.release()
    upgraded = ok(invoke(runner, "db", "upgrade", "--db", path))
    assert f"from schema 12 to {len(migrations())}" in upgraded.stdout
    assert "already" in ok(invoke(runner, "db", "upgrade", "--db", path)).stdout
    assert ok(invoke(runner, "link", "list", "--db", path)).stdout == "(none)\n"


def test_init_refuses_a_base_url_without_its_scheme(runner: CliRunner, tmp_path: Path) -> None:
    db = str(tmp_path / "j.db")
    done = invoke(runner, "init", "--db", db, "--base-url", "chat.example.com")
    assert done.exit_code == 2 and "must start with https://" in done.output
    assert "https://chat.example.com, not chat.example.com" in done.output
    assert not Path(db).exists()


@pytest.mark.sqlite
def test_nothing_runs_on_a_database_made_by_a_newer_clicktochat(runner: CliRunner, tmp_path: Path) -> None:
    """Found by a new user: a rolled-back install listed links, 'upgraded' and served a database
    at a schema it does not know."""
    db = str(tmp_path / "future.db")
    ok(invoke(runner, "init", "--db", db))
    with sqlite3.connect(db) as conn:
        (latest,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute(f"PRAGMA user_version = {latest + 1}")
    for args in (["link", "list"], ["db", "upgrade"], ["serve", "--port", str(free_port())]):
        done = invoke(runner, *args, "--db", db)
        assert done.exit_code == 1, (args, done.output)
        assert f"was made by a newer clicktochat (schema {latest + 1}; this one knows up to {latest})" in done.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (latest + 1,)


def test_db_upgrade_of_a_missing_file_makes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    typo = tmp_path / "typo.db"
    done = invoke(runner, "db", "upgrade", "--db", str(typo))
    assert done.exit_code == 1 and f"there is no database at {typo}" in done.output
    assert list(tmp_path.iterdir()) == []


def test_every_help_lists_whole_summaries_never_cut_with_an_ellipsis() -> None:
    def groups(group: click.Group, path: list[str]) -> Iterator[tuple[list[str], click.Group]]:
        yield path, group
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from groups(command, [*path, name])

    seen = 0
    for path, group in groups(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)
        assert result.exit_code == 0, result.output
        listed = "".join(result.output.split("Commands:")[1].split())  # wrapped anywhere, hyphens too
        for command in group.commands.values():
            assert command.help
            words = command.help.split("\n\n")[0].split()
            sentence = " ".join(words[: next(i for i, w in enumerate(words + ["."]) if w.endswith(".")) + 1])
            assert "".join(sentence.split()) in listed, (path, command.name)
            seen += 1
    assert seen >= 50
