from __future__ import annotations

import pytest

from clicktochat.useragents import classify, parse_device, robot_name
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


# A corpus of real user agents, as their vendors publish them or as they turn up in access logs
# (keys are the test ids). The people must never be counted as robots nor shown the link-preview
# page instead of the chat; the robots must all be named.
PEOPLE_CORPUS: dict[str, str] = {
    # Desktop browsers.
    "chrome-windows": DESKTOP,
    "chrome-macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36"
    ),
    "chrome-linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    ),
    "chrome-chromeos": (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    ),
    "firefox-windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "firefox-macos": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:127.0) Gecko/20100101 Firefox/127.0",
    "firefox-linux": "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "firefox-ubuntu": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    # Also what Safari on an iPad sends by default since iPadOS 13.
    "safari-macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15"
    ),
    "edge-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
    ),
    "edge-macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
    ),
    "opera-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0"
    ),
    "yandex-browser-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 YaBrowser/24.6.0.0 Safari/537.36"
    ),
    # Phones and tablets.
    "safari-iphone": IPHONE,
    "safari-iphone-ios18": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.0 Mobile/15E148 Safari/604.1"
    ),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1"
    ),
    "chrome-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1"
    ),
    "firefox-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "FxiOS/127.0 Mobile/15E148 Safari/605.1.15"
    ),
    "edge-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 EdgiOS/126.2592.56 Mobile/15E148 Safari/605.1.15"
    ),
    "google-app-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "GSA/321.0.645846485 Mobile/15E148 Safari/604.1"
    ),
    "chrome-android": ANDROID,
    "chrome-android-reduced": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36"
    ),
    "chrome-android-tablet": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
    ),
    "samsung-internet": (
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
    ),
    "samsung-internet-reduced": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
    ),
    "firefox-android": "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0",
    "opera-android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36 OPR/83.0.0.0"
    ),
    "opera-mini-android": "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16",
    "edge-android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126.0.0.0"
    ),
    "miui-browser": (
        "Mozilla/5.0 (Linux; U; Android 13; en-us; 2201117TG Build/TKQ1.221114.001) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.5.0-gn"
    ),
    "uc-browser": (
        "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX2030 Build/QKQ1.200209.002) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36"
    ),
    "duckduckgo-android": (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
        "Chrome/126.0.6478.71 Mobile DuckDuckGo/5 Safari/537.36"
    ),
    "kaios-jiophone": (
        "Mozilla/5.0 (Mobile; LYF/F300B/LYF-F300B-001-01-15-130718-i;Android; rv:48.0) Gecko/48.0 "
        "Firefox/48.0 KAIOS/2.5"
    ),
    # In-app browsers: a person who tapped a link inside an app.
    "facebook-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.97;FBBV/609587000;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;"
        "FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/611383270]"
    ),
    "facebook-android": (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 "
        "[FB_IAB/FB4A;FBAV/469.0.0.45.107;]"
    ),
    "messenger-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 LightSpeed [FBAN/MessengerLiteForiOS;FBAV/461.0.0.39.106;FBBV/591863510;"
        "FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.4.1;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/0]"
    ),
    "messenger-android": (
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 Mobile Safari/537.36 "
        "[FB_IAB/Orca-Android;FBAV/455.0.0.33.109;]"
    ),
    "instagram-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Instagram 336.0.1.21.108 (iPhone14,7; iOS 17_5; en_US; en; scale=3.00; 1170x2532; "
        "611441389)"
    ),
    "instagram-android": (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 Instagram 334.0.0.42.95 "
        "Android (34/14; 480dpi; 1080x2340; samsung; SM-S918B; dm3q; qcom; en_US; 606558400)"
    ),
    # crawlerdetect alone takes this one for WhatsApp's link-preview fetcher.
    "whatsapp-android-in-app": (
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 Mobile Safari/537.36 WhatsApp/2.24.10.85"
    ),
    "tiktok-android": (
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 Mobile Safari/537.36 musical_ly_2023407030 "
        "JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/34.7.3 ByteLocale/en "
        "ByteFullLocale/en Region/US AppId/1233 Spark/1.5.8.3-bugfix AppVersion/34.7.3 BytedanceWebview/d8a21c6"
    ),
    "tiktok-android-trill": (
        "Mozilla/5.0 (Linux; Android 12; SM-G991B Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 trill_330604 JsSdk/1.0 "
        "NetType/WIFI Channel/googleplay AppName/trill app_version/33.6.4 ByteLocale/en ByteFullLocale/en "
        "Region/US AppId/1180 Spark/1.4.8.3-bugfix AppVersion/33.6.4 BytedanceWebview/d8a21c6"
    ),
    "tiktok-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 musical_ly_34.5.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US "
        "isDarkMode/0 WKWebView/1 RevealType/Dialog BytedanceWebview/d8a21c6"
    ),
    "line-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Safari Line/14.9.0"
    ),
    "line-android": (
        "Mozilla/5.0 (Linux; Android 13; SM-S901B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 Mobile Safari/537.36 Line/14.6.1/IAB"
    ),
    "wechat-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
    ),
    "wechat-android": (
        "Mozilla/5.0 (Linux; Android 13; V2196A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1110017 "
        "MMWEBSDK/20231202 MMWEBID/4424 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin "
        "NetType/WIFI Language/zh_CN ABI/arm64"
    ),
    "snapchat-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 Snapchat/13.2.0.32 (like Safari/8617.2.4.10.8, panda)"
    ),
    "pinterest-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [Pinterest/iOS]"
    ),
    "pinterest-android": (
        "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.179 Mobile Safari/537.36 [Pinterest/Android]"
    ),
    "linkedin-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [LinkedInApp]/9.29.8962"
    ),
    "twitter-android": (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 TwitterAndroid"
    ),
    "telegram-android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 Telegram-Android/10.14.5 "
        "(Google Pixel 8; Android 14; SDK 34; HIGH)"
    ),
    "kakaotalk-ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 KAKAOTALK 10.7.5"
    ),
    "google-app-android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240605.024; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 GSA/15.24.28.29.arm64"
    ),
}
ROBOT_CORPUS: dict[str, str] = {
    # Link-preview fetchers of chat and social apps.
    "whatsapp-android": WHATSAPP_PREVIEW,
    "whatsapp-ios": "WhatsApp/2.2337.7 i",
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "facebookcatalog": "facebookcatalog/1.0",
    "facebot": "Facebot",
    "meta-externalagent": "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
    "meta-externalfetcher": (
        "meta-externalfetcher/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)"
    ),
    "twitterbot": "Twitterbot/1.0",
    "slackbot-linkexpanding": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "slackbot": "Slackbot 1.0 (+https://api.slack.com/robots)",
    "slack-imgproxy": "Slack-ImgProxy (+https://api.slack.com/robots)",
    "telegrambot": "TelegramBot (like TwitterBot)",
    "linkedinbot": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "discordbot": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    # iMessage's preview fetcher passes itself off as Facebook's and Twitter's.
    "imessage": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
        "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
    ),
    "skypeuripreview": (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"
    ),
    "snap-url-preview": (
        "Mozilla/5.0 (compatible; Snap URL Preview Service; bot; snapchat; https://developers.snap.com/robots)"
    ),
    "pinterestbot": "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
    "pinterest": "Pinterest/0.2 (+https://www.pinterest.com/bot.html)",
    "redditbot": "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
    "mastodon": "http.rb/5.1.1 (Mastodon/4.2.8; +https://mastodon.social/)",
    "bluesky": "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
    "vkshare": "vkShare; +http://vk.com/dev/Share",
    "embedly": "Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)",
    "iframely": "Iframely/1.3.1 (+https://iframely.com/docs/about)",
    # Search engines and other crawlers.
    "googlebot-desktop": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot-desktop-evergreen": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html) Chrome/126.0.6478.126 Safari/537.36"
    ),
    "googlebot-smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    ),
    "googlebot-image": "Googlebot-Image/1.0",
    "google-inspectiontool": "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
    "google-inspectiontool-smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)"
    ),
    "adsbot-google": "AdsBot-Google (+http://www.google.com/adsbot.html)",
    "adsbot-google-mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/14.1.2 Mobile/15E148 Safari/604.1 (compatible; AdsBot-Google-Mobile; "
        "+http://www.google.com/mobile/adsbot.html)"
    ),
    "googleother": "GoogleOther",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "bingbot-evergreen": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"
    ),
    "bingbot-mobile": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/116.0.1938.76 Mobile Safari/537.36 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    ),
    "applebot": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"
    ),
    "yandexbot": "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "duckduckbot": "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "bytespider": (
        "Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/70.0.0.0 Safari/537.36"
    ),
    "gptbot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
    ),
    "claudebot": (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)"
    ),
    "amazonbot": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.1.1 Safari/605.1.15 (Amazonbot/0.1; +https://developer.amazon.com/support/amazonbot)"
    ),
    "ahrefsbot": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "semrushbot": "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    # Uptime monitors and page-speed tools.
    "uptimerobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "pingdom": "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "pingdom-tms": (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/534.34 (KHTML, like Gecko) PingdomTMS/0.8.5 Safari/534.34"
    ),
    "statuscake": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/103.0.0.0 "
        "Safari/537.36 StatusCake"
    ),
    "site24x7": "Site24x7",
    "better-uptime": (
        "Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/74.0.3729.169 Safari/537.36"
    ),
    "better-stack": (
        "Better Stack Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
    ),
    "lighthouse": (
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"
    ),
    # HTTP libraries and tools, with their default user agents.
    "curl": "curl/8.5.0",
    "wget": "Wget/1.21.4",
    "python-requests": "python-requests/2.32.3",
    "python-httpx": "python-httpx/0.27.0",
    "python-urllib": "Python-urllib/3.12",
    "aiohttp": "Python/3.12 aiohttp/3.9.5",
    "go-http-client-1": "Go-http-client/1.1",
    "go-http-client-2": "Go-http-client/2.0",
    "okhttp": "okhttp/4.12.0",
    "axios": "axios/1.7.2",
    "node-fetch-2": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "node-fetch-3": "node-fetch",
    "node-fetch-builtin": "node",  # Node.js's own fetch since 18.20 / 20.12 / 21
    "node-fetch-builtin-old": "undici",  # the same before
    "deno": "Deno/1.37.1",
    "bun": "Bun/1.0.2",
    "java": "Java/17.0.2",
    "apache-httpclient": "Apache-HttpClient/4.5.14 (Java/17.0.2)",
    "libwww-perl": "libwww-perl/6.72",
    "postman": "PostmanRuntime/7.39.0",
    "headlesschrome-linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.6478.126 "
        "Safari/537.36"
    ),
    "headlesschrome-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/126.0.6478.126 Safari/537.36"
    ),
    "empty": "",
}
# The names a few robots are recorded under, as they write them.
ROBOT_NAMES: dict[str, str] = {
    "whatsapp-android": "WhatsApp",
    "whatsapp-ios": "WhatsApp",
    "facebookexternalhit": "facebookexternalhit",
    "imessage": "facebookexternalhit",
    "twitterbot": "Twitterbot",
    "slackbot-linkexpanding": "Slackbot",
    "telegrambot": "TelegramBot",
    "linkedinbot": "LinkedInBot",
    "discordbot": "Discordbot",
    "googlebot-smartphone": "Googlebot",
    "bingbot": "bingbot",
    "curl": "curl",
    "python-requests": "python-requests",
    "headlesschrome-linux": "HeadlessChrome",
    "empty": "no user agent",
}
# The fetchers that build the link card in a chat: they must get the preview page.
LINK_PREVIEW_FETCHERS = [
    "whatsapp-android",
    "whatsapp-ios",
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot-linkexpanding",
    "telegrambot",
    "linkedinbot",
    "discordbot",
    "imessage",
    "skypeuripreview",
    "snap-url-preview",
    "mastodon",
    "bluesky",
]


