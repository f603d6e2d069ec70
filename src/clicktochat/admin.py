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
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, available_timezones

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .accounts import LoginThrottle, authenticate
from .agents import WEEKDAYS, Agent, Business, format_hours, is_available
from .channels import CHANNELS
from .charts import Series, line_chart
from .errors import Conflict, FieldError, Forbidden, InvalidInput, LengthRequired, NotFound, PayloadTooLarge
from .keys import create_api_key
from .links import MODES, SLUG_PATTERN, ShortLink
from .logos import MAX_UPLOAD_BYTES
from .notify_api import month_costs
from .qr import parse_options
from .qr_access import signed_query
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
from .tokens import SignedLink
from .widget import LANGUAGES, WidgetSettings, apply_changes

MAX_FORM_BYTES = 64 * 1024
LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "es": "Español", "pt": "Português", "de": "Deutsch",
                  "fr": "Français", "ar": "العربية"}  # fmt: skip
QR_FIELDS = ("size", "border", "error", "dark", "light", "logo")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
BREAKDOWNS = ("campaign", "link", "agent", "channel", "via", "referrer", "device")
STATS_FILTERS = ("from", "to", "business", "link", "campaign", "agent")
TIMEZONES = sorted(available_timezones())
CHANNEL_OPTIONS = [(name, channel.label) for name, channel in CHANNELS.items()]
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
    "offset_x": "Pixels from the side", "offset_y": "Pixels from the bottom", "delay": "Seconds before it appears",
    "scroll": "Percent scrolled", "bubble_delay": "Seconds before the greeting", "show_on": "Only on these pages",
    "hide_on": "Never on these pages", "allowed_domains": "Allowed sites", "agent_ids": "Agents",
    "label": "Label", "message": "Pre-filled message", "from": "From",
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
    origin = request.headers.get("origin")
    if origin is None:  # older browsers send none on same-origin POSTs
        return True
    ours = {request.headers.get("host"), urlsplit(request.app.state.service.base_url).netloc}
    return origin != "null" and urlsplit(origin).netloc in ours


async def check_post(request: Request, keys: list[str], upload_limit: int = 0, session: str = "") -> Form:
    form = await read_form(request, upload_limit)
    token = form.fields.get(CSRF_FIELD, "")
    if not same_site(request) or not csrf_ok(keys, request.cookies.get(CSRF_COOKIE, ""), token, session):
        raise Forbidden("This form has expired or came from another site. Go back, reload the page and try again.")
    return form


