"""The CLI's `widget` group: the chat button a site embeds. Registered by `clicktochat.cli`,
whose helpers it uses (import that module first)."""


from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import api
from .cli import FLAGS, common_options, json_option, print_json, print_table, run_with_service
from .service import Service
from .widget import LANGUAGES, POSITIONS, Widget, WidgetSettings

F = TypeVar("F", bound=Callable[..., Any])


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


widget: click.Group = click.Group(
    "widget", help="Chat buttons for websites: one <script> tag shows a business's agents and opens a chat "
    "with whoever is available.",
)


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
        widgets = await service.store.widgets(await service.known_business(business_id))
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
