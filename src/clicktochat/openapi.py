"""The OpenAPI 3.1 document of `/api/v1`, built from the pydantic models the handlers use;
a test checks it against the routes and validates real responses with its schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from . import __version__
from .api_models import (
    AgentChannel,
    AgentChannelOut,
    AgentCreate,
    AgentList,
    AgentOut,
    AgentUpdate,
    BusinessCreate,
    BusinessList,
    BusinessOut,
    BusinessUpdate,
    LinkCreate,
    LinkList,
    LinkOut,
    LinkUpdate,
    SignedLinkOut,
    StatsOut,
    WidgetCreate,
    WidgetList,
    WidgetOut,
    WidgetUpdate,
)  # fmt: skip
from .channels import CHANNELS
from .chat_api import (
    ConversationDetail,
    ConversationList,
    CustomerErased,
    NumberConnect,
    NumberList,
    NumberOut,
    ReplyCreate,
    ReplyOut,
)
from .links import SLUG_PATTERN
from .notifications import MONTH
from .notify_api import (
    STATES,
    CostsOut,
    NotificationCreate,
    NotificationList,
    NotificationOut,
    TemplateList,
    TemplateSyncOut,
)
from .optin_api import ConsentOut as OptinConsentOut
from .optin_api import OptinCreate, OptinHistory
from .optins import TOPIC
from .stats import GROUPS, MAX_LIMIT
from .widget import WIDGET_ID_PATTERN

PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}

TEXT_IDS = ("slug", "widget_id", "phone")

# (method, path, summary, request body, {status: response model or None})
OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, dict[int, Any]]] = [
    ("get", "/links", "List short links, newest first (?limit, ?offset, ?business)", None, {200: LinkList}),
    ("post", "/links", "Create a short link, or a signed link with short=false", LinkCreate,
     {201: [LinkOut, SignedLinkOut], 200: LinkOut, 409: None}),
    ("get", "/links/{slug}", "A short link with its click count", None, {200: LinkOut, 404: None}),
    ("patch", "/links/{slug}", "Change a short link (destination, text, mode, state...)", LinkUpdate,
     {200: LinkOut, 404: None}),
    ("delete", "/links/{slug}", "Disable a short link (slugs are never reused)", None, {200: LinkOut, 404: None}),
    ("get", "/businesses", "List businesses, oldest first (?limit, ?offset)", None, {200: BusinessList}),
    ("post", "/businesses", "Create a business", BusinessCreate, {201: BusinessOut}),
    ("get", "/businesses/{business_id}", "A business", None, {200: BusinessOut, 404: None}),
    ("patch", "/businesses/{business_id}", "Change a business", BusinessUpdate, {200: BusinessOut, 404: None}),
    ("delete", "/businesses/{business_id}", "Delete a business and its agents", None,
     {204: None, 404: None, 409: None}),
    ("get", "/businesses/{business_id}/agents", "A business's agents", None, {200: AgentList, 404: None}),
    ("put", "/businesses/{business_id}/logo", "Set the business's logo (PNG, JPEG or WebP body, at most 512 KiB)",
     None, {204: None, 404: None}),
    ("delete", "/businesses/{business_id}/logo", "Remove the business's logo", None, {204: None, 404: None}),
    ("post", "/businesses/{business_id}/agents", "Add an agent", AgentCreate, {201: AgentOut, 404: None}),
    ("get", "/agents/{agent_id}", "An agent, with availability now", None, {200: AgentOut, 404: None}),
    ("patch", "/agents/{agent_id}", "Change an agent (409: its channels kept changing meanwhile; send it again)",
     AgentUpdate, {200: AgentOut, 404: None, 409: None}),
    ("delete", "/agents/{agent_id}", "Delete an agent", None, {204: None, 404: None, 409: None}),
    ("get", "/widgets", "List widgets with their click counts, oldest first (?limit, ?offset, ?business)", None,
     {200: WidgetList}),
    ("post", "/widgets", "Create a widget; the answer has the snippet to paste", WidgetCreate, {201: WidgetOut}),
    ("get", "/widgets/{widget_id}", "A widget", None, {200: WidgetOut, 404: None}),
    ("patch", "/widgets/{widget_id}", "Change a widget (null: back to the default; 409: it kept changing meanwhile)",
     WidgetUpdate, {200: WidgetOut, 404: None, 409: None}),
    ("delete", "/widgets/{widget_id}", "Delete a widget: sites that embed it show nothing", None,
     {204: None, 404: None}),
    ("get", "/stats", "Clicks, uniques and robots over days, grouped (CSV with Accept: text/csv)", None,
     {200: StatsOut}),
    ("get", "/stats.csv", "The same stats as CSV", None, {200: "text/csv"}),
    ("get", "/whatsapp-numbers", "Connected WhatsApp Business numbers (never their secrets)", None,
     {200: NumberList}),
    ("post", "/whatsapp-numbers", "Connect a number: checked with the Graph API; secrets are never shown again "
     "(200: connected already, its secrets replaced; 409: connected to another business)",
     NumberConnect, {201: NumberOut, 200: NumberOut, 404: None, 409: None, 503: None}),
    ("get", "/whatsapp-numbers/{number_id}", "A connected number", None, {200: NumberOut, 404: None}),
    ("delete", "/whatsapp-numbers/{number_id}", "Disconnect a number: secrets wiped, conversations kept", None,
     {204: None, 404: None}),
    ("get", "/conversations", "Conversations, open ones first (?business, ?agent, ?open, ?limit, ?offset)", None,
     {200: ConversationList}),
    ("get", "/conversations/{conversation_id}", "A conversation: its window, where it came from, its messages",
     None, {200: ConversationDetail, 404: None}),
    ("post", "/conversations/{conversation_id}/messages",
     "Reply with text through the Cloud API (queued; 409 when the window is closed or the customer opted out)",
     ReplyCreate, {202: ReplyOut, 200: ReplyOut, 404: None, 409: None}),
    ("get", "/costs", "The month's estimated WhatsApp costs per business, category and topic (?month=YYYY-MM,"
     " ?business)", None, {200: CostsOut}),
    ("get", "/customers/{phone}", "Everything held about a phone number (consents, conversations, messages,"
     " notifications), as JSON", None, {200: "application/json"}),
    ("delete", "/customers/{phone}", "Erase everything about a phone number; an opt-out marker stays so it is never"
     " messaged again", None, {200: CustomerErased}),
    ("get", "/whatsapp-numbers/{number_id}/templates", "The number's message templates, as last synced from Meta",
     None, {200: TemplateList, 404: None}),
    ("post", "/whatsapp-numbers/{number_id}/templates", "Sync the number's message templates from Meta now",
     None, {200: TemplateSyncOut, 404: None, 503: None}),
    ("post", "/notifications",
     "Queue an update (an approved template) to someone who opted in to its topic; 409 without consent",
     NotificationCreate, {202: NotificationOut, 200: NotificationOut, 404: None, 409: None}),
    ("get", "/notifications", "Notifications, newest first (?business, ?to, ?topic, ?state, ?limit, ?offset)", None,
     {200: NotificationList}),
    ("get", "/notifications/{notification_id}", "A notification: queued, sent, delivered, read, failed...", None,
     {200: NotificationOut, 404: None}),
    # -- opt-ins (issue 10: consent records) --
    ("get", "/optins", "A number's consent history, each topic's state now and its double opt-in requests "
     "(?phone, ?business)", None, {200: OptinHistory, 404: None}),
    ("post", "/optins", "Record a consent your checkout or till asked for: the exact words and their version",
     OptinCreate, {201: OptinConsentOut, 404: None}),
    ("delete", "/optins/{phone}", "Record an opt-out (?topic; none: every topic): a new entry, history is kept",
     None, {200: OptinConsentOut, 404: None}),
]  # fmt: skip

NOTIFICATION_PARAMETERS = [
    ("business", "Only this business's notifications", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
    ("to", "Only to this number (with its country code)", {"type": "string", "minLength": 3, "maxLength": 40}),
    ("topic", "Only this topic", {"type": "string", "pattern": f"^{TOPIC.pattern}$"}),
    ("state", "Only in this state", {"type": "string", "enum": list(STATES)}),
    ("limit", "At most this many (1-500, default 50)", {"type": "integer", "minimum": 1, "maximum": 500}),
    ("offset", "Skip this many", {"type": "integer", "minimum": 0, "maximum": 10**9}),
]

OPTIN_PARAMETERS: dict[str, list[tuple[str, str, bool, dict[str, Any]]]] = {  # /optins' query
    "get": [("phone", "The customer's number with its country code", True, {"type": "string", "minLength": 3,
             "maxLength": 40, "pattern": r"^\+?[0-9][0-9 ().\-/]*$"}),
            ("business", "Only this business's entries", False, {"type": "integer", "minimum": 1,
                                                                  "maximum": 2**63 - 1})],
    "delete": [("topic", "The topic they opt out of; left out: every topic", False,
                {"type": "string", "pattern": r"^(\*|[a-z0-9](?:[a-z0-9_-]{0,38}[a-z0-9])?)$"}),
               ("business", "The business; may be left out when there is only one", False,
                {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
               ("source", "Where they said so (default api)", False,
                {"type": "string", "enum": ["widget", "page", "qr", "api", "chat", "cli", "dashboard"]})],
}  # fmt: skip

CONVERSATION_PARAMETERS = [
    ("business", "Only this business's conversations", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
    ("agent", "Only chats opened through this agent's links", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}),
    ("open", "true: only those whose window is open; false (the default): every conversation, open or not",
     {"type": "string", "enum": ["true", "false"]}),
    ("limit", "At most this many (1-500, default 50)", {"type": "integer", "minimum": 1, "maximum": 500}),
    ("offset", "Skip this many", {"type": "integer", "minimum": 0, "maximum": 10**9}),
]

DAY = {"type": "string", "format": "date", "pattern": r"^(20[0-9]{2}|21[0-9]{2})-[0-9]{2}-[0-9]{2}$"}
STATS_PARAMETERS = [
    ("from", "First day, YYYY-MM-DD, in the business's time zone (default: 30 days ending `to`)", DAY),
    ("to", "Last day, included (default: today)", DAY),
    ("by", "day, week, month, link, campaign, agent, channel, widget, or a dimension: "
           "source, referrer, device, os, browser, utm_*, page, ad_click, robot",
     {"type": "string", "enum": list(GROUPS)}),
    ("business", "Only this business's clicks; days are in its time zone",
     {"type": "integer", "minimum": 1, "maximum": 2**62}),
    ("link", "Only this short link (slug)", {"type": "string", "pattern": f"^{SLUG_PATTERN.pattern}$"}),
    ("campaign", "Only this campaign", {"type": "string", "maxLength": 200}),
    ("agent", "Only clicks that reached this agent (id)", {"type": "integer", "minimum": 1, "maximum": 2**62}),
    ("widget", "Only clicks on this widget (id); not with link, nor by=widget with link",
     {"type": "string", "pattern": f"^{WIDGET_ID_PATTERN.pattern}$"}),
    ("channel", "Only this messenger", {"type": "string", "enum": list(CHANNELS)}),
    ("limit", "Rows at most when not grouping by time (1-1000, default 100)",
     {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
]  # fmt: skip
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}

PAGE_PARAMETERS = [  # /businesses and /widgets: in the order they were made
    ("limit", "At most this many (1-1000, default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ("offset", "Skip this many, oldest first (default 0)", {"type": "integer", "minimum": 0, "maximum": 10**9}),
]
LINKS_PARAMETERS = [
    ("limit", "Links at most (1-1000, default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ("offset", "Skip this many, newest first (default 0)", {"type": "integer", "minimum": 0, "maximum": 10**9}),
    ("business", "Only the links to this business or to one of its agents (a link to a number has no business)",
     ID_SCHEMA),
]

MODELS: list[type[BaseModel]] = [
    LinkCreate, LinkUpdate, LinkOut, SignedLinkOut, LinkList, BusinessCreate, BusinessUpdate, BusinessOut,
    BusinessList, AgentCreate, AgentUpdate, AgentOut, AgentList, WidgetCreate, WidgetUpdate, WidgetOut, WidgetList,
    StatsOut, NumberConnect, NumberOut, NumberList, ConversationList, ConversationDetail, ReplyCreate, ReplyOut,
    NotificationCreate, NotificationOut, NotificationList, TemplateList, TemplateSyncOut, CustomerErased, CostsOut,
    OptinCreate, OptinConsentOut, OptinHistory, AgentChannel, AgentChannelOut,
]  # fmt: skip


# What answers with the thing's ETag (versions.tag), and what honours If-Match with it.
TAGGED = {("post", "/links"), ("get", "/links/{slug}"), ("patch", "/links/{slug}"), ("delete", "/links/{slug}"),
          ("post", "/businesses"), ("get", "/businesses/{business_id}"), ("patch", "/businesses/{business_id}"),
          ("delete", "/businesses/{business_id}"), ("post", "/businesses/{business_id}/agents"),
          ("get", "/agents/{agent_id}"), ("patch", "/agents/{agent_id}"), ("delete", "/agents/{agent_id}"),
          ("post", "/widgets"), ("get", "/widgets/{widget_id}"), ("patch", "/widgets/{widget_id}"),
          ("delete", "/widgets/{widget_id}")}  # fmt: skip
ETAG_HEADER = {"description": "The version of what is stored (a signed link has none); send it as If-Match to "
                              "change it only if nobody has since", "schema": {"type": "string"}}  # fmt: skip
IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "description": "Change it only if it is still this version (an ETag from a GET or an earlier change; "
                           "`*`: any); otherwise 412, nothing changed.", "schema": {"type": "string"}}  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


@cache
def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": PROBLEM}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _response(status: int, model: Any) -> dict[str, Any]:
    if status == 204:
        return {"description": "Done; no body."}
    if model is None:
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        description = {404: "Not found", 409: "Conflict", 503: "The Graph API could not be reached"}.get(status)
        return {"description": description or "Error", "content": problem}
    if model == "text/csv":
        return {"description": "OK", "content": {"text/csv": {"schema": {"type": "string"}}}}
    if model == "application/json":
        return {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    schema = {"oneOf": [_ref(m) for m in model]} if isinstance(model, list) else _ref(model)
    description = {200: "OK", 201: "Created", 202: "Accepted"}.get(status, "OK")
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi(base_url: str) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    common = {
        "400": {"description": "Malformed JSON", "content": problem},
        "401": {"description": "No API key, or a bad one", "content": problem},
        "422": {"description": "Invalid input; `errors` names each field and why", "content": problem},
    }
    paths: dict[str, Any] = {}
    for method, path, summary, body, responses in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {str(s): _response(s, m) for s, m in responses.items()} | common,
        }
        params = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True,
                 "schema": {"type": "string" if p in TEXT_IDS else "integer"}}
                for p in params
            ]
        if path.startswith("/stats"):
            operation["parameters"] = [
                {"name": name, "in": "query", "required": False, "description": description,
                 "schema": kind}
                for name, description, kind in STATS_PARAMETERS
            ]  # fmt: skip
        if path in ("/widgets", "/businesses") and method == "get":
            operation["parameters"] = [
                {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
                for name, description, schema in PAGE_PARAMETERS
            ]
        if path == "/widgets" and method == "get":
            operation["parameters"].append({"name": "business", "in": "query", "required": False, "description":
                                            "Only this business's widgets", "schema": ID_SCHEMA})  # fmt: skip
        if path == "/links" and method == "get":
            operation["parameters"] = [
                {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
                for name, description, schema in LINKS_PARAMETERS
            ]
        if path == "/costs":
            operation["parameters"] = [
                {"name": "month", "in": "query", "required": False, "description": "YYYY-MM (default: this month, UTC)",
                 "schema": {"type": "string", "pattern": f"^{MONTH.pattern}$"}},
                {"name": "business", "in": "query", "required": False, "description": "Only this business",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
            ]  # fmt: skip
        if path == "/notifications" and method == "get":
            operation["parameters"] = [
                {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
                for name, description, schema in NOTIFICATION_PARAMETERS
            ]
        if path == "/conversations":
            operation["parameters"] = [
                {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
                for name, description, schema in CONVERSATION_PARAMETERS
            ]
        if path.startswith("/optins") and method in OPTIN_PARAMETERS:
            operation.setdefault("parameters", []).extend(
                {"name": name, "in": "query", "required": required, "description": description, "schema": kind}
                for name, description, required, kind in OPTIN_PARAMETERS[method]
            )
        if body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
            operation["responses"]["413"] = {"description": "Body over 64 KiB", "content": problem}
            operation["responses"]["415"] = {"description": "Body is not JSON", "content": problem}
        if path.endswith("/logo") and method == "put":
            binary = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
            types = ("image/png", "image/jpeg", "image/webp")
            operation["requestBody"] = {"required": True, "content": {t: binary for t in types}}
            operation["responses"] |= {
                "413": {"description": "Logo over 512 KiB", "content": problem},
                "415": {"description": "Not PNG, JPEG or WebP", "content": problem},
            }
        if (method, path) in TAGGED:
            for status in ("200", "201"):
                if status in operation["responses"]:
                    operation["responses"][status]["headers"] = {"ETag": ETAG_HEADER}
        if method in ("patch", "delete") and (method, path) in TAGGED:
            operation.setdefault("parameters", []).append(IF_MATCH)
            operation["responses"]["412"] = {"description": "If-Match names another version: it was changed since "
                                                            "it was read", "content": problem}  # fmt: skip
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "clicktochat API", "version": __version__},
        "servers": [{"url": f"{base_url}/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "clicktochat apikey create NAME"}
            },
        },
    }
