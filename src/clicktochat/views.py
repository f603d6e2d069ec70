"""The public pages: a click on a signed or short link, and the welcome page.

The click path reads no database (signed links carry their destination; short links come
from the in-process cache) and writes none (the click is appended to the recorder)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .agents import Agent, format_hours, is_available, offered_channels
from .budget import Budget
from .channels import CHANNELS, Channel, deep_link, web_link
from .clicks import ClickEvent
from .conversations import new_ref, with_ref
from .errors import ChannelGone, LinkGone, NotFound, ProblemError, Unavailable
from .landing import APP_PAGES, Alternative, alternatives, web_url
from .links import SLUG_PATTERN, NotOffered, Target, choose, resolve
from .page_words import WORDS, button, chat_with, heading, lead, page_language
from .qr import qr_svg, scan_url
from .qr_access import signed_query
from .tokens import token_key
from .useragents import MAX_USER_AGENT_LENGTH, classify, is_ios
from .visitors import forwarded_for
from .widget import MAX_PAGE_TITLE_LENGTH, fill_message, message_template, page_url, pick_language
from .widget_http import WIDGET_HEADERS, ConfigEndpoint, ScriptEndpoint, find_widget
from .widget_http import query as _query

if TYPE_CHECKING:
    from .service import Service

MAX_REFERER_LENGTH = 2048
MAX_QUERY_LENGTH = 2048
CLICK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
PAGE_HEADERS = CLICK_HEADERS | {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


class Click(NamedTuple):
    """One link at the moment of its click, whichever kind it is (a tuple: built per click)."""

    kind: str  # short | signed
    key: str
    link_url: str
    channel: str
    address: str
    text: str
    mode: str
    agent_id: int | None
    campaign: str | None
    source: str | None
    title: str | None
    web: bool = False  # a desktop asked for the messenger's web app
    page_path: str | None = None  # widget clicks: the page the button was on
    recorded: bool = True  # False: a click in the dashboard's preview, not a customer's
    ref_code: bool | None = None  # short links' option; None: on when the number is connected
    others: tuple[Agent, ...] = ()  # the business's agents: their other channels are offered on the page...
    switch_url: str = ""  # ...each as this URL followed by `ch=<channel>` (our own route, which routes it)
    business_id: int | None = None  # short links': whose day a click counts in when no agent takes it


async def signed_click(service: Service, scope: Scope, counted: bool) -> Click:
    token = scope["path_params"]["token"]
    link = service.signer.verify(token)
    return Click(
        "signed", token_key(token), service.signed_url(token), link.channel, link.address, link.text,
        link.mode, None, link.campaign, link.source, link.title, asks_web(scope),
    )  # fmt: skip


async def find_short(service: Service, slug: str) -> Target | None:
    """A short link by its slug as typed (any case), from the cache."""
    slug = slug.lower()
    return await service.cache.get(slug) if SLUG_PATTERN.fullmatch(slug) else None


async def short_click(service: Service, scope: Scope, counted: bool) -> Click:
    """`counted`: a person's GET; only those take a turn in the agents' rotation."""
    slug = scope["path_params"]["slug"]
    target = service.cache.peek(slug) or await find_short(service, slug)  # cached as typed: no coroutine
    if target is None:
        raise NotFound("There is no chat link here. Check the address, or ask the business for a new one.",
                       says="no_link")  # fmt: skip
    link = target.link
    if link.disabled:
        raise LinkGone("This chat link has been turned off by the business.", "disabled", target.title,
                       await reach(service, target))  # fmt: skip
    if link.expires_at is not None and time.time() >= link.expires_at:
        raise LinkGone("This chat link has expired.", "expired", target.title, await reach(service, target))
    asked = asked_channel(scope)
    business = target.agents if link.agent_id is None and link.address is None else target.colleagues
    web = asks_web(scope)
    fixed = asked is None and link.address is not None and link.channel is not None  # no turn to take
    kept: Click | None = target.clicks.get(web) if fixed else None  # a fixed address makes the same click every time
    if kept is not None:
        return kept
    try:
        if service.shared is None:
            destination = resolve(target, None, service.rotation, advance=counted, channel=asked)
        else:  # several instances: the turn is the database's
            destination = await service.in_turn(
                lambda rotation: resolve(target, None, rotation, advance=counted, channel=asked), counted
            )
    except NotOffered as exc:
        raise channel_gone(exc.channel, target.title, offered_channels(business),
                           f"{service.short_url(link.slug)}?") from None  # fmt: skip
    if destination is None:
        raise Unavailable("Nobody can take this chat yet: the business has not added anyone to answer.",
                          says="nobody")  # fmt: skip
    url = service.short_url(link.slug)
    click = Click(  # the channel asked for stays in the link the page, its QR code and its preview show
        "short", link.slug, f"{url}?ch={asked}" if asked else url, destination.channel, destination.address, link.text,
        link.mode, destination.agent_id, link.campaign, link.source, target.title, web, None, True,
        link.ref_code, business, f"{url}?", target.business_id,  # (by position: a third cheaper than by name)
    )  # fmt: skip
    if fixed:  # kept on the cached Target, dropped with it on any edit
        target.clicks[web] = click
    return click


def asked_channel(scope: Scope) -> str | None:
    """The channel a click asks for (`?ch=`, the widget's picker or a 410 page's alternative);
    None when it names none or no channel we know (a made-up one changes nothing)."""
    if b"ch=" not in scope["query_string"]:
        return None
    name = _query(scope).get("ch", "").lower()  # Telegram, as people may type it
    return name if name in CHANNELS else None


def channel_gone(channel: str, business: str | None, offered: list[str], url: str, **keep: str) -> ChannelGone:
    """The 410 of a click asking for `channel` when the business offers only `offered`: each of
    those as a link through our own route (`url` followed by its query), never an address."""
    alternatives = [(CHANNELS[name].label, url + urlencode({**keep, "ch": name})) for name in offered
                    if name in CHANNELS]  # fmt: skip
    return ChannelGone(CHANNELS[channel].label, business, alternatives)


def browser_languages(scope: Scope) -> str:
    """The request's Accept-Language, as widget.pick_language reads a page's and browser's."""
    for name, value in scope["headers"]:
        if name == b"accept-language":
            return str(value.decode("latin-1"))
    return ""


