"""The dashboard's links: the list, the link builder (short or signed, with its QR code) and
one short link's page, where it is edited. Same rules as `admin.py`, whose helpers it uses."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .admin import BOTH, Page, _int, admin_page, changed_meanwhile, form_status, see_other, stale
from .channels import CHANNELS
from .errors import InvalidInput
from .links import MODES, SLUG_PATTERN, ShortLink
from .notifications import IDEMPOTENCY_KEY
from .qr import parse_options
from .qr_access import signed_query
from .service import Service, timestamp
from .tokens import SignedLink
from .versions import PreconditionFailed, tag

QR_FIELDS = ("size", "border", "error", "dark", "light", "inverted", "logo")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


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


# A link's state (Service.link_state) as the list shows it: words, and whether a click gets a chat.
STATES = {
    "active": ("active", "on"), "disabled": ("disabled", "off"), "expired": ("expired", "off"),
    "channel gone": ("channel gone", "off"), "nobody": ("nobody to answer", "off"),
}  # fmt: skip


@admin_page
async def links_page(request: Request, page: Page) -> Response:
    service = page.service
    search = request.query_params.get("q", "").strip()[:200]
    offset = _int(request.query_params.get("offset", "0") or "0", "offset")
    links = await service.store.links(51, offset, search)
    more, links = len(links) > 50, links[:50]
    clicks = await service.store.click_counts("short", [link.slug for link in links])
    say = await describer(service)
    rows = [{"link": link, "url": service.short_url(link.slug), "to": say(link), "clicks": clicks[link.slug],
             "state": STATES[await service.link_state(link)]} for link in links]  # fmt: skip
    return page.render("links.html", "links", rows=rows, search=search, offset=offset, more=more)


async def destination(service: Service, form: dict[str, str]) -> dict[str, Any]:
    """The form's choice of number, agent or business, as create_link and update_link take it."""
    kind = form.get("destination", "to")
    opens = form.get("opens") or None  # the channel a link to people opens; empty: each one's first
    if kind in ("agent", "business") and form.get("to", "").strip():  # never dropped without a word
        who = "an agent" if kind == "agent" else "a business"
        raise InvalidInput("to", f'an address is typed in, but who answers is {who}: pick "One address" to send '
                                 "the chats to it, or clear it")  # fmt: skip
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
                request=form_request(form),
            )  # fmt: skip
            made = f"s/{created.short.slug}" if created.short else f"c/{created.token}"
            return see_other("/admin/links/new", "created", {"made": made} | utm)
        except InvalidInput as exc:
            errors = exc.errors
    result = await made_link(service, request.query_params.get("made", ""), request.query_params)
    key = form.get("idempotency_key") if errors else None  # a mistake corrected is one link
    return page.render(
        "builder.html", "builder", 422 if errors else 200, errors=errors, result=result,
        **await choices(service), modes=MODES, utm_fields=UTM_FIELDS,
        idempotency_key=key or secrets.token_urlsafe(16),
    )  # fmt: skip


def form_request(form: dict[str, str]) -> tuple[str, str] | None:
    """The form's idempotency key and a hash of what it asked: sent twice (a double click, the
    answer lost), it makes one link; sent again with other words (back, changed), a second one."""
    key = form.get("idempotency_key", "")
    if not IDEMPOTENCY_KEY.fullmatch(key) or len(key) > 100:  # not from our form: no promise to keep
        return None
    asked = {name: value for name, value in form.items() if name not in ("csrf", "idempotency_key")}
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
    return f"admin:{key}:{digest[:32]}", digest


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
            }, form.get("seen") or None)  # fmt: skip
            return see_other(f"/admin/links/{link.slug}", "saved")
        except InvalidInput as exc:
            errors = exc.errors + stale(form, link, "link")
        except PreconditionFailed:
            errors, link = [changed_meanwhile("link")], await service.get_link(link.slug)
    qr_params = {k: v for k, v in request.query_params.items() if k in QR_FIELDS and v}
    qr_query = signed_query(service.signer.keys, f"s/{link.slug}", qr_params)  # styled codes are the owner's
    try:
        parse_options(qr_params)
        if qr_params.get("logo") == "business":  # the server would refuse the code: say why here
            business_id = await service.business_of(link)
            if business_id is None or await service.store.logo(business_id) is None:
                raise InvalidInput("logo", "this link's business has no logo: upload one on its page (Businesses)")
    except InvalidInput as exc:  # the code is drawn with the defaults; the form keeps what was typed
        errors, qr_query = errors + exc.errors, ""
    state = await service.link_state(link)
    if not page.form:  # the form shows what is stored
        page.form = {
            "destination": "to" if link.address else "agent" if link.agent_id else "business",
            "to": CHANNELS[link.channel or "whatsapp"].display(link.address) if link.address else "",
            "channel": link.channel or "whatsapp", "opens": "" if link.address else link.channel or "",
            "agent_id": str(link.agent_id or ""), "business_id": str(link.business_id or ""), "text": link.text,
            "campaign": link.campaign or "", "source": link.source or "", "mode": link.mode,
        }  # fmt: skip
    return page.render(
        "link.html", "links", form_status(errors), errors=errors, link=link, seen=tag(link),
        url=service.short_url(link.slug),
        to=await describe(service, link), clicks=await service.link_clicks(link.slug), state=STATES[state][0],
        live=state == "active",
        qr_query=qr_query, qr_params=qr_params, expires=timestamp(link.expires_at),
        notes=await service.link_notes(link), **await choices(service), modes=MODES,
    )  # fmt: skip


routes: list[BaseRoute] = [
    Route("/links", links_page, methods=["GET"]),
    Route("/links/new", builder_page, methods=BOTH),
    Route("/links/{slug}", link_page, methods=BOTH),
]
