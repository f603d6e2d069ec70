"""The `clicktochat` command. Every command takes --db and --base-url (or their
CLICKTOCHAT_* variables), so the CLI and a running server share one database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from starlette.templating import Jinja2Templates

from . import __version__, api, database
from .accounts import check_password, check_username, create_admin, set_password
from .agents import format_hours, is_available
from .channels import CHANNELS
from .database import is_postgres, redacted, scrubbed
from .errors import InvalidInput, ProblemError
from .keys import create_api_key, rotate_signing_key
from .links import MODES, ShortLink
from .logos import channel_icon
from .posters import (
    FORMATS,
    WORDS,
    Poster,
    find_chromium,
    make_poster,
    poster_channel,
    preferred_language,
    print_pdf,
)
from .qr import KINDS, parse_options, render, scan_url, version
from .service import MAX_EXPIRY_SECONDS, CreatedLink, Service, timestamp
from .settings import Settings
from .stats import GROUPS, MAX_LIMIT, Stats, compute, parse_query
from .store import Store
from .tokens import is_token
from .widget import LANGUAGES, POSITIONS, Widget, WidgetSettings

F = TypeVar("F", bound=Callable[..., Any])
DB_HELP = ("SQLite database file, or a PostgreSQL URL (postgresql://user:password@host:5432/name) "
           "[env: CLICKTOCHAT_DB; default: clicktochat.db].")


def common_options(command: F) -> F:
    command = click.option("--base-url", help="Public origin written into links [env: CLICKTOCHAT_BASE_URL].")(command)
    command = click.option("--db", help=DB_HELP)(command)
    return command


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(command)


def settings_from(**flags: Any) -> Settings:
    try:
        return Settings.from_env(**flags)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


T = TypeVar("T")

FLAGS = {"to": "--to", "address": "--to", "agent_id": "--agent", "business_id": "--business",
         "fallback_agent_id": "--fallback-agent", "expires_at": "--expires-at", "agent_ids": "--agent",
         "allowed_domains": "--allow", "username": "USERNAME", "password": "password"}  # fmt: skip
"""API field names as the CLI's flags, so error messages name what the user typed."""


def field_flag(field: str) -> str:
    """An error's field as the flag the user typed: `topic_labels.it.orders` is the
    `--topic-label it:orders` item, `wording.it` the `--wording it` one."""
    name, _, rest = field.partition(".")
    if name == "topic_labels":
        return "--topic-label" + (f" {rest.replace('.', ':', 1)}" if rest else "")
    if name == "wording" and rest:
        return f"--wording {rest}"
    return FLAGS.get(field) or "--" + field.replace("_", "-")


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date and time, e.g. 2027-01-31T18:00+01:00", param, ctx)


