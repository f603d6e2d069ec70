"""The public images and printed pages of a link: its QR codes (`/qr/s/`, `/qr/c/`, a widget's
`/qr/w/`) and its poster. Each image not drawn before spends from the caller's budget, and a
client's copy is answered with 304."""

from __future__ import annotations

from urllib.parse import urlencode

from segno import DataOverflowError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .budget import client_address
from .channels import CHANNELS
from .errors import InvalidInput, NotFound
from .keys import check_api_key
from .links import Target
from .logos import channel_icon
from .posters import make_poster, poster_channel, poster_options
from .qr import KINDS, QROptions, etag, parse_options, render, scan_url
from .qr_access import Renders, public_options
from .views import find_short, page, short_click
from .widget import page_url
from .widget_http import find_widget


async def live_short(request: Request, what: str) -> Target:
    """The short link a code or poster is asked of: 404 if there is none, and a link turned off,
    expired or gone answers as its click does (410, the friendly page)."""
    service = request.app.state.service
    target = await find_short(service, request.path_params["slug"])
    if target is None:
        raise NotFound(f"There is no chat link here, so there is no {what} either.")
    await short_click(service, request.scope, counted=False)
    return target


async def short_link_qr(request: Request) -> Response:
    """The QR code of a short link: its URL never changes, but the link may go, so revalidate."""
    service = request.app.state.service
    target = await live_short(request, "QR code")
    slug = target.link.slug
    params = public_options(service.signer.keys, f"s/{slug}", request.query_params, await api_owner(request))
    options = parse_options(params)
    logo = None
    if options.logo == "business":
        logo = await service.store.logo(target.business_id) if target.business_id is not None else None
        if logo is None:
            raise InvalidInput("logo", "this link's business has no logo; upload one, or use logo=channel")
    elif options.logo == "channel":
        logo = channel_icon(poster_channel(target) or "")  # several messengers: a plain chat bubble
    return await qr_response(request, scan_url(service.short_url(slug)), options, logo, "no-cache")


async def signed_link_qr(request: Request) -> Response:
    """The QR code of a signed link: the same token always gives the same image."""
    service = request.app.state.service
    token = request.path_params["token"]
    link = service.signer.verify(token)
    params = public_options(service.signer.keys, f"c/{token}", request.query_params, await api_owner(request))
    options = parse_options(params)
    if options.logo == "business":
        raise InvalidInput("logo", "signed links have no business; use logo=channel")
    logo = channel_icon(link.channel) if options.logo == "channel" else None
    return await qr_response(
        request, scan_url(service.signed_url(token)), options, logo, "public, max-age=31536000, immutable"
    )


async def api_owner(request: Request) -> bool:
    """The caller sent a valid API key: the links' owner, who may style their codes."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    return await check_api_key(request.app.state.service.store, key.strip()) is not None


async def qr_response(
    request: Request, data: str, options: QROptions, logo: bytes | None, cache_control: str
) -> Response:
    """The image; one not drawn before spends from the caller's budget (budget.py)."""
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise NotFound("QR codes come as .svg or .png.")
    tag = etag(data, options, kind, logo)
    headers = {"ETag": tag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    if not_modified(request, tag):
        return Response(status_code=304, headers=headers)
    renders: Renders = request.app.state.qr_renders
    body = renders.get(tag)
    if body is None:
        spend(request)
        try:
            body = await run_in_threadpool(render, data, options, kind, logo)  # a big PNG takes a moment
        except DataOverflowError:
            raise InvalidInput("error", "this link is too long for a QR code at this correction level") from None
        renders.put(tag, body)
    return Response(body, media_type=KINDS[kind], headers=headers)


def spend(request: Request) -> None:
    """One unit of the caller's budget, or a 429 with Retry-After."""
    state = request.app.state
    state.budget.spend(client_address(request.scope, state.proxies))


def not_modified(request: Request, tag: str) -> bool:
    """The client's copy (If-None-Match) is the one tagged `tag`: answer 304."""
    wanted = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    return tag in wanted or "*" in wanted


async def poster(request: Request) -> Response:
    """A print-ready poster of a short link (?format=a4|a5|a6, ?lang=en|it|es|pt|de|fr)."""
    service = request.app.state.service
    target = await live_short(request, "poster")
    page_format, lang = poster_options(request.query_params, request.headers.get("accept-language", ""))
    spend(request)  # a page drawn anew each time
    poster = await make_poster(service, target, page_format, lang)
    response = page(request, "poster.html", poster=poster)
    csp = response.headers["Content-Security-Policy"]  # and its one style attribute, the business's colour
    styles = f"style-src 'self' {poster.style_source}"
    response.headers["Content-Security-Policy"] = csp.replace("style-src 'self'", styles, 1)
    return response


async def widget_qr(request: Request) -> Response:
    """The QR code a desktop visitor scans to carry the chat over to their phone: only for an
    agent the widget lists (or "any"), only with size and scale, as the script asks for it."""
    service = request.app.state.service
    params = request.path_params
    target = await find_widget(service, params["widget"])
    if target is None:
        raise NotFound("There is no widget here, so there is no QR code either.")
    settings = target.widget.settings
    agent = params["agent"]
    listed = (str(a.id) for a in target.agents if settings.agent_ids is None or a.id in settings.agent_ids)
    if agent != "any" and agent not in listed:
        raise NotFound("This widget has no such agent, so there is no QR code either.")
    page = page_url(request.query_params.get("u", ""), settings.allowed_domains)
    carried = {"via": "qr", "u": page, "l": request.query_params.get("l", "")[:5]}
    if page and (title := request.query_params.get("t", "")[:MAX_QR_TITLE_LENGTH]):  # the message names it
        carried["t"] = title  # (found by a new user: scanned, "a question about  https://..." had lost it)
    if request.query_params.get("ch", "") in CHANNELS:  # the channel the visitor picked
        carried["ch"] = request.query_params["ch"]
    data = f"{service.base_url}/w/{target.widget.id}/{agent}?" + urlencode(carried)
    asked = {k: v for k, v in request.query_params.items() if k not in ("u", "l", "ch", "t")}
    options = parse_options(public_options([], "", asked))
    return await qr_response(request, data, options, None, "public, max-age=3600")


MAX_QR_TITLE_LENGTH = 60
"""A page title a desktop's QR code carries to the phone: enough to name the page, not so much
that the code needs many more modules than its address does."""


routes = [
    Route("/qr/s/{slug}.{kind}", short_link_qr, methods=["GET"]),
    Route("/qr/c/{token}.{kind}", signed_link_qr, methods=["GET"]),
    Route("/poster/s/{slug}", poster, methods=["GET"]),
    Route("/qr/w/{widget}/{agent}.{kind}", widget_qr, methods=["GET"]),
]
