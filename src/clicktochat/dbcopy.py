"""`clicktochat db copy`: an installation's SQLite file moved into an empty PostgreSQL database
(issue 13), verified before it is committed.

- The source is brought to this version's schema first (as `serve` would), then read under an
  exclusive `dblock` lock (no server writes clicks that the copy would miss) in one read
  transaction (one consistent snapshot).
- The target is migrated (`Store.open`), must hold nothing the copy writes (only the rows its
  migrations seed), and is written in one transaction: every table of the SQLite schema, parents
  before children (by the foreign keys SQLite declares; a cycle, `businesses.fallback_agent_id`
  and `agents.business_id`, is broken by writing the nullable column after), streamed with COPY.
  PostgreSQL's columns that stand for SQLite's rowid (`click_refs.id`, `widgets.row_id`) are given
  the rowid. Every identity sequence is then moved past the largest id copied.
- Before COMMIT, each table's rows and the sum of each of its integer columns (ids, times, click
  counts) are read back from both sides and compared: any difference rolls the copy back."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .backup import REQUIRED_TABLES, is_sqlite, latest_schema
from .database import is_postgres, redacted, scrubbed
from .dblock import DatabaseLock, InUse
from .journal import drain_file
from .store import Store
from .storedb import MOVED, made_by_newer, migrations, moved_to
from .visitors import DAY

BATCH = 5_000
"""Rows read from SQLite at a time while streaming a table into COPY."""
COPY_LOCK = 0x0C71C7C0B9
"""PostgreSQL advisory lock held while copying: two copies into one database queue up."""
VISITORS_RECALLED = 2 * DAY
"""Seconds before the newest click whose visitors the copy writes into seen_visitors."""
ROWID_COLUMNS = {"click_refs": "id", "widgets": "row_id"}
"""PostgreSQL's own column for what SQLite calls rowid (migrations_pg/011_schema.sql)."""


class CopyError(Exception):
    """What is wrong, in words for the person who typed the command."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[str]  # SQLite's, in order
    integers: list[str]  # the columns declared INTEGER: summed on both sides to verify
    key: list[str]  # primary key, to write deferred columns afterwards
    rowid: bool  # not WITHOUT ROWID: read in rowid order
    references: dict[str, str] = field(default_factory=dict)  # column: the table its foreign key names
    nullable: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Count:
    table: str
    names: tuple[str, ...]  # "rows", then the table's integer columns
    source: tuple[int, ...]  # the number of rows, then the sum of each integer column
    target: tuple[int, ...]

    def total(self, name: str) -> tuple[int, int]:
        """(source, target) of "rows" or of a column's sum."""
        at = self.names.index(name)
        return self.source[at], self.target[at]

    @property
    def same(self) -> bool:
        return self.source == self.target


@dataclass(frozen=True)
class Copied:
    schema: int
    migrated_from: int | None  # the source's schema before this copy brought it up to date
    counts: list[Count]
    remembered: int = 0  # visitors of the last clicks written into seen_visitors, after the comparison

    @property
    def rows(self) -> int:
        return sum(count.source[0] for count in self.counts)


def copy(source: Path, target: str) -> Copied:
    """Copy the SQLite database `source` into the PostgreSQL database at `target`; CopyError for
    anything the person can act on (a running server, a non-empty target, a newer source)."""
    if not is_postgres(target):
        raise CopyError("--to must be a PostgreSQL URL (postgresql://user:password@host:5432/name)")  # not shown:
        # whatever was given may hold a password
    before = _source_schema(source)
    try:
        import psycopg
    except ImportError:
        raise CopyError("copying to PostgreSQL needs psycopg: pip install 'clicktochat[postgresql]'") from None
    with _alone(source):  # a server running on it, older perhaps: refused before migrating anything under it
        pass
    if before < latest_schema():
        asyncio.run(_migrate(str(source)))
    asyncio.run(_migrate(target))

    try:
        with _alone(source):
            drain_file(source)  # webhook bodies a server left in its journal
            with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as lite:
                lite.execute("BEGIN")  # one snapshot for every table
                tables = _tables(lite)
                with psycopg.connect(target) as pg:
                    counts, remembered = _copy_all(lite, pg, tables)
            _mark_moved(source, target)  # still alone: no server starts on it between the two
    except psycopg.Error as exc:
        raise CopyError(f"cannot copy into {redacted(target)}: {scrubbed(str(exc), target).strip()}") from None
    except sqlite3.Error as exc:
        raise CopyError(f"cannot read {source}: {exc}") from None
    return Copied(latest_schema(), before if before < latest_schema() else None, counts, remembered)