def run_with_service(db: str | None, base_url: str | None, work: Callable[[Service], Awaitable[T]]) -> T:
    """Open the database, run `work`, close; input errors become a message and exit code 1."""

    async def main() -> T:
        service = await Service.open(settings_from(db=db, base_url=base_url))
        try:
            return await work(service)
        finally:
            await service.close()

    target = db or settings_from().db
    new = not is_postgres(target) and not Path(target).exists()
    failures = database.failures(target)
    try:
        result = asyncio.run(main())
    except ProblemError as exc:
        if exc.errors:
            raise click.ClickException(
                "; ".join(f"{field_flag(e.field)}: {e.reason}" for e in exc.errors)
            ) from None
        raise click.ClickException(exc.detail) from None
    except OverflowError:
        raise click.ClickException("that id is larger than any id can be") from None
    except failures as exc:
        reason = scrubbed(str(exc), target)  # libpq may quote the URL's password
        raise click.ClickException(f"cannot use the database {redacted(target)}: {reason}") from None
    if new:
        click.echo(f"Note: {target} did not exist; it is a new, empty database. A running server uses the "
                   "database of the folder it was started in (or its --db).", err=True)  # fmt: skip
    return result


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def printable(text: str) -> str:
    """Text from strangers (a customer's name or message) shown in a terminal: control characters
    (escape sequences could rewrite the screen or the window title) become visible marks."""
    return "".join("⏎" if ch == "\n" else "�" if unicodedata.category(ch) == "Cc" else ch for ch in text)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[printable("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    widths = [w if i == len(widths) - 1 else min(40, w) for i, w in enumerate(widths)]  # the last one whole
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v[:w].ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="clicktochat")
def cli() -> None:
    """Self-hosted click-to-chat: signed links, short links and QR codes that open
    WhatsApp with the right person and a pre-filled message.

    Start with `clicktochat serve --demo`, then open http://127.0.0.1:8000/.
    """


# -- serve and init ---------------------------------------------------------------------


@cli.command()
@common_options
@click.option("--host", help="Interface to listen on [env: CLICKTOCHAT_HOST; default: 127.0.0.1].")
@click.option("--port", type=int, help="Port to listen on [env: CLICKTOCHAT_PORT; default: 8000].")
@click.option("--demo", is_flag=True, default=None, help="Seed a demo shop, agents and links.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(db: str | None, base_url: str | None, host: str | None, port: int | None, demo: bool | None,
          log_level: str) -> None:  # fmt: skip
    """Run the web server (one process; on PostgreSQL, as many as you start). Stop it with Ctrl-C
    or SIGTERM: recorded clicks are written before it exits."""
    import uvicorn

    from .app import create_app
    from .server import cannot_listen, config

    settings = settings_from(db=db, base_url=base_url, host=host, port=port, demo=demo)
    taken = cannot_listen(settings.host, settings.port)
    if taken:  # said before the database is opened, in words, not uvicorn's "[Errno 98]"
        click.echo(f"Error: {taken}", err=True)
        sys.exit(3)
    if not settings.base_url:
        shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        settings = Settings.from_env(**{**settings.__dict__, "base_url": f"http://{shown}:{settings.port}"})
    try:
        asyncio.run(_record_base_url(settings))
    except database.failures(settings.db) as exc:
        reason = scrubbed(str(exc), settings.db)  # libpq may quote the URL's password
        raise click.ClickException(f"cannot use the database {redacted(settings.db)}: {reason}") from None
    click.echo(f"clicktochat {__version__} on {settings.base_url}/ (database {redacted(settings.db)})", err=True)
    server = uvicorn.Server(config(create_app(settings), settings, log_level))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn raises Ctrl-C's signal again once it has stopped; as uvicorn.run does
        pass
    if not server.started:  # the port was taken, say: uvicorn has logged why
        sys.exit(3)


async def _record_base_url(settings: Settings) -> None:
    """So that `link create` in another terminal prints links this server answers."""
    store = await Store.open(settings.db)
    try:
        await store.set_meta("base_url", settings.base_url)
    finally:
        await store.close()


@cli.command()
@common_options
def init(db: str | None, base_url: str | None) -> None:
    """Create the database and its first signing key (serve does this too)."""

    async def work(service: Service) -> str:
        if base_url:
            await service.store.set_meta("base_url", service.base_url)
        return redacted(service.settings.db)

    click.echo(f"Database ready: {run_with_service(db, base_url, work)}")


# -- keys -------------------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """Keys that sign links. The newest signs; all verify, so printed links keep working."""


@keys.command("list")
@common_options
@json_option
def keys_list(db: str | None, base_url: str | None, as_json: bool) -> None:
    """List signing keys (their dates, never the keys)."""
    configured = settings_from(db=db).signing_keys
    if configured:
        keys = "1 key" if len(configured) == 1 else f"{len(configured)} keys"
        click.echo(f"CLICKTOCHAT_SECRET_KEYS is set: links are signed with its {keys}, "
                   "not with the keys stored in the database listed here.", err=True)  # fmt: skip
    found = run_with_service(db, base_url, lambda s: s.store.signing_key_dates())
    rows = [{"id": i, "created_at": timestamp(at), "signs": i == found[-1][0]} for i, at in found]
    print_json(rows) if as_json else print_table(rows, ["id", "created_at", "signs"])


@keys.command("rotate")
@common_options
def keys_rotate(db: str | None, base_url: str | None) -> None:
    """Add a new signing key: new links are signed with it (running servers pick it up
    within a second); links signed before keep working."""
    if settings_from(db=db).signing_keys:
        raise click.ClickException("CLICKTOCHAT_SECRET_KEYS is set: add the new key at the end of that list instead.")
    found = run_with_service(db, base_url, lambda s: rotate_signing_key(s.store))
    click.echo(f"Added signing key {len(found)}: it signs new links; all {len(found)} keys verify links.")


# -- API keys -----------------------------------------------------------------------------


@cli.group()
def apikey() -> None:
    """API keys for the REST API (Authorization: Bearer KEY)."""


@apikey.command("create")
@common_options
@click.argument("name")
def apikey_create(db: str | None, base_url: str | None, name: str) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    if not name.strip() or len(name) > 100:
        raise click.BadParameter("give a name of 1 to 100 characters", param_hint="NAME")
    new = run_with_service(db, base_url, lambda s: create_api_key(s.store, name.strip()))
    click.echo(f"API key {new.id} ({name}). Copy it now; it will not be shown again:", err=True)
    click.echo(new.key)


@apikey.command("list")
@common_options
@json_option
def apikey_list(db: str | None, base_url: str | None, as_json: bool) -> None:
    """List API keys (name, prefix, dates)."""
    found = run_with_service(db, base_url, lambda s: s.store.api_keys())
    rows = [
        {"id": k.id, "name": k.name, "prefix": k.prefix + "…", "created_at": timestamp(k.created_at),
         "last_used_at": timestamp(k.last_used_at), "revoked_at": timestamp(k.revoked_at)}
        for k in found
    ]  # fmt: skip
    print_json(rows) if as_json else print_table(rows, ["id", "name", "prefix", "created_at", "revoked_at"])


@apikey.command("revoke")
@common_options
@click.argument("key_id", type=int)
def apikey_revoke(db: str | None, base_url: str | None, key_id: int) -> None:
    """Revoke a key at once."""
    if not run_with_service(db, base_url, lambda s: s.store.revoke_api_key(key_id)):
        raise click.ClickException(f"There is no active API key {key_id}.")
    click.echo(f"Revoked API key {key_id}.")


# -- dashboard admins ---------------------------------------------------------------------


@cli.group("admin")
def admin_group() -> None:
    """People who sign in to the dashboard at /admin."""


def read_password(password_stdin: bool) -> str:
    """From standard input (scripts: `echo "$PASSWORD" | clicktochat admin create ana --password-stdin`)
    or a prompt that does not echo."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    try:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True, value_proc=_checked_password))
    except click.Abort:
        if sys.stdin.isatty():  # Ctrl-C or Ctrl-D at the prompt
            raise
        ctx = click.get_current_context()  # no terminal (a script, ssh without -t, cron): the prompt read nothing
        command = f"{ctx.command_path} {ctx.params.get('username', 'NAME')} --password-stdin"
        raise click.ClickException("no terminal to ask for the password on: give it on standard input with "
                                   f"--password-stdin, e.g. printf '%s\\n' \"$PASSWORD\" | {command}") from None


def _checked_password(value: str) -> str:
    """At the prompt, before the confirmation: a short password is asked for again."""
    try:
        return check_password(value)
    except InvalidInput as exc:
        raise click.BadParameter(f"the password {exc.errors[0].reason}") from None


@admin_group.command("create")
@common_options
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def admin_create(db: str | None, base_url: str | None, username: str, password_stdin: bool) -> None:
    """Add an admin; the password is asked for (at least 10 characters) and kept as an argon2 hash."""
    check_username_flag(username)
    password = read_password(password_stdin)

    async def work(service: Service) -> str:
        made = await create_admin(service.store, username, password)
        return f"Admin {made.username} can now sign in at {service.base_url}/admin/"

    click.echo(run_with_service(db, base_url, work))


def check_username_flag(username: str) -> None:
    try:
        check_username(username)
    except InvalidInput as exc:
        raise click.BadParameter(exc.errors[0].reason, param_hint="USERNAME") from None


@admin_group.command("password")
@common_options
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def admin_password(db: str | None, base_url: str | None, username: str, password_stdin: bool) -> None:
    """Set a new password; the admin's open sessions end."""
    password = read_password(password_stdin)
    run_with_service(db, base_url, lambda s: set_password(s.store, username, password))
    click.echo(f"New password set for {username}; their sessions have ended.")


@admin_group.command("list")
@common_options
@json_option
def admin_list(db: str | None, base_url: str | None, as_json: bool) -> None:
    """List admins and when they last signed in."""
    found = run_with_service(db, base_url, lambda s: s.store.admins())
    rows = [{"id": a.id, "username": a.username, "created_at": timestamp(a.created_at),
             "last_login_at": timestamp(a.last_login_at)} for a in found]  # fmt: skip
    print_json(rows) if as_json else print_table(rows, ["id", "username", "created_at", "last_login_at"])


@admin_group.command("remove")
@common_options
@click.argument("username")
def admin_remove(db: str | None, base_url: str | None, username: str) -> None:
    """Remove an admin; their sessions end at once."""
    if not run_with_service(db, base_url, lambda s: s.store.delete_admin(username)):
        raise click.ClickException(f"There is no admin {username!r}.")
    click.echo(f"Removed admin {username}.")


# -- businesses and agents ----------------------------------------------------------------


@cli.group()
def business() -> None:
    """Businesses: who a link can lead to as a whole, rotating among its agents."""


@business.command("add")
@common_options
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone, e.g. Europe/Rome.")
@click.option("--colour", help="Its colour on posters, #rrggbb [default: WhatsApp's green].")
@json_option
def business_add(db: str | None, base_url: str | None, name: str, timezone: str, colour: str | None,
                 as_json: bool) -> None:  # fmt: skip
    """Add a business; prints its id."""
    found = run_with_service(db, base_url, lambda s: s.add_business(name, timezone, colour))
    print_json(found.__dict__) if as_json else click.echo(found.id)


@business.command("list")
@common_options
@json_option
def business_list(db: str | None, base_url: str | None, as_json: bool) -> None:
    """List businesses."""
    rows = [b.__dict__ for b in run_with_service(db, base_url, lambda s: s.store.businesses())]
    print_json(rows) if as_json else print_table(rows, ["id", "name", "timezone", "fallback_agent_id", "colour"])


@business.command("edit")
@common_options
@click.argument("business_id", type=int)
@click.option("--name")
@click.option("--timezone")
@click.option("--fallback-agent", type=int, help="Agent who gets chats when nobody is available (0: none).")
@click.option("--colour", help='Its colour on posters, #rrggbb ("" for ours).')
def business_edit(db: str | None, base_url: str | None, business_id: int, name: str | None, timezone: str | None,
                  fallback_agent: int | None, colour: str | None) -> None:  # fmt: skip
    """Change a business."""
    changes: dict[str, Any] = {k: v for k, v in {"name": name, "timezone": timezone, "colour": colour}.items()
                               if v is not None}  # fmt: skip
    if fallback_agent is not None:
        changes["fallback_agent_id"] = fallback_agent or None
    found = run_with_service(db, base_url, lambda s: s.update_business(business_id, changes))
    click.echo(f"Business {found.id}: {found.name} ({found.timezone})")


@business.command("remove")
@common_options
@click.argument("business_id", type=int)
def business_remove(db: str | None, base_url: str | None, business_id: int) -> None:
    """Remove a business and its agents (refused while a short link leads to them)."""
    run_with_service(db, base_url, lambda s: s.delete_business(business_id))
    click.echo(f"Removed business {business_id} and its agents.")


@business.command("logo")
@common_options
@click.argument("business_id", type=int)
@click.argument("image", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--remove", is_flag=True, help="Remove the logo.")
def business_logo(db: str | None, base_url: str | None, business_id: int, image: str | None, remove: bool) -> None:
    """Set a business's logo (PNG, JPEG or WebP) for its QR codes (logo=business) and posters."""
    if (image is None) == (not remove):
        raise click.UsageError("give an IMAGE file, or --remove")
    data = Path(image).read_bytes() if image else None
    run_with_service(db, base_url, lambda s: s.set_logo(business_id, data))
    click.echo(f"Removed the logo of business {business_id}." if remove else f"Set the logo of business {business_id}.")


@cli.group()
def agent() -> None:
    """Agents: the people who answer chats, with their hours."""


@agent.command("add")
@common_options
@click.option("--business", "business_id", type=int, required=True, help="Business id.")
@click.option("--name", required=True)
@click.option("--to", "address", required=True, help="The agent's address: a phone number with country code, "
              "or on other channels a username or e-mail address.")
@click.option("--channel", default="whatsapp", show_default=True, type=click.Choice(list(CHANNELS)),
              help="The agent's first messenger; add more with `agent channel add`.")
@click.option("--hours", help='e.g. "mon-fri 09:00-13:00,15:00-19:00; sat 10:00-12:00" (default: always).')
@click.option("--timezone", help="Defaults to the business's.")
@json_option
def agent_add(db: str | None, base_url: str | None, business_id: int, name: str, address: str, channel: str,
              hours: str | None, timezone: str | None, as_json: bool) -> None:  # fmt: skip
    """Add an agent to a business; prints its id. More channels: `agent channel add`."""
    found = run_with_service(
        db, base_url, lambda s: s.add_agent(business_id, name, address, channel, hours, timezone)
    )
    print_json(found.__dict__) if as_json else click.echo(found.id)


@agent.command("edit")
@common_options
@click.argument("agent_id", type=int)
@click.option("--name", help="The agent's name.")
@click.option("--to", "address", help="Phone number with country code.")
@click.option("--hours", help='e.g. "mon-fri 09:00-18:00"; "" for always available.')
@click.option("--timezone", help='IANA time zone; "" for the business\'s.')
def agent_edit(db: str | None, base_url: str | None, agent_id: int, name: str | None, address: str | None,
               hours: str | None, timezone: str | None) -> None:  # fmt: skip
    """Change an agent: links that lead to them follow at once."""
    changes = {k: v for k, v in {"name": name, "address": address, "hours": hours, "timezone": timezone}.items()
               if v is not None}  # fmt: skip
    if not changes:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    found = run_with_service(db, base_url, lambda s: s.update_agent(agent_id, changes))
    click.echo(f"Agent {found.id}: {found.name}, {found.address}, {format_hours(found.hours)} ({found.timezone})")


@agent.command("remove")
@common_options
@click.argument("agent_id", type=int)
def agent_remove(db: str | None, base_url: str | None, agent_id: int) -> None:
    """Remove an agent (refused while a short link leads to them)."""
    run_with_service(db, base_url, lambda s: s.delete_agent(agent_id))
    click.echo(f"Removed agent {agent_id}.")


@agent.command("list")
@common_options
@click.option("--business", "business_id", type=int, help="Only this business's agents.")
@json_option
def agent_list(db: str | None, base_url: str | None, business_id: int | None, as_json: bool) -> None:
    """List agents and whether each is available now."""
    found = run_with_service(db, base_url, lambda s: s.store.agents(business_id))
    now = datetime.now(UTC)
    rows = [a.__dict__ | {"available_now": is_available(a, now)} for a in found]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            row["hours"] = format_hours(row["hours"])
            row["channels"] = ", ".join(name for name, _ in row["channels"])  # addresses: `agent channel list`
        print_table(rows, ["id", "business_id", "name", "address", "channels", "timezone", "available_now", "hours"])


# -- links ----------------------------------------------------------------------------------


def expiry(expires_in: int | None, expires_at: datetime | None) -> int | None:
    if expires_in is not None and expires_at is not None:
        raise click.UsageError("give --expires-in or --expires-at, not both")
    if expires_in is not None:
        if not 0 < expires_in <= MAX_EXPIRY_SECONDS:
            reason = "must be a positive number of seconds, at most 100 years"
            raise click.BadParameter(reason, param_hint="--expires-in")
        return int(time.time()) + expires_in
    if expires_at is not None:
        return int((expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)).timestamp())
    return None


def link_row(service: Service, link: ShortLink, clicks: int | None = None) -> dict[str, Any]:
    """The same object the API returns."""
    return api.link_out(service, link, clicks).model_dump(mode="json")


@cli.group()
def link() -> None:
    """Chat links: signed (for ads, nothing stored) or short (for print, editable later)."""


DESTINATION_OPTIONS: list[Callable[[F], F]] = [
    click.option("--to", help="Address on --channel: a phone number with country code ('+39 347 123 4567'), "
                 "a username ('@dolcevita'), a Facebook Page, an e-mail address."),
    click.option("--agent", "agent_id", type=int, help="Lead to this agent."),
    click.option("--business", "business_id", type=int, help="Lead to whoever of this business is available."),
    click.option("--channel", help=f"Messenger of --to: {', '.join(CHANNELS)} [default: whatsapp]; with --agent"
                 " or --business, the channel the link opens (one the business offers) [default: the agent's first]."),
    click.option("--text", help="Pre-filled message (at most 1000 characters)."),
    click.option("--campaign", help="Label counted with each click, e.g. summer-ad."),
    click.option("--source", help="Where the link is placed, e.g. flyer."),
    click.option("--mode", type=click.Choice(MODES),
                 help="auto (default): phones go straight to the chat, desktops see a landing page."),
    click.option("--expires-in", type=int, help="Seconds until the link stops working."),
    click.option("--expires-at", type=IsoDateTime(),
                 help="When the link stops working: ISO 8601, e.g. 2027-01-31T18:00+01:00 (UTC if no zone)."),
]  # fmt: skip


def destination_options(command: F) -> F:
    for option in reversed(DESTINATION_OPTIONS):
        command = option(command)
    return command


@link.command("create")
@common_options
@destination_options
@click.option("--short", is_flag=True, help="Make a short link (stored, editable) instead of a signed one.")
@click.option("--signed", is_flag=True, help="Make a signed link (the default): nothing stored, nothing to edit.")
@click.option("--slug", help="Custom slug for a short link (implies --short).")
@click.option("--title", help="Name shown on a signed link's landing page.")
@json_option
def link_create(db: str | None, base_url: str | None, short: bool, signed: bool, slug: str | None,
                title: str | None, as_json: bool, expires_in: int | None, expires_at: datetime | None,
                **fields: Any) -> None:  # fmt: skip
    """Make a link; the URL is the last line printed, and what you should know about it (text
    the app will not pre-fill, say) goes to stderr as "Note: ...".

    Signed links (the default) carry everything in the URL: nothing is stored, nothing can
    be changed. Short links (--short) are stored: short to print and their destination
    can be edited after printing; prefer them for paper and QR codes.

    --channel picks the messenger of --to: whatsapp (default), telegram, messenger,
    instagram, signal, viber, line, sms, call or email, e.g.
    `clicktochat link create --channel telegram --to @dolcevita --text "Ciao!"`."""
    fields = {k: v for k, v in fields.items() if v is not None}
    # A slug, an agent or a business only make sense for short links: signed links carry a number.
    short = short or slug is not None or "agent_id" in fields or "business_id" in fields
    if short and signed:
        raise click.UsageError("--signed links carry a fixed --to: no --short, --slug, --agent or --business")

    async def work(service: Service) -> tuple[dict[str, Any], list[str]]:
        created = await service.create_link(
            **fields, short=short, slug=slug, title=title, expires_at=expiry(expires_in, expires_at)
        )
        if created.short is not None:
            return link_row(service, created.short, clicks=0), await service.link_notes(created.short)
        assert created.signed is not None
        return api.signed_out(service, created).model_dump(mode="json"), await service.link_notes(created.signed)

    row, notes = run_with_service(db, base_url, work)
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    print_json(row | {"notes": notes}) if as_json else click.echo(row["url"])


@link.command("list")
@common_options
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@json_option
def link_list(db: str | None, base_url: str | None, limit: int, as_json: bool) -> None:
    """List short links, newest first."""

    async def work(service: Service) -> list[dict[str, Any]]:
        links = await service.store.links(limit)
        clicks = await service.store.click_counts("short", [x.slug for x in links])
        return [link_row(service, x, clicks[x.slug]) for x in links]

    rows = run_with_service(db, base_url, work)
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            target = f"agent {row['agent_id']}" if row["agent_id"] else f"business {row['business_id']}"
            row["to"] = shown_address(row["channel"], row["to"]) or target + (
                f" on {CHANNELS[row['channel']].label}" if row["channel"] in CHANNELS else "")
            expired = row["expires_at"] is not None and row["expires_at"] <= timestamp(int(time.time()))
            row["state"] = "disabled" if row["disabled"] else "expired" if expired else "active"
        print_table(rows, ["slug", "to", "campaign", "mode", "state", "clicks", "text"])


@link.command("show")
@common_options
@click.argument("slug_or_url")
@json_option
def link_show(db: str | None, base_url: str | None, slug_or_url: str, as_json: bool) -> None:
    """Show a short link (or a signed link's URL) with its clicks."""
    ref = slug_or_url.rstrip("/").rsplit("/", 1)[-1]
    is_signed = "/c/" in slug_or_url or is_token(ref)

    async def work(service: Service) -> dict[str, Any]:
        if is_signed:
            created = CreatedLink(service.signed_url(ref), signed=service.signer.verify(ref), token=ref)
            clicks = await service.signed_link_clicks(ref)
            return api.signed_out(service, created).model_dump(mode="json") | {"clicks": clicks}
        found = await service.get_link(ref)
        return link_row(service, found, await service.link_clicks(found.slug))

    row = run_with_service(db, base_url, work)
    if as_json:
        print_json(row)
    else:
        for key, value in row.items():
            if value is not None and value != []:
                click.echo(f"{key + ':':<12} {value}")


def shown_address(channel: str | None, address: str | None) -> str | None:
    """"Telegram @dolcevita", "WhatsApp +39 347 123 4567": a link's channel and address as people read them."""
    if address is None:
        return None
    found = CHANNELS.get(channel or "whatsapp")
    return f"{found.label} {found.display(address)}" if found else address


@link.command("edit")
@common_options
@click.argument("slug")
@destination_options
@click.option("--no-expiry", is_flag=True, help="Remove the link's expiry: it works again, for good.")
def link_edit(db: str | None, base_url: str | None, slug: str, expires_in: int | None,
              expires_at: datetime | None, no_expiry: bool, **fields: Any) -> None:  # fmt: skip
    """Change a short link after printing: its destination, text, labels, mode or expiry."""
    changes = {k: v for k, v in fields.items() if v is not None}
    when = expiry(expires_in, expires_at)
    if when is not None and no_expiry:
        raise click.UsageError("give an expiry or --no-expiry, not both")
    if when is not None or no_expiry:
        changes["expires_at"] = when
    if not changes:
        raise click.UsageError("nothing to change: give at least one option (see --help)")

    async def work(service: Service) -> tuple[ShortLink, list[str]]:
        found = await service.update_link(slug, changes)
        return found, await service.link_notes(found)

    found, notes = run_with_service(db, base_url, work)
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    click.echo(f"Updated {found.slug}.")


@link.command("disable")
@common_options
@click.argument("slug")
def link_disable(db: str | None, base_url: str | None, slug: str) -> None:
    """Turn a short link off: visitors see a friendly 'no longer active' page."""
    found = run_with_service(db, base_url, lambda s: s.update_link(slug, {"disabled": True}))
    click.echo(f"Disabled {found.slug}.")


@link.command("enable")
@common_options
@click.argument("slug")
def link_enable(db: str | None, base_url: str | None, slug: str) -> None:
    """Turn a disabled short link back on."""
    found = run_with_service(db, base_url, lambda s: s.update_link(slug, {"disabled": False}))
    click.echo(f"Enabled {found.slug}.")


# -- widgets ---------------------------------------------------------------------------------


DEFAULTS = WidgetSettings()
SETTINGS = list(DEFAULTS.to_json())
"""Widget setting names, in the order of WidgetSettings."""


def setting_flag(name: str) -> str:
    """The option that sets a widget setting: --agent for agent_ids, --allow for allowed_domains."""
    return FLAGS.get(name) or "--" + name.replace("_", "-")


class SettingName(click.ParamType):  # type: ignore[type-arg]
    """A widget setting named as its option (greeting, offset-x, agent, allow) or as in the API
    (offset_x, agent_ids, allowed_domains); converts to the API name."""

    name = "setting"
    names = {setting_flag(s).removeprefix("--"): s for s in SETTINGS} | {s.replace("_", "-"): s for s in SETTINGS}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        found = self.names.get(str(value).strip().lstrip("-").lower().replace("_", "-"))
        if found is None:
            options = ", ".join(setting_flag(s).removeprefix("--") for s in SETTINGS)
            self.fail(f"{value!r} is not a widget setting; one of {options}", param, ctx)
        return found


WIDGET_OPTIONS: list[Callable[[F], F]] = [
    click.option("--greeting", help="Shown at the top of the panel [default: in the visitor's language]."),
    click.option("--message", help="Pre-filled text; {page_url} and {page_title} are filled in at the click "
                 "[default: in the visitor's language]."),
    click.option("--label", help="Text beside the button's icon, at most 40 characters [default: the icon only]."),
    click.option("--colour", help=f"Button and header colour, #rrggbb [default: {DEFAULTS.colour}]."),
    click.option("--position", type=click.Choice(POSITIONS),
                 help=f"Corner the button sits in [default: {DEFAULTS.position}]."),
    click.option("--offset-x", type=int, help=f"Pixels from the side, 0-200 [default: {DEFAULTS.offset_x}]."),
    click.option("--offset-y", type=int, help=f"Pixels from the bottom, 0-200 [default: {DEFAULTS.offset_y}]."),
    click.option("--locale", type=click.Choice(LANGUAGES),
                 help="Force a language [default: the page's, then the browser's]."),
    click.option("--agent", "agent_ids", type=int, multiple=True,
                 help="An agent the panel lists, in this order; repeat for more [default: every agent]."),
    click.option("--show-on", multiple=True,
                 help="Show only on pages whose path matches, e.g. '/shop/*'; repeatable [default: every page]."),
    click.option("--hide-on", multiple=True, help="Never show on pages whose path matches; repeatable."),
    click.option("--delay", type=int, help=f"Seconds before the button appears, 0-600 [default: {DEFAULTS.delay}]."),
    click.option("--scroll", type=int,
                 help=f"Percent of the page scrolled before it appears, 0-100 [default: {DEFAULTS.scroll}]."),
    click.option("--hide-offline/--show-offline", default=None,
                 help="Hide the button while nobody is available [default: show it]."),
    click.option("--bubble/--no-bubble", default=None, help="Pop the greeting up once per visit [default: no]."),
    click.option("--bubble-delay", type=int,
                 help=f"Seconds before the greeting pops up, 0-600 [default: {DEFAULTS.bubble_delay}]."),
    click.option("--qr/--no-qr", default=None,
                 help="Offer desktop visitors a QR code to continue on their phone [default: yes]."),
    click.option("--allow", "allowed_domains", multiple=True,
                 help="A site that may show the widget: example.com, or *.example.com with its subdomains; "
                 "repeatable [default: any site]."),
    click.option("--optin-form", help="An opt-in form's name (clicktochat optin forms): the panel offers updates "
                 "on WhatsApp with it [default: none]."),
]  # fmt: skip


def widget_options(command: F) -> F:
    for option in reversed(WIDGET_OPTIONS):
        command = option(command)
    return command


def given_settings(options: dict[str, Any]) -> dict[str, Any]:
    """Only the settings the user gave: an unused option is None, an unused repeatable one ()."""
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in options.items() if value is not None and value != ()}  # fmt: skip


