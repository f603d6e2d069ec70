"""All SQL lives here. One aiosqlite connection per process (its own thread, so the event
loop never waits on disk), WAL so the CLI and the server share the file, writes serialised
by a lock and wrapped in `BEGIN IMMEDIATE` transactions, migrations by `PRAGMA user_version`."""

from __future__ import annotations

import asyncio
import calendar
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from itertools import chain
from pathlib import Path
from typing import Any

import aiosqlite

from . import database
from .agents import Agent, Business
from .database import is_postgres
from .dblock import DatabaseLock
from .links import ShortLink, Target
from .widget import Widget, WidgetTarget, settings_from_json

AGENT_COLUMNS = (  # agents.Agent, in order; its channels as JSON [[channel, address], ...], first first
    "a.id, a.business_id, a.name, a.channel, a.address, a.hours, COALESCE(a.timezone, b.timezone),"
    " (SELECT json_group_array(json_array(c.channel, c.address)) FROM"
    " (SELECT channel, address FROM agent_channels WHERE agent_id = a.id ORDER BY position) AS c)"
)
AGENT_COLUMNS_PG = AGENT_COLUMNS.split(" (SELECT", 1)[0] + (  # the same, with PostgreSQL's JSON functions
    " (SELECT json_agg(json_build_array(c.channel, c.address) ORDER BY c.position)::text"
    " FROM agent_channels c WHERE c.agent_id = a.id)"
)
LINK_COLUMNS = ", ".join(f.name for f in fields(ShortLink))
CLICK_COLUMNS = (  # clicks.ClickRow, in order
    "at", "link_kind", "link_key", "channel", "agent_id", "campaign", "source",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "ad_click", "referrer_host",
    "device_class", "os_family", "browser_family", "page_path", "robot", "via", "business_id", "day", "visitor",
    "n", "uniques",
)  # fmt: skip
LINK_DAY_COLUMNS = ("day", "business_id", "link_kind", "link_key", "campaign", "agent_id", "channel")
DIMENSION_DAY_COLUMNS = ("scope", "scope_value", "dimension", "day", "business_id", "value")
LINK_DIMENSION_DAY_COLUMNS = (  # migration 006: a link's day, then each of clicks.DIMENSIONS in order
    "link_kind", "link_key", "day", "business_id", "campaign", "agent_id", "channel", "source", "referrer",
    "device", "os", "browser", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "page",
    "ad_click", "robot", "via",
)  # fmt: skip
COUNTERS = ("clicks", "uniques", "bots")
# Raw columns of clicks.DIMENSIONS, for what the daily totals do not hold.
DIMENSION_COLUMNS = {
    "source": "source", "referrer": "referrer_host", "device": "device_class", "os": "os_family",
    "browser": "browser_family", "utm_source": "utm_source", "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign", "utm_content": "utm_content", "utm_term": "utm_term", "page": "page_path",
    "ad_click": "ad_click", "robot": "robot", "via": "via",
}  # fmt: skip
# How stats group rows, as SQL over any of the three tables.
GROUPINGS = {
    "day": "day",
    "week": "date(day, '-6 days', 'weekday 1')",  # the Monday the week starts on
    "month": "substr(day, 1, 7)",
    "link": "link_kind || ':' || link_key",
    "campaign": "campaign",
    "agent": "agent_id",
    "channel": "channel",
    "widget": "link_key",
    "": "''",
    "month_column": "month",  # link_months has its month as a column
}
GROUPINGS_PG = GROUPINGS | {"week": "to_char(date_trunc('week', day::date), 'YYYY-MM-DD')"}  # ISO weeks: Mondays
LINK_GROUPS = ("link", "campaign", "agent", "channel", "widget")
WIDGET_COLUMNS = "id, business_id, settings, created_at, updated_at"
BEGIN_TRIES = 30  # about 10 s in all, like busy_timeout
MIGRATION_LOCK = 0x0C71C7C4A7  # PostgreSQL advisory lock taken while migrating


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True)
class Admin:
    id: int
    username: str
    created_at: int
    last_login_at: int | None


ADMIN_COLUMNS = "id, username, created_at, last_login_at"


def migrations(folder_name: str = "migrations") -> list[tuple[int, str]]:
    """SQLite's (`migrations`) or PostgreSQL's (`migrations_pg`), numbered in step."""
    folder = resources.files("clicktochat") / folder_name
    found = [(int(f.name.split("_", 1)[0]), f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)


def _agent(row: Sequence[Any]) -> Agent:
    channels = tuple((str(name), str(address)) for name, address in json.loads(row[7] or "[]"))
    return Agent(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]) if row[5] else None, row[6], channels)


def _link(row: Sequence[Any]) -> ShortLink:
    values = dict(zip(LINK_COLUMNS.split(", "), row, strict=True))
    values["disabled"] = bool(values["disabled"])
    values["ref_code"] = None if values["ref_code"] is None else bool(values["ref_code"])
    return ShortLink(**values)


