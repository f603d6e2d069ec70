"""Where strangers opt in: the hosted page `/optin/{form}` (a plain HTML form: it works with
JavaScript off), its poster and QR code, and the two endpoints the widget's optional panel
uses (`/api/optin/{form}` for its words, `/widget-optin.js` for the panel itself, fetched only
when the owner turned the panel on). A submission is the same everywhere: `Optins.submit`.

Abuse: each address and each number has a budget (budget.py: 429 with Retry-After), a hidden
field only robots fill in (their submission is answered as a success and dropped), and the
store allows one pending confirmation per number and one confirmation message a day."""

from __future__ import annotations

import gzip
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rjsmin
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .budget import Budget, client_address
from .errors import (
    Conflict,
    FieldError,
    InvalidInput,
    PayloadTooLarge,
    ProblemError,
    TooManyRequests,
    Unavailable,
    UnsupportedMediaType,
)
from .optin_words import country_names, country_pairs, default_country, words
from .optins import NotAPersonsNumber, Optins, Outcome, check_person_phone, form_language, visitor_key
from .optinstore import OptinForm
from .posters import POSTER_QR, Poster, poster_options
from .qr import parse_options
from .qr import render as render_qr
from .qr_access import public_options
from .qr_pages import qr_response, spend
from .views import PAGE_HEADERS, page
from .widget import WidgetTarget, domain_allowed
from .widget import page_url as widget_page_url
from .widget_http import WIDGET_HEADERS, asking_page, find_widget

MAX_FORM_BYTES = 8 * 1024
HONEYPOT = "website"
FORM_HEADERS = PAGE_HEADERS | {
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"].replace("form-action 'none'",
                                                                               "form-action 'self'"),
}  # fmt: skip
JSON_HEADERS = WIDGET_HEADERS | {"Cache-Control": "no-store"}


class Limits:
    """Budgets for opt-in submissions: per address (a burst of 10, a shop's tablet or a family
    behind one router, then one every 30 s) and per number and business (3, then one an hour),
    whatever the form; and the confirmations double opt-in forms send, which the business pays for:
    per business (`per_hour`), and per address (5, then one every 10 minutes), so that one
    address cannot spend a business's hour. Past any, a 429 with Retry-After."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, per_hour: int = 100) -> None:
        self.addresses = Budget(burst=10, rate=1 / 30, clock=clock)
        self.numbers = Budget(burst=3, rate=1 / 3600, clock=clock)
        self.confirmations = Budget(burst=per_hour, rate=per_hour / 3600, clock=clock)
        self.confirmations_from = Budget(burst=5, rate=1 / 600, clock=clock)

    def spend(self, budget: Budget, key: str, what: str, says: str = "busy") -> None:
        """`says`: the page's words for it (optin_words), in the form's language."""
        wait = budget.retry_after(key)
        if wait:
            raise TooManyRequests(f"Too many sign-ups from {what}; please try again in {wait} s.", wait, says)

    def spend_all(self, *spends: tuple[Budget, str, str, str]) -> list[tuple[Budget, str]]:
        """`spend` each in turn; past one, what the others took is given back (found by an
        attacker: a sign-up refused for the business's hour still spent the person's own
        budgets, and a real person retrying during a flood stayed locked out after it)."""
        taken: list[tuple[Budget, str]] = []
        for budget, key, what, says in spends:
            try:
                self.spend(budget, key, what, says)
            except TooManyRequests:
                for spent, spent_key in taken:
                    spent.refund(spent_key)
                raise
            taken.append((budget, key))
        return taken


@dataclass(frozen=True)
class Shown:
    """A form as one visitor sees it."""

    form: OptinForm
    lang: str
    business: str
    words: dict[str, str]

    @property
    def title(self) -> str:
        """What heads the form: its title, else the business's name."""
        return self.form.title or self.business

    @property
    def wording(self) -> str:
        return self.form.wording[self.lang]

    @property
    def topics(self) -> list[tuple[str, str]]:
        return [(t, self.form.topic_label(t, self.lang)) for t in self.form.topics]