def asks_web(scope: Scope) -> bool:
    """?web=1: a desktop asked for the messenger's web app (the landing page's second button)."""
    query = scope["query_string"]
    return bool(query) and b"web=1" in query and _query(scope).get("web") == "1"


class ClickEndpoint:
    """A click route as a plain ASGI app: the redirect, the path that must be fast, is sent
    without building Request and Response objects. Crawlers get a preview page and are not
    counted; people are counted, then sent to the chat (phones, or mode=redirect) or shown
    the landing page (desktops, or mode=landing), as the channel allows (`redirects`). Errors
    raised here reach the app's handler. Nothing is sent before the last step (after the
    lookup, the recording and any page's rendering), so an error never follows a response
    already started."""

    def __init__(self, lookup: Callable[[Service, Scope, bool], Awaitable[Click]]) -> None:
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        user_agent, referer, forwarded = click_headers(scope["headers"])
        preview, mobile = classify(user_agent)
        person = not preview and scope["method"] == "GET"  # HEAD is a link checker
        click = await self.lookup(state.service, scope, person)
        ref = ""
        if person and click.recorded and wants_ref(click, state.service.whatsapp.connected):
            ref = new_ref()  # ties the chat that follows to this click (conversations.find_ref)
            click = click._replace(text=with_ref(click.text, ref))
        # Every hit (but the dashboard preview's) is recorded; the writer counts robots and people apart.
        if click.recorded:
            # A person's address goes to the writer, which hashes it (visitors.Salts) and forgets it.
            peer = scope["client"][0] if scope.get("client") else ""
            address = state.proxies.client(peer, forwarded) if person else ""
            state.recorder.record(
                ClickEvent(
                    int(time.time()), click.kind, click.key, click.channel, click.agent_id, click.campaign,
                    click.source, scope["query_string"][:MAX_QUERY_LENGTH], referer, user_agent, click.page_path,
                    "", "", scope["method"] != "GET", address, ref, click.address if ref else "", click.business_id,
                )  # fmt: skip
            )
        channel = CHANNELS[click.channel]
        if preview:  # in the language asked for: a shared link's preview speaks its sender's
            request = Request(scope)
            response = page(request, "preview.html", click=click, channel=channel, **speaking(request))
            return await response(scope, receive, send)
        web = click.web and not mobile and channel.build_web_url is not None
        if web:
            chat_url = web_link(click.channel, click.address, click.text)
        elif channel.build_ios_url is None and not channel.takes_ref:  # WhatsApp's path: nothing more to ask
            chat_url = deep_link(click.channel, click.address, click.text)
        else:
            campaign = (click.campaign or "") if channel.takes_ref else ""
            chat_url = deep_link(click.channel, click.address, click.text, campaign, mobile and is_ios(user_agent))
        if web or redirects(click.mode, channel, mobile):
            await send({"type": "http.response.start", "status": 302, "headers": redirect_headers(chat_url)})
            return await send({"type": "http.response.body", "body": b""})
        request = Request(scope)  # only now, past the redirect: the language is asked for pages alone
        words = speaking(request)
        now = datetime.now(UTC)  # only agents on shift are offered: the others would not answer now
        others = alternatives([a for a in click.others if is_available(a, now)], click.channel, words["lang"],
                              lambda name: click.switch_url + urlencode({"ch": name}))  # fmt: skip
        caller = state.proxies.client(scope["client"][0] if scope.get("client") else "", forwarded)
        response = landing_page(request, click, channel, chat_url, mobile, others, words,
                                qr_link(click, mobile, state.budget, caller))  # fmt: skip
        await response(scope, receive, send)


