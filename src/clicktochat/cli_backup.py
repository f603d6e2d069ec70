"""The CLI's `backup` and `restore` (issue 12) and `db copy` (issue 13): thin commands over
`clicktochat.backup` and `clicktochat.dbcopy`, added to the `clicktochat` group by `clicktochat.cli`."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

import click

from .backup import BackupError, Person, backup, is_sqlite, latest_schema, restore
from .database import failures, is_postgres, redacted, scrubbed
from .dbcopy import CopyError, Count, Mismatch, copy
from .dblock import DatabaseLock, InUse
from .journal import journal_dir, segments
from .settings import Settings, well_formed
from .store import Store
from .storedb import MOVED, OlderSchema, moved_to

F = TypeVar("F", bound=Callable[..., Any])


def db_option(command: F) -> F:
    """Only --db: these commands write no links, so --base-url means nothing to them."""
    return click.option("--db", help="SQLite database file [env: CLICKTOCHAT_DB; default: clicktochat.db]. "
                        "On PostgreSQL, use pg_dump and pg_restore.")(command)  # fmt: skip


def database(db: str | None, instead: str) -> Path:
    """The SQLite file; a PostgreSQL URL is refused with the command to use `instead`."""
    try:
        target = Settings.from_env(db=db).db
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if is_postgres(target):
        raise click.ClickException(f"{redacted(target)} is a PostgreSQL database: this command copies SQLite files. "
                                   f"{instead}")  # fmt: skip
    return Path(target)


def size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


@click.command("backup")
@db_option
@click.argument("path")
def backup_command(db: str | None, path: str) -> None:
    """Copy the database to PATH (a file, or a folder to put a dated copy in: made if PATH ends
    with /), safely while the server runs, and check the copy. An existing backup at PATH is
    replaced once the new one is checked."""
    source = database(db, "Back it up with PostgreSQL's own tool: pg_dump --format=custom --file=clicktochat.dump "
                          "'postgresql://...'")  # fmt: skip
    no_url(path, "PATH", "a file or a folder to copy the database to")
    try:
        made = backup(source, Path(path), folder=path.endswith(("/", os.sep)))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up {source} to {made.path} ({size(made.size)}, schema {made.schema}, integrity checked)")


def no_url(value: str, name: str, wanted: str) -> None:
    """A URL where a file goes: refused without repeating it (it may hold a password)."""
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        raise click.ClickException(f"{name} is {wanted}, not a URL")


@click.command("restore")
@db_option
@click.argument("path")
def restore_command(db: str | None, path: str) -> None:
    """Replace the database with the backup at PATH, after checking it. Stop the server first:
    this refuses while anything has the database open. The replaced database is kept beside it."""
    target = database(db, "Stop the servers, then restore a pg_dump with PostgreSQL's own tool: pg_restore --clean "
                          "--if-exists --dbname='postgresql://...' clicktochat.dump")  # fmt: skip
    no_url(path, "PATH", "the backup file to restore")
    try:
        done = restore(Path(path), target)
    except InUse as exc:
        raise click.ClickException(f"{exc}: stop it first (systemctl stop clicktochat, docker compose stop, "
                                   "or Ctrl-C), then restore") from None  # fmt: skip
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored {target} from {path} ({size(done.backup.size)}, schema {done.backup.schema}, "
               "integrity checked)")  # fmt: skip
    if done.aside is not None:
        click.echo(f"The database it replaced is kept as {done.aside}")
        if segments(journal_dir(done.aside)):
            click.echo(f"Webhook bodies its server had not moved yet are in {journal_dir(done.aside)}: "
                       f"`clicktochat backup COPY --db {done.aside}` moves them into it, and copies it")  # fmt: skip
    if done.erasures_unread:
        click.echo(f"Warning: the database it replaced could not be read, so people erased since this backup was "
                   f"taken may be in it again: look for erasures (consents from source 'erase') in {done.aside} "
                   "and erase them again with clicktochat customer erase", err=True)  # fmt: skip
    if done.erased_since:
        erase_again(target, done.erased_since)
    elif done.backup.schema < latest_schema():
        click.echo(f"The server brings it from schema {done.backup.schema} to {latest_schema()} when it starts")


def erase_again(db: Path, people: list[tuple[Person, int]]) -> None:
    """Who was erased after the backup was taken is in it again: erased anew (the database is
    brought up to date first, as the server would), so that a restore never undoes an erasure.
    Each person on their own: one that fails is said, and the others are still erased."""
    from . import customers  # the WhatsApp side, only when someone must be erased
    from .service import Service

    async def work() -> int:
        failed = 0
        service = await Service.open(Settings.from_env(db=str(db)), upgrade=True)
        try:
            for (kind, value), at in people:  # the markers say when they asked, not when the backup came back
                try:
                    phone, user_id = (value, None) if kind == "phone" else (None, value)
                    await customers.erase_person(service, phone, user_id, marked_at=at)
                except Exception as exc:  # noqa: BLE001 - said, and the next person still erased
                    failed += 1
                    click.echo(f"Could not erase a {kind.replace('_', ' ')} again: {exc}", err=True)
        finally:
            await service.close()
        return failed

    failed = asyncio.run(work())
    n = len(people) - failed
    click.echo(f"Erased again: {n} number{'s' * (n != 1)} or user id{'s' * (n != 1)} erased after this backup was "
               "taken (the replaced database kept their opt-out markers); the restored database is at the current "
               "schema")  # fmt: skip
    if failed:
        raise click.ClickException(f"{failed} could not be erased again: run clicktochat customer erase for each")


@click.group("db")
def db_group() -> None:
    """The database as a whole: bringing an older one up to date; moving an installation from its SQLite file to
    PostgreSQL."""


@db_group.command("upgrade")
@click.option("--db", help="SQLite database file, or a PostgreSQL URL [env: CLICKTOCHAT_DB; default: clicktochat.db].")
def db_upgrade(db: str | None) -> None:
    """Bring a database made by an older clicktochat up to date (as `serve` does when it starts;
    other commands refuse to). Stop an older server on it first: it cannot use it afterwards."""
    try:
        target = Settings.from_env(db=db).db
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not is_postgres(target) and not Path(target).exists():  # a typo must not make an empty database
        raise click.ClickException(f"there is no database at {target}")

    async def work() -> tuple[int | None, int]:
        found = None  # up to date already (or new)
        try:
            store = await Store.open(target, upgrade=False)
        except OlderSchema as exc:
            found = exc.found
            store = await Store.open(target)
        try:
            return found, await store.schema_version()
        finally:
            await store.close()

    try:
        found, now = asyncio.run(work())
    except failures(target) as exc:
        reason = scrubbed(str(exc), target)  # libpq may quote the URL's password
        raise click.ClickException(f"cannot use the database {redacted(target)}: {reason}") from None
    if found is None:
        click.echo(f"{redacted(target)} is already at schema {now}")
    else:
        click.echo(f"{redacted(target)} brought from schema {found} to {now}")


@db_group.command("reopen")
@click.option("--db", help="The SQLite file `db copy` copied [env: CLICKTOCHAT_DB; default: clicktochat.db].")
def db_reopen(db: str | None) -> None:
    """Use an SQLite file again after `db copy` copied it into PostgreSQL (servers and commands
    refuse it until then). What was done in PostgreSQL since the copy is not in it."""
    if db is not None:
        no_url(db, "--db", "the SQLite file `db copy` copied")
    source = Path(db) if db is not None else database(None, "Give the SQLite file to reopen with --db.")
    if not source.is_file() or not is_sqlite(source):
        raise click.ClickException(f"there is no SQLite database at {source}")
    try:
        with DatabaseLock(source, exclusive=True), closing(sqlite3.connect(source)) as lite, lite:
            where = moved_to(lite)
            lite.execute("DELETE FROM meta WHERE key = ?", (MOVED,))
    except InUse:
        raise click.ClickException(f"{source} is in use by a running clicktochat: stop it first") from None
    except sqlite3.Error as exc:
        raise click.ClickException(f"cannot use the database {source}: {exc}") from None
    if where is None:
        click.echo(f"{source} was not copied anywhere: nothing to do.")
    else:
        click.echo(f"{source} is the installation's database again (it had been copied to {where}; what was "
                   "done there since is not in it).")  # fmt: skip


@db_group.command("copy")
@click.option("--from", "given", default=None,
              help="The SQLite database to copy [default: CLICKTOCHAT_DB, else clicktochat.db].")  # fmt: skip
@click.option("--to", "target", required=True,
              help="An empty PostgreSQL database: postgresql://user:password@host:5432/name.")
def db_copy(given: str | None, target: str) -> None:
    """Copy every table of a SQLite database into an empty PostgreSQL database, check it (rows and
    totals of every table, compared before the copy is committed), and print the comparison.
    Stop the server first (the copy refuses while it runs); start it again with --db TARGET."""
    if given is not None:
        no_url(given, "--from", "the SQLite file to copy (into PostgreSQL, with --to)")
    source = Path(given) if given is not None else database(None, "Give the SQLite file to copy with --from.")
    if not is_postgres(target) or not well_formed(target):  # never repeated: it may hold a password
        raise click.ClickException("--to must be a PostgreSQL URL, postgresql://user:password@host:5432/name, its "
                               "password percent-encoded (@ is %40, # is %23, / is %2F, : is %3A, % is %25)")
    shown = redacted(target)
    try:
        done = copy(source, target)
    except Mismatch as exc:
        print_counts(exc.counts)
        raise click.ClickException(str(exc)) from None
    except CopyError as exc:
        raise click.ClickException(str(exc)) from None
    except failures(target) as exc:  # a refused connection, a wrong password, an unreadable file
        raise click.ClickException(f"cannot copy {source} to {shown}: {scrubbed(str(exc), target)}") from None
    if done.migrated_from is not None:
        click.echo(f"{source} was at schema {done.migrated_from}: brought up to {done.schema} first")
    print_counts(done.counts)
    click.echo(f"seen_visitors: {done.remembered} visitors of the last two days' clicks remembered in PostgreSQL, "
               "so that they are not new after the move (SQLite keeps none: one process recalls them itself)")
    click.echo(f"Copied {done.rows} rows in {len(done.counts)} tables from {source} to {shown}, every table "
               f"checked. Start the servers with CLICKTOCHAT_DB={shown}, the password in ~/.pgpass or PGPASSWORD"
               " (never on a command line, where ps shows it).")  # fmt: skip


def print_counts(counts: list[Count]) -> None:
    """A line per table: rows in SQLite, rows in PostgreSQL, and whether every total matched."""
    width = max(len("table"), *(len(count.table) for count in counts))
    click.echo(f"{'TABLE'.ljust(width)}  {'SQLITE':>10}  {'POSTGRESQL':>10}  CHECK")
    for count in counts:
        verdict = "ok" if count.same else "DIFFERS"
        click.echo(f"{count.table.ljust(width)}  {count.source[0]:>10}  {count.target[0]:>10}  {verdict}")
    for table, column, label in (("click_log", "n", "clicks counted"), ("click_log", "uniques", "unique clicks")):
        found = next((count for count in counts if count.table == table and column in count.names), None)
        if found is not None:
            before, after = found.total(column)
            click.echo(f"{label.ljust(width)}  {before:>10}  {after:>10}  {'ok' if before == after else 'DIFFERS'}")
