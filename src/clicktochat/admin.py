"""The dashboard at /admin: server-rendered pages over `Service`, for people who will never
read the API's docs. Every form works without JavaScript (admin.js only adds copy buttons);
every POST carries a CSRF token; every page is behind a session and sends strict headers.

Handlers are thin: they turn form fields into the arguments `Service` takes, and show its
refusals (`InvalidInput`) next to the fields they name."""

from __future__ import annotations

import functools
import posixpath
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .accounts import LoginThrottle, authenticate
from .agents import WEEKDAYS
from .budget import client_address
from .channels import CHANNELS
from .charts import Series, line_chart
from .errors import FieldError, Forbidden, InvalidInput, LengthRequired, NotFound, PayloadTooLarge, ProblemError
from .keys import create_api_key
from .notify_api import month_costs
from .service import Service, timestamp
from .sessions import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_SECONDS,
    csrf_ok,
    csrf_token,
    end_session,
    new_csrf_cookie,
    session_admin,
    start_session,
)
from .stats import TIME_GROUPS, Stats, compute, parse_query
from .store import Admin
from .versions import tag

MAX_FORM_BYTES = 64 * 1024
LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "es": "Español", "pt": "Português", "de": "Deutsch",
                  "fr": "Français", "ar": "العربية"}  # fmt: skip
BREAKDOWNS = ("campaign", "link", "agent", "channel", "via", "referrer", "device")
STATS_FILTERS = ("from", "to", "business", "link", "campaign", "agent", "widget", "channel")  # as the API's
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
ADMIN_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
LABELS = {  # the names the forms show, for the list of mistakes above a form
    "to": "Address", "address": "Address", "agent_address": "Address", "agent_name": "Name",
    "new_channel": "Messenger", "new_address": "Address", "channel": "Messenger",
    "agent_timezone": "Time zone", "timezone": "Time zone", "text": "Message", "slug": "Slug",
    "source": "Placed on", "fallback_agent_id": "Fallback agent", "agent_id": "Agent", "business_id": "Business",
    "dark": "Colour", "light": "Background", "error": "Error correction", "border": "Quiet zone", "size": "Size",
    "inverted": "Light on dark (inverted)",
    "offset_x": "Pixels from the side", "offset_y": "Pixels from the bottom", "delay": "Seconds before it appears",
    "scroll": "Percent scrolled", "bubble_delay": "Seconds before the greeting", "show_on": "Only on these pages",
    "hide_on": "Never on these pages", "allowed_domains": "Allowed sites", "agent_ids": "Agents",
    "label": "Label", "message": "Pre-filled message", "from": "From", "seen": "Changed meanwhile",
    **{f"hours.{day}": day.capitalize() for day in WEEKDAYS},
}  # fmt: skip
FLASHES = {  # ?done=... after a redirect: fixed words, never text from the URL
    "saved": "Saved.", "created": "Created.", "deleted": "Deleted.", "disabled": "The link is disabled.",
    "enabled": "The link works again.", "revoked": "The key is revoked.", "signed-out": "You are signed out.",
}  # fmt: skip


@dataclass
class Page:
    """What every handler gets: who is signed in, the CSRF token for its forms, the posted form."""

    request: Request
    service: Service
    admin: Admin
    csrf: str
    form: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def render(self, template: str, section: str, status_code: int = 200, **context: Any) -> Response:
        errors: list[FieldError] = context.pop("errors", [])
        labels = LABELS | ({"to": "To"} if section == "stats" else {})  # there "to" is a day
        return render(
            self.request, f"admin/{template}", status_code, admin=self.admin, csrf=self.csrf, section=section,
            errors={e.field: e.reason for e in errors}, error_list=[(labels.get(e.field, e.field), e.reason)
            for e in errors], form=self.form,
            flash=FLASHES.get(self.request.query_params.get("done", "")), **context,
        )  # fmt: skip