def redirects(mode: str, channel: Channel, mobile: bool) -> bool:
    """A person's click goes straight to the app (a 302), rather than to the landing page: on
    phones, unless the link asks for the page; on desktops only when the link asks for it and
    a browser can open the deep link. Viber's clicks always get the page (page_first)."""
    if channel.page_first or (channel.app_only and not mobile):
        return False
    return mode == "redirect" or (mode == "auto" and mobile)


def qr_link(click: Click, mobile: bool, budget: Budget, caller: str) -> str | None:
    """What the landing page's "on your phone? scan" code opens: none for a phone; the click's
    link; but a widget click's carries the page and title its caller wrote (`u`, `t`), each new
    pair a new drawing (about 45 ms): past the caller's budget the code opens the widget's link
    without them, drawn once for everyone. The click itself is never refused."""
    if mobile:
        return None
    if click.kind != "widget" or "?" not in click.link_url:
        return click.link_url
    if not budget.retry_after(caller):
        return click.link_url
    base, _, query = click.link_url.partition("?")
    channel = parse_qs(query).get("ch", [""])[0]
    return f"{base}?{urlencode({'ch': channel})}" if channel else base


def landing_page(
    request: Request, click: Click, channel: Channel, chat_url: str, mobile: bool, others: list[Alternative],
    words: Speaking, qr_url: str | None,
) -> Response:  # fmt: skip
    """The page between a click and the app: the button, the message (with a Copy button when
    the app will not fill it in), the web app, Viber's "nothing happened?", other channels."""
    response = page(
        request, "landing.html", click=click, chat_url=chat_url, channel=channel, mobile=mobile,
        copy=bool(click.text) and not channel.takes_text, web_url=web_url(click.link_url, channel, mobile),
        app_page=APP_PAGES.get(channel.name), alternatives=others, **words,
        qr=qr_svg(scan_url(qr_url)) if qr_url else None,  # "on your phone? scan": not to a phone
    )  # fmt: skip
    response.headers["Content-Security-Policy"] += "; script-src 'self'"  # static/landing.js, no inline script
    return response


