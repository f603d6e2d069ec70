"""The WhatsApp Cloud API stand-in: its webhooks are signed and shaped as Meta documents them, and
its Graph endpoints answer, fail and report statuses as Meta does. Everything runs in process: the
stand-in and a small webhook receiver are real ASGI apps driven through httpx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from clicktochat import payloads
from clicktochat.graph_standin import GraphStandIn, SentMessage, StandInNumber, describe
from clicktochat.simulate import Customer

NUMBER = StandInNumber(phone_number_id="106540352242922", waba_id="102290129340398",
                       display_phone_number="15550783881", verified_name="Acme Sofas",
                       access_token="EAAtest-token", app_secret="app-secret-123")
OTHER = StandInNumber(phone_number_id="206540352242922", waba_id="202290129340398",
                      display_phone_number="15550783882", verified_name="Acme Chairs",
                      access_token="EAAother-token", app_secret="other-secret")
WEBHOOK = "http://ourserver.test/webhooks/whatsapp"
BSUID = "US.13491208655302741918"
T0 = 1_750_000_000.0
AUTH = {"Authorization": f"Bearer {NUMBER.access_token}"}


@dataclass
class Receiver:
    """Our server's webhook endpoint, reduced to recording what arrives."""

    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        self.received.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/webhooks/whatsapp", self.endpoint, methods=["POST"])])

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw, _ in self.received]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    standin: GraphStandIn
    receiver: Receiver
    graph: httpx.AsyncClient
    hooks: httpx.AsyncClient
    clock: Clock

    def customer(self, wa_id: str | None = "16505551234", user_id: str | None = BSUID) -> Customer:
        return Customer(WEBHOOK, NUMBER, wa_id, user_id=user_id, standin=self.standin, http=self.hooks)

    async def send(self, body: dict[str, Any], path: str = f"/v26.0/{NUMBER.phone_number_id}/messages",
                   headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.graph.post(path, json=body, headers=AUTH if headers is None else headers)


def run(scenario: Callable[[World], Awaitable[None]], auto_statuses: bool = False) -> None:
    async def main() -> None:
        receiver = Receiver()
        clock = Clock()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app()),
                                     base_url="http://ourserver.test") as hooks:
            standin = GraphStandIn([NUMBER, OTHER], webhook_url=WEBHOOK, auto_statuses=auto_statuses,
                                   clock=clock, http=hooks)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=standin.app),
                                         base_url="http://graph.test") as graph:
                await scenario(World(standin, receiver, graph, hooks, clock))

    asyncio.run(main())


def text(to: str = "16505551234", body: str = "Hello!", **extra: Any) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"preview_url": False, "body": body}, **extra}


