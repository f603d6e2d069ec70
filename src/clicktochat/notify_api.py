"""REST API v1 for updates: a number's message templates and notifications. Same rules as
`api.py` (bearer API keys, pydantic bodies, problem+json naming the field)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import Response

from .api import business_filter, endpoint, idempotency_key, out, query_int, read_body, resource
from .api_models import Body, whole
from .channels import normalize_phone
from .errors import InvalidInput
from .message_templates import MAX_PARAMETER_LENGTH, Template
from .notifications import IDEMPOTENCY_KEY, month_bounds
from .notifystore import Notification
from .optins import TEMPLATE_LANGUAGE, TEMPLATE_NAME, TOPIC, check_topic
from .pricing import estimate, load_table
from .service import Service, timestamp

STATES = ("queued", "sending", "sent", "delivered", "read", "failed", "cancelled")


def pattern(regex: Any) -> dict[str, Any]:
    return {"pattern": f"^{regex.pattern}$"}


class NotificationCreate(Body):
    to: str = Field(description="The customer's number with its country code, e.g. +39 347 123 4567",
                    json_schema_extra={"minLength": 3, "maxLength": 40})  # fmt: skip
    topic: str = Field(description="What the customer opted in to, e.g. orders", json_schema_extra=pattern(TOPIC))
    template: str = Field(description="An APPROVED template of the number", json_schema_extra=pattern(TEMPLATE_NAME))
    language: str | None = Field(None, description="The template's language code, e.g. en_US or it (left out: the "
                                 "template's only language)", json_schema_extra=pattern(TEMPLATE_LANGUAGE))  # fmt: skip
    parameters: list[str] = Field(
        default_factory=list, description="The body's {{1}}, {{2}}... in order (or its named ones)",
        json_schema_extra={"maxItems": 100, "items": {"type": "string", "minLength": 1,
                                                      "maxLength": MAX_PARAMETER_LENGTH}},
    )  # fmt: skip
    idempotency_key: str | None = Field(
        None, description="Send the same key again and the first notification is returned, never sent twice "
        "(also the Idempotency-Key header)", json_schema_extra=pattern(IDEMPOTENCY_KEY),
    )  # fmt: skip
    business: Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(whole)] | None = Field(
        None, description="The business that sends (required when several have connected numbers)",
    )  # fmt: skip


class NotificationOut(BaseModel):
    id: int
    business_id: int
    number_id: int
    to: str = Field(description="E.164 digits")
    topic: str
    template: str
    language: str
    category: str = Field(description="MARKETING, UTILITY or AUTHENTICATION: what Meta charges for")
    parameters: list[str]
    idempotency_key: str
    source: str
    created_at: str | None
    state: str = Field(description="queued, sending, sent, delivered, read, failed or cancelled")
    wamid: str | None
    sent_at: str | None
    status_at: str | None = Field(description="When Meta last reported on the message")
    attempts: int
    error_code: int | None = Field(description="Meta's error code when it failed")
    error: str | None = Field(description="Why it failed, was cancelled, or is being retried, in words")
    pricing: dict[str, Any] | None = Field(description="Meta's pricing object of its latest status")


class NotificationList(BaseModel):
    notifications: list[NotificationOut]


class TemplateOut(BaseModel):
    name: str
    language: str
    status: str
    category: str
    parameters: list[str] = Field(description="The body's placeholders, in order")
    body: str | None
    synced_at: str | None


class TemplateList(BaseModel):
    templates: list[TemplateOut]


class TemplateSyncOut(BaseModel):
    synced: dict[str, int] = Field(description="Number id: templates Meta listed")


def notification_out(n: Notification) -> NotificationOut:
    return NotificationOut(
        id=n.id, business_id=n.business_id, number_id=n.number_id, to=n.phone, topic=n.topic, template=n.template,
        language=n.language, category=n.category, parameters=n.parameters, idempotency_key=n.idempotency_key,
        source=n.source, created_at=timestamp(n.created_at), state=n.state, wamid=n.wamid,
        sent_at=timestamp(n.sent_at), status_at=timestamp(n.status_at), attempts=n.attempts,
        error_code=n.error_code, error=n.error, pricing=n.pricing,
    )  # fmt: skip


def template_out(t: Template, synced_at: int) -> TemplateOut:
    return TemplateOut(name=t.name, language=t.language, status=t.status, category=t.category,
                       parameters=list(t.parameter_names), body=t.body, synced_at=timestamp(synced_at))  # fmt: skip


@endpoint
async def create_notification(request: Request, service: Service) -> Response:
    body = await read_body(request, NotificationCreate)
    made, created = await service.whatsapp.notifications.queue(
        to=body.to, topic=body.topic, template=body.template, language=body.language, parameters=body.parameters,
        idempotency_key=idempotency_key(request, body.idempotency_key), business_id=body.business,
    )  # fmt: skip
    return out(notification_out(made), 202 if created else 200)


@endpoint
async def list_notifications(request: Request, service: Service) -> Response:
    params = request.query_params
    business = await business_filter(request, service)
    state = params.get("state")
    if state is not None and state not in STATES:
        raise InvalidInput("state", f"must be one of {', '.join(STATES)}")
    topic = check_topic(params["topic"]) if "topic" in params else None
    phone = None
    if "to" in params:
        phone = normalize_phone(params["to"], service.settings.default_region, "to")
    found = await service.whatsapp.chats.notifications(
        business, phone, topic, state, query_int(request, "limit", 50, 1, 500),
        query_int(request, "offset", 0, 0, 10**9),
    )  # fmt: skip
    return out(NotificationList(notifications=[notification_out(n) for n in found]))


@endpoint
async def get_notification(request: Request, service: Service) -> Response:
    return out(notification_out(await service.whatsapp.notifications.get(request.path_params["notification_id"])))


@endpoint
async def list_templates(request: Request, service: Service) -> Response:
    found = await service.whatsapp.notifications.templates(request.path_params["number_id"])
    return out(TemplateList(templates=[template_out(t, at) for t, at in found]))


@endpoint
async def sync_templates(request: Request, service: Service) -> Response:
    counts = await service.whatsapp.notifications.sync_templates(request.path_params["number_id"])
    return out(TemplateSyncOut(synced={str(k): v for k, v in counts.items()}))


class CostLine(BaseModel):
    business_id: int
    category: str | None = Field(default=None, description="marketing, utility, authentication or service")
    topic: str | None = None
    messages: int
    charged: int = Field(description="Messages that are not free (free tier, free entry point, Meta's billable)")
    cost: float


class CostsOut(BaseModel):
    month: str
    currency: str
    total: float
    by_category: list[CostLine]
    by_topic: list[CostLine]
    price_table: str = Field(description="The file the prices came from")


async def month_costs(service: Service, month: str | None, business: int | None) -> CostsOut:
    month, start, end = month_bounds(month, int(service.whatsapp.clock()))
    table = load_table(service.settings.price_table)
    found = estimate(await service.whatsapp.chats.sent_between(start, end, business), table)
    return CostsOut(
        month=month, currency=found.currency, total=found.total, price_table=table.source,
        by_category=[CostLine(business_id=b, category=c, messages=line.messages, charged=line.charged, cost=line.cost)
                     for (b, c), line in sorted(found.by_category.items())],
        by_topic=[CostLine(business_id=b, topic=t, messages=line.messages, charged=line.charged, cost=line.cost)
                  for (b, t), line in sorted(found.by_topic.items())],
    )  # fmt: skip


@endpoint
async def costs(request: Request, service: Service) -> Response:
    return out(await month_costs(service, request.query_params.get("month"), await business_filter(request, service)))


routes = [
    resource("/costs", GET=costs),
    resource("/notifications", GET=list_notifications, POST=create_notification),
    resource("/notifications/{notification_id:int}", GET=get_notification),
    resource("/whatsapp-numbers/{number_id:int}/templates", GET=list_templates, POST=sync_templates),
]
