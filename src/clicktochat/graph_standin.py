"""A local stand-in for Meta's Graph API (WhatsApp Cloud API), for tests and for a demo with no
Meta account: a Starlette app answering the calls we make (send a message, read a phone number,
list templates) with Meta's error bodies, the 24-hour customer service window (a late free-form
send is accepted, then fails with 131047), fault injection, and status webhooks signed as Meta
signs them (payloads.py)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .channels import whatsapp_number
from .payloads import (
    ERRORS,
    JSON,
    StatusName,
    clean,
    error,
    new_wamid,
    post_signed,
    pricing,
    status_update,
    webhook_body,
)

Clock = Callable[[], float]

WINDOW_SECONDS = 24 * 60 * 60
"""Meta's customer service window: free-form messages only within 24 h of the user's last one."""
MAX_TEXT_BODY = 4096


def _digits(phone: str) -> str:
    return "".join(char for char in phone if char.isdigit())


# --- the Graph API stand-in ---------------------------------------------------------------------


@dataclass(frozen=True)
class StandInNumber:
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    verified_name: str
    access_token: str
    app_secret: str


@dataclass
class SentMessage:
    """A send the stand-in accepted."""

    phone_number_id: str
    body: JSON
    wamid: str
    at: float
    wa_id: str | None
    user_id: str | None
    pricing: JSON
    failure: JSON | None = None
    """The error Meta would report in a `failed` status (131047 outside the window), if any."""


@dataclass
class _Fault:
    http_status: int
    code: int
    message: str | None
    retry_after: int | None


DEFAULT_TEMPLATES: list[JSON] = [
    {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "100000001",
     "components": [{"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                    {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your "
                     "ability to send a WhatsApp message notification from the Cloud API."}]},
    {"name": "follow_up", "language": "en_US", "status": "APPROVED", "category": "MARKETING", "id": "100000002",
     "components": [{"type": "BODY", "text": "Hi {{1}}, still interested in {{2}}? Reply and we'll help.",
                     "example": {"body_text": [["Sheena", "the blue sofa"]]}}]},
]


class _StripVersion:
    """Accepts ``/v26.0/...`` as well as ``/...``: the Graph API version is ignored."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (match := re.match(r"^/v\d+(?:\.\d+)?(/.*)$", scope["path"])):
            scope = {**scope, "path": match.group(1), "raw_path": match.group(1).encode()}
        await self.app(scope, receive, send)


def graph_error(http_status: int, code: int, message: str, *, type: str = "OAuthException",
                details: str | None = None, subcode: int | None = None,
                headers: dict[str, str] | None = None) -> JSONResponse:
    """A Graph API error response in Meta's shape."""
    body = clean({"message": message, "type": type, "code": code,
                   "error_data": {"messaging_product": "whatsapp", "details": details} if details else None,
                   "error_subcode": subcode, "fbtrace_id": "A" + secrets.token_urlsafe(16)})
    return JSONResponse({"error": body}, status_code=http_status, headers=headers)


def expired_token(now: float) -> JSONResponse:
    """Meta's answer to a call with an access token that has expired (Graph API error handling:
    code 190, subcode 463), HTTP 401."""
    day = "%A, %d-%b-%y %H:%M:%S PST"
    return graph_error(401, 190, f"Error validating access token: Session has expired on"
                       f" {time.strftime(day, time.gmtime(now - 60))}. The current time is"
                       f" {time.strftime(day, time.gmtime(now))}.", subcode=463)  # fmt: skip


def describe(sent: SentMessage) -> str:
    """One line for a person watching the stand-in: to whom, what, and how it will end."""
    who = f"+{sent.wa_id}" if sent.wa_id else str(sent.user_id)
    body = sent.body
    if body.get("type", "text") == "template":
        template = body.get("template", {})
        what = f"template {template.get('name')} ({template.get('language', {}).get('code')})"
    elif body.get("type", "text") == "text":
        text = str(body.get("text", {}).get("body", "")).replace("\n", " ")
        what = f"text {text[:60] + '...' if len(text) > 60 else text!r}"
    else:
        what = str(body.get("type"))
    failure = sent.failure or {}
    ending = f"; it will fail: {failure.get('code')} {failure.get('title', '')}".rstrip() if failure else ""
    return f"Sent to {who}: {what} ({sent.wamid}){ending}"


