"""The CLI's `agent channel add|remove|list` (issue 14): an agent's further channels, added to
the `agent` group by `clicktochat.cli`. An agent's first channel is the one `agent add` gave."""

from __future__ import annotations

import click

from .agents import Agent
from .channels import CHANNELS, link_notes
from .cli import common_options, json_option, print_json, print_table, run_with_service
from .service import Service


def channel_rows(agent: Agent) -> list[dict[str, str | int]]:
    return [{"position": n, "channel": name, "label": CHANNELS[name].label if name in CHANNELS else name,
             "address": address} for n, (name, address) in enumerate(agent.channels)]  # fmt: skip


def show(agent: Agent, as_json: bool) -> None:
    rows = channel_rows(agent)
    print_json(rows) if as_json else print_table(rows, ["position", "channel", "address"])


channels: click.Group = click.Group(
    "channel", help="An agent's channels: one address on each messenger (the first is the one links to the agent "
    "open by default). A business offers every channel of its agents.",
)


@channels.command("add")
@common_options
@click.argument("agent_id", type=int)
@click.option("--channel", "name", required=True, type=click.Choice(list(CHANNELS)), help="The messenger.")
@click.option("--to", "address", required=True, help="The agent's address on it (number, @username, e-mail).")
@json_option
def channel_add(db: str | None, base_url: str | None, agent_id: int, name: str, address: str, as_json: bool) -> None:
    """Add a channel to an agent, last in their order (a channel they have gets the new address)."""
    agent = run_with_service(db, base_url, lambda s: s.add_agent_channel(agent_id, name, address))
    kept = agent.address_on(name) or ""
    for note in link_notes(CHANNELS[name], kept, ""):  # what the owner should know (stderr)
        click.echo(f"Note: {note}", err=True)
    show(agent, as_json)


@channels.command("remove")
@common_options
@click.argument("agent_id", type=int)
@click.option("--channel", "name", required=True, help="The messenger to take from the agent.")
@json_option
def channel_remove(db: str | None, base_url: str | None, agent_id: int, name: str, as_json: bool) -> None:
    """Take a channel from an agent (never their only one). When nobody else at the business is
    on it, links and widget clicks asking for it answer 410, listing the channels left."""
    async def work(service: Service) -> tuple[Agent, list[str]]:
        agent = await service.remove_agent_channel(agent_id, name)
        return agent, await service.links_gone(agent.business_id, name)

    agent, gone = run_with_service(db, base_url, work)
    show(agent, as_json)
    if gone:  # found by a new user: a link made a moment before stopped working, and nothing said so
        click.echo(f"Note: nobody at the business is on {name} now, so these links answer 410 (the page lists the "
                   f"channels left): {', '.join(gone)}. Add {name} to an agent, or change the links with "
                   "`clicktochat link edit NAME --channel ...`.", err=True)  # fmt: skip


@channels.command("list")
@common_options
@click.argument("agent_id", type=int)
@json_option
def channel_list(db: str | None, base_url: str | None, agent_id: int, as_json: bool) -> None:
    """An agent's channels, the first first."""
    show(run_with_service(db, base_url, lambda s: s.get_agent(agent_id)), as_json)