def widget_row(service: Service, widget: Widget, clicks: int | None = None) -> dict[str, Any]:
    """The same object the API returns."""
    return api.widget_out(service, widget, clicks).model_dump(mode="json")


UNSET = {
    "greeting": "(in the visitor's language)", "message": "(in the visitor's language)", "label": "(the icon only)",
    "locale": "(the page's, then the browser's)", "agent_ids": "(every agent)", "show_on": "(every page)",
    "hide_on": "(none)", "allowed_domains": "(any site)", "optin_form": "(no updates offered)",
}  # fmt: skip
"""What an empty setting means, for `widget show`."""


def shown(key: str, value: Any) -> str:
    if value is None or value == []:
        return UNSET.get(key, "")
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value).replace("\n", "⏎")


@cli.group()
def widget() -> None:
    """Chat buttons for websites: one <script> tag shows a business's agents and opens a chat
    with whoever is available."""


@widget.command("create")
@common_options
@click.option("--business", "business_id", type=int, required=True, help="Business whose agents it shows.")
@click.option("--id", "widget_id", help="The id in the snippet, e.g. shop [default: random].")
@widget_options
@json_option
def widget_create(db: str | None, base_url: str | None, business_id: int, widget_id: str | None, as_json: bool,
                  **options: Any) -> None:  # fmt: skip
    """Make a widget; the snippet to paste into the site's pages is the last line printed."""
    settings = given_settings(options)

    async def work(service: Service) -> dict[str, Any]:
        return widget_row(service, await service.create_widget(business_id, widget_id, settings), clicks=0)

    row = run_with_service(db, base_url, work)
    if as_json:
        print_json(row)
    else:
        click.echo(f"Created widget {row['id']} for business {row['business_id']}. "
                   "Paste this into the pages that show it, before </body>:", err=True)  # fmt: skip
        click.echo(row["snippet"])