def _source_schema(source: Path) -> int:
    if not source.is_file():
        raise CopyError(f"there is no database at {source}")
    if not is_sqlite(source):
        raise CopyError(f"{source} is not an SQLite database")
    try:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as db:
            (schema,) = db.execute("PRAGMA user_version").fetchone()
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise CopyError(f"cannot read {source}: {exc}") from None
    if schema < 1 or not set(REQUIRED_TABLES) <= names:
        raise CopyError(f"{source} is an SQLite database, but not clicktochat's")
    if schema > latest_schema():
        raise CopyError(f"{source} was {made_by_newer(schema, latest_schema())}")
    with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as db:
        where = moved_to(db)
    if where is not None:
        raise CopyError(f"{source} was copied to {where} already. To copy it again (into another empty database), "
                        f"first: clicktochat db reopen --db {source}")  # fmt: skip
    return int(schema)


def _mark_moved(source: Path, target: str) -> None:
    """The source says where it went: a server or a backup started on it by an old setting (the
    unit file, the cron line) is refused, not left working on what nobody sees (storedb.Moved)."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with closing(sqlite3.connect(source)) as db, db:
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   (MOVED, f"{redacted(target)} on {when}"))  # fmt: skip


async def _migrate(db: str) -> None:
    await (await Store.open(db)).close()


def _tables(lite: sqlite3.Connection) -> list[Table]:
    """The SQLite schema's tables, parents first."""
    found: dict[str, Table] = {}
    listed = lite.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                          "ORDER BY rowid").fetchall()  # fmt: skip
    for name, sql in listed:
        info = lite.execute("SELECT name, type, pk, \"notnull\" FROM pragma_table_info(?) ORDER BY cid",
                            (name,)).fetchall()  # fmt: skip
        keys = lite.execute("SELECT \"from\", \"table\" FROM pragma_foreign_key_list(?)", (name,)).fetchall()
        found[name] = Table(
            name, [row[0] for row in info], [row[0] for row in info if row[1].upper().startswith("INT")],
            [row[0] for row in sorted(info, key=lambda row: row[2]) if row[2]],
            not re.search(r"WITHOUT\s+ROWID", sql, re.I), dict(keys),
            {row[0] for row in info if not row[3] and not row[2]},  # a key column is never NULL on PostgreSQL
        )  # fmt: skip
    return list(found.values())


def order(tables: list[Table]) -> tuple[list[Table], dict[str, list[str]]]:
    """`tables` with parents first, and per table the columns to write once every row exists: a
    cycle of foreign keys is broken at a nullable one (a table's references to itself wait for no one)."""
    left, done, ordered = {t.name: t for t in tables}, set[str](), list[Table]()
    deferred: dict[str, list[str]] = {}

    def waits(table: Table) -> set[str]:
        later = deferred.get(table.name, [])
        return {parent for column, parent in table.references.items() if column not in later} - {table.name}

    while left:
        ready = [table for table in left.values() if waits(table) <= done]
        if not ready:  # a cycle: best, the one nullable column whose deferral lets its table go
            candidates = [(t, c) for t in left.values() for c, p in t.references.items()
                          if c in t.nullable and p in left and p != t.name and c not in deferred.get(t.name, [])]
            if not candidates:
                raise CopyError(f"the tables {', '.join(left)} refer to each other through columns that cannot be "
                                "empty: no order can copy them")  # fmt: skip
            freeing = [(t, c) for t, c in candidates
                       if {p for k, p in t.references.items() if k != c and k not in deferred.get(t.name, [])}
                       - {t.name} <= done]  # fmt: skip
            table, column = (freeing or candidates)[0]
            deferred.setdefault(table.name, []).append(column)
            continue
        for table in ready:
            ordered.append(left.pop(table.name))
            done.add(table.name)
    return ordered, deferred


@contextmanager
def _alone(source: Path) -> Iterator[None]:
    try:
        lock = DatabaseLock(source, exclusive=True)
    except InUse:
        raise CopyError(f"{source} is in use by a running clicktochat (a server, or another command): stop it "
                        "first, so that no click arrives after the copy") from None  # fmt: skip
    with lock:
        yield


