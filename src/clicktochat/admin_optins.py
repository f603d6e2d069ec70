"""The dashboard's opt-in pages: the forms people opt in with (wording per language, topics,
double opt-in), and the consent list with search, CSV export and a box to record a consent or
an opt-out given by phone or at the counter. Same rules as `admin.py` (a session, CSRF on
every POST, post/redirect/get, no inline script); `Optins` decides what may be recorded."""

from __future__ import annotations

import csv
import io
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .admin import ADMIN_HEADERS, BOTH, Page, _int, admin_page, render, see_other
from .admin_chats import when
from .agents import Business
from .channels import display_phone
from .consent import Consent
from .csvcells import cell
from .errors import Conflict, FieldError, InvalidInput, NotFound
from .optin_words import LANGUAGES
from .optins import Optins, check_phone
from .optinstore import OptinForm
from .service import timestamp

LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "es": "Español", "de": "Deutsch", "fr": "Français",
                  "pt": "Português"}  # fmt: skip
LABELS = {
    "slug": "Name", "business_id": "Business", "title": "Title", "topics": "Topics", "languages": "Languages",
    "double_optin": "Double opt-in", "template": "Confirmation template", "template_language": "Template language",
    "phone": "Number", "topic": "Topic", "consent_text": "Consent sentence", "consent_version": "Version",
    "source": "Source", **{f"wording.{lang}": f"Sentence ({name})" for lang, name in LANGUAGE_NAMES.items()},
    "wording": "Consent sentence", "renewed": "Given again",
}  # fmt: skip
NOTICES = {  # ?done=... after a redirect: fixed words, never text from the URL
    "created": "The form is saved: share its page, print its poster, or turn it on in a widget.",
    "saved": "The form is saved. A new sentence is a new version; consents keep the words they were given with.",
    "recorded": "Recorded: a new entry in the customer's history.",
}  # fmt: skip
PAGE_SIZE = 100
CSV_COLUMNS = ["at", "business_id", "phone", "topic", "state", "source", "consent_text", "consent_version", "form",
               "page", "visitor", "widget", "confirmed_by", "topic_label", "note"]  # fmt: skip
NOTE_LENGTH = 500  # an opt-out's note, typed at the counter


def show(page: Page, template: str, section: str, status: int = 200, errors: list[FieldError] | None = None,
         **context: Any) -> Response:  # fmt: skip
    errors = errors or []
    return render(
        page.request, f"admin/{template}", status, admin=page.admin, csrf=page.csrf, section=section,
        form=page.form, errors={e.field: e.reason for e in errors},
        error_list=[(LABELS.get(e.field, e.field), e.reason) for e in errors],
        flash=NOTICES.get(page.request.query_params.get("done", "")), **context,
    )  # fmt: skip


