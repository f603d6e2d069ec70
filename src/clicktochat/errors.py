"""Errors that carry their HTTP status, so plain functions can refuse input without knowing
about HTTP, and one handler (in `app.py`) renders them as problem+json or a friendly page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class ProblemError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None, says: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        # What a person reads instead of `detail` on the friendly page, in their language: a key of
        # page_words.WORDS. Empty: the page shows `detail` (in English) as it is.
        self.says = says


class InvalidInput(ProblemError):
    """Input that is well-formed but wrong: a bad number, a too-long text, a taken slug."""

    status = 422
    title = "Invalid input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", [FieldError(field, reason)])

    @classmethod
    def many(cls, errors: list[FieldError]) -> InvalidInput:
        error = cls.__new__(cls)
        ProblemError.__init__(error, "; ".join(f"{e.field}: {e.reason}" for e in errors), errors)
        return error


@dataclass
class Mistakes:
    """Independent checks run one after the other, each refusal kept, so that a form or a
    request hears of all its mistakes at once: fix three fields, not one field three times.

        mistakes = Mistakes()
        text = mistakes.check(check_text, value, otherwise="")  # `otherwise` if refused
        mode = mistakes.check(check_mode, mode, otherwise=mode)
        mistakes.raise_any()  # before anything is used
    """

    errors: list[FieldError] = field(default_factory=list)

    def check(self, check: Callable[..., T], *args: Any, otherwise: T) -> T:
        try:
            return check(*args)
        except InvalidInput as exc:
            self.errors.extend(exc.errors)
            return otherwise

    async def wait(self, check: Awaitable[T], otherwise: T) -> T:
        try:
            return await check
        except InvalidInput as exc:
            self.errors.extend(exc.errors)
            return otherwise

    def refuse(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def raise_any(self) -> None:
        if self.errors:
            raise InvalidInput.many(self.errors)


class MalformedRequest(ProblemError):
    status = 400
    title = "Malformed request"


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="clicktochat"'}


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class Gone(ProblemError):
    status = 410
    title = "Gone"


class LinkGone(Gone):
    """A short link turned off or expired. Its page names the link's business, if it had one, and
    offers `reach` (another way to write to that business), if there is one."""

    def __init__(self, detail: str, says: str, business: str | None, reach: str | None) -> None:
        super().__init__(detail, says=says)
        self.business, self.reach = business, reach


class ChannelGone(Gone):
    """A link or a widget click asked for a channel its business does not offer (any more). Its
    page names the channel and lists `alternatives`, (label, URL) of the channels the business
    still has, each URL through our own click routes (never an address)."""

    def __init__(self, channel: str, business: str | None, alternatives: list[tuple[str, str]]) -> None:
        super().__init__(f"This chat link asks for {channel}, which this business does not offer.",
                         says="channel_gone")  # fmt: skip
        self.channel, self.business, self.alternatives = channel, business, alternatives


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported media type"


class LengthRequired(ProblemError):
    status = 411
    title = "Length required"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload too large"


class RequestTimeout(ProblemError):
    """The body took too long: the connection is closed after the answer (RFC 9110), so a
    client that keeps trickling bytes holds nothing."""

    status = 408
    title = "Request timeout"
    headers = {"Connection": "close"}


class TooManyRequests(ProblemError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int, says: str = "") -> None:
        super().__init__(detail, says=says)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class Unavailable(ProblemError):
    status = 503
    title = "Unavailable"

    def __init__(self, detail: str, headers: dict[str, str] | None = None, says: str = "") -> None:
        super().__init__(detail, says=says)
        if headers:
            self.headers = headers


class InternalError(ProblemError):
    status = 500
    title = "Internal server error"


# A request repeated with its idempotency key but other content: the field a 409 names.
KEY_USED = FieldError("idempotency_key", "was used for a request with other content; send it again as it was, "
                                         "or use a new key for a new request")
