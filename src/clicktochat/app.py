"""The ASGI application: routes, the one error handler, and the lifespan that opens the
database, starts the click writer and cache watcher, and flushes clicks on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__, admin, api, chat_api, notify_api, optin_api, optin_pages, qr_pages, views, webhooks
from .accounts import LoginThrottle
from .budget import Budget, client_address
from .clicks import ClickRecorder
from .database import is_postgres
from .demo import seed_demo
from .errors import ChannelGone, InternalError, LinkGone, ProblemError, RequestTimeout, TooManyRequests, Unavailable
from .hosts import HostCheck, TrustedHosts, relative_slash_redirects
from .keys import check_api_key
from .listen import ChangeListener, RoutingWatcher
from .qr_access import Renders
from .service import Service
from .settings import Settings
from .useragents import parse_device, robot_name
from .visitors import Proxies, Salts
from .widget import Drafts, Script
from .widget_http import WIDGET_HEADERS, ConfigCache

log = logging.getLogger(__name__)


def asset_dir(name: str) -> Path:
    """`templates/` and `widget/`: inside the installed package, or at the top of a checkout."""
    installed = Path(__file__).parent / name
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / name


@jinja2.pass_context
def url_path(context: dict[str, Any], name: str, /, **params: Any) -> str:
    """Pages' `url_for`: a path from the root (behind any mount), never a URL built from the Host
    header, which Starlette's would repeat: a page answered for a host that is not ours (the
    400 of hosts.HostCheck) must not name it, even in a stylesheet's link."""
    request: Request = context["request"]
    scope = request.scope  # a Mount's pages have its prefix as root_path: the app's own is app_root_path
    return str(scope.get("app_root_path", scope.get("root_path", ""))) + str(request.app.url_path_for(name, **params))


def create_app(settings: Settings, clock: Callable[[], float] = time.time, background: bool = True) -> App:
    """`clock` is now for the WhatsApp side (windows, retries); tests pass one they move.
    `background=False` (for tests): the click writer's, the routing watcher's, the webhook
    processor's and the sender's loops are not started; tests run their steps
    (app.state.recorder.run_once(), app.state.watcher.run_once(), whatsapp.processor.run_once(),
    whatsapp.sender.run_once()) when they choose. Shutdown still writes every pending click."""
    templates = Jinja2Templates(directory=str(asset_dir("templates")))
    templates.env.globals["version"] = __version__
    templates.env.globals["url_for"] = url_path

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = await Service.open(settings, clock)
        salts = Salts(settings.unique_window, await service.store.get_meta("visitor_salts"))
        recorder = ClickRecorder(service.store, salts, settings.flush_interval, settings.retention_days,
                                 shared=service.shared)  # fmt: skip
        app.state.login_throttle.shared = service.shared  # and a key every instance has, never stored as is:
        app.state.login_throttle.secret = hashlib.blake2b(service.signer.keys[0].encode(), person=b"sign-in").digest()
        app.state.service, app.state.recorder, app.state.templates = service, recorder, templates
        app.state.proxies = Proxies(settings.proxy_networks)
        try:
            if settings.demo:
                await seed_demo(service)
            parse_device("")  # load ua-parser's rules now (~0.1 s), not during the first flush
            robot_name("Mozilla/5.0")  # and crawlerdetect's (~0.02 s)
            gc.freeze()  # what start-up made lives for ever: no collection need walk it again
            await recorder.start(loop=background)
            await service.whatsapp.journal.start()
            if background:
                service.whatsapp.start()
            app.state.watcher = watcher = RoutingWatcher(service)
            await watcher.run_once()  # what is seen now is what later changes are told from
            tasks = []
            if background:
                tasks.append(asyncio.create_task(watcher.run(settings.flush_interval), name="clicktochat-watcher"))
            if background and service.shared is not None:  # PostgreSQL: told of others' edits at once
                watcher.listener = ChangeListener(settings.db, watcher.heard, watcher.wake)
                tasks.append(asyncio.create_task(watcher.listener.run(), name="clicktochat-listener"))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                written = await recorder.stop()
                log.info("click writer stopped: wrote the last %d clicks, none pending", written)
        finally:
            await service.close()

    hosts = HostCheck(settings.trusted_hosts, refuse=problem_response)
    away = database_away_errors(settings.db)
    app = App(
        hosts,
        away,
        routes=[
            *views.routes,
            *qr_pages.routes,  # QR codes and posters
            *webhooks.routes,
            *optin_pages.routes,  # issue 10: the hosted opt-in page, its poster and QR, the widget's panel
            Mount("/api/v1", routes=[*api.routes, *chat_api.routes, *notify_api.routes, *optin_api.routes]),
            Mount("/admin", routes=admin.routes),
            Mount("/static", StaticFiles(directory=str(asset_dir("templates") / "static")), name="static"),
        ],
        exception_handlers={ProblemError: problem_response, HTTPException: problem_response,
                            ClientDisconnect: client_gone, 500: server_error,
                            **dict.fromkeys(away, database_away)},  # fmt: skip
        middleware=[Middleware(TrustedHosts, check=hosts)],
        lifespan=lifespan,
    )
    relative_slash_redirects(app.router)  # never Starlette's, which writes the Host header into Location
    app.state.templates = templates
    app.state.login_throttle = LoginThrottle()
    app.state.widget_drafts = Drafts()
    app.state.shown_once = admin.Once()
    app.state.widget_script = Script.build(asset_dir("widget"))
    app.state.budget = Budget(clock=clock)  # what anonymous callers can make expensive, per address
    app.state.qr_renders = Renders()
    app.state.widget_configs = ConfigCache(clock=clock)
    # -- opt-ins (issue 10) --
    app.state.optin_limits = optin_pages.Limits(clock, settings.optin_confirmations_per_hour)
    app.state.optin_script = optin_pages.PanelScript.build((asset_dir("widget") / "optin.js").read_text())
    return app