async def shown(request: Request, lang: str = "") -> Shown:
    service = request.app.state.service
    form = await Optins(service).form(request.path_params["form"])
    chosen = form_language(form, lang or request.query_params.get("lang", ""),
                           request.headers.get("accept-language", ""))  # fmt: skip
    business = await service.store.business(form.business_id)
    name = business.name if business else ""  # who the consent is given to: the business, never the title
    return Shown(form, chosen, name, {k: v.replace("{business}", name) for k, v in words(chosen).items()})


def outcome_words(view: Shown, outcome: str, topic: str = "", wait: int = 0) -> str:
    """The sentence for an outcome ("in", "pending", "busy"...), in the form's language."""
    done = view.words.get(outcome, "").replace("{topic}", view.form.topic_label(topic, view.lang))
    return done.replace("{minutes}", str(max(1, math.ceil(wait / 60))))  # "busy": a wait in minutes, not seconds


def render(request: Request, view: Shown, status: int = 200, errors: dict[str, str] | None = None,
           values: dict[str, str] | None = None, outcome: str = "", topic: str = "",
           wait: int = 0, notice: str = "") -> Response:  # fmt: skip
    values = values or {}
    country = values.get("country") or default_country(request.headers.get("accept-language", ""), view.lang,
                                                        request.app.state.service.settings.default_region)
    done = outcome_words(view, outcome, topic, wait) if outcome else ""
    if status >= 400 and done:  # a refusal ("try again in 60 min") is not a thank-you: the form stays, filled in
        done, notice = "", done
    response = page(
        request, "optin.html", status, view=view, errors=errors or {}, values=values, country=country,
        countries=country_names(view.lang), done=done, via=request.query_params.get("via", values.get("via", "")),
        notice=notice,
    )  # fmt: skip
    response.headers.update(FORM_HEADERS)
    return response


async def optin_page(request: Request) -> Response:
    return render(request, await shown(request))


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_fields(request: Request) -> dict[str, str]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in FORM_TYPES:  # a JSON body was read as an empty form: "a phone number is required"
        raise UnsupportedMediaType("Send the form as application/x-www-form-urlencoded (or multipart/form-data).")
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"The form is larger than {MAX_FORM_BYTES} bytes.")
    form = await request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM_BYTES)
    fields: dict[str, str] = {}
    for key, value in form.multi_items():  # a field sent twice with two values (topic=a&topic=b) chose neither:
        if isinstance(value, str):  # the person is asked again, where the last one was taken silently (a review's)
            fields[key] = value if fields.get(key, value) == value else ""
    return fields


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


class WordingChanged(Conflict):
    """The form was changed (a new version of its wording) after the person read it: what
    they agreed to is not what would be recorded, so nothing is."""


async def submit(request: Request, fields: dict[str, str], view: Shown) -> tuple[Outcome, str]:
    """(what became of it, its topic); a robot's (the hidden field filled in) is dropped as if done."""
    state = request.app.state
    service = state.service
    address = client_address(request.scope, state.proxies)
    limits: Limits = state.optin_limits
    limits.spend(limits.addresses, address, "your address")
    topic = fields.get("topic", "") or (view.form.topics[0] if len(view.form.topics) == 1 else "")
    if fields.get(HONEYPOT):
        return Outcome("in"), topic
    phone = check_person_phone(fields.get("phone", ""), fields.get("country", ""))
    if fields.get("version", str(view.form.version)) != str(view.form.version):  # none posted: an older page
        raise WordingChanged(
            "The form's wording changed since it was shown: nothing was recorded; show it again.",
            [FieldError("version", f"is {fields['version']!r}, and the form is at version {view.form.version}")],
        )  # fmt: skip
    # The number's budget is the business's own: another business's form on the install must not
    # tell its visitors (by a 429) that the number was typed in here (found by an attacker).
    spends = [(limits.numbers, f"{view.form.business_id}:{phone}", "this number", "busy_number")]
    if view.form.double_optin:  # a confirmation may go out: the business pays for it
        spends += [(limits.confirmations_from, address, "your address", "busy"),
                   (limits.confirmations, str(view.form.business_id), "this business's forms this hour", "busy_form")]
    taken = limits.spend_all(*spends)
    # The widget's panel names the widget and the page: kept as proof only for a widget that
    # offers this form, posted from a site it may be on, and a page of that site (no query or fragment).
    target = await find_widget(service, fields["widget"]) if fields.get("widget") else None
    site = panel_site(request, target, view.form, service.base_url) if target else None
    widget = target.widget.id if target and site is not None else ""
    source = "widget" if widget else "qr" if fields.get("via") == "qr" else "page"
    page_url = f"{service.base_url}/optin/{view.form.slug}"
    if target and site is not None:
        page_url = widget_page_url(fields.get("page", ""), (site,) if site else target.widget.settings.allowed_domains)
    user_agent = request.headers.get("user-agent", "")[:512]
    salted = state.recorder.salts.hashes(int(time.time()), address, user_agent, f"optin/{view.form.slug}")[0]
    proof: dict[str, Any] = {"page": page_url, "visitor": visitor_key(salted), "lang": view.lang}
    if widget:
        proof["widget"] = widget
    try:
        outcome = await Optins(service).submit(view.form, phone, "", topic, view.lang, source, proof)
    except ProblemError:  # a topic not offered, a confirmation that cannot go now: nothing recorded or sent
        for budget, key in taken:  # the number's too: else a refused form would spend a stranger's budget
            budget.refund(key)  # for free, and show by its 429s whether others had typed the number in
        raise
    if outcome.state in ("waiting", "later"):  # no confirmation went out: it cost nothing
        for budget, key in taken[1:]:  # (not for a number that opted out: its "pending" must cost as any does,
            budget.refund(key)  # or the budget would tell who opted out; a review found it did)
    return outcome, topic


