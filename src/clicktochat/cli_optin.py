"""The CLI's `optin` group (issue 10): consents recorded by hand (a shop's till, a phone call),
a number's history, opt-outs, and the forms the hosted page and the widget show.
`clicktochat.cli` imports this module at its end to add the group: import that one first."""

from __future__ import annotations

from typing import Any

import click

from .cli import common_options, json_option, print_json, print_table, run_with_service
from .consent import Consent
from .optin_api import consent_out, request_out
from .optins import SOURCES, Optins, parse_topic_labels
from .optinstore import OptinForm
from .service import Service

optin: click.Group = click.Group(
    "optin", help="Consent to updates on WhatsApp: record it, list a number's history, record an opt-out, forms."
)
BUSINESS = click.option("--business", "business_id", type=int, help="The business [default: the only one].")


@optin.command("add")
@common_options
@click.argument("phone")
@click.option("--topic", required=True, help="What they asked for updates about, e.g. orders.")
@click.option("--text", "wording", required=True, help="The exact sentence they agreed to.")
@click.option("--version", "version", required=True, help="The version of that sentence, e.g. 2026-12.")
@click.option("--source", type=click.Choice(SOURCES), default="cli", show_default=True, help="Where they gave it.")
@click.option("--renewed", is_flag=True, help="They gave it again after opting out (STOP, erasure): else refused.")
@BUSINESS
@json_option
def optin_add(db: str | None, base_url: str | None, phone: str, topic: str, wording: str, version: str, source: str,
              renewed: bool, business_id: int | None, as_json: bool) -> None:  # fmt: skip
    """Record that PHONE (with its country code) opted in to a topic, with the words they were shown."""
    async def work(service: Service) -> tuple[Consent, list[str]]:
        optins = Optins(service)
        entry = await optins.add(business_id, phone, topic, source, wording, version, renewed=renewed)
        return entry, await optins.notes(entry)

    entry, notes = run_with_service(db, base_url, work,
                                    {"phone": "PHONE", "consent_text": "--text", "consent_version": "--version",
                                     "renewed": "--renewed"})  # fmt: skip
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    if as_json:
        return print_json(consent_out(entry).model_copy(update={"notes": notes}).model_dump(mode="json"))
    click.echo(f"+{entry.phone} opted in to {entry.topic} (entry {entry.id})")


@optin.command("list")
@common_options
@click.argument("phone")
@BUSINESS
@json_option
def optin_list(db: str | None, base_url: str | None, phone: str, business_id: int | None, as_json: bool) -> None:
    """A number's consent history, oldest first (nothing is ever overwritten), and each topic now."""
    digits, entries, requests = run_with_service(db, base_url, lambda s: Optins(s).history(business_id, phone),
                                                 {"phone": "PHONE"})
    if as_json:
        return print_json({"phone": digits, "topics": Optins.topics_now(entries),
                           "consents": [consent_out(e).model_dump(mode="json") for e in entries],
                           "pending": [request_out(r).model_dump(mode="json") for r in requests]})  # fmt: skip
    rows = [consent_out(e).model_dump(mode="json") for e in entries]
    print_table(rows, ["at", "business_id", "topic", "state", "source", "consent_version", "consent_text"])
    for request in requests:
        click.echo(f"double opt-in {request.state}: {request.topic} (asked {request_out(request).created_at})")
    now = ", ".join(f"{topic}: {state}" for topic, state in Optins.topics_now(entries).items())
    click.echo(f"now: {now or 'no consent'}")


@optin.command("remove")
@common_options
@click.argument("phone")
@click.option("--topic", help="The topic they opt out of [default: every topic].")
@BUSINESS
def optin_remove(db: str | None, base_url: str | None, phone: str, topic: str | None, business_id: int | None) -> None:
    """Record that PHONE opted out (a new entry: the history stays)."""
    entry = run_with_service(db, base_url, lambda s: Optins(s).remove(business_id, phone, topic, "cli"),
                             {"phone": "PHONE"})
    click.echo(f"+{entry.phone} opted out of {'every topic' if entry.topic == '*' else entry.topic} (entry {entry.id})")


@optin.command("form")
@common_options
@click.argument("slug")
@click.option("--topics", required=True, help="Topic names, comma-separated, e.g. orders,offers.")
@click.option("--wording", "wordings", multiple=True, required=True, metavar="LANG=TEXT",
              help="The consent sentence in a language, e.g. en='Send me updates on WhatsApp'; repeat per language.")
@click.option("--topic-label", "topic_labels", multiple=True, metavar="LANG:TOPIC=LABEL",
              help="What a topic is called in a language, e.g. it:orders=Ordini; repeat per topic and language"
                   " [default: the topic's name].")
@click.option("--title", help="Shown above the form [default: the business's name].")
@click.option("--double-optin", is_flag=True, help="Pending until the customer taps Yes in WhatsApp.")
@click.option("--template", help="The confirmation template's name (double opt-in).")
@click.option("--template-language", help="Its language code, e.g. en_US.")
@BUSINESS
@json_option
def optin_form(db: str | None, base_url: str | None, slug: str, topics: str, wordings: tuple[str, ...],
               topic_labels: tuple[str, ...], title: str | None, double_optin: bool, template: str | None,
               template_language: str | None, business_id: int | None, as_json: bool) -> None:  # fmt: skip
    """Create or change the form at /optin/SLUG (a change of wording makes a new version)."""
    wording: dict[str, str] = {}
    for item in wordings:
        lang, sep, text = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not LANG=TEXT", param_hint="--wording")
        wording[lang.strip()] = text

    async def work(service: Any) -> tuple[OptinForm, str]:
        optins = Optins(service)
        business = await optins.business(business_id)
        existing = await service.whatsapp.chats.form(slug.strip().lower())
        values = {"slug": slug, "business_id": business.id, "topics": topics, "wording": wording, "title": title,
                  "double_optin": double_optin, "template": template, "template_language": template_language,
                  "topic_labels": parse_topic_labels(topic_labels)}
        return await optins.save_form(values, existing), service.base_url

    form, base = run_with_service(db, base_url, work, {"slug": "SLUG"})
    if as_json:
        return print_json(form.__dict__)
    click.echo(f"{base}/optin/{form.slug} (version {form.version})")


@optin.command("forms")
@common_options
@BUSINESS
@json_option
def optin_forms(db: str | None, base_url: str | None, business_id: int | None, as_json: bool) -> None:
    """The opt-in forms and their addresses."""

    async def work(service: Any) -> tuple[list[OptinForm], str]:
        return await service.whatsapp.chats.forms(business_id), service.base_url

    forms, base = run_with_service(db, base_url, work)
    if as_json:
        return print_json([{**form.__dict__, "url": f"{base}/optin/{form.slug}"} for form in forms])
    rows = [{"slug": f.slug, "business": f.business_id, "topics": ",".join(f.topics), "version": f.version,
             "double_optin": f.double_optin, "url": f"{base}/optin/{f.slug}"} for f in forms]  # fmt: skip
    print_table(rows, ["slug", "business", "topics", "version", "double_optin", "url"])