class GraphStandIn:
    """The Graph API endpoints we call, answered locally. ``app`` is the ASGI app to serve."""

    def __init__(self, numbers: Iterable[StandInNumber], webhook_url: str | None = None, auto_statuses: bool = False,
                 clock: Clock = time.time, templates: list[JSON] | None = None,
                 http: httpx.AsyncClient | None = None) -> None:
        self.numbers = {number.phone_number_id: number for number in numbers}
        self.webhook_url = webhook_url
        self.auto_statuses = auto_statuses
        self.webhook_patience = 120.0  # seconds a status is POSTed again while the server does not take it
        self.in_flight = 0  # sends being answered now, and the most at once so far
        self.peak_in_flight = 0
        self.clock = clock
        self.templates = DEFAULT_TEMPLATES if templates is None else templates
        self.http = http
        self.sent: list[SentMessage] = []
        self.on_send: Callable[[SentMessage], None] | None = None  # told of each send accepted (the CLI prints it)
        self.on_fault: Callable[[str, int], None] | None = None  # told of each send refused by fail_next: to, code
        # Where statuses go, asked at each one (the CLI: the server's address as its database says
        # now, the server started after the stand-in); None: webhook_url.
        self.find_webhook_url: Callable[[], str] | None = None
        # Told once a status, the first time the server does not take it (the CLI prints it).
        self.on_undelivered: Callable[[str, str, str], None] | None = None  # (wamid, status, url)
        self.answer_only: int | None = None  # see withhold_answers_after
        self._faults: list[_Fault] = []
        self._status_tasks: set[asyncio.Task[None]] = set()
        self._last_wrote: dict[tuple[str, str], float] = {}
        self._user_ids: dict[str, str] = {}  # wa_id -> BSUID, for users we have seen both of
        self._accounts: dict[str, str] = {}  # E.164 digits -> wa_id, where they differ (Mexico's 521...)
        self._stopped_marketing: set[tuple[str, str]] = set()
        self._expired: set[str] = set()  # access tokens Meta no longer takes (expire_token)
        routes = [Route("/{node_id}", self._node, methods=["GET"]),
                  Route("/{node_id}/messages", self._send, methods=["POST"]),
                  Route("/{node_id}/message_templates", self._templates, methods=["GET"])]
        self.app: ASGIApp = _StripVersion(Starlette(routes=routes))

    # -- what the customer side tells us

    def customer_wrote(self, phone_number_id: str, wa_id: str | None, at: float, user_id: str | None = None) -> None:
        """The user wrote to this number at ``at``: their 24-hour window is open until ``at + 24 h``
        from their latest message (one delivered late does not close it)."""
        for key in (wa_id, user_id):
            if key:
                self._last_wrote[(phone_number_id, key)] = max(at, self._last_wrote.get((phone_number_id, key), at))
        if wa_id and user_id:
            self._user_ids[wa_id] = user_id
        if wa_id and whatsapp_number(wa_id) != wa_id:
            self._accounts[whatsapp_number(wa_id)] = wa_id

    def marketing_preference(self, phone_number_id: str, who: str, value: Literal["stop", "resume"]) -> None:
        """The user stopped or resumed marketing messages (then marketing templates fail with 131050)."""
        (self._stopped_marketing.add if value == "stop" else self._stopped_marketing.discard)((phone_number_id, who))

    def fail_next(self, count: int, http_status: int, code: int, message: str | None = None,
                  retry_after: int | None = None) -> None:
        """Answer the next ``count`` valid sends with Meta's error body instead of accepting them."""
        self._faults += [_Fault(http_status, code, message, retry_after)] * count

    def expire_token(self, phone_number_id: str, new_token: str) -> None:
        """The number's access token expires now, as a token does when it is revoked, its system user
        loses the asset, or (a temporary one) its day is over: every call with it is answered with
        Meta's 401 `OAuthException` 190 (subcode 463, "Session has expired"). `new_token` is the one
        the owner generates again, which the number takes from now on (connect it with that)."""
        number = self.numbers[phone_number_id]
        self._expired.add(number.access_token)
        self.numbers[phone_number_id] = replace(number, access_token=new_token)

    def withhold_answers_after(self, count: int | None) -> None:
        """Take every send but answer only the first ``count`` taken so far: the rest wait unanswered,
        as when Meta took a message and its answer was lost with the connection (None answers
        again). Their statuses wait too, and are sent, as Meta sends them, once None is given."""
        self.answer_only = count

    def window_open(self, phone_number_id: str, who: str) -> bool:
        last = self._last_wrote.get((phone_number_id, who))
        return last is not None and self.clock() - last < WINDOW_SECONDS

    # -- routes

    def _authorise(self, request: Request, number: StandInNumber | None) -> JSONResponse | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token in self._expired:
            return expired_token(self.clock())
        tokens = {number.access_token} if number else {n.access_token for n in self.numbers.values()}
        if not token or token not in tokens:
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        return None

    def _unknown_node(self, node_id: str) -> JSONResponse:
        return graph_error(400, 100, f"Unsupported post request. Object with ID '{node_id}' does not exist, cannot "
                           "be loaded due to missing permissions, or does not support this operation.",
                           type="GraphMethodException", subcode=33)

    def _known(self, request: Request) -> StandInNumber | JSONResponse:
        """The number the path names, or Meta's refusal: a token not its own, or no such node."""
        node_id = request.path_params["node_id"]
        number = self.numbers.get(node_id)
        if denied := self._authorise(request, number):
            return denied
        return self._unknown_node(node_id) if number is None else number

    async def _node(self, request: Request) -> JSONResponse:
        number = self._known(request)
        if isinstance(number, JSONResponse):
            return number
        full = {"id": number.phone_number_id, "display_phone_number": number.display_phone_number,
                "verified_name": number.verified_name, "quality_rating": "GREEN",
                "code_verification_status": "VERIFIED", "platform_type": "CLOUD_API",
                "throughput": {"level": "STANDARD"}}
        wanted = [name for name in request.query_params.get("fields", "").split(",") if name]
        return JSONResponse({k: v for k, v in full.items() if not wanted or k in wanted or k == "id"})

    async def _templates(self, request: Request) -> JSONResponse:
        waba_id = request.path_params["node_id"]
        numbers = [n for n in self.numbers.values() if n.waba_id == waba_id]
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token in self._expired:
            return expired_token(self.clock())
        if not any(n.access_token == token for n in self.numbers.values()):
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if not numbers:
            return self._unknown_node(waba_id)
        return JSONResponse({"data": self.templates, "paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}})

    async def _send(self, request: Request) -> JSONResponse:
        number = self._known(request)
        if isinstance(number, JSONResponse):
            return number
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let other sends begin: a test sees how many the sender has out at once
        finally:
            self.in_flight -= 1
        try:
            body = json.loads(await request.body())
        except ValueError:
            return graph_error(400, 100, "(#100) Invalid parameter", details="Request body is not valid JSON")
        problem = self._invalid(body)
        if problem:
            return graph_error(400, 100, "(#100) Invalid parameter", details=problem)
        if self._faults:
            fault = self._faults.pop(0)
            title, details = ERRORS.get(fault.code, ("Unknown error", "Unknown error"))
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            if self.on_fault is not None:
                self.on_fault(str(body.get("to") or body.get("recipient") or ""), fault.code)
            return graph_error(fault.http_status, fault.code, fault.message or f"(#{fault.code}) {title}",
                               details=details, headers=headers)
        sent = self._accept(number, body)
        if self.answer_only is not None and len(self.sent) > self.answer_only:
            # Its statuses are held too (they would tell the sender what the answer did not),
            # and sent once the test lets go, even if this request is cancelled meanwhile.
            if self.auto_statuses and self.webhook_url:
                statuses = asyncio.create_task(self._statuses_once_answering(sent.wamid))
                self._status_tasks.add(statuses)
                statuses.add_done_callback(self._status_tasks.discard)
            while self.answer_only is not None:  # a connection that hangs until the test lets it go
                await asyncio.sleep(0.05)
            return graph_error(500, 2, "(#2) Service temporarily unavailable")
        contact = {"input": body["to"], "wa_id": sent.wa_id} if body.get("to") else \
            {"input": body["recipient"], "user_id": sent.user_id}
        answer = {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": sent.wamid}]}
        follow = self.auto_statuses and bool(self.webhook_url)
        task = BackgroundTask(self._deliver_in_background, sent.wamid) if follow else None
        return JSONResponse(answer, background=task)

    async def _deliver_in_background(self, wamid: str) -> None:
        """deliver_until_taken after the answer; cut short without a traceback when the stand-in
        stops (`simulate graph`'s Ctrl-C while a status is still being sent again)."""
        try:
            await self.deliver_until_taken(wamid)
        except asyncio.CancelledError:
            return

    def _invalid(self, body: Any) -> str | None:
        """What Meta would reject in a send request, or None."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if body.get("messaging_product") != "whatsapp":
            return "The parameter messaging_product is required and must be 'whatsapp'."
        if body.get("recipient_type", "individual") != "individual":
            return "Unsupported recipient_type."
        if not isinstance(body.get("to") or body.get("recipient"), str):
            return "The parameter to (phone number) or recipient (business-scoped user ID) is required."
        kind = body.get("type", "text")
        if kind == "text":
            text = body.get("text")
            text_body = text.get("body") if isinstance(text, dict) else None
            if not isinstance(text_body, str) or not text_body.strip():
                return "The parameter text['body'] is required."
            if len(text_body) > MAX_TEXT_BODY:
                return f"Param text['body'] must be at most {MAX_TEXT_BODY} characters long."
        elif kind == "template":
            template = body.get("template")
            if not isinstance(template, dict) or not template.get("name"):
                return "The parameter template['name'] is required."
            if not isinstance(template.get("language"), dict) or not template["language"].get("code"):
                return "The parameter template['language']['code'] is required."
            found = self._template(template["name"], template["language"]["code"])
            if not found:
                return f"template name ({template['name']}) does not exist in {template['language']['code']}"
            body_text = next((c.get("text", "") for c in found.get("components", []) if c.get("type") == "BODY"), "")
            wanted = len(set(re.findall(r"\{\{\s*(\w+)\s*\}\}", body_text)))
            given = sum(len(c.get("parameters", [])) for c in template.get("components", [])
                        if isinstance(c, dict) and c.get("type") == "body")  # fmt: skip
            if given != wanted:
                return (f"body: number of localizable_params ({given}) does not match the expected number of params"
                        f" ({wanted})")  # fmt: skip
        else:
            return f"Unsupported message type: {kind}"
        return None

    def _template(self, name: str, language: str) -> JSON | None:
        return next((t for t in self.templates if t["name"] == name and t["language"] == language), None)

    def _accept(self, number: StandInNumber, body: JSON) -> SentMessage:
        pnid = number.phone_number_id
        wa_id = _digits(body["to"]) if body.get("to") else None  # Meta: `to` wins over `recipient`
        wa_id = self._accounts.get(wa_id, wa_id) if wa_id else None  # the number's account, as Meta finds it
        user_id = self._user_ids.get(wa_id) if wa_id else body["recipient"]
        who = wa_id or user_id or ""
        in_window = self.window_open(pnid, who)
        failure: JSON | None = None
        if body.get("type", "text") == "template":
            template = self._template(body["template"]["name"], body["template"]["language"]["code"]) or {}
            category = str(template.get("category", "UTILITY")).lower()
            # Every template is charged, a utility one inside an open window too (Meta's rules
            # from 1 Oct 2026, as pricing.py and the README count them).
            price = pricing(category, billable=True, type="regular")
            if category == "marketing" and (pnid, who) in self._stopped_marketing:
                failure = error(131050)
        else:
            price = pricing()
            if not in_window:
                failure = error(131047)
        sent = SentMessage(pnid, body, new_wamid(wa_id, outbound=True), self.clock(), wa_id, user_id, price, failure)
        self.sent.append(sent)
        if self.on_send is not None:
            self.on_send(sent)
        return sent

    # -- statuses back to our server

    def find(self, wamid: str) -> SentMessage:
        return next(sent for sent in self.sent if sent.wamid == wamid)

    def status_body(self, wamid: str, status: StatusName, errors: list[JSON] | None = None) -> JSON:
        """The webhook Meta would send for this status of an accepted send."""
        sent = self.find(wamid)
        number = self.numbers[sent.phone_number_id]
        now = int(self.clock())
        if status == "failed":
            value = status_update(wamid=wamid, status=status, timestamp=now, recipient_id=sent.wa_id,
                                  recipient_user_id=None if sent.body.get("to") else sent.user_id,
                                  errors=errors or [sent.failure or error(131026)],
                                  biz_opaque_callback_data=sent.body.get("biz_opaque_callback_data"))
        else:
            thread = f"{number.phone_number_id}/{sent.wa_id or sent.user_id}"
            expires = str(int(sent.at) + WINDOW_SECONDS) if status == "sent" else None
            conversation = clean({"id": uuid.uuid5(uuid.NAMESPACE_OID, thread).hex, "expiration_timestamp": expires,
                                   "origin": {"type": sent.pricing["category"]}})
            contacts = [clean({"wa_id": sent.wa_id, "user_id": sent.user_id})] if sent.user_id else None
            value = status_update(wamid=wamid, status=status, timestamp=now, recipient_id=sent.wa_id,
                                  recipient_user_id=sent.user_id, pricing=sent.pricing, conversation=conversation,
                                  biz_opaque_callback_data=sent.body.get("biz_opaque_callback_data"),
                                  contacts=contacts)
        return webhook_body(waba_id=number.waba_id, phone_number_id=number.phone_number_id,
                            display_phone_number=number.display_phone_number, value=value)

    async def emit_status(self, wamid: str, status: StatusName, errors: list[JSON] | None = None) -> httpx.Response:
        """POST one signed status webhook for an accepted send to ``webhook_url``."""
        url = self.find_webhook_url() if self.find_webhook_url else self.webhook_url
        if not url:
            raise RuntimeError("GraphStandIn has no webhook_url to send statuses to")
        number = self.numbers[self.find(wamid).phone_number_id]
        return await post_signed(url, self.status_body(wamid, status, errors), number.app_secret, self.http)

    async def _statuses_once_answering(self, wamid: str) -> None:
        while self.answer_only is not None:
            await asyncio.sleep(0.05)
        await self.deliver_until_taken(wamid)

    async def deliver_until_taken(self, wamid: str) -> None:
        """As Meta does: each status POSTed again, with growing pauses, until the server takes it
        (a 200), for about `webhook_patience` seconds (Meta: days)."""
        statuses: list[StatusName] = ["failed"] if self.find(wamid).failure else ["sent", "delivered"]
        for status in statuses:
            pause, waited = 0.1, 0.0
            while True:
                try:
                    answer = await self.emit_status(wamid, status)
                    if answer.status_code == 200:
                        break
                    refused = f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    refused = f"{type(exc).__name__}: {exc}"
                if waited == 0.0 and self.on_undelivered is not None:
                    self.on_undelivered(wamid, status, refused)
                if waited >= self.webhook_patience:
                    return
                await asyncio.sleep(pause)
                waited, pause = waited + pause, min(2.0, pause * 2)

    async def deliver(self, wamid: str) -> list[httpx.Response]:
        """What Meta sends after accepting a message: `failed` with its error, or `sent` then `delivered`."""
        if self.find(wamid).failure:
            return [await self.emit_status(wamid, "failed")]
        return [await self.emit_status(wamid, "sent"), await self.emit_status(wamid, "delivered")]


async def serve_standin(standin: GraphStandIn, host: str = "127.0.0.1", port: int = 9100) -> None:
    """Serve the stand-in with uvicorn until cancelled (for ``clicktochat simulate graph``)."""
    import uvicorn

    await uvicorn.Server(uvicorn.Config(standin.app, host=host, port=port, log_level="info")).serve()
