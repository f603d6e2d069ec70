"""The `clicktochat` command. Every command takes --db and --base-url (or their
CLICKTOCHAT_* variables), so the CLI and a running server share one database."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import sys
import unicodedata
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__, database
from .accounts import ROLES, check_password, check_username, create_admin, set_password, set_role
from .clickstore import LINK_GROUPS
from .database import is_postgres, redacted, scrubbed
from .errors import InvalidInput, ProblemError
from .keys import create_api_key, rotate_signing_key
from .service import Service, timestamp
from .settings import Settings
from .stats import GROUPS, MAX_LIMIT, Stats, compute, parse_query
from .store import Admin, Store
from .storedb import OlderSchema

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
         "allowed_domains": "--allow", "username": "USERNAME", "password": "password",
         "parameters": "--param"}  # fmt: skip
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


def named_as_flags(reason: str) -> str:
    """An error's reason with the API fields it names in brackets, `(agent_id)`, as the flags
    typed here, `(--agent)`."""
    return re.sub(r"\((\w+)\)", lambda m: f"({FLAGS[m[1]]})" if m[1] in FLAGS else m[0], reason)


class IsoDateTime(click.ParamType):  # type: ignore[type-arg]
    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date and time, e.g. 2027-01-31T18:00+01:00", param, ctx)


def run_with_service(db: str | None, base_url: str | None, work: Callable[[Service], Awaitable[T]],
                     flags: Mapping[str, str] | None = None) -> T:  # fmt: skip
    """Open the database, run `work`, close; input errors become a message and exit code 1,
    each naming the flag typed (`flags`: a command's own names, such as its arguments)."""

    async def main() -> T:
        service = await Service.open(settings_from(db=db, base_url=base_url), upgrade=False)
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
                "; ".join(f"{(flags or {}).get(e.field) or field_flag(e.field)}: {named_as_flags(e.reason)}"
                          for e in exc.errors)  # fmt: skip
            ) from None
        raise click.ClickException(exc.detail) from None
    except OverflowError:
        raise click.ClickException("that id is larger than any id can be") from None
    except OlderSchema as exc:  # never behind a server of the older release that may still run on it
        raise click.ClickException(
            f"{redacted(target)} is at schema {exc.found}, made by an older clicktochat; this one needs "
            f"{exc.latest}. Stop the older server, then start this one (clicktochat serve) or run "
            "`clicktochat db upgrade`: either brings it up to date, after which an older clicktochat cannot use it."
        ) from None
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
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on [env: CLICKTOCHAT_PORT; default: 8000].")
@click.option("--demo", is_flag=True, default=None, help="Seed a demo shop, agents and links.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(db: str | None, base_url: str | None, host: str | None, port: int | None, demo: bool | None,
          log_level: str) -> None:  # fmt: skip
    """Run the web server (one process; on PostgreSQL, as many as you start). Stop it with Ctrl-C
    or SIGTERM: recorded clicks are written before it exits."""
    import uvicorn

    from .app import create_app
    from .server import SWITCH_INTERVAL, cannot_listen, config

    settings = settings_from(db=db, base_url=base_url, host=host, port=port, demo=demo)
    taken = cannot_listen(settings.host, settings.port)
    if taken:  # said before the database is opened, in words, not uvicorn's "[Errno 98]"
        click.echo(f"Error: {taken}", err=True)
        sys.exit(3)
    if not settings.base_url:
        shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        settings = Settings.from_env(**{**settings.__dict__, "base_url": f"http://{shown}:{settings.port}"})
        if shown != settings.host:  # found by a new user: a phone on the network got 400 for this host's address
            click.echo(f"Note: listening on every interface, but links and QR codes name {settings.base_url}, and "
                       "requests naming another host get 400. For phones on your network, start it with "
                       f"--base-url http://<this machine's address>:{settings.port}.", err=True)  # fmt: skip
    try:
        asyncio.run(_record_base_url(settings))
    except database.failures(settings.db) as exc:
        reason = scrubbed(str(exc), settings.db)  # libpq may quote the URL's password
        raise click.ClickException(f"cannot use the database {redacted(settings.db)}: {reason}") from None
    click.echo(f"clicktochat {__version__} on {settings.base_url}/ (database {redacted(settings.db)})", err=True)
    server = uvicorn.Server(config(create_app(settings), settings, log_level))
    sys.setswitchinterval(SWITCH_INTERVAL)
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
        with warnings.catch_warnings():  # no terminal: Python's "Can not control echo" is noise before our error
            warnings.simplefilter("ignore", getpass.GetPassWarning)
            return str(click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                    value_proc=_checked_password))  # fmt: skip
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


role_option = click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True,
                           help="owner: everything; agent: the conversations only, to answer customers.")
business_option = click.option("--business", "business_id", type=int,
                               help="An agent's one business: they see its conversations only.")


