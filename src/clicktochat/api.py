"""REST API v1: thin handlers over `Service`. Request and response bodies are pydantic
models, so validation errors name their fields and the OpenAPI document is generated from
the same classes the handlers use."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .agents import Agent, Business, is_available
from .api_models import (
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
)
from .channels import CHANNELS
from .errors import FieldError, InvalidInput, MalformedRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from .keys import check_api_key
from .links import ShortLink
from .logos import MAX_UPLOAD_BYTES
from .service import CreatedLink, Service, link_update_mistakes, timestamp
from .stats import compute, parse_query
from .tokens import token_key
from .versions import tag
from .widget import SETTING_NAMES, Widget, check_settings

MAX_BODY_BYTES = 64 * 1024
LOGO_TYPES = ("image/png", "image/jpeg", "image/webp")

# -- plumbing -------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
QUERY_NAMES = "clicktochat.query_names"
"""The scope's key for the query parameters the operation takes (`resource`)."""
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
        if (key_id := await check_api_key(service.store, key.strip())) is None:
            raise Unauthorized("This API key is not valid, or it has been revoked.")
        request.state.api_key_id = key_id  # who asked, for what is kept of it (a reply's sender)
        request.state.signed_in = True  # its 404s are not a stranger's guesses (app.problem_response)
        if request.query_params and (known := request.scope.get(QUERY_NAMES)) is not None:
            refuse_unknown(request, known)  # after the key: a stranger learns nothing of the parameters
        response = await handler(request, service)
        # What a key reads (people's numbers, conversations, stats) is kept by no cache, a browser's
        # or a proxy's, as the dashboard's pages are not (found by an attacker: only one did say so).
        response.headers.setdefault("Cache-Control", "no-store")
        return response

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


REPEATED = "appears more than once in the body; send each field once"


async def read_body(request: Request, model: type[M],
                    values: Callable[[dict[str, Any]], list[FieldError]] | None = None) -> M:  # fmt: skip
    """The body as `model`. `values`: the checks of values the service makes later, run on the
    raw fields when the model refuses some others, so that one answer names every mistake."""
    body = await read_bytes(request, ("application/json",), MAX_BODY_BYTES, "the body as JSON")
    try:
        parsed = model.model_validate_json(body or b"null")
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors[0]["type"] == "json_invalid":
            raise MalformedRequest(f"The body is not valid JSON: {errors[0]['ctx'].get('error', '')}") from None
        if errors[0]["loc"] == ():
            raise MalformedRequest("The body is empty; send a JSON object." if not body else
                                   "The body must be a JSON object.") from None  # fmt: skip
        found = [FieldError(field_name(e["loc"]), _reason(e)) for e in errors]
        named = {str(e["loc"][0]) for e in errors}  # the body's own fields the model refused
        if (repeated := repeated_key(body)) is not None and repeated not in {f.field for f in found}:
            found.append(FieldError(repeated, REPEATED))
            named.add(repeated)  # named once: its values are not checked as well
        if values is not None:
            try:
                raw = {k: v for k, v in json.loads(body).items() if k not in named}
            except (ValueError, RecursionError):  # deeper than Python's parser goes: the model's say is enough
                raw = {}
            found += values(raw)
        raise InvalidInput.many(found) from None
    if (repeated := repeated_key(body)) is not None:
        raise InvalidInput(repeated, REPEATED)
    return parsed


def repeated_key(body: bytes) -> str | None:
    """A key that appears twice in one object of the JSON `body` (parsers keep one of the two
    values, each its own: the client meant one of them, and we cannot tell which)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                found.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):  # checked already: what pydantic took is JSON
        return None
    return found[0] if found else None


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


def out(model: BaseModel, status_code: int = 200, version: object = None) -> JSONResponse:
    """`model` as JSON; with `version` (the link, business, agent or widget as stored), its ETag,
    for a later PATCH's If-Match (`versions`)."""
    headers = None if version is None else {"ETag": tag(version)}
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code, headers=headers)


def idempotency_key(request: Request, in_body: str | None) -> str | None:
    """The request's key: in the body or in the Idempotency-Key header; two different ones are
    refused (a retry sent with the other would be taken for a new request)."""
    sent = request.headers.getlist("idempotency-key")
    if len(sent) > 1:  # a retry that carried only one of them would be a new request (an API review)
        raise InvalidInput("idempotency_key", "the Idempotency-Key header appears more than once; send it once")
    header = sent[0] if sent else None
    if in_body is not None and header is not None and header != in_body:
        raise InvalidInput("idempotency_key", f"is {in_body!r} in the body but {header!r} in the Idempotency-Key "
                                              "header; send one key, or the same in both")  # fmt: skip
    return in_body if in_body is not None else header


