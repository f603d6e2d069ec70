"""A person with two conversations, one in Meta's form of their number (521..., or a Brazilian
mobile without its ninth digit) beside one in E.164, as migration 015 leaves an older release's
database: the consent ledger, the double opt-in and the export and erasure take both as one
person's (found by a review; each test failed before its fix)."""

from __future__ import annotations

from clicktochat.consent import may_message
from clicktochat.storedb import migrations
from conftest import WhatsAppSetup, connect_db
from test_notifications import API
from test_optin_pages import double_form, entries, post

TWIN = "5215512345678"  # Meta's form, left by migration 015 beside its E.164 twin
E164 = "525512345678"


def _twin(whatsapp: WhatsAppSetup, user_id: str) -> int:
    """The E.164 conversation (no user id: Meta gave none) and, as an older release kept it, the
    521... twin, the only one that holds the person's user id."""
    whatsapp.run(whatsapp.customer(wa_id=TWIN, user_id=None, name="Mateo").send_text("Hola"))
    whatsapp.process()
    with connect_db(whatsapp.service.settings.db) as db:
        db.execute("INSERT INTO conversations (number_id, business_id, wa_id, user_id, created_at, last_message_at,"
                   " last_inbound_at) VALUES (?, ?, ?, ?, 0, 1, 1)",
                   (whatsapp.number_id, whatsapp.business_id, TWIN, user_id))  # fmt: skip
        (old,) = db.execute("SELECT id FROM conversations WHERE wa_id = ?", (TWIN,)).fetchone()
        db.commit()
    return int(old)


def test_erasing_by_a_user_id_the_twin_holds_erases_the_e164_conversation_too(whatsapp: WhatsAppSetup) -> None:
    """The number a user id is tied to was taken as stored (the twin's 521...): the E.164
    conversation was neither exported nor erased, and the marker named 521... only."""
    _twin(whatsapp, "MX.abc123")
    data = whatsapp.client.get(f"{API}/customers/MX.abc123", headers=whatsapp.auth).json()
    assert data["phone"] == E164, data["phone"]
    assert [m["text"] for m in data["messages"]] == ["Hola"]
    assert whatsapp.client.delete(f"{API}/customers/MX.abc123", headers=whatsapp.auth).status_code == 200
    with connect_db(whatsapp.service.settings.db) as db:
        assert db.execute("SELECT count(*) FROM wa_messages").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] == 0


def test_a_stop_by_user_id_in_the_twin_holds_for_the_e164_number(whatsapp: WhatsAppSetup) -> None:
    """The user ids tied to a number were looked for in its E.164 form alone: a STOP recorded by
    user id (WhatsApp withheld the number) in the 521... twin was not seen for the E.164 number."""
    _twin(whatsapp, "MX.abc123")
    whatsapp.run(whatsapp.customer(wa_id=None, user_id="MX.abc123", name="Mateo").send_text("STOP"))
    whatsapp.process()
    entries = whatsapp.run(whatsapp.service.whatsapp.chats.consents(whatsapp.business_id, E164, None))
    assert [e.state for e in entries] == ["out"]


