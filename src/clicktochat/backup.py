"""Backing up and restoring the SQLite database with nothing but Python: SQLite's online backup
API (`sqlite3.Connection.backup`) copies a consistent snapshot while a server keeps writing (in
WAL mode a reader never blocks the writer, and one step copies every page under one read
transaction), and `PRAGMA integrity_check` reads every page of the copy before it is trusted.

A restore refuses while anything holds the database (see `dblock`), checks the backup (a
clicktochat database, sound, of a schema this version knows) on a copy next to the database,
moves the current file aside (with its -wal, so nothing in it is lost) and puts the copy in its
place. The server brings an older schema up to date when it starts, as after any upgrade.
A restore reports who was erased since the backup was taken (the replaced database's opt-out
markers), for `clicktochat restore` to erase them again: an erasure is for ever."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .dblock import DatabaseLock, InUse, lock_path
from .journal import drain_file, journal_dir
from .storedb import made_by_newer, migrations, moved_to, private

HEADER = b"SQLite format 3\x00"
REQUIRED_TABLES = ("meta", "signing_keys", "links")
"""In every clicktochat database since migration 001: what tells ours from any SQLite file."""


class BackupError(Exception):
    """What is wrong, in words for the person who typed the command."""


@dataclass(frozen=True)
class Checked:
    path: Path
    size: int
    schema: int  # PRAGMA user_version: the last migration applied


@dataclass(frozen=True)
class Restored:
    backup: Checked
    db: Path
    aside: Path | None  # where the database that was replaced now is
    erased_since: list[tuple[Person, int]] = field(default_factory=list)  # to erase again, with when they were
    erasures_unread: bool = False  # the replaced database's markers could not be read (damaged)


Person = tuple[str, str]  # ("phone", E.164 digits) or ("user_id", the id as Meta gave it)


def erasures(db: Path) -> dict[Person, tuple[int, int]] | None:
    """Each number's and user id's last erasure: the id of the opt-out marker it left
    (`customerstore.erase_customer`: consents' ids only grow, so a backup holds none of the
    markers made after it, even in the same second) and its time; None if the database cannot be read."""
    try:
        with closing(_at_rest(db)) as conn:
            tables = _tables(conn)
            if "consents" not in tables:  # from before the consents (migration 005): nobody erased
                return {}
            rows = conn.execute("SELECT phone, user_id, max(id), max(at) FROM consents WHERE source = 'erase'"
                                " GROUP BY phone, user_id").fetchall()  # fmt: skip
    except sqlite3.Error:
        return None
    found: dict[Person, tuple[int, int]] = {}
    for phone, user_id, marker, at in rows:
        for person in (("phone", phone), ("user_id", user_id)):
            if person[1]:
                found[person] = max(found.get(person, (marker, at)), (marker, at))
    return found


def erased_since(replaced: dict[Person, tuple[int, int]],
                 restored: dict[Person, tuple[int, int]]) -> list[tuple[Person, int]]:  # fmt: skip
    """Who was erased after the backup was taken, and when: erased later in the replaced
    database than in the backup, or not at all there (someone erased, back, then erased again
    is one of them)."""
    return sorted((person, at) for person, (marker, at) in replaced.items()
                  if marker > restored.get(person, (-1, 0))[0])  # fmt: skip


def latest_schema() -> int:
    return migrations()[-1][0]


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def backup(db: Path, target: Path, now: datetime | None = None, folder: bool = False) -> Checked:
    """Copy `db` to `target` (a file, or a folder to put `<name>-<UTC time>.db` in; `folder`: it
    is one, made if missing, in a folder that exists: a typo higher up is an error, not a new
    tree of folders), safe while a server writes. The copy is written beside the target,
    checked, then renamed over it: a failed backup never leaves a half-written file under the
    target's name."""
    if not db.is_file():
        raise BackupError(f"there is no database at {db}")
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)) as conn:
        where = moved_to(conn)
    if where is not None:  # a cron line left from before the move would report a backup of nothing that matters
        raise BackupError(f"{db} was copied to {where} (clicktochat db copy): the installation lives there "
                          "now; back it up with pg_dump --format=custom --file=clicktochat.dump 'postgresql://...'")
    if folder:
        if not target.parent.is_dir():
            raise BackupError(f"the folder {target.parent} does not exist")
        try:
            target.mkdir(mode=0o750, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot make the folder {target}: {exc.strerror}") from None
    if target.is_dir():
        target = target / f"{db.stem}-{stamp(now)}.db"
    if target.exists():
        if target.resolve() == db.resolve():
            raise BackupError(f"{target} is the database itself: give another file or a folder")
        if not is_sqlite(target):
            raise BackupError(f"{target} exists and is not an SQLite database: not overwriting it")
        _replaceable(target)
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    try:
        drain_file(db)  # webhook bodies acknowledged to Meta and still in the journal belong in the copy
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)) as source:
            _copy(source, partial)
        _mark(partial, json.dumps({"of": str(db), "at": stamp(now)}))
        checked = check(partial, shown=db)
        _sync(partial)
        os.replace(partial, target)
        _sync(target.parent)
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"cannot back up {db}: {exc}") from None
    finally:
        _remove(partial)
    return Checked(target, checked.size, checked.schema)