Handler = Callable[[Request, Page], Awaitable[Response]]


def changed_meanwhile(what: str) -> FieldError:
    """The form's `seen` (versions.tag of what the page showed) no longer names what is stored."""
    return FieldError("seen", f"someone changed this {what} after you opened this page, so nothing was saved. What "
                              "you typed is below: save again to put it in place of their change, or reload the page "
                              "to start from what is stored now.")  # fmt: skip


def stale(form: dict[str, str], thing: object, what: str) -> list[FieldError]:
    """A form refused for its mistakes that was also made on what someone changed since: say so
    now, as the page shown again carries what is stored now (a review: the next save, mistakes
    fixed, overwrote the other change without a word)."""
    seen = form.get("seen")
    return [changed_meanwhile(what)] if seen and seen != tag(thing) else []


def form_status(errors: list[FieldError]) -> int:
    """A form shown again: 409 when it was made on what has changed since, 422 for mistakes."""
    return 409 if any(e.field == "seen" for e in errors) else 422 if errors else 200


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(ADMIN_HEADERS)
    return response


def see_other(path: str, done: str | None = None, query: dict[str, str] | None = None) -> Response:
    """Post/redirect/get: a reload never posts twice."""
    query = ({"done": done} if done else {}) | (query or {})
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303, headers=ADMIN_HEADERS)


def secure(request: Request) -> bool:
    """Cookies are `Secure` when the public address is HTTPS or the request came over it."""
    if request.url.scheme == "https" or request.app.state.service.base_url.startswith("https://"):
        return True
    peer = request.client.host if request.client else ""
    return request.headers.get("x-forwarded-proto") == "https" and request.app.state.proxies.trusts(peer)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/admin", httponly=True, secure=secure(request), samesite="lax"
    )


@dataclass
class Form:
    fields: dict[str, str]  # the first value of each
    lists: dict[str, list[str]]  # every value (checkboxes)
    files: dict[str, bytes]


async def read_form(request: Request, upload_limit: int = 0) -> Form:
    """A posted form; files only where `upload_limit` allows one, of a size known beforehand."""
    limit = MAX_FORM_BYTES + upload_limit
    length = request.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()):  # browsers always send it; a stream could be endless
        raise LengthRequired("Send the form with a Content-Length.")
    if int(length) > limit:
        raise PayloadTooLarge(f"A form is at most {limit // 1024} KiB.")
    try:
        form: FormData = await request.form(max_files=1 if upload_limit else 0, max_fields=200,
                                            max_part_size=MAX_FORM_BYTES)  # fmt: skip
    except (ProblemError, ClientDisconnect):  # a body past its deadline (408, app.in_time), a client gone
        raise
    except Exception as exc:  # python-multipart's and Starlette's refusals of a broken body
        raise InvalidInput("form", f"could not be read: {exc}") from None
    lists: dict[str, list[str]] = {}
    files: dict[str, bytes] = {}
    try:
        for k, v in form.multi_items():
            if isinstance(v, str):
                lists.setdefault(k, []).append(v.replace("\r\n", "\n"))  # browsers send CRLF new lines
            else:
                files[k] = await v.read(upload_limit + 1)
    finally:
        await form.close()
    return Form({k: v[0] for k, v in lists.items()}, lists, files)


