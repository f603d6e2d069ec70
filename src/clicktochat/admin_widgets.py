"""The dashboard's widgets: the list, one widget's settings with a live preview, and the
draft the preview shows. Same rules as `admin.py`, whose helpers it uses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .admin import (
    ADMIN_HEADERS,
    BOTH,
    LANGUAGE_NAMES,
    Page,
    _int,
    admin_page,
    changed_meanwhile,
    form_status,
    render,
    see_other,
    stale,
)
from .errors import InvalidInput
from .versions import PreconditionFailed, tag
from .widget import LANGUAGES, WidgetSettings, apply_changes


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
            await service.update_widget(widget.id, widget_changes(page.form, page.lists), page.form.get("seen") or None)
            return see_other(f"/admin/widgets/{widget.id}", "saved")
        except InvalidInput as exc:
            errors = exc.errors + stale(page.form, widget, "widget")
        except PreconditionFailed:
            errors, widget = [changed_meanwhile("widget")], await service.get_widget(widget.id)
    settings: WidgetSettings = widget.settings
    if not page.form:
        page.form = {k: as_field(v) for k, v in settings.to_json().items()}
        page.lists = {"agent_ids": [str(a) for a in settings.agent_ids or ()]}
    return page.render(
        "widget.html", "widgets", form_status(errors), errors=errors, widget=widget, seen=tag(widget), lists=page.lists,
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


routes: list[BaseRoute] = [
    Route("/widgets", widgets_page, methods=BOTH),
    Route("/widgets/{widget_id}", widget_page, methods=BOTH),
    Route("/widgets/{widget_id}/preview", widget_preview, methods=["GET"]),
    Route("/widgets/{widget_id}/draft", widget_draft, methods=["POST"]),
]
