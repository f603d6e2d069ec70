"""The SQL of opt-ins: the forms that ask for consent, the double opt-in requests waiting for
the customer's "Yes", and the consent list the dashboard shows. A part of `chatstore.ChatStore`
(on the connection and thread of `chatdb.ChatDB`): a reply that confirms a request is applied
in the same transaction as the webhook body that carries it. The ledger's entries themselves
are written by `ChatStore._consent`, the one place they are added."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .channels import whatsapp_forms, whatsapp_number
from .chatdb import UNIQUE_VIOLATION, ChatDB
from .consent import CONSENT_COLUMNS, Consent, consent_from
from .conversations import Inbound, is_stop
from .optin_words import topic_label

FORM_COLUMNS = ("id, slug, business_id, title, topics, wording, version, languages, double_optin, template,"
                " template_language, created_at, updated_at, topic_labels")  # fmt: skip
REQUEST_COLUMNS = ("id, business_id, form_id, phone, topic, state, created_at, expires_at, source, wording, version,"
                   " proof, confirmation_at, outbox_id, decided_at, consent_id")  # fmt: skip
TWIN_OF_PHONE = ("CASE WHEN length(r.phone) = 12 AND substr(r.phone, 1, 2) = '52' THEN '521' || substr(r.phone, 3)"
                 " WHEN length(r.phone) = 13 AND substr(r.phone, 1, 2) = '55' AND substr(r.phone, 5, 1) = '9'"
                 " THEN substr(r.phone, 1, 4) || substr(r.phone, 6) END")
"""SQL: Meta's other form of a request's E.164 number (`channels.whatsapp_forms`: 521..., a Brazilian
mobile without its ninth digit), or NULL: a conversation migration 015 left beside its twin."""
UNSENT = ("EXISTS (SELECT 1 FROM outbox WHERE outbox.id = optin_requests.outbox_id"
          " AND outbox.state IN ('failed', 'cancelled'))")  # fmt: skip
"""A request whose confirmation message will never reach the person."""
NO_WORDS = frozenset({"no", "nein", "non", "não", "nao", "nope", "not now", "no thanks", "no thank you"})
"""A reply (a button, or a short written one) saying no: the request is refused, not confirmed."""
NO_STARTS = frozenset({"no", "nein", "non", "não", "nao"})


YES_STARTS = frozenset({
    "yes", "yeah", "yep", "ok", "okay", "sure", "confirm", "confirmed", "si", "sì", "sí", "certo", "confermo",
    "oui", "ja", "jawohl", "sim", "claro", "confirmo", "vale", "accetto", "acepto", "aceito", "bestätige",
})  # fmt: skip
"""A short written reply starting with one of these confirms a request: English, Italian, Spanish,
French, German and Portuguese, the languages of the form's pages."""
YES_SIGNS = frozenset({"👍", "👍🏻", "👍🏼", "👍🏽", "👍🏾", "👍🏿", "✅", "👌"})
BUT_NOT = NO_STARTS | {"not", "nicht", "pas", "stop", "stopp", "arret", "unsubscribe", "basta", "annulla", "baja"}
"""A word anywhere in a short reply that takes its yes back: "Okay, stop", "yes no", "ok pas maintenant"."""


def says_yes(text: str) -> bool:
    """"Sì", "yes please", "OK!", "Ja, gerne", a thumbs up: a short reply (four words at most)
    that starts with a yes. A question, or anything else, is not consent."""
    if text.strip() in YES_SIGNS:
        return True
    words = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()
    return (0 < len(words) <= 4 and words[0] in YES_STARTS and "?" not in text
            and not any(word in BUT_NOT for word in words))  # fmt: skip


def says_no(text: str) -> bool:
    """"No", "No.", "no grazie!", "Nein danke", "non merci": a short reply that starts with a no."""
    words = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()
    return " ".join(words) in NO_WORDS or (0 < len(words) <= 3 and words[0] in NO_STARTS)