@widget.command("list")
@common_options
@click.option("--business", "business_id", type=int, help="Only this business's widgets.")
@json_option
def widget_list(db: str | None, base_url: str | None, business_id: int | None, as_json: bool) -> None:
    """List widgets with their clicks."""

    async def work(service: Service) -> list[dict[str, Any]]:
        widgets = await service.store.widgets(business_id)
        clicks = await service.store.click_counts("widget", [w.id for w in widgets])
        return [widget_row(service, w, clicks[w.id]) for w in widgets]

    rows = run_with_service(db, base_url, work)
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            row["sites"] = shown("allowed_domains", row["allowed_domains"])
        print_table(rows, ["id", "business_id", "clicks", "sites", "snippet"])


@widget.command("show")
@common_options
@click.argument("widget_id")
@json_option
def widget_show(db: str | None, base_url: str | None, widget_id: str, as_json: bool) -> None:
    """Show a widget: every setting, its clicks and, last, its snippet."""

    async def work(service: Service) -> dict[str, Any]:
        found = await service.get_widget(widget_id)
        return widget_row(service, found, await service.store.click_count("widget", found.id))

    row = run_with_service(db, base_url, work)
    if as_json:
        print_json(row)
    else:
        row["snippet"] = row.pop("snippet")  # last, like the URL of `link create`
        for key, value in row.items():
            click.echo(f"{key + ':':<16} {shown(key, value)}".rstrip())


