"""The Host header is the visitor's to write, so nothing we send is built from it.

Starlette's own trailing-slash redirect (`redirect_slashes`) put it into `Location`: `GET /admin`
with `Host: evil.example` was a 307 to `http://evil.example/admin/`, a gift to a poisoned cache or
a phishing mail. Our slash redirect is relative instead, and requests naming a host that is not
ours (`CLICKTOCHAT_TRUSTED_HOSTS`; by default the base URL's and loopback) are refused with a 400 before any
route sees them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import MalformedRequest

LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})
UNCHECKED_PATHS = frozenset({"/healthz"})
"""Health checks often name the container's address; the answer builds no URL."""

Refuse = Callable[[Request, Exception], Awaitable[Response]]


def allowed_hosts(trusted: str, base_url: str) -> frozenset[str] | None:
    """The host names requests may name (None: any, for `*`). Without a list, the base URL's host
    and the loopback names: a reverse proxy on the same machine that does not pass Host on (nginx's
    default) names its upstream, 127.0.0.1:8000, and nobody can point a loopback name elsewhere."""
    names = {name.strip().lower().rstrip(".").strip("[]") for name in trusted.split(",") if name.strip()}
    if "*" in names:
        return None
    if names:
        return frozenset(names)
    host = (urlsplit(base_url).hostname or "").rstrip(".")
    return frozenset({host} | LOCAL)


def host_name(raw: str) -> str:
    """The name in a Host header: lower case, without its port, its final dot or IPv6 brackets."""
    value = raw.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        port = value[end + 1:]
        return value[1:end] if end > 0 and (not port or port[:1] == ":" and _port(port[1:])) else ""
    name, _, port = value.partition(":")
    if not _port(port):  # "ours:443@evil.example" is no host of ours
        return ""
    return name.rstrip(".")


def _port(text: str) -> bool:
    return text == "" or (text.isascii() and text.isdigit())


class HostCheck:
    """Whether a request names one of our hosts, and the refusal when it does not. One per app,
    shared by the `TrustedHosts` middleware and the click fast path (`app.App`)."""

    def __init__(self, trusted: str, refuse: Refuse) -> None:
        self.trusted, self.refuse = trusted, refuse
        self._allowed: frozenset[str] | None = None
        self._known = False  # the base URL is known once the service is open
        self._seen: dict[bytes, bool] = {}

    def ours(self, scope: Scope) -> bool:
        """The request (http) names a host we answer for, or needs none (UNCHECKED_PATHS)."""
        if scope["path"] in UNCHECKED_PATHS:
            return True
        if not self._known:
            self._allowed = allowed_hosts(self.trusted, scope["app"].state.service.base_url)
            self._known = True
        if self._allowed is None:
            return True
        host = b""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                break
        ours = self._seen.get(host)
        if ours is None:  # a Host not seen before: a few per server, so each is read once
            ours = host_name(host.decode("latin-1")) in self._allowed
            if len(self._seen) >= 256:
                self._seen.clear()
            self._seen[host] = ours
        return ours

    async def refuse_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = MalformedRequest(
            "This server does not answer for that host name. Use the address you were given; "
            "its owner can add the name to CLICKTOCHAT_TRUSTED_HOSTS."
        )
        response = await self.refuse(Request(scope, receive), error)
        await response(scope, receive, send)


class TrustedHosts:
    """ASGI middleware: a request naming another host is answered `check.refuse(request, 400 error)`."""

    def __init__(self, app: ASGIApp, check: HostCheck) -> None:
        self.app, self.check = app, check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.check.ours(scope):
            return await self.app(scope, receive, send)
        await self.check.refuse_request(scope, receive, send)


class SlashRedirect:
    """A router's default: a path that a route matches with (or without) a trailing slash is sent
    there by a relative 307, which keeps the method; anything else gets the router's 404."""

    def __init__(self, router: Router) -> None:
        self.router, self.fallback = router, router.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != scope.get("root_path", "") + "/":  # a mount's own root stays
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            probe = {**scope, "path": other}
            if other and any(route.matches(probe)[0] is not Match.NONE for route in self.router.routes):
                # One leading slash, never two: "//host/..." would be another site.
                location = "/" + quote(other.lstrip("/"), safe="/:@!$&'()*+,;=~")
                if scope.get("query_string"):
                    location += "?" + scope["query_string"].decode("latin-1")
                return await RedirectResponse(location, status_code=307)(scope, receive, send)
        await self.fallback(scope, receive, send)


def relative_slash_redirects(router: Router) -> None:
    """Replace Starlette's absolute slash redirects, in `router` and every router mounted in it."""
    router.redirect_slashes = False
    router.default = SlashRedirect(router)
    for route in router.routes:
        if isinstance(route, Mount) and isinstance(route.app, Router):
            relative_slash_redirects(route.app)
