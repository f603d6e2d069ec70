"""REST API v1: thin handlers over `Service`. Request and response bodies are pydantic
models, so validation errors name their fields and the OpenAPI document is generated from
the same classes the handlers use."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .agents import Agent, Business, is_available
from .channels import CHANNELS, MAX_TEXT_LENGTH
from .errors import FieldError, InvalidInput, MalformedRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from .keys import check_api_key
from .links import MAX_LABEL_LENGTH, SLUG_PATTERN, ShortLink
from .logos import MAX_UPLOAD_BYTES
from .service import MAX_EXPIRY_SECONDS, MAX_NAME_LENGTH, CreatedLink, Service, timestamp
from .stats import compute, parse_query
from .tokens import token_key
from .widget import (
    DOMAIN_PATTERN,
    MAX_GREETING_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    WIDGET_ID_PATTERN,
    Widget,
)
from .widget import (
    MAX_LABEL_LENGTH as MAX_WIDGET_LABEL_LENGTH,
)

MAX_BODY_BYTES = 64 * 1024
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp")
Mode = Literal["auto", "redirect", "landing"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def schema(**constraints: Any) -> Any:
    """Constraints for the OpenAPI document only: the server checks the same things itself (in
    `Service`, with its own words in the errors), and the document says so, so that clients and
    schema-driven fuzzers send only what is accepted. A PATCH field's default ("" or "UTC")
    means nothing (only the fields sent change) and is left out of the document."""

    def add(field_schema: dict[str, Any]) -> None:
        field_schema.update(constraints)
        if field_schema.get("default") in ("", []):
            del field_schema["default"]

    return add


NAME = schema(minLength=1, maxLength=MAX_NAME_LENGTH, pattern=r"\S")  # not only spaces
TEXT = schema(maxLength=MAX_TEXT_LENGTH, pattern=r"^[^\x00-\x09\x0b-\x1f\x7f]*$")  # new lines allowed
LABEL = schema(maxLength=MAX_LABEL_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")
PHONE = schema(minLength=3, maxLength=40, pattern=r"^\+?[0-9][0-9 ().\-/]*$")
ADDRESS = schema(minLength=1, maxLength=320, pattern=r"\S")  # each channel checks its own form
ADDRESS_HELP = ("Where `channel` leads: a phone number with country code (+39 347 123 4567) for WhatsApp, Signal, "
                "Viber, SMS and calls; a username for Telegram (@dolcevita, or a number), Instagram and LINE "
                "(@dolcevita); a Facebook Page for Messenger (dolcevita.roma); an e-mail address.")  # fmt: skip
NOTES_HELP = ("What the owner should know about the link, in English: text the app will not pre-fill, a "
              "destination that works only under conditions (returned when a link is made or changed).")  # fmt: skip
SLUG = schema(pattern=f"^{SLUG_PATTERN.pattern}$")
CHANNEL = schema(enum=list(CHANNELS))
ID = schema(minimum=1, maximum=2**63 - 1)
TIMEZONE = schema(enum=sorted(available_timezones()))
TIMEZONE_OR_NULL = schema(enum=[*sorted(available_timezones()), None])
COLOUR_HELP = "The business's colour on its posters, #rrggbb (darkened there until it reads on white); null: ours."
COLOUR_SCHEMA = schema(pattern=r"^(#?[0-9a-fA-F]{6})?$")
# A new link leads to exactly one of: a number, an agent, a business.
ONE_DESTINATION: list[Any] = [
    {"required": [field], "properties": {field: {"not": {"type": "null"}}} | {
        other: {"type": "null"} for other in ("to", "agent_id", "business_id") if other != field}}
    for field in ("to", "agent_id", "business_id")
]  # fmt: skip


class LinkCreate(Body):
    model_config = ConfigDict(json_schema_extra={
        "oneOf": ONE_DESTINATION,
        "dependentSchemas": {  # what only one kind of link has
            "title": {"required": ["short"], "properties": {"short": {"const": False}}},
            "slug": {"properties": {"short": {"const": True}}},
            "ref_code": {"properties": {"short": {"const": True}}},
        },
        "not": {"required": ["expires_at", "expires_in"]},
    })  # fmt: skip

    to: str | None = Field(None, description=ADDRESS_HELP, json_schema_extra=ADDRESS)
    channel: str = Field("whatsapp", description="Messenger of `to`; for a short link to an agent or business, the "
                         "channel it opens (the business must offer it; left out: the agent's first).",
                         json_schema_extra=CHANNEL)  # fmt: skip
    agent_id: int | None = Field(None, description="Lead to this agent (short links: editable later).",
                                 json_schema_extra=ID)  # fmt: skip
    business_id: int | None = Field(None, description="Lead to whoever of this business is available.",
                                    json_schema_extra=ID)  # fmt: skip
    text: str = Field("", description="Pre-filled message, at most 1000 characters.", json_schema_extra=TEXT)
    campaign: str | None = Field(None, description="Label counted with each click, e.g. summer-ad.",
                                 json_schema_extra=LABEL)  # fmt: skip
    source: str | None = Field(None, description="Where the link is placed, e.g. flyer, instagram-bio.",
                               json_schema_extra=LABEL)  # fmt: skip
    mode: Mode = Field("auto", description="auto: phones go to the chat, desktops see a landing page.")
    short: bool = Field(
        True, description="true: a short link stored here (prefer it for print: smaller QR codes, editable); "
        "false: a signed link, for ads.",
    )
    slug: str | None = Field(None, description="Custom slug for a short link; random when left out.",
                             json_schema_extra=SLUG)  # fmt: skip
    expires_at: AwareDatetime | None = Field(None, description="When the link stops working.")
    expires_in: int | None = Field(
        None, gt=0, le=MAX_EXPIRY_SECONDS, description="Seconds from now until the link stops working."
    )
    title: str | None = Field(None, description="Name shown on a signed link's landing page.", json_schema_extra=NAME)
    ref_code: bool | None = Field(
        None, description="Short links to WhatsApp: add a ref code to the message, so the conversation that follows "
        "is tied to the click. null: when the number is connected to the Cloud API.",
    )  # fmt: skip


class LinkUpdate(Body):
    # A new destination, when one is given, is exactly one of a number, an agent, a business.
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"not": {"anyOf": [{"required": ["to"]}, {"required": ["agent_id"]}, {"required": ["business_id"]}]}},
        *ONE_DESTINATION,
    ]})  # fmt: skip

    to: str | None = Field(None, description=ADDRESS_HELP, json_schema_extra=ADDRESS)
    channel: str | None = Field("whatsapp", description="Messenger of `to` (given with it); of a link to an agent"
                                " or business, the channel it opens (null: the agent's first).",
                                json_schema_extra=CHANNEL)  # fmt: skip
    agent_id: int | None = Field(None, json_schema_extra=ID)
    business_id: int | None = Field(None, json_schema_extra=ID)
    text: str = Field("", json_schema_extra=TEXT)
    campaign: str | None = Field(None, json_schema_extra=LABEL)
    source: str | None = Field(None, json_schema_extra=LABEL)
    mode: Mode = "auto"
    disabled: bool = False
    expires_at: AwareDatetime | None = None
    ref_code: bool | None = None


class BusinessCreate(Body):
    name: str = Field(json_schema_extra=NAME)
    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/Rome.", json_schema_extra=TIMEZONE)
    colour: str | None = Field(None, description=COLOUR_HELP, json_schema_extra=COLOUR_SCHEMA)


class BusinessUpdate(Body):
    name: str = Field("", json_schema_extra=NAME)
    timezone: str = Field("UTC", json_schema_extra=TIMEZONE)
    fallback_agent_id: int | None = Field(None, description="Who gets chats when nobody is available (0: none).",
                                          json_schema_extra={"minimum": 0})  # fmt: skip
    colour: str | None = Field(None, description=COLOUR_HELP, json_schema_extra=COLOUR_SCHEMA)


HOURS_HELP = 'Weekly hours, {"mon": ["09:00-13:00", "15:00-19:00"], ...} or "mon-fri 09:00-18:00; sat 10:00-12:00".'
HOURS_SCHEMA = {
    "anyOf": [
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        {"type": "string"},
        {"type": "null"},
    ]
}
# Any JSON here: agents.parse_hours checks it and names `hours` or `hours.<day>` in its errors.
Hours = Annotated[Any, WithJsonSchema(HOURS_SCHEMA)]


# An address on any channel: a phone number, a @username, a page, an e-mail address (the channel's
# normalize() checks it, naming the field); the document only says it is not empty.
ADDRESS = schema(minLength=1, maxLength=320, pattern=r"\S")
ADDRESS_HELP = "The agent's address on `channel`: a phone number with country code, a username, an e-mail address."
CHANNELS_HELP = ("Every channel of the agent, the first first (it is also `channel` and `address`), each channel "
                 "once. Instead of channel and address; in a PATCH, the whole list.")  # fmt: skip


class AgentChannel(Body):
    channel: str = Field("whatsapp", json_schema_extra=CHANNEL)
    address: str = Field(description=ADDRESS_HELP, json_schema_extra=ADDRESS)


class AgentCreate(Body):
    model_config = ConfigDict(json_schema_extra={"oneOf": [  # one channel (address), or several (channels)
        {"required": ["address"], "not": {"required": ["channels"]}},
        {"required": ["channels"], "not": {"anyOf": [{"required": ["address"]}, {"required": ["channel"]}]}},
    ]})  # fmt: skip

    name: str = Field(json_schema_extra=NAME)
    address: str | None = Field(None, description=ADDRESS_HELP, json_schema_extra=ADDRESS)
    channel: str = Field("whatsapp", json_schema_extra=CHANNEL)
    channels: list[AgentChannel] | None = Field(None, description=CHANNELS_HELP,
                                                json_schema_extra=schema(minItems=1, maxItems=len(CHANNELS)))
    hours: Hours = Field(None, description=HOURS_HELP + " Null: always available.")
    timezone: str | None = Field(None, description="Defaults to the business's.", json_schema_extra=TIMEZONE_OR_NULL)


class AgentUpdate(Body):
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["channels", "address"]}})

    name: str = Field("", json_schema_extra=NAME)
    address: str = Field("", description="The address on the first channel.", json_schema_extra=ADDRESS)
    channel: str = Field("whatsapp", description="The first channel (with address).", json_schema_extra=CHANNEL)
    channels: list[AgentChannel] = Field([], description=CHANNELS_HELP,
                                         json_schema_extra=schema(minItems=1, maxItems=len(CHANNELS)))
    hours: Hours = None
    timezone: str | None = Field(None, json_schema_extra=TIMEZONE_OR_NULL)


def widget_text(limit: int) -> Any:
    return schema(maxLength=limit, pattern=r"^[^\x00-\x09\x0b-\x1f\x7f]*$")


def widget_number(top: int) -> Any:
    return schema(minimum=0, maximum=top)


PATHS = schema(maxItems=MAX_PATTERNS,
               items={"type": "string", "pattern": r"^/[^ ?#]*$", "maxLength": MAX_PATTERN_LENGTH})  # fmt: skip
DOMAINS = schema(maxItems=MAX_PATTERNS, items={"type": "string", "pattern": DOMAIN_PATTERN.pattern.join("^$")})


class WidgetFields(Body):
    """A widget's settings. In a PATCH, null puts a setting back to its default."""

    greeting: str | None = Field(None, description="Shown at the top of the panel; default: in the visitor's language.",
                                 json_schema_extra=widget_text(MAX_GREETING_LENGTH))  # fmt: skip
    message: str | None = Field(
        None, description="Pre-filled text; {page_url} and {page_title} are filled in at the click.",
        json_schema_extra=widget_text(MAX_MESSAGE_LENGTH),
    )
    label: str | None = Field(None, description="Text beside the button's icon, at most 40 characters.",
                              json_schema_extra=widget_text(MAX_WIDGET_LABEL_LENGTH))  # fmt: skip
    colour: str | None = Field(None, description="Button and header colour, #rrggbb; text is white or black, "
                               "whichever contrasts more.",
                                   json_schema_extra=schema(pattern=r"^#?[0-9A-Fa-f]{6}$"))  # fmt: skip
    position: Literal["right", "left"] | None = None
    offset_x: int | None = Field(None, description="Pixels from the side, 0-200.", json_schema_extra=widget_number(200))
    offset_y: int | None = Field(None, description="Pixels from the bottom, 0-200.",
                                 json_schema_extra=widget_number(200))  # fmt: skip
    locale: Literal["en", "it", "es", "pt", "de", "fr", "ar"] | None = Field(
        None, description="Force a language; default: the page's lang, then the browser's."
    )
    agent_ids: list[int] | None = Field(None, description="Agents the panel lists, in order; default: all.")
    show_on: list[str] | None = Field(None, description="Show only on these paths ('*' matches anything).",
                                      json_schema_extra=PATHS)  # fmt: skip
    hide_on: list[str] | None = Field(None, description="Never show on these paths.", json_schema_extra=PATHS)
    delay: int | None = Field(None, description="Seconds before the button appears, 0-600.",
                              json_schema_extra=widget_number(600))  # fmt: skip
    scroll: int | None = Field(None, description="Percent of the page scrolled before it appears, 0-100.",
                               json_schema_extra=widget_number(100))  # fmt: skip
    hide_offline: bool | None = Field(None, description="No button while nobody is available.")
    bubble: bool | None = Field(None, description="Pop the greeting up once per visit.")
    bubble_delay: int | None = Field(None, description="Seconds before the greeting pops up, 0-600.",
                                     json_schema_extra=widget_number(600))  # fmt: skip
    qr: bool | None = Field(None, description="Offer desktop visitors a QR code to continue on their phone.")
    allowed_domains: list[str] | None = Field(
        None, description="Sites that may show the widget (example.com, *.example.com); default: any.",
            json_schema_extra=DOMAINS
    )
    optin_form: str | None = Field(
        None, description="The name of an opt-in form of the widget's business (else 422): the panel offers "
        "updates on WhatsApp with it (its script is loaded only then).",
        json_schema_extra=schema(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"),
    )


class WidgetCreate(WidgetFields):
    business_id: int = Field(json_schema_extra=ID)
    id: str | None = Field(None, description="The public id in the embed snippet; random when left out.",
                           json_schema_extra=schema(pattern=f"^{WIDGET_ID_PATTERN.pattern}$"))  # fmt: skip


class WidgetUpdate(WidgetFields):
    business_id: int | None = Field(None, json_schema_extra=ID)


class WidgetOut(BaseModel):
    id: str
    business_id: int
    snippet: str = Field(description="The script tag to paste into a site.")
    greeting: str | None
    message: str | None
    label: str | None
    colour: str
    position: str
    offset_x: int
    offset_y: int
    locale: str | None
    agent_ids: list[int] | None
    show_on: list[str]
    hide_on: list[str]
    delay: int
    scroll: int
    hide_offline: bool
    bubble: bool
    bubble_delay: int
    qr: bool
    allowed_domains: list[str]
    optin_form: str | None = Field(None, description="The opt-in form the panel offers, if any")
    clicks: int | None = None
    created_at: str | None
    updated_at: str | None


class WidgetList(BaseModel):
    widgets: list[WidgetOut]


class CountsOut(BaseModel):
    clicks: int = Field(description="People's clicks; robots are never in here")
    uniques: int = Field(description="Clicks by a visitor not seen on that link within CLICKTOCHAT_UNIQUE_WINDOW")
    bots: int = Field(description="Robots: crawlers, link previews, monitors, link checkers")
    conversations: int = Field(0, description="WhatsApp chats started (by time, link, campaign, agent, channel, "
                               "widget; 0 for other groupings)")  # fmt: skip
    conversion: float | None = Field(None, description="Chats opened from a click (its ref code) per click")


class StatsRowOut(CountsOut):
    key: str = Field(description="The day, week (its Monday), month, link, campaign, agent id or value; '' for none")
    label: str = Field(description="For people: the agent's name, '(none)' for an empty key, else the key")


class StatsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="First day, YYYY-MM-DD, in `timezone`")
    to: str = Field(description="Last day, included")
    timezone: str
    by: str
    filters: dict[str, str | int]
    totals: CountsOut
    rows: list[StatsRowOut]