@widget.command("edit")
@common_options
@click.argument("widget_id")
@widget_options
@click.option("--business", "business_id", type=int, help="Move the widget to this business.")
@click.option("--reset", "resets", type=SettingName(), multiple=True,
              help="Put a setting back to its default, e.g. --reset greeting; repeatable.")  # fmt: skip
def widget_edit(db: str | None, base_url: str | None, widget_id: str, business_id: int | None,
                resets: tuple[str, ...], **options: Any) -> None:  # fmt: skip
    """Change a widget: sites that show it follow within a minute. A repeatable option
    (--agent, --show-on, --hide-on, --allow) replaces the whole list."""
    changes = given_settings(options)
    for name in resets:
        if name in changes:
            flag = setting_flag(name)
            raise click.UsageError(f"give {flag} or --reset {flag.removeprefix('--')}, not both")
    changes |= dict.fromkeys(resets)
    if business_id is not None:
        changes["business_id"] = business_id
    if not changes:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    found = run_with_service(db, base_url, lambda s: s.update_widget(widget_id, changes))
    click.echo(f"Updated widget {found.id}.")


@widget.command("remove")
@common_options
@click.argument("widget_id")
def widget_remove(db: str | None, base_url: str | None, widget_id: str) -> None:
    """Remove a widget: sites that still have its snippet show no button."""

    async def work(service: Service) -> str:
        found = await service.get_widget(widget_id)
        await service.delete_widget(found.id)
        return found.id

    click.echo(f"Removed widget {run_with_service(db, base_url, work)}.")


