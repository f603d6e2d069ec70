"""migrations_pg/ gives PostgreSQL the schema migrations/ gives SQLite: the same tables, columns
in the same order (NOT NULL, defaults), keys, indexes, CHECK counts, triggers and seed rows, and
the same routing_version after the same writes. A migration added on one side only fails here."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest

from clicktochat.store import Store
from clicktochat.storedb import NewerSchema
from pgserver import PostgresServer

SCHEMA_DB = "schema"
"""The template database: migrations_pg/ applied once, copied for each test."""

ROWID_COLUMNS = {"click_refs": "id", "widgets": "row_id"}
"""Columns only PostgreSQL has, last in their table: they stand for SQLite's implicit rowid,
which the code reads in these two tables (click_refs' is also its primary key)."""

NOCASE_INDEXES = {"admins_username"}
"""Unique indexes on lower(column) that stand for SQLite's UNIQUE ... COLLATE NOCASE."""

MD5_INDEXES = {"click_facts_key"}
"""Unique indexes on md5(column) that stand for SQLite's UNIQUE on a text that can pass the size of
a PostgreSQL b-tree entry (migration 023)."""

ROUTING_BUMP = "UPDATE meta SET value = value + 1 WHERE key = 'routing_version';"
"""The body of every SQLite trigger, which bump_routing_version() does (and NOTIFYs) on PostgreSQL.
A trigger doing anything else must be written by hand on both sides, and this test taught about it."""


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]  # lower(x) for a case-insensitive column
    unique: bool
    where: str | None  # partial indexes: the condition, normalised


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str
    references: tuple[str, ...]
    on_delete: str
    on_update: str


@dataclass
class Schema:
    columns: dict[str, list[tuple[str, bool, str | None]]]  # table: [(name, NOT NULL, default)]
    primary_keys: dict[str, tuple[str, ...]]
    indexes: dict[str, set[Index]]
    index_names: set[str]  # created by CREATE INDEX, not by a constraint
    foreign_keys: dict[str, set[ForeignKey]]
    checks: dict[str, int]
    triggers: set[tuple[str, str, str]]  # (name, table, AFTER event), all routing bumps
    meta: dict[str, str]


def normalised(condition: str) -> str:
    """`(state = 'pending'::text)` and `state = 'pending'` alike."""
    return re.sub(r"[\s()]|::\w+", "", condition).lower()


def default(value: str | None) -> str | None:
    return None if value is None else re.sub(r"::[a-z ]+$", "", value)