def test_an_ok_to_an_agent_who_wrote_in_the_twin_confirms_nothing(whatsapp: WhatsAppSetup) -> None:
    """An agent's reply written in the 521... twin (its window open) was not seen as sent since
    the question, and the customer's "ok" to it confirmed a stranger's sign-up."""
    customer = whatsapp.customer(wa_id=TWIN, user_id=None, name="Mateo")
    whatsapp.run(customer.send_text("Quiero reservar el sábado"))
    whatsapp.process()
    now = int(whatsapp.clock())
    with connect_db(whatsapp.service.settings.db) as db:  # the twin, its window open (written to an hour ago)
        db.execute("INSERT INTO conversations (number_id, business_id, wa_id, created_at, last_message_at,"
                   " last_inbound_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (whatsapp.number_id, whatsapp.business_id, TWIN, now - 3600, now - 3600, now - 3600))  # fmt: skip
        (old,) = db.execute("SELECT id FROM conversations WHERE wa_id = ?", (TWIN,)).fetchone()
        db.commit()
    double_form(whatsapp)
    assert post(whatsapp, country="MX", phone="55 1234 5678").status_code == 200  # the stranger
    assert whatsapp.send() == 1
    whatsapp.clock.move(60)
    answer = whatsapp.client.post(f"/api/v1/conversations/{old}/messages", headers=whatsapp.auth,
                                  json={"text": "Confirmado, sábado a las 20"})  # fmt: skip
    assert answer.status_code == 202 and whatsapp.send() == 1
    whatsapp.clock.move(60)
    whatsapp.run(customer.send_text("ok"))
    whatsapp.process()
    assert not may_message(entries(whatsapp, E164), "orders").allowed


def test_a_stop_by_user_id_in_the_twin_holds_back_a_confirmation_already_queued(whatsapp: WhatsAppSetup) -> None:
    """The sender's last look before a double opt-in's confirmation goes: a STOP by user id in the
    521... twin, written after the sign-up, holds it back (`TWIN_OF_PHONE`)."""
    _twin(whatsapp, "MX.abc123")
    double_form(whatsapp)
    assert post(whatsapp, country="MX", phone="55 1234 5678").status_code == 200  # queued, not yet sent
    whatsapp.clock.move(10)
    whatsapp.run(whatsapp.customer(wa_id=None, user_id="MX.abc123", name="Mateo").send_text("STOP"))
    whatsapp.process()
    whatsapp.send()
    assert whatsapp.standin.sent == []


def test_a_message_delivered_in_the_twin_is_no_sign_of_a_block(whatsapp: WhatsAppSetup) -> None:
    """"May have blocked you" looked at one form of the number: a reply delivered in the 521...
    twin did not count as theirs, and the E.164 conversation's reply at `sent` flagged them."""
    whatsapp.run(whatsapp.customer(wa_id=TWIN, user_id=None, name="Mateo").send_text("Hola"))
    whatsapp.process()
    now = int(whatsapp.clock())
    with connect_db(whatsapp.service.settings.db) as db:  # the twin, its window open too
        db.execute("INSERT INTO conversations (number_id, business_id, wa_id, created_at, last_message_at,"
                   " last_inbound_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (whatsapp.number_id, whatsapp.business_id, TWIN, now, now, now))  # fmt: skip
        ids = dict(db.execute("SELECT wa_id, id FROM conversations").fetchall())
        db.commit()
    for wa_id in (E164, TWIN):  # one at a time: the stand-in then has them in this order
        answer = whatsapp.client.post(f"/api/v1/conversations/{ids[wa_id]}/messages", headers=whatsapp.auth,
                                      json={"text": "Claro"})  # fmt: skip
        assert answer.status_code == 202 and whatsapp.send() == 1
    first, second = whatsapp.standin.sent
    whatsapp.status(first.wamid, "sent")
    whatsapp.status(second.wamid, "sent")
    whatsapp.status(second.wamid, "delivered")  # the twin's reply reached them
    whatsapp.process()
    whatsapp.clock.move(2 * 86400 + 60)
    found = whatsapp.client.get(f"{API}/conversations/{ids[E164]}", headers=whatsapp.auth).json()
    assert found["may_have_blocked"] is False


def test_migration_16_merges_the_twin_into_the_e164_conversation(whatsapp: WhatsAppSetup) -> None:
    """One person, one conversation: the twin's messages and user id move to the E.164 one, which
    keeps the earliest start and the latest message; a pair with two user ids stays apart."""
    old = _twin(whatsapp, "MX.abc123")
    db_path = whatsapp.service.settings.db
    postgres = db_path.startswith("postgres")
    with connect_db(db_path) as db:
        db.execute("INSERT INTO wa_messages (conversation_id, wamid, direction, at, type, text)"
                   " VALUES (?, 'wamid.old', 'in', 0, 'text', 'Antes')", (old,))  # fmt: skip
        db.execute("INSERT INTO conversations (number_id, business_id, wa_id, user_id, created_at, last_message_at)"
                   " VALUES (?, ?, '5215599999999', 'MX.one', 0, 1), (?, ?, '525599999999', 'MX.two', 0, 1)",
                   (whatsapp.number_id, whatsapp.business_id) * 2)  # fmt: skip
        db.commit()
    (script,) = [sql for number, sql in migrations("migrations_pg" if postgres else "migrations") if number == 16]
    with connect_db(db_path) as db:  # as `migrate` runs it on a database left at schema 15
        db.executescript(script)
    with connect_db(db_path) as db:
        rows = db.execute("SELECT id, wa_id, user_id, name, created_at, last_message_at FROM conversations"
                          " ORDER BY wa_id").fetchall()  # fmt: skip
        (kept,) = [row for row in rows if row[1] in (E164, TWIN)]
        assert kept[1:4] == (E164, "MX.abc123", "Mateo") and kept[4] == 0
        assert sorted(r[1] for r in rows if r[1] not in (E164, TWIN)) == ["5215599999999", "525599999999"]
        texts = db.execute("SELECT text FROM wa_messages WHERE conversation_id = ? ORDER BY at", (kept[0],)).fetchall()
        assert [t[0] for t in texts] == ["Antes", "Hola"]
    data = whatsapp.client.get(f"{API}/customers/MX.abc123", headers=whatsapp.auth).json()
    assert [m["text"] for m in data["messages"]] == ["Antes", "Hola"]