# -- QR codes ---------------------------------------------------------------------------------


async def link_url(service: Service, slug_or_url: str) -> str:
    """Our URL for a short link's slug (or URL) or a signed link's URL; errors if unknown."""
    ref = slug_or_url.rstrip("/").rsplit("/", 1)[-1]
    if "/c/" in slug_or_url or is_token(ref):
        service.signer.verify(ref)
        return service.signed_url(ref)
    return service.short_url((await service.get_link(ref)).slug)


@cli.command()
@common_options
@click.argument("slug_or_url")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="File to write: .svg or .png.")  # fmt: skip
@click.option("--size", help="Width in pixels (64-4096).")
@click.option("--scale", help="Pixels per module (1-100), instead of --size.")
@click.option("--border", help="Quiet zone in modules (2-20) [default: 4].")
@click.option("--error", help="Error correction: L, M, Q or H [default: M].")
@click.option("--dark", help="Colour of the modules, e.g. #1a4d2e [default: #000000].")
@click.option("--light", help="Background colour [default: #ffffff].")
@click.option("--inverted", is_flag=True, help="Allow light modules on a dark background.")
@click.option("--logo", type=click.Choice(["channel", "business"]),
              help="The channel's icon or the business's logo in the middle (correction H).")  # fmt: skip
def qr(db: str | None, base_url: str | None, slug_or_url: str, output: str, inverted: bool,
       **options: str | None) -> None:  # fmt: skip
    """Write the QR code of a link to a file. It encodes our link (clicks are counted, short
    links stay editable). Prefer short links for print: they make smaller, sturdier codes."""
    kind = Path(output).suffix.lower().lstrip(".")
    if kind not in KINDS:
        raise click.BadParameter("the file must end in .svg or .png", param_hint="--output")
    params = {k: v for k, v in options.items() if v is not None} | ({"inverted": "true"} if inverted else {})

    async def work(service: Service) -> tuple[str, int]:
        url = await link_url(service, slug_or_url)
        chosen = parse_options(params)
        logo = None
        if chosen.logo == "channel":
            logo = channel_icon(await link_channel(service, url))
        elif chosen.logo == "business":
            target = await service.store.target(url.rsplit("/", 1)[-1]) if "/s/" in url else None
            logo = await service.store.logo(target.business_id) if target and target.business_id else None
            if logo is None:
                raise InvalidInput("logo", "this link has no business logo; set one with `business logo`")
        Path(output).write_bytes(render(scan_url(url), chosen, kind, logo))  # scans counted apart from taps
        return url, version(scan_url(url), chosen.error)

    url, size_class = run_with_service(db, base_url, work)
    tip = "" if "/s/" in url else "; a short link would make a smaller code"
    click.echo(f"Wrote {output}: QR version {size_class} for {url}{tip}")