class LinkOut(BaseModel):
    slug: str
    url: str
    channel: str | None
    to: str | None
    agent_id: int | None
    business_id: int | None
    text: str
    campaign: str | None
    source: str | None
    mode: Mode
    disabled: bool
    expires_at: str | None
    created_at: str | None
    updated_at: str | None
    chat_url: str | None = Field(description="Where a click goes now (null when it depends on who is available).")
    clicks: int | None = Field(None, description="Clicks recorded so far (written within a second or so).")
    ref_code: bool | None = Field(None, description="A ref code in the message: true, false, or null (when the "
                                  "number is connected)")  # fmt: skip
    notes: list[str] = Field(default_factory=list, description=NOTES_HELP)


class SignedLinkOut(BaseModel):
    url: str
    short: Literal[False] = False
    key: str = Field(description="Identifies this link in click records.")
    channel: str
    to: str
    text: str
    campaign: str | None
    source: str | None
    mode: Mode
    expires_at: str | None
    chat_url: str
    notes: list[str] = Field(default_factory=list, description=NOTES_HELP)


class BusinessOut(BaseModel):
    id: int
    name: str
    timezone: str
    fallback_agent_id: int | None
    colour: str | None = Field(description=COLOUR_HELP)


class AgentChannelOut(BaseModel):
    channel: str
    label: str = Field(description="The messenger's name, for people.")
    address: str


