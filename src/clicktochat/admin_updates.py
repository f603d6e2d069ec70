"""The dashboard's Updates page: send a one-off update (an approved template) to one person
who opted in, the notifications with what became of them, and the month's cost estimate.
Same rules as `admin.py` (a session, CSRF on every POST, post/redirect/get, works without
JavaScript); what may be sent is decided by `Notifications`, these handlers only show it."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .admin import BOTH, Page, admin_page, see_other
from .admin_chats import show, when
from .channels import display_phone
from .errors import Conflict, FieldError, InvalidInput, NotFound, Unavailable
from .notify_api import STATES, month_costs

LIMIT = 100


def parameters_of(text: str) -> list[str]:
    """One parameter a line, in order ({{1}} first); blank lines at the end are dropped."""
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def chosen_template(value: str) -> tuple[int | None, str, str]:
    """The Template field: "business id|name|language" (the form's options: an agency's
    businesses each send from their own number), or "name|language" as it was before."""
    parts = value.split("|")
    if len(parts) == 3 and parts[0].isdecimal() and len(parts[0]) < 10:
        return int(parts[0]), parts[1], parts[2]
    name, _, language = value.partition("|")
    return None, name, language


@admin_page
async def updates_page(request: Request, page: Page) -> Response:
    service, whatsapp = page.service, page.service.whatsapp
    errors: list[FieldError] = []
    status = 200
    if request.method == "POST":
        form = page.form
        business_id, name, language = chosen_template(form.get("template", ""))
        try:
            await whatsapp.notifications.queue(
                to=form.get("to", ""), topic=form.get("topic", "").strip(), template=name, language=language,
                parameters=parameters_of(form.get("parameters", "")), source="dashboard",
                idempotency_key=form.get("idempotency_key") or None, business_id=business_id,
            )  # fmt: skip
            return see_other("/admin/updates", "update-queued")
        except InvalidInput as exc:
            errors, status = [FieldError("template" if e.field == "language" else e.field, e.reason)
                              for e in exc.errors], 422  # fmt: skip
        except (Conflict, NotFound, Unavailable) as exc:  # no consent, an opt-out, no number...
            errors, status = [FieldError("to", exc.detail)], 409
    state = request.query_params.get("state", "")
    found = await whatsapp.chats.notifications(state=state if state in STATES else None, limit=LIMIT)
    businesses = {b.id: b for b in await service.store.businesses()}
    templates: dict[str, str] = {}  # value: label, each template once per business
    numbers = await whatsapp.chats.numbers()
    several = len({number.business_id for number in numbers}) > 1
    for number in numbers:
        for template, _ in await whatsapp.chats.templates(number.id):
            if template.approved:
                count = len(template.parameter_names)
                label = f"{template.name} ({template.language}, {template.category.lower()}, {count} parameter"
                label += "" if count == 1 else "s"
                label += ")"
                if several:  # whose: the same template names come from every business's account
                    owner = businesses.get(number.business_id)
                    label += f" for {owner.name if owner else f'business {number.business_id}'}"
                templates[f"{number.business_id}|{template.name}|{template.language}"] = label
    rows = [{"n": n, "to": display_phone(n.phone),
             "at": when(n.created_at, businesses[n.business_id].timezone if n.business_id in businesses else "UTC")}
            for n in found]  # fmt: skip
    costs = await month_costs(service, None, None)
    key = page.form.get("idempotency_key") if status == 422 else None  # a mistake corrected is one update
    return show(page, "updates.html", "updates", status, errors, rows=rows, templates=list(templates.items()),
                costs=costs, state=state, states=STATES, idempotency_key=key or secrets.token_urlsafe(16))  # fmt: skip


routes: list[BaseRoute] = [Route("/updates", updates_page, methods=BOTH)]

