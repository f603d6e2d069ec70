"""What several instances on one PostgreSQL database share, which one process keeps in memory
(issue 13; tables of migration 012):

- the agent rotation: each business's last agent, taken in one atomic upsert (`take_turn`);
- the sign-in throttle: failed tries of the last window, counted under a lock (`attempt`);
- scheduled jobs: when each is next due, moved forward by the one instance that runs it (`due`);
- unique visitors: each visitor key's last click (`decide_uniques`, in the click writer);
- the day's visitor salt: made by the first instance to need it, taken by the others (`share_salts`).

`SharedStore` has a connection of its own (psycopg's async one, on the event loop): a turn of
the rotation is taken on the click path, and must not wait behind the click writer's
transaction on the store's connection. It is opened again after the server restarted; while the
database is away its calls raise `Unreachable` and callers fall back to what one instance knows.
The other two run on the store's connection, inside its transactions."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .store import Store

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
THROTTLE_LOCK = 0x0C71C7C4A8  # advisory lock: one sign-in try counted at a time, across instances
TIMEOUT = 1.0  # seconds a shared call may take before the caller does without it
PAUSE = 2.0  # seconds without shared calls after one failed: clicks must not each wait for a dead server
CHUNK = 1000  # visitors a statement


class Unreachable(Exception):
    """The database did not answer a shared call in time (or refused the connection)."""


class SharedStore:
    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()  # one statement or transaction at a time on the one connection
        self._paused_until = 0.0  # time.monotonic(): after a failure, calls fail at once until then

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self, statements: Sequence[tuple[str, Any]]) -> list[Any]:
        """The rows of the last of `statements`, all in one transaction when there are several.
        The timeout bounds the database's answer, not the wait for the connection: a burst of
        calls queues on the lock and each gets the database's answer (counted in the wrong place
        if it timed out in the queue: thirty sign-in guesses at once on a busy machine let ten
        through). A call that failed pauses the others, which then fail at once, in the queue too."""
        if time.monotonic() < self._paused_until:
            raise Unreachable("the database failed a moment ago")
        async with self._lock:
            if time.monotonic() < self._paused_until:
                raise Unreachable("the database failed a moment ago")
            try:
                async with asyncio.timeout(self.timeout):  # not wait_for: in 3.11 it can swallow a cancel
                    return await self._work(statements)
            except (TimeoutError, OSError) as exc:
                await self._drop()
                raise Unreachable(str(exc)) from exc
            except Exception as exc:
                import psycopg

                if isinstance(exc, psycopg.OperationalError):
                    await self._drop()
                    raise Unreachable(str(exc)) from exc
                raise

    async def _drop(self) -> None:
        """Forget a connection that failed (the next call after PAUSE opens another)."""
        self._paused_until = time.monotonic() + PAUSE
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already gone
                pass

    async def _work(self, statements: Sequence[tuple[str, Any]]) -> list[Any]:
        import psycopg

        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self.timeout)),
                application_name="clicktochat shared",
            )
        rows: list[Any] = []
        async with conn.transaction() if len(statements) > 1 else _nothing():
            for sql, params in statements:
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall() if cursor.description else []
        return rows

    # -- rotation ---------------------------------------------------------------------

    async def take_turn(self, business_id: int, agent_ids: Sequence[int]) -> int:
        """The agent whose turn it is among `agent_ids` (agents.Rotation's rule: the first after
        the business's last, else the first), recorded as the last, atomically across instances."""
        ids = sorted(agent_ids)
        rows = await self._run([(
            "INSERT INTO rotations AS r (business_id, last_agent_id) VALUES (%(b)s, %(first)s)"
            " ON CONFLICT (business_id) DO UPDATE SET last_agent_id = coalesce("
            "(SELECT min(c) FROM unnest(%(ids)s::bigint[]) AS c WHERE c > r.last_agent_id), %(first)s)"
            " RETURNING last_agent_id",
            {"b": business_id, "first": ids[0], "ids": ids},
        )])  # fmt: skip
        return int(rows[0][0])

    # -- sign-in throttle -------------------------------------------------------------

    async def attempt(self, keys: Sequence[str], limits: Sequence[int], window: float, now: float) -> float:
        """Count a try under each of `keys`, unless one of them already has its limit of tries
        in the window; returns the seconds to wait then (0.0: counted). One try at a time across
        instances (an advisory lock), so that a burst sent to all of them is counted in turn."""
        since = now - window
        rows = await self._run([
            ("SELECT pg_advisory_xact_lock(%s)", (THROTTLE_LOCK,)),
            ("DELETE FROM login_failures WHERE at <= %s", (since,)),
            ("WITH blocked AS (SELECT max((SELECT f.at FROM login_failures f WHERE f.key = k.key AND f.at > %(since)s"
             " ORDER BY f.at DESC OFFSET k.lim - 1 LIMIT 1)) AS at"
             " FROM unnest(%(keys)s::text[], %(limits)s::int[]) AS k(key, lim)),"
             " added AS (INSERT INTO login_failures (key, at) SELECT key, %(now)s FROM unnest(%(keys)s::text[]) AS key"
             " WHERE (SELECT at FROM blocked) IS NULL RETURNING 1)"
             " SELECT at, (SELECT count(*) FROM added) FROM blocked",
             {"since": since, "keys": list(keys), "limits": list(limits), "now": now}),
        ])  # fmt: skip
        blocked = rows[0][0]
        return 0.0 if blocked is None else max(0.0, float(blocked) + window - now)

    async def failures(self, keys: Sequence[str], since: float) -> int:
        """Failed tries counted under any of `keys` since `since`."""
        rows = await self._run([("SELECT count(*) FROM login_failures WHERE key = ANY(%s) AND at > %s",
                                 (list(keys), since))])  # fmt: skip
        return int(rows[0][0])

    async def succeeded(self, pair: str, others: Sequence[str]) -> None:
        """A right try: the pair's tries stop counting, and the last try of each of `others`."""
        await self._run([(
            "DELETE FROM login_failures WHERE key = %s OR id IN (SELECT DISTINCT ON (key) id FROM login_failures"
            " WHERE key = ANY(%s) ORDER BY key, at DESC)",
            (pair, list(others)),
        )])  # fmt: skip

    # -- scheduled jobs ---------------------------------------------------------------

    async def due(self, job: str, now: float, every: float) -> bool:
        """Whether this instance runs `job` now: it is, when it moves the job's next time from
        the past to `now + every`; an instance that finds it in the future skips the job."""
        rows = await self._run([(
            "INSERT INTO job_runs AS j (name, next_at) VALUES (%s, %s) ON CONFLICT (name)"
            " DO UPDATE SET next_at = excluded.next_at WHERE j.next_at <= %s RETURNING name",
            (job, int(now + every), int(now)),
        )])  # fmt: skip
        return bool(rows)


# -- on the store's connection --------------------------------------------------------


async def decide_uniques(
    store: Store, visits: dict[str, tuple[int, int]], before: dict[str, str], window: int
) -> set[str]:
    """Which of `visits` (visitor: (first, last) click of the batch) are the visitor's first
    within `window` seconds across every instance: each visitor's last click is kept in
    seen_visitors by one upsert that returns the one it replaced. `before`: visitor: its key
    under yesterday's salt, looked up too. Visitors in sorted order: two writers lock rows in
    the same order and never deadlock."""
    ordered = sorted(visits)
    previous: dict[str, int | None] = {}
    earlier: dict[str, int] = {}
    async with store.transaction() as db:
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start : start + CHUNK]
            # Two arrays, not a VALUES list: psycopg parses a long statement in Python, placeholder
            # by placeholder (16 µs of CPU a visitor against 6.5 this way).
            async with db.execute(
                "INSERT INTO seen_visitors AS s (visitor, last_at) SELECT * FROM unnest(?::text[], ?::bigint[])"
                " ORDER BY 1 ON CONFLICT (visitor)"
                " DO UPDATE SET prev_at = s.last_at, last_at = max(s.last_at, excluded.last_at)"
                " RETURNING visitor, prev_at", (chunk, [visits[visitor][1] for visitor in chunk]),
            ) as cursor:  # fmt: skip
                previous.update((visitor, at) for visitor, at in await cursor.fetchall())
        keys = sorted(set(before.values()))
        for start in range(0, len(keys), CHUNK):
            async with db.execute(
                "SELECT visitor, last_at FROM seen_visitors WHERE visitor = ANY(?)", (keys[start : start + CHUNK],)
            ) as cursor:
                earlier.update((key, int(at)) for key, at in await cursor.fetchall())
    new = set()
    for visitor, (first, _) in visits.items():
        last = previous.get(visitor)
        if last is not None and abs(first - last) < window:
            continue
        key = before.get(visitor)
        if key and key in earlier and abs(first - earlier[key]) < window:
            continue
        new.add(visitor)
    return new