async def reach(service: Service, target: Target) -> str | None:
    """Another way to write to the business of a link that is gone, as its owner would want it
    (a customer still holding the old poster or message is still a customer): the business's
    general chat link (a live link to the whole business, without a campaign, the oldest), else
    its website widget's "whoever is on duty", else none. Nothing of the gone link itself (its
    text, campaign or agent) is offered, and no number: both go through our click routes."""
    if target.business_id is None:
        return None
    slug = await service.store.general_link(target.business_id, int(time.time()))
    if slug is not None:
        return service.short_url(slug)
    widgets = await service.store.widgets(target.business_id)
    if widgets:
        query = urlencode({"t": target.title}) if target.title else ""
        return f"{service.base_url}/w/{widgets[0].id}/any" + (f"?{query}" if query else "")
    return None


def wants_ref(click: Click, connected: frozenset[str]) -> bool:
    """A WhatsApp chat gets a ref code when its link asks for one, or by default when the number
    is connected to the Cloud API (without webhooks nobody would read it)."""
    if click.channel != "whatsapp" or click.ref_code is False:
        return False
    return click.ref_code is True or click.address in connected


@lru_cache(maxsize=8192)
def redirect_headers(location: str) -> list[tuple[bytes, bytes]]:
    """The raw headers of a 302 to `location` (an ASCII URL from channels.deep_link)."""
    headers = [(name.lower().encode(), value.encode()) for name, value in CLICK_HEADERS.items()]
    return [*headers, (b"content-length", b"0"), (b"location", location.encode("ascii"))]


def click_headers(raw: list[tuple[bytes, bytes]]) -> tuple[str, str, str]:
    """User agent, referrer and X-Forwarded-For in one pass over the raw headers (cheaper than
    `request.headers`), cut to a length no browser sends, before anything keeps them in memory."""
    user_agent = referer = ""
    forwarded: list[bytes] = []
    for name, value in raw:
        if name == b"user-agent":
            user_agent = value[:MAX_USER_AGENT_LENGTH].decode("latin-1")
        elif name == b"referer":
            referer = value[:MAX_REFERER_LENGTH].decode("latin-1")
        elif name == b"x-forwarded-for":
            forwarded.append(value)
    return user_agent, referer, forwarded_for(forwarded) if forwarded else ""


class Speaking(TypedDict):
    lang: str
    words: dict[str, str]
    chat_with: Callable[[str | None, str], str]
    heading: Callable[[str | None, Channel], str]
    button: Callable[[Channel], str]
    lead: Callable[[Channel, str], str]


def speaking(request: Request) -> Speaking:
    """The language of a page a customer reads (?lang=, else Accept-Language, else English) and
    its words (page_words), for the template: `lang` for <html lang>, `words`, `chat_with`
    (name, channel label) for "Chat with <name> on <channel>", and per channel `heading`
    (name, channel), `button` (channel) and `lead` (channel, text)."""
    lang = page_language(request.query_params.get("lang", ""), request.headers.get("accept-language", ""))
    return {
        "lang": lang, "words": WORDS[lang], "chat_with": partial(chat_with, lang), "heading": partial(heading, lang),
        "button": partial(button, lang), "lead": partial(lead, lang),
    }  # fmt: skip


def page(request: Request, template: str, status_code: int = 200, **context: object) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    if "lang" in context:  # chosen by the visitor's languages: caches must keep them apart
        response.headers["Vary"] = "Accept-Language"
    return response