def role_words(role: str, business_id: int | None) -> str:
    if role == "owner":
        return "an owner (everything)"
    return f"an agent (conversations of {'every business' if business_id is None else f'business {business_id}'})"


@admin_group.command("create")
@common_options
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@role_option
@business_option
def admin_create(db: str | None, base_url: str | None, username: str, password_stdin: bool, role: str,
                 business_id: int | None) -> None:  # fmt: skip
    """Add someone who signs in to the dashboard; the password is asked for (at least 10
    characters) and kept as an argon2 hash. Owners may do everything; agents answer conversations."""
    check_username_flag(username)
    password = read_password(password_stdin)

    async def work(service: Service) -> str:
        made = await create_admin(service.store, username, password, role, business_id)
        who = f"Admin {made.username}" if made.owner else f"{made.username}, {role_words(made.role, made.business_id)},"
        return f"{who} can now sign in at {service.base_url}/admin/"

    click.echo(run_with_service(db, base_url, work))


@admin_group.command("role")
@common_options
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@business_option
@click.option("--every-business", is_flag=True, help="An agent of every business; without it, an agent kept to one "
              "business stays so.")  # fmt: skip
def admin_role(db: str | None, base_url: str | None, username: str, role: str, business_id: int | None,
               every_business: bool) -> None:  # fmt: skip
    """Make someone an owner or an agent (of one business with --business); it holds from their next page."""
    if every_business and (business_id is not None or role != "agent"):
        raise click.UsageError("--every-business is for an agent, without --business")

    async def work(service: Service) -> Admin:
        keep = business_id
        if role == "agent" and keep is None and not every_business:  # said again, it never widens what they see
            now = next((a for a in await service.store.admins() if a.username.lower() == username.lower()), None)
            keep = now.business_id if now is not None and now.role == "agent" else None
        return await set_role(service.store, username, role, keep)

    found = run_with_service(db, base_url, work)
    click.echo(f"{found.username} is now {role_words(found.role, found.business_id)}.")


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
    rows = [{"id": a.id, "username": a.username, "role": a.role, "business_id": a.business_id,
             "created_at": timestamp(a.created_at), "last_login_at": timestamp(a.last_login_at)}
            for a in found]  # fmt: skip
    columns = ["id", "username", "role", "business_id", "created_at", "last_login_at"]
    print_json(rows) if as_json else print_table(rows, columns)


@admin_group.command("remove")
@common_options
@click.argument("username")
def admin_remove(db: str | None, base_url: str | None, username: str) -> None:
    """Remove an admin; their sessions end at once."""
    if not run_with_service(db, base_url, lambda s: s.store.delete_admin(username)):
        raise click.ClickException(f"There is no admin {username!r}.")
    click.echo(f"Removed admin {username}.")


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
    chats = ["chats", "conversion"] if found.chats else []  # only where a WhatsApp number tells them
    print_table([{by: getattr(row, "label", "TOTAL"), "clicks": row.clicks, "uniques": row.uniques, "bots": row.bots,
                  "chats": row.conversations, "conversion": "" if row.conversion is None else f"{row.conversion:.1%}"}
                 for row in rows], [by, "clicks", "uniques", "bots", *chats])  # fmt: skip
    if found.truncated:
        click.echo(f"Only the {len(found.rows)} largest {by} rows are shown (--limit); the TOTAL counts them all.",
                   err=True)  # fmt: skip
    elsewhere = found.totals.conversations - found.totals.conversations_from_clicks
    if chats and by in LINK_GROUPS and elsewhere:
        click.echo(f"{elsewhere} of the TOTAL's chats began with no click (an ad, or a customer writing first): "
                   f"no {by}'s row counts them.", err=True)  # fmt: skip


def main() -> None:
    cli(prog_name="clicktochat")



from . import cli_business, cli_links, cli_widget  # noqa: E402  (they use the helpers above)

cli.add_command(cli_business.business)
cli.add_command(cli_business.agent)
cli.add_command(cli_links.link)
cli.add_command(cli_links.qr)
cli.add_command(cli_links.poster)
cli.add_command(cli_widget.widget)

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

cli_business.agent.add_command(cli_channels.channels)


def first_sentence(text: str) -> str:
    """Up to the first word that ends a sentence, as click takes it, but never cut short."""
    words = []
    for word in text.split("\n\n")[0].split():
        words.append(word)
        if word.endswith("."):
            break
    return " ".join(words)


def whole_summaries(group: click.Group) -> None:
    """`--help` lists each command with its whole first sentence: click would cut it at the
    terminal's width with "...", mid-phrase, on every command worth a sentence."""
    for command in group.commands.values():
        if command.short_help is None and command.help:
            command.short_help = first_sentence(command.help)
        if isinstance(command, click.Group):
            whole_summaries(command)


whole_summaries(cli)