async def forget_visitors(store: Store, before: int) -> int:
    """Visitor keys whose last click is older than `before`: they are new again anyway."""
    async with store.transaction() as db:
        cursor = await db.execute("DELETE FROM seen_visitors WHERE last_at < ?", (before,))
        return int(cursor.rowcount)


async def share_salts(store: Store, ours: str) -> str:
    """The visitor salts every instance uses (visitors.Salts's saved form): the newest day's wins,
    made by whichever instance got there first, so a visitor has one key on every instance; a
    salt of yesterday that one instance has already let go is gone for all."""
    async with store.transaction() as db:
        await db.execute("INSERT INTO meta (key, value) VALUES ('visitor_salts', ?) ON CONFLICT (key) DO NOTHING",
                         (ours,))  # fmt: skip
        async with db.execute("SELECT value FROM meta WHERE key = 'visitor_salts' FOR UPDATE") as cursor:
            row = await cursor.fetchone()
        theirs = row[0] if row else ours
        merged = merge_salts(ours, theirs)
        if merged != theirs:
            await db.execute("UPDATE meta SET value = ? WHERE key = 'visitor_salts'", (merged,))
    return merged


def merge_salts(ours: str, theirs: str) -> str:
    mine, stored = json.loads(ours), json.loads(theirs)
    if int(stored["day"]) > int(mine["day"]):
        return theirs
    if int(mine["day"]) > int(stored["day"]):
        return ours
    if not mine.get("previous"):
        stored["previous"] = ""
    return json.dumps(stored)


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None
