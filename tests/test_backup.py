"""`clicktochat backup` and `restore` (clicktochat.backup, cli_backup, dblock): real files, a real
server process writing clicks while it is backed up, restores refused while anything holds the
database, damaged and foreign backups refused with the database left as it was."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager, closing
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from clicktochat.backup import BackupError, backup, check, latest_schema, restore
from clicktochat.cli import cli as main
from clicktochat.dblock import DatabaseLock, InUse, NotAFile
from clicktochat.service import Service
from clicktochat.settings import Settings
from clicktochat.store import Store
from conftest import IPHONE, free_port, running


def cli(*args: str) -> Result:
    """The command in this process (a server, when one runs, is another process)."""
    return CliRunner().invoke(main, list(args), env={"CLICKTOCHAT_SECRET_KEYS": None, "CLICKTOCHAT_DB": None})


def made(db: Path, *slugs: str) -> None:
    for slug in slugs:
        done = cli("link", "create", "--to", "+39 347 123 4567", "--short", "--slug", slug, "--db", str(db))
        assert done.exit_code == 0, done.output


async def started(db: Path) -> None:
    """What a server does to the database when it starts (`Service.open`), then stops."""
    service = await Service.open(Settings(db=str(db)))
    await service.close()


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as connection:  # closed: an open reader keeps a -wal beside the file
        return list(connection.execute(sql))


def slugs(db: Path) -> set[str]:
    return {str(row[0]) for row in rows(db, "SELECT slug FROM links")}


def damage(path: Path) -> None:
    """Garbage over the middle of the page that holds the links table's root."""
    ((root, size),) = rows(path, "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master "
                                 "WHERE name = 'links'")  # fmt: skip
    with path.open("r+b") as file:
        file.seek((int(root) - 1) * int(size) + 8)  # type: ignore[call-overload]
        file.write(b"\xff" * 200)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "live" / "clicktochat.db"
    path.parent.mkdir()
    made(path, "vetrina", "banco")
    return path


def serve(db: Path, port: int) -> AbstractContextManager[subprocess.Popen[str]]:
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", str(db), "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    return running(argv, port, {"CLICKTOCHAT_FLUSH_INTERVAL": "0.05"})


class Clicking:
    """A phone clicking a link over and over, in a thread, until stopped."""

    def __init__(self, url: str) -> None:
        self.url, self.answers, self.stopped = url, [0], threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self.stopped.is_set():
                self.answers.append(http.get(self.url, headers={"user-agent": IPHONE}).status_code)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.05)


def clicks(db: Path) -> int:
    return int(rows(db, "SELECT count(*) FROM clicks")[0][0])  # type: ignore[call-overload]


@pytest.mark.e2e
def test_backups_taken_while_a_server_writes_clicks_are_whole_and_current(db: Path, tmp_path: Path) -> None:
    port = free_port()
    with serve(db, port):
        clicking = Clicking(f"http://127.0.0.1:{port}/s/vetrina")
        try:
            wait_for(lambda: clicks(db) >= 20, "20 clicks written")
            taken = []
            for n in range(3):
                target = tmp_path / f"backup-{n}.db"
                before = clicks(db)
                done = cli("backup", str(target), "--db", str(db))
                assert done.exit_code == 0, done.output
                assert done.stdout.startswith(f"Backed up {db} to {target} (")
                assert f"schema {latest_schema()}, integrity checked" in done.stdout
                assert rows(target, "PRAGMA integrity_check") == [("ok",)]
                assert rows(target, "PRAGMA journal_mode") == [("delete",)]  # one file, no -wal to forget
                assert not Path(f"{target}-wal").exists()
                taken.append(clicks(target))
                assert taken[-1] >= before  # what was written before the backup began is in it
                wait_for(lambda: clicks(db) > taken[-1], "more clicks written after the backup")  # noqa: B023
        finally:
            clicking.stop()
    assert set(clicking.answers[1:]) == {302}, "the server went on answering every click"
    assert taken[0] < taken[1] < taken[2] < clicks(db)
    assert slugs(tmp_path / "backup-2.db") == {"vetrina", "banco"}