def template(name: str = "hello_world", to: str = "16505551234") -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "language": {"code": "en_US"}}
    if name == "follow_up":  # "Hi {{1}}, still interested in {{2}}?": Meta counts the parameters
        body["components"] = [{"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                                              {"type": "text", "text": "the sofa"}]}]  # fmt: skip
    return {"messaging_product": "whatsapp", "to": to, "type": "template", "template": body}


def verify(raw: bytes, headers: dict[str, str], secret: str = NUMBER.app_secret) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-hub-signature-256"], expected)


def only_value(body: dict[str, Any]) -> dict[str, Any]:
    (entry,) = body["entry"]
    (change,) = entry["changes"]
    value: dict[str, Any] = change["value"]
    return value


# --- webhooks a customer sends ---------------------------------------------------------------------


def test_a_customer_message_is_signed_over_the_exact_bytes_and_shaped_as_meta_documents() -> None:
    async def scenario(world: World) -> None:
        ad = payloads.referral(source_url="https://fb.me/3cr4Wqqkv", source_id="120212345", headline="Sofas -30%",
                               body="This week only", ctwa_clid="ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0H",
                               image_url="https://scontent.example/ad.jpg")
        response = await world.customer().send_text("Does it come in blue? ¿Sí?", referral=ad)
        assert response.status_code == 200
        ((raw, headers),) = world.receiver.received
        assert headers["content-type"] == "application/json"
        assert verify(raw, headers)
        assert not verify(raw, headers, secret="wrong")
        assert not verify(json.dumps(json.loads(raw)).encode(), headers)  # a re-serialisation does not verify
        body = json.loads(raw)
        assert body["object"] == "whatsapp_business_account"
        (entry,) = body["entry"]
        assert entry["id"] == NUMBER.waba_id
        (change,) = entry["changes"]
        assert change["field"] == "messages"
        value = change["value"]
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}
        assert value["contacts"] == [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234", "user_id": BSUID}]
        (message,) = value["messages"]
        assert message["from"] == "16505551234" and message["from_user_id"] == BSUID
        assert message["id"].startswith("wamid.") and message["timestamp"] == str(int(T0))
        assert message["type"] == "text" and message["text"] == {"body": "Does it come in blue? ¿Sí?"}
        assert message["referral"] == {
            "source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120212345", "source_type": "ad",
            "body": "This week only", "headline": "Sofas -30%", "media_type": "image",
            "image_url": "https://scontent.example/ad.jpg",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0H"}

    run(scenario)


def test_a_user_whose_phone_is_withheld_has_no_wa_id_and_no_from() -> None:
    async def scenario(world: World) -> None:
        await world.customer(wa_id=None).send_text("hi")
        value = only_value(world.receiver.bodies()[0])
        assert value["contacts"] == [{"profile": {"name": "Sheena Nelson"}, "user_id": BSUID}]
        (message,) = value["messages"]
        assert "from" not in message and message["from_user_id"] == BSUID

    run(scenario)


def test_media_buttons_and_replies_have_their_documented_objects() -> None:
    async def scenario(world: World) -> None:
        customer = world.customer()
        context = {"from": NUMBER.display_phone_number, "id": payloads.new_wamid(outbound=True)}
        await customer.send_media("image", caption="this one")
        await customer.tap_button("Yes please", "FOLLOW_UP_YES", context=context)
        await customer.tap_reply("opt-1", "Blue")
        image, button, reply = (only_value(body)["messages"][0] for body in world.receiver.bodies())
        assert image["type"] == "image" and set(image["image"]) == {"caption", "mime_type", "sha256", "id"}
        assert button["type"] == "button" and button["button"] == {"payload": "FOLLOW_UP_YES", "text": "Yes please"}
        assert button["context"] == context
        assert reply["interactive"] == {"type": "button_reply", "button_reply": {"id": "opt-1", "title": "Blue"}}

    run(scenario)


def test_user_preferences_webhook() -> None:
    async def scenario(world: World) -> None:
        await world.customer().set_marketing("stop")
        ((raw, headers),) = world.receiver.received
        assert verify(raw, headers)
        body = json.loads(raw)
        assert body["entry"][0]["changes"][0]["field"] == "user_preferences"
        (preference,) = only_value(body)["user_preferences"]
        assert preference == {"wa_id": "16505551234", "user_id": BSUID, "category": "marketing_messages",
                              "value": "stop", "detail": "User requested to stop marketing messages",
                              "timestamp": int(T0)}

    run(scenario)


def test_batch_groups_changes_by_account() -> None:
    def one(number: StandInNumber, n: int) -> dict[str, Any]:
        value = payloads.inbound_message(wamid=payloads.new_wamid(), timestamp=n, wa_id="1", user_id=None,
                                         name="A", text=str(n))
        return payloads.webhook_body(waba_id=number.waba_id, phone_number_id=number.phone_number_id,
                                     display_phone_number=number.display_phone_number, value=value)

    body = payloads.batch([one(NUMBER, 1), one(OTHER, 2), one(NUMBER, 3)])
    assert [entry["id"] for entry in body["entry"]] == [NUMBER.waba_id, OTHER.waba_id]
    texts = [[c["value"]["messages"][0]["text"]["body"] for c in entry["changes"]] for entry in body["entry"]]
    assert texts == [["1", "3"], ["2"]]


def test_wamids_look_like_meta_s() -> None:
    wamid = payloads.new_wamid("16505551234")
    assert wamid.startswith("wamid.HBgLMTY1MDU1NTEyMzQVAgAS")
    assert len({payloads.new_wamid() for _ in range(50)}) == 50


# --- the Graph API ----------------------------------------------------------------------------------


def test_sends_without_a_valid_token_get_meta_s_401() -> None:
    async def scenario(world: World) -> None:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {OTHER.access_token}"}):
            response = await world.send(text(), headers=headers)
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["type"] == "OAuthException" and error["code"] == 190
            assert error["message"] and error["fbtrace_id"]
        assert world.standin.sent == []

    run(scenario)


def test_an_unknown_phone_number_id_is_a_400_with_code_100() -> None:
    async def scenario(world: World) -> None:
        response = await world.send(text(), path="/v26.0/999/messages")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 100

    run(scenario)


def test_bad_bodies_are_400_code_100_with_details() -> None:
    async def scenario(world: World) -> None:
        bad = [{k: v for k, v in text().items() if k != "messaging_product"}, text(body=""), text(body="x" * 4097),
               {**text(), "type": "carrier_pigeon"}, {**text(), "to": None}, template(name="no_such_template")]
        for body in bad:
            response = await world.send(body)
            assert response.status_code == 400, body
            error = response.json()["error"]
            assert error["code"] == 100 and error["error_data"]["details"], body
        assert (await world.send(text(body="x" * 4096))).status_code == 200

    run(scenario)


def test_an_accepted_send_answers_as_meta_and_is_recorded_with_or_without_version() -> None:
    async def scenario(world: World) -> None:
        for path in (f"/v26.0/{NUMBER.phone_number_id}/messages", f"/{NUMBER.phone_number_id}/messages"):
            response = await world.send(text(to="+1 650-555-1234"), path=path)
            assert response.status_code == 200
            answer = response.json()
            assert answer["messaging_product"] == "whatsapp"
            assert answer["contacts"] == [{"input": "+1 650-555-1234", "wa_id": "16505551234"}]
            (message,) = answer["messages"]
            assert message["id"].startswith("wamid.")
            assert world.standin.sent[-1].wamid == message["id"]
            assert world.standin.sent[-1].phone_number_id == NUMBER.phone_number_id
            assert world.standin.sent[-1].at == T0
        assert world.receiver.received == []  # statuses only when asked for

    run(scenario)


def test_a_send_to_a_bsuid_answers_with_user_id() -> None:
    async def scenario(world: World) -> None:
        body = {"messaging_product": "whatsapp", "recipient": BSUID, "type": "text", "text": {"body": "hi"}}
        answer = (await world.send(body)).json()
        assert answer["contacts"] == [{"input": BSUID, "user_id": BSUID}]
        both = (await world.send({**body, "to": "16505551234"})).json()  # `to` takes precedence
        assert both["contacts"] == [{"input": "16505551234", "wa_id": "16505551234"}]
        assert (await world.send({**body, "to": None})).status_code == 200

    run(scenario)


def test_a_free_form_send_after_24_hours_is_accepted_then_fails_with_131047() -> None:
    async def scenario(world: World) -> None:
        await world.customer().send_text("hello")
        world.clock.now = T0 + 23 * 3600
        inside = (await world.send(text())).json()["messages"][0]["id"]
        world.clock.now = T0 + 24 * 3600 + 1
        late = await world.send(text())
        assert late.status_code == 200
        outside = late.json()["messages"][0]["id"]
        utility = (await world.send(template())).json()["messages"][0]["id"]  # templates are always allowed
        world.receiver.received.clear()
        for wamid in (inside, outside, utility):
            await world.standin.deliver(wamid)
        statuses = [only_value(body)["statuses"][0] for body in world.receiver.bodies()]
        assert [(s["id"], s["status"]) for s in statuses] == [
            (inside, "sent"), (inside, "delivered"), (outside, "failed"), (utility, "sent"), (utility, "delivered")]
        failed = statuses[2]
        assert failed["errors"] == [{
            "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed since the "
                                      "customer last replied to this number."},
            "href": payloads.ERROR_CODES_URL}]
        assert "pricing" not in failed and "conversation" not in failed
        assert statuses[3]["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility",
                                          "type": "regular"}

    run(scenario)


def test_a_message_delivered_late_does_not_close_a_window_a_newer_one_opened() -> None:
    async def scenario(world: World) -> None:
        await world.customer().send_text("now")
        number, wa_id = world.customer().number.phone_number_id, world.customer().wa_id
        assert wa_id is not None
        world.standin.customer_wrote(number, wa_id, T0 - 25 * 3600)  # yesterday's, delivered after
        world.clock.now = T0 + 3600
        sent = (await world.send(text())).json()["messages"][0]["id"]
        world.receiver.received.clear()
        await world.standin.deliver(sent)
        statuses = [only_value(body)["statuses"][0]["status"] for body in world.receiver.bodies()]
        assert statuses == ["sent", "delivered"]

    run(scenario)


def test_fail_next_answers_with_meta_s_error_bodies_then_recovers() -> None:
    async def scenario(world: World) -> None:
        world.standin.fail_next(2, 429, 130429, retry_after=30)
        world.standin.fail_next(1, 400, 131056)
        world.standin.fail_next(1, 500, 2, message="Service temporarily unavailable")
        for _ in range(2):
            response = await world.send(text())
            assert response.status_code == 429 and response.headers["retry-after"] == "30"
            error = response.json()["error"]
            assert error["code"] == 130429 and error["message"] == "(#130429) Rate limit hit"
            assert error["type"] == "OAuthException" and error["error_data"]["details"] and error["fbtrace_id"]
        pair = await world.send(text())
        assert pair.status_code == 400 and pair.json()["error"]["code"] == 131056
        assert "retry-after" not in pair.headers
        down = await world.send(text())
        assert down.status_code == 500 and down.json()["error"]["message"] == "Service temporarily unavailable"
        assert (await world.send(text())).status_code == 200
        assert len(world.standin.sent) == 1

    run(scenario)


def test_emitted_statuses_are_signed_and_echo_biz_opaque_callback_data() -> None:
    async def scenario(world: World) -> None:
        await world.customer().send_text("hello")
        world.receiver.received.clear()
        wamid = (await world.send(text(biz_opaque_callback_data="outbox:42"))).json()["messages"][0]["id"]
        for status in ("sent", "delivered", "read"):
            response = await world.standin.emit_status(wamid, status)
            assert response.status_code == 200
        for raw, headers in world.receiver.received:
            assert verify(raw, headers)
        statuses = [only_value(body)["statuses"][0] for body in world.receiver.bodies()]
        assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
        for status in statuses:
            assert status["id"] == wamid and status["biz_opaque_callback_data"] == "outbox:42"
            assert status["recipient_id"] == "16505551234" and status["recipient_user_id"] == BSUID
            assert status["pricing"] == {"billable": False, "pricing_model": "PMP", "category": "service",
                                         "type": "free_customer_service"}
            assert status["conversation"]["origin"] == {"type": "service"} and status["conversation"]["id"]
        assert "expiration_timestamp" in statuses[0]["conversation"]
        failed = await world.standin.emit_status(wamid, "failed", errors=[payloads.error(131026)])
        assert failed.status_code == 200
        last = only_value(world.receiver.bodies()[-1])["statuses"][0]
        assert last["errors"][0]["code"] == 131026 and last["biz_opaque_callback_data"] == "outbox:42"

    run(scenario)


def test_a_status_for_a_bsuid_send_names_only_the_bsuid() -> None:
    async def scenario(world: World) -> None:
        await world.customer(wa_id=None).send_text("hello")
        body = {"messaging_product": "whatsapp", "recipient": BSUID, "type": "text", "text": {"body": "hi"}}
        wamid = (await world.send(body)).json()["messages"][0]["id"]
        world.receiver.received.clear()
        await world.standin.deliver(wamid)
        sent = only_value(world.receiver.bodies()[0])["statuses"][0]
        assert sent["status"] == "sent" and sent["recipient_user_id"] == BSUID and "recipient_id" not in sent

    run(scenario)


def test_auto_statuses_follow_each_accepted_send() -> None:
    async def scenario(world: World) -> None:
        await world.customer().send_text("hello")
        world.receiver.received.clear()
        ok = (await world.send(text())).json()["messages"][0]["id"]
        world.clock.now += 2 * 24 * 3600
        late = (await world.send(text())).json()["messages"][0]["id"]
        statuses = [only_value(body)["statuses"][0] for body in world.receiver.bodies()]
        got = sorted((s["id"], s["status"]) for s in statuses)
        assert got == sorted([(ok, "sent"), (ok, "delivered"), (late, "failed")])

    run(scenario, auto_statuses=True)


def test_marketing_templates_to_a_user_who_stopped_them_fail_with_131050() -> None:
    async def scenario(world: World) -> None:
        await world.customer().set_marketing("stop")
        wamid = (await world.send(template("follow_up"))).json()["messages"][0]["id"]
        world.receiver.received.clear()
        await world.standin.deliver(wamid)
        (failed,) = (only_value(body)["statuses"][0] for body in world.receiver.bodies())
        assert failed["status"] == "failed" and failed["errors"][0]["code"] == 131050

    run(scenario)


def test_a_template_with_the_wrong_number_of_parameters_is_refused_as_meta_does() -> None:
    async def scenario(world: World) -> None:
        wrong = template("follow_up")
        wrong["template"]["components"][0]["parameters"].pop()
        answer = await world.send(wrong)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 100
        assert "does not match the expected number of params (2)" in answer.json()["error"]["error_data"]["details"]
        assert world.standin.sent == []

    run(scenario)


def test_phone_number_and_templates_endpoints() -> None:
    async def scenario(world: World) -> None:
        number = await world.graph.get(f"/v26.0/{NUMBER.phone_number_id}",
                                       params={"fields": "display_phone_number,verified_name,quality_rating"},
                                       headers=AUTH)
        assert number.json() == {"id": NUMBER.phone_number_id, "display_phone_number": "15550783881",
                                 "verified_name": "Acme Sofas", "quality_rating": "GREEN"}
        assert (await world.graph.get(f"/{NUMBER.phone_number_id}")).status_code == 401
        templates = await world.graph.get(f"/v26.0/{NUMBER.waba_id}/message_templates", headers=AUTH)
        assert templates.status_code == 200
        names = {t["name"]: t for t in templates.json()["data"]}
        follow_up = names["follow_up"]
        assert follow_up["status"] == "APPROVED" and follow_up["category"] == "MARKETING"
        assert "{{1}}" in follow_up["components"][0]["text"] and follow_up["language"] == "en_US"
        assert (await world.graph.get("/v26.0/1/message_templates", headers=AUTH)).status_code == 400

    run(scenario)


def test_sign_is_meta_s_header_value() -> None:
    raw = payloads.encode({"a": "https://x/é"})
    assert raw == b'{"a":"https:\\/\\/x\\/\\u00e9"}'
    assert payloads.sign(raw, "s") == "sha256=" + hmac.new(b"s", raw, hashlib.sha256).hexdigest()


def test_a_utility_template_inside_an_open_window_is_charged_as_our_cost_rules_say() -> None:
    async def scenario(world: World) -> None:
        await world.customer().send_text("hello")
        wamid = (await world.send(template())).json()["messages"][0]["id"]
        world.receiver.received.clear()
        await world.standin.deliver(wamid)
        statuses = [only_value(body)["statuses"][0] for body in world.receiver.bodies()]
        assert [s["status"] for s in statuses] == ["sent", "delivered"]
        for status in statuses:
            assert status["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility",
                                         "type": "regular"}

    run(scenario)


def test_a_status_the_server_does_not_take_is_said_once_and_goes_where_the_server_is_now() -> None:
    """Found by a new user: `simulate graph` started before the server sent its statuses, for
    good and without a word, to the address it had read at start."""

    async def scenario(world: World) -> None:
        await world.customer().send_text("hello")
        wamid = (await world.send(text())).json()["messages"][0]["id"]
        world.receiver.received.clear()
        said: list[tuple[str, str, str]] = []
        world.standin.on_undelivered = lambda *told: said.append(told)
        world.standin.webhook_patience = 0.0
        world.standin.find_webhook_url = lambda: "http://ourserver.test/not-yet"  # the server not there yet: 404
        await world.standin.deliver_until_taken(wamid)
        assert said == [(wamid, "sent", "HTTP 404")] and world.receiver.received == []
        world.standin.find_webhook_url = lambda: WEBHOOK  # now it is
        await world.standin.deliver_until_taken(wamid)
        assert [only_value(body)["statuses"][0]["status"] for body in world.receiver.bodies()] == ["sent", "delivered"]

    run(scenario)


def test_the_stand_in_says_in_a_line_what_reached_it_and_how_it_will_end() -> None:
    """`simulate graph` prints these (a new user could not tell a send had arrived)."""
    template = {"messaging_product": "whatsapp", "to": "393471234567", "type": "template",
                "template": {"name": "order_ready", "language": {"code": "it"}}}  # fmt: skip
    assert describe(SentMessage("1", template, "wamid.A", 0, "393471234567", None, {})) == (
        "Sent to +393471234567: template order_ready (it) (wamid.A)")
    late = {"messaging_product": "whatsapp", "recipient": "IT.42", "type": "text", "text": {"body": "x\n" * 40}}
    line = describe(SentMessage("1", late, "wamid.B", 0, None, "IT.42", {}, payloads.error(131047)))
    assert line == f"Sent to IT.42: text '{'x ' * 30}...' (wamid.B); it will fail: 131047 Re-engagement message"