WEBHOOK_PATH = "/webhooks/whatsapp"


class App(Starlette):
    """Starlette, but a click (GET or HEAD on /c/, /s/ or /w/, views.CLICK_ROUTES) and Meta's
    webhook POSTs go straight to their endpoint: no middleware stack, no router, no send
    wrappers. What those do for them is done here: the trusted-hosts check (the same
    `HostCheck` as the middleware's), the path parameters and the scope keys the router sets,
    and errors answered by the app's handlers (ProblemError and HTTPException by
    `problem_response`; anything else by `server_error`, then raised for the server to log, as
    ServerErrorMiddleware does). Anything else, or a path the click routes would not match,
    takes Starlette's way."""

    def __init__(self, hosts: HostCheck, away: tuple[type[Exception], ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = AppState()
        self.hosts = hosts
        self.away = away  # the database's "not answering now" (database_away_errors)
        self.away_warn_every = 10.0  # seconds between two warnings while it is away (tests set it)
        self.away_warned: float | None = None  # time.monotonic() of the last one
        self.body_deadline = BODY_DEADLINE  # seconds a request's body may take to arrive (tests set it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope.get("root_path"):
            path: str = scope["path"]
            click = views.CLICK_ROUTES.get(path[:3])
            if click is not None:
                names, endpoint = click
                values = path[3:].split("/")
                if len(values) == len(names) and all(values):
                    scope["app"], scope["router"] = self, self.router
                    scope["endpoint"], scope["path_params"] = endpoint, dict(zip(names, values, strict=True))
                    return await self._click(endpoint, scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            if not scope.get("root_path"):
                scope["app"], scope["router"], scope["endpoint"] = self, self.router, webhooks.receive_asgi
                scope["path_params"] = {}
                return await self._click(webhooks.receive_asgi, scope, receive, send)  # its own deadline
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            receive = in_time(receive, self.body_deadline)
        await super().__call__(scope, receive, send)

    async def _click(self, endpoint: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.hosts.ours(scope):
            return await self.hosts.refuse_request(scope, receive, send)
        try:
            try:
                await endpoint(scope, receive, send)  # sends nothing before its last step
            except (ProblemError, HTTPException) as exc:
                response = await problem_response(Request(scope, receive, send), exc)
                await response(scope, receive, send)
            except ClientDisconnect as exc:
                await (await client_gone(Request(scope), exc))(scope, receive, send)
            except self.away as exc:
                await (await database_away(Request(scope), exc))(scope, receive, send)
        except Exception as exc:  # the endpoint's, or the problem handler's own, as in Starlette's stack
            response = await server_error(Request(scope), exc)
            await response(scope, receive, send)
            raise


class AppState(State):
    """`app.state`, whose attributes are read at a plain attribute's cost. Starlette's State finds
    each through `__getattr__`, after Python's own lookup has failed: about 0.35 µs, five times a
    click. Each is kept as State keeps it and as an attribute of the instance, found first."""

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        super().__delattr__(key)
        object.__delattr__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


CLICK_PREFIXES = ("/s/", "/c/", "/w/")  # never throttled, their 404s neither: a whole town may share one address
BODY_DEADLINE = 30.0  # seconds a body (a form, a logo upload on a slow phone) may take; Meta's have their own


def in_time(receive: Receive, seconds: float) -> Receive:
    """`receive`, the body due within `seconds` of the request (then 408): a connection that
    sends a byte and idles must not hold a request, and its connection, for ever. Once the body
    is in, waiting (for the client to hang up, say) is not bounded."""
    deadline = asyncio.get_running_loop().time() + seconds
    done = False

    async def receive_in_time() -> Message:
        nonlocal done
        if done:
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout(f"The request's body took more than {seconds:g} s to arrive.") from None
        done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return receive_in_time


def _status(exc: Exception) -> int:
    return exc.status if isinstance(exc, ProblemError) else getattr(exc, "status_code", 500)


WIDGET_APIS = ("/api/widget/", "/api/optin/")
"""What the widget's script reads from other sites: its errors must be readable there too."""


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.url.path.startswith(("/api/", "/webhooks/")) or (
        "json" in accept and "text/html" not in accept
    )


async def _key_holder(request: Request) -> bool:
    """An API call with a valid key to an address no route matched (`/businesses/abc`): its
    endpoint never ran to say so, and the caller is no stranger guessing."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if not request.url.path.startswith("/api/v1/") or scheme.lower() != "bearer" or not key.strip():
        return False
    try:
        return await check_api_key(request.app.state.service.store, key.strip()) is not None
    except Exception:  # the database away: the 404 is answered as to anyone, never a 500 from here
        return False


async def problem_response(request: Request, exc: Exception) -> Response:
    """One error shape: RFC 9457 problem+json for API clients, a friendly page for people.
    A 404 spends from the caller's budget (guessing addresses costs a page each), but a click's
    (people following a dead printed link get the page in their language, never a 429; and as
    clicks are never throttled, a budget would not stop codes being tried anyway: a short link
    is public by design), and a signed-in caller's (an API key, an admin: an office behind one
    address is not held back by a stranger guessing from the same one)."""
    state = request.app.state
    if (_status(exc) == 404 and not request.url.path.startswith(CLICK_PREFIXES) and hasattr(state, "proxies")
            and not getattr(request.state, "signed_in", False) and not await _key_holder(request)):  # fmt: skip
        wait = state.budget.retry_after(client_address(request.scope, state.proxies))
        if wait:  # a short answer, not a page: it must cost less than the 404 it stands for
            detail = f"Too many unknown addresses asked for from yours; try again in {wait} s."
            body = {"type": "about:blank", "title": TooManyRequests.title, "status": 429, "detail": detail,
                    "errors": []}  # fmt: skip
            headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
            if request.url.path.startswith(WIDGET_APIS):
                headers |= WIDGET_HEADERS
            return JSONResponse(body, 429, headers, media_type="application/problem+json")
    if isinstance(exc, ProblemError):
        status, title, detail, errors = exc.status, exc.title, exc.detail, [e.as_dict() for e in exc.errors]
        says = exc.says
    else:
        assert isinstance(exc, HTTPException)
        status, phrase = exc.status_code, HTTPStatus(exc.status_code).phrase
        title = phrase[0] + phrase[1:].lower()  # "Not found", as our own errors write it
        detail, errors = (exc.detail if exc.detail != phrase else _default_detail(status)), []
        says = "no_page" if status == 404 else ""
    headers = dict(getattr(exc, "headers", None) or {})
    if request.url.path.startswith(WIDGET_APIS):  # the script must be able to read why
        headers |= WIDGET_HEADERS
    if wants_json(request):
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": errors}
        if isinstance(exc, ChannelGone):  # what the page offers, for a script: each through our routes
            body["alternatives"] = [{"channel": label, "url": url} for label, url in exc.alternatives]
        return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)
    templates: Jinja2Templates = request.app.state.templates
    path = request.url.path
    context = {"status": status, "title": title, "detail": detail, "dashboard": path.startswith("/admin"),
               "for_makers": path.startswith(("/qr/", "/poster/")) or path.endswith("/poster")}  # not "tell them"
    if not context["dashboard"]:  # a page people meet on links: in their language (the dashboard's is English)
        context |= error_words(request, exc, status, detail, says)
        headers["Vary"] = "Accept-Language"
    response = templates.TemplateResponse(request, "error.html", context, status_code=status)
    response.headers.update(views.PAGE_HEADERS | headers)
    return response


def error_words(request: Request, exc: Exception, status: int, detail: str, says: str) -> dict[str, object]:
    """The error page's words in the visitor's language: the title by status, the detail by the
    error's `says` (else the English detail, marked as English), and for a gone link, its business
    and another way to write to it (errors.LinkGone)."""
    speaking = views.speaking(request)
    words = speaking["words"]
    shown: dict[str, object] = {
        "title": words.get(f"title_{status}", words["title"]),
        "detail": words[says] if says else detail,
        "detail_lang": "" if says or speaking["lang"] == "en" else "en",
    }
    if isinstance(exc, LinkGone):
        shown |= {"business": exc.business, "reach": exc.reach}
    if isinstance(exc, ChannelGone):  # the channel by its name, and the ones the business still has
        shown |= {"detail": words[says].format(channel=exc.channel), "business": exc.business,
                  "alternatives": exc.alternatives}  # fmt: skip
    return {**speaking, **shown}


def database_away_errors(db: str) -> tuple[type[Exception], ...]:
    """What PostgreSQL raises while it is not answering (a restart, the network): a moment to
    wait, answered 503 with Retry-After, not a bug's 500. SQLite, one file on this machine, has none."""
    if not is_postgres(db):
        return ()
    import psycopg  # only for a postgresql:// database, as everywhere

    return (psycopg.OperationalError,)


async def database_away(request: Request, exc: Exception) -> Response:
    """503 with Retry-After in the visitor's language, and a warning line now and then (the
    app's `away_warn_every` seconds apart): not two tracebacks a request while PostgreSQL restarts."""
    app: App = request.app
    now = time.monotonic()
    if app.away_warned is None or now - app.away_warned >= app.away_warn_every:
        app.away_warned = now
        log.warning("the database is not answering (%s); requests that need it get 503 until it is back",
                    type(exc).__name__)  # fmt: skip
    error = Unavailable("The database is not answering for a moment; try again in a few seconds.",
                        {"Retry-After": "5"}, says="away")  # fmt: skip
    return await problem_response(request, error)


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its body arrived: nothing to answer, and nothing wrong on our
    side (it was logged as an internal error, a traceback anyone could write into the logs)."""
    log.debug("the client left before its body arrived: %s %s", request.method, request.url.path)
    return Response(status_code=400)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, without_numbers(request.url.path), exc_info=exc)
    return await problem_response(request, InternalError("Something went wrong on our side. Please try again.",
                                                         says="server"))


PHONE_LIKE = re.compile(r"\+?\d[\d .()-]{5,}\d")


def without_numbers(path: str) -> str:
    """A path for the log: /api/v1/customers/+39 347 123 4567 names a person (a privacy review)."""
    return PHONE_LIKE.sub("…", path)


def _default_detail(status: int) -> str:
    return {
        404: "There is nothing at this address.",
        405: "This address does not accept that method.",
    }.get(status, HTTPStatus(status).description)
