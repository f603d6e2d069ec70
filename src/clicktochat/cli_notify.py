"""Updates from the command line (issue 10): `clicktochat notify`, `notifications list|show`
and `whatsapp templates sync|list`. The checks are the API's (notifications.py); a running
`clicktochat serve` sends what is queued. `clicktochat.cli` imports this module at its end."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from . import cli_whatsapp, customers
from .channels import normalize_phone
from .cli import common_options, json_option, print_json, print_table, printable
from .cli_whatsapp import run, whatsapp
from .notify_api import STATES, month_costs, notification_out, template_out
from .pricing import money
from .service import Service


@click.command("notify")
@common_options
@click.option("--to", required=True, help="The customer's number with its country code, e.g. +39 347 123 4567.")
@click.option("--topic", required=True, help="What they opted in to, e.g. orders.")
@click.option("--template", required=True, help="An approved template of the number (whatsapp templates list).")
@click.option("--language", help="The template's language code (default: the template's only language).")
@click.option("--param", "parameters", multiple=True, help="The body's {{1}}, {{2}}... in order (repeat the flag).")
@click.option("--key", "idempotency_key", help="An idempotency key: the same key never sends twice.")
@click.option("--business", "business_id", type=int, help="The business that sends [default: the only one].")
@json_option
def notify_command(db: str | None, base_url: str | None, to: str, topic: str, template: str, language: str | None,
                   parameters: tuple[str, ...], idempotency_key: str | None, business_id: int | None,
                   as_json: bool) -> None:  # fmt: skip
    """Queue an update to someone who opted in to its topic. Refused, saying why, without
    consent, after an opt-out, or when the template or its parameters do not fit."""

    async def work(service: Service) -> tuple[dict[str, Any], bool]:
        made, created = await service.whatsapp.notifications.queue(
            to=to, topic=topic, template=template, language=language, parameters=list(parameters),
            idempotency_key=idempotency_key, business_id=business_id, source="cli",
        )  # fmt: skip
        return notification_out(made).model_dump(mode="json"), created

    row, created = run(db, base_url, work, {"idempotency_key": "--key"})
    if as_json:
        return print_json(row)
    if not created:  # the key came before: this is that notification, and nothing new was queued
        click.echo(f"Already queued with this key: notification {row['id']} to +{row['to']} ({row['topic']}, "
                   f"{row['template']}): {row['state']}. Nothing new was sent.")  # fmt: skip
        return None
    click.echo(f"Notification {row['id']} to +{row['to']} ({row['topic']}, {row['template']}): {row['state']}.")
    if row["state"] == "queued":
        click.echo("A running `clicktochat serve` sends it.", err=True)


notify: click.Command = notify_command


notifications: click.Group = click.Group("notifications", help="Updates queued for people who opted in.")


@notifications.command("list")
@common_options
@click.option("--to", help="Only to this number.")
@click.option("--topic", help="Only this topic.")
@click.option("--state", type=click.Choice(STATES), help="Only in this state.")
@click.option("--business", "business_id", type=int, help="Only this business's.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@json_option
def notifications_list(db: str | None, base_url: str | None, to: str | None, topic: str | None, state: str | None,
                       business_id: int | None, limit: int, as_json: bool) -> None:  # fmt: skip
    """Notifications, newest first, with their state as Meta reports it."""

    async def work(service: Service) -> list[dict[str, Any]]:
        phone = None
        if to is not None:
            phone = normalize_phone(to, service.settings.default_region, "to")
        found = await service.whatsapp.chats.notifications(await service.known_business(business_id), phone, topic,
                                                           state, limit)  # fmt: skip
        return [notification_out(n).model_dump(mode="json") for n in found]

    rows = run(db, base_url, work)
    if as_json:
        return print_json(rows)
    print_table(rows, ["id", "business_id", "to", "topic", "template", "state", "created_at", "error"])


@notifications.command("show")
@common_options
@click.argument("notification_id", type=int)
@json_option
def notifications_show(db: str | None, base_url: str | None, notification_id: int, as_json: bool) -> None:
    """One notification: to whom, what, and what Meta reported of it (--json: every field)."""

    async def work(service: Service) -> dict[str, Any]:
        return notification_out(await service.whatsapp.notifications.get(notification_id)).model_dump(mode="json")

    shown = run(db, base_url, work)
    if as_json:
        return print_json(shown)
    for key, value in shown.items():  # a line a field, as `conversations show` heads its table
        if value not in (None, [], {}, ""):
            click.echo(printable(f"{key.replace('_', ' ') + ':':<17} {_plain(value)}".rstrip()))


def _plain(value: Any) -> str:
    """A field as a person reads it: a list and a mapping (Meta's pricing) as words, not Python's."""
    if isinstance(value, list):
        return ", ".join(map(_plain, value))
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_plain(item)}" for key, item in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


templates: click.Group = click.Group("templates", help="Message templates of connected numbers, as Meta lists them.")
whatsapp.add_command(templates)


@templates.command("sync")
@common_options
@click.argument("number_id", type=int, required=False)
def templates_sync(db: str | None, base_url: str | None, number_id: int | None) -> None:
    """Ask Meta for the templates of every connected number (or one). A running server does
    this every six hours too."""
    counts = run(db, base_url, lambda s: s.whatsapp.notifications.sync_templates(number_id))
    if not counts:
        raise click.ClickException("No connected number to sync (clicktochat whatsapp connect).")
    for number, count in counts.items():
        click.echo(f"Number {number}: {count} template{'' if count == 1 else 's'}.")


@templates.command("list")
@common_options
@click.argument("number_id", type=int)
@json_option
def templates_list(db: str | None, base_url: str | None, number_id: int, as_json: bool) -> None:
    """A number's templates as last synced: name, language, status, category, parameters."""

    async def work(service: Service) -> list[dict[str, Any]]:
        found = await service.whatsapp.notifications.templates(number_id)
        return [template_out(t, at).model_dump(mode="json") for t, at in found]

    rows = run(db, base_url, work)
    if as_json:
        return print_json(rows)
    if not rows:
        raise click.ClickException(f"Number {number_id} has no templates yet: clicktochat whatsapp templates sync")
    print_table([{**r, "parameters": " ".join("{{" + p + "}}" for p in r["parameters"])} for r in rows],
                ["name", "language", "status", "category", "parameters", "synced_at"])  # fmt: skip



customer: click.Group = click.Group("customer", help="One person's data: export it, or erase it.")


@customer.command("export")
@common_options
@click.argument("phone")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the JSON to this file (readable by its owner only); - or none: standard output.")
def customer_export(db: str | None, base_url: str | None, phone: str, output: str | None) -> None:
    """Everything held about a phone number (consents with their wording, conversations,
    messages, statuses, notifications), as JSON: what to hand over when someone asks. PHONE may
    be a WhatsApp user id (e.g. IT.1234567890) for someone whose number WhatsApp withheld."""
    data = run(db, base_url, lambda s: customers.export(s, phone), {"phone": "PHONE"})
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output and output != "-":  # readable by its owner only, as the database and its backups: it is one person's data
        try:
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            os.fchmod(descriptor, 0o600)  # a file that was there keeps no wider mode
            with open(descriptor, "w", encoding="utf-8") as file:
                file.write(text + "\n")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
        click.echo(f"Wrote {output}.", err=True)
    else:
        click.echo(text)


@customer.command("erase")
@common_options
@click.argument("phone")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def customer_erase(db: str | None, base_url: str | None, phone: str, yes: bool) -> None:
    """Erase everything about a phone number (or a WhatsApp user id). One opt-out entry per
    business stays, holding nothing else, so that no update, reply or confirmation is ever sent
    to it again."""
    async def check(s: Service) -> None:  # a number that is none is said so before any question (a review's)
        customers.who(s, phone)

    run(db, base_url, check, {"phone": "PHONE"})
    if not yes and not cli_whatsapp.interactive():  # a "y" piped in is no one answering (found by a new user)
        raise click.ClickException("Nothing was erased. Answer y at the prompt, or pass --yes (needed without a "
                                   "terminal to ask on: a script, a pipe, cron).")  # fmt: skip
    if not yes and not click.confirm(f"Erase everything about {phone}? This cannot be undone", err=True):
        click.echo("Cancelled: nothing was erased.", err=True)  # the person said no: no error, but no success
        sys.exit(1)
    deleted = run(db, base_url, lambda s: customers.erase(s, phone), {"phone": "PHONE"})
    total = sum(deleted.values())
    click.echo(f"Erased {total} row{'' if total == 1 else 's'}: "
               + (", ".join(f"{n} {table}" for table, n in deleted.items() if n) or "nothing was held")
               + ". An opt-out marker stays.")  # fmt: skip


@click.command("costs")
@common_options
@click.option("--month", metavar="YYYY-MM", help="The month (default: this one, UTC).")
@click.option("--business", "business_id", type=int, help="Only this business.")
@json_option
def costs_command(db: str | None, base_url: str | None, month: str | None, business_id: int | None,
                  as_json: bool) -> None:  # fmt: skip
    """The month's estimated WhatsApp costs, per business and category and per topic, from
    what was sent and Meta's pricing on its statuses, with the prices of CLICKTOCHAT_PRICE_TABLE."""
    async def work(s: Service) -> Any:
        return await month_costs(s, month, await s.known_business(business_id))

    found = run(db, base_url, work).model_dump(mode="json")
    if as_json:
        return print_json(found)
    click.echo(f"{found['month']}: {money(found['total'])} {found['currency']} (prices: {found['price_table']})")
    print_table(found["by_category"], ["business_id", "category", "messages", "charged", "cost"])
    if found["by_topic"]:
        click.echo()
        print_table(found["by_topic"], ["business_id", "topic", "messages", "charged", "cost"])


costs: click.Command = costs_command
