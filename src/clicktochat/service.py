"""What the REST API and the CLI can do, validated once here so both refuse the same
input with the same words. Everything a running server shares lives on `Service`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from .agents import Rotation, SharedRotation
from .channels import CHANNELS, MAX_TEXT_LENGTH, check_text, deep_link, get_channel, link_notes
from .errors import KEY_USED, Conflict, FieldError, InvalidInput, Mistakes, NotFound
from .keys import signing_keys
from .links import (
    KIND_FIELDS,
    LinkCache,
    NotOffered,
    ShortLink,
    Target,
    check_label,
    check_mode,
    check_slug,
    check_title,
    kind_mistakes,
    random_slug,
    resolve,
)
from .notifications import IDEMPOTENCY_KEY
from .service_agents import TeamService
from .service_widgets import WidgetService
from .settings import Settings
from .sharedstore import SharedStore, Unreachable
from .store import Store
from .tokens import LinkSigner, SignedLink, token_key
from .versions import as_stored
from .whatsapp import WhatsApp
from .widget import (
    WidgetTarget,
)

_D = TypeVar("_D")
MAX_EXPIRY_SECONDS = 100 * 365 * 24 * 3600


@dataclass(frozen=True)
class CreatedLink:
    url: str
    short: ShortLink | None = None
    signed: SignedLink | None = None
    token: str | None = None
    again: bool = False  # made before, with the same idempotency key and content


class Service(TeamService, WidgetService):
    def __init__(
        self, store: Store, settings: Settings, signer: LinkSigner, base_url: str, whatsapp: WhatsApp,
        shared: SharedStore | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.whatsapp = whatsapp
        self.settings = settings
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self.cache: LinkCache[Target] = LinkCache(store.target, settings.cache_size)
        self.widget_cache: LinkCache[WidgetTarget] = LinkCache(store.widget_target, settings.cache_size)
        # PostgreSQL: what several instances share (the rotation's turns, the sign-in throttle, jobs)
        self.shared = shared
        self.rotation = SharedRotation() if shared is not None else Rotation()

    def forget(self) -> None:
        """Drop what is cached of links and widgets, after any change to what they lead to."""
        self.cache.clear()
        self.widget_cache.clear()

    @classmethod
    async def open(cls, settings: Settings, clock: Callable[[], float] = time.time, upgrade: bool = True) -> Service:
        """`clock`: what the WhatsApp side takes as now (the window, backoff); tests move it.
        `upgrade=False` (commands): storedb.OlderSchema rather than migrating an older database."""
        store = await Store.open(settings.db, upgrade)
        try:
            if upgrade:  # a server runs on it: a database now, whatever it was (backup.py's mark)
                await store.delete_meta("backup")
            signer = LinkSigner(await signing_keys(store, settings.signing_keys))
            base_url = settings.base_url or await store.get_meta("base_url") or "http://127.0.0.1:8000"
            whatsapp = await WhatsApp.open(store, settings.db, settings.graph_url, clock,
                                           settings.webhook_retention_days)  # fmt: skip
            whatsapp.notifications.default_region = settings.default_region
            whatsapp.sender.pace.per_second = settings.messages_per_second
            whatsapp.sender.lease = settings.outbox_lease
        except BaseException:
            await store.close()
            raise
        shared = SharedStore(settings.db) if store.postgres else None
        whatsapp.jobs = shared
        return cls(store, settings, signer, base_url, whatsapp, shared)

    async def close(self) -> None:
        try:
            await self.whatsapp.close()
        finally:
            try:
                if self.shared is not None:
                    await self.shared.close()
            finally:
                await self.store.close()

    async def in_turn(self, pick: Callable[[Rotation], _D], advance: bool) -> _D:
        """`pick(rotation)` (links.resolve or links.choose), with the turn of the rotation taken in
        the database when it chose among several agents: one upsert, only for such clicks. While
        the database is away (`Unreachable`), the instance's own turn stands."""
        rotation = self.rotation
        if self.shared is None or not advance or not isinstance(rotation, SharedRotation):
            return pick(rotation)
        rotation.asked = None
        destination = pick(rotation)
        asked, rotation.asked = rotation.asked, None
        if asked is None:
            return destination
        try:
            agent_id = await self.shared.take_turn(*asked)
        except Unreachable:
            return destination
        if getattr(destination, "agent_id", agent_id) != agent_id:
            destination = pick(rotation.given(asked[0], agent_id))
        return destination

    async def reload_signing_keys(self) -> None:
        """After `keys rotate` in another process; reads only."""
        keys = self.settings.signing_keys or await self.store.signing_keys()
        if keys and keys != self.signer.keys:
            self.signer = LinkSigner(keys)

    # -- links ------------------------------------------------------------------------

    def short_url(self, slug: str) -> str:
        return f"{self.base_url}/s/{slug}"

    def signed_url(self, token: str) -> str:
        return f"{self.base_url}/c/{token}"

    async def create_link(
        self,
        *,
        to: str | None = None,
        channel: str | None = None,
        text: str = "",
        agent_id: int | None = None,
        business_id: int | None = None,
        campaign: str | None = None,
        source: str | None = None,
        mode: str = "auto",
        short: bool = True,
        slug: str | None = None,
        expires_at: int | None = None,
        title: str | None = None,
        ref_code: bool | None = None,
        request: tuple[str, str] | None = None,
    ) -> CreatedLink:
        """`request`: the caller's idempotency key and a hash of what it asked. A short link made
        with the key before is returned again (`CreatedLink.again`), not made twice; the key with
        other content is a 409. Signed links are not stored: the same content signs the same link."""
        if request is not None:
            if not IDEMPOTENCY_KEY.fullmatch(request[0]):
                raise InvalidInput("idempotency_key", "must be 1 to 200 letters, digits or . _ : -")
            if (made := await self._made_before(request)) is not None:  # a signed link's request too: a 409
                return made
        mistakes = Mistakes()  # every mistake at once: a form or a client fixes them in one go
        destination = await mistakes.wait(self._destination(to, channel, agent_id, business_id), None)
        # The text's limits are its channel's: the one asked for, or WhatsApp's, when the
        # destination is refused (an unknown agent's text is still checked).
        text_channel = destination["channel"] if destination is not None else channel
        text = mistakes.check(check_text, text, CHANNELS.get(text_channel or "whatsapp", CHANNELS["whatsapp"]),
                              otherwise=text)  # fmt: skip
        labels = {"campaign": mistakes.check(check_label, campaign, "campaign", otherwise=None),
                  "source": mistakes.check(check_label, source, "source", otherwise=None)}  # fmt: skip
        mode = mistakes.check(check_mode, mode, otherwise=mode)
        expires_at = mistakes.check(check_expiry, expires_at, otherwise=None)
        if short:
            slug = slug if slug is None else mistakes.check(check_slug, slug, otherwise=slug)
        else:
            title = mistakes.check(check_title, title, otherwise=None)
        kind_mistakes(mistakes, short, slug=slug, title=title, ref_code=ref_code,  # a refused destination is named
                      **{k: destination[k] for k in ("agent_id", "business_id")} if destination else {})  # fmt: skip
        if ref_code and destination is not None and destination["channel"] not in (None, "whatsapp"):
            mistakes.refuse("ref_code", f"is for links to WhatsApp: a {destination['channel']} link carries none")
        mistakes.raise_any()
        assert destination is not None
        if not short:
            signed = SignedLink(channel=destination["channel"], address=destination["address"], text=text, mode=mode,
                                expires_at=expires_at, title=title, **labels)  # fmt: skip
            token = self.signer.sign(signed)
            return CreatedLink(self.signed_url(token), signed=signed, token=token)
        link = ShortLink(
            slug="", text=text, mode=mode, expires_at=expires_at, campaign=labels["campaign"], source=labels["source"],
            ref_code=ref_code, **destination,
        )
        try:
            if slug is not None:
                link = await self._insert(replace(link, slug=slug), request)
            else:
                for _ in range(10):  # 2.7e10 slugs: a collision is rare, ten in a row means a full table
                    try:
                        link = await self._insert(replace(link, slug=random_slug()), request, retry=True)
                        break
                    except _SlugTaken:
                        continue
                else:
                    raise Conflict("Could not find a free random slug; choose one with slug.")
        except _KeyTaken:  # the same request, at the same time: the one that was first
            assert request is not None
            made = await self._made_before(request)
            assert made is not None
            return made
        self.forget()
        return CreatedLink(self.short_url(link.slug), short=link)

    def link_mistakes(self, raw: dict[str, Any]) -> list[FieldError]:
        """create_link's checks that need no database, on the text fields of a raw body: for the
        API, when its model refused other fields, so that one answer names every mistake."""
        mistakes, given = Mistakes(), {name: value for name, value in raw.items() if isinstance(value, str)}
        channel = CHANNELS.get(given.get("channel", "whatsapp"))  # an unknown one is the model's to name
        if channel is not None and "to" in given:
            mistakes.check(channel.normalize, given["to"], self.settings.default_region, "to", otherwise=None)
        if channel is not None and "text" in given:
            mistakes.check(check_text, given["text"], channel, otherwise=None)
        for name, check in (("campaign", check_label), ("source", check_label), ("slug", check_slug),
                            ("title", check_title)):  # fmt: skip
            if name in given:
                mistakes.check(check, given[name], name, otherwise=None)
        short = raw.get("short")  # absent: left out, or refused by the model (its mistake is named)
        if isinstance(short, bool):
            given_kind = {name: raw.get(name) for name in KIND_FIELDS}
            if sum(raw.get(name) is not None for name in ("to", "agent_id", "business_id")) != 1:
                del given_kind["agent_id"], given_kind["business_id"]  # no one destination: the service names it
            kind_mistakes(mistakes, short, **given_kind)
        return mistakes.errors

    async def _made_before(self, request: tuple[str, str]) -> CreatedLink | None:
        found = await self.store.link_by_request(request[0])
        if found is None:
            return None
        link, asked = found
        if asked != request[1]:
            raise Conflict("This idempotency key was used for another link.", [KEY_USED])
        return CreatedLink(self.short_url(link.slug), short=link, again=True)

    async def _insert(self, link: ShortLink, request: tuple[str, str] | None, retry: bool = False) -> ShortLink:
        try:
            return await self.store.add_link(link, request)
        except sqlite3.IntegrityError as exc:
            # The same request at the same time: PostgreSQL may name the slug before the key.
            if request is not None and await self.store.link_by_request(request[0]) is not None:
                raise _KeyTaken from None
            if "links.slug" not in str(exc) and "(slug)=" not in str(exc):  # SQLite's words, PostgreSQL's
                raise
            if retry:
                raise _SlugTaken from None
            raise InvalidInput("slug", f"{link.slug!r} is already taken; choose another slug") from None

    async def _destination(
        self, to: str | None, channel: str | None, agent_id: int | None, business_id: int | None
    ) -> dict[str, Any]:
        """Exactly one of a number, an agent or a business. `channel`: the messenger of the
        number (default WhatsApp), or the one a link to an agent or business routes to (None:
        the agent's first; for a business, whoever is in turn on their first), which the
        business must offer."""
        found = get_channel(channel or "whatsapp")
        given = [name for name, value in (("to", to), ("agent_id", agent_id), ("business_id", business_id))
                 if value is not None]  # fmt: skip
        if len(given) != 1:
            field = given[1] if len(given) > 1 else "to"
            raise InvalidInput(field, "give exactly one destination: a number (to), an agent (agent_id) or a business"
                                      " (business_id)")  # fmt: skip
        empty: dict[str, Any] = {"channel": None, "address": None, "agent_id": None, "business_id": None}
        if to is not None:
            return empty | {"channel": found.name, "address": found.normalize(to, self.settings.default_region, "to")}
        if agent_id is not None:
            agent = await self.store.agent(agent_id)
            if agent is None:
                raise InvalidInput("agent_id", f"there is no agent {agent_id}")
            business_id = agent.business_id
            destination = empty | {"agent_id": agent_id}
        else:
            assert business_id is not None
            if await self.store.business(business_id) is None:
                raise InvalidInput("business_id", f"there is no business {business_id}")
            destination = empty | {"business_id": business_id}
        if channel is not None:
            offered = await self.store.business_channels(business_id)
            if found.name not in offered:
                raise InvalidInput("channel", f"nobody at business {business_id} is on {found.label}; its channels: "
                                   f"{', '.join(offered) or 'none yet'}")  # fmt: skip
            destination["channel"] = found.name
        return destination

    async def known_business(self, business_id: int | None, field: str = "business_id") -> int | None:
        """A list's business filter: None (every business), or one that exists; an unknown one is
        refused, not answered with an empty list that looks like "nothing yet"."""
        if business_id is not None and (not 0 < business_id < 2**63 or await self.store.business(business_id) is None):
            raise InvalidInput(field, f"there is no business {business_id}")
        return business_id

    async def business_of(self, link: ShortLink) -> int | None:
        if link.agent_id is not None:
            agent = await self.store.agent(link.agent_id)
            return agent.business_id if agent else None
        return link.business_id

    async def get_link(self, slug: str) -> ShortLink:
        link = await self.store.link(slug.lower())
        if link is None:
            raise NotFound(f"There is no short link {slug!r}.")
        return link

    async def link_state(self, link: ShortLink, now: float | None = None) -> str:
        """What a click on `link` meets now: "disabled", "expired", "channel gone" (it asks for a
        channel nobody of its business is on any more: a 410 naming the others), "nobody" (no one
        to answer yet: a 503) or "active"."""
        if link.disabled:
            return "disabled"
        if link.expires_at is not None and (time.time() if now is None else now) >= link.expires_at:
            return "expired"
        target = await self.cache.get(link.slug)
        if target is None:  # deleted meanwhile
            return "disabled"
        try:  # a look, not a click: nobody's turn is taken
            destination = resolve(target, None, self.rotation, advance=False)
        except NotOffered:
            return "channel gone"
        return "active" if destination is not None else "nobody"

    async def update_link(self, slug: str, changes: dict[str, Any], if_match: str | None = None) -> ShortLink:
        """Change a printed link: its destination, text, labels, mode, expiry or state. `if_match`
        (`versions`): only if the link is still the one those tags name."""
        link = await self.get_link(slug)
        mistakes = Mistakes()
        update: dict[str, Any] = await mistakes.wait(self._new_destination(link, changes), {})
        channel = update.get("channel", link.channel) or "whatsapp"
        # A text checked as it was when it was stored is not checked again unless it changes (the
        # dashboard's form sends it with every edit): rules made stricter since must not lock a
        # link's other fields.
        moved = channel != (link.channel or "whatsapp")  # another channel's limits
        if "text" in changes and ((changes["text"] or "") != (link.text or "") or moved):
            update["text"] = mistakes.check(check_text, changes["text"] or "", get_channel(channel), otherwise="")
        for label in ("campaign", "source"):
            if label in changes:
                update[label] = mistakes.check(check_label, changes[label], label, otherwise=None)
        if "mode" in changes:
            update["mode"] = mistakes.check(check_mode, changes["mode"], otherwise="")
        if "disabled" in changes:
            update["disabled"] = int(bool(changes["disabled"]))
        if "expires_at" in changes:
            update["expires_at"] = mistakes.check(check_expiry, changes["expires_at"], True, otherwise=None)
        if "ref_code" in changes:
            update["ref_code"] = None if changes["ref_code"] is None else int(bool(changes["ref_code"]))
            if update["ref_code"] and channel != "whatsapp":
                mistakes.refuse("ref_code", f"is for links to WhatsApp: a {channel} link carries none")
        mistakes.raise_any()
        await self.store.update_link(link.slug, update, as_stored(self.store.link, link.slug, if_match, "This link"))
        self.forget()
        return await self.get_link(link.slug)

    async def _new_destination(self, link: ShortLink, changes: dict[str, Any]) -> dict[str, Any]:
        """The columns a change of `link`'s destination or channel sets (none if neither changes)."""
        if sent := [name for name in ("to", "agent_id", "business_id") if name in changes]:
            if all(changes[name] is None for name in sent):  # null: no default destination to go back to
                raise InvalidInput(sent[0], "a link always has a destination: leave this field out to keep it, or"
                                            " give a number (to), an agent (agent_id) or a business (business_id)")
            if "channel" in changes:  # None: a link to people opens their first channel again
                channel = changes["channel"]
            elif (changes.get("to") is not None) == (link.address is not None):
                channel = link.channel  # a number keeps its messenger; a link to people, the channel it opens
            else:
                channel = None
            update = await self._destination(
                changes.get("to"), channel, changes.get("agent_id"), changes.get("business_id"),
            )  # fmt: skip
            if update["address"] is not None:  # a fixed number now: still the business's (its name, logo, colour)
                update["business_id"] = await self.business_of(link)
            return update
        if "channel" in changes and link.address is None:  # the channel a link to an agent or business asks for
            return await self._destination(None, changes["channel"], link.agent_id, link.business_id)
        if "channel" in changes:
            raise InvalidInput("channel", "change the channel together with the address (to)")
        return {}

    async def link_clicks(self, slug: str) -> int:
        return await self.store.click_count("short", slug)

    async def signed_link_clicks(self, token: str) -> int:
        return await self.store.click_count("signed", token_key(token))

    async def link_notes(self, link: ShortLink | SignedLink) -> list[str]:
        """What the owner should know about a link (channels.link_notes), for each channel it
        may lead to: its own, its agent's, or its business's agents'."""
        if link.channel is not None and link.address is not None:
            return link_notes(get_channel(link.channel), link.address, link.text)
        agent_id, business_id = (link.agent_id, link.business_id) if isinstance(link, ShortLink) else (None, None)
        if agent_id is not None:
            agent = await self.store.agent(agent_id)
            agents = [agent] if agent else []
        else:
            agents = await self.store.agents(business_id) if business_id is not None else []
        if link.channel is not None and agent_id is not None and not any(a.address_on(link.channel) for a in agents):
            agents = await self.store.agents(agents[0].business_id) if agents else []  # a colleague takes it
        notes: list[str] = []
        if business_id is not None and not agents:
            notes.append("the business has no agents yet: until one is added, visitors are told nobody can answer")
        for agent in agents:  # on the link's channel where it names one, else on each one's first
            if link.channel is not None and (address := agent.address_on(link.channel)) is not None:
                found = link_notes(get_channel(link.channel), address, link.text)
            elif link.channel is None:
                found = link_notes(get_channel(agent.channel), agent.address, link.text)
            else:
                continue
            notes += [n for n in found if n not in notes]
        return notes

    def destination_url(self, link: ShortLink | SignedLink) -> str | None:
        if link.channel is None or link.address is None:
            return None
        return deep_link(link.channel, link.address, link.text)


