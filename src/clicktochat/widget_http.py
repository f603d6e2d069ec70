"""The widget's own two endpoints, fetched by every page view of every site that embeds it:
`/widget.js` and `/api/widget/{id}`. Plain ASGI apps like views.ClickEndpoint (no Request or
Response objects, no thread pool), with their headers built once. The configuration's bytes
are kept per (widget, language) for `CONFIG_TTL` seconds, and dropped as soon as the widget
cache is (service.forget(): any edit), since an entry is only good for the very WidgetTarget
it was made from. Errors raised here reach the app's handler."""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from .budget import client_address
from .errors import Forbidden, NotFound
from .widget import (
    WIDGET_ID_PATTERN,
    Script,
    WidgetTarget,
    config,
    domain_allowed,
    pick_language,
    request_host,
    same_origin,
)  # fmt: skip

if TYPE_CHECKING:
    from .service import Service

CONFIG_TTL = 15.0  # availability moves; the response says max-age=60, so a change shows within that
CONFIG_ENTRIES = 4096
MAX_QUERY_LENGTH = 2048
SCRIPT_TYPE = b"text/javascript; charset=utf-8"
WIDGET_HEADERS = {
    "Access-Control-Allow-Origin": "*",  # public by design: embedded on other sites
    "Cross-Origin-Resource-Policy": "cross-origin",  # loadable by sites that require it (COEP)
    "X-Content-Type-Options": "nosniff",
}
NO_RULES = {"show_on": [], "hide_on": [], "delay": 0, "scroll": 0, "hide_offline": False}
RawHeaders = list[tuple[bytes, bytes]]


def raw(headers: dict[str, str]) -> RawHeaders:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


async def find_widget(service: Service, widget_id: str) -> WidgetTarget | None:
    widget_id = widget_id.lower()
    return await service.widget_cache.get(widget_id) if WIDGET_ID_PATTERN.fullmatch(widget_id) else None


