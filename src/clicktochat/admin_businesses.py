"""The dashboard's businesses and agents: a business's name, time zone, colour and logo; its
agents, their channels and hours. Same rules as `admin.py`, whose helpers it uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .admin import ADMIN_HEADERS, BOTH, Page, _id, _int, admin_page, changed_meanwhile, form_status, see_other, stale
from .agents import TIMEZONES, WEEKDAYS, Agent, Business, as_written, format_hours, is_available
from .channels import CHANNELS
from .errors import Conflict, FieldError, InvalidInput, NotFound
from .logos import MAX_UPLOAD_BYTES
from .versions import PreconditionFailed, tag

CHANNEL_OPTIONS = [(name, channel.label) for name, channel in CHANNELS.items()]


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
    return {day: [as_written(r.strip()) for r in form.get(f"hours_{day}", "").split(",") if r.strip()]
            for day in WEEKDAYS}  # fmt: skip


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
            }, form.get("seen") or None)  # fmt: skip
            return see_other(f"/admin/businesses/{business.id}", "saved")
        except InvalidInput as exc:
            errors = exc.errors + (stale(form, business, "business") if form.get("action") == "save" else [])
        except PreconditionFailed:
            errors, business = [changed_meanwhile("business")], await service.get_business(business.id)
        except Conflict as exc:  # links or widgets still lead here
            errors = [FieldError("business", exc.detail)]
    return await render_business(page, business, errors)


async def render_business(page: Page, business: Business, errors: list[FieldError]) -> Response:
    store = page.service.store
    agents = await store.agents(business.id)
    return page.render(
        "business.html", "businesses", form_status(errors), errors=errors, business=business, seen=tag(business),
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
            }, form.get("seen") or None)  # fmt: skip
            return see_other(f"/admin/agents/{agent.id}", "saved")
        except InvalidInput as exc:
            errors = exc.errors + (stale(form, agent, "agent") if form.get("action") == "save" else [])
        except PreconditionFailed:
            errors, agent = [changed_meanwhile("agent")], await service.get_agent(agent.id)
        except Conflict as exc:  # links still lead to this agent
            errors = [FieldError("agent", exc.detail)]
    business = await service.get_business(agent.business_id)
    (row,) = agent_rows([agent])
    return page.render("agent.html", "businesses", form_status(errors), errors=errors, row=row, agent=agent,
                       seen=tag(agent), business=business, timezones=TIMEZONES, channels=CHANNELS, weekdays=WEEKDAYS,
                       channel_options=CHANNEL_OPTIONS)  # fmt: skip


routes: list[BaseRoute] = [
    Route("/businesses", businesses_page, methods=BOTH),
    Route("/businesses/{business_id}", business_page, methods=BOTH),
    Route("/businesses/{business_id}/logo", admin_page(business_logo, MAX_UPLOAD_BYTES), methods=BOTH),
    Route("/agents/{agent_id}", agent_page, methods=BOTH),
]