async def welcome(request: Request) -> Response:
    service = request.app.state.service
    # The demo shop only while serving with --demo: a database tried with it and then used for
    # real must not show strangers a made-up shop at its front door (found by a new user).
    demo = json.loads(await service.store.get_meta("demo") or "null") if service.settings.demo else None
    links = []
    if demo:
        for slug in demo["slugs"]:
            link = await service.store.link(slug)
            if link is not None:
                url = service.short_url(slug)
                download = signed_query(service.signer.keys, f"s/{slug}", {"size": "600", "logo": "channel"})
                code = qr_svg(scan_url(url))
                links.append({"url": url, "link": link, "qr": code, "slug": slug, "download": download})
        try:  # signed with a key that may since have been replaced by CLICKTOCHAT_SECRET_KEYS
            signed_link = service.signer.verify(demo["token"])
        except ProblemError:
            signed_link = None
        if signed_link is not None:
            signed = service.signed_url(demo["token"])
            links.append({"url": signed, "link": signed_link, "qr": qr_svg(scan_url(signed))})
    business = await service.store.business(demo["business_id"]) if demo else None
    now = datetime.now(UTC)
    agents = [
        {"agent": agent, "hours": format_hours(agent.hours), "available": is_available(agent, now)}
        for agent in (await service.store.agents(business.id) if business else [])
    ]
    widget = await service.store.widget("demo") if demo else None
    response = page(
        request, "welcome.html", links=links, business=business, agents=agents, base_url=service.base_url,
        widget=widget, snippet=service.widget_snippet(widget.id) if widget else None,
    )  # fmt: skip
    if widget:  # the widget needs our script and its fetch; still no inline script or style
        response.headers["Content-Security-Policy"] += "; script-src 'self'; connect-src 'self'"
    return response


async def widget_click(service: Service, scope: Scope, counted: bool) -> Click:
    """A click in the widget's panel: `/w/{widget}/{agent}?u=<page>&t=<title>&l=<lang>`. The
    text is the owner's template with the page filled in, so a crafted link can change which
    page the message names, never who it goes to or what else it says."""
    params = scope["path_params"]
    target = await find_widget(service, params["widget"])
    if target is None:
        raise NotFound("This chat button is out of date: the website no longer has it.", says="old_button")
    widget, settings = target.widget, target.widget.settings
    listed = [a for a in target.agents if settings.agent_ids is None or a.id in settings.agent_ids]
    agent = next((a for a in listed if str(a.id) == params["agent"]), None)
    query = _query(scope)
    # The dashboard's preview page names itself as the page: the owner trying the button.
    recorded = not query.get("u", "").startswith(f"{service.base_url}/admin/")
    page = page_url(query.get("u", ""), settings.allowed_domains)
    asked = asked_channel(scope)
    # The agent on the channel asked for; else (an agent removed since the page loaded, "any",
    # or an agent not on that channel) whoever of the listed agents on it is on duty.
    try:
        now = datetime.now(UTC)
        if service.shared is None:
            destination = choose(target.business.id, agent, listed, None, asked, now, service.rotation,
                                 advance=counted and recorded)  # fmt: skip
        else:  # several instances: the turn is the database's
            destination = await service.in_turn(
                lambda rotation: choose(target.business.id, agent, listed, None, asked, now, rotation,
                                        advance=counted and recorded), counted and recorded,
            )  # fmt: skip
    except NotOffered as exc:
        raise channel_gone(exc.channel, target.business.name, offered_channels(listed),
                           f"{service.base_url}/w/{widget.id}/any?", **kept(query, page)) from None  # fmt: skip
    if destination is None:
        raise Unavailable("Nobody can take this chat yet: the business has not added anyone to answer.",
                          says="nobody")  # fmt: skip
    title = query.get("t", "")
    browser = "" if query.get("l") or settings.locale else browser_languages(scope)  # a link made without the script
    text = fill_message(message_template(settings, pick_language(query.get("l", ""), browser, settings.locale)),
                        page, title)  # fmt: skip
    link_url = f"{service.base_url}/w/{widget.id}/{destination.agent_id}"
    shown = {"u": page, "t": title[:MAX_PAGE_TITLE_LENGTH]} if page and title else {"u": page} if page else {}
    if asked:  # the landing page's QR code carries the visitor's choice to the phone
        shown["ch"] = asked
    if shown:
        link_url += "?" + urlencode(shown)
    return Click(
        "widget", widget.id, link_url, destination.channel, destination.address, text, "auto",
        destination.agent_id, None, "qr" if query.get("via") == "qr" else None, target.business.name,
        query.get("web") == "1", urlsplit(page).path or None if page else None, recorded, others=tuple(listed),
        switch_url=f"{service.base_url}/w/{widget.id}/any?" + urlencode(kept(query, page)) + "&",
    )  # fmt: skip