def admin_page(handler: Handler, upload_limit: int = 0) -> Callable[[Request], Awaitable[Response]]:
    """Signed in, or sent to the sign-in page; POSTs checked for their CSRF token."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        service: Service = request.app.state.service
        keys = service.signer.keys
        session = request.cookies.get(SESSION_COOKIE, "")
        admin = await session_admin(service.store, keys, session)
        if admin is None:
            return to_login(request)
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
    address = request.app.state.proxies.client(
        request.client.host if request.client else "", request.headers.get("x-forwarded-for", "")
    )
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


@admin_page
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
    chart = line_chart(
        labels,
        [Series("clicks", [r.clicks for r in over_time.rows]),
         Series("unique visitors", [r.uniques for r in over_time.rows]),
         Series("chats started", [r.conversations for r in over_time.rows])],
        f"Clicks, unique visitors and chats started by {query.by}, {over_time.first_day} to {over_time.last_day}",
    )
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
    )  # fmt: skip


@admin_page
async def stats_csv(request: Request, page: Page) -> Response:
    params = {k: v for k, v in request.query_params.items() if v.strip() and k in (*STATS_FILTERS, "by")}
    stats = await compute(page.service.store, parse_query(params))
    name = f"clicktochat-{stats.query.by}-{stats.first_day}-{stats.last_day}.csv"
    headers = ADMIN_HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(stats.as_csv(), media_type="text/csv; charset=utf-8", headers=headers)


# -- businesses and agents ------------------------------------------------------------


@admin_page
async def businesses_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    if request.method == "POST":
        try:
            business = await service.add_business(page.form.get("name", ""), page.form.get("timezone") or "UTC")
            return see_other(f"/admin/businesses/{business.id}", "created")
        except InvalidInput as exc:
            errors = exc.errors
    now = datetime.now(UTC)
    agents = await service.store.agents()
    businesses = await service.store.businesses()
    rows = []
    for business in businesses:
        theirs = [a for a in agents if a.business_id == business.id]
        available = sum(is_available(a, now) for a in theirs)
        rows.append({"business": business, "agents": len(theirs), "available": available})
    zone = businesses[0].timezone if businesses else "UTC"  # a new shop is likely where the others are
    return page.render("businesses.html", "businesses", 422 if errors else 200, errors=errors, rows=rows,
                       timezones=TIMEZONES, default_timezone=zone)  # fmt: skip


def hours_from(form: dict[str, str]) -> dict[str, list[str]]:
    """The hours editor: a field a weekday, ranges separated by commas."""
    return {day: [r.strip() for r in form.get(f"hours_{day}", "").split(",") if r.strip()] for day in WEEKDAYS}


def agent_rows(agents: list[Agent]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{"agent": a, "hours": format_hours(a.hours), "available": is_available(a, now),
             "phone": shown_address(a.channel, a.address),
             "channels": [{"name": name, "label": CHANNELS[name].label if name in CHANNELS else name,
                           "shown": shown_address(name, address)} for name, address in a.channels]}
            for a in agents]  # fmt: skip


def shown_address(channel: str, address: str) -> str:
    """An address as the owner reads it: +39 347 123 4567, @dolcevita."""
    return CHANNELS[channel].display(address) if channel in CHANNELS else address


@admin_page
async def business_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    business = await service.get_business(_id(request, "business_id"))
    if request.method == "POST":
        form = page.form
        try:
            if form.get("action") == "add-agent":
                try:
                    await service.add_agent(business.id, form.get("agent_name", ""), form.get("agent_address", ""),
                                            form.get("agent_channel") or "whatsapp", hours_from(form),
                                            form.get("agent_timezone") or None)  # fmt: skip
                except InvalidInput as exc:  # the form's fields are agent_name, agent_address...
                    raise InvalidInput.many([FieldError(e.field if e.field.startswith("hours") else f"agent_{e.field}",
                                                        e.reason) for e in exc.errors]) from None  # fmt: skip
                return see_other(f"/admin/businesses/{business.id}", "created")
            if form.get("action") == "delete":
                await service.delete_business(business.id)
                return see_other("/admin/businesses", "deleted")
            fallback = form.get("fallback_agent_id", "")
            await service.update_business(business.id, {
                "name": form.get("name", ""), "timezone": form.get("timezone", ""), "colour": form.get("colour", ""),
                "fallback_agent_id": _int(fallback, "fallback_agent_id") if fallback else None,
            })  # fmt: skip
            return see_other(f"/admin/businesses/{business.id}", "saved")
        except InvalidInput as exc:
            errors = exc.errors
        except Conflict as exc:  # links or widgets still lead here
            errors = [FieldError("business", exc.detail)]
    return await render_business(page, business, errors)


async def render_business(page: Page, business: Business, errors: list[FieldError]) -> Response:
    store = page.service.store
    agents = await store.agents(business.id)
    return page.render(
        "business.html", "businesses", 422 if errors else 200, errors=errors, business=business,
        agents=agent_rows(agents), widgets=await store.widgets(business.id), has_logo=await store.logo(business.id)
        is not None, timezones=TIMEZONES, channels=CHANNELS, weekdays=WEEKDAYS, channel_options=CHANNEL_OPTIONS,
        fallback_options=[("", "none: anyone, in turn")] + [(a.id, a.name) for a in agents],
    )  # fmt: skip


async def business_logo(request: Request, page: Page) -> Response:
    """Upload (PNG, JPEG or WebP) or remove the logo shown on posters and in QR codes."""
    service = page.service
    business = await service.get_business(_id(request, "business_id"))
    if request.method == "GET":
        png = await service.store.logo(business.id)
        if png is None:
            raise NotFound("This business has no logo.")
        return Response(png, media_type="image/png", headers=ADMIN_HEADERS)
    try:
        if page.form.get("action") == "remove":
            await service.set_logo(business.id, None)
        elif not page.files.get("logo"):
            raise InvalidInput("logo", "choose an image file (PNG, JPEG or WebP)")
        else:
            await service.set_logo(business.id, page.files["logo"])
    except InvalidInput as exc:
        return await render_business(page, business, exc.errors)
    return see_other(f"/admin/businesses/{business.id}", "saved")


@admin_page
async def agent_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    agent = await service.get_agent(_id(request, "agent_id"))
    if request.method == "POST":
        form = page.form
        try:
            if form.get("action") == "delete":
                await service.delete_agent(agent.id)
                return see_other(f"/admin/businesses/{agent.business_id}", "deleted")
            if form.get("action") == "add-channel":
                try:
                    await service.add_agent_channel(agent.id, form.get("new_channel", ""), form.get("new_address", ""))
                except InvalidInput as exc:  # the form's fields are new_channel and new_address
                    raise InvalidInput.many([FieldError(f"new_{e.field}", e.reason) for e in exc.errors]) from None
                return see_other(f"/admin/agents/{agent.id}", "saved")
            if form.get("action") == "remove-channel":
                await service.remove_agent_channel(agent.id, form.get("channel", ""))
                return see_other(f"/admin/agents/{agent.id}", "saved")
            await service.update_agent(agent.id, {
                "name": form.get("name", ""), "channel": form.get("channel") or agent.channel,
                "address": form.get("address", ""), "hours": hours_from(form), "timezone": form.get("timezone") or None,
            })  # fmt: skip
            return see_other(f"/admin/agents/{agent.id}", "saved")
        except InvalidInput as exc:
            errors = exc.errors
        except Conflict as exc:  # links still lead to this agent
            errors = [FieldError("agent", exc.detail)]
    business = await service.get_business(agent.business_id)
    (row,) = agent_rows([agent])
    return page.render("agent.html", "businesses", 422 if errors else 200, errors=errors, row=row, agent=agent,
                       business=business, timezones=TIMEZONES, channels=CHANNELS, weekdays=WEEKDAYS,
                       channel_options=CHANNEL_OPTIONS)  # fmt: skip


# -- links ------------------------------------------------------------------------------


async def describe(service: Service, link: ShortLink) -> str:
    """Where a link leads, in words."""
    return (await describer(service))(link)


async def describer(service: Service) -> Callable[[ShortLink], str]:
    """`describe` for many links, with two queries in all rather than one a link."""
    agents = {a.id: a.name for a in await service.store.agents()}
    businesses = {b.id: b.name for b in await service.store.businesses()}

    def say(link: ShortLink) -> str:
        on = f" on {CHANNELS[link.channel].label}" if link.channel in CHANNELS and link.address is None else ""
        if link.agent_id is not None:
            return f"agent {agents.get(link.agent_id, link.agent_id)}{on}"
        channel = CHANNELS[link.channel or "whatsapp"]
        number = f"{channel.label} {channel.display(link.address or '')}"
        if link.business_id is not None and link.address is not None:  # a fixed number of the business
            return f"{number} ({businesses.get(link.business_id, link.business_id)})"
        if link.business_id is not None:
            return f"{businesses.get(link.business_id, link.business_id)} (whoever is available{on})"
        return number

    return say


@admin_page
async def links_page(request: Request, page: Page) -> Response:
    service = page.service
    search = request.query_params.get("q", "").strip()[:200]
    offset = _int(request.query_params.get("offset", "0") or "0", "offset")
    links = await service.store.links(51, offset, search)
    more, links = len(links) > 50, links[:50]
    clicks = await service.store.click_counts("short", [link.slug for link in links])
    say = await describer(service)
    rows = [{"link": link, "url": service.short_url(link.slug), "to": say(link), "clicks": clicks[link.slug]}
            for link in links]  # fmt: skip
    return page.render("links.html", "links", rows=rows, search=search, offset=offset, more=more)


async def destination(service: Service, form: dict[str, str]) -> dict[str, Any]:
    """The form's choice of number, agent or business, as create_link and update_link take it."""
    kind = form.get("destination", "to")
    opens = form.get("opens") or None  # the channel a link to people opens; empty: each one's first
    if kind == "agent":
        return {"agent_id": _int(form.get("agent_id", ""), "agent_id"), "channel": opens}
    if kind == "business":
        return {"business_id": _int(form.get("business_id", ""), "business_id"), "channel": opens}
    return {"to": form.get("to", ""), "channel": form.get("channel") or "whatsapp"}