def link_update_mistakes(raw: dict[str, Any]) -> list[FieldError]:
    """The checks of a link's changes that hold whatever the link (its channel, its text as it
    was written before a rule was made stricter): for the API, when its model refused other
    fields, so that one answer names every mistake (found by a review: `to` was held to
    WhatsApp's rules on a Telegram link, an unchanged text to today's)."""
    mistakes = Mistakes()
    for name in ("campaign", "source"):
        if isinstance(raw.get(name), str):
            mistakes.check(check_label, raw[name], name, otherwise=None)
    if isinstance(text := raw.get("text"), str) and len(text) > MAX_TEXT_LENGTH:  # every channel's limit
        mistakes.refuse("text", f"is {len(text)} characters long; links take at most {MAX_TEXT_LENGTH}")
    return mistakes.errors


class _SlugTaken(Exception):
    pass


def check_expiry(expires_at: int | None, allow_past: bool = False) -> int | None:
    """Unix seconds within the next hundred years (past only when ending a link now, and not
    before 1970: year 1 stored once made every listing of links fail to show it)."""
    if expires_at is None:
        return None
    if expires_at < 0:
        raise InvalidInput("expires_at", "is before 1970; to end a link now, give the present time or disable it")
    if not allow_past and expires_at <= time.time():
        raise InvalidInput("expires_at", "is in the past")
    if expires_at > time.time() + MAX_EXPIRY_SECONDS:
        raise InvalidInput("expires_at", "is more than 100 years away; leave it out for a link that never expires")
    return expires_at


FIRST_SECOND, LAST_SECOND = -62135596800, 253402300799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z


def timestamp(value: int | None) -> str | None:
    """Unix seconds as ISO 8601 UTC, the form the API speaks. A value no date can hold (stored
    before it was refused) is shown as the first or last date there is, never an error."""
    if value is None:
        return None
    shown = min(max(value, FIRST_SECOND), LAST_SECOND)
    return datetime.fromtimestamp(shown, UTC).isoformat().replace("+00:00", "Z")

class _KeyTaken(Exception):
    pass
