"""The CLI's `backup` and `restore` (issue 12): thin commands over `clicktochat.backup`, added to
the `clicktochat` group by `clicktochat.cli`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .backup import BackupError, backup, latest_schema, restore
from .database import is_postgres, redacted
from .dblock import InUse
from .settings import Settings

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
    try:
        made = backup(source, Path(path), folder=path.endswith(("/", os.sep)))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backed up {source} to {made.path} ({size(made.size)}, schema {made.schema}, integrity checked)")


@click.command("restore")
@db_option
@click.argument("path", type=click.Path(path_type=Path))
def restore_command(db: str | None, path: Path) -> None:
    """Replace the database with the backup at PATH, after checking it. Stop the server first:
    this refuses while anything has the database open. The replaced database is kept beside it."""
    target = database(db, "Stop the servers, then restore a pg_dump with PostgreSQL's own tool: pg_restore --clean "
                          "--if-exists --dbname='postgresql://...' clicktochat.dump")  # fmt: skip
    try:
        done = restore(path, target)
    except InUse as exc:
        raise click.ClickException(f"{exc}: stop it first (systemctl stop clicktochat, docker compose stop, "
                                   "or Ctrl-C), then restore") from None  # fmt: skip
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Restored {target} from {path} ({size(done.backup.size)}, schema {done.backup.schema}, "
               "integrity checked)")  # fmt: skip
    if done.aside is not None:
        click.echo(f"The database it replaced is kept as {done.aside}")
    if done.backup.schema < latest_schema():
        click.echo(f"The server brings it from schema {done.backup.schema} to {latest_schema()} when it starts")