def panel_site(request: Request, target: WidgetTarget, form: OptinForm, base_url: str) -> str | None:
    """The site a widget's panel posted from (the browser's Origin, else its Referer; "" for our
    own pages), or None when the post cannot be that widget's: it offers another form (or is
    another business's), or the site is not one it may be on. A caller cannot borrow a widget
    to make a sign-up look as if it came from a shop's page."""
    settings = target.widget.settings
    if settings.optin_form != form.slug or target.business.id != form.business_id:
        return None
    host, ours = asking_page(request.headers.get("origin", "")[:2048], request.headers.get("referer", "")[:2048],
                             base_url)  # fmt: skip
    if ours:
        return ""
    return host if host and domain_allowed(host, settings.allowed_domains) else None


async def optin_submit(request: Request) -> Response:
    """The form's POST: a page (people) or JSON (the widget's panel, which asks for it)."""
    as_json = wants_json(request)
    message = ""  # what the widget's panel shows, in the form's language (`detail` stays English, for programs)
    try:
        fields = await read_fields(request)
        view = await shown(request, fields.get("lang", ""))
        try:
            outcome, topic = await submit(request, fields, view)
        except InvalidInput as exc:
            said = {"phone": view.words["fix_person" if isinstance(exc, NotAPersonsNumber) else "fix"],
                    "topic": view.words["fix_topic"]}  # in the page's language
            errors = {e.field: said.get(e.field, e.reason) for e in exc.errors}
            if as_json:
                message = " ".join(dict.fromkeys(errors.values()))
                raise
            return render(request, view, 422, errors, fields)
        except TooManyRequests as exc:  # in the form's language, whatever the browser's
            if as_json:
                message = outcome_words(view, exc.says or "busy", wait=exc.retry_after)
                raise
            busy = render(request, view, 429, values=fields, outcome=exc.says or "busy", wait=exc.retry_after)
            busy.headers.update(exc.headers)
            return busy
        except WordingChanged:  # shown again, with the words as they are now
            if as_json:
                message = view.words["changed"]
                raise
            return render(request, view, 409, values=fields, notice=view.words["changed"])
        except Unavailable:  # a double opt-in that cannot send its confirmation now: said in their language
            if as_json:
                message = outcome_words(view, "unavailable")
                raise
            return render(request, view, 503, values=fields, outcome="unavailable")
    except ProblemError as exc:
        if not as_json:
            raise
        body = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail,
                "errors": [e.as_dict() for e in exc.errors]}  # fmt: skip
        if message:
            body["message"] = message
        headers = JSON_HEADERS | dict(getattr(exc, "headers", None) or {})
        return JSONResponse(body, exc.status, headers, media_type="application/problem+json")
    # One answer whether the confirmation sent before still waits or was answered ("later": Yes or
    # No tapped): two told a stranger who typed the number in again whether its owner had reacted.
    state = "waiting" if outcome.state == "later" else outcome.state
    message = view.words[state].replace("{topic}", view.form.topic_label(topic, view.lang))
    if as_json:
        return JSONResponse({"state": state, "message": message}, headers=JSON_HEADERS)
    return render(request, view, outcome=state, topic=topic)


