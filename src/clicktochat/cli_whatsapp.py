"""The WhatsApp side of the `clicktochat` command (issue 9): connected numbers, conversations,
and a local stand-in for Meta's Graph API with a customer writing in, so the whole flow runs
on one machine with no Meta account. Secrets go in and are never printed. `clicktochat.cli`
imports this module at its end to add its groups: import that one first."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
import httpx
from click.core import ParameterSource
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from . import database
from .agents import named
from .attributionstore import Attribution
from .channels import whatsapp_number
from .chat_api import ConversationDetail, conversation_out, message_out, number_out, reply_out
from .chatstore import ChatStart
from .cli import common_options, json_option, print_json, print_table, printable, run_with_service, settings_from
from .conversations import check_text
from .database import is_postgres
from .errors import Conflict, FieldError, InvalidInput, ProblemError
from .graph_standin import GraphStandIn, StandInNumber, describe
from .payloads import ERRORS, referral
from .service import Service, timestamp
from .simulate import Customer
from .storedb import Moved, moved_to
from .whatsapp import ConversationView

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
NEW_NUMBER_WAIT = 10.0  # seconds `simulate message` tries again on a 403: a server reloads connected numbers every few

SECRETS = (  # (connect's parameter, flag, environment variable, what a person calls it)
    ("access_token", "--token", "CLICKTOCHAT_WA_TOKEN", "access token"),
    ("app_secret", "--app-secret", "CLICKTOCHAT_WA_APP_SECRET", "app secret"),
    ("verify_token", "--verify-token", "CLICKTOCHAT_WA_VERIFY_TOKEN", "verify token"),
)
FIELD_FLAGS = {"access_token": "token", "business_id": "business"}  # connect's fields as our flags' names

DEMO = StandInNumber(  # `simulate graph`'s number: every value is for the local stand-in only
    phone_number_id="100000000000001", waba_id="100000000000002", display_phone_number="+1 650 555 0100",
    verified_name="Pasticceria Dolce Vita (demo)", access_token="DEMO-TOKEN-for-the-local-stand-in-only",
    app_secret="demo-app-secret-not-secret",
)
DEMO_VERIFY_TOKEN = "demo-verify-token"
NOTE_PATH = "/_simulate/customer-wrote"  # the stand-in's own route: not part of Meta's API


def run(db: str | None, base_url: str | None, work: Callable[[Service], Awaitable[T]],
        flags: Mapping[str, str] | None = None) -> T:  # fmt: skip
    """`run_with_service`, with connect's field names turned into the flags people typed."""

    async def renamed(service: Service) -> T:
        try:
            return await work(service)
        except InvalidInput as exc:
            errors = [FieldError(FIELD_FLAGS.get(e.field, e.field), e.reason) for e in exc.errors]
            raise InvalidInput.many(errors) from None

    return run_with_service(db, base_url, renamed, flags)


def interactive() -> bool:
    """Whether a person can be asked (tests replace this)."""
    return sys.stdin.isatty()


# -- whatsapp: connected numbers -------------------------------------------------------------


whatsapp: click.Group = click.Group("whatsapp", help="Business numbers on the WhatsApp Business Platform (Cloud API).")


@whatsapp.command("connect")
@common_options
@click.option("--business", "business_id", type=int, help="The business it answers for [default: the only one].")
@click.option("--phone-number-id", required=True, help="Meta's phone number id (WhatsApp Manager > API Setup).")
@click.option("--waba-id", required=True, help="The WhatsApp Business Account id.")
@click.option("--token", envvar="CLICKTOCHAT_WA_TOKEN", show_envvar=True, help="A system user's access token.")
@click.option("--app-secret", envvar="CLICKTOCHAT_WA_APP_SECRET", show_envvar=True,
              help="The Meta app's secret (App settings > Basic), to check webhook signatures.")  # fmt: skip
@click.option("--verify-token", envvar="CLICKTOCHAT_WA_VERIFY_TOKEN", show_envvar=True,
              help="The verify token you type in the app's webhook settings.")  # fmt: skip