def restore(source: Path, db: Path, now: datetime | None = None) -> Restored:
    """Put the backup `source` in the place of `db`, once nobody has `db` open (else `InUse`).
    Through a symlink, the file it points to is replaced, and the link kept."""
    db = db.resolve()
    if not source.is_file():
        raise BackupError(f"there is no backup at {source}")
    if db.exists() and source.resolve() == db.resolve():
        raise BackupError(f"{source} is the database itself")
    if not db.parent.is_dir():
        raise BackupError(f"the folder {db.parent} does not exist")
    incoming = db.with_name(db.name + ".restoring")
    with DatabaseLock(db, exclusive=True):
        if db.is_file() and is_sqlite(db):
            with closing(_at_rest(db)) as conn:
                where = moved_to(conn)
            if where is not None:  # an old runbook would bring back the file the move retired
                raise BackupError(f"{db} was copied to {where} (clicktochat db copy): the installation lives "
                                  "there now; restore PostgreSQL with pg_restore. To restore this file anyway, "
                                  f"first: clicktochat db reopen --db {db}")  # fmt: skip
        try:
            try:
                with closing(_at_rest(source)) as backup_file:
                    _copy(backup_file, incoming)
            except sqlite3.Error as exc:
                raise BackupError(f"{source} is not a sound clicktochat backup: {exc}") from None
            checked = check(incoming, shown=source)
            # People erased after the backup was taken are in it again: the CLI erases them anew.
            replaced = erasures(db) if db.exists() else {}
            lost = erased_since(replaced, erasures(incoming) or {}) if replaced is not None else []
            _mark(incoming, None)  # a database again (WAL, unmarked): no backup that `backup` may replace
            _sync(incoming)
            journal = journal_dir(db)  # what a killed server left in its journal goes with the database set aside
            aside = _move_aside(db, now) if db.exists() else None
            if journal.is_dir():
                _set_journal_aside(journal, db, aside, now)
            os.replace(incoming, db)
            _sync(db.parent)
        except OSError as exc:
            raise BackupError(f"cannot restore into {db}: {exc}") from None
        finally:
            for suffix in ("", "-wal", "-shm"):
                _remove(Path(f"{incoming}{suffix}"))
    if aside is not None:
        _tidy(aside)
    return Restored(Checked(source, checked.size, checked.schema), db, aside, lost, replaced is None)


def _remove(path: Path) -> None:
    """A half-written copy cleared away, if it can be: on a read-only volume even the unlink of
    a file that is not there fails, and its error must not hide the one that says why."""
    with suppress(OSError):
        path.unlink(missing_ok=True)


def check(path: Path, shown: Path | None = None) -> Checked:
    """A clicktochat database whose every page reads back whole, of a schema this version knows."""
    name = shown or path
    if not is_sqlite(path):
        raise BackupError(f"{name} is not an SQLite database")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check(3)")]
            if problems != ["ok"]:
                found = [line for text in problems for line in text.splitlines() if not line.startswith("***")]
                raise BackupError(f"{name} is damaged: " + "; ".join(found))
            (schema,) = db.execute("PRAGMA user_version").fetchone()
            tables = _tables(db)
    except sqlite3.Error as exc:
        raise BackupError(f"{name} is damaged: {exc}") from None
    if schema < 1 or not set(REQUIRED_TABLES) <= tables:
        raise BackupError(f"{name} is an SQLite database, but not clicktochat's")
    if schema > latest_schema():
        raise BackupError(f"{name} was {made_by_newer(schema, latest_schema())}")
    return Checked(path, path.stat().st_size, int(schema))


