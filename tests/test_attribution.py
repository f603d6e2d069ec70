"""Which link, widget or ad brought each chat: a ref code travels in the pre-filled message
of links to connected numbers; Click-to-WhatsApp ads carry Meta's referral."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from clicktochat.conversations import find_ref, is_stop, says_stop, window, with_ref
from clicktochat.payloads import inbound_message, new_wamid, referral
from clicktochat.service import timestamp
from clicktochat.stats import compute, parse_query
from conftest import IPHONE, WhatsAppSetup, connect_db, flush, until_waiting_for_a_lock
from test_admin_roles import sign_in


def make_link(setup: WhatsAppSetup, **fields: Any) -> str:
    answer = setup.client.post("/api/v1/links", json=fields, headers=setup.auth)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["url"]).removeprefix("https://chat.example.com")


def text_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["text"][0]


def conversations(setup: WhatsAppSetup) -> list[dict[str, Any]]:
    return setup.client.get("/api/v1/conversations", headers=setup.auth).json()["conversations"]  # type: ignore[no-any-return]


def test_a_click_on_a_link_to_a_connected_number_starts_an_attributed_chat(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Vorrei ordinare una torta", campaign="vetrina",
                     slug="torte")  # fmt: skip
    location = whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"]
    text = text_of(location)
    ref = find_ref(text)
    assert ref is not None and text == f"Vorrei ordinare una torta (ref {ref})"
    other = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    assert find_ref(other) != ref  # each click its own code
    flush(whatsapp.client)
    whatsapp.run(whatsapp.customer().send_text(text))  # the customer sends what the link wrote for them
    whatsapp.process()
    (c,) = conversations(whatsapp)
    came = c["came_from"]
    assert (came["link_kind"], came["link_key"], came["campaign"], came["ref"]) == ("short", "torte", "vetrina", ref)
    assert came["click_at"] is not None and came["referral"] is None
    # Nothing ties the customer to their click rows: the chat's start keeps the click's link and time,
    # not its visitor key, which one join with `clicks` turned into what they clicked that day (a privacy review).
    with connect_db(whatsapp.service.settings.db) as db:
        keys = db.execute("SELECT visitor FROM clicks").fetchall()
        assert len(keys) == 2 and all(key for (key,) in keys)  # the clicks keep theirs, for unique visitors
        assert db.execute("SELECT count(*) FROM chat_starts WHERE visitor IS NOT NULL").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM click_refs WHERE visitor IS NOT NULL").fetchone()[0] == 0


def test_links_to_numbers_that_are_not_connected_keep_their_text_exactly(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 123 4567", text="Ciao!")
    assert text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"]) == "Ciao!"
    forced = make_link(whatsapp, to="+39 347 123 4567", text="Ciao!", ref_code=True)
    assert find_ref(text_of(whatsapp.client.get(forced, headers={"user-agent": IPHONE}).headers["location"]))
    off = make_link(whatsapp, to="+39 347 000 1111", text="Ciao!", ref_code=False)
    assert text_of(whatsapp.client.get(off, headers={"user-agent": IPHONE}).headers["location"]) == "Ciao!"


def test_a_deleted_ref_or_a_made_up_one_attributes_nothing(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Info", slug="info")
    whatsapp.client.get(path, headers={"user-agent": IPHONE})
    flush(whatsapp.client)
    whatsapp.run(whatsapp.customer().send_text("Info (ref ZZZZZ)"))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["came_from"]["link_key"] is None and c["came_from"]["ref"] == "ZZZZZ"  # found, and no click has it
    whatsapp.process()  # nor does a later round find one
    assert conversations(whatsapp)[0]["came_from"]["link_key"] is None


def test_a_customer_quicker_than_the_click_writer_is_tied_to_the_click_once_it_is_written(
    whatsapp: WhatsAppSetup,
) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torta", campaign="vetrina", slug="torte")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    whatsapp.run(whatsapp.customer().send_text(text))  # before the writer's next flush
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert (c["came_from"]["ref"], c["came_from"]["link_key"]) == (find_ref(text), None)
    flush(whatsapp.client)
    whatsapp.process()
    came = conversations(whatsapp)[0]["came_from"]
    assert (came["link_kind"], came["link_key"], came["campaign"]) == ("short", "torte", "vetrina")
    stats = whatsapp.client.get("/api/v1/stats", params={"by": "link"}, headers=whatsapp.auth).json()
    assert (stats["rows"][0]["conversations"], stats["rows"][0]["conversion"]) == (1, 1.0)


def test_a_click_written_long_after_the_chat_began_is_not_tied_to_it(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torta", slug="torte")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    whatsapp.run(whatsapp.customer().send_text(text))
    whatsapp.process()
    whatsapp.clock.move(2 * 3600)  # longer than any writer is late: a code typed from memory, say
    flush(whatsapp.client)
    whatsapp.process()
    assert conversations(whatsapp)[0]["came_from"]["link_key"] is None


def test_a_chat_from_an_ad_keeps_the_referral_and_the_free_entry_point(whatsapp: WhatsAppSetup) -> None:
    ad = referral(source_url="https://fb.me/3cr4Wqqkt", source_id="120212345678", headline="Torte per ogni festa",
                  body="Scrivici!", ctwa_clid="ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD")  # fmt: skip
    whatsapp.run(whatsapp.customer().send_text("Ciao, ho visto la vostra pubblicità", referral=ad))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["came_from"]["referral"]["headline"] == "Torte per ogni festa"
    assert c["came_from"]["referral"]["ctwa_clid"].startswith("ARAkLkA8")
    assert c["window"]["free_entry_point_until"] is not None
    whatsapp.clock.move(25 * 3600)  # no reply within 24 h: the entry point is lost with the window
    (c,) = conversations(whatsapp)
    assert c["window"]["free_entry_point_until"] is None and not c["window"]["open"]


def test_a_first_message_delivered_after_a_later_one_still_says_where_the_chat_came_from(
    whatsapp: WhatsAppSetup,
) -> None:
    # Meta does not keep the order of its deliveries (and the journal may apply a body before
    # older ones it holds): the later message starts the chat, then the first one arrives.
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torta", campaign="vetrina", slug="torte")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    flush(whatsapp.client)
    customer = whatsapp.customer()
    first_at = int(whatsapp.clock())
    ad = referral(source_url="https://fb.me/x", source_id="1", headline="Promo", body="", ctwa_clid="ARAk")

    def message(at: int, body: str, **more: Any) -> Any:
        value = inbound_message(wamid=new_wamid(customer.wa_id), timestamp=at, wa_id=customer.wa_id,
                                user_id=customer.user_id, name=customer.name, text=body, **more)  # fmt: skip
        return whatsapp.run(customer.deliver(value))

    whatsapp.clock.move(60)
    assert message(first_at + 30, "E anche dei biscotti").status_code == 200
    whatsapp.process()
    assert conversations(whatsapp)[0]["came_from"]["link_key"] is None
    assert message(first_at, text, referral=ad).status_code == 200
    whatsapp.process()
    (c,) = conversations(whatsapp)
    came = c["came_from"]
    assert (came["link_kind"], came["link_key"], came["campaign"]) == ("short", "torte", "vetrina")
    assert came["ref"] == find_ref(text) and came["referral"]["headline"] == "Promo"
    assert c["window"]["free_entry_point_until"] is not None
    chats = whatsapp.service.whatsapp.chats
    starts = whatsapp.run(chats.run(lambda: chats.db.execute("SELECT at FROM chat_starts").fetchall()))
    assert [tuple(row) for row in starts] == [(first_at,)]


def test_a_chat_whose_first_message_came_late_counts_on_that_messages_day(whatsapp: WhatsAppSetup) -> None:
    """The later message, just after midnight, starts the chat; the first one, just before,
    arrives after it: the chat moves to the day before, in the stats too."""
    rome = ZoneInfo("Europe/Rome")
    today = datetime.fromtimestamp(whatsapp.clock() - 3600, rome).replace(hour=0, minute=0, second=0)
    midnight = int(today.timestamp())
    whatsapp.clock.now = midnight + 60  # a minute past it, whenever the test runs
    customer = whatsapp.customer()

    def message(at: int) -> None:
        value = inbound_message(wamid=new_wamid(customer.wa_id), timestamp=at, wa_id=customer.wa_id,
                                user_id=customer.user_id, name=customer.name, text="Ciao")  # fmt: skip
        assert whatsapp.run(customer.deliver(value)).status_code == 200
        whatsapp.process()

    def by_day() -> dict[str, int]:
        params = {"from": datetime.fromtimestamp(midnight - 86400, rome).date().isoformat()}
        stats = whatsapp.client.get("/api/v1/stats", params=params, headers=whatsapp.auth).json()
        return {row["key"]: row["conversations"] for row in stats["rows"] if row["conversations"]}

    before, after = (datetime.fromtimestamp(at, rome).date().isoformat() for at in (midnight - 10, midnight + 20))
    message(midnight + 20)
    assert by_day() == {after: 1}
    message(midnight - 10)
    assert by_day() == {before: 1}


@pytest.mark.postgresql
def test_a_first_message_applied_while_another_instance_ties_the_chat_keeps_the_tie(whatsapp: WhatsAppSetup) -> None:
    """Found by a review, on PostgreSQL only: an instance applying a chat's earlier first message
    read its start unlocked, saw no link (another instance was tying it to its late click, not yet
    committed), waited, then wrote over the tie with nothing. The start is now read locked."""
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torta", campaign="vetrina", slug="torte")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    customer = whatsapp.customer()
    at = int(whatsapp.clock())

    def message(when: int) -> None:
        value = inbound_message(wamid=new_wamid(customer.wa_id), timestamp=when, wa_id=customer.wa_id,
                                user_id=customer.user_id, name=customer.name, text=text)  # fmt: skip
        assert whatsapp.run(customer.deliver(value)).status_code == 200

    message(at)  # before the click writer's flush: a chat with a ref code and no link yet
    whatsapp.process()
    flush(whatsapp.client)
    whatsapp.clock.move(60)
    message(at - 30)  # an earlier message with the same code, delivered late; not applied yet
    (chat,) = conversations(whatsapp)
    with connect_db(whatsapp.service.settings.db) as other:  # the other instance, tying it: not committed
        other.execute("BEGIN")
        other.execute("UPDATE click_refs SET used_by = ? WHERE ref = ?", (chat["id"], find_ref(text)))
        other.execute("UPDATE chat_starts SET link_kind = 'short', link_key = 'torte', campaign = 'vetrina'"
                      " WHERE conversation_id = ?", (chat["id"],))  # fmt: skip
        applying = threading.Thread(target=whatsapp.process)
        applying.start()
        until_waiting_for_a_lock(whatsapp.service.settings.db, "applying the earlier message")
        other.execute("COMMIT")
    applying.join()
    came = conversations(whatsapp)[0]["came_from"]
    assert (came["link_kind"], came["link_key"], came["campaign"]) == ("short", "torte", "vetrina")


def test_a_new_chat_starts_when_the_customer_writes_after_the_window_closed(whatsapp: WhatsAppSetup) -> None:
    customer = whatsapp.customer()
    whatsapp.run(customer.send_text("Prima domanda"))
    whatsapp.clock.move(3600)
    whatsapp.run(customer.send_text("Seconda, stessa chat"))
    whatsapp.clock.move(2 * 24 * 3600)
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torno!", campaign="natale", slug="natale")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    flush(whatsapp.client)
    whatsapp.run(customer.send_text(text))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["came_from"]["campaign"] == "natale"  # the latest start is the one shown
    chats = whatsapp.service.whatsapp.chats
    starts = whatsapp.run(chats.run(lambda: chats.db.execute("SELECT count(*) FROM chat_starts").fetchone()[0]))
    assert starts == 2


def test_a_reaction_after_the_window_reopens_it_but_starts_no_chat(whatsapp: WhatsAppSetup) -> None:
    """A thumbs-up on an old message two days later was counted as a chat started (and diluted
    every conversion rate): it opens the window, as Meta does, and starts nothing."""
    customer = whatsapp.customer()
    whatsapp.run(customer.send_text("Grazie, a sabato"))
    whatsapp.process()
    (said,) = whatsapp.run(whatsapp.service.whatsapp.chats.run(
        lambda: whatsapp.service.whatsapp.chats.db.execute("SELECT wamid FROM wa_messages").fetchone()))
    whatsapp.clock.move(2 * 24 * 3600)
    whatsapp.run(customer.react(said, "\U0001f44d"))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["window"]["may_send"] == "text"
    chats = whatsapp.service.whatsapp.chats
    starts = whatsapp.run(chats.run(lambda: chats.db.execute("SELECT count(*) FROM chat_starts").fetchone()[0]))
    assert starts == 1


def test_ref_codes_and_stop_words_are_read_as_people_write_them() -> None:
    assert find_ref(with_ref("Ciao", "K7QX2")) == "K7QX2"
    assert find_ref("ciao (REF k7qx2)") == "K7QX2" and find_ref("ciao (ref: K7QX2 )") == "K7QX2"
    assert find_ref("ciao") is None and find_ref("(ref K7QX0)") is None  # 0 is not in the alphabet
    for word in ("STOP", "stop", "Stop!", " stop. ", "ANNULLA", "Baja", "parar", "STOPP", "ARRÊT", "arret", "🛑 stop",
                 "Stop promotions", "stop sending", "STOP STOP please", "Stop sending me this please", "STOPALL",
                 "Unsubscribe me", "cancel", "END", "quit", "Basta!", "Abmelden", "désabonner",
                 "please stop", "Baja por favor", "Abmelden bitte", "Arrêtez", "désabonnez-moi", "annulla iscrizione",
                 "cancellami", "Please unsubscribe me",  # fmt: skip  # the last seven found by a review
                 "Darse de baja", "Remove me", "Pare", "Parem!", "Cancelar inscrição", "Sair da lista",  # and these
                 "Non voglio più messaggi", "smettete di scrivermi", "Non scrivetemi più, grazie!", "No more messages",
                 "Don't message me", "Do not contact me please", "No quiero más mensajes", "Keine Nachrichten mehr",
                 "Ne m'écrivez plus", "Não quero mais mensagens", "Remove me, thank you",  # a new user's
                 "stop" + " " * 90 + "\n", "STOP" + "!" * 100, "\n" * 50 + "Basta!" + "\n" * 50,  # a review's
                 "Arrêter", "arrêter les messages", "Abbestellen", "abbestellen bitte"):  # another's
        assert is_stop(word), word
    for text in ("non stop", "stopping by later", "", "Can you stop by the shop?", "Cancel my order 1234 and send",
                 "stop " * 10, "la torta è finita", "Basta così, grazie!", "Basta un cannolo, grazie",
                 "Stop by at 5 then", "Pare de chover?", "Remove me from the order the cake", "Grazie",
                 "Non voglio più messaggi vocali, scrivete", "No more messages like the last one?",
                 "Basta, grazie!", "basta per favore", "basta, thanks", "Pare, obrigado"):  # "that's all, thanks"
        assert not is_stop(text), text
    for whole in ("STOP", "Stop!", "Baja por favor", "Non scrivetemi più, grazie!", "Stop promotions", "🛑 stop"):
        assert says_stop(whole), whole
    for sentence in ("Stop, aspetta, ho sbagliato indirizzo", "stop sending", "Stop sending me this please", ""):
        assert not says_stop(sentence), sentence  # is_stop reads the first two as stops: "when in doubt"


def test_the_window_and_the_entry_point_follow_the_rules() -> None:
    now = 1_000_000
    assert not window(None, None, None, now).open
    assert window(now - 10, None, None, now).may_send == "text"
    assert window(now - 24 * 3600, None, None, now).may_send == "templates"
    ad_start = now - 30 * 3600
    kept = window(ad_start, ad_start + 72 * 3600, ad_start + 3600, now)  # answered within 24 h
    assert kept.entry_point_until == ad_start + 72 * 3600 and not kept.open
    lost = window(ad_start, ad_start + 72 * 3600, ad_start + 25 * 3600, now)
    assert lost.entry_point_until is None


def test_stats_count_chats_started_and_the_share_of_clicks_that_became_one(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Ordine", campaign="vetrina", slug="vetrina")
    make_link(whatsapp, to="+39 347 000 1111", text="Info", campaign="flyer", slug="flyer")
    texts = [text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"]) for _ in range(4)]
    whatsapp.client.get("/s/flyer", headers={"user-agent": IPHONE})
    flush(whatsapp.client)
    whatsapp.run(whatsapp.customer(wa_id="393470000001", user_id=None).send_text(texts[0]))
    whatsapp.run(whatsapp.customer(wa_id="393470000002", user_id=None).send_text("Ciao, senza codice"))
    whatsapp.process()
    by_link = whatsapp.client.get("/api/v1/stats", params={"by": "link"}, headers=whatsapp.auth).json()
    rows = {r["key"]: (r["clicks"], r["conversations"], r["conversion"]) for r in by_link["rows"]}
    assert rows == {"short:vetrina": (4, 1, 0.25), "short:flyer": (1, 0, 0.0)}
    assert by_link["totals"]["conversations"] == 2  # every chat started, from a link or not
    assert by_link["totals"]["conversations_from_clicks"] == 1  # what the rows add up to (found by a new user)
    assert by_link["totals"]["conversion"] == 0.2  # 1 chat from a click, 5 clicks
    by_campaign = whatsapp.client.get("/api/v1/stats", params={"by": "campaign"}, headers=whatsapp.auth).json()
    assert {r["key"]: r["conversations"] for r in by_campaign["rows"]} == {"vetrina": 1, "flyer": 0}
    by_day = whatsapp.client.get("/api/v1/stats", headers=whatsapp.auth).json()
    assert sum(r["conversations"] for r in by_day["rows"]) == 2
    csv_text = whatsapp.client.get("/api/v1/stats.csv", params={"by": "link"}, headers=whatsapp.auth).text
    assert "short:vetrina,short:vetrina,4,1,0,1,0.25" in csv_text.splitlines()[1:]
    shown = whatsapp.run(compute(whatsapp.service.store, parse_query({"by": "link"})))  # the CLI's and dashboard's
    page = sign_in(whatsapp, "ana").get("/admin/", params={"by": "link"}).text
    assert '(<span id="chats-from-clicks">1</span> from clicks: the rest began with an ad or the customer' in page
    assert shown.chats and shown.as_csv().splitlines()[0] == "link,label,clicks,uniques,bots,conversations,conversion"


def test_widget_and_signed_links_to_a_connected_number_carry_a_ref_code(whatsapp: WhatsAppSetup) -> None:
    agent = whatsapp.client.post(f"/api/v1/businesses/{whatsapp.business_id}/agents", headers=whatsapp.auth,
                                 json={"name": "Ana", "address": "+39 347 000 1111"}).json()  # fmt: skip
    widget = whatsapp.client.post("/api/v1/widgets", headers=whatsapp.auth,
                                  json={"business_id": whatsapp.business_id, "id": "shop"}).json()  # fmt: skip
    location = whatsapp.client.get(f"/w/{widget['id']}/{agent['id']}", headers={"user-agent": IPHONE})
    assert find_ref(text_of(location.headers["location"]))
    signed = make_link(whatsapp, to="+39 347 000 1111", text="Dall'annuncio", short=False)
    text = text_of(whatsapp.client.get(signed, headers={"user-agent": IPHONE}).headers["location"])
    assert text.startswith("Dall'annuncio (ref ") and find_ref(text)
    flush(whatsapp.client)
    whatsapp.run(whatsapp.customer().send_text(text))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["came_from"]["link_kind"] == "signed"


def test_a_customer_whose_messages_stay_at_sent_while_others_deliver_may_have_blocked_us(
    whatsapp: WhatsAppSetup,
) -> None:
    silent, other = whatsapp.customer(wa_id="393470000001", user_id=None), whatsapp.customer(wa_id="393470000002",
                                                                                             user_id=None)  # fmt: skip
    for customer in (silent, other):
        whatsapp.run(customer.send_text("Ciao"))
    whatsapp.process()
    ids = {c["wa_id"]: c["id"] for c in conversations(whatsapp)}
    for wa_id in ids:
        answer = whatsapp.client.post(f"/api/v1/conversations/{ids[wa_id]}/messages", json={"text": "Eccoci"},
                                      headers=whatsapp.auth)  # fmt: skip
        assert answer.status_code == 202
    whatsapp.send()
    for sent in whatsapp.standin.sent:
        whatsapp.status(sent.wamid, "sent")
        if sent.wa_id == "393470000002":
            whatsapp.status(sent.wamid, "delivered")
    whatsapp.process()
    assert not any(c["may_have_blocked"] for c in conversations(whatsapp))  # a day's silence proves nothing
    whatsapp.clock.move(2 * 86400 + 60)
    flags = {c["wa_id"]: c["may_have_blocked"] for c in conversations(whatsapp)}
    assert flags == {"393470000001": True, "393470000002": False}


def test_one_click_starts_one_chat_however_often_its_message_is_forwarded(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Promo", campaign="promo", slug="promo")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    flush(whatsapp.client)
    for wa_id in ("393470000001", "393470000002", "393470000003"):  # the message forwarded to friends
        whatsapp.run(whatsapp.customer(wa_id=wa_id, user_id=None).send_text(text))
    whatsapp.process()
    attributed = [c for c in conversations(whatsapp) if c["came_from"]["link_key"] == "promo"]
    assert len(attributed) == 1
    stats = whatsapp.client.get("/api/v1/stats", params={"by": "link"}, headers=whatsapp.auth).json()
    assert stats["rows"][0]["conversion"] == 1.0  # 1 click, 1 chat from it: never 300 %


def test_a_second_reply_does_not_take_back_the_free_entry_point(whatsapp: WhatsAppSetup) -> None:
    ad = referral(source_url="https://fb.me/x", source_id="1", headline="Promo", body="", ctwa_clid="ARAk")
    whatsapp.run(whatsapp.customer().send_text("Ciao dall'annuncio", referral=ad))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    url = f"/api/v1/conversations/{c['id']}/messages"
    whatsapp.clock.move(3600)
    assert whatsapp.client.post(url, json={"text": "Eccoci"}, headers=whatsapp.auth).status_code == 202
    whatsapp.send()
    whatsapp.clock.move(20 * 3600)
    whatsapp.run(whatsapp.customer().send_text("Ancora io"))
    whatsapp.process()
    whatsapp.clock.move(9 * 3600)  # 30 h after the ad: a second reply
    assert whatsapp.client.post(url, json={"text": "Sì?"}, headers=whatsapp.auth).status_code == 202
    whatsapp.send()
    whatsapp.clock.move(3600)
    (c,) = conversations(whatsapp)
    assert c["window"]["free_entry_point_until"] is not None  # 72 h from the ad, kept by the first reply


def test_the_customer_writing_again_after_the_window_keeps_the_free_entry_point(whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a message 40 h after the ad's (the 24-hour window closed, so a new
    chat start) took back the free entry point that runs 72 h from the ad."""
    ad = referral(source_url="https://fb.me/x", source_id="1", headline="Promo", body="", ctwa_clid="ARAk")
    whatsapp.run(whatsapp.customer().send_text("Ciao dall'annuncio", referral=ad))
    whatsapp.process()
    started = int(whatsapp.clock())
    (c,) = conversations(whatsapp)
    whatsapp.clock.move(3600)
    url = f"/api/v1/conversations/{c['id']}/messages"
    assert whatsapp.client.post(url, json={"text": "Eccoci"}, headers=whatsapp.auth).status_code == 202
    whatsapp.send()
    whatsapp.clock.move(39 * 3600)
    whatsapp.run(whatsapp.customer().send_text("Sono ancora interessato"))
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["window"]["free_entry_point_until"] == timestamp(started + 72 * 3600)
    whatsapp.clock.move(33 * 3600)  # 73 h after the ad: over
    (c,) = conversations(whatsapp)
    assert c["window"]["free_entry_point_until"] is None


