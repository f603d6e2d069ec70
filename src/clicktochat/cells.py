"""What a click says beyond its time and visitor, as a number (migration 023). A click's link, its
business, campaign, agent and channel (a `click_links` row) and its value of each of
clicks.DIMENSIONS (a `click_facts` row) make a *cell*, a `click_cells` row written once; raw rows
and daily totals then name it by its id. The writer keeps the ids it has met (`CellCache`), so a
click costs a dictionary lookup, not a parse and a wide row; the totals are summed per cell and
day, then per link and per fact (`cell_totals`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

Cell = tuple[Any, ...]
"""A cell's link and fact columns (CELL_COLUMNS): text '' and ids 0 for none."""
CELL_COLUMNS = (
    "link_kind", "link_key", "business_id", "campaign", "agent_id", "channel", "source", "referrer", "device",
    "os", "browser", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "page", "ad_click",
    "robot", "via",
)  # fmt: skip
LINK_WIDTH = 6  # the first columns name a click_links row: the link, its business, campaign, agent and channel
FACT_COLUMNS = CELL_COLUMNS[LINK_WIDTH:]  # then a click_facts row: each of clicks.DIMENSIONS, in its order
MAX_REMEMBERED = 50_000  # raw clicks' fields remembered with their cell: at most ~50 MB of user agents and queries


def fact_key(fact: tuple[str, ...]) -> str:
    """click_facts.key: the values joined by U+001F, as migration 023 joins them in SQL."""
    return "\x1f".join(fact)


class CellInfo(NamedTuple):
    """What the writer needs of a known cell, by its id."""

    id: int
    link: int  # click_links.id
    fact: int  # click_facts.id
    business_id: int
    robot: bool
    values: tuple[str, ...]  # each of FACT_COLUMNS


class CellCache:
    """The cells the writer has met: by their columns (`known`), and by the raw fields of the
    clicks that made them (`by_fields`, emptied when a business moves or changes time zone).
    Both are bounded: past their size they are emptied, and the next clicks look again."""

    def __init__(self, size: int = MAX_REMEMBERED) -> None:
        self.size = size
        self.known: dict[Cell, CellInfo] = {}
        self.by_fields: dict[tuple[Any, ...], CellInfo] = {}

    def learn(self, found: Mapping[Cell, tuple[int, int, int]]) -> None:
        """Cells the database named: {cell: (its id, its link's, its fact's)}."""
        if len(self.known) + len(found) > 4 * self.size:
            self.known.clear()
        for cell, (cell_id, link, fact) in found.items():
            self.known[cell] = CellInfo(cell_id, link, fact, cell[2], bool(cell[18]), cell[LINK_WIDTH:])

    def remember(self, fields: tuple[Any, ...], found: CellInfo) -> None:
        if len(self.by_fields) >= self.size:
            self.by_fields.clear()
        self.by_fields[fields] = found


class Totals(NamedTuple):
    """What a batch adds to each table of totals, a row per key (its columns in the table's order,
    then clicks, uniques and bots)."""

    cell_days: list[tuple[Any, ...]]  # (day, cell, ...)
    link_days: list[tuple[Any, ...]]  # link_totals_days: (day, link, ...)
    link_months: list[tuple[Any, ...]]  # link_totals_months: (month, link, ...)
    dimension_days: list[tuple[Any, ...]]  # ("all", "", dimension, day, business_id, value, ...)

    def sorted(self) -> Totals:
        """Each list in its key's order: two writers add to shared rows in the same order (no deadlock)."""
        return Totals(*(sorted(part) for part in self))


def cell_totals(rows: Iterable[tuple[Any, ...]], infos: Mapping[int, CellInfo]) -> Totals:
    """What raw rows (at, cell, day, visitor, n, uniques) add to the totals: summed per cell and
    day first (a busy link's clicks share a few), then each cell's day into its link's day and
    month and its business's fact's day, and each of those into each dimension's value."""
    per_cell: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        key = (row[2], row[1])
        total = per_cell.get(key)
        if total is None:
            per_cell[key] = total = [0, 0, 0]
        if infos[row[1]].robot:
            total[2] += row[4]
        else:
            total[0] += row[4]
        total[1] += row[5]
    per_link: dict[tuple[str, int], list[int]] = {}
    per_month: dict[tuple[str, int], list[int]] = {}
    per_fact: dict[tuple[str, int, int], list[int]] = {}
    for (day, cell), counts in per_cell.items():
        found = infos[cell]
        _add(per_link, (day, found.link), counts)
        _add(per_month, (day[:7], found.link), counts)
        _add(per_fact, (day, found.business_id, found.fact), counts)
    per_value: dict[tuple[Any, ...], list[int]] = {}
    values = {found.fact: found.values for found in infos.values()}
    for (day, business, fact), counts in per_fact.items():
        _add(per_value, ("all", "", "", day, business, ""), counts)
        for name, value in zip(FACT_COLUMNS, values[fact], strict=True):
            _add(per_value, ("all", "", name, day, business, value), counts)
    return Totals(*([(*key, *counts) for key, counts in part.items()] for part in (per_cell, per_link, per_month,
                                                                                   per_value)))  # fmt: skip


def _add(totals: dict[Any, list[int]], key: Any, counts: list[int]) -> None:
    total = totals.get(key)
    if total is None:
        totals[key] = list(counts)
    else:
        total[0] += counts[0]
        total[1] += counts[1]
        total[2] += counts[2]