def same_site(request: Request) -> bool:
    """Browsers say where a form came from; a cross-site POST is refused even with a token.
    Ours is the address asked for or the public base URL (a proxy may not pass Host on)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    ours = {request.headers.get("host"), urlsplit(request.app.state.service.base_url).netloc}
    origin = request.headers.get("origin")
    if origin is None:  # older browsers send none on same-origin POSTs; a Referer, if any, is then the page's
        referer = request.headers.get("referer")
        return referer is None or _netloc(referer) in ours
    return origin != "null" and _netloc(origin) in ours


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc
    except ValueError:  # http://[ : no address of ours
        return None


async def check_post(request: Request, keys: list[str], upload_limit: int = 0, session: str = "") -> Form:
    form = await read_form(request, upload_limit)
    token = form.fields.get(CSRF_FIELD, "")
    if not same_site(request) or not csrf_ok(keys, request.cookies.get(CSRF_COOKIE, ""), token, session):
        raise Forbidden("This form has expired or came from another site. Go back, reload the page and try again.")
    return form


def admin_page(handler: Handler, upload_limit: int = 0, agents: bool = False
               ) -> Callable[[Request], Awaitable[Response]]:  # fmt: skip
    """Signed in, or sent to the sign-in page; POSTs checked for their CSRF token. An owner's
    page unless `agents`: an agent is refused it (and sent from the home page to the conversations)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        service: Service = request.app.state.service
        keys = service.signer.keys
        session = request.cookies.get(SESSION_COOKIE, "")
        admin = await session_admin(service.store, keys, session)
        if admin is None:
            return to_login(request)
        request.state.signed_in = True  # its 404s are not a stranger's guesses (app.problem_response)
        if not (agents or admin.owner):
            if request.url.path == "/admin/" and request.method == "GET":
                return see_other("/admin/conversations")
            raise Forbidden("This page is for the business's owners: your account answers conversations.")
        cookie = request.cookies.get(CSRF_COOKIE) or new_csrf_cookie()
        page = Page(request, service, admin, csrf_token(keys, cookie, session))
        if request.method == "POST":
            posted = await check_post(request, keys, upload_limit, session)
            page.form, page.lists, page.files = posted.fields, posted.lists, posted.files
        response = await handler(request, page)
        if CSRF_COOKIE not in request.cookies:
            set_cookie(request, response, CSRF_COOKIE, cookie, None)
        return response

    return endpoint


