"""What a landing page shows around its button, per channel: the messenger's web app for
desktops, where to get an app that may be missing (Viber), and the business's other channels.
Everything here is a URL through our own routes or a public page, never an address."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from .agents import Agent, offered_channels
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


def alternatives(agents: Iterable[Agent], current: str, lang: str, link_to: Callable[[str], str]) -> list[Alternative]:
    """The other channels the business offers through `agents` (those on shift now), each as its
    button's words and `link_to(channel)`: the same link asking for that channel (`?ch=`), so the
    click is routed, counted and attributed as the link's own, and no address is ever shown."""
    return [Alternative(button(lang, CHANNELS[name]), link_to(name))
            for name in offered_channels(agents) if name != current and name in CHANNELS]  # fmt: skip