@click.option("--secrets-stdin", is_flag=True,
              help="Read the token, app secret and verify token from three lines of standard input.")  # fmt: skip
@json_option
def connect(db: str | None, base_url: str | None, business_id: int | None, phone_number_id: str, waba_id: str,
            secrets_stdin: bool, as_json: bool, **given: str | None) -> None:  # fmt: skip
    """Connect a number: checks the values, asks the Graph API for the number, prints the
    webhook URL to give Meta. Keep secrets out of your shell history: set the
    CLICKTOCHAT_WA_* variables, pipe them with --secrets-stdin, or type them when asked."""
    values = read_secrets(click.get_current_context(), secrets_stdin,
                          {"access_token": given["token"], "app_secret": given["app_secret"],
                           "verify_token": given["verify_token"]})  # fmt: skip

    async def work(service: Service) -> dict[str, Any]:
        chosen = business_id if business_id is not None else await only_business(service)
        number = await service.whatsapp.connect(chosen, phone_number_id, waba_id, **values)
        return number_out(service, number).model_dump(mode="json")

    row = run(db, base_url, work)
    if as_json:
        return print_json(row)
    meta = urlsplit(settings_from(db=db, base_url=base_url).graph_url).hostname == "graph.facebook.com"
    click.echo(f"Connected {row['display_phone_number']} ({row['verified_name'] or 'no verified name'}) "
               f"for business {row['business_id']}.")  # fmt: skip
    for label, key in (("number id", "id"), ("phone number id", "phone_number_id"),
                       ("display number", "display_phone_number"), ("verified name", "verified_name"),
                       ("webhook URL", "webhook_url")):  # fmt: skip
        click.echo(f"{label + ':':<17} {('+' if key == 'display_phone_number' else '') + str(row[key] or '')}")
    if meta:
        click.echo("In the Meta app (WhatsApp > Configuration), set this callback URL with your verify token "
                   "and subscribe to the `messages` field.", err=True)  # fmt: skip
    else:  # a stand-in (`simulate graph`) sends its webhooks to the server by itself
        click.echo("The Graph API here is not Meta's (CLICKTOCHAT_GRAPH_URL): nothing to set up in a Meta app.",
                   err=True)  # fmt: skip


def read_secrets(ctx: click.Context, from_stdin: bool, values: dict[str, str | None]) -> dict[str, str]:
    """Flags or environment, else three lines of standard input, else a hidden prompt."""
    if from_stdin:
        typed = [flag for name, flag, _, _ in SECRETS
                 if ctx.get_parameter_source(flag[2:].replace("-", "_")) == ParameterSource.COMMANDLINE]  # fmt: skip
        if typed:
            raise click.UsageError(f"give the secrets with --secrets-stdin or with {', '.join(typed)}, not both")
        lines = sys.stdin.read().splitlines()
        values = {name: lines[i].strip() if i < len(lines) and lines[i].strip() else None
                  for i, (name, _, _, _) in enumerate(SECRETS)}  # fmt: skip
    found: dict[str, str] = {}
    for name, flag, variable, words in SECRETS:
        value = values[name]
        if value:
            found[name] = value
        elif from_stdin:
            raise click.UsageError(f"--secrets-stdin: standard input has no {words} on line "
                                   f"{[s[0] for s in SECRETS].index(name) + 1} (three lines: token, app secret, "
                                   "verify token)")  # fmt: skip
        elif interactive():
            found[name] = str(click.prompt(words[0].upper() + words[1:], hide_input=True))
        else:
            raise click.UsageError(f"missing the {words}: give {flag}, set {variable}, "
                                   "or pipe the three secrets with --secrets-stdin")  # fmt: skip
    return found


async def only_business(service: Service) -> int:
    found = await service.store.businesses()
    if not found:
        raise InvalidInput("business", "there is no business yet: add the one this number answers for first "
                                       "(clicktochat business add NAME)")  # fmt: skip
    if len(found) != 1:
        raise InvalidInput("business", f"give the business this number answers for: {named(found)} "
                                       "(clicktochat business list)")  # fmt: skip
    return found[0].id


