"""The CLI's `link` group and the `qr` and `poster` commands: chat links and what is printed
from them. Registered by `clicktochat.cli`, whose helpers it uses (import that module first)."""


from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from starlette.templating import Jinja2Templates

from . import api
from .channels import CHANNELS
from .cli import IsoDateTime, common_options, json_option, print_json, print_table, run_with_service
from .errors import Conflict, InvalidInput
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
from .service import MAX_EXPIRY_SECONDS, CreatedLink, Service
from .tokens import is_token

F = TypeVar("F", bound=Callable[..., Any])


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


link: click.Group = click.Group(
    "link", help="Chat links: signed (for ads, nothing stored) or short (for print, editable later)."
)


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
    click.option("--ref-code/--no-ref-code", "ref_code", default=None,
                 help="A short link's message carries a ref code that ties the chat to this click (WhatsApp Cloud "
                 "API) [default: when the number is connected]."),
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
@click.option("--business", "business_id", type=int, help="Only the links to this business or to its agents.")
@json_option
def link_list(db: str | None, base_url: str | None, limit: int, business_id: int | None, as_json: bool) -> None:
    """List short links, newest first."""

    async def work(service: Service) -> list[dict[str, Any]]:
        links = await service.store.links(limit, business_id=await service.known_business(business_id))
        clicks = await service.store.click_counts("short", [x.slug for x in links])
        return [link_row(service, x, clicks[x.slug]) | {"state": await service.link_state(x)} for x in links]

    rows = run_with_service(db, base_url, work)
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            target = f"agent {row['agent_id']}" if row["agent_id"] else f"business {row['business_id']}"
            row["to"] = shown_address(row["channel"], row["to"]) or target + (
                f" on {CHANNELS[row['channel']].label}" if row["channel"] in CHANNELS else "")
        print_table(rows, ["slug", "to", "campaign", "mode", "state", "clicks", "text"])


@link.command("show")
@common_options
@click.argument("slug_or_url")
@json_option
def link_show(db: str | None, base_url: str | None, slug_or_url: str, as_json: bool) -> None:
    """Show a short link (or a signed link's URL) with its clicks."""
    ref, is_signed = link_ref(slug_or_url)

    async def work(service: Service) -> dict[str, Any]:
        if is_signed:
            signed = service.signer.verify(ref, now=0)  # an expired link is still its owner's to look at
            created = CreatedLink(service.signed_url(ref), signed=signed, token=ref)
            clicks = await service.signed_link_clicks(ref)
            expired = signed.expires_at is not None and signed.expires_at <= time.time()
            return api.signed_out(service, created).model_dump(mode="json") | {
                "clicks": clicks, "state": "expired" if expired else "active"}  # fmt: skip
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


# -- QR codes ---------------------------------------------------------------------------------


def link_ref(slug_or_url: str) -> tuple[str, bool]:
    """(a short link's slug or a signed link's token, whether it is signed) from what was typed:
    a slug, or either link's URL (its query, such as a QR code's ?qr, left out)."""
    ref = slug_or_url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    return ref, "/c/" in slug_or_url or is_token(ref)


async def link_url(service: Service, slug_or_url: str) -> str:
    """Our URL for a short link's slug (or URL) or a signed link's URL; errors if unknown."""
    ref, signed = link_ref(slug_or_url)
    if signed:
        service.signer.verify(ref)
        ours = service.signed_url(ref)
    else:
        ours = service.short_url((await service.get_link(ref)).slug)
    given = urlsplit(slug_or_url).netloc.lower() if "://" in slug_or_url else ""
    if given and given != urlsplit(ours).netloc.lower():  # found by a new user: the host went unsaid
        click.echo(f"Note: {given} is not this server's address; this is our own link, {ours}", err=True)
    return ours