@pytest.mark.e2e
def test_restore_is_refused_while_serving_and_works_once_stopped(db: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.db"
    assert cli("backup", str(saved), "--db", str(db)).exit_code == 0
    made(db, "after-backup")
    port = free_port()
    with serve(db, port) as server:
        refused = cli("restore", str(saved), "--db", str(db))
        assert refused.exit_code == 1 and refused.stdout == ""
        assert f"Error: {db} is in use by a running clicktochat" in refused.stderr
        assert "stop it first" in refused.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/s/after-backup", headers={"user-agent": IPHONE}).status_code == 302
        assert sorted(p.name for p in db.parent.iterdir() if "restor" in p.name) == []
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) in (0, -signal.SIGTERM)  # uvicorn raises the signal again once it has stopped

    done = cli("restore", str(saved), "--db", str(db))
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Restored {db} from {saved} (") and lines[0].endswith("integrity checked)")
    aside = Path(lines[1].removeprefix("The database it replaced is kept as "))
    assert aside.parent == db.parent and aside.name.startswith("clicktochat.db.before-restore-")
    assert slugs(db) == {"vetrina", "banco"}
    assert slugs(aside) == {"vetrina", "banco", "after-backup"}  # nothing of the replaced one is lost
    assert not Path(f"{aside}-wal").exists() and rows(aside, "PRAGMA integrity_check") == [("ok",)]
    assert not Path(f"{db}.restoring").exists()

    with serve(db, port):  # the restored database serves
        phone = {"user-agent": IPHONE}
        assert httpx.get(f"http://127.0.0.1:{port}/s/vetrina", headers=phone).status_code == 302
        assert httpx.get(f"http://127.0.0.1:{port}/s/after-backup", headers=phone).status_code == 404


@pytest.mark.e2e
def test_restore_keeps_the_last_writes_of_a_killed_server(db: Path, tmp_path: Path) -> None:
    """A server killed with -9 leaves its last writes in the -wal: the database set aside keeps them."""
    saved = tmp_path / "saved.db"
    assert cli("backup", str(saved), "--db", str(db)).exit_code == 0
    port = free_port()
    with serve(db, port) as server:
        made(db, "late")
        server.kill()
        server.wait(30)
    done = cli("restore", str(saved), "--db", str(db))
    assert done.exit_code == 0, done.output
    aside = Path(done.stdout.splitlines()[1].removeprefix("The database it replaced is kept as "))
    assert "late" in slugs(aside) and "late" not in slugs(db)