@admin_page
async def builder_page(request: Request, page: Page) -> Response:
    """Make a link: a message, who answers, a campaign and UTM tags; then (after a redirect, so
    a reload makes nothing twice) its URL, QR code and a preview of the chat it opens."""
    service, errors, form = page.service, [], page.form
    if request.method == "POST":
        try:
            utm = {k: form[k].strip() for k in UTM_FIELDS if form.get(k, "").strip()}
            for name, value in utm.items():
                if len(value) > 200:
                    raise InvalidInput(name, "is longer than 200 characters")
            short = form.get("kind", "short") != "signed"
            created = await service.create_link(
                **await destination(service, form), text=form.get("text", ""),
                campaign=form.get("campaign") or None, source=form.get("source") or None,
                mode=form.get("mode") or "auto", short=short, slug=(form.get("slug") or None) if short else None,
            )  # fmt: skip
            made = f"s/{created.short.slug}" if created.short else f"c/{created.token}"
            return see_other("/admin/links/new", "created", {"made": made} | utm)
        except InvalidInput as exc:
            errors = exc.errors
    result = await made_link(service, request.query_params.get("made", ""), request.query_params)
    return page.render(
        "builder.html", "builder", 422 if errors else 200, errors=errors, result=result,
        **await choices(service), modes=MODES, utm_fields=UTM_FIELDS,
    )  # fmt: skip