@whatsapp.command("list")
@common_options
@json_option
def whatsapp_list(db: str | None, base_url: str | None, as_json: bool) -> None:
    """List connected numbers (never their secrets)."""

    async def work(service: Service) -> list[dict[str, Any]]:
        return [number_out(service, n).model_dump(mode="json") for n in await service.whatsapp.chats.numbers()]

    rows = run(db, base_url, work)
    if as_json:
        return print_json(rows)
    shown = [row | {"status": "connect again: token refused" if row["needs_reconnect"] else "ok"} for row in rows]
    print_table(shown, ["id", "business_id", "display_phone_number", "verified_name", "phone_number_id", "waba_id",
                        "connected_at", "status"])  # fmt: skip
    for row in rows:
        if row["needs_reconnect"]:
            click.echo(f"Number {row['id']} must be connected again (`whatsapp connect` with a new token): "
                       f"{row['token_error']} Its messages wait until then.", err=True)  # fmt: skip


@whatsapp.command("disconnect")
@common_options
@click.argument("number_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def whatsapp_disconnect(db: str | None, base_url: str | None, number_id: int, yes: bool) -> None:
    """Disconnect a number: its secrets are wiped and its queued messages cancelled;
    conversations stay. Asks first, as `customer erase` does (a cancelled message is not sent later)."""
    if not yes and not interactive():
        raise click.ClickException("Nothing was disconnected. Answer y at the prompt, or pass --yes (needed without"
                                   " a terminal to ask on: a script, a pipe, cron).")  # fmt: skip
    if not yes and not click.confirm(f"Disconnect number {number_id}, wiping its secrets and cancelling its queued"
                                     " messages?", err=True):  # fmt: skip
        click.echo("Cancelled: nothing was disconnected.", err=True)
        sys.exit(1)
    run(db, base_url, lambda s: s.whatsapp.disconnect(number_id))
    click.echo(f"Disconnected number {number_id}; its conversations stay.")


# -- conversations -----------------------------------------------------------------------------


conversations: click.Group = click.Group("conversations", help="Chats customers started with a connected number.")


def came_from(view: ConversationView) -> str:
    return said(view.conversation.start)


def said(start: ChatStart | Attribution | None) -> str:
    """Where a chat (or a message) came from, in a few words: the ad, or the link and campaign."""
    if start is None:
        return ""
    if start.referral:
        kind = start.referral.get("source_type", "ad")
        return f"{kind}: {start.referral.get('headline') or start.referral.get('source_id') or ''}".strip()
    if start.link_kind:
        where = f"{start.link_kind} link {start.link_key or ''}".strip()
        return f"{where} ({start.campaign})" if start.campaign else where
    return ""


LAST_WIDTH = 60  # `conversations list` shows this much of each last message (`show` and --json give it whole)


def summary(view: ConversationView) -> dict[str, Any]:
    c, w = view.conversation, view.window
    who = " ".join(part for part in (c.name, f"+{c.wa_id}" if c.wa_id else c.user_id) if part)
    return {"id": c.id, "business_id": c.business_id, "customer": who,
            "window": f"open until {timestamp(w.open_until)}" if w.open else "closed", "may_send": view.may_send,
            "opted_out": "yes" if view.opted_out else "no", "came_from": came_from(view),
            "last": (view.last[1] if view.last else "") or ""}  # fmt: skip


def shortened(text: str, width: int = LAST_WIDTH) -> str:
    """A message on one line of the table: its first line, cut at `width` characters with an ellipsis."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width and line == text else line[: width - 1].rstrip() + "…"


@conversations.command("list")
@common_options
@click.option("--business", "business_id", type=int, help="Only this business's conversations.")
@click.option("--open", "only_open", is_flag=True, help="Only those whose customer wrote in the last 24 hours.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def conversations_list(db: str | None, base_url: str | None, business_id: int | None, only_open: bool, limit: int,
                       as_json: bool) -> None:  # fmt: skip
    """Conversations, open ones first: until when you may write freely, and where each came from."""
    async def work(s: Service) -> list[ConversationView]:
        return await s.whatsapp.conversations(await s.known_business(business_id), None, only_open, limit)

    views = run(db, base_url, work)
    if as_json:
        return print_json([conversation_out(v).model_dump(mode="json") for v in views])
    print_table([summary(v) | {"last": shortened(summary(v)["last"])} for v in views],
                ["id", "business_id", "customer", "window", "may_send", "opted_out", "came_from", "last"])  # fmt: skip


@conversations.command("show")
@common_options
@click.argument("conversation_id", type=int)
@json_option
def conversations_show(db: str | None, base_url: str | None, conversation_id: int, as_json: bool) -> None:
    """A conversation and its messages, each outbound one with what Meta reported."""
    view, messages = run(db, base_url, lambda s: s.whatsapp.conversation(conversation_id))
    if as_json:
        detail = ConversationDetail(**conversation_out(view).model_dump(), messages=[message_out(m) for m in messages])
        return print_json(detail.model_dump(mode="json"))
    for key, value in summary(view).items():
        if key != "last":
            click.echo(printable(f"{key.replace('_', ' ') + ':':<12} {value}".rstrip()))
    latest, start = view.latest, view.conversation.start
    if latest is not None and (start is None or latest.at > start.at) and said(latest):  # another ad or link since
        click.echo(printable(f"{'latest from:':<12} {said(latest)} (a message of {timestamp(latest.at)})"))
    if view.reply_refused:
        click.echo(f"{'reply:':<12} refused: {view.reply_refused}")
    click.echo()
    rows = [{"at": timestamp(m.at), "from": "customer" if m.direction == "in" else "business",
             "reply": m.outbox_id or "", "by": m.sent_by or "", "status": m.status or "", "text": shown_text(m),
             "error": f"{m.error_code or ''}{': ' if m.error_code else ''}{m.error}" if m.error else ""}
            for m in messages]  # fmt: skip
    print_table(rows, ["at", "from", "reply", "by", "status", "error", "text"])


def shown_text(m: Any) -> str:
    """A message as the table shows it: a reaction says what it is on (its caption), not as if written."""
    if m.type == "reaction":
        return f"[reaction {m.text or 'taken back'}]" + (f" to: {m.caption}" if m.caption else "")
    return str(m.text or m.caption or f"[{m.type}]")


@conversations.command("reply")
@common_options
@click.argument("conversation_id", type=int)
@click.argument("text")
@click.option("--idempotency-key", help="Run again with the same key and the message is not queued twice.")
def conversations_reply(db: str | None, base_url: str | None, conversation_id: int, text: str,
                        idempotency_key: str | None) -> None:  # fmt: skip
    """Queue a text reply (refused when the 24-hour window is closed or the customer opted out)."""
    try:
        check_text(text)
    except ValueError as exc:  # named as typed: TEXT, not the API's field
        raise click.BadParameter(str(exc), param_hint="TEXT") from None
    row, created = run(db, base_url, lambda s: s.whatsapp.reply(conversation_id, text, idempotency_key, "cli"))
    out = reply_out(row)
    if created:
        click.echo(f"Queued reply {out.id} ({out.state}); a running server sends it (conversations show: its REPLY).")
    else:
        click.echo(f"Already queued with this idempotency key: reply {out.id} ({out.state}).")


# -- simulate: Meta's side on this machine ------------------------------------------------------


simulate: click.Group = click.Group(
    "simulate", help="Try the WhatsApp side with no Meta account: a Graph API stand-in and a customer writing in."
)


def with_customer_notes(standin: GraphStandIn) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The stand-in, plus one route of its own: `simulate message` (another process) tells it
    that the customer wrote, so it opens their 24-hour window as Meta would."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith(NOTE_PATH) or scope["method"] != "POST":
            return await standin.app(scope, receive, send)
        request = Request(scope, receive)
        note = await request.json()
        number = standin.numbers.get(str(note.get("phone_number_id")))
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if number is None or not secrets.compare_digest(token.encode(), number.access_token.encode()):
            return await JSONResponse({"error": "unknown number or token"}, 401)(scope, receive, send)
        at = note.get("at")
        when = min(float(at), standin.clock()) if isinstance(at, (int, float)) else standin.clock()
        standin.customer_wrote(number.phone_number_id, note.get("wa_id"), when)
        await JSONResponse({"ok": True})(scope, receive, send)

    return app


def recorded_base_url(db: str | None) -> str | None:
    """The origin `serve` recorded in the database, read without creating the file."""
    target = db or settings_from().db
    path = Path(target)
    if not is_postgres(target) and not path.exists():
        return None
    where = None
    try:
        opened = database.connect(target) if is_postgres(target) else sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        with closing(opened) as conn:
            where = None if is_postgres(target) else moved_to(conn)
            row = conn.execute("SELECT value FROM meta WHERE key = 'base_url'").fetchone()
    except database.failures(target):
        return None
    if where is not None:  # its webhooks would go to the server of a file nobody uses (as every command, refused)
        raise click.ClickException(str(Moved(target, where)))
    return str(row[0]) if row and row[0] else None


@simulate.command("graph")
@common_options
@click.option("--port", type=click.IntRange(1, 65535), default=9100, show_default=True, help="Port on 127.0.0.1.")
@click.option("--webhook-url", help="Where to send status webhooks [default: the base URL + /webhooks/whatsapp].")
@click.option("--fail", "failures", multiple=True, type=click.Choice(sorted(map(str, ERRORS), key=int)),
              help="Answer a send with this error of Meta's instead of taking it; once per --fail, in order "
              "(--fail 130429 --fail 2: a rate limit, then an outage; the server tries again after each; --fail 190:"
              " the token has expired, and the server holds the number's messages until it is connected again).")
def simulate_graph(db: str | None, base_url: str | None, port: int, webhook_url: str | None,
                   failures: tuple[str, ...]) -> None:  # fmt: skip
    """Run a stand-in for Meta's Graph API with a demo number: it accepts replies and sends
    `sent` and `delivered` statuses back to the server's webhook."""
    import uvicorn

    configured = webhook_url or settings_from(db=db, base_url=base_url).base_url

    def server_webhook() -> str:  # as the database says now: the server may start after the stand-in
        origin = configured or recorded_base_url(db) or "http://127.0.0.1:8000"
        return origin if webhook_url else f"{origin.rstrip('/')}/webhooks/whatsapp"

    standin = GraphStandIn([DEMO], webhook_url=server_webhook(), auto_statuses=True)
    standin.find_webhook_url = server_webhook
    for code in map(int, failures):
        standin.fail_next(1, FAILURE_STATUS.get(code, 400), code)
    standin.on_fault = lambda to, code: click.echo(f"Refused a send to +{to.lstrip('+')}: error {code}, as asked"
                                                   f" (--fail; HTTP {FAILURE_STATUS.get(code, 400)})")  # fmt: skip
    standin.on_send = lambda sent: click.echo(describe(sent))  # what reached "Meta", as it comes
    standin.on_undelivered = lambda wamid, status, why: click.echo(
        f"  the {status!r} status of {wamid} was not taken by {server_webhook()} ({why}): is the server running"
        f" there? It is sent again for {standin.webhook_patience:g} s, as Meta does for days."
    )
    graph_url = f"http://127.0.0.1:{port}/v26.0"
    where = "" if configured else " (the server's address as its database records it, read at each status)"
    click.echo(f"""Graph API stand-in on {graph_url}; statuses go to {server_webhook()}{where}

Point the server and the CLI at it (in each terminal):
  export CLICKTOCHAT_GRAPH_URL={graph_url}

A demo number (made-up values, for this stand-in only):
  phone number id  {DEMO.phone_number_id}
  WABA id          {DEMO.waba_id}
  display number   {DEMO.display_phone_number}
  access token     {DEMO.access_token}
  app secret       {DEMO.app_secret}
  verify token     {DEMO_VERIFY_TOKEN}

Connect it:
  clicktochat whatsapp connect --phone-number-id {DEMO.phone_number_id} --waba-id {DEMO.waba_id} \\
    --token {DEMO.access_token} --app-secret {DEMO.app_secret} --verify-token {DEMO_VERIFY_TOKEN}
Then a customer writes in:
  clicktochat simulate message --from +393471234567 --text "Ciao"
""")  # fmt: skip
    config = uvicorn.Config(with_customer_notes(standin), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=1)  # statuses still being sent again do not hold a Ctrl-C
    uvicorn.Server(config).run()


FAILURE_STATUS = {130429: 429, 131056: 429, 80007: 429, 1: 500, 2: 503, 190: 401}  # the rest of Meta's errors: 400


# Profile names for simulated customers, one per number (the README's +39 347 123 4567 is Giulia).
CUSTOMER_NAMES = ("Marco Bianchi", "Sofia Romano", "Luca Ferrari", "Chiara Esposito", "Matteo Ricci", "Giulia Rossi",
                  "Anna Colombo")  # fmt: skip


def customer_name(wa_id: str) -> str:
    """A simulated customer's default name: the same for a number every time, different for most."""
    return CUSTOMER_NAMES[int(wa_id) % len(CUSTOMER_NAMES)] if wa_id.isdigit() else CUSTOMER_NAMES[0]


MEDIA = ("image", "video", "audio", "document", "sticker")
CAPTIONED = ("image", "video", "document")  # the kinds Meta gives a caption

CUSTOMER_OPTIONS = [
    click.option("--from", "sender", required=True, help="The customer's phone number, e.g. +393471234567."),
    click.option("--name", help="The customer's profile name [default: the one they wrote with before, else "
                 "one of seven picked by the number: the same every time]."),
    click.option("--number", "number_id", type=int, help="Our connected number [default: the only one]."),
    click.option("--webhook-url", help="Where to POST [default: the base URL + /webhooks/whatsapp]."),
]


def customer_options(command: F) -> F:
    for option in reversed(CUSTOMER_OPTIONS):
        command = option(command)
    return common_options(command)


def write_in(db: str | None, base_url: str | None, webhook_url: str | None, number_id: int | None, sender: str,
             name: str | None, text: str, ad: dict[str, Any] | None = None, ago: float = 0.0,
             media: str | None = None) -> None:  # fmt: skip
    """Sign a message as Meta does with the number's app secret and POST it to our webhook;
    `ago`: written that many seconds ago (its timestamp says so); `media`: a photo, video... with
    `text` as its caption (Meta sends no caption with audio or a sticker)."""
    wa_id = "".join(char for char in sender if char.isdigit())
    if not 6 <= len(wa_id) <= 15:
        raise click.BadParameter("give a phone number with its country code, e.g. +393471234567", param_hint="--from")

    async def work(service: Service) -> tuple[str, str, str, httpx.Response]:
        numbers = await service.whatsapp.chats.numbers()
        keys = {k.id: k for k in service.whatsapp.keys}
        if not numbers:
            raise Conflict("No WhatsApp number is connected: connect one first (`clicktochat whatsapp connect`,"
                           " against `clicktochat simulate graph`: see the README's walkthrough).")  # fmt: skip
        if number_id is None and len(numbers) != 1:
            raise InvalidInput("number", f"give our number the customer writes to (there are {len(numbers)} "
                               "connected; see `clicktochat whatsapp list`)")  # fmt: skip
        found = next((n for n in numbers if number_id in (None, n.id)), None)
        if found is None:
            raise InvalidInput("number", f"there is no connected number {number_id}")
        key = keys[found.id]
        ours = StandInNumber(found.phone_number_id, found.waba_id, found.display_phone_number,
                             found.verified_name or "", key.access_token, key.app_secret)  # fmt: skip
        url = webhook_url or f"{service.base_url}/webhooks/whatsapp"
        known = await service.whatsapp.chats.customer_name(found.id, whatsapp_number(wa_id))  # as conversations key it
        said = name or known or customer_name(wa_id)
        deadline, written = time.monotonic() + NEW_NUMBER_WAIT, time.time() - ago
        customer = Customer(url, ours, wa_id, None, said, clock=lambda: written)
        while True:
            try:
                answer = await (customer.send_media(media, caption=text if media in CAPTIONED else None)
                                if media else customer.send_text(text, referral=ad))  # fmt: skip
            except httpx.HTTPError as exc:
                raise ProblemError(f"could not reach {url} ({exc}): is `clicktochat serve` running?") from None
            if answer.status_code != 403 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)  # a number connected a moment ago: the server reloads its keys every few seconds
        await tell_standin(service.settings.graph_url, ours, wa_id, written)
        return url, found.display_phone_number, said, answer

    url, ours, name, answer = run(db, base_url, work)
    if answer.status_code != 200:
        detail = answer.json().get("detail", answer.text) if "json" in answer.headers.get("content-type", "") else ""
        hint = f" (for {NEW_NUMBER_WAIT:g} s: is the server on this database?)" if answer.status_code == 403 else ""
        raise click.ClickException(f"{url} answered {answer.status_code}: {detail}{hint}")
    when = f" ({ago / 3600:g} h ago: the 24-hour window {'is closed' if ago >= 86400 else 'is open'})" if ago else ""
    said = (f"[{media}] {text}" if media in CAPTIONED else f"[{media}]") if media else text
    click.echo(f"{name} (+{wa_id}) wrote to +{ours}: {said}{when}")


