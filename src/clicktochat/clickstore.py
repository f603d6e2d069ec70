"""The SQL of clicks: raw rows and the daily totals written with them, the unique visitors
recalled at a start, pruning, and the totals that stats read. A part of `store.Store`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from .cells import CELL_COLUMNS, FACT_COLUMNS, LINK_WIDTH, Cell, Totals, fact_key
from .storedb import StoreDB, copy_rows, insert_rows

LOG_COLUMNS = ("at", "cell", "day", "visitor", "n", "uniques")  # clicks.LogRow, in order
CLICK_COLUMNS = (  # clicks.ClickRow, in order: the clicks view (migration 023) has them
    "at", "link_kind", "link_key", "channel", "agent_id", "campaign", "source",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "ad_click", "referrer_host",
    "device_class", "os_family", "browser_family", "page_path", "robot", "via", "business_id", "day", "visitor",
    "n", "uniques",
)  # fmt: skip
DIMENSION_DAY_COLUMNS = ("scope", "scope_value", "dimension", "day", "business_id", "value")
COUNTERS = ("clicks", "uniques", "bots")
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


class Zones(NamedTuple):
    """Whose day a click counts in: each agent's business and that business's time zone, and
    each business's time zone (for its links to a fixed number, which have no agent)."""

    agents: Mapping[int, tuple[int, str]]
    businesses: Mapping[int, str]


NO_ZONES = Zones({}, {})