@click.command("qr")
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
def qr_command(db: str | None, base_url: str | None, slug_or_url: str, output: str, inverted: bool,
       **options: str | None) -> None:  # fmt: skip
    """Write the QR code of a link to a file. It encodes our link (clicks are counted, short
    links stay editable). Prefer short links for print: they make smaller, sturdier codes."""
    kind = Path(output).suffix.lower().lstrip(".")
    if kind not in KINDS:
        raise click.BadParameter("the file must end in .svg or .png", param_hint="--output")
    params = {k: v for k, v in options.items() if v is not None} | ({"inverted": "true"} if inverted else {})

    async def work(service: Service) -> tuple[str, int, bytes]:
        url = await link_url(service, slug_or_url)
        if "/s/" in url:
            await check_live(service, await service.get_link(url.rsplit("/", 1)[-1]), "code")
        chosen = parse_options(params)
        logo = None
        if chosen.logo == "channel":
            logo = channel_icon(await link_channel(service, url))
        elif chosen.logo == "business":
            target = await service.store.target(url.rsplit("/", 1)[-1]) if "/s/" in url else None
            logo = await service.store.logo(target.business_id) if target and target.business_id else None
            if logo is None:
                raise InvalidInput("logo", "this link has no business logo; set one with `business logo`")
        return url, version(scan_url(url), chosen.error), render(scan_url(url), chosen, kind, logo)  # scans apart

    url, size_class, image = run_with_service(db, base_url, work)
    try:  # here, not in `work`: a file that cannot be written is not the database's fault
        Path(output).write_bytes(image)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    tip = "" if "/s/" in url else "; a short link would make a smaller code"
    click.echo(f"Wrote {output}: QR version {size_class} for {scan_url(url)} (?qr: its scans are counted apart){tip}")


async def check_live(service: Service, link: ShortLink, what: str) -> None:
    """A link turned off, expired or asking for a channel its business no longer offers has no
    code or poster to print: its page is a 410 (as the server's /qr/s/ and /poster/s/ answer)."""
    state = await service.link_state(link)
    if state == "disabled":
        raise Conflict(f"the link {link.slug} is turned off, so its {what} would lead to a page saying so; "
                       f"turn it on first (clicktochat link enable {link.slug})")  # fmt: skip
    if state == "expired":
        raise Conflict(f"the link {link.slug} has expired, so its {what} would lead to a page saying so; "
                       f"give it a new expiry first (clicktochat link edit {link.slug} --no-expiry)")  # fmt: skip
    if state == "channel gone":
        channel = CHANNELS[link.channel or "whatsapp"].label
        raise Conflict(f"the link {link.slug} asks for {channel}, which nobody of its business is on any more, so "
                       f"its {what} would lead to a page saying so; add {channel} to an agent (clicktochat agent "
                       f"channel add), or make the link open another channel (clicktochat link edit {link.slug} "
                       "--channel ...)")  # fmt: skip


async def link_channel(service: Service, url: str) -> str:
    """The channel of a short or signed link's URL, for its icon ("" for several: a plain bubble)."""
    key = url.rsplit("/", 1)[-1]
    if "/s/" in url:
        target = await service.store.target(key)
        return (poster_channel(target) or "") if target else "whatsapp"
    return service.signer.verify(key).channel


@click.command("poster")
@common_options
@click.argument("slug")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The PDF to write.")
@click.option("--format", "page_format", type=click.Choice(FORMATS), default="a4", show_default=True,
              help="A4 or A5 poster, or A6 table tent.")  # fmt: skip
@click.option("--lang", type=click.Choice(list(WORDS)),
              help="Language of the call to action [default: from $LANG, else en].")  # fmt: skip
def poster_command(db: str | None, base_url: str | None, slug: str, output: str, page_format: str,
           lang: str | None) -> None:  # fmt: skip
    """Print a short link's poster to PDF with headless Chromium (the same page as
    /poster/s/SLUG on the server). SLUG may be the short link's URL."""
    if Path(output).suffix.lower() != ".pdf":  # found by a new user: a PDF was written as x.png
        raise click.BadParameter("the file must end in .pdf", param_hint="--output")
    slug, signed = link_ref(slug)
    if signed:  # found by a new user: "There is no short link 'http://...'"
        raise click.ClickException("posters are for short links (/s/NAME), and this is a signed link: make a short "
                                   "one to the same place with `clicktochat link create --short ...`")  # fmt: skip
    lang = lang or preferred_language(os.environ.get("LANG", ""))
    chromium = find_chromium()
    if chromium is None:
        raise click.ClickException(
            "printing a poster needs Chromium: install it (Debian/Ubuntu: apt-get install chromium), "
            f"or open /poster/s/{slug} on your server and print it to PDF from your browser"
        )

    async def work(service: Service) -> Poster:
        link = await service.get_link(slug)
        await check_live(service, link, "poster")
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
    kind = "A6 table tent" if page_format == "a6" else f"{page_format.upper()} poster"
    click.echo(f"Wrote {output}: {kind} for {found.url}")


qr: click.Command = qr_command
poster: click.Command = poster_command
