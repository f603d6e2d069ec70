"""The dashboard's WhatsApp pages: connected numbers, the conversations and one conversation
with its reply box. Same rules as `admin.py` (a session, CSRF on every POST, post/redirect/get,
no inline script); what may be done is decided by `WhatsApp`, these handlers only show it.

Secrets typed into the connect form go to `WhatsApp.connect` and are never written back into
a page, not even after a mistake. Times are shown in the business's time zone."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .admin import BOTH, Page, _id, _int, admin_page, agent_page, render, see_other
from .agents import Business
from .attributionstore import Attribution
from .channels import display_phone
from .chatstore import ChatStart, Conversation
from .errors import Conflict, FieldError, InvalidInput, NotFound, Unavailable
from .whatsapp import ConversationView

SECRET_FIELDS = ("access_token", "app_secret", "verify_token")
LABELS = {
    "business_id": "Business", "phone_number_id": "Phone number ID", "waba_id": "WhatsApp Business Account ID",
    "access_token": "Access token", "app_secret": "App secret", "verify_token": "Verify token",
    "graph": "Meta's Graph API", "text": "Message", "idempotency_key": "Form", "reply": "Reply",
    "agent": "Agent", "business": "Business", "open": "Only open", "offset": "Page", "to": "Their number",
    "topic": "Topic", "template": "Template", "parameters": "Parameters",
}  # fmt: skip
NOTICES = {  # ?done=... after a redirect: fixed words, never text from the URL
    "connected": "The number is connected. Give Meta the webhook URL and verify token below.",
    "disconnected": "The number is disconnected; its conversations stay.",
    "queued": "Your reply is queued: it is sent in a moment.",
    "update-queued": "The update is queued: it is sent in a moment, if the consent still holds.",
}  # fmt: skip
STATUS_WORDS = {"queued": "queued", "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
                "cancelled": "not sent"}  # fmt: skip
PAGE_SIZE = 50


def show(page: Page, template: str, section: str, status: int = 200, errors: list[FieldError] | None = None,
         **context: Any) -> Response:  # fmt: skip
    """Like `Page.render`, with this module's field names and notices."""
    errors = errors or []
    form = {k: v for k, v in page.form.items() if k not in SECRET_FIELDS}  # never echoed back
    return render(
        page.request, f"admin/{template}", status, admin=page.admin, csrf=page.csrf, section=section, form=form,
        errors={e.field: e.reason for e in errors}, error_list=[(LABELS.get(e.field, e.field), e.reason)
        for e in errors], flash=NOTICES.get(page.request.query_params.get("done", "")), **context,
    )  # fmt: skip


# -- time, in words -------------------------------------------------------------------------


def when(at: int | None, timezone: str) -> str:
    """A moment as people read it, in the business's time zone: 24 Dec 2026, 05:26 CET."""
    if at is None:
        return ""
    moment = datetime.fromtimestamp(at, ZoneInfo(timezone))
    return f"{moment.day} {moment:%b %Y, %H:%M %Z}"


