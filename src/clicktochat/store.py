"""The SQL of the click side: settings (meta), signing and API keys, admins and their sessions,
businesses and agents, short links and widgets. `Store` is the whole store: it adds these to
`clickstore.ClickStore` (clicks and their totals), which stands on `storedb.StoreDB` (the
connection, transactions, migrations). The WhatsApp side's SQL is in `chatstore` and its parts."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import aiosqlite

from .agents import Agent, Business
from .clickstore import ClickStore
from .links import ShortLink, Target
from .storedb import MIGRATION_LOCK, _fits, _returned_id
from .versions import Check
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
WIDGET_COLUMNS = "id, business_id, settings, created_at, updated_at"




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
    """Someone who signs in to the dashboard: an owner may do everything, an agent answers the
    conversations (of `business_id`'s numbers only, when it is set)."""

    id: int
    username: str
    created_at: int
    last_login_at: int | None
    role: str = "owner"
    business_id: int | None = None

    @property
    def owner(self) -> bool:
        return self.role == "owner"


ADMIN_COLUMNS = "id, username, created_at, last_login_at, role, business_id"



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


class _Changed(Exception):
    """Raised inside a transaction to roll it back: what a compare-and-set expected was changed."""


class Store(ClickStore):
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

    async def delete_meta(self, key: str) -> None:
        if await self.get_meta(key) is not None:  # most starts: nothing to write
            async with self.transaction() as db:
                await db.execute("DELETE FROM meta WHERE key = ?", (key,))

    async def add_meta(self, key: str, value: str) -> bool:
        """Set `key` only if nothing has: True for the one caller (of any instance) that did."""
        async with self.transaction() as db:
            cursor = await db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                                      (key, value))  # fmt: skip
            return bool(cursor.rowcount == 1)

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

    async def add_admin(self, username: str, password_hash: str, role: str = "owner",
                        business_id: int | None = None) -> Admin:  # fmt: skip
        now = int(time.time())
        async with self.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO admins (username, password_hash, created_at, role, business_id) VALUES (?, ?, ?, ?, ?)"
                " RETURNING id", (username, password_hash, now, role, business_id),
            )  # fmt: skip
            admin_id = await _returned_id(cursor)
        return Admin(admin_id, username, now, None, role, business_id)

    async def set_admin_role(self, username: str, role: str, business_id: int | None) -> Admin | None:
        """A new role takes effect at the admin's next request (sessions read it each time)."""
        async with self.transaction() as db:
            await db.execute("UPDATE admins SET role = ?, business_id = ? WHERE lower(username) = lower(?)",
                             (role, business_id, username))  # fmt: skip
        found = await self.admin_password(username)
        return found[0] if found else None

    async def admins(self) -> list[Admin]:
        return [Admin(*row) for row in await self._all(f"SELECT {ADMIN_COLUMNS} FROM admins ORDER BY id")]

    async def admin_password(self, username: str) -> tuple[Admin, str] | None:
        """An admin and its password hash, by name (case-insensitive)."""
        row = await self._one(
            f"SELECT {ADMIN_COLUMNS}, password_hash FROM admins WHERE lower(username) = lower(?)", (username,)
        )
        return (Admin(*row[:6]), row[6]) if row else None

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

    async def businesses(self, limit: int | None = None, offset: int = 0) -> list[Business]:
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = await self._all(
            f"SELECT id, name, timezone, fallback_agent_id, colour FROM businesses ORDER BY id{page}"
        )
        return [Business(*row) for row in rows]

    async def update_business(self, business_id: int, changes: dict[str, Any], check: Check | None = None) -> None:
        await self._update("businesses", "id", business_id, changes, check)

    async def delete_business(self, business_id: int, check: Check | None = None) -> bool:
        """False if unknown; sqlite3.IntegrityError if links still lead to it or its agents. Links
        to a fixed number of the business keep their number and lose its name. `check` (an
        If-Match) runs first in the same transaction, on the row as it stands."""
        async with self.transaction() as db:
            await self._checked(db, "businesses", "id", business_id, check)
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

    async def set_agent_channels(
        self, agent_id: int, channels: Sequence[tuple[str, str]], was: Sequence[tuple[str, str]] | None = None,
        check: Check | None = None, fields: dict[str, Any] | None = None,
    ) -> bool:
        """An agent's channels, all of them in order (at least one), replacing what it had;
        agents.channel and agents.address follow the first. With `was`, only if the agent still
        has exactly those (False, nothing written, if another request changed them since they
        were read: the caller reads again and redoes its change, rather than undo that one).
        `check`, as `_update`'s, runs first, on the agent as it stands; `fields` (`update_agent`'s)
        are written in the same transaction, so one check covers the whole change."""
        (channel, address), *_ = channels
        try:
            async with self.transaction() as db:
                if check is not None:
                    await self._hold(db, "agents", "id", agent_id)
                    await check()
                await db.execute(
                    "UPDATE agents SET channel = ?, address = ?, updated_at = ? WHERE id = ?",
                    (channel, address, int(time.time()), agent_id),
                )  # first: on PostgreSQL, the agent's row stays locked until the commit
                if was is not None:
                    cursor = await db.execute(
                        "SELECT channel, address FROM agent_channels WHERE agent_id = ? ORDER BY position", (agent_id,)
                    )
                    if [tuple(row) for row in await cursor.fetchall()] != [tuple(c) for c in was]:
                        raise _Changed  # rolled back
                await db.execute("DELETE FROM agent_channels WHERE agent_id = ?", (agent_id,))
                await _write_channels(db, agent_id, channels)
                await self._set(db, "agents", "id", agent_id, _agent_fields(fields or {}))
        except _Changed:
            return False
        return True

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

    async def update_agent(self, agent_id: int, changes: dict[str, Any], check: Check | None = None) -> None:
        await self._update("agents", "id", agent_id, _agent_fields(changes), check)

    async def delete_agent(self, agent_id: int, check: Check | None = None) -> bool:
        """False if unknown; sqlite3.IntegrityError if links lead to the agent; AgentListed if a
        widget lists it among its agents (it would show nobody, or fewer than its owner chose)."""
        async with self.transaction() as db:
            await self._checked(db, "agents", "id", agent_id, check)
            cursor = await db.execute("SELECT w.id, w.settings FROM widgets w JOIN agents a"
                                      " ON a.business_id = w.business_id WHERE a.id = ?", (agent_id,))  # fmt: skip
            listing = [widget_id for widget_id, settings in await cursor.fetchall()
                       if agent_id in (json.loads(settings).get("agent_ids") or ())]  # fmt: skip
            if listing:
                raise AgentListed(sorted(listing))
            cursor = await db.execute("DELETE FROM agents WHERE id = ?", (agent_id,))
            return cursor.rowcount > 0

    # -- short links ------------------------------------------------------------------

    async def add_link(self, link: ShortLink, request: tuple[str, str] | None = None) -> ShortLink:
        """sqlite3.IntegrityError if the slug is taken, or the request's key was used. `request`:
        the caller's idempotency key and the hash of what it asked (`link_by_request`)."""
        now = int(time.time())
        values = {f.name: getattr(link, f.name) for f in fields(link)} | {"created_at": now, "updated_at": now}
        key, digest = request or (None, None)
        async with self.transaction() as db:
            await db.execute(
                f"INSERT INTO links ({LINK_COLUMNS}, request_key, request_hash)"
                f" VALUES ({', '.join('?' * (len(values) + 2))})",
                (*values.values(), key, digest),
            )
        return ShortLink(**values)

    async def link_by_request(self, key: str) -> tuple[ShortLink, str] | None:
        """The link made with this idempotency key, and the hash of what that request asked."""
        row = await self._one(f"SELECT {LINK_COLUMNS}, request_hash FROM links WHERE request_key = ?", (key,))
        return (_link(row[:-1]), row[-1]) if row else None

    async def link(self, slug: str) -> ShortLink | None:
        row = await self._one(f"SELECT {LINK_COLUMNS} FROM links WHERE slug = ?", (slug,))
        return _link(row) if row else None

    async def links(self, limit: int = 100, offset: int = 0, search: str = "",
                    business_id: int | None = None) -> list[ShortLink]:  # fmt: skip
        """Newest first; `search` matches the slug, campaign, source or message, anywhere in them;
        `business_id`: the links to the business or to one of its agents."""
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # SQLite's LIKE ignores the case of ASCII letters only: so does ILIKE under the "C" collation.
        like = "COLLATE \"C\" ILIKE" if self.postgres else "LIKE"
        business = (" AND (business_id = ?4 OR agent_id IN (SELECT id FROM agents WHERE business_id = ?4))"
                    if business_id is not None else "")  # fmt: skip
        rows = await self._all(
            f"SELECT {LINK_COLUMNS} FROM links WHERE (?1 = '%%' OR slug {like} ?1 ESCAPE '\\'"
            f" OR campaign {like} ?1 ESCAPE '\\' OR source {like} ?1 ESCAPE '\\' OR text {like} ?1 ESCAPE '\\')"
            f"{business} ORDER BY created_at DESC, slug LIMIT ?2 OFFSET ?3",
            (pattern, limit, offset, *([business_id] if business_id is not None else [])),
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

    async def update_link(self, slug: str, changes: dict[str, Any], check: Check | None = None) -> None:
        await self._update("links", "slug", slug, changes, check)

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

    async def _update(
        self, table: str, key_column: str, key: Any, changes: dict[str, Any], check: Check | None = None
    ) -> None:
        """`changes` to one row. `check` (an If-Match, a form's `seen`) runs first in the same
        transaction, on the row as it stands, and may raise to write nothing."""
        if not changes and check is None:
            return
        async with self.transaction() as db:
            await self._checked(db, table, key_column, key, check)
            await self._set(db, table, key_column, key, changes)

    async def _checked(self, db: aiosqlite.Connection, table: str, key_column: str, key: Any,
                       check: Check | None) -> None:  # fmt: skip
        """Inside a write's transaction: the row held (`_hold`), then `check` run on it as it
        stands; it raises to write nothing. Nothing without a check."""
        if check is not None:
            await self._hold(db, table, key_column, key)
            await check()

    @staticmethod
    async def _set(db: aiosqlite.Connection, table: str, key_column: str, key: Any, changes: dict[str, Any]) -> None:
        """Inside a transaction: `changes` to one row (nothing if empty)."""
        # Column names come from our own code (API models and CLI options), never from input.
        allowed = {"businesses": {"name", "timezone", "fallback_agent_id", "colour"},
                   "agents": {"name", "hours", "timezone"},  # channels: set_agent_channels
                   "links": set(LINK_COLUMNS.split(", ")) - {"slug", "created_at", "updated_at"}}[table]  # fmt: skip
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)} in {table}")
        if changes:
            assignments = ", ".join(f"{column} = ?" for column in changes)
            await db.execute(f"UPDATE {table} SET {assignments}, updated_at = ? WHERE {key_column} = ?",
                             (*changes.values(), int(time.time()), key))  # fmt: skip

    async def _hold(self, db: aiosqlite.Connection, table: str, key_column: str, key: Any) -> None:
        """Inside a transaction, keep other connections from changing a row until the commit, so
        that what is read of it next is what the write applies to: SQLite's BEGIN IMMEDIATE holds
        the whole file already; PostgreSQL locks the row."""
        if self.postgres:
            await db.execute(f"SELECT 1 FROM {table} WHERE {key_column} = ? FOR NO KEY UPDATE", (key,))

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

    async def widgets(self, business_id: int | None = None, limit: int | None = None, offset: int = 0) -> list[Widget]:
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = await self._all(  # in the order they were made (PostgreSQL's row_id stands for SQLite's rowid)
            f"SELECT {WIDGET_COLUMNS} FROM widgets WHERE ? IS NULL OR business_id = ?"
            f" ORDER BY created_at, {'row_id' if self.postgres else 'rowid'}{page}",
            (business_id, business_id),
        )
        return [_widget(row) for row in rows]

    async def update_widget(
        self, widget_id: str, business_id: int, settings: dict[str, Any], was: tuple[int, str] | None = None
    ) -> bool:
        """With `was` (business id, settings as stored: `widget_as_stored`), only if the widget
        still has them: False, nothing written, if another request changed it since it was read."""
        sql = "UPDATE widgets SET business_id = ?, settings = ?, updated_at = ? WHERE id = ?"
        params: tuple[Any, ...] = (business_id, json.dumps(settings), int(time.time()), widget_id)
        if was is not None:
            sql, params = sql + " AND business_id = ? AND settings = ?", (*params, *was)
        async with self.transaction() as db:
            cursor = await db.execute(sql, params)
            return cursor.rowcount == 1

    async def widget_as_stored(self, widget_id: str) -> tuple[Widget, str] | None:
        """The widget, and its settings as the database holds them (for `update_widget`'s `was`)."""
        row = await self._one(f"SELECT {WIDGET_COLUMNS} FROM widgets WHERE id = ?", (widget_id,))
        return (_widget(row), str(row[2])) if row else None

    async def delete_widget(self, widget_id: str, check: Check | None = None) -> bool:
        async with self.transaction() as db:
            await self._checked(db, "widgets", "id", widget_id, check)
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



class AgentListed(Exception):
    """An agent a widget lists by id cannot be deleted: `widgets` list it."""

    def __init__(self, widgets: list[str]) -> None:
        super().__init__(widgets)
        self.widgets = widgets


def _agent_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """An agent's changes as its row holds them (hours as JSON)."""
    if "hours" in changes:
        return {**changes, "hours": json.dumps(changes["hours"]) if changes["hours"] else None}
    return changes


async def _write_channels(db: aiosqlite.Connection, agent_id: int, channels: Sequence[tuple[str, str]]) -> None:
    for position, (channel, address) in enumerate(channels):
        await db.execute(
            "INSERT INTO agent_channels (agent_id, channel, address, position) VALUES (?, ?, ?, ?)",
            (agent_id, channel, address, position),
        )