@pytest.mark.parametrize("kind", ["damaged", "garbage", "foreign", "newer", "empty"])
def test_bad_backups_are_refused_and_the_database_is_left_alone(db: Path, tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "bad.db"
    if kind == "damaged":
        backup(db, bad)
        damage(bad)
    elif kind == "garbage":
        bad.write_bytes(b"not a database at all\n" * 100)
    elif kind == "foreign":
        with sqlite3.connect(bad) as other:
            other.execute("CREATE TABLE notes (body TEXT)")
            other.execute("PRAGMA user_version = 3")
    elif kind == "newer":
        backup(db, bad)
        with sqlite3.connect(bad) as newer:
            newer.execute(f"PRAGMA user_version = {latest_schema() + 1}")
    else:
        bad.write_bytes(b"")
    before = sorted(p.name for p in db.parent.iterdir())
    done = cli("restore", str(bad), "--db", str(db))
    assert done.exit_code == 1 and done.stdout == "" and "Traceback" not in done.stderr
    expected = {
        "damaged": "bad.db is damaged: ",
        "garbage": "bad.db is not a sound clicktochat backup: file is not a database",
        "foreign": "bad.db is an SQLite database, but not clicktochat's",
        "newer": f"was made by a newer clicktochat (schema {latest_schema() + 1}; this one knows up to "
                 f"{latest_schema()}): upgrade clicktochat first",
        "empty": "bad.db is an SQLite database, but not clicktochat's",
    }[kind]  # fmt: skip
    assert expected in done.stderr, done.stderr
    assert sorted(p.name for p in db.parent.iterdir()) == before  # no copy left behind, nothing set aside
    assert slugs(db) == {"vetrina", "banco"}


def test_a_damaged_database_is_not_backed_up_as_if_it_were_sound(db: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    backup(db, broken)
    damage(broken)
    with pytest.raises(BackupError, match="broken.db is damaged"):
        backup(broken, tmp_path / "copy.db")
    assert list(tmp_path.glob("copy.db*")) == []


def test_a_copy_that_cannot_be_written_or_cleared_away_is_an_error_not_a_traceback(db: Path, tmp_path: Path) -> None:
    """Found by a review: on a read-only volume the clean-up of the half-written copy failed too,
    and its error (a traceback) hid the one that said why. A folder in the way does the same."""
    (tmp_path / "copy.db.partial").mkdir()
    done = cli("backup", str(tmp_path / "copy.db"), "--db", str(db))
    assert done.exit_code == 1 and done.stderr.startswith(f"Error: cannot back up {db}"), done.output
    assert "Traceback" not in done.output
    (tmp_path / "restored.db.restoring").mkdir()
    backup(db, tmp_path / "good.db")
    done = cli("restore", str(tmp_path / "good.db"), "--db", str(tmp_path / "restored.db"))
    assert done.exit_code == 1 and done.stderr.startswith("Error: "), done.output
    assert "Traceback" not in done.output and not (tmp_path / "restored.db").exists()


def test_backup_into_a_folder_names_the_copy_and_never_overwrites_other_files(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    done = cli("backup", str(folder), "--db", str(db))
    assert done.exit_code == 0, done.output
    (copy,) = folder.iterdir()
    assert copy.name.startswith("clicktochat-") and copy.suffix == ".db" and str(copy) in done.stdout
    assert check(copy).schema == latest_schema()

    made_now = cli("backup", f"{tmp_path}/new/", "--db", str(db))  # a trailing / asks for a folder
    assert made_now.exit_code == 0, made_now.output
    (copy,) = (tmp_path / "new").iterdir()
    assert copy.name.startswith("clicktochat-") and check(copy).schema == latest_schema()
    # Found by a new user: a typo higher up (/var/backpus/clicktochat/) made a whole new tree.
    typo = cli("backup", f"{tmp_path}/typo/folder/", "--db", str(db))
    assert typo.exit_code == 1 and f"the folder {tmp_path}/typo does not exist" in typo.stderr
    assert not (tmp_path / "typo").exists()

    again = tmp_path / "nightly.db"
    assert cli("backup", str(again), "--db", str(db)).exit_code == 0
    made(db, "newer")
    assert cli("backup", str(again), "--db", str(db)).exit_code == 0  # an older backup is replaced
    assert "newer" in slugs(again)

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    refused = cli("backup", str(notes), "--db", str(db))
    assert refused.exit_code == 1
    assert "notes.txt exists and is not an SQLite database: not overwriting it" in refused.stderr
    assert notes.read_text() == "my notes"
    itself = cli("backup", str(db), "--db", str(db))
    assert itself.exit_code == 1 and "is the database itself" in itself.stderr
    missing = cli("backup", str(tmp_path / "x.db"), "--db", str(tmp_path / "nothing.db"))
    assert missing.exit_code == 1 and "there is no database at" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()


def test_backup_never_replaces_a_live_database_or_another_applications(db: Path, tmp_path: Path) -> None:
    """Found by a review: `backup` replaced a running server's database (its -wal then replayed
    into the copy) and any application's SQLite file, keeping nothing of either."""
    live = tmp_path / "prod" / "clicktochat.db"
    live.parent.mkdir()
    made(live, "prod-only")
    refused = cli("backup", str(live), "--db", str(db))
    assert refused.exit_code == 1 and "is a clicktochat database, not a backup" in refused.stderr
    assert "restore" in refused.stderr and slugs(live) == {"prod-only"}
    with DatabaseLock(live):  # a server running on it
        refused = cli("backup", str(live), "--db", str(db))
    assert refused.exit_code == 1 and "in use by a running clicktochat" in refused.stderr
    nightly = tmp_path / "nightly.db"
    assert cli("backup", str(nightly), "--db", str(db)).exit_code == 0
    assert cli("link", "list", "--db", str(nightly)).exit_code == 0  # looked into (a database now, in WAL)
    made(db, "later")
    for night in range(3):  # still a backup, night after night, looked into or not (found by a review)
        again = cli("backup", str(nightly), "--db", str(db))
        assert again.exit_code == 0, (night, again.output)
        assert not Path(f"{nightly}-wal").exists() and "later" in slugs(nightly)
        assert cli("link", "list", "--db", str(nightly)).exit_code == 0
    assert cli("restore", str(nightly), "--db", str(live)).exit_code == 0
    assert not Path(f"{nightly}-wal").exists()  # read where it lies, nothing left beside it
    assert rows(live, "SELECT value FROM meta WHERE key = 'backup'") == []  # a database again
    assert cli("backup", str(live), "--db", str(db)).exit_code == 1
    (aside,) = live.parent.glob("clicktochat.db.before-restore-*")  # and the one it replaced (found by a new user)
    assert cli("backup", str(aside), "--db", str(db)).exit_code == 1 and slugs(aside) == {"prod-only"}
    assert [p.name for p in live.parent.iterdir() if ".restoring" in p.name] == []  # nothing left behind
    served = tmp_path / "served.db"  # a backup a server was started on is a database from then on
    assert cli("backup", str(served), "--db", str(db)).exit_code == 0
    asyncio.run(started(served))
    assert cli("backup", str(served), "--db", str(db)).exit_code == 1
    other = tmp_path / "notes.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE precious (x)")
        connection.execute("INSERT INTO precious VALUES ('keep me')")
    refused = cli("backup", str(other), "--db", str(db))
    assert refused.exit_code == 1 and "not a clicktochat backup" in refused.stderr
    assert rows(other, "SELECT x FROM precious") == [("keep me",)]


def test_a_restore_never_brings_back_someone_erased_after_the_backup(db: Path, tmp_path: Path) -> None:
    """Found by a review: restoring a backup taken before an erasure brought the person back, opted
    in, with nothing said. The replaced database's opt-out markers name who to erase again."""
    assert cli("business", "add", "Forno", "--db", str(db)).exit_code == 0
    for phone in ("+39 347 123 4567", "+39 347 765 4321"):
        added = cli("optin", "add", phone, "--topic", "orders", "--text", "Order updates", "--version", "1",
                    "--db", str(db))  # fmt: skip
        assert added.exit_code == 0, added.output
    copy = tmp_path / "before.db"
    assert cli("backup", str(copy), "--db", str(db)).exit_code == 0
    assert cli("customer", "erase", "+39 347 123 4567", "--yes", "--db", str(db)).exit_code == 0
    with closing(sqlite3.connect(db)) as live:  # asked for a day ago
        live.execute("UPDATE consents SET at = at - 86400 WHERE source = 'erase'")
        live.commit()
    (asked,) = rows(db, "SELECT DISTINCT at FROM consents WHERE source = 'erase'")
    restored = cli("restore", str(copy), "--db", str(db))
    assert restored.exit_code == 0, restored.output
    assert "Erased again: 1 number or user id erased after this backup was taken" in restored.stdout
    assert rows(db, "SELECT phone, state, source FROM consents ORDER BY phone, id") == [
        ("393471234567", "out", "erase"), ("393477654321", "in", "cli")]  # fmt: skip
    # when they asked is kept, not the restore's time (found by a privacy review)
    assert rows(db, "SELECT DISTINCT at FROM consents WHERE source = 'erase'") == [asked]
    again = cli("restore", str(copy), "--db", str(db))  # once more: the replaced one had the marker again
    assert again.exit_code == 0 and "Erased again: 1" in again.stdout


def test_a_restore_erases_again_who_was_erased_before_and_after_the_backup(db: Path, tmp_path: Path) -> None:
    """Found by a review: someone erased, back, backed up, then erased again was named by a marker
    in both databases, and the restore brought back what they did in between. Markers are
    compared by consent id (ids only grow); a user id a marker names is erased as one (a restore stopped with a
    traceback on one that did not look like Meta's)."""
    assert cli("business", "add", "Forno", "--db", str(db)).exit_code == 0

    def opt_in(version: str, *again: str) -> None:
        added = cli("optin", "add", "+39 347 123 4567", "--topic", "orders", "--text", "Order updates", "--version",
                    version, *again, "--db", str(db))  # fmt: skip
        assert added.exit_code == 0, added.output

    opt_in("1")
    assert cli("customer", "erase", "+39 347 123 4567", "--yes", "--db", str(db)).exit_code == 0
    opt_in("2", "--renewed")  # they came back
    copy = tmp_path / "between.db"
    assert cli("backup", str(copy), "--db", str(db)).exit_code == 0
    assert cli("customer", "erase", "+39 347 123 4567", "--yes", "--db", str(db)).exit_code == 0
    with closing(sqlite3.connect(db)) as live:  # an erasure of a user id of a form no rule of ours knows
        live.execute("INSERT INTO consents (business_id, user_id, topic, state, at, source, wording)"
                     " VALUES (1, 'it.7f3a-9c', '*', 'out', 2000000000, 'erase', 'Erased')")  # fmt: skip
        live.commit()
    restored = cli("restore", str(copy), "--db", str(db))
    assert restored.exit_code == 0, restored.output
    assert "Erased again: 2 numbers or user ids" in restored.stdout, restored.stdout + restored.stderr
    assert ("393471234567", "in") not in rows(db, "SELECT phone, state FROM consents")
    assert ("it.7f3a-9c", "out", "erase") in rows(db, "SELECT user_id, state, source FROM consents")
    markers = rows(db, "SELECT business_id, phone, user_id, at FROM consents WHERE source = 'erase'")
    assert len(markers) == len(set(markers))  # each erasure's marker once (a privacy review found them doubled)
    assert (1, None, "it.7f3a-9c", 2000000000) in markers  # with the time it was asked for, not the restore's


def test_a_backup_with_a_transaction_cut_short_is_not_restored_half_done(db: Path, tmp_path: Path) -> None:
    """Found by a review: a backup edited by another tool (the sqlite3 shell) and cut short left a
    hot -journal; read as immutable, the transaction's half was restored as if committed."""
    copy = tmp_path / "edited.db"
    assert cli("backup", str(copy), "--db", str(db)).exit_code == 0
    with closing(sqlite3.connect(copy)) as edit:
        edit.execute("CREATE TABLE filler (v)")
        edit.executemany("INSERT INTO filler VALUES (?)", [("a" * 200,)] * 2000)
        edit.commit()
    script = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA cache_size = 2');"
              " c.execute('BEGIN'); c.execute(\"UPDATE filler SET v = replace(v, 'a', 'b')\"); os._exit(0)")
    subprocess.run([sys.executable, "-c", script, str(copy)], check=True)
    assert Path(f"{copy}-journal").exists()
    before = slugs(db)
    refused = cli("restore", str(copy), "--db", str(db))
    assert refused.exit_code == 1 and "is not a sound clicktochat backup" in refused.stderr
    assert slugs(db) == before  # the database left as it was


def test_a_restore_over_a_damaged_database_warns_that_erasures_may_be_undone(db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "backup.db"
    assert cli("backup", str(copy), "--db", str(db)).exit_code == 0
    with db.open("r+b") as file:  # the header and the schema's page: nothing can be read
        file.seek(100)
        file.write(b"\xff" * 4000)
    restored = cli("restore", str(copy), "--db", str(db))
    assert restored.exit_code == 0, restored.output
    assert "could not be read, so people erased since this backup was taken may be in it again" in restored.stderr


# -- the lock: what restore tells "in use" by ------------------------------------------------


def test_an_open_store_holds_the_database_and_a_restore_holds_off_stores(db: Path, tmp_path: Path) -> None:
    saved = tmp_path / "saved.db"
    backup(db, saved)

    async def with_store_open() -> None:
        store = await Store.open(str(db))
        try:
            with pytest.raises(InUse, match="in use by a running clicktochat"):
                restore(saved, db)
        finally:
            await store.close()
        restore(saved, db)  # closed: free again

    asyncio.run(with_store_open())

    async def open_store() -> Store:
        return await Store.open(str(db))

    with DatabaseLock(db, exclusive=True), pytest.raises(InUse, match=r"is being restored \(clicktochat restore\)"):
        asyncio.run(open_store())
    asyncio.run(asyncio.run(open_store()).close())  # and free once the restore is done


def test_two_stores_share_the_database(db: Path) -> None:
    async def both() -> None:
        first, second = await Store.open(str(db)), await Store.open(str(db))
        await first.set_meta("x", "1")
        assert await second.get_meta("x") == "1"
        await first.close()
        await second.close()

    asyncio.run(both())


@pytest.mark.e2e
def test_a_server_killed_with_9_leaves_no_stale_lock(db: Path, tmp_path: Path) -> None:
    port = free_port()
    with serve(db, port) as server:
        server.kill()
        server.wait(30)
    with DatabaseLock(db, exclusive=True):  # the kernel dropped the dead server's lock
        pass


def test_the_lock_file_is_given_to_the_databases_owner_when_root_opens_it(db: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a file away")
    Path(f"{db}-lock").unlink(missing_ok=True)
    os.chown(db.parent, 65534, 65534)
    os.chown(db, 65534, 65534)
    with DatabaseLock(db):
        assert Path(f"{db}-lock").stat().st_uid == 65534


# -- PostgreSQL: its own tools ---------------------------------------------------------------------

PG_URL = "postgresql://shop:s3cret-pw@db.internal:5432/clicktochat"


def test_backup_and_restore_of_a_postgresql_database_name_pg_dump_and_pg_restore(tmp_path: Path) -> None:
    """Refused before anything is opened or written (db.internal is never looked up), with the
    tool to use instead, and without the password."""
    for args, tool in ((("backup", str(tmp_path / "copy.db")), "pg_dump --format=custom"),
                       (("restore", str(tmp_path / "copy.db")), "pg_restore --clean")):  # fmt: skip
        done = cli(*args, "--db", PG_URL)
        assert done.exit_code == 1 and isinstance(done.exception, SystemExit), done.output
        assert done.stderr.startswith("Error: postgresql://shop@db.internal:5432/clicktochat is a PostgreSQL "
                                      "database: this command copies SQLite files.")  # fmt: skip
        assert tool in done.stderr and "s3cret-pw" not in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
    from_env = CliRunner().invoke(main, ["backup", str(tmp_path / "copy.db")], env={"CLICKTOCHAT_DB": PG_URL})
    assert from_env.exit_code == 1 and "pg_dump" in from_env.stderr


def test_a_postgresql_database_has_no_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotAFile, match="PostgreSQL database, not a file: it has no lock file") as refused:
        DatabaseLock(PG_URL, exclusive=True)
    assert "pg_restore" in str(refused.value) and "s3cret-pw" not in str(refused.value)
    assert list(tmp_path.rglob("*")) == []  # no file named after the URL


def test_the_database_and_its_backups_are_readable_by_their_owner_only(db: Path, tmp_path: Path) -> None:
    """They hold the signing keys and the WhatsApp secrets (a new user found them -rw-r--r--)."""
    old = os.umask(0o022)  # the usual umask, whatever the test runner's
    try:
        fresh = tmp_path / "fresh.db"
        made(fresh, "vetrina")
        copy = tmp_path / "backups" / "copy.db"
        copy.parent.mkdir()
        assert cli("backup", str(copy), "--db", str(fresh)).exit_code == 0
    finally:
        os.umask(old)
    for path in (fresh, fresh.with_name("fresh.db-wal"), copy):
        if path.exists():
            assert path.stat().st_mode & 0o777 == 0o600, path
    existing = tmp_path / "shared.db"
    existing.touch(mode=0o640)  # an owner's own choice (a group that reads it) is kept
    existing.chmod(0o640)
    made(existing, "banco")
    assert existing.stat().st_mode & 0o777 == 0o640


def test_a_restore_through_a_symlink_sees_the_server_on_the_real_path_and_keeps_the_link(
    db: Path, tmp_path: Path
) -> None:
    copy = backup(db, tmp_path / "copy.db")
    link = tmp_path / "link" / "clicktochat.db"
    link.parent.mkdir()
    link.symlink_to(db)
    held = DatabaseLock(db)  # a server, started with the real path
    try:
        with pytest.raises(InUse):
            restore(copy.path, link)
    finally:
        held.release()
    done = restore(copy.path, link)
    assert link.is_symlink() and link.resolve() == db and done.db == db
    assert done.aside is not None and done.aside.parent == db.parent and not done.aside.is_symlink()
