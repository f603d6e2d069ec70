"""User agents, read twice: on the request path with two precompiled regexes (is it a
link-preview crawler? a phone?) and later, in the click writer, with ua-parser for the
device, OS and browser families that stats show."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser

_PREVIEW_OR_BOT = re.compile(
    r"WhatsApp|facebookexternalhit|facebookcatalog|Facebot|meta-externalagent|Twitterbot|Slackbot|"
    r"TelegramBot|LinkedInBot|Discordbot|Googlebot|Google-InspectionTool|Google-PageRenderer|"
    r"AdsBot-Google|Mediapartners-Google|APIs-Google|bingbot|BingPreview|Applebot|SkypeUriPreview|"
    r"redditbot|Pinterest|Embedly|vkShare|Iframely|Mastodon|Bluesky|Snap URL Preview|"
    r"YandexBot|Baiduspider|DuckDuckBot|ia_archiver|HeadlessChrome|"
    r"\bbot\b|crawler|spider|preview|curl/|Wget/|python-requests|python-httpx|Go-http-client|okhttp",
    re.IGNORECASE,
)
_MOBILE = re.compile(r"Mobi|Android|iPhone|iPod|iPad|Windows Phone|BlackBerry|Opera Mini|IEMobile|KAIOS", re.IGNORECASE)


def is_preview_crawler(user_agent: str) -> bool:
    """Link previews and crawlers get an Open Graph page and are not counted as clicks.
    An empty user agent is a script, not a person."""
    return not user_agent or bool(_PREVIEW_OR_BOT.search(user_agent))


def is_mobile(user_agent: str) -> bool:
    return bool(_MOBILE.search(user_agent))


@dataclass(frozen=True)
class Device:
    device_class: str  # mobile | tablet | desktop | other
    os_family: str
    browser_family: str


@lru_cache(maxsize=4096)
def parse_device(user_agent: str) -> Device:
    """Run in the background writer only: ua-parser takes about a millisecond a string."""
    result = ua_parser.parse(user_agent)
    os_family = result.os.family if result.os else "Other"
    browser = result.user_agent.family if result.user_agent else "Other"
    device = result.device.family if result.device else "Other"
    if "iPad" in device or "Tablet" in device or (os_family == "Android" and "Mobile" not in user_agent):
        device_class = "tablet"
    elif os_family in {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"} or is_mobile(user_agent):
        device_class = "mobile"
    elif os_family in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD"}:
        device_class = "desktop"
    else:
        device_class = "other"
    return Device(device_class, os_family, browser)