class AgentOut(BaseModel):
    id: int
    business_id: int
    name: str
    channel: str = Field(description="The agent's first channel.")
    address: str = Field(description="The agent's address on their first channel.")
    channels: list[AgentChannelOut] = Field(description="Every channel of the agent, the first first.")
    hours: dict[str, list[str]] | None
    timezone: str
    available_now: bool


class LinkList(BaseModel):
    links: list[LinkOut]


class BusinessList(BaseModel):
    businesses: list[BusinessOut]


class AgentList(BaseModel):
    agents: list[AgentOut]


# -- plumbing -------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request, Service], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Every API endpoint but the OpenAPI document wants a valid bearer API key."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        service: Service = request.app.state.service
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized(
                "Send an API key in the header 'Authorization: Bearer <key>'; "
                "create one with `clicktochat apikey create NAME`."
            )
        if await check_api_key(service.store, key.strip()) is None:
            raise Unauthorized("This API key is not valid, or it has been revoked.")
        return await handler(request, service)

    return wrapper


async def read_bytes(request: Request, media_types: tuple[str, ...], limit: int, what: str) -> bytes:
    """The raw body, refused early if it is of another type or larger than `limit`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in media_types:
        raise UnsupportedMediaType(f"Send {what} with 'Content-Type: {' or '.join(media_types)}'.")
    if int(request.headers.get("content-length") or 0) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    return body


async def read_body(request: Request, model: type[M]) -> M:
    body = await read_bytes(request, ("application/json",), MAX_BODY_BYTES, "the body as JSON")
    try:
        return model.model_validate_json(body or b"null")
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors[0]["type"] == "json_invalid":
            raise MalformedRequest(f"The body is not valid JSON: {errors[0]['ctx'].get('error', '')}") from None
        if errors[0]["loc"] == ():
            raise MalformedRequest("The body is empty; send a JSON object." if not body else
                                   "The body must be a JSON object.") from None  # fmt: skip
        raise InvalidInput.many([FieldError(field_name(e["loc"]), _reason(e)) for e in errors]) from None


def field_name(loc: tuple[int | str, ...]) -> str:
    """A field as the errors name it: `channels[1].address`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _reason(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    if error["type"] == "missing":
        return "is required"
    return str(error["msg"])


def changes_of(model: BaseModel) -> dict[str, Any]:
    """Only the fields the client sent: PATCH semantics."""
    return {name: getattr(model, name) for name in model.model_fields_set}


def epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def out(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not low <= int(raw) <= high:
        raise InvalidInput(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def link_out(service: Service, link: ShortLink, clicks: int | None = None) -> LinkOut:
    return LinkOut(
        slug=link.slug, url=service.short_url(link.slug), channel=link.channel, to=link.address,
        agent_id=link.agent_id, business_id=link.business_id, text=link.text, campaign=link.campaign,
        source=link.source, mode=link.mode, disabled=link.disabled,  # type: ignore[arg-type]
        expires_at=timestamp(link.expires_at), created_at=timestamp(link.created_at),
        updated_at=timestamp(link.updated_at), chat_url=service.destination_url(link), clicks=clicks,
        ref_code=link.ref_code,
    )  # fmt: skip


def signed_out(service: Service, created: CreatedLink) -> SignedLinkOut:
    signed, token = created.signed, created.token
    assert signed is not None and token is not None
    return SignedLinkOut(
        url=created.url, key=token_key(token), channel=signed.channel, to=signed.address, text=signed.text,
        campaign=signed.campaign, source=signed.source, mode=signed.mode,  # type: ignore[arg-type]
        expires_at=timestamp(signed.expires_at), chat_url=service.destination_url(signed) or "",
    )  # fmt: skip


def business_out(business: Business) -> BusinessOut:
    return BusinessOut(**business.__dict__)


def agent_out(agent: Agent) -> AgentOut:
    channels = [AgentChannelOut(channel=name, label=CHANNELS[name].label if name in CHANNELS else name,
                                address=address) for name, address in agent.channels]  # fmt: skip
    return AgentOut(**(agent.__dict__ | {"channels": channels}), available_now=is_available(agent, datetime.now(UTC)))


def widget_out(service: Service, widget: Widget, clicks: int | None = None) -> WidgetOut:
    return WidgetOut(
        id=widget.id, business_id=widget.business_id, snippet=service.widget_snippet(widget.id),
        **widget.settings.to_json(), clicks=clicks, created_at=timestamp(widget.created_at),
        updated_at=timestamp(widget.updated_at),
    )  # fmt: skip


# -- links ----------------------------------------------------------------------------


@endpoint
async def create_link(request: Request, service: Service) -> Response:
    body = await read_body(request, LinkCreate)
    if body.expires_at is not None and body.expires_in is not None:
        raise InvalidInput("expires_in", "give expires_at or expires_in, not both")
    if body.expires_at is not None:
        expires = epoch(body.expires_at)
    else:
        expires = int(time.time()) + body.expires_in if body.expires_in is not None else None
    fields = body.model_dump(exclude={"expires_at", "expires_in"})
    if "channel" not in body.model_fields_set:  # a link to an agent or business then routes on their first
        fields["channel"] = None
    created = await service.create_link(**fields, expires_at=expires)
    link = created.short or created.signed
    assert link is not None
    notes = await service.link_notes(link)
    if created.short is not None:
        return out(link_out(service, created.short, clicks=0).model_copy(update={"notes": notes}), 201)
    return out(signed_out(service, created).model_copy(update={"notes": notes}), 201)


@endpoint
async def list_links(request: Request, service: Service) -> Response:
    limit = query_int(request, "limit", 100, 1, 1000)
    offset = query_int(request, "offset", 0, 0, 10**9)
    links = await service.store.links(limit, offset)
    clicks = await service.store.click_counts("short", [link.slug for link in links])
    return out(LinkList(links=[link_out(service, link, clicks[link.slug]) for link in links]))


@endpoint
async def get_link(request: Request, service: Service) -> Response:
    link = await service.get_link(request.path_params["slug"])
    return out(link_out(service, link, clicks=await service.link_clicks(link.slug)))


@endpoint
async def update_link(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, LinkUpdate))
    if "expires_at" in changes:
        changes["expires_at"] = epoch(changes["expires_at"])
    link = await service.update_link(request.path_params["slug"], changes)
    notes = await service.link_notes(link)
    return out(link_out(service, link, clicks=await service.link_clicks(link.slug)).model_copy(update={"notes": notes}))


@endpoint
async def disable_link(request: Request, service: Service) -> Response:
    """Short links are never deleted: a printed slug must not lead somewhere new by accident."""
    link = await service.update_link(request.path_params["slug"], {"disabled": True})
    return out(link_out(service, link, clicks=await service.link_clicks(link.slug)))


# -- businesses and agents ------------------------------------------------------------


@endpoint
async def list_businesses(request: Request, service: Service) -> Response:
    businesses = await service.store.businesses()
    return out(BusinessList(businesses=[business_out(b) for b in businesses]))


@endpoint
async def create_business(request: Request, service: Service) -> Response:
    body = await read_body(request, BusinessCreate)
    return out(business_out(await service.add_business(body.name, body.timezone, body.colour)), 201)


@endpoint
async def get_business(request: Request, service: Service) -> Response:
    return out(business_out(await service.get_business(request.path_params["business_id"])))


@endpoint
async def update_business(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, BusinessUpdate))
    return out(business_out(await service.update_business(request.path_params["business_id"], changes)))


@endpoint
async def delete_business(request: Request, service: Service) -> Response:
    await service.delete_business(request.path_params["business_id"])
    return Response(status_code=204)


@endpoint
async def put_logo(request: Request, service: Service) -> Response:
    """The business's logo (PNG, JPEG or WebP, at most 512 KiB), for QR codes and posters."""
    body = await read_bytes(request, LOGO_TYPES, MAX_UPLOAD_BYTES, "the logo as an image")
    await service.set_logo(request.path_params["business_id"], body)
    return Response(status_code=204)


@endpoint
async def delete_logo(request: Request, service: Service) -> Response:
    await service.set_logo(request.path_params["business_id"], None)
    return Response(status_code=204)


@endpoint
async def list_agents(request: Request, service: Service) -> Response:
    business = await service.get_business(request.path_params["business_id"])
    return out(AgentList(agents=[agent_out(a) for a in await service.store.agents(business.id)]))


@endpoint
async def create_agent(request: Request, service: Service) -> Response:
    body = await read_body(request, AgentCreate)
    business = await service.get_business(request.path_params["business_id"])
    if body.channels is not None and "channel" in body.model_fields_set:
        raise InvalidInput("channel", "give channels, or channel and address, not both")
    channels = None if body.channels is None else [c.model_dump() for c in body.channels]
    agent = await service.add_agent(business.id, body.name, body.address, body.channel, body.hours, body.timezone,
                                    channels)  # fmt: skip
    return out(agent_out(agent), 201)


@endpoint
async def get_agent(request: Request, service: Service) -> Response:
    return out(agent_out(await service.get_agent(request.path_params["agent_id"])))


@endpoint
async def update_agent(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, AgentUpdate))
    if "channels" in changes:
        changes["channels"] = [c.model_dump() for c in changes["channels"]]
    return out(agent_out(await service.update_agent(request.path_params["agent_id"], changes)))