@pytest.mark.postgresql
def test_a_chat_another_instance_or_an_erasure_holds_is_left_to_it(whatsapp: WhatsAppSetup) -> None:
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torta", slug="torte")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    whatsapp.run(whatsapp.customer().send_text(text))
    whatsapp.process()
    flush(whatsapp.client)
    chats = whatsapp.service.whatsapp.chats
    with connect_db(whatsapp.service.settings.db) as other:  # another instance, mid-transaction on that chat
        other.execute("BEGIN")
        other.execute("SELECT id FROM chat_starts FOR UPDATE")
        try:  # skipped, not waited for (a wait would only end with the timeout: the test fails, not hangs)
            assert whatsapp.run(asyncio.wait_for(chats.match_late_clicks(int(whatsapp.clock())), 30)) == 0
        finally:
            other.execute("ROLLBACK")
    with connect_db(whatsapp.service.settings.db) as db:
        assert db.execute("SELECT count(*) FROM click_refs WHERE used_by IS NOT NULL").fetchone()[0] == 0
    assert whatsapp.run(chats.match_late_clicks(int(whatsapp.clock()))) == 1
    assert whatsapp.run(chats.match_late_clicks(int(whatsapp.clock()))) == 0  # one click, one chat
    assert conversations(whatsapp)[0]["came_from"]["link_key"] == "torte"