async def made_link(service: Service, made: str, query: Any) -> dict[str, Any] | None:
    """What the builder shows of the link it made: `s/<slug>` or `c/<token>`, with its UTM tags."""
    kind, _, key = made.partition("/")
    link: ShortLink | SignedLink | None
    if kind == "s":
        link = await service.store.link(key.lower()) if SLUG_PATTERN.fullmatch(key.lower()) else None
        who = await describe(service, link) if link else ""
        url = service.short_url(key.lower())
    elif kind == "c":
        link = service.signer.verify(key)  # a tampered one is a 404, as the link itself is
        channel = CHANNELS[link.channel]
        who, url = f"{channel.label} {channel.display(link.address)}", service.signed_url(key)
    else:
        return None
    if link is None:
        return None
    utm = {k: query[k] for k in UTM_FIELDS if query.get(k)}
    return {
        "url": url + (f"?{urlencode(utm)}" if utm else ""), "plain": url, "who": who, "text": link.text,
        "qr": f"/qr/{kind}/{key}", "slug": key if kind == "s" else None, "chat": service.destination_url(link),
        "utm": bool(utm), "notes": await service.link_notes(link),
    }  # fmt: skip


async def choices(service: Service) -> dict[str, Any]:
    businesses = await service.store.businesses()
    names = {b.id: b.name for b in businesses}
    agents = [{"agent": a, "business": names.get(a.business_id, "")} for a in await service.store.agents()]
    return {"businesses": businesses, "agents": agents, "channels": CHANNELS}


