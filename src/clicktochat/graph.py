"""The one client of Meta's Graph API (WhatsApp Cloud API): the base URL comes from settings
(`CLICKTOCHAT_GRAPH_URL`, so tests and staging use a stand-in), the token is sent only in the
Authorization header, and Meta's error codes become `GraphError`s that say whether to try
again and what to tell a person.

Over aiohttp, not httpx: a send is the outbox's hot path, and an aiohttp POST costs about a
fifth of the CPU of an httpx one here (210-230 us against 1,100-1,300 us a request to the
stand-in on 127.0.0.1, bench/notifications.py's bare loops), which is the sender's throughput
on a small machine. pywa was considered: it is a whole bot framework (its own webhook server
and handlers) over httpx, where we need three calls, and our webhooks must be stored before
they are acknowledged."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

DEFAULT_TIMEOUT = 15.0

# Meta's error codes that say "not now" rather than "never".
RETRYABLE = {1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004}
# Meta's codes for an access token that no longer works (expired, revoked, a changed password:
# 190 "Access token has expired", 102 "API Session", as Meta's Graph API error handling lists
# them): nothing sent with it will go until the number is connected again with a new token.
TOKEN_REFUSED = {102, 190}
# What a person is told; Meta's own title and details follow in `detail`.
MESSAGES = {
    131047: "The 24-hour window is closed: the customer has not written in the last 24 hours, "
    "so only an approved template may be sent.",
    131026: "The message could not be delivered: the number may not be on WhatsApp, may use an old "
    "version, or has not accepted the latest terms.",
    131056: "Too many messages to this person in a short time; sending again shortly.",
    131049: "Meta did not deliver this marketing message, to keep the customer's experience good "
    "(a per-person limit on marketing messages).",
    131050: "The customer has stopped marketing messages from this business.",
    130429: "The number's message rate limit was reached; sending again shortly.",
    80007: "The WhatsApp Business Account's rate limit was reached; sending again shortly.",
    131051: "This type of message is not supported.",
    131052: "The customer's media could not be downloaded.",
    132000: "The template's parameters do not match the template.",
    132001: "The template does not exist in this language, or is not approved.",
    133010: "The business number is not registered on the Cloud API.",
    190: "The access token has expired or is not valid: connect the number again with a new token.",
    102: "The access token's session has expired or was revoked: connect the number again with a new token.",
    100: "Meta refused the request as malformed.",
    10: "The app has no permission for this number (whatsapp_business_messaging).",
    131031: "The business account is locked or restricted by Meta.",
}


@dataclass
class GraphError(Exception):
    """A refusal from the Graph API (or no answer at all: `code` 0)."""

    status: int  # HTTP status; 0 when the network failed
    code: int
    title: str
    detail: str = ""
    retry_after: float | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500 or self.code in RETRYABLE

    @property
    def token_refused(self) -> bool:
        """Meta refused the token itself: every send with it will fail the same way."""
        return self.code in TOKEN_REFUSED

    @property
    def message(self) -> str:
        return MESSAGES.get(self.code) or self.title or "The WhatsApp Cloud API refused the request."


def error_text(code: int | None, title: str | None) -> str | None:
    """Meta's error as people should read it, however it came (in an answer, or in a `failed`
    status's `errors`): our words for the codes we know, else Meta's own title."""
    return MESSAGES.get(code or 0) or title


def error_from(status: int, reason: str, headers: Mapping[str, str], body: bytes) -> GraphError:
    """Meta's `{"error": {"message", "type", "code", "error_subcode", "error_data": {"details"}}}`."""
    try:
        found = json.loads(body)
        error = found.get("error", {}) if isinstance(found, dict) else {}
        if not isinstance(error, dict):
            error = {}
    except ValueError:
        error = {}
    code = error["code"] if isinstance(error.get("code"), int) else 0
    details = error.get("error_data", {}).get("details", "") if isinstance(error.get("error_data"), dict) else ""
    return GraphError(
        status, code, str(error.get("message") or reason or "")[:500], str(details)[:500],
        retry_after(headers.get("retry-after")),
    )  # fmt: skip


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class GraphClient:
    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)  # said in errors: without a user or password a URL might carry
        self.shown_url = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None  # made on first use, inside the event loop

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, path: str, token: str, body: dict[str, Any] | None = None,
                    params: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, trust_env=False)
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, f"{self.base_url}/{path}", data=data, params=params, headers=headers, allow_redirects=False,
            ) as response:  # fmt: skip
                status, reason, answer_headers = response.status, response.reason or "", response.headers
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:  # the token is in a header, never in the message
            raise GraphError(0, 0, f"No answer from the Graph API at {self.shown_url} ({type(exc).__name__}): is "
                                   "CLICKTOCHAT_GRAPH_URL right, and is it up?") from None  # fmt: skip
        if status >= 400:
            raise error_from(status, reason, answer_headers, raw)
        try:
            answer = json.loads(raw)
        except ValueError:
            raise GraphError(status, 0, "The Graph API's answer is not JSON.") from None
        if not isinstance(answer, dict):
            raise GraphError(status, 0, "The Graph API answered with something unexpected.")
        return answer

    async def send(self, phone_number_id: str, token: str, payload: dict[str, Any]) -> str:
        """Send one message; returns its wamid."""
        answer = await self._call("POST", f"{phone_number_id}/messages", token, payload)
        messages = answer.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
            raise GraphError(200, 0, "The Graph API accepted the message but gave no message id.")
        return str(messages[0].get("id"))

    async def templates(self, waba_id: str, token: str, pages: int = 50) -> list[Any]:
        """Every message template of the business account, page after page. The next page is
        asked for with Meta's `after` cursor from our own base URL, never by following the
        `paging.next` URL given: the token goes nowhere else."""
        items: list[Any] = []
        params = {"fields": "name,language,status,category,components,parameter_format", "limit": "100"}
        for _ in range(pages):
            answer = await self._call("GET", f"{waba_id}/message_templates", token, params=params)
            data = answer.get("data")
            if not isinstance(data, list):
                raise GraphError(200, 0, "The Graph API's list of templates has no data.")
            items += data
            paging: dict[str, Any] = answer["paging"] if isinstance(answer.get("paging"), dict) else {}
            cursors: dict[str, Any] = paging["cursors"] if isinstance(paging.get("cursors"), dict) else {}
            after = cursors.get("after")
            if not paging.get("next") or not isinstance(after, str) or not after:
                break
            params = {**params, "after": after}
        return items

    async def phone_number(self, phone_number_id: str, token: str) -> dict[str, Any]:
        """The number's display number and verified name: checks the id and the token."""
        return await self._call(
            "GET", phone_number_id, token, params={"fields": "display_phone_number,verified_name,quality_rating"}
        )


def text_payload(to: str | None, user_id: str | None, text: str) -> dict[str, Any]:
    """A free-form text message, addressed by phone number or, when it is withheld, by the
    business-scoped user id."""
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if to:
        payload["to"] = to
    else:
        payload["recipient"] = user_id
    return payload | {"type": "text", "text": {"body": text, "preview_url": False}}


def template_payload(to: str | None, user_id: str | None, name: str, language: str,
                     parameters: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """An approved template (the only kind of message a business may start), its body's
    `{{1}}`, `{{2}}`... filled in order."""
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if to:
        payload["to"] = to
    else:
        payload["recipient"] = user_id
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}]
    return payload | {"type": "template", "template": template}