async def link_channel(service: Service, url: str) -> str:
    """The channel of a short or signed link's URL, for its icon ("" for several: a plain bubble)."""
    key = url.rsplit("/", 1)[-1]
    if "/s/" in url:
        target = await service.store.target(key)
        return (poster_channel(target) or "") if target else "whatsapp"
    return service.signer.verify(key).channel


@cli.command()
@common_options
@click.argument("slug")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The PDF to write.")
@click.option("--format", "page_format", type=click.Choice(FORMATS), default="a4", show_default=True,
              help="A4 or A5 poster, or A6 table tent.")  # fmt: skip
@click.option("--lang", type=click.Choice(list(WORDS)),
              help="Language of the call to action [default: from $LANG, else en].")  # fmt: skip
def poster(db: str | None, base_url: str | None, slug: str, output: str, page_format: str,
           lang: str | None) -> None:  # fmt: skip
    """Print a short link's poster to PDF with headless Chromium (the same page as
    /poster/s/SLUG on the server)."""
    lang = lang or preferred_language(os.environ.get("LANG", ""))
    chromium = find_chromium()
    if chromium is None:
        raise click.ClickException(
            "printing a poster needs Chromium: install it (Debian/Ubuntu: apt-get install chromium), "
            f"or open /poster/s/{slug} on your server and print it to PDF from your browser"
        )

    async def work(service: Service) -> Poster:
        link = await service.get_link(slug)
        target = await service.store.target(link.slug)
        assert target is not None  # get_link found it
        return await make_poster(service, target, page_format, lang)

    found = run_with_service(db, base_url, work)
    from .app import asset_dir

    templates = asset_dir("templates")
    env = Jinja2Templates(directory=str(templates)).env
    try:
        print_pdf(env, found, (templates / "static" / "poster.css").read_text(), Path(output), chromium)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {output}: {page_format.upper()} poster for {found.url}")


