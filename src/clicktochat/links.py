"""Short links: slugs people can type from paper, and what a slug leads to at the moment
of the click (a fixed number, one agent, or whoever is on duty at a business)."""

from __future__ import annotations

import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

from .agents import Agent, Rotation, on_channel, route
from .errors import InvalidInput, Mistakes
from .names import check_name

SLUG_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
"""No 0/o, 1/l/i: a slug read off a flyer is typed right the first time."""
RANDOM_SLUG_LENGTH = 7  # 31**7 ≈ 2.7e10 slugs
SLUG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")
RESERVED_SLUGS = frozenset(
    "admin api app c s qr poster static widget widget.js login logout new edit help about "
    "favicon.ico robots.txt well-known".split()
)
MAX_LABEL_LENGTH = 100
MODES = ("auto", "redirect", "landing")
"""What a click gets: auto (phones go to the chat, desktops see the landing page), or always one."""


@dataclass(frozen=True)
class ShortLink:
    slug: str
    text: str = ""
    channel: str | None = None
    address: str | None = None
    agent_id: int | None = None
    business_id: int | None = None
    campaign: str | None = None
    source: str | None = None
    mode: str = "auto"
    disabled: bool = False
    expires_at: int | None = None
    created_at: int = 0
    updated_at: int = 0
    ref_code: bool | None = None  # a ref code in the text; None: when the number is connected (WhatsApp)


@dataclass(frozen=True)
class Target:
    """A short link with all it needs to route a click, as kept in the in-process cache."""

    link: ShortLink
    title: str | None  # the business's name, for the landing page
    agents: tuple[Agent, ...] = ()  # the business's agents, when the link points at the business
    fallback: Agent | None = None
    business_id: int | None = None  # of the link's business or agent, for its logo
    colleagues: tuple[Agent, ...] = ()  # links to an agent or a fixed address: the business's agents, on other channels
    # A link to a fixed address makes the same click every time (views.short_click keeps it
    # here, by whether the web app was asked for); the cache drops it with the Target on any edit.
    clicks: dict[bool, Any] = field(default_factory=dict, compare=False, repr=False)


class Destination(NamedTuple):
    """Where one click goes (a tuple: one is made per click)."""

    channel: str
    address: str
    agent_id: int | None = None


def random_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(RANDOM_SLUG_LENGTH))


def check_slug(slug: str, field: str = "slug") -> str:
    """A custom slug, lower-cased: slugs are matched case-insensitively, as people type them."""
    normalized = slug.strip().lower()
    if not SLUG_PATTERN.fullmatch(normalized):
        raise InvalidInput(
            field,
            f"{slug!r} is not a valid slug: use 1 to 64 letters a-z (no accents), digits, '-' or '_', "
            "starting and ending with a letter or digit",
        )
    if normalized in RESERVED_SLUGS:
        raise InvalidInput(field, f"{slug!r} is reserved; choose another slug")
    return normalized


def check_label(value: str | None, field: str) -> str | None:
    """Campaign and source labels: short, printable, shown in stats."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if len(value) > MAX_LABEL_LENGTH:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {MAX_LABEL_LENGTH}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def check_title(value: str | None, field: str = "title") -> str | None:
    """A signed link's landing-page title: shown to the people who follow it, so held to a
    name's rules (no control character, no text direction mark that makes it read otherwise)."""
    if value is None or value.strip() == "":
        return None
    return check_name(value, MAX_LABEL_LENGTH, field)


def check_mode(mode: str, field: str = "mode") -> str:
    if mode not in MODES:
        raise InvalidInput(field, f"{mode!r} is not one of auto, redirect, landing")
    return mode


KIND_FIELDS = ("slug", "title", "ref_code", "agent_id", "business_id")


def kind_mistakes(mistakes: Mistakes, short: bool, slug: Any = None, title: Any = None, ref_code: Any = None,
                  agent_id: Any = None, business_id: Any = None) -> None:  # fmt: skip
    """What only a short link takes, or only a signed one, given to the other (each kept in
    `mistakes`, unless the field is named there already: one mistake at a time per field)."""
    named = {error.field for error in mistakes.errors}
    fixed = "signed links lead to a fixed number (to); make a short link to lead to an agent or business"
    wrong = [("title", title, "is for signed links; a short link's page shows its business's name")] if short else [
        ("ref_code", ref_code, "is for short links; signed links carry one when the number is connected"),
        ("slug", slug, "only short links have a slug; leave it out or set short to true"),
        ("agent_id", agent_id, fixed), ("business_id", business_id, fixed),  # the agent on shift: known at the click
    ]  # fmt: skip
    for field_, value, reason in wrong:
        if value is not None and field_ not in named:
            mistakes.refuse(field_, reason)


