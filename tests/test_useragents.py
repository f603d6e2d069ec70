from __future__ import annotations

import pytest

from clicktochat.useragents import classify, parse_device
from conftest import ANDROID, DESKTOP, IPHONE, WHATSAPP_PREVIEW

PREVIEWERS = [
    WHATSAPP_PREVIEW,
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "TelegramBot (like TwitterBot)",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "",
]
PEOPLE = [
    IPHONE,
    ANDROID,
    DESKTOP,
    # In-app browsers are people, not previews.
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.97;FBBV/600000000;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS]",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/124.0.0.0 Mobile Safari/537.36 Instagram 330.0.0.0.0 Android",
]


@pytest.mark.parametrize("ua", PREVIEWERS)
def test_previewers_and_scripts_are_recognised(ua: str) -> None:
    assert classify(ua)[0]


@pytest.mark.parametrize("ua", PEOPLE)
def test_people_are_not_previewers(ua: str) -> None:
    assert not classify(ua)[0]


def test_mobile_detection() -> None:
    assert classify(IPHONE)[1] and classify(ANDROID)[1] and classify(PEOPLE[3])[1]
    assert not classify(DESKTOP)[1]


def test_device_families_for_stats() -> None:
    iphone = parse_device(IPHONE)
    assert (iphone.device_class, iphone.os_family, iphone.browser_family) == ("mobile", "iOS", "Mobile Safari")
    assert parse_device(ANDROID).device_class == "mobile"
    desktop = parse_device(DESKTOP)
    assert (desktop.device_class, desktop.os_family, desktop.browser_family) == ("desktop", "Windows", "Chrome")
    tablet = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari"
    assert parse_device(tablet).device_class == "tablet"
    assert parse_device("").device_class == "other"