@dataclass(frozen=True)
class OptinForm:
    id: int
    slug: str
    business_id: int
    title: str | None
    topics: tuple[str, ...]
    wording: dict[str, str]  # language -> the consent sentence
    version: int
    languages: tuple[str, ...]
    double_optin: bool
    template: str | None
    template_language: str | None
    created_at: int
    updated_at: int
    topic_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> topic -> label

    def topic_label(self, topic: str, lang: str) -> str:
        """What a topic is called in `lang`: the form's own label, else its name made readable."""
        return self.topic_labels.get(lang, {}).get(topic) or topic_label(topic)


@dataclass(frozen=True)
class OptinRequest:
    id: int
    business_id: int
    form_id: int | None
    phone: str
    topic: str
    state: str  # pending, confirmed, lapsed, refused
    created_at: int
    expires_at: int
    source: str
    wording: str
    version: str
    proof: dict[str, Any] | None
    confirmation_at: int | None
    outbox_id: int | None
    decided_at: int | None
    consent_id: int | None


class PendingExists(Exception):
    """This number already has a request waiting for its confirmation."""


class ConfirmedToday(Exception):
    """A confirmation message went to this number less than a day ago."""


class OptinStore(ChatDB):
    # -- forms -----------------------------------------------------------------------

    async def add_form(self, values: dict[str, Any], now: int) -> OptinForm:
        def work() -> OptinForm:
            try:
                with self._tx() as db:
                    cursor = db.execute(
                        "INSERT INTO optin_forms (slug, business_id, title, topics, wording, languages, double_optin,"
                        " template, template_language, topic_labels, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id", (*_form_values(values), now, now),
                    )  # fmt: skip
                    (form_id,) = cursor.fetchone()
            except sqlite3.IntegrityError:  # rolled back: read again outside it
                self._slug_taken(values["slug"])
                raise
            found = self._form("id = ?", form_id)
            assert found is not None
            return found

        return await self.run(work)

    async def update_form(self, form: OptinForm, values: dict[str, Any], now: int) -> OptinForm:
        """The version goes up when the words people agree to change (the sentence, or what a topic
        is called): consents name the version they were given under."""

        def work() -> OptinForm:
            try:
                with self._tx() as db:
                    # What the words are now, read in the write's transaction (locked on PostgreSQL):
                    # compared with a copy read before, a save at the same moment by another admin
                    # that changed them would leave its words under the old version number.
                    lock = " FOR UPDATE" if self.postgres else ""
                    stored = db.execute(f"SELECT wording, topic_labels FROM optin_forms WHERE id = ?{lock}",
                                        (form.id,)).fetchone()  # fmt: skip
                    words = (json.loads(stored[0]), json.loads(stored[1])) if stored else None
                    bump = int(words != (values["wording"], values.get("topic_labels", {})))
                    db.execute(
                        "UPDATE optin_forms SET slug = ?, business_id = ?, title = ?, topics = ?, wording = ?,"
                        " languages = ?, double_optin = ?, template = ?, template_language = ?, topic_labels = ?,"
                        " updated_at = ?, version = version + ? WHERE id = ?",
                        (*_form_values(values), now, bump, form.id),
                    )  # fmt: skip
            except sqlite3.IntegrityError:  # renamed to another form's slug? (rolled back: read outside it)
                self._slug_taken(values["slug"])
                raise
            found = self._form("id = ?", form.id)
            assert found is not None
            return found

        return await self.run(work)

    def _slug_taken(self, slug: str) -> None:
        """KeyError if another form has `slug` (what a unique violation on a form's write
        usually means; otherwise, say a business deleted meanwhile, the caller's error stands)."""
        if self._one("SELECT 1 FROM optin_forms WHERE slug = ?", (slug,)):
            raise KeyError(slug) from None

    def _form(self, where: str, value: Any) -> OptinForm | None:
        row = self._one(f"SELECT {FORM_COLUMNS} FROM optin_forms WHERE {where}", (value,))
        return _form(row) if row else None

    async def form(self, slug: str) -> OptinForm | None:
        return await self.run(self._form, "slug = ?", slug)

    async def forms(self, business_id: int | None = None) -> list[OptinForm]:
        rows = await self.run(self._all, f"SELECT {FORM_COLUMNS} FROM optin_forms WHERE ?1 IS NULL OR business_id = ?1"
                                         " ORDER BY id", (business_id,))  # fmt: skip
        return [_form(row) for row in rows]

    # -- double opt-in requests ------------------------------------------------------

    async def quiet_request(
        self, business_id: int, form_id: int | None, phone: str, topic: str, source: str, wording: str,
        version: str, proof: dict[str, Any] | None, now: int, expires_at: int,
        confirm_every: int,
    ) -> str:  # fmt: skip
        """A sign-up for a number that opted out: no message goes, but it is answered as anyone's
        is, so the form tells no one who opted out: "waiting" when one was made already and still
        waits, "later" when this business sent the number a confirmation in the last
        `confirm_every` seconds (as `add_request` says), else "pending", and one is kept, `refused`,
        for the answers and for the record (a person's export shows it). Its confirmation is
        reserved as a real one is (`confirmation_at`), so that the business's form answers "later"
        next time, as after a real one."""

        def work() -> str:
            with self._tx() as db:
                if self._one("SELECT 1 FROM optin_requests WHERE business_id = ? AND phone = ? AND state = 'refused'"
                             " AND outbox_id IS NULL AND created_at <= ? AND expires_at > ?",
                             (business_id, phone, now, now)):  # fmt: skip
                    return "waiting"
                if self._one("SELECT 1 FROM optin_requests WHERE business_id = ? AND phone = ? AND confirmation_at > ?"
                             f" AND NOT {UNSENT}", (business_id, phone, now - confirm_every)):  # fmt: skip
                    return "later"
                db.execute(
                    "INSERT INTO optin_requests (business_id, form_id, phone, topic, state, created_at, expires_at,"
                    " source, wording, version, proof, decided_at, confirmation_at)"
                    " VALUES (?, ?, ?, ?, 'refused', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (business_id, form_id, phone, topic, now, expires_at, source, wording, version,
                     json.dumps((proof or {}) | {"not_sent": "the number had opted out"}), now, now),
                )  # fmt: skip
                return "pending"

        return await self.run(work)

    async def add_request(
        self, business_id: int, form_id: int | None, phone: str, topic: str, source: str, wording: str,
        version: str, proof: dict[str, Any] | None, now: int, expires_at: int, confirm_every: int,
    ) -> OptinRequest:  # fmt: skip
        """A pending request, its confirmation message reserved (`confirmation_at`) in the same
        transaction. Raises PendingExists (one waits already) or ConfirmedToday (this business
        sent the number a confirmation less than `confirm_every` seconds ago). Each business keeps
        its own count: one shared by all told a business's visitors that the number had signed up
        with another business of the install that day (found by an agency's review).

        A confirmation Meta refused for good (its outbox row `failed`, e.g. the template was
        deleted; or `cancelled`) never reached the person: its request lapses now and it counts
        for neither limit, so they can try again once the business has put it right."""

        def add(db: sqlite3.Connection) -> int:
            db.execute("UPDATE optin_requests SET state = 'lapsed', decided_at = expires_at"
                       " WHERE phone = ? AND state = 'pending' AND expires_at <= ?", (phone, now))  # fmt: skip
            db.execute(f"UPDATE optin_requests SET state = 'lapsed', decided_at = ? WHERE phone = ?"
                       f" AND state = 'pending' AND {UNSENT}", (now, phone))  # fmt: skip
            # One statement, so one snapshot on PostgreSQL: another instance's request, committed
            # between two reads, would have been missed by the first and found by the second.
            found = self._one(
                "SELECT state = 'pending' FROM optin_requests WHERE business_id = ? AND phone = ?"
                f" AND (state = 'pending' OR (confirmation_at > ? AND NOT {UNSENT}"
                " AND NOT (state = 'refused' AND outbox_id IS NULL)))"
                " ORDER BY state = 'pending' DESC LIMIT 1", (business_id, phone, now - confirm_every),
            )  # fmt: skip
            if found and found[0]:
                raise PendingExists(phone)
            if found:
                raise ConfirmedToday(phone)  # (its own quiet one, for a number opted out then, aside)
            cursor = db.execute(
                "INSERT INTO optin_requests (business_id, form_id, phone, topic, state, created_at, expires_at,"
                " source, wording, version, proof, confirmation_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (business_id, form_id, phone, topic, now, expires_at, source, wording, version,
                 json.dumps(proof) if proof else None, now),
            )  # fmt: skip
            return int(cursor.fetchone()[0])

        def work() -> OptinRequest:
            # On PostgreSQL, the same number sent at the same time to two instances: both find no
            # pending request, and the second insert breaks the unique index; run again, it finds
            # the first's (SQLite's BEGIN IMMEDIATE already runs them one after the other).
            request_id = self._retry(add, also=(UNIQUE_VIOLATION,))
            found = self._request("id = ?", request_id)
            assert found is not None
            return found

        return await self.run(work)

    async def request_queued(self, request_id: int, outbox_id: int) -> None:
        def work() -> None:
            with self._tx() as db:
                db.execute("UPDATE optin_requests SET outbox_id = ? WHERE id = ?", (outbox_id, request_id))

        await self.run(work)

    async def pending_request(self, business_id: int, phone: str) -> OptinRequest | None:
        return await self.run(self._request, "business_id = ? AND phone = ? AND state = 'pending'", business_id, phone)

    def _request(self, where: str, *values: Any) -> OptinRequest | None:
        row = self._one(f"SELECT {REQUEST_COLUMNS} FROM optin_requests WHERE {where}", values)
        return _request(row) if row else None

    async def last_written(self, business_id: int, phone: str) -> int | None:
        """When the number last wrote to the business (any of its numbers), if ever. A reaction is
        not writing: an emoji on an old message, or one taken back, lifts no STOP (a review's)."""
        row = await self.run(self._one, "SELECT max(m.at) FROM conversations c JOIN wa_messages m"
                                        " ON m.conversation_id = c.id AND m.direction = 'in' AND m.type <> 'reaction'"
                                        " WHERE c.business_id = ? AND c.wa_id IN (?, ?)",
                             (business_id, phone, _twin(phone)))  # fmt: skip
        return int(row[0]) if row and row[0] is not None else None

    async def requests(self, business_id: int | None, phone: str) -> list[OptinRequest]:
        """A number's requests, oldest first."""
        sql = f"SELECT {REQUEST_COLUMNS} FROM optin_requests WHERE phone = ?2 AND (?1 IS NULL OR business_id = ?1)"
        rows = await self.run(self._all, sql + " ORDER BY id", (business_id, phone))
        return [_request(row) for row in rows]

    async def confirmation_refusals(self, outbox_ids: list[int]) -> dict[int, str | None]:
        """For the sender, just before it sends: per outbox row that is a double opt-in's
        confirmation, None while its request still waits and the number has not opted out since
        it was made, else why not. Other rows are left out."""

        def work() -> dict[int, str | None]:
            marks = ", ".join("?" * len(outbox_ids))
            rows = self._all(
                f"SELECT r.outbox_id, r.state, r.created_at, (SELECT max(c.at) FROM consents c"
                " WHERE c.business_id = r.business_id AND c.phone = r.phone AND c.state = 'out'),"
                " (SELECT max(c.at) FROM consents c JOIN conversations v ON c.user_id = v.user_id"  # a STOP by user id
                " JOIN whatsapp_numbers w ON w.id = v.number_id AND w.business_id = r.business_id"
                f" WHERE c.business_id = r.business_id AND v.wa_id IN (r.phone, {TWIN_OF_PHONE}) AND c.state = 'out')"
                f" FROM optin_requests r WHERE r.outbox_id IN ({marks})", outbox_ids,
            ) if outbox_ids else []  # fmt: skip
            found: dict[int, str | None] = {}
            for outbox_id, state, created_at, by_number, by_user_id in rows:
                out_at = max(by_number or 0, by_user_id or 0) or None
                if state != "pending":
                    found[outbox_id] = f"The opt-in request is {state}: its confirmation is not sent."
                elif out_at is not None and out_at >= created_at:
                    found[outbox_id] = "The customer opted out after the opt-in request was made."
                else:
                    found[outbox_id] = None
            return found

        return await self.run(work)

    def _optin_reply(self, db: sqlite3.Connection, business_id: int, message: Inbound) -> None:
        """Inside `apply_events`: a customer's message may answer their pending request. Once
        its confirmation was sent, a tap on one of that message's buttons (the tap names it), or
        a short written yes ("Sì", "yes please"; quoting the question once the business wrote to
        them since) confirms it, and its `in` entry is added with the words they were shown;
        STOP, or a button or short reply saying no ("No", "no grazie"), refuses it. Anything else
        (a question, "who is this?", a button of another message, a yes before the question
        reached them) leaves it pending until it lapses: the person who typed the number in may
        not be its owner."""
        if not message.wa_id:
            return
        found = self._request("business_id = ? AND phone = ? AND state = 'pending' AND created_at <= ?"
                              " AND expires_at > ?", business_id, message.wa_id, message.at, message.at)  # fmt: skip
        if found is None:
            return
        said = (message.text or "").strip().lower() if message.type in ("text", "button", "interactive") else ""
        if message.stop or is_stop(said) or says_no(said):  # written or tapped (not a place or a contact named "No")
            db.execute("UPDATE optin_requests SET state = 'refused', decided_at = ? WHERE id = ?",
                       (message.at, found.id))  # fmt: skip
            return
        sent = db.execute("SELECT o.wamid, o.sent_at, n.phone_number_id FROM outbox o JOIN whatsapp_numbers n"
                          " ON n.id = o.number_id WHERE o.id = ?", (found.outbox_id,)).fetchone()  # fmt: skip
        asked = sent[0] if sent else None  # the confirmation's message id, once Meta took it
        if asked is None or message.at < (sent[1] or 0):
            return  # no question had reached them (not sent yet, never, or a yes written before it went)
        if sent[2] != message.phone_number_id:
            return  # written to another of the business's numbers: an answer to that chat (a review found it)
        if message.type in ("button", "interactive"):
            if message.context_id != asked:
                return  # a button of another message (an order's "Track it"), not the confirmation's
        elif not (message.type == "text" and says_yes(said) and message.context_id in (None, asked)):
            return  # a photo, a sticker, a question, or a reply quoting another message
        elif message.context_id is None and self._spoken_since(db, business_id, message, found.outbox_id, sent[1]):
            return  # an "ok" to an agent who wrote since: an answer to them, not to the question
        proof = (found.proof or {}) | {"request": found.id, "confirmed_by": message.wamid}
        cursor = db.execute(
            "INSERT INTO consents (business_id, phone, user_id, topic, state, at, source, wording, version, proof)"
            " VALUES (?, ?, ?, ?, 'in', ?, ?, ?, ?, ?) RETURNING id",
            (business_id, found.phone, message.user_id, found.topic, message.at, found.source, found.wording,
             found.version, json.dumps(proof)),
        )  # fmt: skip
        db.execute("UPDATE optin_requests SET state = 'confirmed', decided_at = ?, consent_id = ? WHERE id = ?",
                   (message.at, cursor.fetchone()[0], found.id))  # fmt: skip

    def _spoken_since(self, db: sqlite3.Connection, business_id: int, message: Inbound, confirmation: int | None,
                      since: int | None) -> bool:  # fmt: skip
        """The business sent the customer something since the confirmation went out (an agent's
        reply, an update: any outbox row, by when it was sent). Found by reviews: a person chatting
        about a booking, whom a stranger had signed up, confirmed it with "ok, see you then",
        written to the agent; or with an "ok" to an update about another topic."""
        return db.execute(
            "SELECT 1 FROM notifications n JOIN outbox o ON o.id = n.outbox_id WHERE n.business_id = ?4"
            " AND n.phone = ?5 AND o.sent_at BETWEEN ?1 AND ?2 AND o.id <> ?3"
            " UNION ALL SELECT 1 FROM conversations c JOIN wa_messages m ON m.conversation_id = c.id"
            " JOIN outbox o ON o.id = m.outbox_id"
            " WHERE c.number_id IN (SELECT id FROM whatsapp_numbers WHERE business_id = ?4)"
            " AND (c.wa_id = ?5 OR c.wa_id = ?7 OR c.user_id = ?6) AND m.direction = 'out' AND m.at <= ?2"
            " AND o.sent_at BETWEEN ?1 AND ?2 AND o.id <> ?3 LIMIT 1",
            (since or 0, message.at, confirmation or 0, business_id, message.wa_id, message.user_id,
             _twin(message.wa_id)),
        ).fetchone() is not None  # fmt: skip

    # -- the consent list ------------------------------------------------------------

    async def consent_list(self, business_id: int | None, search: str = "", limit: int = 100,
                           offset: int = 0) -> list[Consent]:  # fmt: skip
        """Newest first; `search`: digits of the number, or a topic or source."""

        def work() -> list[Consent]:
            digits = whatsapp_number("".join(ch for ch in search if ch.isdigit()))  # 521... finds 52...
            word = search.strip().lower()
            holds = "strpos(phone, ?3) > 0" if self.postgres else "instr(phone, ?3) > 0"
            rows = self._all(
                f"SELECT {CONSENT_COLUMNS} FROM consents WHERE (?1 IS NULL OR business_id = ?1) AND (?2 = '' OR"
                f" (?3 != '' AND {holds}) OR topic = ?2 OR source = ?2)"
                " ORDER BY at DESC, id DESC LIMIT ?4 OFFSET ?5", (business_id, word, digits, limit, offset),
            )  # fmt: skip
            return [consent_from(row) for row in rows]

        return await self.run(work)