class NotOffered(Exception):
    """A click asked for a channel that none of the business's agents has (or no longer has)."""

    def __init__(self, channel: str) -> None:
        super().__init__(f"no agent is on {channel!r}")
        self.channel = channel


def resolve(
    target: Target, now: datetime | None, rotation: Rotation, advance: bool = True, channel: str | None = None
) -> Destination | None:
    """Where a click on `target` goes; `now` (default: the clock) only matters for businesses,
    and only a click that `advance`s takes a turn in the rotation (not previews or HEADs).
    `channel`: the one the click asked for (a link to an agent or business may name one too);
    NotOffered when the business has nobody on it."""
    link = target.link
    if link.channel is not None and link.address is not None:
        if channel is None or channel == link.channel or not on_channel(target.colleagues, channel):
            return Destination(link.channel, link.address)  # (a channel nobody is on: the link's own)
        # A fixed address of a business, asked for another of the business's channels (its page's
        # "other channels"): whoever of its agents is on that one, in turn.
        return choose(target.business_id or 0, None, target.colleagues, None, channel, now, rotation, advance)
    wanted = channel or link.channel
    if link.agent_id is not None:
        agent = target.agents[0] if target.agents else None
        return choose(target.business_id or 0, agent, target.colleagues, None, wanted, now, rotation, advance)
    return choose(target.business_id or 0, None, target.agents, target.fallback, wanted, now, rotation, advance)


def choose(
    business_id: int, agent: Agent | None, agents: tuple[Agent, ...] | list[Agent], fallback: Agent | None,
    channel: str | None, now: datetime | None, rotation: Rotation, advance: bool,
) -> Destination | None:  # fmt: skip
    """`agent` (when one is named) on `channel`, or on their first channel when none is asked
    for; else whoever of `agents` on that channel is in turn (agents.route), the fallback only
    if it is on it too. None: nobody at all; NotOffered: agents, but none on `channel`."""
    if agent is not None and channel is None:
        return Destination(agent.channel, agent.address, agent.id)
    if agent is not None and channel is not None and (address := agent.address_on(channel)) is not None:
        return Destination(channel, address, agent.id)
    now = now or datetime.now(UTC)
    if channel is None:
        chosen = route(business_id, agents, fallback, now, rotation, advance)
        return Destination(chosen.channel, chosen.address, chosen.id) if chosen else None
    candidates = on_channel(agents, channel)
    if not candidates:
        if agents or agent is not None:
            raise NotOffered(channel)
        return None
    if fallback is not None and fallback.address_on(channel) is None:
        fallback = None
    chosen = route(business_id, candidates, fallback, now, rotation, advance)
    assert chosen is not None  # candidates is not empty
    return Destination(channel, chosen.address_on(channel) or chosen.address, chosen.id)


T = TypeVar("T")


class LinkCache(Generic[T]):
    """Short links by slug (or widgets by id), in memory: a click on a cached slug reads nothing from disk.
    Cleared whole by any edit in this process, and by `routing_version` moving when another
    process (the CLI) edits the database. Unknown slugs are remembered apart, in an LRU of
    their own: a repeated bad slug costs one read, and bad slugs never push real links out."""

    def __init__(self, loader: Callable[[str], Awaitable[T | None]], size: int = 10_000) -> None:
        self._loader = loader
        self._size = size
        self._found: OrderedDict[str, T] = OrderedDict()
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self._generation = 0

    def peek(self, key: str) -> T | None:
        """What is cached under `key` as given, without a read or a coroutine (the click path's
        common case); None: not cached (look it up with `get`)."""
        target = self._found.get(key)
        if target is not None:
            self._found.move_to_end(key)
        return target

    async def get(self, slug: str) -> T | None:
        target = self.peek(slug)
        if target is not None:
            return target
        if slug in self._unknown:
            return None
        generation = self._generation
        target = await self._loader(slug)
        if generation == self._generation:  # not cleared while we were reading: still true
            entries: OrderedDict[str, Any] = self._found if target is not None else self._unknown
            entries[slug] = target
            if len(entries) > self._size:
                entries.popitem(last=False)
        return target

    def clear(self) -> None:
        self._found.clear()
        self._unknown.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._found) + len(self._unknown)
