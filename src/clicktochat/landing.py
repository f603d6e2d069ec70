"""What a landing page shows around its button, per channel: the messenger's web app for
desktops, where to get an app that may be missing (Viber), and the business's other channels.
Everything here is a URL through our own routes or a public page, never an address."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from .agents import Agent
from .channels import CHANNELS, Channel
from .page_words import button

APP_PAGES = {"viber": "https://www.viber.com/en/download/"}
"""Where to get the app, for the channels whose page says "Nothing happened? Get it"."""


class Alternative(NamedTuple):
    """Another way to reach the business: the button's words, and one of our links."""

    label: str
    url: str


def web_url(link_url: str, channel: Channel, mobile: bool) -> str | None:
    """The link again with ?web=1 (the messenger's web app), for desktops, where there is one."""
    if mobile or channel.build_web_url is None:
        return None
    return link_url + ("&" if "?" in link_url else "?") + "web=1"


def other_channels(agents: Iterable[Agent], current: str) -> list[Agent]:
    """One agent per channel other than `current`, in the business's order of its agents."""
    seen, found = {current}, []
    for agent in agents:
        if agent.channel not in seen and agent.channel in CHANNELS:
            seen.add(agent.channel)
            found.append(agent)
    return found


def alternatives(
    agents: Iterable[Agent], current: str, lang: str, link_to: Callable[[Agent], str]
) -> list[Alternative]:
    """The other channels of the business behind a click, each as its button's words and a
    link made by `link_to` (a signed link today: the address stays sealed inside it)."""
    return [Alternative(button(lang, CHANNELS[a.channel]), link_to(a)) for a in other_channels(agents, current)]
