"""What the REST API and the CLI can do with businesses and agents, validated once: a part of
`service.Service` (as service_widgets is), apart because the people a click reaches are their
own idea: a business, its agents, each agent's channels."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from .agents import Agent, Business, check_timezone, parse_hours
from .channels import get_channel
from .errors import Conflict, InvalidInput, Mistakes, NotFound
from .links import ShortLink
from .logos import check_logo
from .names import check_name
from .posters import check_colour
from .service_widgets import CHANGE_TRIES
from .settings import Settings
from .store import AgentListed, Store
from .versions import Check, as_stored

MAX_NAME_LENGTH = 200


class TeamService:
    store: Store
    settings: Settings

    def forget(self) -> None:
        """service.Service's: drop what is cached of links and widgets."""
        raise NotImplementedError

    async def business_of(self, link: ShortLink) -> int | None:
        """service.Service's."""
        raise NotImplementedError

    async def link_state(self, link: ShortLink, now: float | None = None) -> str:
        """service.Service's."""
        raise NotImplementedError

    async def add_business(self, name: str, timezone: str = "UTC", colour: str | None = None) -> Business:
        mistakes = Mistakes()
        name = mistakes.check(_check_name, name, otherwise=name)
        timezone = mistakes.check(check_timezone, timezone, otherwise=timezone)
        colour = mistakes.check(check_colour, colour, otherwise=None)
        mistakes.raise_any()
        return await self.store.add_business(name, timezone, colour)

    async def get_business(self, business_id: int) -> Business:
        business = await self.store.business(business_id)
        if business is None:
            raise NotFound(f"There is no business {business_id}.")
        return business

    async def update_business(self, business_id: int, changes: dict[str, Any], if_match: str | None = None) -> Business:
        await self.get_business(business_id)
        mistakes = Mistakes()
        update: dict[str, Any] = {}
        if "name" in changes:
            update["name"] = mistakes.check(_check_name, changes["name"], otherwise="")
        if "timezone" in changes:
            update["timezone"] = mistakes.check(check_timezone, changes["timezone"], otherwise="")
        if "colour" in changes:
            update["colour"] = mistakes.check(check_colour, changes["colour"], otherwise=None)
        if "fallback_agent_id" in changes:
            fallback = changes["fallback_agent_id"]
            agent = await self.store.agent(fallback) if fallback is not None else None
            if fallback is not None and (agent is None or agent.business_id != business_id):
                mistakes.refuse("fallback_agent_id", f"there is no agent {fallback} in this business")
            update["fallback_agent_id"] = fallback
        mistakes.raise_any()
        await self.store.update_business(business_id, update,
                                         as_stored(self.store.business, business_id, if_match, "This business"))
        self.forget()
        return await self.get_business(business_id)

    async def delete_business(self, business_id: int, if_match: str | None = None) -> None:
        await self.get_business(business_id)
        try:
            await self.store.delete_business(business_id,
                                             as_stored(self.store.business, business_id, if_match, "This business"))
        except sqlite3.IntegrityError:
            raise Conflict(
                "Links or widgets still lead to this business or its agents; point them elsewhere first."
            ) from None
        self.forget()

    async def set_logo(self, business_id: int, image: bytes | None) -> None:
        """Set (checked and re-encoded as a small PNG) or remove (None) a business's logo."""
        await self.get_business(business_id)
        # Decoding an upload can take a moment: off the event loop.
        png = await asyncio.to_thread(check_logo, image) if image is not None else None
        await self.store.set_logo(business_id, png)

    async def add_agent(
        self, business_id: int, name: str, to: str | None = None, channel: str = "whatsapp", hours: Any = None,
        timezone: str | None = None, channels: Any = None,
    ) -> Agent:  # fmt: skip
        """An agent with one channel (`to` on `channel`), or several (`channels`: a list of
        {"channel", "address"}, the first first)."""
        if await self.store.business(business_id) is None:
            raise InvalidInput("business_id", f"there is no business {business_id}")
        mistakes = Mistakes()
        name = mistakes.check(_check_name, name, otherwise=name)
        none: list[tuple[str, str]] = []
        checked = mistakes.check(self._first_channels, to, channel, channels, otherwise=none)
        parsed = mistakes.check(parse_hours, hours, otherwise=None)
        timezone = mistakes.check(check_timezone, timezone, otherwise=None) if timezone else None
        mistakes.raise_any()
        (first, address), *more = checked
        agent = await self.store.add_agent(business_id, name, first, address, parsed, timezone, more)
        self.forget()
        return agent

    async def get_agent(self, agent_id: int) -> Agent:
        agent = await self.store.agent(agent_id)
        if agent is None:
            raise NotFound(f"There is no agent {agent_id}.")
        return agent

    async def update_agent(self, agent_id: int, changes: dict[str, Any], if_match: str | None = None) -> Agent:
        agent = await self.get_agent(agent_id)
        mistakes = Mistakes()
        update: dict[str, Any] = {}
        if "name" in changes:
            update["name"] = mistakes.check(_check_name, changes["name"], otherwise="")
        channels = mistakes.check(self._new_channels, agent, changes, otherwise=None)
        if "hours" in changes:
            update["hours"] = mistakes.check(parse_hours, changes["hours"], otherwise=None)
        if "timezone" in changes and changes["timezone"]:
            update["timezone"] = mistakes.check(check_timezone, changes["timezone"], otherwise=None)
        elif "timezone" in changes:
            update["timezone"] = None
        mistakes.raise_any()
        check = as_stored(self.store.agent, agent_id, if_match, "This agent")
        if channels is None or not await self._edit_channels(
            agent, lambda fresh: self._new_channels(fresh, changes), check, update
        ):  # with channels, the other fields are written with them, in one transaction under one check
            await self.store.update_agent(agent_id, update, check)
        self.forget()
        return await self.get_agent(agent_id)

    async def _edit_channels(
        self, agent: Agent, edit: Callable[[Agent], list[tuple[str, str]] | None], check: Check | None = None,
        fields: dict[str, Any] | None = None,
    ) -> bool:
        """Write `edit(agent)`'s channels, provided the agent's are still as read: if another
        request changed them meanwhile (a channel added at the same moment), read them again and
        redo the edit on those, so neither change undoes the other. `fields` (name, hours...) go in
        the same transaction. False if `edit` changed nothing (nothing written, `check` not run)."""
        for _ in range(CHANGE_TRIES):
            channels = edit(agent)
            if channels is None:
                return False
            if await self.store.set_agent_channels(agent.id, channels, agent.channels, check, fields):
                return True
            agent = await self.get_agent(agent.id)
        raise Conflict(f"Agent {agent.id}'s channels kept changing while this change was made; send it again.")

    def _first_channels(self, to: str | None, channel: str, channels: Any) -> list[tuple[str, str]]:
        """A new agent's channels: `channels`, or `to` on `channel`."""
        if channels is not None and to is not None:
            raise InvalidInput("channels", "give channels, or channel and address, not both")
        if channels is not None:
            return check_channels(channels, self.settings.default_region)
        if to is None:
            raise InvalidInput("address", "is required (or give channels)")
        found = get_channel(channel)
        return [(found.name, found.normalize(to, self.settings.default_region, "address"))]

    def _new_channels(self, agent: Agent, changes: dict[str, Any]) -> list[tuple[str, str]] | None:
        """The agent's channels after `changes`: all of them (`channels`), or the first one's
        channel and address (the others stay); None: unchanged."""
        if "channels" in changes:
            if {"channel", "address"} & changes.keys():
                raise InvalidInput("channels", "give channels, or channel and address, not both")
            return check_channels(changes["channels"], self.settings.default_region)
        if "channel" not in changes and "address" not in changes:
            return None
        found = get_channel(changes.get("channel") or agent.channel)
        if "address" in changes:
            address = found.normalize(changes["address"], self.settings.default_region, "address")
        elif found.name != agent.channel:
            raise InvalidInput("address", "give the address on the new channel together with channel")
        else:
            return None
        return [(found.name, address), *((name, a) for name, a in agent.channels[1:] if name != found.name)]

    async def add_agent_channel(self, agent_id: int, channel: str, to: str) -> Agent:
        """One more channel for an agent, last in their order; a channel they have already gets
        the new address, where it stands."""
        agent = await self.get_agent(agent_id)
        found = get_channel(channel)
        address = found.normalize(to, self.settings.default_region, "address")

        def added(agent: Agent) -> list[tuple[str, str]]:
            if agent.address_on(found.name) is not None:
                return [(name, address if name == found.name else a) for name, a in agent.channels]
            return [*agent.channels, (found.name, address)]

        await self._edit_channels(agent, added)
        self.forget()
        return await self.get_agent(agent_id)

    async def remove_agent_channel(self, agent_id: int, channel: str) -> Agent:
        """Take a channel from an agent. When nobody else at the business is on it, the business
        stops offering it at once: links and widget clicks asking for it answer 410."""
        agent = await self.get_agent(agent_id)
        if agent.address_on(channel) is None:
            raise InvalidInput("channel", f"agent {agent_id} is not on {channel!r}; their channels: "
                               f"{', '.join(name for name, _ in agent.channels)}")  # fmt: skip

        def removed(agent: Agent) -> list[tuple[str, str]]:
            left = [c for c in agent.channels if c[0] != channel]
            if not left:
                raise InvalidInput("channel", f"is agent {agent_id}'s only channel: an agent needs one "
                                   "(add another first, or remove the agent)")  # fmt: skip
            return left

        await self._edit_channels(agent, removed)
        self.forget()
        return await self.get_agent(agent_id)

    async def links_gone(self, business_id: int, channel: str) -> list[str]:
        """The short links of a business that ask for `channel` and answer 410 now that nobody
        there is on it (said after a channel is taken from an agent)."""
        found, offset = [], 0
        while page := await self.store.links(limit=1000, offset=offset):
            for link in page:
                if link.channel == channel and await self.business_of(link) == business_id \
                        and await self.link_state(link) == "channel gone":  # fmt: skip
                    found.append(link.slug)
            offset += len(page)
        return found

    async def business_channels(self, business_id: int) -> list[str]:
        """The channels a business offers (its agents' channels, agents.offered_channels's order)."""
        await self.get_business(business_id)
        return await self.store.business_channels(business_id)

    async def delete_agent(self, agent_id: int, if_match: str | None = None) -> None:
        await self.get_agent(agent_id)
        try:
            await self.store.delete_agent(agent_id, as_stored(self.store.agent, agent_id, if_match, "This agent"))
        except sqlite3.IntegrityError:
            raise Conflict("Links still lead to this agent; point them elsewhere first.") from None
        except AgentListed as exc:
            raise Conflict(f"Widgets list this agent: {', '.join(exc.widgets)}. Take the agent out of their agents "
                           "first, or let them list everyone.") from None
        self.forget()


def check_channels(value: Any, default_region: str, field: str = "channels") -> list[tuple[str, str]]:
    """An agent's channels as given: a list of {"channel", "address"} (or (channel, address)
    pairs), at least one, each channel once, each address checked by its channel's normalize.
    Errors name the entry, as `channels[1].address`."""
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput(field, "must be a list of at least one {channel, address}")
    checked: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if isinstance(item, dict):
            name, address = item.get("channel", "whatsapp"), item.get("address")
        elif isinstance(item, list | tuple) and len(item) == 2:
            name, address = item
        else:
            raise InvalidInput(where, "must be an object with channel and address")
        if not isinstance(name, str):
            raise InvalidInput(f"{where}.channel", "must be a channel's name")
        if not isinstance(address, str):
            raise InvalidInput(f"{where}.address", "is required")
        found = get_channel(name, f"{where}.channel")
        if any(found.name == done for done, _ in checked):
            raise InvalidInput(f"{where}.channel", f"{found.label} is listed twice; an agent has one address on each")
        checked.append((found.name, found.normalize(address, default_region, f"{where}.address")))
    return checked



def _check_name(name: str) -> str:
    return check_name(name, MAX_NAME_LENGTH)