def _widget(row: Sequence[Any]) -> Widget:
    return Widget(row[0], row[1], settings_from_json(json.loads(row[2])), row[3], row[4])


class Store:
    def __init__(self, db: aiosqlite.Connection, postgres: bool = False) -> None:
        self.db = db
        self.postgres = postgres  # where SQL differs, which database's to speak
        self._write_lock = asyncio.Lock()
        self.held: DatabaseLock | None = None  # `clicktochat restore` refuses while any store holds it

    @classmethod
    async def open(cls, path: str) -> Store:
        if is_postgres(path):
            return await cls._open_postgres(path)
        folder = Path(path).parent
        if not folder.is_dir():  # checked first: a failed connect leaves aiosqlite's thread behind
            raise FileNotFoundError(f"the folder {folder} does not exist")
        held = DatabaseLock(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            held.release()
            raise
        try:
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across crashes of the process
            await db.execute("PRAGMA foreign_keys = ON")
            store = cls(db)
            store.held = held
            await store.migrate()
        except BaseException:
            await db.close()
            held.release()
            raise
        return store

    @classmethod
    async def _open_postgres(cls, url: str) -> Store:
        """aiosqlite's thread and queue around a psycopg connection (see `database`), opened again
        after the server restarted (`database.Reconnecting`)."""
        # Connected first, off the loop: a refused connection raised inside aiosqlite's thread would
        # leave it answering a loop that `asyncio.run` has closed (a traceback after the error).
        connection = await asyncio.to_thread(database.Reconnecting, url)
        db = aiosqlite.Connection(lambda: connection, 64)  # type: ignore[arg-type,return-value]
        await db
        try:
            store = cls(db, postgres=True)
            await store.migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        try:
            await self.db.close()
        finally:
            if self.held is not None:
                self.held.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            try:
                await self._begin()
                yield self.db
                await self.db.execute("COMMIT")
            except BaseException:
                # Shielded: a cancelled task must not leave the connection inside a transaction.
                await asyncio.shield(self._rollback())
                raise

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE (PostgreSQL: BEGIN), tried again while another connection (the WhatsApp side's, the
        CLI's) holds the file: SQLite now and then answers SQLITE_BUSY at once instead of
        waiting out busy_timeout, when two connections' first writes meet."""
        for attempt in range(BEGIN_TRIES):
            try:
                await self.db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or attempt == BEGIN_TRIES - 1:
                    raise
                await asyncio.sleep(min(0.5, 0.01 * 2**attempt))

    async def _rollback(self) -> None:
        # aiosqlite runs statements in order: once this SELECT is done, a BEGIN queued by a
        # cancelled task has run too, and `in_transaction` tells the truth.
        try:
            await self.db.execute("SELECT 1")
        except Exception:  # PostgreSQL refuses all but ROLLBACK in a failed transaction; a lost connection
            pass
        if self.db.in_transaction:
            await self.db.execute("ROLLBACK")

    async def migrate(self) -> None:
        if self.postgres:
            await self._migrate_postgres()
            return
        async with self.transaction() as db:
            (version,) = await self._one("PRAGMA user_version")
            for number, script in migrations():
                if number > version:
                    # executescript would COMMIT first; run statement by statement instead.
                    for statement in _split_sql(script):
                        await db.execute(statement)
                    await db.execute(f"PRAGMA user_version = {int(number)}")

    async def _migrate_postgres(self) -> None:
        """`migrations_pg/`, under a lock held to the transaction's end: instances that start
        together migrate once, the others wait and find nothing left to do."""
        async with self.transaction() as db:
            await db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            (version,) = await self._one("SELECT coalesce(max(version), 0) FROM schema_version")
            for number, script in migrations("migrations_pg"):
                if number > version:
                    await db.executescript(script)
                    await db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    async def schema_version(self) -> int:
        """The last migration applied."""
        if self.postgres:
            return int((await self._one("SELECT coalesce(max(version), 0) FROM schema_version"))[0])
        return int((await self._one("PRAGMA user_version"))[0])

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self.db.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    # -- meta -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    async def routing_version(self) -> int:
        return int(await self.get_meta("routing_version") or 0)

    # -- signing keys -----------------------------------------------------------------

    async def signing_keys(self) -> list[str]:
        """Oldest first, as itsdangerous wants them (it signs with the last)."""
        return [row[0] for row in await self._all("SELECT key FROM signing_keys ORDER BY id")]

    async def signing_key_dates(self) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in await self._all("SELECT id, created_at FROM signing_keys ORDER BY id")]

    async def add_signing_key(self, key: str, only_if_none: bool = False) -> bool:
        async with self.transaction() as db:
            if only_if_none and self.postgres:  # instances starting together on an empty database make one key
                await db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            if only_if_none and await self._one("SELECT 1 FROM signing_keys LIMIT 1"):
                return False
            await db.execute("INSERT INTO signing_keys (key, created_at) VALUES (?, ?)", (key, int(time.time())))
            return True

    # -- API keys ---------------------------------------------------------------------

    async def add_api_key(self, name: str, prefix: str, key_hash: str) -> int:
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO api_keys (name, prefix, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                (name, prefix, key_hash, int(time.time())),
            )
            return await _returned_id(cursor)

    async def api_keys(self) -> list[ApiKey]:
        rows = await self._all(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys ORDER BY id"
        )
        return [ApiKey(*row) for row in rows]

    async def api_key_hash(self, key_hash: str) -> tuple[int, str, int | None] | None:
        """(id, stored hash, last used) of an active key with this hash."""
        row = await self._one(
            "SELECT id, hash, last_used_at FROM api_keys WHERE hash = ? AND revoked_at IS NULL", (key_hash,)
        )
        return (row[0], row[1], row[2]) if row else None

    async def touch_api_key(self, key_id: int) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (int(time.time()), key_id))

    async def revoke_api_key(self, key_id: int) -> bool:
        if not _fits(key_id):
            return False
        async with self.transaction() as db:
            cursor = await db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (int(time.time()), key_id)
            )
            return cursor.rowcount > 0

    # -- admins and their sessions ----------------------------------------------------

    async def add_admin(self, username: str, password_hash: str) -> Admin:
        now = int(time.time())
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO admins (username, password_hash, created_at) VALUES (?, ?, ?) RETURNING id",
                (username, password_hash, now),
            )
            admin_id = await _returned_id(cursor)
        return Admin(admin_id, username, now, None)

    async def admins(self) -> list[Admin]:
        return [Admin(*row) for row in await self._all(f"SELECT {ADMIN_COLUMNS} FROM admins ORDER BY id")]

    async def admin_password(self, username: str) -> tuple[Admin, str] | None:
        """An admin and its password hash, by name (case-insensitive)."""
        row = await self._one(
            f"SELECT {ADMIN_COLUMNS}, password_hash FROM admins WHERE lower(username) = lower(?)", (username,)
        )
        return (Admin(*row[:4]), row[4]) if row else None

    async def set_admin_password(self, admin_id: int, password_hash: str, end_sessions: bool = False) -> None:
        async with self.transaction() as db:
            await db.execute("UPDATE admins SET password_hash = ? WHERE id = ?", (password_hash, admin_id))
            if end_sessions:
                await db.execute("DELETE FROM admin_sessions WHERE admin_id = ?", (admin_id,))

    async def delete_admin(self, username: str) -> bool:
        async with self.transaction() as db:
            cursor = await db.execute("DELETE FROM admins WHERE lower(username) = lower(?)", (username,))
            return cursor.rowcount > 0

    async def add_session(self, token_hash: str, admin_id: int, expires_at: int) -> None:
        now = int(time.time())
        async with self.transaction() as db:
            await db.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", (now,))
            await db.execute(
                "INSERT INTO admin_sessions (token_hash, admin_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, admin_id, now, expires_at),
            )
            await db.execute("UPDATE admins SET last_login_at = ? WHERE id = ?", (now, admin_id))

    async def session_admin(self, token_hash: str) -> Admin | None:
        """The admin of a live session."""
        row = await self._one(
            f"SELECT {', '.join('a.' + c for c in ADMIN_COLUMNS.split(', '))} FROM admin_sessions s"
            " JOIN admins a ON a.id = s.admin_id WHERE s.token_hash = ? AND s.expires_at > ?",
            (token_hash, int(time.time())),
        )
        return Admin(*row) if row else None

    async def delete_session(self, token_hash: str) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM admin_sessions WHERE token_hash = ?", (token_hash,))

    # -- businesses and agents --------------------------------------------------------

    async def add_business(self, name: str, timezone: str, colour: str | None = None) -> Business:
        now = int(time.time())
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO businesses (name, timezone, colour, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id", (name, timezone, colour, now, now),
            )  # fmt: skip
            business_id = await _returned_id(cursor)
        return Business(business_id, name, timezone, colour=colour)

    async def business(self, business_id: int) -> Business | None:
        if not _fits(business_id):
            return None
        row = await self._one(
            "SELECT id, name, timezone, fallback_agent_id, colour FROM businesses WHERE id = ?", (business_id,)
        )
        return Business(*row) if row else None

    async def businesses(self) -> list[Business]:
        rows = await self._all("SELECT id, name, timezone, fallback_agent_id, colour FROM businesses ORDER BY id")
        return [Business(*row) for row in rows]

    async def update_business(self, business_id: int, changes: dict[str, Any]) -> None:
        await self._update("businesses", "id", business_id, changes)

    async def delete_business(self, business_id: int) -> bool:
        """False if unknown; sqlite3.IntegrityError if links still lead to it or its agents. Links
        to a fixed number of the business keep their number and lose its name."""
        async with self.transaction() as db:
            await db.execute("UPDATE links SET business_id = NULL WHERE business_id = ? AND address IS NOT NULL",
                             (business_id,))  # fmt: skip
            cursor = await db.execute("DELETE FROM businesses WHERE id = ?", (business_id,))
            return cursor.rowcount > 0

    async def logo(self, business_id: int) -> bytes | None:
        if not _fits(business_id):
            return None
        row = await self._one("SELECT png FROM logos WHERE business_id = ?", (business_id,))
        return bytes(row[0]) if row else None

    async def set_logo(self, business_id: int, png: bytes | None) -> None:
        async with self.transaction() as db:
            if png is None:
                await db.execute("DELETE FROM logos WHERE business_id = ?", (business_id,))
            else:
                await db.execute(
                    "INSERT INTO logos (business_id, png, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (business_id) DO UPDATE SET png = excluded.png, updated_at = excluded.updated_at",
                    (business_id, png, int(time.time())),
                )

    async def add_agent(
        self, business_id: int, name: str, channel: str, address: str, hours: dict[str, Any] | None,
        timezone: str | None, more: Sequence[tuple[str, str]] = (),
    ) -> Agent:  # fmt: skip
        """An agent on `channel` at `address`, and on each of `more` (channel, address), in order."""
        now = int(time.time())
        channels = [(channel, address), *more]
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO agents (business_id, name, channel, address, hours, timezone, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (business_id, name, channel, address, json.dumps(hours) if hours else None, timezone, now, now),
            )
            agent_id = await _returned_id(cursor)
            await _write_channels(db, agent_id, channels)
        agent = await self.agent(agent_id)
        assert agent is not None
        return agent

    async def set_agent_channels(self, agent_id: int, channels: Sequence[tuple[str, str]]) -> None:
        """An agent's channels, all of them in order (at least one), replacing what it had;
        agents.channel and agents.address follow the first."""
        (channel, address), *_ = channels
        async with self.transaction() as db:
            await db.execute(
                "UPDATE agents SET channel = ?, address = ?, updated_at = ? WHERE id = ?",
                (channel, address, int(time.time()), agent_id),
            )
            await db.execute("DELETE FROM agent_channels WHERE agent_id = ?", (agent_id,))
            await _write_channels(db, agent_id, channels)

    async def business_channels(self, business_id: int) -> list[str]:
        """The channels a business offers, as agents.offered_channels orders them: by agent, then
        each agent's own order."""
        if not _fits(business_id):
            return []
        rows = await self._all(
            "SELECT channel FROM (SELECT c.channel, row_number() OVER (ORDER BY a.id, c.position) AS n"
            " FROM agent_channels c JOIN agents a ON a.id = c.agent_id WHERE a.business_id = ?) AS offered"
            " GROUP BY channel ORDER BY min(n)",
            (business_id,),
        )
        return [str(row[0]) for row in rows]

    @property
    def _agent_columns(self) -> str:
        return AGENT_COLUMNS_PG if self.postgres else AGENT_COLUMNS

    async def agent(self, agent_id: int) -> Agent | None:
        if not _fits(agent_id):
            return None
        row = await self._one(
            f"SELECT {self._agent_columns} FROM agents a JOIN businesses b ON b.id = a.business_id"
            " WHERE a.id = ?", (agent_id,),
        )
        return _agent(row) if row else None

    async def agents(self, business_id: int | None = None) -> list[Agent]:
        if business_id is not None and not _fits(business_id):
            return []
        rows = await self._all(
            f"SELECT {self._agent_columns} FROM agents a JOIN businesses b ON b.id = a.business_id"
            " WHERE ? IS NULL OR a.business_id = ? ORDER BY a.id",
            (business_id, business_id),
        )
        return [_agent(row) for row in rows]

    async def update_agent(self, agent_id: int, changes: dict[str, Any]) -> None:
        if "hours" in changes:
            changes = {**changes, "hours": json.dumps(changes["hours"]) if changes["hours"] else None}
        await self._update("agents", "id", agent_id, changes)

    async def delete_agent(self, agent_id: int) -> bool:
        async with self.transaction() as db:
            cursor = await db.execute("DELETE FROM agents WHERE id = ?", (agent_id,))
            return cursor.rowcount > 0

    # -- short links ------------------------------------------------------------------

    async def add_link(self, link: ShortLink) -> ShortLink:
        """sqlite3.IntegrityError if the slug is taken."""
        now = int(time.time())
        values = {f.name: getattr(link, f.name) for f in fields(link)} | {"created_at": now, "updated_at": now}
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO links ({LINK_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )
        return ShortLink(**values)

    async def link(self, slug: str) -> ShortLink | None:
        row = await self._one(f"SELECT {LINK_COLUMNS} FROM links WHERE slug = ?", (slug,))
        return _link(row) if row else None

    async def links(self, limit: int = 100, offset: int = 0, search: str = "") -> list[ShortLink]:
        """Newest first; `search` matches the slug, campaign, source or message, anywhere in them."""
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # SQLite's LIKE ignores the case of ASCII letters only: so does ILIKE under the "C" collation.
        like = "COLLATE \"C\" ILIKE" if self.postgres else "LIKE"
        rows = await self._all(
            f"SELECT {LINK_COLUMNS} FROM links WHERE ?1 = '%%' OR slug {like} ?1 ESCAPE '\\'"
            f" OR campaign {like} ?1 ESCAPE '\\' OR source {like} ?1 ESCAPE '\\' OR text {like} ?1 ESCAPE '\\'"
            " ORDER BY created_at DESC, slug LIMIT ?2 OFFSET ?3",
            (pattern, limit, offset),
        )
        return [_link(row) for row in rows]

    async def general_link(self, business_id: int, now: int) -> str | None:
        """The slug of a business's general chat link at `now`: live (neither turned off nor
        expired), to the whole business (not an agent or a fixed number), on no one channel (which
        the business may drop), without a campaign; the oldest of them."""
        row = await self._one(
            "SELECT slug FROM links WHERE business_id = ? AND agent_id IS NULL AND address IS NULL"
            " AND channel IS NULL AND campaign IS NULL AND disabled = 0 AND (expires_at IS NULL OR expires_at > ?)"
            " ORDER BY created_at, slug LIMIT 1",
            (business_id, now),
        )
        return str(row[0]) if row else None

    async def update_link(self, slug: str, changes: dict[str, Any]) -> None:
        await self._update("links", "slug", slug, changes)

    async def target(self, slug: str) -> Target | None:
        """Everything a click on `slug` needs, in one read: the cache holds the result."""
        link = await self.link(slug)
        if link is None:
            return None
        business_id = link.business_id
        agents: list[Agent] = []
        colleagues: list[Agent] = []
        if link.agent_id is not None:
            agent = await self.agent(link.agent_id)
            agents = [agent] if agent else []
            business_id = agent.business_id if agent else None
            colleagues = await self.agents(business_id) if business_id is not None else []
        elif link.business_id is not None and link.address is None:
            agents = await self.agents(link.business_id)
        elif link.business_id is not None:  # a fixed address of a business: its agents take other channels
            colleagues = await self.agents(link.business_id)
        business = await self.business(business_id) if business_id is not None else None
        fallback = None
        if business and business.fallback_agent_id is not None and link.agent_id is None:
            fallback = await self.agent(business.fallback_agent_id)
        return Target(link, business.name if business else None, tuple(agents), fallback, business_id,
                      tuple(colleagues))  # fmt: skip

    async def _update(self, table: str, key_column: str, key: Any, changes: dict[str, Any]) -> None:
        # Column names come from our own code (API models and CLI options), never from input.
        allowed = {"businesses": {"name", "timezone", "fallback_agent_id", "colour"},
                   "agents": {"name", "hours", "timezone"},  # channels: set_agent_channels
                   "links": set(LINK_COLUMNS.split(", ")) - {"slug", "created_at", "updated_at"}}[table]  # fmt: skip
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} in {table}")
        if not changes:
            return
        assignments = ", ".join(f"{column} = ?" for column in changes)
        async with self.transaction() as db:
            await db.execute(
                f"UPDATE {table} SET {assignments}, updated_at = ? WHERE {key_column} = ?",
                (*changes.values(), int(time.time()), key),
            )

    # -- widgets ----------------------------------------------------------------------

    async def add_widget(self, widget_id: str, business_id: int, settings: dict[str, Any]) -> Widget:
        """sqlite3.IntegrityError if the id is taken."""
        now = int(time.time())
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO widgets ({WIDGET_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (widget_id, business_id, json.dumps(settings), now, now),
            )
        widget = await self.widget(widget_id)
        assert widget is not None
        return widget

    async def widget(self, widget_id: str) -> Widget | None:
        row = await self._one(f"SELECT {WIDGET_COLUMNS} FROM widgets WHERE id = ?", (widget_id,))
        return _widget(row) if row else None

    async def widgets(self, business_id: int | None = None) -> list[Widget]:
        rows = await self._all(  # in the order they were made (PostgreSQL's row_id stands for SQLite's rowid)
            f"SELECT {WIDGET_COLUMNS} FROM widgets WHERE ? IS NULL OR business_id = ?"
            f" ORDER BY created_at, {'row_id' if self.postgres else 'rowid'}",
            (business_id, business_id),
        )
        return [_widget(row) for row in rows]

    async def update_widget(self, widget_id: str, business_id: int, settings: dict[str, Any]) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE widgets SET business_id = ?, settings = ?, updated_at = ? WHERE id = ?",
                (business_id, json.dumps(settings), int(time.time()), widget_id),
            )

    async def delete_widget(self, widget_id: str) -> bool:
        async with self.transaction() as db:
            cursor = await db.execute("DELETE FROM widgets WHERE id = ?", (widget_id,))
            return cursor.rowcount > 0

    async def widget_target(self, widget_id: str) -> WidgetTarget | None:
        """A widget with its business and agents, in one read: the cache holds the result."""
        widget = await self.widget(widget_id)
        if widget is None:
            return None
        business = await self.business(widget.business_id)
        assert business is not None  # the foreign key keeps it
        has_logo = await self._one("SELECT 1 FROM logos WHERE business_id = ?", (business.id,)) is not None
        return WidgetTarget(widget, business, tuple(await self.agents(business.id)), has_logo)

    # -- clicks -----------------------------------------------------------------------

    async def add_clicks(
        self,
        rows: Sequence[Sequence[Any]],
        link_days: Sequence[Sequence[Any]],
        link_months: Sequence[Sequence[Any]],
        dimension_days: Sequence[Sequence[Any]],
        link_dimension_days: Sequence[Sequence[Any]] = (),
        refs: Sequence[Sequence[Any]] = (),
    ) -> None:
        """Raw rows (CLICK_COLUMNS) and what they add to the totals, together; `refs`: the ref
        codes of clicks whose message carried one (conversations are tied to them)."""
        totals = {"link_days": link_days, "link_months": link_months, "dimension_days": dimension_days,
                  "link_dimension_days": link_dimension_days}  # fmt: skip
        month_key = ("month", *LINK_DAY_COLUMNS[1:])
        write = copy_rows if self.postgres else insert_rows
        async with self.transaction() as db:
            await write(db, f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)})", len(CLICK_COLUMNS), rows)
            if refs:
                await write(
                    db, "INSERT INTO click_refs (ref, at, link_kind, link_key, campaign, agent_id, channel, address,"
                    " visitor)", 9, refs,
                )  # fmt: skip
            for table, key in (("link_days", LINK_DAY_COLUMNS), ("link_months", month_key),
                               ("dimension_days", DIMENSION_DAY_COLUMNS),
                               ("link_dimension_days", LINK_DIMENSION_DAY_COLUMNS)):  # fmt: skip
                upsert = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(
                    f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS
                )
                await write(db, f"INSERT INTO {table} ({', '.join(key + COUNTERS)})", len(key) + 3,
                            totals[table], upsert)  # fmt: skip

    async def click_count(self, link_kind: str, link_key: str) -> int:
        """People's clicks on one link, ever (robots are counted apart)."""
        return (await self.click_counts(link_kind, [link_key]))[link_key]

    async def click_counts(self, link_kind: str, link_keys: list[str]) -> dict[str, int]:
        """People's clicks of many links in one query (for lists)."""
        if not link_keys:
            return {}
        rows = await self._all(
            "SELECT link_key, sum(clicks) FROM link_days WHERE link_kind = ?"
            f" AND link_key IN ({', '.join('?' * len(link_keys))}) GROUP BY link_key",
            (link_kind, *link_keys),
        )
        return {key: 0 for key in link_keys} | {key: int(count) for key, count in rows}

    async def clicks(self, link_kind: str, link_key: str) -> list[dict[str, Any]]:
        """The raw rows of one link, oldest first (for tests and exports)."""
        async with self.db.execute(
            f"SELECT {', '.join(CLICK_COLUMNS)} FROM clicks WHERE link_kind = ? AND link_key = ? ORDER BY id",
            (link_kind, link_key),
        ) as cursor:
            return [dict(zip(CLICK_COLUMNS, row, strict=True)) for row in await cursor.fetchall()]

    async def recent_visitors(self, since: int, chunk: int = 50_000) -> AsyncIterator[list[tuple[str, int]]]:
        """The visitor hash and time of each person's click row since `since`, `chunk` rows at a
        time: after an ad spike a window holds millions, which a list of them all would not fit."""
        async with self.db.execute(
            "SELECT visitor, at FROM clicks WHERE at >= ? AND visitor IS NOT NULL AND robot IS NULL ORDER BY at",
            (since,),
        ) as cursor:
            while rows := await cursor.fetchmany(chunk):
                yield [(visitor, int(at)) for visitor, at in rows]

    async def agent_businesses(self) -> dict[int, tuple[int, str]]:
        """Each agent's business and its time zone: whose day a click counts in."""
        rows = await self._all("SELECT a.id, b.id, b.timezone FROM agents a JOIN businesses b ON b.id = a.business_id")
        return {agent_id: (business_id, timezone) for agent_id, business_id, timezone in rows}

    async def prune_clicks(self, before: int, chunk: int = 20_000) -> int:
        """Delete raw rows older than `before`, a chunk per transaction so clicks keep flowing."""
        deleted = 0
        while True:
            async with self.transaction() as db:
                cursor = await db.execute(
                    "DELETE FROM clicks WHERE id IN (SELECT id FROM clicks WHERE at < ? LIMIT ?)", (before, chunk)
                )
            deleted += cursor.rowcount
            if cursor.rowcount < chunk:
                return deleted

    async def link_totals(
        self, first_day: str, last_day: str, group: str, filters: Mapping[str, Any], limit: int | None = None
    ) -> list[tuple[Any, int, int, int]]:
        """(group key, clicks, uniques, bots) per link, between two days (both included), grouped
        by one of GROUPINGS; `filters` match columns of link_days. Whole months in the range
        are read from link_months, a thirtieth of the rows."""
        where = "".join(f" AND {name} = ?" for name in filters)
        months = whole_months(first_day, last_day) if group not in ("day", "week") else None
        if months is None:
            return await self._totals("link_days", group, "day BETWEEN ? AND ?" + where,
                                      [first_day, last_day, *filters.values()], limit)  # fmt: skip
        (first_month, last_month), edges = months
        parts = [await self._totals("link_months", "month_column" if group == "month" else group,
                                    "month BETWEEN ? AND ?" + where, [first_month, last_month, *filters.values()],
                                    None)]  # fmt: skip
        for first, last in edges:
            parts.append(await self._totals("link_days", group, "day BETWEEN ? AND ?" + where,
                                            [first, last, *filters.values()], None))  # fmt: skip
        merged: dict[Any, list[int]] = {}
        for part in parts:
            for key, *counts in part:
                total = merged.setdefault(key, [0, 0, 0])
                for i, count in enumerate(counts):
                    total[i] += count
        rows = [(key, *counts) for key, counts in merged.items()]
        if group == "month":
            rows.sort(key=lambda row: row[0])
        else:
            rows.sort(key=lambda row: (-row[1], -row[3], str(row[0])))
        return rows[:limit] if limit is not None else rows

    async def dimension_totals(
        self, scope: str, scope_value: str, dimension: str, first_day: str, last_day: str, group: str,
        business_id: int | None, limit: int | None = None,
    ) -> list[tuple[Any, int, int, int]]:  # fmt: skip
        """The same from dimension_days: `group` is "value" or one of GROUPINGS."""
        where = "scope = ? AND scope_value = ? AND dimension = ? AND day BETWEEN ? AND ?"
        params: list[Any] = [scope, scope_value, dimension, first_day, last_day]
        if business_id is not None:
            where += " AND business_id = ?"
            params.append(business_id)
        return await self._totals("dimension_days", group, where, params, limit)

    async def link_dimension_totals(
        self, dimension: str, first_day: str, last_day: str, group: str, filters: Mapping[str, Any],
        limit: int | None = None,
    ) -> list[tuple[Any, int, int, int]]:  # fmt: skip
        """The same from link_dimension_days, for links' clicks by a dimension: `group` is
        "value" (the dimension's) or one of GROUPINGS; `filters` match columns of link_days."""
        if dimension not in DIMENSION_COLUMNS:
            raise ValueError(f"unknown dimension {dimension!r}")
        where = "day BETWEEN ? AND ?" + "".join(f" AND {name} = ?" for name in filters)
        params = [first_day, last_day, *filters.values()]
        return await self._totals("link_dimension_days", group, where, params, limit, value=dimension)

    async def raw_totals(
        self, dimension: str, first_day: str, last_day: str, group: str, filters: Mapping[str, Any],
        limit: int | None = None,
    ) -> list[tuple[Any, int, int, int]]:  # fmt: skip
        """The same from the raw rows, for what the daily totals do not hold (a link's clicks by
        referrer, say): only as far back as the retention."""
        conditions = ["day BETWEEN ? AND ?"] + [f"coalesce({name}, ?) = ?" for name in filters]
        params: list[Any] = [first_day, last_day]
        for value in filters.values():
            params += ["" if isinstance(value, str) else 0, value]
        if "link_key" in filters:  # the index on (link_kind, link_key, at): days are at most 14 hours off UTC
            conditions.append(
                "link_kind = ? AND link_key = ? AND at BETWEEN ? - 86400 AND ? + 2 * 86400"
            )
            params += [filters.get("link_kind", "short"), filters["link_key"], _epoch(first_day), _epoch(last_day)]
        value = f"coalesce({DIMENSION_COLUMNS[dimension]}, '')" if dimension else "''"
        key = value if group == "value" else self._grouping(group)
        sql = (
            f"SELECT {key}, coalesce(sum(n) FILTER (WHERE robot IS NULL), 0), sum(uniques),"
            f" coalesce(sum(n) FILTER (WHERE robot IS NOT NULL), 0) FROM clicks WHERE {' AND '.join(conditions)}"
            f" GROUP BY 1 ORDER BY {_order(group)}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [(k, int(c), int(u or 0), int(b)) for k, c, u, b in await self._all(sql, params)]

    async def conversation_totals(
        self, first_day: str, last_day: str, group: str, filters: Mapping[str, Any]
    ) -> dict[str, tuple[int, int]]:
        """(chats started, of which opened from a click) per group key, between two days, from
        chat_starts, grouped and filtered like link_days (its columns, with the same blanks)."""
        columns = ("SELECT day, business_id, coalesce(link_kind, '') AS link_kind, coalesce(link_key, '') AS link_key,"
                   " coalesce(campaign, '') AS campaign, coalesce(agent_id, 0) AS agent_id,"
                   " coalesce(channel, '') AS channel FROM chat_starts")  # fmt: skip
        where = "day BETWEEN ? AND ?" + "".join(f" AND {name} = ?" for name in filters)
        if group in LINK_GROUPS:
            where += " AND link_kind != ''"  # a chat not opened from a link is no link's
        rows = await self._all(
            f"SELECT {self._grouping(group)}, count(*), count(*) FILTER (WHERE link_kind != '') FROM ({columns}) AS s"
            f" WHERE {where} GROUP BY 1", [first_day, last_day, *filters.values()],
        )  # fmt: skip
        return {str(key): (int(n), int(from_clicks)) for key, n, from_clicks in rows}

    def _grouping(self, group: str) -> str:
        return (GROUPINGS_PG if self.postgres else GROUPINGS)[group]

    async def _totals(
        self, table: str, group: str, where: str, params: list[Any], limit: int | None, value: str = "value"
    ) -> list[tuple[Any, int, int, int]]:
        key = value if group == "value" else self._grouping(group)
        sql = f"SELECT {key}, sum(clicks), sum(uniques), sum(bots) FROM {table} WHERE {where} GROUP BY 1"
        sql += f" ORDER BY {_order(group)}" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [(k, int(c), int(u), int(b)) for k, c, u, b in await self._all(sql, params)]


async def _write_channels(db: aiosqlite.Connection, agent_id: int, channels: Sequence[tuple[str, str]]) -> None:
    for position, (channel, address) in enumerate(channels):
        await db.execute(
            "INSERT INTO agent_channels (agent_id, channel, address, position) VALUES (?, ?, ?, ?)",
            (agent_id, channel, address, position),
        )


def whole_months(first_day: str, last_day: str) -> tuple[tuple[str, str], list[tuple[str, str]]] | None:
    """The whole months between two days (first and last YYYY-MM), and the days left at
    either end; None when no month is whole."""
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    start = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    after = last + timedelta(days=1)
    end = after if after.day == 1 else last.replace(day=1)  # the day after the last whole month
    if start >= end:
        return None
    edges = [(a.isoformat(), (b - timedelta(days=1)).isoformat()) for a, b in ((first, start), (end, after)) if a < b]
    return (start.isoformat()[:7], (end - timedelta(days=1)).isoformat()[:7]), edges


async def _returned_id(cursor: aiosqlite.Cursor) -> int:
    """The id an `INSERT ... RETURNING id` made (PostgreSQL has no lastrowid)."""
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _epoch(day: str) -> int | None:
    """Midnight UTC of a YYYY-MM-DD day, as SQLite's unixepoch() (None, matching nothing, for no day)."""
    try:
        return calendar.timegm(date.fromisoformat(day).timetuple())
    except ValueError:
        return None


def _order(group: str) -> str:
    """Time in order; anything else by clicks, then robots, most first."""
    return "1" if group in ("day", "week", "month") else "2 DESC, 4 DESC, 1"


def _fits(row_id: int) -> bool:
    """Ids from outside may be larger than SQLite's 64-bit integers: such an id names no row."""
    return 0 <= row_id < 2**63


def _split_sql(script: str) -> list[str]:
    """Statements of a migration, keeping trigger bodies (BEGIN ... END;) whole."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


# Rows a statement of insert_rows(): a few statement texts, each compiled once and then kept by
# sqlite3's statement cache; 1,000 rows of 24 columns stay below SQLite's 32,766 parameters.
CHUNKS = (1000, 100, 10, 1)


async def insert_rows(
    db: aiosqlite.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """`head` VALUES (...), (...), ... `tail` for `rows` of `width` values, up to CHUNKS[0] rows a
    statement. executemany() steps one row at a time and gives up the GIL around every step: 8.6
    us of CPU a row of the clicks table against 5.0 this way (bench figures in docs/performance.md),
    and a row per GIL hand-over while the event loop wants it back. An upsert's rows (`tail`) must
    have distinct keys on PostgreSQL, which refuses to update a row twice in one statement."""
    done = 0
    for size in CHUNKS:
        while len(rows) - done >= size:
            chunk = rows[done : done + size]
            await db.execute(_statement(head, width, size, tail), list(chain.from_iterable(chunk)))
            done += size


async def copy_rows(
    db: aiosqlite.Connection, head: str, width: int, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """insert_rows() on PostgreSQL: one COPY (`database.Connection.copy_rows`: a fiftieth of the
    CPU a row), on the store's connection, in its thread and in order with its other statements.
    aiosqlite has no public call for a method of the connection it runs; `_execute` is the one
    its own methods use."""
    if rows:
        await db._execute(db._conn.copy_rows, head, rows, tail)  # type: ignore[attr-defined,no-untyped-call]


@lru_cache(maxsize=64)
def _statement(head: str, width: int, size: int, tail: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * size)}{tail}"