async def tell_standin(graph_url: str, number: StandInNumber, wa_id: str, at: float) -> None:
    """Open the customer's window on a local stand-in too (Meta's real API would learn it by itself)."""
    if urlsplit(graph_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"Note: replies go to {graph_url}, which never heard from this customer and will refuse them; "
                   "with `clicktochat simulate graph`, export CLICKTOCHAT_GRAPH_URL in this terminal too.",
                   err=True)  # fmt: skip
        return
    headers = {"Authorization": f"Bearer {number.access_token}"}
    note = {"phone_number_id": number.phone_number_id, "wa_id": wa_id, "at": at}
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.post(graph_url.rstrip("/") + NOTE_PATH, headers=headers, json=note)
        heard = answer.status_code == 200
    except httpx.HTTPError:
        heard = False
    if not heard:
        click.echo(f"Note: no `clicktochat simulate graph` with this number answered at {graph_url}: "
                   "it would refuse replies to this customer (131047, window closed).", err=True)  # fmt: skip


@simulate.command("message")
@customer_options
@click.option("--text", default="Ciao! Avete ancora i cannoli?", show_default=True)
@click.option("--referral-headline", help="The chat comes from a Click-to-WhatsApp ad with this headline.")
@click.option("--ctwa-clid", help="The ad click's id Meta attaches [default with an ad: a random one].")
@click.option("--hours-ago", type=click.FloatRange(0, 30 * 24), default=0.0,
              help="Written this many hours ago (Meta delivers late for days): past 24, the window is closed; "
              "23.98 leaves about a minute, to watch it close in the dashboard.")