def _twin(phone: str | None) -> str | None:
    """A number's other form in Meta's ids (521..., a Brazilian mobile without its ninth digit), if it has one:
    a conversation migration 015 left beside its E.164 twin is the same person's."""
    forms = whatsapp_forms(whatsapp_number(phone)) if phone else []
    return next((f for f in forms if f != phone), forms[0] if forms else None)


def _form_values(values: dict[str, Any]) -> tuple[Any, ...]:
    return (values["slug"], values["business_id"], values["title"], json.dumps(list(values["topics"])),
            json.dumps(values["wording"], ensure_ascii=False), json.dumps(list(values["languages"])),
            int(values["double_optin"]), values["template"], values["template_language"],
            json.dumps(values.get("topic_labels", {}), ensure_ascii=False))  # fmt: skip


def _form(row: Any) -> OptinForm:
    return OptinForm(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), json.loads(row[5]), row[6],
                     tuple(json.loads(row[7])), bool(row[8]), row[9], row[10], row[11], row[12],
                     json.loads(row[13]))  # fmt: skip


def _request(row: Any) -> OptinRequest:
    return OptinRequest(*row[:11], proof=json.loads(row[11]) if row[11] else None,  # type: ignore[misc]
                        confirmation_at=row[12], outbox_id=row[13], decided_at=row[14], consent_id=row[15])  # fmt: skip
