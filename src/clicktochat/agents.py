"""Who answers a chat: agents' weekly hours, who is available now, and fair rotation
among them when a link points at a whole business."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .errors import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")

Hours = dict[str, list[str]]
"""{"mon": ["09:00-13:00", "15:00-19:00"], ...}; a range ending before it starts runs past midnight."""


@dataclass(frozen=True)
class Business:
    id: int
    name: str
    timezone: str
    fallback_agent_id: int | None = None
    colour: str | None = None  # #rrggbb for its posters; None: ours


@dataclass(frozen=True)
class Agent:
    id: int
    business_id: int
    name: str
    channel: str  # the agent's first channel, and its address on it
    address: str
    hours: Hours | None  # None: always available
    timezone: str
    channels: tuple[tuple[str, str], ...] = ()
    """Every (channel, address) of the agent, first first; left out: only (channel, address)."""

    def __post_init__(self) -> None:
        if not self.channels:
            object.__setattr__(self, "channels", ((self.channel, self.address),))

    def address_on(self, channel: str) -> str | None:
        """The agent's address on `channel`, or None when the agent is not on it."""
        return next((address for name, address in self.channels if name == channel), None)


SERVER_ZONES = frozenset({"localtime", "Factory", "posixrules"})
"""Names in the zone database that are not a place: `localtime` is whatever the server is set
to (UTC in a container), so a shop's hours and days would move with the machine it runs on."""
TIMEZONES = sorted(available_timezones() - SERVER_ZONES)  # the choices offered (dashboard, OpenAPI)


def named(businesses: Sequence[Business], shown: int = 5) -> str:
    """The businesses to choose from, as an error message lists them: ids and names."""
    listed = ", ".join(f"{b.id} ({b.name})" for b in businesses[:shown])
    more = f" and {len(businesses) - shown} more" if len(businesses) > shown else ""
    return f"{listed}{more}"


def check_timezone(name: str, field: str = "timezone") -> str:
    if name in SERVER_ZONES:
        raise InvalidInput(field, f"{name!r} depends on the server; give the place's zone, such as Europe/Rome")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as 'Europe'
        raise InvalidInput(field, f"{name!r} is not an IANA time zone such as Europe/Rome") from None
    return name