def topic_lines(form: dict[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """The *Topic names* boxes: one `topic=name` a line (a name may hold commas). Returns the
    labels and, per `topic_labels.LANG.TOPIC` field, the line it came from; a line that is not
    `topic=name` is an error naming it."""
    labels: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    errors: dict[str, FieldError] = {}  # the first bad line of each box
    for lang in LANGUAGES:
        for number, line in enumerate(form.get(f"labels_{lang}", "").splitlines(), 1):
            if not line.strip():
                continue
            topic, sep, label = line.partition("=")
            if not sep or not topic.strip() or not label.strip():
                reason = f"line {number} ({line.strip()[:60]}) is not topic=name, e.g. orders=Orders"
                errors.setdefault(lang, FieldError(f"topic_labels.{lang}", reason))
                continue
            labels.setdefault(lang, {})[topic.strip()] = label.strip()
            lines[f"topic_labels.{lang}.{topic.strip()}"] = number
    if errors:
        raise InvalidInput.many(list(errors.values()))
    return labels, lines


def with_lines(errors: list[FieldError], form: dict[str, str]) -> list[FieldError]:
    """Errors about one topic's name say which line of its box they are about."""
    try:
        _, lines = topic_lines(form)
    except InvalidInput:
        return errors
    return [FieldError(e.field, f"line {lines[e.field]}: {e.reason}") if e.field in lines else e for e in errors]


def form_values(form: dict[str, str], lists: dict[str, list[str]]) -> dict[str, Any]:
    """The form's fields as `Optins.save_form` takes them: a sentence a language, the languages
    in the order ticked."""
    wording = {lang: form[f"wording_{lang}"] for lang in LANGUAGES if form.get(f"wording_{lang}", "").strip()}
    labels, _ = topic_lines(form)
    business = form.get("business_id", "").strip()
    return {
        "slug": form.get("slug", ""), "business_id": _int(business, "business_id") if business else None,
        "title": form.get("title", "").strip() or None, "topics": form.get("topics", ""), "wording": wording,
        "languages": [lang for lang in lists.get("languages", []) if lang in LANGUAGES] or list(wording),  # a ticked
        # language with no sentence is refused (save_form), never dropped
        "double_optin": "double_optin" in form, "template": form.get("template", "").strip() or None,
        "template_language": form.get("template_language", "").strip() or None,
        "topic_labels": labels,
    }  # fmt: skip


def as_fields(form: OptinForm) -> dict[str, str]:
    fields = {"slug": form.slug, "business_id": str(form.business_id), "title": form.title or "",
              "topics": ", ".join(form.topics), "template": form.template or "",
              "template_language": form.template_language or "", "double_optin": "on" if form.double_optin else ""}
    labels = {f"labels_{lang}": "\n".join(f"{topic}={label}" for topic, label in names.items())
              for lang, names in form.topic_labels.items()}  # fmt: skip
    return fields | {f"wording_{lang}": text for lang, text in form.wording.items()} | labels


def form_row(form: OptinForm, businesses: dict[int, Business], base_url: str) -> dict[str, Any]:
    business = businesses.get(form.business_id)
    return {"form": form, "business": business.name if business else "", "url": f"{base_url}/optin/{form.slug}"}


@admin_page
async def forms_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    if request.method == "POST":
        try:
            form = await Optins(service).save_form(form_values(page.form, page.lists))
            return see_other(f"/admin/optins/{form.slug}", "created")
        except (InvalidInput, NotFound) as exc:
            errors = with_lines(exc.errors, page.form) or [FieldError("business_id", exc.detail)]
    businesses = {b.id: b for b in await service.store.businesses()}
    rows = [form_row(f, businesses, service.base_url) for f in await service.whatsapp.chats.forms()]
    return show(page, "optins.html", "optins", 422 if errors else 200, errors, rows=rows,
                business_options=[(b.id, b.name) for b in businesses.values()], languages=LANGUAGE_NAMES,
                ticked=page.lists.get("languages", ["en"]))  # fmt: skip


@admin_page
async def form_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    optins = Optins(service)
    form = await optins.form(request.path_params["slug"])
    if request.method == "POST":
        try:
            saved = await optins.save_form(form_values(page.form, page.lists), form)
            return see_other(f"/admin/optins/{saved.slug}", "saved")
        except (InvalidInput, NotFound) as exc:
            errors = with_lines(exc.errors, page.form) or [FieldError("business_id", exc.detail)]
    else:
        page.form = as_fields(form)
    businesses = {b.id: b for b in await service.store.businesses()}
    ticked = page.lists.get("languages", []) if request.method == "POST" else list(form.languages)  # none: a 500 once
    return show(page, "optin_form.html", "optins", 422 if errors else 200, errors,
                row=form_row(form, businesses, service.base_url), languages=LANGUAGE_NAMES, ticked=ticked,
                business_options=[(b.id, b.name) for b in businesses.values() if b.id == form.business_id])  # fmt: skip


async def listed(page: Page, limit: int) -> tuple[str, int | None, int, list[Consent]]:
    params = page.request.query_params
    search = params.get("q", "")[:100]
    business = params.get("business", "").strip()
    offset = params.get("offset", "").strip()
    business_id = _int(business, "business") if business else None
    start = min(_int(offset, "offset"), 10**9) if offset else 0
    rows = await page.service.whatsapp.chats.consent_list(business_id, search, limit, start)
    return search, business_id, start, rows


@admin_page
async def consents_page(request: Request, page: Page) -> Response:
    service, errors = page.service, []
    if request.method == "POST":
        form = page.form
        try:
            business = form.get("business_id", "").strip()
            business_id = _int(business, "business_id") if business else None
            optins = Optins(service)
            if form.get("action") == "out":  # what was typed in the box is kept as the opt-out's note
                note = " ".join(form.get("consent_text", "").split())[:NOTE_LENGTH]  # ("asked by phone, 3 Dec")
                await optins.remove(business_id, form.get("phone", ""), form.get("topic") or None, "dashboard",
                                    {"note": note} if note else None)  # fmt: skip
            else:
                await optins.add(business_id, form.get("phone", ""), form.get("topic", ""), "dashboard",
                                 form.get("consent_text", ""), form.get("consent_version", ""),
                                 renewed=form.get("renewed") == "on")  # fmt: skip
            return see_other("/admin/consents", "recorded", {"q": form.get("phone", "")})
        except (InvalidInput, NotFound, Conflict) as exc:  # Conflict: an opt-in over an opt-out, not said renewed
            errors = exc.errors or [FieldError("business_id", exc.detail)]
            if isinstance(exc, Conflict):
                errors = [FieldError("renewed", exc.detail)]
    try:
        search, business_id, offset, rows = await listed(page, PAGE_SIZE)
    except InvalidInput as exc:
        errors, search, business_id, offset, rows = exc.errors, "", None, 0, []
    businesses = {b.id: b for b in await service.store.businesses()}
    def zone(business_id: int) -> str:  # times as the conversations show them: in the business's zone
        return businesses[business_id].timezone if business_id in businesses else "UTC"

    shown = [{"c": c, "phone": display_phone(c.phone) if c.phone else (c.user_id or ""),
              "at": when(c.at, zone(c.business_id)),
              "business": businesses[c.business_id].name if c.business_id in businesses else "",
              "proof": c.proof or {}} for c in rows]  # fmt: skip
    kept = {k: v for k, v in (("q", search), ("business", str(business_id or ""))) if v}
    requests = []  # a number searched for: its double opt-in requests too (pending ones are no consent yet)
    if any(ch.isdigit() for ch in search):
        try:
            requests = await service.whatsapp.chats.requests(business_id, check_phone(search))
        except InvalidInput:
            pass
    return show(page, "consents.html", "optins", 422 if errors else 200, errors, rows=shown, search=search,
                kept=kept, offset=offset, more=len(rows) == PAGE_SIZE,
                requests=[{"r": r, "at": when(r.created_at, zone(r.business_id)),
                           "until": when(r.expires_at, zone(r.business_id))} for r in requests],
                business_options=[("", "all")] + [(b.id, b.name) for b in businesses.values()])  # fmt: skip


@admin_page
async def consents_csv(request: Request, page: Page) -> Response:
    _, _, _, rows = await listed(page, 100_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for c in rows:
        proof = c.proof or {}
        writer.writerow([cell(v) for v in (
            timestamp(c.at), c.business_id, c.phone or c.user_id, c.topic, c.state, c.source, c.wording, c.version,
            proof.get("form"), proof.get("page"), proof.get("visitor"), proof.get("widget"), proof.get("confirmed_by"),
            proof.get("topic_label"), proof.get("note"),
        )])  # fmt: skip
    headers = ADMIN_HEADERS | {"Content-Disposition": 'attachment; filename="clicktochat-consents.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


routes: list[BaseRoute] = [
    Route("/optins", forms_page, methods=BOTH),
    Route("/optins/{slug}", form_page, methods=BOTH),
    Route("/consents", consents_page, methods=BOTH),
    Route("/consents.csv", consents_csv, methods=["GET"]),
]