def agent_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page agents may use as well as owners: the conversations, signing out."""
    return admin_page(handler, agents=True)


def to_login(request: Request) -> Response:
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/admin/login" + (f"?{urlencode({'next': wanted})}" if request.method == "GET" else "")
    return RedirectResponse(target, status_code=303, headers=ADMIN_HEADERS)


def local_path(value: str) -> str:
    """Where to go after signing in: only a dashboard page of ours, never another site."""
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[": an unclosed IPv6 host
        return "/admin/"
    path = posixpath.normpath(parts.path) + ("/" if parts.path.endswith("/") else "")
    if parts.scheme or parts.netloc or "\\" in value or not (path == "/admin/" or path.startswith("/admin/")):
        return "/admin/"
    return path + (f"?{parts.query}" if parts.query else "")


# -- signing in and out ---------------------------------------------------------------


async def login(request: Request) -> Response:
    service: Service = request.app.state.service
    keys = service.signer.keys
    cookie = request.cookies.get(CSRF_COOKIE) or new_csrf_cookie()
    next_path = local_path(request.query_params.get("next", "/admin/"))

    def form(status: int = 200, error: str | None = None, username: str = "", **headers: str) -> Response:
        response = render(
            request, "admin/login.html", status, csrf=csrf_token(keys, cookie), error=error, username=username,
            next=next_path, flash=FLASHES.get(request.query_params.get("done", "")),
        )  # fmt: skip
        response.headers.update(headers)
        if CSRF_COOKIE not in request.cookies:
            set_cookie(request, response, CSRF_COOKIE, cookie, None)
        return response

    if request.method == "GET":
        return form()
    fields = (await check_post(request, keys)).fields
    username, password = fields.get("username", "").strip(), fields.get("password", "")
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request.scope, request.app.state.proxies)
    wait = await throttle.check(username, address)  # counted as failed until it succeeds
    if wait:
        minutes = (wait + 59) // 60
        return form(429, f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes != 1)}.",
                    username, **{"Retry-After": str(wait)})  # fmt: skip
    admin = await authenticate(service.store, username, password) if username and password else None
    if admin is None:
        return form(401, "Wrong username or password.", username)
    await throttle.passed(username, address)
    await end_session(service.store, keys, request.cookies.get(SESSION_COOKIE, ""))  # one session a sign-in
    response = RedirectResponse(local_path(fields.get("next", next_path)), status_code=303, headers=ADMIN_HEADERS)
    set_cookie(request, response, SESSION_COOKIE, await start_session(service.store, keys, admin), SESSION_SECONDS)
    set_cookie(request, response, CSRF_COOKIE, new_csrf_cookie(), None)  # a fresh token for the new session
    return response


@agent_page
async def logout(request: Request, page: Page) -> Response:
    await end_session(page.service.store, page.service.signer.keys, request.cookies.get(SESSION_COOKIE, ""))
    response = see_other("/admin/login", "signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


# -- stats: the home page ---------------------------------------------------------------


@admin_page
async def stats_page(request: Request, page: Page) -> Response:
    service = page.service
    params = {k: v for k, v in request.query_params.items() if k in (*STATS_FILTERS, "by") and v.strip()}
    errors: list[FieldError] = []
    try:
        query = parse_query(params)
    except InvalidInput as exc:
        errors, query = exc.errors, parse_query({})
    if query.by not in TIME_GROUPS:
        query = parse_query({k: v for k, v in params.items() if k != "by"})
    try:
        over_time = await compute(service.store, query)
    except InvalidInput as exc:  # an unknown business
        errors, query = exc.errors, parse_query({})
        over_time = await compute(service.store, query)
    breakdowns: dict[str, Stats] = {}
    for by in BREAKDOWNS:
        breakdowns[by] = await compute(service.store, replace(query, by=by, limit=10))
    labels = [row.key for row in over_time.rows]
    series = [Series("clicks", [r.clicks for r in over_time.rows]),
              Series("unique visitors", [r.uniques for r in over_time.rows])]
    if over_time.chats:  # no WhatsApp number: no chats are counted, so none are drawn
        series.append(Series("chats started", [r.conversations for r in over_time.rows]))
    counted = ", unique visitors and chats started" if over_time.chats else " and unique visitors"
    chart = line_chart(labels, series, f"Clicks{counted} by {query.by}, {over_time.first_day} to {over_time.last_day}")
    shown = {k: v for k, v in params.items() if k != "by"} | {
        "from": over_time.first_day.isoformat(), "to": over_time.last_day.isoformat(), "by": query.by}  # fmt: skip
    typed = shown | params if errors else shown  # a mistake stays in the form, to be corrected
    businesses, agents = await service.store.businesses(), await service.store.agents()
    names = {b.id: b.name for b in businesses}
    today = datetime.now(ZoneInfo(over_time.timezone)).date()
    presets = [(days, urlencode(shown | {"from": (today - timedelta(days - 1)).isoformat(), "to": today.isoformat()}))
               for days in (7, 30, 90, 365)]  # fmt: skip
    costs = None  # this month's WhatsApp costs, for the business chosen, once a number is connected
    if service.whatsapp.keys:
        costs = await month_costs(service, None, query.business_id)
    return page.render(
        "stats.html", "stats", 422 if errors else 200, errors=errors, stats=over_time, chart=chart, costs=costs,
        breakdowns=breakdowns, filters=typed, csv_query=urlencode(shown), presets=presets,
        breakdown_csv={by: urlencode(shown | {"by": by}) for by in BREAKDOWNS},
        business_options=[("", "all")] + [(b.id, b.name) for b in businesses],
        agent_options=[("", "all")] + [(a.id, f"{a.name} ({names.get(a.business_id, '')})") for a in agents],
        widget_options=[("", "all")] + [(w.id, w.id) for w in await service.store.widgets()],
        channel_options=[("", "all")] + [(c.name, c.label) for c in CHANNELS.values()],
    )  # fmt: skip


@admin_page
async def stats_csv(request: Request, page: Page) -> Response:
    params = {k: v for k, v in request.query_params.items() if v.strip() and k in (*STATS_FILTERS, "by")}
    stats = await compute(page.service.store, parse_query(params))
    name = f"clicktochat-{stats.query.by}-{stats.first_day}-{stats.last_day}.csv"
    headers = ADMIN_HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(stats.as_csv(), media_type="text/csv; charset=utf-8", headers=headers)


# -- API keys ---------------------------------------------------------------------------


@admin_page
async def keys_page(request: Request, page: Page) -> Response:
    store, errors = page.service.store, []
    shown: Once = request.app.state.shown_once
    if request.method == "POST":
        action = page.form.get("action", "create")
        if action == "revoke":
            if not await store.revoke_api_key(_int(page.form.get("key_id", ""), "key_id")):
                raise NotFound("There is no such active API key.")
            return see_other("/admin/keys", "revoked")
        if action != "create":
            raise InvalidInput("action", "must be create or revoke")
        name = page.form.get("name", "").strip()
        if not name or len(name) > 100:
            errors = [FieldError("name", "is required, at most 100 characters")]
        else:
            key = (await create_api_key(store, name)).key
            # Shown once, after the redirect: never in a URL, and a reload makes no second key.
            return see_other("/admin/keys", "created", {"shown": shown.put(page.admin.id, key)})
    keys = [{"key": k, "created": timestamp(k.created_at), "used": timestamp(k.last_used_at),
             "revoked": timestamp(k.revoked_at)} for k in await store.api_keys()]  # fmt: skip
    new_key = shown.take(page.admin.id, request.query_params.get("shown", ""))
    return page.render("keys.html", "keys", 422 if errors else 200, errors=errors, keys=keys, new_key=new_key)


class Once:
    """Values to show one admin once, on the page a redirect leads to; a few, for a few minutes."""

    def __init__(self, size: int = 100, seconds: float = 300) -> None:
        self.size, self.seconds = size, seconds
        self._values: dict[str, tuple[int, str, float]] = {}

    def put(self, admin_id: int, value: str) -> str:
        while len(self._values) >= self.size:
            del self._values[next(iter(self._values))]
        key = secrets.token_urlsafe(16)
        self._values[key] = (admin_id, value, time.time())
        return key

    def take(self, admin_id: int, key: str) -> str | None:
        found = self._values.get(key)
        if found is None or found[0] != admin_id:
            return None
        del self._values[key]
        return found[1] if found[2] > time.time() - self.seconds else None


# -- helpers and routes -----------------------------------------------------------------


def _int(value: str, name: str) -> int:
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # "²".isdigit() is true
        raise InvalidInput(name, "must be a whole number")
    return int(value)


def _id(request: Request, name: str) -> int:
    try:
        return _int(request.path_params[name], name)
    except InvalidInput:
        raise NotFound("There is nothing at this address.") from None


@agent_page
async def not_found(request: Request, page: Page) -> Response:
    """Unknown dashboard addresses: strangers are sent to sign in before learning anything."""
    raise NotFound("There is no dashboard page at this address.")


BOTH = ["GET", "POST"]

# Pages that build on this module's helpers, each in a module of its own.
from . import admin_businesses, admin_chats, admin_links, admin_optins, admin_updates, admin_widgets  # noqa: E402, I001

routes = [
    Route("/login", login, methods=BOTH),
    Route("/logout", logout, methods=["POST"]),
    Route("/", stats_page, methods=["GET"]),
    Route("/stats.csv", stats_csv, methods=["GET"]),
    *admin_businesses.routes,
    *admin_links.routes,
    *admin_widgets.routes,
    Route("/keys", keys_page, methods=BOTH),
    *admin_chats.routes,
    *admin_updates.routes,
    *admin_optins.routes,
    Route("/{path:path}", not_found, methods=BOTH),
]
"""Every page, as listed here, is checked by a test to send strangers to sign in."""
