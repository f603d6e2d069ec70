"""REST API v1 for the WhatsApp side: connected numbers and conversations. Same rules as
`api.py` (bearer API keys, pydantic bodies, problem+json); secrets go in and never come out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import customers
from .api import agent_filter, business_filter, endpoint, idempotency_key, out, query_int, read_body, resource
from .api_models import Body, Whole
from .attributionstore import Attribution
from .chatstore import Message
from .conversations import MAX_TEXT_LENGTH
from .errors import InvalidInput
from .numberstore import WhatsAppNumber
from .outboxstore import OutboxRow
from .service import Service, timestamp
from .whatsapp import ConversationView


def secret(least: int) -> dict[str, Any]:
    """As `WhatsApp.connect` checks it: printable ASCII without spaces."""
    return {"minLength": least, "maxLength": 1000, "pattern": f"^[!-~]{{{least},1000}}$"}


META_ID: dict[str, Any] = {"pattern": r"^[0-9]{5,20}$"}
ALLOWED = r"[^\x00-\x08\x0b-\x1f\x7f-\x9f]"  # no control characters but new lines and tabs
REPLY_TEXT: dict[str, Any] = {"minLength": 1, "maxLength": MAX_TEXT_LENGTH, "pattern": f"^{ALLOWED}*\\S{ALLOWED}*$"}


class NumberConnect(Body):
    business_id: Whole = Field(description="The business this number answers for.",
                             ge=1, le=2**63 - 1)  # fmt: skip
    phone_number_id: str = Field(description="Meta's phone number id (WhatsApp Manager > API Setup).",
                                 json_schema_extra=META_ID)  # fmt: skip
    waba_id: str = Field(description="The WhatsApp Business Account id.", json_schema_extra=META_ID)
    access_token: str = Field(description="A system user's permanent token; never shown again.",
                              json_schema_extra=secret(20))  # fmt: skip
    app_secret: str = Field(description="The Meta app's secret, to check webhook signatures; never shown again.",
                            json_schema_extra=secret(16))  # fmt: skip
    verify_token: str = Field(description="The verify token you typed in the app's webhook settings.",
                              json_schema_extra=secret(8))  # fmt: skip


class NumberOut(BaseModel):
    id: int
    business_id: int
    phone_number_id: str
    waba_id: str
    display_phone_number: str
    verified_name: str | None
    connected_at: str | None
    webhook_url: str = Field(description="The callback URL to give Meta.")
    needs_reconnect: bool = Field(description="Meta refused the number's access token (190, 102): its messages wait,"
                                  " held, until it is connected again with a new token (POST /whatsapp-numbers)")
    token_refused_at: str | None = Field(description="When Meta first refused the token")
    token_error: str | None = Field(description="Meta's refusal, in words (never the token)")


class NumberList(BaseModel):
    numbers: list[NumberOut]


class WindowOut(BaseModel):
    open: bool = Field(description="The customer wrote in the last 24 hours: free-form messages are allowed")
    open_until: str | None = Field(description="When the customer-service window closes")
    free_entry_point_until: str | None = Field(
        description="Chats from a Click-to-WhatsApp ad or a Page button: every message is free until then"
    )
    may_send: Literal["text", "templates", "nothing"] = Field(
        description="What may be sent now: text (and templates) while the window is open, else approved templates;"
        " nothing when the customer opted out and has not written since, or the number is no longer connected"
    )


class StartOut(BaseModel):
    at: str | None = Field(description="When the customer wrote with the window closed (or first)")
    ref: str | None = Field(description="The ref code found in the first message")
    link_kind: str | None = Field(description="short, signed or widget: the click that opened the chat")
    link_key: str | None
    campaign: str | None
    agent_id: int | None
    channel: str | None
    click_at: str | None
    referral: dict[str, Any] | None = Field(description="Meta's referral: the ad or post (source_id, ctwa_clid...)")


class AttributionOut(BaseModel):
    at: str | None = Field(description="When the customer wrote the message that said where it came from")
    ref: str | None = Field(description="The ref code found in that message")
    link_kind: str | None = Field(description="short, signed or widget: the click its ref code names")
    link_key: str | None
    campaign: str | None
    agent_id: int | None
    channel: str | None
    click_at: str | None
    referral: dict[str, Any] | None = Field(description="Meta's referral: the ad or post (source_id, ctwa_clid...)")


class ConversationOut(BaseModel):
    id: int
    number_id: int
    business_id: int
    wa_id: str | None = Field(description="The customer's number, when WhatsApp shares it")
    user_id: str | None = Field(description="The customer's business-scoped user id")
    name: str | None
    created_at: str | None
    last_message_at: str | None
    last_inbound_at: str | None
    window: WindowOut
    reply_refused: str | None = Field(description="Why a text reply cannot be sent now; null when it can")
    opted_out: bool = Field(description="The customer stopped messages from the business")
    may_have_blocked: bool = Field(description="Messages to them stay at 'sent' for days while others deliver")
    came_from: StartOut | None = Field(description="Where the chat came from: its start's click or ad (the first)")
    latest_came_from: AttributionOut | None = Field(
        None, description="The customer's latest message that carried an ad's referral or a link's ref code (a"
        " click on another ad or link while the window was open); the chat's start keeps the first, in came_from")
    last_message: str | None = None


class MessageOut(BaseModel):
    id: int
    wamid: str | None
    direction: Literal["in", "out"]
    at: str | None
    type: str
    text: str | None
    caption: str | None
    mime_type: str | None
    status: str | None = Field(description="Outbound: queued, sent, delivered, read, failed or cancelled")
    error_code: int | None
    error: str | None
    pricing: dict[str, Any] | None
    outbox_id: int | None = Field(None, description="Outbound: the outbox row it went from, the `id` its reply's "
                                  "202 gave")  # fmt: skip
    sent_by: str | None = Field(None, description="Outbound: who wrote it: admin:NAME (the dashboard), api:KEY NAME "
                                "#KEY ID, cli; null when not known (replies written before this was kept)")  # fmt: skip


class ConversationList(BaseModel):
    conversations: list[ConversationOut]


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class ReplyCreate(Body):
    text: str = Field(description="At most 4096 characters.", json_schema_extra=REPLY_TEXT)
    idempotency_key: str | None = Field(
        None, description="Send the same key again and the first message is returned, not sent twice "
        "(also the Idempotency-Key header).", json_schema_extra={"pattern": r"^[A-Za-z0-9._:-]{1,200}$"},
    )  # fmt: skip


class ReplyOut(BaseModel):
    id: int = Field(description="The outbox row")
    conversation_id: int | None
    state: str = Field(description="queued, sending, sent, failed or cancelled")
    wamid: str | None
    error_code: int | None
    error: str | None


class CustomerErased(BaseModel):
    deleted: dict[str, int] = Field(description="Rows deleted, per table; an opt-out marker is kept per business")


def number_out(service: Service, number: WhatsAppNumber) -> NumberOut:
    return NumberOut(
        id=number.id, business_id=number.business_id, phone_number_id=number.phone_number_id,
        waba_id=number.waba_id, display_phone_number=number.display_phone_number,
        verified_name=number.verified_name, connected_at=timestamp(number.connected_at),
        webhook_url=f"{service.base_url}/webhooks/whatsapp", needs_reconnect=number.token_refused_at is not None,
        token_refused_at=timestamp(number.token_refused_at), token_error=number.token_error,
    )  # fmt: skip


def conversation_out(view: ConversationView) -> ConversationOut:
    c, w, start = view.conversation, view.window, view.conversation.start
    came_from = None
    if start is not None:
        came_from = StartOut(
            at=timestamp(start.at), ref=start.ref, link_kind=start.link_kind, link_key=start.link_key,
            campaign=start.campaign, agent_id=start.agent_id, channel=start.channel,
            click_at=timestamp(start.click_at), referral=start.referral,
        )  # fmt: skip
    return ConversationOut(
        id=c.id, number_id=c.number_id, business_id=c.business_id, wa_id=c.wa_id, user_id=c.user_id, name=c.name,
        created_at=timestamp(c.created_at), last_message_at=timestamp(c.last_message_at),
        last_inbound_at=timestamp(c.last_inbound_at),
        window=WindowOut(open=w.open, open_until=timestamp(w.open_until),
                         free_entry_point_until=timestamp(w.entry_point_until), may_send=view.may_send),  # type: ignore[arg-type]
        reply_refused=view.reply_refused, opted_out=view.opted_out, may_have_blocked=view.may_have_blocked,
        came_from=came_from, latest_came_from=attribution_out(view.latest),
        last_message=view.last[1] if view.last else None,
    )  # fmt: skip


def attribution_out(latest: Attribution | None) -> AttributionOut | None:
    if latest is None:
        return None
    return AttributionOut(
        at=timestamp(latest.at), ref=latest.ref, link_kind=latest.link_kind, link_key=latest.link_key,
        campaign=latest.campaign, agent_id=latest.agent_id, channel=latest.channel,
        click_at=timestamp(latest.click_at), referral=latest.referral,
    )  # fmt: skip


def message_out(m: Message) -> MessageOut:
    return MessageOut(
        id=m.id, wamid=m.wamid, direction=m.direction, at=timestamp(m.at), type=m.type,  # type: ignore[arg-type]
        text=m.text, caption=m.caption, mime_type=m.mime_type, status=m.status, error_code=m.error_code,
        error=m.error, pricing=m.pricing, outbox_id=m.outbox_id, sent_by=m.sent_by,
    )  # fmt: skip


def reply_out(row: OutboxRow) -> ReplyOut:
    return ReplyOut(id=row.id, conversation_id=row.conversation_id, state=row.state, wamid=row.wamid,
                    error_code=row.error_code, error=row.error)  # fmt: skip


@endpoint
async def list_numbers(request: Request, service: Service) -> Response:
    numbers = await service.whatsapp.chats.numbers()
    return out(NumberList(numbers=[number_out(service, n) for n in numbers]))


@endpoint
async def connect_number(request: Request, service: Service) -> Response:
    body = await read_body(request, NumberConnect)
    again = await service.whatsapp.chats.number_by_phone_id(body.phone_number_id) is not None  # new credentials
    number = await service.whatsapp.connect(
        body.business_id, body.phone_number_id, body.waba_id, body.access_token, body.app_secret, body.verify_token
    )
    return out(number_out(service, number), 200 if again else 201)


@endpoint
async def get_number(request: Request, service: Service) -> Response:
    return out(number_out(service, await service.whatsapp.get_number(request.path_params["number_id"])))


@endpoint
async def disconnect_number(request: Request, service: Service) -> Response:
    await service.whatsapp.disconnect(request.path_params["number_id"])
    return Response(status_code=204)


@endpoint
async def list_conversations(request: Request, service: Service) -> Response:
    params = request.query_params
    business, agent = await business_filter(request, service), await agent_filter(request, service)
    only_open = params.get("open", "false")
    if only_open not in ("true", "false"):
        raise InvalidInput("open", "must be true or false")
    views = await service.whatsapp.conversations(
        business, agent, only_open == "true", query_int(request, "limit", 50, 1, 500),
        query_int(request, "offset", 0, 0, 10**9),
    )  # fmt: skip
    return out(ConversationList(conversations=[conversation_out(v) for v in views]))


@endpoint
async def get_conversation(request: Request, service: Service) -> Response:
    view, messages = await service.whatsapp.conversation(request.path_params["conversation_id"])
    summary = conversation_out(view).model_dump()
    if messages:
        summary["last_message"] = messages[-1].text or messages[-1].caption or f"[{messages[-1].type}]"
    detail = ConversationDetail(**summary, messages=[message_out(m) for m in messages])
    return out(detail)


@endpoint
async def reply(request: Request, service: Service) -> Response:
    body = await read_body(request, ReplyCreate)
    key = idempotency_key(request, body.idempotency_key)
    key_id = request.state.api_key_id
    keys = {k.id: k.name for k in await service.store.api_keys()}
    sent_by = f"api:{keys.get(key_id, '')} #{key_id}"  # names may repeat: the key's id tells them apart
    row, created = await service.whatsapp.reply(request.path_params["conversation_id"], body.text, key, sent_by)
    return out(reply_out(row), 202 if created else 200)


@endpoint
async def export_customer(request: Request, service: Service) -> Response:
    return JSONResponse(await customers.export(service, request.path_params["phone"]),
                        headers={"Cache-Control": "no-store"})  # fmt: skip


@endpoint
async def erase_customer(request: Request, service: Service) -> Response:
    return out(CustomerErased(deleted=await customers.erase(service, request.path_params["phone"])))


routes = [
    resource("/customers/{phone}", GET=export_customer, DELETE=erase_customer),
    resource("/whatsapp-numbers", GET=list_numbers, POST=connect_number),
    resource("/whatsapp-numbers/{number_id:int}", GET=get_number, DELETE=disconnect_number),
    resource("/conversations", GET=list_conversations),
    resource("/conversations/{conversation_id:int}", GET=get_conversation),
    resource("/conversations/{conversation_id:int}/messages", POST=reply),
]