def _at_rest(path: Path) -> sqlite3.Connection:
    """A file nobody writes (a backup, a database under restore's lock), read without leaving
    anything beside it: with no -wal or -journal, as immutable (a read-only open of a file in WAL
    mode leaves an empty -wal and -shm behind, and a -wal beside a backup makes it look in use;
    found by a review); with one, read-only: a -wal's pages are read, and a hot -journal (a
    transaction cut short) is refused rather than read half-done, as immutable would."""
    mode = "mode=ro" if any(Path(f"{path}{s}").exists() for s in ("-wal", "-journal")) else "immutable=1"
    return sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)


def _mark(path: Path, value: str | None) -> None:
    """The `backup` key in a copy's meta table: what `backup` may write over (None: taken away, and
    the file put in WAL mode, as a database the server runs on)."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("DELETE FROM meta WHERE key = 'backup'")
        if value is not None:
            db.execute("INSERT INTO meta (key, value) VALUES ('backup', ?)", (value,))
        db.commit()
        if value is None:
            db.execute("PRAGMA journal_mode = WAL")  # as the server keeps it


def _replaceable(target: Path) -> None:
    """An earlier backup, which `backup` may write over: marked as one (looked into with the CLI
    or not; a server that runs on it takes the mark away: `Service.open`), or, from before the
    mark, never opened as a database (still in rollback-journal mode); and nobody's in use.
    Never a live database (found by a review: a running server's file was replaced under it,
    its -wal then replayed into the copy) nor another application's file."""
    refusal = f"{target} is a clicktochat database, not a backup: not overwriting it (to put a backup in a " \
              "database's place, stop its server and use clicktochat restore; to replace it anyway, delete it first)"
    if Path(f"{target}-wal").exists():  # a backup has none: a database in use, or left by a crash
        raise BackupError(refusal)
    if lock_path(target).exists():
        try:
            DatabaseLock(target, exclusive=True).release()
        except InUse:
            raise BackupError(f"{target} is in use by a running clicktochat: not overwriting it") from None
    try:
        with closing(_at_rest(target)) as db:
            tables = _tables(db)
            marked = "meta" in tables and db.execute("SELECT 1 FROM meta WHERE key = 'backup'").fetchone()
        with target.open("rb") as file:
            wal = file.read(20)[18] == 2  # the header's write version: 2 once a connection put it in WAL mode
    except (sqlite3.Error, OSError, IndexError):
        tables, marked, wal = set(), None, False
    if not set(REQUIRED_TABLES) <= tables:
        raise BackupError(f"{target} is an SQLite database, but not a clicktochat backup: not overwriting it")
    if not marked and wal:  # a database a server or command ran on (a server takes the mark away)
        raise BackupError(refusal)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(HEADER)) == HEADER
    except OSError:
        return False


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """Every page in one step (a consistent snapshot), into a file of its own: rollback journal
    mode, so the copy is one file with no -wal beside it."""
    target.unlink(missing_ok=True)
    private(str(target))  # a backup holds what the database does: the owner's eyes only
    with closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")


def _set_journal_aside(journal: Path, db: Path, aside: Path | None, now: datetime | None) -> None:
    """The webhook journal's folder beside the database set aside (or, with none, renamed on
    its own), never moved into the restored one; if that fails, the database goes back."""
    target = journal_dir(aside) if aside else journal.with_name(f"{journal.name}.before-restore-{stamp(now)}")
    try:
        journal.rename(target)
    except OSError as exc:
        if aside is not None:
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{aside}{suffix}").exists():
                    os.replace(Path(f"{aside}{suffix}"), Path(f"{db}{suffix}"))
        raise BackupError(f"cannot set the webhook journal {journal} aside ({exc.strerror}): nothing was restored"
                          ) from None  # fmt: skip


def _move_aside(db: Path, now: datetime | None) -> Path:
    """`db` and its -wal and -shm renamed together: the -wal may hold the last writes."""
    aside = db.with_name(f"{db.name}.before-restore-{stamp(now)}")
    n = 1
    while aside.exists() or journal_dir(aside).exists():
        n += 1
        aside = db.with_name(f"{db.name}.before-restore-{stamp(now)}-{n}")
    os.replace(db, aside)
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{db}{suffix}")
        if companion.exists():
            os.replace(companion, Path(f"{aside}{suffix}"))
    return aside


def _tidy(aside: Path) -> None:
    """Fold the set-aside database's -wal into it, so it is one file to keep (or to restore). It
    stays in WAL mode: a database, which `backup` never writes over (found by a new user)."""
    with suppress(sqlite3.Error), closing(sqlite3.connect(aside)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _sync(path: Path) -> None:
    """Written to disk before it is renamed into place (a file), or the rename itself (a folder)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
