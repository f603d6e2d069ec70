"""REST API v1 for `/optins`: a shop's checkout or till records the consent it asked for, reads
a number's history, and records an opt-out. Same rules as `api.py` (bearer API keys, pydantic
bodies, problem+json naming the field)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import Response

from .api import business_filter, endpoint, out, read_body, resource
from .api_models import Body, whole
from .consent import Consent
from .customers import USER_ID
from .errors import InvalidInput
from .optins import MAX_WORDING, SOURCES, TOPIC, VERSION, Optins, consent_mistakes
from .optinstore import OptinRequest
from .service import Service, timestamp

PHONE: dict[str, Any] = {"minLength": 3, "maxLength": 40, "pattern": r"^\+?[0-9][0-9 ().\-/]*$"}


class OptinCreate(Body):
    phone: str = Field(description="The customer's number with its country code, e.g. +39 347 123 4567.",
                       json_schema_extra=PHONE)  # fmt: skip
    topic: str = Field(description="What they asked for updates about, e.g. orders.",
                       json_schema_extra={"pattern": f"^{TOPIC.pattern}$"})  # fmt: skip
    source: Literal["widget", "page", "qr", "api", "chat", "cli", "dashboard"] = Field(
        "api", description="Where they gave it: your checkout or till is `api`."
    )
    consent_text: str = Field(
        description="The exact sentence the customer agreed to.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_WORDING, "pattern": r"\S"},
    )
    consent_version: str = Field(description="The version of that sentence, e.g. 2026-12.",
                                 json_schema_extra={"pattern": f"^{VERSION.pattern}$"})  # fmt: skip
    business_id: Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(whole)] | None = Field(
        None, description="The business it is given to; may be left out when there is only one.")  # fmt: skip
    page_url: str | None = Field(None, description="Where it was given (kept as proof).",
                                 json_schema_extra={"maxLength": 500})  # fmt: skip
    renewed: bool = Field(False, description="True: the person gave this consent again after opting out (a STOP, "
                                             "an erasure). Without it, an opt-in over an opt-out is refused (409).")


class ConsentOut(BaseModel):
    id: int
    business_id: int
    phone: str | None = Field(description="E.164 digits, as WhatsApp's wa_id")
    topic: str = Field(description="'*': every topic")
    state: Literal["in", "out"]
    at: str | None
    source: str
    consent_text: str | None = Field(description="The words shown, or what stopped it")
    consent_version: str | None
    proof: dict[str, Any] | None = Field(description="Form, page, visitor hash (never an address), message id...")
    notes: list[str] = Field(default_factory=list, description="What the owner should know of an entry just "
                             "recorded: that it opts in again a number that had opted out (STOP, an erasure)")


class RequestOut(BaseModel):
    id: int
    business_id: int
    topic: str
    state: Literal["pending", "confirmed", "lapsed", "refused"]
    created_at: str | None
    expires_at: str | None
    source: str
    consent_text: str
    consent_version: str


class OptinHistory(BaseModel):
    phone: str
    topics: dict[str, Literal["in", "out"]] = Field(description="Each topic's state now ('*': every topic)")
    consents: list[ConsentOut] = Field(description="Every entry, oldest first: nothing is ever overwritten")
    requests: list[RequestOut] = Field(description="Double opt-in requests, oldest first: waiting for the "
                                       "customer's Yes (pending), confirmed, refused or lapsed")
    pending: list[RequestOut] = Field(description="Those of `requests` still waiting for the customer's Yes")


def consent_out(entry: Consent) -> ConsentOut:
    return ConsentOut(
        id=entry.id, business_id=entry.business_id, phone=entry.phone, topic=entry.topic,
        state=entry.state, at=timestamp(entry.at), source=entry.source,  # type: ignore[arg-type]
        consent_text=entry.wording, consent_version=entry.version, proof=entry.proof,
    )  # fmt: skip


def request_out(request: OptinRequest) -> RequestOut:
    return RequestOut(
        id=request.id, business_id=request.business_id, topic=request.topic, state=request.state,  # type: ignore[arg-type]
        created_at=timestamp(request.created_at), expires_at=timestamp(request.expires_at), source=request.source,
        consent_text=request.wording, consent_version=request.version,
    )  # fmt: skip




@endpoint
async def add_optin(request: Request, service: Service) -> Response:
    body = await read_body(request, OptinCreate, consent_mistakes)
    proof = {"page": body.page_url} if body.page_url else None
    if body.source not in SOURCES:  # pydantic said so already; the rules say it again
        raise InvalidInput("source", f"must be one of {', '.join(SOURCES)}")
    optins = Optins(service)
    entry = await optins.add(body.business_id, body.phone, body.topic, body.source, body.consent_text,
                             body.consent_version, proof, renewed=body.renewed)  # fmt: skip
    return out(consent_out(entry).model_copy(update={"notes": await optins.notes(entry)}), 201)


@endpoint
async def list_optins(request: Request, service: Service) -> Response:
    phone = request.query_params.get("phone")
    if not phone:
        raise InvalidInput("phone", "is required: the customer's number with its country code")
    if USER_ID.fullmatch(phone.strip()):  # they have no country code to add: say what to do instead
        raise InvalidInput("phone", f"{phone.strip()!r} is a WhatsApp user id, and opt-ins are recorded by number; "
                                    f"GET /customers/{phone.strip()} shows all that is held about a user id, "
                                    "its consents included")  # fmt: skip
    business = await business_filter(request, service)
    digits, entries, requests = await Optins(service).history(business, phone, "business")
    return out(OptinHistory(
        phone=digits, topics=Optins.topics_now(entries), consents=[consent_out(e) for e in entries],  # type: ignore[arg-type]
        requests=[request_out(r) for r in requests], pending=[request_out(r) for r in requests if r.state == "pending"],
    ))  # fmt: skip


@endpoint
async def remove_optin(request: Request, service: Service) -> Response:
    source = request.query_params.get("source", "api")
    entry = await Optins(service).remove(await business_filter(request, service), request.path_params["phone"],
                                         request.query_params.get("topic"), source, field="business")  # fmt: skip
    return out(consent_out(entry))


routes = [
    resource("/optins", GET=list_optins, POST=add_optin),
    resource("/optins/{phone}", DELETE=remove_optin),
]