@endpoint
async def delete_agent(request: Request, service: Service) -> Response:
    await service.delete_agent(request.path_params["agent_id"])
    return Response(status_code=204)


# -- widgets --------------------------------------------------------------------------


@endpoint
async def list_widgets(request: Request, service: Service) -> Response:
    widgets = await service.store.widgets()
    counts = await service.store.click_counts("widget", [w.id for w in widgets])
    return out(WidgetList(widgets=[widget_out(service, w, counts[w.id]) for w in widgets]))


@endpoint
async def create_widget(request: Request, service: Service) -> Response:
    body = await read_body(request, WidgetCreate)
    settings = {k: v for k, v in changes_of(body).items() if v is not None and k not in ("business_id", "id")}
    widget = await service.create_widget(body.business_id, body.id, settings)
    return out(widget_out(service, widget, 0), 201)


@endpoint
async def get_widget(request: Request, service: Service) -> Response:
    widget = await service.get_widget(request.path_params["widget_id"])
    return out(widget_out(service, widget, await service.store.click_count("widget", widget.id)))


@endpoint
async def update_widget(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, WidgetUpdate))
    widget = await service.update_widget(request.path_params["widget_id"], changes)
    return out(widget_out(service, widget, await service.store.click_count("widget", widget.id)))


@endpoint
async def delete_widget(request: Request, service: Service) -> Response:
    await service.delete_widget(request.path_params["widget_id"])
    return Response(status_code=204)