def attributions_of(setup: WhatsAppSetup) -> list[tuple[Any, ...]]:
    chats = setup.service.whatsapp.chats
    return [tuple(row) for row in setup.run(chats.run(lambda: chats.db.execute(
        "SELECT wamid, ref, link_key, campaign, referral IS NOT NULL FROM attributions ORDER BY at, id").fetchall()))]


def test_an_ad_or_a_link_clicked_while_the_window_is_open_is_recorded_and_shown_as_the_latest(
    whatsapp: WhatsAppSetup,
) -> None:
    """Found by a review of the WhatsApp side: a customer who clicked another ad or link while
    their 24-hour window was open lost where that message came from; only the chat's start said.
    Every message that carries a referral or a ref code is recorded, once however often Meta
    delivers it; the conversation shows the latest, the chat's start keeps the first."""
    first = make_link(whatsapp, to="+39 347 000 1111", text="Una torta", campaign="vetrina", slug="torte")
    second = make_link(whatsapp, to="+39 347 000 1111", text="E i biscotti?", campaign="natale", slug="biscotti")
    customer = whatsapp.customer()
    whatsapp.run(customer.send_text(text_of(whatsapp.client.get(first, headers={"user-agent": IPHONE}
                                                                ).headers["location"])))  # fmt: skip
    flush(whatsapp.client)
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert (c["came_from"]["link_key"], c["latest_came_from"]["link_key"]) == ("torte", "torte")

    whatsapp.clock.move(600)  # the window is open: a click on an ad...
    ad = referral(source_url="https://fb.me/3cr4Wqqkt", source_id="120212345678", headline="Biscotti di Natale",
                  body="Scrivici!", ctwa_clid="ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD")  # fmt: skip
    at = int(whatsapp.clock())
    value = inbound_message(wamid=new_wamid(customer.wa_id), timestamp=at, wa_id=customer.wa_id,
                            user_id=customer.user_id, name=customer.name, text="Info sui biscotti", referral=ad)
    assert whatsapp.run(customer.deliver(value)).status_code == 200
    value["contacts"][0]["profile"]["name"] = "Giulia R."  # Meta again, in other bytes
    assert whatsapp.run(customer.deliver(value)).status_code == 200
    whatsapp.process()
    (c,) = conversations(whatsapp)
    assert c["came_from"]["link_key"] == "torte" and c["came_from"]["referral"] is None  # the start keeps the first
    latest = c["latest_came_from"]
    assert latest["referral"]["headline"] == "Biscotti di Natale" and latest["link_key"] is None
    assert latest["referral"]["ctwa_clid"].startswith("ARAkLkA8") and latest["at"] == timestamp(at)

    whatsapp.clock.move(600)  # ...then on another link, the customer quicker than the click writer
    text = text_of(whatsapp.client.get(second, headers={"user-agent": IPHONE}).headers["location"])
    whatsapp.run(customer.send_text(text))
    whatsapp.process()
    latest = conversations(whatsapp)[0]["latest_came_from"]
    assert (latest["ref"], latest["link_key"], latest["referral"]) == (find_ref(text), None, None)
    flush(whatsapp.client)
    whatsapp.process()  # the click written: tied to it
    detail = whatsapp.client.get(f"/api/v1/conversations/{c['id']}", headers=whatsapp.auth).json()
    latest = detail["latest_came_from"]
    assert (latest["link_kind"], latest["link_key"], latest["campaign"]) == ("short", "biscotti", "natale")
    assert detail["came_from"]["link_key"] == "torte"

    # An older message delivered late does not hide the latest; each message is recorded once.
    late = inbound_message(wamid=new_wamid(customer.wa_id), timestamp=at - 60, wa_id=customer.wa_id,
                           user_id=customer.user_id, name=customer.name, text="Anche panettoni?", referral=ad)
    assert whatsapp.run(customer.deliver(late)).status_code == 200
    whatsapp.process()
    assert conversations(whatsapp)[0]["latest_came_from"]["link_key"] == "biscotti"
    recorded = attributions_of(whatsapp)
    assert [(ref is not None, key, campaign, said) for _, ref, key, campaign, said in recorded] == [
        (True, "torte", "vetrina", False), (False, None, None, True), (False, None, None, True),
        (True, "biscotti", "natale", False)]
    assert len({wamid for wamid, *_ in recorded}) == 4
    starts = whatsapp.run(whatsapp.service.whatsapp.chats.run(lambda: whatsapp.service.whatsapp.chats.db.execute(
        "SELECT count(*), min(link_key) FROM chat_starts").fetchone()))  # fmt: skip
    assert tuple(starts) == (1, "torte")  # one chat, started from the first link
    stats = whatsapp.client.get("/api/v1/stats", params={"by": "link"}, headers=whatsapp.auth).json()
    assert {r["key"]: r["conversations"] for r in stats["rows"]} == {"short:torte": 1, "short:biscotti": 0}
    # Erased with the person, as the rest of their chat.
    assert whatsapp.client.delete("/api/v1/customers/393471234567", headers=whatsapp.auth).status_code == 200
    assert attributions_of(whatsapp) == []


def test_the_same_links_message_sent_again_in_the_window_still_names_the_link(whatsapp: WhatsAppSetup) -> None:
    """A click starts one chat, but the customer who sends that link's message again in their
    chat (a second tap, a copy) still says where it came from: their own click, not a blank."""
    path = make_link(whatsapp, to="+39 347 000 1111", text="Torta", campaign="vetrina", slug="torte")
    text = text_of(whatsapp.client.get(path, headers={"user-agent": IPHONE}).headers["location"])
    flush(whatsapp.client)
    customer = whatsapp.customer()
    whatsapp.run(customer.send_text(text))
    whatsapp.clock.move(60)
    whatsapp.run(customer.send_text(text))
    whatsapp.process()
    assert [key for _, _, key, _, _ in attributions_of(whatsapp)] == ["torte", "torte"]
    other = whatsapp.customer(wa_id="393470000002", user_id=None)  # forwarded to a friend: not theirs
    whatsapp.run(other.send_text(text))
    whatsapp.process()
    assert [key for _, _, key, _, _ in attributions_of(whatsapp)] == ["torte", "torte", None]