def parse_hours(value: Any, field: str = "hours") -> Hours | None:
    """Validate hours given as a mapping, or as text like "mon-fri 09:00-13:00,15:00-19:00; sat 10:00-12:00"."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        value = _hours_from_text(value, field)
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be an object mapping weekdays (mon..sun) to lists of 'HH:MM-HH:MM'")
    hours: Hours = {}
    for day, ranges in value.items():
        if day not in WEEKDAYS:
            raise InvalidInput(f"{field}.{day}", f"unknown weekday; use one of {', '.join(WEEKDAYS)}")
        if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
            raise InvalidInput(f"{field}.{day}", "must be a list of 'HH:MM-HH:MM' strings")
        for r in ranges:
            match = _RANGE.match(r)
            if not match or r[:5] == r[6:] or (r[6:8] == "24" and r[9:] != "00"):
                raise InvalidInput(f"{field}.{day}", f"{r!r} is not a time range like 09:00-18:00")
        if ranges:
            hours[day] = list(ranges)
    return {day: hours[day] for day in WEEKDAYS if day in hours} or None


def _hours_from_text(text: str, field: str) -> dict[str, list[str]]:
    hours: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        days, _, ranges = part.partition(" ")
        if not ranges.strip():
            raise InvalidInput(field, f"{part!r} has no time ranges; write e.g. 'mon-fri 09:00-18:00'")
        for day in _expand_days(days.lower(), field):
            hours.setdefault(day, []).extend(as_written(r.strip()) for r in ranges.split(",") if r.strip())
    return hours


_LOOSE_RANGE = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?$")


def as_written(text: str) -> str:
    """A range within a day as people type it ("9-13", "9:00-17:30") as HH:MM-HH:MM; anything
    else as it is, for parse_hours to refuse ("9-5" is not read as 9 AM to 5 AM: a range past
    midnight is written in full, 22:00-02:00)."""
    match = _LOOSE_RANGE.match(text)
    if not match:
        return text
    h1, m1, h2, m2 = match.groups()
    written = f"{int(h1):02d}:{m1 or '00'}-{int(h2):02d}:{m2 or '00'}"
    return written if written[:5] < written[6:] else text


def _expand_days(days: str, field: str) -> list[str]:
    result: list[str] = []
    for item in days.split(","):
        first, _, last = item.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise InvalidInput(field, f"{item!r} is not a weekday or range of weekdays like mon-fri")
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        result.extend(WEEKDAYS[i % 7] for i in range(start, end + 1 if end >= start else end + 8))
    return result


def format_hours(hours: Hours | None) -> str:
    """Hours as people write them: "mon-fri 09:00-13:00,15:00-19:00; sat 09:00-13:00"."""
    if not hours:
        return "always"
    parts: list[str] = []
    day = 0
    while day < 7:
        ranges = hours.get(WEEKDAYS[day])
        end = day
        while end + 1 < 7 and ranges and hours.get(WEEKDAYS[end + 1]) == ranges:
            end += 1
        if ranges:
            days = WEEKDAYS[day] if end == day else f"{WEEKDAYS[day]}-{WEEKDAYS[end]}"
            parts.append(f"{days} {','.join(ranges)}")
        day = end + 1
    return "; ".join(parts)


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def is_available(agent: Agent, now: datetime) -> bool:
    if agent.hours is None:
        return True
    local = now.astimezone(ZoneInfo(agent.timezone))
    today = WEEKDAYS[local.weekday()]
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    minute = local.hour * 60 + local.minute
    for r in agent.hours.get(today, []):
        start, end = _minutes(r[:5]), _minutes(r[6:])
        if start <= minute < end or (end <= start and minute >= start):
            return True
    for r in agent.hours.get(yesterday, []):
        start, end = _minutes(r[:5]), _minutes(r[6:])
        if end <= start and minute < end:
            return True
    return False


def next_available(agent: Agent, now: datetime) -> datetime | None:
    """When an agent who is away at `now` is next on duty: the widget says "back at 09:00".
    None for agents who are always on, or who have no hours at all in the coming week."""
    if agent.hours is None:
        return None
    zone = ZoneInfo(agent.timezone)
    today = now.astimezone(zone).date()
    for offset in range(8):
        day = today + timedelta(days=offset)
        for start in sorted(_minutes(r[:5]) for r in agent.hours.get(WEEKDAYS[day.weekday()], [])):
            begins = datetime.combine(day, time(start // 60, start % 60), zone)
            if begins > now:
                return begins
    return None


def offered_channels(agents: Iterable[Agent]) -> list[str]:
    """The channels a business offers: the union of its agents' channels, in a stable order
    (by agent id, then each agent's own order), so the first is the oldest agent's first."""
    found: dict[str, None] = {}
    for agent in sorted(agents, key=lambda a: a.id):
        found.update((name, None) for name, _ in agent.channels)
    return list(found)


class Rotation:
    """Round-robin per business over whoever is available at each click, so agents share
    chats evenly even as they come and go. In memory: a restart only resets the turn."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def choose(self, business_id: int, candidates: Sequence[Agent], advance: bool = True) -> Agent:
        """Whose turn it is; `advance=False` only looks (a link preview must not use a turn)."""
        ordered = sorted(candidates, key=lambda a: a.id)
        last = self._last.get(business_id, 0)
        chosen = next((a for a in ordered if a.id > last), ordered[0])
        if advance:
            self._last[business_id] = chosen.id
        return chosen


class SharedRotation(Rotation):
    """Several instances on one database (PostgreSQL): the turn is the database's
    (`sharedstore.SharedStore.take_turn`), so that clicks spread over the instances still go
    to each agent in turn. `choose()` answers as Rotation does and notes in `asked` the choice
    it made (business, candidates), for the click path to take the turn for real and, when the
    database gave it to someone else, to route again with `Given`. While the database is away
    the local turn stands."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: tuple[int, tuple[int, ...]] | None = None

    def choose(self, business_id: int, candidates: Sequence[Agent], advance: bool = True) -> Agent:
        chosen = super().choose(business_id, candidates, advance)
        if advance and len(candidates) > 1:
            self.asked = (business_id, tuple(a.id for a in candidates))
        return chosen

    def given(self, business_id: int, agent_id: int) -> Given:
        """Routing again with the database's turn; the local turn follows it."""
        self._last[business_id] = agent_id
        return Given(agent_id)


class Given(Rotation):
    """A rotation that gives one agent when it is a candidate (the turn the database took)."""

    def __init__(self, agent_id: int) -> None:
        super().__init__()
        self.agent_id = agent_id

    def choose(self, business_id: int, candidates: Sequence[Agent], advance: bool = True) -> Agent:
        return next((a for a in candidates if a.id == self.agent_id), None) or super().choose(business_id, candidates)


def route(
    business_id: int,
    agents: Sequence[Agent],
    fallback: Agent | None,
    now: datetime,
    rotation: Rotation,
    advance: bool = True,
) -> Agent | None:
    """An available agent in turn; else the business's fallback; else anyone in turn
    (a message left outside hours still reaches someone). Callers routing on one channel pass
    only the agents on it (on_channel)."""
    available = [a for a in agents if is_available(a, now)]
    if available:
        return rotation.choose(business_id, available, advance)
    if fallback is not None:
        return fallback
    if agents:
        return rotation.choose(business_id, agents, advance)
    return None


def on_channel(agents: Iterable[Agent], channel: str) -> list[Agent]:
    """The agents who have an address on `channel`."""
    return [agent for agent in agents if agent.address_on(channel) is not None]