# -- stats --------------------------------------------------------------------------------


@cli.command("stats")
@common_options
@click.option("--from", "first_day", metavar="YYYY-MM-DD", help="First day (default: 30 days ending --to).")
@click.option("--to", "last_day", metavar="YYYY-MM-DD", help="Last day, included (default: today).")
@click.option("--by", default="day", show_default=True, type=click.Choice(GROUPS), help="How to group the clicks.")
@click.option("--business", type=int, help="Only this business's clicks; days are in its time zone.")
@click.option("--link", help="Only this short link (its slug).")
@click.option("--campaign", help="Only links of this campaign.")
@click.option("--agent", type=int, help="Only clicks that reached this agent (its id).")
@click.option("--widget", help="Only clicks on this widget (its id).")
@click.option("--channel", help="Only this messenger.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True,
              help="Rows at most, unless grouping by time.")  # fmt: skip
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def stats_command(db: str | None, base_url: str | None, as_json: bool, as_csv: bool, **options: Any) -> None:
    """Clicks, unique visitors and robots (counted apart), from the daily totals.

    \b
    clicktochat stats                                 last 30 days, a row a day
    clicktochat stats --by referrer --from 2026-11-01
    clicktochat stats --link vetrina --by week --csv > vetrina.csv
    """
    names = {"first_day": "from", "last_day": "to"}
    params = {names.get(k, k): str(v) for k, v in options.items() if v is not None}

    async def work(service: Service) -> Stats:
        return await compute(service.store, parse_query(params))

    found = run_with_service(db, base_url, work)
    if as_json:
        return print_json(found.as_dict())
    if as_csv:
        return click.echo(found.as_csv(), nl=False)
    by = found.query.by
    click.echo(f"{found.first_day} to {found.last_day} ({found.timezone}), by {by}", err=True)
    rows: list[Any] = [*found.rows, found.totals]
    print_table([{by: getattr(row, "label", "TOTAL"), "clicks": row.clicks, "uniques": row.uniques, "bots": row.bots,
                  "chats": row.conversations, "conversion": "" if row.conversion is None else f"{row.conversion:.1%}"}
                 for row in rows], [by, "clicks", "uniques", "bots", "chats", "conversion"])  # fmt: skip


def main() -> None:
    cli(prog_name="clicktochat")



from . import cli_whatsapp  # noqa: E402  (it uses the helpers above: import clicktochat.cli, not it, first)

cli.add_command(cli_whatsapp.whatsapp)
cli.add_command(cli_whatsapp.conversations)
cli.add_command(cli_whatsapp.simulate)

from . import cli_notify  # noqa: E402

cli.add_command(cli_notify.notify)
cli.add_command(cli_notify.notifications)
cli.add_command(cli_notify.customer)
cli.add_command(cli_notify.costs)

# -- opt-ins (issue 10) --
from . import cli_optin  # noqa: E402  (it uses the helpers above, as cli_whatsapp does)

cli.add_command(cli_optin.optin)

# -- backups (issue 12) --
from . import cli_backup  # noqa: E402

cli.add_command(cli_backup.backup_command)
cli.add_command(cli_backup.restore_command)
cli.add_command(cli_backup.db_group)

# -- an agent's channels (issue 14) --
from . import cli_channels  # noqa: E402  (it uses the helpers above, as cli_whatsapp does)

agent.add_command(cli_channels.channels)
