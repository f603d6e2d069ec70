"""User agents, read twice: on the request path with two precompiled regexes (is it a
link-preview crawler? a phone?), and later, in the click writer, with crawlerdetect (is it
any kind of robot?) and ua-parser (device, OS and browser families for stats). Both
libraries take up to milliseconds a string, which the request path cannot spend."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from crawlerdetect import CrawlerDetect

# Lower-case patterns searched in the lower-cased user agent: several times faster than
# re.IGNORECASE over this many alternatives.
_PREVIEW_OR_BOT = re.compile(
    r"^whatsapp/|facebookexternalhit|facebookcatalog|facebot|meta-externalagent|twitterbot|slackbot|"
    r"telegrambot|linkedinbot|discordbot|googlebot|google-inspectiontool|google-pagerenderer|"
    r"adsbot-google|mediapartners-google|apis-google|bingbot|bingpreview|applebot|skypeuripreview|"
    r"redditbot|pinterestbot|^pinterest/|embedly|vkshare|iframely|mastodon|bluesky|snap url preview|"
    r"yandexbot|baiduspider|duckduckbot|ia_archiver|headlesschrome|"
    r"\bbot\b|crawler|spider|preview|curl/|wget/|python-requests|python-httpx|go-http-client|okhttp|"
    r"^node$|^deno/|^bun/"
)
# Apps that open links in their own browser add their name to a real browser's string, and
# crawlerdetect mistakes some of them (WhatsApp's) for their own link-preview fetchers.
_IN_APP_BROWSER = re.compile(r"^mozilla/5\.0 .*(fban/|fbav/|instagram |whatsapp/|micromessenger/|line/|tiktok)")
_MOBILE = re.compile(r"mobi|android|iphone|ipod|ipad|windows phone|blackberry|opera mini|iemobile|kaios")
MAX_USER_AGENT_LENGTH = 512


@lru_cache(maxsize=8192)
def classify(user_agent: str) -> tuple[bool, bool]:
    """(is a link-preview crawler or script, is a phone), memoised: most clicks come from a
    few thousand distinct browsers. An empty user agent is a script, not a person."""
    lowered = user_agent[:MAX_USER_AGENT_LENGTH].lower()  # callers cut it already; the cache keys too
    return (not lowered or _PREVIEW_OR_BOT.search(lowered) is not None, _MOBILE.search(lowered) is not None)


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
    elif os_family in {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS"} or classify(user_agent)[1]:
        device_class = "mobile"
    elif os_family in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD"}:
        device_class = "desktop"
    else:
        device_class = "other"
    return Device(device_class, os_family, browser)


@lru_cache(maxsize=1)
def _crawler_detect() -> CrawlerDetect:
    return CrawlerDetect()  # compiles its list of ~1,500 patterns once


@lru_cache(maxsize=8192)
def robot_name(user_agent: str) -> str | None:
    """What kind of robot sent this, or None for a person's browser. Run in the click writer
    only: it costs up to two milliseconds for a string not seen before."""
    lowered = user_agent[:MAX_USER_AGENT_LENGTH].lower()
    if not lowered.strip():
        return "no user agent"
    if _IN_APP_BROWSER.search(lowered):
        return None
    preview = _PREVIEW_OR_BOT.search(lowered)
    if preview is not None:
        return user_agent[preview.start() : preview.end()].strip("/ ") or "bot"  # as the robot writes it
    detector = _crawler_detect()
    if detector.isCrawler(user_agent):
        return (detector.getMatches() or "crawler")[:100]
    return None


_IOS = re.compile(r"iPhone|iPod|iPad")


@lru_cache(maxsize=4096)
def is_ios(user_agent: str) -> bool:
    """An iPhone, iPod or iPad that says so (iPadOS's Safari says "Macintosh": it gets the
    desktop's forms, which its Messages app also takes). Asked only for the channels whose
    deep link differs on iOS (an SMS's body), never on the WhatsApp path."""
    return _IOS.search(user_agent) is not None

