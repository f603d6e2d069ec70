"""The embeddable chat widget, as the server sees it: a widget's settings and their rules,
the configuration the script fetches, the words it shows, which sites may show it, and
the message a click pre-fills. The script itself is `widget/widget.js`."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import rcssmin
import rjsmin
from publicsuffixlist import PublicSuffixList

from .agents import Agent, Business, is_available, next_available, offered_channels
from .channels import CHANNELS, MAX_TEXT_LENGTH
from .errors import FieldError, InvalidInput, Mistakes
from .links import SLUG_ALPHABET
from .qr import contrast

WIDGET_ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?")
RANDOM_ID_LENGTH = 10
LANGUAGES = ("en", "it", "es", "pt", "de", "fr", "ar")
RIGHT_TO_LEFT = frozenset({"ar"})
POSITIONS = ("right", "left")
DEFAULT_COLOUR = "#008069"  # WhatsApp's teal: white on it has a contrast of 4.9:1
DARK_TEXT = "#000000"  # with white, one of the two always reaches 4.5:1
MAX_GREETING_LENGTH = 300
MAX_MESSAGE_LENGTH = 500
MAX_LABEL_LENGTH = 40
MAX_PATTERNS = 50
MAX_PATTERN_LENGTH = 200
MAX_PAGE_URL_LENGTH = 500
MAX_PAGE_TITLE_LENGTH = 150
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# A wildcard stands for a site's subdomains: `*.com` (every site under .com) is no site's; nor is
# `*.co.uk` or `*.github.io`, which the pattern cannot tell (public_suffix, below, does).
DOMAIN_PATTERN = re.compile(rf"(\*\.(?=[^.]*\.))?(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_COLOUR = re.compile(r"#[0-9a-f]{6}")
OPTIN_FORM_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")  # as optins.FORM_SLUG

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "browser": "Open in the browser",
        "apps": "Choose an app",
        "button": "Chat with us", "close": "Close", "online": "Online", "offline": "Away", "back": "Back {time}",
        "yours": "your time", "scan": "Scan with your phone to chat there", "web": "Open WhatsApp Web",
        "return": "Back", "greeting": "Hi! How can we help you?",
        "message": "Hello! I have a question about {page_title} {page_url}",
    },
    "it": {
        "browser": "Apri nel browser",
        "apps": "Scegli un'app",
        "button": "Scrivici", "close": "Chiudi", "online": "Online", "offline": "Assente",
        "back": "Torna {time}", "yours": "tuo orario", "scan": "Inquadra con il telefono per scriverci da lì",
        "web": "Apri WhatsApp Web", "return": "Indietro", "greeting": "Ciao! Come possiamo aiutarti?",
        "message": "Ciao! Ho una domanda su {page_title} {page_url}",
    },
    "es": {
        "browser": "Abrir en el navegador",
        "apps": "Elige una app",
        "button": "Escríbenos", "close": "Cerrar", "online": "En línea", "offline": "Ausente",
        "back": "Vuelve {time}", "yours": "tu hora", "scan": "Escanea con tu móvil para chatear allí",
        "web": "Abrir WhatsApp Web", "return": "Atrás", "greeting": "¡Hola! ¿Cómo podemos ayudarte?",
        "message": "¡Hola! Tengo una pregunta sobre {page_title} {page_url}",
    },
    "pt": {
        "browser": "Abrir no navegador",
        "apps": "Escolha um app",
        "button": "Fale conosco", "close": "Fechar", "online": "Online", "offline": "Ausente",
        "back": "Volta {time}", "yours": "seu horário", "scan": "Leia com o celular para conversar por lá",
        "web": "Abrir WhatsApp Web", "return": "Voltar", "greeting": "Olá! Como podemos ajudar?",
        "message": "Olá! Tenho uma dúvida sobre {page_title} {page_url}",
    },
    "de": {
        "browser": "Im Browser öffnen",
        "apps": "App wählen",
        "button": "Schreib uns", "close": "Schließen", "online": "Online", "offline": "Abwesend",
        "back": "Zurück {time}", "yours": "deine Zeit", "scan": "Mit dem Handy scannen und dort weiterschreiben",
        "web": "WhatsApp Web öffnen", "return": "Zurück", "greeting": "Hallo! Wie können wir helfen?",
        "message": "Hallo! Ich habe eine Frage zu {page_title} {page_url}",
    },
    "fr": {
        "browser": "Ouvrir dans le navigateur",
        "apps": "Choisissez une appli",
        "button": "Écrivez-nous", "close": "Fermer", "online": "En ligne", "offline": "Absent",
        "back": "De retour {time}", "yours": "votre heure",
        "scan": "Scannez avec votre téléphone pour discuter depuis celui-ci",
        "web": "Ouvrir WhatsApp Web", "return": "Retour", "greeting": "Bonjour ! Comment pouvons-nous vous aider ?",
        "message": "Bonjour ! J'ai une question sur {page_title} {page_url}",
    },
    "ar": {
        "browser": "افتح في المتصفح",
        "apps": "اختر تطبيقًا",
        "button": "راسلنا", "close": "إغلاق", "online": "متصل", "offline": "غير متاح", "back": "يعود {time}",
        "yours": "بتوقيتك", "scan": "امسح الرمز بهاتفك للمتابعة عليه", "web": "افتح واتساب ويب", "return": "رجوع",
        "greeting": "مرحبًا! كيف يمكننا مساعدتك؟", "message": "مرحبًا! لدي سؤال عن {page_title} {page_url}",
    },
}  # fmt: skip
UI_WORDS = ("button", "close", "online", "offline", "back", "yours", "scan", "web", "browser", "return", "apps")
"""The words the script shows; the others stay on the server."""


@dataclass(frozen=True)
class WidgetSettings:
    """What a site owner can set. None means "in the visitor's language" or "all"."""

    greeting: str | None = None
    message: str | None = None  # pre-filled text; {page_url} and {page_title} are filled in
    label: str | None = None  # shown beside the button; None: an icon only
    colour: str = DEFAULT_COLOUR
    position: str = "right"
    offset_x: int = 20  # px from the side
    offset_y: int = 20  # px from the bottom
    locale: str | None = None  # None: the page's language, then the browser's
    agent_ids: tuple[int, ...] | None = None  # who the panel lists, in this order; None: every agent
    show_on: tuple[str, ...] = ()  # path patterns ("/shop/*"); empty: every page
    hide_on: tuple[str, ...] = ()
    delay: int = 0  # seconds before the button shows
    scroll: int = 0  # percent of the page scrolled before the button shows
    hide_offline: bool = False  # no button while nobody is available
    bubble: bool = False  # the greeting pops up once per visit
    bubble_delay: int = 5  # seconds
    qr: bool = True  # desktops may scan a code to continue on their phone
    allowed_domains: tuple[str, ...] = ()  # empty: any site
    optin_form: str | None = None  # an opt-in form's slug: the panel offers "Get updates on WhatsApp"

    def to_json(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


SETTING_NAMES = frozenset(f.name for f in fields(WidgetSettings))


@dataclass(frozen=True)
class Widget:
    id: str
    business_id: int
    settings: WidgetSettings
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True)
class WidgetTarget:
    """A widget with what its configuration and clicks need, as kept in the in-process cache."""

    widget: Widget
    business: Business
    agents: tuple[Agent, ...]
    has_logo: bool


def random_widget_id() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(RANDOM_ID_LENGTH))


def check_widget_id(value: str, field: str = "id") -> str:
    normalized = value.strip().lower()
    if not WIDGET_ID_PATTERN.fullmatch(normalized):
        raise InvalidInput(
            field, f"{value!r} is not a valid widget id: 1 to 32 letters, digits, '-' or '_', starting and ending "
            "with a letter or digit",
        )  # fmt: skip
    return normalized


def check_settings(changes: dict[str, Any], base: WidgetSettings | None = None) -> WidgetSettings:
    """`base` with `changes` applied, each checked; errors name the setting."""
    mistakes = Mistakes([FieldError(name, "is not a widget setting") for name in sorted(set(changes) - SETTING_NAMES)])
    checked = {name: mistakes.check(_CHECKS[name], value, name, otherwise=None) for name, value in changes.items()
               if name in SETTING_NAMES}  # fmt: skip
    mistakes.raise_any()
    return replace(base or WidgetSettings(), **checked)


def apply_changes(changes: dict[str, Any], base: WidgetSettings) -> WidgetSettings:
    """`base` with `changes` checked and applied; a setting set to None goes back to its default."""
    defaults = WidgetSettings()
    checked = check_settings({k: v for k, v in changes.items() if v is not None or k not in SETTING_NAMES}, base)
    return replace(checked, **{k: getattr(defaults, k) for k, v in changes.items() if v is None})


def settings_from_json(data: dict[str, Any]) -> WidgetSettings:
    """Settings as stored; unknown keys (from a newer version) are ignored, not fatal."""
    known = {key: value for key, value in data.items() if key in SETTING_NAMES}
    tuples: dict[str, tuple[Any, ...] | None] = {key: tuple(value) for key, value in known.items()
                                                 if isinstance(value, list)}  # fmt: skip
    if known.get("agent_ids") == []:  # stored before [] was refused: every agent, as the dashboard and CLI showed it
        tuples["agent_ids"] = None
    return WidgetSettings(**(known | tuples))


def _text(limit: int) -> Any:
    def check(value: Any, field: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInput(field, "must be text")
        value = value.strip()
        if len(value) > limit:
            raise InvalidInput(field, f"is {len(value)} characters long; at most {limit}")
        if any(ord(ch) < 32 and ch != "\n" or ord(ch) == 127 for ch in value):
            raise InvalidInput(field, "must not contain control characters")
        return value or None

    return check


def _number(low: int, high: int) -> Any:
    def check(value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(field, f"must be a whole number from {low} to {high}")
        return value

    return check


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be true or false")
    return value


def _choice(options: Sequence[str], allow_none: bool = False) -> Any:
    def check(value: Any, field: str) -> str | None:
        if value is None and allow_none:
            return None
        if value not in options:
            raise InvalidInput(field, f"{value!r} is not one of {', '.join(options)}")
        return str(value)

    return check


def _optin_form(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not OPTIN_FORM_PATTERN.fullmatch(value.strip().lower()):
        raise InvalidInput(field, f"{value!r} is not an opt-in form's name (/optin/<name>)")
    return value.strip().lower()


def _colour(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _COLOUR.fullmatch(colour := "#" + value.strip().lower().lstrip("#")):
        raise InvalidInput(field, f"{value!r} is not a colour like #008069")
    return colour


def _strings(value: Any, field: str) -> list[str]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,]+", value) if part]
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(field, "must be a list of strings")
    if len(value) > MAX_PATTERNS:
        raise InvalidInput(field, f"has {len(value)} entries; at most {MAX_PATTERNS}")
    return [item.strip() for item in value]


def _paths(value: Any, field: str) -> tuple[str, ...]:
    patterns = _strings(value, field)
    for pattern in patterns:
        if not pattern.startswith("/") or len(pattern) > MAX_PATTERN_LENGTH or any(ch in pattern for ch in " ?#"):
            raise InvalidInput(field, f"{pattern!r} is not a path pattern like /shop/* (a '*' matches anything)")
    return tuple(dict.fromkeys(patterns))


def _domains(value: Any, field: str) -> tuple[str, ...]:
    domains = [_ascii_host(domain.lower().rstrip(".")) for domain in _strings(value, field)]
    for domain in domains:
        if domain.startswith("*.") and public_suffix(domain[2:]):
            raise InvalidInput(field, f"{domain!r} would allow every site under .{domain[2:]}, where anyone can"
                                      f" register a name; name your site: *.example.{domain[2:]}")  # fmt: skip
        if not DOMAIN_PATTERN.fullmatch(domain):
            raise InvalidInput(
                field, f"{domain!r} is not a host name like example.com or *.example.com (no scheme, port or path)"
            )
    return tuple(dict.fromkeys(domains))


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list the package ships (40 ms to read: once, when a setting is first checked)


def public_suffix(name: str) -> bool:
    """Whether anyone can register names under `name`: a top-level domain (com), a country's
    second level (co.uk) or a host's shared space (github.io), from the Public Suffix List that
    browsers tell sites apart by. A top-level name the list lacks (localhost, x) counts as one."""
    return _suffixes().is_public(name)


def _ascii_host(domain: str) -> str:
    """An internationalised name as browsers send it in Origin (bücher.example: xn--bcher-kva.example);
    left as it was when it is no host name at all (the pattern then says so)."""
    if domain.isascii():
        return domain
    wildcard, host = ("*.", domain[2:]) if domain.startswith("*.") else ("", domain)
    try:
        return wildcard + host.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _agent_ids(value: Any, field: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, int) and not isinstance(item, bool) for item in value
    ):
        raise InvalidInput(field, "must be a list of agent ids, or null for every agent")
    if not value:  # a panel listing nobody is a dead button: every agent is null, not []
        raise InvalidInput(field, "must list at least one agent id, or be null for every agent")
    return tuple(dict.fromkeys(value))


_CHECKS = {
    "greeting": _text(MAX_GREETING_LENGTH),
    "message": _text(MAX_MESSAGE_LENGTH),
    "label": _text(MAX_LABEL_LENGTH),
    "colour": _colour,
    "position": _choice(POSITIONS),
    "offset_x": _number(0, 200),
    "offset_y": _number(0, 200),
    "locale": _choice(LANGUAGES, allow_none=True),
    "optin_form": _optin_form,
    "agent_ids": _agent_ids,
    "show_on": _paths,
    "hide_on": _paths,
    "delay": _number(0, 600),
    "scroll": _number(0, 100),
    "hide_offline": _flag,
    "bubble": _flag,
    "bubble_delay": _number(0, 600),
    "qr": _flag,
    "allowed_domains": _domains,
}


def text_colour(background: str) -> str:
    """White or black, whichever reads better on the owner's colour (always >= 4.5:1)."""
    return "#ffffff" if contrast(background, "#ffffff") >= contrast(background, DARK_TEXT) else DARK_TEXT