@pytest.mark.parametrize("ua", list(PEOPLE_CORPUS.values()), ids=list(PEOPLE_CORPUS))
def test_corpus_people_are_not_robots(ua: str) -> None:
    assert robot_name(ua) is None


@pytest.mark.parametrize("ua", list(PEOPLE_CORPUS.values()), ids=list(PEOPLE_CORPUS))
def test_corpus_people_get_the_chat_not_the_preview_page(ua: str) -> None:
    assert not classify(ua)[0]


@pytest.mark.parametrize("ua", list(ROBOT_CORPUS.values()), ids=list(ROBOT_CORPUS))
def test_corpus_robots_are_named(ua: str) -> None:
    name = robot_name(ua)
    assert name is not None and name.strip()


@pytest.mark.parametrize(
    ("ua", "name"), [(ROBOT_CORPUS[key], name) for key, name in ROBOT_NAMES.items()], ids=list(ROBOT_NAMES)
)
def test_corpus_robot_names(ua: str, name: str) -> None:
    assert robot_name(ua) == name


@pytest.mark.parametrize("ua", [ROBOT_CORPUS[key] for key in LINK_PREVIEW_FETCHERS], ids=LINK_PREVIEW_FETCHERS)
def test_corpus_link_preview_fetchers_get_the_preview_page(ua: str) -> None:
    assert classify(ua)[0]