async def optin_panel(request: Request) -> Response:
    """What the widget's panel shows, in the page's language: CORS-readable, no cookies. An
    unknown form is the app's 404 (problem+json, readable by the script, spending from the
    caller's budget as every 404 does)."""
    view = await shown(request)
    body = {
        "form": view.form.slug, "lang": view.lang, "wording": view.wording, "version": view.form.version,
        "topics": view.topics, "words": view.words, "honeypot": HONEYPOT,
        "country": default_country(request.query_params.get("hl", ""), view.lang,
                                   request.app.state.service.settings.default_region),
        "countries": country_pairs(view.lang),  # the same tuple each time: built once per language
        "action": f"{request.app.state.service.base_url}/optin/{view.form.slug}",
    }  # fmt: skip
    cached = {"Cache-Control": "public, max-age=300", "Vary": "Origin, Accept-Language"}  # the browser may choose
    return JSONResponse(body, headers=WIDGET_HEADERS | cached)


class OptinPoster(Poster):
    """The poster, saying "get updates" instead of "chat with us"."""

    @property
    def call_to_action(self) -> str:
        return words(self.lang)["heading"]

    @property
    def instructions(self) -> str:
        return words(self.lang)["scan"]

    @property
    def qr(self) -> str:
        """The code opens the page marked as reached by a scan; the address printed under it,
        which people read and type, is the page's own."""
        return render_qr(f"{self.url}?via=qr", POSTER_QR, "svg").decode()


def scanned_url(request: Request, form: OptinForm) -> str:
    """What the poster's QR code opens: the page, marked as reached by a scan."""
    return f"{request.app.state.service.base_url}/optin/{form.slug}?via=qr"


async def optin_poster(request: Request) -> Response:
    view = await shown(request)
    page_format, lang = poster_options(request.query_params, view.lang)
    spend(request)  # a page drawn anew each time
    service = request.app.state.service
    logo = await service.store.logo(view.form.business_id)
    poster = OptinPoster(f"{service.base_url}/optin/{view.form.slug}", view.business, page_format, lang, logo)
    return page(request, "poster.html", poster=poster)


async def optin_qr(request: Request) -> Response:
    view = await shown(request)
    keys = request.app.state.service.signer.keys
    options = parse_options(public_options(keys, f"optin/{view.form.slug}", request.query_params))
    return await qr_response(request, scanned_url(request, view.form), options, None, "no-cache")


@dataclass(frozen=True)
class PanelScript:
    """widget/optin.js, minified and gzipped once: the widget imports it only when its owner
    turned the panel on, so the base script stays within its budget."""

    body: bytes
    gzipped: bytes
    tag: str

    @classmethod
    def build(cls, source: str) -> PanelScript:
        body = rjsmin.jsmin(source, keep_bang_comments=True).encode()
        return cls(body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:16] + '"')


async def panel_script(request: Request) -> Response:
    script: PanelScript = request.app.state.optin_script
    headers = WIDGET_HEADERS | {"ETag": script.tag, "Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == script.tag:
        return Response(status_code=304, headers=headers)
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(script.gzipped if gzipped else script.body, media_type="text/javascript", headers=headers)


routes = [
    Route("/optin/{form}", optin_page, methods=["GET"]),
    Route("/optin/{form}", optin_submit, methods=["POST"]),
    Route("/optin/{form}/poster", optin_poster, methods=["GET"]),
    Route("/qr/optin/{form}.{kind}", optin_qr, methods=["GET"]),
    Route("/api/optin/{form}", optin_panel, methods=["GET"]),
    Route("/widget-optin.js", panel_script, methods=["GET"]),
]