def pick_language(forced: str, page_and_browser: str, configured: str | None) -> str:
    """The script's data-locale, else the widget's own setting, else the first of the page's
    `lang` and the browser's languages that we speak, else English."""
    if forced[:2].lower() in LANGUAGES:
        return forced[:2].lower()
    if configured:
        return configured
    for tag in page_and_browser.split(",")[:20]:
        if tag.strip()[:2].lower() in LANGUAGES:
            return tag.strip()[:2].lower()
    return "en"


def domain_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    """`example.com` allows that host only; `*.example.com` allows it and every subdomain."""
    allowed = tuple(allowed)
    if not allowed:
        return True
    if not host:
        return False
    host = host.lower().rstrip(".")
    for domain in allowed:
        if domain.startswith("*."):
            if host == domain[2:] or host.endswith(domain[1:]):
                return True
        elif host == domain:
            return True
    return False


def request_host(origin: str, referer: str) -> str | None:
    """The host of the page asking, from `Origin` (sent with the script's fetch), else `Referer`."""
    for value in (origin, referer):
        if value and value != "null":
            try:
                host = urlsplit(value).hostname
            except ValueError:
                continue
            if host:
                return host
    return None


def same_origin(origin: str, referer: str, base_url: str) -> bool:
    """The page asking is on our own origin (scheme, host and port): the dashboard's preview."""
    ours = urlsplit(base_url)
    for value in (origin, referer):
        if value and value != "null":
            try:
                asking = urlsplit(value)
                return (asking.scheme, asking.netloc) == (ours.scheme, ours.netloc)
            except ValueError:
                return False
    return False