def refuse_unknown(request: Request, known: tuple[str, ...]) -> None:
    """Parameters the operation does not take, and ones given twice (each parser keeps one of the
    values, its own: the client meant one of them, and we cannot tell which)."""
    params = request.query_params
    unknown = [name for name in dict.fromkeys(params) if name not in known]
    errors = [FieldError(name[:100], "appears more than once in the query; send it once")
              for name in dict.fromkeys(params) if name in known and len(params.getlist(name)) > 1]  # fmt: skip
    if unknown:
        takes = f"the known ones are {', '.join(known)}" if known else "this request takes none"
        if request.url.path.startswith("/api/v1/customers/"):
            takes += "; a person's export and erasure cover every business on this install"
        errors += [FieldError(name[:100], f"is not a known parameter; {takes}") for name in unknown]
    if errors:
        raise InvalidInput.many(errors)


@functools.cache
def query_names(method: str, path: str) -> tuple[str, ...]:
    """The query parameters the OpenAPI document lists for an operation."""
    from .openapi import openapi  # the document imports every API module, this one included

    operation = openapi("")["paths"].get(path, {}).get(method, {})
    return tuple(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) + 2 or not low <= int(raw) <= high:
        raise InvalidInput(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def page(request: Request) -> tuple[int, int]:
    """`?limit` (1-1000, default 100) and `?offset` of a list that pages as /links does."""
    return query_int(request, "limit", 100, 1, 1000), query_int(request, "offset", 0, 0, 10**9)


async def business_filter(request: Request, service: Service) -> int | None:
    """`?business=ID` of a list, or None; an unknown business is a 422, not an empty list that
    would look like "nothing yet" (a typo'd id, found by an agency's review)."""
    if "business" not in request.query_params:
        return None
    return await service.known_business(query_int(request, "business", 0, 1, 2**63 - 1), "business")


async def agent_filter(request: Request, service: Service) -> int | None:
    """`?agent=ID` of a list, or None; an unknown agent is a 422, as an unknown business is."""
    if "agent" not in request.query_params:
        return None
    agent = query_int(request, "agent", 0, 1, 2**63 - 1)
    if await service.store.agent(agent) is None:
        raise InvalidInput("agent", f"there is no agent {agent}")
    return agent


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
    body = await read_body(request, LinkCreate, service.link_mistakes)
    if body.expires_at is not None and body.expires_in is not None:
        raise InvalidInput("expires_in", "give expires_at or expires_in, not both")
    if body.expires_at is not None:
        expires = epoch(body.expires_at)
    else:
        expires = int(time.time()) + body.expires_in if body.expires_in is not None else None
    fields = body.model_dump(exclude={"expires_at", "expires_in", "idempotency_key"})
    if "channel" not in body.model_fields_set:  # a link to an agent or business then routes on their first
        fields["channel"] = None
    key = idempotency_key(request, body.idempotency_key)
    asked = body.model_dump(mode="json", exclude={"idempotency_key"}) | {"channel": fields["channel"]}  # expires_in
    request_key = None if key is None else (key, hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest())
    created = await service.create_link(**fields, expires_at=expires, request=request_key)
    link = created.short or created.signed
    assert link is not None
    notes = await service.link_notes(link)
    if created.short is not None:
        slug = created.short.slug
        clicks = (await service.store.click_counts("short", [slug]))[slug] if created.again else 0
        return out(link_out(service, created.short, clicks).model_copy(update={"notes": notes}),
                   200 if created.again else 201, created.short)  # fmt: skip
    return out(signed_out(service, created).model_copy(update={"notes": notes}), 201)


@endpoint
async def list_links(request: Request, service: Service) -> Response:
    limit, offset = page(request)
    links = await service.store.links(limit, offset, business_id=await business_filter(request, service))
    clicks = await service.store.click_counts("short", [link.slug for link in links])
    return out(LinkList(links=[link_out(service, link, clicks[link.slug]) for link in links]))


@endpoint
async def get_link(request: Request, service: Service) -> Response:
    link = await service.get_link(request.path_params["slug"])
    return out(link_out(service, link, clicks=await service.link_clicks(link.slug)), version=link)


@endpoint
async def update_link(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, LinkUpdate, link_update_mistakes))
    if "expires_at" in changes:
        changes["expires_at"] = epoch(changes["expires_at"])
    link = await service.update_link(request.path_params["slug"], changes, request.headers.get("if-match"))
    notes = await service.link_notes(link)
    return out(link_out(service, link, clicks=await service.link_clicks(link.slug)).model_copy(update={"notes": notes}),
               version=link)  # fmt: skip


@endpoint
async def disable_link(request: Request, service: Service) -> Response:
    """Short links are never deleted: a printed slug must not lead somewhere new by accident."""
    link = await service.update_link(request.path_params["slug"], {"disabled": True}, request.headers.get("if-match"))
    return out(link_out(service, link, clicks=await service.link_clicks(link.slug)), version=link)


# -- businesses and agents ------------------------------------------------------------


