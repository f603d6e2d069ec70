"""`clicktochat db copy` (clicktochat.dbcopy): a real SQLite installation, made through the app
(links, agents, a fallback agent, clicks, a widget, API and admin keys, a WhatsApp conversation),
copied into a new database of the session's PostgreSQL server (whatever the run: the source is
always SQLite), then compared row by row, served by the app on the copy, refused into a
non-empty target, and written after (a fresh id for a new row, not a clash with a copied one)."""

from __future__ import annotations

import io
import itertools
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from PIL import Image
from starlette.testclient import TestClient

from clicktochat.accounts import create_admin
from clicktochat.app import create_app
from clicktochat.cli import cli
from clicktochat.database import redacted
from clicktochat.dbcopy import ROWID_COLUMNS, CopyError, Count, order
from clicktochat.dbcopy import Table as CopiedTable
from clicktochat.dblock import DatabaseLock
from clicktochat.graph_standin import GraphStandIn
from clicktochat.keys import create_api_key
from clicktochat.settings import Settings
from clicktochat.storedb import _split_sql, migrations
from conftest import ANDROID, DESKTOP, IPHONE, NUMBER, VERIFY_TOKEN, Clock, WhatsAppSetup, call, flush, free_port
from pgserver import PostgresServer

BASE = "https://chat.example.com"
_names = itertools.count()


@dataclass(frozen=True)
class Installation:
    db: Path
    api_key: str
    signed_url: str
    served: dict[str, Any]  # what the app answered on SQLite, to compare with the copy's answers