def _copy_all(lite: sqlite3.Connection, pg: Any, tables: list[Table]) -> tuple[list[Count], int]:
    ordered, deferred = order(tables)
    with pg.transaction():
        pg.execute("SELECT pg_advisory_xact_lock(%s)", (COPY_LOCK,))
        _check_target(pg, tables)
        for table in ordered:
            if table.name != "meta":
                _copy_table(lite, pg, table, deferred.get(table.name, []))
        for table in ordered:  # the columns that closed a cycle, now that every row exists
            for column in deferred.get(table.name, []):
                _write_column(lite, pg, table, column)
        meta = lite.execute("SELECT key, value FROM meta").fetchall()  # last: the copy's own writes bump
        with pg.cursor() as cursor:  # routing_version by the triggers; the source's value wins
            cursor.executemany("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                               "DO UPDATE SET value = excluded.value", meta)  # fmt: skip
        _move_sequences(lite, pg)
        counts = [Count(t.name, ("rows", *t.integers), _totals(lite, t), _totals(pg, t)) for t in tables]
        if not all(count.same for count in counts):
            raise Mismatch(counts)  # leaving the block rolls the transaction back
        remembered = _remember_visitors(pg)
    return counts, remembered


def _remember_visitors(pg: Any) -> int:
    """One process on SQLite recalls the last window's visitors from the raw rows when it starts;
    instances on PostgreSQL ask `seen_visitors` (sharedstore.decide_uniques), filled here from
    the same rows, so that someone who clicked just before the move is not a new visitor just
    after it. The two days before the newest click: a visitor's key holds a day's salt, and
    older keys are forgotten by the instances anyway."""
    return int(pg.execute(
        "INSERT INTO seen_visitors (visitor, last_at) SELECT visitor, max(at) FROM clicks"
        " WHERE visitor IS NOT NULL AND robot IS NULL AND at >= (SELECT max(at) FROM clicks) - %s"
        " GROUP BY visitor ON CONFLICT (visitor) DO UPDATE SET last_at = GREATEST(seen_visitors.last_at,"
        " excluded.last_at)", (VISITORS_RECALLED,)).rowcount)


class Mismatch(CopyError):
    """The target read back differs from the source: the copy was rolled back."""

    def __init__(self, counts: list[Count]) -> None:
        self.counts = counts
        names = ", ".join(count.table for count in counts if not count.same)
        super().__init__(f"the copy differs from the source in {names}: nothing was written")


def _check_target(pg: Any, tables: list[Table]) -> None:
    """Refused unless every table the copy writes is empty, bar the rows migrations seed."""
    missing = [t.name for t in tables if pg.execute("SELECT to_regclass(%s)", (t.name,)).fetchone()[0] is None]
    if missing:
        raise CopyError(f"the target lacks the tables {', '.join(missing)}: is it clicktochat's schema?")
    full = [t.name for t in tables if t.name != "meta"
            and pg.execute(f'SELECT EXISTS (SELECT 1 FROM "{t.name}")').fetchone()[0]]  # fmt: skip
    seeded = sorted(seeded_meta())
    if pg.execute("SELECT EXISTS (SELECT 1 FROM meta WHERE NOT key = ANY(%s))", (seeded,)).fetchone()[0]:
        full.append("meta")
    if full:
        raise CopyError(f"the target is not empty ({', '.join(full)} hold rows): copy into a new, empty database "
                        "(createdb), so that nothing in it is overwritten or mixed")  # fmt: skip


def seeded_meta() -> set[str]:
    """The meta keys PostgreSQL's migrations insert themselves."""
    return {key for _number, script in migrations("migrations_pg")
            for key in re.findall(r"INSERT INTO meta \(key, value\) VALUES \('([^']+)'", script)}  # fmt: skip


def _copy_table(lite: sqlite3.Connection, pg: Any, table: Table, later: list[str]) -> None:
    columns = list(table.columns)
    select = [f'"{c}"' if c not in later else "NULL" for c in columns]
    if extra := ROWID_COLUMNS.get(table.name):
        columns.append(extra)
        select.append("rowid")
    order_by = " ORDER BY rowid" if table.rowid else ""
    rows = lite.execute(f'SELECT {", ".join(select)} FROM "{table.name}"{order_by}')
    names = ", ".join(f'"{c}"' for c in columns)
    with pg.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as stream:
        for row in _batches(rows):
            stream.write_row(row)


def _batches(rows: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    while batch := rows.fetchmany(BATCH):
        yield from batch


def _write_column(lite: sqlite3.Connection, pg: Any, table: Table, column: str) -> None:
    keys = ", ".join(f'"{k}"' for k in table.key)
    found = lite.execute(f'SELECT "{column}", {keys} FROM "{table.name}" WHERE "{column}" IS NOT NULL').fetchall()
    where = " AND ".join(f'"{k}" = %s' for k in table.key)
    with pg.cursor() as cursor:
        cursor.executemany(f'UPDATE "{table.name}" SET "{column}" = %s WHERE {where}', found)


def _move_sequences(lite: sqlite3.Connection, pg: Any) -> None:
    """Each identity (or serial) column's next value past the largest copied, and past the largest
    SQLite ever gave (sqlite_sequence, migration 013: a deleted row's id): new rows get new ids."""
    given = dict(lite.execute("SELECT name, seq FROM sqlite_sequence").fetchall()) if lite.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone() else {}  # fmt: skip
    found = pg.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "
                       "current_schema() AND (is_identity = 'YES' OR column_default LIKE 'nextval(%%')").fetchall()
    for table, column in found:
        floor = int(given.get(table, 0)) if column == "id" else 0
        pg.execute(f'SELECT setval(pg_get_serial_sequence(%s, %s), GREATEST(coalesce(max("{column}"), 0), %s) + 1,'
                   f' false) FROM "{table}"', (f'"{table}"', column, floor))  # fmt: skip


def _totals(db: Any, table: Table) -> tuple[int, ...]:
    sums = "".join(f', coalesce(sum("{c}"), 0)' for c in table.integers)
    row = db.execute(f'SELECT count(*){sums} FROM "{table.name}"').fetchone()
    return tuple(int(value) for value in row)