@admin_page
async def link_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    link = await service.get_link(request.path_params["slug"])
    if request.method == "POST":
        form = page.form
        try:
            action = form.get("action", "save")
            if action in ("disable", "enable"):
                await service.update_link(link.slug, {"disabled": action == "disable"})
                return see_other(f"/admin/links/{link.slug}", f"{action}d")
            await service.update_link(link.slug, {
                **await destination(service, form), "text": form.get("text", ""),
                "campaign": form.get("campaign") or None, "source": form.get("source") or None,
                "mode": form.get("mode") or "auto",
            })  # fmt: skip
            return see_other(f"/admin/links/{link.slug}", "saved")
        except InvalidInput as exc:
            errors = exc.errors
    qr_params = {k: v for k, v in request.query_params.items() if k in QR_FIELDS and v}
    qr_query = signed_query(service.signer.keys, f"s/{link.slug}", qr_params)  # styled codes are the owner's
    try:
        parse_options(qr_params)
    except InvalidInput as exc:  # the code is drawn with the defaults; the form keeps what was typed
        errors, qr_query = errors + exc.errors, ""
    now = datetime.now(UTC).timestamp()
    state = "disabled" if link.disabled else "expired" if link.expires_at and link.expires_at <= now else "active"
    if not page.form:  # the form shows what is stored
        page.form = {
            "destination": "to" if link.address else "agent" if link.agent_id else "business",
            "to": CHANNELS[link.channel or "whatsapp"].display(link.address) if link.address else "",
            "channel": link.channel or "whatsapp", "opens": "" if link.address else link.channel or "",
            "agent_id": str(link.agent_id or ""), "business_id": str(link.business_id or ""), "text": link.text,
            "campaign": link.campaign or "", "source": link.source or "", "mode": link.mode,
        }  # fmt: skip
    return page.render(
        "link.html", "links", 422 if errors else 200, errors=errors, link=link, url=service.short_url(link.slug),
        to=await describe(service, link), clicks=await service.link_clicks(link.slug), state=state,
        qr_query=qr_query, qr_params=qr_params, expires=timestamp(link.expires_at),
        notes=await service.link_notes(link), **await choices(service), modes=MODES,
    )  # fmt: skip


# -- widgets ----------------------------------------------------------------------------


@admin_page
async def widgets_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    if request.method == "POST":
        try:
            business_id = _int(page.form.get("business_id", ""), "business_id")
            widget = await service.create_widget(business_id, page.form.get("id") or None)
            return see_other(f"/admin/widgets/{widget.id}", "created")
        except InvalidInput as exc:
            errors = exc.errors
    businesses = {b.id: b for b in await service.store.businesses()}
    widgets = await service.store.widgets()
    clicks = await service.store.click_counts("widget", [w.id for w in widgets])
    rows = [{"widget": w, "business": businesses.get(w.business_id), "clicks": clicks[w.id]} for w in widgets]
    return page.render("widgets.html", "widgets", 422 if errors else 200, errors=errors, rows=rows,
                       businesses=list(businesses.values()),
                       business_options=[(b.id, b.name) for b in businesses.values()])  # fmt: skip


def widget_changes(form: dict[str, str], lists: dict[str, list[str]]) -> dict[str, Any]:
    """The settings form as `update_widget` takes it: an empty field is the default."""

    def lines(name: str) -> list[str]:
        return [line.strip() for line in form.get(name, "").splitlines() if line.strip()]

    changes: dict[str, Any] = {name: form.get(name, "").strip() or None for name in ("greeting", "message", "label")}
    changes["colour"] = form.get("colour", "").strip().lower() or None
    changes["position"] = form.get("position") or None
    changes["locale"] = form.get("locale") or None
    changes["optin_form"] = form.get("optin_form", "").strip() or None
    for name in ("offset_x", "offset_y", "delay", "scroll", "bubble_delay"):
        changes[name] = _int(form[name], name) if form.get(name, "").strip() else None
    for name in ("hide_offline", "bubble", "qr"):
        changes[name] = name in form
    for name in ("show_on", "hide_on", "allowed_domains"):
        changes[name] = lines(name)
    agent_ids = [_int(value, "agent_ids") for value in lists.get("agent_ids", [])]
    changes["agent_ids"] = agent_ids or None
    return changes


def as_field(value: Any) -> str:
    """A stored setting as its form field shows it: lists a line each, a ticked box "on"."""
    if isinstance(value, list):
        return "\n".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else ""
    return "" if value is None else str(value)


