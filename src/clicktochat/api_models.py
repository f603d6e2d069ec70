"""The REST API's request and response bodies, as pydantic models: validation errors name their
fields, and `openapi` generates the document from these same classes (with the constraints the
server enforces declared in them, so the schema is as strict as the server)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from .agents import TIMEZONES
from .channels import CHANNELS, MAX_TEXT_LENGTH
from .links import MAX_LABEL_LENGTH, SLUG_PATTERN
from .notifications import IDEMPOTENCY_KEY
from .service import MAX_EXPIRY_SECONDS
from .service_agents import MAX_NAME_LENGTH
from .widget import (
    DOMAIN_PATTERN,
    MAX_GREETING_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    WIDGET_ID_PATTERN,
)
from .widget import (
    MAX_LABEL_LENGTH as MAX_WIDGET_LABEL_LENGTH,
)

Mode = Literal["auto", "redirect", "landing"]


def whole(value: Any) -> Any:
    """3.0 as 3: JSON Schema's `integer` takes a number with no fraction, so the server does too."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An `int` field of a request body. Bounds go inside, before the validator (as `Annotated[int,
# Field(gt=0), BeforeValidator(whole)]`), or the document shows them as pydantic's own words.
Whole = Annotated[int, BeforeValidator(whole)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def schema(**constraints: Any) -> Any:
    """Constraints for the OpenAPI document only: the server checks the same things itself (in
    `Service`, with its own words in the errors), and the document says so, so that clients and
    schema-driven fuzzers send only what is accepted. A PATCH field's default ("" or "UTC")
    means nothing (only the fields sent change) and is left out of the document."""

    def add(field_schema: dict[str, Any]) -> None:
        field_schema.update(constraints)
        if field_schema.get("default") in ("", []) or (field_schema.get("default", 0) is None
                                                      and "anyOf" not in field_schema):  # a field that takes no null
            del field_schema["default"]

    return add


# something that shows; no control character, no text direction mark (names.check_name)
NAME_PATTERN = r"^(?=[\s\S]*\S)[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
NAME = schema(minLength=1, maxLength=MAX_NAME_LENGTH, pattern=NAME_PATTERN)
TITLE = schema(minLength=1, maxLength=MAX_LABEL_LENGTH, pattern=NAME_PATTERN)  # links.check_title
# tabs and line ends allowed; no other control character, no text direction mark
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
TEXT = schema(maxLength=MAX_TEXT_LENGTH, pattern=TEXT_PATTERN)
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


def ID_LIST(field_schema: dict[str, Any]) -> None:  # noqa: N802 (a schema constant, as ID is)
    """A list of ids (at least one), or null: each id as ID says."""
    field_schema["anyOf"][0]["items"].update(minimum=1, maximum=2**63 - 1)
    field_schema["anyOf"][0]["minItems"] = 1
TIMEZONE = schema(enum=TIMEZONES)  # places only: not `localtime` (agents.SERVER_ZONES)
TIMEZONE_OR_NULL = schema(enum=[*TIMEZONES, None])
COLOUR_HELP = "The business's colour on its posters, #rrggbb (darkened there until it reads on white); null: ours."
COLOUR_SCHEMA = schema(pattern=r"^(#?[0-9a-fA-F]{6})?$")
# A new link leads to exactly one of: a number, an agent, a business.
ONE_DESTINATION: list[Any] = [
    {"required": [field], "properties": {field: {"not": {"type": "null"}}} | {
        other: {"type": "null"} for other in ("to", "agent_id", "business_id") if other != field}}
    for field in ("to", "agent_id", "business_id")
]  # fmt: skip

IDEMPOTENCY_PATTERN = f"^{IDEMPOTENCY_KEY.pattern}$"


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
    agent_id: Whole | None = Field(None, description="Lead to this agent (short links: editable later).",
                                 json_schema_extra=ID)  # fmt: skip
    business_id: Whole | None = Field(None, description="Lead to whoever of this business is available.",
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
    expires_in: Annotated[int, Field(gt=0, le=MAX_EXPIRY_SECONDS), BeforeValidator(whole)] | None = Field(
        None, description="Seconds from now until the link stops working."
    )
    title: str | None = Field(None, description="Name shown on a signed link's landing page.", json_schema_extra=TITLE)
    ref_code: bool | None = Field(
        None, description="Short links to WhatsApp: add a ref code to the message, so the conversation that follows "
        "is tied to the click. null: when the number is connected to the Cloud API.",
    )  # fmt: skip
    idempotency_key: str | None = Field(
        None, description="Send the same request again with the same key (also the Idempotency-Key header) and the "
        "short link it made is returned (200), not made twice. Signed links are not stored: the same content signs "
        "the same link.", json_schema_extra={"pattern": IDEMPOTENCY_PATTERN},
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
    agent_id: Whole | None = Field(None, json_schema_extra=ID)
    business_id: Whole | None = Field(None, json_schema_extra=ID)
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
    fallback_agent_id: Whole | None = Field(None, description="Who gets chats when nobody is available (0: none).",
                                          json_schema_extra={"minimum": 0, "maximum": 2**63 - 1})  # fmt: skip
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


GIVES_ADDRESS: Any = {"required": ["address"], "properties": {"address": {"type": "string"}}}  # not null
GIVES_CHANNELS: Any = {"required": ["channels"], "properties": {"channels": {"type": "array"}}}


class AgentCreate(Body):
    model_config = ConfigDict(json_schema_extra={"oneOf": [  # one channel (address), or several (channels)
        {"allOf": [GIVES_ADDRESS], "not": GIVES_CHANNELS},
        {"allOf": [GIVES_CHANNELS], "not": {"anyOf": [GIVES_ADDRESS, {"required": ["channel"]}]}},
    ]})  # fmt: skip

    name: str = Field(json_schema_extra=NAME)
    address: str | None = Field(None, description=ADDRESS_HELP, json_schema_extra=ADDRESS)
    channel: str = Field("whatsapp", json_schema_extra=CHANNEL)
    channels: list[AgentChannel] | None = Field(None, description=CHANNELS_HELP,
                                                json_schema_extra=schema(minItems=1, maxItems=len(CHANNELS)))
    hours: Hours = Field(None, description=HOURS_HELP + " Null: always available.")
    timezone: str | None = Field(None, description="Defaults to the business's.", json_schema_extra=TIMEZONE_OR_NULL)


class AgentUpdate(Body):
    model_config = ConfigDict(json_schema_extra={"not": {"required": ["channels", "address"]},
                                                 "dependentRequired": {"channel": ["address"]}})  # fmt: skip

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
    offset_x: Whole | None = Field(None, description="Pixels from the side, 0-200.",
                                   json_schema_extra=widget_number(200))  # fmt: skip
    offset_y: Whole | None = Field(None, description="Pixels from the bottom, 0-200.",
                                 json_schema_extra=widget_number(200))  # fmt: skip
    locale: Literal["en", "it", "es", "pt", "de", "fr", "ar"] | None = Field(
        None, description="Force a language; default: the page's lang, then the browser's."
    )
    agent_ids: list[int] | None = Field(None, description="Agents the panel lists, in order; default: all.",
                                       json_schema_extra=ID_LIST)  # fmt: skip
    show_on: list[str] | None = Field(None, description="Show only on these paths ('*' matches anything).",
                                      json_schema_extra=PATHS)  # fmt: skip
    hide_on: list[str] | None = Field(None, description="Never show on these paths.", json_schema_extra=PATHS)
    delay: Whole | None = Field(None, description="Seconds before the button appears, 0-600.",
                              json_schema_extra=widget_number(600))  # fmt: skip
    scroll: Whole | None = Field(None, description="Percent of the page scrolled before it appears, 0-100.",
                               json_schema_extra=widget_number(100))  # fmt: skip
    hide_offline: bool | None = Field(None, description="No button while nobody is available.")
    bubble: bool | None = Field(None, description="Pop the greeting up once per visit.")
    bubble_delay: Whole | None = Field(None, description="Seconds before the greeting pops up, 0-600.",
                                     json_schema_extra=widget_number(600))  # fmt: skip
    qr: bool | None = Field(None, description="Offer desktop visitors a QR code to continue on their phone.")
    allowed_domains: list[str] | None = Field(
        None, description="Sites that may show the widget (example.com, *.example.com); default: any. A wildcard "
        "over a public suffix (*.com, *.co.uk, *.github.io: the Public Suffix List) is refused.",
            json_schema_extra=DOMAINS
    )
    optin_form: str | None = Field(
        None, description="The name of an opt-in form of the widget's business (else 422): the panel offers "
        "updates on WhatsApp with it (its script is loaded only then). \"\" or null: none.",
        json_schema_extra=schema(pattern=r"^(?:[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?)?$"),
    )


class WidgetCreate(WidgetFields):
    business_id: Whole = Field(json_schema_extra=ID)
    id: str | None = Field(None, description="The public id in the embed snippet; random when left out.",
                           json_schema_extra=schema(pattern=f"^{WIDGET_ID_PATTERN.pattern}$"))  # fmt: skip


class WidgetUpdate(WidgetFields):
    business_id: Whole = Field(None, json_schema_extra=ID)  # type: ignore[assignment]  # no null: it has no default


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


class TotalsOut(CountsOut):
    conversations_from_clicks: int = Field(0, description="Of `conversations`, those opened from a click: by link, "
                                           "campaign, agent, channel or widget, the rows add up to these; the rest "
                                           "(an ad's, a chat begun by the customer) are in no row")  # fmt: skip


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
    totals: TotalsOut
    rows: list[StatsRowOut]
    truncated: bool = Field(description="More groups than `limit` (at most 1,000): the rows are the largest, the "
                                        "totals count them all; narrow the range or the filters for the rest")


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