def page_url(value: str, allowed: Iterable[str]) -> str:
    """The page a click came from, as the agent will read it: http(s) only, on an allowed site,
    without its query string or fragment (they can carry personal data and session tokens), nor
    a user name or password before the host (`https://evil.example@shop.it/`: a review)."""
    try:
        parts = urlsplit(value.strip()[:2048])
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or not domain_allowed(host, allowed):
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"[:MAX_PAGE_URL_LENGTH]


def fill_message(template: str, url: str, title: str) -> str:
    """The pre-filled text: the owner's template with the page filled in (a missing part
    leaves no double space behind)."""
    title = " ".join(title.split())[:MAX_PAGE_TITLE_LENGTH]
    text = template.replace("{page_url}", url).replace("{page_title}", title)
    return re.sub(r"[ \t]{2,}", " ", text).strip()[:MAX_TEXT_LENGTH]


def message_template(settings: WidgetSettings, lang: str) -> str:
    return settings.message if settings.message is not None else WORDS[lang]["message"]


class Drafts:
    """Settings not saved yet, for the dashboard's live preview: a few, for a few minutes, in
    memory. The preview asks for its configuration with the draft's random key."""

    def __init__(self, size: int = 200, seconds: float = 600) -> None:
        self.size, self.seconds = size, seconds
        self._drafts: dict[str, tuple[str, WidgetSettings, float]] = {}

    def add(self, widget_id: str, settings: WidgetSettings, now: float | None = None) -> str:
        now = time.time() if now is None else now
        for key in [k for k, (_, _, at) in self._drafts.items() if at < now - self.seconds][: self.size]:
            del self._drafts[key]
        while len(self._drafts) >= self.size:
            del self._drafts[next(iter(self._drafts))]  # the oldest
        key = secrets.token_urlsafe(12)
        self._drafts[key] = (widget_id, settings, now)
        return key

    def get(self, key: str, widget_id: str, now: float | None = None) -> WidgetSettings | None:
        found = self._drafts.get(key)
        now = time.time() if now is None else now
        if found is None or found[0] != widget_id or found[2] < now - self.seconds:
            return None
        return found[1]