def matches(if_none_match: bytes, tag: bytes) -> bool:
    """The client's copy (If-None-Match) is the one tagged `tag`: answer 304."""
    if not if_none_match:
        return False
    wanted = [t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")]
    return tag in wanted or b"*" in wanted


async def respond(send: Send, status: int, headers: RawHeaders, body: bytes = b"") -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ScriptEndpoint:
    """`/widget.js` revalidates hourly, so a new release reaches every site within the hour;
    `/widget.<version>.js` never changes, for sites that pin a version."""

    def __init__(self) -> None:
        self.script: Script | None = None  # app.state.widget_script, read at the first request
        self.tag = b""
        self.responses: dict[tuple[bool, bool, bool], tuple[int, RawHeaders, bytes]] = {}

    def prepare(self, script: Script) -> None:
        """Every response this script can get, headers and all, built once."""
        self.script, self.tag = script, f'"{script.version}"'.encode()
        for pinned in (False, True):
            cache = "public, max-age=31536000, immutable" if pinned else \
                "public, max-age=3600, stale-while-revalidate=86400"  # fmt: skip
            common = raw(WIDGET_HEADERS | {"ETag": self.tag.decode(), "Cache-Control": cache,
                                           "Vary": "Accept-Encoding"})  # fmt: skip
            for gzipped in (False, True):
                body = script.gzipped if gzipped else script.body
                headers = [*common, (b"content-type", SCRIPT_TYPE), (b"content-length", str(len(body)).encode())]
                if gzipped:
                    headers.append((b"content-encoding", b"gzip"))
                self.responses[pinned, gzipped, False] = (200, headers, body)
                self.responses[pinned, gzipped, True] = (304, common, b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        script: Script = scope["app"].state.widget_script
        if script is not self.script:
            self.prepare(script)
        version = scope["path_params"].get("version")
        if version is not None and version != script.version:
            raise NotFound(f"There is no widget version {version!r}; the current one is {script.version}.")
        gzipped, if_none_match = False, b""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                gzipped = b"gzip" in value
            elif name == b"if-none-match":
                if_none_match = value
        status, headers, body = self.responses[version is not None, gzipped, matches(if_none_match, self.tag)]
        await respond(send, status, headers, body)


@dataclass(frozen=True)
class Entry:
    target: WidgetTarget  # the entry is good while the widget cache still gives this object
    expires: float
    body: bytes
    tag: bytes


class ConfigCache:
    """Configuration bytes per (widget, language), bounded, each for `ttl` seconds."""

    def __init__(self, ttl: float = CONFIG_TTL, size: int = CONFIG_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()

    def get(self, target: WidgetTarget, lang: str) -> Entry | None:
        entry = self._entries.get((target.widget.id, lang))
        if entry is None or entry.target is not target or entry.expires <= self.clock():
            return None
        return entry

    def put(self, target: WidgetTarget, lang: str, body: bytes) -> Entry:
        entry = Entry(target, self.clock() + self.ttl, body, etag(body))
        key = (target.widget.id, lang)
        self._entries.pop(key, None)
        self._entries[key] = entry
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)


def etag(body: bytes) -> bytes:
    return f'"{hashlib.sha256(body).hexdigest()[:24]}"'.encode()


@lru_cache(maxsize=1024)
def _origin_facts(origin: str, base_url: str) -> tuple[str | None, bool]:
    """(host, ours) of a page that sent Origin: the same for every request from that site."""
    return request_host(origin, ""), same_origin(origin, "", base_url)


def asking_page(origin: str, referer: str, base_url: str) -> tuple[str | None, bool]:
    if origin and origin != "null":
        return _origin_facts(origin[:512], base_url)
    return request_host(origin, referer), same_origin(origin, referer, base_url)


def query(scope: Scope) -> dict[str, str]:
    """The first value of each query parameter; a query nobody's browser sends is ignored."""
    if not scope["query_string"]:
        return {}
    try:
        pairs = parse_qsl(
            scope["query_string"][:MAX_QUERY_LENGTH].decode("latin-1"), max_num_fields=20, errors="replace"
        )
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name, value)
    return found


_CONFIG_HEADERS = {"public": raw(WIDGET_HEADERS | {"Cache-Control": "public, max-age=60", "Vary": "Origin"}),
                   "preview": raw(WIDGET_HEADERS | {"Cache-Control": "no-store", "Vary": "Origin"})}  # fmt: skip
_JSON = (b"content-type", b"application/json")


class ConfigEndpoint:
    """What the script shows, for one site: CORS-readable, cached a minute (availability moves).
    A configuration drawn anew spends from the caller's budget (budget.py); one from the
    cache costs nothing."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        service: Service = state.service
        widget_id = scope["path_params"]["widget"]
        target = await find_widget(service, widget_id)
        if target is None:
            raise NotFound(f"There is no widget {widget_id!r}: check data-widget in the script tag.")
        origin = referer = ""
        if_none_match = b""
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value[:2048].decode("latin-1")
            elif name == b"referer":
                referer = value[:2048].decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value
        host, ours = asking_page(origin, referer, service.base_url)
        settings = target.widget.settings
        if not ours and not domain_allowed(host, settings.allowed_domains):
            raise Forbidden(
                f"This widget is not allowed on {host}; add the site to the widget's allowed_domains."
                if host else "This widget only shows on its allowed_domains, and this request names no site "
                "(no Origin or Referer header)."
            )  # fmt: skip
        params = query(scope)
        lang = pick_language(params.get("lang", ""), params.get("hl", ""), settings.locale)
        preview = params.get("preview", "") if ours else ""
        if preview and preview != "1" and state.widget_drafts.get(preview, target.widget.id):
            body = self.draw(state, target, lang, preview)  # a signed-in owner's draft, unsaved: drawn each time
            tag, headers = etag(body), _CONFIG_HEADERS["preview"]
        else:  # Origin is anyone's to write: any other preview is the saved settings', cached as the public one
            kind = lang + "|preview" if preview else lang  # (found by a review: drawn anew for every request)
            entry = state.widget_configs.get(target, kind)
            if entry is None:
                state.budget.spend(client_address(scope, state.proxies))
                entry = state.widget_configs.put(target, kind, self.draw(state, target, lang, "1" if preview else ""))
            body, tag, headers = entry.body, entry.tag, _CONFIG_HEADERS["preview" if preview else "public"]
        headers = [*headers, (b"etag", tag)]
        if matches(if_none_match, tag):
            return await respond(send, 304, headers)
        await respond(send, 200, [*headers, _JSON, (b"content-length", str(len(body)).encode())], body)

    @staticmethod
    def draw(state: object, target: WidgetTarget, lang: str, preview: str) -> bytes:
        service: Service = state.service  # type: ignore[attr-defined]
        widget = target.widget
        if preview and preview != "1":  # a draft: the dashboard's live preview of unsaved settings
            draft = state.widget_drafts.get(preview, widget.id)  # type: ignore[attr-defined]
            widget = replace(widget, settings=draft) if draft else widget
        shown = config(widget, target.business, target.agents, lang, service.base_url, target.has_logo)
        if preview:  # the dashboard's: whatever the display rules, and a saved change shows at once
            shown["rules"] = NO_RULES
        return json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode()