def sqlite_schema(path: Path) -> Schema:
    db = sqlite3.connect(path)
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                       " AND name NOT LIKE 'sqlite%' ORDER BY name")]  # sqlite_sequence: SQLite's
    schema = Schema({}, {}, {}, set(), {}, {}, set(), dict(db.execute("SELECT key, value FROM meta").fetchall()))
    for table in tables:
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
        # A primary key is NOT NULL on PostgreSQL; SQLite lets a rowid table's TEXT key hold NULL
        # (a quirk kept for compatibility), which the code never writes.
        schema.columns[table] = [(name, bool(notnull or pk), dflt) for _, name, _, notnull, dflt, pk in info]
        schema.primary_keys[table] = tuple(name for _, name, *_, pk in sorted(info, key=lambda c: c[5]) if pk)
        schema.indexes[table] = set()
        for _, name, unique, origin, partial in db.execute(f"PRAGMA index_list({table})").fetchall():
            if origin == "pk":
                continue
            parts = [row for row in db.execute(f"PRAGMA index_xinfo({name})").fetchall() if row[5]]  # key columns
            columns = tuple(f"lower({c})" if collation.upper() == "NOCASE" else c for _, _, c, _, collation, _ in parts)
            if (table, columns) == ("click_facts", ("key",)):  # PostgreSQL's is on md5(key): MD5_INDEXES
                columns = ("md5(key)",)
            where = None
            if partial:
                (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
                where = normalised(sql.split(" WHERE ", 1)[1])
            schema.indexes[table].add(Index(columns, bool(unique), where))
            if origin == "c":
                schema.index_names.add(name)
        keys: dict[int, list[Any]] = {}
        for key_id, _, parent, column, parent_column, on_update, on_delete, _ in db.execute(
            f"PRAGMA foreign_key_list({table})"
        ):
            keys.setdefault(key_id, [parent, [], [], on_delete, on_update])
            keys[key_id][1].append(column)
            keys[key_id][2].append(parent_column)
        schema.foreign_keys[table] = {ForeignKey(tuple(c), p, tuple(r), d, u) for p, c, r, d, u in keys.values()}
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        schema.checks[table] = len(re.findall(r"\bCHECK\s*\(", sql, re.IGNORECASE))
    for name, table, sql in db.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"):
        match = re.fullmatch(r"CREATE TRIGGER \w+ AFTER (INSERT|UPDATE|DELETE) ON \w+\s+BEGIN (.*) END", sql, re.S)
        assert match and match.group(2).strip() == ROUTING_BUMP, f"trigger {name} must be written by hand: {sql}"
        schema.triggers.add((name, table, match.group(1)))
    db.close()
    return schema


ON_ACTION = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def pg_schema(conn: psycopg.Connection[Any]) -> Schema:
    def rows(query: str) -> list[Any]:
        return conn.execute(query).fetchall()

    schema = Schema({}, {}, {}, set(), {}, {}, set(), dict(rows("SELECT key, value FROM meta")))
    for (table,) in rows("SELECT table_name FROM information_schema.tables"
                         " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"):  # fmt: skip
        schema.columns[table] = []
        schema.primary_keys[table] = ()
        schema.indexes[table] = set()
        schema.foreign_keys[table] = set()
        schema.checks[table] = 0
    for table, name, nullable, dflt in rows(
        "SELECT table_name, column_name, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        if table in schema.columns:  # a table's, not a view's (migration 023's views have the old tables' names)
            schema.columns[table].append((name, nullable == "NO", default(dflt)))
    for table, name, primary, unique, constraint, columns, where in rows(
        "SELECT t.relname, i.relname, x.indisprimary, x.indisunique,"
        "       EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid),"
        "       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k),"
        "       pg_get_expr(x.indpred, x.indrelid)"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " WHERE t.relnamespace = current_schema()::regnamespace"
    ):
        if primary:
            schema.primary_keys[table] = tuple(c.replace('"', "") for c in columns)
            continue
        columns = tuple(c.replace('"', "") for c in columns)  # "position": quoted, a keyword
        schema.indexes[table].add(Index(columns, unique, None if where is None else normalised(where)))
        if not constraint:
            schema.index_names.add(name)
    for table, parent, columns, references, on_delete, on_update in rows(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,"
        "       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)"
        "             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),"
        "       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)"
        "             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),"
        "       c.confdeltype, c.confupdtype"
        " FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"
    ):
        key = ForeignKey(tuple(columns), parent, tuple(references), ON_ACTION[on_delete], ON_ACTION[on_update])
        schema.foreign_keys[table].add(key)
    for table, count in rows(
        "SELECT conrelid::regclass::text, count(*) FROM pg_constraint"
        " WHERE contype = 'c' AND connamespace = current_schema()::regnamespace GROUP BY 1"
    ):
        schema.checks[table] = count
    for name, table, event, timing, orientation, action in rows(
        "SELECT trigger_name, event_object_table, event_manipulation, action_timing, action_orientation,"
        "       action_statement FROM information_schema.triggers WHERE trigger_schema = current_schema()"
    ):
        assert (timing, orientation, action) == ("AFTER", "ROW", "EXECUTE FUNCTION bump_routing_version()"), name
        schema.triggers.add((name, table, event))
    return schema


def migration_numbers(folder: str) -> list[int]:
    return sorted(int(f.name.split("_", 1)[0]) for f in (resources.files("clicktochat") / folder).iterdir()
                  if f.name.endswith(".sql"))  # fmt: skip


def apply_pg_migrations(conn: psycopg.Connection[Any]) -> None:
    folder = resources.files("clicktochat") / "migrations_pg"
    with conn.transaction():
        for number in migration_numbers("migrations_pg"):
            (script,) = [f for f in folder.iterdir() if f.name.startswith(f"{number:03d}_")]
            conn.execute(script.read_text())


def sqlite_database(path: Path) -> Path:
    async def migrate() -> None:
        store = await Store.open(str(path))
        await store.close()

    asyncio.run(migrate())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer.start(tmp_path_factory.mktemp("postgres")) as server:
        server.create_database(SCHEMA_DB)
        with psycopg.connect(server.url(SCHEMA_DB)) as conn:
            apply_pg_migrations(conn)
        yield server


@pytest.fixture
def pg_url(server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with the schema (a copy of the template): one per test."""
    name = re.sub(r"\W", "_", request.node.name).lower()[:60]
    server.create_database(name, template=SCHEMA_DB)
    yield server.url(name)
    server.drop_database(name)


def test_both_folders_move_in_step() -> None:
    sqlite, pg = migration_numbers("migrations"), migration_numbers("migrations_pg")
    assert pg[0] == 11 and pg == [n for n in sqlite if n >= 11], "migrations_pg/ starts at 011, then as migrations/"


def test_postgresql_schema_is_sqlite_schema(pg_url: str, tmp_path: Path) -> None:
    sqlite = sqlite_schema(sqlite_database(tmp_path / "schema.db"))
    with psycopg.connect(pg_url) as conn:
        pg = pg_schema(conn)

    for table, column in ROWID_COLUMNS.items():
        assert pg.columns[table][-1][:2] == (column, True), f"{table}.{column} stands for the rowid, last"
        del pg.columns[table][-1]
    assert pg.primary_keys["click_refs"] == ("id",)
    del pg.primary_keys["click_refs"], sqlite.primary_keys["click_refs"]
    assert sqlite.index_names - pg.index_names == set()
    assert pg.index_names - sqlite.index_names == NOCASE_INDEXES | MD5_INDEXES

    assert sorted(pg.columns) == sorted(sqlite.columns)
    for table in sqlite.columns:
        assert pg.columns[table] == sqlite.columns[table], table
        assert pg.primary_keys.get(table) == sqlite.primary_keys.get(table), table
        assert pg.indexes[table] == sqlite.indexes[table], table
        assert pg.foreign_keys[table] == sqlite.foreign_keys[table], table
        assert pg.checks[table] == sqlite.checks[table], table
    assert pg.triggers == sqlite.triggers and len(pg.triggers) == 18  # 012: whatsapp_numbers too
    assert pg.meta == sqlite.meta == {"routing_version": "0"}


# The same writes on both backends, each with the routing_version it leaves, or None: refused
# (a CHECK, a foreign key, a unique username whatever its case).
WRITES: list[tuple[str, int | None]] = [
    ("INSERT INTO businesses (name, created_at, updated_at) VALUES ('Bar Roma', 1, 1)", 0),  # no trigger
    ("INSERT INTO agents (business_id, name, channel, address, created_at, updated_at)"
     " VALUES (1, 'Ada', 'whatsapp', '393331234567', 1, 1)", 1),
    ("INSERT INTO agent_channels (agent_id, channel, address, position) VALUES (1, 'whatsapp', '393331234567', 0)", 2),
    ("INSERT INTO links (slug, agent_id, created_at, updated_at) VALUES ('roma', 1, 1, 1)", 3),
    ("INSERT INTO links (slug, agent_id, business_id, created_at, updated_at) VALUES ('two', 1, 1, 1, 1)", None),
    ("INSERT INTO links (slug, agent_id, created_at, updated_at) VALUES ('nobody', 99, 1, 1)", None),
    ("UPDATE links SET agent_id = NULL, channel = 'whatsapp', address = '393330000000' WHERE slug = 'roma'", 4),
    ("UPDATE links SET business_id = 1 WHERE slug = 'roma'", 5),  # a fixed number may belong to a business
    ("INSERT INTO widgets (id, business_id, created_at, updated_at) VALUES ('w1', 1, 1, 1)", 6),
    ("UPDATE businesses SET fallback_agent_id = 1", 7),
    ("INSERT INTO signing_keys (key, created_at) VALUES ('k', 1)", 8),
    ("INSERT INTO admins (username, password_hash, created_at) VALUES ('Ada', 'x', 1)", 8),
    ("INSERT INTO admins (username, password_hash, created_at) VALUES ('aDA', 'x', 1)", None),
    ("DELETE FROM widgets", 9),
    ("DELETE FROM links", 10),
    ("DELETE FROM businesses", 13),  # with its agent (CASCADE) and the agent's channel (CASCADE)
]


def test_the_same_writes_leave_the_same_routing_version(pg_url: str, tmp_path: Path) -> None:
    sqlite = sqlite3.connect(sqlite_database(tmp_path / "writes.db"), isolation_level=None)
    sqlite.execute("PRAGMA foreign_keys = ON")  # as Store.open
    previous = 0
    with psycopg.connect(pg_url, autocommit=True) as pg:
        for statement, version in WRITES:
            if version is None:
                with pytest.raises(sqlite3.IntegrityError):
                    sqlite.execute(statement)
                with pytest.raises(psycopg.IntegrityError):
                    pg.execute(statement)
            else:
                sqlite.execute(statement)
                pg.execute(statement)
            previous = previous if version is None else version
            assert sqlite.execute("SELECT value FROM meta").fetchone() == (str(previous),), statement
            assert pg.execute("SELECT value FROM meta").fetchone() == (str(previous),), statement
        assert pg.execute("SELECT count(*) FROM agents").fetchone() == (0,)
    sqlite.close()


def test_a_routing_change_is_announced(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as writer, psycopg.connect(pg_url, autocommit=True) as listener:
        writer.execute("INSERT INTO businesses (name, created_at, updated_at) VALUES ('Bar Roma', 1, 1)")
        writer.execute("INSERT INTO agents (business_id, name, channel, address, created_at, updated_at)"
                       " VALUES (1, 'Ada', 'whatsapp', '393331234567', 1, 1)")  # fmt: skip
        writer.execute("INSERT INTO links (slug, agent_id, created_at, updated_at) VALUES ('roma', 1, 1, 1)")
        listener.execute("LISTEN clicktochat")

        writer.execute("INSERT INTO click_log (at, cell, day) VALUES (1, 1, '2024-05-01')")  # not routing: says nothing
        with writer.transaction():  # one transaction, one notification
            writer.execute("UPDATE links SET text = 'Ciao' WHERE slug = 'roma'")
            writer.execute("UPDATE agents SET name = 'Ada L.' WHERE id = 1")
        writer.execute("NOTIFY clicktochat, 'end'")

        payloads = [(n.channel, n.payload) for n in listener.notifies(timeout=30, stop_after=2)]
        assert payloads == [("clicktochat", "routing"), ("clicktochat", "end")]
        assert writer.execute("SELECT value FROM meta WHERE key = 'routing_version'").fetchone() == ("4",)


def test_a_database_of_a_newer_release_is_refused(server: PostgresServer) -> None:
    """A roll-back after an upgrade: this release must not read or write tables it does not know."""
    server.create_database("newer")
    url = server.url("newer")

    async def scenario() -> None:
        await (await Store.open(url)).close()
        with psycopg.connect(url, autocommit=True) as conn:
            (latest,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()  # type: ignore[misc]
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (latest + 1,))
        with pytest.raises(NewerSchema, match=f"made by a newer clicktochat \\(schema {latest + 1};"):
            await Store.open(url)

    try:
        asyncio.run(scenario())
    finally:
        server.drop_database("newer")