@endpoint
async def get_stats(request: Request, service: Service) -> Response:
    query = parse_query(request.query_params)
    stats = await compute(service.store, query)
    accept = request.headers.get("accept", "")
    if request.url.path.endswith(".csv") or ("text/csv" in accept and "application/json" not in accept):
        filename = f"clicktochat-{query.by}-{stats.first_day}-{stats.last_day}.csv"
        return Response(stats.as_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip
    return JSONResponse(StatsOut.model_validate(stats.as_dict()).model_dump(mode="json", by_alias=True))


async def openapi_document(request: Request) -> Response:
    from .openapi import openapi

    return JSONResponse(openapi(request.app.state.service.base_url))


def resource(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path, dispatching on the method, so a 405 lists every allowed method."""

    async def dispatch(request: Request) -> Response:
        handler = handlers.get(request.method) or handlers["GET"]  # HEAD is answered as GET
        return await handler(request)

    return Route(path, dispatch, methods=list(handlers))


routes = [
    Route("/openapi.json", openapi_document, methods=["GET"]),
    resource("/links", GET=list_links, POST=create_link),
    resource("/links/{slug}", GET=get_link, PATCH=update_link, DELETE=disable_link),
    resource("/businesses", GET=list_businesses, POST=create_business),
    resource("/businesses/{business_id:int}", GET=get_business, PATCH=update_business, DELETE=delete_business),
    resource("/businesses/{business_id:int}/agents", GET=list_agents, POST=create_agent),
    resource("/businesses/{business_id:int}/logo", PUT=put_logo, DELETE=delete_logo),
    resource("/agents/{agent_id:int}", GET=get_agent, PATCH=update_agent, DELETE=delete_agent),
    resource("/widgets", GET=list_widgets, POST=create_widget),
    resource("/widgets/{widget_id}", GET=get_widget, PATCH=update_widget, DELETE=delete_widget),
    resource("/stats", GET=get_stats),
    resource("/stats.csv", GET=get_stats),
]