def kept(query: dict[str, str], page: str) -> dict[str, str]:
    """What a widget click keeps when it moves to another channel (a 410's alternatives, the
    landing page's other channels): the page, its title and language, so the message stays."""
    keep = {"u": page, "t": query.get("t", "")[:MAX_PAGE_TITLE_LENGTH]} if page else {}
    keep["l"] = query.get("l", "")[:5]
    return keep


async def widget_avatar(request: Request) -> Response:
    service = request.app.state.service
    target = await find_widget(service, request.path_params["widget"])
    logo = await service.store.logo(target.business.id) if target and target.has_logo else None
    if logo is None:
        raise NotFound("This widget's business has no logo.")
    return Response(logo, media_type="image/png", headers=WIDGET_HEADERS | {"Cache-Control": "public, max-age=3600"})


WIDGET_SCRIPT = ScriptEndpoint()
async def health(request: Request) -> Response:
    """`ok`, or `degraded` while the database cannot be reached (clicks are answered from the
    caches and wait in memory: `pending_clicks`), or while a WhatsApp number waits to be connected
    again (Meta refused its token: `reasons` names it, never a secret); 200 either way, so that a
    load balancer keeps sending clicks to an instance that can still answer them."""
    state = request.app.state
    watcher = getattr(state, "watcher", None)
    listening = watcher is None or watcher.listener is None or watcher.listener.up
    degraded = state.recorder.failing or (watcher is not None and watcher.failing) or not listening
    reasons = [f"WhatsApp number {key.id} (phone number id {key.phone_number_id}): Meta refused its access token;"
               " its messages wait until it is connected again with a new token"
               for key in state.service.whatsapp.to_reconnect()]  # in memory: no database read
    answer: dict[str, Any] = {"status": "degraded" if degraded or reasons else "ok",
                              "pending_clicks": state.recorder.pending}  # fmt: skip
    if reasons:
        answer["reasons"] = reasons
    return JSONResponse(answer)


SIGNED_CLICK, SHORT_CLICK = ClickEndpoint(signed_click), ClickEndpoint(short_click)
WIDGET_CLICK = ClickEndpoint(widget_click)
CLICK_ROUTES: dict[str, tuple[tuple[str, ...], ClickEndpoint]] = {
    "/c/": (("token",), SIGNED_CLICK),
    "/s/": (("slug",), SHORT_CLICK),
    "/w/": (("widget", "agent"), WIDGET_CLICK),
}
"""The click routes by their prefix, with their path parameters (one path segment each, as the
routes below match them): `app.App` dispatches GET and HEAD on these before Starlette's stack."""

routes = [  # the two click routes first: the router tries routes in order
    Route("/c/{token}", SIGNED_CLICK, methods=["GET"]),
    Route("/s/{slug}", SHORT_CLICK, methods=["GET"]),
    Route("/w/{widget}/{agent}", WIDGET_CLICK, methods=["GET"]),
    Route("/widget.js", WIDGET_SCRIPT, methods=["GET"]),
    Route("/widget.{version}.js", WIDGET_SCRIPT, methods=["GET"]),
    Route("/api/widget/{widget}", ConfigEndpoint(), methods=["GET"]),
    Route("/api/widget/{widget}/avatar.png", widget_avatar, methods=["GET"]),
    Route("/", welcome, methods=["GET"]),
    Route("/healthz", health, methods=["GET"]),
]