def time_left(seconds: float) -> str:
    """The window's countdown: "closes in 3 h 12 min" (admin.js says the same every 30 s)."""
    if seconds <= 0:
        return "closed"
    minutes = int(seconds // 60)
    if minutes < 1:
        return "closes in less than a minute"
    hours, minutes = divmod(minutes, 60)
    return f"closes in {hours} h {minutes} min" if hours else f"closes in {minutes} min"


# -- WhatsApp numbers -------------------------------------------------------------------------


@admin_page
async def numbers_page(request: Request, page: Page) -> Response:
    service, errors, status = page.service, [], 200
    if request.method == "POST":
        form = page.form
        try:
            business_id = _int(form.get("business_id", ""), "business_id")
            await service.whatsapp.connect(
                business_id, form.get("phone_number_id", "").strip(), form.get("waba_id", "").strip(),
                form.get("access_token", ""), form.get("app_secret", ""), form.get("verify_token", ""),
            )  # fmt: skip
            return see_other("/admin/whatsapp", "connected")
        except InvalidInput as exc:
            errors, status = exc.errors, 422
        except Conflict as exc:  # connected to another business
            errors, status = [FieldError("phone_number_id", exc.detail)], 409
        except NotFound as exc:  # the business is gone
            errors, status = [FieldError("business_id", exc.detail)], 422
        except Unavailable as exc:  # Meta could not be asked: nothing is wrong with the form
            errors, status = [FieldError("graph", exc.detail)], 503
    businesses = {b.id: b for b in await service.store.businesses()}
    rows = [{"number": n, "business": businesses.get(n.business_id), "phone": display_phone(n.display_phone_number),
             "connected": when(n.connected_at, _zone(businesses, n.business_id)),
             "refused": when(n.token_refused_at, _zone(businesses, n.business_id)) if n.token_refused_at else None}
            for n in await service.whatsapp.chats.numbers()]  # fmt: skip
    return show(page, "whatsapp.html", "whatsapp", status, errors, rows=rows,
                webhook_url=f"{service.base_url}/webhooks/whatsapp",
                business_options=[(b.id, b.name) for b in businesses.values()])  # fmt: skip


@admin_page
async def disconnect_page(request: Request, page: Page) -> Response:
    """A confirmation step that works without JavaScript: GET asks, POST disconnects."""
    whatsapp = page.service.whatsapp
    number = await whatsapp.get_number(_id(request, "number_id"))
    if request.method == "POST":
        await whatsapp.disconnect(number.id)
        return see_other("/admin/whatsapp", "disconnected")
    business = await page.service.store.business(number.business_id)
    return show(page, "whatsapp_disconnect.html", "whatsapp", number=number, business=business,
                phone=display_phone(number.display_phone_number))  # fmt: skip


# -- conversations --------------------------------------------------------------------------


def came_from(start: ChatStart | Attribution | None, agents: dict[int, str]) -> list[str]:
    """Where a chat (or a message) came from, in a few words: the ad, the link or widget, campaign, agent."""
    if start is None:
        return []
    said = []
    referral = start.referral or {}
    if referral:
        said.append(f"ad: {referral['headline']}" if referral.get("headline")
                    else f"{referral.get('source_type', 'ad')} {referral.get('source_id', '')}".strip())  # fmt: skip
    if start.link_kind == "widget":
        said.append(f"widget {start.link_key}" if start.link_key else "widget")
    elif start.link_kind == "short":
        said.append(f"link /s/{start.link_key}" if start.link_key else "short link")
    elif start.link_kind == "signed":
        said.append("signed link")
    if start.campaign:
        said.append(f"campaign {start.campaign}")
    if start.agent_id is not None:
        said.append(f"agent {agents.get(start.agent_id, start.agent_id)}")
    return said


def sent_by_words(sent_by: str | None) -> str:
    """Who wrote a message the business sent, as the conversation shows it."""
    kind, _, name = (sent_by or "").partition(":")
    return {"admin": f"by {name}", "api": f"by API key {name}", "cli": "from the command line"}.get(kind, "")


def who(c: Conversation) -> tuple[str, str]:
    """The customer's name and number (or user id, when WhatsApp withholds the number)."""
    address = display_phone(c.wa_id) if c.wa_id else (c.user_id or "")
    return c.name or address, address if c.name else ""


def _zone(businesses: dict[int, Business], business_id: int) -> str:
    business = businesses.get(business_id)
    return business.timezone if business else "UTC"


def row(view: ConversationView, businesses: dict[int, Business], agents: dict[int, str], now: int) -> dict[str, Any]:
    c, w = view.conversation, view.window
    name, address = who(c)
    zone = _zone(businesses, c.business_id)
    business = businesses.get(c.business_id)
    # A later message that said where it came from (another ad or link while the window was open)
    latest = view.latest if view.latest and (c.start is None or view.latest.at > c.start.at) else None
    return {
        "latest": came_from(latest, agents), "latest_at": when(latest.at, zone) if latest else "",
        "latest_url": (latest.referral or {}).get("source_url") if latest else None,
        "c": c, "name": name, "address": address, "view": view, "open": w.open, "until": w.open_until,
        "left": time_left(w.open_until - now) if w.open_until is not None else "closed",
        "last": view.last, "at": when(c.last_message_at, zone), "came_from": came_from(c.start, agents),
        "business": business.name if business else "", "open_until": when(w.open_until, zone),
        "entry_point_until": when(w.entry_point_until, zone),
    }  # fmt: skip


@agent_page
async def conversations_page(request: Request, page: Page) -> Response:
    service, params = page.service, request.query_params
    filters = {k: params.get(k, "").strip() for k in ("business", "agent", "open", "offset")}
    errors: list[FieldError] = []
    kept_to = page.admin.business_id  # an agent of one business sees its conversations only
    try:
        business = _int(filters["business"], "business") if filters["business"] else None
        agent = _int(filters["agent"], "agent") if filters["agent"] else None
        offset = _int(filters["offset"], "offset") if filters["offset"] else 0
    except InvalidInput as exc:
        errors, business, agent, offset = exc.errors, None, None, 0
    if kept_to is not None:
        business = kept_to
    only_open = filters["open"] == "true"
    views = await service.whatsapp.conversations(business, agent, only_open, PAGE_SIZE, min(offset, 10**9))
    businesses = {b.id: b for b in await service.store.businesses() if kept_to in (None, b.id)}
    all_agents = await service.store.agents(kept_to)
    agents = {a.id: a.name for a in all_agents}
    now = int(service.whatsapp.clock())
    rows = [row(v, businesses, agents, now) for v in views]
    page.form = {"business": filters["business"], "agent": filters["agent"]} if not errors else {}
    kept = {k: v for k, v in filters.items() if v and k != "offset"} if not errors else {}
    return show(
        page, "conversations.html", "conversations", 422 if errors else 200, errors, rows=rows, now=now,
        only_open=only_open, offset=offset, more=len(views) == PAGE_SIZE, kept=kept,
        business_gone=kept_to is not None and kept_to not in businesses,
        business_options=[("", "all")] + [(b.id, b.name) for b in businesses.values()],
        agent_options=[("", "all")] + [(a.id, f"{a.name} ({businesses[a.business_id].name})"
                                        if a.business_id in businesses else a.name) for a in all_agents],
    )  # fmt: skip


@agent_page
async def conversation_page(request: Request, page: Page) -> Response:
    whatsapp, conversation_id = page.service.whatsapp, _id(request, "conversation_id")
    errors: list[FieldError] = []
    status, conflict, crossing = 200, None, False
    if page.admin.business_id is not None:  # an agent of another business: as if there were none
        found = await whatsapp.chats.conversation(conversation_id)
        if found is None or found.business_id != page.admin.business_id:
            raise NotFound(f"There is no conversation {conversation_id}.")
    if request.method == "POST":
        try:
            await crossed(whatsapp, conversation_id, page.form, f"admin:{page.admin.username}")
            await whatsapp.reply(conversation_id, page.form.get("text", ""), page.form.get("idempotency_key") or None,
                                 f"admin:{page.admin.username}")  # fmt: skip
            return see_other(f"/admin/conversations/{conversation_id}", "queued")
        except InvalidInput as exc:
            errors, status = exc.errors, 422
        except Crossed as exc:  # the same message still: its key kept
            errors, status = [FieldError("text", exc.detail)], 409
            crossing = True
        except Conflict as exc:  # the window closed, the customer opted out, the number is gone...
            conflict, status = exc.detail, 409
    view, messages = await whatsapp.conversation(conversation_id)
    c = view.conversation
    business = await page.service.store.business(c.business_id)
    businesses = {business.id: business} if business else {}
    agents = {a.id: a.name for a in await page.service.store.agents(c.business_id)}
    now = int(whatsapp.clock())
    zone = _zone(businesses, c.business_id)
    refused = view.reply_refused
    if conflict is not None and refused is None:  # ...or the form's key was spent on another text
        errors = [FieldError("text", conflict)]
    elif conflict is not None:
        refused = conflict
    shown = [{"m": m, "at": when(m.at, zone), "status": STATUS_WORDS.get(m.status or "", m.status),
              "by": sent_by_words(m.sent_by)} for m in messages]  # fmt: skip
    key = page.form.get("idempotency_key") if status == 422 or crossing else None  # a mistake corrected: one message
    return show(
        page, "conversation.html", "conversations", status, errors, row=row(view, businesses, agents, now),
        messages=shown, refused=refused, posted_refusal=status == 409 and not errors, now=now,
        typed=page.form.get("text", ""), idempotency_key=key or secrets.token_urlsafe(16),
        seen=max((m.id for m in messages), default=0),
    )  # fmt: skip


class Crossed(Conflict):
    """Another agent replied while this one was typing: two answers would cross in the customer's chat."""


async def crossed(whatsapp: Any, conversation_id: int, form: dict[str, str], me: str) -> None:
    """Crossed when a reply that this agent had not seen (newer than the page's `seen`) was
    written by someone else; the page then shows it, keeps the draft, and the next Send goes.
    A form posted twice (its key already used) is the same message, not a crossing."""
    seen, key = form.get("seen", ""), form.get("idempotency_key", "")
    if not seen.isdigit() or (key and await whatsapp.chats.outbox_by_key(f"reply:{conversation_id}:{key}")):
        return
    _, messages = await whatsapp.conversation(conversation_id)
    others = [m for m in messages if m.id > int(seen) and m.direction == "out" and m.sent_by != me]
    if others:
        by = sent_by_words(others[-1].sent_by) or "from elsewhere"
        raise Crossed(f"Another reply was sent {by} while you were typing (above): read it, then send yours "
                      "if it still fits.", [FieldError("text", "another reply was sent while you were typing")])


routes: list[BaseRoute] = [
    Route("/whatsapp", numbers_page, methods=BOTH),
    Route("/whatsapp/{number_id}/disconnect", disconnect_page, methods=BOTH),
    Route("/conversations", conversations_page, methods=["GET"]),
    Route("/conversations/{conversation_id}", conversation_page, methods=BOTH),
]
