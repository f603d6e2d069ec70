"""Stats: what the daily totals say for some links over some days, grouped one way. Read by
the API (`GET /api/v1/stats`), the CLI (`clicktochat stats`) and, later, the dashboard.

Days are the business's own: a click is filed under the date it was in the business's time
zone when it was recorded (UTC for links to a fixed number, which have no business)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .channels import CHANNELS
from .clicks import DIMENSIONS
from .clickstore import LINK_GROUPS
from .csvcells import cell
from .errors import FieldError, InvalidInput
from .links import SLUG_PATTERN
from .store import Store
from .widget import WIDGET_ID_PATTERN

TIME_GROUPS = ("day", "week", "month")
CONVERSATION_GROUPS = (*TIME_GROUPS, *LINK_GROUPS)  # what chat_starts can be grouped by
GROUPS = (*TIME_GROUPS, *LINK_GROUPS, *DIMENSIONS)
DEFAULT_DAYS = 30
MAX_DAYS = 3660  # ten years of daily rows is already more than any chart shows
MAX_LIMIT = 1000
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)  # far from date's limits, which ranges would cross
PARAMETERS = ("from", "to", "by", "business", "link", "campaign", "agent", "widget", "channel", "limit")


@dataclass(frozen=True)
class StatsQuery:
    first_day: date | None = None  # None: DEFAULT_DAYS ending today, in the business's time zone
    last_day: date | None = None
    by: str = "day"
    business_id: int | None = None
    link: str | None = None  # a short link's slug
    campaign: str | None = None
    agent_id: int | None = None
    widget: str | None = None
    channel: str | None = None
    limit: int = 100  # rows when grouping by anything but time

    def filters(self) -> dict[str, object]:
        """As columns of the daily totals."""
        columns: dict[str, object] = {}
        if self.business_id is not None:
            columns["business_id"] = self.business_id
        if self.link is not None:
            columns |= {"link_kind": "short", "link_key": self.link}
        if self.widget is not None or self.by == "widget":
            columns["link_kind"] = "widget"
        if self.widget is not None:
            columns["link_key"] = self.widget
        if self.campaign is not None:
            columns["campaign"] = self.campaign
        if self.agent_id is not None:
            columns["agent_id"] = self.agent_id
        if self.channel is not None:
            columns["channel"] = self.channel
        return columns


@dataclass(frozen=True)
class Counts:
    clicks: int  # people only
    uniques: int
    bots: int  # robots, never in clicks
    conversations: int = 0  # WhatsApp chats started (the customer wrote with the window closed)
    conversion: float | None = None  # chats opened from a click (ref code) / clicks
    # Of `conversations`, those opened from a click: by link, campaign, agent, channel or widget,
    # the rows add up to these; the rest (an ad's, a chat nobody's link began) are no row's.
    conversations_from_clicks: int = 0


@dataclass(frozen=True)
class StatsRow:
    key: str  # a day, week (its Monday), month, slug, campaign, agent id, referrer host, ...; "" for none
    label: str  # for people: the agent's name, "(none)" for "", else the key
    clicks: int
    uniques: int
    bots: int
    conversations: int = 0
    conversion: float | None = None


@dataclass(frozen=True)
class Stats:
    query: StatsQuery
    first_day: date
    last_day: date
    timezone: str
    totals: Counts
    rows: list[StatsRow] = field(default_factory=list)
    chats: bool = True  # chats are counted: a WhatsApp number is or was connected (else no conversion)
    truncated: bool = False  # more groups than `limit`: the rows are the largest ones, the totals count all

    def as_dict(self) -> dict[str, object]:
        filters = {k: v for k, v in asdict(self.query).items() if v is not None and k not in (
            "first_day", "last_day", "by", "limit")}  # fmt: skip
        return {
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "timezone": self.timezone,
            "by": self.query.by,
            "filters": filters,
            "totals": asdict(self.totals),
            "rows": [asdict(row) for row in self.rows],
            "truncated": self.truncated,
        }

    def as_csv(self, every_column: bool = False) -> str:
        """A column for the group's key, then its label, but for days, weeks and months, whose
        label is the key again; chats only where they are counted (`chats`), or always with
        `every_column` (the API's: a program reads the same columns whatever the data)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        labelled = self.query.by not in TIME_GROUPS
        chats = ["conversations", "conversion"] if self.chats or every_column else []  # none without a number
        writer.writerow([self.query.by, *(["label"] if labelled else []), "clicks", "uniques", "bots", *chats])
        for row in self.rows:
            label = [cell(row.label)] if labelled else []
            counted = [row.conversations, "" if row.conversion is None else row.conversion] if chats else []
            writer.writerow([cell(row.key), *label, row.clicks, row.uniques, row.bots, *counted])
        return out.getvalue()


def parse_query(params: Mapping[str, str]) -> StatsQuery:
    """A query from URL parameters; every mistake is reported, each naming its parameter."""
    errors: list[FieldError] = []

    def number(name: str, low: int, high: int) -> int | None:
        if name not in params:
            return None
        raw = params[name]
        # The length first: int() of thousands of digits is a ValueError (and slow)
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not low <= int(raw) <= high:
            errors.append(FieldError(name, f"must be a whole number from {low} to {high}"))
            return None
        return int(raw)

    def day(name: str) -> date | None:
        if name not in params:
            return None
        try:
            if DATE_PATTERN.fullmatch(params[name]):
                found = date.fromisoformat(params[name])
                if FIRST_DAY <= found <= LAST_DAY:
                    return found
                errors.append(FieldError(name, f"must be between {FIRST_DAY} and {LAST_DAY}"))
                return None
        except ValueError:
            pass
        errors.append(FieldError(name, "must be a date written YYYY-MM-DD"))
        return None

    for name in params:
        if name not in PARAMETERS:
            errors.append(FieldError(name, f"is not a known parameter; the known ones are {', '.join(PARAMETERS)}"))
    first_day, last_day = day("from"), day("to")
    by = params.get("by", "day")
    if by not in GROUPS:
        errors.append(FieldError("by", f"must be one of {', '.join(GROUPS)}"))
    link = params.get("link")
    if link is not None and not SLUG_PATTERN.fullmatch(link.lower()):
        errors.append(FieldError("link", "must be a short link's slug"))
    widget = params.get("widget")
    if widget is not None and not WIDGET_ID_PATTERN.fullmatch(widget):
        errors.append(FieldError("widget", "must be a widget id"))
    channel = params.get("channel")
    if channel is not None and channel not in CHANNELS:
        errors.append(FieldError("channel", f"must be one of {', '.join(CHANNELS)}"))
    campaign = params.get("campaign")
    if campaign is not None and len(campaign) > 200:
        errors.append(FieldError("campaign", "must be at most 200 characters"))
    query = StatsQuery(
        first_day, last_day, by, number("business", 1, 2**62), link.lower() if link else None, campaign,
        number("agent", 1, 2**62), widget, channel, number("limit", 1, MAX_LIMIT) or 100,
    )  # fmt: skip
    if not errors:
        errors = check(query)
    if errors:
        raise InvalidInput.many(errors)
    return query


def check(query: StatsQuery) -> list[FieldError]:
    # A short link's clicks and a widget's are apart: asked for together, the answer is always
    # none (it was the widget's, the link quietly dropped).
    if query.link is not None and query.widget is not None:
        return [FieldError("widget", "cannot be asked for with link: a short link's clicks are not a widget's")]
    if query.link is not None and query.by == "widget":
        return [FieldError("by", "cannot be widget with link: a short link's clicks are not a widget's")]
    if query.first_day and query.last_day:
        if query.first_day > query.last_day:
            return [FieldError("from", "must not be after 'to'")]
        if (query.last_day - query.first_day).days >= MAX_DAYS:
            return [FieldError("from", f"must be less than {MAX_DAYS} days before 'to'")]
    return []


async def compute(store: Store, query: StatsQuery, now: datetime | None = None) -> Stats:
    """`now` decides what "today" is (tests pass one)."""
    errors = check(query)
    if errors:
        raise InvalidInput.many(errors)
    timezone, zones = await time_zones(store, query)
    today = max((now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date() for zone in zones)
    # From a day on: up to today (or, for a day still to come, the DEFAULT_DAYS after it).
    last_day = query.last_day or today
    if query.last_day is None and query.first_day is not None and query.first_day > today:
        last_day = query.first_day + timedelta(DEFAULT_DAYS - 1)
    first_day = query.first_day or last_day - timedelta(DEFAULT_DAYS - 1)
    if (last_day - first_day).days >= MAX_DAYS:
        raise InvalidInput("from", f"must be less than {MAX_DAYS} days before 'to'")
    span = (first_day.isoformat(), last_day.isoformat())
    limit = None if query.by in TIME_GROUPS else query.limit
    totals = await read(store, query, span, "", None) or [("", 0, 0, 0)]
    ((_, clicks, uniques, bots),) = totals
    if not clicks + bots and (errors := await unknown(store, query)):  # a typo, not a quiet link
        raise InvalidInput.many(errors)
    found = await read(store, query, span, query.by, None if limit is None else limit + 1)  # one more: any left?
    truncated = limit is not None and len(found) > limit
    found = found[:limit]
    if query.by in TIME_GROUPS:
        found = fill_gaps(found, query.by, first_day, last_day)
    names = {str(a.id): a.name for a in await store.agents()} if query.by == "agent" else {}
    all_chats = (await store.conversation_totals(*span, "", query.filters())).get("", (0, 0))
    if query.by in CONVERSATION_GROUPS:
        chats = await store.conversation_totals(*span, query.by, query.filters())
        keys = {str(key) for key, *_ in found}
        if query.by not in TIME_GROUPS:  # chats from links whose clicks fell before the range
            others = [(key, 0, 0, 0) for key in chats if key not in keys]
            truncated = truncated or len(others) > max(0, limit or 0) - len(found)
            found += others[: max(0, limit or 0) - len(found)]
        rows = [StatsRow(str(key), label(query.by, str(key), names), c, u, b, *converted(chats.get(str(key)), c))
                for key, c, u, b in found]  # fmt: skip
    else:  # chats are not counted by referrer, device... (only clicks know those)
        rows = [StatsRow(str(key), label(query.by, str(key), names), c, u, b) for key, c, u, b in found]
    counted = await store.chats_counted()
    counts = Counts(clicks, uniques, bots, *converted(all_chats, clicks if counted else 0), all_chats[1])
    if not counted:  # no number tells which click became a chat: no conversion to show
        rows = [replace(row, conversion=None) for row in rows]
    return Stats(query, first_day, last_day, timezone, counts, rows, counted, truncated)


def converted(chats: tuple[int, int] | None, clicks: int) -> tuple[int, float | None]:
    """(chats started, the share of clicks that became one)."""
    started, from_clicks = chats or (0, 0)
    return started, round(from_clicks / clicks, 4) if clicks else None


async def read(
    store: Store, query: StatsQuery, span: tuple[str, str], by: str, limit: int | None
) -> list[tuple[object, int, int, int]]:
    """From whichever table holds the answer in the fewest rows: a dimension over every link is
    in dimension_days; anything per link is in link_days; one link's, campaign's, agent's or channel's
    clicks by a dimension in link_dimension_days (the cells of migration 023)."""
    filters = query.filters()
    per_link = any(name in filters for name in ("link_key", "link_kind", "campaign", "agent_id", "channel"))
    dimension = by if by in DIMENSIONS else ""
    group = "value" if dimension else by
    if by in LINK_GROUPS or (per_link and not dimension):
        return await store.link_totals(*span, group, filters, limit)
    if per_link:
        return await store.link_dimension_totals(dimension, *span, group, filters, limit)
    return await store.dimension_totals(dimension, *span, group, query.business_id, limit)


async def unknown(store: Store, query: StatsQuery) -> list[FieldError]:
    """The link, agent or widget asked for, where there is none (asked only when nothing was
    counted: an agent or widget deleted since keeps its clicks)."""
    errors = []
    if query.link is not None and await store.link(query.link) is None:
        errors.append(FieldError("link", f"there is no short link {query.link!r}"))
    if query.agent_id is not None and await store.agent(query.agent_id) is None:
        errors.append(FieldError("agent", f"there is no agent {query.agent_id}"))
    if query.widget is not None and await store.widget(query.widget) is None:
        errors.append(FieldError("widget", f"there is no widget {query.widget!r}"))
    return errors


async def time_zones(store: Store, query: StatsQuery) -> tuple[str, list[str]]:
    """The zone the range is said in, and the zones whose today it runs to: the business's
    (the one asked for, or the business of the link, agent or widget asked for); else the one
    all businesses share; else UTC, running to the latest of their todays (clicks are filed
    under their business's day: none of today's is left out)."""
    business_id = query.business_id
    if business_id is None:
        business_id = await owner(store, query)
    if business_id is not None:
        business = await store.business(business_id)
        if business is None:
            raise InvalidInput("business", f"there is no business {business_id}")
        return business.timezone, [business.timezone]
    zones = sorted({business.timezone for business in await store.businesses()})
    return (zones[0], zones) if len(zones) == 1 else ("UTC", ["UTC", *zones])


async def owner(store: Store, query: StatsQuery) -> int | None:
    """The business of the link, agent or widget a query asks for, if it names one that has one."""
    agent_id = query.agent_id
    if query.link is not None and (link := await store.link(query.link)) is not None:
        if link.business_id is not None:
            return link.business_id
        agent_id = agent_id if link.agent_id is None else link.agent_id
    if query.widget is not None and (widget := await store.widget(query.widget)) is not None:
        return widget.business_id
    if agent_id is not None and (agent := await store.agent(agent_id)) is not None:
        return agent.business_id
    return None


def fill_gaps(
    found: list[tuple[object, int, int, int]], by: str, first: date, last: date
) -> list[tuple[object, int, int, int]]:
    """Every day, week or month of the range, with zeros where nothing happened (charts want them)."""
    counts = {str(key): (c, u, b) for key, c, u, b in found}
    keys: list[str] = []
    day = first
    while day <= last:
        key = day.isoformat() if by == "day" else day.isoformat()[:7] if by == "month" else (
            day - timedelta(day.weekday())).isoformat()  # fmt: skip
        if not keys or keys[-1] != key:
            keys.append(key)
        day += timedelta(1)
    return [(key, *counts.get(key, (0, 0, 0))) for key in keys]


VIA_LABELS = {"qr": "QR code scan", "": "tap on the link"}  # clicks.scanned


def label(by: str, key: str, agent_names: Mapping[str, str]) -> str:
    if by == "via":
        return VIA_LABELS.get(key, key)
    if by == "agent":
        return agent_names.get(key, "(none)" if key == "0" else f"agent {key} (deleted)")
    if by == "channel" and key in CHANNELS:
        return CHANNELS[key].label
    return key or "(none)"