class ClickStore(StoreDB):
    # -- clicks -----------------------------------------------------------------------

    async def add_clicks(
        self,
        rows: Sequence[Sequence[Any]],
        totals: Totals,
        refs: Sequence[Sequence[Any]] = (),
    ) -> None:
        """Raw rows (clicks.LogRow) and what they add to the totals (cells.cell_totals), together;
        `refs`: the ref codes of clicks whose message carried one (conversations are tied to them)."""
        write = copy_rows if self.postgres else insert_rows
        async with self.transaction() as db:
            await write(db, f"INSERT INTO click_log ({', '.join(LOG_COLUMNS)})", len(LOG_COLUMNS), rows)
            if refs:
                await write(
                    db, "INSERT INTO click_refs (ref, at, link_kind, link_key, campaign, agent_id, channel, address,"
                    " visitor)", 9, refs,
                )  # fmt: skip
            for table, key, added in (("cell_days", ("day", "cell"), totals.cell_days),
                                      ("link_totals_days", ("day", "link"), totals.link_days),
                                      ("link_totals_months", ("month", "link"), totals.link_months),
                                      ("dimension_days", DIMENSION_DAY_COLUMNS, totals.dimension_days)):  # fmt: skip
                upsert = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(
                    f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS
                )
                await write(db, f"INSERT INTO {table} ({', '.join(key + COUNTERS)})", len(key) + 3, added, upsert)

    async def click_cells(self, cells: Sequence[Cell]) -> dict[Cell, tuple[int, int, int]]:
        """The ids of each cell, of its link and of its fact (click_cells, click_links, click_facts:
        migration 023), made where there are none yet; another instance may make the same at once."""
        links = sorted({cell[:LINK_WIDTH] for cell in cells})
        facts = {fact_key(cell[LINK_WIDTH:]): cell[LINK_WIDTH:] for cell in cells}
        async with self.transaction() as db:
            await insert_rows(db, f"INSERT INTO click_links ({', '.join(CELL_COLUMNS[:LINK_WIDTH])})", LINK_WIDTH,
                              links, " ON CONFLICT DO NOTHING")  # fmt: skip
            match = "(" + " AND ".join(f"{name} = ?" for name in CELL_COLUMNS[:LINK_WIDTH]) + ")"
            link_ids: dict[tuple[Any, ...], int] = {}
            for i in range(0, len(links), 100):
                some = links[i : i + 100]
                found = await self._in(db, f"SELECT {', '.join(CELL_COLUMNS[:LINK_WIDTH])}, id FROM click_links"
                                       f" WHERE {' OR '.join([match] * len(some))}", [v for link in some for v in link])
                link_ids |= {tuple(row[:-1]): int(row[-1]) for row in found}  # fmt: skip
            await insert_rows(db, f"INSERT INTO click_facts (key, {', '.join(FACT_COLUMNS)})", 1 + len(FACT_COLUMNS),
                              [(key, *fact) for key, fact in sorted(facts.items())], " ON CONFLICT DO NOTHING")
            fact_ids = await self._by_key(db, list(facts))  # fmt: skip
            ids = {cell: (link_ids[cell[:LINK_WIDTH]], fact_ids[fact_key(cell[LINK_WIDTH:])]) for cell in cells}
            pairs = sorted(set(ids.values()))
            await insert_rows(db, "INSERT INTO click_cells (link, fact)", 2, pairs, " ON CONFLICT DO NOTHING")
            cell_ids: dict[tuple[int, int], int] = {}
            for i in range(0, len(pairs), 200):
                some = pairs[i : i + 200]
                where = " OR ".join(["(link = ? AND fact = ?)"] * len(some))
                found = await self._in(db, f"SELECT link, fact, id FROM click_cells WHERE {where}",
                                       [v for pair in some for v in pair])  # fmt: skip
                cell_ids |= {(int(link), int(fact)): int(cell_id) for link, fact, cell_id in found}
        return {cell: (cell_ids[pair], *pair) for cell, pair in ids.items()}

    async def _by_key(self, db: Any, keys: list[str]) -> dict[str, int]:
        """The id of each of `keys` in click_facts. PostgreSQL's unique index is on md5(key): a
        key can pass the size of a b-tree entry."""
        by_key, each = ("md5(key) IN ({})", "md5(?)") if self.postgres else ("key IN ({})", "?")
        ids: dict[str, int] = {}
        for i in range(0, len(keys), 200):
            some = keys[i : i + 200]
            where = by_key.format(", ".join([each] * len(some)))
            found = await self._in(db, f"SELECT key, id FROM click_facts WHERE {where}", some)
            ids |= {key: int(found_id) for key, found_id in found}
        return ids

    @staticmethod
    async def _in(db: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        async with db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def chats_counted(self) -> bool:
        """Whether chats are counted at all: a WhatsApp number is connected, or chats were counted
        before (a number since disconnected)."""
        (found,) = await self._one(
            "SELECT EXISTS (SELECT 1 FROM whatsapp_numbers) OR EXISTS (SELECT 1 FROM chat_starts)"
        )
        return bool(found)

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
        await self._settled()
        async with self.db.execute(
            f"SELECT {', '.join(CLICK_COLUMNS)} FROM clicks WHERE link_kind = ? AND link_key = ? ORDER BY id",
            (link_kind, link_key),
        ) as cursor:
            return [dict(zip(CLICK_COLUMNS, row, strict=True)) for row in await cursor.fetchall()]

    async def recent_visitors(self, since: int, chunk: int = 50_000) -> AsyncIterator[list[tuple[str, int]]]:
        """The visitor hash and time of each person's click row since `since`, `chunk` rows at a
        time: after an ad spike a window holds millions, which a list of them all would not fit."""
        await self._settled()
        async with self.db.execute(
            "SELECT visitor, at FROM clicks WHERE at >= ? AND visitor IS NOT NULL AND robot IS NULL ORDER BY at",
            (since,),
        ) as cursor:
            while rows := await cursor.fetchmany(chunk):
                yield [(visitor, int(at)) for visitor, at in rows]

    async def click_zones(self) -> Zones:
        """Each agent's business and its time zone, and each business's: whose day a click counts in."""
        rows = await self._all("SELECT a.id, b.id, b.timezone FROM agents a JOIN businesses b ON b.id = a.business_id")
        zones = await self._all("SELECT id, timezone FROM businesses")
        return Zones({agent_id: (business_id, timezone) for agent_id, business_id, timezone in rows}, dict(zones))

    async def prune_clicks(self, before: int, chunk: int = 20_000) -> int:
        """Delete raw rows older than `before`, a chunk per transaction so clicks keep flowing."""
        deleted = 0
        while True:
            async with self.transaction() as db:
                cursor = await db.execute(
                    "DELETE FROM click_log WHERE id IN (SELECT id FROM click_log WHERE at < ? LIMIT ?)",
                    (before, chunk),
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
        self, dimension: str, first_day: str, last_day: str, group: str, business_id: int | None,
        limit: int | None = None,
    ) -> list[tuple[Any, int, int, int]]:  # fmt: skip
        """The same over every link (of a business, or of all), from dimension_days: `group` is
        "value" (the dimension's, '' for the day's total) or one of GROUPINGS."""
        where = "scope = 'all' AND scope_value = '' AND dimension = ? AND day BETWEEN ? AND ?"
        params: list[Any] = [dimension, first_day, last_day]
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
        if dimension not in FACT_COLUMNS:
            raise ValueError(f"unknown dimension {dimension!r}")
        where = "day BETWEEN ? AND ?" + "".join(f" AND {name} = ?" for name in filters)
        params = [first_day, last_day, *filters.values()]
        return await self._totals("link_dimension_days", group, where, params, limit, value=dimension)

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



def _order(group: str) -> str:
    """Time in order; anything else by clicks, then robots, most first."""
    return "1" if group in ("day", "week", "month") else "2 DESC, 4 DESC, 1"
