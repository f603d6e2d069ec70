"""The consent ledger's rules. Entries are only ever added; the latest entry about a person for
a topic (or for '*', every topic) decides. Every path that sends a message asks here first.

An opt-out is for ever: a STOP written in the chat, Meta's error 131050 and a `user_preferences`
stop all add an `out` entry for '*'. A `resume` in WhatsApp adds nothing: people come back
by opting in again, with the wording they were shown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .conversations import says_stop

CONSENT_COLUMNS = "id, business_id, phone, user_id, topic, state, at, source, wording, version, proof"


@dataclass(frozen=True)
class Consent:
    id: int
    business_id: int
    phone: str | None
    user_id: str | None
    topic: str
    state: str
    at: int
    source: str
    wording: str | None
    version: str | None
    proof: dict[str, Any] | None


def consent_from(row: Sequence[Any]) -> Consent:
    """An entry from a row of CONSENT_COLUMNS."""
    return Consent(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
                   json.loads(row[10]) if row[10] else None)  # fmt: skip


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def latest(entries: Sequence[Consent], topic: str) -> Consent | None:
    """The entry that decides for `topic`: the newest about it or about every topic."""
    relevant = [e for e in entries if e.topic in (topic, "*")]
    return max(relevant, key=lambda e: (e.at, e.id)) if relevant else None


def opted_out(entries: Sequence[Consent]) -> Consent | None:
    """The opt-out from everything in force, if any (the newest '*' entry says `out`)."""
    entry = latest(entries, "*")
    return entry if entry is not None and entry.state == "out" and entry.topic == "*" else None


def may_reply(entries: Sequence[Consent], last_inbound_at: int | None) -> Decision:
    """A free-form reply to someone who wrote: refused only when they opted out and have not
    written since (a STOP is not answered with more messages; writing again asks for help)."""
    stop = opted_out(entries)
    if stop is not None and (last_inbound_at is None or last_inbound_at <= stop.at):
        return Decision(False, "The customer opted out of messages from this business and has not written since.")
    return Decision(True)


def may_answer(entries: Sequence[Consent], last_inbound_at: int | None) -> Decision:
    """An agent's free-form reply in the window: as `may_reply`, but an opt-out read from a sentence
    that only starts with a stop word ("Stop, wrong address!") does not hold the
    answer back. It still stops updates and marketing, to be safe; a STOP said whole, a button, or
    WhatsApp's own stop does hold it."""
    stop = opted_out(entries)
    if stop is not None and stop.source == "chat" and stop.wording and not says_stop(stop.wording):
        return Decision(True)
    return may_reply(entries, last_inbound_at)


def may_message(entries: Sequence[Consent], topic: str) -> Decision:
    """A message the business starts (an update, a template): only with consent in force."""
    entry = latest(entries, topic)
    if entry is None:
        return Decision(False, f"The customer has not opted in to '{topic}'.")
    if entry.state == "out":
        return Decision(False, "The customer opted out" + ("." if entry.topic == "*" else f" of '{topic}'."))
    return Decision(True)
