"""The CLI's `business` and `agent` groups: who a link leads to. Registered by `clicktochat.cli`,
whose helpers it uses (import that module first)."""


from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .agents import format_hours, is_available
from .channels import CHANNELS
from .cli import common_options, json_option, print_json, print_table, run_with_service

F = TypeVar("F", bound=Callable[..., Any])


business: click.Group = click.Group(
    "business", help="Businesses: who a link can lead to as a whole, rotating among its agents."
)


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
    run_with_service(db, base_url, lambda s: s.set_logo(business_id, data), {"logo": "IMAGE"})
    click.echo(f"Removed the logo of business {business_id}." if remove else f"Set the logo of business {business_id}.")


agent: click.Group = click.Group("agent", help="Agents: the people who answer chats, with their hours.")


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