@admin_page
async def widget_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    widget = await service.get_widget(request.path_params["widget_id"])
    if request.method == "POST":
        try:
            if page.form.get("action") == "delete":
                await service.delete_widget(widget.id)
                return see_other("/admin/widgets", "deleted")
            await service.update_widget(widget.id, widget_changes(page.form, page.lists))
            return see_other(f"/admin/widgets/{widget.id}", "saved")
        except InvalidInput as exc:
            errors = exc.errors
    settings: WidgetSettings = widget.settings
    if not page.form:
        page.form = {k: as_field(v) for k, v in settings.to_json().items()}
        page.lists = {"agent_ids": [str(a) for a in settings.agent_ids or ()]}
    return page.render(
        "widget.html", "widgets", 422 if errors else 200, errors=errors, widget=widget, lists=page.lists,
        business=await service.get_business(widget.business_id), agents=await service.store.agents(widget.business_id),
        snippet=service.widget_snippet(widget.id),
        language_options=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        optin_options=[("", "(none: no updates offered)")] + [
            (f.slug, f"{f.slug} ({f.title})" if f.title else f.slug)
            for f in await service.whatsapp.chats.forms(widget.business_id)],
    )  # fmt: skip


@admin_page
async def widget_draft(request: Request, page: Page) -> Response:
    """The settings form as typed, kept for the live preview (admin.js posts it as it changes)."""
    widget = await page.service.get_widget(request.path_params["widget_id"])
    try:
        checked = apply_changes(widget_changes(page.form, page.lists), widget.settings)
    except InvalidInput as exc:
        return JSONResponse({"errors": [e.as_dict() for e in exc.errors]}, status_code=422, headers=ADMIN_HEADERS)
    key = request.app.state.widget_drafts.add(widget.id, checked)
    return JSONResponse({"preview": f"/admin/widgets/{widget.id}/preview?draft={key}"}, headers=ADMIN_HEADERS)


@admin_page
async def widget_preview(request: Request, page: Page) -> Response:
    """The real widget on a page of its own, framed by the settings page; ?draft= shows unsaved
    settings kept by widget_draft."""
    widget = await page.service.get_widget(request.path_params["widget_id"])
    draft = request.query_params.get("draft", "")
    known = draft if request.app.state.widget_drafts.get(draft, widget.id) else "1"
    response = render(request, "admin/widget_preview.html", widget=widget, base_url=page.service.base_url,
                      preview=known)  # fmt: skip
    origin = page.service.base_url
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self' {origin}; connect-src 'self' {origin}; img-src 'self' {origin} data:; "
        "style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


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


@admin_page
async def not_found(request: Request, page: Page) -> Response:
    """Unknown dashboard addresses: strangers are sent to sign in before learning anything."""
    raise NotFound("There is no dashboard page at this address.")


BOTH = ["GET", "POST"]

# Pages that build on this module's (issue 10 added admin_optins and admin_updates).
from . import admin_chats, admin_optins, admin_updates  # noqa: E402, I001

routes = [
    Route("/login", login, methods=BOTH),
    Route("/logout", logout, methods=["POST"]),
    Route("/", stats_page, methods=["GET"]),
    Route("/stats.csv", stats_csv, methods=["GET"]),
    Route("/businesses", businesses_page, methods=BOTH),
    Route("/businesses/{business_id}", business_page, methods=BOTH),
    Route("/businesses/{business_id}/logo", admin_page(business_logo, MAX_UPLOAD_BYTES), methods=BOTH),
    Route("/agents/{agent_id}", agent_page, methods=BOTH),
    Route("/links", links_page, methods=["GET"]),
    Route("/links/new", builder_page, methods=BOTH),
    Route("/links/{slug}", link_page, methods=BOTH),
    Route("/widgets", widgets_page, methods=BOTH),
    Route("/widgets/{widget_id}", widget_page, methods=BOTH),
    Route("/widgets/{widget_id}/preview", widget_preview, methods=["GET"]),
    Route("/widgets/{widget_id}/draft", widget_draft, methods=["POST"]),
    Route("/keys", keys_page, methods=BOTH),
    *admin_chats.routes,
    *admin_updates.routes,
    *admin_optins.routes,
    Route("/{path:path}", not_found, methods=BOTH),
]
"""Every page, as listed here, is checked by a test to send strangers to sign in."""