@click.option("--media", type=click.Choice(MEDIA), help="Send a photo, video... instead (its body is not sent, as "
              "Meta sends only its id); --text is the caption of an image, a video or a document.")
def simulate_message(db: str | None, base_url: str | None, webhook_url: str | None, number_id: int | None,
                     sender: str, name: str | None, text: str, referral_headline: str | None,
                     ctwa_clid: str | None, hours_ago: float, media: str | None) -> None:  # fmt: skip
    """A customer writes to our number: a webhook signed as Meta signs it, POSTed to the server."""
    ad = None
    if referral_headline or ctwa_clid:
        ad = referral(source_url="https://fb.me/demo-ad", source_id="120200000000000001",
                      headline=referral_headline or "Our ad", body="Tap to chat with us on WhatsApp",
                      ctwa_clid=ctwa_clid or "ARA" + secrets.token_urlsafe(24))  # fmt: skip
    write_in(db, base_url, webhook_url, number_id, sender, name, text, ad, hours_ago * 3600, media)


@simulate.command("stop")
@customer_options
def simulate_stop(db: str | None, base_url: str | None, webhook_url: str | None, number_id: int | None, sender: str,
                  name: str) -> None:  # fmt: skip
    """The customer writes STOP: they opt out, and replies to them are refused."""
    write_in(db, base_url, webhook_url, number_id, sender, name, "STOP")