def config(
    widget: Widget, business: Business, agents: Sequence[Agent], lang: str, base_url: str, has_logo: bool,
    now: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """What the script fetches: everything it shows, and nothing it does not (no numbers, no
    handles): the business's channels by name and label, and which of them each agent is on."""
    now = now or datetime.now(UTC)
    settings = widget.settings
    if settings.agent_ids is not None:
        by_id = {agent.id: agent for agent in agents}
        agents = [by_id[agent_id] for agent_id in settings.agent_ids if agent_id in by_id]
    listed = []
    for agent in agents:
        available = is_available(agent, now)
        back = None if available else next_available(agent, now)
        listed.append({
            "id": agent.id, "name": agent.name, "channel": agent.channel,
            "channels": [name for name, _ in agent.channels if name in CHANNELS], "available": available,
            "back_at": back.astimezone(UTC).isoformat().replace("+00:00", "Z") if back else None,
            "url": f"{base_url}/w/{widget.id}/{agent.id}",
        })  # fmt: skip
    words = WORDS[lang]
    shown: dict[str, Any] = {
        "id": widget.id,
        "lang": lang,
        "dir": "rtl" if lang in RIGHT_TO_LEFT else "ltr",
        "name": business.name,
        "avatar": f"{base_url}/api/widget/{widget.id}/avatar.png" if has_logo else None,
        "greeting": settings.greeting or words["greeting"],
        "label": settings.label,
        "colour": settings.colour,
        "text_colour": text_colour(settings.colour),
        "position": settings.position,
        "offset_x": settings.offset_x,
        "offset_y": settings.offset_y,
        "agents": listed,
        # What the visitor picks from (names and labels only, never an address): the listed agents' channels.
        "channels": [{"name": name, "label": CHANNELS[name].label} for name in offered_channels(agents)
                     if name in CHANNELS],  # fmt: skip
        "tz": business.timezone,  # whose clock the hours keep: the script names the visitor's when it differs
        "open": any(agent["available"] for agent in listed),
        "rules": {
            "show_on": list(settings.show_on), "hide_on": list(settings.hide_on), "delay": settings.delay,
            "scroll": settings.scroll, "hide_offline": settings.hide_offline,
        },  # fmt: skip
        "bubble": settings.bubble_delay if settings.bubble else None,
        "qr": settings.qr,
        "words": {key: words[key] for key in UI_WORDS},
    }
    if settings.optin_form:  # the panel's "Get updates": its script is fetched only then (optin_pages.py)
        shown["optin"] = {"form": settings.optin_form, "script": f"{base_url}/widget-optin.js"}
    return shown


@dataclass(frozen=True)
class Script:
    """widget.js as served: minified once at start, with its CSS inside (a stylesheet of its
    own would be a second request), gzipped once, named by a hash of its content."""

    body: bytes
    gzipped: bytes
    version: str

    @classmethod
    def build(cls, folder: Path) -> Script:
        css = rcssmin.cssmin((folder / "widget.css").read_text())
        source = (folder / "widget.js").read_text().replace('"__CSS__"', json.dumps(css))
        body = rjsmin.jsmin(source, keep_bang_comments=True).encode()
        return cls(body, gzip.compress(body, 9, mtime=0), hashlib.sha256(body).hexdigest()[:12])