@endpoint
async def list_businesses(request: Request, service: Service) -> Response:
    businesses = await service.store.businesses(*page(request))
    return out(BusinessList(businesses=[business_out(b) for b in businesses]))


@endpoint
async def create_business(request: Request, service: Service) -> Response:
    body = await read_body(request, BusinessCreate)
    business = await service.add_business(body.name, body.timezone, body.colour)
    return out(business_out(business), 201, business)


@endpoint
async def get_business(request: Request, service: Service) -> Response:
    business = await service.get_business(request.path_params["business_id"])
    return out(business_out(business), version=business)


@endpoint
async def update_business(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, BusinessUpdate))
    business = await service.update_business(request.path_params["business_id"], changes,
                                             request.headers.get("if-match"))  # fmt: skip
    return out(business_out(business), version=business)


@endpoint
async def delete_business(request: Request, service: Service) -> Response:
    await service.delete_business(request.path_params["business_id"], request.headers.get("if-match"))
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
    return out(agent_out(agent), 201, agent)


@endpoint
async def get_agent(request: Request, service: Service) -> Response:
    agent = await service.get_agent(request.path_params["agent_id"])
    return out(agent_out(agent), version=agent)


@endpoint
async def update_agent(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, AgentUpdate))
    if "channels" in changes:
        changes["channels"] = [c.model_dump() for c in changes["channels"]]
    agent = await service.update_agent(request.path_params["agent_id"], changes, request.headers.get("if-match"))
    return out(agent_out(agent), version=agent)


@endpoint
async def delete_agent(request: Request, service: Service) -> Response:
    await service.delete_agent(request.path_params["agent_id"], request.headers.get("if-match"))
    return Response(status_code=204)


# -- widgets --------------------------------------------------------------------------


@endpoint
async def list_widgets(request: Request, service: Service) -> Response:
    widgets = await service.store.widgets(await business_filter(request, service), *page(request))
    counts = await service.store.click_counts("widget", [w.id for w in widgets])
    return out(WidgetList(widgets=[widget_out(service, w, counts[w.id]) for w in widgets]))


def widget_mistakes(raw: dict[str, Any]) -> list[FieldError]:
    """What check_settings says of the settings in a raw body (the service checks them again)."""
    try:
        check_settings({k: v for k, v in raw.items() if k in SETTING_NAMES})
    except InvalidInput as exc:
        return exc.errors
    return []


@endpoint
async def create_widget(request: Request, service: Service) -> Response:
    body = await read_body(request, WidgetCreate, widget_mistakes)
    settings = {k: v for k, v in changes_of(body).items() if v is not None and k not in ("business_id", "id")}
    widget = await service.create_widget(body.business_id, body.id, settings)
    return out(widget_out(service, widget, 0), 201, widget)


@endpoint
async def get_widget(request: Request, service: Service) -> Response:
    widget = await service.get_widget(request.path_params["widget_id"])
    return out(widget_out(service, widget, await service.store.click_count("widget", widget.id)), version=widget)


@endpoint
async def update_widget(request: Request, service: Service) -> Response:
    changes = changes_of(await read_body(request, WidgetUpdate, widget_mistakes))
    widget = await service.update_widget(request.path_params["widget_id"], changes, request.headers.get("if-match"))
    return out(widget_out(service, widget, await service.store.click_count("widget", widget.id)), version=widget)


@endpoint
async def delete_widget(request: Request, service: Service) -> Response:
    await service.delete_widget(request.path_params["widget_id"], request.headers.get("if-match"))
    return Response(status_code=204)


@endpoint
async def get_stats(request: Request, service: Service) -> Response:
    query = parse_query(request.query_params)
    stats = await compute(service.store, query)
    accept = request.headers.get("accept", "")
    if request.url.path.endswith(".csv") or ("text/csv" in accept and "application/json" not in accept):
        filename = f"clicktochat-{query.by}-{stats.first_day}-{stats.last_day}.csv"
        return Response(stats.as_csv(every_column=True), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip
    return JSONResponse(StatsOut.model_validate(stats.as_dict()).model_dump(mode="json", by_alias=True))


async def openapi_document(request: Request) -> Response:
    from .openapi import openapi

    return JSONResponse(openapi(request.app.state.service.base_url))


def resource(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path, dispatching on the method, so a 405 lists every allowed method. A
    query parameter the OpenAPI document does not list for the operation is a 422: a typo
    (`?bussiness=2`), or a filter the operation does not have (`/links?business=1`), would
    otherwise answer for everything as if it had been applied."""
    documented = re.sub(r":\w+}", "}", path)  # /businesses/{business_id:int} as the document writes it

    async def dispatch(request: Request) -> Response:
        method = request.method if request.method in handlers else "GET"  # HEAD is answered as GET
        request.scope[QUERY_NAMES] = query_names(method.lower(), documented)  # checked by `endpoint`
        return await handlers[method](request)

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