@pytest.fixture
def empty(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty (not even migrated) database."""
    name = f"copy_{os.getpid()}_{next(_names)}"
    postgres_server.create_database(name)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


def served(client: TestClient, auth: dict[str, str], signed_url: str) -> dict[str, Any]:
    """What the app answers: redirects of each kind of link, the stats, the lists, a conversation."""
    return {
        "vetrina": client.get("/s/vetrina", headers={"user-agent": IPHONE}).headers["location"],
        "signed": client.get(signed_url.removeprefix(BASE), headers={"user-agent": IPHONE}).headers["location"],
        "stats": client.get("/api/v1/stats", headers=auth).json(),
        "links": client.get("/api/v1/links", headers=auth).json(),
        "widgets": client.get("/api/v1/widgets", headers=auth).json(),
        "conversations": client.get("/api/v1/conversations", headers=auth).json(),
    }


def logo() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (64, 64), (181, 68, 110)).save(image, "PNG")
    return image.getvalue()


@pytest.fixture
def installation(tmp_path: Path, standin: GraphStandIn, clock: Clock) -> Installation:
    db = tmp_path / "shop.db"
    settings = Settings(db=str(db), base_url=BASE, flush_interval=0.05, graph_url=standin.url)  # type: ignore[attr-defined]
    with TestClient(create_app(settings, clock, background=False), base_url=BASE, follow_redirects=False) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        shop = call(client, service.add_business("Pasticceria Dolce Vita", "Europe/Rome"))
        giulia = call(client, service.add_agent(shop.id, "Giulia", "+39 333 765 4321"))
        marco = call(client, service.add_agent(shop.id, "Marco", channels=[
            {"channel": "whatsapp", "address": "+39 333 765 4322"}, {"channel": "telegram", "address": "marco_dv"}]))
        call(client, service.update_business(shop.id, {"fallback_agent_id": marco.id}))  # businesses <-> agents
        call(client, service.create_link(agent_id=giulia.id, slug="vetrina", campaign="summer", text="Una torta?"))
        call(client, service.create_link(business_id=shop.id, slug="banco"))
        signed = call(client, service.create_link(to="+39 347 123 4567", text="Ciao", short=False)).url
        call(client, service.create_widget(shop.id, "dolcevita", {"agent_ids": [marco.id, giulia.id],
                                                                  "colour": "#b5446e"}))  # fmt: skip
        call(client, service.create_widget(shop.id, "old"))
        call(client, service.create_widget(shop.id, "cassa"))
        call(client, service.delete_widget("old"))  # a gap in the rowids
        call(client, service.set_logo(shop.id, logo()))  # a BLOB: bytea on PostgreSQL
        key = call(client, create_api_key(service.store, "shop")).key
        call(client, create_admin(service.store, "anna", "a long enough password"))
        number = call(client, service.whatsapp.connect(
            shop.id, NUMBER.phone_number_id, NUMBER.waba_id, NUMBER.access_token, NUMBER.app_secret, VERIFY_TOKEN))
        auth = {"Authorization": f"Bearer {key}"}
        whatsapp = WhatsAppSetup(client, service, standin, clock, number.id, shop.id, auth)
        whatsapp.run(whatsapp.customer().send_text("Buongiorno, avete la torta al pistacchio?"))
        whatsapp.process()
        for agent in (IPHONE, ANDROID, DESKTOP, IPHONE):
            for path in ("/s/vetrina", "/s/banco", signed.removeprefix(BASE), "/w/dolcevita/any"):
                client.get(path, headers={"user-agent": agent})
        flush(client)
        answers = served(client, auth, signed)
        flush(client)
    return Installation(db, key, signed, answers)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"CLICKTOCHAT_DB": None, "CLICKTOCHAT_SECRET_KEYS": None})


def rows(db: Path | str, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'SELECT {names} FROM "{table}" ORDER BY {names}'
    if isinstance(db, Path):
        with closing(sqlite3.connect(db)) as lite:
            return [tuple(row) for row in lite.execute(sql)]
    with psycopg.connect(db) as pg:
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in pg.execute(sql)]


def tables(db: Path) -> dict[str, list[str]]:
    with closing(sqlite3.connect(db)) as lite:
        names = [row[0] for row in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                                " AND name NOT LIKE 'sqlite%'")]  # fmt: skip
        return {name: [row[1] for row in lite.execute(f'PRAGMA table_info("{name}")')] for name in names}


def test_a_copy_holds_every_row_of_every_table(installation: Installation, empty: str) -> None:
    done = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["TABLE", "SQLITE", "POSTGRESQL", "CHECK"]
    ignored = ("Copied", "clicks counted", "unique clicks", "seen_visitors:")
    table_lines = [line.split() for line in lines[1:] if not line.startswith(ignored)]
    found = {line[0]: line[1:] for line in table_lines}
    schema = tables(installation.db)
    assert set(found) == set(schema) and all(check == "ok" for *_, check in found.values())
    assert found["links"][:2] == ["2", "2"] and found["widgets"][:2] == ["2", "2"]
    clicked = next(line for line in lines if line.startswith("clicks counted")).split()
    assert clicked[2] == clicked[3] and int(clicked[2]) >= 12 and clicked[4] == "ok"
    assert lines[-1].startswith("Copied ") and f"to {empty}" in lines[-1]
    for table, columns in schema.items():
        source = rows(installation.db, table, columns)
        if table == "seen_visitors":  # empty on SQLite; the copy fills it from the clicks (below)
            continue
        if table == "meta":  # the file says where it went (test_the_file_copied_is_refused_until_reopened)
            assert [row for row in source if row[0] == "copied_to"] == [("copied_to", source_mark(source, empty))]
            source = [row for row in source if row[0] != "copied_to"]
        assert rows(empty, table, columns) == source, table
        assert source or table in ("rotations", "login_failures", "seen_visitors", "job_runs",  # one process
                                   "link_totals_months", "admin_sessions", "outbox", "notifications", "consents",
                                   "chat_starts", "attributions", "click_refs", "wa_statuses", "message_templates",
                                   "optin_forms",
                                   "optin_requests", "api_keys")  # fmt: skip
    for table in ("logos", "links", "agents", "agent_channels", "click_log", "click_cells", "click_links",
                  "click_facts", "cell_days", "link_totals_days", "dimension_days", "conversations", "wa_messages",
                  "webhook_events", "signing_keys", "admins", "widgets", "whatsapp_numbers"):  # fmt: skip
        assert rows(installation.db, table, schema[table]), f"the installation has no {table}: a weak test"
    # PostgreSQL's stand-in for the rowid, in SQLite's rowid order (the widget list's order)
    with closing(sqlite3.connect(installation.db)) as lite:
        in_sqlite = list(lite.execute("SELECT rowid, id FROM widgets ORDER BY rowid"))
    assert rows(empty, "widgets", ["row_id", "id"]) == in_sqlite == [(1, "dolcevita"), (3, "cassa")]


def test_the_visitors_of_the_last_clicks_are_remembered(installation: Installation, empty: str) -> None:
    """Instances on PostgreSQL decide unique visitors from seen_visitors: filled by the copy, a
    visitor of the last window is not new again on the first click after the move."""
    done = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert done.exit_code == 0
    with closing(sqlite3.connect(installation.db)) as lite:
        people = lite.execute("SELECT visitor, max(at) FROM clicks WHERE visitor IS NOT NULL AND robot IS NULL"
                              " GROUP BY visitor ORDER BY visitor").fetchall()  # fmt: skip
    assert len(people) >= 2 and rows(empty, "seen_visitors", ["visitor", "last_at"]) == people
    # said as it is (found by an operator: the table's line read 0 and 0, filled after the comparison)
    assert f"seen_visitors: {len(people)} visitors of the last two days' clicks remembered" in done.stdout
    counted = "SELECT sum(n), sum(uniques) FROM clicks WHERE link_key = 'vetrina' AND robot IS NULL"
    with psycopg.connect(empty) as pg:
        clicks, uniques = pg.execute(counted).fetchone()
    settings = Settings(db=empty, base_url=BASE, flush_interval=0.05)
    with TestClient(create_app(settings, background=False), base_url=BASE, follow_redirects=False) as client:
        client.get("/s/vetrina", headers={"user-agent": IPHONE})  # the same visitor as before the move
        flush(client)
    with psycopg.connect(empty) as pg:
        assert pg.execute(counted).fetchone() == (clicks + 1, uniques)


def test_the_copy_serves_what_the_sqlite_file_served(installation: Installation, empty: str) -> None:
    assert run("db", "copy", "--from", str(installation.db), "--to", empty).exit_code == 0
    settings = Settings(db=empty, base_url=BASE, flush_interval=0.05)
    with TestClient(create_app(settings, background=False), base_url=BASE, follow_redirects=False) as client:
        auth = {"Authorization": f"Bearer {installation.api_key}"}  # the API key was copied too
        after = served(client, auth, installation.signed_url)  # the signing keys too: the signed link opens
    assert after["vetrina"] == installation.served["vetrina"]
    assert after["signed"] == installation.served["signed"]
    for key in ("links", "widgets"):
        for a, b in zip(after[key], installation.served[key], strict=True):
            assert a == b, {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
    assert after["conversations"] == installation.served["conversations"]
    # the original's own two served() clicks were written as it stopped, and so were copied
    before, now = installation.served["stats"]["totals"], after["stats"]["totals"]
    assert now["clicks"] == before["clicks"] + 2
    assert {k: v for k, v in now.items() if k not in ("clicks", "conversion_rate")} == {
        k: v for k, v in before.items() if k not in ("clicks", "conversion_rate")}


def test_new_rows_after_a_copy_get_fresh_ids(installation: Installation, empty: str) -> None:
    with closing(sqlite3.connect(installation.db)) as lite, lite:  # a business made and deleted: id 2 was given
        lite.execute("INSERT INTO businesses (name, timezone, created_at, updated_at) VALUES ('Chiuso', 'UTC', 0, 0)")
        lite.execute("DELETE FROM businesses WHERE name = 'Chiuso'")
    assert run("db", "copy", "--from", str(installation.db), "--to", empty).exit_code == 0
    with psycopg.connect(empty, autocommit=True) as pg:
        new_business = pg.execute("INSERT INTO businesses (name, timezone, created_at, updated_at) "
                                  "VALUES ('Bar Sport', 'UTC', 0, 0) RETURNING id").fetchone()  # fmt: skip
        assert new_business is not None and new_business[0] == 3  # the copied shop is 1; 2 was given once
        (clicks,) = pg.execute("SELECT max(id) FROM click_log").fetchone()  # type: ignore[misc]
        new_click = pg.execute(
            "INSERT INTO click_log (at, cell, n, uniques, day) VALUES (1, 1, 1, 0, '2026-12-03') RETURNING id"
        ).fetchone()
        assert new_click is not None and new_click[0] == clicks + 1
        (widget_row,) = pg.execute("SELECT max(row_id) FROM widgets").fetchone()  # type: ignore[misc]
        made = pg.execute("INSERT INTO widgets (id, business_id, created_at, updated_at) VALUES ('nuovo', 1, 0, 0) "
                          "RETURNING row_id").fetchone()  # fmt: skip
        assert made is not None and made[0] == widget_row + 1
        # every identity column: its next value is past what was copied
        found = pg.execute("SELECT table_name, column_name FROM information_schema.columns WHERE is_identity = 'YES' "
                           "AND table_schema = current_schema()").fetchall()  # fmt: skip
        assert len(found) == 23  # every INTEGER PRIMARY KEY of SQLite, and the two rowid stand-ins
        for table, column in found:
            next_id, largest = pg.execute(f'SELECT nextval(pg_get_serial_sequence(%s, %s)), max("{column}") FROM '
                                          f'"{table}"', (table, column)).fetchone()  # type: ignore[misc]  # fmt: skip
            assert largest is None or next_id > largest, (table, column)


def source_mark(meta: list[tuple[Any, ...]], target: str) -> str:
    value = str(dict(meta)["copied_to"])
    where, _, when = value.partition(" on ")
    assert where == redacted(target) and re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d UTC", when), value
    return value


def test_the_file_copied_is_refused_until_reopened(installation: Installation, empty: str, tmp_path: Path) -> None:
    """Found by an operator's review: the unit file and the cron line still named the SQLite
    file after the copy, and a server or a nightly backup on it carried on, on data nobody saw."""
    assert run("db", "copy", "--from", str(installation.db), "--to", empty).exit_code == 0
    db = str(installation.db)
    for command in (("link", "list", "--db", db), ("backup", str(tmp_path / "nightly.db"), "--db", db),
                    ("serve", "--db", db, "--port", str(free_port())),
                    ("simulate", "graph", "--db", db, "--port", str(free_port()))):  # fmt: skip
        refused = run(*command)
        assert refused.exit_code == 1, (command, refused.output)
        assert f"{db} was copied to postgresql://" in refused.stderr and "the installation lives" in refused.stderr
        assert "pg_dump" in refused.stderr
    assert not (tmp_path / "nightly.db").exists()
    old_backup = tmp_path / "before-the-move.db"
    with closing(sqlite3.connect(installation.db)) as lite, closing(sqlite3.connect(old_backup)) as copy:
        lite.backup(copy)
    with closing(sqlite3.connect(old_backup)) as copy, copy:
        copy.execute("DELETE FROM meta WHERE key = 'copied_to'")  # as a backup made before the copy is
    restored = run("restore", str(old_backup), "--db", db)  # an old runbook would make the file live again
    assert restored.exit_code == 1 and "the installation lives there now; restore PostgreSQL with pg_restore" in \
        restored.stderr and "db reopen" in restored.stderr  # fmt: skip
    with pytest.raises(sqlite3.DatabaseError, match="clicktochat db reopen --db"):  # the server's own start
        with TestClient(create_app(Settings(db=db, base_url=BASE), background=False)):
            pass
    again = run("db", "copy", "--from", db, "--to", empty)
    assert again.exit_code == 1 and "was copied to postgresql://" in again.stderr and "db reopen" in again.stderr
    reopened = run("db", "reopen", "--db", db)
    assert reopened.exit_code == 0 and f"{db} is the installation's database again" in reopened.stdout
    assert run("link", "list", "--db", db).exit_code == 0
    assert run("backup", str(tmp_path / "nightly.db"), "--db", db).exit_code == 0
    assert "was not copied anywhere: nothing to do" in run("db", "reopen", "--db", db).stdout
    with DatabaseLock(installation.db):
        assert "is in use by a running clicktochat" in run("db", "reopen", "--db", db).stderr


def test_a_target_with_rows_is_refused_and_left_alone(installation: Installation, empty: str) -> None:
    assert run("db", "copy", "--from", str(installation.db), "--to", empty).exit_code == 0
    assert run("db", "reopen", "--db", str(installation.db)).exit_code == 0  # to copy it again
    again = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert again.exit_code == 1 and again.stdout == ""
    assert again.stderr.startswith("Error: the target is not empty (signing_keys, ")
    assert "businesses, " in again.stderr and "sqlite_sequence" not in again.stderr
    assert "copy into a new, empty database" in again.stderr
    assert len(rows(empty, "links", ["slug"])) == 2  # nothing doubled


def test_one_row_anywhere_makes_a_target_not_empty(installation: Installation, empty: str, tmp_path: Path) -> None:
    run("init", "--db", empty)  # a server started on it once: a signing key, nothing else
    refused = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert refused.exit_code == 1 and "the target is not empty (signing_keys hold rows)" in refused.stderr
    with psycopg.connect(empty, autocommit=True) as pg:
        pg.execute("DELETE FROM signing_keys")
        pg.execute("INSERT INTO meta (key, value) VALUES ('base_url', 'https://other.example')")
    refused = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert refused.exit_code == 1 and "the target is not empty (meta hold rows)" in refused.stderr
    with psycopg.connect(empty, autocommit=True) as pg:
        pg.execute("DELETE FROM meta WHERE key = 'base_url'")
    assert run("db", "copy", "--from", str(installation.db), "--to", empty).exit_code == 0  # the seeded meta is fine


def undo_click_cells(lite: sqlite3.Connection) -> None:
    """Migration 023 undone: its tables and views dropped, the tables it replaced made again as
    migrations 1 to 22 left them (empty)."""
    with closing(sqlite3.connect(":memory:")) as scratch:
        for number, script in migrations():
            for statement in _split_sql(script) if number < 23 else ():
                scratch.execute(statement)
        old = scratch.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('clicks', 'link_days', 'link_months',"
            " 'link_dimension_days') AND sql IS NOT NULL ORDER BY type = 'index'"
        ).fetchall()  # fmt: skip
    for view in ("clicks", "link_days", "link_months", "link_dimension_days"):
        lite.execute(f"DROP VIEW {view}")
    for table in ("cell_days", "link_totals_days", "link_totals_months", "click_log", "click_cells",
                  "click_facts", "click_links"):  # fmt: skip
        lite.execute(f"DROP TABLE {table}")
    for (sql,) in old:
        lite.execute(sql)


def test_the_source_is_checked_and_brought_up_to_date(installation: Installation, empty: str, tmp_path: Path) -> None:
    missing = run("db", "copy", "--from", str(tmp_path / "none.db"), "--to", empty)
    assert missing.exit_code == 1 and f"there is no database at {tmp_path / 'none.db'}" in missing.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    assert "is not an SQLite database" in run("db", "copy", "--from", str(notes), "--to", empty).stderr
    to_file = run("db", "copy", "--from", str(installation.db), "--to", str(tmp_path / "other.db"))
    assert to_file.exit_code == 1 and "--to must be a PostgreSQL URL" in to_file.stderr
    with closing(sqlite3.connect(installation.db)) as lite:
        (schema,) = lite.execute("PRAGMA user_version").fetchone()
        lite.execute(f"PRAGMA user_version = {schema + 1}")
    newer = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert newer.exit_code == 1 and f"made by a newer clicktochat (schema {schema + 1}" in newer.stderr
    with closing(sqlite3.connect(installation.db)) as lite:  # an older one: migration 012 undone
        for table in ("rotations", "login_failures", "seen_visitors", "job_runs"):
            lite.execute(f"DROP TABLE {table}")
        for trigger in ("insert", "update", "delete"):
            lite.execute(f"DROP TRIGGER whatsapp_numbers_{trigger}")
        for column in ("role", "business_id"):  # and 017's
            lite.execute(f"ALTER TABLE admins DROP COLUMN {column}")
        lite.execute("ALTER TABLE outbox DROP COLUMN sent_by")  # and 018's
        lite.execute("DROP INDEX links_request_key")  # and 019's
        for column in ("request_key", "request_hash"):
            lite.execute(f"ALTER TABLE links DROP COLUMN {column}")
        for column in ("token_refused_at", "token_error"):  # and 021's
            lite.execute(f"ALTER TABLE whatsapp_numbers DROP COLUMN {column}")
        lite.execute("DROP TABLE attributions")  # and 022's
        undo_click_cells(lite)  # and 023's
        lite.execute("PRAGMA user_version = 11")
    # An older server still running on it: refused before anything is migrated under it (found
    # by a review: the file was brought to the new schema, then the copy refused).
    with DatabaseLock(installation.db):
        held = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert held.exit_code == 1 and "is in use by a running clicktochat" in held.stderr
    with closing(sqlite3.connect(installation.db)) as lite:
        assert lite.execute("PRAGMA user_version").fetchone() == (11,)
    older = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert older.exit_code == 0, older.output
    assert older.stdout.startswith(f"{installation.db} was at schema 11: brought up to {schema} first\n")


def test_the_copy_refuses_while_a_server_has_the_file_open(installation: Installation, empty: str) -> None:
    settings = Settings(db=str(installation.db), base_url=BASE)
    with TestClient(create_app(settings, background=False), base_url=BASE):
        refused = run("db", "copy", "--from", str(installation.db), "--to", empty)
    assert refused.exit_code == 1 and "is in use by a running clicktochat" in refused.stderr
    assert "stop it first" in refused.stderr
    with psycopg.connect(empty) as pg:  # left alone: refused before anything was done
        assert pg.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_the_password_is_never_printed(installation: Installation, empty: str) -> None:
    url = empty.replace("postgres@", "postgres:s3cret-pw@")  # the test server lets any password in
    done = run("db", "copy", "--from", str(installation.db), "--to", url)
    assert done.exit_code == 0 and "s3cret-pw" not in done.output and empty in done.stdout
    again = run("db", "copy", "--from", str(installation.db), "--to", url)
    assert again.exit_code == 1 and "s3cret-pw" not in again.output


def test_a_server_out_of_reach_is_an_error_not_a_traceback(installation: Installation) -> None:
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/nowhere"  # nothing listens there
    done = run("db", "copy", "--from", str(installation.db), "--to", url)
    assert done.exit_code == 1 and "Traceback" not in done.output and "s3cret-pw" not in done.output
    assert f"cannot copy {installation.db} to postgresql://postgres@127.0.0.1:" in done.stderr
    garbled = run("db", "copy", "--from", str(installation.db), "--to", url.replace("s3cret-pw", "s3cret%zz"))
    assert garbled.exit_code == 1 and "s3cret" not in garbled.output and "Traceback" not in garbled.output


# -- the parts ----------------------------------------------------------------------------------


def test_tables_are_ordered_parents_first_and_a_cycle_waits_on_its_nullable_column() -> None:
    def table(name: str, references: dict[str, str], nullable: set[str] = frozenset()) -> CopiedTable:  # type: ignore[assignment]
        return CopiedTable(name, [], [], ["id"], True, references, set(nullable))

    ordered, later = order([
        table("links", {"agent_id": "agents", "business_id": "businesses"}, {"agent_id", "business_id"}),
        table("businesses", {"fallback_agent_id": "agents"}, {"fallback_agent_id"}),
        table("agents", {"business_id": "businesses"}),
        table("notes", {"parent_id": "notes"}, {"parent_id"}),
    ])  # fmt: skip
    assert [t.name for t in ordered] == ["notes", "businesses", "agents", "links"]
    assert later == {"businesses": ["fallback_agent_id"]}
    with pytest.raises(CopyError, match="refer to each other through columns that cannot be empty"):
        order([table("a", {"b_id": "b"}), table("b", {"a_id": "a"})])


def test_a_count_that_differs_says_so() -> None:
    same = Count("clicks", ("rows", "n"), (3, 12), (3, 12))
    lost = Count("clicks", ("rows", "n"), (3, 12), (3, 11))
    assert same.same and not lost.same and lost.total("n") == (12, 11) and lost.total("rows") == (3, 3)


def test_rowid_columns_exist_only_on_postgresql() -> None:
    from clicktochat.storedb import migrations

    (_, script), *_ = [m for m in migrations("migrations_pg") if m[0] == 11]
    for table, column in ROWID_COLUMNS.items():
        assert f"{column} BIGINT GENERATED BY DEFAULT AS IDENTITY" in script.split(f"CREATE TABLE {table} (")[1]


def test_a_url_given_where_it_does_not_belong_is_never_repeated(tmp_path: Path) -> None:
    """Found by a review: `db copy`, `backup` and `restore` printed a mistyped URL, password and
    all (libpq read an unencoded @ as the host's start; a file path named after the URL)."""
    db = str(tmp_path / "c.db")
    for args in (("db", "copy", "--from", db, "--to", "postgresql://ctc:p@ssw0rd-VERY-SECRET@127.0.0.1:1/x"),
                 ("db", "copy", "--from", db, "--to", "postgresql+psycopg://ctc:VERY-SECRET@127.0.0.1:1/x"),
                 ("db", "copy", "--from", db, "--to", "postgresq://ctc:VERY-SECRET@127.0.0.1:1/x"),
                 ("db", "copy", "--from", "postgresql://ctc:VERY-SECRET@127.0.0.1:1/a", "--to",
                  "postgresql://ctc@127.0.0.1:1/b"),
                 ("backup", "--db", db, "postgresql://ctc:VERY-SECRET@127.0.0.1:1/x"),
                 ("restore", "--db", db, "postgresql://ctc:VERY-SECRET@127.0.0.1:1/x")):  # fmt: skip
        refused = run(*args)
        assert refused.exit_code == 1, (args, refused.output)
        assert "SECRET" not in refused.output and "Traceback" not in refused.output, refused.output
